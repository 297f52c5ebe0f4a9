/*
 * server - see server.h.
 *
 * One struct conn per client connection, holding its one request (struct
 * httpd_req is embedded: no allocation per request), an input buffer in
 * which requests are parsed in place and an output buffer.  Three events
 * per connection: rev (read, persistent; its timeout is the idle, head,
 * body or linger timer of the phase), wev (write; the write timeout) and
 * dev (activated by hand: work deferred out of an application call).
 *
 * I/O happens only in event callbacks: the API calls the application
 * makes (httpd_respond, httpd_stream_*) only queue output and, outside a
 * callback of that connection, activate dev; a connection is freed only
 * from its own callbacks, after the application has returned (in_cb).
 *
 * Requests are found again by id: slot in the low SLOT_BITS bits, a
 * per-server sequence number above; a slot is held by one live
 * connection, whose request carries the id of the request in progress, so
 * a stale id never matches.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "http/parser.h"
#include "util/log.h"
#include "util/util.h"

#define SLOT_BITS          24
#define SLOT_MASK          ((1u << SLOT_BITS) - 1)
#define INBUF_MIN          4096
#define MIN_READ           1024
#define OUTBUF_KEEP        65536 /* output buffers above this are shrunk */
#define ACCEPT_BATCH       256
#define ACCEPT_PAUSE_MS    100
#define ACCEPT_WARN_MS     10000 /* accept trouble is logged this rarely */
#define DEFAULT_BODY_LIMIT (1024 * 1024)

#define ST_ADD(h, name, n)                                                    \
	((void)__atomic_fetch_add(                                            \
	    &(h)->st->name, (uint64_t)(n), __ATOMIC_RELAXED))
#define ST_SUB(h, name, n)                                                    \
	((void)__atomic_fetch_sub(                                            \
	    &(h)->st->name, (uint64_t)(n), __ATOMIC_RELAXED))

enum phase {
	P_IDLE,    /* between requests, nothing buffered */
	P_HEAD,    /* reading a head (head deadline) */
	P_BODY,    /* on_head accepted; reading the body (body deadline) */
	P_APP,     /* on_request called; waiting for the answer */
	P_STREAM,  /* streaming an answer */
	P_CLOSING, /* last answer queued: close once written */
	P_LINGER,  /* write side shut: discard input until EOF or deadline */
};

/* what rev is armed with */
enum armed { A_NONE, A_OFF, A_FRESH, A_KA, A_DEADLINE, A_NOTIMEOUT };

struct conn;

struct httpd_req {
	struct conn *c;
	uint64_t id;     /* of the request in progress; 0: none */
	int has_head;    /* the head was parsed */
	int awaiting;    /* an answer may be given now */
	int owned;       /* on_head called, answer not completed */
	int streaming;   /* httpd_stream_start done */
	int body_done;   /* httpp_body returned DONE */
	int head_method; /* HEAD: no body in answers */
	int end_on_eof;  /* the client's EOF ends it (httpd_req_end_on_eof) */
	int done;        /* on_done was called */
	int status;      /* of the answer; 0: none yet */
	unsigned route, code; /* the application's notes for on_done */
	uint64_t head_us;     /* mono: the head was parsed */
	uint64_t answer_us;   /* mono: the answer's head was queued */
	uint64_t out_mark;    /* conn.queued when the answer began */
	uint64_t limit;  /* body limit from on_head */
	size_t consumed; /* bytes of this request when it completes */
	void (*close_cb)(void *, struct httpd_req *);
	void *close_arg;
	void (*drain_cb)(void *, struct httpd_req *);
	void *drain_arg;
	void *data;
	struct httpp p;
};

struct conn {
	struct httpd *h;
	int fd;
	uint32_t slot;
	enum phase phase;
	enum armed armed;
	struct event rev, wev, dev;
	char *in;
	size_t in_len, in_cap, rpos; /* the request starts at in + rpos */
	char *out;
	size_t out_len, out_pos, out_cap;
	uint64_t queued; /* bytes ever queued on this connection */
	uint64_t deadline; /* mono ms: head, body, linger */
	unsigned in_cb;    /* > 0 while the application runs for us */
	unsigned dead : 1;
	unsigned fresh : 1;      /* no request yet */
	unsigned closing : 1;    /* close after the current answer */
	unsigned linger : 1;     /* ... with a lingering close */
	unsigned error : 1;      /* an error answer is under way */
	unsigned kicked : 1;     /* dev is active */
	unsigned stalled : 1;    /* processing waits for the output to drain */
	unsigned want_drain : 1; /* a stream write was refused: ENOBUFS */
	unsigned wblocked : 1;   /* wev is armed: the socket is full */
	unsigned rdhup : 1;      /* the client's EOF: no more requests */
	struct sockaddr_storage peer;
	char peer_str[INET6_ADDRSTRLEN];
	struct httpd_req req;
};

struct httpd {
	struct event_base *base;
	int lfd;
	struct event *lev;
	struct event *pause_ev;
	const struct httpd_ops *ops;
	void *arg;
	struct httpd_limits lim;
	struct httpd_stats own;
	struct httpd_stats *st;
	const struct timeval *tv_fresh, *tv_ka, *tv_write;
	struct conn **slots;
	uint32_t *free_slots;
	unsigned nfree, nconns, nslots;
	uint64_t seq;
	int draining;
	time_t date_sec;
	char date[48];
	size_t date_len;
	char busy[512]; /* the 503 for connections over the limit; Date goes
	                   after its status line, busy_status bytes */
	size_t busy_len, busy_status;
	int spare_fd;            /* given up to answer 503 when out of fds */
	uint64_t accept_warn_ms; /* when accept trouble was last logged */
	unsigned accept_quiet;   /* failures since, not logged */
};

static void conn_read_cb(evutil_socket_t fd, short what, void *arg);
static void conn_write_cb(evutil_socket_t fd, short what, void *arg);
static void conn_dev_cb(evutil_socket_t fd, short what, void *arg);
static void conn_process(struct conn *c);
static void conn_error(struct conn *c, enum httpd_err e);

/* --- small helpers ---------------------------------------------------- */

static const struct timeval *
common_tv(struct event_base *base, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	return event_base_init_common_timeout(base, &tv);
}

static const char *
reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 406:
		return "Not Acceptable";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 411:
		return "Length Required";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 416:
		return "Range Not Satisfiable";
	case 417:
		return "Expectation Failed";
	case 422:
		return "Unprocessable Content";
	case 426:
		return "Upgrade Required";
	case 428:
		return "Precondition Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	}
	return status < 300 ? "OK"
	    : status < 400  ? "Redirect"
	    : status < 500  ? "Client Error"
	                    : "Server Error";
}

