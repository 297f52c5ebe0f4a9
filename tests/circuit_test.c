/*
 * circuit_test - the shm circuit breakers: the classification, every
 * transition (closed -> open at exactly the threshold, open refusing with
 * the cooldown left, half_open after the cooldown, the probe bound, a
 * probe's success, failure and neutral outcome, late outcomes), probes of
 * a dead process expiring, several processes hammering one circuit
 * (probe bound and transition counts hold), and relstat's circuits.
 */
#include <check.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf/config.h"
#include "shm/circuit.h"
#include "shm/shm.h"
#include "testlib.h"

#define T0 UINT64_C(1700000000000)
#define COOL 5000u
#define P_OR CB_PROV_OPENROUTER_CHAT_PRIMARY

/* every circuit knob RG_PROVIDERS names exists in struct config */
#define KNOB_CHECK(id, name, threshold, cooldown, max, ttl)               \
	_Static_assert(sizeof(((struct config *)0)->threshold) == 8 &&    \
		sizeof(((struct config *)0)->cooldown) == 8,              \
	    name);
RG_PROVIDERS(KNOB_CHECK)
#undef KNOB_CHECK

static char segname[64];
static struct shm_seg seg;

static void
setup(void)
{
	tl_segname(segname, sizeof(segname), "cb");
	tl_seg_create(&seg, segname, 64);
	cb_area_init(&seg);
}

static void
teardown(void)
{
	tl_seg_destroy(&seg, segname);
}

static int
allow(unsigned prov, uint64_t now, uint32_t threshold, uint32_t probes,
    struct cb_ticket *t, uint64_t *ra)
{
	return cb_allow(&seg, prov, now, threshold, COOL, probes, t, ra);
}

static struct cb_status
status(unsigned prov)
{
	struct cb_status st;

	ck_assert_int_eq(cb_status(&seg, prov, &st), 0);
	return st;
}

static uint64_t
counter(unsigned prov, enum cb_counter c)
{
	return status(prov).counters[c];
}

/* open_it - threshold failures at now: the circuit opens. */
static void
open_it(unsigned prov, uint64_t now, uint32_t threshold)
{
	struct cb_ticket t;

	for (uint32_t i = 0; i < threshold; i++) {
		ck_assert_int_eq(allow(prov, now, threshold, 1, &t, NULL),
		    CB_ALLOW);
		ck_assert_int_eq(cb_record(&seg, prov, &t, CB_FAILURE, now,
				     threshold),
		    i + 1 == threshold ? CB_T_OPENED : CB_T_NONE);
	}
	ck_assert_uint_eq(status(prov).state, CB_ST_OPEN);
}

