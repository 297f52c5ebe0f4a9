/*
 * circuit - see circuit.h.  One 64-bit state word per provider, changed
 * only by CAS, plus counters on their own cache line.
 *
 * Transitions of the word (each one CAS from the value the deciding
 * process loaded, so exactly one process makes each transition and counts
 * it):
 *   closed(n) --failure, n + 1 < threshold--> closed(n + 1)
 *   closed(n) --failure, n + 1 >= threshold--> open(now)       opens
 *   closed(n) --success--> closed(0)
 *   open(t)   --cb_allow at now >= t + cooldown--> half_open(now, 1)
 *   half_open(g, k) --cb_allow, k < probes--> half_open(g, k + 1)
 *   half_open(g, k) --cb_allow, k >= probes, now >= g + ttl-->
 *             half_open(now, 1)                      (probes expired)
 *   half_open(g, k) --probe success--> closed(0)                closes
 *   half_open(g, k) --probe failure--> open(now)                 opens
 *   half_open(g, k) --probe neutral--> half_open(g, k - 1)
 * Every transition but the count changes bumps the epoch, so a probe
 * outcome whose (state, epoch, time) differs from the word's belongs to a
 * generation that is over and is ignored.  The word's time only grows
 * within one clock, and the epoch must also match: a stale probe cannot
 * decide a later generation (ABA would need 512 transitions in the same
 * millisecond).
 */
#include "shm/circuit.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

_Static_assert(CB_NPROVIDERS <= CB_MAX_PROVIDERS, "too many circuits");
_Static_assert(CB_NSTATES <= 4, "state must fit two bits");
_Static_assert(sizeof(struct cb_slot) % 64 == 0, "slot padding");
_Static_assert(offsetof(struct cb_area, slot) % 64 == 0,
    "slots must start on a cache line");
_Static_assert(CB_W_MAKE(CB_ST_HALF_OPEN, CB_MAX_COUNT, 511, CB_TIME_MAX) ==
	(CB_W_MAKE(CB_ST_HALF_OPEN, 0, 511, CB_TIME_MAX) |
	    CB_W_MAKE(0, CB_MAX_COUNT, 0, 0)),
    "state word fields overlap");

#define COUNT_ONE (UINT64_C(1) << 2)

static const char *const provider_names[] = {
#define CB_PROVIDER_NAME(id, name, thr, cool, max, ttl) name,
	RG_PROVIDERS(CB_PROVIDER_NAME)
#undef CB_PROVIDER_NAME
};

static const char *const state_names[] = {
#define CB_STATE_NAME(id, name) name,
	CB_STATES(CB_STATE_NAME)
#undef CB_STATE_NAME
};

static const char *const counter_names[] = {
#define CB_COUNTER_NAME(id, name, doc) name,
	CB_COUNTERS(CB_COUNTER_NAME)
#undef CB_COUNTER_NAME
};

static const char *const outcome_names[] = { "success", "failure",
	"neutral" };

const char *
cb_provider_name(unsigned provider)
{
	return provider < CB_NPROVIDERS ? provider_names[provider] :
					  "unknown";
}

int
cb_provider_by_name(const char *name)
{
	for (unsigned i = 0; i < CB_NPROVIDERS; i++)
		if (strcmp(provider_names[i], name) == 0)
			return (int)i;
	return -1;
}

const char *
cb_state_name(unsigned state)
{
	return state < CB_NSTATES ? state_names[state] : "unknown";
}

const char *
cb_outcome_name(unsigned outcome)
{
	return outcome <= CB_NEUTRAL ? outcome_names[outcome] : "unknown";
}

enum cb_outcome
cb_classify_http(int status)
{
	if (status >= 200 && status <= 399)
		return CB_SUCCESS;
	if (status == 408 || status == 429 || (status >= 500 && status <= 599))
		return CB_FAILURE;
	return CB_NEUTRAL;
}

enum cb_outcome
cb_classify_error(enum cb_error kind, int status)
{
	switch (kind) {
	case CB_ERR_NONE:
		return cb_classify_http(status);
	case CB_ERR_CANCELLED:
		return CB_NEUTRAL;
	case CB_ERR_CONNECT:
	case CB_ERR_TIMEOUT:
	case CB_ERR_PROTOCOL:
	default:
		return CB_FAILURE;
	}
}

uint64_t
cb_probe_ttl(uint32_t cooldown_ms)
{
	return cooldown_ms > CB_PROBE_TTL_MIN_MS ? cooldown_ms :
						   CB_PROBE_TTL_MIN_MS;
}

