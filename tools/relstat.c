/*
 * relstat - attach read-only to relgate's shared memory and show it.
 *
 * Every name comes from the descriptor table in the segment, not from a
 * compiled-in struct, so this relstat also reads a newer daemon's segment
 * (as long as the layout version is not newer than it knows).
 *   relstat [-n SHM_NAME] [-1 | -j] [-w MIN] [-l N]
 * Default: a live view refreshed every second; -1 one-shot text; -j JSON.
 * Exit 2 with one line when there is no segment or its layout is newer.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "shm/bulkhead.h"
#include "shm/circuit.h"
#include "shm/ratelimit.h"
#include "shm/shm.h"
#include "util/util.h"

static volatile sig_atomic_t done;

static void
on_int(int sig)
{
	(void)sig;
	done = 1;
}

static void
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: relstat [-n SHM_NAME] [-1 | -j] [-w MINUTES] [-l LIMIT]\n"
	    "  -n SHM_NAME  segment to attach (default /relgate)\n"
	    "  -1           print once as text and exit\n"
	    "  -j           print once as JSON and exit\n"
	    "  -w MINUTES   window for event summaries\n"
	    "  -l LIMIT     rows per section\n"
	    "  --help       this text\n"
	    "  --version    print the version\n");
	exit(code);
}

static long
parse_pos(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 1 || v > 100000) {
		fprintf(stderr, "relstat: %s must be 1..100000, got \"%s\"\n",
		    what, s);
		exit(2);
	}
	return v;
}

/* enum_name - the idx-th name of a comma-separated list. */
static const char *
enum_name(const char *values, uint32_t idx, char *buf, size_t len)
{
	const char *p = values;

	for (uint32_t i = 0; i < idx && p; i++) {
		p = strchr(p, ',');
		if (p)
			p++;
	}
	if (p == NULL || *p == '\0') {
		snprintf(buf, len, "%u", idx);
		return buf;
	}
	snprintf(buf, len, "%.*s", (int)strcspn(p, ","), p);
	return buf;
}

/* field_json - one described field of a slot as JSON. */
static json_t *
field_json(const struct shm_desc *d, const char *slot)
{
	const void *f = slot + d->offset;
	char buf[64];
	uint64_t u64;
	uint32_t u32;
	int32_t i32;

	switch (d->type) {
	case SHM_T_U32:
		memcpy(&u32, f, 4);
		return json_integer(u32);
	case SHM_T_I32:
		memcpy(&i32, f, 4);
		return json_integer(i32);
	case SHM_T_U64:
	case SHM_T_COUNTER:
		memcpy(&u64, f, 8);
		return json_integer((json_int_t)u64);
	case SHM_T_TIME_MS:
		memcpy(&u64, f, 8);
		return u64 ? json_integer((json_int_t)u64) : json_null();
	case SHM_T_ROLE:
	case SHM_T_STATE:
		memcpy(&u32, f, 4);
		return json_string(enum_name(d->values, u32, buf, sizeof(buf)));
	case SHM_T_EXIT: {
		const char *s;

		memcpy(&i32, f, 4);
		s = shm_exit_str(i32, buf, sizeof(buf));
		return s ? json_string(s) : json_null();
	}
	default:
		return json_null();
	}
}

/* slot_used - slot 0 (the supervisor) and every slot whose described
 * "state" field is not 0 ("unused"). */
static int
slot_used(const struct shm_desc *d, size_t nd, const char *slot, unsigned i)
{
	uint32_t state;

	if (i == 0)
		return 1;
	for (size_t k = 0; k < nd; k++) {
		if (strncmp(d[k].area, "proc", sizeof(d[k].area)) != 0 ||
		    strncmp(d[k].name, "state", sizeof(d[k].name)) != 0)
			continue;
		memcpy(&state, slot + d[k].offset, 4);
		return state != 0;
	}
	return 0;
}

/* seg_name - the i-th NUL-padded name of the ratelimit head into buf. */
static const char *
seg_name(const char *area, const struct rl_head *h, uint64_t i, char *buf,
    size_t len)
{
	const char *p = area + h->names_off + i * h->name_size;

	snprintf(buf, len, "%.*s", (int)strnlen(p, h->name_size), p);
	return buf;
}

