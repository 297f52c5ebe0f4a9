/*
 * store - relgate's durable tables in one LMDB environment (state_dir).
 *
 * Tables (named DBs): jobs, jobs_ready (index, no TTL), deliveries,
 * deliveries_ready (index, no TTL), cache, idem, events, alerts; every table but jobs_ready has a TTL index
 * "<table>.ttl" (MDB_DUPSORT, key = 8-byte big-endian expiry in ms, dups =
 * primary keys).  Each stored value carries its own expiry in an 8-byte
 * big-endian prefix, so a get never returns an expired record even before
 * the sweeper removed it.  Keys are at most STORE_MAX_KEY bytes (LMDB's
 * DUPSORT limit).
 *
 * Writes: single-op helpers (one transaction each, one fsync each) for
 * tools and tests, and a group-commit writer (one thread, many callers, one
 * transaction per batch, each caller told after the commit) for hot paths.
 * MDB_MAP_FULL is reported as STORE_EFULL and counted, never a crash.
 *
 * An MDB_env must not cross fork(): open after fork, close before it.
 * Owns: the MDB_env, its DB handles, the writer thread.
 */
#ifndef RG_STORE_H
#define RG_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_MAX_KEY 500

/* STORE_TABLE(ID, name, has_ttl) */
#define STORE_TABLES(T)                                                   \
	T(JOBS, "jobs", 1)                                                \
	T(JOBS_READY, "jobs_ready", 0)                                    \
	T(DELIVERIES, "deliveries", 1)                                    \
	T(DELIVERIES_READY, "deliveries_ready", 0)                        \
	T(CACHE, "cache", 1)                                              \
	T(IDEM, "idem", 1)                                                \
	T(EVENTS, "events", 1)                                            \
	T(ALERTS, "alerts", 1)

enum store_table {
#define STORE_TABLE_ENUM(id, name, ttl) STORE_##id,
	STORE_TABLES(STORE_TABLE_ENUM)
#undef STORE_TABLE_ENUM
	STORE_NTABLES
};

enum store_rc {
	STORE_OK = 0,
	STORE_NOTFOUND = 1, /* absent or expired */
	STORE_EFULL = -1,   /* MDB_MAP_FULL: the map is full */
	STORE_EIO = -2,     /* any other LMDB or system error */
	STORE_EINVAL = -3,  /* bad argument (key too long, bad table) */
	STORE_ESTOPPED = -4 /* writer is stopping; request not run */
};

/* Counters; the caller owns the storage (in shm); the store writes them
 * with relaxed atomics. */
#define STORE_STATS(X)                                                    \
	X(commits, "write transactions committed")                        \
	X(requests, "group-commit requests committed")                    \
	X(batch_last, "gauge: requests in the last group commit")         \
	X(batch_max, "gauge: largest group commit so far")                \
	X(map_full, "writes refused: LMDB map full")                      \
	X(errors, "other write errors")                                   \
	X(swept, "expired records removed by sweeps")                     \
	X(stale_readers, "stale reader slots cleared at open")

struct store_stats {
#define STORE_STAT_FIELD(name, doc) uint64_t name;
	STORE_STATS(STORE_STAT_FIELD)
#undef STORE_STAT_FIELD
};

struct store;
struct store_txn;
struct store_writer;

enum store_open_flags {
	STORE_CREATE = 1u << 0, /* create the directory and every table */
	STORE_RDONLY = 1u << 1, /* read-only (relstat, relctl) */
};

/*
 * store_open - open the environment in dir with the given map size.
 * Runs mdb_reader_check.  stats may be NULL.  On failure returns
 * STORE_EIO/STORE_EINVAL and writes one line to err.
 */
int store_open(struct store **out, const char *dir, uint64_t map_bytes,
    unsigned flags, struct store_stats *stats, char *err, size_t errlen);
void store_close(struct store *st);
/*
 * store_reader_check - clear the reader slots of dead processes (LMDB
 * keeps them until someone checks).  Run it periodically while other
 * processes keep the env open; *cleared (may be NULL) gets the count,
 * which is also added to stats->stale_readers.  STORE_OK or STORE_EIO.
 */
int store_reader_check(struct store *st, int *cleared);

const char *store_table_name(enum store_table t);
const char *store_rc_name(int rc);

/* Single-operation helpers: each runs and commits its own transaction. */
int store_put(struct store *st, enum store_table t, const void *key,
    size_t klen, const void *val, size_t vlen, uint64_t expires_at_ms);
/* store_get - copy of the value into *val (free() it); expired records
 * (expires_at_ms != 0 && <= now_ms) are STORE_NOTFOUND.  expires may be
 * NULL. */
int store_get(struct store *st, enum store_table t, const void *key,
    size_t klen, uint64_t now_ms, void **val, size_t *vlen,
    uint64_t *expires);
