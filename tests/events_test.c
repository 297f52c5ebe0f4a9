/*
 * events_test - the monitor's events (gate/events): occurrences of one
 * 5-second key are one row with their count (another reason, outcome or
 * window is another row), rows are handed over only once their window
 * ended, a full table writes at once, a stored row takes a window's late
 * occurrences, and the summary counts occurrences, rows and duplicates
 * per source:bucket:outcome[:reason] within its window, with the newest
 * rows first.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/events.h"
#include "testlib.h"
#include "util/util.h"

static char dir[256];
static struct store *st;
static struct store_writer *w;
static struct ev_table *t;

static void
setup(void)
{
	tl_store_create(dir, sizeof(dir), "events", &st, &w, 64);
	t = xcalloc(1, sizeof(*t));
}

static void
teardown(void)
{
	free(t);
	tl_store_destroy(dir, st, w);
}

/* ev - an RL_EVENT at ms, count occurrences */
static struct proto_rl_event
ev(uint64_t ms, uint32_t count, uint8_t outcome, const char *key,
    const char *reason)
{
	struct proto_rl_event e;

	memset(&e, 0, sizeof(e));
	e.created_at = ms;
	e.count = count;
	e.outcome = outcome;
	e.retry_after_ms = 1000;
	e.source = proto_str_from("http");
	e.bucket = proto_str_from("chat_stream");
	e.key = proto_str_from(key);
	e.reason = proto_str_from(reason);
	e.path = proto_str_from("/api/chat");
	e.method = proto_str_from("POST");
	return e;
}

struct got {
	struct ev_row rows[8192];
	unsigned n;
};

static void
take(void *arg, const struct ev_row *r)
{
	struct got *g = arg;

	if (g->n < RG_NELEM(g->rows))
		g->rows[g->n++] = *r;
}

struct wr {
	const struct ev_row *rows;
	unsigned n;
	uint64_t ttl;
};

