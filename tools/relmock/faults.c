/*
 * faults - see faults.h.
 *
 * A struct mock_call per request, created in on_head (main.c), freed when
 * the answer is complete, the connection is reset, or the client leaves.
 * The handler's answer is copied into the call (status, headers, a byte
 * queue) and then delivered as the fault says: replaced by an error
 * status, after latency_ms, as a chunked stream dripped a few bytes per
 * drip_ms, cut by a reset after drop_after bytes, by a reset instead of
 * an answer, or never (stall).
 *
 * Reset: httpd_req_abort (SO_LINGER 0, the client sees an RST).
 *
 * Freeing: endpoint code runs with call->busy raised; a call that ends
 * meanwhile is only marked and freed when busy drops to 0, so an endpoint
 * may answer from inside its handler or go callback.
 */
#include "tools/relmock/faults.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "gate/query.h"
#include "tools/relmock/relmock.h"
#include "util/log.h"
#include "util/util.h"

#define DRIP_BYTES_DEFAULT 4
#define DROP_POLL_MS       5
#define MAX_HDRS           16

enum call_state {
	CS_HANDLER, /* the endpoint has not answered yet */
	CS_WAIT,    /* answer ready, latency running */
	CS_STREAM,  /* streaming the queue */
	CS_STALL,   /* never answering */
};

enum fstep { FS_DELIVER, FS_PUMP, FS_DROP };

struct mock_call {
	struct httpd *httpd;
	uint64_t id;
	struct mock_epstate *es;
	struct mock_fault fault;
	int from_request;
	enum call_state state;
	char *method, *path;
	char *body;
	size_t body_len;
	uint64_t t0;
	/* the answer */
	int answered;  /* mock_reply or mock_stream_begin was called */
	int streaming; /* endpoint-paced stream (mock_stream_begin) */
	int status;
	struct httpd_header hdrs[MAX_HDRS];
	char *hstore[2 * MAX_HDRS];
	size_t nhdrs;
	char *q;
	size_t qlen, qpos, sent;
	int end_wanted;
	void (*go)(struct mock_call *);
	/* timers */
	struct event *ftimer; /* fault machinery */
	enum fstep fnext;
	struct event *etimer; /* the endpoint's mock_call_after */
	void (*efn)(struct mock_call *);
	void (*cleanup)(void *);
	void *cleanup_data;
	unsigned busy;
	int finished;
	const char *outcome; /* for the log line */
};

static const char outcome_answered[] = "answered";

static void deliver(struct mock_call *c);
static void pump(struct mock_call *c);

/* --- the spec language ----------------------------------------------- */

void
mock_fault_clear(struct mock_fault *f)
{
	memset(f, 0, sizeof(*f));
	f->retry_after = -1;
	f->drip_bytes = DRIP_BYTES_DEFAULT;
	f->drop_after = -1;
}

int
mock_fault_active(const struct mock_fault *f)
{
	return f->status != 0 || f->latency_ms > 0 || f->reset || f->stall ||
	    f->drip_ms > 0 || f->drop_after >= 0;
}