size_t
cb_area_size(uint32_t *stride, uint32_t *count)
{
	*stride = sizeof(struct cb_slot);
	*count = CB_NPROVIDERS;
	return sizeof(struct cb_area);
}

struct cb_area *
cb_area_of(const struct shm_seg *seg)
{
	const struct shm_area *d;

	if (seg == NULL || seg->hdr == NULL)
		return NULL;
	d = shm_area(seg, SHM_AREA_CIRCUIT);
	if (d == NULL || d->size < sizeof(struct cb_area) ||
	    d->offset + d->size > seg->size)
		return NULL;
	return (struct cb_area *)((char *)seg->base + d->offset);
}

/* describe - write names and layout once; losers of the race go on. */
static void
describe(struct cb_area *a)
{
	struct cb_head *h = &a->head;
	unsigned n = 0;

	if (!shm_describe_begin(&h->described))
		return;
	h->head_size = sizeof(*h);
	h->nproviders = CB_NPROVIDERS;
	h->nstates = CB_NSTATES;
	h->ncounters = CB_NCOUNTERS;
	h->name_size = CB_NAME_SIZE;
	h->names_off = offsetof(struct cb_area, names);
	h->slots_off = offsetof(struct cb_area, slot);
	h->slot_size = sizeof(struct cb_slot);
	h->word_off = offsetof(struct cb_slot, word);
	h->opened_off = offsetof(struct cb_slot, opened_at);
	h->threshold_off = offsetof(struct cb_slot, threshold);
	h->cooldown_off = offsetof(struct cb_slot, cooldown_ms);
	h->counters_off = offsetof(struct cb_slot, n);
	for (unsigned i = 0; i < CB_NPROVIDERS; i++)
		strlcpy_rg(a->names[n++], provider_names[i], CB_NAME_SIZE);
	for (unsigned i = 0; i < CB_NSTATES; i++)
		strlcpy_rg(a->names[n++], state_names[i], CB_NAME_SIZE);
	for (unsigned i = 0; i < CB_NCOUNTERS; i++)
		strlcpy_rg(a->names[n++], counter_names[i], CB_NAME_SIZE);
	memcpy(h->magic, CB_MAGIC, sizeof(h->magic));
	shm_describe_end(&h->described);
}

static const char *const counter_docs[] = {
#define CB_COUNTER_DOC(id, name, doc) doc,
	CB_COUNTERS(CB_COUNTER_DOC)
#undef CB_COUNTER_DOC
};

void
cb_describe(struct shm_descw *w)
{
	shm_desc_table(w, "circuit", "circuit",
	    &(struct shm_table){ .offset = offsetof(struct cb_area, slot),
		.stride = sizeof(struct cb_slot),
		.count = CB_NPROVIDERS,
		.names_off = offsetof(struct cb_area, names),
		.name_size = CB_NAME_SIZE },
	    "one circuit per provider (the state word apart)");
	shm_desc_field(w, "circuit", "openedAt",
	    offsetof(struct cb_slot, opened_at), SHM_T_TIME_MS,
	    "when it last opened");
	shm_desc_field(w, "circuit", "threshold",
	    offsetof(struct cb_slot, threshold), SHM_T_U32,
	    "failures in a row that open it");
	shm_desc_field(w, "circuit", "cooldownMs",
	    offsetof(struct cb_slot, cooldown_ms), SHM_T_U32,
	    "how long it stays open");
	shm_desc_u64s(w, "circuit", "counters.", offsetof(struct cb_slot, n),
	    counter_names, counter_docs, CB_NCOUNTERS, SHM_T_COUNTER, NULL);
}

void
cb_area_init(struct shm_seg *seg)
{
	struct cb_area *a = cb_area_of(seg);

	assert(seg->writable);
	if (a != NULL)
		describe(a);
}

/* ready_area - the area for a writer, described on first use. */
static struct cb_area *
ready_area(struct shm_seg *seg)
{
	struct cb_area *a = cb_area_of(seg);

	if (a == NULL || !seg->writable)
		return NULL;
	if (!shm_described(&a->head.described))
		describe(a);
	return a;
}

static inline void
count(struct cb_slot *sl, enum cb_counter c)
{
	SHM_INC(&sl->n[c]);
}

static inline uint32_t
clamp_count(uint32_t v)
{
	return v == 0 ? 1 : v > CB_MAX_COUNT ? CB_MAX_COUNT : v;
}

