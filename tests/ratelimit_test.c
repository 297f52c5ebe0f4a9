/*
 * ratelimit_test - the shm rate limiter: window boundaries and roll-over,
 * blocked requests not counted, independence of keys and buckets, exact
 * limits under several processes, a full table, reuse of expired slots,
 * claims left by slow or dead processes, and relstat's rateLimitPressure.
 */
#include <check.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shm/ratelimit.h"
#include "shm/shm.h"
#include "testlib.h"

#define WIN 60000u
#define T0 UINT64_C(1700000000000)

static char segname[64];
static char tinyname[80]; /* a second, 64-slot segment */
static struct shm_seg seg;

static void
mkseg(struct shm_seg *s, const char *name, uint32_t slots)
{
	tl_seg_create(s, name, slots);
	rl_area_init(s);
}

static void
setup(void)
{
	tl_segname(segname, sizeof(segname), "rl");
	snprintf(tinyname, sizeof(tinyname), "%s.tiny", segname);
	mkseg(&seg, segname, 1024);
}

static void
teardown(void)
{
	char name[80];

	shm_detach(&seg);
	shm_remove(segname);
	shm_remove(tinyname);
	snprintf(name, sizeof(name), "%s.b", segname);
	shm_remove(name);
}

static int
check(unsigned bucket, const char *key, uint64_t now, uint32_t limit,
    struct rl_result *out)
{
	return rl_check(&seg, bucket, key, strlen(key), now, limit, WIN, out);
}

START_TEST(sizes_and_names)
{
	uint32_t stride, count;
	const struct rl_area *a = rl_area_of(&seg);

	ck_assert_uint_eq(rl_area_size(0, &stride, &count) -
		offsetof(struct rl_area, table),
	    64 * sizeof(struct rl_entry));
	ck_assert_uint_eq(count, 64);
	ck_assert_uint_eq(stride, sizeof(struct rl_entry));
	rl_area_size(100, &stride, &count);
	ck_assert_uint_eq(count, 128);
	rl_area_size(1024, &stride, &count);
	ck_assert_uint_eq(count, 1024);
	rl_area_size(UINT32_MAX, &stride, &count);
	ck_assert_uint_eq(count, RL_MAX_SLOTS);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(shm_area_by_name(&seg, "ratelimit")->count, 1024);
	ck_assert_uint_eq(a->head.slots, 1024);
	ck_assert_uint_eq(rl_tstat(&seg, RL_TS_SLOTS), 1024);
	ck_assert_mem_eq(a->head.magic, RL_MAGIC, 8);
	ck_assert_uint_eq(a->head.described, 2);
	ck_assert(a->head.seed[0] != 0 && a->head.seed[1] != 0);
	ck_assert_str_eq(a->names[RL_BUCKET_WA_LINK_CODE], "wa_link_code");
	ck_assert_str_eq(a->names[RL_NBUCKETS + RL_CONTENTION],
	    "contention_fallback");
	ck_assert_str_eq(rl_bucket_name(RL_BUCKET_GMAIL_OAUTH_CALLBACK),
	    "gmail_oauth_callback");
	ck_assert_int_eq(rl_bucket_by_name("chat_stream"),
	    RL_BUCKET_CHAT_STREAM);
	ck_assert_int_eq(rl_bucket_by_name("nope"), -1);
	ck_assert_int_eq(rl_bucket_by_name("gmail_push"),
	    RL_BUCKET_GMAIL_PUSH);
	ck_assert_int_eq(rl_bucket_by_name("whatsapp_webhook"),
	    RL_BUCKET_WHATSAPP_WEBHOOK);
	ck_assert_str_eq(rl_outcome_name(RL_BLOCKED), "blocked");
	ck_assert_uint_eq(rl_retry_after_s(0), 1);
	ck_assert_uint_eq(rl_retry_after_s(1), 1);
	ck_assert_uint_eq(rl_retry_after_s(1000), 1);
	ck_assert_uint_eq(rl_retry_after_s(1001), 2);
	ck_assert_uint_eq(rl_retry_after_s(59999), 60);
}
END_TEST

