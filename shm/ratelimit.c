/*
 * ratelimit - see ratelimit.h.  An open-addressing table of fixed
 * capacity in shared memory, changed only by CAS on 64-bit words.
 *
 * A key's slot is found by linear probing from tag & (slots - 1), at most
 * RL_PROBE_MAX slots.  Slots are never emptied, so an empty slot ends the
 * run: the key is not beyond it.  Within a run the first free slot (empty,
 * expired, or a stale claim) is the candidate, taken only when the key is
 * not found in the whole run.
 *
 * Transitions of a slot's state word (every one a CAS, so each reader
 * that loaded the old value and then the tag sees its CAS fail if the
 * slot changed owner meanwhile):
 *   same key:  expired -> live(now + window, 1); live(e, c) -> (e, c + 1)
 *   empty:     tag 0 -> tag (CAS); the state 0 means "no window yet"
 *   reuse:     expired live -> claim(now, pid); tag -> new tag (CAS);
 *              claim(now, pid) -> live(now + window, 1)
 * A claim lasts three instructions; one older than RL_CLAIM_STEAL_MS or
 * whose pid is dead is taken over (claim -> claim), so a process that dies
 * in between never keeps a slot.  A stalled claimer that wakes finds its
 * tag CAS or its last CAS failing and starts over.  Window ends of a slot
 * only grow (a new end is now + window > old end <= now), so a state value
 * never comes back (no ABA).
 *
 * Tags are SipHash-2-4 under a random per-segment key: clients cannot pick
 * keys that collide.  Two different keys with the same 64-bit tag share a
 * window (odds 2^-64 per pair): accepted.
 *
 * Outcome counters are RL_SHARDS copies picked by tag bits, so processes
 * hammering different keys do not share one cache line; readers sum.
 *
 * Known limit: when two processes insert the same new key while their
 * clocks disagree on whether a slot before it has just expired, the key
 * can get two slots and, for that one window, up to twice its limit.
 */
#include "shm/ratelimit.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "util/util.h"

_Static_assert(RL_NBUCKETS <= 255, "bucket index must fit a byte");
_Static_assert(offsetof(struct rl_area, table) % 64 == 0,
    "table must start on a cache line");
_Static_assert(sizeof(struct rl_entry) == 16, "entry is two words");
_Static_assert(sizeof(struct rl_shard) % 64 == 0, "shard padding");
_Static_assert((RL_SHARDS & (RL_SHARDS - 1)) == 0, "shards: power of two");
_Static_assert(RL_COUNT_MAX >= 1000000, "RATE_LIMIT_*_MAX up to 1e6");

#define AGAIN (-1)
#define YIELD_AFTER 8u

static const char *const bucket_names[] = {
#define RL_BUCKET_NAME(id, name, max, window) name,
	RL_BUCKETS(RL_BUCKET_NAME)
#undef RL_BUCKET_NAME
};

static const char *const outcome_names[] = {
#define RL_OUTCOME_NAME(id, name) name,
	RL_OUTCOMES(RL_OUTCOME_NAME)
#undef RL_OUTCOME_NAME
};

static const char *const tstat_names[] = {
#define RL_TSTAT_NAME(id, name, doc) name,
	RL_TSTATS(RL_TSTAT_NAME)
#undef RL_TSTAT_NAME
};

const char *
rl_bucket_name(unsigned bucket)
{
	return bucket < RL_NBUCKETS ? bucket_names[bucket] : "unknown";
}

int
rl_bucket_by_name(const char *name)
{
	for (unsigned i = 0; i < RL_NBUCKETS; i++)
		if (strcmp(bucket_names[i], name) == 0)
			return (int)i;
	return -1;
}

const char *
rl_outcome_name(unsigned outcome)
{
	return outcome < RL_NOUTCOMES ? outcome_names[outcome] : "unknown";
}

uint64_t
rl_retry_after_s(uint64_t ms)
{
	uint64_t s = ms / 1000 + (ms % 1000 != 0);

	return s ? s : 1;
}

