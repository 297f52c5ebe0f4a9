/*
 * telemetry_test - the coalescer of rate-limit events: the first event of
 * a (bucket, key, outcome, reason) window is sent at once, the rest are
 * counted and sent as one event when the window ends (tel_flush) or when
 * another key takes the slot; different keys, outcomes, buckets and
 * reasons never merge.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/telemetry.h"
#include "testlib.h"

#define T0 UINT64_C(1700000000000)

static struct tel_table *tab;

struct sent {
	struct tel_event ev;
	uint32_t count;
};

static struct sent sent[64];
static unsigned nsent;

static void
record(void *arg, const struct tel_event *ev, uint32_t count)
{
	(void)arg;
	ck_assert_uint_lt(nsent, 64);
	sent[nsent].ev = *ev;
	sent[nsent].count = count;
	nsent++;
}

static void
setup(void)
{
	tab = calloc(1, sizeof(*tab));
	nsent = 0;
}

static void
teardown(void)
{
	free(tab);
}

static int
note(const char *bucket, const char *key, uint8_t outcome, uint64_t now,
    uint32_t retry)
{
	struct tel_occurrence oc = { .outcome = outcome,
		.retry_after_ms = retry,
		.bucket = bucket,
		.key = key,
		.path = "/api/gmail/push",
		.method = "POST" };

	return tel_note(tab, &oc, now, record, NULL);
}

START_TEST(first_sent_rest_counted_then_flushed)
{
	ck_assert_int_eq(note("gmail_push", "10.0.0.1", TEL_BLOCKED, T0, 900),
	    0);
	ck_assert_uint_eq(nsent, 1);
	ck_assert_uint_eq(sent[0].count, 1);
	ck_assert_str_eq(sent[0].ev.bucket, "gmail_push");
	ck_assert_str_eq(sent[0].ev.key, "10.0.0.1");
	ck_assert_str_eq(sent[0].ev.path, "/api/gmail/push");
	ck_assert_str_eq(sent[0].ev.method, "POST");
	ck_assert_uint_eq(sent[0].ev.retry_after_ms, 900);
	for (int i = 1; i <= 9; i++)
		ck_assert_int_eq(note("gmail_push", "10.0.0.1", TEL_BLOCKED,
				     T0 + (uint64_t)i * 100, 900 - i),
		    1);
	ck_assert_uint_eq(nsent, 1);
	/* the window has not ended: nothing to flush */
	tel_flush(tab, T0 + TEL_WINDOW_MS - 1, record, NULL);
	ck_assert_uint_eq(nsent, 1);
	tel_flush(tab, T0 + TEL_WINDOW_MS, record, NULL);
	ck_assert_uint_eq(nsent, 2);
	ck_assert_uint_eq(sent[1].count, 9);
	ck_assert_uint_eq(sent[1].ev.retry_after_ms, 891); /* the latest */
	/* flushed once only */
	tel_flush(tab, T0 + 3 * TEL_WINDOW_MS, record, NULL);
	ck_assert_uint_eq(nsent, 2);
}
END_TEST

START_TEST(keys_outcomes_and_buckets_stay_apart)
{
	note("gmail_push", "10.0.0.1", TEL_BLOCKED, T0, 0);
	note("gmail_push", "10.0.0.2", TEL_BLOCKED, T0, 0);
	note("gmail_push", "10.0.0.1", TEL_CONTENTION, T0, 0);
	note("whatsapp_webhook", "10.0.0.1", TEL_BLOCKED, T0, 0);
	/* every one opened its own window */
	ck_assert_uint_eq(nsent, 4);
	ck_assert_int_eq(sent[2].ev.outcome, TEL_CONTENTION);
	ck_assert_str_eq(sent[3].ev.bucket, "whatsapp_webhook");
	/* bucket|key boundaries do not alias: "ab"+"c" vs "a"+"bc" */
	note("ab", "c", TEL_BLOCKED, T0, 0);
	ck_assert_int_eq(note("a", "bc", TEL_BLOCKED, T0, 0), 0);
	ck_assert_uint_eq(nsent, 6);
}
END_TEST

/* note_reason - an admission-style occurrence with a reason. */
static int
note_reason(const char *key, uint8_t outcome, const char *reason,
    uint64_t now)
{
	struct tel_occurrence oc = { .outcome = outcome,
		.bucket = "chat_admission",
		.key = key,
		.path = "/api/chat",
		.method = "POST",
		.reason = reason };

	return tel_note(tab, &oc, now, record, NULL);
}