static inline int
cas(uint64_t *w, uint64_t *expect, uint64_t next)
{
	return __atomic_compare_exchange_n(w, expect, next, 0,
	    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* note_settings - keep the last settings for relstat (no write if same). */
static void
note_settings(struct cb_slot *sl, uint32_t threshold, uint32_t cooldown_ms)
{
	if (SHM_LOAD(&sl->threshold) != threshold)
		SHM_STORE(&sl->threshold, threshold);
	if (SHM_LOAD(&sl->cooldown_ms) != cooldown_ms)
		SHM_STORE(&sl->cooldown_ms, cooldown_ms);
}

void
cb_configure(struct shm_seg *seg, unsigned provider, uint32_t threshold,
    uint32_t cooldown_ms)
{
	struct cb_area *a = ready_area(seg);

	if (a != NULL && provider < CB_NPROVIDERS)
		note_settings(&a->slot[provider], threshold, cooldown_ms);
}

int
cb_allow(struct shm_seg *seg, unsigned provider, uint64_t now_ms,
    uint32_t threshold, uint32_t cooldown_ms, uint32_t probes,
    struct cb_ticket *t, uint64_t *retry_after_ms)
{
	struct cb_area *a = ready_area(seg);
	uint64_t dummy, s, next, ttl = cb_probe_ttl(cooldown_ms);
	struct cb_slot *sl;

	if (retry_after_ms == NULL)
		retry_after_ms = &dummy;
	*retry_after_ms = 0;
	memset(t, 0, sizeof(*t));
	assert(provider < CB_NPROVIDERS);
	if (a == NULL || provider >= CB_NPROVIDERS)
		return CB_ALLOW; /* no circuit to keep: fail open */
	sl = &a->slot[provider];
	note_settings(sl, threshold, cooldown_ms);
	probes = clamp_count(probes);
	if (now_ms > CB_TIME_MAX)
		now_ms = CB_TIME_MAX;
	s = __atomic_load_n(&sl->word, __ATOMIC_ACQUIRE);
	for (;;) {
		uint64_t at = CB_W_TIME(s);
		uint32_t epoch = CB_W_EPOCH(s);

		switch (CB_W_STATE(s)) {
		case CB_ST_CLOSED:
			t->word = s;
			return CB_ALLOW;
		case CB_ST_OPEN:
			if (now_ms < at + cooldown_ms) {
				*retry_after_ms = at + cooldown_ms - now_ms;
				count(sl, CB_C_REJECTIONS);
				return CB_OPEN;
			}
			next = CB_W_MAKE(CB_ST_HALF_OPEN, 1, epoch + 1,
			    now_ms);
			if (!cas(&sl->word, &s, next))
				continue;
			count(sl, CB_C_HALF_OPENS);
			count(sl, CB_C_PROBES);
			t->word = next;
			t->probe = 1;
			t->transition = CB_T_HALF_OPENED;
			return CB_ALLOW_PROBE;
		case CB_ST_HALF_OPEN:
			if (CB_W_COUNT(s) < probes) {
				next = s + COUNT_ONE;
			} else if (now_ms >= at && now_ms - at >= ttl) {
				next = CB_W_MAKE(CB_ST_HALF_OPEN, 1, epoch + 1,
				    now_ms);
			} else {
				*retry_after_ms = CB_PROBE_BUSY_RETRY_MS;
				count(sl, CB_C_REJECTIONS);
				return CB_OPEN;
			}
			if (!cas(&sl->word, &s, next))
				continue;
			if (CB_W_EPOCH(next) != epoch) {
				count(sl, CB_C_PROBE_EXPIRIES);
				t->transition = CB_T_PROBES_EXPIRED;
			}
			count(sl, CB_C_PROBES);
			t->word = next;
			t->probe = 1;
			return CB_ALLOW_PROBE;
		default: /* not a state: start over closed */
			next = CB_W_MAKE(CB_ST_CLOSED, 0, epoch + 1, now_ms);
			cas(&sl->word, &s, next);
			s = __atomic_load_n(&sl->word, __ATOMIC_ACQUIRE);
			continue;
		}
	}
}

/* record_probe - the outcome of a probe of generation t->word. */
static int
record_probe(struct cb_slot *sl, const struct cb_ticket *t,
    enum cb_outcome outcome, uint64_t now_ms)
{
	uint64_t s = __atomic_load_n(&sl->word, __ATOMIC_ACQUIRE), next;
	int tr;

	for (;;) {
		uint32_t epoch = CB_W_EPOCH(s);

		if ((s & CB_W_GEN_MASK) != (t->word & CB_W_GEN_MASK)) {
			count(sl, CB_C_STALE_PROBES);
			return CB_T_NONE;
		}
		switch (outcome) {
		case CB_SUCCESS:
			next = CB_W_MAKE(CB_ST_CLOSED, 0, epoch + 1, now_ms);
			tr = CB_T_CLOSED;
			break;
		case CB_FAILURE:
			next = CB_W_MAKE(CB_ST_OPEN, 0, epoch + 1, now_ms);
			tr = CB_T_REOPENED;
			break;
		default:
			if (CB_W_COUNT(s) == 0)
				return CB_T_NONE;
			next = s - COUNT_ONE;
			tr = CB_T_NONE;
			break;
		}
		if (cas(&sl->word, &s, next))
			break;
	}
	if (tr == CB_T_CLOSED) {
		count(sl, CB_C_CLOSES);
	} else if (tr == CB_T_REOPENED) {
		count(sl, CB_C_OPENS);
		SHM_STORE(&sl->opened_at, now_ms);
	}
	return tr;
}

int
cb_record(struct shm_seg *seg, unsigned provider, const struct cb_ticket *t,
    enum cb_outcome outcome, uint64_t now_ms, uint32_t threshold)
{
	struct cb_area *a = ready_area(seg);
	struct cb_slot *sl;
	uint64_t s, next;

	assert(provider < CB_NPROVIDERS);
	if (a == NULL || provider >= CB_NPROVIDERS)
		return CB_T_NONE;
	sl = &a->slot[provider];
	count(sl, outcome == CB_SUCCESS ? CB_C_SUCCESSES :
		outcome == CB_FAILURE ? CB_C_FAILURES : CB_C_NEUTRALS);
	if (now_ms > CB_TIME_MAX)
		now_ms = CB_TIME_MAX;
	if (t->probe)
		return record_probe(sl, t, outcome, now_ms);
	threshold = clamp_count(threshold);
	s = __atomic_load_n(&sl->word, __ATOMIC_ACQUIRE);
	for (;;) {
		uint32_t n = CB_W_COUNT(s);

		/* granted in closed, ended in another state: no say */
		if (CB_W_STATE(s) != CB_ST_CLOSED || outcome == CB_NEUTRAL)
			return CB_T_NONE;
		if (outcome == CB_SUCCESS) {
			if (n == 0)
				return CB_T_NONE;
			next = s & CB_W_GEN_MASK;
		} else if (n + 1 >= threshold) {
			next = CB_W_MAKE(CB_ST_OPEN, 0, CB_W_EPOCH(s) + 1,
			    now_ms);
		} else {
			next = s + COUNT_ONE;
		}
		if (cas(&sl->word, &s, next))
			break;
	}
	if (CB_W_STATE(next) == CB_ST_OPEN) {
		count(sl, CB_C_OPENS);
		SHM_STORE(&sl->opened_at, now_ms);
		return CB_T_OPENED;
	}
	return CB_T_NONE;
}

int
cb_status(const struct shm_seg *seg, unsigned provider, struct cb_status *st)
{
	struct cb_area *a = cb_area_of(seg);
	const struct cb_slot *sl;
	uint64_t w;

	memset(st, 0, sizeof(*st));
	if (a == NULL || provider >= CB_NPROVIDERS)
		return -1;
	sl = &a->slot[provider];
	w = __atomic_load_n(&sl->word, __ATOMIC_ACQUIRE);
	st->state = CB_W_STATE(w);
	st->changed_at = CB_W_TIME(w);
	if (st->state == CB_ST_CLOSED)
		st->consecutive_failures = CB_W_COUNT(w);
	else if (st->state == CB_ST_HALF_OPEN)
		st->probes_in_flight = CB_W_COUNT(w);
	st->opened_at = st->state == CB_ST_OPEN ? CB_W_TIME(w) :
						  SHM_LOAD(&sl->opened_at);
	st->threshold = SHM_LOAD(&sl->threshold);
	st->cooldown_ms = SHM_LOAD(&sl->cooldown_ms);
	for (unsigned i = 0; i < CB_NCOUNTERS; i++)
		st->counters[i] = SHM_LOAD(&sl->n[i]);
	return 0;
}