START_TEST(names_and_layout)
{
	const struct cb_area *a = cb_area_of(&seg);
	uint32_t stride, count;

	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->head.described, 2);
	ck_assert_mem_eq(a->head.magic, CB_MAGIC, 8);
	ck_assert_uint_eq(a->head.nproviders, CB_NPROVIDERS);
	ck_assert_uint_ge(CB_NPROVIDERS, 8);
	cb_area_size(&stride, &count);
	ck_assert_uint_eq(shm_area_by_name(&seg, "circuit")->count, count);
	ck_assert_uint_eq(shm_area_by_name(&seg, "circuit")->stride, stride);
	ck_assert_str_eq(a->names[P_OR], "openrouter_chat_primary");
	ck_assert_str_eq(a->names[CB_NPROVIDERS + CB_ST_HALF_OPEN],
	    "half_open");
	ck_assert_str_eq(a->names[CB_NPROVIDERS + CB_NSTATES + CB_C_OPENS],
	    "opens");
	ck_assert_str_eq(cb_provider_name(CB_PROV_OPENROUTER_CHAT_SECONDARY),
	    "openrouter_chat_secondary");
	ck_assert_str_eq(cb_provider_name(CB_PROV_BACKEND), "backend");
	ck_assert_str_eq(cb_provider_name(999), "unknown");
	ck_assert_int_eq(cb_provider_by_name("serper_search"),
	    CB_PROV_SERPER_SEARCH);
	ck_assert_int_eq(cb_provider_by_name("gmail_oauth"),
	    CB_PROV_GMAIL_OAUTH);
	ck_assert_int_eq(cb_provider_by_name("ebay_search"),
	    CB_PROV_EBAY_SEARCH);
	ck_assert_int_eq(cb_provider_by_name("global_search"),
	    CB_PROV_GLOBAL_SEARCH);
	ck_assert_int_eq(cb_provider_by_name("openrouter_chat"),
	    CB_PROV_OPENROUTER_CHAT);
	ck_assert_int_eq(cb_provider_by_name("nope"), -1);
	ck_assert_str_eq(cb_state_name(CB_ST_OPEN), "open");
	ck_assert_str_eq(cb_outcome_name(CB_NEUTRAL), "neutral");
	ck_assert_uint_eq(cb_probe_ttl(1000), CB_PROBE_TTL_MIN_MS);
	ck_assert_uint_eq(cb_probe_ttl(120000), 120000);
	/* every circuit starts closed with nothing counted */
	for (unsigned p = 0; p < CB_NPROVIDERS; p++) {
		struct cb_status st = status(p);

		ck_assert_uint_eq(st.state, CB_ST_CLOSED);
		ck_assert_uint_eq(st.opened_at, 0);
		for (unsigned c = 0; c < CB_NCOUNTERS; c++)
			ck_assert_uint_eq(st.counters[c], 0);
	}
}
END_TEST

START_TEST(classification)
{
	static const struct {
		int status;
		enum cb_outcome o;
	} http[] = {
		{ 200, CB_SUCCESS }, { 204, CB_SUCCESS }, { 301, CB_SUCCESS },
		{ 399, CB_SUCCESS }, { 408, CB_FAILURE }, { 429, CB_FAILURE },
		{ 500, CB_FAILURE }, { 502, CB_FAILURE }, { 503, CB_FAILURE },
		{ 504, CB_FAILURE }, { 599, CB_FAILURE }, { 400, CB_NEUTRAL },
		{ 401, CB_NEUTRAL }, { 402, CB_NEUTRAL }, { 403, CB_NEUTRAL },
		{ 404, CB_NEUTRAL }, { 409, CB_NEUTRAL }, { 422, CB_NEUTRAL },
		{ 499, CB_NEUTRAL }, { 100, CB_NEUTRAL }, { 0, CB_NEUTRAL },
		{ 600, CB_NEUTRAL }, { -1, CB_NEUTRAL },
	};

	for (size_t i = 0; i < sizeof(http) / sizeof(http[0]); i++) {
		ck_assert_msg(cb_classify_http(http[i].status) == http[i].o,
		    "status %d", http[i].status);
		ck_assert(cb_classify_error(CB_ERR_NONE, http[i].status) ==
		    http[i].o);
	}
	ck_assert(cb_classify_error(CB_ERR_CONNECT, 0) == CB_FAILURE);
	ck_assert(cb_classify_error(CB_ERR_TIMEOUT, 0) == CB_FAILURE);
	ck_assert(cb_classify_error(CB_ERR_PROTOCOL, 200) == CB_FAILURE);
	ck_assert(cb_classify_error(CB_ERR_CANCELLED, 500) == CB_NEUTRAL);
}
END_TEST

