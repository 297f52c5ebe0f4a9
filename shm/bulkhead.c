/*
 * bulkhead - see bulkhead.h.  Per provider BH_CAPACITY lease words and
 * one count word, each changed by CAS (or by a store to a word that only
 * its writer can hold: its own marker).
 *
 * A word is 0 (free), a lease L (owner, expiry >= 1) or a marker M(pid)
 * (expiry 0): a slot pid is taking or freeing, between its word and its
 * change of the count.  The steps, each one atomic:
 *
 *   acquire   0 -> M(me); count + 1 if below max (CAS); M(me) -> L(me)
 *             count at max: M(me) -> 0 (raceBackoffs), count untouched
 *   take over L(expired) -> M(me); count - 1; then as acquire
 *   free      L -> M(me); count - 1; M(me) -> 0  (a release by the
 *             owner; an expired or dead owner's lease by anyone)
 *   renew     L -> L' (same owner, later expiry)
 *   clear     M(dead pid) -> 0, count untouched
 *
 * The invariant: count >= leases in the words.  A lease's place is in
 * the count from before its word is written until after its word is gone.
 * The cap: the count grows only by a CAS that sees it below max, so
 * leases <= count <= max_concurrent, whatever the processes race (a lower
 * max after a reload refuses until enough are gone).  Nothing scans on
 * this path: a process looks for a free slot from its own cursor, which
 * moves past each slot it takes, so slots come round again in about the
 * order they were taken, when leases of about one length churn.
 *
 * A process dying halfway leaves at most a marker with its pid and a count
 * one too high (it died after its + 1 and before its lease, or after its
 * lease went and before its - 1), never too low.  Markers of dead pids
 * are cleared by bh_reclaim_pid, bh_sweep and the slow path.
 *
 * The slow path (the count says full; also every bh_sweep) is one scan
 * that frees expired leases and leases of dead owners, one place each,
 * clears dead markers and adds up what the words justify: one for every
 * lease, one for every marker of a live process (its + 1 may be done or
 * its - 1 pending).  If it freed no lease and that sum is below the
 * count, it CASes the count down to the sum from the value it read before
 * the scan; the change field of the count word makes the CAS fail if the
 * count moved at all meanwhile.  With the count still, no + 1 and no - 1
 * happened during the scan, so a lease there at the end was seen, as a
 * lease or as its taker's marker (placed before its + 1, so before the
 * scan), and so was a place whose - 1 is pending (as the lease or its
 * freer's marker): the new count is never below the leases, and the cap
 * holds.  Under churn the CAS may fail; the next slow path tries again.
 * A scan that found nothing to do is remembered (fresh_scan): acquirers
 * of a full bulkhead do not scan again before BH_RESCAN_MS while the
 * count word and the leases it saw stay as they were.
 *
 * A lease is freed exactly once (CAS from the value seen) and counted
 * once (released, reclaimedDead or reclaimedExpired).  A stale release
 * finds another word (other owner or other expiry) or, for the same
 * process and word, a different lease id in the slot's info, and does
 * nothing.
 */
#include "shm/bulkhead.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

_Static_assert(BH_NPROVIDERS <= BH_MAX_PROVIDERS, "too many bulkheads");
_Static_assert(sizeof(struct bh_prov) % 64 == 0, "provider padding");
_Static_assert(offsetof(struct bh_area, prov) % 64 == 0,
    "providers must start on a cache line");
_Static_assert((BH_CAPACITY & (BH_CAPACITY - 1)) == 0,
    "the capacity is a power of two: cursors wrap with a mask");
_Static_assert(sizeof(struct bh_area) <= (16u << 20),
    "the bulkhead area must stay below 16 MiB");

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