int
httpd_err_status(enum httpd_err e)
{
	switch (e) {
	case HTTPD_E_NONE:
		break;
#define HTTPD_ERR_STATUS(name, status, code, msg)                             \
	case HTTPD_E_##name:                                                  \
		return status;
		HTTPD_ERRORS(HTTPD_ERR_STATUS)
#undef HTTPD_ERR_STATUS
	}
	return 500;
}

const char *
httpd_err_code(enum httpd_err e)
{
	switch (e) {
	case HTTPD_E_NONE:
		break;
#define HTTPD_ERR_CODE(name, status, code, msg)                               \
	case HTTPD_E_##name:                                                  \
		return code;
		HTTPD_ERRORS(HTTPD_ERR_CODE)
#undef HTTPD_ERR_CODE
	}
	return "internal_error";
}

const char *
httpd_err_message(enum httpd_err e)
{
	switch (e) {
	case HTTPD_E_NONE:
		break;
#define HTTPD_ERR_MSG(name, status, code, msg)                                \
	case HTTPD_E_##name:                                                  \
		return msg;
		HTTPD_ERRORS(HTTPD_ERR_MSG)
#undef HTTPD_ERR_MSG
	}
	return "internal error";
}

static enum httpd_err
from_parser(enum httpp_err e)
{
	switch (e) {
	case HTTPP_E_URI_TOO_LONG:
		return HTTPD_E_URI_TOO_LONG;
	case HTTPP_E_HEAD_TOO_LARGE:
		return HTTPD_E_HEAD_TOO_LARGE;
	case HTTPP_E_BODY_TOO_LARGE:
		return HTTPD_E_BODY_TOO_LARGE;
	case HTTPP_E_NOT_IMPLEMENTED:
		return HTTPD_E_NOT_IMPLEMENTED;
	case HTTPP_E_VERSION:
		return HTTPD_E_VERSION;
	case HTTPP_E_NONE:
	case HTTPP_E_BAD_REQUEST:
		break;
	}
	return HTTPD_E_BAD_REQUEST;
}

static void
count_error(struct httpd *h, enum httpd_err e)
{
	switch (e) {
	case HTTPD_E_NONE:
		break;
	case HTTPD_E_BAD_REQUEST:
		ST_ADD(h, err_bad_request, 1);
		break;
	case HTTPD_E_URI_TOO_LONG:
		ST_ADD(h, err_uri_too_long, 1);
		break;
	case HTTPD_E_HEAD_TOO_LARGE:
		ST_ADD(h, err_head_too_large, 1);
		break;
	case HTTPD_E_BODY_TOO_LARGE:
		ST_ADD(h, err_body_too_large, 1);
		break;
	case HTTPD_E_TIMEOUT:
		ST_ADD(h, err_timeout, 1);
		break;
	case HTTPD_E_NOT_IMPLEMENTED:
		ST_ADD(h, err_not_implemented, 1);
		break;
	case HTTPD_E_VERSION:
		ST_ADD(h, err_version, 1);
		break;
	}
}

/* --- buffers ---------------------------------------------------------- */

/* out_reserve - room for n more output bytes. */
static void
out_reserve(struct conn *c, size_t n)
{
	size_t cap;

	if (c->out_pos == c->out_len)
		c->out_pos = c->out_len = 0;
	if (c->out_cap - c->out_len >= n)
		return;
	if (c->out_pos > 0) {
		memmove(c->out, c->out + c->out_pos, c->out_len - c->out_pos);
		c->out_len -= c->out_pos;
		c->out_pos = 0;
		if (c->out_cap - c->out_len >= n)
			return;
	}
	cap = c->out_cap ? c->out_cap : 1024;
	while (cap - c->out_len < n)
		cap *= 2;
	c->out = xrealloc(c->out, cap);
	c->out_cap = cap;
}

static void
out_put(struct conn *c, const void *p, size_t n)
{
	out_reserve(c, n);
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	c->queued += n;
}

#define OUT_LIT(c, s) out_put((c), (s), sizeof(s) - 1)

static size_t
out_pending(const struct conn *c)
{
	return c->out_len - c->out_pos;
}

/* in_space - free input bytes, after making room where the phase allows
 * moving the buffer (no application views are live before on_request). */
static size_t
in_space(struct conn *c)
{
	struct httpd *h = c->h;
	struct httpp *p = &c->req.p;
	size_t want, cap;

	if (c->in_cap - c->in_len >= MIN_READ)
		return c->in_cap - c->in_len;
	if (c->phase != P_IDLE && c->phase != P_HEAD && c->phase != P_BODY)
		return c->in_cap - c->in_len;
	if (c->rpos > 0) {
		memmove(c->in, c->in + c->rpos, c->in_len - c->rpos);
		c->in_len -= c->rpos;
		c->rpos = 0;
		if (c->in_cap - c->in_len >= MIN_READ)
			return c->in_cap - c->in_len;
	}
	if (c->phase == P_BODY && p->body == HTTPP_BODY_LENGTH)
		want = p->head_len + (size_t)p->content_length + INBUF_MIN;
	else if (c->phase == P_BODY)
		want = p->head_len + (size_t)c->req.limit +
		    HTTPP_MAX_CHUNK_LINE + h->lim.max_head_bytes + INBUF_MIN;
	else
		want = h->lim.max_head_bytes + INBUF_MIN;
	cap = c->in_cap * 2;
	if (cap < c->in_len + MIN_READ)
		cap = c->in_len + MIN_READ;
	if (c->phase == P_BODY && p->body == HTTPP_BODY_LENGTH)
		cap = want; /* known: one allocation */
	if (cap > want)
		cap = want;
	if (cap > c->in_cap) {
		c->in = xrealloc(c->in, cap);
		c->in_cap = cap;
	}
	return c->in_cap - c->in_len;
}

/* --- connections ------------------------------------------------------ */

static void
kick(struct conn *c)
{
	if (c->in_cb == 0 && !c->kicked) {
		c->kicked = 1;
		event_active(&c->dev, EV_TIMEOUT, 0);
	}
}

/* conn_kill - the connection is over; it is freed from the loop. */
static void
conn_kill(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	c->kicked = 0;
	kick(c);
}

/* req_done - on_done for the request of c, once; only for a request
 * with a head or an answer. */
static void
req_done(struct conn *c)
{
	struct httpd *h = c->h;
	struct httpd_req *r = &c->req;
	struct httpd_done d;
	uint64_t now;

	if (r->done || (!r->has_head && r->status == 0))
		return;
	r->done = 1;
	if (h->ops->on_done == NULL)
		return;
	now = mono_us();
	d.status = r->status;
	d.route = r->route;
	d.code = r->code;
	d.bytes = r->status != 0 ? c->queued - r->out_mark : 0;
	/* an answer before the head was parsed has no start: 0 */
	d.answer_us = r->status != 0 && r->head_us != 0 ?
	    r->answer_us - r->head_us : 0;
	d.total_us = r->head_us != 0 ? now - r->head_us : 0;
	c->in_cb++;
	h->ops->on_done(h->arg, r, &d);
	c->in_cb--;
}