/* round_slots - power of two in [RL_MIN_SLOTS, RL_MAX_SLOTS]. */
static uint32_t
round_slots(uint32_t want)
{
	uint32_t n = RL_MIN_SLOTS;

	while (n < want && n < RL_MAX_SLOTS)
		n <<= 1;
	return n;
}

size_t
rl_area_size(uint32_t want, uint32_t *stride, uint32_t *count)
{
	uint32_t slots = round_slots(want);

	*stride = sizeof(struct rl_entry);
	*count = slots;
	return offsetof(struct rl_area, table) +
	    (size_t)slots * sizeof(struct rl_entry);
}

struct rl_area *
rl_area_of(const struct shm_seg *seg)
{
	const struct shm_area *d;

	if (seg == NULL || seg->hdr == NULL)
		return NULL;
	d = shm_area(seg, SHM_AREA_RATELIMIT);
	if (d == NULL || d->size < offsetof(struct rl_area, table) ||
	    d->offset + d->size > seg->size || d->count == 0 ||
	    (d->count & (d->count - 1)) != 0 ||
	    d->size < offsetof(struct rl_area, table) +
		    (uint64_t)d->count * sizeof(struct rl_entry))
		return NULL;
	return (struct rl_area *)((char *)seg->base + d->offset);
}

static inline uint64_t
rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                          \
	do {                                                              \
		v0 += v1;                                                 \
		v1 = rotl(v1, 13);                                        \
		v1 ^= v0;                                                 \
		v0 = rotl(v0, 32);                                        \
		v2 += v3;                                                 \
		v3 = rotl(v3, 16);                                        \
		v3 ^= v2;                                                 \
		v0 += v3;                                                 \
		v3 = rotl(v3, 21);                                        \
		v3 ^= v0;                                                 \
		v2 += v1;                                                 \
		v1 = rotl(v1, 17);                                        \
		v1 ^= v2;                                                 \
		v2 = rotl(v2, 32);                                        \
	} while (0)

