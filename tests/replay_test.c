/*
 * replay_test - idempotency claims and delivery rows in one transaction:
 * a repeat writes no delivery, partial repeats write only the new ones,
 * hit counts grow, ids are stable across a re-run of the apply.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/replay.h"
#include "store/store.h"
#include "testlib.h"

static char dir[64];
static struct store *st;
static struct store_writer *w;

static void
setup(void)
{
	tl_store_create(dir, sizeof(dir), "replay", &st, &w, 64);
}

static void
teardown(void)
{
	tl_store_destroy(dir, st, w);
}

static uint64_t
deliveries(void)
{
	uint64_t n = 0;

	ck_assert_int_eq(store_count(st, STORE_DELIVERIES, &n), STORE_OK);
	return n;
}

static struct replay_batch *
batch(const char *scope, const char *topic, unsigned n, const char **keys)
{
	struct replay_batch *b = calloc(1, sizeof(*b));

	b->scope = scope;
	b->topic = topic;
	b->now_ms = 1700000000000ull;
	b->ttl_ms = 7ull * 24 * 3600 * 1000;
	b->n = n;
	b->items = calloc(n, sizeof(*b->items));
	for (unsigned i = 0; i < n; i++) {
		b->items[i].key = keys[i];
		b->items[i].klen = strlen(keys[i]);
		b->items[i].payload = tl_payload_m1();
	}
	return b;
}

static void
free_batch(struct replay_batch *b)
{
	free(b->items);
	free(b);
}

/* The writer's apply gets the batch through a trampoline. */
static struct replay_batch *cur;

static int
apply_cur(struct store_txn *txn, void *arg)
{
	(void)arg;
	return replay_apply(txn, cur);
}

static int
submit(struct replay_batch *b)
{
	static uint64_t seq;

	cur = b;
	replay_prepare(b, 4242, &seq);
	return tl_write(w, apply_cur, NULL);
}

START_TEST(gmail_repeat_writes_one_delivery)
{
	const char *k[] = { "a@example.com:100" };
	struct replay_batch *b = batch("gmail_push_history", "gmail.history",
	    1, k);
	void *v;
	size_t n;
	struct replay_idem rec;
	char key[128], id[REPLAY_ID_LEN + 1];
	size_t klen;

	ck_assert_int_eq(submit(b), STORE_OK);
	ck_assert_uint_eq(b->fresh, 1);
	ck_assert_int_eq(b->items[0].fresh, 1);
	ck_assert_uint_eq(deliveries(), 1);
	memcpy(id, b->items[0].delivery_id, sizeof(id));
	b->now_ms += 1000;
	ck_assert_int_eq(submit(b), STORE_OK);
	ck_assert_uint_eq(b->fresh, 0);
	ck_assert_int_eq(b->items[0].fresh, 0);
	ck_assert_uint_eq(b->items[0].hit_count, 2);
	ck_assert_uint_eq(deliveries(), 1);
	/* the idem record keeps the first delivery id and counts hits */
	ck_assert_int_eq(replay_idem_key(key, sizeof(key), &klen,
			     "gmail_push_history", k[0], strlen(k[0])),
	    0);
	ck_assert_int_eq(store_get(st, STORE_IDEM, key, klen, b->now_ms, &v,
			     &n, NULL),
	    STORE_OK);
	ck_assert_uint_eq(n, sizeof(rec));
	memcpy(&rec, v, sizeof(rec));
	free(v);
	ck_assert_uint_eq(rec.hit_count, 2);
	ck_assert_uint_eq(rec.first_seen, 1700000000000ull);
	ck_assert_uint_eq(rec.last_seen, 1700000001000ull);
	ck_assert_mem_eq(rec.delivery_id, id, REPLAY_ID_LEN);
	/* the delivery row is JSON with topic, payload and the key */
	ck_assert_int_eq(store_get(st, STORE_DELIVERIES, id, REPLAY_ID_LEN,
			     b->now_ms, &v, &n, NULL),
	    STORE_OK);
	ck_assert_ptr_nonnull(memmem(v, n, "\"topic\":\"gmail.history\"", 23));
	ck_assert_ptr_nonnull(memmem(v, n, "\"payload\":{\"m\":1}", 17));
	ck_assert_ptr_nonnull(memmem(v, n, "a@example.com:100", 17));
	free(v);
	free_batch(b);
}
END_TEST

