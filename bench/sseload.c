/*
 * sseload - a bounded load client for SSE streams (chat completions), for
 * benchmarks on loopback: keeps C HTTP/1.1 streams in flight against one
 * URL (POST a body with given headers), reads every response as it comes
 * (chunked, Content-Length or close-delimited; SSE lines), and reports
 * outcomes, time to first byte, time to the first "data:" event, total
 * time (and that of the answers outside 2xx alone), Retry-After seen, and
 * bytes.  --hold opens C streams once and holds them all together,
 * reporting how many were open at the peak.  --header-file gives each
 * connection one of several header lines in turn (a pool of users).
 *
 * Owns its connections and nothing else.  Must never: connect anywhere
 * but a loopback address, run without a bound (every request has a
 * timeout, the run a duration and a request count), or open more files
 * than the limit allows (it raises the soft limit to the hard one, and
 * splits the connections over processes, -p, when one cannot hold them;
 * the parent then sums the processes' results).
 *
 * One event loop per process; per connection one struct (no buffer of
 * its own beyond a short line) and one event; timeouts and the ramp are
 * one periodic tick.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "util/util.h"

#define LINE_MAX_    96    /* bytes kept of a head or SSE line */
#define RBUF         65536 /* the one read buffer */
#define TICK_MS      10    /* ramp */
#define SWEEP_TICKS  10    /* timeouts, restarts: every 10 ticks */
#define FDS_SPARE    32    /* files not for connections */
#define MAX_PROCS    64
#define MAX_HDRS     32
#define MAX_VARIANTS 4096 /* lines of --header-file */
#define MAX_CHUNK    (1ull << 40)
#define HIST_LINEAR  1024 /* exact microseconds below this */
#define HIST_SUB     64   /* buckets per power of two above */
#define HIST_TOP     40   /* values capped at 2^40 us */
#define HIST_N       (HIST_LINEAR + (HIST_TOP - 10) * HIST_SUB)
#define STATUS_MAX   600
#define DEFAULT_MARK "data: [DONE]"
#define SRC_CONNS    2000 /* connections per source address by default */

/* How a request ended: name in the report, doc. */
#define OUTCOMES(X)                                                           \
	X(completed, "the response ended and carried the end marker")         \
	X(noMarker, "the response ended without the end marker")              \
	X(resets, "reset, or closed before the response ended")               \
	X(timeouts, "not ended within --timeout")                             \
	X(connectErrors, "connect() failed")                                  \
	X(protocolErrors, "not HTTP/1.x, or bad chunked framing")             \
	X(cancelled, "still running when the run ended")

enum outcome {
#define OUTCOME_ENUM(name, doc) O_##name,
	OUTCOMES(OUTCOME_ENUM)
#undef OUTCOME_ENUM
	    O_N
};

static const char *const outcome_names[] = {
#define OUTCOME_NAME(name, doc) #name,
	OUTCOMES(OUTCOME_NAME)
#undef OUTCOME_NAME
};

struct hist {
	uint64_t n, max;
	uint64_t b[HIST_N];
};

/* One process's figures; the parent sums them. */
struct result {
	uint64_t requests; /* started */
	uint64_t outcomes[O_N];
	uint64_t status[STATUS_MAX]; /* [0]: other */
	uint64_t bytes;
	uint64_t retried; /* a reused connection closed first: sent again */
	uint64_t retry_after; /* answers with a Retry-After header */
	uint64_t run_us;
	struct hist ttfb, tfe, total, non2xx;
};

/* Shared by every process (MAP_SHARED): the open-streams gauge. */
struct shared {
	atomic_long open, peak;
	atomic_long peak_at_us;
	struct result res[MAX_PROCS];
};

enum cstate { C_IDLE, C_CONNECT, C_WRITE, C_HEAD, C_BODY };
enum framing { F_NONE, F_LENGTH, F_CHUNKED, F_CLOSE };
enum ckstate { CK_SIZE, CK_EXT, CK_DATA, CK_DATA_END, CK_TRAILER };

struct conn {
	int fd;
	uint32_t src; /* source address 127.0.0.src (IPv4) */
	uint32_t var; /* its request: line var of --header-file */
	enum cstate st;
	struct event ev;
	size_t wpos;
	uint64_t t0, t_byte, t_event; /* us */
	int status;
	enum framing fr;
	enum ckstate ck;
	uint64_t left; /* Content-Length or chunk bytes left */
	unsigned ckdigits, trailer_len;
	char line[LINE_MAX_];
	size_t llen;
	unsigned marker : 1, keepalive : 1, reused : 1, counted_open : 1,
	    armed : 1;
};

struct opts {
	const char *url;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char hostport[300];
	const char *path;
	const char *hdrs[MAX_HDRS];
	size_t nhdrs;
	const char *body;
	size_t body_len;
	char *hfile;        /* --header-file contents, lines cut in place */
	const char **vhdrs; /* its lines: one per request variant */
	unsigned nvars;
	const char *marker;
	unsigned conns, procs, sources;
	double duration, timeout;
	uint64_t requests;
	unsigned ramp_ms;
	int hold, json;
};

