/*
 * http_server_test - a real httpd on 127.0.0.1 (ephemeral port) with its
 * own event_base, driven by non-blocking client sockets on the same loop:
 * answers, keep-alive, pipelining, early answers, 413 (Content-Length and
 * chunked), 431, 400, 408, async answers, a client leaving before its
 * async answer, a client that half-closes after (pipelined) requests,
 * SSE-style streams, Expect: 100-continue, HEAD (answered as GET without
 * a body), absolute-form targets, nosniff on every answer, a flood of
 * empty lines, HTTP/1.0, idle timeout, max_connections, and running out
 * of descriptors (the limit fitted to RLIMIT_NOFILE, 503 with the spare
 * descriptor, the warning rate-limited).  Every wait is bounded by
 * WAIT_MS.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "http/server.h"
#include "testlib.h"
#include "util/util.h"

#define WAIT_MS 5000

struct client {
	int fd;
	struct event *ev;
	char buf[262144];
	size_t len;
	int eof;
};

struct app {
	struct event_base *base;
	struct event *tick;
	struct httpd *h;
	struct httpd_stats st;
	int lfd, port;
	int64_t limit;
	int answer_errors; /* on_error answers itself */
	int n_head, n_request, n_error, n_close, late_dead, late_done;
	enum httpd_err last_err;
	uint64_t pending_id;
	struct event *late;
	int stream_step;
	size_t flood_sent, flood_target;
	int n_drain, n_enobufs;
	int n_done;
	struct httpd_done last_done;
	char last_done_path[64];
};

static struct app A;

/* --- the application --------------------------------------------------- */

static void
late_cb(evutil_socket_t fd, short what, void *arg)
{
	struct app *a = arg;
	struct httpd_req *r = httpd_req_lookup(a->h, a->pending_id);
	static const struct httpd_header hd[] = { { "Content-Type",
	    "text/plain" } };

	(void)fd;
	(void)what;
	if (r == NULL) {
		a->late_dead++;
		return;
	}
	ck_assert_int_eq(httpd_respond(r, 200, hd, 1, "late", 4), 0);
	/* the request is gone now: a second answer is refused */
	ck_assert_ptr_null(httpd_req_lookup(a->h, a->pending_id));
	a->late_done++;
}

static void
stream_cb(evutil_socket_t fd, short what, void *arg)
{
	struct app *a = arg;
	struct httpd_req *r = httpd_req_lookup(a->h, a->pending_id);
	char ev[32];
	struct timeval tv = { 0, 10000 };

	(void)fd;
	(void)what;
	if (r == NULL) {
		a->late_dead++;
		return;
	}
	if (a->stream_step == 3) {
		ck_assert_int_eq(httpd_stream_end(r), 0);
		a->late_done++;
		return;
	}
	snprintf(ev, sizeof(ev), "data: %c\n\n", 'a' + a->stream_step++);
	ck_assert_int_ge(httpd_stream_write(r, ev, strlen(ev)), 0);
	evtimer_add(a->late, &tv);
}

/* flood_more - write 1000-byte events until the queue is full or the
 * target is reached; the drain callback calls again. */
static void
flood_more(void *arg, struct httpd_req *r)
{
	struct app *a = arg;
	char ev[1000];

	a->n_drain++;
	memset(ev, 'x', sizeof(ev));
	while (a->flood_sent < a->flood_target) {
		long q = httpd_stream_write(r, ev, sizeof(ev));

		if (q < 0) {
			ck_assert_int_eq(errno, ENOBUFS);
			a->n_enobufs++;
			return;
		}
		ck_assert_uint_le((size_t)q, httpd_req_output_cap(r));
		a->flood_sent += sizeof(ev);
	}
	ck_assert_int_eq(httpd_stream_end(r), 0);
	a->late_done++;
}

static int64_t
on_head(void *arg, struct httpd_req *r)
{
	struct app *a = arg;

	a->n_head++;
	httpd_req_set_route(r, 7);
	if (strcmp(httpd_req_path(r), "/async-eof") == 0)
		httpd_req_end_on_eof(r);
	if (strcmp(httpd_req_path(r), "/early") == 0) {
		httpd_req_set_code(r, 42);
		ck_assert_int_eq(httpd_respond(r, 404, NULL, 0, "nope", 4), 0);
		return -1;
	}
	return a->limit;
}