/* num - a decimal in [lo, hi]; 0 or -1 */
static int
num(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int
mock_fault_parse(
    const char *spec, struct mock_fault *f, char *err, size_t errlen)
{
	char buf[MOCK_FAULT_SPEC_MAX];
	char *save = NULL, *item, *val;
	long v;

	mock_fault_clear(f);
	if (strlen(spec) >= sizeof(buf)) {
		snprintf(err, errlen, "fault spec longer than %zu bytes",
		    sizeof(buf) - 1);
		return -1;
	}
	strlcpy_rg(buf, spec, sizeof(buf));
	for (item = strtok_r(buf, ";,", &save); item != NULL;
	     item = strtok_r(NULL, ";,", &save)) {
		while (*item == ' ')
			item++;
		if (*item == '\0')
			continue;
		f->set = 1;
		val = strchr(item, '=');
		if (val != NULL)
			*val++ = '\0';
		if (val == NULL && strcmp(item, "reset") == 0) {
			f->reset = 1;
		} else if (val == NULL && strcmp(item, "stall") == 0) {
			f->stall = 1;
		} else if (val == NULL && strcmp(item, "none") == 0) {
			/* explicit "no fault": overrides defaults */
		} else if (val == NULL) {
			snprintf(err, errlen, "unknown fault '%s'", item);
			return -1;
		} else if (strcmp(item, "status") == 0) {
			if (num(val, 200, 599, &v) < 0)
				goto bad;
			f->status = (int)v;
		} else if (strcmp(item, "retry_after") == 0) {
			if (num(val, 0, 86400, &v) < 0)
				goto bad;
			f->retry_after = (int)v;
		} else if (strcmp(item, "latency_ms") == 0) {
			if (num(val, 0, 3600000, &v) < 0)
				goto bad;
			f->latency_ms = (unsigned)v;
		} else if (strcmp(item, "drip_ms") == 0) {
			if (num(val, 1, 60000, &v) < 0)
				goto bad;
			f->drip_ms = (unsigned)v;
		} else if (strcmp(item, "drip_bytes") == 0) {
			if (num(val, 1, 1 << 20, &v) < 0)
				goto bad;
			f->drip_bytes = (unsigned)v;
		} else if (strcmp(item, "drop_after") == 0) {
			if (num(val, 0, 1L << 30, &v) < 0)
				goto bad;
			f->drop_after = v;
		} else {
			snprintf(err, errlen, "unknown fault '%s'", item);
			return -1;
		}
		continue;
	bad:
		snprintf(err, errlen, "bad value for %s: '%s'", item, val);
		return -1;
	}
	if (f->reset + f->stall > 1) {
		snprintf(err, errlen, "reset and stall exclude each other");
		return -1;
	}
	return 0;
}

void
mock_fault_format(const struct mock_fault *f, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
#define ADD(...)                                                              \
	do {                                                                  \
		if (n < len)                                                  \
			n += (size_t)snprintf(                                \
			    buf + n, len - n, "%s", n > 0 ? ";" : "");        \
		if (n < len)                                                  \
			n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__); \
	} while (0)
	if (f->status != 0)
		ADD("status=%d", f->status);
	if (f->retry_after >= 0)
		ADD("retry_after=%d", f->retry_after);
	if (f->latency_ms > 0)
		ADD("latency_ms=%u", f->latency_ms);
	if (f->drip_ms > 0)
		ADD("drip_ms=%u;drip_bytes=%u", f->drip_ms, f->drip_bytes);
	if (f->drop_after >= 0)
		ADD("drop_after=%ld", f->drop_after);
	if (f->reset)
		ADD("reset");
	if (f->stall)
		ADD("stall");
	if (n == 0 && f->set)
		ADD("none");
#undef ADD
}

void
mock_fault_count(struct mock_fault_stats *st, const struct mock_fault *f)
{
	if (!mock_fault_active(f))
		return;
	st->faulted++;
	if (f->status != 0)
		st->status++;
	if (f->latency_ms > 0)
		st->latency++;
	if (f->reset)
		st->reset++;
	if (f->stall)
		st->stall++;
	if (f->drip_ms > 0)
		st->drip++;
	if (f->drop_after >= 0)
		st->drop++;
}

