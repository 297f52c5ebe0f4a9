/*
 * link - nng pipelines between relgate processes, joined to libevent.
 *
 * Owns: this process's inbox (a pull0 socket listening on its ipc path,
 * and the socket file), a bounded cache of push0 sockets to peers, and the
 * libevent event on the inbox's NNG_OPT_RECVFD.  Writes only its own
 * link_stats (relaxed atomics: the struct lives in shm).
 *
 * Never blocks the event loop: dials and sends are non-blocking, and at
 * most LINK_RECV_BATCH messages are taken per wakeup.  Never lets an
 * undecodable message reach the callback, and never sends one larger than
 * PROTO_MAX_MSG (nng would drop it silently at the receiver).
 */
#include "proto/link.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/transport/ipc/ipc.h>

#include "util/log.h"
#include "util/util.h"

#define LINK_SCHEME "ipc://"
#define LINK_SCHEME_LEN (sizeof(LINK_SCHEME) - 1)
/* sun_path holds the path and its NUL. */
#define LINK_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define LINK_RECV_BATCH 256   /* messages per wakeup */
/* Cached push sockets.  Each one to a dead peer redials every 10..250 ms,
 * and in nng 1.5.2 nng_close() of such sockets slows down sharply with
 * their number (about 1 s for 64 under load): keep the cache small. */
#define LINK_MAX_PEERS 32
#define LINK_PEER_IDLE_MS (60 * 1000) /* close a peer unused this long */
#define LINK_RECV_SLACK 4096  /* RECVMAXSZ above PROTO_MAX_MSG */
#define LINK_SENDBUF 1024     /* messages queued per peer */
#define LINK_RECVBUF 1024     /* messages queued in the inbox (default 1) */
#define LINK_HELD_MAX 65536   /* held-back messages, all peers */
#define LINK_HELD_RETRY_MS 2  /* held-back messages are tried again */
#define LINK_RECONN_MIN_MS 10
#define LINK_RECONN_MAX_MS 250
#define LINK_LOG_EVERY_MS 1000 /* at most one line per kind and second */

_Static_assert(LINK_ADDR_MAX >= LINK_SCHEME_LEN + LINK_PATH_MAX + 1,
    "LINK_ADDR_MAX must hold the longest ipc address");

struct link_peer {
	nng_socket sock;
	uint64_t used; /* mono_ms() of the last send: LRU and idle close */
	char addr[LINK_ADDR_MAX];
};

enum link_logkind { LL_REJECT, LL_EAGAIN, LL_SEND, LL_RECV, LL_HELD, LL_COUNT };

/* A message held back for a busy peer (link_send_held). */
struct held {
	struct held *next;
	uint64_t deadline; /* mono_ms */
	nng_msg *m;
	uint8_t type;
	char addr[LINK_ADDR_MAX];
};

struct link_ctx {
	struct event_base *base;
	struct held *held, **held_tail; /* oldest first */
	unsigned nheld;
	struct event *held_ev;
	struct event *ev;
	nng_socket inbox;
	int inbox_open;
	link_recv_cb cb;
	void *arg;
	link_recv_cb giveup_cb; /* a held-back message given up */
	void *giveup_arg;
	struct link_stats *stats;
	struct link_stats own_stats; /* when the caller passes none */
	int dispatching;             /* inside the callback */
	int close_pending;           /* link_close called from it */
	uint64_t last_log[LL_COUNT];
	unsigned role, instance;
	size_t prefix_len; /* of "ipc://<run_dir>/" in addr */
	char addr[LINK_ADDR_MAX];
	char run_dir[LINK_ADDR_MAX];
	size_t npeers;
	struct link_peer peers[LINK_MAX_PEERS];
};

#define STAT_INC(ctx, name)                                               \
	((void)__atomic_fetch_add(&(ctx)->stats->name, 1, __ATOMIC_RELAXED))

/* log_due - rate limit for per-message failures (a flood of bad input or
 * a dead peer must not flood the log). */