static struct opts o;
static struct shared *sh;
static struct result *res; /* this process's slot */

/* this process's run */
static struct event_base *base;
static struct conn *pool;
static unsigned npool, nopened, nactive;
static uint64_t my_requests, started, t_start, t_stop_starting, t_end;
static char **requests; /* one request per variant (--header-file line) */
static size_t *req_lens;
static int stopping;
static char rbuf[RBUF];

static void conn_cb(evutil_socket_t fd, short what, void *arg);
static void start(struct conn *c);

/* --- histograms ------------------------------------------------------- */

static unsigned
hist_idx(uint64_t v)
{
	unsigned e;

	if (v < HIST_LINEAR)
		return (unsigned)v;
	if (v >= (1ull << HIST_TOP))
		v = (1ull << HIST_TOP) - 1;
	e = 63u - (unsigned)__builtin_clzll(v);
	return HIST_LINEAR + (e - 10) * HIST_SUB +
	    (unsigned)((v >> (e - 6)) & (HIST_SUB - 1));
}

/* hist_top - the largest value of bucket i */
static uint64_t
hist_top(unsigned i)
{
	unsigned e, sub;

	if (i < HIST_LINEAR)
		return i;
	e = 10 + (i - HIST_LINEAR) / HIST_SUB;
	sub = (i - HIST_LINEAR) % HIST_SUB;
	return ((uint64_t)(HIST_SUB + sub) << (e - 6)) + (1ull << (e - 6)) - 1;
}

static void
hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_idx(v)]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

static void
hist_merge(struct hist *to, const struct hist *from)
{
	unsigned i;

	for (i = 0; i < HIST_N; i++)
		to->b[i] += from->b[i];
	to->n += from->n;
	if (from->max > to->max)
		to->max = from->max;
}

/* hist_pct - the value at percentile p (0..100) in ms: the top of its
 * bucket (within 1.6 %), never above the maximum */
static double
hist_pct(const struct hist *h, double p)
{
	uint64_t want, seen = 0, v;
	unsigned i;

	if (h->n == 0)
		return 0;
	want = (uint64_t)((double)h->n * p / 100.0 + 0.5);
	if (want < 1)
		want = 1;
	for (i = 0; i < HIST_N; i++) {
		seen += h->b[i];
		if (seen >= want)
			break;
	}
	v = i < HIST_N ? hist_top(i) : h->max;
	return (double)(v < h->max ? v : h->max) / 1000.0;
}

/* --- the open-streams gauge ------------------------------------------- */

static void
open_inc(void)
{
	long now = atomic_fetch_add(&sh->open, 1) + 1;
	long peak = atomic_load(&sh->peak);

	while (now > peak) {
		if (atomic_compare_exchange_weak(&sh->peak, &peak, now)) {
			atomic_store(
			    &sh->peak_at_us, (long)(mono_us() - t_start));
			break;
		}
	}
}

/* --- connections ------------------------------------------------------ */

static void
arm(struct conn *c, short what)
{
	if (c->armed)
		event_del(&c->ev);
	event_assign(&c->ev, base, c->fd, what | EV_PERSIST, conn_cb, c);
	event_add(&c->ev, NULL);
	c->armed = 1;
}

