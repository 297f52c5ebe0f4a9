/*
 * bulkhead - concurrency caps per upstream provider in the shm area
 * "bulkhead", shared by every process that calls out (SPEC section 5).
 *
 * A provider of BH_PROVIDERS has BH_CAPACITY lease slots; at most
 * max_concurrent (passed by the caller, clamped to BH_CAPACITY) live
 * leases at once, across all processes, even when they race.  A lease
 * records its owner pid and its expiry: leases of a dead process are
 * freed at once by bh_reclaim_pid (the supervisor, on reaping it) or
 * lazily by a saturated acquirer that finds the owner gone; expired
 * leases by any acquirer and by bh_sweep (the monitor).  Releasing a
 * lease that was already reclaimed is harmless.
 *
 * Owns: the bulkhead area (lease words, lease ids, counters, the last
 * saturation warning, the names relstat prints).  Every lease change is
 * one CAS on the slot's 64-bit word; no lock.  Does not read the config
 * (BH_PROVIDERS names the knobs), does not log and does not send the
 * saturation warning: bh_should_warn only says whether the caller should.
 */
#ifndef RG_BULKHEAD_H
#define RG_BULKHEAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm/layout.def"
#include "shm/shm.h"

#define BH_MAGIC "BHAREA1"
#define BH_NAME_SIZE 32
#define BH_MAX_PROVIDERS 64u
#define BH_CAPACITY 256u        /* lease slots per provider */
#define BH_RETRY_AFTER_MS 1000u /* saturation hint, less if one expires */
#define BH_RACE_ROUNDS 4u       /* claim attempts lost to racers */

enum bh_provider {
#define BH_PROVIDER_ENUM(id, name, max, ttl) BH_PROV_##id,
	BH_PROVIDERS(BH_PROVIDER_ENUM)
#undef BH_PROVIDER_ENUM
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
 *   bits 22..63 expiry (ms, the caller's clock)
 */
#define BH_PID_BITS 22
#define BH_PID_MASK ((UINT64_C(1) << BH_PID_BITS) - 1)
#define BH_W_PID(w) ((pid_t)((w) & BH_PID_MASK))
#define BH_W_EXPIRES(w) ((w) >> BH_PID_BITS)
#define BH_W_MAKE(expires, pid)                                           \
	((uint64_t)(expires) << BH_PID_BITS | ((uint64_t)(pid) & BH_PID_MASK))
#define BH_TIME_MAX ((UINT64_C(1) << (64 - BH_PID_BITS)) - 1)

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
	uint32_t pad;
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

/*
 * bh_acquire - take a lease of provider at now_ms for ttl_ms (0 is taken
 * as 1) when fewer than max_concurrent (clamped to BH_CAPACITY; 0 refuses
 * everything) live leases exist.  now_ms comes from one clock shared by
 * all processes (now_ms(), ms since the epoch), below BH_TIME_MAX.
 * BH_ACQUIRED fills *l: give it back with bh_release.  BH_SATURATED sets
 * *retry_after_ms (BH_RETRY_AFTER_MS, or less when a lease expires
 * sooner; at least 1; may be NULL).  Frees expired leases it meets, and
 * leases of dead owners before it reports saturation.  seg must be
 * attached writable; a segment without the area grants a lease that holds
 * nothing (fail open).
 */
/* bh_configure - record a provider's configured cap and TTL for relstat
 * (the supervisor, at start and reload; bh_acquire records what it is
 * passed too). */
void bh_configure(struct shm_seg *seg, unsigned provider,
    uint32_t max_concurrent, uint32_t ttl_ms);

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
 * supervisor calls it when it reaps a child).  Returns leases freed. */
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

/* bh_inflight - live (held, unexpired) leases of provider at now_ms. */
uint32_t bh_inflight(const struct shm_seg *seg, unsigned provider,
    uint64_t now_ms);
/* bh_count - one counter of a provider (enum bh_counter). */
uint64_t bh_count(const struct shm_seg *seg, unsigned provider,
    unsigned counter);

const char *bh_provider_name(unsigned provider);
/* bh_provider_by_name - index, or -1. */
int bh_provider_by_name(const char *name);

/* bh_area_of - the area of an attached segment, or NULL. */
struct bh_area *bh_area_of(const struct shm_seg *seg);

#endif