START_TEST(reasons_stay_apart_and_are_carried)
{
	ck_assert_int_eq(note_reason("u1", TEL_BLOCKED, "user_inflight", T0),
	    0);
	ck_assert_int_eq(note_reason("u1", TEL_BLOCKED, "global_inflight",
			     T0),
	    0);
	ck_assert_int_eq(note_reason("u1", TEL_BLOCKED, "user_inflight",
			     T0 + 1),
	    1);
	ck_assert_int_eq(note_reason("u1", TEL_ALLOWED, NULL, T0), 0);
	ck_assert_int_eq(note_reason("u1", TEL_WOULD_BLOCK, "user_inflight",
			     T0),
	    0);
	ck_assert_uint_eq(nsent, 4);
	ck_assert_str_eq(sent[0].ev.reason, "user_inflight");
	ck_assert_str_eq(sent[1].ev.reason, "global_inflight");
	ck_assert_str_eq(sent[2].ev.reason, "");
	ck_assert_int_eq(sent[2].ev.outcome, TEL_ALLOWED);
	ck_assert_int_eq(sent[3].ev.outcome, TEL_WOULD_BLOCK);
	/* key|reason boundaries do not alias either */
	note_reason("ab", TEL_BLOCKED, "c", T0);
	ck_assert_int_eq(note_reason("a", TEL_BLOCKED, "bc", T0), 0);
	tel_flush(tab, T0 + TEL_WINDOW_MS, record, NULL);
	ck_assert_uint_eq(nsent, 7);
	ck_assert_str_eq(sent[6].ev.reason, "user_inflight");
	ck_assert_uint_eq(sent[6].count, 1);
	/* the message for the monitor carries all of it */
	{
		struct proto_msg m;
		const struct proto_rl_event *e = &m.u.rl_event;

		tel_message(&sent[6].ev, 9, "admission", T0 + 7, &m);
		ck_assert_int_eq(m.type, PROTO_T_RL_EVENT);
		ck_assert_uint_eq(e->created_at, T0 + 7);
		ck_assert_uint_eq(e->count, 9);
		ck_assert_int_eq(e->outcome, TEL_BLOCKED);
		ck_assert(proto_str_eq(e->source, "admission"));
		ck_assert(proto_str_eq(e->bucket, "chat_admission"));
		ck_assert(proto_str_eq(e->key, "u1"));
		ck_assert(proto_str_eq(e->reason, "user_inflight"));
		ck_assert(proto_str_eq(e->path, "/api/chat"));
		ck_assert(proto_str_eq(e->method, "POST"));
	}
}
END_TEST

START_TEST(a_new_window_after_the_old_one_ended)
{
	note("gmail_push", "k", TEL_BLOCKED, T0, 0);
	note("gmail_push", "k", TEL_BLOCKED, T0 + 10, 0);
	/* next occurrence after the window: the held count goes first,
	 * then the new window's first event */
	ck_assert_int_eq(note("gmail_push", "k", TEL_BLOCKED,
			     T0 + TEL_WINDOW_MS + 1, 0),
	    0);
	ck_assert_uint_eq(nsent, 3);
	ck_assert_uint_eq(sent[1].count, 1);
	ck_assert_uint_eq(sent[2].count, 1);
}
END_TEST

START_TEST(an_evicted_slot_sends_what_it_held)
{
	char key[32];
	unsigned first_pending = 0;

	/* fill one key's window, then hit many keys until one takes its
	 * slot: the evicted count is sent, never lost */
	note("b", "victim", TEL_BLOCKED, T0, 0);
	note("b", "victim", TEL_BLOCKED, T0 + 1, 0);
	note("b", "victim", TEL_BLOCKED, T0 + 2, 0);
	for (unsigned i = 0; i < 20 * TEL_SLOTS && first_pending == 0; i++) {
		unsigned before = nsent;

		snprintf(key, sizeof(key), "k%u", i);
		note("b", key, TEL_BLOCKED, T0 + 3, 0);
		for (unsigned j = before; j < nsent; j++)
			if (strcmp(sent[j].ev.key, "victim") == 0)
				first_pending = sent[j].count;
		if (nsent > 60)
			nsent = 1; /* keep room; sent[0] is the victim's */
	}
	ck_assert_uint_eq(first_pending, 2);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("telemetry");
	TCase *tc = tcase_create("coalesce");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, first_sent_rest_counted_then_flushed);
	tcase_add_test(tc, keys_outcomes_and_buckets_stay_apart);
	tcase_add_test(tc, reasons_stay_apart_and_are_carried);
	tcase_add_test(tc, a_new_window_after_the_old_one_ended);
	tcase_add_test(tc, an_evicted_slot_sends_what_it_held);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tl_run(suite());
}
