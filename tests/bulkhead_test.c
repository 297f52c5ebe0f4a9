/*
 * bulkhead_test - the shm bulkheads: the cap and its retry hint, lease
 * ids, TTL expiry (by acquirers, bh_sweep and bh_renew), releases of
 * leases already reclaimed, leases of dead processes (bh_reclaim_pid and
 * lazy detection, but never a live owner's), 20,000 leases at once, the
 * count of places held (back to 0, after a killed holder, corrected when
 * a process died halfway, never below a live process's reservation),
 * caps above the capacity refused, the cap under processes racing, the
 * saturation warning cooldown, and relstat's bulkheads.
 */
#include <check.h>
#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/config.h"
#include "shm/bulkhead.h"
#include "shm/shm.h"
#include "testlib.h"
#include "util/util.h"

#define T0 UINT64_C(1700000000000)
#define TTL 60000u
#define P_OR BH_PROV_OPENROUTER_CHAT
#define P_PRI BH_PROV_OPENROUTER_CHAT_PRIMARY
#define P_SERPER BH_PROV_SERPER_SEARCH
#define MANY 20000u /* concurrent chat streams the product holds */

/* every bulkhead knob RG_PROVIDERS and BH_LOCAL name exists in struct
 * config */
#define KNOB_CHECK(id, name, max, ttl)                                    \
	_Static_assert(sizeof(((struct config *)0)->max) == 8 &&          \
		sizeof(((struct config *)0)->ttl) == 8,                   \
	    name);
#define PROV_CHECK(id, name, thr, cool, max, ttl) KNOB_CHECK(id, name, max, ttl)
RG_PROVIDERS(PROV_CHECK)
BH_LOCAL(KNOB_CHECK)
#undef PROV_CHECK
#undef KNOB_CHECK

static char segname[64];
static struct shm_seg seg;

static void
setup(void)
{
	tl_segname(segname, sizeof(segname), "bh");
	tl_seg_create(&seg, segname, 64);
	bh_area_init(&seg);
}

static void
teardown(void)
{
	tl_seg_destroy(&seg, segname);
}

static int
acquire(unsigned prov, uint64_t now, uint32_t max, uint32_t ttl,
    struct bh_lease *l, uint64_t *ra)
{
	return bh_acquire(&seg, prov, now, max, ttl, l, ra);
}

static uint64_t
cnt(unsigned prov, enum bh_counter c)
{
	return bh_count(&seg, prov, c);
}

struct take {
	unsigned prov;
	uint32_t n, max;
};

static void
take_leases(struct shm_seg *s, void *arg, int id)
{
	const struct take *t = arg;
	struct bh_lease l;

	(void)id;
	for (uint32_t i = 0; i < t->n; i++)
		if (bh_acquire(s, t->prov, T0, t->max, TTL, &l, NULL) !=
		    BH_ACQUIRED)
			_exit(4);
}

/* dead_child - a process that takes n leases of prov and exits without
 * giving them back; reaped, so kill(pid, 0) says ESRCH. */
static pid_t
dead_child(unsigned prov, uint32_t n, uint32_t max)
{
	struct take t = { prov, n, max };
	pid_t pid;

	tl_seg_children(1, segname, take_leases, &t, &pid);
	return pid;
}

/* holder - a live process that takes n leases of prov (max) and waits,
 * killed by kill_holder or with the test process. */
static pid_t
holder(unsigned prov, uint32_t n, uint32_t max)
{
	int fds[2];
	pid_t pid;
	char c;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct shm_seg s;
		struct bh_lease l;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(60);
		close(fds[0]);
		tl_seg_attach(&s, segname);
		for (uint32_t i = 0; i < n; i++)
			if (bh_acquire(&s, prov, T0, max, TTL, &l, NULL) !=
			    BH_ACQUIRED)
				_exit(4);
		if (write(fds[1], "x", 1) != 1)
			_exit(5);
		for (;;)
			pause();
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	close(fds[0]);
	return pid;
}

/* kill_holder - kill -9 and reap: its pid is then dead to kill(pid, 0). */
static void
kill_holder(pid_t pid)
{
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}

/* prov_of - the provider's slots and count in the test's segment. */
static struct bh_prov *
prov_of(unsigned prov)
{
	return &bh_area_of(&seg)->prov[prov];
}

/* inflate - n places added to the count with no lease: reservations
 * whose process died before it took a slot. */
static void
inflate(unsigned prov, uint32_t n)
{
	__atomic_fetch_add(&prov_of(prov)->held, n * BH_H_ONE,
	    __ATOMIC_SEQ_CST);
}

/* half_done - what pid leaves in prov between taking a slot and writing
 * its lease: its marker in a free slot, and its + 1 when reserved. */
static void
half_done(unsigned prov, pid_t pid, int reserved)
{
	struct bh_prov *p = prov_of(prov);
	unsigned i = 0;

	while (i < BH_CAPACITY && p->word[i] != 0)
		i++;
	ck_assert_uint_lt(i, BH_CAPACITY);
	p->word[i] = BH_W_MARKER(pid);
	if (reserved)
		inflate(prov, 1);
}

