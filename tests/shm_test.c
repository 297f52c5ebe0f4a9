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
#include "util/util.h"
#include "shm/admission.h"
#include "shm/bulkhead.h"
#include "shm/circuit.h"
#include "shm/metrics.h"
#include "shm/ratelimit.h"
#include "shm/requests.h"
#include "shm/snapshot.h"

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
#define CHECK_ALOG(cname, fdoc)                                            \
	do {                                                              \
		const struct shm_desc *e =                                \
		    find_desc("ingress.access_" #cname);                  \
		ck_assert_ptr_nonnull(e);                                 \
		ck_assert_uint_eq(e->offset,                              \
		    offsetof(struct shm_proc, counters.alog.cname));      \
		ck_assert_uint_eq(e->type, SHM_T_COUNTER);                \
		expect++;                                                 \
	} while (0);
	ALOG_STATS(CHECK_ALOG)
#undef CHECK_ALOG
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
	/* every descriptor of the process table lies inside one slot */
	for (size_t i = 0; i < n; i++) {
		if (strcmp(d[i].area, "proc") != 0)
			continue;
		ck_assert_uint_le(d[i].offset + 4, sizeof(struct shm_proc));
		expect--;
	}
	ck_assert_uint_eq(expect, 0);
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

/* requests_area - per-route answers: classes, codes, buckets, a renamed
 * row starting from zero, and the same in /metrics's text. */
START_TEST(requests_area)
{
	struct rq_block *b = rq_block(&seg, 3);
	const char *names[] = { "unmatched", "/api/chat", "/x" };
	const char *renamed[] = { "unmatched", "/api/chat", "/y" };
	size_t len;
	char *text;

	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_null(rq_block(&seg, RQ_MAX_INSTANCES));
	rq_routes(b, names, 3, 4242);
	ck_assert_uint_eq(b->nroutes, 3);
	ck_assert_str_eq(b->row[1].name, "/api/chat");
	rq_count(b, 1, 200, -1, 300, 1000);         /* 2xx, bucket 500us */
	rq_count(b, 1, 429, RG_E_RATE_LIMITED, 250, 100); /* <= 250us */
	rq_count(b, 1, 0, -1, 0, 0);                /* no answer */
	rq_count(b, 1, 503, RG_E_OVERLOADED, 20000000, 50); /* +Inf */
	rq_count(b, 99, 404, RG_E_NOT_FOUND, 10, 10); /* -> row 0 */
	rq_count(b, 2, 200, -1, 1000, 1);
	ck_assert_uint_eq(b->row[1].classes[RQ_C2XX], 1);
	ck_assert_uint_eq(b->row[1].classes[RQ_C4XX], 1);
	ck_assert_uint_eq(b->row[1].classes[RQ_C5XX], 1);
	ck_assert_uint_eq(b->row[1].classes[RQ_NONE], 1);
	ck_assert_uint_eq(b->row[1].codes[RG_E_RATE_LIMITED], 1);
	ck_assert_uint_eq(b->row[1].buckets[0], 1);
	ck_assert_uint_eq(b->row[1].buckets[1], 1);
	ck_assert_uint_eq(b->row[1].buckets[RQ_NBUCKETS], 1);
	ck_assert_uint_eq(b->row[1].sum_us, 300 + 250 + 20000000);
	ck_assert_uint_eq(b->row[1].bytes, 1150);
	ck_assert_uint_eq(b->row[0].codes[RG_E_NOT_FOUND], 1);
	ck_assert_str_eq(rq_bucket_le(RQ_NBUCKETS), "+Inf");
	ck_assert_uint_eq(rq_bucket_us(0), 250);

	text = metrics_render(&seg, &len);
	ck_assert_uint_eq(strlen(text), len);
	ck_assert_ptr_nonnull(strstr(text, "relgate_route_requests_total{role="
	    "\"ingress\",instance=\"3\",route=\"/api/chat\",class=\"4xx\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "relgate_route_errors_total{role="
	    "\"ingress\",instance=\"3\",route=\"/api/chat\",code=\"rate_limited\"} 1\n"));
	/* cumulative buckets: 1 at 250us, 2 at 500us, 3 at +Inf (the
	 * request without an answer is not timed) */
	ck_assert_ptr_nonnull(strstr(text, "relgate_route_response_seconds_bucket{"
	    "role=\"ingress\",instance=\"3\",route=\"/api/chat\",le=\"0.0005\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "relgate_route_response_seconds_count{"
	    "role=\"ingress\",instance=\"3\",route=\"/api/chat\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "relgate_route_response_seconds_sum{"
	    "role=\"ingress\",instance=\"3\",route=\"/api/chat\"} 20.000550\n"));
	/* a block never written is not shown */
	ck_assert_ptr_null(strstr(text, "instance=\"4\",route="));
	free(text);

	/* the third route is another now: its counts start again */
	rq_routes(b, renamed, 3, 4243);
	ck_assert_str_eq(b->row[2].name, "/y");
	ck_assert_uint_eq(b->row[2].classes[RQ_C2XX], 0);
	ck_assert_uint_eq(b->row[1].classes[RQ_C2XX], 1);
	rq_routes(b, renamed, 2, 4243);
	ck_assert_str_eq(b->row[2].name, "");
}
END_TEST

/* outcalls_area - attempts by outcome (a head cut off later still
 * timed), calls by verdict, and their families in /metrics. */
START_TEST(outcalls_area)
{
	struct oc_block *b = oc_claim(&seg, 5, 777);
	size_t len;
	char *text;

	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_null(oc_block(&seg, SHM_MAX_PROCS));
	oc_attempt(b, 1, 200, OC_PROTOCOL, 1, 400);   /* 2xx, 500us */
	oc_attempt(b, 1, 503, OC_PROTOCOL, 1, 20000); /* 5xx, 25ms */
	oc_attempt(b, 1, 0, OC_TIMEOUT, 0, 0);        /* no head */
	oc_attempt(b, 1, 0, OC_PROTOCOL, 1, 900);     /* cut after head */
	oc_verdict(b, 1, OC_V_ANSWERED);
	oc_verdict(b, 1, OC_V_SATURATED);
	oc_attempt(b, OC_MAX_PROVIDERS, 200, OC_PROTOCOL, 1, 1); /* ignored */
	ck_assert_uint_eq(b->row[1].outcomes[OC_C2XX], 1);
	ck_assert_uint_eq(b->row[1].outcomes[OC_C5XX], 1);
	ck_assert_uint_eq(b->row[1].outcomes[OC_TIMEOUT], 1);
	ck_assert_uint_eq(b->row[1].outcomes[OC_PROTOCOL], 1);
	ck_assert_uint_eq(b->row[1].buckets[1], 1); /* <= 500us */
	ck_assert_uint_eq(b->row[1].buckets[2], 1); /* <= 1ms */
	ck_assert_uint_eq(b->row[1].buckets[6], 1); /* <= 25ms */
	ck_assert_uint_eq(b->row[1].sum_us, 400 + 20000 + 900);
	ck_assert_uint_eq(b->row[1].verdicts[OC_V_SATURATED], 1);
	text = metrics_render(&seg, &len);
	/* slot 5 is unused in this segment's process table: role unknown */
	ck_assert_ptr_nonnull(strstr(text, "relgate_outcall_attempts_total{role="
	    "\"unknown\",instance=\"0\",provider=\"openrouter_chat_secondary"
	    "\",outcome=\"timeout\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "relgate_outcall_calls_total{role="
	    "\"unknown\",instance=\"0\",provider=\"openrouter_chat_secondary"
	    "\",verdict=\"saturated\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "relgate_outcall_response_seconds_"
	    "count{role=\"unknown\",instance=\"0\",provider=\"openrouter_"
	    "chat_secondary\"} 3\n"));
	/* a provider never called has no row */
	ck_assert_ptr_null(strstr(text, "provider=\"backend\",outcome="));
	free(text);
}
END_TEST

/* metric_names - public names to Prometheus names, with units. */
START_TEST(metric_names)
{
	char buf[64];
	size_t len;
	char *text;

	metrics_name(buf, sizeof(buf), "ingress.chatStreams");
	ck_assert_str_eq(buf, "ingress_chat_streams");
	metrics_name(buf, sizeof(buf), "http.responses_2xx");
	ck_assert_str_eq(buf, "http_responses_2xx");
	metrics_name(buf, sizeof(buf), "probeOverflows");
	ck_assert_str_eq(buf, "probe_overflows");
	text = metrics_render(&seg, &len);
	/* a gauge of the counter tables is typed gauge, a counter counter */
	ck_assert_ptr_nonnull(strstr(text, "# TYPE relgate_http_open gauge\n"));
	ck_assert_ptr_nonnull(strstr(text, "# TYPE relgate_link_sent_total counter\n"));
	/* times: ms fields in seconds, times of day as timestamps */
	ck_assert_ptr_nonnull(strstr(text, "# TYPE relgate_process_backoff_seconds gauge\n"));
	ck_assert_ptr_nonnull(strstr(text, "# TYPE relgate_process_started_at_timestamp_seconds gauge\n"));
	/* the supervisor's slot is always there */
	ck_assert_ptr_nonnull(strstr(text, "relgate_process_state{role=\"supervisor\",instance=\"0\",state=\"starting\"}"));
	free(text);
}
END_TEST

/* area_tables - every area table lies inside its area, its fields inside
 * a row, and the circuit's fields where struct cb_slot has them. */
START_TEST(area_tables)
{
	static const char *const names[] = { "rl.buckets", "rl.table",
		"circuit", "bulkhead", "adm.dims", "adm.counters",
		"adm.settings", "adm.gauges" };
	size_t n;
	const struct shm_desc *d = shm_descs(&seg, &n);
	const struct shm_desc *f;

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct shm_table *t = shm_table(&seg, names[i]);
		const struct shm_area *a;
		unsigned fields = 0;

		ck_assert_msg(t != NULL, "no table %s", names[i]);
		a = shm_area_by_name(&seg, t->area);
		ck_assert_ptr_nonnull(a);
		ck_assert_uint_le(t->offset + (uint64_t)((t->copies ?
				t->copies : 1) - 1) * t->copy_stride +
			(uint64_t)t->count * t->stride,
		    a->size);
		for (size_t k = 0; k < n; k++) {
			if (strcmp(d[k].area, names[i]) != 0 ||
			    d[k].type == SHM_T_TABLE)
				continue;
			ck_assert_uint_le(d[k].offset + 4, t->stride);
			fields++;
		}
		ck_assert_msg(fields > 0, "table %s has no fields", names[i]);
	}
	ck_assert_ptr_null(shm_table(&seg, "proc"));
	f = NULL;
	for (size_t k = 0; k < n; k++)
		if (strcmp(d[k].area, "circuit") == 0 &&
		    strcmp(d[k].name, "counters.opens") == 0)
			f = &d[k];
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(f->offset,
	    offsetof(struct cb_slot, n) + CB_C_OPENS * sizeof(uint64_t));
	ck_assert_uint_eq(f->type, SHM_T_COUNTER);
}
END_TEST

/* table_of - the writable descriptor of table name */
static struct shm_table *
table_of(const char *name)
{
	size_t n;
	const struct shm_desc *d = shm_descs(&seg, &n);
	struct shm_desc *w = (struct shm_desc *)(void *)((char *)seg.base +
	    shm_area_by_name(&seg, "desc")->offset);

	for (size_t i = 0; i < n; i++)
		if (d[i].type == SHM_T_TABLE && strcmp(d[i].name, name) == 0)
			return (struct shm_table *)(void *)&w[i];
	ck_abort_msg("no table %s", name);
	return NULL;
}

/* at - the value at a path of keys "a/b/c" (an index for an array) */
static json_t *
at(json_t *o, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, "/", &save); k != NULL && o != NULL;
	     k = strtok_r(NULL, "/", &save))
		o = json_is_array(o) ? json_array_get(o, strtoul(k, NULL, 10)) :
				       json_object_get(o, k);
	return o;
}

#define AT_INT(o, path) json_integer_value(at((o), (path)))

/* snapshot_tables - the generic reader: the sections of circuits,
 * bulkheads, rate limits and admission come from the described tables
 * (settings, counters, sums over copies); a table not described or not
 * fitting its area reads as empty. */
START_TEST(snapshot_tables)
{
	struct cb_ticket t;
	struct bh_lease l;
	struct adm_area *adm;
	json_t *snap;

	rl_area_init(&seg);
	cb_area_init(&seg);
	bh_area_init(&seg);
	adm_area_init(&seg);
	cb_configure(&seg, CB_PROV_BACKEND, 3, 5000);
	ck_assert_int_eq(cb_allow(&seg, CB_PROV_BACKEND, 1000, 3, 5000, 1,
			     &t, NULL),
	    CB_ALLOW);
	cb_record(&seg, CB_PROV_BACKEND, &t, CB_FAILURE, 1001, 3);
	ck_assert_int_eq(bh_acquire(&seg, BH_PROV_SENTRY, now_ms(), 4,
			     3600000, &l, NULL),
	    BH_ACQUIRED);
	/* two copies (shards) of one bucket add up */
	rl_area_of(&seg)->shard[0].n[RL_BUCKET_WHATSAPP_WEBHOOK][RL_BLOCKED] = 2;
	rl_area_of(&seg)->shard[5].n[RL_BUCKET_WHATSAPP_WEBHOOK][RL_BLOCKED] = 3;
	adm = adm_area_of(&seg);
	adm->dims[ADM_D_GLOBAL_INFLIGHT][ADM_F_ENFORCE] = 1;
	adm->dims[ADM_D_GLOBAL_INFLIGHT][ADM_F_BLOCKED] = 7;
	adm->counters[ADM_C_BLOCKED] = 7;
	adm->gauges[ADM_G_INFLIGHT] = 2;
	/* two ingress blocks with the same route: summed by its name; a
	 * block without a writer is not read */
	{
		static const char *const names[] = { "unmatched", "x-route" };

		oc_area_init(&seg);
		rq_routes(rq_block(&seg, 0), names, 2, 101);
		rq_routes(rq_block(&seg, 3), names, 2, 102);
		rq_count(rq_block(&seg, 0), 1, 200, -1, 400, 10);
		rq_count(rq_block(&seg, 3), 1, 429, RG_E_RATE_LIMITED, 300, 20);
		rq_count(rq_block(&seg, 3), 1, 0, -1, 0, 0);
		/* a named row in a block whose writer is gone (pid 0) */
		strcpy(rq_block(&seg, 5)->row[1].name, "x-route");
		rq_block(&seg, 5)->row[1].classes[RQ_C2XX] = 99;
		oc_attempt(oc_claim(&seg, 2, 201), CB_PROV_BACKEND, 503, OC_CONNECT,
		    1, 2000);
		oc_verdict(oc_block(&seg, 2), CB_PROV_BACKEND, OC_V_FAILED);
		oc_attempt(oc_claim(&seg, 4, 202), CB_PROV_BACKEND, 200, OC_CONNECT,
		    1, 1000);
		oc_verdict(oc_block(&seg, 4), CB_PROV_BACKEND, OC_V_ANSWERED);
	}

	snap = snapshot_json(&seg, 10);
	ck_assert_int_eq(AT_INT(snap, "routes/x-route/requests"), 3);
	ck_assert_int_eq(AT_INT(snap, "routes/x-route/answered"), 2);
	ck_assert_int_eq(AT_INT(snap, "routes/x-route/byClass/2xx"), 1);
	ck_assert_int_eq(AT_INT(snap, "routes/x-route/byClass/4xx"), 1);
	ck_assert_int_eq(AT_INT(snap, "routes/x-route/byClass/none"), 1);
	ck_assert_int_eq(AT_INT(snap, "routes/x-route/byCode/rate_limited"), 1);
	ck_assert_int_eq(json_object_size(at(snap, "routes/x-route/byCode")), 1);
	ck_assert_int_eq(AT_INT(snap, "routes/x-route/bytes"), 30);
	ck_assert(json_is_real(at(snap, "routes/x-route/latencyMs/mean")));
	ck_assert_int_eq(AT_INT(snap, "routes/unmatched/requests"), 0);
	ck_assert_int_eq(AT_INT(snap, "outcalls/backend/calls/answered"), 1);
	ck_assert_int_eq(AT_INT(snap, "outcalls/backend/calls/failed"), 1);
	ck_assert_int_eq(AT_INT(snap, "outcalls/backend/attempts/5xx"), 1);
	ck_assert_int_eq(AT_INT(snap, "outcalls/backend/attempts/2xx"), 1);
	ck_assert_int_eq(json_object_size(at(snap, "outcalls")), 1);
	ck_assert_str_eq(json_string_value(at(snap,
			     "circuits/backend/state")),
	    "closed");
	ck_assert_int_eq(AT_INT(snap, "circuits/backend/consecutiveFailures"),
	    1);
	ck_assert_int_eq(AT_INT(snap, "circuits/backend/threshold"), 3);
	ck_assert_int_eq(AT_INT(snap, "circuits/backend/cooldownMs"), 5000);
	ck_assert(json_is_null(at(snap, "circuits/backend/openedAt")));
	ck_assert_int_eq(AT_INT(snap, "circuits/backend/counters/failures"),
	    1);
	ck_assert_int_eq(AT_INT(snap, "bulkheads/sentry/maxConcurrent"), 4);
	ck_assert_int_eq(AT_INT(snap, "bulkheads/sentry/inFlight"), 1);
	ck_assert_int_eq(AT_INT(snap, "bulkheads/sentry/counters/acquired"),
	    1);
	ck_assert_int_eq(AT_INT(snap,
			     "rateLimitPressure/buckets/whatsapp_webhook/"
			     "blocked"),
	    5);
	ck_assert_int_eq(AT_INT(snap, "rateLimitPressure/table/slots"), 1024);
	ck_assert(json_is_true(at(snap,
	    "chatAdmission/enforce/global_inflight")));
	ck_assert_int_eq(AT_INT(snap,
			     "chatAdmission/dimensions/global_inflight/"
			     "blocked"),
	    7);
	ck_assert_int_eq(AT_INT(snap, "chatAdmission/inflight/global"), 2);
	ck_assert_str_eq(json_string_value(at(snap,
			     "chatAdmission/topReasons/0/reason")),
	    "blocked:global_inflight");
	json_decref(snap);

	/* an older layout: no table descriptor; broken ones: rows past the
	 * end of the area, names outside it.  All read as empty. */
	table_of("circuit")->type = 0;
	table_of("bulkhead")->count = 1u << 20;
	table_of("rl.buckets")->offset = (uint32_t)shm_area_by_name(&seg,
	    "ratelimit")->size;
	table_of("adm.dims")->names_off = UINT32_MAX - 8;
	snap = snapshot_json(&seg, 10);
	ck_assert_uint_eq(json_object_size(at(snap, "circuits")), 0);
	ck_assert_uint_eq(json_object_size(at(snap, "bulkheads")), 0);
	ck_assert_uint_eq(json_object_size(at(snap,
			      "rateLimitPressure/buckets")),
	    0);
	ck_assert_uint_eq(json_object_size(at(snap, "chatAdmission")), 0);
	json_decref(snap);
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
	tcase_add_test(tc, requests_area);
	tcase_add_test(tc, metric_names);
	tcase_add_test(tc, outcalls_area);
	tcase_add_test(tc, area_tables);
	tcase_add_test(tc, snapshot_tables);
	return tl_run(s);
}
