/*
 * client - see client.h.
 *
 * A call (struct httpc_call) goes through NEW (a start event pending, so
 * that no callback runs inside httpc_request) -> DNS -> CONNECT ->
 * HANDSHAKE (https) -> SEND -> HEAD -> BODY -> DONE, or straight from NEW
 * to SEND on a pooled connection.  A connection (struct conn) belongs to
 * one call at a time or sits in the idle pool; its one event is re-armed
 * with the direction the socket or mbedTLS wants next.  Each call has
 * one timer: the start kick, then the earliest of its total deadline and
 * its phase deadline (connect, first byte, idle between bytes).
 *
 * Re-entrancy: every entry from the loop holds the call (busy); a call
 * that ends (finish) is freed only when the last hold is released, so
 * the application may cancel from inside a callback, and the code after
 * a callback checks whether the call is still going before touching its
 * connection.
 */
#include "http/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "http/respparse.h"
#include "util/log.h"
#include "util/util.h"

#define SYSTEM_CA         "/etc/ssl/certs/ca-certificates.crt"
#define HEAD_MAX          65536 /* response head incl. interim heads */
#define READ_CHUNK        16384
#define MAX_INTERIM       32 /* 1xx heads before the final one */
#define MAX_ADDRS         8
#define READS_PER_EVENT   32
#define DEF_CONNECT_MS    10000
#define DEF_FIRST_BYTE_MS 60000
#define DEF_IDLE_MS       60000
#define DEF_IDLE_PER_ORIG 8
#define DEF_IDLE_TOTAL    64
#define DEF_POOL_IDLE_MS  30000

#define ST_ADD(c, name, n)                                                    \
	((void)__atomic_fetch_add(                                            \
	    &(c)->st->name, (uint64_t)(n), __ATOMIC_RELAXED))
#define ST_SUB(c, name, n)                                                    \
	((void)__atomic_fetch_sub(                                            \
	    &(c)->st->name, (uint64_t)(n), __ATOMIC_RELAXED))

enum cstate {
	CS_NEW,       /* start kick pending */
	CS_DNS,       /* evdns_getaddrinfo in progress */
	CS_CONNECT,   /* non-blocking connect in progress */
	CS_HANDSHAKE, /* TLS handshake */
	CS_SEND,      /* writing the request */
	CS_HEAD,      /* reading the response head */
	CS_BODY,      /* reading the body */
	CS_DONE,      /* ended; freed when the last hold goes */
};

enum phase { PH_NONE, PH_CONNECT, PH_FIRST_BYTE, PH_IDLE };

struct httpc_resp {
	const char *buf;
	const struct httpr *p;
};

struct conn {
	struct httpc *c;
	struct conn *prev, *next; /* idle list */
	struct httpc_call *call;  /* NULL: idle */
	int fd;
	int tls;       /* mbedtls_ssl_setup done */
	int sys_errno; /* last errno seen by the TLS bio */
	char *origin;
	struct event ev;
	mbedtls_ssl_context ssl;
};

struct httpc_call {
	struct httpc *c;
	struct httpc_call *prev, *next; /* calls in progress */
	struct httpc_cb cb;
	void *arg;
	enum cstate st;
	unsigned busy;
	int cancelled; /* httpc_cancel: no on_done */
	int https;
	char *host; /* lower case, no brackets */
	uint16_t port;
	char *origin; /* "https://host:port" */
	int head_req;
	char *out; /* the whole request */
	size_t out_len, out_pos;
	/* limits and deadlines (mono ms; 0: none) */
	uint64_t connect_ms, first_byte_ms, idle_ms, max_body;
	uint64_t t_total, t_phase, last_rx;
	enum phase phase;
	struct event tmr;
	/* addresses */
	struct evdns_getaddrinfo_request *dnsreq;
	int dns_pending;
	struct sockaddr_storage addrs[MAX_ADDRS];
	socklen_t addrlen[MAX_ADDRS];
	unsigned naddr, iaddr;
	int last_errno;
	struct conn *k;
	/* response */
	struct httpr p;
	char *in;
	size_t in_len, in_cap, in_off;
	unsigned ninterim;
	int got_byte, reused, retried, fresh_only;
	struct httpc_result res;
	char detail[512];
};

struct httpc {
	struct event_base *base;
	struct evdns_base *dns;
	int own_dns;
	int freeing;
	int max_idle_per_origin;
	unsigned max_idle_total, nidle;
	struct timeval idle_tv;
	struct httpc_stats own;
	struct httpc_stats *st;
	struct httpc_call *calls;
	struct conn *idle_head, *idle_tail; /* most recent first */
	int has_ca;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_x509_crt ca;
	mbedtls_ssl_config conf;
};

static void conn_cb(evutil_socket_t fd, short what, void *arg);
static void tmr_cb(evutil_socket_t fd, short what, void *arg);
static void begin_connect(struct httpc_call *call);
static void send_start(struct httpc_call *call);

/* --- result table ----------------------------------------------------- */