/* seg_u64 - an aligned u64 at off in an area of size bytes, or 0. */
static uint64_t
seg_u64(const char *area, uint64_t size, uint64_t off)
{
	if (off % 8 != 0 || off + 8 > size)
		return 0;
	return SHM_LOAD((const uint64_t *)(const void *)(area + off));
}

/*
 * ratelimit_json - rateLimitPressure: outcome counters per bucket and the
 * table statistics, every name and offset read from the area's own head
 * (struct rl_head), so this reads a newer daemon's buckets.  null when
 * the segment has no ratelimit area.
 */
static json_t *
ratelimit_json(const struct shm_seg *seg)
{
	const struct shm_area *a = shm_area_by_name(seg, "ratelimit");
	json_t *o, *buckets, *table;
	const char *area;
	struct rl_head h;
	uint64_t nnames;
	char name[257];

	if (a == NULL || a->size < sizeof(h) ||
	    a->offset + a->size > seg->size)
		return json_null();
	o = json_object();
	buckets = json_object();
	table = json_object();
	json_object_set_new(o, "buckets", buckets);
	json_object_set_new(o, "table", table);
	area = (const char *)seg->base + a->offset;
	if (!shm_described(
	    &((const struct rl_head *)(const void *)area)->described)) {
		json_object_set_new(table, "slots", json_integer(a->count));
		return o;
	}
	memcpy(&h, area, sizeof(h));
	nnames = (uint64_t)h.nbuckets + h.noutcomes + h.ntstats;
	if (memcmp(h.magic, RL_MAGIC, sizeof(h.magic)) != 0 ||
	    h.name_size == 0 || h.name_size >= sizeof(name) ||
	    nnames > 4096 || h.nshards > 4096 ||
	    h.names_off + nnames * h.name_size > a->size)
		return o;
	for (uint32_t b = 0; b < h.nbuckets; b++) {
		json_t *bo = json_object();

		for (uint32_t k = 0; k < h.noutcomes; k++) {
			uint64_t sum = 0;

			for (uint32_t s = 0; s < h.nshards; s++)
				sum += seg_u64(area, a->size,
				    h.counters_off +
					(uint64_t)s * h.shard_stride +
					((uint64_t)b * h.noutcomes + k) * 8);
			json_object_set_new(bo,
			    seg_name(area, &h, h.nbuckets + k, name,
				sizeof(name)),
			    json_integer((json_int_t)sum));
		}
		json_object_set_new(buckets,
		    seg_name(area, &h, b, name, sizeof(name)), bo);
	}
	for (uint32_t t = 0; t < h.ntstats; t++)
		json_object_set_new(table,
		    seg_name(area, &h, (uint64_t)h.nbuckets + h.noutcomes + t,
			name, sizeof(name)),
		    json_integer((json_int_t)seg_u64(area, a->size,
			h.tstats_off + (uint64_t)t * 8)));
	return o;
}

/* seg_u32 - an aligned u32 at off in an area of size bytes, or 0. */
static uint32_t
seg_u32(const char *area, uint64_t size, uint64_t off)
{
	if (off % 4 != 0 || off + 4 > size)
		return 0;
	return SHM_LOAD((const uint32_t *)(const void *)(area + off));
}

/* area_name - the i-th NUL-padded name of a names table into buf. */
static const char *
area_name(const char *area, uint32_t names_off, uint32_t name_size,
    uint64_t i, char *buf, size_t len)
{
	const char *p = area + names_off + i * name_size;

	snprintf(buf, len, "%.*s", (int)strnlen(p, name_size), p);
	return buf;
}

/* time_json - a time in ms, null for 0 (never). */
static json_t *
time_json(uint64_t ms)
{
	return ms ? json_integer((json_int_t)ms) : json_null();
}

/* names_ok - a names table of n entries fits the area. */
static int
names_ok(const struct shm_area *a, uint32_t names_off, uint32_t name_size,
    uint64_t n)
{
	return name_size > 0 && name_size < 256 && n <= 4096 &&
	    names_off + n * name_size <= a->size;
}

/*
 * circuits_json - circuits: state, consecutive failures, probes in
 * flight, when it opened and the counters of every circuit, names and
 * offsets read from the area's head (struct cb_head).  null when the
 * segment has no circuit area.
 */