START_TEST(limit_boundary_and_blocked_not_counted)
{
	struct rl_result r;

	for (uint32_t i = 1; i <= 3; i++) {
		ck_assert_int_eq(check(RL_BUCKET_GMAIL_PUSH, "1.2.3.4",
				     T0 + i, 3, &r),
		    RL_ALLOWED);
		ck_assert_uint_eq(r.count, i);
		ck_assert_uint_eq(r.remaining, 3 - i);
		/* the window started with the first request */
		ck_assert_uint_eq(r.retry_after_ms, T0 + 1 + WIN - (T0 + i));
	}
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(check(RL_BUCKET_GMAIL_PUSH, "1.2.3.4",
				     T0 + 400, 3, &r),
		    RL_BLOCKED);
		ck_assert_uint_eq(r.retry_after_ms, T0 + 1 + WIN - (T0 + 400));
		ck_assert_uint_eq(r.count, 3);
		ck_assert_uint_eq(r.remaining, 0);
	}
	/* blocked requests did not move the counter: a higher limit (say a
	 * reload) allows exactly the difference */
	ck_assert_int_eq(check(RL_BUCKET_GMAIL_PUSH, "1.2.3.4", T0 + 500, 5,
			     &r),
	    RL_ALLOWED);
	ck_assert_uint_eq(r.count, 4);
	ck_assert_int_eq(check(RL_BUCKET_GMAIL_PUSH, "1.2.3.4", T0 + 500, 5,
			     &r),
	    RL_ALLOWED);
	ck_assert_int_eq(check(RL_BUCKET_GMAIL_PUSH, "1.2.3.4", T0 + 500, 5,
			     &r),
	    RL_BLOCKED);
	ck_assert_uint_eq(r.count, 5);
	ck_assert_uint_eq(rl_count(&seg, RL_BUCKET_GMAIL_PUSH, RL_ALLOWED), 5);
	ck_assert_uint_eq(rl_count(&seg, RL_BUCKET_GMAIL_PUSH, RL_BLOCKED),
	    11);
	ck_assert_uint_eq(rl_count(&seg, RL_BUCKET_GMAIL_PUSH, RL_CONTENTION),
	    0);
	ck_assert_uint_eq(rl_count(&seg, RL_BUCKET_WHATSAPP_WEBHOOK,
			      RL_ALLOWED),
	    0);
	/* no out pointer is fine */
	ck_assert_int_eq(rl_check(&seg, RL_BUCKET_GMAIL_PUSH, "1.2.3.4", 7,
			     T0 + 600, 5, WIN, NULL),
	    RL_BLOCKED);
}
END_TEST

START_TEST(window_rollover)
{
	struct rl_result r;
	uint64_t end = T0 + WIN;

	ck_assert_int_eq(check(RL_BUCKET_CHAT_STREAM, "user:1", T0, 2, &r),
	    RL_ALLOWED);
	ck_assert_int_eq(check(RL_BUCKET_CHAT_STREAM, "user:1", T0 + 1, 2,
			     &r),
	    RL_ALLOWED);
	ck_assert_int_eq(check(RL_BUCKET_CHAT_STREAM, "user:1", end - 1, 2,
			     &r),
	    RL_BLOCKED);
	ck_assert_uint_eq(r.retry_after_ms, 1);
	ck_assert_uint_eq(rl_retry_after_s(r.retry_after_ms), 1);
	/* at the window's end a new window starts with this request */
	ck_assert_int_eq(check(RL_BUCKET_CHAT_STREAM, "user:1", end, 2, &r),
	    RL_ALLOWED);
	ck_assert_uint_eq(r.count, 1);
	ck_assert_uint_eq(r.retry_after_ms, WIN);
	ck_assert_int_eq(check(RL_BUCKET_CHAT_STREAM, "user:1", end + 10, 2,
			     &r),
	    RL_ALLOWED);
	ck_assert_int_eq(check(RL_BUCKET_CHAT_STREAM, "user:1", end + 20, 2,
			     &r),
	    RL_BLOCKED);
	ck_assert_uint_eq(r.retry_after_ms, WIN - 20);
	/* long idle: the next request starts a fresh window */
	ck_assert_int_eq(check(RL_BUCKET_CHAT_STREAM, "user:1",
			     end + 10 * WIN + 3, 2, &r),
	    RL_ALLOWED);
	ck_assert_uint_eq(r.count, 1);
	/* a window of its own length per call: a short window ends sooner */
	ck_assert_int_eq(rl_check(&seg, RL_BUCKET_WA_LINK_CODE, "u", 1,
			     T0, 1, 1000, &r),
	    RL_ALLOWED);
	ck_assert_int_eq(rl_check(&seg, RL_BUCKET_WA_LINK_CODE, "u", 1,
			     T0 + 999, 1, 1000, &r),
	    RL_BLOCKED);
	ck_assert_uint_eq(r.retry_after_ms, 1);
	ck_assert_int_eq(rl_check(&seg, RL_BUCKET_WA_LINK_CODE, "u", 1,
			     T0 + 1000, 1, 1000, &r),
	    RL_ALLOWED);
}
END_TEST