static const size_t res_off[] = {
#define HTTPC_RES_OFF(name, field, text)                                      \
	[HTTPC_##name] = offsetof(struct httpc_stats, field),
	HTTPC_RESULTS(HTTPC_RES_OFF)
#undef HTTPC_RES_OFF
};

const char *
httpc_rc_name(enum httpc_rc rc)
{
	switch (rc) {
#define HTTPC_RC_NAME(name, field, text)                                      \
	case HTTPC_##name:                                                    \
		return #name;
		HTTPC_RESULTS(HTTPC_RC_NAME)
#undef HTTPC_RC_NAME
	}
	return "?";
}

const char *
httpc_rc_text(enum httpc_rc rc)
{
	switch (rc) {
#define HTTPC_RC_TEXT(name, field, text)                                      \
	case HTTPC_##name:                                                    \
		return text;
		HTTPC_RESULTS(HTTPC_RC_TEXT)
#undef HTTPC_RC_TEXT
	}
	return "?";
}

/* --- connections ------------------------------------------------------ */

static int
bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct conn *k = ctx;
	ssize_t n;

	do
		n = send(k->fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0) {
		ST_ADD(k->c, bytes_out, n);
		return (int)n;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	k->sys_errno = errno;
	if (errno == EPIPE || errno == ECONNRESET)
		return MBEDTLS_ERR_NET_CONN_RESET;
	return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int
bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct conn *k = ctx;
	ssize_t n;

	do
		n = recv(k->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n >= 0) {
		ST_ADD(k->c, bytes_in, n);
		return (int)n;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return MBEDTLS_ERR_SSL_WANT_READ;
	k->sys_errno = errno;
	if (errno == ECONNRESET)
		return MBEDTLS_ERR_NET_CONN_RESET;
	return MBEDTLS_ERR_NET_RECV_FAILED;
}

static struct conn *
conn_new(struct httpc *c, int fd, const char *origin)
{
	struct conn *k = xcalloc(1, sizeof(*k));

	k->c = c;
	k->fd = fd;
	k->origin = xstrdup(origin);
	event_assign(&k->ev, c->base, fd, 0, conn_cb, k);
	return k;
}

static void
conn_close(struct conn *k)
{
	if (k == NULL)
		return;
	event_del(&k->ev);
	if (k->tls)
		mbedtls_ssl_free(&k->ssl);
	close(k->fd);
	free(k->origin);
	free(k);
}

/* conn_arm - wait for what (EV_READ/EV_WRITE), with an optional timeout.
 * Without a timeout the event persists, and asking again for what is
 * already armed changes nothing: a stream read event after event costs
 * no epoll_ctl (a one-shot event cost two per read: libevent's removal
 * when it fired, and the add here). */
static void
conn_arm(struct conn *k, short what, const struct timeval *tv)
{
	short ev = tv == NULL ? (short)(what | EV_PERSIST) : what;

	if (tv == NULL && event_get_events(&k->ev) == ev &&
	    event_pending(&k->ev, what, NULL))
		return;
	event_del(&k->ev);
	event_assign(&k->ev, k->c->base, k->fd, ev, conn_cb, k);
	event_add(&k->ev, tv);
}

/* Results of conn_send / conn_recv besides a byte count. */
#define IO_EOF   0
#define IO_AGAIN (-1)
#define IO_ERR   (-2)

/* conn_io_err - the text of the last I/O error of k (or r, from TLS). */
static void
conn_io_err(struct conn *k, int r, char *buf, size_t len)
{
	if (k->tls && r != 0 && k->sys_errno == 0)
		mbedtls_strerror(r, buf, len);
	else
		snprintf(buf, len, "%s", strerror(k->sys_errno));
}

/* conn_send - >0 bytes, IO_AGAIN (*want set) or IO_ERR (*tlserr). */
static ssize_t
conn_send(
    struct conn *k, const char *buf, size_t len, short *want, int *tlserr)
{
	int r;

	*tlserr = 0;
	if (!k->tls) {
		r = bio_send(k, (const unsigned char *)buf, len);
		if (r >= 0)
			return r;
		if (r == MBEDTLS_ERR_SSL_WANT_WRITE) {
			*want = EV_WRITE;
			return IO_AGAIN;
		}
		return IO_ERR;
	}
	r = mbedtls_ssl_write(&k->ssl, (const unsigned char *)buf, len);
	if (r >= 0)
		return r;
	if (r == MBEDTLS_ERR_SSL_WANT_READ ||
	    r == MBEDTLS_ERR_SSL_WANT_WRITE) {
		*want = r == MBEDTLS_ERR_SSL_WANT_READ ? EV_READ : EV_WRITE;
		return IO_AGAIN;
	}
	*tlserr = r;
	return IO_ERR;
}

/* conn_recv - >0 bytes, IO_EOF, IO_AGAIN (*want set), IO_ERR (*tlserr). */
static ssize_t
conn_recv(struct conn *k, char *buf, size_t len, short *want, int *tlserr)
{
	int r;

	*tlserr = 0;
	if (!k->tls) {
		r = bio_recv(k, (unsigned char *)buf, len);
		if (r >= 0)
			return r;
		if (r == MBEDTLS_ERR_SSL_WANT_READ) {
			*want = EV_READ;
			return IO_AGAIN;
		}
		return IO_ERR;
	}
	r = mbedtls_ssl_read(&k->ssl, (unsigned char *)buf, len);
	if (r > 0)
		return r;
	if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ||
	    r == MBEDTLS_ERR_SSL_CONN_EOF)
		return IO_EOF;
	if (r == MBEDTLS_ERR_SSL_WANT_READ ||
	    r == MBEDTLS_ERR_SSL_WANT_WRITE) {
		*want = r == MBEDTLS_ERR_SSL_WANT_READ ? EV_READ : EV_WRITE;
		return IO_AGAIN;
	}
	*tlserr = r;
	return IO_ERR;
}

/* --- the idle pool ---------------------------------------------------- */

static void
pool_unlink(struct httpc *c, struct conn *k)
{
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		c->idle_head = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
	else
		c->idle_tail = k->prev;
	k->prev = k->next = NULL;
	c->nidle--;
	ST_SUB(c, idle, 1);
}

/* pool_drop - close an idle connection (server, timeout, bound). */
static void
pool_drop(struct httpc *c, struct conn *k)
{
	pool_unlink(c, k);
	ST_ADD(c, idle_closed, 1);
	conn_close(k);
}

static struct conn *
pool_take(struct httpc *c, const char *origin)
{
	struct conn *k;

	for (k = c->idle_head; k != NULL; k = k->next) {
		if (strcmp(k->origin, origin) == 0) {
			pool_unlink(c, k);
			event_del(&k->ev);
			return k;
		}
	}
	return NULL;
}

/* pool_put - keep k for its origin, or close it if the pool is full. */
static void
pool_put(struct httpc *c, struct conn *k)
{
	struct conn *o, *oldest = NULL;
	int same = 0;

	if (c->max_idle_per_origin < 0 ||
	    (k->tls && mbedtls_ssl_check_pending(&k->ssl))) {
		conn_close(k);
		return;
	}
	for (o = c->idle_head; o != NULL; o = o->next) {
		if (strcmp(o->origin, k->origin) == 0) {
			same++;
			oldest = o;
		}
	}
	if (same >= c->max_idle_per_origin)
		pool_drop(c, oldest);
	else if (c->nidle >= c->max_idle_total && c->idle_tail != NULL)
		pool_drop(c, c->idle_tail);
	k->call = NULL;
	k->prev = NULL;
	k->next = c->idle_head;
	if (c->idle_head != NULL)
		c->idle_head->prev = k;
	else
		c->idle_tail = k;
	c->idle_head = k;
	c->nidle++;
	ST_ADD(c, idle, 1);
	ST_ADD(c, pooled, 1);
	/* readable while idle (EOF, alert, stray bytes) or timed out: drop */
	conn_arm(k, EV_READ, &c->idle_tv);
}

/* --- calls: holding, ending ------------------------------------------- */

static void
call_hold(struct httpc_call *call)
{
	call->busy++;
}

static void
call_free(struct httpc_call *call)
{
	struct httpc *c = call->c;

	event_del(&call->tmr);
	if (call->prev != NULL)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next != NULL)
		call->next->prev = call->prev;
	free(call->host);
	free(call->origin);
	free(call->out);
	free(call->in);
	free(call);
}