json_t *
mock_fault_stats_json(const struct mock_fault_stats *st)
{
	json_t *o = json_object();

	json_object_set_new(
	    o, "requests", json_integer((json_int_t)st->requests));
	json_object_set_new(
	    o, "faulted", json_integer((json_int_t)st->faulted));
#define MOCK_FAULT_JSON(name, doc)                                            \
	json_object_set_new(o, #name, json_integer((json_int_t)st->name));
	MOCK_FAULT_KINDS(MOCK_FAULT_JSON)
#undef MOCK_FAULT_JSON
	return o;
}

/* --- the call -------------------------------------------------------- */

static void
call_free(struct mock_call *c)
{
	struct httpd_req *req =
	    c->id != 0 ? httpd_req_lookup(c->httpd, c->id) : NULL;
	char spec[MOCK_FAULT_SPEC_MAX], st[16];
	size_t i;

	if (req != NULL) { /* still owned (reset, stall at exit): detach */
		httpd_req_set_close_cb(req, NULL, NULL);
		httpd_req_set_drain_cb(req, NULL, NULL);
		httpd_req_set_data(req, NULL);
	}
	if (mock_conf()->verbose) {
		mock_fault_format(&c->fault, spec, sizeof(spec));
		snprintf(st, sizeof(st), "%d ", c->status);
		log_info("%s %s -> %s%s %zu bytes %llums%s%s", c->method,
		    c->path,
		    c->sent > 0 || c->outcome == outcome_answered ? st : "",
		    c->outcome != NULL ? c->outcome : "gone", c->sent,
		    (unsigned long long)(mono_ms() - c->t0),
		    spec[0] != '\0' ? " fault=" : "", spec);
	}
	if (c->cleanup != NULL)
		c->cleanup(c->cleanup_data);
	if (c->ftimer != NULL)
		event_free(c->ftimer);
	if (c->etimer != NULL)
		event_free(c->etimer);
	for (i = 0; i < 2 * c->nhdrs; i++)
		free(c->hstore[i]);
	free(c->q);
	free(c->body);
	free(c->method);
	free(c->path);
	free(c);
}

/* done - the call is over; freed now or when endpoint code returns */
static void
done(struct mock_call *c, const char *outcome)
{
	if (c->outcome == NULL)
		c->outcome = outcome;
	c->finished = 1;
	if (c->busy == 0)
		call_free(c);
}

/* unbusy - after endpoint code: free a call that ended meanwhile; 1 if
 * freed */
static int
unbusy(struct mock_call *c)
{
	if (--c->busy == 0 && c->finished) {
		call_free(c);
		return 1;
	}
	return 0;
}

static void
on_client_gone(void *arg, struct httpd_req *req)
{
	struct mock_call *c = arg;

	(void)req;
	httpd_req_set_data(req, NULL);
	c->id = 0; /* lookups fail from now on */
	done(c, "client gone");
}

struct mock_call *
mock_call_new(struct httpd_req *req, struct mock_epstate *es)
{
	struct mock_call *c = xcalloc(1, sizeof(*c));

	c->httpd = httpd_req_server(req);
	c->id = httpd_req_id(req);
	c->es = es;
	c->t0 = mono_ms();
	c->method = xstrdup(httpd_req_method(req));
	c->path = xstrdup(httpd_req_path(req));
	mock_fault_clear(&c->fault);
	httpd_req_set_close_cb(req, on_client_gone, c);
	/* an upstream stops working for a client that left (a stall, a
	 * delayed answer): the client's FIN ends the call at once */
	httpd_req_end_on_eof(req);
	httpd_req_set_data(req, c);
	return c;
}

/* pick_fault - from the request, else the endpoint's default; -1 after
 * answering 400 for a bad spec */
static int
pick_fault(struct mock_call *c, struct httpd_req *req)
{
	char spec[MOCK_FAULT_SPEC_MAX], err[160];
	const char *h = httpd_req_header(req, "x-relmock-fault");
	int found = 0;

	if (h != NULL) {
		strlcpy_rg(spec, h, sizeof(spec));
		found = strlen(h) < sizeof(spec) ? 1 : -1;
	} else {
		found =
		    mock_call_query(c, "relmock_fault", spec, sizeof(spec));
	}
	if (found == 0) {
		c->fault = c->es->fault;
		return 0;
	}
	if (found < 0 ||
	    mock_fault_parse(spec, &c->fault, err, sizeof(err)) < 0) {
		if (found < 0)
			snprintf(err, sizeof(err), "fault spec unreadable");
		mock_fault_clear(&c->fault);
		mock_reply_error(c, 400, "bad_fault_spec", err);
		return -1;
	}
	c->from_request = 1;
	if (!c->fault.set)
		c->fault = c->es->fault;
	return 0;
}

void
mock_call_start(struct mock_call *c, struct httpd_req *req)
{
	const void *body;
	size_t len;

	body = httpd_req_body(req, &len);
	c->body = xmalloc(len + 1);
	if (len > 0)
		memcpy(c->body, body, len);
	c->body[len] = '\0';
	c->body_len = len;
	c->busy++;
	c->es->stats.requests++;
	if (!c->es->ep->faultable || pick_fault(c, req) == 0)
		c->es->ep->handle(c);
	unbusy(c);
}

struct httpd_req *
mock_call_req(const struct mock_call *c)
{
	if (c->id == 0 || c->finished)
		return NULL;
	return httpd_req_lookup(c->httpd, c->id);
}

const struct mock_endpoint *
mock_call_ep(const struct mock_call *c)
{
	return c->es->ep;
}

struct mock_fault *
mock_call_fault(struct mock_call *c)
{
	return &c->fault;
}

int
mock_call_fault_from_request(const struct mock_call *c)
{
	return c->from_request;
}

const char *
mock_call_body(const struct mock_call *c, size_t *len)
{
	*len = c->body_len;
	return c->body;
}

const char *
mock_call_path_rest(const struct mock_call *c)
{
	size_t n = strlen(c->es->ep->prefix);

	return strlen(c->path) >= n ? c->path + n : "";
}

int
mock_call_query(
    const struct mock_call *c, const char *name, char *out, size_t outlen)
{
	struct httpd_req *req = mock_call_req(c);
	const char *q = req != NULL ? httpd_req_query(req) : NULL;
	int too_long = 0;
	enum query_result r;

	out[0] = '\0';
	if (q == NULL)
		return 0;
	r = query_get(q, strlen(q), name, out, outlen, &too_long);
	if (r == QUERY_BAD || too_long)
		return -1;
	return r == QUERY_FOUND ? 1 : 0;
}

int
mock_require_method(struct mock_call *c, const char *m)
{
	static const char body[] = "{\"error\":{\"code\":"
	                           "\"method_not_allowed\",\"message\":"
	                           "\"wrong method\"}}";
	struct httpd_header allow = { "Allow", m };

	if (strcmp(c->method, m) == 0)
		return 1;
	mock_reply(
	    c, 405, "application/json", &allow, 1, body, sizeof(body) - 1);
	return 0;
}

void
mock_call_set_cleanup(struct mock_call *c, void (*fn)(void *), void *data)
{
	c->cleanup = fn;
	c->cleanup_data = data;
}

void *
mock_call_data(const struct mock_call *c)
{
	return c->cleanup_data;
}

const char *
mock_call_outcome(const struct mock_call *c)
{
	return c->finished ? c->outcome : NULL;
}

size_t
mock_call_sent(const struct mock_call *c)
{
	return c->sent;
}

static void
etimer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mock_call *c = arg;

	(void)fd;
	(void)what;
	c->busy++;
	c->efn(c);
	unbusy(c);
}

