/*
 * store_test - unit tests of store/: tables, TTL index and sweeps, the
 * group-commit writer, MAP_FULL, read-only and reopen, and what a process
 * killed inside a write transaction leaves behind.
 *
 * Every test runs in a fresh directory under a per-case base directory
 * (both removed afterwards, even when a test fails).  Times are passed
 * explicitly: no test sleeps to let a record expire.  Bulk loads go through
 * one transaction: each commit costs an fsync.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "testlib.h"
#include "util/util.h"

#define MAP_BIG   (64u * 1024 * 1024)
#define MAP_TINY  (256u * 1024)
#define FILL_VLEN 16000 /* 4 pages: a tiny map fills in a few commits */
#define NFILL     40
#define WAIT_MS   60000 /* bound of every wait in this file (fsyncs can be
                         * slow on a busy disk, more so under ASan) */

static char base_dir[256]; /* per test case */
static char test_dir[300]; /* per test */

/* Completion counter for writer requests. */
struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned done;
};

static struct waiter waiter = { PTHREAD_MUTEX_INITIALIZER,
	PTHREAD_COND_INITIALIZER, 0 };

/* A request that holds the writer thread until the test opens it, so the
 * next requests are known to share one batch. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int entered, open;
};

static struct gate gate = { PTHREAD_MUTEX_INITIALIZER,
	PTHREAD_COND_INITIALIZER, 0, 0 };

/* ---- fixtures ---------------------------------------------------------- */

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) == -1 && errno != ENOENT ? -1 : 0;
}

static void
rm_rf(const char *path)
{
	if (path[0] != '\0')
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
case_setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(base_dir, sizeof(base_dir), "%s/store_test.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(base_dir) == NULL)
		abort();
}

static void
case_teardown(void)
{
	rm_rf(base_dir);
}

static void
test_setup(void)
{
	waiter.done = 0;
	gate.entered = gate.open = 0;
	snprintf(test_dir, sizeof(test_dir), "%s/t.XXXXXX", base_dir);
	ck_assert_ptr_nonnull(mkdtemp(test_dir));
}

static void
test_teardown(void)
{
	rm_rf(test_dir);
}

/* ---- helpers ----------------------------------------------------------- */

static struct store *
open_store(uint64_t map, unsigned flags, struct store_stats *stats)
{
	struct store *st = NULL;
	char err[256];
	int rc;

	rc = store_open(&st, test_dir, map, flags, stats, err, sizeof(err));
	ck_assert_msg(rc == STORE_OK, "store_open: %d %s", rc, err);
	ck_assert_ptr_nonnull(st);
	return st;
}

static int
put_s(struct store *st, enum store_table t, const char *k, const char *v,
    uint64_t exp)
{
	return store_put(st, t, k, strlen(k), v, strlen(v), exp);
}

/* get_s - get k; on STORE_OK compare with want (when not NULL). */
static int
get_s(struct store *st, enum store_table t, const char *k, uint64_t now,
    const char *want)
{
	void *v = NULL;
	size_t n = 0;
	int rc;

	rc = store_get(st, t, k, strlen(k), now, &v, &n, NULL);
	if (rc == STORE_OK) {
		if (want != NULL) {
			ck_assert_uint_eq(n, strlen(want));
			ck_assert_int_eq(memcmp(v, want, n), 0);
		}
		free(v);
	}
	return rc;
}

static uint64_t
count(struct store *st, enum store_table t)
{
	uint64_t n = 0;

	ck_assert_int_eq(store_count(st, t, &n), STORE_OK);
	return n;
}

static void
deadline(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += WAIT_MS / 1000;
}

static void
waiter_bump(void)
{
	pthread_mutex_lock(&waiter.mu);
	waiter.done++;
	pthread_cond_broadcast(&waiter.cv);
	pthread_mutex_unlock(&waiter.mu);
}

/* waiter_wait - wait (bounded) until n requests in all are done. */
static void
waiter_wait(unsigned n)
{
	struct timespec ts;
	int rc = 0;

	deadline(&ts);
	pthread_mutex_lock(&waiter.mu);
	while (waiter.done < n && rc == 0)
		rc = pthread_cond_timedwait(&waiter.cv, &waiter.mu, &ts);
	pthread_mutex_unlock(&waiter.mu);
	ck_assert_msg(rc == 0, "timed out waiting for %u requests", n);
}

/* One writer request: put (or delete) one record, maybe fail on purpose. */
struct req {
	enum store_table t;
	char key[40];
	size_t vlen;
	uint64_t exp;
	int del;
	int fail_with; /* returned after the write when != STORE_OK */
	int sloppy;    /* ignores the write's result */
	int calls;     /* done() calls */
	int rc;        /* rc given to done() */
};

static unsigned char bigbuf[1024 * 1024];

static int
req_apply(struct store_txn *tx, void *arg)
{
	struct req *r = arg;
	int rc;

	if (r->del)
		rc = store_txn_del(tx, r->t, r->key, strlen(r->key));
	else
		rc = store_txn_put(
		    tx, r->t, r->key, strlen(r->key), bigbuf, r->vlen, r->exp);
	if (rc != STORE_OK && !r->sloppy)
		return rc;
	return r->fail_with;
}

static void
req_done(void *arg, int rc)
{
	struct req *r = arg;

	__atomic_fetch_add(&r->calls, 1, __ATOMIC_RELAXED);
	r->rc = rc;
	waiter_bump();
}

static void
req_init(struct req *r, enum store_table t, const char *key, size_t vlen)
{
	memset(r, 0, sizeof(*r));
	r->t = t;
	snprintf(r->key, sizeof(r->key), "%s", key);
	r->vlen = vlen;
	r->rc = 999;
}

static int
gate_apply(struct store_txn *tx, void *arg)
{
	struct timespec ts;
	int rc = 0;

	(void)tx;
	(void)arg;
	deadline(&ts);
	pthread_mutex_lock(&gate.mu);
	gate.entered = 1;
	pthread_cond_broadcast(&gate.cv);
	while (!gate.open && rc == 0)
		rc = pthread_cond_timedwait(&gate.cv, &gate.mu, &ts);
	pthread_mutex_unlock(&gate.mu);
	return STORE_OK;
}

static void
gate_done(void *arg, int rc)
{
	(void)arg;
	(void)rc;
	waiter_bump();
}

/* gate_close - queue the gate and wait until the writer thread holds it. */
static void
gate_close(struct store_writer *w)
{
	struct timespec ts;
	int rc = 0;

	gate.entered = gate.open = 0;
	ck_assert_int_eq(
	    store_writer_submit(w, gate_apply, gate_done, NULL), STORE_OK);
	deadline(&ts);
	pthread_mutex_lock(&gate.mu);
	while (!gate.entered && rc == 0)
		rc = pthread_cond_timedwait(&gate.cv, &gate.mu, &ts);
	pthread_mutex_unlock(&gate.mu);
	ck_assert_msg(rc == 0, "writer never ran the gate");
}

static void
gate_open(void)
{
	pthread_mutex_lock(&gate.mu);
	gate.open = 1;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
}

/* Bulk load: one request inserting n records "<prefix><i>". */
struct bulk {
	enum store_table t;
	const char *prefix;
	unsigned n;
	uint64_t exp0, exp_step; /* record i expires at exp0 + i*exp_step */
	int rc;
};

static int
bulk_apply(struct store_txn *tx, void *arg)
{
	struct bulk *b = arg;
	char key[64];
	int rc;

	for (unsigned i = 0; i < b->n; i++) {
		uint64_t exp = b->exp0 ? b->exp0 + i * b->exp_step : 0;

		snprintf(key, sizeof(key), "%s%u", b->prefix, i);
		rc = store_txn_put(
		    tx, b->t, key, strlen(key), key, strlen(key), exp);
		if (rc != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

static void
bulk_done(void *arg, int rc)
{
	((struct bulk *)arg)->rc = rc;
}

static void
bulk_load(struct store *st, enum store_table t, const char *prefix, unsigned n,
    uint64_t exp0, uint64_t exp_step)
{
	struct bulk b = { t, prefix, n, exp0, exp_step, 999 };
	struct store_writer *w = store_writer_start(st, 16);

	ck_assert_int_eq(
	    store_writer_submit(w, bulk_apply, bulk_done, &b), STORE_OK);
	store_writer_stop(w);
	ck_assert_int_eq(b.rc, STORE_OK);
}

/* raw_entries - entries of a named DB, read with plain LMDB (store must
 * be closed: one env per path per process). */
static size_t
raw_entries(const char *db)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat ms;

	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 32), 0);
	ck_assert_int_eq(mdb_env_open(env, test_dir, MDB_RDONLY, 0640), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, db, 0, &dbi), 0);
	ck_assert_int_eq(mdb_stat(txn, dbi, &ms), 0);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return ms.ms_entries;
}