static void
call_release(struct httpc_call *call)
{
	if (--call->busy == 0 && call->st == CS_DONE)
		call_free(call);
}

/* finish - end the call with rc: close or keep its connection (already
 * done by the caller for OK), count, call on_done unless cancelled. */
static void
finish(struct httpc_call *call, enum httpc_rc rc)
{
	struct httpc *c = call->c;
	struct evdns_getaddrinfo_request *req;

	if (call->st == CS_DONE)
		return;
	call->st = CS_DONE;
	if ((req = call->dnsreq) != NULL) {
		call->dnsreq = NULL;
		evdns_getaddrinfo_cancel(req); /* calls dns_cb: CANCEL */
	}
	event_del(&call->tmr);
	conn_close(call->k);
	call->k = NULL;
	(void)__atomic_fetch_add(
	    (uint64_t *)((char *)c->st + res_off[rc]), 1, __ATOMIC_RELAXED);
	ST_SUB(c, active, 1);
	if (call->cancelled)
		return;
	call->res.rc = rc;
	call->res.detail = call->detail;
	call->res.body_bytes = call->p.body_bytes;
	call->res.reused = call->reused;
	call->cb.on_done(call->arg, &call->res);
}

/* fail - end the call with an error and a detail line. */
static void fail(struct httpc_call *call, enum httpc_rc rc, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
fail(struct httpc_call *call, enum httpc_rc rc, const char *fmt, ...)
{
	va_list ap;

	if (call->st == CS_DONE)
		return;
	va_start(ap, fmt);
	vsnprintf(call->detail, sizeof(call->detail), fmt, ap);
	va_end(ap);
	log_debug("httpc %s %s: %s: %s", call->origin, httpc_rc_name(rc),
	    httpc_rc_text(rc), call->detail);
	finish(call, rc);
}

/* complete - the response is complete; reusable: no byte after it. */
static void
complete(struct httpc_call *call, int reusable)
{
	struct conn *k = call->k;

	call->k = NULL;
	if (reusable && call->p.keep_alive)
		pool_put(call->c, k);
	else
		conn_close(k);
	finish(call, HTTPC_OK);
}

/* --- timers ----------------------------------------------------------- */

static void
arm_timer(struct httpc_call *call)
{
	uint64_t now = mono_ms(), d = UINT64_MAX, ph = 0;
	struct timeval tv;

	if (call->t_total != 0)
		d = call->t_total;
	if (call->phase == PH_IDLE && call->idle_ms != 0)
		ph = call->last_rx + call->idle_ms;
	else if (call->phase == PH_CONNECT || call->phase == PH_FIRST_BYTE)
		ph = call->t_phase;
	if (ph != 0 && ph < d)
		d = ph;
	if (d == UINT64_MAX) {
		event_del(&call->tmr);
		return;
	}
	d = d > now ? d - now : 0;
	tv.tv_sec = (time_t)(d / 1000);
	tv.tv_usec = (suseconds_t)(d % 1000) * 1000;
	event_add(&call->tmr, &tv);
}

static void
set_phase(struct httpc_call *call, enum phase ph)
{
	uint64_t lim = 0;

	call->phase = ph;
	if (ph == PH_CONNECT)
		lim = call->connect_ms;
	else if (ph == PH_FIRST_BYTE)
		lim = call->first_byte_ms;
	call->t_phase = lim != 0 ? mono_ms() + lim : 0;
	if ((ph == PH_CONNECT || ph == PH_FIRST_BYTE) && lim == 0)
		call->phase = PH_NONE;
	arm_timer(call);
}

static void
tmr_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpc_call *call = arg;
	uint64_t now;

	(void)fd;
	(void)what;
	call_hold(call);
	if (call->st == CS_NEW) {
		begin_connect(call);
		goto out;
	}
	if (call->st == CS_DONE)
		goto out;
	now = mono_ms();
	if (call->t_total != 0 && now >= call->t_total)
		fail(call, HTTPC_E_TIMEOUT_TOTAL, "total timeout");
	else if (call->phase == PH_CONNECT && now >= call->t_phase)
		fail(call, HTTPC_E_TIMEOUT_CONNECT, "%s",
		    call->st == CS_DNS           ? "resolving"
		        : call->st == CS_CONNECT ? "TCP connect"
		                                 : "TLS handshake");
	else if (call->phase == PH_FIRST_BYTE && now >= call->t_phase)
		fail(call, HTTPC_E_TIMEOUT_FIRST_BYTE, "no response");
	else if (call->phase == PH_IDLE && call->idle_ms != 0 &&
	    now >= call->last_rx + call->idle_ms)
		fail(call, HTTPC_E_TIMEOUT_IDLE, "response stalled");
	else
		arm_timer(call);
out:
	call_release(call);
}