static int
log_due(struct link_ctx *ctx, enum link_logkind k)
{
	uint64_t now = mono_ms();

	if (ctx->last_log[k] != 0 &&
	    now - ctx->last_log[k] < LINK_LOG_EVERY_MS)
		return 0;
	ctx->last_log[k] = now ? now : 1;
	return 1;
}

/* path_of - the filesystem path inside an ipc address. */
static const char *
path_of(const char *addr)
{
	return addr + LINK_SCHEME_LEN;
}

int
link_addr(char *buf, size_t len, const char *run_dir, enum rg_role role,
    unsigned instance)
{
	size_t dlen = strlen(run_dir);
	int n;

	while (dlen > 1 && run_dir[dlen - 1] == '/')
		dlen--;
	if ((unsigned)role >= ROLE_COUNT || dlen == 0 || dlen > INT_MAX)
		return -1;
	n = snprintf(buf, len, "%s%.*s/%s.%u.ipc", LINK_SCHEME, (int)dlen,
	    run_dir, role_name(role), instance);
	if (n < 0 || (size_t)n >= len ||
	    (size_t)n - LINK_SCHEME_LEN > LINK_PATH_MAX)
		return -1;
	return 0;
}

const char *
link_my_addr(const struct link_ctx *ctx)
{
	return ctx->addr;
}

/* remove_stale - unlink a socket file left by a dead owner.  The
 * supervisor guarantees one owner per address; anything but a socket is
 * left alone and refused. */
static int
remove_stale(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;
		return -1;
	}
	if (unlink(path) != 0 && errno != ENOENT)
		return -1;
	return 0;
}

static void on_inbox(evutil_socket_t fd, short what, void *arg);
static void held_retry(evutil_socket_t fd, short what, void *arg);
static void link_free(struct link_ctx *ctx);

struct link_ctx *
link_open(struct event_base *base, const char *run_dir, enum rg_role role,
    unsigned instance, link_recv_cb cb, void *arg, struct link_stats *stats)
{
	struct link_ctx *ctx;
	nng_listener l;
	int rv, fd;

	ctx = xcalloc(1, sizeof(*ctx));
	ctx->base = base;
	ctx->held_tail = &ctx->held;
	ctx->cb = cb;
	ctx->arg = arg;
	ctx->stats = stats != NULL ? stats : &ctx->own_stats;
	ctx->role = role;
	ctx->instance = instance;
	if (link_addr(ctx->addr, sizeof(ctx->addr), run_dir, role,
	    instance) != 0) {
		log_err("link: inbox address for %s.%u under %s is too long",
		    role_name(role), instance, run_dir);
		free(ctx);
		return NULL;
	}
	ctx->prefix_len = (size_t)(strrchr(ctx->addr, '/') - ctx->addr) + 1;
	strlcpy_rg(ctx->run_dir, run_dir, sizeof(ctx->run_dir));

	if (remove_stale(path_of(ctx->addr)) != 0) {
		log_err("link: cannot replace %s: %s", path_of(ctx->addr),
		    strerror(errno));
		free(ctx);
		return NULL;
	}
	if ((rv = nng_pull0_open(&ctx->inbox)) != 0) {
		log_err("link: pull socket: %s", nng_strerror(rv));
		free(ctx);
		return NULL;
	}
	ctx->inbox_open = 1;
	if ((rv = nng_socket_set_size(ctx->inbox, NNG_OPT_RECVMAXSZ,
	    PROTO_MAX_MSG + LINK_RECV_SLACK)) != 0 ||
	    (rv = nng_socket_set_int(ctx->inbox, NNG_OPT_RECVBUF,
	    LINK_RECVBUF)) != 0 ||
	    (rv = nng_listener_create(&l, ctx->inbox, ctx->addr)) != 0 ||
	    (rv = nng_listener_set_size(l, NNG_OPT_RECVMAXSZ,
	    PROTO_MAX_MSG + LINK_RECV_SLACK)) != 0 ||
	    (rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS,
	    0600)) != 0 ||
	    (rv = nng_listener_start(l, 0)) != 0) {
		log_err("link: listen on %s: %s", ctx->addr, nng_strerror(rv));
		link_free(ctx);
		return NULL;
	}
	if ((rv = nng_socket_get_int(ctx->inbox, NNG_OPT_RECVFD, &fd)) != 0) {
		log_err("link: recv fd of %s: %s", ctx->addr,
		    nng_strerror(rv));
		(void)unlink(path_of(ctx->addr));
		link_free(ctx);
		return NULL;
	}
	ctx->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_inbox, ctx);
	ctx->held_ev = evtimer_new(base, held_retry, ctx);
	if (ctx->ev == NULL || ctx->held_ev == NULL ||
	    event_add(ctx->ev, NULL) != 0) {
		log_err("link: cannot add the inbox event of %s", ctx->addr);
		(void)unlink(path_of(ctx->addr));
		link_free(ctx);
		return NULL;
	}
	return ctx;
}