static void
call_close(struct conn *c)
{
	struct httpd *h = c->h;
	struct httpd_req *r = &c->req;
	void (*cb)(void *, struct httpd_req *) = r->close_cb;
	void *arg = r->close_arg;

	r->owned = 0;
	r->awaiting = 0;
	if (cb == NULL && h->ops->on_close != NULL) {
		cb = h->ops->on_close;
		arg = h->arg;
	}
	if (cb != NULL) {
		c->in_cb++;
		cb(arg, r);
		c->in_cb--;
	}
	req_done(c);
	r->id = 0;
}

static void
conn_free(struct conn *c)
{
	struct httpd *h = c->h;

	c->dead = 1;
	if (c->req.owned) {
		ST_ADD(h, client_aborts, 1);
		call_close(c);
	}
	event_del(&c->rev);
	event_del(&c->wev);
	event_del(&c->dev);
	close(c->fd);
	h->slots[c->slot] = NULL;
	h->free_slots[h->nfree++] = c->slot;
	h->nconns--;
	ST_ADD(h, closed, 1);
	ST_SUB(h, open, 1);
	free(c->in);
	free(c->out);
	free(c);
}

static void
req_reset(struct conn *c)
{
	struct httpd_req *r = &c->req;

	r->id = 0;
	r->has_head = r->awaiting = r->owned = r->streaming = 0;
	r->body_done = r->head_method = r->end_on_eof = 0;
	r->done = r->status = 0;
	r->route = r->code = 0;
	r->head_us = r->answer_us = r->out_mark = 0;
	r->limit = 0;
	r->consumed = 0;
	r->close_cb = r->drain_cb = NULL;
	r->close_arg = r->drain_arg = r->data = NULL;
	c->want_drain = 0;
	httpp_init(&r->p, c->h->lim.max_head_bytes);
}

/* close_now_or_linger - the last answer is written.  No lingering after
 * the client's EOF: there is nothing left to read. */
static void
close_now_or_linger(struct conn *c)
{
	if (!c->linger || c->rdhup || shutdown(c->fd, SHUT_WR) != 0) {
		conn_kill(c);
		return;
	}
	c->phase = P_LINGER;
	c->deadline = mono_ms() + c->h->lim.linger_ms;
}

/* conn_flush - write what is queued; arms wev when the socket is full. */
static void
conn_flush(struct conn *c)
{
	struct httpd *h = c->h;

	while (c->out_pos < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_pos,
		    c->out_len - c->out_pos, MSG_NOSIGNAL);

		if (n > 0) {
			ST_ADD(h, bytes_out, n);
			c->out_pos += (size_t)n;
			if (c->out_pos < c->out_len) {
				c->wblocked = 1;
				event_add(&c->wev, h->tv_write);
				return;
			}
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->wblocked = 1;
			event_add(&c->wev, h->tv_write);
			return;
		}
		conn_kill(c);
		return;
	}
	c->out_pos = c->out_len = 0;
	if (c->out_cap > OUTBUF_KEEP) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	if (c->wblocked) {
		c->wblocked = 0;
		event_del(&c->wev);
	}
	if (c->phase == P_CLOSING)
		close_now_or_linger(c);
}

/* rearm - rev's timeout (and whether it reads at all) for the phase. */
static void
rearm(struct conn *c)
{
	struct httpd *h = c->h;
	enum armed want = A_NOTIMEOUT;
	const struct timeval *tv = NULL;
	struct timeval rem;
	uint64_t now;

	switch (c->phase) {
	case P_IDLE:
		want = c->fresh ? A_FRESH : A_KA;
		tv = c->fresh ? h->tv_fresh : h->tv_ka;
		if (c->stalled)
			want = A_OFF;
		break;
	case P_HEAD:
	case P_BODY:
	case P_LINGER:
		want = A_DEADLINE;
		if (c->stalled && c->phase == P_HEAD) {
			want = A_OFF;
			break;
		}
		now = mono_ms();
		now = c->deadline > now ? c->deadline - now : 1;
		rem.tv_sec = (time_t)(now / 1000);
		rem.tv_usec = (suseconds_t)(now % 1000) * 1000;
		tv = &rem;
		break;
	case P_APP:
	case P_STREAM:
		want = c->in_len < c->in_cap ? A_NOTIMEOUT : A_OFF;
		break;
	case P_CLOSING:
		want = A_OFF;
		break;
	}
	if (c->rdhup)
		want = A_OFF; /* EOF was read: nothing more will come */
	if (want == c->armed && want != A_DEADLINE)
		return;
	if (want == A_OFF)
		event_del(&c->rev);
	else
		event_add(&c->rev, tv);
	c->armed = want;
}

/*
 * input_ended - the client sent EOF.  That is a half-close (RFC 9112
 * 9.6: a client may close its sending side and still read the answers)
 * or a client that is gone, which only a failing write can tell.  So
 * every request that was complete before the EOF is answered, pipelined
 * ones too, and then the connection closes.  A request cut short by the
 * EOF (head or body incomplete), a stream in progress, and a request
 * marked with httpd_req_end_on_eof end at once (on_close for an owned
 * request).
 */
static void
input_ended(struct conn *c)
{
	switch (c->phase) {
	case P_IDLE:
	case P_HEAD:
		/* buffered requests wait for a kick or for the output */
		if (c->stalled || c->kicked)
			break;
		c->closing = 1;
		c->phase = P_CLOSING;
		break;
	case P_BODY:
	case P_STREAM:
		conn_kill(c);
		break;
	case P_APP: /* answered later; the rest is read from the buffer */
		if (c->req.owned && c->req.end_on_eof)
			conn_kill(c); /* only worth something to a client there */
		break;
	case P_CLOSING:
	case P_LINGER:
		break;
	}
}

/* finish - end of every callback of a connection: deadlines, the
 * client's EOF, output, freeing, timers. */