/* raw_ttl_add - add (be64(exp) -> key) to a TTL index with plain LMDB. */
static void
raw_ttl_add(const char *db, uint64_t exp, const char *key)
{
	unsigned char ik[8];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;

	for (int i = 7; i >= 0; i--, exp >>= 8)
		ik[i] = (unsigned char)exp;
	k.mv_data = ik;
	k.mv_size = sizeof(ik);
	v.mv_data = (void *)(uintptr_t)key;
	v.mv_size = strlen(key);
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 32), 0);
	ck_assert_int_eq(mdb_env_open(env, test_dir, 0, 0640), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, db, MDB_DUPSORT, &dbi), 0);
	ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* ---- basic operations -------------------------------------------------- */

START_TEST(test_roundtrip)
{
	struct store_stats stats = { 0 };
	struct store *st = open_store(MAP_BIG, STORE_CREATE, &stats);
	uint64_t exp = 1;
	void *v;
	size_t n;

	ck_assert_int_eq(put_s(st, STORE_JOBS, "job-1", "hello", 0), STORE_OK);
	ck_assert_int_eq(get_s(st, STORE_JOBS, "job-1", 5, "hello"), STORE_OK);
	ck_assert_int_eq(
	    store_get(st, STORE_JOBS, "job-1", 5, 0, &v, &n, &exp), STORE_OK);
	ck_assert_uint_eq(exp, 0);
	free(v);
	ck_assert_int_eq(
	    get_s(st, STORE_CACHE, "job-1", 5, NULL), STORE_NOTFOUND);
	/* overwrite, empty value */
	ck_assert_int_eq(put_s(st, STORE_JOBS, "job-1", "", 0), STORE_OK);
	ck_assert_int_eq(get_s(st, STORE_JOBS, "job-1", 5, ""), STORE_OK);
	ck_assert_int_eq(put_s(st, STORE_JOBS_READY, "r1", "x", 0), STORE_OK);
	ck_assert_uint_eq(count(st, STORE_JOBS), 1);
	ck_assert_uint_eq(count(st, STORE_JOBS_READY), 1);
	ck_assert_int_eq(store_del(st, STORE_JOBS, "job-1", 5), STORE_OK);
	ck_assert_int_eq(
	    get_s(st, STORE_JOBS, "job-1", 5, NULL), STORE_NOTFOUND);
	ck_assert_int_eq(
	    store_del(st, STORE_JOBS, "job-1", 5), STORE_NOTFOUND);
	ck_assert_uint_eq(count(st, STORE_JOBS), 0);
	ck_assert_uint_eq(stats.commits, 4);
	ck_assert_uint_eq(stats.errors, 0);
	store_close(st);
}
END_TEST

struct scan_acc {
	unsigned n;
	char keys[8][16];
};

static int
scan_cb(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct scan_acc *a = arg;

	(void)val;
	(void)vlen;
	(void)expires;
	if (a->n < 8 && klen < 16) {
		memcpy(a->keys[a->n], key, klen);
		a->keys[a->n][klen] = '\0';
	}
	a->n++;
	return 0;
}

START_TEST(test_scan_prefix)
{
	struct store *st = open_store(MAP_BIG, STORE_CREATE, NULL);
	struct scan_acc a = { 0 };

	ck_assert_int_eq(put_s(st, STORE_IDEM, "a|2", "x", 0), STORE_OK);
	ck_assert_int_eq(put_s(st, STORE_IDEM, "a|1", "x", 0), STORE_OK);
	ck_assert_int_eq(put_s(st, STORE_IDEM, "a|3", "x", 500), STORE_OK);
	ck_assert_int_eq(put_s(st, STORE_IDEM, "b|1", "x", 0), STORE_OK);
	ck_assert_int_eq(put_s(st, STORE_IDEM, "a", "x", 0), STORE_OK);
	/* a|3 expired at 500: skipped at now=1000; key order; prefix only */
	ck_assert_int_eq(store_scan(st, STORE_IDEM, "a|", 2, 1000, scan_cb,
			     &a),
	    STORE_OK);
	ck_assert_uint_eq(a.n, 2);
	ck_assert_str_eq(a.keys[0], "a|1");
	ck_assert_str_eq(a.keys[1], "a|2");
	memset(&a, 0, sizeof(a));
	ck_assert_int_eq(store_scan(st, STORE_IDEM, NULL, 0, 100, scan_cb,
			     &a),
	    STORE_OK);
	ck_assert_uint_eq(a.n, 5);
	store_close(st);
}
END_TEST

