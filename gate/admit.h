/*
 * admit - the chat admission decision (SPEC section 6), pure.
 *
 * Four dimensions (ADM_DIMS in shm/layout.def, checked in that order):
 * the user's tickets in flight, all tickets in flight, admitted chats per
 * second and estimated tool calls per second.  A dimension is "over" when
 * admitting one more chat would pass its limit.  In enforce mode the
 * first enforced dimension that is over refuses the chat (its name is the
 * reason); dimensions over but not enforced only let it through as a soft
 * allow with their names recorded.  In shadow mode nothing is refused:
 * the verdict says what enforcement would have done (would block, and
 * why) and that nothing may be changed.
 *
 * Rates are token buckets in fixed point (thousandths of a unit): the
 * level drains at `limit` units per second, a chat adds 1 unit to the
 * message bucket and `tool_per_msg` units to the tool bucket, and a chat
 * fits when the level after it stays within one second's worth (or one
 * chat's worth, when a single chat costs more than that).
 *
 * Owns nothing; no clock, no randomness, no I/O: the caller passes the
 * time and random numbers, reads the usage from shm and applies the
 * verdict.  Never blocks, never allocates.
 */
#ifndef RG_ADMIT_H
#define RG_ADMIT_H

#include <stdint.h>

#include "conf/config.h"
#include "shm/layout.def"

enum admit_dim {
#define ADMIT_DIM_ENUM(id, name, enforce, limit) ADMIT_D_##id,
	ADM_DIMS(ADMIT_DIM_ENUM)
#undef ADMIT_DIM_ENUM
	ADMIT_NDIMS
};

enum admit_mode {
#define ADMIT_MODE_ENUM(id, name) ADMIT_MODE_##id,
	ADM_MODES(ADMIT_MODE_ENUM)
#undef ADMIT_MODE_ENUM
	ADMIT_NMODES
};

#define ADMIT_MILLI 1000u            /* fixed-point unit of the rates */
#define ADMIT_RATE_MAX_GAP_MS 3600000u /* longer idle drains all anyway */

struct admit_policy {
	uint64_t limit[ADMIT_NDIMS]; /* in flight, or units per second */
	uint32_t enforce;            /* bit d: dimension d is enforced */
	uint32_t tool_per_msg;       /* tool calls charged per chat */
	int shadow;                  /* evaluate only */
};

/* A token bucket: level in thousandths of a unit at time at_ms. */
struct admit_rate {
	uint64_t level_milli;
	uint64_t at_ms;
};

/* What the decision looks at, the rate levels drained to now. */
struct admit_usage {
	uint64_t user_inflight;
	uint64_t global_inflight;
	uint64_t msg_level_milli;
	uint64_t tool_level_milli;
};

enum admit_action {
	ADMIT_ADMIT = 0, /* take a ticket, charge the rates, forward */
	ADMIT_REFUSE,    /* refuse with the reason */
	ADMIT_PASS,      /* shadow: forward untracked, change nothing */
};

struct admit_verdict {
	enum admit_action action;
	int mutate;   /* 1: take a ticket and charge the rates */
	int reason;   /* the refusing (shadow: would-refuse) dimension, -1 */
	uint32_t over; /* bit d: dimension d is over its limit */
	uint32_t soft; /* over but not enforced (a soft allow if admitted) */
};

/* admit_policy_from_config - the ADMISSION_* knobs as a policy. */
void admit_policy_from_config(const struct config *cfg,
    struct admit_policy *p);

/* admit_decide - the verdict for one more chat given the usage now. */
void admit_decide(const struct admit_policy *p, const struct admit_usage *u,
    struct admit_verdict *v);

/* admit_rate_level - r's level drained at per_sec units/s to now_ms. */
uint64_t admit_rate_level(const struct admit_rate *r, uint64_t per_sec,
    uint64_t now_ms);
/* admit_rate_fits - does a level take `units` more within per_sec? */
int admit_rate_fits(uint64_t level_milli, uint64_t per_sec, uint64_t units);
/* admit_rate_charge - drain r to now_ms, then add units. */
void admit_rate_charge(struct admit_rate *r, uint64_t per_sec,
    uint64_t units, uint64_t now_ms);

/*
 * admit_retry_after - base_ms +/- jitter_pct percent, uniform over the
 * range from the random number rnd; at least 1 ms.
 */
uint32_t admit_retry_after(uint32_t base_ms, uint32_t jitter_pct,
    uint64_t rnd);
/* admit_sample - 1 for pct percent of uniform random numbers rnd. */
int admit_sample(uint32_t pct, uint64_t rnd);

/* admit_gateway_mode - the gateway mode the FF_* flags select. */
enum admit_mode admit_gateway_mode(const struct config *cfg);

/* admit_dim_name - "user_inflight", ...; "unknown" out of range. */
const char *admit_dim_name(unsigned dim);
/* admit_mode_name - "legacy", "shadow", "authoritative". */
const char *admit_mode_name(unsigned mode);

#endif