static json_t *
circuits_json(const struct shm_seg *seg)
{
	const struct shm_area *a = shm_area_by_name(seg, "circuit");
	const char *area;
	struct cb_head h;
	json_t *o;
	char name[257], sname[257];

	if (a == NULL || a->size < sizeof(h) ||
	    a->offset + a->size > seg->size)
		return json_null();
	o = json_object();
	area = (const char *)seg->base + a->offset;
	if (!shm_described(
	    &((const struct cb_head *)(const void *)area)->described))
		return o;
	memcpy(&h, area, sizeof(h));
	if (memcmp(h.magic, CB_MAGIC, sizeof(h.magic)) != 0 ||
	    !names_ok(a, h.names_off, h.name_size,
		(uint64_t)h.nproviders + h.nstates + h.ncounters) ||
	    h.slots_off + (uint64_t)h.nproviders * h.slot_size > a->size)
		return o;
	for (uint32_t p = 0; p < h.nproviders; p++) {
		uint64_t slot = h.slots_off + (uint64_t)p * h.slot_size;
		uint64_t w = seg_u64(area, a->size, slot + h.word_off);
		unsigned st = CB_W_STATE(w);
		json_t *c = json_object(), *counters = json_object();

		if (st < h.nstates)
			area_name(area, h.names_off, h.name_size,
			    (uint64_t)h.nproviders + st, sname, sizeof(sname));
		else
			snprintf(sname, sizeof(sname), "%u", st);
		json_object_set_new(c, "state", json_string(sname));
		json_object_set_new(c, "consecutiveFailures",
		    json_integer(st == CB_ST_CLOSED ? CB_W_COUNT(w) : 0));
		json_object_set_new(c, "probesInFlight",
		    json_integer(st == CB_ST_HALF_OPEN ? CB_W_COUNT(w) : 0));
		json_object_set_new(c, "openedAt",
		    time_json(st == CB_ST_OPEN ? CB_W_TIME(w) :
			seg_u64(area, a->size, slot + h.opened_off)));
		json_object_set_new(c, "changedAt", time_json(CB_W_TIME(w)));
		json_object_set_new(c, "threshold",
		    json_integer(seg_u32(area, a->size,
			slot + h.threshold_off)));
		json_object_set_new(c, "cooldownMs",
		    json_integer(seg_u32(area, a->size,
			slot + h.cooldown_off)));
		for (uint32_t k = 0; k < h.ncounters; k++)
			json_object_set_new(counters,
			    area_name(area, h.names_off, h.name_size,
				(uint64_t)h.nproviders + h.nstates + k, name,
				sizeof(name)),
			    json_integer((json_int_t)seg_u64(area, a->size,
				slot + h.counters_off + (uint64_t)k * 8)));
		json_object_set_new(c, "counters", counters);
		json_object_set_new(o,
		    area_name(area, h.names_off, h.name_size, p, name,
			sizeof(name)),
		    c);
	}
	return o;
}

/*
 * bulkheads_json - bulkheads: live leases (with owner pid, id and
 * times), settings and counters of every bulkhead, names and offsets read
 * from the area's head (struct bh_head).  null when the segment has no
 * bulkhead area.
 */
