/*
 * store - relgate's durable tables in one LMDB environment; see store.h
 * and docs/store.md.
 *
 * Owns the MDB_env, one DB handle per table and per TTL index, and the
 * group-commit writer thread.  Every value is an 8-byte big-endian expiry
 * (ms since the epoch, 0 = never) followed by the payload; the TTL index
 * "<table>.ttl" (MDB_DUPSORT) maps that expiry to the primary keys.  Writes
 * keep the two in step: a put removes the key's old index entry, a delete
 * removes it too.
 *
 * Must never: let an MDB_env cross fork(), hold the writer queue mutex
 * across I/O, commit a nested transaction that saw an LMDB error (LMDB then
 * poisons the parent), or return an unclassified LMDB error.
 */
#include "store/store.h"

#include <assert.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define STORE_HDR 8 /* big-endian expires_at_ms before each payload */

static const struct {
	const char *name;
	const char *ttl_name;
	int has_ttl;
} store_tables[STORE_NTABLES] = {
#define STORE_TABLE_INFO(id, name, ttl) { name, name ".ttl", ttl },
	STORE_TABLES(STORE_TABLE_INFO)
#undef STORE_TABLE_INFO
};

struct store {
	MDB_env *env;
	MDB_dbi dbi[STORE_NTABLES];
	MDB_dbi ttl[STORE_NTABLES]; /* valid when the table has a TTL */
	int rdonly;
	struct store_stats *stats; /* may be NULL */
};

struct store_txn {
	struct store *st;
	MDB_txn *txn;
	int err; /* first LMDB failure (mapped): the txn must abort */
};

/* One queued group-commit request. */
struct store_wreq {
	store_apply_fn apply;
	store_done_fn done;
	void *arg;
	int rc;
	struct store_wreq *next;
};

struct store_writer {
	struct store *st;
	unsigned max_batch;
	struct store_wreq **batch; /* max_batch slots, writer thread only */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct store_wreq *head; /* queue, under mu */
	struct store_wreq **tailp;
	int stopping;
	uint64_t warned_ms; /* last "re-running" warning, writer thread */
	uint32_t *turns;    /* writers of all processes waiting for the
			       LMDB write lock (shm), or NULL */
};

#define STAT_ADD(st, field, n)                                                \
	do {                                                                  \
		if ((st)->stats != NULL)                                      \
			__atomic_fetch_add(&(st)->stats->field,               \
			    (uint64_t)(n), __ATOMIC_RELAXED);                 \
	} while (0)
#define STAT_SET(st, field, v)                                                \
	do {                                                                  \
		if ((st)->stats != NULL)                                      \
			__atomic_store_n(&(st)->stats->field, (uint64_t)(v),  \
			    __ATOMIC_RELAXED);                                \
	} while (0)

static void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be64(const void *vp)
{
	const unsigned char *p = vp;
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

const char *
store_table_name(enum store_table t)
{
	if ((unsigned)t >= STORE_NTABLES)
		return "?";
	return store_tables[t].name;
}

const char *
store_rc_name(int rc)
{
	switch (rc) {
	case STORE_OK:
		return "ok";
	case STORE_NOTFOUND:
		return "notfound";
	case STORE_EFULL:
		return "full";
	case STORE_EIO:
		return "io";
	case STORE_EINVAL:
		return "inval";
	case STORE_ESTOPPED:
		return "stopped";
	default:
		return "?";
	}
}

/* map_rc - classify an LMDB result, counting and logging real errors. */
static int
map_rc(struct store *st, const char *table, const char *op, int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return STORE_OK;
	case MDB_NOTFOUND:
		return STORE_NOTFOUND;
	case MDB_MAP_FULL:
		STAT_ADD(st, map_full, 1);
		return STORE_EFULL;
	default:
		STAT_ADD(st, errors, 1);
		log_err("store: %s %s: %s", op, table, mdb_strerror(rc));
		return STORE_EIO;
	}
}

/* key_ok - table in range and key length within LMDB's DUPSORT limit. */
static int
key_ok(enum store_table t, const void *key, size_t klen)
{
	return (unsigned)t < STORE_NTABLES && key != NULL && klen > 0 &&
	    klen <= STORE_MAX_KEY;
}

/* txn_fail - remember the first LMDB failure of tx and return it. */
static int
txn_fail(struct store_txn *tx, enum store_table t, const char *op, int mrc)
{
	int rc = map_rc(tx->st, store_tables[t].name, op, mrc);

	if (rc != STORE_NOTFOUND && tx->err == STORE_OK)
		tx->err = rc;
	return rc;
}