/* The head this build writes, and the only one it works with. */
static const struct bh_head layout = {
	.magic = BH_MAGIC,
	.described = 2,
	.head_size = sizeof(struct bh_head),
	.nproviders = BH_NPROVIDERS,
	.ncounters = BH_NCOUNTERS,
	.name_size = BH_NAME_SIZE,
	.names_off = offsetof(struct bh_area, names),
	.provs_off = offsetof(struct bh_area, prov),
	.prov_size = sizeof(struct bh_prov),
	.capacity = BH_CAPACITY,
	.pid_bits = BH_PID_BITS,
	.counters_off = offsetof(struct bh_prov, n),
	.words_off = offsetof(struct bh_prov, word),
	.info_off = offsetof(struct bh_prov, info),
	.info_size = sizeof(struct bh_info),
	.max_off = offsetof(struct bh_prov, max_concurrent),
	.ttl_off = offsetof(struct bh_prov, ttl_ms),
	.warned_off = offsetof(struct bh_prov, last_warned_at),
	.held_off = offsetof(struct bh_prov, held),
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
	struct bh_area *a;

	if (seg == NULL || seg->hdr == NULL)
		return NULL;
	d = shm_area(seg, SHM_AREA_BULKHEAD);
	if (d == NULL || d->size < sizeof(struct bh_area) ||
	    d->offset + d->size > seg->size)
		return NULL;
	a = (struct bh_area *)((char *)seg->base + d->offset);
	/* another build's offsets would write over other fields */
	if (shm_described(&a->head.described) &&
	    memcmp(&a->head, &layout, sizeof(layout)) != 0)
		return NULL;
	return a;
}

/* describe - write names and layout once; losers of the race go on. */
static void
describe(struct bh_area *a)
{
	struct bh_head *h = &a->head;
	unsigned n = 0;

	if (!shm_describe_begin(&h->described))
		return;
	for (unsigned i = 0; i < BH_NPROVIDERS; i++)
		strlcpy_rg(a->names[n++], provider_names[i], BH_NAME_SIZE);
	for (unsigned i = 0; i < BH_NCOUNTERS; i++)
		strlcpy_rg(a->names[n++], counter_names[i], BH_NAME_SIZE);
	/* all of the head but described, which shm_describe_end sets */
	memcpy(&h->head_size, &layout.head_size,
	    sizeof(*h) - offsetof(struct bh_head, head_size));
	memcpy(h->magic, layout.magic, sizeof(h->magic));
	shm_describe_end(&h->described);
}

static const char *const counter_docs[] = {
#define BH_COUNTER_DOC(id, name, doc) doc,
	BH_COUNTERS(BH_COUNTER_DOC)
#undef BH_COUNTER_DOC
};