START_TEST(names_and_layout)
{
	const struct bh_area *a = bh_area_of(&seg);
	uint32_t stride, count;

	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->head.described, 2);
	ck_assert_mem_eq(a->head.magic, BH_MAGIC, 8);
	ck_assert_uint_eq(a->head.capacity, BH_CAPACITY);
	ck_assert_uint_ge(a->head.capacity, 32768);
	ck_assert_uint_eq(a->head.nproviders, BH_NPROVIDERS);
	ck_assert_uint_eq(a->head.held_off, offsetof(struct bh_prov, held));
	bh_area_size(&stride, &count);
	ck_assert_uint_eq(shm_area_by_name(&seg, "bulkhead")->count, count);
	ck_assert_uint_eq(shm_area_by_name(&seg, "bulkhead")->stride, stride);
	ck_assert_str_eq(a->names[BH_PROV_TOOL_JOB], "tool_job");
	ck_assert_str_eq(a->names[BH_NPROVIDERS + BH_C_RECLAIMED_DEAD],
	    "reclaimedDead");
	ck_assert_str_eq(bh_provider_name(BH_PROV_OPENROUTER_CHAT_PRIMARY),
	    "openrouter_chat_primary");
	ck_assert_str_eq(bh_provider_name(999), "unknown");
	ck_assert_int_eq(bh_provider_by_name("openrouter_chat_secondary"),
	    BH_PROV_OPENROUTER_CHAT_SECONDARY);
	ck_assert_int_eq(bh_provider_by_name("gmail_oauth"),
	    BH_PROV_GMAIL_OAUTH);
	ck_assert_int_eq(bh_provider_by_name("ebay_search"),
	    BH_PROV_EBAY_SEARCH);
	ck_assert_int_eq(bh_provider_by_name("global_search"),
	    BH_PROV_GLOBAL_SEARCH);
	ck_assert_int_eq(bh_provider_by_name("backend"), BH_PROV_BACKEND);
	ck_assert_int_eq(bh_provider_by_name("nope"), -1);
	ck_assert_uint_eq(BH_W_PID(BH_W_MAKE(T0, 4194303)), 4194303);
	ck_assert_uint_eq(BH_W_EXPIRES(BH_W_MAKE(T0, 4194303)), T0);
	ck_assert_uint_ge(BH_TIME_MAX, T0 * 2);
}
END_TEST

START_TEST(cap_release_and_ids)
{
	struct bh_lease l[3];
	uint64_t ra;

	ck_assert_int_eq(acquire(P_OR, T0, 2, TTL, &l[0], &ra), BH_ACQUIRED);
	ck_assert_int_eq(acquire(P_OR, T0, 2, TTL, &l[1], &ra), BH_ACQUIRED);
	ck_assert_uint_eq(l[0].id, 1);
	ck_assert_uint_eq(l[1].id, 2);
	ck_assert_uint_ne(l[0].slot, l[1].slot);
	ck_assert_uint_eq(BH_W_PID(l[0].word), getpid());
	ck_assert_uint_eq(BH_W_EXPIRES(l[0].word), T0 + TTL);
	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0), 2);
	ck_assert_int_eq(acquire(P_OR, T0 + 1, 2, TTL, &l[2], &ra),
	    BH_SATURATED);
	ck_assert_uint_eq(ra, BH_RETRY_AFTER_MS);
	ck_assert_uint_eq(cnt(P_OR, BH_C_SATURATED), 1);
	/* other providers have their own cap */
	ck_assert_int_eq(acquire(P_SERPER, T0, 1, TTL, &l[2], &ra),
	    BH_ACQUIRED);
	ck_assert_uint_eq(l[2].id, 1);
	ck_assert_int_eq(bh_release(&seg, &l[0]), 0);
	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0), 1);
	ck_assert_int_eq(acquire(P_OR, T0 + 2, 2, TTL, &l[0], &ra),
	    BH_ACQUIRED);
	ck_assert_uint_eq(l[0].id, 3);
	/* a lower max (a reload) refuses until enough are released */
	ck_assert_int_eq(acquire(P_OR, T0 + 3, 1, TTL, &l[2], &ra),
	    BH_SATURATED);
	ck_assert_int_eq(bh_release(&seg, &l[0]), 0);
	ck_assert_int_eq(bh_release(&seg, &l[1]), 0);
	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0), 0);
	ck_assert_uint_eq(cnt(P_OR, BH_C_ACQUIRED), 3);
	ck_assert_uint_eq(cnt(P_OR, BH_C_RELEASED), 3);
	ck_assert_uint_eq(cnt(P_OR, BH_C_SATURATED), 2);
	ck_assert_uint_eq(cnt(P_OR, BH_C_STALE_RELEASES), 0);
	ck_assert_uint_eq(bh_held(&seg, P_OR), 0);
	/* max 0 refuses; max at the capacity fills every slot */
	ck_assert_int_eq(acquire(P_OR, T0, 0, TTL, &l[0], NULL),
	    BH_SATURATED);
	for (unsigned i = 0; i < BH_CAPACITY; i++)
		ck_assert_int_eq(acquire(BH_PROV_TOOL_JOB, T0, BH_CAPACITY,
				     TTL, &l[0], NULL),
		    BH_ACQUIRED);
	ck_assert_int_eq(acquire(BH_PROV_TOOL_JOB, T0, BH_CAPACITY, TTL,
			     &l[0], &ra),
	    BH_SATURATED);
	ck_assert_uint_eq(bh_inflight(&seg, BH_PROV_TOOL_JOB, T0),
	    BH_CAPACITY);
	ck_assert_uint_eq(bh_held(&seg, BH_PROV_TOOL_JOB), BH_CAPACITY);
}
END_TEST