START_TEST(test_bad_args)
{
	struct store *st = open_store(MAP_BIG, STORE_CREATE, NULL);
	char key[STORE_MAX_KEY + 2];
	void *v;
	size_t n;

	memset(key, 'k', sizeof(key));
	ck_assert_int_eq(
	    store_put(st, STORE_CACHE, key, STORE_MAX_KEY, "v", 1, 100),
	    STORE_OK);
	ck_assert_int_eq(
	    store_put(st, STORE_CACHE, key, STORE_MAX_KEY + 1, "v", 1, 0),
	    STORE_EINVAL);
	ck_assert_int_eq(store_get(st, STORE_CACHE, key, STORE_MAX_KEY + 1, 0,
	                     &v, &n, NULL),
	    STORE_EINVAL);
	ck_assert_int_eq(
	    store_del(st, STORE_CACHE, key, STORE_MAX_KEY + 1), STORE_EINVAL);
	ck_assert_int_eq(
	    store_put(st, STORE_CACHE, key, 0, "v", 1, 0), STORE_EINVAL);
	ck_assert_int_eq(
	    store_put(st, (enum store_table)STORE_NTABLES, "k", 1, "v", 1, 0),
	    STORE_EINVAL);
	/* jobs_ready has no TTL index: an expiry there is a caller bug */
	ck_assert_int_eq(
	    store_put(st, STORE_JOBS_READY, "k", 1, "v", 1, 5), STORE_EINVAL);
	ck_assert_int_eq(
	    store_sweep(st, STORE_CACHE, 0, 0, 0, NULL), STORE_EINVAL);
	ck_assert_str_eq(store_table_name(STORE_IDEM), "idem");
	ck_assert_str_eq(store_rc_name(STORE_EFULL), "full");
	store_close(st);
}
END_TEST

/* ---- TTL --------------------------------------------------------------- */

START_TEST(test_ttl_get)
{
	struct store *st = open_store(MAP_BIG, STORE_CREATE, NULL);
	uint64_t exp = 0;
	void *v;
	size_t n;

	ck_assert_int_eq(put_s(st, STORE_CACHE, "a", "A", 1000), STORE_OK);
	ck_assert_int_eq(put_s(st, STORE_CACHE, "never", "N", 0), STORE_OK);
	ck_assert_int_eq(
	    store_get(st, STORE_CACHE, "a", 1, 999, &v, &n, &exp), STORE_OK);
	ck_assert_uint_eq(exp, 1000);
	free(v);
	ck_assert_int_eq(get_s(st, STORE_CACHE, "a", 0, "A"), STORE_OK);
	ck_assert_int_eq(
	    get_s(st, STORE_CACHE, "a", 1000, NULL), STORE_NOTFOUND);
	ck_assert_int_eq(
	    get_s(st, STORE_CACHE, "a", 1001, NULL), STORE_NOTFOUND);
	ck_assert_int_eq(
	    get_s(st, STORE_CACHE, "never", UINT64_MAX, "N"), STORE_OK);
	/* expired but not swept: still counted, still deletable */
	ck_assert_uint_eq(count(st, STORE_CACHE), 2);
	ck_assert_int_eq(store_del(st, STORE_CACHE, "a", 1), STORE_OK);
	ck_assert_uint_eq(count(st, STORE_CACHE), 1);
	store_close(st);
	ck_assert_uint_eq(raw_entries("cache.ttl"), 0);
}
END_TEST

START_TEST(test_reput_moves_expiry)
{
	struct store_stats stats = { 0 };
	struct store *st = open_store(MAP_BIG, STORE_CREATE, &stats);
	size_t removed = 99;

	ck_assert_int_eq(put_s(st, STORE_IDEM, "k", "v1", 1000), STORE_OK);
	ck_assert_int_eq(put_s(st, STORE_IDEM, "k", "v2", 5000), STORE_OK);
	ck_assert_int_eq(put_s(st, STORE_IDEM, "z", "z1", 1000), STORE_OK);
	ck_assert_int_eq(put_s(st, STORE_IDEM, "z", "z2", 0), STORE_OK);
	store_close(st);
	/* the old index entries are gone: only k@5000 is left */
	ck_assert_uint_eq(raw_entries("idem.ttl"), 1);
	/* a stale entry (as a crashed older writer might leave) must not
	 * make a sweep delete the record that moved on */
	raw_ttl_add("idem.ttl", 1000, "k");
	ck_assert_uint_eq(raw_entries("idem.ttl"), 2);

	st = open_store(MAP_BIG, 0, &stats);
	ck_assert_int_eq(
	    store_sweep(st, STORE_IDEM, 2000, 10, 0, &removed), STORE_OK);
	ck_assert_uint_eq(removed, 0);
	ck_assert_int_eq(get_s(st, STORE_IDEM, "k", 2000, "v2"), STORE_OK);
	ck_assert_int_eq(get_s(st, STORE_IDEM, "z", 2000, "z2"), STORE_OK);
	ck_assert_int_eq(
	    store_sweep(st, STORE_IDEM, 5000, 10, 0, &removed), STORE_OK);
	ck_assert_uint_eq(removed, 1);
	ck_assert_uint_eq(stats.swept, 1);
	ck_assert_uint_eq(count(st, STORE_IDEM), 1);
	ck_assert_int_eq(
	    store_sweep(st, STORE_IDEM, UINT64_MAX, 10, 0, &removed),
	    STORE_OK);
	ck_assert_uint_eq(removed, 0);
	ck_assert_int_eq(
	    get_s(st, STORE_IDEM, "z", UINT64_MAX, "z2"), STORE_OK);
	store_close(st);
	ck_assert_uint_eq(raw_entries("idem.ttl"), 0);
	ck_assert_uint_eq(raw_entries("idem"), 1);
}
END_TEST

START_TEST(test_sweep_batches)
{
	struct store_stats stats = { 0 };
	struct store *st = open_store(MAP_BIG, STORE_CREATE, &stats);
	size_t removed = 0;
	uint64_t commits;

	bulk_load(st, STORE_EVENTS, "old", 2500, 1000, 1); /* 1000..3499 */
	bulk_load(st, STORE_EVENTS, "new", 300, 10000, 1);
	bulk_load(st, STORE_EVENTS, "keep", 100, 0, 0);
	ck_assert_uint_eq(count(st, STORE_EVENTS), 2900);
	commits = stats.commits;
	ck_assert_int_eq(
	    store_sweep(st, STORE_EVENTS, 3499, 1000, 0, &removed), STORE_OK);
	ck_assert_uint_eq(removed, 2500);
	ck_assert_uint_eq(stats.commits - commits, 3); /* 1000+1000+500 */
	ck_assert_uint_eq(stats.swept, 2500);
	ck_assert_uint_eq(count(st, STORE_EVENTS), 400);
	ck_assert_int_eq(
	    get_s(st, STORE_EVENTS, "old2499", 0, NULL), STORE_NOTFOUND);
	ck_assert_int_eq(
	    get_s(st, STORE_EVENTS, "new0", 3499, "new0"), STORE_OK);
	ck_assert_int_eq(
	    get_s(st, STORE_EVENTS, "keep99", 3499, "keep99"), STORE_OK);
	/* boundary: expiry == now is expired */
	ck_assert_int_eq(
	    store_sweep(st, STORE_EVENTS, 10000, 1000, 0, &removed), STORE_OK);
	ck_assert_uint_eq(removed, 1);
	ck_assert_int_eq(get_s(st, STORE_EVENTS, "new1", 0, "new1"), STORE_OK);
	/* nothing to do: no transaction committed */
	commits = stats.commits;
	ck_assert_int_eq(
	    store_sweep(st, STORE_EVENTS, 10000, 1000, 0, &removed), STORE_OK);
	ck_assert_uint_eq(removed, 0);
	ck_assert_uint_eq(stats.commits, commits);
	/* a table without TTL sweeps nothing */
	ck_assert_int_eq(
	    store_sweep(st, STORE_JOBS_READY, UINT64_MAX, 10, 0, &removed),
	    STORE_OK);
	ck_assert_uint_eq(removed, 0);
	store_close(st);
}
END_TEST