void
mock_call_after(
    struct mock_call *c, unsigned ms, void (*fn)(struct mock_call *))
{
	struct timeval tv = { (time_t)(ms / 1000),
		(suseconds_t)(ms % 1000) * 1000 };

	if (c->etimer == NULL)
		c->etimer = evtimer_new(mock_base(), etimer_cb, c);
	c->efn = fn;
	evtimer_add(c->etimer, &tv);
}

static void
ftimer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mock_call *c = arg;

	(void)fd;
	(void)what;
	switch (c->fnext) {
	case FS_DELIVER:
		deliver(c);
		break;
	case FS_PUMP:
		pump(c);
		break;
	case FS_DROP:
		pump(c);
		break;
	}
}

static void
fault_after(struct mock_call *c, unsigned ms, enum fstep step)
{
	struct timeval tv = { (time_t)(ms / 1000),
		(suseconds_t)(ms % 1000) * 1000 };

	if (c->ftimer == NULL)
		c->ftimer = evtimer_new(mock_base(), ftimer_cb, c);
	c->fnext = step;
	evtimer_add(c->ftimer, &tv);
}

static int
ftimer_pending(const struct mock_call *c)
{
	return c->ftimer != NULL && evtimer_pending(c->ftimer, NULL);
}

/* --- reset ----------------------------------------------------------- */

/* reset_conn - RST the call's connection (no answer).  The call ends
 * here. */
