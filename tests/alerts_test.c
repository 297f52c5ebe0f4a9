/*
 * alerts_test - the monitor's alerts (gate/alerts): Sentry DSNs taken
 * apart (and bad ones refused), the rate-limit rule over a summary
 * (blocked and contention added per bucket, by-reason keys and allowed
 * left out, the threshold inclusive), the queue rule (each limit: at it
 * and below no alert, above it one), the bulkhead rule, the restart
 * history and the crashloop rule (at the threshold an alert, below none),
 * the store rule (at the percentage an alert, below none), the cooldown
 * (held back before its end, let through at it), rows stored and read
 * back newest first (all, or of one kind) with the time of a key's last
 * alert, the snapshot sections, and the envelope: a header line, an item
 * header whose length is the event's, and the event with level, message
 * and tags.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/alerts.h"
#include "testlib.h"
#include "util/util.h"

static char dir[256];
static struct store *st;
static struct store_writer *w;

static void
setup(void)
{
	tl_store_create(dir, sizeof(dir), "alerts", &st, &w, 64);
}

static void
teardown(void)
{
	tl_store_destroy(dir, st, w);
}

/* due_is - d has the alert key, kind, value and threshold given */
static void
due_is(json_t *d, const char *key, const char *kind, json_int_t value,
    json_int_t threshold)
{
	ck_assert_str_eq(json_string_value(json_object_get(d, "alertKey")),
	    key);
	ck_assert_str_eq(json_string_value(json_object_get(d, "kind")), kind);
	ck_assert_int_eq(tl_jint(d, "value"), value);
	ck_assert_int_eq(tl_jint(d, "threshold"), threshold);
}

/* ndue - how many alerts due holds (taken) */
static size_t
ndue(json_t *due)
{
	size_t n = json_array_size(due);

	json_decref(due);
	return n;
}

START_TEST(dsn)
{
	struct alert_dsn d;
	char err[160];

	ck_assert_int_eq(alert_dsn_parse("https://abc123@o1.ingest.example"
					 "/4505", &d, err, sizeof(err)), 0);
	ck_assert_str_eq(d.url, "https://o1.ingest.example/api/4505/envelope/");
	ck_assert_str_eq(d.key, "abc123");
	ck_assert_int_eq(alert_dsn_parse("http://k:secret@127.0.0.1:9/7", &d,
			     err, sizeof(err)), 0);
	ck_assert_str_eq(d.url, "http://127.0.0.1:9/api/7/envelope/");
	ck_assert_str_eq(d.key, "k");
	ck_assert_int_eq(alert_dsn_parse("ftp://k@h/1", &d, err, sizeof(err)),
	    -1);
	ck_assert_int_eq(alert_dsn_parse("https://h/1", &d, err, sizeof(err)),
	    -1);
	ck_assert_int_eq(alert_dsn_parse("https://k@h", &d, err, sizeof(err)),
	    -1);
	ck_assert_int_eq(alert_dsn_parse("https://k@h/a/b", &d, err,
			     sizeof(err)), -1);
	ck_assert_int_eq(alert_dsn_parse(NULL, &d, err, sizeof(err)), -1);
	ck_assert_int_eq(alert_dsn_parse("https://:secret@h/1", &d, err,
			     sizeof(err)), -1);
}
END_TEST

START_TEST(rule)
{
	json_t *sum = json_pack("{s:{s:i},s:{s:i},s:{s:i},s:{s:i},s:{s:i}}",
	    "http:chat_stream:blocked", "occurrences", 30,
	    "http:chat_stream:contention_fallback", "occurrences", 20,
	    "http:chat_stream:blocked:limit", "occurrences", 30,
	    "http:gmail_push:blocked", "occurrences", 49,
	    "admission:chat:allowed", "occurrences", 500);
	json_t *due = alert_ratelimit_rule(sum, 50, 300000), *d;

	/* 50 at the threshold 50: due; 49 below it: not */
	ck_assert_uint_eq(json_array_size(due), 1);
	d = json_array_get(due, 0);
	due_is(d, "ratelimit:http:chat_stream", "ratelimit", 50, 50);
	ck_assert_int_eq(tl_jint(d, "occurrences"), 50);
	ck_assert_int_eq(tl_jint(d, "windowMs"), 300000);
	json_decref(due);
	/* above: both */
	ck_assert_uint_eq(ndue(alert_ratelimit_rule(sum, 49, 300000)), 2);
	ck_assert_uint_eq(ndue(alert_ratelimit_rule(sum, 51, 300000)), 0);
	json_decref(sum);
}
END_TEST