START_TEST(test_sweep_max_total)
{
	struct store *st = open_store(MAP_BIG, STORE_CREATE, NULL);
	size_t removed = 0;

	bulk_load(st, STORE_ALERTS, "a", 300, 100, 1);
	ck_assert_int_eq(
	    store_sweep(st, STORE_ALERTS, 1000, 50, 120, &removed), STORE_OK);
	ck_assert_uint_eq(removed, 120);
	ck_assert_uint_eq(count(st, STORE_ALERTS), 180);
	/* the earliest went first */
	ck_assert_int_eq(
	    get_s(st, STORE_ALERTS, "a119", 0, NULL), STORE_NOTFOUND);
	ck_assert_int_eq(get_s(st, STORE_ALERTS, "a120", 0, "a120"), STORE_OK);
	ck_assert_int_eq(
	    store_sweep(st, STORE_ALERTS, 1000, 70, 0, &removed), STORE_OK);
	ck_assert_uint_eq(removed, 180);
	ck_assert_uint_eq(count(st, STORE_ALERTS), 0);
	store_close(st);
}
END_TEST

START_TEST(test_sweep_same_expiry)
{
	struct store *st = open_store(MAP_BIG, STORE_CREATE, NULL);
	size_t removed = 0;
	char k[16];

	/* groups of dups: 5 at 100, 5 at 200, 3 at 300 */
	bulk_load(st, STORE_DELIVERIES, "p", 5, 100, 0);
	bulk_load(st, STORE_DELIVERIES, "q", 5, 200, 0);
	bulk_load(st, STORE_DELIVERIES, "r", 3, 300, 0);
	/* batch 3 ends inside the first group and resumes in it */
	ck_assert_int_eq(
	    store_sweep(st, STORE_DELIVERIES, 200, 3, 0, &removed), STORE_OK);
	ck_assert_uint_eq(removed, 10);
	ck_assert_uint_eq(count(st, STORE_DELIVERIES), 3);
	for (int i = 0; i < 3; i++) {
		snprintf(k, sizeof(k), "r%d", i);
		ck_assert_int_eq(
		    get_s(st, STORE_DELIVERIES, k, 200, k), STORE_OK);
	}
	/* one batch across the last dup of the last group */
	ck_assert_int_eq(
	    store_sweep(st, STORE_DELIVERIES, 300, 1000, 0, &removed),
	    STORE_OK);
	ck_assert_uint_eq(removed, 3);
	ck_assert_uint_eq(count(st, STORE_DELIVERIES), 0);
	/* a single dup group followed by a later group */
	bulk_load(st, STORE_DELIVERIES, "s", 4, 400, 0);
	bulk_load(st, STORE_DELIVERIES, "t", 1, 500, 0);
	ck_assert_int_eq(
	    store_sweep(st, STORE_DELIVERIES, 400, 1000, 0, &removed),
	    STORE_OK);
	ck_assert_uint_eq(removed, 4);
	ck_assert_int_eq(
	    get_s(st, STORE_DELIVERIES, "t0", 400, "t0"), STORE_OK);
	store_close(st);
	ck_assert_uint_eq(raw_entries("deliveries.ttl"), 1);
}
END_TEST

/* ---- group-commit writer ----------------------------------------------- */

#define NTHREADS   8
#define PER_THREAD 500

struct submitter {
	struct store_writer *w;
	struct req *reqs;
	int fails;
};

static void *
submit_main(void *arg)
{
	struct submitter *s = arg;

	for (int i = 0; i < PER_THREAD; i++)
		if (store_writer_submit(
		        s->w, req_apply, req_done, &s->reqs[i]) != STORE_OK)
			s->fails++;
	return NULL;
}

START_TEST(test_writer_concurrent)
{
	struct store_stats stats = { 0 };
	struct store *st = open_store(MAP_BIG, STORE_CREATE, &stats);
	struct store_writer *w = store_writer_start(st, 256);
	struct req *reqs = xcalloc(NTHREADS * PER_THREAD, sizeof(*reqs));
	struct submitter sub[NTHREADS];
	pthread_t th[NTHREADS];
	char key[40];

	for (int t = 0; t < NTHREADS; t++) {
		for (int i = 0; i < PER_THREAD; i++) {
			snprintf(key, sizeof(key), "t%d-%d", t, i);
			req_init(
			    &reqs[t * PER_THREAD + i], STORE_JOBS, key, 16);
		}
		sub[t] = (struct submitter) { w, &reqs[t * PER_THREAD], 0 };
		ck_assert_int_eq(
		    pthread_create(&th[t], NULL, submit_main, &sub[t]), 0);
	}
	for (int t = 0; t < NTHREADS; t++) {
		pthread_join(th[t], NULL);
		ck_assert_int_eq(sub[t].fails, 0);
	}
	waiter_wait(NTHREADS * PER_THREAD);
	store_writer_stop(w);
	for (int i = 0; i < NTHREADS * PER_THREAD; i++) {
		ck_assert_int_eq(reqs[i].calls, 1);
		ck_assert_int_eq(reqs[i].rc, STORE_OK);
	}
	ck_assert_uint_eq(count(st, STORE_JOBS), NTHREADS * PER_THREAD);
	ck_assert_int_eq(get_s(st, STORE_JOBS, "t7-499", 0, NULL), STORE_OK);
	ck_assert_uint_eq(stats.requests, NTHREADS * PER_THREAD);
	ck_assert_uint_lt(stats.commits, stats.requests);
	ck_assert_uint_gt(stats.batch_max, 1);
	ck_assert_uint_le(stats.batch_max, 256);
	ck_assert_uint_eq(stats.errors, 0);
	free(reqs);
	store_close(st);
}
END_TEST