static void
finish(struct conn *c)
{
	struct httpd_req *r = &c->req;
	int rounds;

	if (!c->dead && !c->stalled &&
	    (c->phase == P_HEAD || c->phase == P_BODY) &&
	    mono_ms() >= c->deadline) {
		ST_ADD(c->h, timeouts, 1);
		conn_error(c, HTTPD_E_TIMEOUT);
	}
	if (c->rdhup && !c->dead)
		input_ended(c);
	for (rounds = 0; !c->dead; rounds++) {
		if (!c->wblocked &&
		    (out_pending(c) > 0 || c->phase == P_CLOSING))
			conn_flush(c); /* and closes once all is written */
		if (c->dead || !c->want_drain || out_pending(c) > 0 ||
		    c->phase != P_STREAM)
			break;
		if (rounds == 8) { /* let other connections run */
			kick(c);
			break;
		}
		c->want_drain = 0;
		if (r->drain_cb != NULL) {
			c->in_cb++;
			r->drain_cb(r->drain_arg, r);
			c->in_cb--;
			if (c->phase != P_STREAM)
				kick(c); /* ended: go on with what is buffered
				          */
		}
	}
	if (c->dead) {
		if (c->in_cb == 0)
			conn_free(c);
		return;
	}
	if (c->stalled && out_pending(c) == 0) {
		c->stalled = 0;
		kick(c);
	}
	rearm(c);
}

/* --- answers ---------------------------------------------------------- */

/* decide_end - how the request ends: bytes to skip for the next one, or
 * close.  Called when the answer starts. */
static void
decide_end(struct conn *c)
{
	struct httpd_req *r = &c->req;
	struct httpp *p = &r->p;

	r->consumed = 0;
	if (c->error || !r->has_head) {
		c->closing = c->linger = 1;
	} else if (r->body_done) {
		r->consumed = p->consumed;
	} else if (p->body == HTTPP_BODY_NONE) {
		r->consumed = p->head_len;
	} else if (p->body == HTTPP_BODY_LENGTH &&
	    c->in_len - c->rpos - p->head_len >= p->content_length) {
		/* answered early, but the body is here already: skip it */
		r->consumed = p->head_len + (size_t)p->content_length;
	} else {
		c->closing = c->linger = 1; /* an unread body */
	}
	if (r->has_head && !p->keep_alive)
		c->closing = 1;
	if (c->h->draining)
		c->closing = 1;
}

static int
header_ok(const struct httpd_header *hd)
{
	const unsigned char *s;

	if (hd->name == NULL || hd->value == NULL || hd->name[0] == '\0')
		return 0;
	for (s = (const unsigned char *)hd->name; *s; s++) {
		if (*s <= 0x20 || *s >= 0x7f || *s == ':')
			return 0;
	}
	for (s = (const unsigned char *)hd->value; *s; s++) {
		if (*s == '\r' || *s == '\n')
			return 0;
	}
	/* framing, connection management and nosniff are the server's */
	switch (hd->name[0] | 0x20) {
	case 'c':
		return !httpp_ieq(
		           hd->name, strlen(hd->name), "content-length") &&
		    !httpp_ieq(hd->name, strlen(hd->name), "connection");
	case 't':
		return !httpp_ieq(
		    hd->name, strlen(hd->name), "transfer-encoding");
	case 'x':
		return !httpp_ieq(
		    hd->name, strlen(hd->name), "x-content-type-options");
	}
	return 1;
}