static void
on_request(void *arg, struct httpd_req *r)
{
	struct app *a = arg;
	const char *path = httpd_req_path(r);
	char out[4096];
	const void *body;
	size_t blen;
	int n;

	a->n_request++;
	if (strcmp(path, "/async") == 0 || strcmp(path, "/async-eof") == 0) {
		struct timeval tv = { 0, 50000 };

		a->pending_id = httpd_req_id(r);
		ck_assert(a->pending_id != 0);
		ck_assert_ptr_eq(httpd_req_lookup(a->h, a->pending_id), r);
		if (a->late != NULL)
			event_free(a->late);
		a->late = evtimer_new(a->base, late_cb, a);
		evtimer_add(a->late, &tv);
		return;
	}
	if (strcmp(path, "/stream") == 0) {
		static const struct httpd_header hd[] = {
			{ "Content-Type", "text/event-stream" },
			{ "Cache-Control", "no-cache" },
			{ "Content-Length",
			    "99" }, /* dropped: framing is ours */
		};
		struct timeval tv = { 0, 10000 };

		ck_assert_int_eq(httpd_stream_start(r, 200, hd, 3), 0);
		ck_assert_int_eq(httpd_respond(r, 200, NULL, 0, NULL, 0), -1);
		a->pending_id = httpd_req_id(r);
		a->stream_step = 0;
		if (a->late != NULL)
			event_free(a->late);
		a->late = evtimer_new(a->base, stream_cb, a);
		evtimer_add(a->late, &tv);
		return;
	}
	if (strcmp(path, "/sum") == 0) {
		const unsigned char *u = httpd_req_body(r, &blen);
		unsigned long sum = 0;
		size_t i;

		for (i = 0; i < blen; i++)
			sum = sum * 31 + u[i];
		n = snprintf(out, sizeof(out), "%zu:%lu", blen, sum);
		ck_assert_int_eq(
		    httpd_respond(r, 200, NULL, 0, out, (size_t)n), 0);
		return;
	}
	if (strcmp(path, "/flood") == 0) {
		ck_assert_int_eq(httpd_stream_start(r, 200, NULL, 0), 0);
		httpd_req_set_drain_cb(r, flood_more, a);
		flood_more(a, r);
		return;
	}
	if (strcmp(path, "/nocontent") == 0) {
		ck_assert_int_eq(httpd_respond(r, 204, NULL, 0, NULL, 0), 0);
		return;
	}
	if (strcmp(path, "/sniff") == 0) {
		static const struct httpd_header hd[] = {
			{ "X-Content-Type-Options", "sniff-me" },
		};

		ck_assert_int_eq(httpd_respond(r, 200, hd, 1, "s", 1), 0);
		return;
	}
	body = httpd_req_body(r, &blen);
	n = snprintf(out, sizeof(out), "ok:%s:%s:%s:%.*s", httpd_req_method(r),
	    path, httpd_req_query(r) ? httpd_req_query(r) : "-", (int)blen,
	    blen ? (const char *)body : "");
	{
		const struct httpd_header hd[] = {
			{ "Content-Type", "text/plain" },
			{ "X-Peer", httpd_req_peer_str(r) },
			{ "X-UA",
			    httpd_req_header(r, "user-agent")
			        ? httpd_req_header(r, "user-agent")
			        : "none" },
			{ "X-Head", httpd_req_is_head(r) ? "1" : "0" },
		};

		ck_assert_int_eq(
		    httpd_respond(r, 200, hd, 4, out, (size_t)n), 0);
	}
	/* answered: no second answer */
	ck_assert_int_eq(httpd_respond(r, 200, NULL, 0, NULL, 0), -1);
}

static void
on_error(void *arg, struct httpd_req *r, enum httpd_err e)
{
	struct app *a = arg;
	char body[256];
	int n;

	a->n_error++;
	a->last_err = e;
	if (!a->answer_errors)
		return;
	n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"app_%s\"}}",
	    httpd_err_code(e));
	{
		const struct httpd_header hd[] = {
			{ "Content-Type", "application/json" },
			{ "x-test-error", httpd_err_code(e) },
		};

		ck_assert_int_eq(httpd_respond(r, httpd_err_status(e), hd, 2,
		                     body, (size_t)n),
		    0);
	}
}

static void
on_close(void *arg, struct httpd_req *r)
{
	struct app *a = arg;

	a->n_close++;
	/* the request is no longer reachable by id */
	ck_assert_ptr_null(httpd_req_lookup(a->h, httpd_req_id(r)));
}

static void
on_done(void *arg, struct httpd_req *r, const struct httpd_done *d)
{
	struct app *a = arg;

	a->n_done++;
	a->last_done = *d;
	snprintf(a->last_done_path, sizeof(a->last_done_path), "%s",
	    httpd_req_path(r));
	/* the request is over: it cannot be answered again */
	ck_assert_int_eq(httpd_respond(r, 200, NULL, 0, NULL, 0), -1);
}

static const struct httpd_ops ops = {
	.on_head = on_head,
	.on_request = on_request,
	.on_error = on_error,
	.on_close = on_close,
	.on_done = on_done,
};

/* --- harness ------------------------------------------------------------ */

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static void
app_start(const struct httpd_limits *lim)
{
	char err[256];
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct timeval tv = { 0, 5000 };

	memset(&A, 0, sizeof(A));
	A.limit = 1024;
	A.base = event_base_new();
	ck_assert_ptr_nonnull(A.base);
	A.lfd = httpd_listen("127.0.0.1:0", 1, err, sizeof(err));
	ck_assert_msg(A.lfd >= 0, "%s", err);
	ck_assert_int_eq(getsockname(A.lfd, (struct sockaddr *)&sin, &sl), 0);
	A.port = ntohs(sin.sin_port);
	A.h = httpd_new(A.base, A.lfd, &ops, &A, lim);
	ck_assert_ptr_nonnull(A.h);
	httpd_set_stats(A.h, &A.st);
	A.tick = event_new(A.base, -1, EV_PERSIST, tick_cb, NULL);
	event_add(A.tick, &tv);
}

static void
app_stop(void)
{
	httpd_free(A.h);
	if (A.late != NULL)
		event_free(A.late);
	event_free(A.tick);
	close(A.lfd);
	event_base_free(A.base);
}

static void
client_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	ssize_t n;

	(void)what;
	if (c->len == sizeof(c->buf))
		return;
	n = read(fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n > 0)
		c->len += (size_t)n;
	else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		c->eof = 1;
		event_del(c->ev);
	}
}

static struct client *
client_new(void)
{
	struct client *c = xcalloc(1, sizeof(*c));
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)A.port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(c->fd, 0);
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		ck_assert_int_eq(errno, EINPROGRESS);
	c->ev =
	    event_new(A.base, c->fd, EV_READ | EV_PERSIST, client_read_cb, c);
	event_add(c->ev, NULL);
	return c;
}

static void
client_close(struct client *c)
{
	event_del(c->ev);
	close(c->fd);
	c->fd = -1;
}

/* client_reset - leave with a reset (SO_LINGER 0), not a FIN */
static void
client_reset(struct client *c)
{
	struct linger lg = { 1, 0 };

	ck_assert_int_eq(
	    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	client_close(c);
}

static void
client_free(struct client *c)
{
	if (c->fd >= 0)
		client_close(c);
	event_free(c->ev);
	free(c);
}

static void client_send(struct client *c, const char *s, size_t n);

static void
client_puts(struct client *c, const char *s)
{
	client_send(c, s, strlen(s));
}

typedef int (*pred_fn)(void *arg);

/* run_until - run the loop until pred(arg) or WAIT_MS; returns pred. */
static int
run_until(pred_fn pred, void *arg)
{
	uint64_t end = mono_ms() + WAIT_MS;

	while (!pred(arg)) {
		if (mono_ms() > end)
			return 0;
		event_base_loop(A.base, EVLOOP_ONCE);
	}
	return 1;
}

static void
client_send(struct client *c, const char *s, size_t n)
{
	uint64_t end = mono_ms() + WAIT_MS;

	while (n > 0) {
		ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);

		if (w > 0) {
			s += w;
			n -= (size_t)w;
			continue;
		}
		ck_assert_msg(w < 0 && (errno == EAGAIN || errno == ENOTCONN),
		    "send: %s", strerror(errno));
		ck_assert(mono_ms() < end);
		event_base_loop(A.base, EVLOOP_ONCE);
	}
}