START_TEST(test_writer_stop)
{
	struct store *st = open_store(MAP_BIG, STORE_CREATE, NULL);
	struct store_writer *w = store_writer_start(st, 4);
	struct req r[10];
	char key[16];

	/* everything queued before stop runs, in batches of <= 4 */
	gate_close(w);
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "s%d", i);
		req_init(&r[i], STORE_JOBS, key, 8);
		ck_assert_int_eq(
		    store_writer_submit(w, req_apply, req_done, &r[i]),
		    STORE_OK);
	}
	gate_open();
	store_writer_stop(w);
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(r[i].calls, 1);
		ck_assert_int_eq(r[i].rc, STORE_OK);
	}
	ck_assert_uint_eq(count(st, STORE_JOBS), 10);
	store_close(st);
}
END_TEST

static void *
stop_main(void *arg)
{
	store_writer_stop(arg);
	return NULL;
}

START_TEST(test_writer_submit_after_stop)
{
	struct store *st = open_store(MAP_BIG, STORE_CREATE, NULL);
	struct store_writer *w = store_writer_start(st, 4);
	static struct req probe[WAIT_MS + 1];
	int rc = STORE_OK, n = 0;
	pthread_t th;

	/* the gate holds the thread, so stop() cannot free w meanwhile */
	gate_close(w);
	ck_assert_int_eq(pthread_create(&th, NULL, stop_main, w), 0);
	while (n < WAIT_MS) {
		req_init(&probe[n], STORE_JOBS, "probe", 1);
		rc = store_writer_submit(w, req_apply, req_done, &probe[n]);
		if (rc != STORE_OK)
			break;
		n++;
		usleep(1000);
	}
	ck_assert_int_eq(rc, STORE_ESTOPPED);
	gate_open();
	pthread_join(th, NULL);
	/* what was accepted before stop ran; the refused one never does */
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(probe[i].calls, 1);
	ck_assert_int_eq(probe[n].calls, 0);
	store_close(st);
}
END_TEST

START_TEST(test_writer_apply_error)
{
	struct store_stats stats = { 0 };
	struct store *st = open_store(MAP_BIG, STORE_CREATE, &stats);
	struct store_writer *w = store_writer_start(st, 64);
	struct req a, b, c, d;

	req_init(&a, STORE_IDEM, "a", 10);
	req_init(&b, STORE_IDEM, "b", 10);
	b.exp = 5000;
	b.fail_with = STORE_EINVAL; /* writes, then fails */
	req_init(&c, STORE_IDEM, "c", 10);
	req_init(&d, STORE_IDEM, "d", 10);
	d.del = 1; /* absent: NOTFOUND, rolled back alone */
	gate_close(w);
	ck_assert_int_eq(
	    store_writer_submit(w, req_apply, req_done, &a), STORE_OK);
	ck_assert_int_eq(
	    store_writer_submit(w, req_apply, req_done, &b), STORE_OK);
	ck_assert_int_eq(
	    store_writer_submit(w, req_apply, req_done, &c), STORE_OK);
	ck_assert_int_eq(
	    store_writer_submit(w, req_apply, req_done, &d), STORE_OK);
	gate_open();
	store_writer_stop(w);
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(b.calls, 1);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(d.calls, 1);
	ck_assert_int_eq(a.rc, STORE_OK);
	ck_assert_int_eq(b.rc, STORE_EINVAL);
	ck_assert_int_eq(c.rc, STORE_OK);
	ck_assert_int_eq(d.rc, STORE_NOTFOUND);
	ck_assert_uint_eq(stats.batch_last, 4);
	ck_assert_uint_eq(stats.requests, 3); /* gate + a + c */
	ck_assert_uint_eq(stats.commits, 2);
	ck_assert_int_eq(get_s(st, STORE_IDEM, "a", 0, NULL), STORE_OK);
	ck_assert_int_eq(get_s(st, STORE_IDEM, "b", 0, NULL), STORE_NOTFOUND);
	ck_assert_int_eq(get_s(st, STORE_IDEM, "c", 0, NULL), STORE_OK);
	store_close(st);
	/* b's TTL index entry was rolled back with it */
	ck_assert_uint_eq(raw_entries("idem.ttl"), 0);
}
END_TEST

/* ---- MAP_FULL ---------------------------------------------------------- */

/*
 * LMDB 0.9.24 facts the writer relies on: after MDB_MAP_FULL in a nested
 * txn, aborting the child leaves the parent usable; committing the failed
 * child instead returns MDB_BAD_TXN and poisons the parent.
 */
START_TEST(test_lmdb_nested_map_full)
{
	MDB_env *env;
	MDB_txn *p, *c;
	MDB_dbi dbi;
	MDB_val k, v;
	char key[16];
	int rc = 0, i;

	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 2), 0);
	ck_assert_int_eq(mdb_env_set_mapsize(env, MAP_TINY), 0);
	ck_assert_int_eq(mdb_env_open(env, test_dir, MDB_NOTLS, 0640), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &p), 0);
	ck_assert_int_eq(mdb_dbi_open(p, "t", MDB_CREATE, &dbi), 0);
	ck_assert_int_eq(mdb_txn_commit(p), 0);

	for (int poison = 0; poison < 2; poison++) {
		ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &p), 0);
		ck_assert_int_eq(mdb_txn_begin(env, p, 0, &c), 0);
		k.mv_data = "A";
		k.mv_size = 1;
		v.mv_data = bigbuf;
		v.mv_size = 100;
		ck_assert_int_eq(mdb_put(c, dbi, &k, &v, 0), 0);
		ck_assert_int_eq(mdb_txn_commit(c), 0);
		/* small records until a page split fails */
		ck_assert_int_eq(mdb_txn_begin(env, p, 0, &c), 0);
		for (i = 0; i < 100000; i++) {
			snprintf(key, sizeof(key), "b%06d", i);
			k.mv_data = key;
			k.mv_size = strlen(key);
			v.mv_size = 300;
			if ((rc = mdb_put(c, dbi, &k, &v, 0)) != 0)
				break;
		}
		ck_assert_int_eq(rc, MDB_MAP_FULL);
		if (poison) {
			ck_assert_int_eq(mdb_txn_commit(c), MDB_BAD_TXN);
			ck_assert_int_eq(
			    mdb_txn_begin(env, p, 0, &c), MDB_BAD_TXN);
			ck_assert_int_eq(mdb_txn_commit(p), MDB_BAD_TXN);
			break;
		}
		mdb_txn_abort(c);
		ck_assert_int_eq(mdb_txn_begin(env, p, 0, &c), 0);
		k.mv_data = "C";
		k.mv_size = 1;
		v.mv_size = 100;
		ck_assert_int_eq(mdb_put(c, dbi, &k, &v, 0), 0);
		ck_assert_int_eq(mdb_txn_commit(c), 0);
		ck_assert_int_eq(mdb_txn_commit(p), 0);
		ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &p), 0);
		ck_assert_int_eq(mdb_get(p, dbi, &k, &v), 0);
		k.mv_data = "b000000";
		k.mv_size = 7;
		ck_assert_int_eq(mdb_get(p, dbi, &k, &v), MDB_NOTFOUND);
		mdb_txn_abort(p);
	}
	mdb_env_close(env);
}
END_TEST