static void
reset_conn(struct mock_call *c)
{
	struct httpd_req *req = mock_call_req(c);

	if (req == NULL)
		return;
	if (httpd_req_abort(req) != 0) {
		log_warn("reset: request of %s not abortable; stalling instead",
		    httpd_req_peer_str(req));
		c->state = CS_STALL;
		return;
	}
	done(c, c->sent > 0 ? "dropped" : "reset");
}

/* --- delivery -------------------------------------------------------- */

static void
hdr_add(struct mock_call *c, const char *name, const char *value)
{
	if (c->nhdrs == MAX_HDRS) {
		log_warn("%s: more than %d headers, dropped %s", c->path,
		    MAX_HDRS, name);
		return;
	}
	c->hstore[2 * c->nhdrs] = xstrdup(name);
	c->hstore[2 * c->nhdrs + 1] = xstrdup(value);
	c->hdrs[c->nhdrs].name = c->hstore[2 * c->nhdrs];
	c->hdrs[c->nhdrs].value = c->hstore[2 * c->nhdrs + 1];
	c->nhdrs++;
}

static void
hdrs_clear(struct mock_call *c)
{
	size_t i;

	for (i = 0; i < 2 * c->nhdrs; i++)
		free(c->hstore[i]);
	c->nhdrs = 0;
}

static void
q_put(struct mock_call *c, const void *data, size_t len)
{
	if (c->qpos > 0 && c->qpos == c->qlen)
		c->qpos = c->qlen = 0;
	c->q = xrealloc(c->q, c->qlen + len + 1);
	memcpy(c->q + c->qlen, data, len);
	c->qlen += len;
}

/* replace_by_fault - the fault's status and error body instead of the
 * endpoint's answer */
static void
replace_by_fault(struct mock_call *c)
{
	char body[256], ra[16];
	int n;

	hdrs_clear(c);
	c->qlen = c->qpos = 0;
	c->streaming = 0;
	c->go = NULL;
	c->status = c->fault.status;
	hdr_add(c, "Content-Type", "application/json");
	if (c->fault.retry_after >= 0) {
		snprintf(ra, sizeof(ra), "%d", c->fault.retry_after);
		hdr_add(c, "Retry-After", ra);
	}
	n = snprintf(body, sizeof(body),
	    "{\"error\":{\"code\":\"relmock_fault\",\"message\":\"relmock "
	    "injected status %d\",\"type\":\"relmock_fault\"}}",
	    c->fault.status);
	q_put(c, body, (size_t)n);
	c->end_wanted = 1;
}

/* begin - the endpoint has answered: count the fault, apply it */
static void
begin(struct mock_call *c)
{
	char ra[16];

	if (c->answered) {
		log_err("%s: endpoint %s answered twice", c->path,
		    c->es->ep->name);
		abort();
	}
	c->answered = 1;
	mock_fault_count(&c->es->stats, &c->fault);
	if (c->fault.status != 0) {
		replace_by_fault(c);
	} else if (c->fault.retry_after >= 0) {
		snprintf(ra, sizeof(ra), "%d", c->fault.retry_after);
		hdr_add(c, "Retry-After", ra);
	}
	c->state = CS_WAIT;
	if (c->fault.latency_ms > 0 && !c->fault.stall)
		fault_after(c, c->fault.latency_ms, FS_DELIVER);
	else
		deliver(c);
}

/* deliver - latency is over: answer, stream, reset or stall */
static void
deliver(struct mock_call *c)
{
	struct httpd_req *req = mock_call_req(c);

	if (req == NULL)
		return;
	if (c->fault.stall) {
		c->state = CS_STALL;
		return;
	}
	if (c->fault.reset) {
		reset_conn(c);
		return;
	}
	if (!c->streaming && c->fault.drip_ms == 0 &&
	    c->fault.drop_after < 0) {
		httpd_respond(req, c->status, c->hdrs, c->nhdrs,
		    c->q + c->qpos, c->qlen - c->qpos);
		c->sent = c->qlen - c->qpos;
		done(c, outcome_answered);
		return;
	}
	if (httpd_stream_start(req, c->status, c->hdrs, c->nhdrs) < 0) {
		done(c, "stream refused");
		return;
	}
	c->state = CS_STREAM;
	if (c->go != NULL) {
		c->busy++;
		c->go(c);
		if (unbusy(c))
			return;
		if (c->finished)
			return;
	}
	if (!ftimer_pending(c))
		pump(c);
}