static int
write_rows(struct store_txn *txn, void *arg)
{
	struct wr *x = arg;

	for (unsigned i = 0; i < x->n; i++) {
		int rc = ev_write(txn, &x->rows[i], x->ttl);

		if (rc != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

#define T0 (now_ms() / 5000 * 5000 - 60000) /* a window a minute ago */

START_TEST(one_row_per_five_second_key)
{
	static struct got g;
	uint64_t t0 = T0;
	struct proto_rl_event e;

	e = ev(t0 + 10, 1, 1, "u1", "limit");
	ck_assert_int_eq(ev_note(t, &e, take, &g), 1);
	e = ev(t0 + 4000, 7, 1, "u1", "limit"); /* same window */
	ck_assert_int_eq(ev_note(t, &e, take, &g), 0);
	e = ev(t0 + 4999, 2, 1, "u1", "limit");
	ck_assert_int_eq(ev_note(t, &e, take, &g), 0);
	e = ev(t0 + 5000, 1, 1, "u1", "limit"); /* the next window */
	ck_assert_int_eq(ev_note(t, &e, take, &g), 1);
	e = ev(t0 + 20, 1, 1, "u1", "other"); /* another reason */
	ck_assert_int_eq(ev_note(t, &e, take, &g), 1);
	e = ev(t0 + 30, 1, 2, "u1", "limit"); /* another outcome */
	ck_assert_int_eq(ev_note(t, &e, take, &g), 1);
	e = ev(t0 + 40, 1, 1, "u2", "limit"); /* another key */
	ck_assert_int_eq(ev_note(t, &e, take, &g), 1);
	ck_assert_uint_eq(t->n, 5);
	ck_assert_uint_eq(g.n, 0);
	/* nothing before its window ended */
	ev_flush(t, t0 + 4999, 0, take, &g);
	ck_assert_uint_eq(g.n, 0);
	ev_flush(t, t0 + 5000, 0, take, &g);
	ck_assert_uint_eq(g.n, 4);
	ck_assert_uint_eq(t->n, 1);
	for (unsigned i = 0; i < g.n; i++)
		if (strcmp(g.rows[i].key, "u1") == 0 &&
		    strcmp(g.rows[i].reason, "limit") == 0 &&
		    g.rows[i].outcome == 1) {
			ck_assert_uint_eq(g.rows[i].count, 10);
			ck_assert_uint_eq(g.rows[i].created_at, t0 + 10);
			ck_assert_uint_eq(g.rows[i].window, t0);
		}
	/* the row of the next window is still there and findable */
	e = ev(t0 + 6000, 3, 1, "u1", "limit");
	ck_assert_int_eq(ev_note(t, &e, take, &g), 0);
	ev_flush(t, 0, 1, take, &g);
	ck_assert_uint_eq(g.n, 5);
	ck_assert_uint_eq(g.rows[4].count, 4);
	ck_assert_uint_eq(t->n, 0);
}
END_TEST

/* after a flush every row left is found again (none lost, none
 * counted twice), also with probe runs that wrap around the table */
START_TEST(flush_keeps_the_rest_findable)
{
	static struct got g;
	uint64_t t0 = T0;
	char key[32];

	for (int round = 0; round < 20; round++) {
		static uint8_t early[3000]; /* went out at once: no room */
		unsigned before;

		memset(t, 0, sizeof(*t));
		memset(early, 0, sizeof(early));
		g.n = 0;
		for (unsigned i = 0; i < 3000; i++) {
			struct proto_rl_event e;

			snprintf(key, sizeof(key), "r%dk%u", round, i);
			e = ev(t0 + (i % 2) * 5000, 1, 1, key, "limit");
			ev_note(t, &e, take, &g);
			if (g.n > 0 && strcmp(g.rows[g.n - 1].key, key) == 0)
				early[i] = 1;
		}
		ck_assert_uint_eq(g.n + t->n, 3000);
		before = t->n;
		g.n = 0;
		ev_flush(t, t0 + 5000, 0, take, &g); /* the first window */
		ck_assert_uint_eq(g.n + t->n, before);
		for (unsigned k = 0; k < g.n; k++)
			ck_assert_uint_eq(g.rows[k].window, t0);
		for (unsigned i = 1; i < 3000; i += 2) {
			struct proto_rl_event e;

			if (early[i])
				continue;
			snprintf(key, sizeof(key), "r%dk%u", round, i);
			e = ev(t0 + 5000, 1, 1, key, "limit");
			ck_assert_msg(ev_note(t, &e, take, &g) == 0,
			    "round %d key %u lost", round, i);
		}
		ck_assert_uint_eq(t->n, before - g.n);
	}
}
END_TEST

START_TEST(full_table_writes_at_once)
{
	static struct got g;
	uint64_t t0 = T0;
	char key[32];
	unsigned opened = 0;

	for (unsigned i = 0; i < EV_SLOTS + 100; i++) {
		struct proto_rl_event e;

		snprintf(key, sizeof(key), "k%u", i);
		e = ev(t0, 1, 1, key, "limit");
		opened += (unsigned)ev_note(t, &e, take, &g);
	}
	ck_assert_uint_eq(opened, EV_SLOTS + 100);
	/* what did not fit went out at once, nothing was lost */
	ck_assert_uint_ge(g.n, 100);
	ck_assert_uint_eq(g.n + t->n, EV_SLOTS + 100);
}
END_TEST

START_TEST(stored_summed_and_summarized)
{
	static struct got g;
	uint64_t t0 = T0;
	struct proto_rl_event e;
	struct wr x;
	json_t *sum = json_object(), *recent = json_array(), *s;

	e = ev(t0 + 1, 5, 1, "u1", "limit");
	ev_note(t, &e, take, &g);
	e = ev(t0 + 2, 1, 2, "u1", "table_contention");
	ev_note(t, &e, take, &g);
	e = ev(t0 - 3600000, 9, 1, "old", "limit"); /* an hour before */
	ev_note(t, &e, take, &g);
	ev_flush(t, 0, 1, take, &g);
	ck_assert_uint_eq(g.n, 3);
	x = (struct wr){ g.rows, g.n, 3 * 3600000ull };
	ck_assert_int_eq(tl_write(w, write_rows, &x), STORE_OK);
	/* a late occurrence of the first window: added to its row */
	g.n = 0;
	e = ev(t0 + 4000, 2, 1, "u1", "limit");
	ev_note(t, &e, take, &g);
	ev_flush(t, 0, 1, take, &g);
	x = (struct wr){ g.rows, g.n, 3 * 3600000ull };
	ck_assert_int_eq(tl_write(w, write_rows, &x), STORE_OK);

	/* the last 10 minutes: the old row is out */
	ck_assert_int_eq(ev_summary(st, now_ms() - 600000, sum, recent, 2),
	    STORE_OK);
	s = json_object_get(sum, "http:chat_stream:blocked");
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(tl_jint(s, "occurrences"), 7);
	ck_assert_int_eq(tl_jint(s, "events"), 1);
	ck_assert_int_eq(tl_jint(s, "duplicates"), 6);
	s = json_object_get(sum, "http:chat_stream:blocked:limit");
	ck_assert_int_eq(tl_jint(s, "occurrences"), 7);
	s = json_object_get(sum, "http:chat_stream:contention_fallback:"
				 "table_contention");
	ck_assert_int_eq(tl_jint(s, "occurrences"), 1);
	ck_assert_int_eq(tl_jint(s, "duplicates"), 0);
	ck_assert_uint_eq(json_object_size(sum), 4);
	/* the newest two rows, the newest first */
	ck_assert_uint_eq(json_array_size(recent), 2);
	ck_assert_int_eq(tl_jint(json_array_get(recent, 0), "createdAt"),
	    (json_int_t)(t0 + 2));
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(recent, 1), "key")),
	    "u1");
	ck_assert_int_eq(tl_jint(json_array_get(recent, 1), "count"), 7);
	/* the late occurrence did not move the row in time */
	ck_assert_int_eq(tl_jint(json_array_get(recent, 1), "createdAt"),
	    (json_int_t)(t0 + 1));
	ck_assert_int_eq(tl_jint(json_array_get(recent, 1), "expiresAt"),
	    (json_int_t)(t0 + 3 * 3600000ull));
	json_decref(sum);
	json_decref(recent);
	/* two hours: the old one is in */
	sum = json_object();
	ck_assert_int_eq(ev_summary(st, now_ms() - 7200000, sum, NULL, 0),
	    STORE_OK);
	ck_assert_int_eq(tl_jint(json_object_get(sum,
				     "http:chat_stream:blocked"),
			     "occurrences"),
	    16);
	json_decref(sum);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tl_tcase(s, "events", setup, teardown, 30);

	tcase_add_test(tc, one_row_per_five_second_key);
	tcase_add_test(tc, flush_keeps_the_rest_findable);
	tcase_add_test(tc, full_table_writes_at_once);
	tcase_add_test(tc, stored_summed_and_summarized);
	return tl_run(s);
}