/* --- connecting ------------------------------------------------------- */

/* retry - the reused connection failed before any response byte: once,
 * on a fresh connection. */
static void
retry(struct httpc_call *call)
{
	conn_close(call->k);
	call->k = NULL;
	call->retried = 1;
	call->reused = 0;
	call->fresh_only = 1;
	call->in_len = call->in_off = 0;
	httpr_init(&call->p, HEAD_MAX, call->head_req);
	ST_ADD(call->c, retries, 1);
	begin_connect(call);
}

/* can_retry - may a failure now be retried on a fresh connection? */
static int
can_retry(const struct httpc_call *call)
{
	return call->reused && !call->retried && !call->got_byte;
}

static void
connect_next(struct httpc_call *call)
{
	struct httpc *c = call->c;
	int fd, one = 1;

	while (call->iaddr < call->naddr) {
		unsigned i = call->iaddr++;
		const struct sockaddr *sa =
		    (const struct sockaddr *)&call->addrs[i];

		fd = socket(sa->sa_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			call->last_errno = errno;
			continue;
		}
		(void)setsockopt(
		    fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ST_ADD(c, connects, 1);
		if (connect(fd, sa, call->addrlen[i]) == 0 ||
		    errno == EINPROGRESS) {
			call->st = CS_CONNECT;
			call->k = conn_new(c, fd, call->origin);
			call->k->call = call;
			conn_arm(call->k, EV_WRITE, NULL);
			return;
		}
		call->last_errno = errno;
		close(fd);
	}
	fail(call, HTTPC_E_CONNECT, "connect %s:%u: %s", call->host,
	    call->port,
	    call->last_errno ? strerror(call->last_errno) : "no address");
}

static void
dns_cb(int err, struct evutil_addrinfo *res, void *arg)
{
	struct httpc_call *call = arg;
	struct evutil_addrinfo *ai;

	if (err == EVUTIL_EAI_CANCEL) { /* from finish(): nothing to do */
		if (res != NULL)
			evutil_freeaddrinfo(res);
		return;
	}
	call_hold(call);
	call->dnsreq = NULL;
	call->dns_pending = 0;
	if (call->st != CS_DNS) {
		if (res != NULL)
			evutil_freeaddrinfo(res);
		goto out;
	}
	if (err != 0) {
		if (res != NULL)
			evutil_freeaddrinfo(res);
		fail(call, HTTPC_E_DNS, "resolve %s: %s", call->host,
		    evutil_gai_strerror(err));
		goto out;
	}
	call->naddr = call->iaddr = 0;
	for (ai = res; ai != NULL && call->naddr < MAX_ADDRS;
	     ai = ai->ai_next) {
		unsigned i = call->naddr;

		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(call->addrs[i]))
			continue;
		memcpy(&call->addrs[i], ai->ai_addr, ai->ai_addrlen);
		call->addrlen[i] = (socklen_t)ai->ai_addrlen;
		if (ai->ai_family == AF_INET)
			((struct sockaddr_in *)&call->addrs[i])->sin_port =
			    htons(call->port);
		else
			((struct sockaddr_in6 *)&call->addrs[i])->sin6_port =
			    htons(call->port);
		call->naddr++;
	}
	if (res != NULL)
		evutil_freeaddrinfo(res);
	if (call->naddr == 0)
		fail(call, HTTPC_E_DNS, "resolve %s: no address", call->host);
	else
		connect_next(call);
out:
	call_release(call);
}

/* numeric_addr - fill the address list for an IP literal; 0 if not. */
static int
numeric_addr(struct httpc_call *call)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&call->addrs[0];
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&call->addrs[0];

	memset(&call->addrs[0], 0, sizeof(call->addrs[0]));
	if (evutil_inet_pton(AF_INET, call->host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(call->port);
		call->addrlen[0] = sizeof(*s4);
	} else if (evutil_inet_pton(AF_INET6, call->host, &s6->sin6_addr) ==
	    1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(call->port);
		call->addrlen[0] = sizeof(*s6);
	} else {
		return 0;
	}
	call->naddr = 1;
	call->iaddr = 0;
	return 1;
}

/* begin_connect - from the start kick or a retry: a pooled connection,
 * else resolve and connect (the connect deadline starts here). */