/* link_free - release everything but the socket file. */
static void
link_free(struct link_ctx *ctx)
{
	while (ctx->held != NULL) {
		struct held *h = ctx->held;

		ctx->held = h->next;
		nng_msg_free(h->m);
		free(h);
	}
	if (ctx->held_ev != NULL)
		event_free(ctx->held_ev);
	if (ctx->ev != NULL)
		event_free(ctx->ev);
	if (ctx->inbox_open)
		(void)nng_close(ctx->inbox);
	for (size_t i = 0; i < ctx->npeers; i++)
		(void)nng_close(ctx->peers[i].sock);
	free(ctx);
}

void
link_close(struct link_ctx *ctx)
{
	char path[LINK_ADDR_MAX];

	if (ctx == NULL)
		return;
	if (ctx->dispatching) {
		/* called from the callback: finish after the batch */
		ctx->close_pending = 1;
		return;
	}
	strlcpy_rg(path, path_of(ctx->addr), sizeof(path));
	link_free(ctx);
	if (unlink(path) != 0 && errno != ENOENT)
		log_warn("link: cannot remove %s: %s", path, strerror(errno));
}

/* dispatch - decode nm and hand it to cb (when set) with dispatching
 * on, so that a link_close from cb waits; PROTO_OK or the decode error.
 * nm stays the caller's. */
static int
dispatch(struct link_ctx *ctx, link_recv_cb cb, void *arg, nng_msg *nm)
{
	struct proto_msg m;
	int rv = proto_decode(nng_msg_body(nm), nng_msg_len(nm), &m);

	if (rv != PROTO_OK)
		return rv;
	if (cb != NULL) {
		ctx->dispatching = 1;
		cb(arg, &m);
		ctx->dispatching = 0;
	}
	return PROTO_OK;
}

/* close_if_pending - the link_close a callback asked for, now. */
static void
close_if_pending(struct link_ctx *ctx)
{
	if (ctx->close_pending) {
		ctx->close_pending = 0;
		link_close(ctx);
	}
}

/* on_inbox - drain up to LINK_RECV_BATCH messages; the fd stays readable
 * while more are queued, so the loop calls again. */
static void
on_inbox(evutil_socket_t fd, short what, void *arg)
{
	struct link_ctx *ctx = arg;

	(void)fd;
	(void)what;
	for (unsigned i = 0; i < LINK_RECV_BATCH && !ctx->close_pending;
	    i++) {
		nng_msg *nm;
		int rv;

		rv = nng_recvmsg(ctx->inbox, &nm, NNG_FLAG_NONBLOCK);
		if (rv == NNG_EAGAIN || rv == NNG_ECLOSED)
			break;
		if (rv != 0) {
			if (log_due(ctx, LL_RECV))
				log_warn("link: receive on %s: %s", ctx->addr,
				    nng_strerror(rv));
			break;
		}
		rv = dispatch(ctx, ctx->cb, ctx->arg, nm);
		if (rv != PROTO_OK) {
			STAT_INC(ctx, rejected);
			if (log_due(ctx, LL_REJECT))
				log_warn("link: rejected a %zu-byte message "
				    "on %s: %s", nng_msg_len(nm), ctx->addr,
				    proto_err_name(rv));
		} else {
			STAT_INC(ctx, recv);
		}
		nng_msg_free(nm);
	}
	close_if_pending(ctx);
}