START_TEST(keys_and_buckets_independent)
{
	struct rl_result r;
	/* binary keys and one that is a prefix of another */
	const char k1[] = { 'a', '\0', 'b' }, k2[] = { 'a', '\0', 'c' };

	ck_assert_int_eq(check(RL_BUCKET_WHATSAPP_WEBHOOK, "10.0.0.1", T0, 1,
			     &r),
	    RL_ALLOWED);
	ck_assert_int_eq(check(RL_BUCKET_WHATSAPP_WEBHOOK, "10.0.0.1", T0, 1,
			     &r),
	    RL_BLOCKED);
	ck_assert_int_eq(check(RL_BUCKET_WHATSAPP_WEBHOOK, "10.0.0.10", T0, 1,
			     &r),
	    RL_ALLOWED);
	ck_assert_int_eq(check(RL_BUCKET_WHATSAPP_WEBHOOK, "10.0.0.", T0, 1,
			     &r),
	    RL_ALLOWED);
	for (unsigned b = 0; b < RL_NBUCKETS; b++) {
		if (b == RL_BUCKET_WHATSAPP_WEBHOOK)
			continue;
		ck_assert_int_eq(check(b, "10.0.0.1", T0, 1, &r), RL_ALLOWED);
		ck_assert_int_eq(check(b, "10.0.0.1", T0, 1, &r), RL_BLOCKED);
	}
	ck_assert_int_eq(rl_check(&seg, RL_BUCKET_GMAIL_PUSH, k1, 3, T0, 1,
			     WIN, &r),
	    RL_ALLOWED);
	ck_assert_int_eq(rl_check(&seg, RL_BUCKET_GMAIL_PUSH, k2, 3, T0, 1,
			     WIN, &r),
	    RL_ALLOWED);
	ck_assert_int_eq(rl_check(&seg, RL_BUCKET_GMAIL_PUSH, k1, 3, T0, 1,
			     WIN, &r),
	    RL_BLOCKED);
	ck_assert_int_eq(rl_check(&seg, RL_BUCKET_GMAIL_PUSH, "", 0, T0, 1,
			     WIN, &r),
	    RL_ALLOWED);
	ck_assert_uint_eq(rl_tstat(&seg, RL_TS_USED), 3 + RL_NBUCKETS + 2);
}
END_TEST

START_TEST(limit_zero_and_clamp)
{
	struct rl_result r;

	ck_assert_int_eq(check(RL_BUCKET_GMAIL_PUSH, "z", T0, 0, &r),
	    RL_BLOCKED);
	ck_assert_uint_eq(r.retry_after_ms, WIN);
	ck_assert_int_eq(check(RL_BUCKET_GMAIL_PUSH, "z", T0, UINT32_MAX,
			     &r),
	    RL_ALLOWED);
	ck_assert_uint_eq(r.remaining, RL_COUNT_MAX - 1);
}
END_TEST

/* The seed is per segment: the same key hashes differently elsewhere. */
START_TEST(seed_per_segment)
{
	struct shm_seg other;
	char name[80];
	uint64_t h1, h2;

	snprintf(name, sizeof(name), "%s.b", segname);
	mkseg(&other, name, 64);
	h1 = rl_hash(rl_area_of(&seg), 0, "key", 3);
	h2 = rl_hash(rl_area_of(&other), 0, "key", 3);
	ck_assert(h1 != h2);
	ck_assert(rl_hash(rl_area_of(&seg), 1, "key", 3) != h1);
	ck_assert(rl_hash(rl_area_of(&seg), 0, "key", 3) == h1);
	shm_detach(&other);
	shm_remove(name);
}
END_TEST

#define NPROC 4
#define NWIN 6
#define HAMMER_LIMIT 5000u
#define HAMMER_TRIES 3000