static void
begin_connect(struct httpc_call *call)
{
	struct httpc *c = call->c;
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;
	struct conn *k;

	if (!call->fresh_only && (k = pool_take(c, call->origin)) != NULL) {
		call->k = k;
		k->call = call;
		call->reused = 1;
		ST_ADD(c, reused, 1);
		send_start(call);
		return;
	}
	set_phase(call, PH_CONNECT);
	if (numeric_addr(call)) {
		connect_next(call);
		return;
	}
	call->st = CS_DNS;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	call->dns_pending = 1;
	req =
	    evdns_getaddrinfo(c->dns, call->host, NULL, &hints, dns_cb, call);
	if (call->dns_pending) /* else answered at once: dns_cb ran */
		call->dnsreq = req;
}

/* --- TLS, sending ----------------------------------------------------- */

static void
do_handshake(struct httpc_call *call)
{
	struct conn *k = call->k;
	char err[200], info[300], *s;
	uint32_t flags;
	int r;

	r = mbedtls_ssl_handshake(&k->ssl);
	if (r == 0) {
		ST_ADD(call->c, tls_handshakes, 1);
		send_start(call);
		return;
	}
	if (r == MBEDTLS_ERR_SSL_WANT_READ) {
		conn_arm(k, EV_READ, NULL);
		return;
	}
	if (r == MBEDTLS_ERR_SSL_WANT_WRITE) {
		conn_arm(k, EV_WRITE, NULL);
		return;
	}
	if (r == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
		flags = mbedtls_ssl_get_verify_result(&k->ssl);
		call->res.tls_verify_flags = flags;
		info[0] = '\0';
		mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
		for (s = info; *s != '\0'; s++)
			if (*s == '\n')
				*s = s[1] != '\0' ? ';' : '\0';
		fail(call, HTTPC_E_TLS, "certificate of %s: %s", call->host,
		    info);
		return;
	}
	conn_io_err(k, r, err, sizeof(err));
	fail(call, HTTPC_E_TLS, "TLS handshake with %s: %s", call->host, err);
}

static void
tls_start(struct httpc_call *call)
{
	struct conn *k = call->k;
	char err[200];
	int r;

	mbedtls_ssl_init(&k->ssl);
	k->tls = 1;
	if ((r = mbedtls_ssl_setup(&k->ssl, &call->c->conf)) != 0 ||
	    (r = mbedtls_ssl_set_hostname(&k->ssl, call->host)) != 0) {
		mbedtls_strerror(r, err, sizeof(err));
		fail(call, HTTPC_E_TLS, "TLS setup: %s", err);
		return;
	}
	mbedtls_ssl_set_bio(&k->ssl, k, bio_send, bio_recv, NULL);
	call->st = CS_HANDSHAKE;
	do_handshake(call);
}

static void
do_send(struct httpc_call *call)
{
	struct conn *k = call->k;
	char err[200];
	ssize_t n;
	short want;
	int tlserr;

	while (call->out_pos < call->out_len) {
		n = conn_send(k, call->out + call->out_pos,
		    call->out_len - call->out_pos, &want, &tlserr);
		if (n == IO_AGAIN) {
			conn_arm(k, want, NULL);
			return;
		}
		if (n < 0) {
			if (can_retry(call)) {
				retry(call);
				return;
			}
			conn_io_err(k, tlserr, err, sizeof(err));
			fail(call, HTTPC_E_RESET, "sending the request: %s",
			    err);
			return;
		}
		call->out_pos += (size_t)n;
	}
	call->st = CS_HEAD;
	set_phase(call, PH_FIRST_BYTE);
	conn_arm(k, EV_READ, NULL);
}

static void
send_start(struct httpc_call *call)
{
	call->st = CS_SEND;
	call->out_pos = 0;
	do_send(call);
}

/* --- reading ---------------------------------------------------------- */

/* terminate - NUL-terminate the views of the head in place. */
static void
terminate(struct httpc_call *call)
{
	struct httpr *p = &call->p;
	unsigned i;

	call->in[p->reason.off + p->reason.len] = '\0';
	for (i = 0; i < p->nfields; i++) {
		call->in[p->fields[i].name.off + p->fields[i].name.len] = '\0';
		call->in[p->fields[i].value.off + p->fields[i].value.len] =
		    '\0';
	}
}

/* got_head - the final head is parsed; 0 to go on. */
static int
got_head(struct httpc_call *call)
{
	struct httpc_resp resp;
	int r = 0;

	call->res.status = (int)call->p.status;
	if (call->cb.on_head != NULL) {
		terminate(call);
		resp.buf = call->in;
		resp.p = &call->p;
		r = call->cb.on_head(call->arg, &resp);
		if (call->st == CS_DONE)
			return -1;
		if (r != 0) {
			fail(call, HTTPC_E_CANCELLED, "aborted by on_head");
			return -1;
		}
	}
	call->st = CS_BODY;
	call->in_off = call->p.head_len;
	return 0;
}

/* process - parse what is in call->in; 0: more bytes needed, -1: the
 * call ended (or was cancelled). */