START_TEST(whatsapp_partial_and_full_repeat)
{
	const char *first[] = { "wamid.1", "wamid.2" };
	const char *mixed[] = { "wamid.1", "wamid.2", "wamid.3" };
	struct replay_batch *b1 = batch("whatsapp_message",
	    "whatsapp.message", 2, first);
	struct replay_batch *b2 = batch("whatsapp_message",
	    "whatsapp.message", 3, mixed);

	ck_assert_int_eq(submit(b1), STORE_OK);
	ck_assert_uint_eq(deliveries(), 2);
	ck_assert_int_eq(submit(b2), STORE_OK);
	ck_assert_uint_eq(b2->fresh, 1);
	ck_assert_int_eq(b2->items[0].fresh, 0);
	ck_assert_int_eq(b2->items[1].fresh, 0);
	ck_assert_int_eq(b2->items[2].fresh, 1);
	ck_assert_uint_eq(deliveries(), 3);
	ck_assert_int_eq(submit(b2), STORE_OK);
	ck_assert_uint_eq(b2->fresh, 0);
	ck_assert_uint_eq(b2->items[2].hit_count, 2);
	ck_assert_uint_eq(deliveries(), 3);
	free_batch(b1);
	free_batch(b2);
}
END_TEST

START_TEST(duplicate_key_inside_one_payload)
{
	const char *k[] = { "wamid.x", "wamid.x" };
	struct replay_batch *b = batch("whatsapp_message", "whatsapp.message",
	    2, k);

	ck_assert_int_eq(submit(b), STORE_OK);
	ck_assert_uint_eq(b->fresh, 1);
	ck_assert_uint_eq(deliveries(), 1);
	free_batch(b);
}
END_TEST

START_TEST(scopes_are_separate_and_expiry_reopens)
{
	const char *k[] = { "same" };
	struct replay_batch *a = batch("gmail_push_history", "gmail.history",
	    1, k);
	struct replay_batch *b = batch("whatsapp_message", "whatsapp.message",
	    1, k);

	ck_assert_int_eq(submit(a), STORE_OK);
	ck_assert_int_eq(submit(b), STORE_OK);
	ck_assert_uint_eq(a->fresh + b->fresh, 2);
	/* after the TTL the key is new again */
	a->now_ms += a->ttl_ms + 1;
	ck_assert_int_eq(submit(a), STORE_OK);
	ck_assert_uint_eq(a->fresh, 1);
	ck_assert_uint_eq(deliveries(), 3);
	free_batch(a);
	free_batch(b);
}
END_TEST

/* apply_then_fail - run the apply, then fail: its writes roll back. */
static int
apply_then_fail(struct store_txn *txn, void *arg)
{
	(void)arg;
	ck_assert_int_eq(replay_apply(txn, cur), STORE_OK);
	return STORE_EIO;
}

START_TEST(apply_is_rerunnable)
{
	const char *k[] = { "k1", "k2" };
	struct replay_batch *b = batch("whatsapp_message", "whatsapp.message",
	    2, k);
	char id0[REPLAY_ID_LEN + 1];
	uint64_t seq = 77;
	void *v;
	size_t n;

	replay_prepare(b, 1, &seq);
	memcpy(id0, b->items[0].delivery_id, sizeof(id0));
	ck_assert_str_ne(id0, b->items[1].delivery_id);
	cur = b;
	ck_assert_int_eq(tl_write(w, apply_then_fail, NULL), STORE_EIO);
	ck_assert_uint_eq(b->fresh, 2); /* outputs of the rolled-back run */
	ck_assert_uint_eq(deliveries(), 0);
	/* the same batch again: same ids, both fresh, outputs reset */
	ck_assert_int_eq(tl_write(w, apply_cur, NULL), STORE_OK);
	ck_assert_uint_eq(b->fresh, 2);
	ck_assert_uint_eq(deliveries(), 2);
	ck_assert_int_eq(store_get(st, STORE_DELIVERIES, id0, REPLAY_ID_LEN,
			     b->now_ms, &v, &n, NULL),
	    STORE_OK);
	free(v);
	free_batch(b);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("replay");
	TCase *tc = tl_tcase(s, "replay", setup, teardown, 30);

	tcase_add_test(tc, gmail_repeat_writes_one_delivery);
	tcase_add_test(tc, whatsapp_partial_and_full_repeat);
	tcase_add_test(tc, duplicate_key_inside_one_payload);
	tcase_add_test(tc, scopes_are_separate_and_expiry_reopens);
	tcase_add_test(tc, apply_is_rerunnable);
	return tl_run(s);
}
