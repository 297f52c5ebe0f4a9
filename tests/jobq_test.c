/*
 * jobq_test - the tool-job queue (gate/jobq): claims in class order
 * (realtime, interactive, batch) and due order; per-tool and per-class
 * running caps, held by two processes claiming at once; a full queue
 * refuses with nothing written; a lease that ran out is claimed again; a
 * dead worker's jobs are queued again at once; the retry schedule
 * (exponential from the base, with bounded jitter); a dead letter after
 * the last attempt, requeued with its attempts from 0; the TTL cleanup of
 * old jobs and old dead letters; the counts behind stats.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gate/jobq.h"
#include "testlib.h"
#include "util/util.h"

static char dir[64];
static struct store *st;
static struct store_writer *w;

static const struct jobq_tool tools[] = {
	{ "search_web", 3, 2 },
	{ "search_products", 50, 50 },
};
static struct jobq_limits lim = {
	tools, 2, { 4, 4, 4 }, 50, 3, 1000, 100,
};

static void
setup(void)
{
	tl_store_create(dir, sizeof(dir), "jobq", &st, &w, 16);
	lim.qos_running_max[0] = lim.qos_running_max[1] =
	    lim.qos_running_max[2] = 4;
	lim.claim_scan = 50;
	lim.max_attempts = 3;
	lim.lease_ms = 1000;
	lim.retry_base_ms = 100;
}

static void
teardown(void)
{
	tl_store_destroy(dir, st, w);
}

/* A step run inside one write transaction through the writer. */
struct step {
	int (*fn)(struct store_txn *, struct step *);
	uint64_t now, rnd;
	char id[JOBQ_ID_LEN + 1];
	const char *tool;
	enum jobq_qos qos;
	int32_t owner;
	uint32_t attempt; /* of complete and fail */
	struct jobq_item items[64];
	unsigned n, max;
	int dead;
};

static int
step_apply(struct store_txn *txn, void *arg)
{
	struct step *s = arg;

	return s->fn(txn, s);
}

static int
do_enqueue(struct store_txn *txn, struct step *s)
{
	json_t *args = json_pack("{s:s}", "query", s->id);
	struct jobq_new j = { s->id, s->tool, s->qos, args, "rid-1", 3 };
	int rc = jobq_enqueue(txn, &j, &lim, s->now);

	json_decref(args);
	return rc;
}

static int
do_claim(struct store_txn *txn, struct step *s)
{
	for (unsigned i = 0; i < s->n; i++)
		jobq_item_free(&s->items[i]);
	return jobq_claim(txn, s->now, s->owner, &lim, s->max, s->items, &s->n);
}

static int
do_fail(struct store_txn *txn, struct step *s)
{
	return jobq_fail(txn, s->id, s->owner, s->attempt, "http 503", &lim,
	    s->now, s->rnd, &s->dead);
}

static int
do_complete(struct store_txn *txn, struct step *s)
{
	return jobq_complete(txn, s->id, s->owner, s->attempt);
}

static int
do_requeue(struct store_txn *txn, struct step *s)
{
	return jobq_requeue(txn, s->id, s->now);
}

static int
do_release(struct store_txn *txn, struct step *s)
{
	return jobq_release_owner(txn, s->owner, &lim, s->now, &s->n);
}

static int
do_postpone(struct store_txn *txn, struct step *s)
{
	return jobq_postpone(txn, s->id, s->owner, s->attempt, "circuit_open",
	    s->now + s->rnd);
}

static const char *rm_ids;
static unsigned rm_n;

static int
do_remove(struct store_txn *txn, struct step *s)
{
	return jobq_remove_expired(txn, rm_ids, rm_n, s->now, 10000, 20000,
	    &s->n);
}

static int
do_complete_as(struct store_txn *txn, struct step *s)
{
	return jobq_complete(txn, s->id, s->owner, s->attempt);
}

static struct step *
mk(int (*fn)(struct store_txn *, struct step *), uint64_t now)
{
	struct step *s = xcalloc(1, sizeof(*s));

	s->fn = fn;
	s->now = now;
	s->owner = 4242;
	s->max = 64;
	return s;
}

static void
step_free(struct step *s)
{
	for (unsigned i = 0; i < s->n && s->fn == do_claim; i++)
		jobq_item_free(&s->items[i]);
	free(s);
}

