/*
 * admission_test - the shm admission area: names and layout, tickets
 * (ids, take, release, stale releases, capacity, generation wrap), the
 * per-user in-flight table under churn, reclaim of tickets whose ingress
 * or provider died (or was replaced) and of expired ones, a writer killed
 * with -9 whose successor resumes the area, and relstat's chatAdmission.
 */
#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/roles.h"
#include "shm/admission.h"
#include "shm/shm.h"
#include "testlib.h"
#include "util/util.h"

#define T0 UINT64_C(1700000000000)
#define TTL 60000u

static char segname[64];
static struct shm_seg seg;
static struct adm_writer *w;

static void
setup(void)
{
	const struct shm_sizes sizes = { .ratelimit_slots = 64 };
	char err[256];

	tl_segname(segname, sizeof(segname), "adm");
	shm_remove(segname);
	ck_assert_msg(shm_create(&seg, segname, &sizes, err, sizeof(err)) ==
		0,
	    "%s", err);
	adm_area_init(&seg);
	w = adm_writer_open(&seg, T0);
	ck_assert_ptr_nonnull(w);
}

static void
teardown(void)
{
	adm_writer_close(w);
	shm_detach(&seg);
	shm_remove(segname);
}

/* proc - put (role, instance, pid) into process table slot s. */
static void
proc(unsigned s, unsigned role, unsigned inst, pid_t pid)
{
	struct shm_proc *p = shm_proc(&seg, s);

	p->role = role;
	p->instance = inst;
	p->pid = pid;
	p->state = pid > 0 ? SHM_STATE_READY : SHM_STATE_BACKOFF;
}

/* dead_pid - the pid of a process that has exited and been reaped. */
static pid_t
dead_pid(void)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	return pid;
}

static uint64_t
take_as(const char *user, uint64_t stream, unsigned ingress,
    pid_t ingress_pid, unsigned provider, pid_t provider_pid, uint64_t now)
{
	struct adm_take t = { .stream = stream,
		.user = user,
		.user_len = strlen(user),
		.ingress = (uint8_t)ingress,
		.ingress_pid = ingress_pid,
		.provider = (uint16_t)provider,
		.provider_pid = provider_pid,
		.now_ms = now,
		.ttl_ms = TTL };

	return adm_take(w, &t);
}

/* take - a ticket owned by ingress 0 and provider 0, both this process. */
static uint64_t
take(const char *user, uint64_t stream)
{
	return take_as(user, stream, 0, getpid(), 0, getpid(), T0);
}

static uint64_t
counter(enum adm_counter c)
{
	return adm_area_of(&seg)->counters[c];
}

START_TEST(names_and_layout)
{
	const struct adm_area *a = adm_area_of(&seg);
	const struct shm_area *d = shm_area(&seg, SHM_AREA_ADMISSION);
	uint32_t stride, count;

	ck_assert_ptr_nonnull(a);
	ck_assert(shm_described(&a->head.described));
	ck_assert_mem_eq(a->head.magic, ADM_MAGIC, 8);
	ck_assert_str_eq(d->name, "admission");
	ck_assert_uint_ge(d->size, adm_area_size(&stride, &count));
	ck_assert_uint_eq(d->count, ADM_TICKETS);
	ck_assert_uint_eq(d->stride, sizeof(struct adm_ticket));
	/* at least 20,000 concurrent streams, in under 16 MiB */
	ck_assert_uint_ge(ADM_TICKETS, 20000);
	ck_assert_uint_lt(d->size, 16u << 20);
	ck_assert_uint_eq(a->head.ndims, 4);
	ck_assert_str_eq(a->names[0], "user_inflight");
	ck_assert_str_eq(a->names[3], "global_tool_rate");
	ck_assert_str_eq(a->names[ADM_NDIMS + ADM_F_ENFORCE], "enforce");
	ck_assert_str_eq(a->names[ADM_NDIMS + ADM_NDIMFIELDS +
				 ADM_C_RECLAIMED_PROVIDER],
	    "reclaimedDeadProvider");
	ck_assert_str_eq(a->names[ADM_NNAMES - 1], "authoritative");
	/* a fresh writer records itself; nothing to resume */
	ck_assert_uint_eq(a->gauges[ADM_G_WRITER_PID], (uint64_t)getpid());
	ck_assert_uint_eq(counter(ADM_C_RESUMES), 0);
}
END_TEST