START_TEST(closed_opens_at_exactly_threshold)
{
	struct cb_ticket t;
	struct cb_status st;

	/* two failures, a success resets, neutrals count neither way */
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(allow(P_OR, T0, 3, 1, &t, NULL), CB_ALLOW);
		ck_assert_int_eq(t.probe, 0);
		cb_record(&seg, P_OR, &t, CB_FAILURE, T0, 3);
	}
	ck_assert_uint_eq(status(P_OR).consecutive_failures, 2);
	ck_assert_int_eq(allow(P_OR, T0, 3, 1, &t, NULL), CB_ALLOW);
	cb_record(&seg, P_OR, &t, CB_NEUTRAL, T0, 3);
	ck_assert_uint_eq(status(P_OR).consecutive_failures, 2);
	ck_assert_int_eq(allow(P_OR, T0, 3, 1, &t, NULL), CB_ALLOW);
	ck_assert_int_eq(cb_record(&seg, P_OR, &t, CB_SUCCESS, T0, 3),
	    CB_T_NONE);
	ck_assert_uint_eq(status(P_OR).consecutive_failures, 0);
	ck_assert_uint_eq(status(P_OR).state, CB_ST_CLOSED);
	/* threshold - 1 failures keep it closed, the threshold-th opens */
	open_it(P_OR, T0 + 10, 3);
	st = status(P_OR);
	ck_assert_uint_eq(st.opened_at, T0 + 10);
	ck_assert_uint_eq(st.consecutive_failures, 0);
	ck_assert_uint_eq(st.counters[CB_C_OPENS], 1);
	ck_assert_uint_eq(st.counters[CB_C_FAILURES], 5);
	ck_assert_uint_eq(st.counters[CB_C_SUCCESSES], 1);
	ck_assert_uint_eq(st.counters[CB_C_NEUTRALS], 1);
	ck_assert_uint_eq(st.threshold, 3);
	ck_assert_uint_eq(st.cooldown_ms, COOL);
	/* other circuits are untouched */
	ck_assert_uint_eq(status(CB_PROV_SERPER_SEARCH).state, CB_ST_CLOSED);
	/* threshold 0 is taken as 1 */
	ck_assert_int_eq(allow(CB_PROV_EBAY_SEARCH, T0, 0, 1, &t, NULL),
	    CB_ALLOW);
	ck_assert_int_eq(cb_record(&seg, CB_PROV_EBAY_SEARCH, &t, CB_FAILURE,
			     T0, 0),
	    CB_T_OPENED);
}
END_TEST

START_TEST(open_rejects_with_cooldown_left)
{
	struct cb_ticket t;
	uint64_t ra;

	open_it(P_OR, T0, 2);
	ck_assert_int_eq(allow(P_OR, T0, 2, 1, &t, &ra), CB_OPEN);
	ck_assert_uint_eq(ra, COOL);
	ck_assert_int_eq(allow(P_OR, T0 + 1234, 2, 1, &t, &ra), CB_OPEN);
	ck_assert_uint_eq(ra, COOL - 1234);
	ck_assert_int_eq(allow(P_OR, T0 + COOL - 1, 2, 1, &t, &ra), CB_OPEN);
	ck_assert_uint_eq(ra, 1);
	ck_assert_uint_eq(counter(P_OR, CB_C_REJECTIONS), 3);
	/* NULL retry_after is fine */
	ck_assert_int_eq(allow(P_OR, T0 + 1, 2, 1, &t, NULL), CB_OPEN);
	/* a request granted before it opened changes nothing now */
	ck_assert_uint_eq(status(P_OR).state, CB_ST_OPEN);
	t.word = 0;
	t.probe = 0;
	ck_assert_int_eq(cb_record(&seg, P_OR, &t, CB_FAILURE, T0 + 2, 2),
	    CB_T_NONE);
	ck_assert_int_eq(cb_record(&seg, P_OR, &t, CB_SUCCESS, T0 + 2, 2),
	    CB_T_NONE);
	ck_assert_uint_eq(status(P_OR).state, CB_ST_OPEN);
	ck_assert_uint_eq(counter(P_OR, CB_C_OPENS), 1);
}
END_TEST

