/*
 * delivq_test - the delivery queue: claim leases due rows in order, a
 * lease that runs out is claimed again, retry moves the due time, dead
 * letters leave the index and come back with requeue, complete removes;
 * delivq_stats counts the rows by state, the dead letters of the window,
 * the ages of the oldest waiting and running rows, and stops at its
 * bound.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/delivq.h"
#include "gate/replay.h"
#include "store/store.h"
#include "testlib.h"

static char dir[64];
static struct store *st;
static struct store_writer *w;

static void
setup(void)
{
	tl_store_create(dir, sizeof(dir), "delivq", &st, &w, 16);
}

static void
teardown(void)
{
	tl_store_destroy(dir, st, w);
}

/* A test step run inside one write transaction through the writer. */
struct step {
	int (*fn)(struct store_txn *, struct step *);
	uint64_t now;
	const char *id;
	struct delivq_item items[8];
	unsigned n, max;
};

static int
step_apply(struct store_txn *txn, void *arg)
{
	struct step *s = arg;

	return s->fn(txn, s);
}

static int
run(struct step *s)
{
	return tl_write(w, step_apply, s);
}

static int
do_claim(struct store_txn *txn, struct step *s)
{
	for (unsigned i = 0; i < s->n; i++)
		delivq_item_free(&s->items[i]);
	return delivq_claim(txn, s->now, 4242, 1000, s->max, s->items, &s->n);
}

static int
do_complete(struct store_txn *txn, struct step *s)
{
	return delivq_complete(txn, s->id);
}

static int
do_retry(struct store_txn *txn, struct step *s)
{
	return delivq_retry(txn, s->id, s->now, s->now + 500, "http 503");
}

static int
do_dead(struct store_txn *txn, struct step *s)
{
	return delivq_dead(txn, s->id, s->now, "attempts exhausted");
}

static int
do_requeue(struct store_txn *txn, struct step *s)
{
	return delivq_requeue(txn, s->id, s->now);
}

/* enqueue - n webhook messages through replay_apply, as the ingress. */
struct rstep {
	struct replay_batch b;
	struct replay_item items[8];
};

static int
rstep_apply(struct store_txn *txn, void *arg)
{
	struct rstep *r = arg;

	return replay_apply(txn, &r->b);
}

static void
enqueue(struct rstep *r, const char **keys, unsigned n, uint64_t t)
{
	static uint64_t seq;

	memset(r, 0, sizeof(*r));
	r->b.scope = "whatsapp_message";
	r->b.topic = "whatsapp.message";
	r->b.now_ms = t;
	r->b.ttl_ms = 100000;
	r->b.n = n;
	r->b.items = r->items;
	for (unsigned i = 0; i < n; i++) {
		r->items[i].key = keys[i];
		r->items[i].klen = strlen(keys[i]);
		r->items[i].payload = tl_payload_m1();
	}
	replay_prepare(&r->b, 7, &seq);
	ck_assert_int_eq(tl_write(w, rstep_apply, r), STORE_OK);
}

static void
free_items(struct step *s)
{
	for (unsigned i = 0; i < s->n; i++)
		delivq_item_free(&s->items[i]);
	s->n = 0;
}

START_TEST(claim_lease_reclaim_complete)
{
	const char *k[] = { "m1", "m2", "m3" };
	struct rstep r;
	struct step s = { .fn = do_claim, .max = 8 };
	char first[DELIVQ_ID_LEN + 1];

	enqueue(&r, k, 3, 1000);
	/* not due before its time */
	s.now = 999;
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 0);
	/* due: all three, in order, with topic and payload */
	s.now = 1000;
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 3);
	ck_assert_str_eq(s.items[0].id, r.items[0].delivery_id);
	ck_assert_str_eq(s.items[0].topic, "whatsapp.message");
	ck_assert_str_eq(s.items[0].body, "{\"m\":1}");
	ck_assert_uint_eq(s.items[0].attempts, 0);
	memcpy(first, s.items[0].id, sizeof(first));
	free_items(&s);
	/* leased: nothing more to claim until the lease (1000 ms) runs out */
	s.now = 1500;
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 0);
	/* the holder died: at lease end the rows are claimed again */
	s.now = 2000;
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 3);
	free_items(&s);
	/* delivered: gone for good */
	s.fn = do_complete;
	s.id = first;
	ck_assert_int_eq(run(&s), STORE_OK);
	s.fn = do_claim;
	s.now = 10000;
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 2);
	free_items(&s);
	s.fn = do_complete;
	ck_assert_int_eq(run(&s), STORE_NOTFOUND);
}
END_TEST

