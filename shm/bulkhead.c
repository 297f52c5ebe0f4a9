/*
 * bulkhead - see bulkhead.h.  BH_CAPACITY lease words per provider,
 * changed only by CAS.
 *
 * The cap, without a counter that a dying process could leave wrong:
 * acquire first claims a free slot (CAS 0 -> its word), then counts the
 * live words of the provider; if it sees more than max_concurrent it
 * gives its slot back and tries again (at most BH_RACE_ROUNDS times),
 * else the lease is granted.  Claims and counting loads are sequentially
 * consistent, so of any set of racing claimers the last to claim sees all
 * the others' claims still held.  Suppose at some instant more than max
 * granted leases were live; the one among them claimed last counted after
 * its claim, when all the others were already claimed and (being live at
 * that instant) still held: it saw more than max and would not have been
 * granted.  So live granted leases never exceed max.  A process that dies
 * anywhere leaves at most a word with its pid, which is reclaimed like
 * any lease of a dead owner.  The price: two racers for the last place
 * may both back off (counted as raceBackoffs; they retry, then report
 * saturation).
 *
 * A freed word is 0; reclaiming is CAS word -> 0 from the value seen, so
 * a lease is freed exactly once and counted once (released,
 * reclaimedDead or reclaimedExpired).  A stale release finds another word
 * (other owner or other expiry) or, for the same process and word, a
 * different lease id in the slot's info, and does nothing.
 */
#include "shm/bulkhead.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

_Static_assert(BH_NPROVIDERS <= BH_MAX_PROVIDERS, "too many bulkheads");
_Static_assert(sizeof(struct bh_prov) % 64 == 0, "provider padding");
_Static_assert(offsetof(struct bh_area, prov) % 64 == 0,
    "providers must start on a cache line");
_Static_assert(BH_CAPACITY <= 4096, "a capacity scan must stay cheap");

#define PID_CACHE 16

static const char *const provider_names[] = {
#define BH_PROVIDER_NAME(id, name, thr, cool, max, ttl) name,
	RG_PROVIDERS(BH_PROVIDER_NAME)
#undef BH_PROVIDER_NAME
#define BH_LOCAL_NAME(id, name, max, ttl) name,
	BH_LOCAL(BH_LOCAL_NAME)
#undef BH_LOCAL_NAME
};

static const char *const counter_names[] = {
#define BH_COUNTER_NAME(id, name, doc) name,
	BH_COUNTERS(BH_COUNTER_NAME)
#undef BH_COUNTER_NAME
};

const char *
bh_provider_name(unsigned provider)
{
	return provider < BH_NPROVIDERS ? provider_names[provider] :
					  "unknown";
}

int
bh_provider_by_name(const char *name)
{
	for (unsigned i = 0; i < BH_NPROVIDERS; i++)
		if (strcmp(provider_names[i], name) == 0)
			return (int)i;
	return -1;
}

size_t
bh_area_size(uint32_t *stride, uint32_t *count)
{
	*stride = sizeof(struct bh_prov);
	*count = BH_NPROVIDERS;
	return sizeof(struct bh_area);
}

struct bh_area *
bh_area_of(const struct shm_seg *seg)
{
	const struct shm_area *d;

	if (seg == NULL || seg->hdr == NULL)
		return NULL;
	d = shm_area(seg, SHM_AREA_BULKHEAD);
	if (d == NULL || d->size < sizeof(struct bh_area) ||
	    d->offset + d->size > seg->size)
		return NULL;
	return (struct bh_area *)((char *)seg->base + d->offset);
}

/* describe - write names and layout once; losers of the race go on. */
static void
describe(struct bh_area *a)
{
	struct bh_head *h = &a->head;
	unsigned n = 0;

	if (!shm_describe_begin(&h->described))
		return;
	h->head_size = sizeof(*h);
	h->nproviders = BH_NPROVIDERS;
	h->ncounters = BH_NCOUNTERS;
	h->name_size = BH_NAME_SIZE;
	h->names_off = offsetof(struct bh_area, names);
	h->provs_off = offsetof(struct bh_area, prov);
	h->prov_size = sizeof(struct bh_prov);
	h->capacity = BH_CAPACITY;
	h->pid_bits = BH_PID_BITS;
	h->counters_off = offsetof(struct bh_prov, n);
	h->words_off = offsetof(struct bh_prov, word);
	h->info_off = offsetof(struct bh_prov, info);
	h->info_size = sizeof(struct bh_info);
	h->max_off = offsetof(struct bh_prov, max_concurrent);
	h->ttl_off = offsetof(struct bh_prov, ttl_ms);
	h->warned_off = offsetof(struct bh_prov, last_warned_at);
	for (unsigned i = 0; i < BH_NPROVIDERS; i++)
		strlcpy_rg(a->names[n++], provider_names[i], BH_NAME_SIZE);
	for (unsigned i = 0; i < BH_NCOUNTERS; i++)
		strlcpy_rg(a->names[n++], counter_names[i], BH_NAME_SIZE);
	memcpy(h->magic, BH_MAGIC, sizeof(h->magic));
	shm_describe_end(&h->described);
}

