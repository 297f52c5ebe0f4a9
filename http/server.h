/*
 * server - relgate's small, strict HTTP/1.1 server on raw libevent.
 *
 * Owns the client connections of one listening socket: accepting them
 * (within the open-files limit, 503 beyond it), reading and parsing
 * requests (http/parser.h), timeouts, keep-alive, pipelining (one
 * request at a time per connection, responses in order) and half-closed
 * clients, writing responses (nosniff, HEAD without a body) and
 * SSE-style streams, lingering close after errors.
 * The application sees requests through struct httpd_ops and answers
 * through httpd_respond / httpd_stream_*; every error the server detects
 * goes through ops->on_error so that the application gives it its
 * classified body (a minimal JSON fallback is sent if it does not).
 *
 * Must never: answer with an unclassified body, read a body the route has
 * not accepted, call the application from inside one of its own calls
 * into this API (callbacks come only from the event loop), or let a
 * pending request outlive its connection (see "lifetime" below).
 *
 * Single-threaded: every function runs on the loop thread of base.
 */
#ifndef RG_HTTP_SERVER_H
#define RG_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct httpd;
struct httpd_req;

/* Errors the server reports through ops->on_error: name, status, the
 * code of the fallback body, its message. */
#define HTTPD_ERRORS(X)                                                       \
	X(BAD_REQUEST, 400, "bad_request", "malformed HTTP request")          \
	X(URI_TOO_LONG, 414, "uri_too_long", "request target too long")       \
	X(HEAD_TOO_LARGE, 431, "headers_too_large",                           \
	    "request headers too large")                                      \
	X(BODY_TOO_LARGE, 413, "payload_too_large", "request body too large") \
	X(TIMEOUT, 408, "request_timeout", "request not received in time")    \
	X(NOT_IMPLEMENTED, 501, "not_implemented",                            \
	    "transfer coding not supported")                                  \
	X(VERSION, 505, "http_version_not_supported",                         \
	    "HTTP version not supported")

enum httpd_err {
	HTTPD_E_NONE,
#define HTTPD_ERR_ENUM(name, status, code, msg) HTTPD_E_##name,
	HTTPD_ERRORS(HTTPD_ERR_ENUM)
#undef HTTPD_ERR_ENUM
};

/* Counters: one writer (this server), relaxed atomics; the storage is the
 * caller's (shm).  Gauges are marked. */
#define HTTPD_STATS(X)                                                        \
	X(accepted, "client connections accepted")                            \
	X(closed, "client connections closed")                                \
	X(open, "gauge: client connections open now")                         \
	X(max_connections,                                                    \
	    "gauge: connection limit in force (fitted to RLIMIT_NOFILE)")     \
	X(over_max_connections, "connections refused: max_connections")       \
	X(refused_no_fds, "connections refused: no descriptor left (EMFILE)") \
	X(accept_errors, "accept() failures other than EAGAIN")               \
	X(requests, "request heads parsed")                                   \
	X(responses_2xx, "responses 200-299")                                 \
	X(responses_3xx, "responses 300-399")                                 \
	X(responses_4xx, "responses 400-499")                                 \
	X(responses_5xx, "responses 500-599")                                 \
	X(err_bad_request, "400: malformed request")                          \
	X(err_uri_too_long, "414: request line over max_head_bytes")          \
	X(err_head_too_large, "431: head over max_head_bytes")                \
	X(err_body_too_large, "413: body over the route limit")               \
	X(err_timeout, "408: head or body not complete in time")              \
	X(err_not_implemented, "501: unsupported transfer coding")            \
	X(err_version, "505: HTTP version not supported")                     \
	X(timeouts, "connections closed by a timeout (any kind)")             \
	X(client_aborts, "requests whose client left before the answer")      \
	X(bytes_in, "bytes read from clients")                                \
	X(bytes_out, "bytes written to clients")

struct httpd_stats {
#define HTTPD_STAT_FIELD(name, doc) uint64_t name;
	HTTPD_STATS(HTTPD_STAT_FIELD)
#undef HTTPD_STAT_FIELD
};

/* Limits; a 0 field takes the default in brackets. */
struct httpd_limits {
	size_t max_head_bytes;         /* request line + fields [16384] */
	unsigned head_timeout_ms;      /* from a request's 1st byte [10000] */
	unsigned body_timeout_ms;      /* whole body, from the head [30000] */
	unsigned keepalive_timeout_ms; /* idle between requests [65000] */
	unsigned write_timeout_ms;     /* no write progress [30000] */
	unsigned linger_ms;            /* discard input before close [2000] */
	unsigned max_connections;      /* open connections [16384]; lowered to
	                                  what RLIMIT_NOFILE leaves room for */
	size_t max_output_bytes; /* output queue per connection [1 MiB] */
	const char
	    *error_code_header; /* fallback bodies ["x-sendcat-error-code"] */
};