struct resp {
	int status;
	char head[4096];
	char body[65536];
	size_t body_len;
};

/* resp_parse - one response from b[0..len): its size, 0 if incomplete,
 * -1 if malformed.  Decodes chunked bodies. */
static long
resp_parse(const char *b, size_t len, int eof, struct resp *r)
{
	const char *e, *cl, *te;
	size_t hl, pos;

	memset(r, 0, sizeof(*r));
	e = memmem(b, len, "\r\n\r\n", 4);
	if (e == NULL)
		return 0;
	hl = (size_t)(e - b) + 4;
	if (hl >= sizeof(r->head) || sscanf(b, "HTTP/1.1 %d", &r->status) != 1)
		return -1;
	memcpy(r->head, b, hl);
	r->head[hl] = '\0';
	cl = strcasestr(r->head, "\r\ncontent-length:");
	te = strcasestr(r->head, "\r\ntransfer-encoding: chunked");
	if (r->status == 100 || r->status == 204 || r->status == 304)
		return (long)hl;
	if (cl != NULL) {
		size_t n = strtoul(cl + 17, NULL, 10);

		if (len - hl < n)
			return 0;
		ck_assert_uint_lt(n, sizeof(r->body));
		memcpy(r->body, b + hl, n);
		r->body_len = n;
		return (long)(hl + n);
	}
	if (te != NULL) {
		pos = hl;
		for (;;) {
			char *end;
			const char *lf = memchr(b + pos, '\n', len - pos);
			unsigned long n;

			if (lf == NULL)
				return 0;
			n = strtoul(b + pos, &end, 16);
			pos = (size_t)(lf - b) + 1;
			if (n == 0) {
				if (len - pos < 2)
					return 0;
				return (long)(pos + 2);
			}
			if (len - pos < n + 2)
				return 0;
			memcpy(r->body + r->body_len, b + pos, n);
			r->body_len += n;
			pos += n + 2;
		}
	}
	if (!eof)
		return 0;
	r->body_len = len - hl;
	memcpy(r->body, b + hl, r->body_len);
	return (long)len;
}

struct want_resp {
	struct client *c;
	struct resp *r;
	size_t off; /* where this response starts in c->buf */
	long n;
};

static int
have_resp(void *arg)
{
	struct want_resp *w = arg;

	w->n = resp_parse(
	    w->c->buf + w->off, w->c->len - w->off, w->c->eof, w->r);
	return w->n != 0 || w->c->eof;
}

/* get_resp - wait for the next response on c; *off advances past it. */
static void
get_resp(struct client *c, size_t *off, struct resp *r)
{
	struct want_resp w = { c, r, *off, 0 };

	ck_assert_msg(run_until(have_resp, &w), "no response in time");
	ck_assert_msg(w.n > 0, "no complete response (eof %d, %zu bytes)",
	    c->eof, c->len - *off);
	*off += (size_t)w.n;
}

static int
is_eof(void *arg)
{
	return ((struct client *)arg)->eof;
}

static int
int_ge1(void *arg)
{
	return *(int *)arg >= 1;
}

static int
u64_ge2(void *arg)
{
	return *(uint64_t *)arg >= 2;
}

static int
body_is(const struct resp *r, const char *s)
{
	return r->body_len == strlen(s) &&
	    memcmp(r->body, s, r->body_len) == 0;
}

/* --- tests -------------------------------------------------------------- */