START_TEST(test_usage)
{
	struct store *st = open_store(MAP_TINY, STORE_CREATE, NULL);
	uint64_t used0, used1, used2, map;
	char key[32];
	int i;

	ck_assert_int_eq(store_usage(st, &used0, &map), STORE_OK);
	ck_assert_uint_eq(map, MAP_TINY);
	ck_assert_uint_gt(used0, 0);
	ck_assert_uint_lt(used0, map / 2);
	/* fill: usage grows, never past the map */
	for (i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "u%d", i);
		ck_assert_int_eq(store_put(st, STORE_CACHE, key, strlen(key),
				     bigbuf, FILL_VLEN, 0), STORE_OK);
	}
	ck_assert_int_eq(store_usage(st, &used1, &map), STORE_OK);
	ck_assert_uint_ge(used1, used0 + 8 * FILL_VLEN);
	ck_assert_uint_le(used1, map);
	/* deleted: the pages go to the free list and count no more */
	for (i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "u%d", i);
		ck_assert_int_eq(store_del(st, STORE_CACHE, key, strlen(key)),
		    STORE_OK);
	}
	ck_assert_int_eq(store_usage(st, &used2, &map), STORE_OK);
	ck_assert_uint_lt(used2, used1 - 6 * FILL_VLEN);
	store_close(st);
}
END_TEST

START_TEST(test_map_full_put)
{
	struct store_stats stats = { 0 };
	struct store *st = open_store(MAP_TINY, STORE_CREATE, &stats);
	size_t removed = 0;
	char key[32];
	int rc = STORE_OK, i, n;

	/* one value larger than the map */
	ck_assert_int_eq(
	    store_put(st, STORE_CACHE, "huge", 4, bigbuf, sizeof(bigbuf), 0),
	    STORE_EFULL);
	ck_assert_uint_eq(stats.map_full, 1);
	/* then fill it, with records that expire at 1000 */
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "c%d", i);
		rc = store_put(st, STORE_CACHE, key, strlen(key), bigbuf,
		    FILL_VLEN, 1000);
		if (rc != STORE_OK)
			break;
	}
	ck_assert_int_eq(rc, STORE_EFULL);
	ck_assert_int_ge(i, 5);
	ck_assert_uint_eq(stats.map_full, 2);
	ck_assert_uint_eq(stats.errors, 0);
	n = i;
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "c%d", i);
		ck_assert_int_eq(
		    get_s(st, STORE_CACHE, key, 0, NULL), STORE_OK);
	}
	ck_assert_uint_eq(count(st, STORE_CACHE), n);
	/* deletes make room again */
	for (i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "c%d", i);
		ck_assert_int_eq(
		    store_del(st, STORE_CACHE, key, strlen(key)), STORE_OK);
	}
	ck_assert_int_eq(
	    store_put(st, STORE_CACHE, "after", 5, bigbuf, FILL_VLEN, 0),
	    STORE_OK);
	/* full again; then a sweep is the way out */
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "d%d", i);
		rc = store_put(
		    st, STORE_CACHE, key, strlen(key), bigbuf, FILL_VLEN, 0);
		if (rc != STORE_OK)
			break;
	}
	ck_assert_int_eq(rc, STORE_EFULL);
	ck_assert_int_eq(
	    store_sweep(st, STORE_CACHE, 1000, 1000, 0, &removed), STORE_OK);
	ck_assert_uint_eq(removed, n - 3);
	ck_assert_int_eq(
	    get_s(st, STORE_CACHE, "after", 1000, NULL), STORE_OK);
	/*
	 * Pages freed by commit N are reusable from commit N+2 on (the
	 * previous snapshot stays intact): a small write first, then the
	 * space the sweep freed is there.
	 */
	ck_assert_int_eq(
	    store_put(st, STORE_CACHE, "s", 1, bigbuf, 100, 0), STORE_OK);
	ck_assert_int_eq(
	    store_put(st, STORE_CACHE, "x", 1, bigbuf, FILL_VLEN, 0),
	    STORE_OK);
	ck_assert_uint_eq(stats.errors, 0);
	store_close(st);
}
END_TEST

START_TEST(test_map_full_writer)
{
	struct store_stats stats = { 0 };
	struct store *st = open_store(MAP_TINY, STORE_CREATE, &stats);
	struct store_writer *w = store_writer_start(st, 64);
	struct req a, huge, sloppy, c, fill[NFILL], del[2], late[3];
	unsigned submitted = 0, nfull = 0, nok = 0;
	char key[32];

	/* one oversized request does not fail its batch neighbours */
	req_init(&a, STORE_CACHE, "a", 100);
	req_init(&huge, STORE_CACHE, "huge", sizeof(bigbuf));
	/* an apply that ignores MAP_FULL must not get its child committed
	 * (LMDB would poison the whole batch) */
	req_init(&sloppy, STORE_CACHE, "sloppy", sizeof(bigbuf));
	sloppy.sloppy = 1;
	req_init(&c, STORE_CACHE, "c", 100);
	gate_close(w);
	submitted++;
	ck_assert_int_eq(
	    store_writer_submit(w, req_apply, req_done, &a), STORE_OK);
	ck_assert_int_eq(
	    store_writer_submit(w, req_apply, req_done, &huge), STORE_OK);
	ck_assert_int_eq(
	    store_writer_submit(w, req_apply, req_done, &sloppy), STORE_OK);
	ck_assert_int_eq(
	    store_writer_submit(w, req_apply, req_done, &c), STORE_OK);
	submitted += 4;
	gate_open();
	waiter_wait(submitted);
	ck_assert_int_eq(a.rc, STORE_OK);
	ck_assert_int_eq(huge.rc, STORE_EFULL);
	ck_assert_int_eq(sloppy.rc, STORE_EFULL);
	ck_assert_int_eq(c.rc, STORE_OK);
	ck_assert_uint_eq(stats.batch_last, 4);
	ck_assert_uint_eq(stats.map_full, 2);
	ck_assert_uint_eq(stats.errors, 0);
	ck_assert_int_eq(get_s(st, STORE_CACHE, "a", 0, NULL), STORE_OK);
	ck_assert_int_eq(get_s(st, STORE_CACHE, "c", 0, NULL), STORE_OK);

	/*
	 * Fill the map with one batch: its children fill the map, then the
	 * batch commit itself hits MAP_FULL (the freelist and DB records need
	 * pages too), and the writer re-runs the requests one by one.
	 */
	gate_close(w);
	submitted++;
	for (int i = 0; i < NFILL; i++) {
		snprintf(key, sizeof(key), "f%d", i);
		/* large ones, then one-page ones to take the last pages */
		req_init(&fill[i], STORE_CACHE, key,
		    i < NFILL - 10 ? FILL_VLEN : 3000);
		ck_assert_int_eq(
		    store_writer_submit(w, req_apply, req_done, &fill[i]),
		    STORE_OK);
	}
	submitted += NFILL;
	gate_open();
	waiter_wait(submitted);
	for (int i = 0; i < NFILL; i++) {
		ck_assert_int_eq(fill[i].calls, 1);
		if (fill[i].rc == STORE_OK)
			nok++;
		else if (fill[i].rc == STORE_EFULL)
			nfull++;
	}
	ck_assert_uint_eq(nok + nfull, NFILL);
	ck_assert_uint_gt(nfull, 0);
	ck_assert_uint_ge(nok, 5);
	ck_assert_uint_eq(count(st, STORE_CACHE), nok + 2);
	ck_assert_uint_eq(stats.errors, 0);

	/* delete a few, then later small batches succeed again */
	for (int i = 0, j = 0; i < NFILL && j < 2; i++) {
		if (fill[i].rc != STORE_OK)
			continue;
		req_init(&del[j], STORE_CACHE, fill[i].key, 0);
		del[j].del = 1;
		ck_assert_int_eq(
		    store_writer_submit(w, req_apply, req_done, &del[j]),
		    STORE_OK);
		submitted++;
		j++;
	}
	waiter_wait(submitted);
	for (int j = 0; j < 2; j++)
		ck_assert_int_eq(del[j].rc, STORE_OK);
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "late%d", i);
		req_init(&late[i], STORE_CACHE, key, 100);
		ck_assert_int_eq(
		    store_writer_submit(w, req_apply, req_done, &late[i]),
		    STORE_OK);
	}
	submitted += 3;
	store_writer_stop(w);
	waiter_wait(submitted);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(late[i].rc, STORE_OK);
	ck_assert_int_eq(get_s(st, STORE_CACHE, "late2", 0, NULL), STORE_OK);
	store_close(st);
}
END_TEST

