/*
 * telemetry - coalescing of rate-limit and admission events at their
 * source (SPEC §8).
 *
 * Every blocked or contention outcome becomes an event for the monitor,
 * but not a message each: an abusive client would turn every refused
 * request into an nng message and a store write.  Events of the same
 * (bucket, key, outcome, reason) are coalesced for the dedupe window: the
 * first is sent at once, the rest are counted and sent as one event with
 * their count when the window ends (the monitor stores one event and
 * counts duplicates either way).  A slot taken over by another key first
 * sends what it held.
 *
 * Pure: no clock, no I/O; the caller passes the time and a send callback.
 * Owns only its table (fixed size, no allocation).
 */
#ifndef RG_TELEMETRY_H
#define RG_TELEMETRY_H

#include <stdint.h>

#include "proto/proto.h"

#define TEL_SLOTS 1024
#define TEL_WINDOW_MS 5000
#define TEL_STR 96

/* The outcome numbers of RL_EVENT (proto/messages.def). */
enum tel_outcome {
	TEL_ALLOWED = 0,
	TEL_BLOCKED = 1,
	TEL_CONTENTION = 2,
	TEL_WOULD_BLOCK = 3,
};

/* One occurrence, as the caller sees it (strings are copied only when a
 * window opens).  reason may be NULL (none). */
struct tel_occurrence {
	uint8_t outcome; /* enum tel_outcome */
	uint32_t retry_after_ms;
	const char *bucket, *key, *path, *method, *reason;
};

/* What is sent: the first occurrence of a window. */
struct tel_event {
	uint8_t outcome;
	uint32_t retry_after_ms;
	char bucket[32], key[TEL_STR], path[TEL_STR], method[16];
	char reason[48]; /* "" when the occurrence had none */
};

struct tel_slot {
	uint64_t hash;
	uint64_t window_start; /* ms; 0 = free */
	uint32_t pending;      /* occurrences not sent yet */
	struct tel_event ev;
};

struct tel_table {
	struct tel_slot slot[TEL_SLOTS];
};

/* send(arg, ev, count): one message for count occurrences of ev. */
typedef void (*tel_send_fn)(void *arg, const struct tel_event *ev,
    uint32_t count);

/*
 * tel_note - one occurrence at now_ms: sent at once when it opens a
 * window, else counted.  Returns 1 when it was coalesced (not sent).
 */
int tel_note(struct tel_table *t, const struct tel_occurrence *oc,
    uint64_t now_ms, tel_send_fn send, void *arg);

/* tel_flush - send the counts of windows that ended by now_ms. */
void tel_flush(struct tel_table *t, uint64_t now_ms, tel_send_fn send,
    void *arg);

/*
 * tel_message - the RL_EVENT for count occurrences of ev from source,
 * created at now_ms, into m (its strings point into ev and source).
 */
void tel_message(const struct tel_event *ev, uint32_t count,
    const char *source, uint64_t now_ms, struct proto_msg *m);

#endif