START_TEST(answer_200)
{
	struct client *c;
	struct resp r;
	size_t off = 0;

	app_start(NULL);
	c = client_new();
	client_puts(c,
	    "GET /hello?x=1 HTTP/1.1\r\nHost: t\r\n"
	    "User-Agent: check\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(body_is(&r, "ok:GET:/hello:x=1:"), "%s", r.body);
	ck_assert_ptr_nonnull(strstr(r.head, "\r\nDate: "));
	ck_assert_ptr_nonnull(strstr(r.head, "\r\nX-Peer: 127.0.0.1\r\n"));
	ck_assert_ptr_nonnull(strstr(r.head, "\r\nX-UA: check\r\n"));
	ck_assert_ptr_nonnull(
	    strstr(r.head, "\r\nX-Content-Type-Options: nosniff\r\n"));
	ck_assert_ptr_null(strstr(r.head, "Connection:"));
	ck_assert_int_eq(c->eof, 0);
	ck_assert_uint_eq(A.st.requests, 1);
	ck_assert_uint_eq(A.st.responses_2xx, 1);
	ck_assert_uint_eq(A.st.accepted, 1);
	ck_assert_uint_eq(A.st.open, 1);
	client_free(c);
	app_stop();
}
END_TEST

START_TEST(keepalive_and_pipelining)
{
	struct client *c;
	struct resp r;
	size_t off = 0;

	app_start(NULL);
	c = client_new();
	client_puts(c, "GET /one HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert(body_is(&r, "ok:GET:/one:-:"));
	client_puts(c,
	    "POST /two HTTP/1.1\r\nHost: t\r\n"
	    "Content-Length: 3\r\n\r\nabc");
	get_resp(c, &off, &r);
	ck_assert(body_is(&r, "ok:POST:/two:-:abc"));

	/* three pipelined requests in one write, answered in order */
	client_puts(c,
	    "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
	    "POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
	    "GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert(body_is(&r, "ok:GET:/a:-:"));
	get_resp(c, &off, &r);
	ck_assert(body_is(&r, "ok:POST:/b:-:xy"));
	get_resp(c, &off, &r);
	ck_assert(body_is(&r, "ok:GET:/c:-:"));
	ck_assert_ptr_nonnull(strstr(r.head, "\r\nConnection: close\r\n"));
	ck_assert(run_until(is_eof, c));
	ck_assert_uint_eq(A.st.accepted, 1);
	ck_assert_uint_eq(A.st.requests, 5);
	client_free(c);
	app_stop();
}
END_TEST

START_TEST(early_answer)
{
	struct client *c;
	struct resp r;
	size_t off = 0;

	app_start(NULL);
	c = client_new();
	/* body already here: skipped, connection kept */
	client_puts(c,
	    "POST /early HTTP/1.1\r\nHost: t\r\n"
	    "Content-Length: 5\r\n\r\nhello");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 404);
	ck_assert_ptr_null(strstr(r.head, "Connection: close"));
	client_puts(c, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert(body_is(&r, "ok:GET:/after:-:"));
	/* pipelined early answers, in order */
	client_puts(c,
	    "GET /early HTTP/1.1\r\nHost: t\r\n\r\n"
	    "GET /early HTTP/1.1\r\nHost: t\r\n\r\n"
	    "GET /after2 HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 404);
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 404);
	get_resp(c, &off, &r);
	ck_assert(body_is(&r, "ok:GET:/after2:-:"));
	/* body announced but not sent: answer, then close */
	client_puts(c,
	    "POST /early HTTP/1.1\r\nHost: t\r\n"
	    "Content-Length: 5000\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 404);
	ck_assert_ptr_nonnull(strstr(r.head, "Connection: close"));
	ck_assert(run_until(is_eof, c));
	ck_assert_int_eq(A.n_request, 2);
	ck_assert_int_eq(A.n_close, 0);
	client_free(c);
	app_stop();
}
END_TEST

START_TEST(too_large_by_length)
{
	struct client *c;
	struct resp r;
	size_t off = 0;

	app_start(NULL);
	A.limit = 100;
	A.answer_errors = 1;
	c = client_new();
	client_puts(c,
	    "POST /up HTTP/1.1\r\nHost: t\r\n"
	    "Content-Length: 1000\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 413);
	ck_assert_ptr_nonnull(strstr(r.head,
	    "\r\nx-test-error: "
	    "payload_too_large\r\n"));
	ck_assert_ptr_nonnull(strstr(r.head, "Connection: close"));
	ck_assert(
	    body_is(&r, "{\"error\":{\"code\":\"app_payload_too_large\"}}"));
	/* the client may still send its body: lingering close */
	{
		char junk[1000];

		memset(junk, 'x', sizeof(junk));
		client_send(c, junk, sizeof(junk));
	}
	ck_assert(run_until(is_eof, c));
	ck_assert_int_eq(A.n_error, 1);
	ck_assert_int_eq(A.last_err, HTTPD_E_BODY_TOO_LARGE);
	ck_assert_int_eq(A.n_request, 0);
	ck_assert_int_eq(A.n_close, 0);
	ck_assert_uint_eq(A.st.err_body_too_large, 1);
	client_free(c);
	app_stop();
}
END_TEST

START_TEST(too_large_by_chunks)
{
	struct client *c;
	struct resp r;
	size_t off = 0;

	app_start(NULL);
	A.limit = 10;
	c = client_new();
	/* the application does not answer: fallback JSON, and on_close */
	client_puts(c,
	    "POST /up HTTP/1.1\r\nHost: t\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"
	    "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 413);
	ck_assert_ptr_nonnull(strstr(r.head,
	    "\r\nx-sendcat-error-code: "
	    "payload_too_large\r\n"));
	ck_assert_ptr_nonnull(strstr(r.head, "application/json"));
	ck_assert_ptr_nonnull(
	    strstr(r.head, "\r\nX-Content-Type-Options: nosniff\r\n"));
	ck_assert_ptr_nonnull(
	    strstr(r.body, "\"code\":\"payload_too_large\""));
	ck_assert(run_until(is_eof, c));
	ck_assert_int_eq(A.n_error, 1);
	ck_assert_int_eq(A.n_close, 1); /* on_head was called */
	ck_assert_int_eq(A.n_request, 0);
	client_free(c);
	app_stop();
}
END_TEST

START_TEST(head_too_large_and_bad)
{
	struct httpd_limits lim = { .max_head_bytes = 1024 };
	struct client *c;
	struct resp r;
	size_t off = 0;
	char req[4096];
	int n;

	app_start(&lim);
	c = client_new();
	n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: t\r\nX: ");
	memset(req + n, 'a', 2000);
	strcpy(req + n + 2000, "\r\n\r\n");
	client_puts(c, req);
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 431);
	ck_assert_ptr_nonnull(strstr(r.body, "headers_too_large"));
	ck_assert(run_until(is_eof, c));
	ck_assert_int_eq(A.n_head, 0);
	ck_assert_int_eq(A.n_close, 0);
	client_free(c);

	/* smuggling attempt: 400, closed */
	c = client_new();
	off = 0;
	client_puts(c,
	    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert(run_until(is_eof, c));
	client_free(c);

	/* unsupported coding: 501; bad version: 505 */
	c = client_new();
	off = 0;
	client_puts(c,
	    "POST / HTTP/1.1\r\nHost: t\r\n"
	    "Transfer-Encoding: gzip, chunked\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 501);
	client_free(c);
	c = client_new();
	off = 0;
	client_puts(c, "GET / HTTP/1.7\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 505);
	client_free(c);
	ck_assert_uint_eq(A.st.err_head_too_large, 1);
	ck_assert_uint_eq(A.st.err_bad_request, 1);
	ck_assert_uint_eq(A.st.err_not_implemented, 1);
	ck_assert_uint_eq(A.st.err_version, 1);
	app_stop();
}
END_TEST

START_TEST(head_timeout)
{
	struct httpd_limits lim = { .head_timeout_ms = 200 };
	struct client *c;
	struct resp r;
	size_t off = 0;

	app_start(&lim);
	c = client_new();
	client_puts(c, "GET / HTTP/1.1\r\nHo");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 408);
	ck_assert_ptr_nonnull(strstr(r.body, "request_timeout"));
	ck_assert(run_until(is_eof, c));
	ck_assert_uint_eq(A.st.err_timeout, 1);
	client_free(c);

	/* a slow client dripping bytes does not extend the deadline */
	c = client_new();
	off = 0;
	client_puts(c, "G");
	{
		uint64_t end = mono_ms() + WAIT_MS;

		while (!c->eof && c->len == 0 && mono_ms() < end) {
			struct timeval tv = { 0, 50000 };

			event_base_loopexit(A.base, &tv);
			event_base_dispatch(A.base);
			client_puts(c, "E");
		}
	}
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 408);
	client_free(c);
	app_stop();
}
END_TEST

START_TEST(async_answer)
{
	struct client *c;
	struct resp r;
	size_t off = 0;

	app_start(NULL);
	c = client_new();
	client_puts(c, "GET /async HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert(body_is(&r, "late"));
	ck_assert_int_eq(A.late_done, 1);
	/* and the connection goes on */
	client_puts(c, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert(body_is(&r, "ok:GET:/x:-:"));
	/* pipelined behind an async answer: waits its turn */
	client_puts(c,
	    "GET /async HTTP/1.1\r\nHost: t\r\n\r\n"
	    "GET /y HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert(body_is(&r, "late"));
	get_resp(c, &off, &r);
	ck_assert(body_is(&r, "ok:GET:/y:-:"));
	ck_assert_int_eq(A.n_close, 0);
	client_free(c);
	app_stop();
}
END_TEST

START_TEST(disconnect_before_async)
{
	struct client *c;

	app_start(NULL);
	c = client_new();
	client_puts(c, "GET /async HTTP/1.1\r\nHost: t\r\n\r\n");
	ck_assert(run_until(int_ge1, &A.n_request));
	/* a reset: the client is gone for sure (a FIN may be a half-close,
	 * see half_close) */
	client_reset(c);
	ck_assert(run_until(int_ge1, &A.n_close));
	/* the timer fires later: the id no longer resolves */
	ck_assert(run_until(int_ge1, &A.late_dead));
	ck_assert_int_eq(A.late_done, 0);
	ck_assert_int_eq(A.n_close, 1);
	ck_assert_uint_eq(A.st.client_aborts, 1);
	ck_assert_uint_eq(A.st.open, 0);
	client_free(c);
	app_stop();
}
END_TEST

START_TEST(half_close)
{
	struct client *c;
	struct resp r;
	size_t off = 0, n = 0;
	char req[4096], want[64];
	int i;

	app_start(NULL);
	/* one request, then shutdown(SHUT_WR): answered (later), closed */
	c = client_new();
	client_puts(c, "GET /async HTTP/1.1\r\nHost: t\r\n\r\n");
	ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
	get_resp(c, &off, &r);
	ck_assert(body_is(&r, "late"));
	ck_assert(run_until(is_eof, c));
	ck_assert_uint_eq(c->len, off);
	client_free(c);

	/* 20 pipelined, every other one answered later: all 20, in order */
	c = client_new();
	off = 0;
	for (i = 0; i < 20; i++) {
		if (i % 2 == 0)
			n += (size_t)snprintf(req + n, sizeof(req) - n,
			    "GET /async HTTP/1.1\r\nHost: t\r\n\r\n");
		else
			n += (size_t)snprintf(req + n, sizeof(req) - n,
			    "GET /p%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
	}
	client_send(c, req, n);
	ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
	for (i = 0; i < 20; i++) {
		get_resp(c, &off, &r);
		snprintf(want, sizeof(want), "ok:GET:/p%d:-:", i);
		ck_assert_msg(body_is(&r, i % 2 == 0 ? "late" : want),
		    "response %d: %s", i, r.body);
	}
	ck_assert(run_until(is_eof, c));
	ck_assert_uint_eq(c->len, off);
	ck_assert_int_eq(A.late_done, 11);
	ck_assert_int_eq(A.n_close, 0);
	ck_assert_uint_eq(A.st.client_aborts, 0);
	client_free(c);

	/* cut short by the EOF: a partial head is dropped without an
	 * answer, a partial body ends its request (on_close) */
	c = client_new();
	client_puts(c, "GET /x HTTP/1.1\r\nHo");
	ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
	ck_assert(run_until(is_eof, c));
	ck_assert_uint_eq(c->len, 0);
	client_free(c);
	c = client_new();
	client_puts(c,
	    "POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n"
	    "\r\nabc");
	ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
	ck_assert(run_until(is_eof, c));
	ck_assert_uint_eq(c->len, 0);
	ck_assert_int_eq(A.n_close, 1);
	ck_assert_uint_eq(A.st.client_aborts, 1);
	client_free(c);

	/* a request marked end_on_eof: the EOF ends it at once, unanswered */
	c = client_new();
	client_puts(c, "GET /async-eof HTTP/1.1\r\nHost: t\r\n\r\n");
	ck_assert_int_eq(shutdown(c->fd, SHUT_WR), 0);
	ck_assert(run_until(is_eof, c));
	ck_assert_uint_eq(c->len, 0);
	ck_assert_int_eq(A.n_close, 2);
	client_free(c);
	ck_assert_uint_eq(A.st.open, 0);
	app_stop();
}
END_TEST

START_TEST(stream)
{
	struct client *c;
	struct resp r;
	size_t off = 0;

	app_start(NULL);
	c = client_new();
	client_puts(c, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.head, "Transfer-Encoding: chunked"));
	ck_assert_ptr_nonnull(strstr(r.head, "text/event-stream"));
	ck_assert_ptr_null(strstr(r.head, "Content-Length"));
	ck_assert_msg(
	    body_is(&r, "data: a\n\ndata: b\n\ndata: c\n\n"), "%s", r.body);
	/* keep-alive after the stream */
	client_puts(c, "GET /z HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert(body_is(&r, "ok:GET:/z:-:"));
	client_free(c);

	/* HTTP/1.0: close-delimited */
	c = client_new();
	off = 0;
	client_puts(c, "GET /stream HTTP/1.0\r\n\r\n");
	ck_assert(run_until(is_eof, c));
	get_resp(c, &off, &r);
	ck_assert_ptr_null(strstr(r.head, "chunked"));
	ck_assert(body_is(&r, "data: a\n\ndata: b\n\ndata: c\n\n"));
	client_free(c);

	/* the client leaves mid-stream: on_close, no crash */
	c = client_new();
	A.late_dead = 0;
	A.n_close = 0;
	client_puts(c, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
	ck_assert(run_until(int_ge1, &A.stream_step));
	client_close(c);
	ck_assert(run_until(int_ge1, &A.n_close));
	ck_assert(run_until(int_ge1, &A.late_dead));
	ck_assert_uint_eq(A.st.client_aborts, 1);
	client_free(c);
	app_stop();
}
END_TEST

/* done_reports - on_done once per request, with its status, the
 * application's notes, the bytes of the answer and its times. */
START_TEST(done_reports)
{
	struct client *c;
	struct resp r;
	size_t off = 0, before;

	app_start(NULL);
	c = client_new();
	client_puts(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(A.n_done, 1);
	ck_assert_int_eq(A.last_done.status, 200);
	ck_assert_uint_eq(A.last_done.route, 7);
	ck_assert_uint_eq(A.last_done.code, 0);
	ck_assert_uint_eq(A.last_done.bytes, off);
	ck_assert_uint_le(A.last_done.answer_us, A.last_done.total_us);
	ck_assert_str_eq(A.last_done_path, "/hello");

	/* answered from on_head, with a code noted */
	before = off;
	client_puts(c, "GET /early HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(A.n_done, 2);
	ck_assert_int_eq(A.last_done.status, 404);
	ck_assert_uint_eq(A.last_done.code, 42);
	ck_assert_uint_eq(A.last_done.bytes, off - before);

	/* a stream: every byte of it, reported at its end */
	before = off;
	client_puts(c, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(A.n_done, 3);
	ck_assert_int_eq(A.last_done.status, 200);
	ck_assert_uint_eq(A.last_done.bytes, off - before);
	ck_assert_uint_ge(A.last_done.total_us, 20000); /* 3 x 10 ms */
	client_free(c);

	/* a client gone before the answer: status 0, once */
	c = client_new();
	client_puts(c, "GET /async HTTP/1.1\r\nHost: t\r\n\r\n");
	ck_assert(run_until(int_ge1, &A.n_request));
	A.n_request = 0;
	client_reset(c);
	ck_assert(run_until(int_ge1, &A.late_dead));
	ck_assert_int_eq(A.n_done, 4);
	ck_assert_int_eq(A.last_done.status, 0);
	ck_assert_uint_eq(A.last_done.bytes, 0);
	ck_assert_uint_eq(A.last_done.route, 7);
	client_free(c);

	/* a malformed head: answered by the server, no route, no path */
	c = client_new();
	off = 0;
	client_puts(c, "GARBAGE\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_int_eq(A.n_done, 5);
	ck_assert_int_eq(A.last_done.status, 400);
	ck_assert_uint_eq(A.last_done.route, 0);
	ck_assert_str_eq(A.last_done_path, "");
	client_free(c);

	/* a body over the limit of an accepted head: the fallback answer
	 * and on_close for the owned request, but one on_done */
	A.limit = 4;
	c = client_new();
	off = 0;
	client_puts(c, "POST /sum HTTP/1.1\r\nHost: t\r\n"
	    "Content-Length: 10\r\n\r\n0123456789");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 413);
	ck_assert(run_until(is_eof, c));
	ck_assert_int_eq(A.n_done, 6);
	ck_assert_int_eq(A.last_done.status, 413);
	ck_assert_uint_eq(A.last_done.route, 7);
	client_free(c);
	app_stop();
}
END_TEST

START_TEST(protocol_details)
{
	struct client *c;
	struct resp r;
	size_t off = 0;

	app_start(NULL);
	c = client_new();
	/* Expect: 100-continue: 100 first, then the answer */
	client_puts(c,
	    "POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
	    "Content-Length: 2\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 100);
	client_puts(c, "hi");
	get_resp(c, &off, &r);
	ck_assert(body_is(&r, "ok:POST:/e:-:hi"));
	/* 204: no Content-Length, no body */
	client_puts(c, "GET /nocontent HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 204);
	ck_assert_ptr_null(strstr(r.head, "Content-Length"));
	/* HEAD: the application answers a GET (it sees "GET"), the answer
	 * keeps that GET's Content-Length and loses its body: the next
	 * response follows at once */
	client_puts(c,
	    "HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n"
	    "GET /g HTTP/1.1\r\nHost: t\r\n\r\n");
	{
		char *nx;

		uint64_t end = mono_ms() + WAIT_MS;

		while (memmem(c->buf + off, c->len - off, "ok:GET:/g", 9) ==
		    NULL) {
			ck_assert(mono_ms() < end);
			event_base_loop(A.base, EVLOOP_ONCE);
		}
		c->buf[c->len] = '\0';
		nx = strstr(c->buf + off, "\r\n\r\n");
		ck_assert_ptr_nonnull(nx);
		*nx = '\0'; /* the HEAD answer's head alone */
		ck_assert(strncmp(c->buf + off, "HTTP/1.1 200", 12) == 0);
		/* strlen("ok:GET:/h:-:") */
		ck_assert_ptr_nonnull(
		    strstr(c->buf + off, "\r\nContent-Length: 12"));
		ck_assert_ptr_nonnull(strstr(c->buf + off, "\r\nX-Head: 1"));
		ck_assert(strncmp(nx + 4, "HTTP/1.1 200", 12) == 0);
		ck_assert_ptr_nonnull(strstr(nx + 4, "\r\nX-Head: 0\r\n"));
		off = c->len;
	}
	/* absolute-form targets are routed by their path and query */
	client_puts(
	    c, "GET http://t:8080/abs/x?q=1 HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_msg(body_is(&r, "ok:GET:/abs/x:q=1:"), "%s", r.body);
	client_puts(c, "GET HTTPS://t HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_msg(body_is(&r, "ok:GET:/:-:"), "%s", r.body);
	/* the application cannot take nosniff away */
	client_puts(c, "GET /sniff HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_ptr_nonnull(
	    strstr(r.head, "\r\nX-Content-Type-Options: nosniff\r\n"));
	ck_assert_ptr_null(strstr(r.head, "sniff-me"));
	client_puts(c, "GET ftp://t/ HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 400);
	client_free(c);

	/* HTTP/1.0 keep-alive and plain */
	c = client_new();
	off = 0;
	client_puts(c, "GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_ptr_nonnull(strstr(r.head, "Connection: keep-alive"));
	client_puts(c, "GET /k HTTP/1.0\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_ptr_nonnull(strstr(r.head, "Connection: close"));
	ck_assert(run_until(is_eof, c));
	client_free(c);
	app_stop();
}
END_TEST

START_TEST(idle_timeout)
{
	struct httpd_limits lim = { .keepalive_timeout_ms = 150,
		.head_timeout_ms = 150 };
	struct client *c;
	struct resp r;
	size_t off = 0;

	app_start(&lim);
	c = client_new();
	client_puts(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert(run_until(is_eof, c));
	ck_assert_uint_eq(c->len, off); /* closed silently */
	client_free(c);
	/* a connection that never sends: closed too */
	c = client_new();
	ck_assert(run_until(is_eof, c));
	ck_assert_uint_eq(c->len, 0);
	client_free(c);
	ck_assert_uint_ge(A.st.timeouts, 2);
	app_stop();
}
END_TEST

START_TEST(max_connections)
{
	struct httpd_limits lim = { .max_connections = 2 };
	struct client *c1, *c2, *c3;
	struct resp r;
	size_t off = 0;

	app_start(&lim);
	c1 = client_new();
	c2 = client_new();
	ck_assert(run_until(u64_ge2, &A.st.accepted));
	c3 = client_new();
	ck_assert(run_until(is_eof, c3));
	ck_assert(strncmp(c3->buf, "HTTP/1.1 503", 12) == 0);
	ck_assert_ptr_nonnull(
	    strstr(c3->buf, "\r\nx-sendcat-error-code: overloaded\r\n"));
	ck_assert_ptr_nonnull(
	    strstr(c3->buf, "\r\nX-Content-Type-Options: nosniff\r\n"));
	ck_assert_ptr_nonnull(strstr(c3->buf, "\r\nDate: "));
	ck_assert_ptr_nonnull(strstr(c3->buf, "\"code\":\"overloaded\""));
	ck_assert_uint_eq(A.st.over_max_connections, 1);
	client_puts(c1, "GET /still HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c1, &off, &r);
	ck_assert(body_is(&r, "ok:GET:/still:-:"));
	client_free(c1);
	client_free(c2);
	client_free(c3);
	app_stop();
}
END_TEST

START_TEST(empty_line_flood)
{
	static char req[40100];
	struct client *c;
	struct resp r;
	size_t off = 0, n;

	app_start(NULL);
	c = client_new();
	for (n = 0; n < 40000; n += 2)
		memcpy(req + n, "\r\n", 2);
	strcpy(req + n, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
	client_puts(c, req);
	get_resp(c, &off, &r);
	ck_assert_int_eq(r.status, 400);
	ck_assert_ptr_nonnull(
	    strstr(r.head, "\r\nx-sendcat-error-code: bad_request\r\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"bad_request\""));
	ck_assert(run_until(is_eof, c));
	ck_assert_uint_eq(A.st.err_bad_request, 1);
	ck_assert_uint_eq(A.st.err_uri_too_long, 0);
	ck_assert_int_eq(A.n_head, 0);
	client_free(c);
	app_stop();
}
END_TEST

/* refused_503 - the next client is answered 503 overloaded, then closed */
static void
refused_503(void)
{
	struct client *c = client_new();

	ck_assert(run_until(is_eof, c));
	c->buf[c->len < sizeof(c->buf) ? c->len : sizeof(c->buf) - 1] = '\0';
	ck_assert_msg(strncmp(c->buf, "HTTP/1.1 503", 12) == 0, "%s", c->buf);
	ck_assert_ptr_nonnull(
	    strstr(c->buf, "\r\nx-sendcat-error-code: overloaded\r\n"));
	ck_assert_ptr_nonnull(strstr(c->buf, "\"code\":\"overloaded\""));
	client_free(c);
}

START_TEST(out_of_descriptors)
{
	struct rlimit old, rl;
	int dummy[512], nd = 0, fd, saved_err;
	FILE *logf;
	char logbuf[8192];
	size_t loglen;
	const char *p;
	int warnings = 0;

	ck_assert_uint_eq(httpd_fd_need(1000), 1000 + HTTPD_FD_RESERVE);
	ck_assert_uint_eq(httpd_fd_room(1024), 1024 - HTTPD_FD_RESERVE);
	ck_assert_uint_eq(httpd_fd_room(300), 150);
	ck_assert_uint_eq(httpd_fd_room(0), 0);

	/* a soft limit of 400: the default 16384 connections become 200 */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	rl = old;
	rl.rlim_cur = 400;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	app_start(NULL);
	ck_assert_uint_eq(A.st.max_connections, 200);

	/* the log goes to a file from here on */
	fflush(stderr);
	saved_err = dup(2);
	logf = tmpfile();
	ck_assert(saved_err >= 0 && logf != NULL);
	ck_assert_int_ge(dup2(fileno(logf), 2), 0);

	/* every descriptor taken but one, for the client's socket: the
	 * server gives up its spare one to answer 503 */
	while (nd < (int)RG_NELEM(dummy) &&
	    (fd = open("/dev/null", O_RDONLY)) >= 0)
		dummy[nd++] = fd;
	ck_assert_int_eq(errno, EMFILE);
	close(dummy[--nd]);
	refused_503();
	ck_assert_uint_eq(A.st.refused_no_fds, 1);
	/* and again: answered the same, the warning not repeated */
	refused_503();
	ck_assert_uint_eq(A.st.refused_no_fds, 2);
	ck_assert_uint_eq(A.st.open, 0);
	while (nd > 0)
		close(dummy[--nd]);

	fflush(stderr);
	ck_assert_int_ge(dup2(saved_err, 2), 0);
	close(saved_err);
	rewind(logf);
	loglen = fread(logbuf, 1, sizeof(logbuf) - 1, logf);
	logbuf[loglen] = '\0';
	fclose(logf);
	for (p = logbuf; (p = strstr(p, "httpd: accept: ")) != NULL; p++)
		warnings++;
	ck_assert_msg(warnings == 1, "%d warnings: %s", warnings, logbuf);
	ck_assert_ptr_nonnull(strstr(logbuf, "answering 503 overloaded"));

	/* a working server afterwards */
	{
		struct client *c = client_new();
		struct resp r;
		size_t off = 0;

		client_puts(c, "GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
		get_resp(c, &off, &r);
		ck_assert(body_is(&r, "ok:GET:/ok:-:"));
		client_free(c);
	}
	app_stop();
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
}
END_TEST

START_TEST(large_bodies)
{
	struct client *c;
	struct resp r;
	size_t off = 0, i, n = 200000, len;
	char *body = xmalloc(n), *req = xmalloc(2 * n), want[64];
	unsigned long sum = 0;

	app_start(NULL);
	A.limit = 300000;
	for (i = 0; i < n; i++) {
		body[i] = (char)('a' + i % 23);
		sum = sum * 31 + (unsigned char)body[i];
	}
	snprintf(want, sizeof(want), "%zu:%lu", n, sum);
	c = client_new();
	len = (size_t)snprintf(req, 2 * n,
	    "POST /sum HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", n);
	memcpy(req + len, body, n);
	client_send(c, req, len + n);
	get_resp(c, &off, &r);
	ck_assert_msg(body_is(&r, want), "%s", r.body);
	/* the same body in 997-byte chunks, sent in pieces */
	len = (size_t)snprintf(req, 2 * n,
	    "POST /sum HTTP/1.1\r\nHost: t\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	for (i = 0; i < n; i += 997) {
		size_t k = n - i < 997 ? n - i : 997;

		len += (size_t)snprintf(
		    req + len, 2 * n - len, "%zx;i=%zu\r\n", k, i);
		memcpy(req + len, body + i, k);
		len += k;
		memcpy(req + len, "\r\n", 2);
		len += 2;
	}
	len += (size_t)snprintf(req + len, 2 * n - len, "0\r\n\r\n");
	for (i = 0; i < len; i += 65536)
		client_send(c, req + i, len - i < 65536 ? len - i : 65536);
	get_resp(c, &off, &r);
	ck_assert_msg(body_is(&r, want), "%s", r.body);
	ck_assert_int_eq(c->eof, 0);
	client_free(c);
	free(body);
	free(req);
	app_stop();
}
END_TEST

START_TEST(stream_backpressure)
{
	struct httpd_limits lim = { .max_output_bytes = 8192,
		.write_timeout_ms = 200 };
	struct client *c;
	struct resp r;
	size_t off = 0;

	app_start(&lim);
	/* a reading client gets everything, paced by the drain callback */
	A.flood_target = 50000;
	c = client_new();
	client_puts(c, "GET /flood HTTP/1.1\r\nHost: t\r\n\r\n");
	get_resp(c, &off, &r);
	ck_assert_uint_eq(r.body_len, 50000);
	ck_assert_int_ge(A.n_enobufs, 1);
	ck_assert_int_ge(A.n_drain, 2);
	ck_assert_int_eq(A.late_done, 1);
	client_free(c);

	/* a client that stops reading: write timeout, on_close */
	A.flood_sent = 0;
	A.flood_target = (size_t)1 << 30;
	c = client_new();
	client_puts(c, "GET /flood HTTP/1.1\r\nHost: t\r\n\r\n");
	event_del(c->ev);
	ck_assert(run_until(int_ge1, &A.n_close));
	ck_assert_uint_ge(A.st.timeouts, 1);
	ck_assert_uint_lt(A.flood_sent, A.flood_target);
	client_free(c);
	app_stop();
}
END_TEST

START_TEST(listen_addresses)
{
	char err[256];
	int fd;

	fd = httpd_listen("[::1]:0", 1, err, sizeof(err));
	if (fd >= 0) /* no IPv6 in some sandboxes */
		close(fd);
	fd = httpd_listen(":0", 0, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	close(fd);
	ck_assert_int_eq(httpd_listen("::1:80", 0, err, sizeof(err)), -1);
	ck_assert_int_eq(httpd_listen("localhost", 0, err, sizeof(err)), -1);
	ck_assert_int_eq(
	    httpd_listen("127.0.0.1:http", 0, err, sizeof(err)), -1);
	ck_assert_int_eq(httpd_listen("[::1:80", 0, err, sizeof(err)), -1);
}
END_TEST

static Suite *
server_suite(void)
{
	Suite *s = suite_create("http_server");
	TCase *tc = tcase_create("server");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, answer_200);
	tcase_add_test(tc, keepalive_and_pipelining);
	tcase_add_test(tc, early_answer);
	tcase_add_test(tc, too_large_by_length);
	tcase_add_test(tc, too_large_by_chunks);
	tcase_add_test(tc, head_too_large_and_bad);
	tcase_add_test(tc, head_timeout);
	tcase_add_test(tc, async_answer);
	tcase_add_test(tc, disconnect_before_async);
	tcase_add_test(tc, half_close);
	tcase_add_test(tc, stream);
	tcase_add_test(tc, done_reports);
	tcase_add_test(tc, protocol_details);
	tcase_add_test(tc, idle_timeout);
	tcase_add_test(tc, max_connections);
	tcase_add_test(tc, empty_line_flood);
	tcase_add_test(tc, out_of_descriptors);
	tcase_add_test(tc, large_bodies);
	tcase_add_test(tc, stream_backpressure);
	tcase_add_test(tc, listen_addresses);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tl_run(server_suite());
}
