/*
 * outcall - one outbound call to a provider (SPEC §5), the whole path:
 * bulkhead lease -> circuit -> HTTP call (http/client) -> classification
 * -> circuit recording -> retry with jittered backoff (gate/retry) ->
 * answer, and cancel at any point.  Every caller that calls out on
 * behalf of its work (the ingress's OAuth exchange and proxied routes, the
 * delivery worker, the provider's chat calls) goes through here, so a
 * lease, a circuit ticket or a retry timer is never held by anyone else.
 *
 * The steps:
 *   1. lease: bh_acquire of the provider's bulkhead (or a lease the caller
 *      took before, outcall_lease).  Saturated: refused, nothing sent; a
 *      saturation warning goes to env->alert once per
 *      BULKHEAD_SENTRY_COOLDOWN_MS and provider.
 *   2. circuit: cb_allow.  Open: refused (retry_ms = cooldown left), the
 *      lease is given back, nothing sent.
 *   3. the call.  Each attempt's outcome is recorded on the circuit
 *      (cb_classify_http / cb_classify_error; a cancel is neutral).
 *   4. retry: retry_next decides (connect errors, timeouts, 408, 429, 5xx;
 *      a request that may have reached the server only when the policy
 *      says idempotent; never once the caller got a body byte).  An answer
 *      that will be retried is not shown to the caller.  Before each retry
 *      the circuit is asked again: open ends the call (OUTCALL_CIRCUIT_OPEN).
 *   5. done: the lease is given back, then on_done runs once.
 * Every attempt's outcome and time to its answer's head, and every
 * call's verdict, are counted in env->stats (relgate_outcall_* of
 * /metrics).
 *
 * Owns: the copy of the request, the lease, the circuit ticket, the retry
 * timer and the collected body.  Must never: call back from inside
 * outcall_start or after outcall_cancel, keep a lease past on_done, or
 * log a header value or body (they carry keys).
 *
 * Single-threaded: everything runs on env->base's loop.
 */
#ifndef RG_OUTCALL_H
#define RG_OUTCALL_H

#include <stddef.h>
#include <stdint.h>

#include "http/client.h"
#include "shm/bulkhead.h"
#include "shm/circuit.h"

struct config;
struct event_base;
struct oc_block;
struct shm_seg;
struct outcall;

/* What a process's outbound calls share. */
struct outcall_env {
	struct event_base *base;
	struct shm_seg *shm;
	struct httpc *http;
	struct config *const *cfg; /* the role's current config (reloads) */
	/* a bulkhead saturation warning (rate-limited here); may be NULL */
	void (*alert)(void *arg, unsigned provider, uint32_t max_concurrent);
	void *alert_arg;
	/* randomness of the retry jitter; NULL = the kernel's */
	uint64_t (*rand)(void *arg);
	void *rand_arg;
	/* this process's counters of outcomes, verdicts and latency per
	 * provider (shm/requests.h); NULL: none */
	struct oc_block *stats;
};

/* The configured limits of a provider (RG_PROVIDERS names the knobs). */
struct outcall_limits {
	uint32_t threshold, cooldown_ms;      /* circuit */
	uint32_t max_concurrent, lease_ttl_ms; /* bulkhead */
};

struct outcall_policy {
	uint32_t max_attempts; /* in all; 0 or 1: no retry */
	uint32_t base_ms;      /* first retry's backoff ceiling [200] */
	uint32_t cap_ms;       /* any backoff's ceiling [2000] */
	int idempotent;        /* may be repeated after it reached the server
	                        * (GET, an Idempotency-Key) */
	size_t collect_max;    /* collect the body up to this (no on_data);
	                        * more ends the attempt as E_TOO_LARGE */
};

enum outcall_verdict {
	OUTCALL_ANSWERED,     /* status is the provider's answer (any) */
	OUTCALL_FAILED,       /* no answer: kind/rc say why */
	OUTCALL_SATURATED,    /* bulkhead full: nothing sent */
	OUTCALL_CIRCUIT_OPEN, /* circuit open: nothing (more) sent */
	OUTCALL_INVALID,      /* the request cannot be made (its URL) */
};

struct outcall_result {
	enum outcall_verdict verdict;
	int status;           /* ANSWERED */
	enum cb_error kind;   /* FAILED: the transport failure's kind */
	enum httpc_rc rc;     /* the last attempt's result */
	const char *detail;   /* one line for logs, never NULL */
	uint32_t attempts;    /* calls made */
	uint64_t retry_ms;    /* SATURATED / CIRCUIT_OPEN: how long to wait */
	const char *retry_after;  /* ANSWERED: its Retry-After, "" if none */
	const char *content_type; /* ANSWERED: its Content-Type, "" if none */
	const char *body;     /* collected body (NUL-terminated), or NULL */
	size_t blen;
};

struct outcall_cb {
	/* on_head - the answer that will be the result (not one that is
	 * retried); non-zero aborts (the call ends as cancelled).  NULL:
	 * go on. */
	int (*on_head)(void *arg, const struct httpc_resp *resp);
	/* on_data - body bytes as they arrive (no retry after the first);
	 * NULL: collected up to policy.collect_max. */
	void (*on_data)(void *arg, const void *data, size_t len);
	/* on_done - exactly once, unless outcall_cancel came first; res and
	 * what it points to are valid during the call only.  Required. */
	void (*on_done)(void *arg, const struct outcall_result *res);
};

/* outcall_limits - provider's limits from cfg. */
void outcall_limits(const struct config *cfg, unsigned provider,
    struct outcall_limits *out);

/*
 * outcall_lease - take a lease of provider's bulkhead now, for a caller
 * that must hold it before other work (the delivery worker takes its
 * leases before it claims rows).  BH_ACQUIRED, or BH_SATURATED with
 * *retry_ms (and the warning, as in step 1).  Give it to outcall_start or
 * back with outcall_lease_release.
 */
int outcall_lease(struct outcall_env *env, unsigned provider,
    struct bh_lease *l, uint64_t *retry_ms);
void outcall_lease_release(struct outcall_env *env, struct bh_lease *l);

/*
 * outcall_start - call provider with req (copied).  lease: one from
 * outcall_lease (taken over, given back whatever happens), or NULL to
 * take one.  Returns the call, or NULL when it was refused before
 * anything was sent: *refused (verdict SATURATED, CIRCUIT_OPEN or
 * INVALID, retry_ms) says why and no callback comes.
 */
struct outcall *outcall_start(struct outcall_env *env, unsigned provider,
    const struct httpc_req *req, const struct outcall_policy *pol,
    const struct outcall_cb *cb, void *arg, struct bh_lease *lease,
    struct outcall_result *refused);

/* outcall_attempts - calls made so far (the one in flight included). */
unsigned outcall_attempts(const struct outcall *oc);

/* outcall_cancel - stop now: no callback, the circuit records neutral,
 * the lease is given back. */
void outcall_cancel(struct outcall *oc);

/* outcall_error_kind - how a client result counts for a circuit and the
 * retry policy (the one mapping). */
enum cb_error outcall_error_kind(enum httpc_rc rc);

/* outcall_verdict_name - "answered", "failed", ... */
const char *outcall_verdict_name(enum outcall_verdict v);

#endif