/* addr_ok - an explicit address must be an inbox directly inside our
 * run_dir: "ipc://<run_dir>/<name>" with a name that is neither empty,
 * ".", "..", nor contains '/', and a path that fits sun_path. */
static int
addr_ok(const struct link_ctx *ctx, const char *addr)
{
	size_t n = strnlen(addr, LINK_ADDR_MAX);
	const char *name;

	if (n >= LINK_ADDR_MAX || n <= ctx->prefix_len ||
	    n - LINK_SCHEME_LEN > LINK_PATH_MAX)
		return 0;
	if (strncmp(addr, ctx->addr, ctx->prefix_len) != 0)
		return 0;
	name = addr + ctx->prefix_len;
	if (strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return 0;
	return 1;
}

/* peer_drop - close a cached push socket (what it still queues is lost). */
static void
peer_drop(struct link_ctx *ctx, size_t i)
{
	(void)nng_close(ctx->peers[i].sock);
	ctx->peers[i] = ctx->peers[--ctx->npeers];
}

/*
 * peer_get - the push socket for addr, dialled on first use.  Peers idle
 * for LINK_PEER_IDLE_MS are closed on the way (a vanished relctl's
 * reply_to would otherwise be redialled forever), and the least recently
 * used one when the cache is full.  NULL on error.
 */
static struct link_peer *
peer_get(struct link_ctx *ctx, const char *addr)
{
	uint64_t now = mono_ms();
	struct link_peer *p;
	size_t i = 0, lru;
	int rv;

	while (i < ctx->npeers) {
		p = &ctx->peers[i];
		if (strcmp(p->addr, addr) == 0) {
			p->used = now;
			return p;
		}
		if (now - p->used > LINK_PEER_IDLE_MS) {
			peer_drop(ctx, i);
			continue;
		}
		i++;
	}
	if (ctx->npeers == LINK_MAX_PEERS) {
		lru = 0;
		for (i = 1; i < ctx->npeers; i++)
			if (ctx->peers[i].used < ctx->peers[lru].used)
				lru = i;
		peer_drop(ctx, lru);
	}
	p = &ctx->peers[ctx->npeers];
	p->used = now;
	if ((rv = nng_push0_open(&p->sock)) != 0) {
		log_err("link: push socket for %s: %s", addr,
		    nng_strerror(rv));
		return NULL;
	}
	if ((rv = nng_socket_set_ms(p->sock, NNG_OPT_RECONNMINT,
	    LINK_RECONN_MIN_MS)) != 0 ||
	    (rv = nng_socket_set_ms(p->sock, NNG_OPT_RECONNMAXT,
	    LINK_RECONN_MAX_MS)) != 0 ||
	    (rv = nng_socket_set_int(p->sock, NNG_OPT_SENDBUF,
	    LINK_SENDBUF)) != 0 ||
	    (rv = nng_dial(p->sock, addr, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		log_err("link: dial %s: %s", addr, nng_strerror(rv));
		(void)nng_close(p->sock);
		return NULL;
	}
	strlcpy_rg(p->addr, addr, sizeof(p->addr));
	ctx->npeers++;
	return p;
}

/* encode - msg (src filled in) as an nng message for addr; LINK_OK. */
static int
encode(struct link_ctx *ctx, const char *addr, struct proto_msg *msg,
    nng_msg **out)
{
	nng_msg *nm;
	size_t size, len;
	int rv;

	msg->src_role = (uint8_t)ctx->role;
	msg->src_instance = (uint8_t)ctx->instance;
	size = proto_encoded_size(msg);
	if (size == 0) {
		STAT_INC(ctx, send_err);
		log_err("link: cannot encode a message of type %u for %s",
		    msg->type, addr);
		return LINK_E_ENCODE;
	}
	if (size > PROTO_MAX_MSG) {
		STAT_INC(ctx, oversize);
		log_warn("link: refused a %zu-byte %s for %s (limit %u)", size,
		    proto_type_name(msg->type), addr, PROTO_MAX_MSG);
		return LINK_E_TOOBIG;
	}
	if ((rv = nng_msg_alloc(&nm, size)) != 0) {
		STAT_INC(ctx, send_err);
		log_err("link: message for %s: %s", addr, nng_strerror(rv));
		return LINK_E_SEND;
	}
	rv = proto_encode(msg, nng_msg_body(nm), size, &len);
	if (rv != PROTO_OK) {
		/* a STR longer than its u16 length prefix */
		nng_msg_free(nm);
		if (rv == PROTO_E_TOOBIG) {
			STAT_INC(ctx, oversize);
			log_warn("link: refused a %s for %s: a field is too "
				 "long",
			    proto_type_name(msg->type), addr);
			return LINK_E_TOOBIG;
		}
		STAT_INC(ctx, send_err);
		log_err("link: encode %s for %s: %s",
		    proto_type_name(msg->type), addr, proto_err_name(rv));
		return LINK_E_ENCODE;
	}
	*out = nm;
	return LINK_OK;
}

/* push - queue nm to addr without blocking; on LINK_OK nng owns nm, on
 * LINK_E_AGAIN it stays the caller's (nothing counted), else it is
 * freed and counted. */
static int
push(struct link_ctx *ctx, const char *addr, nng_msg *nm, uint8_t type)
{
	struct link_peer *p;
	int rv;

	if ((p = peer_get(ctx, addr)) == NULL) {
		nng_msg_free(nm);
		STAT_INC(ctx, send_err);
		return LINK_E_SEND;
	}
	rv = nng_sendmsg(p->sock, nm, NNG_FLAG_NONBLOCK);
	if (rv == 0) {
		STAT_INC(ctx, sent);
		return LINK_OK;
	}
	if (rv == NNG_EAGAIN)
		return LINK_E_AGAIN;
	nng_msg_free(nm);
	STAT_INC(ctx, send_err);
	if (log_due(ctx, LL_SEND))
		log_err("link: send %s to %s: %s", proto_type_name(type), addr,
		    nng_strerror(rv));
	return LINK_E_SEND;
}

/* send_to - encode msg into an nng message and queue it to addr. */
static int
send_to(struct link_ctx *ctx, const char *addr, struct proto_msg *msg)
{
	nng_msg *nm;
	int rv;

	if ((rv = encode(ctx, addr, msg, &nm)) != LINK_OK)
		return rv;
	rv = push(ctx, addr, nm, msg->type);
	if (rv == LINK_E_AGAIN) {
		nng_msg_free(nm);
		STAT_INC(ctx, eagain);
		if (log_due(ctx, LL_EAGAIN))
			log_warn("link: %s not ready, dropped a %s", addr,
			    proto_type_name(msg->type));
	}
	return rv;
}

/* --- held-back messages ---------------------------------------------------*/

static void
held_arm(struct link_ctx *ctx)
{
	struct timeval tv = { 0, LINK_HELD_RETRY_MS * 1000 };

	if (ctx->held != NULL && !evtimer_pending(ctx->held_ev, NULL))
		evtimer_add(ctx->held_ev, &tv);
}

/* held_for - is a message to addr already held (order must be kept)? */
static int
held_for(const struct link_ctx *ctx, const char *addr)
{
	for (const struct held *h = ctx->held; h != NULL; h = h->next)
		if (strcmp(h->addr, addr) == 0)
			return 1;
	return 0;
}

/* held_giveup - tell the owner about messages given up, oldest first,
 * decoded as they were sent; then free them.  Last in held_retry: a
 * link_close from the callback happens here. */
static void
held_giveup(struct link_ctx *ctx, struct held *list)
{
	struct held *h;

	while ((h = list) != NULL) {
		list = h->next;
		if (!ctx->close_pending)
			(void)dispatch(ctx, ctx->giveup_cb, ctx->giveup_arg,
			    h->m);
		nng_msg_free(h->m);
		free(h);
	}
	close_if_pending(ctx);
}

/* held_retry - send what the peers take now, oldest first; a peer that
 * is still busy keeps the rest of its messages, in order. */
static void
held_retry(evutil_socket_t fd, short what, void *arg)
{
	struct link_ctx *ctx = arg;
	const char *busy[LINK_MAX_PEERS + 1];
	unsigned nbusy = 0;
	uint64_t now = mono_ms();
	struct held **pp = &ctx->held, *h, *gone = NULL, **gone_tail = &gone;

	(void)fd;
	(void)what;
	while ((h = *pp) != NULL) {
		int skip = 0, rv;

		for (unsigned b = 0; b < nbusy; b++)
			skip |= strcmp(busy[b], h->addr) == 0;
		if (skip) {
			pp = &h->next;
			continue;
		}
		if (now > h->deadline) {
			STAT_INC(ctx, held_dropped);
			if (log_due(ctx, LL_HELD))
				log_warn("link: %s busy too long, gave up a "
					 "%s",
				    h->addr, proto_type_name(h->type));
			*pp = h->next;
			ctx->nheld--;
			h->next = NULL;
			*gone_tail = h;
			gone_tail = &h->next;
			continue;
		}
		rv = push(ctx, h->addr, h->m, h->type);
		if (rv == LINK_E_AGAIN) {
			if (nbusy < RG_NELEM(busy))
				busy[nbusy++] = h->addr;
			pp = &h->next;
			continue;
		}
		if (rv == LINK_OK)
			STAT_INC(ctx, held_sent);
		*pp = h->next;
		ctx->nheld--;
		free(h);
	}
	ctx->held_tail = pp;
	held_arm(ctx);
	/* last: the callback may hold back new messages */
	held_giveup(ctx, gone);
}

void
link_on_giveup(struct link_ctx *ctx, link_recv_cb cb, void *arg)
{
	ctx->giveup_cb = cb;
	ctx->giveup_arg = arg;
}

int
link_send_held(struct link_ctx *ctx, enum rg_role role, unsigned instance,
    struct proto_msg *msg, unsigned wait_ms)
{
	char addr[LINK_ADDR_MAX];
	struct held *h;
	nng_msg *nm;
	int rv;

	if (link_addr(addr, sizeof(addr), ctx->run_dir, role, instance) !=
	    0) {
		STAT_INC(ctx, send_err);
		return LINK_E_ADDR;
	}
	if ((rv = encode(ctx, addr, msg, &nm)) != LINK_OK)
		return rv;
	if (!held_for(ctx, addr)) {
		rv = push(ctx, addr, nm, msg->type);
		if (rv != LINK_E_AGAIN)
			return rv;
	}
	if (ctx->nheld >= LINK_HELD_MAX) {
		nng_msg_free(nm);
		STAT_INC(ctx, eagain);
		if (log_due(ctx, LL_EAGAIN))
			log_warn("link: %s not ready and %u messages held, "
				 "dropped a %s",
			    addr, ctx->nheld, proto_type_name(msg->type));
		return LINK_E_AGAIN;
	}
	h = xcalloc(1, sizeof(*h));
	h->deadline = mono_ms() + wait_ms;
	h->m = nm;
	h->type = msg->type;
	memcpy(h->addr, addr, sizeof(h->addr));
	*ctx->held_tail = h;
	ctx->held_tail = &h->next;
	ctx->nheld++;
	STAT_INC(ctx, held);
	held_arm(ctx);
	return LINK_OK;
}

int
link_send(struct link_ctx *ctx, enum rg_role role, unsigned instance,
    struct proto_msg *msg)
{
	char addr[LINK_ADDR_MAX];

	if (link_addr(addr, sizeof(addr), ctx->run_dir, role,
	    instance) != 0) {
		STAT_INC(ctx, send_err);
		log_err("link: no address for %s.%u", role_name(role),
		    instance);
		return LINK_E_ADDR;
	}
	return send_to(ctx, addr, msg);
}

int
link_send_addr(struct link_ctx *ctx, const char *addr,
    struct proto_msg *msg)
{
	if (addr == NULL || !addr_ok(ctx, addr)) {
		STAT_INC(ctx, send_err);
		if (log_due(ctx, LL_SEND))
			log_warn("link: refused reply address %.*s",
			    LINK_ADDR_MAX, addr ? addr : "(null)");
		return LINK_E_ADDR;
	}
	return send_to(ctx, addr, msg);
}
