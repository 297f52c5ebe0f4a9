/*
 * ratelimit - fixed-window rate limits per (bucket, key) in the shm area
 * "ratelimit", shared by every ingress process (SPEC section 4).
 *
 * Semantics (SPEC section 4): the first request of a window starts it (the
 * window ends window_ms later); a request over the limit is refused with
 * the time to the window's end and does not increment; an expired window
 * is started again, and an expired slot may be taken by another key.
 *
 * Owns: the ratelimit area (table, per-bucket outcome counters, table
 * statistics, the names relstat prints).  Never blocks, never takes a
 * lock that a dying process could keep: every state change is one CAS on
 * a 64-bit word (see ratelimit.c).  When the table cannot take a key
 * (no free or expired slot within RL_PROBE_MAX, or RL_CAS_RETRIES lost
 * CASes) the answer is RL_CONTENTION: the caller refuses with 429 (fail
 * closed) and reports contention_fallback.  Does not read the config: the
 * caller passes the limit and window of the bucket (RL_BUCKETS names the
 * knobs).  Does not emit telemetry events: the caller does.
 */
#ifndef RG_RATELIMIT_H
#define RG_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "shm/layout.def"
#include "shm/shm.h"

#define RL_MAGIC "RLAREA1"
#define RL_NAME_SIZE 32
#define RL_MIN_SLOTS 64u
#define RL_MAX_SLOTS (1u << 24)
#define RL_PROBE_MAX 16u   /* slots looked at per key */
#define RL_CAS_RETRIES 64u /* attempts before RL_CONTENTION */
#define RL_SHARDS 16u      /* counter copies, picked by key hash */
#define RL_CLAIM_STEAL_MS 5u
#define RL_COUNT_MAX ((1u << 20) - 1) /* larger limits are clamped */
#define RL_CONTENTION_RETRY_MS 1000u

enum rl_bucket {
#define RL_BUCKET_ENUM(id, name, max, window) RL_BUCKET_##id,
	RL_BUCKETS(RL_BUCKET_ENUM)
#undef RL_BUCKET_ENUM
	RL_NBUCKETS
};

/* Outcomes; rl_check returns one of them. */
enum rl_outcome {
#define RL_OUTCOME_ENUM(id, name) RL_##id,
	RL_OUTCOMES(RL_OUTCOME_ENUM)
#undef RL_OUTCOME_ENUM
	RL_NOUTCOMES
};

enum rl_tstat {
#define RL_TSTAT_ENUM(id, name, doc) RL_TS_##id,
	RL_TSTATS(RL_TSTAT_ENUM)
#undef RL_TSTAT_ENUM
	RL_NTSTATS
};

struct rl_result {
	uint64_t retry_after_ms; /* to the window's end (contention: 1 s) */
	uint32_t count;          /* requests counted in this window */
	uint32_t remaining;      /* limit - count */
};

/*
 * The area.  struct rl_head is the stable prefix that readers rely on:
 * everything after it is found through its offsets and counts, so an
 * older relstat reads a newer daemon's buckets.  Fields other than
 * described, seed and the counters are written once, before described
 * is set to 2 with a release store.
 */
struct rl_head {
	char magic[8];          /* RL_MAGIC once described */
	uint32_t described;     /* 0, 1 = being written, 2 = done */
	uint32_t head_size;     /* sizeof(struct rl_head) */
	uint32_t nbuckets;      /* names: buckets, outcomes, tstats */
	uint32_t noutcomes;
	uint32_t ntstats;
	uint32_t name_size;     /* bytes per name, NUL-padded */
	uint32_t names_off;     /* from the area start */
	uint32_t nshards;       /* counter copies, summed by readers */
	uint32_t shard_stride;  /* bytes between copies */
	uint32_t counters_off;  /* u64 [nbuckets][noutcomes] per copy */
	uint32_t tstats_off;    /* u64 [ntstats] */
	uint32_t table_off;     /* struct rl_entry [slots] */
	uint32_t entry_size;
	uint32_t slots;         /* a power of two */
	uint64_t seed[2];       /* SipHash key, random, never 0 once set */
};