static int
enqueue(const char *tool, enum jobq_qos q, int i, uint64_t now)
{
	struct step *s = mk(do_enqueue, now);
	int rc;

	snprintf(s->id, sizeof(s->id), "%s%0*d", q == JOBQ_REALTIME ? "r" :
	    q == JOBQ_INTERACTIVE ? "i" : "b", JOBQ_ID_LEN - 1, i);
	s->tool = tool;
	s->qos = q;
	rc = tl_write(w, step_apply, s);
	step_free(s);
	return rc;
}

/* claim - up to max jobs at now; their ids joined by ',' into buf */
static unsigned
claim(uint64_t now, unsigned max, int32_t owner, char *buf, size_t len)
{
	struct step *s = mk(do_claim, now);
	unsigned n;

	s->max = max;
	s->owner = owner;
	ck_assert_int_eq(tl_write(w, step_apply, s), STORE_OK);
	n = s->n;
	if (buf != NULL) {
		buf[0] = '\0';
		for (unsigned i = 0; i < n; i++) {
			strncat(buf, s->items[i].id, len - strlen(buf) - 1);
			strncat(buf, ",", len - strlen(buf) - 1);
		}
	}
	step_free(s);
	return n;
}

/* holder - the owner and attempt the row of id is running (0 if none) */
static void
holder(const char *id, int32_t *owner, uint32_t *attempt)
{
	void *v;
	size_t n;
	json_t *row;

	*owner = 0;
	*attempt = 0;
	if (store_get(st, STORE_JOBS, id, strlen(id), 0, &v, &n, NULL) !=
	    STORE_OK)
		return;
	row = json_loadb(v, n, 0, NULL);
	free(v);
	*owner = (int32_t)json_integer_value(json_object_get(row, "owner"));
	*attempt = (uint32_t)json_integer_value(
	    json_object_get(row, "attempts"));
	json_decref(row);
}

/* by_id - a step on job id; complete and fail as the worker that holds
 * its attempt */
static int
by_id(int (*fn)(struct store_txn *, struct step *), const char *id,
    uint64_t now, uint64_t rnd, int *dead)
{
	struct step *s = mk(fn, now);
	int rc;

	holder(id, &s->owner, &s->attempt);
	strlcpy_rg(s->id, id, sizeof(s->id));
	s->rnd = rnd;
	rc = tl_write(w, step_apply, s);
	if (dead != NULL)
		*dead = s->dead;
	step_free(s);
	return rc;
}

static json_t *
stats(uint64_t now)
{
	json_t *o = json_object();

	ck_assert_int_eq(jobq_stats(st, now, o), STORE_OK);
	return o;
}

static json_int_t
stat_at(json_t *o, const char *a, const char *b, const char *c)
{
	json_t *v = json_object_get(o, a);

	if (b != NULL)
		v = json_object_get(v, b);
	if (c != NULL)
		v = json_object_get(v, c);
	return json_integer_value(v);
}

/* the id of the i-th job enqueued with class q */
static const char *
idn(enum jobq_qos q, int i)
{
	static char buf[4][JOBQ_ID_LEN + 1];
	static int k;
	char *b = buf[k++ % 4];

	snprintf(b, JOBQ_ID_LEN + 1, "%s%0*d", q == JOBQ_REALTIME ? "r" :
	    q == JOBQ_INTERACTIVE ? "i" : "b", JOBQ_ID_LEN - 1, i);
	return b;
}

START_TEST(class_then_due_order)
{
	char got[1024], want[1024];

	lim.lease_ms = 100000; /* no lease runs out in this test */
	ck_assert_int_eq(enqueue("search_products", JOBQ_BATCH, 1, 100), 0);
	ck_assert_int_eq(enqueue("search_products", JOBQ_INTERACTIVE, 2, 200), 0);
	ck_assert_int_eq(enqueue("search_products", JOBQ_REALTIME, 3, 300), 0);
	ck_assert_int_eq(enqueue("search_products", JOBQ_INTERACTIVE, 4, 150), 0);
	ck_assert_int_eq(enqueue("search_products", JOBQ_REALTIME, 5, 5000), 0);
	/* at 1000 the realtime job due at 5000 is not due yet */
	ck_assert_uint_eq(claim(1000, 10, 1, got, sizeof(got)), 4);
	snprintf(want, sizeof(want), "%s,%s,%s,%s,", idn(JOBQ_REALTIME, 3),
	    idn(JOBQ_INTERACTIVE, 4), idn(JOBQ_INTERACTIVE, 2),
	    idn(JOBQ_BATCH, 1));
	ck_assert_str_eq(got, want);
	ck_assert_uint_eq(claim(5000, 10, 1, got, sizeof(got)), 1);
}
END_TEST