static void
conn_close(struct conn *c)
{
	if (c->armed)
		event_del(&c->ev);
	c->armed = 0;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* may_start - may a new request begin now? */
static int
may_start(void)
{
	return !stopping && !o.hold && started < my_requests &&
	    mono_us() < t_stop_starting;
}

static void
check_done(void)
{
	if (nactive == 0 && (stopping || nopened == npool) && !may_start())
		event_base_loopexit(base, NULL);
}

/* end - the request on c is over: count it; go on, or rest */
static void
end(struct conn *c, enum outcome oc)
{
	uint64_t now = mono_us();
	int ok = oc == O_completed || oc == O_noMarker;

	res->outcomes[oc]++;
	if (c->status > 0)
		res->status[c->status < STATUS_MAX ? c->status : 0]++;
	if (ok)
		hist_add(&res->total, now - c->t0);
	if (ok && (c->status < 200 || c->status >= 300))
		hist_add(&res->non2xx, now - c->t0);
	if (c->counted_open)
		atomic_fetch_sub(&sh->open, 1);
	c->counted_open = 0;
	if (!ok || !c->keepalive || !may_start())
		conn_close(c);
	c->st = C_IDLE;
	nactive--;
	if (ok && may_start()) /* errors wait for the tick */
		start(c);
	check_done();
}

static void
line_add(struct conn *c, const char *p, size_t n)
{
	size_t k = c->llen < LINE_MAX_ ? LINE_MAX_ - c->llen : 0;

	memcpy(c->line + c->llen, p, n < k ? n : k);
	c->llen += n; /* past LINE_MAX_: a long line, cut */
}

/* line_len - the kept line without its CR; SIZE_MAX if it was cut */
static size_t
line_len(const struct conn *c)
{
	size_t n = c->llen;

	if (n >= LINE_MAX_)
		return SIZE_MAX;
	return n > 0 && c->line[n - 1] == '\r' ? n - 1 : n;
}

/* sse_line - one line of the body: a data event? the end marker? */
static void
sse_line(struct conn *c)
{
	size_t n = line_len(c), mlen = strlen(o.marker);

	if (c->llen >= 5 && memcmp(c->line, "data:", 5) == 0 &&
	    c->t_event == 0) {
		c->t_event = mono_us();
		hist_add(&res->tfe, c->t_event - c->t0);
	}
	if (n == mlen && memcmp(c->line, o.marker, mlen) == 0)
		c->marker = 1;
}

static void
sse(struct conn *c, const char *p, size_t n)
{
	const char *nl;
	size_t k;

	while (n > 0) {
		nl = memchr(p, '\n', n);
		k = nl != NULL ? (size_t)(nl - p) : n;
		line_add(c, p, k);
		if (nl == NULL)
			return;
		sse_line(c);
		c->llen = 0;
		p += k + 1;
		n -= k + 1;
	}
}

/* head_line - a line of the response head: 1 when the head is over,
 * -1 if it is not HTTP */
static int
head_line(struct conn *c)
{
	size_t n = line_len(c);
	const char *v;

	if (n == SIZE_MAX)
		return c->status == 0 ? -1 : 0; /* a long header: not ours */
	c->line[n] = '\0';
	if (c->status == 0) {
		if (n < 12 || strncmp(c->line, "HTTP/1.", 7) != 0 ||
		    c->line[8] != ' ' || c->line[9] < '1' || c->line[9] > '5')
			return -1;
		c->status = atoi(c->line + 9);
		c->keepalive = c->line[7] == '1';
		return 0;
	}
	if (n == 0)
		return 1;
	if ((v = strchr(c->line, ':')) == NULL)
		return -1;
	v++;
	if (strncasecmp(c->line, "content-length:", 15) == 0) {
		c->fr = c->fr == F_CHUNKED ? F_CHUNKED : F_LENGTH;
		c->left = strtoull(v, NULL, 10);
	} else if (strncasecmp(c->line, "transfer-encoding:", 18) == 0 &&
	    strcasestr(v, "chunked") != NULL) {
		c->fr = F_CHUNKED;
	} else if (strncasecmp(c->line, "connection:", 11) == 0 &&
	    strcasestr(v, "close") != NULL) {
		c->keepalive = 0;
	} else if (strncasecmp(c->line, "retry-after:", 12) == 0) {
		res->retry_after++;
	}
	return 0;
}

/* body_begin - the head is in: how the body is framed */
static void
body_begin(struct conn *c)
{
	c->st = C_BODY;
	c->llen = 0;
	if (c->status >= 200 && c->status < 300)
		open_inc(), c->counted_open = 1;
	if (c->status == 204 || c->status == 304 || c->status < 200)
		c->fr = F_NONE;
	else if (c->fr == F_NONE)
		c->fr = F_CLOSE, c->keepalive = 0;
	if (c->fr == F_CHUNKED)
		c->ck = CK_SIZE, c->left = 0, c->ckdigits = 0;
}

/* chunked - decode p[0..n); 1 at the end of the body, -1 bad framing */
static int
chunked(struct conn *c, const char *p, size_t n)
{
	size_t k;
	int d;

	while (n > 0) {
		switch (c->ck) {
		case CK_DATA:
			k = n < c->left ? n : (size_t)c->left;
			sse(c, p, k);
			c->left -= k;
			p += k;
			n -= k;
			if (c->left == 0)
				c->ck = CK_DATA_END;
			continue;
		case CK_SIZE:
		case CK_EXT:
			if (*p == '\n') {
				if (c->ckdigits == 0)
					return -1;
				c->ck = c->left > 0 ? CK_DATA : CK_TRAILER;
				c->trailer_len = 0;
				c->ckdigits = 0;
			} else if (c->ck == CK_EXT || *p == '\r') {
				;
			} else if (*p == ';' || *p == ' ' || *p == '\t') {
				c->ck = CK_EXT;
			} else {
				d = *p >= '0' && *p <= '9' ? *p - '0'
				    : (*p | 0x20) >= 'a' && (*p | 0x20) <= 'f'
				    ? (*p | 0x20) - 'a' + 10
				    : -1;
				if (d < 0 || c->left >= MAX_CHUNK)
					return -1;
				c->left = c->left * 16 + (unsigned)d;
				c->ckdigits++;
			}
			break;
		case CK_DATA_END:
			if (*p == '\n')
				c->ck = CK_SIZE;
			else if (*p != '\r')
				return -1;
			break;
		case CK_TRAILER:
			if (*p == '\n') {
				if (c->trailer_len == 0)
					return 1;
				c->trailer_len = 0;
			} else if (*p != '\r') {
				c->trailer_len++;
			}
			break;
		}
		p++;
		n--;
	}
	return 0;
}

/* input - bytes of the response; 1 when it is over, -1 on bad HTTP */
static int
input(struct conn *c, const char *p, size_t n)
{
	const char *nl;
	size_t k;
	int r;

	while (c->st == C_HEAD && n > 0) {
		nl = memchr(p, '\n', n);
		k = nl != NULL ? (size_t)(nl - p) : n;
		line_add(c, p, k);
		if (nl == NULL)
			return 0;
		p += k + 1;
		n -= k + 1;
		if ((r = head_line(c)) < 0)
			return -1;
		c->llen = 0;
		if (r == 1)
			body_begin(c);
	}
	if (c->st != C_BODY)
		return 0;
	switch (c->fr) {
	case F_NONE:
		return 1;
	case F_CHUNKED:
		return chunked(c, p, n);
	case F_LENGTH:
		k = n < c->left ? n : (size_t)c->left;
		sse(c, p, k);
		c->left -= k;
		return c->left == 0;
	case F_CLOSE:
		sse(c, p, n);
		return 0;
	}
	return 0;
}

/* lost - the connection ended early: a reused connection that the server
 * closed before answering is tried again, once (the retry is on a new
 * connection) */
static void
lost(struct conn *c)
{
	if (c->reused && c->t_byte == 0) {
		res->retried++;
		conn_close(c);
		nactive--;
		res->requests--;
		started--;
		start(c);
		return;
	}
	if (c->st == C_BODY && c->fr == F_CLOSE) {
		end(c, c->marker ? O_completed : O_noMarker);
		return;
	}
	end(c, O_resets);
}

static void
do_read(struct conn *c)
{
	ssize_t n;
	int r;

	n = read(c->fd, rbuf, sizeof(rbuf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		lost(c);
		return;
	}
	res->bytes += (uint64_t)n;
	if (c->t_byte == 0) {
		c->t_byte = mono_us();
		hist_add(&res->ttfb, c->t_byte - c->t0);
	}
	r = input(c, rbuf, (size_t)n);
	if (r < 0)
		end(c, O_protocolErrors);
	else if (r > 0)
		end(c, c->marker ? O_completed : O_noMarker);
}

static void
do_write(struct conn *c)
{
	ssize_t n;

	const char *req = requests[c->var];
	size_t req_len = req_lens[c->var];

	while (c->wpos < req_len) {
		n = send(
		    c->fd, req + c->wpos, req_len - c->wpos, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0) {
			lost(c);
			return;
		}
		c->wpos += (size_t)n;
	}
	c->st = C_HEAD;
	arm(c, EV_READ);
}

static void
conn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	socklen_t sl = sizeof(int);
	int err = 0;

	(void)what;
	switch (c->st) {
	case C_CONNECT:
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0 ||
		    err != 0) {
			end(c, O_connectErrors);
			return;
		}
		c->st = C_WRITE;
		do_write(c);
		break;
	case C_WRITE:
		do_write(c);
		break;
	case C_HEAD:
	case C_BODY:
		do_read(c);
		break;
	case C_IDLE:
		/* the server closed an idle connection */
		conn_close(c);
		break;
	}
}

