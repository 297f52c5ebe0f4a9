/*
 * client - relgate's outbound HTTP/1.1 client on raw libevent: plain TCP
 * and TLS (mbedTLS), non-blocking DNS (evdns), keep-alive pooling per
 * origin, streaming response bodies.  Used by provider (SSE from the
 * upstream), tool-worker, monitor and ingress (OAuth).
 *
 * Owns: its sockets, the TLS configuration (CA chain, a CTR_DRBG seeded
 * in httpc_new, so one per process), the pool of idle connections and
 * every call in progress.  Responses are parsed by http/respparse.h.
 *
 * Must never: call back from inside httpc_request (every callback comes
 * from the event loop), call back after httpc_cancel returned, skip
 * certificate or host name verification, reuse a connection whose
 * response framing was not clean, or log request bodies or header
 * values (they carry API keys).
 *
 * Single-threaded: every function runs on the loop thread of base.
 */
#ifndef RG_HTTP_CLIENT_H
#define RG_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
struct httpc;
struct httpc_call;
struct httpc_resp;

/* How a call ended: name, stat field, text.  Exactly one per call. */
#define HTTPC_RESULTS(X)                                                      \
	X(OK, res_ok, "response complete")                                    \
	X(E_DNS, res_dns, "name resolution failed")                           \
	X(E_CONNECT, res_connect, "TCP connect failed")                       \
	X(E_TLS, res_tls, "TLS handshake or certificate check failed")        \
	X(E_TIMEOUT_CONNECT, res_timeout_connect,                             \
	    "not connected (DNS+TCP+TLS) within connect_ms")                  \
	X(E_TIMEOUT_FIRST_BYTE, res_timeout_first_byte,                       \
	    "no response byte within first_byte_ms of the request")           \
	X(E_TIMEOUT_IDLE, res_timeout_idle,                                   \
	    "no response byte for idle_ms during the response")               \
	X(E_TIMEOUT_TOTAL, res_timeout_total,                                 \
	    "call not done within total_ms")                                  \
	X(E_PROTOCOL, res_protocol, "malformed response")                     \
	X(E_TOO_LARGE, res_too_large, "response body over max_body")          \
	X(E_RESET, res_reset, "connection closed or reset mid-response")      \
	X(E_CANCELLED, res_cancelled,                                         \
	    "cancelled: on_head abort, httpc_cancel or httpc_free")

enum httpc_rc {
#define HTTPC_RC_ENUM(name, field, text) HTTPC_##name,
	HTTPC_RESULTS(HTTPC_RC_ENUM)
#undef HTTPC_RC_ENUM
};

/* Counters: one writer (this client), relaxed atomics; the storage is
 * the caller's (shm).  Gauges are marked.  The res_* fields come from
 * HTTPC_RESULTS and follow these. */
#define HTTPC_STATS(X)                                                        \
	X(requests, "calls started")                                          \
	X(reused, "calls sent on a pooled keep-alive connection")             \
	X(retries,                                                            \
	    "calls retried on a fresh connection: a reused one "              \
	    "failed before any response byte")                                \
	X(connects, "TCP connections attempted")                              \
	X(tls_handshakes, "TLS handshakes completed")                         \
	X(pooled, "connections put in the idle pool")                         \
	X(idle_closed, "idle connections closed: server, timeout, bound")     \
	X(idle, "gauge: idle pooled connections now")                         \
	X(active, "gauge: calls in progress now")                             \
	X(bytes_out, "bytes written to servers (TLS records included)")       \
	X(bytes_in, "bytes read from servers (TLS records included)")

struct httpc_stats {
#define HTTPC_STAT_FIELD(name, doc) uint64_t name;
	HTTPC_STATS(HTTPC_STAT_FIELD)
#undef HTTPC_STAT_FIELD
#define HTTPC_RES_FIELD(name, field, text) uint64_t field;
	HTTPC_RESULTS(HTTPC_RES_FIELD)
#undef HTTPC_RES_FIELD
};

/* Options of a client; a 0 field takes the default in brackets. */
struct httpc_opts {
	const char *ca_file; /* extra PEM CA file (tls.ca_file) [none] */
	int no_system_ca;    /* 1: skip /etc/ssl/certs/ca-certificates.crt */
	int max_idle_per_origin;   /* pooled per scheme+host+port [8]; <0: no
	                            * keep-alive (Connection: close) */
	unsigned max_idle_total;   /* pooled in all [64] */
	unsigned idle_timeout_ms;  /* a pooled connection lives [30000] */
	struct evdns_base *dns;    /* resolver [own one: /etc/resolv.conf and
	                            * /etc/hosts]; stays the caller's */
	struct httpc_stats *stats; /* counters [internal storage] */
};