static int
put_row(struct store_txn *txn, void *arg)
{
	return alert_put(txn, arg);
}

START_TEST(rows_and_last)
{
	json_t *sum = json_pack("{s:{s:i}}", "http:chat_stream:blocked",
	    "occurrences", 77);
	json_t *all = alert_ratelimit_rule(sum, 50, 300000);
	json_t *due = json_array_get(all, 0);
	uint64_t now = now_ms();
	json_t *r1 = alert_row(due, 1, now - 5000);
	json_t *r2 = alert_row(due, 0, now - 1000);
	json_t *out = json_array();

	ck_assert_str_eq(json_string_value(json_object_get(r1, "sentry")),
	    "pending");
	ck_assert_str_eq(json_string_value(json_object_get(r2, "sentry")),
	    "off");
	ck_assert_uint_eq(alert_last(st, "ratelimit:http:chat_stream"), 0);
	ck_assert_int_eq(tl_write(w, put_row, r1), STORE_OK);
	ck_assert_int_eq(tl_write(w, put_row, r2), STORE_OK);
	ck_assert_uint_eq(alert_last(st, "ratelimit:http:chat_stream"),
	    now - 1000);
	ck_assert_uint_eq(alert_last(st, "ratelimit:http:chat"), 0);
	ck_assert_int_eq(alert_list(st, NULL, NULL, 0, out), STORE_OK);
	ck_assert_uint_eq(json_array_size(out), 2);
	ck_assert_int_eq(tl_jint(json_array_get(out, 0), "createdAt"),
	    (json_int_t)(now - 1000));
	json_array_clear(out);
	ck_assert_int_eq(alert_list(st, "pending", NULL, 0, out), STORE_OK);
	ck_assert_uint_eq(json_array_size(out), 1);
	ck_assert_int_eq(tl_jint(json_array_get(out, 0), "occurrences"), 77);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(
	    json_array_get(out, 0), "message")), "77 blocked or contention "
	    "events in the last 300 s (threshold 50)"));
	json_decref(out);
	json_decref(r1);
	json_decref(r2);
	json_decref(all);
	json_decref(sum);
}
END_TEST

START_TEST(envelope)
{
	json_t *sum = json_pack("{s:{s:i}}", "http:gmail_push:blocked",
	    "occurrences", 60);
	json_t *all = alert_ratelimit_rule(sum, 50, 300000);
	json_t *row = alert_row(json_array_get(all, 0), 1, 1796090400000ull);
	size_t len;
	char *env = alert_envelope(row, 1796090400000ull, &len);
	char *l1 = env, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
	char *end = strchr(l3, '\n');
	json_t *h = json_loadb(l1, (size_t)(l2 - l1 - 1), 0, NULL);
	json_t *ih = json_loadb(l2, (size_t)(l3 - l2 - 1), 0, NULL);
	json_t *ev = json_loadb(l3, (size_t)(end - l3), 0, NULL);

	ck_assert_uint_eq(len, strlen(env));
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(h,
			      "event_id"))), 32);
	ck_assert_str_eq(json_string_value(json_object_get(ih, "type")),
	    "event");
	ck_assert_int_eq(tl_jint(ih, "length"), (json_int_t)(end - l3));
	ck_assert_str_eq(json_string_value(json_object_get(ev, "level")),
	    "warning");
	ck_assert_str_eq(json_string_value(json_object_get(ev, "event_id")),
	    json_string_value(json_object_get(h, "event_id")));
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(ev, "tags"), "alert_key")),
	    "ratelimit:http:gmail_push");
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(ev, "tags"), "source")),
	    "http");
	ck_assert_str_eq(json_string_value(json_object_get(ev, "timestamp")),
	    "2026-12-01T02:00:00Z");
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(ev,
	    "message")), "ratelimit:http:gmail_push: 60 blocked"));
	/* sent again later: the same event (Sentry may have the first) */
	{
		size_t len2;
		char *again = alert_envelope(row, 1796090500000ull, &len2);
		json_t *h2 = json_loadb(again, (size_t)(strchr(again, '\n') -
						  again), 0, NULL);

		ck_assert_str_eq(json_string_value(json_object_get(h2,
				     "event_id")),
		    json_string_value(json_object_get(h, "event_id")));
		json_decref(h2);
		free(again);
	}
	json_decref(h);
	json_decref(ih);
	json_decref(ev);
	free(env);
	json_decref(row);
	json_decref(all);
	json_decref(sum);
}
END_TEST

