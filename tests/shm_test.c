/*
 * shm_test - the segment layout: descriptors match the structs, areas do
 * not overlap, attach checks, the config seqlock, stale and live owners.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/roles.h"
#include "shm/shm.h"
#include "testlib.h"

static char segname[64];
static const struct shm_sizes test_sizes = { .ratelimit_slots = 1024 };
static struct shm_seg seg;

static void
setup(void)
{
	tl_segname(segname, sizeof(segname), "shm");
	tl_seg_create(&seg, segname, test_sizes.ratelimit_slots);
}

static void
teardown(void)
{
	tl_seg_destroy(&seg, segname);
}

static const struct shm_desc *
find_desc(const char *name)
{
	size_t n;
	const struct shm_desc *d = shm_descs(&seg, &n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(d[i].name, name) == 0)
			return &d[i];
	return NULL;
}

START_TEST(header_and_areas)
{
	const struct shm_header *h = seg.hdr;

	ck_assert_mem_eq(h->magic, SHM_MAGIC, 8);
	ck_assert_uint_eq(h->layout_version, SHM_LAYOUT_VERSION);
	ck_assert_uint_eq(h->size, seg.size);
	ck_assert_int_eq(h->supervisor_pid, getpid());
	ck_assert_uint_eq(h->nareas, SHM_NAREAS);
	ck_assert(!shm_is_ready(&seg));
	shm_publish_ready(&seg);
	ck_assert(shm_is_ready(&seg));
	for (unsigned i = 0; i < h->nareas; i++) {
		const struct shm_area *a = &h->areas[i];

		if (a->size == 0)
			continue;
		ck_assert_uint_eq(a->offset % 4096, 0);
		ck_assert_uint_ge(a->offset, 4096);
		ck_assert_uint_le(a->offset + a->size, h->size);
		for (unsigned j = i + 1; j < h->nareas; j++) {
			const struct shm_area *b = &h->areas[j];

			if (b->size == 0)
				continue;
			ck_assert(a->offset + a->size <= b->offset ||
			    b->offset + b->size <= a->offset);
		}
	}
	/* the areas later issues fill are in the directory, by name */
	ck_assert_ptr_nonnull(shm_area_by_name(&seg, "ratelimit"));
	ck_assert_ptr_nonnull(shm_area_by_name(&seg, "circuit"));
	ck_assert_ptr_nonnull(shm_area_by_name(&seg, "bulkhead"));
	ck_assert_ptr_nonnull(shm_area_by_name(&seg, "admission"));
	ck_assert_ptr_nonnull(shm_area_by_name(&seg, "queue"));
	ck_assert_uint_eq(shm_area_by_name(&seg, "proc")->stride,
	    sizeof(struct shm_proc));
	ck_assert_uint_eq(shm_area_by_name(&seg, "proc")->count,
	    SHM_MAX_PROCS);
}
END_TEST