/* A request header; Host, Content-Length, Transfer-Encoding and
 * Connection are the client's and may not be given. */
struct httpc_header {
	const char *name;
	const char *value;
};

/* HTTPC_NO_LIMIT in a timeout or max_body: none. */
#define HTTPC_NO_LIMIT UINT32_MAX

/* A request; everything is copied by httpc_request.  Timeouts are in ms;
 * 0 takes the default in brackets. */
struct httpc_req {
	const char *method; /* ["GET"] */
	const char *url;    /* http[s]://host[:port][/path][?query] */
	const struct httpc_header *headers;
	size_t nheaders;
	const void *body; /* sent with Content-Length (also 0 for POST,
	                   * PUT, PATCH) */
	size_t body_len;
	unsigned connect_ms;    /* DNS + TCP connect + TLS handshake [10000] */
	unsigned first_byte_ms; /* request written -> 1st byte [60000] */
	unsigned idle_ms;       /* between response bytes [60000] */
	unsigned total_ms;      /* whole call [NO_LIMIT] */
	uint64_t max_body;      /* decoded body bytes [NO_LIMIT] */
};

/* How a call ended; valid during on_done only. */
struct httpc_result {
	enum httpc_rc rc;
	int status;                /* HTTP status of the final head; 0: none */
	const char *detail;        /* one line for logs, "" if none */
	uint32_t tls_verify_flags; /* mbedTLS verify flags (E_TLS), or 0 */
	uint64_t body_bytes;       /* body bytes delivered through on_data */
	int reused;                /* the call ran on a pooled connection */
};

/*
 * Callbacks, all from the event loop; arg is httpc_request's arg.
 *
 * on_head: the final response head (1xx interim heads are skipped).
 *   Return 0 to go on, non-zero to abort: the call then ends with
 *   on_done(E_CANCELLED) at once.  resp is valid during the call only.
 *   NULL: go on.
 * on_data: len > 0 body bytes, decoded (chunked framing removed), as they
 *   arrive; chunk boundaries are not preserved.  NULL: body dropped.
 * on_done: exactly once per call, unless httpc_cancel was called first;
 *   the call is freed when it returns.  Required.
 * Inside any of them the application may call httpc_request, and
 * httpc_cancel on any call (its own included: from on_head or on_data
 * it ends the call with no further callback; from on_done it is a
 * no-op), but not httpc_free.
 */
struct httpc_cb {
	int (*on_head)(void *arg, const struct httpc_resp *resp);
	void (*on_data)(void *arg, const void *data, size_t len);
	void (*on_done)(void *arg, const struct httpc_result *res);
};

/* httpc_new - a client on base.  o may be NULL (all defaults) and is
 * copied.  An unreadable ca_file is fatalx (configuration); certificates
 * in it or in the system bundle that fail to parse are logged and
 * skipped. */
struct httpc *httpc_new(struct event_base *base, const struct httpc_opts *o);

/* httpc_free - every call in progress ends with on_done(E_CANCELLED),
 * then every connection is closed.  Not from inside a callback. */
void httpc_free(struct httpc *c);

/*
 * httpc_request - start a call; r and everything it points to may go
 * away when this returns.  Returns the call, or NULL (nothing started, no
 * callback) if the URL, method or a header is invalid.  The pointer is
 * valid until on_done returns or httpc_cancel returns.
 */
struct httpc_call *httpc_request(struct httpc *c, const struct httpc_req *r,
    const struct httpc_cb *cb, void *arg);

/* httpc_cancel - end the call now: its connection is closed, and no
 * callback for it comes after this returns.  Counted as E_CANCELLED. */
void httpc_cancel(struct httpc_call *call);

/* Response head accessors, during on_head: NUL-terminated views. */
int httpc_resp_status(const struct httpc_resp *resp);
int httpc_resp_version(const struct httpc_resp *resp); /* 10 or 11 */
const char *httpc_resp_reason(const struct httpc_resp *resp);
/* first field called name, case-insensitive; NULL if none */
const char *httpc_resp_header(const struct httpc_resp *resp, const char *name);
size_t httpc_resp_nheaders(const struct httpc_resp *resp);
void httpc_resp_header_at(const struct httpc_resp *resp, size_t i,
    const char **name, const char **value);

/* httpc_rc_name - "OK", "E_TLS", ...; httpc_rc_text - a sentence. */
const char *httpc_rc_name(enum httpc_rc rc);
const char *httpc_rc_text(enum httpc_rc rc);

#endif