static void
drain_cb(void *arg, struct httpd_req *req)
{
	(void)req;
	pump(arg);
}

/* pump - write the queue as the fault allows; end, drop or wait */
static void
pump(struct mock_call *c)
{
	struct httpd_req *req = mock_call_req(c);
	size_t n;
	long w;

	if (req == NULL || c->state != CS_STREAM)
		return;
	while (c->qpos < c->qlen) {
		n = c->qlen - c->qpos;
		if (c->fault.drip_ms > 0 && n > c->fault.drip_bytes)
			n = c->fault.drip_bytes;
		if (c->fault.drop_after >= 0 &&
		    (long)(c->sent + n) > c->fault.drop_after)
			n = (size_t)(c->fault.drop_after - (long)c->sent);
		if (n == 0)
			break;
		w = httpd_stream_write(req, c->q + c->qpos, n);
		if (w < 0 && errno == ENOBUFS) {
			httpd_req_set_drain_cb(req, drain_cb, c);
			return;
		}
		if (w < 0)
			return; /* client gone: on_client_gone follows */
		c->qpos += n;
		c->sent += n;
		if (c->fault.drip_ms > 0 && c->qpos < c->qlen) {
			fault_after(c, c->fault.drip_ms, FS_PUMP);
			return;
		}
	}
	if (c->fault.drop_after >= 0 &&
	    ((long)c->sent >= c->fault.drop_after || c->end_wanted)) {
		/* let the server write what is queued, then reset */
		if (httpd_stream_write(req, NULL, 0) > 0) {
			fault_after(c, DROP_POLL_MS, FS_DROP);
			return;
		}
		reset_conn(c);
		return;
	}
	if (c->end_wanted && c->qpos == c->qlen) {
		httpd_stream_end(req);
		done(c, outcome_answered);
	}
}

/* --- answers --------------------------------------------------------- */

void
mock_reply(struct mock_call *c, int status, const char *ctype,
    const struct httpd_header *hdrs, size_t nhdrs, const void *body,
    size_t len)
{
	size_t i;

	c->status = status;
	if (ctype != NULL)
		hdr_add(c, "Content-Type", ctype);
	for (i = 0; i < nhdrs; i++)
		hdr_add(c, hdrs[i].name, hdrs[i].value);
	if (len > 0)
		q_put(c, body, len);
	c->end_wanted = 1;
	begin(c);
}

void
mock_reply_json(struct mock_call *c, int status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	if (s == NULL) {
		log_err("json_dumps failed");
		abort();
	}
	mock_reply(c, status, "application/json", NULL, 0, s, strlen(s));
	free(s);
	json_decref(j);
}

void
mock_reply_error(
    struct mock_call *c, int status, const char *code, const char *msg)
{
	mock_reply_json(c, status,
	    json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

void
mock_stream_begin(struct mock_call *c, int status,
    const struct httpd_header *hdrs, size_t nhdrs,
    void (*go)(struct mock_call *))
{
	size_t i;

	c->status = status;
	for (i = 0; i < nhdrs; i++)
		hdr_add(c, hdrs[i].name, hdrs[i].value);
	c->streaming = 1;
	c->go = go;
	begin(c);
}

int
mock_stream_write(struct mock_call *c, const void *data, size_t len)
{
	if (c->finished || c->end_wanted || mock_call_req(c) == NULL)
		return -1;
	q_put(c, data, len);
	if (c->state == CS_STREAM && !ftimer_pending(c))
		pump(c);
	return 0;
}

size_t
mock_stream_queued(const struct mock_call *c)
{
	return c->qlen - c->qpos;
}

void
mock_stream_end(struct mock_call *c)
{
	if (c->finished || c->end_wanted)
		return;
	c->end_wanted = 1;
	if (c->state == CS_STREAM && !ftimer_pending(c))
		pump(c);
}