START_TEST(retry_dead_requeue)
{
	const char *k[] = { "r1" };
	struct rstep r;
	struct step s = { .fn = do_claim, .max = 8 };
	char id[DELIVQ_ID_LEN + 1];
	void *v;
	size_t n;

	enqueue(&r, k, 1, 1000);
	memcpy(id, r.items[0].delivery_id, sizeof(id));
	s.now = 1000;
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 1);
	free_items(&s);
	/* a failed attempt: due again 500 ms later, attempts counted */
	s.fn = do_retry;
	s.id = id;
	s.now = 1100;
	ck_assert_int_eq(run(&s), STORE_OK);
	s.fn = do_claim;
	s.now = 1599;
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 0);
	s.now = 1600;
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_uint_eq(s.items[0].attempts, 1);
	free_items(&s);
	/* out of attempts: a dead letter, never claimed, still stored */
	s.fn = do_dead;
	ck_assert_int_eq(run(&s), STORE_OK);
	s.fn = do_claim;
	s.now = 1000000;
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 0);
	ck_assert_int_eq(store_get(st, STORE_DELIVERIES, id, DELIVQ_ID_LEN, 0,
			     &v, &n, NULL),
	    STORE_OK);
	ck_assert_ptr_nonnull(memmem(v, n, "\"state\":\"dead\"", 14));
	ck_assert_ptr_nonnull(memmem(v, n, "attempts exhausted", 18));
	free(v);
	/* requeue: ready again with attempts reset */
	s.fn = do_requeue;
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_int_eq(run(&s), STORE_NOTFOUND); /* no longer dead */
	s.fn = do_claim;
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_uint_eq(s.items[0].attempts, 0);
	free_items(&s);
}
END_TEST

START_TEST(unreadable_row_becomes_a_visible_dead_letter)
{
	static const char junk[] = "{\"id\": not json";
	const char *k[] = { "u1", "u2", "u3" };
	struct rstep r;
	struct step s = { .fn = do_claim, .max = 8, .now = 2000 };
	char id[DELIVQ_ID_LEN + 1], id2[DELIVQ_ID_LEN + 1];
	json_t *row;
	void *v;
	size_t n;

	enqueue(&r, k, 3, 1000);
	memcpy(id, r.items[0].delivery_id, sizeof(id));
	memcpy(id2, r.items[1].delivery_id, sizeof(id2));
	/* one row is not JSON, one is JSON without a payload */
	ck_assert_int_eq(store_put(st, STORE_DELIVERIES, id, DELIVQ_ID_LEN,
			     junk, sizeof(junk) - 1, 0),
	    STORE_OK);
	ck_assert_int_eq(store_put(st, STORE_DELIVERIES, id2, DELIVQ_ID_LEN,
			     "{\"topic\":\"t\"}", 13, 0),
	    STORE_OK);
	/* the claim hands out only the readable one */
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_str_eq(s.items[0].id, r.items[2].delivery_id);
	free_items(&s);
	/* the unreadable one is a dead letter that says why and keeps the
	 * stored bytes */
	ck_assert_int_eq(store_get(st, STORE_DELIVERIES, id, DELIVQ_ID_LEN, 0,
			     &v, &n, NULL),
	    STORE_OK);
	row = json_loadb(v, n, 0, NULL);
	free(v);
	ck_assert_ptr_nonnull(row);
	ck_assert_str_eq(json_string_value(json_object_get(row, "state")),
	    "dead");
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(row,
					 "deadLetterReason")),
	    "unreadable row"));
	ck_assert_str_eq(json_string_value(json_object_get(row, "rawBase64")),
	    "eyJpZCI6IG5vdCBqc29u");
	json_decref(row);
	ck_assert_int_eq(store_get(st, STORE_DELIVERIES, id2, DELIVQ_ID_LEN, 0,
			     &v, &n, NULL),
	    STORE_OK);
	ck_assert_ptr_nonnull(memmem(v, n, "unreadable row: no payload", 26));
	free(v);
	/* out of the index: never claimed again (only the readable one,
	 * whose lease ran out); requeue refuses it */
	s.now = 1000000;
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_str_eq(s.items[0].id, r.items[2].delivery_id);
	free_items(&s);
	s.fn = do_requeue;
	s.id = id;
	ck_assert_int_eq(run(&s), STORE_EINVAL);
}
END_TEST