void
bh_area_init(struct shm_seg *seg)
{
	struct bh_area *a = bh_area_of(seg);

	assert(seg->writable);
	if (a != NULL)
		describe(a);
}

/* ready_area - the area for a writer, described on first use. */
static struct bh_area *
ready_area(struct shm_seg *seg)
{
	struct bh_area *a = bh_area_of(seg);

	if (a == NULL || !seg->writable)
		return NULL;
	if (!shm_described(&a->head.described))
		describe(a);
	return a;
}

static inline void
count(struct bh_prov *p, enum bh_counter c)
{
	SHM_INC(&p->n[c]);
}

static inline uint64_t
load_word(const uint64_t *w)
{
	return __atomic_load_n(w, __ATOMIC_SEQ_CST);
}

static inline int
cas_word(uint64_t *w, uint64_t expect, uint64_t next)
{
	return __atomic_compare_exchange_n(w, &expect, next, 0,
	    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static inline int
expired(uint64_t w, uint64_t now_ms)
{
	return BH_W_EXPIRES(w) <= now_ms;
}

/* free_word - CAS slot i of p from w to free; counts c once if it did. */
static int
free_word(struct bh_prov *p, unsigned i, uint64_t w, enum bh_counter c)
{
	if (!cas_word(&p->word[i], w, 0))
		return 0;
	count(p, c);
	return 1;
}

/*
 * count_live - live words of p at now, freeing expired ones on the way;
 * *earliest gets the earliest expiry among the live ones (or stays).
 */
static uint32_t
count_live(struct bh_prov *p, uint64_t now_ms, uint64_t *earliest)
{
	uint32_t live = 0;

	for (unsigned i = 0; i < BH_CAPACITY; i++) {
		uint64_t w = load_word(&p->word[i]);

		if (w == 0)
			continue;
		if (expired(w, now_ms)) {
			free_word(p, i, w, BH_C_RECLAIMED_EXPIRED);
			continue;
		}
		live++;
		if (BH_W_EXPIRES(w) < *earliest)
			*earliest = BH_W_EXPIRES(w);
	}
	return live;
}

/* pid_dead - is pid gone?  Answers cached in c (n entries) per scan. */
static int
pid_dead(pid_t pid, pid_t c[][2], unsigned *n)
{
	int dead;

	for (unsigned k = 0; k < *n; k++)
		if (c[k][0] == pid)
			return c[k][1];
	dead = pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
	if (*n < PID_CACHE) {
		c[*n][0] = pid;
		c[*n][1] = dead;
		(*n)++;
	}
	return dead;
}

/* reclaim_dead - free the words of p whose owner is gone (not ours). */
static unsigned
reclaim_dead(struct bh_prov *p, pid_t self)
{
	pid_t cache[PID_CACHE][2];
	unsigned n = 0, freed = 0;

	for (unsigned i = 0; i < BH_CAPACITY; i++) {
		uint64_t w = load_word(&p->word[i]);
		pid_t pid = BH_W_PID(w);

		if (w == 0 || pid == (pid_t)((uint64_t)self & BH_PID_MASK))
			continue;
		if (pid_dead(pid, cache, &n))
			freed += free_word(p, i, w, BH_C_RECLAIMED_DEAD);
	}
	return freed;
}

/* claim - a free or expired slot for mine, from start on; -1 if none. */
static int
claim(struct bh_prov *p, uint64_t now_ms, uint64_t mine, unsigned start)
{
	for (unsigned k = 0; k < BH_CAPACITY; k++) {
		unsigned i = (start + k) % BH_CAPACITY;
		uint64_t w = load_word(&p->word[i]);

		if (w != 0 && !expired(w, now_ms))
			continue;
		if (!cas_word(&p->word[i], w, mine))
			continue;
		if (w != 0)
			count(p, BH_C_RECLAIMED_EXPIRED);
		return (int)i;
	}
	return -1;
}

/* note_settings - keep the last settings for relstat (no write if same). */
static void
note_settings(struct bh_prov *p, uint32_t max, uint32_t ttl_ms)
{
	if (SHM_LOAD(&p->max_concurrent) != max)
		SHM_STORE(&p->max_concurrent, max);
	if (SHM_LOAD(&p->ttl_ms) != ttl_ms)
		SHM_STORE(&p->ttl_ms, ttl_ms);
}

void
bh_configure(struct shm_seg *seg, unsigned provider, uint32_t max_concurrent,
    uint32_t ttl_ms)
{
	struct bh_area *a = ready_area(seg);

	if (a != NULL && provider < BH_NPROVIDERS)
		note_settings(&a->prov[provider], max_concurrent, ttl_ms);
}

int
bh_acquire(struct shm_seg *seg, unsigned provider, uint64_t now_ms,
    uint32_t max_concurrent, uint32_t ttl_ms, struct bh_lease *l,
    uint64_t *retry_after_ms)
{
	struct bh_area *a = ready_area(seg);
	uint64_t dummy, mine, exp, earliest = UINT64_MAX;
	pid_t self = getpid();
	int dead_checked = 0;
	struct bh_prov *p;

	if (retry_after_ms == NULL)
		retry_after_ms = &dummy;
	*retry_after_ms = 0;
	memset(l, 0, sizeof(*l));
	assert(provider < BH_NPROVIDERS);
	assert(self > 0 && (uint64_t)self <= BH_PID_MASK);
	if (a == NULL || provider >= BH_NPROVIDERS)
		return BH_ACQUIRED; /* no lease table: fail open, word 0 */
	p = &a->prov[provider];
	note_settings(p, max_concurrent, ttl_ms);
	if (max_concurrent > BH_CAPACITY)
		max_concurrent = BH_CAPACITY;
	if (ttl_ms == 0)
		ttl_ms = 1;
	if (now_ms > BH_TIME_MAX - ttl_ms)
		now_ms = BH_TIME_MAX - ttl_ms;
	exp = now_ms + ttl_ms;
	mine = BH_W_MAKE(exp, self);
	for (unsigned round = 0; max_concurrent > 0 && round < BH_RACE_ROUNDS;
	     round++) {
		uint32_t live = count_live(p, now_ms, &earliest);
		int i;

		if (live >= max_concurrent && !dead_checked) {
			dead_checked = 1;
			if (reclaim_dead(p, self) > 0)
				live = count_live(p, now_ms, &earliest);
		}
		if (live >= max_concurrent)
			break;
		i = claim(p, now_ms, mine, (unsigned)self * 7u + round);
		if (i < 0)
			continue; /* all taken meanwhile */
		earliest = UINT64_MAX;
		if (count_live(p, now_ms, &earliest) <= max_concurrent) {
			uint64_t id = __atomic_add_fetch(&p->seq, 1,
			    __ATOMIC_RELAXED);

			__atomic_store_n(&p->info[i].id, id, __ATOMIC_RELAXED);
			__atomic_store_n(&p->info[i].acquired_at, now_ms,
			    __ATOMIC_RELAXED);
			count(p, BH_C_ACQUIRED);
			l->word = mine;
			l->id = id;
			l->provider = provider;
			l->slot = (uint32_t)i;
			return BH_ACQUIRED;
		}
		/* a racer took the last place: give ours back */
		cas_word(&p->word[i], mine, 0);
		count(p, BH_C_RACE_BACKOFFS);
		sched_yield();
	}
	count(p, BH_C_SATURATED);
	*retry_after_ms = BH_RETRY_AFTER_MS;
	if (earliest > now_ms && earliest - now_ms < *retry_after_ms)
		*retry_after_ms = earliest - now_ms;
	return BH_SATURATED;
}

/* held_prov - the provider of l, or NULL when l holds nothing. */
static struct bh_prov *
held_prov(struct shm_seg *seg, const struct bh_lease *l)
{
	struct bh_area *a = ready_area(seg);

	if (a == NULL || l->word == 0 || l->provider >= BH_NPROVIDERS ||
	    l->slot >= BH_CAPACITY)
		return NULL;
	return &a->prov[l->provider];
}

int
bh_release(struct shm_seg *seg, const struct bh_lease *l)
{
	struct bh_prov *p = held_prov(seg, l);

	if (p == NULL)
		return -1;
	/* only this process can have written this word: if it holds it
	 * again, the slot's id is the newer lease's */
	if (__atomic_load_n(&p->info[l->slot].id, __ATOMIC_RELAXED) != l->id ||
	    !cas_word(&p->word[l->slot], l->word, 0)) {
		count(p, BH_C_STALE_RELEASES);
		return -1;
	}
	count(p, BH_C_RELEASED);
	return 0;
}

int
bh_renew(struct shm_seg *seg, struct bh_lease *l, uint64_t now_ms,
    uint32_t ttl_ms)
{
	struct bh_prov *p = held_prov(seg, l);
	uint64_t next;

	if (p == NULL)
		return -1;
	if (ttl_ms == 0)
		ttl_ms = 1;
	if (now_ms > BH_TIME_MAX - ttl_ms)
		now_ms = BH_TIME_MAX - ttl_ms;
	next = BH_W_MAKE(now_ms + ttl_ms, BH_W_PID(l->word));
	if (__atomic_load_n(&p->info[l->slot].id, __ATOMIC_RELAXED) != l->id ||
	    !cas_word(&p->word[l->slot], l->word, next))
		return -1;
	l->word = next;
	return 0;
}

unsigned
bh_reclaim_pid(struct shm_seg *seg, pid_t pid)
{
	struct bh_area *a = ready_area(seg);
	pid_t want = (pid_t)((uint64_t)pid & BH_PID_MASK);
	unsigned freed = 0;

	if (a == NULL || pid <= 0)
		return 0;
	for (unsigned k = 0; k < BH_NPROVIDERS; k++) {
		struct bh_prov *p = &a->prov[k];

		for (unsigned i = 0; i < BH_CAPACITY; i++) {
			uint64_t w = load_word(&p->word[i]);

			if (w != 0 && BH_W_PID(w) == want)
				freed += free_word(p, i, w,
				    BH_C_RECLAIMED_DEAD);
		}
	}
	return freed;
}

unsigned
bh_sweep(struct shm_seg *seg, uint64_t now_ms)
{
	struct bh_area *a = ready_area(seg);
	unsigned freed = 0;

	if (a == NULL)
		return 0;
	for (unsigned k = 0; k < BH_NPROVIDERS; k++) {
		struct bh_prov *p = &a->prov[k];

		for (unsigned i = 0; i < BH_CAPACITY; i++) {
			uint64_t w = load_word(&p->word[i]);

			if (w != 0 && expired(w, now_ms))
				freed += free_word(p, i, w,
				    BH_C_RECLAIMED_EXPIRED);
		}
		freed += reclaim_dead(p, getpid());
	}
	return freed;
}

int
bh_should_warn(struct shm_seg *seg, unsigned provider, uint64_t now_ms,
    uint32_t cooldown_ms)
{
	struct bh_area *a = ready_area(seg);
	uint64_t last, stamp = now_ms ? now_ms : 1;
	struct bh_prov *p;

	if (a == NULL || provider >= BH_NPROVIDERS)
		return 0;
	p = &a->prov[provider];
	last = __atomic_load_n(&p->last_warned_at, __ATOMIC_RELAXED);
	if (last != 0 && now_ms < last + cooldown_ms)
		return 0;
	if (!__atomic_compare_exchange_n(&p->last_warned_at, &last, stamp, 0,
		__ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return 0; /* another process warns */
	count(p, BH_C_WARNINGS);
	return 1;
}

uint32_t
bh_inflight(const struct shm_seg *seg, unsigned provider, uint64_t now_ms)
{
	struct bh_area *a = bh_area_of(seg);
	uint32_t live = 0;

	if (a == NULL || provider >= BH_NPROVIDERS)
		return 0;
	for (unsigned i = 0; i < BH_CAPACITY; i++) {
		uint64_t w = load_word(&a->prov[provider].word[i]);

		live += w != 0 && !expired(w, now_ms);
	}
	return live;
}

uint64_t
bh_count(const struct shm_seg *seg, unsigned provider, unsigned counter)
{
	struct bh_area *a = bh_area_of(seg);

	if (a == NULL || provider >= BH_NPROVIDERS || counter >= BH_NCOUNTERS)
		return 0;
	return SHM_LOAD(&a->prov[provider].n[counter]);
}