START_TEST(tool_and_class_caps)
{
	json_t *o;

	/* search_web: at most 2 running, 3 queued */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(enqueue("search_web", JOBQ_INTERACTIVE, i, 10),
		    STORE_OK);
	ck_assert_int_eq(enqueue("search_web", JOBQ_INTERACTIVE, 3, 10),
	    JOBQ_SATURATED);
	o = stats(20);
	ck_assert_int_eq(stat_at(o, "byTool", "search_web", "queued"), 3);
	ck_assert_int_eq(stat_at(o, "byStatus", "queued", NULL), 3);
	json_decref(o);
	ck_assert_uint_eq(claim(20, 10, 1, NULL, 0), 2);
	ck_assert_uint_eq(claim(20, 10, 1, NULL, 0), 0);
	/* a place in the queue again: one more may be queued */
	ck_assert_int_eq(enqueue("search_web", JOBQ_INTERACTIVE, 3, 20),
	    STORE_OK);
	ck_assert_int_eq(enqueue("search_web", JOBQ_INTERACTIVE, 4, 20),
	    STORE_OK);
	ck_assert_int_eq(enqueue("search_web", JOBQ_INTERACTIVE, 5, 20),
	    JOBQ_SATURATED);
	/* one completes: one more runs */
	ck_assert_int_eq(by_id(do_complete, idn(JOBQ_INTERACTIVE, 0), 30, 0,
			     NULL),
	    STORE_OK);
	ck_assert_uint_eq(claim(30, 10, 1, NULL, 0), 1);
	/* the class cap: 4 interactive at once, whatever the tool */
	for (int i = 10; i < 20; i++)
		ck_assert_int_eq(enqueue("search_products", JOBQ_INTERACTIVE, i,
				     40),
		    STORE_OK);
	ck_assert_uint_eq(claim(50, 64, 1, NULL, 0), 2); /* 2 + 2 = 4 */
	ck_assert_int_eq(enqueue("search_products", JOBQ_BATCH, 30, 40),
	    STORE_OK);
	ck_assert_uint_eq(claim(50, 64, 1, NULL, 0), 1); /* batch has room */
	o = stats(60);
	ck_assert_int_eq(stat_at(o, "byQos", "interactive", "running"), 4);
	ck_assert_int_eq(stat_at(o, "byQos", "batch", "running"), 1);
	ck_assert_int_eq(stat_at(o, "byStatus", "running", NULL), 5);
	ck_assert_int_eq(stat_at(o, "byStatus", "queued", NULL), 2 + 8);
	ck_assert_int_eq(stat_at(o, "oldestQueuedAgeMs", NULL, NULL), 60 - 20);
	ck_assert_int_eq(stat_at(o, "oldestRunningAgeMs", NULL, NULL), 60 - 20);
	json_decref(o);
	/* an unknown tool is refused */
	ck_assert_int_eq(enqueue("nope", JOBQ_BATCH, 99, 40), STORE_EINVAL);
}
END_TEST

START_TEST(claim_scan_bound)
{
	lim.claim_scan = 3;
	/* three search_web jobs first (cap 2 running), then others */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(enqueue("search_web", JOBQ_INTERACTIVE, i, 10),
		    STORE_OK);
	for (int i = 3; i < 6; i++)
		ck_assert_int_eq(enqueue("search_products", JOBQ_INTERACTIVE, i,
				     20),
		    STORE_OK);
	/* 3 candidates looked at: two taken, the third passed over */
	ck_assert_uint_eq(claim(30, 64, 1, NULL, 0), 2);
	/* next claim: the web job passed over, then one products job */
	ck_assert_uint_eq(claim(30, 64, 1, NULL, 0), 2);
}
END_TEST

/* two processes claim at once, each as many as it can: the caps hold
 * across them */
static unsigned *claimed_by;

static void
claimer(void *arg, int id)
{
	struct store *s2;
	struct store_writer *w2;
	char err[256];
	unsigned total = 0;

	(void)arg;
	if (store_open(&s2, dir, 16u << 20, 0, NULL, err, sizeof(err)) !=
	    STORE_OK)
		_exit(3);
	w2 = store_writer_start(s2, 1);
	for (int round = 0; round < 40; round++) {
		struct step *s = mk(do_claim, 100);

		s->max = 1;
		s->owner = 1000 + id;
		if (tl_write(w2, step_apply, s) != STORE_OK)
			_exit(4);
		total += s->n;
		step_free(s);
	}
	store_writer_stop(w2);
	store_close(s2);
	claimed_by[id] = total;
}