/* set_err - format one line into the caller's err buffer, if any. */
static void __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int
store_open(struct store **out, const char *dir, uint64_t map_bytes,
    unsigned flags, struct store_stats *stats, char *err, size_t errlen)
{
	struct store *st;
	MDB_txn *txn;
	unsigned eflags = MDB_NOTLS;
	int rc, dead = 0;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (dir == NULL || *dir == '\0' ||
	    ((flags & STORE_CREATE) && (flags & STORE_RDONLY))) {
		set_err(err, errlen, "store %s: %s", dir ? dir : "(null)",
		    "bad arguments");
		return STORE_EINVAL;
	}
	if ((flags & STORE_CREATE) && mkdir_p(dir, 0750) == -1) {
		set_err(
		    err, errlen, "store %s: mkdir: %s", dir, strerror(errno));
		return STORE_EIO;
	}

	st = xcalloc(1, sizeof(*st));
	st->stats = stats;
	st->rdonly = (flags & STORE_RDONLY) != 0;
	if (st->rdonly)
		eflags |= MDB_RDONLY;
	if ((rc = mdb_env_create(&st->env)) != 0) {
		set_err(err, errlen, "store %s: mdb_env_create: %s", dir,
		    mdb_strerror(rc));
		free(st);
		return STORE_EIO;
	}
	if ((rc = mdb_env_set_maxdbs(st->env, 2 * STORE_NTABLES)) != 0 ||
	    (map_bytes != 0 &&
	        (rc = mdb_env_set_mapsize(st->env, (size_t)map_bytes)) != 0) ||
	    (rc = mdb_env_open(st->env, dir, eflags, 0640)) != 0) {
		set_err(
		    err, errlen, "store %s: open: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	if ((rc = mdb_reader_check(st->env, &dead)) != 0) {
		set_err(err, errlen, "store %s: reader check: %s", dir,
		    mdb_strerror(rc));
		goto fail;
	}
	STAT_SET(st, stale_readers, dead);
	if (dead > 0)
		log_warn(
		    "store: %s: cleared %d stale reader slot(s)", dir, dead);

	if ((rc = mdb_txn_begin(
	         st->env, NULL, st->rdonly ? MDB_RDONLY : 0, &txn)) != 0) {
		set_err(
		    err, errlen, "store %s: begin: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	for (int t = 0; t < STORE_NTABLES; t++) {
		unsigned create = (flags & STORE_CREATE) ? MDB_CREATE : 0;
		const char *name = store_tables[t].name;

		rc = mdb_dbi_open(txn, name, create, &st->dbi[t]);
		if (rc == 0 && store_tables[t].has_ttl) {
			name = store_tables[t].ttl_name;
			rc = mdb_dbi_open(
			    txn, name, create | MDB_DUPSORT, &st->ttl[t]);
		}
		if (rc == MDB_NOTFOUND) {
			set_err(err, errlen,
			    "store %s: table %s missing (not created?)", dir,
			    name);
			mdb_txn_abort(txn);
			goto fail;
		}
		if (rc != 0) {
			set_err(err, errlen, "store %s: open table %s: %s",
			    dir, name, mdb_strerror(rc));
			mdb_txn_abort(txn);
			goto fail;
		}
	}
	/* A read-only txn must commit too, or its DB handles are lost. */
	if ((rc = mdb_txn_commit(txn)) != 0) {
		set_err(err, errlen, "store %s: commit: %s", dir,
		    mdb_strerror(rc));
		goto fail;
	}
	*out = st;
	return STORE_OK;

fail:
	mdb_env_close(st->env);
	free(st);
	return STORE_EIO;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	mdb_env_close(st->env);
	free(st);
}

int
store_reader_check(struct store *st, int *cleared)
{
	int rc, dead = 0;

	if (cleared != NULL)
		*cleared = 0;
	if ((rc = mdb_reader_check(st->env, &dead)) != 0)
		return map_rc(st, "(env)", "reader check", rc);
	if (dead > 0) {
		STAT_ADD(st, stale_readers, dead);
		log_warn("store: cleared %d stale reader slot(s)", dead);
	}
	if (cleared != NULL)
		*cleared = dead;
	return STORE_OK;
}

int
store_txn_put(struct store_txn *tx, enum store_table t, const void *key,
    size_t klen, const void *val, size_t vlen, uint64_t expires_at_ms)
{
	struct store *st = tx->st;
	unsigned char ik[8];
	MDB_val k, v, i;
	uint64_t old = 0;
	int rc;

	if (!key_ok(t, key, klen) || (vlen > 0 && val == NULL) ||
	    vlen > SIZE_MAX - STORE_HDR ||
	    (expires_at_ms != 0 && !store_tables[t].has_ttl))
		return STORE_EINVAL;
	if (tx->err != STORE_OK)
		return tx->err;
	k.mv_data = (void *)(uintptr_t)key;
	k.mv_size = klen;
	i.mv_data = ik;
	i.mv_size = sizeof(ik);

	rc = mdb_get(tx->txn, st->dbi[t], &k, &v);
	if (rc == 0 && v.mv_size >= STORE_HDR)
		old = get_be64(v.mv_data);
	else if (rc != 0 && rc != MDB_NOTFOUND)
		return txn_fail(tx, t, "put", rc);
	if (old != 0 && store_tables[t].has_ttl) {
		put_be64(ik, old);
		rc = mdb_del(tx->txn, st->ttl[t], &i, &k);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return txn_fail(tx, t, "put (ttl index)", rc);
	}

	v.mv_data = NULL;
	v.mv_size = STORE_HDR + vlen;
	if ((rc = mdb_put(tx->txn, st->dbi[t], &k, &v, MDB_RESERVE)) != 0)
		return txn_fail(tx, t, "put", rc);
	put_be64(v.mv_data, expires_at_ms);
	if (vlen > 0)
		memcpy((unsigned char *)v.mv_data + STORE_HDR, val, vlen);

	if (expires_at_ms != 0) {
		put_be64(ik, expires_at_ms);
		if ((rc = mdb_put(tx->txn, st->ttl[t], &i, &k, 0)) != 0)
			return txn_fail(tx, t, "put (ttl index)", rc);
	}
	return STORE_OK;
}

int
store_txn_first(struct store_txn *tx, enum store_table t, void *key,
    size_t klen)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((unsigned)t >= STORE_NTABLES)
		return STORE_EINVAL;
	if (tx->err != STORE_OK)
		return tx->err;
	if ((rc = mdb_cursor_open(tx->txn, tx->st->dbi[t], &cur)) != 0)
		return txn_fail(tx, t, "cursor", rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	mdb_cursor_close(cur);
	if (rc != 0)
		return txn_fail(tx, t, "first", rc);
	if (k.mv_size != klen) {
		STAT_ADD(tx->st, errors, 1);
		log_err("store: %s: first key has %zu bytes, expected %zu",
		    store_tables[t].name, k.mv_size, klen);
		return STORE_EIO;
	}
	memcpy(key, k.mv_data, klen);
	return STORE_OK;
}

int
store_txn_seek(struct store_txn *tx, enum store_table t, const void *from,
    size_t flen, size_t plen, void *key, size_t klen, size_t *got)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (!key_ok(t, from, flen) || plen > flen)
		return STORE_EINVAL;
	if (tx->err != STORE_OK)
		return tx->err;
	if ((rc = mdb_cursor_open(tx->txn, tx->st->dbi[t], &cur)) != 0)
		return txn_fail(tx, t, "cursor", rc);
	k.mv_data = (void *)(uintptr_t)from;
	k.mv_size = flen;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	mdb_cursor_close(cur);
	if (rc != 0)
		return txn_fail(tx, t, "seek", rc);
	if (k.mv_size < plen || memcmp(k.mv_data, from, plen) != 0)
		return STORE_NOTFOUND;
	if (k.mv_size > klen) {
		STAT_ADD(tx->st, errors, 1);
		log_err("store: %s: key of %zu bytes, at most %zu expected",
		    store_tables[t].name, k.mv_size, klen);
		return STORE_EIO;
	}
	memcpy(key, k.mv_data, k.mv_size);
	*got = k.mv_size;
	return STORE_OK;
}

int
store_txn_get(struct store_txn *tx, enum store_table t, const void *key,
    size_t klen, uint64_t now, const void **val, size_t *vlen,
    uint64_t *expires)
{
	MDB_val k, v;
	uint64_t exp;
	int rc;

	if (!key_ok(t, key, klen))
		return STORE_EINVAL;
	if (tx->err != STORE_OK)
		return tx->err;
	k.mv_data = (void *)(uintptr_t)key;
	k.mv_size = klen;
	if ((rc = mdb_get(tx->txn, tx->st->dbi[t], &k, &v)) != 0)
		return txn_fail(tx, t, "get", rc);
	if (v.mv_size < STORE_HDR) {
		STAT_ADD(tx->st, errors, 1);
		log_err("store: get %s: record shorter than its header",
		    store_tables[t].name);
		return STORE_EIO;
	}
	exp = get_be64(v.mv_data);
	if (exp != 0 && exp <= now)
		return STORE_NOTFOUND;
	*val = (const unsigned char *)v.mv_data + STORE_HDR;
	*vlen = v.mv_size - STORE_HDR;
	if (expires != NULL)
		*expires = exp;
	return STORE_OK;
}

int
store_txn_del(
    struct store_txn *tx, enum store_table t, const void *key, size_t klen)
{
	struct store *st = tx->st;
	unsigned char ik[8];
	MDB_val k, v, i;
	uint64_t exp = 0;
	int rc;

	if (!key_ok(t, key, klen))
		return STORE_EINVAL;
	if (tx->err != STORE_OK)
		return tx->err;
	k.mv_data = (void *)(uintptr_t)key;
	k.mv_size = klen;
	if ((rc = mdb_get(tx->txn, st->dbi[t], &k, &v)) != 0)
		return txn_fail(tx, t, "del", rc);
	if (v.mv_size >= STORE_HDR)
		exp = get_be64(v.mv_data);
	if (exp != 0 && store_tables[t].has_ttl) {
		put_be64(ik, exp);
		i.mv_data = ik;
		i.mv_size = sizeof(ik);
		rc = mdb_del(tx->txn, st->ttl[t], &i, &k);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return txn_fail(tx, t, "del (ttl index)", rc);
	}
	if ((rc = mdb_del(tx->txn, st->dbi[t], &k, NULL)) != 0)
		return txn_fail(tx, t, "del", rc);
	return STORE_OK;
}

/* wbegin - start a single-operation write transaction on st. */
static int
wbegin(struct store *st, enum store_table t, struct store_txn *tx)
{
	int rc;

	tx->st = st;
	tx->err = STORE_OK;
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &tx->txn)) != 0)
		return map_rc(st, store_tables[t].name, "begin", rc);
	return STORE_OK;
}