START_TEST(descriptors_match_structs)
{
	size_t n, expect = 0;
	const struct shm_desc *d;

#define CHECK_FIELD(ctype, cname, pub, ftype, fdoc)                         \
	do {                                                              \
		const struct shm_desc *e = find_desc(pub);                \
		ck_assert_msg(e != NULL, "no descriptor for %s", pub);    \
		ck_assert_uint_eq(e->offset,                              \
		    offsetof(struct shm_proc, cname));                    \
		ck_assert_uint_eq(e->type, ftype);                        \
		ck_assert_str_eq(e->area, "proc");                        \
		ck_assert(strlen(e->doc) > 0);                            \
		expect++;                                                 \
	} while (0);
	SHM_PROC_FIELDS(CHECK_FIELD)
#undef CHECK_FIELD
#define CHECK_LINK(cname, fdoc)                                            \
	do {                                                              \
		const struct shm_desc *e = find_desc("link." #cname);     \
		ck_assert_ptr_nonnull(e);                                 \
		ck_assert_uint_eq(e->offset,                              \
		    offsetof(struct shm_proc, counters.link.cname));      \
		ck_assert_uint_eq(e->type, SHM_T_COUNTER);                \
		expect++;                                                 \
	} while (0);
	LINK_STATS(CHECK_LINK)
#undef CHECK_LINK
#define CHECK_HTTP(cname, fdoc)                                           \
	do {                                                              \
		const struct shm_desc *e = find_desc("http." #cname);     \
		ck_assert_ptr_nonnull(e);                                 \
		ck_assert_uint_eq(e->offset,                              \
		    offsetof(struct shm_proc, counters.http.cname));      \
		expect++;                                                 \
	} while (0);
	HTTPD_STATS(CHECK_HTTP)
#undef CHECK_HTTP
#define CHECK_STORE(cname, fdoc)                                           \
	do {                                                              \
		const struct shm_desc *e = find_desc("store." #cname);    \
		ck_assert_ptr_nonnull(e);                                 \
		ck_assert_uint_eq(e->offset,                              \
		    offsetof(struct shm_proc, counters.store.cname));     \
		expect++;                                                 \
	} while (0);
	STORE_STATS(CHECK_STORE)
#undef CHECK_STORE
#define CHECK_COUNTER(cname, pub, fdoc)                                    \
	do {                                                              \
		const struct shm_desc *e = find_desc(pub);                \
		ck_assert_ptr_nonnull(e);                                 \
		ck_assert_uint_eq(e->offset,                              \
		    offsetof(struct shm_proc, counters.cname));           \
		expect++;                                                 \
	} while (0);
	SHM_PROC_COUNTERS(CHECK_COUNTER)
#undef CHECK_COUNTER
	d = shm_descs(&seg, &n);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(n, expect);
	/* every descriptor lies inside one slot */
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_le(d[i].offset + 4, sizeof(struct shm_proc));
	/* enum names are in the segment */
	ck_assert_ptr_nonnull(strstr(find_desc("state")->values,
	    "starting,ready,backoff,stopping,dead"));
	ck_assert_ptr_nonnull(strstr(find_desc("role")->values,
	    "supervisor,ingress,admission,provider,tool-worker,monitor"));
}
END_TEST

START_TEST(reader_sees_writer_through_descriptors)
{
	struct shm_seg ro;
	char err[256];
	const struct shm_desc *e = find_desc("heartbeatAt");
	struct shm_proc *p = shm_proc(&seg, 3);
	uint64_t v;

	SHM_STORE(&p->heartbeat_at, 123456789);
	ck_assert_int_eq(shm_attach(&ro, segname, 0, err, sizeof(err)), 0);
	memcpy(&v, (const char *)ro.base +
		shm_area_by_name(&ro, "proc")->offset +
		3 * shm_area_by_name(&ro, "proc")->stride + e->offset,
	    8);
	ck_assert_uint_eq(v, 123456789);
	ck_assert_int_eq(ro.writable, 0);
	shm_detach(&ro);
}
END_TEST

START_TEST(attach_refuses_newer_layout_and_missing)
{
	struct shm_seg ro;
	char err[256];

	seg.hdr->layout_version = SHM_LAYOUT_VERSION + 1;
	ck_assert_int_eq(shm_attach(&ro, segname, 0, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "layout version"));
	seg.hdr->layout_version = SHM_LAYOUT_VERSION;
	ck_assert_int_eq(shm_attach(&ro, "/rgtest.none.shm", 0, err,
			     sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "no segment"));
	memcpy(seg.hdr->magic, "XXXXXXX", 8);
	ck_assert_int_eq(shm_attach(&ro, segname, 0, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a relgate segment"));
	memcpy(seg.hdr->magic, SHM_MAGIC, 8);
}
END_TEST

START_TEST(create_live_owner_refused_stale_replaced)
{
	struct shm_seg again;
	char err[256];
	pid_t dead = tl_dead_pid();

	/* a live supervisor (our parent stands in) keeps its segment */
	seg.hdr->supervisor_pid = getppid();
	ck_assert_int_eq(shm_create(&again, segname, &test_sizes, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "in use"));
	/* a dead one's segment is replaced */
	seg.hdr->supervisor_pid = dead;
	ck_assert_int_eq(shm_create(&again, segname, &test_sizes, err, sizeof(err)), 0);
	ck_assert_int_eq(again.hdr->supervisor_pid, getpid());
	shm_detach(&again);
	ck_assert_int_eq(shm_create(&again, "no-slash", &test_sizes, err, sizeof(err)), -1);
}
END_TEST

START_TEST(config_snapshot)
{
	char buf[256], *big;
	uint64_t gen = 0;

	ck_assert_int_eq(shm_config_publish(&seg, "{\"a\":1}", 7), 0);
	ck_assert_int_eq(shm_config_read(&seg, buf, sizeof(buf), &gen), 0);
	ck_assert_str_eq(buf, "{\"a\":1}");
	ck_assert_uint_eq(gen, 7);
	ck_assert_uint_eq(seg.hdr->config_gen, 7);
	ck_assert_int_eq(shm_config_read(&seg, buf, 4, &gen), -1);
	big = malloc(SHM_CONFIG_MAX + 10);
	memset(big, 'x', SHM_CONFIG_MAX + 9);
	big[SHM_CONFIG_MAX + 9] = '\0';
	ck_assert_int_eq(shm_config_publish(&seg, big, 8), -1);
	free(big);
	ck_assert_int_eq(shm_config_read(&seg, buf, sizeof(buf), &gen), 0);
	ck_assert_uint_eq(gen, 7);
}
END_TEST

START_TEST(exit_strings_and_names)
{
	char buf[64];

	ck_assert_ptr_null(shm_exit_str(-1, buf, sizeof(buf)));
	ck_assert_str_eq(shm_exit_str(1 << 8, buf, sizeof(buf)), "exit 1");
	ck_assert_str_eq(shm_exit_str(SIGKILL, buf, sizeof(buf)),
	    "signal 9 (KILL)");
	ck_assert_str_eq(shm_state_name(SHM_STATE_BACKOFF), "backoff");
	ck_assert(shm_name_valid("/relgate"));
	ck_assert(!shm_name_valid("/a/b"));
	ck_assert(!shm_name_valid("/"));
	ck_assert_str_eq(role_name(ROLE_TOOL_WORKER), "tool-worker");
	ck_assert_int_eq(role_by_name("monitor"), ROLE_MONITOR);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("shm");
	TCase *tc = tl_tcase(s, "layout", setup, teardown, 0);

	tcase_add_test(tc, header_and_areas);
	tcase_add_test(tc, descriptors_match_structs);
	tcase_add_test(tc, reader_sees_writer_through_descriptors);
	tcase_add_test(tc, attach_refuses_newer_layout_and_missing);
	tcase_add_test(tc, create_live_owner_refused_stale_replaced);
	tcase_add_test(tc, config_snapshot);
	tcase_add_test(tc, exit_strings_and_names);
	return tl_run(s);
}