static int
process(struct httpc_call *call)
{
	size_t used, doff, dlen, rest;
	int rc;

	while (call->st == CS_HEAD) {
		rc = httpr_head(&call->p, call->in, call->in_len);
		if (rc == HTTPR_AGAIN)
			return 0;
		if (rc == HTTPR_ERROR) {
			fail(call, HTTPC_E_PROTOCOL, "response head: %s",
			    httpr_err_text(call->p.err));
			return -1;
		}
		if (call->p.status >= 200) {
			if (got_head(call) < 0)
				return -1;
			break;
		}
		if (call->p.status == 101 || ++call->ninterim > MAX_INTERIM) {
			fail(call, HTTPC_E_PROTOCOL, "unexpected %u response",
			    call->p.status);
			return -1;
		}
		rest = call->in_len - call->p.head_len;
		memmove(call->in, call->in + call->p.head_len, rest);
		call->in_len = rest;
		httpr_init(&call->p, HEAD_MAX, call->head_req);
	}
	do {
		rc = httpr_body(&call->p, call->in + call->in_off,
		    call->in_len - call->in_off, call->max_body, &used, &doff,
		    &dlen);
		if (rc == HTTPR_ERROR) {
			fail(call,
			    call->p.err == HTTPR_E_BODY_TOO_LARGE
			        ? HTTPC_E_TOO_LARGE
			        : HTTPC_E_PROTOCOL,
			    "response body: %s", httpr_err_text(call->p.err));
			return -1;
		}
		if (dlen > 0 && call->cb.on_data != NULL) {
			call->cb.on_data(
			    call->arg, call->in + call->in_off + doff, dlen);
			if (call->st == CS_DONE)
				return -1;
		}
		call->in_off += used;
		if (rc == HTTPR_DONE) {
			complete(call, call->in_off == call->in_len);
			return -1;
		}
	} while (call->in_off < call->in_len);
	call->in_len = call->in_off = 0;
	return 0;
}

/* on_eof - the server closed (or reset: err) while we read. */
static void
on_eof(struct httpc_call *call, int err, int tlserr)
{
	char why[200];

	if (err)
		conn_io_err(call->k, tlserr, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "closed by the server");
	if (call->st == CS_HEAD) {
		if (call->in_len == 0 && can_retry(call)) {
			retry(call);
			return;
		}
		fail(call, HTTPC_E_RESET, "%s %s",
		    call->in_len == 0 ? "before the response:"
		                      : "in the response head:",
		    why);
		return;
	}
	if (!err && httpr_eof(&call->p) == HTTPR_DONE) {
		complete(call, 0);
		return;
	}
	fail(call, HTTPC_E_RESET, "after %llu body bytes: %s",
	    (unsigned long long)call->p.body_bytes, why);
}

static void
do_read(struct httpc_call *call)
{
	struct conn *k = call->k;
	size_t room;
	ssize_t n;
	short want;
	int tlserr, i;

	for (i = 0; i < READS_PER_EVENT; i++) {
		room = call->in_cap - call->in_len;
		if (room < 1024 && call->in_cap < HEAD_MAX + READ_CHUNK) {
			call->in_cap =
			    call->in_cap ? call->in_cap * 2 : READ_CHUNK;
			if (call->in_cap > HEAD_MAX + READ_CHUNK)
				call->in_cap = HEAD_MAX + READ_CHUNK;
			call->in = xrealloc(call->in, call->in_cap);
			room = call->in_cap - call->in_len;
		}
		n = conn_recv(
		    k, call->in + call->in_len, room, &want, &tlserr);
		if (n == IO_AGAIN) {
			conn_arm(k, want, NULL);
			return;
		}
		if (n == IO_EOF || n == IO_ERR) {
			on_eof(call, n == IO_ERR, tlserr);
			return;
		}
		call->last_rx = mono_ms();
		if (!call->got_byte) {
			call->got_byte = 1;
			set_phase(call, PH_IDLE);
		}
		call->in_len += (size_t)n;
		if (process(call) < 0)
			return;
	}
	/* let other events run; decrypted bytes may wait inside mbedTLS */
	if (k->tls && mbedtls_ssl_get_bytes_avail(&k->ssl) > 0)
		event_active(&k->ev, EV_READ, 1);
	else
		conn_arm(k, EV_READ, NULL);
}

static void
on_connected(struct httpc_call *call)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(call->k->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		call->last_errno = err;
		conn_close(call->k);
		call->k = NULL;
		connect_next(call);
		return;
	}
	if (call->https)
		tls_start(call);
	else
		send_start(call);
}

static void
conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *k = arg;
	struct httpc_call *call = k->call;

	(void)fd;
	(void)what;
	if (call == NULL) { /* idle: the server closed, or the timeout */
		pool_drop(k->c, k);
		return;
	}
	call_hold(call);
	switch (call->st) {
	case CS_CONNECT:
		on_connected(call);
		break;
	case CS_HANDSHAKE:
		do_handshake(call);
		break;
	case CS_SEND:
		do_send(call);
		break;
	case CS_HEAD:
	case CS_BODY:
		do_read(call);
		break;
	default:
		break;
	}
	call_release(call);
}

/* --- requests --------------------------------------------------------- */

static int
is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= 'A' && ch <= 'Z') || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int
is_token(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!is_tchar((unsigned char)*s))
			return 0;
	return 1;
}