struct hammer {
	uint32_t arrived[NWIN];
	uint64_t allowed[NWIN];
	uint64_t blocked, contention, bad;
};

/* barrier - all NPROC children reach window w before any goes on. */
static void
barrier(uint32_t *word)
{
	__atomic_add_fetch(word, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(word, __ATOMIC_ACQUIRE) < NPROC)
		sched_yield();
}

static void
hammer_child(struct shm_seg *s, void *arg, int id)
{
	struct hammer *sh = arg;

	(void)id;
	for (unsigned w = 0; w < NWIN; w++) {
		uint64_t now = T0 + (uint64_t)w * WIN, allowed = 0;

		barrier(&sh->arrived[w]);
		for (int i = 0; i < HAMMER_TRIES; i++) {
			struct rl_result r;
			int rc = rl_check(s, RL_BUCKET_WHATSAPP_WEBHOOK,
			    "203.0.113.7", 11, now, HAMMER_LIMIT, WIN, &r);

			if (rc == RL_ALLOWED) {
				allowed++;
				if (r.count > HAMMER_LIMIT ||
				    r.remaining != HAMMER_LIMIT - r.count)
					__atomic_add_fetch(&sh->bad, 1,
					    __ATOMIC_RELAXED);
			} else if (rc == RL_BLOCKED) {
				__atomic_add_fetch(&sh->blocked, 1,
				    __ATOMIC_RELAXED);
				if (r.count != HAMMER_LIMIT ||
				    r.retry_after_ms != WIN)
					__atomic_add_fetch(&sh->bad, 1,
					    __ATOMIC_RELAXED);
			} else {
				__atomic_add_fetch(&sh->contention, 1,
				    __ATOMIC_RELAXED);
			}
		}
		__atomic_add_fetch(&sh->allowed[w], allowed,
		    __ATOMIC_RELAXED);
	}
}

START_TEST(processes_share_exact_limit)
{
	struct hammer *sh = tl_shared_map(sizeof(*sh));
	uint64_t total = (uint64_t)NPROC * HAMMER_TRIES * NWIN;

	tl_seg_children(NPROC, segname, hammer_child, sh, NULL);
	ck_assert_uint_eq(sh->contention, 0);
	ck_assert_uint_eq(sh->bad, 0);
	for (unsigned w = 0; w < NWIN; w++)
		ck_assert_msg(sh->allowed[w] == HAMMER_LIMIT,
		    "window %u: %llu allowed, limit %u", w,
		    (unsigned long long)sh->allowed[w], HAMMER_LIMIT);
	ck_assert_uint_eq(sh->blocked, total - NWIN * HAMMER_LIMIT);
	ck_assert_uint_eq(rl_count(&seg, RL_BUCKET_WHATSAPP_WEBHOOK,
			      RL_ALLOWED),
	    NWIN * HAMMER_LIMIT);
	ck_assert_uint_eq(rl_count(&seg, RL_BUCKET_WHATSAPP_WEBHOOK,
			      RL_BLOCKED),
	    total - NWIN * HAMMER_LIMIT);
	/* one key, one slot, reused by its own key every window */
	ck_assert_uint_eq(rl_tstat(&seg, RL_TS_USED), 1);
	munmap(sh, sizeof(*sh));
}
END_TEST

#define CHURN_KEYS 100
#define CHURN_LIMIT 3u
#define CHURN_ROUNDS 4

struct churn {
	uint32_t arrived[NWIN];
	uint32_t allowed[NWIN][CHURN_KEYS];
	uint64_t contention;
};

static void
churn_child(struct shm_seg *s, void *arg, int id)
{
	struct churn *sh = arg;
	char key[32];

	for (unsigned w = 0; w < NWIN; w++) {
		uint64_t now = T0 + (uint64_t)w * WIN;

		barrier(&sh->arrived[w]);
		for (int round = 0; round < CHURN_ROUNDS; round++)
			for (int i = 0; i < CHURN_KEYS; i++) {
				int k = (i + id * 37) % CHURN_KEYS;
				int rc;

				snprintf(key, sizeof(key), "198.51.100.%d", k);
				rc = rl_check(s, RL_BUCKET_GMAIL_PUSH, key,
				    strlen(key), now, CHURN_LIMIT, WIN, NULL);
				if (rc == RL_ALLOWED)
					__atomic_add_fetch(
					    &sh->allowed[w][k], 1,
					    __ATOMIC_RELAXED);
				else if (rc == RL_CONTENTION)
					__atomic_add_fetch(&sh->contention, 1,
					    __ATOMIC_RELAXED);
			}
	}
}

