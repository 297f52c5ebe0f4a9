/*
 * bulkhead - concurrency caps per upstream provider in the shm area
 * "bulkhead", shared by every process that calls out (SPEC section 5).
 *
 * A provider of RG_PROVIDERS (and each of BH_LOCAL) has BH_CAPACITY lease
 * slots; at most max_concurrent (passed by the caller, never above
 * BH_CAPACITY: the knobs' ranges stop there) live leases at once, across
 * all processes, even when they race.  A lease records its owner pid and
 * its expiry: leases of a dead process are freed at once by
 * bh_reclaim_pid (the supervisor, on reaping it) or lazily by a saturated
 * acquirer that finds the owner gone; expired leases by any acquirer and
 * by bh_sweep (the monitor).  Releasing a lease that was already
 * reclaimed is harmless.
 *
 * The cap is kept by a per-provider count of held places, an upper bound
 * of the live leases: one more is reserved (only while it is below
 * max_concurrent) before a lease is written, one less only after a lease
 * word is gone.  So acquiring is one look at the count and a slot found
 * from a rotating place, not a scan; only when the count says full does
 * an acquirer scan the slots (expired and dead owners' leases), and then
 * it may lower a count that a process dying halfway left too high, never
 * below what the slots justify.
 *
 * Owns: the bulkhead area (lease words, the counts, lease ids, counters,
 * the last saturation warning, the names relstat prints).  Every lease
 * change is a CAS on the slot's 64-bit word or on the count; no lock.
 * Does not read the config (RG_PROVIDERS and BH_LOCAL name the knobs),
 * does not log and does not send the saturation warning: bh_should_warn
 * only says whether the caller should.
 */
#ifndef RG_BULKHEAD_H
#define RG_BULKHEAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm/layout.def"
#include "shm/shm.h"

#define BH_MAGIC "BHAREA2" /* BHAREA1: no count, no marker words */
#define BH_NAME_SIZE 32
#define BH_MAX_PROVIDERS 64u
#define BH_CAPACITY 32768u      /* lease slots per provider */
#define BH_RETRY_AFTER_MS 1000u /* saturation hint, less if one expires */
#define BH_RACE_ROUNDS 4u       /* tries of an acquire (places lost, freed) */
#define BH_RESCAN_MS 10u        /* full and unchanged: no new scan before */

enum bh_provider {
#define BH_PROVIDER_ENUM(id, name, thr, cool, max, ttl) BH_PROV_##id,
	RG_PROVIDERS(BH_PROVIDER_ENUM)
#undef BH_PROVIDER_ENUM
#define BH_LOCAL_ENUM(id, name, max, ttl) BH_PROV_##id,
	BH_LOCAL(BH_LOCAL_ENUM)
#undef BH_LOCAL_ENUM
	BH_NPROVIDERS
};

enum bh_counter {
#define BH_COUNTER_ENUM(id, name, doc) BH_C_##id,
	BH_COUNTERS(BH_COUNTER_ENUM)
#undef BH_COUNTER_ENUM
	BH_NCOUNTERS
};

enum bh_verdict { BH_ACQUIRED = 0, BH_SATURATED };

/*
 * A lease word (stable format of BH_MAGIC): 0 = free, else
 *   bits  0..21 owner pid (Linux pids are below 2^22)
 *   bits 22..63 expiry (ms, the caller's clock): at least 1 for a lease;
 *               0 for a marker, a slot that pid is taking or freeing
 *               (between its word and its change of the count)
 */
#define BH_PID_BITS 22
#define BH_PID_MASK ((UINT64_C(1) << BH_PID_BITS) - 1)
#define BH_W_PID(w) ((pid_t)((w) & BH_PID_MASK))
#define BH_W_EXPIRES(w) ((w) >> BH_PID_BITS)
#define BH_W_MAKE(expires, pid)                                           \
	((uint64_t)(expires) << BH_PID_BITS | ((uint64_t)(pid) & BH_PID_MASK))
#define BH_TIME_MAX ((UINT64_C(1) << (64 - BH_PID_BITS)) - 1)
#define BH_W_MARKER(pid) ((uint64_t)(pid) & BH_PID_MASK)
#define BH_W_IS_LEASE(w) (BH_W_EXPIRES(w) != 0)
#define BH_W_IS_MARKER(w) ((w) != 0 && BH_W_EXPIRES(w) == 0)

/*
 * The count word of a provider (stable format of BH_MAGIC):
 *   bits  0..31 places held: leases, plus places reserved or being freed
 *   bits 32..63 changes, +1 on every change (so a CAS sees any change)
 */
#define BH_H_COUNT(h) ((uint32_t)((h) & UINT32_MAX))
#define BH_H_ONE ((UINT64_C(1) << 32) + 1)  /* add: one more, one change */
#define BH_H_LESS ((UINT64_C(1) << 32) - 1) /* add: one less, one change */

/* A held lease: give it back to bh_release. */
struct bh_lease {
	uint64_t word;     /* as claimed: expiry and owner */
	uint64_t id;       /* per provider, from 1 */
	uint32_t provider;
	uint32_t slot;
};

/* Written by the owner after its claim; for readers and bh_release. */
struct bh_info {
	uint64_t id;
	uint64_t acquired_at;
};

struct bh_prov {
	_Alignas(64) uint64_t n[BH_NCOUNTERS];
	uint64_t seq;            /* last lease id */
	uint64_t last_warned_at; /* ms, 0 = never */
	uint32_t max_concurrent; /* as last passed to bh_acquire */
	uint32_t ttl_ms;
	_Alignas(64) uint64_t held; /* the count word (BH_H_*) */
	uint64_t scan_held;         /* count word a fruitless scan left */
	uint64_t scan_at;           /* ms: when */
	uint64_t scan_earliest;     /* ms: the earliest expiry it saw */
	_Alignas(64) uint64_t word[BH_CAPACITY];
	struct bh_info info[BH_CAPACITY];
};