/* date_field - "Date: ...\r\n", formatted once per second. */
static void
date_field(struct httpd *h)
{
	time_t now = time(NULL);

	if (now != h->date_sec) {
		struct tm tm;

		gmtime_r(&now, &tm);
		h->date_len = strftime(h->date, sizeof(h->date),
		    "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
		h->date_sec = now;
	}
}

static void
put_date(struct conn *c)
{
	date_field(c->h);
	out_put(c, c->h->date, c->h->date_len);
}

enum framing { FR_NONE, FR_LENGTH, FR_CHUNKED };

/* put_head - status line and header fields. */
static void
put_head(struct conn *c, int status, const struct httpd_header *hdrs,
    size_t nhdrs, enum framing fr, size_t len)
{
	struct httpd *h = c->h;
	char num[32];
	const char *rs = reason(status);
	size_t i, n;

	c->req.status = status;
	c->req.answer_us = mono_us();
	c->req.out_mark = c->queued;
	OUT_LIT(c, "HTTP/1.1 ");
	n = fmt_u64(num, (uint64_t)status, 10);
	num[n++] = ' ';
	out_put(c, num, n);
	out_put(c, rs, strlen(rs));
	OUT_LIT(c, "\r\n");
	put_date(c);
	/* no MIME sniffing of any answer (errors, JSON, event streams) */
	OUT_LIT(c, "X-Content-Type-Options: nosniff\r\n");
	for (i = 0; i < nhdrs; i++) {
		if (!header_ok(&hdrs[i])) {
			log_warn("httpd: dropped response header \"%s\"",
			    hdrs[i].name ? hdrs[i].name : "(null)");
			continue;
		}
		out_put(c, hdrs[i].name, strlen(hdrs[i].name));
		OUT_LIT(c, ": ");
		out_put(c, hdrs[i].value, strlen(hdrs[i].value));
		OUT_LIT(c, "\r\n");
	}
	if (fr == FR_LENGTH) {
		OUT_LIT(c, "Content-Length: ");
		n = fmt_u64(num, len, 10);
		out_put(c, num, n);
		OUT_LIT(c, "\r\n");
	} else if (fr == FR_CHUNKED) {
		OUT_LIT(c, "Transfer-Encoding: chunked\r\n");
	}
	if (c->closing)
		OUT_LIT(c, "Connection: close\r\n");
	else if (c->req.p.version == 10)
		OUT_LIT(c, "Connection: keep-alive\r\n");
	OUT_LIT(c, "\r\n");
	if (status < 300)
		ST_ADD(h, responses_2xx, 1);
	else if (status < 400)
		ST_ADD(h, responses_3xx, 1);
	else if (status < 500)
		ST_ADD(h, responses_4xx, 1);
	else
		ST_ADD(h, responses_5xx, 1);
}

/* complete - the answer is queued; on to the next request or closing. */
static void
complete(struct conn *c)
{
	struct httpd_req *r = &c->req;
	size_t consumed = r->consumed;

	/* over: on_done can neither answer nor abort it */
	r->awaiting = r->owned = 0;
	req_done(c);
	if (c->closing || c->h->draining) {
		c->closing = 1;
		r->awaiting = r->owned = r->streaming = 0;
		r->id = 0;
		c->phase = P_CLOSING;
	} else {
		c->rpos += consumed;
		req_reset(c);
		c->phase = P_IDLE;
	}
	kick(c);
}

static int
answerable(const struct httpd_req *r)
{
	return r != NULL && r->c != NULL && !r->c->dead && r->awaiting &&
	    !r->streaming;
}

static int
sane_status(int status)
{
	if (status < 200 || status > 599) {
		log_warn(
		    "httpd: application status %d replaced by 500", status);
		return 500;
	}
	return status;
}

int
httpd_respond(struct httpd_req *r, int status, const struct httpd_header *hdrs,
    size_t nhdrs, const void *body, size_t len)
{
	struct conn *c;
	int nobody;

	if (!answerable(r))
		return -1;
	c = r->c;
	status = sane_status(status);
	decide_end(c);
	nobody = status == 204 || status == 304;
	put_head(c, status, hdrs, nhdrs, nobody ? FR_NONE : FR_LENGTH, len);
	if (!nobody && !r->head_method && len > 0)
		out_put(c, body, len);
	complete(c);
	return 0;
}

int
httpd_req_abort(struct httpd_req *r)
{
	struct linger lg = { 1, 0 };
	struct conn *c;

	if (r == NULL || r->c == NULL || r->c->dead || !r->owned)
		return -1;
	c = r->c;
	/* the application ends it: no on_close for this request */
	r->owned = 0;
	r->awaiting = 0;
	r->close_cb = NULL;
	req_done(c);
	(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	conn_kill(c);
	return 0;
}

int
httpd_stream_start(struct httpd_req *r, int status,
    const struct httpd_header *hdrs, size_t nhdrs)
{
	struct conn *c;

	if (!answerable(r))
		return -1;
	c = r->c;
	status = sane_status(status);
	decide_end(c);
	if (r->p.version != 11)
		c->closing = 1; /* close-delimited */
	put_head(c, status, hdrs, nhdrs,
	    r->p.version == 11 ? FR_CHUNKED : FR_NONE, 0);
	r->streaming = 1;
	c->phase = P_STREAM;
	kick(c);
	return 0;
}

size_t
httpd_req_output_cap(const struct httpd_req *r)
{
	return r->c->h->lim.max_output_bytes;
}

long
httpd_stream_write(struct httpd_req *r, const void *data, size_t len)
{
	struct conn *c = r->c;
	char num[24];
	size_t n;

	if (c == NULL || c->dead || !r->awaiting || !r->streaming) {
		errno = EPIPE;
		return -1;
	}
	if (len > 0 && !r->head_method) {
		if (out_pending(c) > 0 &&
		    out_pending(c) + len + 32 > c->h->lim.max_output_bytes) {
			c->want_drain = 1;
			errno = ENOBUFS;
			return -1;
		}
		if (r->p.version == 11) {
			n = fmt_u64(num, len, 16);
			num[n++] = '\r';
			num[n++] = '\n';
			out_put(c, num, n);
			out_put(c, data, len);
			OUT_LIT(c, "\r\n");
		} else {
			out_put(c, data, len);
		}
		kick(c);
	}
	return (long)out_pending(c);
}

int
httpd_stream_end(struct httpd_req *r)
{
	struct conn *c = r->c;

	if (c == NULL || c->dead || !r->awaiting || !r->streaming)
		return -1;
	if (r->p.version == 11 && !r->head_method)
		OUT_LIT(c, "0\r\n\r\n");
	complete(c);
	return 0;
}

/* fallback - the server's own answer to an error, classified as in
 * SPEC 3: JSON body and the error-code header. */
static void
fallback(struct conn *c, int status, const char *code, const char *msg)
{
	struct httpd_header hd[2] = {
		{ "Content-Type", "application/json" },
		{ c->h->lim.error_code_header, code },
	};
	char body[256];
	int n = snprintf(body, sizeof(body),
	    "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);

	(void)httpd_respond(&c->req, status, hd, 2, body, (size_t)n);
}

/* conn_error - the request failed: the application answers, or we do;
 * the connection closes after the answer. */
static void
conn_error(struct conn *c, enum httpd_err e)
{
	struct httpd *h = c->h;
	struct httpd_req *r = &c->req;
	int owned = r->owned;
	uint64_t id = r->id;

	count_error(h, e);
	if (r->streaming) { /* too late for an answer */
		conn_kill(c);
		return;
	}
	c->error = 1;
	c->closing = c->linger = 1;
	r->awaiting = 1;
	if (h->ops->on_error != NULL) {
		c->in_cb++;
		h->ops->on_error(h->arg, r, e);
		c->in_cb--;
	}
	if (c->dead || !r->awaiting)
		return;
	r->owned = 0;
	fallback(
	    c, httpd_err_status(e), httpd_err_code(e), httpd_err_message(e));
	if (owned) {
		/* the application did not answer its request */
		c->in_cb++;
		r->owned = 1;
		r->id = id; /* as the application knew it */
		call_close(c);
		c->in_cb--;
	}
}

/* --- request processing ----------------------------------------------- */

/* terminate - make the head's views NUL-terminated strings in place. */
static void
terminate(struct conn *c)
{
	struct httpp *p = &c->req.p;
	char *b = c->in + c->rpos;
	unsigned i;

	b[p->method.off + p->method.len] = '\0';
	b[p->target.off + p->target.len] = '\0';
	/* the path ends at the "?", or inside an absolute-form target
	 * without a path, where the "/" is the second one of "//" */
	b[p->path.off + p->path.len] = '\0';
	for (i = 0; i < p->nfields; i++) {
		b[p->fields[i].name.off + p->fields[i].name.len] = '\0';
		b[p->fields[i].value.off + p->fields[i].value.len] = '\0';
	}
}

static void
start_request(struct conn *c)
{
	struct httpd *h = c->h;
	struct httpd_req *r = &c->req;
	struct httpp *p = &r->p;
	int64_t lim = DEFAULT_BODY_LIMIT;

	terminate(c);
	h->seq++;
	r->id = (h->seq << SLOT_BITS) | c->slot;
	r->has_head = 1;
	r->head_us = mono_us();
	r->awaiting = r->owned = 1;
	r->head_method = strcmp(c->in + c->rpos + p->method.off, "HEAD") == 0;
	if (r->head_method) {
		/* the application answers it as a GET; the body is ours to
		 * leave out */
		memcpy(c->in + c->rpos + p->method.off, "GET", 4);
		p->method.len = 3;
	}
	ST_ADD(h, requests, 1);
	if (h->ops->on_head != NULL) {
		c->in_cb++;
		lim = h->ops->on_head(h->arg, r);
		c->in_cb--;
	}
	if (c->dead || !r->awaiting || c->phase != P_HEAD)
		return; /* answered (complete() moved on) */
	if (lim < 0) {
		log_warn("httpd: on_head declined without an answer");
		r->owned = 0;
		c->closing = 1;
		fallback(c, 500, "internal_error", "internal error");
		return;
	}
	r->limit = (uint64_t)lim;
	c->phase = P_BODY;
	c->deadline = mono_ms() + h->lim.body_timeout_ms;
	if (p->body == HTTPP_BODY_LENGTH && p->content_length > r->limit) {
		conn_error(c, HTTPD_E_BODY_TOO_LARGE);
		return;
	}
	if (p->expect_continue && p->body != HTTPP_BODY_NONE &&
	    !(p->body == HTTPP_BODY_LENGTH &&
	        c->in_len - c->rpos - p->head_len >= p->content_length))
		OUT_LIT(c, "HTTP/1.1 100 Continue\r\n\r\n");
}

/* conn_process - parse and dispatch what is buffered, one request at a
 * time, until a request waits for its answer or more input. */
static void
conn_process(struct conn *c)
{
	struct httpd *h = c->h;
	struct httpd_req *r = &c->req;
	size_t len;
	int rc;

	while (!c->dead) {
		switch (c->phase) {
		case P_IDLE:
		case P_HEAD:
			if (out_pending(c) > h->lim.max_output_bytes) {
				c->stalled = 1; /* pipelining: let it drain */
				return;
			}
			if (c->rpos == c->in_len) {
				c->rpos = c->in_len = 0;
				if (c->phase == P_IDLE &&
				    c->in_cap > INBUF_MIN) {
					free(c->in);
					c->in = xmalloc(INBUF_MIN);
					c->in_cap = INBUF_MIN;
				}
				return;
			}
			if (c->phase == P_IDLE) {
				c->phase = P_HEAD;
				c->fresh = 0;
				c->deadline =
				    mono_ms() + h->lim.head_timeout_ms;
			}
			rc = httpp_head(
			    &r->p, c->in + c->rpos, c->in_len - c->rpos);
			if (rc == HTTPP_AGAIN)
				return;
			if (rc == HTTPP_ERROR)
				conn_error(c, from_parser(r->p.err));
			else
				start_request(c);
			break;
		case P_BODY:
			len = c->in_len - c->rpos;
			rc =
			    httpp_body(&r->p, c->in + c->rpos, &len, r->limit);
			c->in_len = c->rpos + len;
			if (rc == HTTPP_AGAIN)
				return;
			if (rc == HTTPP_ERROR) {
				conn_error(c, from_parser(r->p.err));
				break;
			}
			r->body_done = 1;
			c->phase = P_APP;
			if (h->ops->on_request != NULL) {
				c->in_cb++;
				h->ops->on_request(h->arg, r);
				c->in_cb--;
			}
			break;
		default:
			return;
		}
	}
}

static void
conn_timeout(struct conn *c)
{
	switch (c->phase) {
	case P_IDLE:
		ST_ADD(c->h, timeouts, 1);
		conn_kill(c);
		break;
	case P_LINGER:
		conn_kill(c);
		break;
	default:
		break; /* head/body deadlines are checked by finish() */
	}
}

static void
linger_read(struct conn *c)
{
	char buf[16384];
	ssize_t n = read(c->fd, buf, sizeof(buf));

	if (n > 0)
		ST_ADD(c->h, bytes_in, n);
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		conn_kill(c);
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	size_t room;
	ssize_t n;

	if (what & EV_TIMEOUT) {
		conn_timeout(c);
	} else if (c->phase == P_LINGER) {
		linger_read(c);
	} else if ((room = in_space(c)) > 0) {
		n = read(fd, c->in + c->in_len, room);
		if (n > 0) {
			ST_ADD(c->h, bytes_in, n);
			c->in_len += (size_t)n;
			conn_process(c);
		} else if (n == 0) {
			c->rdhup = 1; /* see input_ended */
		} else if (errno != EAGAIN && errno != EINTR) {
			conn_kill(c); /* client gone */
		}
	}
	finish(c);
}

static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	if (what & EV_TIMEOUT) {
		ST_ADD(c->h, timeouts, 1);
		conn_kill(c);
	} else {
		c->wblocked = 0;
		conn_flush(c);
	}
	finish(c);
}

static void
conn_dev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	c->kicked = 0;
	if (!c->dead)
		conn_process(c);
	finish(c);
}

static void
conn_new(struct httpd *h, int fd, const struct sockaddr_storage *ss)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->h = h;
	c->fd = fd;
	c->slot = h->free_slots[--h->nfree];
	h->slots[c->slot] = c;
	h->nconns++;
	c->peer = *ss;
	c->fresh = 1;
	c->phase = P_IDLE;
	c->armed = A_NONE;
	c->in = xmalloc(INBUF_MIN);
	c->in_cap = INBUF_MIN;
	c->req.c = c;
	req_reset(c);
	event_assign(
	    &c->rev, h->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	event_assign(&c->wev, h->base, fd, EV_WRITE, conn_write_cb, c);
	event_assign(&c->dev, h->base, -1, 0, conn_dev_cb, c);
	ST_ADD(h, accepted, 1);
	ST_ADD(h, open, 1);
	rearm(c);
}

/* --- accepting -------------------------------------------------------- */

static void
pause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpd *h = arg;

	(void)fd;
	(void)what;
	if (h->spare_fd < 0)
		h->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (!h->draining)
		event_add(h->lev, NULL);
}