START_TEST(retry_hint_follows_earliest_expiry)
{
	struct bh_lease l;
	uint64_t ra;

	ck_assert_int_eq(acquire(P_OR, T0, 1, 300, &l, &ra), BH_ACQUIRED);
	ck_assert_int_eq(acquire(P_OR, T0 + 100, 1, TTL, &l, &ra),
	    BH_SATURATED);
	ck_assert_uint_eq(ra, 200);
	ck_assert_int_eq(acquire(P_OR, T0 + 299, 1, TTL, &l, &ra),
	    BH_SATURATED);
	ck_assert_uint_eq(ra, 1);
}
END_TEST

START_TEST(ttl_expiry_and_stale_release)
{
	struct bh_lease old, fresh, other;
	uint64_t ra;

	ck_assert_int_eq(acquire(P_OR, T0, 1, 100, &old, &ra), BH_ACQUIRED);
	ck_assert_int_eq(acquire(P_OR, T0 + 99, 1, 100, &other, &ra),
	    BH_SATURATED);
	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0 + 99), 1);
	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0 + 100), 0);
	/* the next acquirer takes the expired lease's place */
	ck_assert_int_eq(acquire(P_OR, T0 + 100, 1, 100, &fresh, &ra),
	    BH_ACQUIRED);
	ck_assert_uint_eq(cnt(P_OR, BH_C_RECLAIMED_EXPIRED), 1);
	/* the old owner's release is harmless */
	ck_assert_int_eq(bh_release(&seg, &old), -1);
	ck_assert_uint_eq(cnt(P_OR, BH_C_STALE_RELEASES), 1);
	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0 + 150), 1);
	ck_assert_int_eq(acquire(P_OR, T0 + 150, 1, 100, &other, &ra),
	    BH_SATURATED);
	ck_assert_int_eq(bh_release(&seg, &fresh), 0);
	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0 + 150), 0);
	/* released twice: the second is stale */
	ck_assert_int_eq(bh_release(&seg, &fresh), -1);
	ck_assert_uint_eq(cnt(P_OR, BH_C_RELEASED), 1);
	ck_assert_uint_eq(cnt(P_OR, BH_C_STALE_RELEASES), 2);
}
END_TEST

/* The same process takes the same slot with the same word again: a late
 * second release of the first lease must not free the second. */
START_TEST(same_word_reacquired)
{
	struct bh_lease a, b, other;

	/* every slot but one held: the next two leases share a slot */
	for (unsigned i = 0; i + 1 < BH_CAPACITY; i++)
		ck_assert_int_eq(acquire(P_OR, T0, BH_CAPACITY, TTL, &other,
				     NULL),
		    BH_ACQUIRED);
	ck_assert_int_eq(acquire(P_OR, T0, BH_CAPACITY, TTL, &a, NULL),
	    BH_ACQUIRED);
	ck_assert_int_eq(bh_release(&seg, &a), 0);
	ck_assert_int_eq(acquire(P_OR, T0, BH_CAPACITY, TTL, &b, NULL),
	    BH_ACQUIRED);
	ck_assert_uint_eq(a.word, b.word);
	ck_assert_uint_eq(a.slot, b.slot);
	ck_assert_uint_ne(a.id, b.id);
	ck_assert_int_eq(bh_release(&seg, &a), -1);
	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0), BH_CAPACITY);
	ck_assert_uint_eq(bh_held(&seg, P_OR), BH_CAPACITY);
	ck_assert_int_eq(bh_release(&seg, &b), 0);
	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0), BH_CAPACITY - 1);
	ck_assert_uint_eq(bh_held(&seg, P_OR), BH_CAPACITY - 1);
}
END_TEST

START_TEST(sweep_and_renew)
{
	struct bh_lease l[4];

	ck_assert_int_eq(acquire(P_OR, T0, 8, 100, &l[0], NULL), BH_ACQUIRED);
	ck_assert_int_eq(acquire(P_OR, T0, 8, 200, &l[1], NULL), BH_ACQUIRED);
	ck_assert_int_eq(acquire(P_SERPER, T0, 8, 100, &l[2], NULL),
	    BH_ACQUIRED);
	ck_assert_int_eq(acquire(P_SERPER, T0, 8, 100, &l[3], NULL),
	    BH_ACQUIRED);
	ck_assert_uint_eq(bh_sweep(&seg, T0 + 50), 0);
	/* renewed before it expired: lives on */
	ck_assert_int_eq(bh_renew(&seg, &l[3], T0 + 90, 100), 0);
	ck_assert_uint_eq(BH_W_EXPIRES(l[3].word), T0 + 190);
	ck_assert_uint_eq(bh_sweep(&seg, T0 + 100), 2);
	ck_assert_uint_eq(cnt(P_OR, BH_C_RECLAIMED_EXPIRED), 1);
	ck_assert_uint_eq(cnt(P_SERPER, BH_C_RECLAIMED_EXPIRED), 1);
	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0 + 100), 1);
	ck_assert_uint_eq(bh_inflight(&seg, P_SERPER, T0 + 100), 1);
	/* a swept lease cannot be renewed nor released */
	ck_assert_int_eq(bh_renew(&seg, &l[2], T0 + 101, 100), -1);
	ck_assert_int_eq(bh_release(&seg, &l[2]), -1);
	ck_assert_uint_eq(bh_sweep(&seg, T0 + 200), 2);
	ck_assert_int_eq(bh_release(&seg, &l[3]), -1);
	ck_assert_uint_eq(bh_inflight(&seg, P_SERPER, T0 + 200), 0);
}
END_TEST