START_TEST(half_open_probe_bound_and_success)
{
	struct cb_ticket p1, p2, t;
	struct cb_status st;
	uint64_t ra;

	open_it(P_OR, T0, 2);
	ck_assert_int_eq(allow(P_OR, T0 + COOL, 2, 1, &p1, &ra),
	    CB_ALLOW_PROBE);
	ck_assert_int_eq(p1.probe, 1);
	ck_assert_int_eq(p1.transition, CB_T_HALF_OPENED);
	st = status(P_OR);
	ck_assert_uint_eq(st.state, CB_ST_HALF_OPEN);
	ck_assert_uint_eq(st.probes_in_flight, 1);
	ck_assert_uint_eq(st.counters[CB_C_HALF_OPENS], 1);
	/* a second concurrent probe is refused */
	ck_assert_int_eq(allow(P_OR, T0 + COOL + 1, 2, 1, &t, &ra), CB_OPEN);
	ck_assert_uint_eq(ra, CB_PROBE_BUSY_RETRY_MS);
	/* with two places it is let through, a third is not */
	ck_assert_int_eq(allow(P_OR, T0 + COOL + 1, 2, 2, &p2, &ra),
	    CB_ALLOW_PROBE);
	ck_assert_int_eq(p2.transition, CB_T_NONE);
	ck_assert_uint_eq(status(P_OR).probes_in_flight, 2);
	ck_assert_int_eq(allow(P_OR, T0 + COOL + 1, 2, 2, &t, &ra), CB_OPEN);
	/* the first probe's success closes */
	ck_assert_int_eq(cb_record(&seg, P_OR, &p1, CB_SUCCESS, T0 + COOL + 5,
			     2),
	    CB_T_CLOSED);
	st = status(P_OR);
	ck_assert_uint_eq(st.state, CB_ST_CLOSED);
	ck_assert_uint_eq(st.consecutive_failures, 0);
	ck_assert_uint_eq(st.counters[CB_C_CLOSES], 1);
	ck_assert_uint_eq(st.counters[CB_C_PROBES], 2);
	ck_assert_uint_eq(st.counters[CB_C_REJECTIONS], 2);
	/* the other probe's outcome is late: ignored, even a failure */
	ck_assert_int_eq(cb_record(&seg, P_OR, &p2, CB_FAILURE, T0 + COOL + 6,
			     2),
	    CB_T_NONE);
	st = status(P_OR);
	ck_assert_uint_eq(st.state, CB_ST_CLOSED);
	ck_assert_uint_eq(st.consecutive_failures, 0);
	ck_assert_uint_eq(st.counters[CB_C_STALE_PROBES], 1);
	ck_assert_int_eq(allow(P_OR, T0 + COOL + 7, 2, 1, &t, NULL),
	    CB_ALLOW);
}
END_TEST

START_TEST(probe_failure_reopens_with_new_cooldown)
{
	struct cb_ticket p, t;
	uint64_t ra, again = T0 + COOL + 100;

	open_it(P_OR, T0, 2);
	ck_assert_int_eq(allow(P_OR, T0 + COOL, 2, 1, &p, NULL),
	    CB_ALLOW_PROBE);
	/* a closed-era failure does not decide a half_open circuit */
	t.word = 0;
	t.probe = 0;
	ck_assert_int_eq(cb_record(&seg, P_OR, &t, CB_FAILURE, T0 + COOL, 2),
	    CB_T_NONE);
	ck_assert_uint_eq(status(P_OR).state, CB_ST_HALF_OPEN);
	ck_assert_int_eq(cb_record(&seg, P_OR, &p, CB_FAILURE, again, 2),
	    CB_T_REOPENED);
	ck_assert_uint_eq(status(P_OR).state, CB_ST_OPEN);
	ck_assert_uint_eq(status(P_OR).opened_at, again);
	ck_assert_uint_eq(counter(P_OR, CB_C_OPENS), 2);
	ck_assert_int_eq(allow(P_OR, again + 1, 2, 1, &t, &ra), CB_OPEN);
	ck_assert_uint_eq(ra, COOL - 1);
	ck_assert_int_eq(allow(P_OR, again + COOL, 2, 1, &t, &ra),
	    CB_ALLOW_PROBE);
	ck_assert_int_eq(t.transition, CB_T_HALF_OPENED);
	ck_assert_uint_eq(counter(P_OR, CB_C_HALF_OPENS), 2);
	/* recording the same probe twice: the second is stale */
	ck_assert_int_eq(cb_record(&seg, P_OR, &t, CB_FAILURE, again + COOL,
			     2),
	    CB_T_REOPENED);
	ck_assert_int_eq(cb_record(&seg, P_OR, &t, CB_SUCCESS, again + COOL,
			     2),
	    CB_T_NONE);
	ck_assert_uint_eq(status(P_OR).state, CB_ST_OPEN);
}
END_TEST

