/*
 * bulkhead_test - the shm bulkheads: the cap and its retry hint, lease
 * ids, TTL expiry (by acquirers, bh_sweep and bh_renew), releases of
 * leases already reclaimed, leases of dead processes (bh_reclaim_pid and
 * lazy detection, but never a live owner's), the cap under processes
 * racing, the saturation warning cooldown, and relstat's bulkheads.
 */
#include <check.h>
#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/config.h"
#include "shm/bulkhead.h"
#include "shm/shm.h"
#include "tests/relstat_run.h"
#include "util/util.h"

#define T0 UINT64_C(1700000000000)
#define TTL 60000u
#define P_OR BH_PROV_OPENROUTER_CHAT
#define P_SERPER BH_PROV_SERPER_SEARCH

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
	const struct shm_sizes sizes = { .ratelimit_slots = 64 };
	char err[256];

	snprintf(segname, sizeof(segname), "/rgtest.bh.%ld", (long)getpid());
	shm_remove(segname);
	ck_assert_msg(shm_create(&seg, segname, &sizes, err, sizeof(err)) ==
		0,
	    "%s", err);
	bh_area_init(&seg);
}

static void
teardown(void)
{
	shm_detach(&seg);
	shm_remove(segname);
}

static void *
shared_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert(p != MAP_FAILED);
	memset(p, 0, len);
	return p;
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

/* dead_child - a process that takes n leases of prov and exits without
 * giving them back; reaped, so kill(pid, 0) says ESRCH. */
static pid_t
dead_child(unsigned prov, uint32_t n, uint32_t max)
{
	pid_t pid = fork();
	int st;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct shm_seg s;
		struct bh_lease l;
		char err[256];

		if (shm_attach(&s, segname, 1, err, sizeof(err)) != 0)
			_exit(3);
		for (uint32_t i = 0; i < n; i++)
			if (bh_acquire(&s, prov, T0, max, TTL, &l, NULL) !=
			    BH_ACQUIRED)
				_exit(4);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return pid;
}

START_TEST(names_and_layout)
{
	const struct bh_area *a = bh_area_of(&seg);
	uint32_t stride, count;

	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->head.described, 2);
	ck_assert_mem_eq(a->head.magic, BH_MAGIC, 8);
	ck_assert_uint_eq(a->head.capacity, BH_CAPACITY);
	ck_assert_uint_eq(a->head.nproviders, BH_NPROVIDERS);
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
	/* max 0 refuses, max above the capacity is clamped */
	ck_assert_int_eq(acquire(P_OR, T0, 0, TTL, &l[0], NULL),
	    BH_SATURATED);
	for (unsigned i = 0; i < BH_CAPACITY; i++)
		ck_assert_int_eq(acquire(BH_PROV_TOOL_JOB, T0, 100000, TTL,
				     &l[0], NULL),
		    BH_ACQUIRED);
	ck_assert_int_eq(acquire(BH_PROV_TOOL_JOB, T0, 100000, TTL, &l[0],
			     &ra),
	    BH_SATURATED);
	ck_assert_uint_eq(bh_inflight(&seg, BH_PROV_TOOL_JOB, T0),
	    BH_CAPACITY);
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
	struct bh_lease a, b;

	ck_assert_int_eq(acquire(P_OR, T0, 4, TTL, &a, NULL), BH_ACQUIRED);
	ck_assert_int_eq(bh_release(&seg, &a), 0);
	ck_assert_int_eq(acquire(P_OR, T0, 4, TTL, &b, NULL), BH_ACQUIRED);
	ck_assert_uint_eq(a.word, b.word);
	ck_assert_uint_eq(a.slot, b.slot);
	ck_assert_uint_ne(a.id, b.id);
	ck_assert_int_eq(bh_release(&seg, &a), -1);
	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0), 1);
	ck_assert_int_eq(bh_release(&seg, &b), 0);
	ck_assert_uint_eq(bh_inflight(&seg, P_OR, T0), 0);
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
	int fds[2];
	char c;
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
	ck_assert_int_eq(pipe(fds), 0);
	live = fork();
	ck_assert_int_ge(live, 0);
	if (live == 0) {
		struct shm_seg s;
		char err[256];

		close(fds[0]);
		if (shm_attach(&s, segname, 1, err, sizeof(err)) != 0 ||
		    bh_acquire(&s, P_SERPER, T0, 1, TTL, &l, NULL) !=
			BH_ACQUIRED)
			_exit(3);
		if (write(fds[1], "x", 1) != 1)
			_exit(4);
		pause();
		_exit(0);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	ck_assert_int_eq(acquire(P_SERPER, T0, 1, TTL, &l, NULL),
	    BH_SATURATED);
	ck_assert_uint_eq(bh_sweep(&seg, T0), 0);
	ck_assert_uint_eq(cnt(P_SERPER, BH_C_RECLAIMED_DEAD), 0);
	kill(live, SIGKILL);
	ck_assert_int_eq(waitpid(live, NULL, 0), live);
	close(fds[0]);
	/* the monitor's sweep also frees a dead owner's lease */
	ck_assert_uint_eq(bh_sweep(&seg, T0), 1);
	ck_assert_uint_eq(cnt(P_SERPER, BH_C_RECLAIMED_DEAD), 1);
	ck_assert_int_eq(acquire(P_SERPER, T0, 1, TTL, &l, NULL),
	    BH_ACQUIRED);
}
END_TEST

