/*
 * admit_test - the pure admission decision: each dimension over its
 * limit, the refusal reason is the first enforced one in order, soft
 * allows for unenforced ones, shadow never refuses nor mutates, the token
 * buckets (burst, drain, a chat dearer than a second, the clock stepping
 * back), Retry-After jitter bounds, sampling, the gateway mode and the
 * policy read from the configuration.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/config.h"
#include "gate/admit.h"
#include "testlib.h"

#define T0 UINT64_C(1700000000000)
#define ALL ((1u << ADMIT_NDIMS) - 1)
#define BIT(d) (1u << ADMIT_D_##d)

/* every knob ADM_DIMS names exists in struct config */
#define KNOB_CHECK(id, name, enforce, limit)                              \
	_Static_assert(sizeof(((struct config *)0)->enforce) == 8 &&      \
		sizeof(((struct config *)0)->limit) == 8,                 \
	    name);
ADM_DIMS(KNOB_CHECK)
#undef KNOB_CHECK

static struct admit_policy
policy(uint32_t enforce)
{
	struct admit_policy p = { .enforce = enforce, .tool_per_msg = 2 };

	p.limit[ADMIT_D_USER_INFLIGHT] = 3;
	p.limit[ADMIT_D_GLOBAL_INFLIGHT] = 10;
	p.limit[ADMIT_D_GLOBAL_MSG_RATE] = 5;
	p.limit[ADMIT_D_GLOBAL_TOOL_RATE] = 100;
	return p;
}

static struct admit_verdict
decide(const struct admit_policy *p, uint64_t user, uint64_t global,
    uint64_t msg_milli, uint64_t tool_milli)
{
	struct admit_usage u = { .user_inflight = user,
		.global_inflight = global,
		.msg_level_milli = msg_milli,
		.tool_level_milli = tool_milli };
	struct admit_verdict v;

	admit_decide(p, &u, &v);
	return v;
}

START_TEST(under_every_limit_admits)
{
	struct admit_policy p = policy(ALL);
	struct admit_verdict v = decide(&p, 2, 9, 4000, 98000);

	ck_assert_int_eq(v.action, ADMIT_ADMIT);
	ck_assert_int_eq(v.mutate, 1);
	ck_assert_int_eq(v.reason, -1);
	ck_assert_uint_eq(v.over, 0);
	ck_assert_uint_eq(v.soft, 0);
}
END_TEST

START_TEST(each_dimension_refuses_at_its_limit)
{
	struct admit_policy p = policy(ALL);
	struct admit_verdict v;

	v = decide(&p, 3, 0, 0, 0);
	ck_assert_int_eq(v.action, ADMIT_REFUSE);
	ck_assert_int_eq(v.reason, ADMIT_D_USER_INFLIGHT);
	ck_assert_int_eq(v.mutate, 0);
	v = decide(&p, 0, 10, 0, 0);
	ck_assert_int_eq(v.reason, ADMIT_D_GLOBAL_INFLIGHT);
	/* 5/s: a level of 4.001 chats leaves no room for one more */
	v = decide(&p, 0, 0, 4001, 0);
	ck_assert_int_eq(v.reason, ADMIT_D_GLOBAL_MSG_RATE);
	v = decide(&p, 0, 0, 4000, 0);
	ck_assert_int_eq(v.action, ADMIT_ADMIT);
	/* 100 tool calls/s, 2 a chat: 98.001 leaves no room */
	v = decide(&p, 0, 0, 0, 98001);
	ck_assert_int_eq(v.reason, ADMIT_D_GLOBAL_TOOL_RATE);
	ck_assert_str_eq(admit_dim_name((unsigned)v.reason),
	    "global_tool_rate");
}
END_TEST

START_TEST(first_enforced_in_order_names_the_refusal)
{
	struct admit_policy p = policy(ALL);
	struct admit_verdict v = decide(&p, 3, 10, 5000, 100000);

	ck_assert_uint_eq(v.over, ALL);
	ck_assert_int_eq(v.reason, ADMIT_D_USER_INFLIGHT);
	p = policy(ALL & ~BIT(USER_INFLIGHT));
	v = decide(&p, 3, 10, 5000, 100000);
	ck_assert_int_eq(v.action, ADMIT_REFUSE);
	ck_assert_int_eq(v.reason, ADMIT_D_GLOBAL_INFLIGHT);
	ck_assert_uint_eq(v.soft, BIT(USER_INFLIGHT));
}
END_TEST