/* siphash24 - SipHash-2-4 of (one byte tag0, then n bytes of p). */
static uint64_t
siphash24(const uint64_t k[2], unsigned char tag0, const unsigned char *p,
    size_t n)
{
	uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k[0];
	uint64_t v1 = UINT64_C(0x646f72616e646f6d) ^ k[1];
	uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k[0];
	uint64_t v3 = UINT64_C(0x7465646279746573) ^ k[1];
	size_t total = n + 1, i = 0;
	uint64_t m = 0, b = (uint64_t)total << 56;
	unsigned fill = 1;

	m = tag0;
	for (;;) {
		while (fill < 8 && i < n)
			m |= (uint64_t)p[i++] << (8 * fill++);
		if (fill < 8)
			break;
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
		m = 0;
		fill = 0;
	}
	b |= m;
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* random64 - from the kernel; a clock and pid mix if that fails. */
static uint64_t
random64(void)
{
	uint64_t r;

	if (getrandom(&r, sizeof(r), 0) == (ssize_t)sizeof(r))
		return r;
	r = mono_us() ^ (uint64_t)getpid() << 40 ^ (uint64_t)(uintptr_t)&r;
	r ^= r >> 33;
	r *= UINT64_C(0xff51afd7ed558ccd);
	return r ^ r >> 33;
}

/* seed_get - the area's key, set on first use by whoever gets there. */
static void
seed_get(struct rl_area *a, uint64_t k[2])
{
	for (int i = 0; i < 2; i++) {
		uint64_t v = __atomic_load_n(&a->head.seed[i],
		    __ATOMIC_RELAXED);

		if (v == 0) {
			uint64_t r = random64() | 1;

			if (__atomic_compare_exchange_n(&a->head.seed[i], &v,
				r, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
				v = r;
		}
		k[i] = v;
	}
}

uint64_t
rl_hash(struct rl_area *a, unsigned bucket, const char *key, size_t klen)
{
	uint64_t k[2], h;

	seed_get(a, k);
	h = siphash24(k, (unsigned char)bucket, (const unsigned char *)key,
	    klen);
	return h ? h : 1;
}

/* describe - write names and layout once; losers of the race go on. */
static void
describe(struct rl_area *a, uint32_t slots)
{
	struct rl_head *h = &a->head;
	unsigned n = 0;

	if (!shm_describe_begin(&h->described))
		return;
	h->head_size = sizeof(*h);
	h->nbuckets = RL_NBUCKETS;
	h->noutcomes = RL_NOUTCOMES;
	h->ntstats = RL_NTSTATS;
	h->name_size = RL_NAME_SIZE;
	h->names_off = offsetof(struct rl_area, names);
	h->nshards = RL_SHARDS;
	h->shard_stride = sizeof(struct rl_shard);
	h->counters_off = offsetof(struct rl_area, shard);
	h->tstats_off = offsetof(struct rl_area, tstat);
	h->table_off = offsetof(struct rl_area, table);
	h->entry_size = sizeof(struct rl_entry);
	h->slots = slots;
	for (unsigned i = 0; i < RL_NBUCKETS; i++)
		strlcpy_rg(a->names[n++], bucket_names[i], RL_NAME_SIZE);
	for (unsigned i = 0; i < RL_NOUTCOMES; i++)
		strlcpy_rg(a->names[n++], outcome_names[i], RL_NAME_SIZE);
	for (unsigned i = 0; i < RL_NTSTATS; i++)
		strlcpy_rg(a->names[n++], tstat_names[i], RL_NAME_SIZE);
	__atomic_store_n(&a->tstat[RL_TS_SLOTS], slots, __ATOMIC_RELAXED);
	memcpy(h->magic, RL_MAGIC, sizeof(h->magic));
	shm_describe_end(&h->described);
}

void
rl_describe(struct shm_descw *w)
{
	shm_desc_table(w, "ratelimit", "rl.buckets",
	    &(struct shm_table){ .offset = offsetof(struct rl_area, shard),
		.stride = RL_NOUTCOMES * sizeof(uint64_t),
		.count = RL_NBUCKETS,
		.names_off = offsetof(struct rl_area, names),
		.name_size = RL_NAME_SIZE,
		.copies = RL_SHARDS,
		.copy_stride = sizeof(struct rl_shard) },
	    "decisions per bucket, by outcome (copies summed)");
	shm_desc_u64s(w, "rl.buckets", "", 0, outcome_names, NULL,
	    RL_NOUTCOMES, SHM_T_COUNTER, "decisions with this outcome");
	shm_desc_table(w, "ratelimit", "rl.table",
	    &(struct shm_table){ .offset = offsetof(struct rl_area, tstat),
		.stride = sizeof(((struct rl_area *)0)->tstat),
		.count = 1 },
	    "statistics of the table of windows");
#define RL_TSTAT_DESC(id, name, doc)                                      \
	shm_desc_field(w, "rl.table", name, RL_TS_##id * sizeof(uint64_t),  \
	    RL_TS_##id == RL_TS_SLOTS ? SHM_T_GAUGE : SHM_T_COUNTER, doc);
	RL_TSTATS(RL_TSTAT_DESC)
#undef RL_TSTAT_DESC
}

void
rl_area_init(struct shm_seg *seg)
{
	struct rl_area *a = rl_area_of(seg);
	uint64_t k[2];

	assert(seg->writable);
	if (a == NULL)
		return;
	seed_get(a, k);
	describe(a, shm_area(seg, SHM_AREA_RATELIMIT)->count);
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Per-call context of rl_check. */
struct probe {
	struct rl_area *a;
	uint64_t tag, now, end; /* end of a window started now */
	uint32_t mask, limit;
	unsigned tries;
	struct rl_result *out;
};

static inline void
tstat_inc(struct rl_area *a, enum rl_tstat s)
{
	SHM_INC(&a->tstat[s]);
}

/* claim_stale - may a claim word seen now be taken over? */
static int
claim_stale(const struct probe *p, uint64_t s)
{
	uint64_t age = (p->now - (s >> 32)) & 0x7fffffffu;
	pid_t pid = (pid_t)(uint32_t)s;

	if (age >= RL_CLAIM_STEAL_MS && age < (1u << 30))
		return 1;
	/* a syscall: only once a claim has held us up for a while */
	return p->tries >= YIELD_AFTER && pid > 0 && pid != getpid() &&
	    kill(pid, 0) != 0 && errno == ESRCH;
}

/* count_in - count the request in e, whose tag was p->tag with state s. */
static int
count_in(struct probe *p, struct rl_entry *e, uint64_t s)
{
	struct rl_result *out = p->out;

	for (;;) {
		uint64_t next, end;
		uint32_t c;

		if (s & RL_ST_CLAIM)
			return AGAIN; /* the slot is changing hands */
		end = RL_ST_END(s);
		c = RL_ST_COUNT(s);
		if (p->now >= end) {
			next = RL_ST_LIVE(p->end, 1);
			end = p->end;
			c = 0;
		} else if (c >= p->limit) {
			out->retry_after_ms = end - p->now;
			out->count = c;
			out->remaining = 0;
			return RL_BLOCKED;
		} else {
			next = s + 1;
		}
		if (__atomic_compare_exchange_n(&e->state, &s, next, 0,
			__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			out->retry_after_ms = end - p->now;
			out->count = c + 1;
			out->remaining = p->limit - (c + 1);
			return RL_ALLOWED;
		}
		/* s is the new value; is the slot still ours? */
		if (++p->tries >= RL_CAS_RETRIES)
			return AGAIN;
		if (__atomic_load_n(&e->tag, __ATOMIC_ACQUIRE) != p->tag)
			return AGAIN;
	}
}

/* take_over - move slot e, seen with state s, to p->tag. */
static int
take_over(struct probe *p, struct rl_entry *e, uint64_t s, int steal)
{
	uint64_t mine = RL_ST_CLAIMED(p->now, getpid());
	uint64_t t;

	if (!__atomic_compare_exchange_n(&e->state, &s, mine, 0,
		__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return AGAIN;
	tstat_inc(p->a, steal ? RL_TS_CLAIM_STEALS : RL_TS_REUSED);
	t = __atomic_load_n(&e->tag, __ATOMIC_ACQUIRE);
	/* only stalled earlier claimers race us here, once each */
	for (unsigned i = 0; i < RL_CAS_RETRIES; i++) {
		if (__atomic_compare_exchange_n(&e->tag, &t, p->tag, 0,
			__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			break;
		if (i + 1 == RL_CAS_RETRIES)
			return AGAIN; /* our claim goes stale */
	}
	if (!__atomic_compare_exchange_n(&e->state, &mine,
		RL_ST_LIVE(p->end, 1), 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		return AGAIN; /* taken over from us meanwhile */
	p->out->retry_after_ms = p->end - p->now;
	p->out->count = 1;
	p->out->remaining = p->limit - 1;
	return RL_ALLOWED;
}

/* attempt - one pass over the key's probe run. */
static int
attempt(struct probe *p)
{
	struct rl_entry *cand = NULL;
	uint64_t cand_state = 0;
	int cand_empty = 0, cand_steal = 0, busy = 0;
	uint32_t home = (uint32_t)p->tag & p->mask;
	uint32_t run = RL_PROBE_MAX <= p->mask + 1 ? RL_PROBE_MAX :
						     p->mask + 1;

	for (uint32_t i = 0; i < run; i++) {
		struct rl_entry *e = &p->a->table[(home + i) & p->mask];
		uint64_t s = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
		uint64_t t = __atomic_load_n(&e->tag, __ATOMIC_ACQUIRE);

		if (s & RL_ST_CLAIM) {
			if (cand == NULL && claim_stale(p, s)) {
				cand = e;
				cand_state = s;
				cand_steal = 1;
			} else {
				busy = 1;
			}
			continue;
		}
		if (t == p->tag)
			return count_in(p, e, s);
		if (t == 0) {
			if (cand == NULL) {
				cand = e;
				cand_empty = 1;
			}
			break; /* the key is not beyond an empty slot */
		}
		if (cand == NULL && p->now >= RL_ST_END(s)) {
			cand = e;
			cand_state = s;
		}
	}
	if (busy)
		return AGAIN; /* that claim may be for our key */
	if (cand == NULL) {
		tstat_inc(p->a, RL_TS_PROBE_OVERFLOWS);
		return RL_CONTENTION;
	}
	if (cand_empty) {
		uint64_t t = 0;

		if (__atomic_compare_exchange_n(&cand->tag, &t, p->tag, 0,
			__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			tstat_inc(p->a, RL_TS_USED);
		else if (t != p->tag)
			return AGAIN;
		return count_in(p, cand,
		    __atomic_load_n(&cand->state, __ATOMIC_ACQUIRE));
	}
	return take_over(p, cand, cand_state, cand_steal);
}

int
rl_check(struct shm_seg *seg, unsigned bucket, const char *key,
    size_t klen, uint64_t now_ms, uint32_t limit, uint32_t window_ms,
    struct rl_result *out)
{
	struct rl_result dummy;
	struct probe p;
	int r = AGAIN;

	if (out == NULL)
		out = &dummy;
	memset(out, 0, sizeof(*out));
	out->retry_after_ms = RL_CONTENTION_RETRY_MS;
	assert(bucket < RL_NBUCKETS);
	assert(seg->writable);
	memset(&p, 0, sizeof(p));
	p.a = rl_area_of(seg);
	if (p.a == NULL || bucket >= RL_NBUCKETS || !seg->writable)
		return RL_CONTENTION; /* no table: fail closed */
	if (!shm_described(&p.a->head.described))
		describe(p.a, shm_area(seg, SHM_AREA_RATELIMIT)->count);
	p.tag = rl_hash(p.a, bucket, key, klen);
	p.now = now_ms;
	if (window_ms == 0)
		window_ms = 1;
	p.end = now_ms + window_ms;
	if (p.end > RL_END_MAX)
		p.end = RL_END_MAX;
	p.mask = shm_area(seg, SHM_AREA_RATELIMIT)->count - 1;
	p.limit = limit > RL_COUNT_MAX ? RL_COUNT_MAX : limit;
	p.out = out;
	if (p.limit == 0) {
		out->retry_after_ms = window_ms;
		r = RL_BLOCKED;
	}
	while (r == AGAIN) {
		r = attempt(&p);
		if (r != AGAIN)
			break;
		if (++p.tries >= RL_CAS_RETRIES) {
			tstat_inc(p.a, RL_TS_CAS_EXHAUSTED);
			memset(out, 0, sizeof(*out));
			out->retry_after_ms = RL_CONTENTION_RETRY_MS;
			r = RL_CONTENTION;
			break;
		}
		if (p.tries >= YIELD_AFTER)
			sched_yield();
		else
			cpu_relax();
	}
	if (r == RL_CONTENTION) {
		memset(out, 0, sizeof(*out));
		out->retry_after_ms = RL_CONTENTION_RETRY_MS;
	}
	SHM_INC(&p.a->shard[(p.tag >> 32) & (RL_SHARDS - 1)]
		     .n[bucket][r]);
	return r;
}

uint64_t
rl_count(const struct shm_seg *seg, unsigned bucket, unsigned outcome)
{
	struct rl_area *a = rl_area_of(seg);
	uint64_t sum = 0;

	if (a == NULL || bucket >= RL_NBUCKETS || outcome >= RL_NOUTCOMES)
		return 0;
	for (unsigned s = 0; s < RL_SHARDS; s++)
		sum += SHM_LOAD(&a->shard[s].n[bucket][outcome]);
	return sum;
}

uint64_t
rl_tstat(const struct shm_seg *seg, unsigned stat)
{
	struct rl_area *a = rl_area_of(seg);

	if (a == NULL || stat >= RL_NTSTATS)
		return 0;
	return SHM_LOAD(&a->tstat[stat]);
}