/* wend - commit tx if rc is STORE_OK, else abort it; returns the result. */
static int
wend(struct store_txn *tx, enum store_table t, int rc)
{
	int mrc;

	if (rc != STORE_OK) {
		mdb_txn_abort(tx->txn);
		return rc;
	}
	if ((mrc = mdb_txn_commit(tx->txn)) != 0)
		return map_rc(tx->st, store_tables[t].name, "commit", mrc);
	STAT_ADD(tx->st, commits, 1);
	return STORE_OK;
}

int
store_run(struct store *st, store_apply_fn apply, void *arg)
{
	struct store_txn tx;
	int rc, mrc;

	if (st->rdonly)
		return STORE_EINVAL;
	tx.st = st;
	tx.err = STORE_OK;
	if ((mrc = mdb_txn_begin(st->env, NULL, 0, &tx.txn)) != 0)
		return map_rc(st, "store", "begin", mrc);
	rc = apply(&tx, arg);
	if (rc == STORE_OK && tx.err != STORE_OK)
		rc = tx.err;
	if (rc != STORE_OK) {
		mdb_txn_abort(tx.txn);
		return rc;
	}
	if ((mrc = mdb_txn_commit(tx.txn)) != 0)
		return map_rc(st, "store", "commit", mrc);
	STAT_ADD(st, commits, 1);
	return STORE_OK;
}

