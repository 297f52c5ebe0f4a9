/*
 * circuit - circuit breakers per upstream provider in the shm area
 * "circuit", shared by every process that calls out (SPEC section 5).
 *
 * closed -> open after `threshold` consecutive failures; open -> half_open
 * once `cooldown_ms` has passed (on the next cb_allow), letting at most
 * `probes` requests through; a probe's success closes the circuit, its
 * failure opens it again for a new cooldown.  Neutral outcomes count
 * neither way (a neutral probe gives its place back).  What is a success,
 * a failure or neutral is decided here only: cb_classify_http and
 * cb_classify_error (gate/retry uses the same answer for "retryable").
 *
 * Owns: the circuit area (one state word and counters per provider of
 * RG_PROVIDERS, the names relstat prints).  Every state change is one CAS
 * on the provider's 64-bit state word; no lock, nothing a dying process
 * can keep: probe places of a half_open generation expire together after
 * cb_probe_ttl(cooldown) and a late outcome of an expired generation is
 * ignored.  Does not read the config (the caller passes threshold,
 * cooldown and probes; RG_PROVIDERS names the knobs), does not log and
 * sends no telemetry: the caller does, from the returned transitions.
 */
#ifndef RG_CIRCUIT_H
#define RG_CIRCUIT_H

#include <stddef.h>
#include <stdint.h>

#include "shm/layout.def"
#include "shm/shm.h"

#define CB_MAGIC "CBAREA1"
#define CB_NAME_SIZE 32
#define CB_MAX_PROVIDERS 64u
#define CB_MAX_COUNT 1023u           /* failures / probes in the word */
#define CB_PROBE_TTL_MIN_MS 30000u   /* see cb_probe_ttl */
#define CB_PROBE_BUSY_RETRY_MS 1000u /* retry hint: probes in flight */

enum cb_provider {
#define CB_PROVIDER_ENUM(id, name, thr, cool, max, ttl) CB_PROV_##id,
	RG_PROVIDERS(CB_PROVIDER_ENUM)
#undef CB_PROVIDER_ENUM
	CB_NPROVIDERS
};

enum cb_state {
#define CB_STATE_ENUM(id, name) CB_ST_##id,
	CB_STATES(CB_STATE_ENUM)
#undef CB_STATE_ENUM
	CB_NSTATES
};

enum cb_counter {
#define CB_COUNTER_ENUM(id, name, doc) CB_C_##id,
	CB_COUNTERS(CB_COUNTER_ENUM)
#undef CB_COUNTER_ENUM
	CB_NCOUNTERS
};

/* Answers of cb_allow. */
enum cb_verdict {
	CB_ALLOW = 0,   /* closed: go on, report the outcome */
	CB_ALLOW_PROBE, /* half_open: go on as a probe, report the outcome */
	CB_OPEN,        /* open, or no probe place: upstream_unavailable */
};

enum cb_outcome { CB_SUCCESS = 0, CB_FAILURE, CB_NEUTRAL };

/* Transport-level results for cb_classify_error. */
enum cb_error {
	CB_ERR_NONE = 0,  /* an HTTP status arrived: classify that */
	CB_ERR_CONNECT,   /* DNS, refused, reset, TLS handshake: failure */
	CB_ERR_TIMEOUT,   /* connect, first byte or idle timeout: failure */
	CB_ERR_PROTOCOL,  /* malformed response or stream cut: failure */
	CB_ERR_CANCELLED, /* we gave up (client gone, shutdown): neutral */
};

/* Transitions made by one call, for the caller's log and telemetry. */
enum cb_transition {
	CB_T_NONE = 0,
	CB_T_OPENED,      /* closed -> open */
	CB_T_REOPENED,    /* half_open -> open (a probe failed) */
	CB_T_HALF_OPENED, /* open -> half_open (this request is a probe) */
	CB_T_PROBES_EXPIRED, /* half_open restarted, probes never reported */
	CB_T_CLOSED,      /* half_open -> closed (a probe succeeded) */
};

/*
 * The state word of a circuit (stable format of CB_MAGIC):
 *   bits  0..1  state (enum cb_state)
 *   bits  2..11 count: consecutive failures (closed), probes in flight
 *               (half_open), 0 (open)
 *   bits 12..20 epoch, +1 on every transition (mod 512)
 *   bits 21..63 time (ms): when it opened (open), when this half_open
 *               generation began (half_open), when it closed (closed)
 * A probe ticket belongs to the generation (state, epoch, time) it was
 * granted in; count is not part of that identity.
 */
#define CB_W_STATE(w) ((unsigned)((w) & 3u))
#define CB_W_COUNT(w) ((uint32_t)(((w) >> 2) & CB_MAX_COUNT))
#define CB_W_EPOCH(w) ((uint32_t)(((w) >> 12) & 511u))
#define CB_W_TIME(w) ((w) >> 21)
#define CB_W_MAKE(state, count, epoch, time)                              \
	((uint64_t)(state) | (uint64_t)(count) << 2 |                     \
	    (uint64_t)((epoch) & 511u) << 12 | (uint64_t)(time) << 21)
#define CB_W_GEN_MASK (~(UINT64_C(1023) << 2)) /* all but count */
#define CB_TIME_MAX ((UINT64_C(1) << 43) - 1)

/* A granted request: give it back to cb_record. */
struct cb_ticket {
	uint64_t word;      /* the state word it was granted under */
	uint8_t probe;      /* 1 = CB_ALLOW_PROBE */
	uint8_t transition; /* enum cb_transition made by cb_allow */
};