START_TEST(dead_owner_reclaimed_by_pid)
{
	pid_t dead = dead_child(P_OR, 3, 3);
	struct bh_lease l;

	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0), 3);
	ck_assert_uint_eq(bh_reclaim_pid(&seg, getpid()), 0);
	ck_assert_uint_eq(bh_reclaim_pid(&seg, dead), 3);
	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0), 0);
	ck_assert_uint_eq(cnt(P_OR, BH_C_RECLAIMED_DEAD), 3);
	ck_assert_uint_eq(bh_reclaim_pid(&seg, dead), 0);
	ck_assert_int_eq(acquire(P_OR, T0, 3, TTL, &l, NULL), BH_ACQUIRED);
}
END_TEST

START_TEST(dead_owner_detected_lazily)
{
	struct bh_lease l, mine;
	pid_t live;

	dead_child(P_OR, 2, 3);
	ck_assert_int_eq(acquire(P_OR, T0, 3, TTL, &mine, NULL), BH_ACQUIRED);
	ck_assert_uint_eq(cnt(P_OR, BH_C_RECLAIMED_DEAD), 0);
	/* full: the dead owner's leases go, never our own */
	ck_assert_int_eq(acquire(P_OR, T0, 3, TTL, &l, NULL), BH_ACQUIRED);
	ck_assert_uint_eq(cnt(P_OR, BH_C_RECLAIMED_DEAD), 2);
	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0), 2);
	ck_assert_int_eq(bh_release(&seg, &mine), 0);
	ck_assert_int_eq(bh_release(&seg, &l), 0);

	/* a live owner's lease is not taken */
	live = holder(P_SERPER, 1, 1);
	ck_assert_int_eq(acquire(P_SERPER, T0, 1, TTL, &l, NULL),
	    BH_SATURATED);
	ck_assert_uint_eq(bh_sweep(&seg, T0), 0);
	ck_assert_uint_eq(cnt(P_SERPER, BH_C_RECLAIMED_DEAD), 0);
	kill_holder(live);
	/* the monitor's sweep also frees a dead owner's lease */
	ck_assert_uint_eq(bh_sweep(&seg, T0), 1);
	ck_assert_uint_eq(cnt(P_SERPER, BH_C_RECLAIMED_DEAD), 1);
	ck_assert_int_eq(acquire(P_SERPER, T0, 1, TTL, &l, NULL),
	    BH_ACQUIRED);
}
END_TEST

/* The chat route holds a lease per open stream: 20,000 at once, each in
 * its own slot, then all given back. */
START_TEST(many_leases_held_then_released)
{
	struct bh_lease *l = calloc(MANY, sizeof(*l)), x;
	unsigned char *used = calloc(BH_CAPACITY, 1);

	ck_assert_ptr_nonnull(l);
	ck_assert_ptr_nonnull(used);
	for (unsigned i = 0; i < MANY; i++) {
		ck_assert_int_eq(acquire(P_PRI, T0, MANY, TTL, &l[i], NULL),
		    BH_ACQUIRED);
		ck_assert_uint_eq(used[l[i].slot], 0);
		used[l[i].slot] = 1;
	}
	ck_assert_uint_eq(bh_held(&seg, P_PRI), MANY);
	ck_assert_uint_eq(bh_inflight(&seg, P_PRI, T0), MANY);
	ck_assert_int_eq(acquire(P_PRI, T0, MANY, TTL, &x, NULL),
	    BH_SATURATED);
	/* one place more (a reload raising the cap) */
	ck_assert_int_eq(acquire(P_PRI, T0, MANY + 1, TTL, &x, NULL),
	    BH_ACQUIRED);
	ck_assert_uint_eq(used[x.slot], 0);
	ck_assert_int_eq(bh_release(&seg, &x), 0);
	for (unsigned i = 0; i < MANY; i++)
		ck_assert_int_eq(bh_release(&seg, &l[i]), 0);
	ck_assert_uint_eq(bh_held(&seg, P_PRI), 0);
	ck_assert_uint_eq(bh_inflight(&seg, P_PRI, T0), 0);
	ck_assert_uint_eq(cnt(P_PRI, BH_C_ACQUIRED), MANY + 1);
	ck_assert_uint_eq(cnt(P_PRI, BH_C_RELEASED), MANY + 1);
	ck_assert_uint_eq(cnt(P_PRI, BH_C_SATURATED), 1);
	ck_assert_uint_eq(cnt(P_PRI, BH_C_COUNT_CORRECTIONS), 0);
	free(used);
	free(l);
}
END_TEST

