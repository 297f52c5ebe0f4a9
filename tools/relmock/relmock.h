/*
 * relmock - the interface between relmock's core and its endpoint modules.
 *
 * relmock is one process that serves, on loopback, the upstreams relgate's
 * tests, demos and drills need.  Each upstream is one endpoint module: one
 * file that defines a const struct mock_endpoint (name, path prefix,
 * handler, and optional control/reset/fini hooks) and is listed once in the
 * table of main.c.  The core owns the listener, routing, the records'
 * bounds, the control API and the fault injection (faults.c): an endpoint
 * only decides what a healthy upstream would answer and answers through
 * mock_reply*() or mock_stream_*(), and the call's fault decides how that
 * answer really goes out (delayed, dripped, replaced, dropped, never).
 *
 * Endpoints must never: touch the connection except through these
 * functions, keep a struct httpd_req * across loop iterations (keep the
 * struct mock_call *, which lives until the request ends), or record
 * without mock_log_add (the bounds on memory live there).
 *
 * Single-threaded: everything runs on the loop of main.c.
 */
#ifndef RG_RELMOCK_H
#define RG_RELMOCK_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http/server.h"
#include "tools/relmock/faults.h"

struct event_base;
struct mock_call;

/* Settings from the command line and the config file. */
struct mock_conf {
	const char *listen;         /* "127.0.0.1:8089" */
	const char *backend_secret; /* NULL: signatures not judged */
	const char *sentry_key;     /* NULL: any key is accepted */
	size_t max_records;         /* per endpoint, then counted as dropped */
	size_t max_record_bytes;    /* per endpoint, same */
	size_t max_body;            /* request body limit */
	int verbose;
	json_t *json; /* the whole config file (or an empty object) */
};

/*
 * One endpoint module.  handle is called once the whole request body is
 * in; it must answer the call exactly once (mock_reply*, or
 * mock_stream_begin ... mock_stream_end), now or later, unless the client
 * leaves first (then the call's cleanup runs: mock_call_set_cleanup).
 * control serves GET/POST /_relmock/<name>/<rest>: answer and return 0,
 * or return -1 for "no such control" (404).  init reads the config once
 * at start, before the event loop exists and before --workers forks (it
 * must not create events).  reset forgets every record and armed
 * behaviour; fini frees everything at exit.  NULL hooks are skipped.
 */
struct mock_endpoint {
	const char *name;   /* stats, config "faults" key, control path */
	const char *prefix; /* path prefix served, e.g. "/backend/" */
	const char *suffix; /* NULL, or the path must also end with it */
	int faultable;      /* 0: faults never apply (the control API) */
	void (*init)(const struct mock_conf *conf);
	void (*handle)(struct mock_call *call);
	int (*control)(struct mock_call *call, const char *rest);
	void (*reset)(void);
	void (*fini)(void);
};

/* The endpoint modules, defined in their files. */
extern const struct mock_endpoint mock_backend_ep;
extern const struct mock_endpoint mock_oauth_ep;
extern const struct mock_endpoint mock_sentry_ep;
extern const struct mock_endpoint mock_chat_ep;
extern const struct mock_endpoint mock_serper_ep;
extern const struct mock_endpoint mock_ebay_ep;
extern const struct mock_endpoint mock_control_ep;

/* --- the call (faults.c) --------------------------------------------- */

/* mock_call_req - the request, valid during the handler and until the
 * call is answered; NULL once the client is gone. */
struct httpd_req *mock_call_req(const struct mock_call *call);
const struct mock_endpoint *mock_call_ep(const struct mock_call *call);
/* mock_call_fault - the fault that will shape the answer; the handler may
 * replace it (e.g. an armed "fail the next N") before answering.  It is
 * counted when the answer goes out. */
struct mock_fault *mock_call_fault(struct mock_call *call);
/* mock_call_fault_from_request - 1 if the fault came from the request
 * (header or query), which wins over what an endpoint has armed. */
int mock_call_fault_from_request(const struct mock_call *call);
/* mock_call_body - the request body (NUL-terminated copy, len bytes). */
const char *mock_call_body(const struct mock_call *call, size_t *len);
/* mock_call_path_rest - the path after the endpoint's prefix. */
const char *mock_call_path_rest(const struct mock_call *call);
/* mock_call_query - get one query parameter (see gate/query.h); 1 if
 * found, 0 if absent, -1 if malformed or too long. */
int mock_call_query(
    const struct mock_call *call, const char *name, char *out, size_t outlen);
/* mock_require_method - 1 if the request's method is m; else answers
 * 405 (with Allow: m) and returns 0. */