/* One circuit as a reader sees it. */
struct cb_status {
	unsigned state;               /* enum cb_state */
	uint32_t consecutive_failures;
	uint32_t probes_in_flight;
	uint64_t opened_at;           /* ms, last time it opened; 0 = never */
	uint64_t changed_at;          /* ms, time field of the word */
	uint32_t threshold, cooldown_ms; /* as last passed to cb_allow */
	uint64_t counters[CB_NCOUNTERS];
};

/*
 * The area.  struct cb_head is the stable prefix readers rely on; the
 * rest is found through its offsets.  Written once before described is
 * set to 2 with a release store.  Names: providers, states, counters.
 */
struct cb_head {
	char magic[8];         /* CB_MAGIC once described */
	uint32_t described;    /* 0, 1 = being written, 2 = done */
	uint32_t head_size;
	uint32_t nproviders;
	uint32_t nstates;
	uint32_t ncounters;
	uint32_t name_size;    /* bytes per name, NUL-padded */
	uint32_t names_off;    /* from the area start */
	uint32_t slots_off;    /* struct cb_slot [nproviders] */
	uint32_t slot_size;
	uint32_t word_off;     /* within a slot: u64 state word */
	uint32_t opened_off;   /* u64 opened_at */
	uint32_t threshold_off; /* u32 */
	uint32_t cooldown_off; /* u32 */
	uint32_t counters_off; /* u64 [ncounters] */
};

struct cb_slot {
	_Alignas(64) uint64_t word;
	uint64_t opened_at;
	uint32_t threshold;
	uint32_t cooldown_ms;
	_Alignas(64) uint64_t n[CB_NCOUNTERS];
};

struct cb_area {
	struct cb_head head;
	char names[CB_NPROVIDERS + CB_NSTATES + CB_NCOUNTERS][CB_NAME_SIZE];
	struct cb_slot slot[CB_NPROVIDERS];
};

/* cb_area_size - bytes of the area; sets stride and count for shm. */
size_t cb_area_size(uint32_t *stride, uint32_t *count);

/*
 * cb_area_init - supervisor, after shm_create and before
 * shm_publish_ready: names and layout.  Idempotent; the other functions
 * do it themselves if they find it not done.
 */
void cb_area_init(struct shm_seg *seg);

/* cb_describe - shm_create: the table "circuit" (settings and counters
 * of each circuit; the state word is read by its own code). */
void cb_describe(struct shm_descw *w);

/* cb_probe_ttl - how long a half_open generation's probes may stay
 * unreported: max(cooldown_ms, CB_PROBE_TTL_MIN_MS). */
uint64_t cb_probe_ttl(uint32_t cooldown_ms);

/*
 * cb_allow - may a request to provider go out at now_ms?  now_ms comes
 * from one clock shared by all processes (now_ms(), ms since the epoch)
 * and must stay below CB_TIME_MAX.  threshold (failures that open, 0 is
 * taken as 1), cooldown_ms (open time) and probes (places in half_open, 0
 * is taken as 1) are the provider's current settings; counts above
 * CB_MAX_COUNT are clamped.  CB_ALLOW / CB_ALLOW_PROBE fill *t: the
 * caller must report the outcome with cb_record (a probe that is never
 * reported holds its place until cb_probe_ttl).  CB_OPEN sets
 * *retry_after_ms to the cooldown left (open) or CB_PROBE_BUSY_RETRY_MS
 * (probes busy), at least 1.  retry_after_ms may be NULL.  seg must be
 * attached writable.
 */
/* cb_configure - record a provider's configured threshold and cooldown
 * for relstat (the supervisor, at start and reload). */
void cb_configure(struct shm_seg *seg, unsigned provider, uint32_t threshold,
    uint32_t cooldown_ms);

int cb_allow(struct shm_seg *seg, unsigned provider, uint64_t now_ms,
    uint32_t threshold, uint32_t cooldown_ms, uint32_t probes,
    struct cb_ticket *t, uint64_t *retry_after_ms);

/*
 * cb_record - the outcome of a request to provider granted with t;
 * threshold as for cb_allow.  Closed: a failure counts (the threshold-th
 * consecutive one opens), a success resets the count, neutral does
 * neither.  A request granted in closed that ends while the circuit is
 * open or half_open changes nothing.  A probe: success closes, failure
 * reopens, neutral frees its place - unless its generation is over
 * (expired, or already decided), then it is ignored (staleProbes).
 * Returns the transition made (enum cb_transition).
 */
int cb_record(struct shm_seg *seg, unsigned provider,
    const struct cb_ticket *t, enum cb_outcome outcome, uint64_t now_ms,
    uint32_t threshold);

/* cb_classify_http - 2xx/3xx success; 408, 429, 5xx failure; other
 * 4xx (and anything else) neutral. */
enum cb_outcome cb_classify_http(int status);
/* cb_classify_error - see enum cb_error; CB_ERR_NONE classifies status. */
enum cb_outcome cb_classify_error(enum cb_error kind, int status);

/* cb_status - a consistent copy of one circuit; -1 if there is none. */
int cb_status(const struct shm_seg *seg, unsigned provider,
    struct cb_status *st);

const char *cb_provider_name(unsigned provider);
/* cb_provider_by_name - index, or -1. */
int cb_provider_by_name(const char *name);
const char *cb_state_name(unsigned state);
const char *cb_outcome_name(unsigned outcome);

/* cb_area_of - the area of an attached segment, or NULL. */
struct cb_area *cb_area_of(const struct shm_seg *seg);

#endif
