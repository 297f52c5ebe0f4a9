/*
 * retry - the retry policy of outbound requests: whether to try again and
 * after how long.
 *
 * Exponential backoff with full jitter: before retry k (k = attempts made
 * so far, 1 after the first) the delay is uniform in
 * [0, min(cap_ms, base_ms * 2^(k-1))].  A Retry-After from the upstream
 * (delta seconds or an HTTP-date) is a floor: delay = max(Retry-After,
 * jittered backoff); a Retry-After beyond retry_after_max_ms gives up (the
 * caller passes it on to its client instead), so the delay never exceeds
 * max(cap_ms, retry_after_max_ms).  Only what cb_classify_error calls a
 * failure is retried (connect errors, timeouts, protocol errors, 408, 429,
 * 5xx); never a request that is not idempotent unless the caller marks it
 * safe, never once a byte went to the client, never beyond max_attempts
 * or the deadline.
 *
 * Owns nothing: pure functions.  Randomness comes from the policy's
 * source, so tests are deterministic.  Never sleeps: the caller arms its
 * timer with the delay.
 */
#ifndef RG_RETRY_H
#define RG_RETRY_H

#include <stdint.h>

#include "shm/circuit.h"

enum retry_verdict { RETRY_GIVE_UP = 0, RETRY_AGAIN = 1 };

/* Why retry_next decided as it did. */
enum retry_reason {
	RETRY_R_RETRYABLE = 0,      /* RETRY_AGAIN */
	RETRY_R_NOT_RETRYABLE,      /* success, or an answer a retry keeps */
	RETRY_R_FIRST_BYTE_SENT,    /* the client already got something */
	RETRY_R_NOT_IDEMPOTENT,     /* repeating it could do it twice */
	RETRY_R_MAX_ATTEMPTS,       /* attempts used up */
	RETRY_R_RETRY_AFTER_TOO_LONG, /* upstream wants more than we wait */
	RETRY_R_DEADLINE,           /* the delay ends past the deadline */
	RETRY_NREASONS
};

struct retry_policy {
	uint32_t max_attempts;       /* in all, the first included; 0 = 1 */
	uint32_t base_ms;            /* ceiling of the first retry's delay */
	uint32_t cap_ms;             /* ceiling of any backoff */
	uint32_t retry_after_max_ms; /* longest Retry-After honoured; 0 =
					cap_ms */
	/* uniform 64-bit numbers; NULL = retry_rand_os */
	uint64_t (*rand)(void *arg);
	void *rand_arg;
};

struct retry_state {
	uint32_t attempts;       /* made so far (>= 1 when asking) */
	uint8_t idempotent;      /* GET, PUT, an idempotency key, ... */
	uint8_t safe;            /* caller: this one may be repeated anyway */
	uint8_t first_byte_sent; /* part of the answer reached the client */
	uint64_t deadline_ms;    /* 0 = none; same clock as now_ms */
};

/*
 * retry_next - after an attempt that ended with err (CB_ERR_NONE: the
 * upstream answered status) and the upstream's Retry-After header value
 * (NULL if none; an unparsable one is ignored), at now_ms (wall clock, ms
 * since the epoch: an HTTP-date is compared with it): RETRY_AGAIN with
 * *delay_ms set, or RETRY_GIVE_UP (*delay_ms = 0; for
 * RETRY_R_RETRY_AFTER_TOO_LONG the Retry-After in ms).  *why gets the
 * reason; why may be NULL.
 */
int retry_next(const struct retry_policy *p, const struct retry_state *s,
    enum cb_error err, int status, const char *retry_after, uint64_t now_ms,
    uint64_t *delay_ms, enum retry_reason *why);

/* retry_retryable - would a retry be worth it?  (cb_classify_error says
 * failure.) */
int retry_retryable(enum cb_error err, int status);

/* retry_ceiling - min(cap_ms, base_ms * 2^(attempts-1)); attempts 0 is
 * taken as 1. */
uint64_t retry_ceiling(const struct retry_policy *p, uint32_t attempts);
/* retry_backoff - uniform in [0, retry_ceiling(p, attempts)]. */
uint64_t retry_backoff(const struct retry_policy *p, uint32_t attempts);

/*
 * retry_parse_after - a Retry-After value: delta seconds, or an HTTP-date
 * (IMF-fixdate, RFC 850 or asctime form, RFC 9110 section 5.6.7) turned
 * into ms from now_ms (0 if it is past).  0, or -1 when it is neither.
 */
int retry_parse_after(const char *v, uint64_t now_ms, uint64_t *ms);

/* retry_rand_os - 64 random bits from the kernel (arg unused). */
uint64_t retry_rand_os(void *arg);

const char *retry_reason_name(unsigned reason);

#endif