#define NPROC 4
#define RACE_CAP 5u
#define RACE_HOLD 3 /* leases each process tries to hold at once */
#define RACE_ROUNDS 10000

struct race {
	uint32_t held, max;
	uint64_t acquired, saturated, released, bad;
};

static void
race_child(struct race *r)
{
	struct shm_seg s;
	char err[256];

	if (shm_attach(&s, segname, 1, err, sizeof(err)) != 0)
		_exit(3);
	for (int round = 0; round < RACE_ROUNDS; round++) {
		struct bh_lease l[RACE_HOLD];
		int n = 0;

		while (n < RACE_HOLD) {
			uint32_t h, m;

			if (bh_acquire(&s, BH_PROV_BACKEND, now_ms(),
				RACE_CAP, TTL, &l[n], NULL) != BH_ACQUIRED) {
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
			if (bh_release(&s, &l[n]) != 0)
				__atomic_add_fetch(&r->bad, 1,
				    __ATOMIC_RELAXED);
			else
				__atomic_add_fetch(&r->released, 1,
				    __ATOMIC_RELAXED);
		}
	}
	shm_detach(&s);
	_exit(0);
}

/* Processes racing for more places than there are: the number of leases
 * held at once, counted by the test itself, never exceeds the cap. */
START_TEST(cap_holds_under_racing_processes)
{
	struct race *r = shared_map(sizeof(*r));
	pid_t pids[NPROC];

	for (int i = 0; i < NPROC; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0)
			race_child(r);
	}
	for (int i = 0; i < NPROC; i++) {
		int st;

		ck_assert_int_eq(waitpid(pids[i], &st, 0), pids[i]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "child %d: status %d", i, st);
	}
	ck_assert_msg(r->max <= RACE_CAP, "%u leases held at once, cap %u",
	    r->max, RACE_CAP);
	ck_assert_uint_eq(r->max, RACE_CAP); /* the cap was reached */
	ck_assert_uint_eq(r->bad, 0);
	ck_assert_uint_gt(r->saturated, 0);
	ck_assert_uint_eq(r->acquired, r->released);
	ck_assert_uint_eq(bh_count(&seg, BH_PROV_BACKEND, BH_C_ACQUIRED),
	    r->acquired);
	ck_assert_uint_eq(bh_count(&seg, BH_PROV_BACKEND, BH_C_RELEASED),
	    r->released);
	ck_assert_uint_eq(bh_count(&seg, BH_PROV_BACKEND, BH_C_SATURATED),
	    r->saturated);
	ck_assert_uint_eq(bh_inflight(&seg, BH_PROV_BACKEND, now_ms()), 0);
	munmap(r, sizeof(*r));
}
END_TEST

START_TEST(warning_cooldown)
{
	uint32_t *wins = shared_map(sizeof(*wins));
	pid_t pids[NPROC];

	ck_assert_int_eq(bh_should_warn(&seg, P_OR, T0, 300000), 1);
	ck_assert_int_eq(bh_should_warn(&seg, P_OR, T0 + 1, 300000), 0);
	ck_assert_int_eq(bh_should_warn(&seg, P_OR, T0 + 299999, 300000), 0);
	ck_assert_int_eq(bh_should_warn(&seg, P_SERPER, T0, 300000), 1);
	/* at the end of the cooldown, exactly one of racing processes */
	for (int i = 0; i < NPROC; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			struct shm_seg s;
			char err[256];

			if (shm_attach(&s, segname, 1, err, sizeof(err)) != 0)
				_exit(3);
			for (int k = 0; k < 100; k++)
				if (bh_should_warn(&s, P_OR, T0 + 300000 + k,
					300000))
					__atomic_add_fetch(wins, 1,
					    __ATOMIC_RELAXED);
			_exit(0);
		}
	}
	for (int i = 0; i < NPROC; i++)
		ck_assert_int_eq(waitpid(pids[i], NULL, 0), pids[i]);
	ck_assert_uint_eq(*wins, 1);
	ck_assert_uint_eq(cnt(P_OR, BH_C_WARNINGS), 2);
	munmap(wins, sizeof(*wins));
}
END_TEST