/* keys - the alert keys of due, comma-separated, in buf */
static const char *
keys(json_t *due, char *buf, size_t len)
{
	json_t *v;
	size_t i;

	buf[0] = '\0';
	json_array_foreach(due, i, v)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
		    i ? "," : "",
		    json_string_value(json_object_get(v, "alertKey")));
	return buf;
}

/* queue_keys - the keys the queue rule finds for s against lim */
static const char *
queue_keys(const struct delivq_stats *s, const struct alert_queue_limits *l,
    char *buf, size_t len)
{
	json_t *due = alert_queue_rule(s, l);

	keys(due, buf, len);
	json_decref(due);
	return buf;
}

START_TEST(queue_rule)
{
	struct alert_queue_limits lim = { .max_queued = 500, .max_dead = 20,
		.max_queued_age = 60000, .max_running_age = 120000,
		.window_ms = 15 * 60000 };
	struct delivq_stats s = { .queued = 500, .dead = 90, .dead_recent = 20,
		.oldest_queued_age_ms = 60000,
		.oldest_running_age_ms = 120000 };
	char buf[512];
	json_t *due, *d;

	/* every value at its limit: nothing ("above the limit") */
	ck_assert_str_eq(queue_keys(&s, &lim, buf, sizeof(buf)), "");
	/* below: nothing */
	s = (struct delivq_stats){ .queued = 3, .dead_recent = 1,
		.oldest_queued_age_ms = 5, .oldest_running_age_ms = 5 };
	ck_assert_str_eq(queue_keys(&s, &lim, buf, sizeof(buf)), "");
	/* each above its limit, alone */
	s = (struct delivq_stats){ .queued = 501 };
	ck_assert_str_eq(queue_keys(&s, &lim, buf, sizeof(buf)),
	    "queue:deliveries:queued");
	s = (struct delivq_stats){ .dead = 30, .dead_recent = 21 };
	ck_assert_str_eq(queue_keys(&s, &lim, buf, sizeof(buf)),
	    "queue:deliveries:dead_letters");
	/* many dead letters held, but not of the window: nothing */
	s = (struct delivq_stats){ .dead = 1000, .dead_recent = 0 };
	ck_assert_str_eq(queue_keys(&s, &lim, buf, sizeof(buf)), "");
	s = (struct delivq_stats){ .oldest_queued_age_ms = 60001 };
	ck_assert_str_eq(queue_keys(&s, &lim, buf, sizeof(buf)),
	    "queue:deliveries:oldest_queued_age");
	s = (struct delivq_stats){ .oldest_running_age_ms = 120001 };
	ck_assert_str_eq(queue_keys(&s, &lim, buf, sizeof(buf)),
	    "queue:deliveries:oldest_running_age");
	/* all at once, with what an operator reads */
	s = (struct delivq_stats){ .queued = 700, .dead = 40,
		.dead_recent = 25, .oldest_queued_age_ms = 90000,
		.oldest_running_age_ms = 130000, .truncated = 1 };
	due = alert_queue_rule(&s, &lim);
	ck_assert_str_eq(keys(due, buf, sizeof(buf)),
	    "queue:deliveries:queued,queue:deliveries:dead_letters,"
	    "queue:deliveries:oldest_queued_age,"
	    "queue:deliveries:oldest_running_age");
	d = json_array_get(due, 0);
	due_is(d, "queue:deliveries:queued", "queue", 700, 500);
	ck_assert_str_eq(json_string_value(json_object_get(d, "source")),
	    "deliveries");
	ck_assert_str_eq(json_string_value(json_object_get(d, "message")),
	    "queue:deliveries:queued: at least 700 deliveries waiting for "
	    "the backend (more than 500)");
	d = json_array_get(due, 1);
	ck_assert_int_eq(tl_jint(d, "value"), 25);
	ck_assert_int_eq(tl_jint(d, "windowMs"), 15 * 60000);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(d,
	    "message")), "in the last 15 min (more than 20; 40 dead letters "
	    "held)"));
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(due, 2), "message")),
	    "queue:deliveries:oldest_queued_age: the oldest waiting delivery "
	    "has waited 90 s (more than 60 s)");
	json_decref(due);
}
END_TEST

START_TEST(bulkhead_rule)
{
	json_t *d = alert_bulkhead_rule("backend", "tool-worker.1", 16);

	due_is(d, "bulkhead:backend", "bulkhead", 16, 16);
	ck_assert_str_eq(json_string_value(json_object_get(d, "source")),
	    "tool-worker.1");
	ck_assert_str_eq(json_string_value(json_object_get(d, "provider")),
	    "backend");
	ck_assert_str_eq(json_string_value(json_object_get(d, "message")),
	    "bulkhead:backend: saturated, all 16 of its places were taken "
	    "and calls were refused (seen by tool-worker.1)");
	json_decref(d);
}
END_TEST