/* Many processes, more keys than slots, windows passing: no key ever
 * gets more than its limit, and expired slots change hands. */
START_TEST(processes_churn_small_table)
{
	struct churn *sh = tl_shared_map(sizeof(*sh));
	struct shm_seg tiny;
	uint64_t sum = 0;

	mkseg(&tiny, tinyname, 64);
	tl_seg_children(NPROC, tinyname, churn_child, sh, NULL);
	for (unsigned w = 0; w < NWIN; w++)
		for (int k = 0; k < CHURN_KEYS; k++) {
			ck_assert_msg(sh->allowed[w][k] <= CHURN_LIMIT,
			    "window %u key %d: %u allowed", w, k,
			    sh->allowed[w][k]);
			sum += sh->allowed[w][k];
		}
	ck_assert_uint_gt(sum, 0);
	ck_assert_uint_gt(sh->contention, 0);
	ck_assert_uint_eq(rl_tstat(&tiny, RL_TS_USED), 64);
	ck_assert_uint_gt(rl_tstat(&tiny, RL_TS_REUSED), 0);
	ck_assert_uint_eq(rl_count(&tiny, RL_BUCKET_GMAIL_PUSH, RL_ALLOWED),
	    sum);
	ck_assert_uint_eq(rl_count(&tiny, RL_BUCKET_GMAIL_PUSH,
			      RL_CONTENTION),
	    sh->contention);
	shm_detach(&tiny);
	shm_remove(tinyname);
	munmap(sh, sizeof(*sh));
}
END_TEST

START_TEST(full_table_contention_then_reuse)
{
	struct shm_seg tiny;
	struct rl_result r;
	char key[32];
	int allowed = 0, refused = 0;

	mkseg(&tiny, tinyname, 64);
	ck_assert_uint_eq(rl_tstat(&tiny, RL_TS_SLOTS), 64);
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		switch (rl_check(&tiny, RL_BUCKET_GMAIL_OAUTH_CALLBACK, key,
		    strlen(key), T0, 5, WIN, &r)) {
		case RL_ALLOWED:
			allowed++;
			break;
		case RL_CONTENTION:
			refused++;
			ck_assert_uint_eq(r.retry_after_ms,
			    RL_CONTENTION_RETRY_MS);
			ck_assert_uint_eq(rl_retry_after_s(r.retry_after_ms),
			    1);
			break;
		default:
			ck_abort_msg("a new key cannot be blocked");
		}
	}
	/* every slot holds a live window; the rest failed closed */
	ck_assert_int_eq(allowed, 64);
	ck_assert_int_eq(refused, 2000 - 64);
	ck_assert_uint_eq(rl_tstat(&tiny, RL_TS_USED), 64);
	ck_assert_uint_eq(rl_tstat(&tiny, RL_TS_PROBE_OVERFLOWS), 2000 - 64);
	ck_assert_uint_eq(rl_count(&tiny, RL_BUCKET_GMAIL_OAUTH_CALLBACK,
			      RL_CONTENTION),
	    2000 - 64);
	ck_assert_uint_eq(rl_count(&tiny, RL_BUCKET_GMAIL_OAUTH_CALLBACK,
			      RL_ALLOWED),
	    64);
	/* keys already in the table still count normally */
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		if (rl_check(&tiny, RL_BUCKET_GMAIL_OAUTH_CALLBACK, key,
			strlen(key), T0 + 1, 5, WIN, &r) == RL_ALLOWED) {
			ck_assert_uint_eq(r.count, 2);
			break;
		}
	}
	/* once the windows are over, new keys take the expired slots */
	allowed = 0;
	for (int i = 0; i < 64; i++) {
		snprintf(key, sizeof(key), "new%d", i);
		if (rl_check(&tiny, RL_BUCKET_GMAIL_OAUTH_CALLBACK, key,
			strlen(key), T0 + WIN + 1, 5, WIN, &r) ==
		    RL_ALLOWED) {
			ck_assert_uint_eq(r.count, 1);
			allowed++;
		}
	}
	ck_assert_int_gt(allowed, 32);
	ck_assert_uint_eq(rl_tstat(&tiny, RL_TS_REUSED), (uint64_t)allowed);
	ck_assert_uint_eq(rl_tstat(&tiny, RL_TS_USED), 64);
	shm_detach(&tiny);
	shm_remove(tinyname);
}
END_TEST