START_TEST(take_and_release)
{
	uint64_t a1 = take("alice", 11), a2 = take("alice", 12);
	uint64_t b1 = take("bob", 21);

	ck_assert_uint_ne(a1, 0);
	ck_assert_uint_ne(a1, a2);
	ck_assert_uint_ne(ADM_ID_GEN(a1), 0);
	ck_assert_uint_eq(adm_inflight(w), 3);
	ck_assert_uint_eq(adm_user_inflight(w, "alice", 5), 2);
	ck_assert_uint_eq(adm_user_inflight(w, "bob", 3), 1);
	ck_assert_uint_eq(adm_user_inflight(w, "carol", 5), 0);
	ck_assert_uint_eq(adm_gauge(w, ADM_G_INFLIGHT), 3);
	ck_assert_uint_eq(adm_gauge(w, ADM_G_USERS), 2);
	/* the ticket holds what it was taken for */
	{
		const struct adm_ticket *t =
		    &adm_area_of(&seg)->tickets[ADM_ID_SLOT(b1)];

		ck_assert_uint_eq(t->id, b1);
		ck_assert_uint_eq(t->stream, 21);
		ck_assert_uint_eq(t->issued_at, T0);
		ck_assert_uint_eq(t->expires_at, T0 + TTL);
		ck_assert_str_eq(t->user.key, "bob");
	}
	/* another stream's id, an unknown id, 0: stale, nothing freed */
	ck_assert_int_eq(adm_release(w, a1, 12), -1);
	ck_assert_int_eq(adm_release(w, a1 + (UINT64_C(1) << 40), 11), -1);
	ck_assert_int_eq(adm_release(w, 0, 11), -1);
	ck_assert_uint_eq(counter(ADM_C_STALE_RELEASES), 3);
	ck_assert_uint_eq(adm_inflight(w), 3);
	ck_assert_int_eq(adm_release(w, a1, 11), 0);
	ck_assert_uint_eq(counter(ADM_C_RELEASED), 1);
	ck_assert_uint_eq(adm_user_inflight(w, "alice", 5), 1);
	ck_assert_int_eq(adm_release(w, a1, 11), -1); /* twice */
	ck_assert_uint_eq(counter(ADM_C_STALE_RELEASES), 4);
	ck_assert_int_eq(adm_release(w, b1, 21), 0);
	ck_assert_uint_eq(adm_user_inflight(w, "bob", 3), 0);
	ck_assert_uint_eq(adm_gauge(w, ADM_G_USERS), 1);
	/* the slot comes back under a new id; the old one stays stale */
	{
		uint64_t c = take("carol", 31);

		ck_assert_uint_eq(ADM_ID_SLOT(c), ADM_ID_SLOT(b1));
		ck_assert_uint_eq(ADM_ID_GEN(c), ADM_ID_GEN(b1) + 1);
		ck_assert_int_eq(adm_release(w, b1, 21), -1);
		ck_assert_int_eq(adm_release(w, b1, 31), -1);
		ck_assert_uint_eq(adm_inflight(w), 2);
	}
	/* a dropped ticket is freed without counting as released */
	adm_drop(w, a2);
	ck_assert_uint_eq(adm_inflight(w), 1);
	ck_assert_uint_eq(counter(ADM_C_RELEASED), 2);
	ck_assert_uint_eq(adm_user_inflight(w, "alice", 5), 0);
}
END_TEST