int
store_put(struct store *st, enum store_table t, const void *key, size_t klen,
    const void *val, size_t vlen, uint64_t expires_at_ms)
{
	struct store_txn tx;
	int rc;

	if (st->rdonly || !key_ok(t, key, klen))
		return STORE_EINVAL;
	if ((rc = wbegin(st, t, &tx)) != STORE_OK)
		return rc;
	rc = store_txn_put(&tx, t, key, klen, val, vlen, expires_at_ms);
	return wend(&tx, t, rc);
}

int
store_del(struct store *st, enum store_table t, const void *key, size_t klen)
{
	struct store_txn tx;
	int rc;

	if (st->rdonly || !key_ok(t, key, klen))
		return STORE_EINVAL;
	if ((rc = wbegin(st, t, &tx)) != STORE_OK)
		return rc;
	rc = store_txn_del(&tx, t, key, klen);
	return wend(&tx, t, rc);
}

int
store_get(struct store *st, enum store_table t, const void *key, size_t klen,
    uint64_t now, void **val, size_t *vlen, uint64_t *expires)
{
	struct store_txn tx = { .st = st, .err = STORE_OK };
	const void *p;
	size_t n;
	int rc;

	if (!key_ok(t, key, klen))
		return STORE_EINVAL;
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &tx.txn)) != 0)
		return map_rc(st, store_tables[t].name, "begin (read)", rc);
	rc = store_txn_get(&tx, t, key, klen, now, &p, &n, expires);
	if (rc == STORE_OK) {
		*val = xmalloc(n);
		if (n > 0)
			memcpy(*val, p, n);
		*vlen = n;
	}
	mdb_txn_abort(tx.txn);
	return rc;
}