START_TEST(crash_history)
{
	static struct alert_crashes c;

	memset(&c, 0, sizeof(c));
	/* the first note is the baseline: restarts before it do not count */
	alert_crash_note(&c, 3, 2, 0, 7, 1000);
	ck_assert_uint_eq(alert_crash_count(&c, 3, 0), 0);
	alert_crash_note(&c, 3, 2, 0, 8, 2000);
	alert_crash_note(&c, 3, 2, 0, 8, 2500);
	alert_crash_note(&c, 3, 2, 0, 10, 3000);
	ck_assert_uint_eq(alert_crash_count(&c, 3, 0), 3);
	ck_assert_uint_eq(alert_crash_count(&c, 3, 2001), 2);
	ck_assert_uint_eq(alert_crash_count(&c, 3, 3001), 0);
	/* other slots are apart */
	ck_assert_uint_eq(alert_crash_count(&c, 4, 0), 0);
	/* the slot given to another process: a new baseline */
	alert_crash_note(&c, 3, 5, 1, 12, 4000);
	ck_assert_uint_eq(alert_crash_count(&c, 3, 0), 0);
	/* a counter that went down (a new segment): a new baseline */
	alert_crash_note(&c, 3, 5, 1, 0, 5000);
	alert_crash_note(&c, 3, 5, 1, 1, 6000);
	ck_assert_uint_eq(alert_crash_count(&c, 3, 0), 1);
	/* a leap: the ring keeps its worth, the newest */
	alert_crash_note(&c, 3, 5, 1, 1000, 7000);
	ck_assert_uint_eq(alert_crash_count(&c, 3, 0), ALERT_CRASH_KEEP);
	ck_assert_uint_eq(alert_crash_count(&c, 3, 7000), ALERT_CRASH_KEEP);
	/* out of range: ignored */
	alert_crash_note(&c, ALERT_CRASH_SLOTS, 1, 1, 5, 1);
	ck_assert_uint_eq(alert_crash_count(&c, ALERT_CRASH_SLOTS, 0), 0);
}
END_TEST

START_TEST(crashloop_rule)
{
	json_t *procs = json_pack("[{s:s,s:i,s:i,s:i,s:s},{s:s,s:i,s:i,s:i,"
				  "s:n},{s:s,s:i,s:i,s:i,s:n}]",
	    "role", "provider", "instance", 0, "restarts", 12,
	    "restartsInWindow", 3, "lastExit", "signal 11 (SEGV)", "role",
	    "ingress", "instance", 1, "restarts", 2, "restartsInWindow", 2,
	    "lastExit", "role", "tool-worker", "instance", 0, "restarts", 40,
	    "restartsInWindow", 4, "lastExit");
	json_t *due = alert_crashloop_rule(procs, 3, 300000), *d;
	char buf[256];

	/* 3 at the threshold 3 and 4 above it: due; 2 below: not */
	ck_assert_str_eq(keys(due, buf, sizeof(buf)),
	    "crashloop:provider.0,crashloop:tool-worker.0");
	d = json_array_get(due, 0);
	due_is(d, "crashloop:provider.0", "crashloop", 3, 3);
	ck_assert_str_eq(json_string_value(json_object_get(d, "message")),
	    "crashloop:provider.0: restarted 3 times in the last 300 s "
	    "(threshold 3, 12 in all; last exit: signal 11 (SEGV))");
	json_decref(due);
	ck_assert_uint_eq(ndue(alert_crashloop_rule(procs, 5, 300000)), 0);
	ck_assert_uint_eq(ndue(alert_crashloop_rule(procs, 2, 300000)), 3);
	json_decref(procs);
}
END_TEST

START_TEST(store_rule)
{
	uint64_t map = 100ull << 20;
	json_t *due;

	/* below 90 %: nothing */
	ck_assert_uint_eq(ndue(alert_store_rule(map / 100 * 90 - 1, map, 90)),
	    0);
	/* at 90 %: the alert */
	due = alert_store_rule(map / 100 * 90, map, 90);
	ck_assert_uint_eq(json_array_size(due), 1);
	due_is(json_array_get(due, 0), "store:map_usage", "store", 90, 90);
	json_decref(due);
	/* above */
	due = alert_store_rule(map / 100 * 97, map, 90);
	ck_assert_uint_eq(json_array_size(due), 1);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(due, 0), "message")),
	    "store:map_usage: the LMDB map is 97 % used (97 of 100 MiB, "
	    "threshold 90 %); writes are refused when it is full: raise "
	    "store.map_size_mb");
	json_decref(due);
	/* a small map in KiB */
	due = alert_store_rule(600 << 10, 1 << 20, 50);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(
	    json_array_get(due, 0), "message")), "(600 of 1024 KiB, "));
	json_decref(due);
	/* no map known: nothing */
	ck_assert_uint_eq(ndue(alert_store_rule(5, 0, 90)), 0);
}
END_TEST