/* plant - a claim word on the key's home slot, as if a process were in
 * the middle of taking it over. */
static struct rl_entry *
plant(const char *key, uint64_t claim)
{
	struct rl_area *a = rl_area_of(&seg);
	uint64_t h = rl_hash(a, RL_BUCKET_CHAT_STREAM, key, strlen(key));
	struct rl_entry *e = &a->table[h & (a->head.slots - 1)];

	e->tag = 0x1234; /* the previous owner */
	e->state = claim;
	return e;
}

START_TEST(claim_in_progress_exhausts_retries)
{
	struct rl_result r;
	struct rl_entry *e = plant("u:busy", RL_ST_CLAIMED(T0, getpid()));

	/* a live owner in the middle of a takeover: we cannot tell whether
	 * it is for our key, so we retry, then fail closed */
	ck_assert_int_eq(check(RL_BUCKET_CHAT_STREAM, "u:busy", T0, 5, &r),
	    RL_CONTENTION);
	ck_assert_uint_eq(r.retry_after_ms, RL_CONTENTION_RETRY_MS);
	ck_assert_uint_eq(rl_tstat(&seg, RL_TS_CAS_EXHAUSTED), 1);
	ck_assert_uint_eq(rl_count(&seg, RL_BUCKET_CHAT_STREAM,
			      RL_CONTENTION),
	    1);
	ck_assert_uint_eq(e->state, RL_ST_CLAIMED(T0, getpid()));
	/* a few ms later the claim is stale and is taken over */
	ck_assert_int_eq(check(RL_BUCKET_CHAT_STREAM, "u:busy",
			     T0 + RL_CLAIM_STEAL_MS, 5, &r),
	    RL_ALLOWED);
	ck_assert_uint_eq(r.count, 1);
	ck_assert_uint_eq(rl_tstat(&seg, RL_TS_CLAIM_STEALS), 1);
	ck_assert_uint_eq(e->state,
	    RL_ST_LIVE(T0 + RL_CLAIM_STEAL_MS + WIN, 1));
	ck_assert_uint_eq(e->tag, rl_hash(rl_area_of(&seg),
	    RL_BUCKET_CHAT_STREAM, "u:busy", 6));
	ck_assert_int_eq(check(RL_BUCKET_CHAT_STREAM, "u:busy",
			     T0 + RL_CLAIM_STEAL_MS, 5, &r),
	    RL_ALLOWED);
	ck_assert_uint_eq(r.count, 2);
}
END_TEST

START_TEST(claim_of_dead_process_is_taken_over)
{
	struct rl_result r;
	pid_t dead = tl_dead_pid();

	plant("u:dead", RL_ST_CLAIMED(T0, dead));
	/* same instant, so not stale by age: the dead pid frees it */
	ck_assert_int_eq(check(RL_BUCKET_CHAT_STREAM, "u:dead", T0, 5, &r),
	    RL_ALLOWED);
	ck_assert_uint_eq(r.count, 1);
	ck_assert_uint_eq(rl_tstat(&seg, RL_TS_CLAIM_STEALS), 1);
	ck_assert_uint_eq(rl_tstat(&seg, RL_TS_CAS_EXHAUSTED), 0);
}
END_TEST

/* A key whose slot holds a fresh claim further along its run is still
 * found when it sits before the claim. */
START_TEST(found_before_claim)
{
	struct rl_area *a = rl_area_of(&seg);
	struct rl_result r;
	uint64_t h = rl_hash(a, RL_BUCKET_CHAT_STREAM, "u:x", 3);
	struct rl_entry *next = &a->table[(h + 1) & (a->head.slots - 1)];

	ck_assert_int_eq(check(RL_BUCKET_CHAT_STREAM, "u:x", T0, 5, &r),
	    RL_ALLOWED);
	next->tag = 0x99;
	next->state = RL_ST_CLAIMED(T0, getpid());
	ck_assert_int_eq(check(RL_BUCKET_CHAT_STREAM, "u:x", T0, 5, &r),
	    RL_ALLOWED);
	ck_assert_uint_eq(r.count, 2);
}
END_TEST