START_TEST(caps_across_two_processes)
{
	json_t *o;

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(enqueue("search_web", JOBQ_REALTIME, i, 10),
		    STORE_OK);
	for (int i = 10; i < 30; i++)
		ck_assert_int_eq(enqueue("search_products", JOBQ_BATCH, i, 10),
		    STORE_OK);
	claimed_by = tl_shared_map(2 * sizeof(*claimed_by));
	tl_children(2, claimer, NULL, NULL);
	/* web: 2 running (its cap); batch: 4 (the class cap) */
	ck_assert_uint_eq(claimed_by[0] + claimed_by[1], 6);
	o = stats(200);
	ck_assert_int_eq(stat_at(o, "byTool", "search_web", "running"), 2);
	ck_assert_int_eq(stat_at(o, "byTool", "search_products", "running"),
	    4);
	json_decref(o);
	munmap(claimed_by, 2 * sizeof(*claimed_by));
}
END_TEST

START_TEST(lease_expiry_and_dead_owner)
{
	json_t *o;

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(enqueue("search_products", JOBQ_INTERACTIVE, i,
				     10),
		    STORE_OK);
	ck_assert_uint_eq(claim(100, 2, 7, NULL, 0), 2); /* owner 7 */
	ck_assert_uint_eq(claim(100, 2, 8, NULL, 0), 2); /* owner 8 */
	ck_assert_uint_eq(claim(500, 10, 9, NULL, 0), 0);
	{
		int32_t own[4];
		unsigned n;

		ck_assert_int_eq(jobq_running_owners(st, own, 4, &n), STORE_OK);
		ck_assert_uint_eq(n, 2);
		ck_assert(own[0] + own[1] == 15 && own[0] != own[1]);
		ck_assert_int_eq(jobq_running_owners(st, own, 1, &n), STORE_OK);
		ck_assert_uint_eq(n, 1);
	}
	/* owner 7 died: its two jobs are claimable at once */
	{
		struct step *s = mk(do_release, 600);

		s->owner = 7;
		ck_assert_int_eq(tl_write(w, step_apply, s), STORE_OK);
		ck_assert_uint_eq(s->n, 2);
		step_free(s);
	}
	{
		struct step *s = mk(do_claim, 600);

		s->owner = 9;
		s->max = 10;
		ck_assert_int_eq(tl_write(w, step_apply, s), STORE_OK);
		ck_assert_uint_eq(s->n, 2);
		/* the waiting provider comes with the job */
		ck_assert_uint_eq(s->items[0].waiter, 3);
		ck_assert_uint_eq(s->items[1].waiter, 3);
		step_free(s);
	}
	{
		int32_t own[4];
		unsigned n;

		ck_assert_int_eq(jobq_running_owners(st, own, 4, &n), STORE_OK);
		ck_assert_uint_eq(n, 2);
		ck_assert(own[0] + own[1] == 17);
	}
	/* owner 8's lease (1000 ms from 100) runs out at 1100 */
	ck_assert_uint_eq(claim(1099, 10, 9, NULL, 0), 0);
	ck_assert_uint_eq(claim(1100, 10, 9, NULL, 0), 2);
	o = stats(1200);
	ck_assert_int_eq(stat_at(o, "byStatus", "running", NULL), 4);
	ck_assert_int_eq(stat_at(o, "byStatus", "queued", NULL), 0);
	json_decref(o);
}
END_TEST