struct httpd_header {
	const char *name;  /* Content-Length, Transfer-Encoding and */
	const char *value; /* Connection are the server's: dropped */
};

/* What on_done reports of a finished request. */
struct httpd_done {
	int status;         /* the answer's status; 0: none was given */
	unsigned route;     /* httpd_req_set_route's value, 0 if unset */
	unsigned code;      /* httpd_req_set_code's value, 0 if unset */
	uint64_t bytes;     /* bytes of the answer queued: head and body */
	uint64_t answer_us; /* from the request head to the answer's head
	                       (0: no answer) */
	uint64_t total_us;  /* from the request head to its end */
};

/*
 * Callbacks, all from the event loop; arg is httpd_new's arg.
 *
 * on_head: the head is parsed.  Return the body limit in bytes for this
 *   route, or a negative value after answering (httpd_respond) at once:
 *   then the body is never read; a body that is already fully buffered
 *   (Content-Length) is skipped and the connection kept, any other
 *   announced body closes the connection after the answer (lingering
 *   close).  A body over the limit -> on_error(HTTPD_E_BODY_TOO_LARGE).
 *   Expect: 100-continue is honoured when on_head accepts.  NULL: limit
 *   1 MiB.
 * on_request: the body is in (httpd_req_body).  Answer now or later.
 * on_error: the request failed (err); req may have no head yet (its
 *   accessors then return ""/NULL).  Answer with httpd_respond inside the
 *   callback, or the fallback JSON answer is sent.  The connection is
 *   closed afterwards.  NULL: fallback only.
 * on_close: a request the application owns (on_head was called) ended
 *   without its answer: client gone (a reset, a write error, or EOF
 *   before its body was complete or during its stream), timeout, error
 *   with the fallback answer, httpd_free.  EOF after a complete request
 *   is a half-close: the request is still answered.  req must not be
 *   used after it returns.
 *   Overridden per request by httpd_req_set_close_cb.  NULL: ignored.
 * on_done: once per request, when it is over: answered (the answer is
 *   queued), streamed to its end, or ended without an answer (after
 *   on_close).  Also for an error answered before the head was parsed
 *   (the accessors then return ""/NULL, answer_us is 0).  For counters
 *   and the access log: the request's accessors still work; it can no
 *   longer be answered or aborted.  NULL: ignored.
 */
struct httpd_ops {
	int64_t (*on_head)(void *arg, struct httpd_req *req);
	void (*on_request)(void *arg, struct httpd_req *req);
	void (*on_error)(void *arg, struct httpd_req *req, enum httpd_err err);
	void (*on_close)(void *arg, struct httpd_req *req);
	void (*on_done)(void *arg, struct httpd_req *req,
	    const struct httpd_done *d);
};

/*
 * httpd_listen - a listening TCP socket for "host:port", "[v6]:port",
 * "*:port" or ":port" (all addresses); port 0 picks one.  SO_REUSEADDR,
 * SO_REUSEPORT when reuseport, backlog 4096, non-blocking, close-on-exec.
 * Returns the fd, or -1 with a message in err.
 */
int httpd_listen(
    const char *hostport, int reuseport, char *err, size_t errlen);

/*
 * Open files.  Every connection is a descriptor; HTTPD_FD_RESERVE more
 * are kept for everything else of the process (listener, event loop,
 * messaging, store, outbound calls, and one spare that lets the server
 * answer 503 when the process runs out).  httpd_fd_need is what a
 * process serving max_connections wants as RLIMIT_NOFILE; httpd_fd_room
 * the connections an open-files limit leaves room for (never more than
 * half of it goes to the reserve).
 */
#define HTTPD_FD_RESERVE 256
uint64_t httpd_fd_need(unsigned max_connections);
unsigned httpd_fd_room(uint64_t nofile);

/* httpd_new - serve listen_fd (which stays the caller's) on base.  ops
 * must outlive the server; lim is copied (NULL: all defaults), and its
 * max_connections is lowered to httpd_fd_room(soft RLIMIT_NOFILE) with a
 * warning if it does not fit (the caller raises the limit beforehand). */
struct httpd *httpd_new(struct event_base *base, int listen_fd,
    const struct httpd_ops *ops, void *arg, const struct httpd_limits *lim);
/* httpd_set_stats - count into st (may be NULL: internal storage); sets
 * its max_connections gauge. */
void httpd_set_stats(struct httpd *h, struct httpd_stats *st);
/* httpd_drain - stop accepting, close idle connections, and close every
 * other one after its current answer.  httpd_nconns tells when done. */
void httpd_drain(struct httpd *h);
unsigned httpd_nconns(const struct httpd *h);
/* httpd_free - close every connection (on_close for owned requests).
 * Not from inside a callback of this server. */
void httpd_free(struct httpd *h);