START_TEST(unenforced_breaches_are_soft_allows)
{
	struct admit_policy p = policy(BIT(GLOBAL_INFLIGHT));
	struct admit_verdict v = decide(&p, 5, 3, 5000, 0);

	ck_assert_int_eq(v.action, ADMIT_ADMIT);
	ck_assert_int_eq(v.mutate, 1);
	ck_assert_int_eq(v.reason, -1);
	ck_assert_uint_eq(v.soft, BIT(USER_INFLIGHT) | BIT(GLOBAL_MSG_RATE));
	ck_assert_uint_eq(v.over, v.soft);
	/* nothing enforced at all: everything passes, softly */
	p = policy(0);
	v = decide(&p, 3, 10, 5000, 100000);
	ck_assert_int_eq(v.action, ADMIT_ADMIT);
	ck_assert_uint_eq(v.soft, ALL);
}
END_TEST

START_TEST(shadow_never_refuses_nor_mutates)
{
	struct admit_policy p = policy(ALL & ~BIT(USER_INFLIGHT));
	struct admit_verdict v;

	p.shadow = 1;
	v = decide(&p, 3, 10, 0, 0);
	ck_assert_int_eq(v.action, ADMIT_PASS);
	ck_assert_int_eq(v.mutate, 0);
	ck_assert_int_eq(v.reason, ADMIT_D_GLOBAL_INFLIGHT); /* would block */
	ck_assert_uint_eq(v.soft, BIT(USER_INFLIGHT));
	v = decide(&p, 0, 0, 0, 0);
	ck_assert_int_eq(v.action, ADMIT_PASS);
	ck_assert_int_eq(v.mutate, 0);
	ck_assert_int_eq(v.reason, -1);
}
END_TEST

START_TEST(message_bucket_bursts_then_drains)
{
	struct admit_rate r = { 0, 0 };
	unsigned admitted = 0;

	/* 5/s: a burst of five at one instant, then none */
	for (int i = 0; i < 8; i++)
		if (admit_rate_fits(admit_rate_level(&r, 5, T0), 5, 1)) {
			admit_rate_charge(&r, 5, 1, T0);
			admitted++;
		}
	ck_assert_uint_eq(admitted, 5);
	ck_assert_uint_eq(r.level_milli, 5000);
	/* 199 ms later 0.995 chats have drained: still no room */
	ck_assert(!admit_rate_fits(admit_rate_level(&r, 5, T0 + 199), 5, 1));
	/* 200 ms: exactly one */
	ck_assert_uint_eq(admit_rate_level(&r, 5, T0 + 200), 4000);
	ck_assert(admit_rate_fits(admit_rate_level(&r, 5, T0 + 200), 5, 1));
	/* a second later it is empty, never below 0 */
	ck_assert_uint_eq(admit_rate_level(&r, 5, T0 + 1000), 0);
	ck_assert_uint_eq(admit_rate_level(&r, 5, T0 + 99999999), 0);
	/* charging drains first */
	admit_rate_charge(&r, 5, 1, T0 + 600);
	ck_assert_uint_eq(r.level_milli, 2000 + 1000);
	ck_assert_uint_eq(r.at_ms, T0 + 600);
}
END_TEST

START_TEST(clock_stepping_back_drains_nothing)
{
	struct admit_rate r = { 3000, T0 };

	ck_assert_uint_eq(admit_rate_level(&r, 5, T0 - 5000), 3000);
	admit_rate_charge(&r, 5, 1, T0 - 5000);
	ck_assert_uint_eq(r.level_milli, 4000);
	ck_assert_uint_eq(r.at_ms, T0); /* the later time is kept */
}
END_TEST

START_TEST(tool_bucket_charges_the_estimate)
{
	struct admit_policy p = policy(ALL);
	struct admit_rate tool = { 0, 0 };
	unsigned admitted = 0;

	p.limit[ADMIT_D_GLOBAL_MSG_RATE] = 1000;
	p.limit[ADMIT_D_GLOBAL_INFLIGHT] = 1000;
	p.limit[ADMIT_D_USER_INFLIGHT] = 1000;
	/* 100 tool calls/s at 2 a chat: 50 chats */
	for (int i = 0; i < 80; i++) {
		struct admit_verdict v = decide(&p, 0, 0, 0,
		    admit_rate_level(&tool, 100, T0));

		if (v.action != ADMIT_ADMIT)
			continue;
		admit_rate_charge(&tool, 100, p.tool_per_msg, T0);
		admitted++;
	}
	ck_assert_uint_eq(admitted, 50);
	/* an estimate of 0 never makes the tool dimension over */
	p.tool_per_msg = 0;
	ck_assert_int_eq(decide(&p, 0, 0, 0, 1000000).action, ADMIT_ADMIT);
	/* one chat dearer than a second's worth: one at a time */
	ck_assert(admit_rate_fits(0, 1, 3));
	ck_assert(!admit_rate_fits(1, 1, 3));
	tool = (struct admit_rate){ 0, 0 };
	admit_rate_charge(&tool, 1, 3, T0);
	ck_assert(!admit_rate_fits(admit_rate_level(&tool, 1, T0 + 2999), 1,
	    3));
	ck_assert(admit_rate_fits(admit_rate_level(&tool, 1, T0 + 3000), 1,
	    3));
}
END_TEST