START_TEST(long_user_ids_stay_apart)
{
	char a[200], b[200];

	memset(a, 'x', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(a));
	b[150] = 'y'; /* differs after the kept prefix */
	take(a, 1);
	take(a, 2);
	take(b, 3);
	ck_assert_uint_eq(adm_user_inflight(w, a, strlen(a)), 2);
	ck_assert_uint_eq(adm_user_inflight(w, b, strlen(b)), 1);
	ck_assert_uint_eq(adm_user_inflight(w, a, 100), 0); /* a prefix */
	ck_assert_uint_eq(adm_gauge(w, ADM_G_USERS), 2);
}
END_TEST

START_TEST(capacity_and_generation_wrap)
{
	uint64_t first = 0, id = 0;

	for (uint32_t i = 0; i < ADM_TICKETS; i++) {
		id = take("u", i);
		ck_assert_uint_ne(id, 0);
		if (i == 0)
			first = id;
	}
	ck_assert_uint_eq(take("u", 99999), 0); /* full */
	ck_assert_uint_eq(adm_user_inflight(w, "u", 1), ADM_TICKETS);
	ck_assert_int_eq(adm_release(w, first, 0), 0);
	/* the slot's generation at its maximum wraps to 1, never 0 */
	adm_area_of(&seg)->tickets[ADM_ID_SLOT(first)].gen = ADM_GEN_MAX;
	id = take("u", 100000);
	ck_assert_uint_eq(ADM_ID_SLOT(id), ADM_ID_SLOT(first));
	ck_assert_uint_eq(ADM_ID_GEN(id), 1);
	ck_assert_uint_eq(adm_inflight(w), ADM_TICKETS);
}
END_TEST

/* the per-user table against a plain model while users come and go in
 * an order that makes probe runs collide and gaps close */
START_TEST(user_counts_under_churn)
{
	enum { NU = 12000, PER = 2 };
	static uint64_t ids[NU * PER];
	static uint32_t model[NU];
	char name[32];
	uint64_t x = 88172645463325252ull;
	uint32_t left = NU * PER;

	for (uint32_t u = 0; u < NU; u++)
		for (uint32_t k = 0; k < PER; k++) {
			snprintf(name, sizeof(name), "user-%u", u);
			ids[u * PER + k] = take(name, u * PER + k);
			ck_assert_uint_ne(ids[u * PER + k], 0);
			model[u]++;
		}
	ck_assert_uint_eq(adm_gauge(w, ADM_G_USERS), NU);
	while (left > 0) {
		uint32_t i;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		i = (uint32_t)(x % (NU * PER));
		if (ids[i] == 0)
			continue;
		ck_assert_int_eq(adm_release(w, ids[i], i), 0);
		ids[i] = 0;
		model[i / PER]--;
		left--;
		if (left % 3000 != 0)
			continue;
		for (uint32_t u = 0; u < NU; u++) {
			snprintf(name, sizeof(name), "user-%u", u);
			ck_assert_uint_eq(adm_user_inflight(w, name,
					      strlen(name)),
			    model[u]);
		}
	}
	ck_assert_uint_eq(adm_gauge(w, ADM_G_USERS), 0);
	for (uint32_t i = 0; i < ADM_USERS; i++)
		ck_assert_uint_eq(adm_area_of(&seg)->users[i].k.hash, 0);
}
END_TEST