/* parse_url - split an absolute http(s) URL; 0 or -1. */
static int
parse_url(struct httpc_call *call, const char *url, char **target)
{
	const char *p = url, *auth, *ae, *hs, *he, *t, *te;
	unsigned long port;
	char *end;
	size_t i;

	if (strncasecmp(p, "http://", 7) == 0) {
		p += 7;
	} else if (strncasecmp(p, "https://", 8) == 0) {
		call->https = 1;
		p += 8;
	} else {
		return -1;
	}
	auth = p;
	ae = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(ae - auth)) != NULL)
		return -1;
	port = call->https ? 443 : 80;
	if (*auth == '[') {
		hs = auth + 1;
		he = memchr(hs, ']', (size_t)(ae - hs));
		if (he == NULL)
			return -1;
		p = he + 1;
	} else {
		hs = auth;
		he = memchr(hs, ':', (size_t)(ae - hs));
		if (he == NULL)
			he = ae;
		p = he;
	}
	if (p < ae) {
		if (*p != ':')
			return -1;
		p++;
		if (p < ae) {
			if (*p < '0' || *p > '9')
				return -1;
			port = strtoul(p, &end, 10);
			if (end != ae || port == 0 || port > 65535)
				return -1;
		}
	}
	if (he == hs || he - hs > 253)
		return -1;
	call->host = xmalloc((size_t)(he - hs) + 1);
	for (i = 0; hs + i < he; i++) {
		unsigned char ch = (unsigned char)hs[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		        (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '.' ||
		        ch == '_' || (*auth == '[' && ch == ':')))
			return -1;
		call->host[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	call->host[i] = '\0';
	if (*auth == '[') {
		struct in6_addr a6;
		if (evutil_inet_pton(AF_INET6, call->host, &a6) != 1)
			return -1;
	}
	call->port = (uint16_t)port;
	t = ae;
	te = t + strcspn(t, "#");
	for (p = t; p < te; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return -1;
	if (t == te)
		*target = xstrdup("/");
	else if (*t == '?')
		*target = xasprintf("/%.*s", (int)(te - t), t);
	else
		*target = xasprintf("%.*s", (int)(te - t), t);
	return 0;
}

static int
header_ok(const struct httpc_header *h)
{
	const unsigned char *v;

	if (h->name == NULL || h->value == NULL || !is_token(h->name))
		return 0;
	if (strcasecmp(h->name, "host") == 0 ||
	    strcasecmp(h->name, "content-length") == 0 ||
	    strcasecmp(h->name, "transfer-encoding") == 0 ||
	    strcasecmp(h->name, "connection") == 0)
		return 0;
	for (v = (const unsigned char *)h->value; *v != '\0'; v++)
		if ((*v < 0x20 && *v != '\t') || *v == 0x7f)
			return 0;
	return 1;
}

/* append - add s[0..n) to the request buffer. */
static void
append(struct httpc_call *call, size_t *cap, const void *s, size_t n)
{
	if (call->out_len + n > *cap) {
		while (call->out_len + n > *cap)
			*cap = *cap * 2;
		call->out = xrealloc(call->out, *cap);
	}
	memcpy(call->out + call->out_len, s, n);
	call->out_len += n;
}

static void appendf(struct httpc_call *call, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
appendf(struct httpc_call *call, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("vasprintf");
	append(call, cap, s, (size_t)n);
	free(s);
}

/* limit - a request timeout or limit: 0 -> def, NO_LIMIT -> 0 (none). */
static uint64_t
limit(uint64_t v, uint64_t def)
{
	if (v == 0)
		return def;
	return v == HTTPC_NO_LIMIT ? 0 : v;
}

/* build - the request bytes; 0 or -1 (bad method or header). */
static int
build(struct httpc_call *call, const struct httpc_req *r, const char *target)
{
	const char *m = r->method != NULL ? r->method : "GET";
	size_t cap = 512 + r->body_len, i;
	int v6 = strchr(call->host, ':') != NULL;
	int defport = call->port == (call->https ? 443 : 80);

	if (!is_token(m))
		return -1;
	for (i = 0; i < r->nheaders; i++)
		if (!header_ok(&r->headers[i]))
			return -1;
	call->head_req = strcmp(m, "HEAD") == 0;
	call->out = xmalloc(cap);
	appendf(call, &cap, "%s %s HTTP/1.1\r\nHost: %s%s%s", m, target,
	    v6 ? "[" : "", call->host, v6 ? "]" : "");
	if (!defport)
		appendf(call, &cap, ":%u", call->port);
	append(call, &cap, "\r\n", 2);
	for (i = 0; i < r->nheaders; i++)
		appendf(call, &cap, "%s: %s\r\n", r->headers[i].name,
		    r->headers[i].value);
	if (r->body_len > 0 || strcmp(m, "POST") == 0 ||
	    strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0)
		appendf(call, &cap, "Content-Length: %zu\r\n", r->body_len);
	if (call->c->max_idle_per_origin < 0)
		appendf(call, &cap, "Connection: close\r\n");
	append(call, &cap, "\r\n", 2);
	if (r->body_len > 0)
		append(call, &cap, r->body, r->body_len);
	return 0;
}

struct httpc_call *
httpc_request(struct httpc *c, const struct httpc_req *r,
    const struct httpc_cb *cb, void *arg)
{
	struct httpc_call *call;
	char *target = NULL;

	if (c->freeing || r->url == NULL || cb == NULL ||
	    cb->on_done == NULL || (r->body_len > 0 && r->body == NULL))
		return NULL;
	call = xcalloc(1, sizeof(*call));
	call->c = c;
	if (parse_url(call, r->url, &target) == 0) {
		call->origin = xasprintf("%s://%s:%u",
		    call->https ? "https" : "http", call->host, call->port);
		if (build(call, r, target) < 0) {
			free(call->out);
			call->out = NULL;
		}
	}
	if (call->out == NULL) { /* bad URL, method or header */
		free(target);
		free(call->host);
		free(call->origin);
		free(call->out);
		free(call);
		return NULL;
	}
	free(target);
	call->cb = *cb;
	call->arg = arg;
	call->st = CS_NEW;
	call->connect_ms = limit(r->connect_ms, DEF_CONNECT_MS);
	call->first_byte_ms = limit(r->first_byte_ms, DEF_FIRST_BYTE_MS);
	call->idle_ms = limit(r->idle_ms, DEF_IDLE_MS);
	call->t_total = r->total_ms == 0 || r->total_ms == HTTPC_NO_LIMIT
	    ? 0
	    : mono_ms() + r->total_ms;
	call->max_body = r->max_body == 0 || r->max_body == HTTPC_NO_LIMIT
	    ? UINT64_MAX
	    : r->max_body;
	httpr_init(&call->p, HEAD_MAX, call->head_req);
	call->next = c->calls;
	if (c->calls != NULL)
		c->calls->prev = call;
	c->calls = call;
	ST_ADD(c, requests, 1);
	ST_ADD(c, active, 1);
	evtimer_assign(&call->tmr, c->base, tmr_cb, call);
	event_active(&call->tmr, EV_TIMEOUT, 1);
	return call;
}

void
httpc_cancel(struct httpc_call *call)
{
	if (call == NULL || call->st == CS_DONE)
		return;
	call_hold(call);
	call->cancelled = 1;
	snprintf(call->detail, sizeof(call->detail), "cancelled");
	finish(call, HTTPC_E_CANCELLED);
	call_release(call);
}

/* --- the client ------------------------------------------------------- */

struct httpc *
httpc_new(struct event_base *base, const struct httpc_opts *o)
{
	static const struct httpc_opts none;
	struct httpc *c = xcalloc(1, sizeof(*c));
	char pers[64], err[200];
	unsigned ms;
	int r;

	if (o == NULL)
		o = &none;
	c->base = base;
	c->st = o->stats != NULL ? o->stats : &c->own;
	c->max_idle_per_origin = o->max_idle_per_origin != 0
	    ? o->max_idle_per_origin
	    : DEF_IDLE_PER_ORIG;
	c->max_idle_total =
	    o->max_idle_total ? o->max_idle_total : DEF_IDLE_TOTAL;
	ms = o->idle_timeout_ms ? o->idle_timeout_ms : DEF_POOL_IDLE_MS;
	c->idle_tv.tv_sec = ms / 1000;
	c->idle_tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	if (o->dns != NULL) {
		c->dns = o->dns;
	} else {
		c->dns = evdns_base_new(base,
		    EVDNS_BASE_INITIALIZE_NAMESERVERS |
		        EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (c->dns == NULL)
			fatalx("httpc: cannot set up the DNS resolver");
		c->own_dns = 1;
	}

	mbedtls_entropy_init(&c->entropy);
	mbedtls_ctr_drbg_init(&c->drbg);
	snprintf(pers, sizeof(pers), "relgate-httpc-%ld-%llu", (long)getpid(),
	    (unsigned long long)mono_us());
	if ((r = mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func,
	         &c->entropy, (const unsigned char *)pers, strlen(pers))) !=
	    0) {
		mbedtls_strerror(r, err, sizeof(err));
		fatalx("httpc: seeding CTR_DRBG: %s", err);
	}
	mbedtls_x509_crt_init(&c->ca);
	if (!o->no_system_ca) {
		r = mbedtls_x509_crt_parse_file(&c->ca, SYSTEM_CA);
		if (r < 0) {
			mbedtls_strerror(r, err, sizeof(err));
			log_warn("httpc: CA bundle %s: %s", SYSTEM_CA, err);
		} else if (r > 0) {
			log_warn("httpc: CA bundle %s: %d certificates "
			         "skipped (unparsable)",
			    SYSTEM_CA, r);
		}
	}
	if (o->ca_file != NULL && o->ca_file[0] != '\0') {
		r = mbedtls_x509_crt_parse_file(&c->ca, o->ca_file);
		if (r < 0) {
			mbedtls_strerror(r, err, sizeof(err));
			fatalx("tls.ca_file %s: %s", o->ca_file, err);
		} else if (r > 0) {
			log_warn("tls.ca_file %s: %d certificates skipped "
			         "(unparsable)",
			    o->ca_file, r);
		}
	}
	c->has_ca = c->ca.version != 0;
	mbedtls_ssl_config_init(&c->conf);
	if ((r = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT,
	         MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)) !=
	    0) {
		mbedtls_strerror(r, err, sizeof(err));
		fatalx("httpc: TLS configuration: %s", err);
	}
	mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
	    MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &c->drbg);
	mbedtls_ssl_conf_ca_chain(&c->conf, c->has_ca ? &c->ca : NULL, NULL);
	return c;
}

void
httpc_free(struct httpc *c)
{
	struct httpc_call *call;

	if (c == NULL)
		return;
	c->freeing = 1;
	while ((call = c->calls) != NULL) {
		call_hold(call);
		if (call->st != CS_DONE) {
			snprintf(call->detail, sizeof(call->detail),
			    "client freed");
			finish(call, HTTPC_E_CANCELLED);
		}
		call_release(call);
	}
	while (c->idle_head != NULL)
		pool_drop(c, c->idle_head);
	if (c->own_dns)
		evdns_base_free(c->dns, 0);
	mbedtls_ssl_config_free(&c->conf);
	mbedtls_x509_crt_free(&c->ca);
	mbedtls_ctr_drbg_free(&c->drbg);
	mbedtls_entropy_free(&c->entropy);
	free(c);
}

/* --- response accessors ----------------------------------------------- */

int
httpc_resp_status(const struct httpc_resp *resp)
{
	return (int)resp->p->status;
}

int
httpc_resp_version(const struct httpc_resp *resp)
{
	return (int)resp->p->version;
}

const char *
httpc_resp_reason(const struct httpc_resp *resp)
{
	return resp->buf + resp->p->reason.off;
}

const char *
httpc_resp_header(const struct httpc_resp *resp, const char *name)
{
	return httpr_field(resp->p, resp->buf, name, NULL);
}

size_t
httpc_resp_nheaders(const struct httpc_resp *resp)
{
	return resp->p->nfields;
}

void
httpc_resp_header_at(const struct httpc_resp *resp, size_t i,
    const char **name, const char **value)
{
	*name = resp->buf + resp->p->fields[i].name.off;
	*value = resp->buf + resp->p->fields[i].value.off;
}