/*
 * refuse - answer a connection that will not be served: the 503
 * overloaded (classified like every error: code header, JSON body),
 * written once without blocking.  What the client already sent is read
 * and dropped first, so that the close sends a FIN and not a reset that
 * could destroy the answer before the client reads it.
 */
static void
refuse(struct httpd *h, int fd)
{
	struct iovec iov[3];
	struct msghdr mh;
	char junk[4096];
	int i;

	for (i = 0; i < 4; i++) {
		if (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) <= 0)
			break;
	}
	date_field(h);
	iov[0] = (struct iovec) { h->busy, h->busy_status };
	iov[1] = (struct iovec) { h->date, h->date_len };
	iov[2] = (struct iovec) { h->busy + h->busy_status,
		h->busy_len - h->busy_status };
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = 3;
	(void)sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)shutdown(fd, SHUT_WR);
	close(fd);
}

/* refuse_with_spare - out of descriptors (accept fails with EMFILE
 * even when nothing waits): give up the spare one to take a waiting
 * connection off the backlog and answer it 503.  1: one was answered;
 * -1: none was waiting; 0: no spare, or accept failed again. */
static int
refuse_with_spare(struct httpd *h)
{
	int fd, err;

	if (h->spare_fd < 0)
		return 0;
	close(h->spare_fd);
	fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	err = errno;
	if (fd >= 0) {
		ST_ADD(h, refused_no_fds, 1);
		refuse(h, fd);
	}
	h->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return 1;
	return err == EAGAIN || err == EWOULDBLOCK ? -1 : 0;
}

/* accept_trouble - log an accept failure at most once per ACCEPT_WARN_MS,
 * with the count of those not logged since. */