START_TEST(retries_then_dead_letter_then_requeue)
{
	const char *id = idn(JOBQ_INTERACTIVE, 1);
	json_t *o, *dl;
	int dead = -1;

	ck_assert_int_eq(enqueue("search_products", JOBQ_INTERACTIVE, 1, 0),
	    STORE_OK);
	/* attempt 1 fails at 1000: due again at 1000 + 100 (+ jitter <= 25) */
	ck_assert_uint_eq(claim(1000, 1, 1, NULL, 0), 1);
	ck_assert_int_eq(by_id(do_fail, id, 1000, 1000003, &dead), STORE_OK);
	ck_assert_int_eq(dead, 0);
	ck_assert_uint_eq(claim(1099, 1, 1, NULL, 0), 0);
	ck_assert_uint_eq(claim(1100 + 1000003 % 26, 1, 1, NULL, 0), 1);
	/* attempt 2 fails at 2000: 200 ms (+ jitter <= 50; rnd 0 adds 0) */
	ck_assert_int_eq(by_id(do_fail, id, 2000, 0, &dead), STORE_OK);
	ck_assert_uint_eq(claim(2199, 1, 1, NULL, 0), 0);
	ck_assert_uint_eq(claim(2200, 1, 1, NULL, 0), 1);
	/* attempt 3 of 3 fails: a dead letter */
	ck_assert_int_eq(by_id(do_fail, id, 3000, 0, &dead), STORE_OK);
	ck_assert_int_eq(dead, 1);
	ck_assert_uint_eq(claim(900000, 1, 1, NULL, 0), 0);
	o = stats(3000);
	ck_assert_int_eq(stat_at(o, "byStatus", "dead", NULL), 1);
	ck_assert_int_eq(stat_at(o, "byTool", "search_products", "dead"), 1);
	json_decref(o);
	dl = json_array();
	ck_assert_int_eq(jobq_dead_letters(st, 10, dl), STORE_OK);
	ck_assert_int_eq(json_array_size(dl), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(dl,
			     0), "deadLetterReason")),
	    "3 attempts failed; last: http 503");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(dl,
			     0), "deadAt")),
	    3000);
	json_decref(dl);
	/* failing or completing a dead letter: not found */
	ck_assert_int_eq(by_id(do_fail, id, 3001, 0, NULL), STORE_NOTFOUND);
	ck_assert_int_eq(by_id(do_complete, id, 3001, 0, NULL), STORE_NOTFOUND);
	/* requeued: claimable now, attempts from 0 (3 more before dead) */
	ck_assert_int_eq(by_id(do_requeue, id, 4000, 0, NULL), STORE_OK);
	ck_assert_int_eq(by_id(do_requeue, id, 4000, 0, NULL), STORE_NOTFOUND);
	ck_assert_uint_eq(claim(4000, 1, 1, NULL, 0), 1);
	ck_assert_int_eq(by_id(do_fail, id, 4000, 0, &dead), STORE_OK);
	ck_assert_int_eq(dead, 0);
	o = stats(4000);
	ck_assert_int_eq(stat_at(o, "byStatus", "dead", NULL), 0);
	ck_assert_int_eq(stat_at(o, "byStatus", "queued", NULL), 1);
	json_decref(o);
	/* the backoff stops growing at JOBQ_BACKOFF_MAX_MS */
	lim.max_attempts = 100;
	lim.retry_base_ms = 1000;
	for (int a = 0; a < 20; a++) {
		uint64_t t = 10000000 + (uint64_t)a * 10000000;

		ck_assert_uint_eq(claim(t, 1, 1, NULL, 0), 1);
		ck_assert_int_eq(by_id(do_fail, id, t, 0, NULL), STORE_OK);
	}
	ck_assert_uint_eq(claim(200000000 + JOBQ_BACKOFF_MAX_MS - 1, 1, 1, NULL,
			      0),
	    0);
	ck_assert_uint_eq(claim(200000000 + JOBQ_BACKOFF_MAX_MS, 1, 1, NULL, 0),
	    1);
}
END_TEST