START_TEST(neutral_probe_frees_its_place)
{
	struct cb_ticket p, q;
	struct cb_status st;

	open_it(P_OR, T0, 2);
	ck_assert_int_eq(allow(P_OR, T0 + COOL, 2, 1, &p, NULL),
	    CB_ALLOW_PROBE);
	ck_assert_int_eq(allow(P_OR, T0 + COOL, 2, 1, &q, NULL), CB_OPEN);
	ck_assert_int_eq(cb_record(&seg, P_OR, &p, CB_NEUTRAL, T0 + COOL, 2),
	    CB_T_NONE);
	st = status(P_OR);
	ck_assert_uint_eq(st.state, CB_ST_HALF_OPEN);
	ck_assert_uint_eq(st.probes_in_flight, 0);
	ck_assert_uint_eq(st.counters[CB_C_NEUTRALS], 1);
	/* a neutral again is a no-op, not an underflow */
	ck_assert_int_eq(cb_record(&seg, P_OR, &p, CB_NEUTRAL, T0 + COOL, 2),
	    CB_T_NONE);
	ck_assert_uint_eq(status(P_OR).probes_in_flight, 0);
	/* the place is free again: same generation, new probe */
	ck_assert_int_eq(allow(P_OR, T0 + COOL + 1, 2, 1, &q, NULL),
	    CB_ALLOW_PROBE);
	ck_assert_int_eq(q.transition, CB_T_NONE);
	ck_assert_int_eq(cb_record(&seg, P_OR, &q, CB_SUCCESS, T0 + COOL + 2,
			     2),
	    CB_T_CLOSED);
	ck_assert_uint_eq(counter(P_OR, CB_C_HALF_OPENS), 1);
}
END_TEST

/* take_probe - a child takes the probe at the end of the cooldown and
 * exits without reporting its outcome. */
static void
take_probe(struct shm_seg *s, void *arg, int id)
{
	struct cb_ticket *dead = arg;

	(void)id;
	if (cb_allow(s, P_OR, T0 + COOL, 2, COOL, 1, dead, NULL) !=
	    CB_ALLOW_PROBE)
		_exit(4);
}

/* A probe taken by a process that died holds its place until the probe
 * TTL, then a new generation starts; its outcome would be ignored. */
START_TEST(dead_probe_expires)
{
	struct cb_ticket *dead = tl_shared_map(sizeof(*dead)), t;
	uint64_t since = T0 + COOL, ttl = cb_probe_ttl(COOL), ra;

	open_it(P_OR, T0, 2);
	tl_seg_children(1, segname, take_probe, dead, NULL);
	ck_assert_uint_eq(status(P_OR).probes_in_flight, 1);
	ck_assert_int_eq(allow(P_OR, since + 1, 2, 1, &t, &ra), CB_OPEN);
	ck_assert_int_eq(allow(P_OR, since + ttl - 1, 2, 1, &t, &ra),
	    CB_OPEN);
	ck_assert_uint_eq(counter(P_OR, CB_C_PROBE_EXPIRIES), 0);
	ck_assert_int_eq(allow(P_OR, since + ttl, 2, 1, &t, &ra),
	    CB_ALLOW_PROBE);
	ck_assert_int_eq(t.transition, CB_T_PROBES_EXPIRED);
	ck_assert_uint_eq(counter(P_OR, CB_C_PROBE_EXPIRIES), 1);
	ck_assert_uint_eq(status(P_OR).probes_in_flight, 1);
	/* had the dead probe reported after all: its generation is over */
	ck_assert_int_eq(cb_record(&seg, P_OR, dead, CB_SUCCESS,
			     since + ttl + 1, 2),
	    CB_T_NONE);
	ck_assert_uint_eq(status(P_OR).state, CB_ST_HALF_OPEN);
	ck_assert_uint_eq(counter(P_OR, CB_C_STALE_PROBES), 1);
	ck_assert_int_eq(cb_record(&seg, P_OR, &t, CB_SUCCESS,
			     since + ttl + 2, 2),
	    CB_T_CLOSED);
	munmap(dead, sizeof(*dead));
}
END_TEST