/* relstat - run the built relstat on our segment. */
static json_t *
relstat(const char *flags, char *text, size_t len)
{
	return relstat_run(segname, flags, text, len);
}


START_TEST(relstat_shows_bulkheads)
{
	static char text[1 << 20];
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
	j = relstat("-j", text, sizeof(text));
	b = json_object_get(json_object_get(j, "bulkheads"),
	    "openrouter_chat");
	ck_assert(json_is_object(b));
	ck_assert_int_eq(relstat_int(b, "inFlight"), 2);
	ck_assert_int_eq(relstat_int(b, "maxConcurrent"), 24);
	ck_assert_int_eq(relstat_int(b, "capacity"), BH_CAPACITY);
	ck_assert_int_eq(relstat_int(b, "leaseTtlMs"), 180000);
	ck_assert_int_eq(relstat_int(json_object_get(b, "counters"), "acquired"), 2);
	ck_assert_int_eq(json_array_size(json_object_get(b, "leases")), 2);
	lease = json_array_get(json_object_get(b, "leases"), 0);
	ck_assert_int_eq(relstat_int(lease, "pid"), getpid());
	ck_assert_int_eq(relstat_int(lease, "expiresAt"), (json_int_t)now + 180000);
	ck_assert_int_eq(relstat_int(lease, "acquiredAt"), (json_int_t)now);
	ck_assert_int_ge(relstat_int(lease, "id"), 1);
	b = json_object_get(json_object_get(j, "bulkheads"), "serper_search");
	ck_assert_int_eq(relstat_int(b, "inFlight"), 1);
	ck_assert_int_eq(relstat_int(json_object_get(b, "counters"), "saturated"),
	    1);
	ck_assert_int_eq(relstat_int(json_object_get(b, "counters"), "warnings"), 1);
	ck_assert_int_eq(relstat_int(b, "lastWarnedAt"), (json_int_t)now);
	b = json_object_get(json_object_get(j, "bulkheads"), "gmail_oauth");
	ck_assert_int_eq(relstat_int(b, "inFlight"), 0);
	ck_assert_int_eq(relstat_int(b, "expired"), 1);
	ck_assert(json_is_null(json_object_get(b, "lastWarnedAt")));
	ck_assert_int_eq(json_object_size(json_object_get(j, "bulkheads")),
	    BH_NPROVIDERS);
	ck_assert(json_is_object(json_object_get(j, "rateLimitPressure")));
	json_decref(j);

	relstat("-1", text, sizeof(text));
	ck_assert_ptr_nonnull(strstr(text, "BULKHEAD"));
	ck_assert_ptr_nonnull(strstr(text, "2/24"));
	ck_assert_ptr_nonnull(strstr(text, "saturated 1"));
	ck_assert_ptr_nonnull(strstr(text, "tool_job"));

	strcpy(a->names[BH_PROV_TOOL_JOB], "future_bulkhead");
	j = relstat("-j", text, sizeof(text));
	ck_assert(json_is_object(json_object_get(json_object_get(j,
	    "bulkheads"), "future_bulkhead")));
	json_decref(j);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("bulkhead");
	TCase *tc = tcase_create("bulkhead");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, names_and_layout);
	tcase_add_test(tc, cap_release_and_ids);
	tcase_add_test(tc, retry_hint_follows_earliest_expiry);
	tcase_add_test(tc, ttl_expiry_and_stale_release);
	tcase_add_test(tc, same_word_reacquired);
	tcase_add_test(tc, sweep_and_renew);
	tcase_add_test(tc, dead_owner_reclaimed_by_pid);
	tcase_add_test(tc, dead_owner_detected_lazily);
	tcase_add_test(tc, cap_holds_under_racing_processes);
	tcase_add_test(tc, warning_cooldown);
	tcase_add_test(tc, relstat_shows_bulkheads);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