START_TEST(killed_holder_reclaimed)
{
	struct bh_lease mine[10], l;
	pid_t pid;

	for (unsigned i = 0; i < 10; i++)
		ck_assert_int_eq(acquire(P_PRI, T0, MANY, TTL, &mine[i],
				     NULL),
		    BH_ACQUIRED);
	pid = holder(P_PRI, 5000, MANY);
	ck_assert_uint_eq(bh_held(&seg, P_PRI), 5010);
	ck_assert_uint_eq(bh_inflight(&seg, P_PRI, T0), 5010);
	kill_holder(pid); /* kill -9 while it holds them */
	ck_assert_uint_eq(bh_held(&seg, P_PRI), 5010);
	ck_assert_uint_eq(bh_reclaim_pid(&seg, pid), 5000);
	ck_assert_uint_eq(bh_held(&seg, P_PRI), 10);
	ck_assert_uint_eq(bh_inflight(&seg, P_PRI, T0), 10);
	ck_assert_uint_eq(cnt(P_PRI, BH_C_RECLAIMED_DEAD), 5000);
	ck_assert_uint_eq(bh_reclaim_pid(&seg, pid), 0);

	/* killed holding the last places and not reclaimed: an acquirer
	 * that finds the count full frees them -- once the last scan, which
	 * saw the holder alive, is BH_RESCAN_MS old */
	pid = holder(P_PRI, 4990, 5000);
	ck_assert_int_eq(acquire(P_PRI, T0, 5000, TTL, &l, NULL),
	    BH_SATURATED);
	kill_holder(pid);
	ck_assert_uint_eq(bh_held(&seg, P_PRI), 5000);
	ck_assert_int_eq(acquire(P_PRI, T0 + BH_RESCAN_MS - 1, 5000, TTL, &l,
			     NULL),
	    BH_SATURATED);
	ck_assert_uint_eq(cnt(P_PRI, BH_C_RECLAIMED_DEAD), 5000);
	ck_assert_int_eq(acquire(P_PRI, T0 + BH_RESCAN_MS, 5000, TTL, &l,
			     NULL),
	    BH_ACQUIRED);
	ck_assert_uint_eq(bh_held(&seg, P_PRI), 11);
	ck_assert_uint_eq(cnt(P_PRI, BH_C_RECLAIMED_DEAD), 9990);
	ck_assert_int_eq(bh_release(&seg, &l), 0);
	for (unsigned i = 0; i < 10; i++)
		ck_assert_int_eq(bh_release(&seg, &mine[i]), 0);
	ck_assert_uint_eq(bh_held(&seg, P_PRI), 0);
	ck_assert_uint_eq(cnt(P_PRI, BH_C_COUNT_CORRECTIONS), 0);
}
END_TEST

/* A count left too high by processes that died halfway is corrected by
 * the slow path, which never takes a live process's reserved place and
 * never admits more than max. */
START_TEST(inflated_count_corrected)
{
	struct bh_lease l[10], x;
	unsigned n;
	pid_t live;

	for (n = 0; n < 5; n++)
		ck_assert_int_eq(acquire(P_PRI, T0, 10, TTL, &l[n], NULL),
		    BH_ACQUIRED);
	inflate(P_PRI, 3);                 /* reserved, no slot taken */
	half_done(P_PRI, tl_dead_pid(), 1); /* reserved, no lease yet */
	half_done(P_PRI, tl_dead_pid(), 1);
	half_done(P_PRI, tl_dead_pid(), 0); /* a slot, not reserved yet */
	ck_assert_uint_eq(bh_held(&seg, P_PRI), 10);
	/* full by the count: the scan finds 5 leases and 3 dead markers */
	ck_assert_int_eq(acquire(P_PRI, T0, 10, TTL, &l[n++], NULL),
	    BH_ACQUIRED);
	ck_assert_uint_eq(cnt(P_PRI, BH_C_COUNT_CORRECTIONS), 5);
	ck_assert_uint_eq(bh_held(&seg, P_PRI), 6);
	while (n < 10)
		ck_assert_int_eq(acquire(P_PRI, T0, 10, TTL, &l[n++], NULL),
		    BH_ACQUIRED);
	ck_assert_int_eq(acquire(P_PRI, T0, 10, TTL, &x, NULL),
	    BH_SATURATED);
	ck_assert_uint_eq(bh_inflight(&seg, P_PRI, T0), 10);
	ck_assert_uint_eq(bh_held(&seg, P_PRI), 10);

	/* a live process between its + 1 and its lease keeps its place */
	ck_assert_int_eq(bh_release(&seg, &l[--n]), 0);
	live = holder(P_SERPER, 0, 1);
	half_done(P_PRI, live, 1);
	ck_assert_int_eq(acquire(P_PRI, T0, 10, TTL, &x, NULL),
	    BH_SATURATED);
	ck_assert_uint_eq(bh_held(&seg, P_PRI), 10);
	ck_assert_uint_eq(cnt(P_PRI, BH_C_COUNT_CORRECTIONS), 5);
	/* it dies there: its place comes back (after BH_RESCAN_MS) */
	kill_holder(live);
	ck_assert_int_eq(acquire(P_PRI, T0 + BH_RESCAN_MS, 10, TTL, &l[n++],
			     NULL),
	    BH_ACQUIRED);
	ck_assert_uint_eq(cnt(P_PRI, BH_C_COUNT_CORRECTIONS), 6);
	ck_assert_uint_eq(bh_held(&seg, P_PRI), 10);
	ck_assert_uint_eq(bh_inflight(&seg, P_PRI, T0), 10);

	/* the monitor's sweep corrects it too, with room left */
	for (unsigned k = 0; k < 3; k++)
		ck_assert_int_eq(bh_release(&seg, &l[--n]), 0);
	inflate(P_PRI, 2);
	ck_assert_uint_eq(bh_sweep(&seg, T0), 0);
	ck_assert_uint_eq(bh_held(&seg, P_PRI), 7);
	ck_assert_uint_eq(cnt(P_PRI, BH_C_COUNT_CORRECTIONS), 8);
	while (n > 0)
		ck_assert_int_eq(bh_release(&seg, &l[--n]), 0);
	ck_assert_uint_eq(bh_held(&seg, P_PRI), 0);
}
END_TEST