void
bh_describe(struct shm_descw *w)
{
	shm_desc_table(w, "bulkhead", "bulkhead",
	    &(struct shm_table){ .offset = offsetof(struct bh_area, prov),
		.stride = sizeof(struct bh_prov),
		.count = BH_NPROVIDERS,
		.names_off = offsetof(struct bh_area, names),
		.name_size = BH_NAME_SIZE },
	    "one bulkhead per provider (the lease words apart)");
	shm_desc_field(w, "bulkhead", "maxConcurrent",
	    offsetof(struct bh_prov, max_concurrent), SHM_T_U32,
	    "places of the bulkhead (as last used)");
	shm_desc_field(w, "bulkhead", "leaseTtlMs",
	    offsetof(struct bh_prov, ttl_ms), SHM_T_U32, "lifetime of a lease");
	shm_desc_field(w, "bulkhead", "lastWarnedAt",
	    offsetof(struct bh_prov, last_warned_at), SHM_T_TIME_MS,
	    "last saturation warning");
	shm_desc_u64s(w, "bulkhead", "counters.", offsetof(struct bh_prov, n),
	    counter_names, counter_docs, BH_NCOUNTERS, SHM_T_COUNTER, NULL);
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

/* store_word - only for a word that holds the caller's own marker. */
static inline void
store_word(uint64_t *w, uint64_t next)
{
	__atomic_store_n(w, next, __ATOMIC_SEQ_CST);
}

static inline int
cas_word(uint64_t *w, uint64_t expect, uint64_t next)
{
	return __atomic_compare_exchange_n(w, &expect, next, 0,
	    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* expired - a lease word (not a marker) whose time has come. */
static inline int
expired(uint64_t w, uint64_t now_ms)
{
	return BH_W_EXPIRES(w) <= now_ms;
}

/* reserve - one more place held if fewer than max are: 1, else 0. */
static int
reserve(struct bh_prov *p, uint32_t max)
{
	uint64_t h = load_word(&p->held);

	do {
		if (BH_H_COUNT(h) >= max)
			return 0;
	} while (!__atomic_compare_exchange_n(&p->held, &h, h + BH_H_ONE, 0,
	    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
	return 1;
}

/* drop - one place less held: its lease word is already gone. */
static void
drop(struct bh_prov *p)
{
	uint64_t was = __atomic_fetch_add(&p->held, BH_H_LESS,
	    __ATOMIC_SEQ_CST);

	assert(BH_H_COUNT(was) > 0); /* the count covers every lease */
	(void)was;
}

/* free_lease - slot i of p from lease w to free (w -> our marker mark,
 * one place less, -> 0), counted as c; 0 if w was no longer there. */
static int
free_lease(struct bh_prov *p, unsigned i, uint64_t w, uint64_t mark,
    enum bh_counter c)
{
	if (!cas_word(&p->word[i], w, mark))
		return 0;
	drop(p);
	store_word(&p->word[i], 0);
	count(p, c);
	return 1;
}

/* Answers of kill(pid, 0) during one scan; our own pid is never dead. */
struct pids {
	pid_t self;
	unsigned n, last;
	pid_t pid[PID_CACHE];
	unsigned char dead[PID_CACHE];
};

/* pid_dead - is pid gone?  Asked once per scan (PID_CACHE of them). */
static int
pid_dead(struct pids *c, pid_t pid)
{
	int dead;

	if (pid == c->self || pid <= 0)
		return 0;
	if (c->n > 0 && c->pid[c->last] == pid)
		return c->dead[c->last];
	for (unsigned k = 0; k < c->n; k++)
		if (c->pid[k] == pid) {
			c->last = k;
			return c->dead[k];
		}
	dead = kill(pid, 0) != 0 && errno == ESRCH;
	if (c->n < PID_CACHE) {
		c->pid[c->n] = pid;
		c->dead[c->n] = (unsigned char)dead;
		c->last = c->n++;
	}
	return dead;
}

/* What one scan of a provider did and found. */
struct scan {
	unsigned freed;    /* leases freed (expired, dead owner) */
	unsigned cleared;  /* markers of dead pids cleared */
	uint32_t need;     /* places the words justify */
	uint64_t earliest; /* earliest expiry of the live leases */
};

/*
 * settle - the slow path on p at now_ms, for process self: free expired
 * leases and leases of dead owners, clear markers of dead pids, and lower
 * the count to what the words justify when it freed no lease and nothing
 * changed the count meanwhile (see the top of the file).
 */
static void
settle(struct bh_prov *p, uint64_t now_ms, pid_t self, struct scan *r)
{
	struct pids pids = { .self = (pid_t)((uint64_t)self & BH_PID_MASK) };
	uint64_t h0 = load_word(&p->held), mark = BH_W_MARKER(self);

	memset(r, 0, sizeof(*r));
	r->earliest = UINT64_MAX;
	for (unsigned i = 0; i < BH_CAPACITY; i++) {
		uint64_t w = load_word(&p->word[i]);
		enum bh_counter why;

		if (w == 0)
			continue;
		if (BH_W_IS_MARKER(w)) {
			if (pid_dead(&pids, BH_W_PID(w)) &&
			    cas_word(&p->word[i], w, 0))
				r->cleared++;
			else
				r->need++; /* live, or changed: count it */
			continue;
		}
		why = expired(w, now_ms) ? BH_C_RECLAIMED_EXPIRED :
		    pid_dead(&pids, BH_W_PID(w)) ? BH_C_RECLAIMED_DEAD :
						   BH_NCOUNTERS; /* live */
		if (why != BH_NCOUNTERS) {
			if (free_lease(p, i, w, mark, why))
				r->freed++;
			else
				r->need++; /* changed meanwhile: count it */
			continue;
		}
		r->need++;
		if (BH_W_EXPIRES(w) < r->earliest)
			r->earliest = BH_W_EXPIRES(w);
	}
	if (r->freed == 0 && r->need < BH_H_COUNT(h0) &&
	    __atomic_compare_exchange_n(&p->held, &h0,
		((h0 >> 32) + 1) << 32 | r->need, 0, __ATOMIC_SEQ_CST,
		__ATOMIC_SEQ_CST)) {
		__atomic_fetch_add(&p->n[BH_C_COUNT_CORRECTIONS],
		    BH_H_COUNT(h0) - r->need, __ATOMIC_RELAXED);
		return;
	}
	if (r->freed == 0 && r->cleared == 0 && load_word(&p->held) == h0) {
		/* fruitless, and nothing moved: see fresh_scan */
		SHM_STORE(&p->scan_at, now_ms);
		SHM_STORE(&p->scan_earliest, r->earliest);
		SHM_STORE(&p->scan_held, h0);
	}
}

/*
 * fresh_scan - whether a scan of p at now_ms would find nothing new: the
 * last one freed and corrected nothing, less than BH_RESCAN_MS ago, no
 * lease it saw has expired since and the count word has not changed
 * since (no lease went or came).  Only a process that died meanwhile
 * escapes it, for BH_RESCAN_MS.  So a flood of acquires of a full
 * bulkhead is refused without a scan each.  The three fields are written
 * apart: a mix of two scans only ever makes a refusal, for at most
 * BH_RESCAN_MS.  *earliest gets the earliest expiry that scan saw.
 */
static int
fresh_scan(const struct bh_prov *p, uint64_t now_ms, uint64_t *earliest)
{
	uint64_t at = SHM_LOAD(&p->scan_at);

	if (SHM_LOAD(&p->scan_held) != load_word(&p->held) || at == 0 ||
	    now_ms < at || now_ms - at >= BH_RESCAN_MS ||
	    now_ms >= SHM_LOAD(&p->scan_earliest))
		return 0;
	*earliest = SHM_LOAD(&p->scan_earliest);
	return 1;
}

/* Where this process looks for a free slot next, per provider. */
static pid_t cursor_pid;
static uint32_t cursor[BH_NPROVIDERS];

/* cursor_of - this process's cursor of provider; a new process (pid)
 * starts its cursors at places spread by its pid. */
static uint32_t *
cursor_of(unsigned provider, pid_t self)
{
	if (__atomic_load_n(&cursor_pid, __ATOMIC_RELAXED) != self) {
		for (unsigned k = 0; k < BH_NPROVIDERS; k++)
			__atomic_store_n(&cursor[k],
			    ((uint32_t)self * 2654435761u + k * 40503u) &
				(BH_CAPACITY - 1),
			    __ATOMIC_RELAXED);
		__atomic_store_n(&cursor_pid, self, __ATOMIC_RELAXED);
	}
	return &cursor[provider];
}

/*
 * claim - a slot of provider p for our marker mark, looked for from this
 * process's cursor on: a free one, or an expired lease taken over (its
 * place dropped).  Its index, or -1 when every slot is taken.
 */
static int
claim(struct bh_prov *p, unsigned provider, uint64_t now_ms, pid_t self,
    uint64_t mark)
{
	uint32_t *cur = cursor_of(provider, self);
	uint32_t start = __atomic_load_n(cur, __ATOMIC_RELAXED);

	for (uint32_t k = 0; k < BH_CAPACITY; k++) {
		uint32_t i = (start + k) & (BH_CAPACITY - 1);
		uint64_t w = load_word(&p->word[i]);

		if (w == 0) {
			if (!cas_word(&p->word[i], 0, mark))
				continue;
		} else if (!BH_W_IS_LEASE(w) || !expired(w, now_ms) ||
		    !cas_word(&p->word[i], w, mark)) {
			continue;
		} else {
			drop(p);
			count(p, BH_C_RECLAIMED_EXPIRED);
		}
		__atomic_store_n(cur, (i + 1) & (BH_CAPACITY - 1),
		    __ATOMIC_RELAXED);
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
	uint64_t dummy, mine, mark, exp, earliest = UINT64_MAX;
	pid_t self = getpid();
	struct bh_prov *p;

	if (retry_after_ms == NULL)
		retry_after_ms = &dummy;
	*retry_after_ms = 0;
	memset(l, 0, sizeof(*l));
	assert(provider < BH_NPROVIDERS);
	assert(self > 0 && (uint64_t)self <= BH_PID_MASK);
	assert(max_concurrent <= BH_CAPACITY); /* the knobs' ranges */
	if (a == NULL || provider >= BH_NPROVIDERS)
		return BH_ACQUIRED; /* no lease table: fail open, word 0 */
	p = &a->prov[provider];
	note_settings(p, max_concurrent, ttl_ms);
	if (ttl_ms == 0)
		ttl_ms = 1;
	if (now_ms > BH_TIME_MAX - ttl_ms)
		now_ms = BH_TIME_MAX - ttl_ms;
	exp = now_ms + ttl_ms;
	mine = BH_W_MAKE(exp, self);
	mark = BH_W_MARKER(self);
	for (unsigned round = 0; max_concurrent > 0 && round < BH_RACE_ROUNDS;
	     round++) {
		struct scan r;
		int i = -1;

		if (BH_H_COUNT(load_word(&p->held)) < max_concurrent)
			i = claim(p, provider, now_ms, self, mark);
		if (i < 0) {
			/* full by the count (or every slot taken) */
			if (fresh_scan(p, now_ms, &earliest))
				break;
			settle(p, now_ms, self, &r);
			if (r.earliest < earliest)
				earliest = r.earliest;
			if (r.freed + r.cleared == 0 &&
			    BH_H_COUNT(load_word(&p->held)) >= max_concurrent)
				break;
			continue;
		}
		if (!reserve(p, max_concurrent)) {
			/* a racer took the last place: give the slot back */
			store_word(&p->word[i], 0);
			count(p, BH_C_RACE_BACKOFFS);
			continue;
		}
		store_word(&p->word[i], mine);
		l->id = __atomic_add_fetch(&p->seq, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&p->info[i].id, l->id, __ATOMIC_RELAXED);
		__atomic_store_n(&p->info[i].acquired_at, now_ms,
		    __ATOMIC_RELAXED);
		count(p, BH_C_ACQUIRED);
		l->word = mine;
		l->provider = provider;
		l->slot = (uint32_t)i;
		return BH_ACQUIRED;
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
	    !free_lease(p, l->slot, l->word, BH_W_MARKER(BH_W_PID(l->word)),
		BH_C_RELEASED)) {
		count(p, BH_C_STALE_RELEASES);
		return -1;
	}
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
	uint64_t mark = BH_W_MARKER(getpid());
	unsigned freed = 0;

	if (a == NULL || pid <= 0)
		return 0;
	for (unsigned k = 0; k < BH_NPROVIDERS; k++) {
		struct bh_prov *p = &a->prov[k];

		for (unsigned i = 0; i < BH_CAPACITY; i++) {
			uint64_t w = load_word(&p->word[i]);

			if (w == 0 || BH_W_PID(w) != want)
				continue;
			if (BH_W_IS_MARKER(w))
				cas_word(&p->word[i], w, 0);
			else
				freed += free_lease(p, i, w, mark,
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
	struct scan r;

	if (a == NULL)
		return 0;
	for (unsigned k = 0; k < BH_NPROVIDERS; k++) {
		settle(&a->prov[k], now_ms, getpid(), &r);
		freed += r.freed;
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

		live += BH_W_IS_LEASE(w) && !expired(w, now_ms);
	}
	return live;
}

uint32_t
bh_held(const struct shm_seg *seg, unsigned provider)
{
	struct bh_area *a = bh_area_of(seg);

	if (a == NULL || provider >= BH_NPROVIDERS)
		return 0;
	return BH_H_COUNT(load_word(&a->prov[provider].held));
}

uint64_t
bh_count(const struct shm_seg *seg, unsigned provider, unsigned counter)
{
	struct bh_area *a = bh_area_of(seg);

	if (a == NULL || provider >= BH_NPROVIDERS || counter >= BH_NCOUNTERS)
		return 0;
	return SHM_LOAD(&a->prov[provider].n[counter]);
}