START_TEST(ttl_cleanup)
{
	char ids[8 * (JOBQ_ID_LEN + 1)];
	unsigned n = 0, removed = 0;
	json_t *o;
	int dead;

	ck_assert_int_eq(enqueue("search_products", JOBQ_BATCH, 1, 1000), 0);
	ck_assert_int_eq(enqueue("search_products", JOBQ_BATCH, 2, 5000), 0);
	lim.max_attempts = 1;
	ck_assert_int_eq(enqueue("search_products", JOBQ_REALTIME, 3, 1000), 0);
	ck_assert_uint_eq(claim(1000, 1, 1, NULL, 0), 1); /* r3 */
	ck_assert_int_eq(by_id(do_fail, idn(JOBQ_REALTIME, 3), 2000, 0, &dead),
	    STORE_OK);
	ck_assert_int_eq(dead, 1);
	/* ttl 10000, dlq ttl 20000; at 12000 only b1 (created 1000) */
	ck_assert_int_eq(jobq_expired(st, 12000, 10000, 20000, ids, 8, &n),
	    STORE_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(ids, idn(JOBQ_BATCH, 1));
	/* at 25000: b2 as well, and the dead letter (died at 2000) */
	ck_assert_int_eq(jobq_expired(st, 25000, 10000, 20000, ids, 8, &n),
	    STORE_OK);
	ck_assert_uint_eq(n, 3);
	rm_ids = ids;
	rm_n = n;
	{
		struct step *st2 = mk(do_remove, 25000);

		ck_assert_int_eq(tl_write(w, step_apply, st2), STORE_OK);
		removed = st2->n;
		step_free(st2);
	}
	ck_assert_uint_eq(removed, 3);
	/* the two queued too long are dead letters now, not lost; the old
	 * dead letter is gone */
	o = stats(25000);
	ck_assert_int_eq(stat_at(o, "byStatus", "queued", NULL), 0);
	ck_assert_int_eq(stat_at(o, "byStatus", "dead", NULL), 2);
	json_decref(o);
	o = json_array();
	ck_assert_int_eq(jobq_dead_letters(st, 0, o), STORE_OK);
	ck_assert_int_eq(json_array_size(o), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(o, 0),
			     "deadLetterReason")),
	    "expired: not done 10000 ms after it was queued");
	json_decref(o);
	{
		int cut = 0;

		/* one row read of three (the counts row and two jobs) */
		o = json_array();
		ck_assert_int_eq(jobq_dead_letters_upto(st, 0, 1, o, &cut),
		    STORE_OK);
		ck_assert_int_eq(cut, 1);
		ck_assert_int_le(json_array_size(o), 1);
		json_decref(o);
	}
	ck_assert_uint_eq(claim(30000, 10, 1, NULL, 0), 0);
	/* one is requeued at 30000: its TTL starts again, so the sweep at
	 * 39999 leaves it queued; the other, dead since 25000, goes at
	 * 45000 */
	ck_assert_int_eq(by_id(do_requeue, idn(JOBQ_BATCH, 1), 30000, 0, NULL),
	    STORE_OK);
	ck_assert_int_eq(jobq_expired(st, 39999, 10000, 20000, ids, 8, &n),
	    STORE_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(jobq_expired(st, 45000, 10000, 20000, ids, 8, &n),
	    STORE_OK);
	ck_assert_uint_eq(n, 2); /* b1 expired again, b2's dead letter */
	rm_n = n;
	{
		struct step *st2 = mk(do_remove, 45000);

		ck_assert_int_eq(tl_write(w, step_apply, st2), STORE_OK);
		step_free(st2);
	}
	o = stats(45000);
	ck_assert_int_eq(stat_at(o, "byStatus", "dead", NULL), 1);
	json_decref(o);
	{
		uint64_t rows = 0, idx = 0;

		/* b1's dead letter and the counts row are left, no index */
		ck_assert_int_eq(store_count(st, STORE_JOBS, &rows), STORE_OK);
		ck_assert_int_eq(store_count(st, STORE_JOBS_READY, &idx),
		    STORE_OK);
		ck_assert_uint_eq(rows, 2);
		ck_assert_uint_eq(idx, 0);
	}
}
END_TEST

START_TEST(an_id_once)
{
	json_t *o;

	ck_assert_int_eq(enqueue("search_products", JOBQ_INTERACTIVE, 1, 100),
	    STORE_OK);
	/* the same id again (even due later): refused, nothing changed */
	ck_assert_int_eq(enqueue("search_products", JOBQ_INTERACTIVE, 1, 200),
	    STORE_EINVAL);
	o = stats(300);
	ck_assert_int_eq(stat_at(o, "byStatus", "queued", NULL), 1);
	json_decref(o);
	ck_assert_uint_eq(claim(300, 10, 1, NULL, 0), 1);
	o = stats(300);
	ck_assert_int_eq(stat_at(o, "byStatus", "running", NULL), 1);
	json_decref(o);
}
END_TEST

/* a worker whose lease ran out and whose job another took cannot end the
 * other's attempt: the running cap holds */
START_TEST(a_late_worker_ends_nothing)
{
	const char *i0 = idn(JOBQ_INTERACTIVE, 0);
	struct step *s;

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(enqueue("search_web", JOBQ_INTERACTIVE, i, 10),
		    STORE_OK);
	ck_assert_uint_eq(claim(100, 10, 7, NULL, 0), 2); /* A: i0, i1 */
	/* A's leases end at 1100; B takes i2 and one of A's */
	ck_assert_uint_eq(claim(1200, 2, 8, NULL, 0), 2);
	s = mk(do_complete_as, 1300);
	strlcpy_rg(s->id, i0, sizeof(s->id));
	s->owner = 7; /* A, attempt 1: over */
	s->attempt = 1;
	ck_assert_int_eq(tl_write(w, step_apply, s), STORE_NOTFOUND);
	step_free(s);
	s = mk(do_fail, 1300);
	strlcpy_rg(s->id, i0, sizeof(s->id));
	s->owner = 7;
	s->attempt = 1;
	ck_assert_int_eq(tl_write(w, step_apply, s), STORE_NOTFOUND);
	step_free(s);
	/* still 2 running (B's): nobody else gets one */
	ck_assert_uint_eq(claim(1300, 10, 9, NULL, 0), 0);
}
END_TEST