#define NPROC 4
#define ITER 6000 /* NPROC * ITER ms of fake clock < the probe TTL */
#define H_THRESHOLD 3u
#define H_COOL 20u
#define H_PROBES 2u
#define NGEN 4096u

struct gen {
	uint64_t key; /* generation: the probe ticket's word, count masked */
	uint32_t inflight, max;
};

struct hammer {
	uint64_t clock;
	uint64_t opened, reopened, half_opened, closed, expired;
	uint64_t rejected, recorded, probes;
	uint64_t overflow, bad;
	struct gen gen[NGEN];
};

/* gen_of - the entry of a generation, inserted on first sight. */
static struct gen *
gen_of(struct hammer *h, uint64_t word)
{
	uint64_t key = word & CB_W_GEN_MASK; /* state bits: never 0 */
	uint32_t i = (uint32_t)(key * UINT64_C(0x9e3779b97f4a7c15) >> 52);

	for (uint32_t k = 0; k < NGEN; k++, i = (i + 1) % NGEN) {
		uint64_t cur = __atomic_load_n(&h->gen[i].key,
		    __ATOMIC_ACQUIRE);

		if (cur == 0 && __atomic_compare_exchange_n(&h->gen[i].key,
				    &cur, key, 0, __ATOMIC_ACQ_REL,
				    __ATOMIC_ACQUIRE))
			return &h->gen[i];
		if (cur == key)
			return &h->gen[i];
	}
	__atomic_add_fetch(&h->overflow, 1, __ATOMIC_RELAXED);
	return NULL;
}

static void
add(uint64_t *p)
{
	__atomic_add_fetch(p, 1, __ATOMIC_RELAXED);
}

static void
hammer_child(struct shm_seg *s, void *arg, int id)
{
	struct hammer *h = arg;
	uint64_t rnd = UINT64_C(0x2545f4914f6cdd1d) * (uint64_t)(id + 1);

	for (int i = 0; i < ITER; i++) {
		uint64_t now = T0 + __atomic_add_fetch(&h->clock, 1,
		    __ATOMIC_RELAXED);
		struct cb_ticket t;
		struct gen *g = NULL;
		enum cb_outcome o;
		int v, tr;

		v = cb_allow(s, CB_PROV_BACKEND, now, H_THRESHOLD, H_COOL,
		    H_PROBES, &t, NULL);
		if (v == CB_OPEN) {
			add(&h->rejected);
			continue;
		}
		if (t.transition == CB_T_HALF_OPENED)
			add(&h->half_opened);
		if (t.transition == CB_T_PROBES_EXPIRED)
			add(&h->expired);
		if (v == CB_ALLOW_PROBE) {
			uint32_t n, m;

			add(&h->probes);
			g = gen_of(h, t.word);
			if (g != NULL) {
				n = __atomic_add_fetch(&g->inflight, 1,
				    __ATOMIC_ACQ_REL);
				m = __atomic_load_n(&g->max, __ATOMIC_RELAXED);
				while (n > m &&
				    !__atomic_compare_exchange_n(&g->max, &m,
					n, 0, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED))
					;
			}
		}
		rnd ^= rnd << 13;
		rnd ^= rnd >> 7;
		rnd ^= rnd << 17;
		o = rnd % 10 < 5 ? CB_FAILURE : rnd % 10 < 8 ? CB_SUCCESS :
								   CB_NEUTRAL;
		if (rnd % 7 == 0)
			sched_yield(); /* let others in between */
		if (g != NULL)
			__atomic_sub_fetch(&g->inflight, 1, __ATOMIC_ACQ_REL);
		tr = cb_record(s, CB_PROV_BACKEND, &t, o, now, H_THRESHOLD);
		add(&h->recorded);
		if (tr == CB_T_OPENED)
			add(&h->opened);
		else if (tr == CB_T_REOPENED)
			add(&h->reopened);
		else if (tr == CB_T_CLOSED)
			add(&h->closed);
		else if (tr != CB_T_NONE)
			add(&h->bad);
	}
}