/* ---- open modes -------------------------------------------------------- */

START_TEST(test_reopen)
{
	struct store *st = open_store(MAP_BIG, STORE_CREATE, NULL);
	char path[400], err[256];
	MDB_env *env;
	int rc;

	ck_assert_int_eq(put_s(st, STORE_ALERTS, "x", "X", 0), STORE_OK);
	ck_assert_int_eq(put_s(st, STORE_ALERTS, "y", "Y", 777), STORE_OK);
	store_close(st);
	st = open_store(MAP_BIG, 0, NULL);
	ck_assert_int_eq(get_s(st, STORE_ALERTS, "x", 0, "X"), STORE_OK);
	ck_assert_int_eq(get_s(st, STORE_ALERTS, "y", 776, "Y"), STORE_OK);
	ck_assert_int_eq(put_s(st, STORE_JOBS, "j", "J", 0), STORE_OK);
	store_close(st);

	/* a directory that does not exist, without STORE_CREATE */
	snprintf(path, sizeof(path), "%s/nope", test_dir);
	rc = store_open(&st, path, MAP_BIG, 0, NULL, err, sizeof(err));
	ck_assert_int_eq(rc, STORE_EIO);
	ck_assert_ptr_null(st);
	ck_assert_msg(strstr(err, path) != NULL, "err: %s", err);

	/* an environment without relgate's tables */
	ck_assert_int_eq(mkdir(path, 0750), 0);
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_open(env, path, 0, 0640), 0);
	mdb_env_close(env);
	rc = store_open(&st, path, MAP_BIG, 0, NULL, err, sizeof(err));
	ck_assert_int_eq(rc, STORE_EIO);
	ck_assert_msg(
	    strstr(err, "jobs") != NULL && strstr(err, "missing") != NULL,
	    "err: %s", err);
	/* STORE_CREATE there adds them; nested new directories too */
	st = NULL;
	rc = store_open(
	    &st, path, MAP_BIG, STORE_CREATE, NULL, err, sizeof(err));
	ck_assert_int_eq(rc, STORE_OK);
	store_close(st);
	snprintf(path, sizeof(path), "%s/a/b/c", test_dir);
	rc = store_open(
	    &st, path, MAP_BIG, STORE_CREATE, NULL, err, sizeof(err));
	ck_assert_int_eq(rc, STORE_OK);
	store_close(st);
}
END_TEST

START_TEST(test_rdonly)
{
	struct store *st = open_store(MAP_BIG, STORE_CREATE, NULL);
	size_t removed;

	ck_assert_int_eq(put_s(st, STORE_JOBS, "j", "J", 0), STORE_OK);
	store_close(st);
	st = open_store(0, STORE_RDONLY, NULL);
	ck_assert_int_eq(get_s(st, STORE_JOBS, "j", 0, "J"), STORE_OK);
	ck_assert_uint_eq(count(st, STORE_JOBS), 1);
	ck_assert_int_ne(put_s(st, STORE_JOBS, "k", "K", 0), STORE_OK);
	ck_assert_int_ne(store_del(st, STORE_JOBS, "j", 1), STORE_OK);
	ck_assert_int_ne(
	    store_sweep(st, STORE_JOBS, 0, 10, 0, &removed), STORE_OK);
	store_close(st);
	st = open_store(MAP_BIG, 0, NULL);
	ck_assert_int_eq(get_s(st, STORE_JOBS, "k", 0, NULL), STORE_NOTFOUND);
	ck_assert_int_eq(get_s(st, STORE_JOBS, "j", 0, "J"), STORE_OK);
	store_close(st);
}
END_TEST

/* ---- kill safety ------------------------------------------------------- */