START_TEST(cooldown)
{
	/* none yet: raised */
	ck_assert_int_eq(alert_in_cooldown(0, 5000, 1000), 0);
	/* before the end of the cooldown: held back */
	ck_assert_int_eq(alert_in_cooldown(5000, 5000, 1000), 1);
	ck_assert_int_eq(alert_in_cooldown(5000, 5999, 1000), 1);
	/* at it and after: raised */
	ck_assert_int_eq(alert_in_cooldown(5000, 6000, 1000), 0);
	ck_assert_int_eq(alert_in_cooldown(5000, 9000, 1000), 0);
	/* the store could not say: held back */
	ck_assert_int_eq(alert_in_cooldown(UINT64_MAX, 9000, 1000), 1);
}
END_TEST

START_TEST(kinds_and_snapshot)
{
	struct delivq_stats qs = { .queued = 9 };
	struct alert_queue_limits lim = { .max_queued = 1, .max_dead = 1,
		.max_queued_age = 1000, .max_running_age = 1000,
		.window_ms = 60000 };
	json_t *sum = json_pack("{s:{s:i}}", "http:chat_stream:blocked",
	    "occurrences", 77);
	json_t *rl = alert_ratelimit_rule(sum, 50, 300000);
	json_t *q = alert_queue_rule(&qs, &lim);
	json_t *st_due = alert_store_rule(95, 100, 90);
	uint64_t now = now_ms();
	json_t *rows[4] = {
		alert_row(json_array_get(rl, 0), 0, now - 3000),
		alert_row(json_array_get(q, 0), 0, now - 2000),
		alert_row(json_array_get(q, 0), 0, now - 7200000), /* old */
		alert_row(json_array_get(st_due, 0), 0, now - 1000),
	};
	json_t *out = json_array(), *snap;

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(tl_write(w, put_row, rows[i]), STORE_OK);
	ck_assert_int_eq(alert_list(st, NULL, "queue", 0, out), STORE_OK);
	ck_assert_uint_eq(json_array_size(out), 2);
	json_array_clear(out);
	ck_assert_int_eq(alert_list(st, NULL, NULL, 0, out), STORE_OK);
	ck_assert_uint_eq(json_array_size(out), 4);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(out, 0), "kind")),
	    "store");
	/* the snapshot: rate-limit alerts in rateLimitPressure, queue ones
	 * in toolQueueAlerts (newest first, those of the window counted) */
	snap = json_pack("{s:{}}", "rateLimitPressure");
	alert_snapshot(snap, st, 3600000, 20);
	ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(
			      snap, "rateLimitPressure"), "recentAlerts")),
	    1);
	ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(
			      snap, "toolQueueAlerts"), "recent")),
	    2);
	ck_assert_int_eq(tl_jint(json_object_get(snap, "toolQueueAlerts"),
			     "alertsInWindow"), 1);
	ck_assert_int_eq(tl_jint(json_array_get(json_object_get(
				     json_object_get(snap, "toolQueueAlerts"),
				     "recent"), 0), "createdAt"),
	    (json_int_t)(now - 2000));
	json_decref(snap);
	/* a limit: only the newest */
	snap = json_pack("{s:{}}", "rateLimitPressure");
	alert_snapshot(snap, st, 3600000, 1);
	ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(
			      snap, "toolQueueAlerts"), "recent")),
	    1);
	json_decref(snap);
	for (int i = 0; i < 4; i++)
		json_decref(rows[i]);
	json_decref(out);
	json_decref(rl);
	json_decref(q);
	json_decref(st_due);
	json_decref(sum);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("alerts");
	TCase *tc = tl_tcase(s, "alerts", setup, teardown, 30);

	tcase_add_test(tc, dsn);
	tcase_add_test(tc, rule);
	tcase_add_test(tc, rows_and_last);
	tcase_add_test(tc, envelope);
	tcase_add_test(tc, queue_rule);
	tcase_add_test(tc, bulkhead_rule);
	tcase_add_test(tc, crash_history);
	tcase_add_test(tc, crashloop_rule);
	tcase_add_test(tc, store_rule);
	tcase_add_test(tc, cooldown);
	tcase_add_test(tc, kinds_and_snapshot);
	return tl_run(s);
}