START_TEST(processes_hammer_one_circuit)
{
	struct hammer *h = tl_shared_map(sizeof(*h));
	struct cb_status st;
	uint64_t max = 0, gens = 0;

	tl_seg_children(NPROC, segname, hammer_child, h, NULL);
	st = status(CB_PROV_BACKEND);
	ck_assert_uint_eq(h->overflow, 0);
	ck_assert_uint_eq(h->bad, 0);
	ck_assert_uint_eq(h->expired, 0); /* the clock never reaches the TTL */
	for (unsigned i = 0; i < NGEN; i++)
		if (h->gen[i].key != 0) {
			gens++;
			if (h->gen[i].max > max)
				max = h->gen[i].max;
			ck_assert_uint_eq(h->gen[i].inflight, 0);
		}
	/* never more probes in flight in a generation than allowed */
	ck_assert_uint_le(max, H_PROBES);
	ck_assert_uint_eq(gens, st.counters[CB_C_HALF_OPENS]);
	/* every transition was made once and reported to one caller */
	ck_assert_uint_eq(st.counters[CB_C_OPENS], h->opened + h->reopened);
	ck_assert_uint_eq(st.counters[CB_C_HALF_OPENS], h->half_opened);
	ck_assert_uint_eq(st.counters[CB_C_CLOSES], h->closed);
	ck_assert_uint_eq(st.counters[CB_C_PROBES], h->probes);
	ck_assert_uint_eq(st.counters[CB_C_REJECTIONS], h->rejected);
	ck_assert_uint_eq(st.counters[CB_C_SUCCESSES] +
		st.counters[CB_C_FAILURES] + st.counters[CB_C_NEUTRALS],
	    h->recorded);
	ck_assert_uint_eq(h->recorded + h->rejected, (uint64_t)NPROC * ITER);
	/* the transitions form one path of the state machine */
	ck_assert_uint_eq(h->opened + h->reopened - h->half_opened,
	    st.state == CB_ST_OPEN);
	ck_assert_uint_eq(h->half_opened - h->closed - h->reopened,
	    st.state == CB_ST_HALF_OPEN);
	ck_assert_uint_eq(1 + h->closed - h->opened,
	    st.state == CB_ST_CLOSED);
	/* and the test did exercise them */
	ck_assert_uint_gt(h->opened, 10);
	ck_assert_uint_gt(h->reopened, 10);
	ck_assert_uint_gt(h->closed, 10);
	munmap(h, sizeof(*h));
}
END_TEST

static json_t *
circuit_json(json_t *root, const char *name)
{
	json_t *c = json_object_get(json_object_get(root, "circuits"), name);

	ck_assert_msg(json_is_object(c), "no circuit %s", name);
	return c;
}