/*
 * The area.  struct bh_head is the stable prefix readers rely on; the
 * rest is found through its offsets.  Names: providers, then counters.
 */
struct bh_head {
	char magic[8];          /* BH_MAGIC once described */
	uint32_t described;     /* 0, 1 = being written, 2 = done */
	uint32_t head_size;
	uint32_t nproviders;
	uint32_t ncounters;
	uint32_t name_size;
	uint32_t names_off;     /* from the area start */
	uint32_t provs_off;     /* struct bh_prov [nproviders] */
	uint32_t prov_size;
	uint32_t capacity;      /* lease slots per provider */
	uint32_t pid_bits;      /* of a lease word */
	uint32_t counters_off;  /* within a provider: u64 [ncounters] */
	uint32_t words_off;     /* u64 [capacity] */
	uint32_t info_off;      /* struct bh_info [capacity] */
	uint32_t info_size;
	uint32_t max_off;       /* u32 */
	uint32_t ttl_off;       /* u32 */
	uint32_t warned_off;    /* u64 */
	uint32_t held_off;      /* u64, the count word (0 in BHAREA1) */
};

struct bh_area {
	struct bh_head head;
	char names[BH_NPROVIDERS + BH_NCOUNTERS][BH_NAME_SIZE];
	struct bh_prov prov[BH_NPROVIDERS];
};

/* bh_area_size - bytes of the area; sets stride and count for shm. */
size_t bh_area_size(uint32_t *stride, uint32_t *count);

/*
 * bh_area_init - supervisor, after shm_create and before
 * shm_publish_ready: names and layout.  Idempotent; the writers do it
 * themselves if they find it not done.
 */
void bh_area_init(struct shm_seg *seg);

/* bh_describe - shm_create: the table "bulkhead" (settings and counters
 * of each bulkhead; the lease words are read by their own code). */
void bh_describe(struct shm_descw *w);

/* bh_configure - record a provider's configured cap and TTL for relstat
 * (the supervisor, at start and reload; bh_acquire records what it is
 * passed too). */
void bh_configure(struct shm_seg *seg, unsigned provider,
    uint32_t max_concurrent, uint32_t ttl_ms);

/*
 * bh_acquire - take a lease of provider at now_ms for ttl_ms (0 is taken
 * as 1) when fewer than max_concurrent places are held (at most
 * BH_CAPACITY, which the knobs' ranges guarantee; 0 refuses everything).
 * The places held are the live leases, plus leases expired or of dead
 * owners until an acquirer finds the count full and frees them (it does
 * before it reports saturation), plus places other processes are taking
 * or freeing at that moment.  now_ms comes from one clock shared by all
 * processes (now_ms(), ms since the epoch), below BH_TIME_MAX.
 * BH_ACQUIRED fills *l: give it back with bh_release.  BH_SATURATED sets
 * *retry_after_ms (BH_RETRY_AFTER_MS, or less when a lease expires
 * sooner; at least 1; may be NULL).  seg must be attached writable; a
 * segment without the area (or with another build's area) grants a lease
 * that holds nothing (fail open).
 */
int bh_acquire(struct shm_seg *seg, unsigned provider, uint64_t now_ms,
    uint32_t max_concurrent, uint32_t ttl_ms, struct bh_lease *l,
    uint64_t *retry_after_ms);

/*
 * bh_release - give l back.  0, or -1 when it was already reclaimed or
 * released (harmless: nothing else is touched; counted as staleRelease).
 */
int bh_release(struct shm_seg *seg, const struct bh_lease *l);

/* bh_renew - push l's expiry to now_ms + ttl_ms; -1 if it is no longer
 * held (reclaimed meanwhile), then l is unchanged. */
int bh_renew(struct shm_seg *seg, struct bh_lease *l, uint64_t now_ms,
    uint32_t ttl_ms);

/* bh_reclaim_pid - free every lease of pid (which must be dead: the
 * supervisor calls it when it reaps a child) and clear its markers.
 * Returns leases freed. */
unsigned bh_reclaim_pid(struct shm_seg *seg, pid_t pid);

/* bh_sweep - free expired leases and leases of dead owners in every
 * bulkhead (the monitor, periodically).  Returns leases freed. */
unsigned bh_sweep(struct shm_seg *seg, uint64_t now_ms);

/*
 * bh_should_warn - 1 for exactly one caller per cooldown_ms and provider
 * (the one that should send the saturation warning to the monitor), else
 * 0.
 */
int bh_should_warn(struct shm_seg *seg, unsigned provider, uint64_t now_ms,
    uint32_t cooldown_ms);

/* bh_inflight - live (held, unexpired) leases of provider at now_ms: a
 * scan of its slots. */
uint32_t bh_inflight(const struct shm_seg *seg, unsigned provider,
    uint64_t now_ms);
/* bh_held - the count of places held of provider (see bh_acquire); never
 * below its leases. */
uint32_t bh_held(const struct shm_seg *seg, unsigned provider);
/* bh_count - one counter of a provider (enum bh_counter). */
uint64_t bh_count(const struct shm_seg *seg, unsigned provider,
    unsigned counter);

const char *bh_provider_name(unsigned provider);
/* bh_provider_by_name - index, or -1. */
int bh_provider_by_name(const char *name);

/* bh_area_of - the area of an attached segment, or NULL (none, or laid
 * out by a build whose layout differs from this one's). */
struct bh_area *bh_area_of(const struct shm_seg *seg);

#endif