int
store_scan(struct store *st, enum store_table t, const void *prefix,
    size_t plen, uint64_t now, store_scan_fn fn, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, op;

	if ((unsigned)t >= STORE_NTABLES)
		return STORE_EINVAL;
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return map_rc(st, store_tables[t].name, "begin (scan)", rc);
	if ((rc = mdb_cursor_open(txn, st->dbi[t], &cur)) != 0) {
		mdb_txn_abort(txn);
		return map_rc(st, store_tables[t].name, "cursor (scan)", rc);
	}
	k.mv_data = (void *)(uintptr_t)prefix;
	k.mv_size = plen;
	op = plen > 0 ? MDB_SET_RANGE : MDB_FIRST;
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		const unsigned char *p = v.mv_data;
		uint64_t exp = 0;

		op = MDB_NEXT;
		if (plen > 0 &&
		    (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
			break;
		if (v.mv_size < STORE_HDR)
			continue;
		for (int i = 0; i < STORE_HDR; i++)
			exp = exp << 8 | p[i];
		if (exp != 0 && exp <= now)
			continue;
		if (fn(arg, k.mv_data, k.mv_size, p + STORE_HDR,
			v.mv_size - STORE_HDR, exp) != 0)
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return map_rc(st, store_tables[t].name, "scan", rc);
	return STORE_OK;
}

int
store_count(struct store *st, enum store_table t, uint64_t *n)
{
	MDB_txn *txn;
	MDB_stat ms;
	int rc;

	if ((unsigned)t >= STORE_NTABLES)
		return STORE_EINVAL;
	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return map_rc(st, store_tables[t].name, "begin (read)", rc);
	rc = mdb_stat(txn, st->dbi[t], &ms);
	mdb_txn_abort(txn);
	if (rc != 0)
		return map_rc(st, store_tables[t].name, "stat", rc);
	*n = ms.ms_entries;
	return STORE_OK;
}

int
store_usage(struct store *st, uint64_t *used, uint64_t *map)
{
	MDB_envinfo info;
	MDB_stat ms;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t free_pages = 0;
	int rc;

	if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
		return map_rc(st, "(env)", "begin (usage)", rc);
	if ((rc = mdb_env_info(st->env, &info)) != 0 ||
	    (rc = mdb_env_stat(st->env, &ms)) != 0) {
		mdb_txn_abort(txn);
		return map_rc(st, "(env)", "info", rc);
	}
	/* the free list (DB 0): each record a page list, its count first */
	if ((rc = mdb_cursor_open(txn, 0, &cur)) == 0) {
		while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0)
			if (v.mv_size >= sizeof(size_t)) {
				size_t n;

				memcpy(&n, v.mv_data, sizeof(n));
				free_pages += n;
			}
		mdb_cursor_close(cur);
		rc = rc == MDB_NOTFOUND ? 0 : rc;
	}
	mdb_txn_abort(txn);
	if (rc != 0)
		return map_rc(st, "(env)", "free list", rc);
	*map = (uint64_t)info.me_mapsize;
	*used = ((uint64_t)info.me_last_pgno + 1 > free_pages ?
		    (uint64_t)info.me_last_pgno + 1 - free_pages : 0) *
	    ms.ms_psize;
	return STORE_OK;
}

/*
 * del_prefix_batch - one transaction: remove up to limit records of t
 * whose key starts with prefix; *n gets how many, *more whether the
 * limit stopped it.  The keys are gathered first, then deleted: no
 * cursor is walked while the tree changes under it.
 */
static int
del_prefix_batch(struct store *st, enum store_table t, const void *prefix,
    size_t plen, size_t limit, size_t *n, int *more)
{
	const char *name = store_tables[t].name;
	struct store_txn tx;
	MDB_cursor *cur;
	MDB_val k, v;
	char *keys = xmalloc(limit * STORE_MAX_KEY);
	size_t *lens = xmalloc(limit * sizeof(*lens)), got = 0;
	int rc;

	*n = 0;
	*more = 0;
	if ((rc = wbegin(st, t, &tx)) != STORE_OK)
		goto out;
	if ((rc = mdb_cursor_open(tx.txn, st->dbi[t], &cur)) != 0) {
		mdb_txn_abort(tx.txn);
		rc = map_rc(st, name, "cursor (delete)", rc);
		goto out;
	}
	k.mv_data = (void *)(uintptr_t)prefix;
	k.mv_size = plen;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size >= plen &&
	    memcmp(k.mv_data, prefix, plen) == 0) {
		if (got == limit) {
			*more = 1;
			break;
		}
		if (k.mv_size > STORE_MAX_KEY) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(keys + got * STORE_MAX_KEY, k.mv_data, k.mv_size);
		lens[got++] = k.mv_size;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND && !*more) {
		mdb_txn_abort(tx.txn);
		rc = map_rc(st, name, "delete", rc);
		goto out;
	}
	rc = STORE_OK;
	for (size_t i = 0; i < got && rc == STORE_OK; i++)
		rc = store_txn_del(&tx, t, keys + i * STORE_MAX_KEY, lens[i]);
	if (got == 0) {
		mdb_txn_abort(tx.txn);
		goto out;
	}
	if ((rc = wend(&tx, t, rc)) == STORE_OK)
		*n = got;
out:
	free(keys);
	free(lens);
	return rc;
}