/*
 * One slot: tag = SipHash-2-4 of (bucket, key) under the area's seed, 0 =
 * never used (a slot never becomes empty again).  state is one of
 *   live:  bit 63 = 0, bits 20..62 window end (ms), bits 0..19 count;
 *          0 = no window yet; expired when now >= end
 *   claim: bit 63 = 1, bits 32..62 claim time (ms, low 31 bits), bits
 *          0..31 pid of the process moving the slot to another key
 */
#define RL_ST_CLAIM (UINT64_C(1) << 63)
#define RL_ST_CBITS 20
#define RL_ST_LIVE(end, count)                                            \
	((uint64_t)(end) << RL_ST_CBITS | (uint64_t)(count))
#define RL_ST_END(s) ((s) >> RL_ST_CBITS)
#define RL_ST_COUNT(s) ((uint32_t)((s) & RL_COUNT_MAX))
#define RL_ST_CLAIMED(now, pid)                                           \
	(RL_ST_CLAIM | ((uint64_t)(now) & 0x7fffffffu) << 32 |            \
	    (uint64_t)(uint32_t)(pid))
#define RL_END_MAX ((UINT64_C(1) << 43) - 1)

struct rl_entry {
	uint64_t tag;
	uint64_t state;
};

struct rl_shard {
	_Alignas(64) uint64_t n[RL_NBUCKETS][RL_NOUTCOMES];
};

struct rl_area {
	struct rl_head head;
	char names[RL_NBUCKETS + RL_NOUTCOMES + RL_NTSTATS][RL_NAME_SIZE];
	_Alignas(64) uint64_t tstat[RL_NTSTATS];
	struct rl_shard shard[RL_SHARDS];
	struct rl_entry table[];
};

/*
 * rl_area_size - bytes of the area for want slots (rounded up to a power
 * of two in [RL_MIN_SLOTS, RL_MAX_SLOTS]); sets the directory's stride
 * (entry size) and count (slots).  Used by shm_create.
 */
size_t rl_area_size(uint32_t want, uint32_t *stride, uint32_t *count);

/*
 * rl_area_init - supervisor, after shm_create and before
 * shm_publish_ready: write the names and layout of the area and its random
 * seed.  Idempotent; rl_check does it itself if it finds it not done.
 */
void rl_area_init(struct shm_seg *seg);

/* rl_describe - shm_create: the tables of the area (rl.buckets: outcome
 * counters per bucket; rl.table: the table statistics). */
void rl_describe(struct shm_descw *w);

/*
 * rl_check - count one request of key (klen bytes, any content) in bucket
 * at now_ms against limit requests per window_ms.  now_ms must come from
 * one clock shared by all processes that does not go back (mono_ms) and
 * be below 2^43.  Returns RL_ALLOWED, RL_BLOCKED (not counted; out->
 * retry_after_ms = window end - now) or RL_CONTENTION (table full or too
 * much contention: refuse, fail closed).  out may be NULL.  Also counts
 * the outcome for relstat.  limit 0 blocks everything; limits above
 * RL_COUNT_MAX are clamped.  seg must be attached writable.
 */
int rl_check(struct shm_seg *seg, unsigned bucket, const char *key,
    size_t klen, uint64_t now_ms, uint32_t limit, uint32_t window_ms,
    struct rl_result *out);

/* rl_retry_after_s - Retry-After seconds: ms rounded up, at least 1. */
uint64_t rl_retry_after_s(uint64_t ms);

/* rl_count - one outcome counter of a bucket, summed over the copies. */
uint64_t rl_count(const struct shm_seg *seg, unsigned bucket,
    unsigned outcome);
/* rl_tstat - one table statistic (enum rl_tstat). */
uint64_t rl_tstat(const struct shm_seg *seg, unsigned stat);

const char *rl_bucket_name(unsigned bucket);
/* rl_bucket_by_name - index, or -1. */
int rl_bucket_by_name(const char *name);
const char *rl_outcome_name(unsigned outcome);

/* rl_area_of - the area of an attached segment, or NULL (no table). */
struct rl_area *rl_area_of(const struct shm_seg *seg);
/* rl_hash - the tag of (bucket, key); for tests. */
uint64_t rl_hash(struct rl_area *a, unsigned bucket, const char *key,
    size_t klen);

#endif
