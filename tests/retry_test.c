/*
 * retry_test - the retry policy: what is retryable, the backoff schedule
 * and its ceiling, the full-jitter range over many samples (a seeded
 * source, and the default one), Retry-After in seconds and as an
 * HTTP-date (all three forms) as a floor and its limit, non-idempotent
 * requests, the first byte already sent, attempts and the deadline.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/retry.h"
#include "testlib.h"

#define NOW_1994 (UINT64_C(784111777) * 1000) /* 06 Nov 1994 08:49:37 */

/* xorshift - a seeded source for deterministic tests. */
static uint64_t
xorshift(void *arg)
{
	uint64_t *s = arg;

	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t
fixed(void *arg)
{
	return *(uint64_t *)arg;
}

static uint64_t fixed_value;

static struct retry_policy
policy(uint32_t max, uint32_t base, uint32_t cap)
{
	struct retry_policy p = {
		.max_attempts = max,
		.base_ms = base,
		.cap_ms = cap,
		.retry_after_max_ms = 60000,
		.rand = fixed,
		.rand_arg = &fixed_value,
	};

	return p;
}

static const struct retry_state idem = { .attempts = 1, .idempotent = 1 };

START_TEST(what_is_retryable)
{
	static const int yes[] = { 408, 429, 500, 502, 503, 504, 599 };
	static const int no[] = { 200, 201, 204, 301, 304, 400, 401, 402, 403,
		404, 409, 422, 499 };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		ck_assert_msg(retry_retryable(CB_ERR_NONE, yes[i]), "%d",
		    yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		ck_assert_msg(!retry_retryable(CB_ERR_NONE, no[i]), "%d",
		    no[i]);
	ck_assert(retry_retryable(CB_ERR_CONNECT, 0));
	ck_assert(retry_retryable(CB_ERR_TIMEOUT, 0));
	ck_assert(retry_retryable(CB_ERR_PROTOCOL, 200));
	ck_assert(!retry_retryable(CB_ERR_CANCELLED, 503));
	/* the same answer as the circuit's failure, by construction */
	for (int st = 100; st < 600; st++)
		ck_assert(retry_retryable(CB_ERR_NONE, st) ==
		    (cb_classify_http(st) == CB_FAILURE));
	ck_assert_str_eq(retry_reason_name(RETRY_R_FIRST_BYTE_SENT),
	    "first_byte_sent");
	ck_assert_str_eq(retry_reason_name(99), "unknown");
}
END_TEST

START_TEST(schedule_ceiling)
{
	struct retry_policy p = policy(10, 100, 5000);
	static const uint64_t want[] = { 100, 100, 200, 400, 800, 1600, 3200,
		5000, 5000 };

	for (uint32_t a = 0; a < sizeof(want) / sizeof(want[0]); a++)
		ck_assert_uint_eq(retry_ceiling(&p, a), want[a]);
	ck_assert_uint_eq(retry_ceiling(&p, 64), 5000);
	ck_assert_uint_eq(retry_ceiling(&p, UINT32_MAX), 5000);
	p.base_ms = 7000;
	ck_assert_uint_eq(retry_ceiling(&p, 1), 5000);
	p.base_ms = 0;
	ck_assert_uint_eq(retry_ceiling(&p, 5), 0);
	p = policy(10, UINT32_MAX, UINT32_MAX);
	ck_assert_uint_eq(retry_ceiling(&p, 40), UINT32_MAX);
	/* the extremes of the random source reach both ends */
	p = policy(10, 100, 5000);
	fixed_value = 0;
	ck_assert_uint_eq(retry_backoff(&p, 3), 0);
	fixed_value = UINT64_MAX;
	ck_assert_uint_eq(retry_backoff(&p, 3), 400);
	ck_assert_uint_eq(retry_backoff(&p, 30), 5000);
}
END_TEST

START_TEST(full_jitter_range)
{
	uint64_t seed = UINT64_C(0x9e3779b97f4a7c15);
	struct retry_policy p = policy(10, 100, 5000);
	uint64_t lo = UINT64_MAX, hi = 0, sum = 0, n = 200000;
	unsigned buckets[4] = { 0 };

	p.rand = xorshift;
	p.rand_arg = &seed;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t d = retry_backoff(&p, 4); /* ceiling 800 */

		ck_assert_uint_le(d, 800);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		sum += d;
		buckets[d * 4 / 801]++;
	}
	ck_assert_uint_le(lo, 2);
	ck_assert_uint_ge(hi, 798);
	ck_assert_uint_ge(sum / n, 390);
	ck_assert_uint_le(sum / n, 410);
	for (int b = 0; b < 4; b++)
		ck_assert_uint_ge(buckets[b], n / 4 - n / 50);
	/* same seed, same sequence */
	{
		uint64_t s1 = 42, s2 = 42;
		struct retry_policy a = p, b = p;

		a.rand_arg = &s1;
		b.rand_arg = &s2;
		for (int i = 0; i < 100; i++)
			ck_assert_uint_eq(retry_backoff(&a, 6),
			    retry_backoff(&b, 6));
	}
}
END_TEST

/* Without a source of its own a policy jitters with retry_rand_os: the
 * delays spread over the whole of [0, ceiling].  Each bound below fails
 * by chance with a probability below 1e-40. */
START_TEST(default_source_jitters)
{
	struct retry_policy p = policy(10, 100, 5000);
	uint64_t lo = UINT64_MAX, hi = 0;
	unsigned quarters[4] = { 0 };

	p.rand = NULL;
	for (int i = 0; i < 2000; i++) {
		uint64_t d = retry_backoff(&p, 4); /* ceiling 800 */

		ck_assert_uint_le(d, 800);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		quarters[d * 4 / 801]++;
	}
	ck_assert_uint_lt(lo, 100);
	ck_assert_uint_gt(hi, 700);
	for (int q = 0; q < 4; q++)
		ck_assert_uint_gt(quarters[q], 250);
	ck_assert_uint_le(retry_backoff(&p, 2), 200);
}
END_TEST

START_TEST(retry_next_decisions)
{
	struct retry_policy p = policy(3, 100, 5000);
	struct retry_state s = idem;
	enum retry_reason why;
	uint64_t d;

	fixed_value = UINT64_MAX; /* the ceiling every time */
	ck_assert_int_eq(retry_next(&p, &s, CB_ERR_NONE, 503, NULL, 0, &d,
			     &why),
	    RETRY_AGAIN);
	ck_assert_int_eq(why, RETRY_R_RETRYABLE);
	ck_assert_uint_eq(d, 100);
	s.attempts = 2;
	ck_assert_int_eq(retry_next(&p, &s, CB_ERR_TIMEOUT, 0, NULL, 0, &d,
			     &why),
	    RETRY_AGAIN);
	ck_assert_uint_eq(d, 200);
	s.attempts = 3; /* max_attempts in all */
	ck_assert_int_eq(retry_next(&p, &s, CB_ERR_CONNECT, 0, NULL, 0, &d,
			     &why),
	    RETRY_GIVE_UP);
	ck_assert_int_eq(why, RETRY_R_MAX_ATTEMPTS);
	ck_assert_uint_eq(d, 0);
	/* not retryable: whatever else */
	s.attempts = 1;
	ck_assert_int_eq(retry_next(&p, &s, CB_ERR_NONE, 400, "1", 0, &d,
			     &why),
	    RETRY_GIVE_UP);
	ck_assert_int_eq(why, RETRY_R_NOT_RETRYABLE);
	ck_assert_int_eq(retry_next(&p, &s, CB_ERR_NONE, 200, NULL, 0, &d,
			     NULL),
	    RETRY_GIVE_UP);
	ck_assert_int_eq(retry_next(&p, &s, CB_ERR_CANCELLED, 0, NULL, 0, &d,
			     &why),
	    RETRY_GIVE_UP);
	ck_assert_int_eq(why, RETRY_R_NOT_RETRYABLE);
	/* max_attempts 0 means one attempt */
	p.max_attempts = 0;
	ck_assert_int_eq(retry_next(&p, &s, CB_ERR_NONE, 503, NULL, 0, &d,
			     &why),
	    RETRY_GIVE_UP);
	ck_assert_int_eq(why, RETRY_R_MAX_ATTEMPTS);
}
END_TEST

START_TEST(non_idempotent_and_first_byte)
{
	struct retry_policy p = policy(5, 100, 5000);
	struct retry_state s = { .attempts = 1 };
	enum retry_reason why;
	uint64_t d;

	fixed_value = 0;
	/* a POST without an idempotency key: never, even on connect */
	for (int e = CB_ERR_NONE; e <= CB_ERR_PROTOCOL; e++) {
		ck_assert_int_eq(retry_next(&p, &s, (enum cb_error)e, 503,
				     NULL, 0, &d, &why),
		    RETRY_GIVE_UP);
		ck_assert_int_eq(why, RETRY_R_NOT_IDEMPOTENT);
	}
	s.safe = 1; /* the caller vouches for it */
	ck_assert_int_eq(retry_next(&p, &s, CB_ERR_CONNECT, 0, NULL, 0, &d,
			     &why),
	    RETRY_AGAIN);
	/* once a byte reached the client: never, idempotent or not */
	s.first_byte_sent = 1;
	ck_assert_int_eq(retry_next(&p, &s, CB_ERR_TIMEOUT, 0, NULL, 0, &d,
			     &why),
	    RETRY_GIVE_UP);
	ck_assert_int_eq(why, RETRY_R_FIRST_BYTE_SENT);
	s = idem;
	s.first_byte_sent = 1;
	ck_assert_int_eq(retry_next(&p, &s, CB_ERR_NONE, 502, "1", 0, &d,
			     &why),
	    RETRY_GIVE_UP);
	ck_assert_int_eq(why, RETRY_R_FIRST_BYTE_SENT);
}
END_TEST

START_TEST(retry_after_seconds)
{
	struct retry_policy p = policy(5, 100, 5000);
	enum retry_reason why;
	uint64_t d, ms;

	ck_assert_int_eq(retry_parse_after("3", 0, &ms), 0);
	ck_assert_uint_eq(ms, 3000);
	ck_assert_int_eq(retry_parse_after(" 0 ", 0, &ms), 0);
	ck_assert_uint_eq(ms, 0);
	ck_assert_int_eq(retry_parse_after("120\t", 0, &ms), 0);
	ck_assert_uint_eq(ms, 120000);
	ck_assert_int_eq(retry_parse_after("99999999999999999999999", 0, &ms),
	    0);
	ck_assert_uint_ge(ms, UINT64_C(315360000000));
	ck_assert_int_eq(retry_parse_after("5s", 0, &ms), -1);
	ck_assert_int_eq(retry_parse_after("-1", 0, &ms), -1);
	ck_assert_int_eq(retry_parse_after("1.5", 0, &ms), -1);
	ck_assert_int_eq(retry_parse_after("", 0, &ms), -1);
	ck_assert_int_eq(retry_parse_after(NULL, 0, &ms), -1);

	/* a floor under the jittered backoff */
	fixed_value = 0;
	ck_assert_int_eq(retry_next(&p, &idem, CB_ERR_NONE, 429, "3", 0, &d,
			     &why),
	    RETRY_AGAIN);
	ck_assert_uint_eq(d, 3000);
	/* the backoff wins when it is longer */
	fixed_value = UINT64_MAX;
	{
		struct retry_state s = idem;

		s.attempts = 7; /* ceiling 5000 */
		p.max_attempts = 10;
		ck_assert_int_eq(retry_next(&p, &s, CB_ERR_NONE, 503, "2", 0,
				     &d, &why),
		    RETRY_AGAIN);
		ck_assert_uint_eq(d, 5000);
	}
	/* longer than we wait: give up, tell the caller how long */
	ck_assert_int_eq(retry_next(&p, &idem, CB_ERR_NONE, 503, "61", 0, &d,
			     &why),
	    RETRY_GIVE_UP);
	ck_assert_int_eq(why, RETRY_R_RETRY_AFTER_TOO_LONG);
	ck_assert_uint_eq(d, 61000);
	ck_assert_int_eq(retry_next(&p, &idem, CB_ERR_NONE, 503, "60", 0, &d,
			     &why),
	    RETRY_AGAIN);
	ck_assert_uint_eq(d, 60000);
	/* retry_after_max 0: the backoff cap bounds it */
	p.retry_after_max_ms = 0;
	ck_assert_int_eq(retry_next(&p, &idem, CB_ERR_NONE, 503, "6", 0, &d,
			     &why),
	    RETRY_GIVE_UP);
	ck_assert_int_eq(why, RETRY_R_RETRY_AFTER_TOO_LONG);
	/* an unparsable value is ignored */
	fixed_value = 0;
	ck_assert_int_eq(retry_next(&p, &idem, CB_ERR_NONE, 503, "soon", 0,
			     &d, &why),
	    RETRY_AGAIN);
	ck_assert_uint_eq(d, 0);
}
END_TEST

START_TEST(retry_after_http_date)
{
	struct retry_policy p = policy(5, 100, 5000);
	static const char *const five_later[] = {
		"Sun, 06 Nov 1994 08:49:42 GMT",
		"Sunday, 06-Nov-94 08:49:42 GMT",
		"Sun Nov  6 08:49:42 1994",
		"  Sun, 06 Nov 1994 08:49:42 GMT  ",
	};
	static const char *const bad[] = {
		"Sun, 06 Nov 1994 08:49:42",     /* no GMT */
		"Sun, 06 Nov 1994 08:49:42 UTC", /* only GMT */
		"Sun, 6 Nov 1994 08:49:42 GMT",  /* two-digit day */
		"Sun, 06 Foo 1994 08:49:42 GMT",
		"Sun, 06 Nov 1994 24:00:00 GMT",
		"Sun, 32 Nov 1994 08:49:42 GMT",
		"Sun, 06 Nov 1994 08:49:42 GMT x",
		"Sun Nov  6 08:49:42",
		"S, 06 Nov 1994 08:49:42 GMT",
		"tomorrow",
	};
	enum retry_reason why;
	uint64_t ms, d;

	for (size_t i = 0; i < sizeof(five_later) / sizeof(*five_later);
	     i++) {
		ck_assert_msg(retry_parse_after(five_later[i], NOW_1994,
				  &ms) == 0,
		    "%s", five_later[i]);
		ck_assert_uint_eq(ms, 5000);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		ck_assert_msg(retry_parse_after(bad[i], NOW_1994, &ms) == -1,
		    "accepted %s", bad[i]);
	/* a date in the past: no wait */
	ck_assert_int_eq(retry_parse_after("Sun, 06 Nov 1994 08:49:00 GMT",
			     NOW_1994, &ms),
	    0);
	ck_assert_uint_eq(ms, 0);
	/* leap day, epoch, RFC 850 century, a recent date */
	ck_assert_int_eq(retry_parse_after("Tue, 29 Feb 2000 12:00:00 GMT",
			     UINT64_C(951825600) * 1000 - 1, &ms),
	    0);
	ck_assert_uint_eq(ms, 1);
	ck_assert_int_eq(retry_parse_after("Thu, 01 Jan 1970 00:00:10 GMT", 0,
			     &ms),
	    0);
	ck_assert_uint_eq(ms, 10000);
	ck_assert_int_eq(retry_parse_after("Thursday, 19-Feb-26 23:59:59 GMT",
			     UINT64_C(1771545599) * 1000 - 2500, &ms),
	    0);
	ck_assert_uint_eq(ms, 2500);
	/* honoured by retry_next like seconds */
	fixed_value = 0;
	ck_assert_int_eq(retry_next(&p, &idem, CB_ERR_NONE, 503,
			     five_later[0], NOW_1994, &d, &why),
	    RETRY_AGAIN);
	ck_assert_uint_eq(d, 5000);
	ck_assert_int_eq(retry_next(&p, &idem, CB_ERR_NONE, 503,
			     "Sun, 06 Nov 1994 09:49:37 GMT", NOW_1994, &d,
			     &why),
	    RETRY_GIVE_UP);
	ck_assert_int_eq(why, RETRY_R_RETRY_AFTER_TOO_LONG);
	ck_assert_uint_eq(d, 3600000);
}
END_TEST

START_TEST(deadline)
{
	struct retry_policy p = policy(5, 100, 5000);
	struct retry_state s = idem;
	enum retry_reason why;
	uint64_t d;

	fixed_value = UINT64_MAX; /* 100 ms */
	s.deadline_ms = 1000 + 101;
	ck_assert_int_eq(retry_next(&p, &s, CB_ERR_NONE, 503, NULL, 1000, &d,
			     &why),
	    RETRY_AGAIN);
	s.deadline_ms = 1000 + 100;
	ck_assert_int_eq(retry_next(&p, &s, CB_ERR_NONE, 503, NULL, 1000, &d,
			     &why),
	    RETRY_GIVE_UP);
	ck_assert_int_eq(why, RETRY_R_DEADLINE);
	/* a Retry-After past the deadline too */
	fixed_value = 0;
	s.deadline_ms = 1000 + 2000;
	ck_assert_int_eq(retry_next(&p, &s, CB_ERR_NONE, 429, "2", 1000, &d,
			     &why),
	    RETRY_GIVE_UP);
	ck_assert_int_eq(why, RETRY_R_DEADLINE);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("retry");
	TCase *tc = tl_tcase(s, "retry", NULL, NULL, 0);

	tcase_add_test(tc, what_is_retryable);
	tcase_add_test(tc, schedule_ceiling);
	tcase_add_test(tc, full_jitter_range);
	tcase_add_test(tc, default_source_jitters);
	tcase_add_test(tc, retry_next_decisions);
	tcase_add_test(tc, non_idempotent_and_first_byte);
	tcase_add_test(tc, retry_after_seconds);
	tcase_add_test(tc, retry_after_http_date);
	tcase_add_test(tc, deadline);
	return tl_run(s);
}