/* knob_max_is_capacity - the knob at offset (bulkhead name's cap)
 * allows no more than the area holds. */
static void
knob_max_is_capacity(size_t offset, const char *name)
{
	for (unsigned i = 0; i < KNOB_COUNT; i++)
		if (config_knobs[i].offset == offset) {
			ck_assert_msg(config_knobs[i].max == BH_CAPACITY,
			    "bulkhead %s: %s allows up to %lld, the area "
			    "holds %u",
			    name, config_knobs[i].key,
			    (long long)config_knobs[i].max, BH_CAPACITY);
			return;
		}
	ck_abort_msg("bulkhead %s: no knob", name);
}

START_TEST(max_over_capacity_refused)
{
	const char *knob = "BULKHEAD_OR_PRI_MAX_CONCURRENT";
	struct config *cfg;
	char err[512], v[16];
	pid_t pid;
	int st;

#define PROV_KNOB(id, name, thr, cool, max, ttl)                          \
	knob_max_is_capacity(offsetof(struct config, max), name);
#define LOCAL_KNOB(id, name, max, ttl)                                    \
	knob_max_is_capacity(offsetof(struct config, max), name);
	RG_PROVIDERS(PROV_KNOB)
	BH_LOCAL(LOCAL_KNOB)
#undef PROV_KNOB
#undef LOCAL_KNOB
	/* relgated -t and a start refuse it, naming knob and capacity */
	snprintf(v, sizeof(v), "%u", BH_CAPACITY + 1);
	ck_assert_int_eq(setenv(knob, v, 1), 0);
	cfg = config_load(NULL, 0, err, sizeof(err));
	ck_assert_ptr_null(cfg);
	ck_assert_ptr_nonnull(strstr(err, knob));
	ck_assert_ptr_nonnull(strstr(err, "allowed 1..32768"));
	ck_assert_int_eq(setenv(knob, "20000", 1), 0);
	cfg = config_load(NULL, 0, err, sizeof(err));
	unsetenv(knob);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(cfg->bulkhead_or_pri_max_concurrent, 20000);
	config_free(cfg);
	/* a caller passing more breaks an invariant: an assertion (its
	 * message in the log is expected) */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct bh_lease l;

		bh_acquire(&seg, P_PRI, T0, BH_CAPACITY + 1, TTL, &l, NULL);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
}
END_TEST

#define NPROC 4
#define RACE_HOLD_MAX 600 /* leases a process tries to hold at once */

struct race {
	uint32_t cap, hold, rounds, leak_every; /* set by the test */
	uint32_t held, max;
	uint64_t acquired, saturated, released, bad, leaks;
};