static void
accept_trouble(struct httpd *h, int err, const char *then)
{
	uint64_t now = mono_ms();

	if (h->accept_warn_ms != 0 &&
	    now - h->accept_warn_ms < ACCEPT_WARN_MS) {
		h->accept_quiet++;
		return;
	}
	log_warn("httpd: accept: %s (%u more since the last report, %u "
	         "connections open); %s",
	    strerror(err), h->accept_quiet, h->nconns, then);
	h->accept_warn_ms = now;
	h->accept_quiet = 0;
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct httpd *h = arg;
	int i, one = 1;

	(void)what;
	for (i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			int err = errno, rc = 0;

			if (err == EAGAIN || err == EWOULDBLOCK)
				return;
			if (err == EINTR || err == ECONNABORTED ||
			    err == EPROTO)
				continue;
			if (err == EMFILE || err == ENFILE)
				rc = refuse_with_spare(h);
			if (rc < 0)
				return; /* the backlog is empty */
			ST_ADD(h, accept_errors, 1);
			if (rc > 0) {
				accept_trouble(
				    h, err, "answering 503 overloaded");
				continue;
			}
			if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
			    err == ENOMEM) {
				struct timeval tv = { 0,
					ACCEPT_PAUSE_MS * 1000 };

				accept_trouble(h, err, "pausing accepts");
				event_del(h->lev);
				event_add(h->pause_ev, &tv);
			}
			return;
		}
		if (h->nconns >= h->lim.max_connections || h->draining) {
			ST_ADD(h, over_max_connections, 1);
			refuse(h, fd);
			continue;
		}
		if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
			(void)setsockopt(
			    fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conn_new(h, fd, &ss);
	}
}

/* --- open files ------------------------------------------------------- */

uint64_t
httpd_fd_need(unsigned max_connections)
{
	return (uint64_t)max_connections + HTTPD_FD_RESERVE;
}

unsigned
httpd_fd_room(uint64_t nofile)
{
	uint64_t reserve = HTTPD_FD_RESERVE;

	if (reserve > nofile / 2)
		reserve = nofile / 2;
	if (nofile - reserve > UINT32_MAX)
		return UINT32_MAX;
	return (unsigned)(nofile - reserve);
}

/* fit_fds - lower max_connections to what the soft RLIMIT_NOFILE leaves
 * room for. */
static void
fit_fds(struct httpd_limits *lim)
{
	struct rlimit rl;
	unsigned room;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return;
	room = httpd_fd_room((uint64_t)rl.rlim_cur);
	if (room >= lim->max_connections)
		return;
	log_warn("httpd: max_connections %u lowered to %u: the open files "
	         "limit is %llu (hard %llu), %llu needed",
	    lim->max_connections, room, (unsigned long long)rl.rlim_cur,
	    (unsigned long long)rl.rlim_max,
	    (unsigned long long)httpd_fd_need(lim->max_connections));
	lim->max_connections = room > 0 ? room : 1;
}

/* --- the server ------------------------------------------------------- */

struct httpd *
httpd_new(struct event_base *base, int listen_fd, const struct httpd_ops *ops,
    void *arg, const struct httpd_limits *lim)
{
	struct httpd *h = xcalloc(1, sizeof(*h));
	static const char busy_body[] =
	    "{\"error\":{\"code\":\"overloaded\","
	    "\"message\":\"too many connections\"}}";
	unsigned i;

	h->base = base;
	h->lfd = listen_fd;
	h->ops = ops;
	h->arg = arg;
	if (lim != NULL)
		h->lim = *lim;
	if (h->lim.max_head_bytes == 0)
		h->lim.max_head_bytes = 16384;
	if (h->lim.max_head_bytes > (1u << 30))
		h->lim.max_head_bytes = 1u << 30;
	if (h->lim.head_timeout_ms == 0)
		h->lim.head_timeout_ms = 10000;
	if (h->lim.body_timeout_ms == 0)
		h->lim.body_timeout_ms = 30000;
	if (h->lim.keepalive_timeout_ms == 0)
		h->lim.keepalive_timeout_ms = 65000;
	if (h->lim.write_timeout_ms == 0)
		h->lim.write_timeout_ms = 30000;
	if (h->lim.linger_ms == 0)
		h->lim.linger_ms = 2000;
	if (h->lim.max_connections == 0)
		h->lim.max_connections = 16384;
	if (h->lim.max_connections > SLOT_MASK)
		h->lim.max_connections = SLOT_MASK;
	fit_fds(&h->lim);
	if (h->lim.max_output_bytes == 0)
		h->lim.max_output_bytes = 1024 * 1024;
	if (h->lim.error_code_header == NULL)
		h->lim.error_code_header = "x-sendcat-error-code";
	h->st = &h->own;
	h->own.max_connections = h->lim.max_connections;
	h->tv_fresh = common_tv(base, h->lim.head_timeout_ms);
	h->tv_ka = common_tv(base, h->lim.keepalive_timeout_ms);
	h->tv_write = common_tv(base, h->lim.write_timeout_ms);
	h->nslots = h->lim.max_connections;
	h->slots = xcalloc(h->nslots, sizeof(*h->slots));
	h->free_slots = xcalloc(h->nslots, sizeof(*h->free_slots));
	for (i = 0; i < h->nslots; i++)
		h->free_slots[i] = h->nslots - 1 - i;
	h->nfree = h->nslots;
	h->busy_status = sizeof("HTTP/1.1 503 Service Unavailable\r\n") - 1;
	h->busy_len = (size_t)snprintf(h->busy, sizeof(h->busy),
	    "HTTP/1.1 503 Service Unavailable\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Content-Type: application/json\r\n%s: overloaded\r\n"
	    "Retry-After: 1\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n%s",
	    h->lim.error_code_header, sizeof(busy_body) - 1, busy_body);
	if (h->busy_len >= sizeof(h->busy))
		h->busy_len = h->busy_status = 0;
	h->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	h->lev =
	    event_new(base, listen_fd, EV_READ | EV_PERSIST, accept_cb, h);
	h->pause_ev = evtimer_new(base, pause_cb, h);
	if (h->lev == NULL || h->pause_ev == NULL ||
	    event_add(h->lev, NULL) != 0) {
		log_err("httpd: cannot register the listener");
		if (h->lev != NULL)
			event_free(h->lev);
		if (h->pause_ev != NULL)
			event_free(h->pause_ev);
		if (h->spare_fd >= 0)
			close(h->spare_fd);
		free(h->slots);
		free(h->free_slots);
		free(h);
		return NULL;
	}
	return h;
}

void
httpd_set_stats(struct httpd *h, struct httpd_stats *st)
{
	h->st = st != NULL ? st : &h->own;
	__atomic_store_n(&h->st->max_connections,
	    (uint64_t)h->lim.max_connections, __ATOMIC_RELAXED);
}

unsigned
httpd_nconns(const struct httpd *h)
{
	return h->nconns;
}

void
httpd_drain(struct httpd *h)
{
	unsigned i;

	h->draining = 1;
	event_del(h->lev);
	event_del(h->pause_ev);
	for (i = 0; i < h->nslots; i++) {
		struct conn *c = h->slots[i];

		if (c == NULL || c->dead)
			continue;
		if (c->phase == P_IDLE)
			conn_kill(c);
		else if (c->phase == P_HEAD || c->phase == P_BODY ||
		    c->phase == P_APP)
			c->closing = 1;
	}
}