/* wait_child - reap pid within WAIT_MS; returns its wait status. */
static int
wait_child(pid_t pid)
{
	int status = 0;

	for (int i = 0; i < WAIT_MS; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		ck_assert_int_eq(r, 0);
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	ck_abort_msg("child %ld did not finish", (long)pid);
	return status;
}

static int
die_apply(struct store_txn *tx, void *arg)
{
	int how = *(int *)arg;

	if (store_txn_put(tx, STORE_JOBS, "ghost", 5, "boo", 3, 0) != STORE_OK)
		_exit(3);
	if (how == 0)
		raise(SIGKILL);
	_exit(0);
}

static void
die_done(void *arg, int rc)
{
	(void)arg;
	(void)rc;
	_exit(4); /* not reached: the process dies inside apply */
}

/* child_die - in a fresh process: open, commit one record, then die
 * (how 0: SIGKILL, 1: _exit) inside an uncommitted write txn. */
static void
child_die(int how)
{
	struct store *st;
	struct store_writer *w;
	char err[256];

	if (store_open(&st, test_dir, MAP_BIG, STORE_CREATE, NULL, err,
	        sizeof(err)) != STORE_OK)
		_exit(1);
	if (store_put(st, STORE_JOBS, "kept", 4, "k", 1, 0) != STORE_OK)
		_exit(2);
	w = store_writer_start(st, 8);
	if (store_writer_submit(w, die_apply, die_done, &how) != STORE_OK)
		_exit(5);
	sleep(WAIT_MS / 1000);
	_exit(6);
}

START_TEST(test_kill_uncommitted)
{
	struct store_stats stats = { 0 };
	struct store *st;
	int status;
	pid_t pid;

	for (int how = 0; how < 2; how++) {
		/* no env is open here: it must not cross fork */
		pid = fork();
		ck_assert_int_ne(pid, -1);
		if (pid == 0)
			child_die(how);
		status = wait_child(pid);
		if (how == 0)
			ck_assert_msg(
			    WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			    "status %#x", status);
		else
			ck_assert_msg(
			    WIFEXITED(status) && WEXITSTATUS(status) == 0,
			    "status %#x", status);
		st = open_store(MAP_BIG, 0, &stats);
		ck_assert_int_eq(
		    get_s(st, STORE_JOBS, "kept", 0, "k"), STORE_OK);
		ck_assert_int_eq(
		    get_s(st, STORE_JOBS, "ghost", 0, NULL), STORE_NOTFOUND);
		/* the dead writer's lock is not held: a write gets in */
		ck_assert_int_eq(
		    put_s(st, STORE_JOBS, "new", "n", 0), STORE_OK);
		ck_assert_int_eq(
		    get_s(st, STORE_JOBS, "new", 0, "n"), STORE_OK);
		ck_assert_int_eq(
		    store_del(st, STORE_JOBS, "new", 3), STORE_OK);
		store_close(st);
	}
}
END_TEST

/* hold_env - child: keep the env open (no txn) until the parent closes
 * its end of pipe in (or WAIT_MS passes). */
static void
hold_env(int ready, int in)
{
	MDB_env *env;
	char c;

	alarm(WAIT_MS / 1000);
	if (mdb_env_create(&env) != 0 ||
	    mdb_env_open(env, test_dir, MDB_NOTLS, 0640) != 0)
		_exit(1);
	if (write(ready, "r", 1) != 1)
		_exit(2);
	while (read(in, &c, 1) == -1 && errno == EINTR)
		;
	mdb_env_close(env);
	_exit(0);
}

/* read_ready - wait (bounded) for a child's one-byte "ready". */
static void
read_ready(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;

	ck_assert_msg(poll(&pfd, 1, WAIT_MS) == 1, "child never ready");
	ck_assert_int_eq(read(fd, &c, 1), 1);
}

/*
 * reading_child - child: open the env and begin a read txn, then die by
 * SIGKILL at once (ready < 0) or report on ready and wait to be killed.
 */
static void
reading_child(int ready)
{
	MDB_env *env;
	MDB_txn *txn;

	alarm(WAIT_MS / 1000);
	if (mdb_env_create(&env) != 0 ||
	    mdb_env_open(env, test_dir, MDB_NOTLS, 0640) != 0 ||
	    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
		_exit(1);
	if (ready < 0)
		raise(SIGKILL);
	if (write(ready, "r", 1) != 1)
		_exit(2);
	for (;;)
		pause();
}

START_TEST(test_stale_reader)
{
	struct store_stats stats = { 0 };
	struct store *st = open_store(MAP_BIG, STORE_CREATE, &stats);
	int status, ready[2], hold[2], cleared = -1;
	pid_t holder, pid, reader;

	ck_assert_uint_eq(stats.stale_readers, 0);
	store_close(st);
	/*
	 * The first process to open an env resets its reader table, so a
	 * stale slot survives only while another process keeps the env
	 * open: the holder plays the other roles of a running relgate.
	 * Every child is forked while this process has no env open.
	 */
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(hold), 0);
	holder = fork();
	ck_assert_int_ne(holder, -1);
	if (holder == 0) {
		close(hold[1]);
		hold_env(ready[1], hold[0]);
	}
	close(hold[0]);
	read_ready(ready[0]);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		reading_child(-1);
	status = wait_child(pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	    "status %#x", status);
	reader = fork(); /* a live reader, killed later */
	ck_assert_int_ne(reader, -1);
	if (reader == 0)
		reading_child(ready[1]);
	read_ready(ready[0]);

	st = open_store(MAP_BIG, 0, &stats);
	ck_assert_uint_eq(stats.stale_readers, 1);
	ck_assert_int_eq(put_s(st, STORE_JOBS, "j", "J", 0), STORE_OK);
	/* the periodic check, while this store stays open */
	ck_assert_int_eq(store_reader_check(st, &cleared), STORE_OK);
	ck_assert_int_eq(cleared, 0);
	ck_assert_int_eq(kill(reader, SIGKILL), 0);
	status = wait_child(reader);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	    "status %#x", status);
	ck_assert_int_eq(store_reader_check(st, &cleared), STORE_OK);
	ck_assert_int_eq(cleared, 1);
	ck_assert_uint_eq(stats.stale_readers, 2);
	store_close(st);

	close(hold[1]);
	status = wait_child(holder);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "holder status %#x", status);
	close(ready[0]);
	close(ready[1]);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	struct {
		const char *name;
		const TTest *fn;
	} cases[] = {
		{ "basic", test_roundtrip },
		{ "basic", test_bad_args },
		{ "basic", test_scan_prefix },
		{ "ttl", test_ttl_get },
		{ "ttl", test_reput_moves_expiry },
		{ "sweep", test_sweep_batches },
		{ "sweep", test_sweep_max_total },
		{ "sweep", test_sweep_same_expiry },
		{ "writer", test_writer_concurrent },
		{ "writer", test_writer_stop },
		{ "writer", test_writer_submit_after_stop },
		{ "writer", test_writer_apply_error },
		{ "mapfull", test_lmdb_nested_map_full },
		{ "mapfull", test_usage },
		{ "mapfull", test_map_full_put },
		{ "mapfull", test_map_full_writer },
		{ "open", test_reopen },
		{ "open", test_rdonly },
		{ "kill", test_kill_uncommitted },
		{ "kill", test_stale_reader },
	};
	TCase *tc = NULL;
	const char *cur = "";

	for (size_t i = 0; i < RG_NELEM(cases); i++) {
		if (strcmp(cases[i].name, cur) != 0) {
			cur = cases[i].name;
			tc = tcase_create(cur);
			tcase_add_unchecked_fixture(
			    tc, case_setup, case_teardown);
			tcase_add_checked_fixture(
			    tc, test_setup, test_teardown);
			tcase_set_timeout(tc, 120);
			suite_add_tcase(s, tc);
		}
		tcase_add_test(tc, cases[i].fn);
	}
	return s;
}

int
main(void)
{
	return tl_run(store_suite());
}