START_TEST(reclaims_dead_owners_and_expired)
{
	pid_t me = getpid(), gone = dead_pid(), other = getppid();
	struct adm_reclaimed r;
	uint64_t live, by_ingress, by_provider, replaced, old;

	proc(1, ROLE_INGRESS, 0, me);
	proc(2, ROLE_INGRESS, 1, gone);
	proc(3, ROLE_PROVIDER, 0, me);
	proc(4, ROLE_PROVIDER, 1, gone);
	proc(5, ROLE_PROVIDER, 2, other);
	live = take_as("a", 1, 0, me, 0, me, T0);
	by_ingress = take_as("a", 2, 1, gone, 0, me, T0);
	by_provider = take_as("b", 3, 0, me, 1, gone, T0);
	/* provider 2 was restarted: its slot holds another live pid */
	replaced = take_as("b", 4, 0, me, 2, me, T0);
	old = take_as("c", 5, 0, me, 0, me, T0 - TTL);
	adm_reclaim(w, T0 + 1, &r);
	ck_assert_uint_eq(r.dead_ingress, 1);
	ck_assert_uint_eq(r.dead_provider, 2);
	ck_assert_uint_eq(r.expired, 1);
	ck_assert_uint_eq(counter(ADM_C_RECLAIMED_INGRESS), 1);
	ck_assert_uint_eq(counter(ADM_C_RECLAIMED_PROVIDER), 2);
	ck_assert_uint_eq(counter(ADM_C_EXPIRED), 1);
	ck_assert_uint_eq(adm_inflight(w), 1);
	ck_assert_uint_eq(adm_user_inflight(w, "a", 1), 1);
	ck_assert_uint_eq(adm_user_inflight(w, "b", 1), 0);
	ck_assert_int_eq(adm_release(w, by_ingress, 2), -1);
	ck_assert_int_eq(adm_release(w, by_provider, 3), -1);
	ck_assert_int_eq(adm_release(w, replaced, 4), -1);
	ck_assert_int_eq(adm_release(w, old, 5), -1);
	/* a provider slot in backoff (pid 0) is not running */
	proc(3, ROLE_PROVIDER, 0, 0);
	adm_reclaim(w, T0 + 1, &r);
	ck_assert_uint_eq(r.dead_provider, 1);
	ck_assert_int_eq(adm_release(w, live, 1), -1);
	ck_assert_uint_eq(adm_inflight(w), 0);
	/* nothing held: nothing to do */
	adm_reclaim(w, T0 + 2 * TTL, &r);
	ck_assert_uint_eq(r.dead_ingress + r.dead_provider + r.expired, 0);
}
END_TEST

/* a writer killed with -9 in the middle of its work: the next one takes
 * the area over as it is and carries on */
START_TEST(killed_writer_is_resumed)
{
	pid_t me = getpid(), pid;
	struct adm_area *a = adm_area_of(&seg);
	int st;

	proc(1, ROLE_INGRESS, 0, me);
	proc(2, ROLE_PROVIDER, 0, me);
	take("keep", 7);
	adm_writer_close(w);
	w = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct shm_seg s;
		char err[256];
		struct adm_writer *cw;

		if (shm_attach(&s, segname, 1, err, sizeof(err)) != 0)
			_exit(3);
		cw = adm_writer_open(&s, T0 + 10);
		for (int i = 0; i < 5; i++) {
			struct adm_take t = { .stream = 100 + (uint64_t)i,
				.user = i < 3 ? "alice" : "bob",
				.user_len = i < 3 ? 5 : 3,
				.ingress_pid = me,
				.provider_pid = me,
				.now_ms = T0 + 10,
				.ttl_ms = TTL };

			if (cw == NULL || adm_take(cw, &t) == 0)
				_exit(4);
		}
		adm_count(cw, ADM_C_ALLOWED);
		kill(getpid(), SIGKILL);
		_exit(5);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	/* what the dead writer left, plus damage to the derived values */
	ck_assert_uint_eq(a->gauges[ADM_G_WRITER_PID], (uint64_t)pid);
	a->gauges[ADM_G_INFLIGHT] = 999;
	a->users[3].k.hash = 12345;
	w = adm_writer_open(&seg, T0 + 20);
	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(counter(ADM_C_RESUMES), 2);
	ck_assert_uint_eq(counter(ADM_C_ALLOWED), 1);
	ck_assert_uint_eq(adm_inflight(w), 6);
	ck_assert_uint_eq(adm_gauge(w, ADM_G_INFLIGHT), 6);
	ck_assert_uint_eq(adm_gauge(w, ADM_G_RESUMED_TICKETS), 6);
	ck_assert_uint_eq(adm_gauge(w, ADM_G_USERS), 3);
	ck_assert_uint_eq(adm_gauge(w, ADM_G_WRITER_PID), (uint64_t)me);
	ck_assert_uint_eq(adm_user_inflight(w, "alice", 5), 3);
	ck_assert_uint_eq(adm_user_inflight(w, "bob", 3), 2);
	ck_assert_uint_eq(adm_user_inflight(w, "keep", 4), 1);
	/* its tickets are released normally, new ones taken */
	for (uint32_t s = 0; s < ADM_TICKETS; s++) {
		const struct adm_ticket *t = &a->tickets[s];

		if (t->id != 0 && t->stream >= 100)
			ck_assert_int_eq(adm_release(w, t->id, t->stream), 0);
	}
	ck_assert_uint_eq(adm_inflight(w), 1);
	ck_assert_uint_ne(take("alice", 200), 0);
	ck_assert_uint_eq(adm_user_inflight(w, "alice", 5), 1);
}
END_TEST