START_TEST(retry_after_is_jittered_within_bounds)
{
	uint32_t lo = UINT32_MAX, hi = 0;

	/* 2000 +/- 20 %: [1600, 2400], both ends reachable */
	ck_assert_uint_eq(admit_retry_after(2000, 20, 0), 1600);
	ck_assert_uint_eq(admit_retry_after(2000, 20, 800), 2400);
	for (uint64_t r = 0; r < 5000; r++) {
		uint32_t ms = admit_retry_after(2000, 20,
		    r * UINT64_C(0x9e3779b97f4a7c15));

		lo = ms < lo ? ms : lo;
		hi = ms > hi ? ms : hi;
	}
	ck_assert_uint_ge(lo, 1600);
	ck_assert_uint_le(hi, 2400);
	ck_assert_uint_lt(lo, 1650); /* spread over the range */
	ck_assert_uint_gt(hi, 2350);
	ck_assert_uint_eq(admit_retry_after(2000, 0, 12345), 2000);
	/* 100 %: down to 0, which is raised to 1 ms */
	ck_assert_uint_eq(admit_retry_after(100, 100, 0), 1);
	ck_assert_uint_eq(admit_retry_after(0, 0, 7), 1);
	ck_assert_uint_eq(admit_retry_after(100, 250, 0), 1); /* clamped */
}
END_TEST

START_TEST(sampling_takes_pct_percent)
{
	unsigned n1 = 0, n0 = 0, n100 = 0;

	for (uint64_t r = 0; r < 1000; r++) {
		n1 += (unsigned)admit_sample(1, r);
		n0 += (unsigned)admit_sample(0, r);
		n100 += (unsigned)admit_sample(100, r);
	}
	ck_assert_uint_eq(n1, 10);
	ck_assert_uint_eq(n0, 0);
	ck_assert_uint_eq(n100, 1000);
}
END_TEST

START_TEST(policy_and_mode_from_config)
{
	char err[256];
	struct config *cfg = config_load(NULL, CONFIG_NO_ENV, err,
	    sizeof(err));
	struct admit_policy p;

	ck_assert_msg(cfg != NULL, "%s", err);
	admit_policy_from_config(cfg, &p);
	ck_assert_uint_eq(p.limit[ADMIT_D_USER_INFLIGHT],
	    (uint64_t)cfg->admission_user_max_inflight);
	ck_assert_uint_eq(p.limit[ADMIT_D_GLOBAL_TOOL_RATE],
	    (uint64_t)cfg->admission_global_max_tool_per_sec);
	ck_assert_uint_eq(p.enforce, ALL);
	ck_assert_int_eq(p.shadow, 0);
	ck_assert_uint_eq(p.tool_per_msg,
	    (uint32_t)cfg->admission_est_tool_calls_per_msg);
	ck_assert_int_eq(admit_gateway_mode(cfg), ADMIT_MODE_AUTHORITATIVE);
	cfg->admission_enforce_global_msg_rate = 0;
	cfg->admission_redis_shadow_mode = 1;
	admit_policy_from_config(cfg, &p);
	ck_assert_uint_eq(p.enforce, ALL & ~BIT(GLOBAL_MSG_RATE));
	ck_assert_int_eq(p.shadow, 1);
	cfg->ff_chat_gateway_shadow = 1;
	ck_assert_int_eq(admit_gateway_mode(cfg), ADMIT_MODE_SHADOW);
	ck_assert_str_eq(admit_mode_name(admit_gateway_mode(cfg)), "shadow");
	cfg->ff_chat_gateway_enabled = 0;
	ck_assert_int_eq(admit_gateway_mode(cfg), ADMIT_MODE_LEGACY);
	cfg->ff_chat_gateway_enabled = 1;
	cfg->ff_chat_gateway_shadow = 0;
	cfg->ff_admission_enforce = 0;
	ck_assert_int_eq(admit_gateway_mode(cfg), ADMIT_MODE_LEGACY);
	config_free(cfg);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("admit");
	TCase *tc = tcase_create("decide");

	tcase_add_test(tc, under_every_limit_admits);
	tcase_add_test(tc, each_dimension_refuses_at_its_limit);
	tcase_add_test(tc, first_enforced_in_order_names_the_refusal);
	tcase_add_test(tc, unenforced_breaches_are_soft_allows);
	tcase_add_test(tc, shadow_never_refuses_nor_mutates);
	tcase_add_test(tc, message_bucket_bursts_then_drains);
	tcase_add_test(tc, clock_stepping_back_drains_nothing);
	tcase_add_test(tc, tool_bucket_charges_the_estimate);
	tcase_add_test(tc, retry_after_is_jittered_within_bounds);
	tcase_add_test(tc, sampling_takes_pct_percent);
	tcase_add_test(tc, policy_and_mode_from_config);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tl_run(suite());
}