static json_t *
bulkheads_json(const struct shm_seg *seg)
{
	const struct shm_area *a = shm_area_by_name(seg, "bulkhead");
	uint64_t now = now_ms();
	const char *area;
	struct bh_head h;
	json_t *o;
	char name[257];

	if (a == NULL || a->size < sizeof(h) ||
	    a->offset + a->size > seg->size)
		return json_null();
	o = json_object();
	area = (const char *)seg->base + a->offset;
	if (!shm_described(
	    &((const struct bh_head *)(const void *)area)->described))
		return o;
	memcpy(&h, area, sizeof(h));
	if (memcmp(h.magic, BH_MAGIC, sizeof(h.magic)) != 0 ||
	    h.pid_bits != BH_PID_BITS || h.capacity > 65536 ||
	    !names_ok(a, h.names_off, h.name_size,
		(uint64_t)h.nproviders + h.ncounters) ||
	    h.provs_off + (uint64_t)h.nproviders * h.prov_size > a->size)
		return o;
	for (uint32_t p = 0; p < h.nproviders; p++) {
		uint64_t base = h.provs_off + (uint64_t)p * h.prov_size;
		json_t *b = json_object(), *counters = json_object();
		json_t *leases = json_array();
		uint32_t live = 0, expired = 0;

		for (uint32_t i = 0; i < h.capacity; i++) {
			uint64_t w = seg_u64(area, a->size,
			    base + h.words_off + (uint64_t)i * 8);
			uint64_t info = base + h.info_off +
			    (uint64_t)i * h.info_size;
			json_t *l;

			if (w == 0)
				continue;
			if (BH_W_EXPIRES(w) <= now) {
				expired++;
				continue;
			}
			live++;
			l = json_object();
			json_object_set_new(l, "pid",
			    json_integer(BH_W_PID(w)));
			json_object_set_new(l, "id",
			    json_integer((json_int_t)seg_u64(area, a->size,
				info)));
			json_object_set_new(l, "acquiredAt",
			    time_json(seg_u64(area, a->size, info + 8)));
			json_object_set_new(l, "expiresAt",
			    json_integer((json_int_t)BH_W_EXPIRES(w)));
			json_array_append_new(leases, l);
		}
		json_object_set_new(b, "inFlight", json_integer(live));
		json_object_set_new(b, "expired", json_integer(expired));
		json_object_set_new(b, "maxConcurrent",
		    json_integer(seg_u32(area, a->size, base + h.max_off)));
		json_object_set_new(b, "capacity", json_integer(h.capacity));
		json_object_set_new(b, "leaseTtlMs",
		    json_integer(seg_u32(area, a->size, base + h.ttl_off)));
		json_object_set_new(b, "lastWarnedAt",
		    time_json(seg_u64(area, a->size, base + h.warned_off)));
		for (uint32_t k = 0; k < h.ncounters; k++)
			json_object_set_new(counters,
			    area_name(area, h.names_off, h.name_size,
				(uint64_t)h.nproviders + k, name,
				sizeof(name)),
			    json_integer((json_int_t)seg_u64(area, a->size,
				base + h.counters_off + (uint64_t)k * 8)));
		json_object_set_new(b, "counters", counters);
		json_object_set_new(b, "leases", leases);
		json_object_set_new(o,
		    area_name(area, h.names_off, h.name_size, p, name,
			sizeof(name)),
		    b);
	}
	return o;
}

static json_t *
snapshot(const struct shm_seg *seg)
{
	const struct shm_area *pa = shm_area_by_name(seg, "proc");
	const struct shm_header *h = seg->hdr;
	json_t *root = json_object(), *hdr = json_object();
	json_t *procs = json_array(), *areas = json_array(), *cfg;
	const struct shm_desc *d;
	char *text = xmalloc(SHM_CONFIG_MAX + 1);
	uint64_t gen = 0;
	size_t nd;

	json_object_set_new(hdr, "segment", json_string(""));
	json_object_set_new(hdr, "layoutVersion",
	    json_integer(h->layout_version));
	json_object_set_new(hdr, "size", json_integer((json_int_t)h->size));
	json_object_set_new(hdr, "supervisorPid",
	    json_integer(h->supervisor_pid));
	json_object_set_new(hdr, "supervisorAlive",
	    json_boolean(h->supervisor_pid > 0 &&
		(kill(h->supervisor_pid, 0) == 0 || errno == EPERM)));
	json_object_set_new(hdr, "startedAt",
	    json_integer((json_int_t)h->started_at));
	json_object_set_new(hdr, "configGeneration",
	    json_integer((json_int_t)SHM_LOAD(&h->config_gen)));
	json_object_set_new(hdr, "ready", json_boolean(shm_is_ready(seg)));
	json_object_set_new(root, "header", hdr);

	for (uint32_t i = 0; i < h->nareas && i < SHM_MAX_AREAS; i++) {
		const struct shm_area *a = &h->areas[i];
		json_t *o = json_object();

		json_object_set_new(o, "name", json_stringn(a->name,
		    strnlen(a->name, sizeof(a->name))));
		json_object_set_new(o, "size", json_integer((json_int_t)a->size));
		json_object_set_new(o, "doc", json_stringn(a->doc,
		    strnlen(a->doc, sizeof(a->doc))));
		json_array_append_new(areas, o);
	}
	json_object_set_new(root, "areas", areas);

	d = shm_descs(seg, &nd);
	for (uint32_t s = 0; pa != NULL && s < pa->count; s++) {
		const char *slot;
		json_t *o, *counters;

		if (pa->offset + (uint64_t)(s + 1) * pa->stride > seg->size)
			break;
		slot = (const char *)seg->base + pa->offset +
		    (size_t)s * pa->stride;
		if (!slot_used(d, nd, slot, s))
			continue;
		o = json_object();
		counters = json_object();
		for (size_t k = 0; k < nd; k++) {
			char name[sizeof(d[k].name) + 1];

			if (strncmp(d[k].area, "proc", sizeof(d[k].area)) ||
			    d[k].offset + 8 > pa->stride)
				continue;
			snprintf(name, sizeof(name), "%.*s",
			    (int)sizeof(d[k].name), d[k].name);
			json_object_set_new(d[k].type == SHM_T_COUNTER ?
				counters : o,
			    name, field_json(&d[k], slot));
		}
		json_object_set_new(o, "counters", counters);
		json_array_append_new(procs, o);
	}
	json_object_set_new(root, "processes", procs);
	json_object_set_new(root, "rateLimitPressure", ratelimit_json(seg));
	json_object_set_new(root, "circuits", circuits_json(seg));
	json_object_set_new(root, "bulkheads", bulkheads_json(seg));

	if (shm_config_read(seg, text, SHM_CONFIG_MAX + 1, &gen) == 0 &&
	    (cfg = json_loads(text, 0, NULL)) != NULL)
		json_object_set_new(root, "config", cfg);
	else
		json_object_set_new(root, "config", json_null());
	free(text);
	return root;
}