START_TEST(claim_respects_max)
{
	const char *k[] = { "a", "b", "c", "d", "e" };
	struct rstep r;
	struct step s = { .fn = do_claim, .max = 2, .now = 5000 };

	enqueue(&r, k, 5, 1000);
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 2);
	free_items(&s);
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 2);
	free_items(&s);
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 1);
	free_items(&s);
}
END_TEST

/* stats_are - delivq_stats at now (dead letters from since) counts
 * queued, running, dead and dead_recent; the whole struct in *qs */
static void
stats_are(uint64_t now, uint64_t since, struct delivq_stats *qs,
    uint64_t queued, uint64_t running, uint64_t dead, uint64_t recent)
{
	ck_assert_int_eq(delivq_stats(st, now, since, 0, qs), STORE_OK);
	ck_assert_uint_eq(qs->queued, queued);
	ck_assert_uint_eq(qs->running, running);
	ck_assert_uint_eq(qs->dead, dead);
	ck_assert_uint_eq(qs->dead_recent, recent);
	ck_assert_uint_eq(qs->rows, queued + running + dead);
	ck_assert_int_eq(qs->truncated, 0);
}

START_TEST(stats_by_state_and_age)
{
	const char *k[] = { "s1", "s2", "s3", "s4", "s5" };
	struct rstep r;
	struct step s = { .fn = do_claim, .max = 2 };
	struct delivq_stats qs;
	char id[DELIVQ_ID_LEN + 1];

	stats_are(5000, 0, &qs, 0, 0, 0, 0); /* empty */
	enqueue(&r, k, 5, 1000);
	/* two leased at 2000, one of them dead at 3000 */
	s.now = 2000;
	ck_assert_int_eq(run(&s), STORE_OK);
	ck_assert_uint_eq(s.n, 2);
	memcpy(id, s.items[1].id, sizeof(id));
	free_items(&s);
	s.fn = do_dead;
	s.id = id;
	s.now = 3000;
	ck_assert_int_eq(run(&s), STORE_OK);
	stats_are(10000, 0, &qs, 3, 1, 1, 1);
	ck_assert_uint_eq(qs.oldest_queued_age_ms, 9000);  /* created 1000 */
	ck_assert_uint_eq(qs.oldest_running_age_ms, 8000); /* leased 2000 */
	/* the dead letter is older than the window: held, not recent */
	stats_are(10000, 3001, &qs, 3, 1, 1, 0);
	/* requeued: it waits from the requeue on */
	s.fn = do_requeue;
	s.now = 9000;
	ck_assert_int_eq(run(&s), STORE_OK);
	stats_are(10000, 0, &qs, 4, 1, 0, 0);
	ck_assert_uint_eq(qs.oldest_queued_age_ms, 9000);
	/* bounded: at most 2 rows read */
	ck_assert_int_eq(delivq_stats(st, 10000, 0, 2, &qs), STORE_OK);
	ck_assert_uint_eq(qs.rows, 2);
	ck_assert_int_eq(qs.truncated, 1);
	ck_assert_uint_eq(qs.queued + qs.running + qs.dead, 2);
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("delivq");
	TCase *tc = tl_tcase(su, "delivq", setup, teardown, 30);

	tcase_add_test(tc, claim_lease_reclaim_complete);
	tcase_add_test(tc, retry_dead_requeue);
	tcase_add_test(tc, claim_respects_max);
	tcase_add_test(tc, unreadable_row_becomes_a_visible_dead_letter);
	tcase_add_test(tc, stats_by_state_and_age);
	return tl_run(su);
}