int
store_del_prefix(struct store *st, enum store_table t, const void *prefix,
    size_t plen, size_t batch, size_t *removed)
{
	size_t n, total = 0;
	int rc, more = 1;

	if (removed != NULL)
		*removed = 0;
	if ((unsigned)t >= STORE_NTABLES || plen == 0 ||
	    plen > STORE_MAX_KEY || batch == 0 || st->rdonly)
		return STORE_EINVAL;
	do {
		rc = del_prefix_batch(st, t, prefix, plen, batch, &n, &more);
		total += n;
	} while (rc == STORE_OK && more);
	if (removed != NULL)
		*removed = total;
	return rc;
}

/*
 * sweep_batch - one transaction: remove up to limit index entries that
 * expired at or before now, and their primary records when the record
 * still carries that expiry.  *more is set when the limit stopped it.
 */
static int
sweep_batch(struct store *st, enum store_table t, uint64_t now, size_t limit,
    size_t *visited, size_t *removed, int *more)
{
	const char *name = store_tables[t].name;
	unsigned char kbuf[512], ibuf[8];
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val ik, pk, k, v;
	size_t n = 0, rem = 0;
	int rc, mrc;

	*more = 0;
	if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
		return map_rc(st, name, "sweep begin", rc);
	if ((rc = mdb_cursor_open(txn, st->ttl[t], &cur)) != 0) {
		mdb_txn_abort(txn);
		return map_rc(st, name, "sweep cursor", rc);
	}
	rc = mdb_cursor_get(cur, &ik, &pk, MDB_FIRST);
	while (rc == 0) {
		uint64_t exp;

		if (ik.mv_size != 8 || pk.mv_size == 0 ||
		    pk.mv_size > sizeof(kbuf)) {
			rc = MDB_CORRUPTED;
			break;
		}
		exp = get_be64(ik.mv_data);
		if (exp > now)
			break;
		if (n == limit) {
			*more = 1;
			break;
		}
		memcpy(kbuf, pk.mv_data, pk.mv_size);
		k.mv_data = kbuf;
		k.mv_size = pk.mv_size;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		n++;
		/* A re-put may have moved the record to another expiry. */
		rc = mdb_get(txn, st->dbi[t], &k, &v);
		if (rc == 0 && v.mv_size >= STORE_HDR &&
		    get_be64(v.mv_data) == exp) {
			if ((rc = mdb_del(txn, st->dbi[t], &k, NULL)) != 0)
				break;
			rem++;
		} else if (rc != 0 && rc != MDB_NOTFOUND) {
			break;
		}
		/*
		 * After deleting the last dup of a key the cursor has no
		 * valid position (GET_CURRENT gives EINVAL): re-seek.  All
		 * entries before (exp, next dup) are gone, so SET_RANGE on
		 * exp lands on the next one.
		 */
		put_be64(ibuf, exp);
		ik.mv_data = ibuf;
		ik.mv_size = sizeof(ibuf);
		rc = mdb_cursor_get(cur, &ik, &pk, MDB_SET_RANGE);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return map_rc(st, name, "sweep", rc);
	}
	if (n == 0) {
		mdb_txn_abort(txn);
		return STORE_OK;
	}
	if ((mrc = mdb_txn_commit(txn)) != 0)
		return map_rc(st, name, "sweep commit", mrc);
	STAT_ADD(st, commits, 1);
	STAT_ADD(st, swept, rem);
	*visited += n;
	*removed += rem;
	return STORE_OK;
}