static json_int_t
jint(json_t *root, const char *a, const char *b, const char *c)
{
	json_t *v = json_object_get(json_object_get(json_object_get(root,
	    "rateLimitPressure"), a), b);

	if (c != NULL)
		v = json_object_get(v, c);
	ck_assert_msg(json_is_integer(v), "no %s.%s.%s", a, b, c ? c : "");
	return json_integer_value(v);
}

START_TEST(relstat_shows_pressure)
{
	static char text[1 << 20];
	char row[256];
	struct rl_area *a = rl_area_of(&seg);
	json_t *j;

	for (int i = 0; i < 7; i++)
		check(RL_BUCKET_GMAIL_PUSH, "9.9.9.9", T0, 4, NULL);
	plant("u:busy", RL_ST_CLAIMED(T0, getpid()));
	check(RL_BUCKET_CHAT_STREAM, "u:busy", T0, 5, NULL);
	j = tl_relstat(segname, "-j", text, sizeof(text));
	ck_assert_int_eq(jint(j, "buckets", "gmail_push", "allowed"), 4);
	ck_assert_int_eq(jint(j, "buckets", "gmail_push", "blocked"), 3);
	ck_assert_int_eq(jint(j, "buckets", "gmail_push",
			     "contention_fallback"),
	    0);
	ck_assert_int_eq(jint(j, "buckets", "chat_stream",
			     "contention_fallback"),
	    1);
	ck_assert_int_eq(jint(j, "buckets", "wa_link_code", "allowed"), 0);
	ck_assert_int_eq(jint(j, "table", "slots", NULL), 1024);
	ck_assert_int_eq(jint(j, "table", "used", NULL), 1);
	ck_assert_int_eq(jint(j, "table", "casExhausted", NULL), 1);
	ck_assert_int_eq(jint(j, "table", "probeOverflows", NULL), 0);
	/* the other sections are still there */
	ck_assert(json_is_array(json_object_get(j, "processes")));
	ck_assert(json_is_object(json_object_get(j, "header")));
	json_decref(j);

	tl_relstat(segname, "-1", text, sizeof(text));
	/* name, allowed, blocked, blocked/s (no rate in one shot), contention */
	/* the title line also says how full the table is (reuses and
	 * overflows only when there are some) */
	ck_assert_str_eq(tl_row(text, "RATE", row, sizeof(row)),
	    "RATE LIMIT ALLOWED BLOCKED BLOCKED/S CONTENTION table 1/1024");
	ck_assert_str_eq(tl_row(text, "gmail_push", row, sizeof(row)),
	    "gmail_push 4 3 - 0");
	ck_assert_str_eq(tl_row(text, "chat_stream", row, sizeof(row)),
	    "chat_stream 0 0 - 1");

	/* names come from the segment: a newer daemon's bucket shows up */
	strcpy(a->names[RL_BUCKET_WA_LINK_CODE], "future_bucket");
	j = tl_relstat(segname, "-j", text, sizeof(text));
	ck_assert_int_eq(jint(j, "buckets", "future_bucket", "allowed"), 0);
	ck_assert_ptr_null(json_object_get(json_object_get(json_object_get(j,
	    "rateLimitPressure"), "buckets"), "wa_link_code"));
	json_decref(j);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tl_tcase(s, "ratelimit", setup, teardown, 60);

	tcase_add_test(tc, sizes_and_names);
	tcase_add_test(tc, limit_boundary_and_blocked_not_counted);
	tcase_add_test(tc, window_rollover);
	tcase_add_test(tc, keys_and_buckets_independent);
	tcase_add_test(tc, limit_zero_and_clamp);
	tcase_add_test(tc, seed_per_segment);
	tcase_add_test(tc, processes_share_exact_limit);
	tcase_add_test(tc, processes_churn_small_table);
	tcase_add_test(tc, full_table_contention_then_reuse);
	tcase_add_test(tc, claim_in_progress_exhausts_retries);
	tcase_add_test(tc, claim_of_dead_process_is_taken_over);
	tcase_add_test(tc, found_before_claim);
	tcase_add_test(tc, relstat_shows_pressure);
	return tl_run(s);
}