/* the oldest waits per tool and per class */
START_TEST(ages_per_tool_and_class)
{
	json_t *bt = json_object(), *bq = json_object();
	int cut = 1;

	ck_assert_int_eq(enqueue("search_web", JOBQ_INTERACTIVE, 0, 10),
	    STORE_OK);
	ck_assert_int_eq(enqueue("search_products", JOBQ_REALTIME, 0, 20),
	    STORE_OK);
	ck_assert_int_eq(enqueue("search_products", JOBQ_REALTIME, 1, 30),
	    STORE_OK);
	ck_assert_uint_eq(claim(100, 1, 7, NULL, 0), 1); /* r0, from 100 */
	ck_assert_int_eq(jobq_ages(st, 1000, 0, bt, bq, &cut), STORE_OK);
	ck_assert_int_eq(cut, 0);
	ck_assert_int_eq(stat_at(bt, "search_products", "oldestRunningAgeMs",
			     NULL), 900);
	ck_assert_int_eq(stat_at(bt, "search_products", "oldestQueuedAgeMs",
			     NULL), 970);
	ck_assert_int_eq(stat_at(bt, "search_web", "oldestQueuedAgeMs", NULL),
	    990);
	ck_assert_ptr_null(json_object_get(json_object_get(bt, "search_web"),
	    "oldestRunningAgeMs"));
	ck_assert_int_eq(stat_at(bq, "realtime", "oldestRunningAgeMs", NULL),
	    900);
	ck_assert_int_eq(stat_at(bq, "realtime", "oldestQueuedAgeMs", NULL),
	    970);
	ck_assert_int_eq(stat_at(bq, "interactive", "oldestQueuedAgeMs", NULL),
	    990);
	json_decref(bt);
	json_decref(bq);
	/* not due yet: not waiting; a bound on the rows read */
	bt = json_object();
	bq = json_object();
	ck_assert_int_eq(jobq_ages(st, 25, 0, bt, bq, &cut), STORE_OK);
	ck_assert_int_eq(stat_at(bt, "search_products", "oldestQueuedAgeMs",
			     NULL), 0);
	ck_assert_int_eq(stat_at(bt, "search_web", "oldestQueuedAgeMs", NULL),
	    15);
	json_decref(bt);
	json_decref(bq);
	bt = json_object();
	bq = json_object();
	ck_assert_int_eq(jobq_ages(st, 1000, 2, bt, bq, &cut), STORE_OK);
	ck_assert_int_eq(cut, 1);
	json_decref(bt);
	json_decref(bq);
}
END_TEST

/* the queued ages of a class: read in due order up to the first row of
 * every tool with queued jobs, not through the whole class */
START_TEST(ages_stop_once_every_tool_is_seen)
{
	json_t *bt = json_object(), *bq = json_object();
	int cut = 1;

	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(enqueue("search_products", JOBQ_BATCH, i,
				     100 + (uint64_t)i), STORE_OK);
	/* 40 rows in the class, a bound of 3: one read is enough */
	ck_assert_int_eq(jobq_ages(st, 1000, 3, bt, bq, &cut), STORE_OK);
	ck_assert_int_eq(cut, 0);
	ck_assert_int_eq(stat_at(bt, "search_products", "oldestQueuedAgeMs",
			     NULL), 900);
	ck_assert_int_eq(stat_at(bq, "batch", "oldestQueuedAgeMs", NULL), 900);
	json_decref(bt);
	json_decref(bq);
	/* another tool behind them in due order: still found */
	ck_assert_int_eq(enqueue("search_web", JOBQ_BATCH, 40, 500), STORE_OK);
	bt = json_object();
	bq = json_object();
	ck_assert_int_eq(jobq_ages(st, 1000, 100, bt, bq, &cut), STORE_OK);
	ck_assert_int_eq(cut, 0);
	ck_assert_int_eq(stat_at(bt, "search_web", "oldestQueuedAgeMs", NULL),
	    500);
	ck_assert_int_eq(stat_at(bt, "search_products", "oldestQueuedAgeMs",
			     NULL), 900);
	json_decref(bt);
	json_decref(bq);
}
END_TEST