/*
 * Lifetime.  A request handed to on_head/on_request is owned by the
 * application until it completes an answer (httpd_respond returns or
 * httpd_stream_end returns) or on_close is called for it, whichever comes
 * first.  Never keep the pointer across loop iterations: keep its id and
 * look it up, which returns NULL once the request is gone, so a late
 * answer (after a disk commit, a timer, ...) cannot touch freed memory.
 * Ids are never reused by one server.
 */
uint64_t httpd_req_id(const struct httpd_req *req);
struct httpd_req *httpd_req_lookup(struct httpd *h, uint64_t id);
void httpd_req_set_close_cb(struct httpd_req *req,
    void (*cb)(void *cbarg, struct httpd_req *req), void *cbarg);
/* httpd_req_end_on_eof - the client's EOF ends this request at once
 * (on_close), even before its answer: for work that is only worth doing
 * for a client still there (a chat stream).  Without it a complete
 * request is answered after a half-close (RFC 9112 9.6). */
void httpd_req_end_on_eof(struct httpd_req *req);
/* drain cb: the output queue of a streaming request became empty */
void httpd_req_set_drain_cb(struct httpd_req *req,
    void (*cb)(void *cbarg, struct httpd_req *req), void *cbarg);
void httpd_req_set_data(struct httpd_req *req, void *data);
void *httpd_req_data(const struct httpd_req *req);
/* Two numbers of the application's, given back in on_done (for example
 * the route and the error code of the answer); 0 = unset. */
void httpd_req_set_route(struct httpd_req *req, unsigned route);
void httpd_req_set_code(struct httpd_req *req, unsigned code);
struct httpd *httpd_req_server(const struct httpd_req *req);

/* Accessors: NUL-terminated views into the connection buffer, valid while
 * the request is owned.  A HEAD request is presented as "GET" (RFC 9110
 * 9.3.2: the same answer without its body, which the server leaves out);
 * httpd_req_is_head tells it apart. */
const char *httpd_req_method(const struct httpd_req *req);
int httpd_req_is_head(const struct httpd_req *req);
const char *httpd_req_path(const struct httpd_req *req);  /* no query */
const char *httpd_req_query(const struct httpd_req *req); /* NULL: none */
/* first field called name, case-insensitive; NULL if none */
const char *httpd_req_header(const struct httpd_req *req, const char *name);
size_t httpd_req_nheaders(const struct httpd_req *req);
void httpd_req_header_at(const struct httpd_req *req, size_t i,
    const char **name, const char **value);
/* contiguous, de-chunked body; NULL/0 before on_request */
const void *httpd_req_body(const struct httpd_req *req, size_t *len);
const struct sockaddr_storage *httpd_req_peer(const struct httpd_req *req);
const char *httpd_req_peer_str(const struct httpd_req *req); /* address */
int httpd_req_version(const struct httpd_req *req); /* 10, 11; 0: none */
int httpd_req_keepalive(const struct httpd_req *req);

/*
 * httpd_respond - the whole answer: status line, hdrs, Content-Length
 * (none for 204/304), Date, Connection as needed, body (omitted for
 * HEAD).  Completes the request.  0, or -1 if req is not awaiting an
 * answer.  A write error is handled later, from the loop.
 */
int httpd_respond(struct httpd_req *req, int status,
    const struct httpd_header *hdrs, size_t nhdrs, const void *body,
    size_t len);

/*
 * httpd_req_abort - end an owned request by resetting its connection
 * (SO_LINGER 0: the client sees an RST, no answer).  Completes the request
 * without on_close.  For test upstreams that inject failures.  0, or -1
 * if req is not owned.
 */
int httpd_req_abort(struct httpd_req *req);

/* httpd_stream_start - begin a streamed answer: chunked for HTTP/1.1,
 * close-delimited for HTTP/1.0.  0, or -1 as for httpd_respond. */
int httpd_stream_start(struct httpd_req *req, int status,
    const struct httpd_header *hdrs, size_t nhdrs);
/* httpd_stream_write - queue data; it is written from the loop (at the
 * end of the current callback, or at once by the next loop pass).
 * Returns the bytes now waiting in the output queue, or -1: errno ENOBUFS
 * if the queue would pass max_output_bytes (nothing queued; the drain cb
 * is called once it is empty), EPIPE if the request is not streaming or
 * the client is gone (on_close follows from the loop). */
long httpd_stream_write(struct httpd_req *req, const void *data, size_t len);
size_t httpd_req_output_cap(const struct httpd_req *req);
/* httpd_stream_end - finish the stream; completes the request. */
int httpd_stream_end(struct httpd_req *req);

int httpd_err_status(enum httpd_err e);
const char *httpd_err_code(enum httpd_err e); /* "payload_too_large" */
const char *httpd_err_message(enum httpd_err e);

#endif