int
store_sweep(struct store *st, enum store_table t, uint64_t now, size_t batch,
    size_t max_total, size_t *removed)
{
	size_t visited = 0, rem = 0;
	int rc = STORE_OK, more = 1;

	if (removed != NULL)
		*removed = 0;
	if ((unsigned)t >= STORE_NTABLES || batch == 0 || st->rdonly)
		return STORE_EINVAL;
	if (!store_tables[t].has_ttl)
		return STORE_OK;
	while (more) {
		size_t limit = batch;

		if (max_total != 0) {
			if (visited >= max_total)
				break;
			if (max_total - visited < limit)
				limit = max_total - visited;
		}
		rc = sweep_batch(st, t, now, limit, &visited, &rem, &more);
		if (rc != STORE_OK)
			break;
	}
	if (removed != NULL)
		*removed = rem;
	return rc;
}

/* stat_max - raise a shared maximum with a relaxed CAS loop. */
static void
stat_max(uint64_t *p, uint64_t v)
{
	uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (cur < v &&
	    !__atomic_compare_exchange_n(
	        p, &cur, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/*
 * writer_one - run one request in a nested transaction of parent.  Sets
 * *poisoned when LMDB refused the child itself (begin or commit), which
 * leaves the parent unusable.
 */
static int
writer_one(
    struct store *st, MDB_txn *parent, struct store_wreq *r, int *poisoned)
{
	struct store_txn tx = { .st = st, .err = STORE_OK };
	int rc;

	if ((rc = mdb_txn_begin(st->env, parent, 0, &tx.txn)) != 0) {
		*poisoned = 1;
		return map_rc(st, "(batch)", "begin nested", rc);
	}
	rc = r->apply(&tx, r->arg);
	if (rc == STORE_OK && tx.err != STORE_OK)
		rc = tx.err; /* apply ignored a failure: never commit it */
	if (rc != STORE_OK) {
		mdb_txn_abort(tx.txn);
		return rc;
	}
	if ((rc = mdb_txn_commit(tx.txn)) != 0) {
		*poisoned = 1;
		return map_rc(st, "(batch)", "commit nested", rc);
	}
	return STORE_OK;
}

/* retryable - whether a failed request may be re-run alone: not when its
 * own apply gave a verdict (NOTFOUND, EINVAL, a caller's code). */
static int
retryable(int rc)
{
	return rc == STORE_OK || rc == STORE_EFULL || rc == STORE_EIO;
}

/*
 * writer_batch - run n requests in one write transaction, each in its own
 * nested transaction, commit, and tell every caller.  When the batch
 * cannot commit as a whole (LMDB poisoned the parent, or the map filled
 * at commit) the requests are re-run one per transaction, so that those
 * that fit still commit.
 */
static void
writer_batch(struct store_writer *w, struct store_wreq **reqs, unsigned n,
    int topup)
{
	struct store *st = w->st;
	MDB_txn *parent;
	unsigned i, nok = 0;
	int rc, poisoned = 0;

	if (w->turns != NULL)
		__atomic_add_fetch(w->turns, 1, __ATOMIC_RELAXED);
	rc = mdb_txn_begin(st->env, NULL, 0, &parent);
	if (w->turns != NULL)
		__atomic_sub_fetch(w->turns, 1, __ATOMIC_RELAXED);
	if (topup && rc == 0) {
		/* what arrived while we waited for the lock rides along */
		pthread_mutex_lock(&w->mu);
		while (w->head != NULL && n < w->max_batch) {
			reqs[n++] = w->head;
			w->head = w->head->next;
		}
		if (w->head == NULL)
			w->tailp = &w->head;
		pthread_mutex_unlock(&w->mu);
	}
	for (i = 0; i < n; i++)
		reqs[i]->rc = STORE_OK;
	if (rc != 0) {
		rc = map_rc(st, "(batch)", "begin", rc);
		goto failed;
	}
	for (i = 0; i < n && !poisoned; i++)
		reqs[i]->rc = writer_one(st, parent, reqs[i], &poisoned);
	if (poisoned) {
		mdb_txn_abort(parent);
		rc = STORE_EIO;
	} else if ((rc = mdb_txn_commit(parent)) != 0) {
		rc = map_rc(st, "(batch)", "commit", rc);
	} else {
		for (i = 0; i < n; i++)
			if (reqs[i]->rc == STORE_OK)
				nok++;
		STAT_ADD(st, commits, 1);
		STAT_ADD(st, requests, nok);
		STAT_SET(st, batch_last, n);
		if (st->stats != NULL)
			stat_max(&st->stats->batch_max, n);
		goto tell;
	}
	if (n > 1 && (poisoned || rc == STORE_EFULL)) {
		if (mono_ms() - w->warned_ms >= 10000) {
			w->warned_ms = mono_ms();
			log_warn("store: batch of %u %s, re-running one by "
			         "one",
			    n, poisoned ? "aborted" : "does not fit");
		}
		for (i = 0; i < n; i++) {
			if (retryable(reqs[i]->rc)) {
				writer_batch(w, &reqs[i], 1, 0);
			} else {
				reqs[i]->done(reqs[i]->arg, reqs[i]->rc);
				free(reqs[i]);
			}
		}
		return;
	}
failed:
	for (i = 0; i < n; i++)
		if (reqs[i]->rc == STORE_OK)
			reqs[i]->rc = rc;
tell:
	for (i = 0; i < n; i++) {
		reqs[i]->done(reqs[i]->arg, reqs[i]->rc);
		free(reqs[i]);
	}
}

/* writer_main - the writer thread: take what is queued, run it, repeat. */
static void *
writer_main(void *vw)
{
	struct store_writer *w = vw;

	for (;;) {
		unsigned n = 0;

		pthread_mutex_lock(&w->mu);
		while (w->head == NULL && !w->stopping)
			pthread_cond_wait(&w->cv, &w->mu);
		while (w->head != NULL && n < w->max_batch) {
			w->batch[n++] = w->head;
			w->head = w->head->next;
		}
		if (w->head == NULL)
			w->tailp = &w->head;
		pthread_mutex_unlock(&w->mu);
		if (n == 0)
			break; /* stopping and drained */
		writer_batch(w, w->batch, n, 1);
		/*
		 * LMDB's write lock is not fair: a writer that commits and
		 * begins again at once can keep another process's writer
		 * waiting for a long time.  When one waits, let it go first
		 * (bounded: a waiter that died leaves the count up).
		 */
		for (int k = 0; w->turns != NULL && k < 40 &&
		     __atomic_load_n(w->turns, __ATOMIC_RELAXED) > 0;
		     k++)
			usleep(50);
	}
	return NULL;
}

void
store_writer_share_turns(struct store_writer *w, uint32_t *waiting)
{
	w->turns = waiting;
}

struct store_writer *
store_writer_start(struct store *st, unsigned max_batch)
{
	struct store_writer *w;
	int rc;

	assert(max_batch >= 1);
	assert(!st->rdonly);
	w = xcalloc(1, sizeof(*w));
	w->st = st;
	w->max_batch = max_batch;
	w->batch = xcalloc(max_batch, sizeof(*w->batch));
	w->tailp = &w->head;
	w->warned_ms = mono_ms() - 10000;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if ((rc = pthread_create(&w->thread, NULL, writer_main, w)) != 0) {
		errno = rc;
		fatal("store: writer thread");
	}
	return w;
}

int
store_writer_submit(struct store_writer *w, store_apply_fn apply,
    store_done_fn done, void *arg)
{
	struct store_wreq *r = xmalloc(sizeof(*r));

	r->apply = apply;
	r->done = done;
	r->arg = arg;
	r->rc = STORE_OK;
	r->next = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->stopping) {
		pthread_mutex_unlock(&w->mu);
		free(r);
		return STORE_ESTOPPED;
	}
	*w->tailp = r;
	w->tailp = &r->next;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return STORE_OK;
}

void
store_writer_stop(struct store_writer *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w->batch);
	free(w);
}