/* print_ratelimit - the rateLimitPressure section as text. */
static void
print_ratelimit(FILE *out, json_t *rl)
{
	json_t *table = json_object_get(rl, "table");
	json_t *buckets = json_object_get(rl, "buckets"), *b, *v;
	const char *name, *k;
	int first = 1;

	if (!json_is_object(rl))
		return;
	fprintf(out, "\nrate limits  table:");
	json_object_foreach(table, k, v)
		fprintf(out, " %s %lld", k, (long long)json_integer_value(v));
	fprintf(out, "\n");
	json_object_foreach(buckets, name, b) {
		if (first) {
			fprintf(out, "%-22s", "BUCKET");
			json_object_foreach(b, k, v)
				fprintf(out, " %20s", k);
			fprintf(out, "\n");
			first = 0;
		}
		fprintf(out, "%-22s", name);
		json_object_foreach(b, k, v)
			fprintf(out, " %20lld",
			    (long long)json_integer_value(v));
		fprintf(out, "\n");
	}
}

/* print_counters - " name value" for each counter of o. */
static void
print_counters(FILE *out, json_t *o)
{
	const char *k;
	json_t *v;

	json_object_foreach(json_object_get(o, "counters"), k, v)
		fprintf(out, " %s %lld", k, (long long)json_integer_value(v));
}

/* print_circuits - the circuits section as text, one line each. */
static void
print_circuits(FILE *out, json_t *cbs)
{
	const char *name;
	json_t *c;

	if (!json_is_object(cbs))
		return;
	fprintf(out, "\n%-26s %-9s %5s %6s %-14s %s\n", "CIRCUIT", "STATE",
	    "FAILS", "PROBES", "OPENED AT", "COUNTERS");
	json_object_foreach(cbs, name, c) {
		json_t *at = json_object_get(c, "openedAt");
		char when[32] = "-";

		if (json_is_integer(at))
			snprintf(when, sizeof(when), "%lld",
			    (long long)json_integer_value(at));
		fprintf(out, "%-26s %-9s %5lld %6lld %-14s", name,
		    json_string_value(json_object_get(c, "state")),
		    (long long)json_integer_value(
			json_object_get(c, "consecutiveFailures")),
		    (long long)json_integer_value(
			json_object_get(c, "probesInFlight")),
		    when);
		print_counters(out, c);
		fprintf(out, "\n");
	}
}

/* print_bulkheads - the bulkheads section as text, one line each. */
static void
print_bulkheads(FILE *out, json_t *bhs)
{
	const char *name;
	json_t *b;

	if (!json_is_object(bhs))
		return;
	fprintf(out, "\n%-26s %9s %7s %s\n", "BULKHEAD", "IN FLIGHT",
	    "EXPIRED", "COUNTERS");
	json_object_foreach(bhs, name, b) {
		char used[32];

		snprintf(used, sizeof(used), "%lld/%lld",
		    (long long)json_integer_value(
			json_object_get(b, "inFlight")),
		    (long long)json_integer_value(
			json_object_get(b, "maxConcurrent")));
		fprintf(out, "%-26s %9s %7lld", name, used,
		    (long long)json_integer_value(
			json_object_get(b, "expired")));
		print_counters(out, b);
		fprintf(out, "\n");
	}
}