/* a job put back before it reached the upstream keeps its attempts */
START_TEST(postpone_keeps_the_attempt)
{
	const char *i0 = idn(JOBQ_INTERACTIVE, 0);
	int32_t owner;
	uint32_t attempt;

	ck_assert_int_eq(enqueue("search_web", JOBQ_INTERACTIVE, 0, 10),
	    STORE_OK);
	for (int round = 0; round < 5; round++) { /* more than max_attempts */
		uint64_t t = 100 + (uint64_t)round * 1000;

		ck_assert_uint_eq(claim(t, 10, 7, NULL, 0), 1);
		holder(i0, &owner, &attempt);
		ck_assert_uint_eq(attempt, 1);
		ck_assert_int_eq(by_id(do_postpone, i0, t, 500, NULL), STORE_OK);
		ck_assert_uint_eq(claim(t + 499, 10, 7, NULL, 0), 0);
	}
	ck_assert_uint_eq(claim(5100, 10, 8, NULL, 0), 1);
	holder(i0, &owner, &attempt);
	ck_assert_int_eq(owner, 8);
	ck_assert_uint_eq(attempt, 1);
	/* a postpone by a worker that does not hold it: nothing */
	{
		struct step *s = mk(do_postpone, 5200);

		strlcpy_rg(s->id, i0, sizeof(s->id));
		s->owner = 7;
		s->attempt = 1;
		ck_assert_int_eq(tl_write(w, step_apply, s), STORE_NOTFOUND);
		step_free(s);
	}
}
END_TEST

/* a tool at its cap at the head of one class does not use up another
 * class's look */
/* limits a commit owns: their tools and names stay when the config's are
 * freed (a reload while the commit runs) */
START_TEST(owned_limits_outlive_their_source)
{
	static struct jobq_own_limits own;
	struct jobq_limits saved = lim;
	struct jobq_tool *src = xcalloc(2, sizeof(*src));
	char *n0 = xstrdup("search_web"), *n1 = xstrdup("search_products");

	src[0] = (struct jobq_tool){ n0, 3, 2 };
	src[1] = (struct jobq_tool){ n1, 50, 50 };
	lim.tools = src;
	jobq_limits_own(&own, &lim);
	memset(n0, 'z', strlen(n0));
	memset(n1, 'z', strlen(n1));
	memset(src, 0xff, 2 * sizeof(*src));
	free(n0);
	free(n1);
	free(src);
	lim = own.lim;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(enqueue("search_web", JOBQ_INTERACTIVE, i,
				     100), STORE_OK);
	ck_assert_int_eq(enqueue("search_web", JOBQ_INTERACTIVE, 3, 100),
	    JOBQ_SATURATED);
	ck_assert_int_eq(enqueue("search_products", JOBQ_BATCH, 4, 100),
	    STORE_OK);
	ck_assert_int_eq(enqueue("zzzzzz", JOBQ_BATCH, 5, 100), STORE_EINVAL);
	lim = saved;
}
END_TEST

START_TEST(each_class_its_own_scan)
{
	lim.claim_scan = 1;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(enqueue("search_web", JOBQ_REALTIME, i, 10),
		    STORE_OK);
	ck_assert_int_eq(enqueue("search_products", JOBQ_BATCH, 9, 10),
	    STORE_OK);
	ck_assert_uint_eq(claim(20, 1, 1, NULL, 0), 1);
	ck_assert_uint_eq(claim(20, 1, 1, NULL, 0), 1); /* web at cap 2 */
	/* r2 (web, capped) is the realtime look; batch still has its own */
	ck_assert_uint_eq(claim(20, 1, 1, NULL, 0), 1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("jobq");
	TCase *tc = tl_tcase(s, "jobq", setup, teardown, 60);

	tcase_add_test(tc, class_then_due_order);
	tcase_add_test(tc, tool_and_class_caps);
	tcase_add_test(tc, claim_scan_bound);
	tcase_add_test(tc, caps_across_two_processes);
	tcase_add_test(tc, lease_expiry_and_dead_owner);
	tcase_add_test(tc, retries_then_dead_letter_then_requeue);
	tcase_add_test(tc, ttl_cleanup);
	tcase_add_test(tc, an_id_once);
	tcase_add_test(tc, a_late_worker_ends_nothing);
	tcase_add_test(tc, each_class_its_own_scan);
	tcase_add_test(tc, postpone_keeps_the_attempt);
	tcase_add_test(tc, ages_per_tool_and_class);
	tcase_add_test(tc, owned_limits_outlive_their_source);
	tcase_add_test(tc, ages_stop_once_every_tool_is_seen);
	return tl_run(s);
}