int mock_require_method(struct mock_call *call, const char *m);
/* mock_call_set_cleanup - fn(data) runs when the call ends, however. */
void mock_call_set_cleanup(
    struct mock_call *call, void (*fn)(void *), void *data);
/* mock_call_data - the data given to mock_call_set_cleanup (NULL if
 * none): an endpoint's per-call state, found again from its callbacks. */
void *mock_call_data(const struct mock_call *call);
/* mock_call_outcome - how the call ended, for the cleanup: "answered"
 * (the whole answer went out, maybe a fault's status), "client gone",
 * "reset" (RST before any body byte), "dropped" (RST after some),
 * "stream refused"; NULL while it runs. */
const char *mock_call_outcome(const struct mock_call *call);
/* mock_call_sent - body bytes handed to the connection so far. */
size_t mock_call_sent(const struct mock_call *call);
/* mock_call_after - fn(call) after ms on the loop, unless the call ended
 * first (one pending timer per call; a new one replaces it). */
void mock_call_after(
    struct mock_call *call, unsigned ms, void (*fn)(struct mock_call *));

/* mock_reply - the whole answer (status, Content-Type, extra headers,
 * body), as the call's fault lets it go out.  Completes the call. */
void mock_reply(struct mock_call *call, int status, const char *ctype,
    const struct httpd_header *hdrs, size_t nhdrs, const void *body,
    size_t len);
/* mock_reply_json - mock_reply with a JSON body; takes j's reference. */
void mock_reply_json(struct mock_call *call, int status, json_t *j);
/* mock_reply_error - {"error":{"code":code,"message":msg}}. */
void mock_reply_error(
    struct mock_call *call, int status, const char *code, const char *msg);

/*
 * Streams, for endpoints that pace their own output (SSE).
 * mock_stream_begin: start once the fault's latency is over; go(call) is
 * then called and may write.  If the fault replaces the status, resets or
 * stalls, go is never called (the core answers).  mock_stream_write
 * queues (dripped or dropped per the fault; 0, or -1 once the call is
 * over); mock_stream_end completes the call after the queue is out.
 */
void mock_stream_begin(struct mock_call *call, int status,
    const struct httpd_header *hdrs, size_t nhdrs,
    void (*go)(struct mock_call *));
int mock_stream_write(struct mock_call *call, const void *data, size_t len);
/* mock_stream_queued - bytes written but still held back (the connection's
 * output queue is full, a drip is running): a fast writer waits while
 * this is large, so that a slow reader bounds its memory. */
size_t mock_stream_queued(const struct mock_call *call);
void mock_stream_end(struct mock_call *call);

/* --- the endpoint table (main.c) ------------------------------------ */

struct mock_epstate {
	const struct mock_endpoint *ep;
	struct mock_fault conf_fault; /* default from the config file */
	struct mock_fault fault;      /* default now (control API may set) */
	struct mock_fault_stats stats;
};

size_t mock_endpoint_count(void);
struct mock_epstate *mock_endpoint_at(size_t i);
/* mock_endpoint_find - by name; NULL if none. */
struct mock_epstate *mock_endpoint_find(const char *name);
/* mock_reset_all - every endpoint's reset, counters zeroed, defaults back
 * to the config file's. */
void mock_reset_all(void);

/* faults.c, for main.c: a call per request from on_head; start it in
 * on_request (it picks the fault and runs the handler). */
struct mock_call *mock_call_new(
    struct httpd_req *req, struct mock_epstate *es);
void mock_call_start(struct mock_call *call, struct httpd_req *req);

/* --- records (main.c) ------------------------------------------------ */

/* A bounded list of JSON records, one per endpoint list: at most
 * conf.max_records items and conf.max_record_bytes of serialised JSON;
 * past either, records are counted as dropped. */
struct mock_log {
	json_t *items; /* array */
	size_t bytes;
	uint64_t seq;     /* last seq given */
	uint64_t dropped; /* records not kept */
};

/* mock_log_add - give rec the next "seq" and keep it if the bounds allow;
 * takes rec's reference.  Returns the seq. */
uint64_t mock_log_add(struct mock_log *log, json_t *rec);
/* mock_log_clear - forget every record (seq restarts at 1). */
void mock_log_clear(struct mock_log *log);
/* mock_log_items - the kept records, oldest first (new reference). */
json_t *mock_log_items(const struct mock_log *log);

const struct mock_conf *mock_conf(void);
/* mock_json_body - parsed JSON if body is a JSON text, else a string (or
 * null when the bytes are not UTF-8). */
json_t *mock_json_body(const char *body, size_t len);
/* mock_listen_port - the listening port, network byte order. */
in_port_t mock_listen_port(void);
/* mock_base - the event loop. */
struct event_base *mock_base(void);

#endif