static void
race_child(struct shm_seg *s, void *arg, int id)
{
	struct race *r = arg;

	(void)id;
	for (uint32_t round = 0; round < r->rounds; round++) {
		struct bh_lease l[RACE_HOLD_MAX];
		uint32_t n = 0;

		if (r->leak_every > 0 && round % r->leak_every == 0) {
			/* as a process that died after its + 1 */
			__atomic_fetch_add(
			    &bh_area_of(s)->prov[BH_PROV_BACKEND].held,
			    BH_H_ONE, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(&r->leaks, 1, __ATOMIC_RELAXED);
		}

		while (n < r->hold) {
			uint32_t h, m;

			if (bh_acquire(s, BH_PROV_BACKEND, now_ms(), r->cap,
				TTL, &l[n], NULL) != BH_ACQUIRED) {
				__atomic_add_fetch(&r->saturated, 1,
				    __ATOMIC_RELAXED);
				break;
			}
			__atomic_add_fetch(&r->acquired, 1, __ATOMIC_RELAXED);
			n++;
			h = __atomic_add_fetch(&r->held, 1, __ATOMIC_SEQ_CST);
			m = __atomic_load_n(&r->max, __ATOMIC_RELAXED);
			while (h > m && !__atomic_compare_exchange_n(&r->max,
					    &m, h, 0, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
				;
		}
		if (round % 3 == 0)
			sched_yield();
		while (n > 0) {
			n--;
			__atomic_sub_fetch(&r->held, 1, __ATOMIC_SEQ_CST);
			if (bh_release(s, &l[n]) != 0)
				__atomic_add_fetch(&r->bad, 1,
				    __ATOMIC_RELAXED);
			else
				__atomic_add_fetch(&r->released, 1,
				    __ATOMIC_RELAXED);
		}
	}
}

/* race - NPROC processes racing for more places than cap (leaving a
 * place on the count every leak_every rounds, as if they died halfway):
 * the leases held at once, counted by the test itself, never exceed the
 * cap, which is reached; every count agrees, and after a sweep the
 * count is 0 and every leaked place was corrected exactly once. */
static void
race(uint32_t cap, uint32_t hold, uint32_t rounds, uint32_t leak_every)
{
	struct race *r = tl_shared_map(sizeof(*r));

	r->cap = cap;
	r->hold = hold;
	r->rounds = rounds;
	r->leak_every = leak_every;
	tl_seg_children(NPROC, segname, race_child, r, NULL);
	ck_assert_msg(r->max <= cap, "%u leases held at once, cap %u",
	    r->max, cap);
	ck_assert_uint_eq(r->max, cap); /* the cap was reached */
	ck_assert_uint_eq(r->bad, 0);
	ck_assert_uint_gt(r->saturated, 0);
	ck_assert_uint_eq(r->acquired, r->released);
	ck_assert_uint_eq(bh_count(&seg, BH_PROV_BACKEND, BH_C_ACQUIRED),
	    r->acquired);
	ck_assert_uint_eq(bh_count(&seg, BH_PROV_BACKEND, BH_C_RELEASED),
	    r->released);
	ck_assert_uint_eq(bh_count(&seg, BH_PROV_BACKEND, BH_C_SATURATED),
	    r->saturated);
	ck_assert_uint_eq(bh_sweep(&seg, now_ms()), 0);
	ck_assert_uint_eq(bh_count(&seg, BH_PROV_BACKEND,
			      BH_C_COUNT_CORRECTIONS),
	    r->leaks);
	ck_assert_uint_eq(bh_inflight(&seg, BH_PROV_BACKEND, now_ms()), 0);
	ck_assert_uint_eq(bh_held(&seg, BH_PROV_BACKEND), 0);
	munmap(r, sizeof(*r));
}

START_TEST(cap_holds_under_racing_processes)
{
	race(5, 3, 10000, 0);
}
END_TEST

START_TEST(large_cap_holds_under_racing_processes)
{
	race(1000, RACE_HOLD_MAX, 100, 0);
}
END_TEST

/* corrections while others race never let more than the cap in */
START_TEST(cap_holds_while_counts_are_corrected)
{
	race(5, 3, 10000, 500);
	ck_assert_uint_eq(bh_count(&seg, BH_PROV_BACKEND,
			      BH_C_COUNT_CORRECTIONS),
	    NPROC * (10000 / 500));
}
END_TEST

START_TEST(large_cap_holds_while_counts_are_corrected)
{
	race(1000, RACE_HOLD_MAX, 100, 5);
}
END_TEST

static void
warn_child(struct shm_seg *s, void *arg, int id)
{
	uint32_t *wins = arg;

	(void)id;
	for (int k = 0; k < 100; k++)
		if (bh_should_warn(s, P_OR, T0 + 300000 + k, 300000))
			__atomic_add_fetch(wins, 1, __ATOMIC_RELAXED);
}

START_TEST(warning_cooldown)
{
	uint32_t *wins = tl_shared_map(sizeof(*wins));

	ck_assert_int_eq(bh_should_warn(&seg, P_OR, T0, 300000), 1);
	ck_assert_int_eq(bh_should_warn(&seg, P_OR, T0 + 1, 300000), 0);
	ck_assert_int_eq(bh_should_warn(&seg, P_OR, T0 + 299999, 300000), 0);
	ck_assert_int_eq(bh_should_warn(&seg, P_SERPER, T0, 300000), 1);
	/* at the end of the cooldown, exactly one of racing processes */
	tl_seg_children(NPROC, segname, warn_child, wins, NULL);
	ck_assert_uint_eq(*wins, 1);
	ck_assert_uint_eq(cnt(P_OR, BH_C_WARNINGS), 2);
	munmap(wins, sizeof(*wins));
}
END_TEST

START_TEST(relstat_shows_bulkheads)
{
	static char text[1 << 20];
	char row[256];
	struct bh_area *a = bh_area_of(&seg);
	uint64_t now = now_ms();
	struct bh_lease l[3];
	json_t *j, *b, *lease;

	ck_assert_int_eq(acquire(P_OR, now, 24, 180000, &l[0], NULL),
	    BH_ACQUIRED);
	ck_assert_int_eq(acquire(P_OR, now, 24, 180000, &l[1], NULL),
	    BH_ACQUIRED);
	ck_assert_int_eq(acquire(P_SERPER, now, 1, 30000, &l[2], NULL),
	    BH_ACQUIRED);
	acquire(P_SERPER, now, 1, 30000, &l[2], NULL); /* saturated */
	acquire(BH_PROV_GMAIL_OAUTH, now - 10000, 8, 1000, &l[2], NULL);
	bh_should_warn(&seg, P_SERPER, now, 300000);
	j = tl_relstat(segname, "-j", text, sizeof(text));
	b = json_object_get(json_object_get(j, "bulkheads"),
	    "openrouter_chat");
	ck_assert(json_is_object(b));
	ck_assert_int_eq(tl_jint(b, "inFlight"), 2);
	ck_assert_int_eq(tl_jint(b, "maxConcurrent"), 24);
	ck_assert_int_eq(tl_jint(b, "capacity"), BH_CAPACITY);
	ck_assert_int_eq(tl_jint(b, "held"), 2);
	ck_assert_int_eq(tl_jint(b, "leaseTtlMs"), 180000);
	ck_assert_int_eq(
	    tl_jint(json_object_get(b, "counters"), "acquired"), 2);
	ck_assert_int_eq(json_array_size(json_object_get(b, "leases")), 2);
	lease = json_array_get(json_object_get(b, "leases"), 0);
	ck_assert_int_eq(tl_jint(lease, "pid"), getpid());
	ck_assert_int_eq(
	    tl_jint(lease, "expiresAt"), (json_int_t)now + 180000);
	ck_assert_int_eq(tl_jint(lease, "acquiredAt"), (json_int_t)now);
	ck_assert_int_ge(tl_jint(lease, "id"), 1);
	b = json_object_get(json_object_get(j, "bulkheads"), "serper_search");
	ck_assert_int_eq(tl_jint(b, "inFlight"), 1);
	ck_assert_int_eq(
	    tl_jint(json_object_get(b, "counters"), "saturated"), 1);
	ck_assert_int_eq(
	    tl_jint(json_object_get(b, "counters"), "warnings"), 1);
	ck_assert_int_eq(tl_jint(b, "lastWarnedAt"), (json_int_t)now);
	b = json_object_get(json_object_get(j, "bulkheads"), "gmail_oauth");
	ck_assert_int_eq(tl_jint(b, "inFlight"), 0);
	ck_assert_int_eq(tl_jint(b, "expired"), 1);
	ck_assert(json_is_null(json_object_get(b, "lastWarnedAt")));
	ck_assert_int_eq(json_object_size(json_object_get(j, "bulkheads")),
	    BH_NPROVIDERS);
	ck_assert(json_is_object(json_object_get(j, "rateLimitPressure")));
	json_decref(j);

	tl_relstat(segname, "-1", text, sizeof(text));
	/* in flight/max, held, acquired, saturated, rate, reclaimed */
	ck_assert_str_eq(tl_row(text, "BULKHEAD", row, sizeof(row)),
	    "BULKHEAD IN FLIGHT HELD ACQUIRED SATURATED SAT/S RECLAIMED");
	ck_assert_str_eq(tl_row(text, "openrouter_chat", row, sizeof(row)),
	    "openrouter_chat 2/24 2 2 0 - 0");
	ck_assert_str_eq(tl_row(text, "serper_search", row, sizeof(row)),
	    "serper_search 1/1 1 1 1 - 0");
	ck_assert_ptr_nonnull(tl_row(text, "tool_job", row, sizeof(row)));

	strcpy(a->names[BH_PROV_TOOL_JOB], "future_bulkhead");
	j = tl_relstat(segname, "-j", text, sizeof(text));
	ck_assert(json_is_object(json_object_get(json_object_get(j,
	    "bulkheads"), "future_bulkhead")));
	json_decref(j);
}
END_TEST

/* relstat lists the -l most recent leases of a bulkhead (20 by
 * default), not every one of thousands, with the counts beside them. */
START_TEST(relstat_lists_recent_leases)
{
	static char text[1 << 20];
	char row[256];
	uint64_t now = now_ms();
	struct bh_lease l;
	json_t *j, *b, *leases;

	for (unsigned k = 0; k < 3000; k++)
		ck_assert_int_eq(acquire(P_PRI, now + k % 30, MANY, TTL, &l,
				     NULL),
		    BH_ACQUIRED);
	j = tl_relstat(segname, "-j", text, sizeof(text));
	b = json_object_get(json_object_get(j, "bulkheads"), bh_provider_name(P_PRI));
	ck_assert_int_eq(tl_jint(b, "inFlight"), 3000);
	ck_assert_int_eq(tl_jint(b, "held"), 3000);
	ck_assert_int_eq(tl_jint(b, "maxConcurrent"), MANY);
	ck_assert_int_eq(tl_jint(b, "capacity"), BH_CAPACITY);
	leases = json_object_get(b, "leases");
	ck_assert_int_eq(json_array_size(leases), 20);
	/* most recent first: the last lease taken at the latest time */
	ck_assert_int_eq(tl_jint(json_array_get(leases, 0), "acquiredAt"),
	    (json_int_t)now + 29);
	ck_assert_int_eq(tl_jint(json_array_get(leases, 0), "id"), 3000);
	ck_assert_int_eq(tl_jint(json_array_get(leases, 19), "acquiredAt"),
	    (json_int_t)now + 29);
	json_decref(j);
	j = tl_relstat(segname, "-j -l 3", text, sizeof(text));
	b = json_object_get(json_object_get(j, "bulkheads"), bh_provider_name(P_PRI));
	ck_assert_int_eq(json_array_size(json_object_get(b, "leases")), 3);
	ck_assert_int_eq(tl_jint(b, "inFlight"), 3000);
	json_decref(j);
	tl_relstat(segname, "-1", text, sizeof(text));
	ck_assert_str_eq(tl_row(text, bh_provider_name(P_PRI), row,
			     sizeof(row)),
	    "openrouter_chat_primary 3000/20000 3000 3000 0 - 0");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("bulkhead");
	TCase *tc = tl_tcase(s, "bulkhead", setup, teardown, 120);

	tcase_add_test(tc, names_and_layout);
	tcase_add_test(tc, cap_release_and_ids);
	tcase_add_test(tc, retry_hint_follows_earliest_expiry);
	tcase_add_test(tc, ttl_expiry_and_stale_release);
	tcase_add_test(tc, same_word_reacquired);
	tcase_add_test(tc, sweep_and_renew);
	tcase_add_test(tc, dead_owner_reclaimed_by_pid);
	tcase_add_test(tc, dead_owner_detected_lazily);
	tcase_add_test(tc, many_leases_held_then_released);
	tcase_add_test(tc, killed_holder_reclaimed);
	tcase_add_test(tc, inflated_count_corrected);
	tcase_add_test(tc, max_over_capacity_refused);
	tcase_add_test(tc, cap_holds_under_racing_processes);
	tcase_add_test(tc, large_cap_holds_under_racing_processes);
	tcase_add_test(tc, cap_holds_while_counts_are_corrected);
	tcase_add_test(tc, large_cap_holds_while_counts_are_corrected);
	tcase_add_test(tc, warning_cooldown);
	tcase_add_test(tc, relstat_shows_bulkheads);
	tcase_add_test(tc, relstat_lists_recent_leases);
	return tl_run(s);
}