START_TEST(relstat_shows_circuits)
{
	static char text[1 << 20];
	char row[256];
	struct cb_area *a = cb_area_of(&seg);
	struct cb_ticket t;
	json_t *j, *c;

	open_it(P_OR, T0, 2);
	allow(P_OR, T0 + 1, 2, 1, &t, NULL); /* rejected */
	allow(CB_PROV_SERPER_SEARCH, T0, 5, 1, &t, NULL);
	cb_record(&seg, CB_PROV_SERPER_SEARCH, &t, CB_FAILURE, T0, 5);
	open_it(CB_PROV_GMAIL_OAUTH, T0, 1);
	allow(CB_PROV_GMAIL_OAUTH, T0 + COOL, 1, 1, &t, NULL);
	j = tl_relstat(segname, "-j", text, sizeof(text));
	c = circuit_json(j, "openrouter_chat_primary");
	ck_assert_str_eq(json_string_value(json_object_get(c, "state")),
	    "open");
	ck_assert_int_eq(tl_jint(c, "openedAt"), (json_int_t)T0);
	ck_assert_int_eq(tl_jint(c, "consecutiveFailures"), 0);
	ck_assert_int_eq(tl_jint(c, "threshold"), 2);
	ck_assert_int_eq(tl_jint(c, "cooldownMs"), COOL);
	ck_assert_int_eq(tl_jint(json_object_get(c, "counters"), "opens"), 1);
	ck_assert_int_eq(
	    tl_jint(json_object_get(c, "counters"), "failures"), 2);
	ck_assert_int_eq(
	    tl_jint(json_object_get(c, "counters"), "rejections"), 1);
	c = circuit_json(j, "serper_search");
	ck_assert_str_eq(json_string_value(json_object_get(c, "state")),
	    "closed");
	ck_assert_int_eq(tl_jint(c, "consecutiveFailures"), 1);
	ck_assert(json_is_null(json_object_get(c, "openedAt")));
	c = circuit_json(j, "gmail_oauth");
	ck_assert_str_eq(json_string_value(json_object_get(c, "state")),
	    "half_open");
	ck_assert_int_eq(tl_jint(c, "probesInFlight"), 1);
	ck_assert_int_eq(tl_jint(c, "openedAt"), (json_int_t)T0);
	ck_assert_int_eq(
	    tl_jint(json_object_get(c, "counters"), "halfOpens"), 1);
	ck_assert_int_eq(json_object_size(json_object_get(j, "circuits")),
	    CB_NPROVIDERS);
	/* the other sections are still there */
	ck_assert(json_is_object(json_object_get(j, "rateLimitPressure")));
	ck_assert(json_is_array(json_object_get(j, "processes")));
	json_decref(j);

	tl_relstat(segname, "-1", text, sizeof(text));
	/* name, state, fails, threshold, opens, rejected, rate, opened */
	ck_assert_str_eq(tl_row(text, "CIRCUIT", row, sizeof(row)),
	    "CIRCUIT STATE FAILS THRESH OPENS REJECTED REJ/S OPENED");
	ck_assert_ptr_nonnull(
	    tl_row(text, "openrouter_chat_primary", row, sizeof(row)));
	ck_assert_msg(strncmp(row, "openrouter_chat_primary open 0 2 1 1 - ",
			  39) == 0, "%s", row);
	ck_assert_ptr_nonnull(tl_row(text, "serper_search", row, sizeof(row)));
	ck_assert_msg(strncmp(row, "serper_search closed 1 5 0 0 - -", 32) ==
	    0, "%s", row);
	ck_assert_ptr_nonnull(tl_row(text, "gmail_oauth", row, sizeof(row)));
	ck_assert_msg(strncmp(row, "gmail_oauth half_open 0 ", 24) == 0, "%s",
	    row);

	/* names come from the segment */
	strcpy(a->names[CB_PROV_BACKEND], "future_circuit");
	j = tl_relstat(segname, "-j", text, sizeof(text));
	circuit_json(j, "future_circuit");
	ck_assert_ptr_null(json_object_get(json_object_get(j, "circuits"),
	    "backend"));
	json_decref(j);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("circuit");
	TCase *tc = tl_tcase(s, "circuit", setup, teardown, 60);

	tcase_add_test(tc, names_and_layout);
	tcase_add_test(tc, classification);
	tcase_add_test(tc, closed_opens_at_exactly_threshold);
	tcase_add_test(tc, open_rejects_with_cooldown_left);
	tcase_add_test(tc, half_open_probe_bound_and_success);
	tcase_add_test(tc, probe_failure_reopens_with_new_cooldown);
	tcase_add_test(tc, neutral_probe_frees_its_place);
	tcase_add_test(tc, dead_probe_expires);
	tcase_add_test(tc, processes_hammer_one_circuit);
	tcase_add_test(tc, relstat_shows_circuits);
	return tl_run(s);
}