static void
print_text(FILE *out, json_t *snap)
{
	json_t *h = json_object_get(snap, "header");
	json_t *procs = json_object_get(snap, "processes"), *p;
	char *cfg;
	size_t i;

	fprintf(out, "relgate  supervisor pid %lld  layout v%lld  config "
		     "generation %lld  %s\n",
	    (long long)json_integer_value(json_object_get(h, "supervisorPid")),
	    (long long)json_integer_value(json_object_get(h, "layoutVersion")),
	    (long long)json_integer_value(
		json_object_get(h, "configGeneration")),
	    json_is_true(json_object_get(h, "ready")) ? "ready" : "not ready");
	fprintf(out, "\n%-12s %4s %8s %-9s %8s %-20s %s\n", "ROLE", "INST",
	    "PID", "STATE", "RESTARTS", "LAST EXIT", "HEARTBEAT AGE");
	json_array_foreach(procs, i, p) {
		json_t *hb = json_object_get(p, "heartbeatAt");
		json_t *le = json_object_get(p, "lastExit");
		char age[32] = "-";

		if (json_is_integer(hb))
			snprintf(age, sizeof(age), "%lld ms",
			    (long long)(now_ms() - (uint64_t)
				json_integer_value(hb)));
		fprintf(out, "%-12s %4lld %8lld %-9s %8lld %-20s %s\n",
		    json_string_value(json_object_get(p, "role")),
		    (long long)json_integer_value(
			json_object_get(p, "instance")),
		    (long long)json_integer_value(json_object_get(p, "pid")),
		    json_string_value(json_object_get(p, "state")),
		    (long long)json_integer_value(
			json_object_get(p, "restarts")),
		    json_is_string(le) ? json_string_value(le) : "-", age);
	}
	print_ratelimit(out, json_object_get(snap, "rateLimitPressure"));
	print_circuits(out, json_object_get(snap, "circuits"));
	print_bulkheads(out, json_object_get(snap, "bulkheads"));
	fprintf(out, "\nconfig (secrets redacted):\n");
	cfg = json_dumps(json_object_get(snap, "config"),
	    JSON_INDENT(2) | JSON_SORT_KEYS);
	fprintf(out, "%s\n", cfg ? cfg : "null");
	free(cfg);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = "/relgate";
	struct shm_seg seg;
	char err[512];
	int opt, mode = 0; /* 0 live, 1 text, 2 json */

	while ((opt = getopt_long(argc, argv, "n:1jw:l:h", longopts, NULL)) !=
	    -1) {
		switch (opt) {
		case 'n':
			name = optarg;
			break;
		case '1':
			mode = 1;
			break;
		case 'j':
			mode = 2;
			break;
		case 'w':
			parse_pos(optarg, "-w MINUTES");
			break;
		case 'l':
			parse_pos(optarg, "-l LIMIT");
			break;
		case 'h':
			usage(0);
			break;
		case 'V':
			printf("relstat %s\n", RG_VERSION);
			return 0;
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (mode == 0 && !isatty(STDOUT_FILENO))
		mode = 1;
	if (shm_attach(&seg, name, 0, err, sizeof(err)) != 0) {
		fprintf(stderr, "relstat: %s\n", err);
		return 2;
	}
	signal(SIGINT, on_int);
	signal(SIGTERM, on_int);
	do {
		json_t *snap = snapshot(&seg);

		json_object_set_new(json_object_get(snap, "header"), "segment",
		    json_string(name));
		if (mode == 2) {
			char *s = json_dumps(snap, JSON_INDENT(2));

			printf("%s\n", s);
			free(s);
		} else {
			if (mode == 0)
				printf("\033[H\033[2J");
			print_text(stdout, snap);
		}
		fflush(stdout);
		json_decref(snap);
		if (mode == 0)
			sleep(1);
	} while (mode == 0 && !done);
	shm_detach(&seg);
	return 0;
}