void
httpd_free(struct httpd *h)
{
	unsigned i;

	if (h == NULL)
		return;
	for (i = 0; i < h->nslots; i++) {
		if (h->slots[i] != NULL)
			conn_free(h->slots[i]);
	}
	event_free(h->lev);
	event_free(h->pause_ev);
	if (h->spare_fd >= 0)
		close(h->spare_fd);
	free(h->slots);
	free(h->free_slots);
	free(h);
}

/* --- requests --------------------------------------------------------- */

uint64_t
httpd_req_id(const struct httpd_req *r)
{
	return r->id;
}

struct httpd_req *
httpd_req_lookup(struct httpd *h, uint64_t id)
{
	uint64_t slot = id & SLOT_MASK;
	struct conn *c;

	if (id == 0 || slot >= h->nslots)
		return NULL;
	c = h->slots[slot];
	if (c == NULL || c->dead || c->req.id != id || !c->req.awaiting)
		return NULL;
	return &c->req;
}

void
httpd_req_set_close_cb(struct httpd_req *r,
    void (*cb)(void *cbarg, struct httpd_req *req), void *cbarg)
{
	r->close_cb = cb;
	r->close_arg = cbarg;
}

void
httpd_req_end_on_eof(struct httpd_req *r)
{
	r->end_on_eof = 1;
}

void
httpd_req_set_drain_cb(struct httpd_req *r,
    void (*cb)(void *cbarg, struct httpd_req *req), void *cbarg)
{
	r->drain_cb = cb;
	r->drain_arg = cbarg;
}

void
httpd_req_set_data(struct httpd_req *r, void *data)
{
	r->data = data;
}

void *
httpd_req_data(const struct httpd_req *r)
{
	return r->data;
}

void
httpd_req_set_route(struct httpd_req *r, unsigned route)
{
	r->route = route;
}

void
httpd_req_set_code(struct httpd_req *r, unsigned code)
{
	r->code = code;
}

struct httpd *
httpd_req_server(const struct httpd_req *r)
{
	return r->c->h;
}

static const char *
view(const struct httpd_req *r, struct httpp_span s)
{
	if (!r->has_head)
		return "";
	return r->c->in + r->c->rpos + s.off;
}

const char *
httpd_req_method(const struct httpd_req *r)
{
	return view(r, r->p.method);
}

int
httpd_req_is_head(const struct httpd_req *r)
{
	return r->has_head && r->head_method;
}

const char *
httpd_req_path(const struct httpd_req *r)
{
	return view(r, r->p.path);
}

const char *
httpd_req_query(const struct httpd_req *r)
{
	return r->has_head && r->p.has_query ? view(r, r->p.query) : NULL;
}

const char *
httpd_req_header(const struct httpd_req *r, const char *name)
{
	if (!r->has_head)
		return NULL;
	return httpp_field(&r->p, r->c->in + r->c->rpos, name, NULL);
}

size_t
httpd_req_nheaders(const struct httpd_req *r)
{
	return r->has_head ? r->p.nfields : 0;
}

void
httpd_req_header_at(
    const struct httpd_req *r, size_t i, const char **name, const char **value)
{
	if (i >= httpd_req_nheaders(r)) {
		*name = *value = NULL;
		return;
	}
	*name = view(r, r->p.fields[i].name);
	*value = view(r, r->p.fields[i].value);
}

const void *
httpd_req_body(const struct httpd_req *r, size_t *len)
{
	if (!r->body_done) {
		*len = 0;
		return NULL;
	}
	*len = r->p.body_len;
	return r->c->in + r->c->rpos + r->p.head_len;
}

const struct sockaddr_storage *
httpd_req_peer(const struct httpd_req *r)
{
	return &r->c->peer;
}

const char *
httpd_req_peer_str(const struct httpd_req *r)
{
	struct conn *c = r->c;

	if (c->peer_str[0] == '\0') {
		const void *a = NULL;

		if (c->peer.ss_family == AF_INET)
			a = &((const struct sockaddr_in *)&c->peer)->sin_addr;
		else if (c->peer.ss_family == AF_INET6)
			a = &((const struct sockaddr_in6 *)&c->peer)
			         ->sin6_addr;
		if (a == NULL ||
		    inet_ntop(c->peer.ss_family, a, c->peer_str,
		        sizeof(c->peer_str)) == NULL)
			strlcpy_rg(
			    c->peer_str, "unknown", sizeof(c->peer_str));
	}
	return c->peer_str;
}

int
httpd_req_version(const struct httpd_req *r)
{
	return r->has_head ? (int)r->p.version : 0;
}

int
httpd_req_keepalive(const struct httpd_req *r)
{
	return r->has_head && r->p.keep_alive && !r->c->closing;
}

/* --- listening -------------------------------------------------------- */

int
httpd_listen(const char *hostport, int reuseport, char *err, size_t errlen)
{
	char host[256], port[16];
	const char *colon, *hp = hostport;
	struct addrinfo hints, *res = NULL, *ai;
	size_t hl;
	int rc, fd = -1, one = 1;

	if (hp[0] == '[') {
		const char *rb = strchr(hp, ']');

		if (rb == NULL || rb[1] != ':') {
			snprintf(err, errlen, "bad address \"%s\"", hostport);
			return -1;
		}
		hl = (size_t)(rb - hp - 1);
		colon = rb + 1;
		hp++;
	} else {
		colon = strrchr(hp, ':');
		if (colon == NULL || memchr(hp, ':', (size_t)(colon - hp))) {
			snprintf(err, errlen,
			    "bad address \"%s\" (host:port, "
			    "[v6]:port)",
			    hostport);
			return -1;
		}
		hl = (size_t)(colon - hp);
	}
	if (hl >= sizeof(host) || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= sizeof(port) ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
		snprintf(err, errlen, "bad address \"%s\"", hostport);
		return -1;
	}
	memcpy(host, hp, hl);
	host[hl] = '\0';
	strlcpy_rg(port, colon + 1, sizeof(port));
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(hl == 0 || strcmp(host, "*") == 0 ? NULL : host, port,
	    &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", hostport, gai_strerror(rc));
		return -1;
	}
	snprintf(err, errlen, "%s: no usable address", hostport);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0) {
			snprintf(err, errlen, "%s: socket: %s", hostport,
			    strerror(errno));
			continue;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		        sizeof(one)) != 0 ||
		    (reuseport &&
		        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
		            sizeof(one)) != 0) ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
		    listen(fd, 4096) != 0) {
			snprintf(
			    err, errlen, "%s: %s", hostport, strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		break;
	}
	freeaddrinfo(res);
	return fd;
}