int store_del(struct store *st, enum store_table t, const void *key,
    size_t klen);
/*
 * store_sweep - remove records of t that expired at or before now_ms, in
 * transactions of at most batch records, stopping after max_total (0 = no
 * limit).  *removed gets the count.
 */
int store_sweep(struct store *st, enum store_table t, uint64_t now_ms,
    size_t batch, size_t max_total, size_t *removed);
/*
 * store_scan - call fn for every live record of t whose key starts with
 * prefix (plen 0 = all), in key order, inside one read transaction; fn
 * returns non-zero to stop.  The pointers are valid only during the call.
 */
typedef int (*store_scan_fn)(void *arg, const void *key, size_t klen,
    const void *val, size_t vlen, uint64_t expires);
int store_scan(struct store *st, enum store_table t, const void *prefix,
    size_t plen, uint64_t now_ms, store_scan_fn fn, void *arg);
/*
 * store_del_prefix - remove every record of t whose key starts with
 * prefix (plen >= 1), expired or not, with its TTL index entry, in
 * transactions of at most batch records.  *removed gets the count (also
 * of the batches committed before an error).
 */
int store_del_prefix(struct store *st, enum store_table t, const void *prefix,
    size_t plen, size_t batch, size_t *removed);
/* store_count - number of records in t (expired ones included). */
int store_count(struct store *st, enum store_table t, uint64_t *n);
/* store_usage - the map's size and the bytes of it in use: the pages up
 * to the last one written, less those on LMDB's free list (which writes
 * reuse before the map grows).  Reads only. */
int store_usage(struct store *st, uint64_t *used_bytes, uint64_t *map_bytes);

/* Operations inside a transaction (group-commit apply functions). */
int store_txn_put(struct store_txn *txn, enum store_table t, const void *key,
    size_t klen, const void *val, size_t vlen, uint64_t expires_at_ms);
int store_txn_get(struct store_txn *txn, enum store_table t, const void *key,
    size_t klen, uint64_t now_ms, const void **val, size_t *vlen,
    uint64_t *expires);
int store_txn_del(struct store_txn *txn, enum store_table t, const void *key,
    size_t klen);
/* store_txn_first - copy the smallest key of t (which must be klen bytes
 * long) into key; STORE_NOTFOUND when t is empty.  For index tables. */
int store_txn_first(struct store_txn *txn, enum store_table t, void *key,
    size_t klen);

/*
 * store_txn_seek - the smallest key of t that is >= from (flen bytes) and
 * starts with from's first plen bytes, copied into key (at most klen
 * bytes; *got its length); STORE_NOTFOUND when there is none.  To step
 * past a key of a table whose keys all have one length, seek from that
 * key with a 0 byte appended.  For index tables.
 */
int store_txn_seek(struct store_txn *txn, enum store_table t, const void *from,
    size_t flen, size_t plen, void *key, size_t klen, size_t *got);

/*
 * Group commit.  apply runs on the writer thread inside a nested
 * transaction of the batch: returning non-STORE_OK rolls back only that
 * request.  done(arg, rc) runs on the writer thread after the batch
 * committed (rc = apply's result) or failed (rc = STORE_EFULL/STORE_EIO
 * for every request of the batch that was not already failed).  done must
 * not block: wake your event loop and return.  apply may run twice (when a
 * batch does not fit, each request is re-run alone), so it must act only
 * through txn and have no side effect it cannot repeat.
 */
typedef int (*store_apply_fn)(struct store_txn *txn, void *arg);
typedef void (*store_done_fn)(void *arg, int rc);

/* store_run - apply in a write transaction of its own, committed when it
 * returns STORE_OK (for maintenance threads that have no writer). */
int store_run(struct store *st, store_apply_fn apply, void *arg);

/* store_writer_start - max_batch requests per transaction (>= 1). */
struct store_writer *store_writer_start(struct store *st, unsigned max_batch);
/* store_writer_submit - queue a request; never blocks on I/O.  Returns
 * STORE_OK, or STORE_ESTOPPED (done is not called). */
int store_writer_submit(struct store_writer *w, store_apply_fn apply,
    store_done_fn done, void *arg);
/*
 * store_writer_share_turns - waiting points at a counter shared by the
 * writers of every process on this environment (in shm): a writer counts
 * itself while it waits for LMDB's write lock, and after a commit yields
 * the lock while another process's writer waits (LMDB's lock is not fair;
 * without this one process can starve another's commits).  Call before
 * the first submit.
 */
void store_writer_share_turns(struct store_writer *w, uint32_t *waiting);
/* store_writer_stop - run what is queued, then join the thread. */
void store_writer_stop(struct store_writer *w);

#endif
