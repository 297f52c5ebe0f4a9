/*
 * link - nng pipelines between relgate processes, joined to libevent.
 *
 * Every process has one inbox: a pull socket listening on
 * ipc://<run_dir>/<role>.<instance>.ipc (permissions 0600 set before the
 * listener starts).  Sends go through push sockets dialled lazily to a
 * peer's inbox: non-blocking dial (a peer that is not up yet is reached
 * when it comes), reconnect 10 ms .. 250 ms, non-blocking sends (a missing
 * or slow peer never blocks the loop: NNG_EAGAIN is counted and the
 * message dropped), and a size limit enforced here, by the sender.
 * Received messages are read through NNG_OPT_RECVFD from the event loop,
 * decoded by proto_decode, and handed to the callback; rejects are counted.
 *
 * nng is not fork-safe: call link_open only in a process that will not
 * fork afterwards (children after exec, tools).
 */
#ifndef RG_LINK_H
#define RG_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"
#include "proto/roles.h"

struct event_base;
struct link_ctx;

/* Counters of one process's messaging.  The caller owns the storage (it
 * lives in shm); only this process writes it, with relaxed atomics. */
#define LINK_STATS(X)                                                     \
	X(sent, "messages sent")                                          \
	X(recv, "messages received and decoded")                          \
	X(rejected, "messages rejected by the decoder")                   \
	X(eagain, "sends dropped: peer not ready (NNG_EAGAIN)")           \
	X(oversize, "sends refused: over PROTO_MAX_MSG")                  \
	X(send_err, "sends failed for another reason")                    \
	X(held, "sends held back (peer busy) to be sent again")           \
	X(held_sent, "held-back sends delivered later")                   \
	X(held_dropped, "held-back sends given up after their wait")

struct link_stats {
#define LINK_STAT_FIELD(name, doc) uint64_t name;
	LINK_STATS(LINK_STAT_FIELD)
#undef LINK_STAT_FIELD
};

enum link_err {
	LINK_OK = 0,
	LINK_E_AGAIN = -1,   /* peer not ready; message dropped, counted */
	LINK_E_TOOBIG = -2,  /* over PROTO_MAX_MSG; counted */
	LINK_E_ADDR = -3,    /* reply address outside run_dir or too long */
	LINK_E_SEND = -4,    /* other nng error; counted */
	LINK_E_ENCODE = -5,  /* message could not be encoded */
};

/* Called for every decoded message, on the event loop. */
typedef void (*link_recv_cb)(void *arg, const struct proto_msg *msg);
/* The message and its strings live only until the callback returns: copy
 * what must outlast it.  The callback may call link_send*, and may call
 * link_close (the close then happens when the callback returns). */

/* LINK_ADDR_MAX - room for the longest inbox address with its NUL
 * ("ipc://" + a path that fits sun_path). */
#define LINK_ADDR_MAX 128

/*
 * link_open - create the inbox for (role, instance) under run_dir and hook
 * it to base.  A stale socket file from a dead process is replaced.
 * Returns NULL and logs one line on failure.
 */
struct link_ctx *link_open(struct event_base *base, const char *run_dir,
    enum rg_role role, unsigned instance, link_recv_cb cb, void *arg,
    struct link_stats *stats);

/* link_close - close every socket and remove this process's socket file. */
void link_close(struct link_ctx *ctx);

/* link_addr - "ipc://<run_dir>/<role>.<instance>.ipc" into buf; returns
 * -1 when it does not fit (sun_path is 108 bytes). */
int link_addr(char *buf, size_t len, const char *run_dir, enum rg_role role,
    unsigned instance);

/* link_my_addr - this process's inbox address. */
const char *link_my_addr(const struct link_ctx *ctx);

/*
 * link_send - encode msg (src_role/src_instance are filled in) and send it
 * to the inbox of (role, instance) without blocking.  Returns LINK_OK or
 * a negative enum link_err; every failure is counted.
 */
int link_send(struct link_ctx *ctx, enum rg_role role, unsigned instance,
    struct proto_msg *msg);

/*
 * link_send_held - link_send for a message that must not be lost to a
 * busy peer: when the peer's queue is full (NNG_EAGAIN) the encoded
 * message is held and sent again from the loop every few ms, for at most
 * wait_ms, in order with the other held messages to the same peer (a
 * later one waits behind them).  Returns LINK_OK when sent or held; a
 * message given up is counted (held_dropped) and logged.  Peers that are
 * gone for good: the caller's own watch (the process table) decides.
 */
int link_send_held(struct link_ctx *ctx, enum rg_role role,
    unsigned instance, struct proto_msg *msg, unsigned wait_ms);
/*
 * link_on_giveup - cb is called, on the event loop, with each message
 * link_send_held gave up (its peer stayed busy for wait_ms), decoded as
 * it was sent, so that its sender can answer for it (refuse the chat,
 * free what it held).  The same rules as for link_recv_cb.
 */
void link_on_giveup(struct link_ctx *ctx, link_recv_cb cb, void *arg);

/* How long the chat path holds a message back: one a client waits for
 * (a chat's start, its refusal), one that frees what a stream held. */
#define LINK_WAIT_ANSWER_MS 2000u
#define LINK_WAIT_RELEASE_MS 10000u

/* link_send_addr - the same to an explicit inbox address (a reply_to),
 * which must be an ipc address inside run_dir. */
int link_send_addr(struct link_ctx *ctx, const char *addr,
    struct proto_msg *msg);

#endif