/*
 * bind_src - bind to c's source address, the port left to connect():
 * connect() looks for a free port per (source, destination), and with
 * tens of thousands of connections (and closed ones in TIME_WAIT) to one
 * destination that search, from one source, blocks the loop for long
 */
static int
bind_src(struct conn *c)
{
	struct sockaddr_in sa;
	int one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl((127u << 24) | c->src);
	(void)setsockopt(
	    c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	return bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
}

/* start - a new request on c (a new connection unless c has one) */
static void
start(struct conn *c)
{
	int one = 1, fd;

	c->t0 = mono_us();
	c->t_byte = c->t_event = 0;
	c->status = 0;
	c->fr = F_NONE;
	c->llen = 0;
	c->wpos = 0;
	c->marker = c->keepalive = 0;
	c->reused = c->fd >= 0;
	started++;
	res->requests++;
	nactive++;
	if (c->fd >= 0) {
		c->st = C_WRITE;
		do_write(c);
		return;
	}
	fd = socket(
	    o.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		c->st = C_CONNECT;
		end(c, O_connectErrors);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	if (o.addr.ss_family == AF_INET && o.sources > 1 && bind_src(c) < 0) {
		c->st = C_CONNECT;
		end(c, O_connectErrors);
		return;
	}
	c->st = C_CONNECT;
	if (connect(fd, (struct sockaddr *)&o.addr, o.addrlen) != 0 &&
	    errno != EINPROGRESS) {
		end(c, O_connectErrors);
		return;
	}
	arm(c, EV_WRITE);
}

/* tick - ramp up; every SWEEP_TICKS, restart resting connections and
 * time out; finish */
static void
tick(evutil_socket_t fd, short what, void *arg)
{
	static unsigned ticks;
	uint64_t now = mono_us(), el = now - t_start, want;
	unsigned i;
	int sweep;

	(void)fd;
	(void)what;
	(void)arg;
	if (now >= t_end)
		stopping = 1;
	want = o.ramp_ms == 0 || el >= (uint64_t)o.ramp_ms * 1000
	    ? npool
	    : (uint64_t)npool * el / ((uint64_t)o.ramp_ms * 1000);
	while (!stopping && nopened < want && started < my_requests)
		start(&pool[nopened++]);
	sweep = ++ticks % SWEEP_TICKS == 0 || stopping;
	for (i = 0; sweep && i < nopened; i++) {
		struct conn *c = &pool[i];

		if (c->st == C_IDLE) {
			if (may_start())
				start(c);
		} else if (stopping) {
			end(c, O_cancelled);
		} else if (now > c->t0 &&
		    now - c->t0 > (uint64_t)(o.timeout * 1e6)) {
			end(c, O_timeouts);
		}
	}
	if (nopened < want && started >= my_requests)
		nopened = npool; /* nothing more to open */
	check_done();
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	stopping = 1;
}

/* run - this process's share: conns connections (from number first of
 * all), at most reqs requests */
static void
run(unsigned first, unsigned conns, uint64_t reqs)
{
	struct timeval tv = { 0, TICK_MS * 1000 };
	struct event *tk, *si, *st;
	unsigned i;

	base = event_base_new();
	if (base == NULL) {
		fprintf(stderr, "sseload: event_base_new failed\n");
		exit(1);
	}
	npool = conns;
	pool = xcalloc(conns, sizeof(*pool));
	for (i = 0; i < conns; i++) {
		pool[i].fd = -1;
		pool[i].src = 1 + (first + i) % o.sources;
		pool[i].var = (first + i) % o.nvars;
	}
	my_requests = o.hold ? conns : reqs;
	t_start = mono_us();
	t_stop_starting = t_start + (uint64_t)(o.duration * 1e6);
	t_end = o.hold
	    ? t_start + (uint64_t)o.ramp_ms * 1000 +
	        (uint64_t)(o.timeout * 1e6) + 1000000
	    : t_stop_starting + (uint64_t)(o.timeout * 1e6) + 1000000;
	tk = event_new(base, -1, EV_PERSIST, tick, NULL);
	event_add(tk, &tv);
	si = evsignal_new(base, SIGINT, on_signal, NULL);
	st = evsignal_new(base, SIGTERM, on_signal, NULL);
	event_add(si, NULL);
	event_add(st, NULL);
	tick(-1, 0, NULL);
	event_base_dispatch(base);
	for (i = 0; i < conns; i++) {
		if (pool[i].st != C_IDLE)
			end(&pool[i], O_cancelled);
		conn_close(&pool[i]);
	}
	res->run_us = mono_us() - t_start;
	event_free(tk);
	event_free(si);
	event_free(st);
	event_base_free(base);
	free(pool);
}

/* --- options ---------------------------------------------------------- */

static void
usage(int code)
{
	fprintf(code == 0 ? stdout : stderr,
	    "usage: sseload [options] URL   "
	    "(http://127.x.x.x|localhost|[::1])\n"
	    "  -c, --connections C   streams in flight [10]\n"
	    "  -d, --duration S      start requests for S seconds [10]\n"
	    "  -n, --requests R      at most R requests in all [1000000]\n"
	    "  -t, --timeout S       per request [60]\n"
	    "  -H, --header 'N: V'   a request header (repeat)\n"
	    "  --header-file FILE    one more header per connection, its "
	    "lines in turn\n"
	    "  -b, --body JSON       POST this body (else GET)\n"
	    "  --body-file FILE      POST the file's contents\n"
	    "  -m, --marker LINE     the end-of-stream line [%s]\n"
	    "  --hold                open C streams once and hold them all\n"
	    "  --ramp-ms MS          spread the first C starts over MS\n"
	    "  -p, --processes N     processes (0: as the open-files limit "
	    "needs) [0]\n"
	    "  --sources N           IPv4 source addresses 127.0.0.1..N "
	    "(0: one per 2000 connections) [0]\n"
	    "  --json                also print the figures as one JSON "
	    "line\n",
	    DEFAULT_MARK);
	exit(code);
}

static void
die(const char *msg, const char *arg)
{
	fprintf(stderr, "sseload: %s%s%s\n", msg, arg != NULL ? ": " : "",
	    arg != NULL ? arg : "");
	exit(2);
}

static double
num(const char *s, double lo, double hi, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (*s == '\0' || *end != '\0' || !(v >= lo && v <= hi))
		die("bad value for", what);
	return v;
}

/* parse_url - http://HOST[:PORT]/PATH with a loopback HOST */
static void
parse_url(const char *url)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&o.addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&o.addr;
	char host[256];
	const char *p, *hs, *he, *slash;
	unsigned long port = 80;
	char *end;

	if (strncmp(url, "http://", 7) != 0)
		die("only http:// URLs (loopback)", url);
	hs = url + 7;
	slash = strchr(hs, '/');
	o.path = slash != NULL ? slash : "/";
	he = slash != NULL ? slash : hs + strlen(hs);
	if ((size_t)(he - hs) >= sizeof(o.hostport))
		die("host too long", url);
	memcpy(o.hostport, hs, (size_t)(he - hs));
	o.hostport[he - hs] = '\0';
	if (*hs == '[') {
		p = memchr(hs, ']', (size_t)(he - hs));
		if (p == NULL)
			die("bad URL", url);
		snprintf(
		    host, sizeof(host), "%.*s", (int)(p - hs - 1), hs + 1);
		p++;
	} else {
		p = memchr(hs, ':', (size_t)(he - hs));
		if (p == NULL)
			p = he;
		snprintf(host, sizeof(host), "%.*s", (int)(p - hs), hs);
	}
	if (p < he) {
		if (*p != ':')
			die("bad URL", url);
		port = strtoul(p + 1, &end, 10);
		if (end != he || port == 0 || port > 65535)
			die("bad port", url);
	}
	memset(&o.addr, 0, sizeof(o.addr));
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		if ((ntohl(s4->sin_addr.s_addr) >> 24) != 127)
			die("not a loopback address (127.0.0.0/8)", host);
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		o.addrlen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			die("not a loopback address (::1)", host);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		o.addrlen = sizeof(*s6);
	} else {
		die("the host must be a loopback address or localhost", host);
	}
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *s = NULL;
	size_t cap = 0, n = 0, r;

	if (f == NULL)
		die("cannot read", path);
	do {
		if (n == cap)
			s = xrealloc(s, cap = cap * 2 + 4096);
		r = fread(s + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	fclose(f);
	*len = n;
	return s;
}

/* build_one - the request with the -H headers and one more (or none) */
static char *
build_one(const char *extra, size_t *len)
{
	size_t cap = 1024 + o.body_len, i, n;
	int has_ctype = 0;
	char *r;

	for (i = 0; i < o.nhdrs; i++) {
		cap += strlen(o.hdrs[i]) + 2;
		has_ctype |= strncasecmp(o.hdrs[i], "content-type:", 13) == 0;
	}
	if (extra != NULL) {
		cap += strlen(extra) + 2;
		has_ctype |= strncasecmp(extra, "content-type:", 13) == 0;
	}
	r = xmalloc(cap);
	n = (size_t)snprintf(r, cap,
	    "%s %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n",
	    o.body != NULL ? "POST" : "GET", o.path, o.hostport);
	for (i = 0; i < o.nhdrs; i++)
		n += (size_t)snprintf(r + n, cap - n, "%s\r\n", o.hdrs[i]);
	if (extra != NULL)
		n += (size_t)snprintf(r + n, cap - n, "%s\r\n", extra);
	if (o.body != NULL) {
		if (!has_ctype)
			n += (size_t)snprintf(r + n, cap - n,
			    "Content-Type: application/json\r\n");
		n += (size_t)snprintf(
		    r + n, cap - n, "Content-Length: %zu\r\n", o.body_len);
	}
	n += (size_t)snprintf(r + n, cap - n, "\r\n");
	if (o.body != NULL) {
		memcpy(r + n, o.body, o.body_len);
		n += o.body_len;
	}
	*len = n;
	return r;
}

/* build_requests - one request per variant (one without --header-file) */
static void
build_requests(void)
{
	unsigned i;

	requests = xcalloc(o.nvars, sizeof(*requests));
	req_lens = xcalloc(o.nvars, sizeof(*req_lens));
	for (i = 0; i < o.nvars; i++)
		requests[i] = build_one(
		    o.vhdrs != NULL ? o.vhdrs[i] : NULL, &req_lens[i]);
}

/* header_file - the lines of FILE (blank ones skipped), each a header */
static void
header_file(const char *path)
{
	size_t len, n;
	char *p, *rest;

	o.hfile = read_file(path, &len);
	o.hfile = xrealloc(o.hfile, len + 1);
	o.hfile[len] = '\0';
	o.vhdrs = xcalloc(MAX_VARIANTS, sizeof(*o.vhdrs));
	o.nvars = 0;
	for (rest = o.hfile; (p = strsep(&rest, "\n")) != NULL;) {
		n = strlen(p);
		if (n > 0 && p[n - 1] == '\r')
			p[--n] = '\0';
		if (n == 0)
			continue;
		if (o.nvars == MAX_VARIANTS || strchr(p, ':') == NULL)
			die("--header-file: bad or too many lines", p);
		o.vhdrs[o.nvars++] = p;
	}
	if (o.nvars == 0)
		die("--header-file: no header in", path);
}

static void
parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "connections", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "requests", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "header", required_argument, NULL, 'H' },
		{ "header-file", required_argument, NULL, 'F' },
		{ "body", required_argument, NULL, 'b' },
		{ "body-file", required_argument, NULL, 'B' },
		{ "marker", required_argument, NULL, 'm' },
		{ "hold", no_argument, NULL, 'O' },
		{ "ramp-ms", required_argument, NULL, 'r' },
		{ "processes", required_argument, NULL, 'p' },
		{ "sources", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	o.conns = 10;
	o.duration = 10;
	o.requests = 1000000;
	o.timeout = 60;
	o.marker = DEFAULT_MARK;
	o.nvars = 1;
	while ((opt = getopt_long(
	            argc, argv, "c:d:n:t:H:b:m:p:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			o.conns = (unsigned)num(optarg, 1, 1000000, "-c");
			break;
		case 'd':
			o.duration = num(optarg, 0.001, 86400, "-d");
			break;
		case 'n':
			o.requests = (uint64_t)num(optarg, 1, 1e12, "-n");
			break;
		case 't':
			o.timeout = num(optarg, 0.001, 86400, "-t");
			break;
		case 'H':
			if (o.nhdrs == MAX_HDRS ||
			    strchr(optarg, ':') == NULL ||
			    strpbrk(optarg, "\r\n") != NULL)
				die("bad or too many headers", optarg);
			o.hdrs[o.nhdrs++] = optarg;
			break;
		case 'F':
			header_file(optarg);
			break;
		case 'b':
			o.body = optarg;
			o.body_len = strlen(optarg);
			break;
		case 'B':
			o.body = read_file(optarg, &o.body_len);
			break;
		case 'm':
			if (strlen(optarg) == 0 || strlen(optarg) >= LINE_MAX_)
				die("the marker must be 1 to 95 bytes", NULL);
			o.marker = optarg;
			break;
		case 'O':
			o.hold = 1;
			break;
		case 'r':
			o.ramp_ms =
			    (unsigned)num(optarg, 0, 3600000, "--ramp-ms");
			break;
		case 'p':
			o.procs = (unsigned)num(optarg, 0, MAX_PROCS, "-p");
			break;
		case 's':
			o.sources = (unsigned)num(optarg, 0, 254, "--sources");
			break;
		case 'j':
			o.json = 1;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (optind != argc - 1)
		usage(2);
	o.url = argv[optind];
	parse_url(o.url);
	if (o.requests < o.conns && !o.hold)
		o.conns = (unsigned)o.requests;
	if (o.sources == 0)
		o.sources = o.conns / SRC_CONNS + 1;
	if (o.sources > 254)
		o.sources = 254;
}

/* --- report ----------------------------------------------------------- */

static void
sum(struct result *t, unsigned procs)
{
	unsigned p, i;

	memset(t, 0, sizeof(*t));
	for (p = 0; p < procs; p++) {
		const struct result *r = &sh->res[p];

		t->requests += r->requests;
		for (i = 0; i < O_N; i++)
			t->outcomes[i] += r->outcomes[i];
		for (i = 0; i < STATUS_MAX; i++)
			t->status[i] += r->status[i];
		t->bytes += r->bytes;
		t->retried += r->retried;
		t->retry_after += r->retry_after;
		if (r->run_us > t->run_us)
			t->run_us = r->run_us;
		hist_merge(&t->ttfb, &r->ttfb);
		hist_merge(&t->tfe, &r->tfe);
		hist_merge(&t->total, &r->total);
		hist_merge(&t->non2xx, &r->non2xx);
	}
}

static void
print_hist(const char *name, const struct hist *h)
{
	printf("  %-20s n %-7llu p50 %.3f  p90 %.3f  p99 %.3f  max %.3f ms\n",
	    name, (unsigned long long)h->n, hist_pct(h, 50), hist_pct(h, 90),
	    hist_pct(h, 99), hist_pct(h, 100));
}

static void
json_hist(const char *name, const struct hist *h)
{
	printf(",\"%s\":{\"n\":%llu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
	       "\"max\":%.3f}",
	    name, (unsigned long long)h->n, hist_pct(h, 50), hist_pct(h, 90),
	    hist_pct(h, 99), hist_pct(h, 100));
}

static void
report(const struct result *t, unsigned procs)
{
	double secs = (double)t->run_us / 1e6;
	uint64_t ended = 0;
	unsigned i;
	int first = 1;

	for (i = 0; i < O_N; i++)
		ended += t->outcomes[i];
	printf("sseload %s: %u connections, %u process%s, %u source%s, %s",
	    o.url, o.conns, procs, procs == 1 ? "" : "es", o.sources,
	    o.sources == 1 ? "" : "s", o.hold ? "hold" : "keep in flight");
	if (o.ramp_ms > 0)
		printf(", ramp %u ms", o.ramp_ms);
	printf("\n  requests %llu, ended %llu in %.1f s (%.1f/s)\n",
	    (unsigned long long)t->requests, (unsigned long long)ended, secs,
	    secs > 0 ? (double)ended / secs : 0.0);
	printf("  status:");
	for (i = 0; i < STATUS_MAX; i++)
		if (t->status[i] > 0)
			printf(
			    " %u x %llu", i, (unsigned long long)t->status[i]);
	printf("%s\n", t->status[0] > 0 ? " (0: outside 1..599)" : "");
	printf("  ");
	for (i = 0; i < O_N; i++)
		printf("%s%s %llu", i > 0 ? ", " : "", outcome_names[i],
		    (unsigned long long)t->outcomes[i]);
	printf("\n  peak open streams %ld (at %.1f s)%s\n",
	    atomic_load(&sh->peak), (double)atomic_load(&sh->peak_at_us) / 1e6,
	    t->retried > 0 ? ", stale keep-alive retries" : "");
	print_hist("time to first byte", &t->ttfb);
	print_hist("time to first event", &t->tfe);
	print_hist("total", &t->total);
	print_hist("total outside 2xx", &t->non2xx);
	printf("  answers with Retry-After %llu\n",
	    (unsigned long long)t->retry_after);
	printf("  bytes received %llu\n", (unsigned long long)t->bytes);
	if (!o.json)
		return;
	printf("{\"url\":\"%s\",\"mode\":\"%s\",\"connections\":%u,"
	       "\"processes\":%u,\"sources\":%u,\"rampMs\":%u,"
	       "\"seconds\":%.3f,\"requests\":%llu,\"ended\":%llu,"
	       "\"status\":{",
	    o.url, o.hold ? "hold" : "flight", o.conns, procs, o.sources,
	    o.ramp_ms, secs, (unsigned long long)t->requests,
	    (unsigned long long)ended);
	for (i = 0; i < STATUS_MAX; i++)
		if (t->status[i] > 0) {
			printf("%s\"%u\":%llu", first ? "" : ",", i,
			    (unsigned long long)t->status[i]);
			first = 0;
		}
	printf("}");
	for (i = 0; i < O_N; i++)
		printf(",\"%s\":%llu", outcome_names[i],
		    (unsigned long long)t->outcomes[i]);
	printf(",\"retried\":%llu,\"retryAfter\":%llu,\"peakOpen\":%ld,"
	       "\"bytes\":%llu",
	    (unsigned long long)t->retried, (unsigned long long)t->retry_after,
	    atomic_load(&sh->peak), (unsigned long long)t->bytes);
	json_hist("ttfbMs", &t->ttfb);
	json_hist("firstEventMs", &t->tfe);
	json_hist("totalMs", &t->total);
	json_hist("non2xxMs", &t->non2xx);
	printf("}\n");
}

int
main(int argc, char **argv)
{
	struct result total;
	unsigned procs, p, per, first = 0;
	unsigned long nofile;
	pid_t pids[MAX_PROCS];
	int st, rc = 0;

	parse_args(argc, argv);
	build_requests();
	signal(SIGPIPE, SIG_IGN);
	nofile = nofile_raise();
	per = nofile > 2 * FDS_SPARE ? (unsigned)(nofile - FDS_SPARE)
	                             : FDS_SPARE;
	procs = (o.conns + per - 1) / per;
	if (o.procs > procs)
		procs = o.procs;
	if (procs > o.conns)
		procs = o.conns;
	if (procs > MAX_PROCS)
		die("too many connections for the open-files limit", NULL);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap failed", NULL);
	fflush(stdout);
	for (p = 0; p < procs; p++) {
		unsigned c = o.conns / procs + (p < o.conns % procs);
		uint64_t r = o.requests / procs + (p < o.requests % procs);

		if (procs == 1) {
			res = &sh->res[0];
			run(first, c, r);
			break;
		}
		if ((pids[p] = fork()) < 0)
			die("fork failed", NULL);
		if (pids[p] == 0) {
			res = &sh->res[p];
			run(first, c, r);
			_exit(0);
		}
		first += c;
	}
	if (procs > 1) {
		signal(SIGINT, SIG_IGN); /* the workers stop and report */
		signal(SIGTERM, SIG_IGN);
		for (p = 0; p < procs; p++)
			if (waitpid(pids[p], &st, 0) < 0 || !WIFEXITED(st) ||
			    WEXITSTATUS(st) != 0)
				rc = 1;
	}
	sum(&total, procs);
	report(&total, procs);
	return rc;
}
