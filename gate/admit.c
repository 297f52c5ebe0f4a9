/*
 * admit - the chat admission decision (see admit.h).
 */
#include "gate/admit.h"

#include <stddef.h>

static const char *const dim_names[] = {
#define ADMIT_DIM_NAME(id, name, enforce, limit) name,
	ADM_DIMS(ADMIT_DIM_NAME)
#undef ADMIT_DIM_NAME
};

static const char *const mode_names[] = {
#define ADMIT_MODE_NAME(id, name) name,
	ADM_MODES(ADMIT_MODE_NAME)
#undef ADMIT_MODE_NAME
};

_Static_assert(ADMIT_NDIMS <= 32, "dimensions are bits of a u32");

const char *
admit_dim_name(unsigned dim)
{
	return dim < ADMIT_NDIMS ? dim_names[dim] : "unknown";
}

const char *
admit_mode_name(unsigned mode)
{
	return mode < ADMIT_NMODES ? mode_names[mode] : "unknown";
}

void
admit_policy_from_config(const struct config *cfg, struct admit_policy *p)
{
	p->enforce = 0;
#define ADMIT_DIM_POLICY(id, name, enforce_knob, limit_knob)              \
	p->limit[ADMIT_D_##id] = (uint64_t)cfg->limit_knob;               \
	if (cfg->enforce_knob)                                            \
		p->enforce |= 1u << ADMIT_D_##id;
	ADM_DIMS(ADMIT_DIM_POLICY)
#undef ADMIT_DIM_POLICY
	p->tool_per_msg = (uint32_t)cfg->admission_est_tool_calls_per_msg;
	p->shadow = cfg->admission_redis_shadow_mode != 0;
}

enum admit_mode
admit_gateway_mode(const struct config *cfg)
{
	if (!cfg->ff_chat_gateway_enabled)
		return ADMIT_MODE_LEGACY;
	if (cfg->ff_chat_gateway_shadow)
		return ADMIT_MODE_SHADOW;
	return cfg->ff_admission_enforce ? ADMIT_MODE_AUTHORITATIVE :
					   ADMIT_MODE_LEGACY;
}

uint64_t
admit_rate_level(const struct admit_rate *r, uint64_t per_sec,
    uint64_t now_ms)
{
	uint64_t gap, drain;

	if (now_ms <= r->at_ms)
		return r->level_milli; /* no time passed, or the clock stepped
					  back: drain nothing */
	gap = now_ms - r->at_ms;
	if (gap > ADMIT_RATE_MAX_GAP_MS)
		gap = ADMIT_RATE_MAX_GAP_MS;
	/* per_sec units a second are per_sec thousandths a millisecond */
	drain = gap * per_sec;
	return r->level_milli > drain ? r->level_milli - drain : 0;
}

int
admit_rate_fits(uint64_t level_milli, uint64_t per_sec, uint64_t units)
{
	uint64_t cost = units * ADMIT_MILLI, cap = per_sec * ADMIT_MILLI;

	if (units == 0)
		return 1;
	if (cap < cost)
		cap = cost; /* one chat costs more than a second's worth */
	return level_milli + cost <= cap;
}

void
admit_rate_charge(struct admit_rate *r, uint64_t per_sec, uint64_t units,
    uint64_t now_ms)
{
	r->level_milli = admit_rate_level(r, per_sec, now_ms) +
	    units * ADMIT_MILLI;
	if (now_ms > r->at_ms)
		r->at_ms = now_ms;
}

void
admit_decide(const struct admit_policy *p, const struct admit_usage *u,
    struct admit_verdict *v)
{
	uint32_t over = 0, blocking;

	if (u->user_inflight >= p->limit[ADMIT_D_USER_INFLIGHT])
		over |= 1u << ADMIT_D_USER_INFLIGHT;
	if (u->global_inflight >= p->limit[ADMIT_D_GLOBAL_INFLIGHT])
		over |= 1u << ADMIT_D_GLOBAL_INFLIGHT;
	if (!admit_rate_fits(u->msg_level_milli,
		p->limit[ADMIT_D_GLOBAL_MSG_RATE], 1))
		over |= 1u << ADMIT_D_GLOBAL_MSG_RATE;
	if (!admit_rate_fits(u->tool_level_milli,
		p->limit[ADMIT_D_GLOBAL_TOOL_RATE], p->tool_per_msg))
		over |= 1u << ADMIT_D_GLOBAL_TOOL_RATE;
	blocking = over & p->enforce;
	v->over = over;
	v->soft = over & ~p->enforce;
	v->reason = -1;
	for (unsigned d = 0; d < ADMIT_NDIMS && blocking != 0; d++)
		if (blocking & (1u << d)) {
			v->reason = (int)d;
			break;
		}
	if (p->shadow) {
		v->action = ADMIT_PASS;
		v->mutate = 0;
	} else if (v->reason >= 0) {
		v->action = ADMIT_REFUSE;
		v->mutate = 0;
	} else {
		v->action = ADMIT_ADMIT;
		v->mutate = 1;
	}
}

uint32_t
admit_retry_after(uint32_t base_ms, uint32_t jitter_pct, uint64_t rnd)
{
	uint64_t delta, ms;

	if (jitter_pct > 100)
		jitter_pct = 100;
	delta = (uint64_t)base_ms * jitter_pct / 100;
	ms = base_ms - delta + rnd % (2 * delta + 1);
	return ms >= 1 ? (uint32_t)ms : 1;
}

int
admit_sample(uint32_t pct, uint64_t rnd)
{
	if (pct >= 100)
		return 1;
	return rnd % 100 < pct;
}