/* relstat - run the built relstat on our segment. */
static json_t *
relstat(const char *flags, char *text, size_t len)
{
	return tl_relstat(segname, flags, text, len);
}


START_TEST(relstat_shows_chat_admission)
{
	static char text[1 << 20];
	char row[256];
	char longname[80];
	json_t *j, *ca, *d, *top, *r;

	memset(longname, 'z', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	adm_set_dim(w, ADM_D_USER_INFLIGHT, ADM_F_LIMIT, 3);
	adm_set_dim(w, ADM_D_USER_INFLIGHT, ADM_F_ENFORCE, 1);
	adm_set_dim(w, ADM_D_GLOBAL_MSG_RATE, ADM_F_LIMIT, 50);
	adm_set_setting(w, ADM_S_GATEWAY_MODE, ADM_M_AUTHORITATIVE);
	adm_set_gauge(w, ADM_G_MSG_LEVEL, 2500);
	adm_set_gauge(w, ADM_G_MSG_LAST_SECOND, 7);
	for (int i = 0; i < 5; i++)
		take("heavy", (uint64_t)i);
	take("light", 10);
	take(longname, 11);
	for (int i = 0; i < 4; i++)
		adm_count_dim(w, ADM_D_USER_INFLIGHT, ADM_F_BLOCKED);
	adm_count_dim(w, ADM_D_GLOBAL_MSG_RATE, ADM_F_SOFT);
	for (int i = 0; i < 6; i++)
		adm_count(w, ADM_C_ALLOWED);
	adm_count(w, ADM_C_SOFT_ALLOWED);
	for (int i = 0; i < 4; i++)
		adm_count(w, ADM_C_BLOCKED);
	j = relstat("-j -l 2", text, sizeof(text));
	ca = json_object_get(j, "chatAdmission");
	ck_assert_msg(json_is_object(ca), "%s", text);
	ck_assert_str_eq(json_string_value(json_object_get(ca,
			     "gatewayMode")),
	    "authoritative");
	ck_assert(json_is_false(json_object_get(ca, "shadow")));
	ck_assert(json_is_true(json_object_get(json_object_get(ca,
						   "enforce"),
	    "user_inflight")));
	ck_assert(json_is_false(json_object_get(json_object_get(ca,
						    "enforce"),
	    "global_tool_rate")));
	d = json_object_get(json_object_get(ca, "dimensions"),
	    "user_inflight");
	ck_assert_int_eq(tl_jint(d, "limit"), 3);
	ck_assert_int_eq(tl_jint(d, "blocked"), 4);
	d = json_object_get(ca, "inflight");
	ck_assert_int_eq(tl_jint(d, "global"), 7);
	ck_assert_int_eq(tl_jint(d, "ticketsInUse"), 7);
	ck_assert_int_eq(tl_jint(d, "users"), 3);
	ck_assert_int_eq(tl_jint(d, "ticketCapacity"), ADM_TICKETS);
	ck_assert_int_eq(tl_jint(d, "oldestIssuedAt"), (json_int_t)T0);
	d = json_object_get(json_object_get(ca, "rates"), "msgPerSec");
	ck_assert_int_eq(tl_jint(d, "limitPerSec"), 50);
	ck_assert(json_real_value(json_object_get(d, "level")) == 2.5);
	ck_assert_int_eq(tl_jint(d, "lastSecond"), 7);
	ck_assert_int_eq(tl_jint(json_object_get(ca, "counters"), "allowed"), 6);
	/* reasons, the largest first, -l rows of them */
	r = json_object_get(ca, "topReasons");
	ck_assert_int_eq(json_array_size(r), 2);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(r, 0), "reason")),
	    "blocked:user_inflight");
	ck_assert_int_eq(tl_jint(json_array_get(r, 0), "count"), 4);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(r, 1), "reason")),
	    "softAllowed:global_msg_rate");
	d = json_object_get(ca, "falsePositivePressure");
	ck_assert_int_eq(tl_jint(d, "decisions"), 10);
	ck_assert(json_real_value(json_object_get(d, "ratio")) == 0.1);
	/* users by tickets held, -l rows of them */
	top = json_object_get(ca, "topUsers");
	ck_assert_int_eq(json_array_size(top), 2);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(top, 0), "user")),
	    "heavy");
	ck_assert_int_eq(tl_jint(json_array_get(top, 0), "inflight"), 5);
	ck_assert_int_eq(tl_jint(json_array_get(top, 1), "inflight"), 1);
	ck_assert_int_eq(tl_jint(ca, "writerPid"), getpid());
	ck_assert(json_is_true(json_object_get(ca, "writerAlive")));
	json_decref(j);
	/* a long id is shown cut, marked as such */
	j = relstat("-j", text, sizeof(text));
	top = json_object_get(json_object_get(j, "chatAdmission"),
	    "topUsers");
	ck_assert_int_eq(json_array_size(top), 3);
	{
		const char *u = NULL;

		for (size_t i = 0; i < 3; i++) {
			const char *n = json_string_value(
			    json_object_get(json_array_get(top, i), "user"));

			if (n[0] == 'z')
				u = n;
		}
		ck_assert_ptr_nonnull(u);
		ck_assert_uint_eq(strlen(u), ADM_UKEY + 3);
		ck_assert_str_eq(u + ADM_UKEY, "...");
	}
	json_decref(j);
	/* the text view has the key lines */
	relstat("-1", text, sizeof(text));
	ck_assert_ptr_nonnull(tl_row(text, "ADMISSION", row, sizeof(row)));
	ck_assert_msg(strncmp(row, "ADMISSION authoritative, shadow off, pid ",
			  41) == 0, "%s", row);
	ck_assert_msg(strstr(row, "; admitted 6, refused 4 (-/s)") != NULL,
	    "%s", row);
	ck_assert_str_eq(tl_row(text, "user_inflight", row, sizeof(row)),
	    "user_inflight yes 3 4 0 0");
	ck_assert_str_eq(tl_row(text, "global_msg_rate", row, sizeof(row)),
	    "global_msg_rate no 50 0 1 0");
	ck_assert_str_eq(tl_row(text, "in", row, sizeof(row)),
	    "in flight 7 (tickets 7/32768), users 3; chats/s 2.5/50, "
	    "tools/s 0.0/0");
	ck_assert_ptr_nonnull(tl_row(text, "top", row, sizeof(row)));
	ck_assert_msg(strncmp(row, "top users: heavy 5,", 19) == 0, "%s", row);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("admission");
	TCase *tc = tcase_create("area");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, names_and_layout);
	tcase_add_test(tc, take_and_release);
	tcase_add_test(tc, long_user_ids_stay_apart);
	tcase_add_test(tc, capacity_and_generation_wrap);
	tcase_add_test(tc, user_counts_under_churn);
	tcase_add_test(tc, reclaims_dead_owners_and_expired);
	tcase_add_test(tc, killed_writer_is_resumed);
	tcase_add_test(tc, relstat_shows_chat_admission);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tl_run(suite());
}
