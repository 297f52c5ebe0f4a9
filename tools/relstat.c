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

#include "shm/admission.h"
#include "shm/bulkhead.h"
#include "shm/circuit.h"
#include "shm/ratelimit.h"
#include "shm/shm.h"
#include "util/util.h"

#define RELSTAT_ROWS 20 /* -l: rows per section (leases per bulkhead) */

static volatile sig_atomic_t done;
static unsigned rows = RELSTAT_ROWS; /* -l: rows per section */

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
	    "  -l LIMIT     rows per section: the most recent leases of each\n"
	    "               bulkhead, top users and reasons (default 20)\n"
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

/* A live lease as relstat lists it. */
struct lease_row {
	uint64_t acquired_at, id, expires_at;
	int64_t pid;
};

/* lease_newer - qsort order: most recent first (acquiredAt, then id). */
static int
lease_newer(const void *x, const void *y)
{
	const struct lease_row *a = x, *b = y;

	if (a->acquired_at != b->acquired_at)
		return a->acquired_at < b->acquired_at ? 1 : -1;
	return a->id < b->id ? 1 : a->id > b->id ? -1 : 0;
}

/*
 * bulkheads_json - bulkheads: settings, counts and counters of every
 * bulkhead and its rows most recent live leases (owner pid, id, times),
 * names and offsets read from the area's head (struct bh_head; also the
 * first format, BHAREA1, which had no count).  null when the segment has
 * no bulkhead area.
 */
static json_t *
bulkheads_json(const struct shm_seg *seg, long limit)
{
	const struct shm_area *a = shm_area_by_name(seg, "bulkhead");
	uint64_t now = now_ms();
	struct lease_row *live;
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
	if (memcmp(h.magic, "BHAREA1", sizeof(h.magic)) == 0)
		h.held_off = 0; /* its pad */
	else if (memcmp(h.magic, BH_MAGIC, sizeof(h.magic)) != 0)
		return o;
	if (h.pid_bits != BH_PID_BITS || h.capacity > 65536 ||
	    !names_ok(a, h.names_off, h.name_size,
		(uint64_t)h.nproviders + h.ncounters) ||
	    h.provs_off + (uint64_t)h.nproviders * h.prov_size > a->size)
		return o;
	live = xmalloc(((size_t)h.capacity + 1) * sizeof(*live));
	for (uint32_t p = 0; p < h.nproviders; p++) {
		uint64_t base = h.provs_off + (uint64_t)p * h.prov_size;
		json_t *b = json_object(), *counters = json_object();
		json_t *leases = json_array();
		uint32_t n = 0, expired = 0;

		for (uint32_t i = 0; i < h.capacity; i++) {
			uint64_t w = seg_u64(area, a->size,
			    base + h.words_off + (uint64_t)i * 8);
			uint64_t info = base + h.info_off +
			    (uint64_t)i * h.info_size;

			if (!BH_W_IS_LEASE(w)) /* free, or a marker */
				continue;
			if (BH_W_EXPIRES(w) <= now) {
				expired++;
				continue;
			}
			live[n].pid = BH_W_PID(w);
			live[n].id = seg_u64(area, a->size, info);
			live[n].acquired_at = seg_u64(area, a->size, info + 8);
			live[n].expires_at = BH_W_EXPIRES(w);
			n++;
		}
		qsort(live, n, sizeof(*live), lease_newer);
		for (uint32_t i = 0; i < n && i < limit; i++) {
			json_t *l = json_object();

			json_object_set_new(l, "pid", json_integer(live[i].pid));
			json_object_set_new(l, "id",
			    json_integer((json_int_t)live[i].id));
			json_object_set_new(l, "acquiredAt",
			    time_json(live[i].acquired_at));
			json_object_set_new(l, "expiresAt",
			    json_integer((json_int_t)live[i].expires_at));
			json_array_append_new(leases, l);
		}
		json_object_set_new(b, "inFlight", json_integer(n));
		json_object_set_new(b, "expired", json_integer(expired));
		json_object_set_new(b, "held", h.held_off ?
			json_integer(BH_H_COUNT(seg_u64(area, a->size,
			    base + h.held_off))) :
			json_null());
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
	free(live);
	return o;
}

/* --- chatAdmission ---------------------------------------------------------*/

/* The admission area as found through its head (struct adm_head). */
struct adm_view {
	const char *area;
	uint64_t size;
	struct adm_head h;
	uint32_t df, c, s, g, m; /* first name of each group */
};

static const char *
adm_name(const struct adm_view *v, uint64_t i, char *buf, size_t len)
{
	return area_name(v->area, v->h.names_off, v->h.name_size, i, buf,
	    len);
}

/* adm_find - index of name within names [from, from + n), or -1. */
static int64_t
adm_find(const struct adm_view *v, uint32_t from, uint32_t n,
    const char *name)
{
	char buf[257];

	for (uint32_t i = 0; i < n; i++)
		if (strcmp(adm_name(v, from + i, buf, sizeof(buf)), name) ==
		    0)
			return i;
	return -1;
}

/* adm_value - u64 [i] of the array at off; 0 when i < 0. */
static uint64_t
adm_value(const struct adm_view *v, uint32_t off, int64_t i)
{
	return i < 0 ? 0 : seg_u64(v->area, v->size, off + (uint64_t)i * 8);
}

static uint64_t
adm_gauge_named(const struct adm_view *v, const char *name)
{
	return adm_value(v, v->h.gauges_off,
	    adm_find(v, v->g, v->h.ngauges, name));
}

static uint64_t
adm_counter_named(const struct adm_view *v, const char *name)
{
	return adm_value(v, v->h.counters_off,
	    adm_find(v, v->c, v->h.ncounters, name));
}

/* adm_dim_value - field f of dimension d. */
static uint64_t
adm_dim_value(const struct adm_view *v, uint32_t d, uint32_t f)
{
	return seg_u64(v->area, v->size,
	    v->h.dims_off + ((uint64_t)d * v->h.ndimfields + f) * 8);
}

/* adm_view_init - the head, checked against the area; 0 or -1. */
static int
adm_view_init(struct adm_view *v, const struct shm_seg *seg)
{
	const struct shm_area *a = shm_area_by_name(seg, "admission");
	const struct adm_head *h = &v->h;
	uint64_t nnames;

	if (a == NULL || a->size < sizeof(v->h) ||
	    a->offset + a->size > seg->size)
		return -1;
	v->area = (const char *)seg->base + a->offset;
	v->size = a->size;
	if (!shm_described(
	    &((const struct adm_head *)(const void *)v->area)->described))
		return -1;
	memcpy(&v->h, v->area, sizeof(v->h));
	nnames = (uint64_t)h->ndims + h->ndimfields + h->ncounters +
	    h->nsettings + h->ngauges + h->nmodes;
	if (memcmp(h->magic, ADM_MAGIC, sizeof(h->magic)) != 0 ||
	    !names_ok(a, h->names_off, h->name_size, nnames) ||
	    h->ndims > 32 || h->ndimfields > 64 || h->u_key_size > 255 ||
	    h->ticket_capacity > (1u << 24) || h->user_capacity > (1u << 24) ||
	    h->dims_off + (uint64_t)h->ndims * h->ndimfields * 8 > a->size ||
	    h->counters_off + (uint64_t)h->ncounters * 8 > a->size ||
	    h->settings_off + (uint64_t)h->nsettings * 8 > a->size ||
	    h->gauges_off + (uint64_t)h->ngauges * 8 > a->size ||
	    h->tickets_off + (uint64_t)h->ticket_capacity * h->ticket_size >
		a->size ||
	    h->users_off + (uint64_t)h->user_capacity * h->user_size >
		a->size ||
	    h->u_key_off + (uint64_t)h->u_key_size > h->user_size ||
	    h->u_hash_off + 8ull > h->user_size ||
	    h->u_len_off + 2ull > h->user_size ||
	    h->u_inflight_off + 4ull > h->user_size ||
	    h->u_seq_off + 4ull > h->user_size ||
	    h->t_id_off + 8ull > h->ticket_size ||
	    h->t_issued_off + 8ull > h->ticket_size)
		return -1;
	v->df = h->ndims;
	v->c = v->df + h->ndimfields;
	v->s = v->c + h->ncounters;
	v->g = v->s + h->nsettings;
	v->m = v->g + h->ngauges;
	return 0;
}

/* named_u64s - {name: value} of a named u64 array. */
static json_t *
named_u64s(const struct adm_view *v, uint32_t first, uint32_t n,
    uint32_t off)
{
	json_t *o = json_object();
	char name[257];

	for (uint32_t i = 0; i < n; i++)
		json_object_set_new(o, adm_name(v, first + i, name,
		    sizeof(name)),
		    json_integer((json_int_t)adm_value(v, off, i)));
	return o;
}

/* adm_dims - dimensions {dim: {field: value}}, enforce as a boolean;
 * enforce {dim: bool}; and every counting field of every dimension as
 * topReasons rows "<field>:<dim>" (the largest first, at most rows). */
static void
adm_dims(const struct adm_view *v, json_t *o)
{
	json_t *dims = json_object(), *enforce = json_object();
	json_t *reasons = json_array();
	char dname[257], fname[257], reason[520];

	for (uint32_t d = 0; d < v->h.ndims; d++) {
		json_t *dj = json_object();

		adm_name(v, d, dname, sizeof(dname));
		for (uint32_t f = 0; f < v->h.ndimfields; f++) {
			uint64_t val = adm_dim_value(v, d, f);
			json_t *r;

			adm_name(v, v->df + f, fname, sizeof(fname));
			if (strcmp(fname, "enforce") == 0) {
				json_object_set_new(dj, fname,
				    json_boolean(val != 0));
				json_object_set_new(enforce, dname,
				    json_boolean(val != 0));
				continue;
			}
			json_object_set_new(dj, fname,
			    json_integer((json_int_t)val));
			if (strcmp(fname, "limit") == 0 || val == 0)
				continue;
			snprintf(reason, sizeof(reason), "%s:%s", fname, dname);
			r = json_pack("{s:s,s:I}", "reason", reason, "count",
			    (json_int_t)val);
			/* insertion in descending count order */
			{
				size_t at = json_array_size(reasons);

				while (at > 0 &&
				    json_integer_value(json_object_get(
					json_array_get(reasons, at - 1),
					"count")) < (json_int_t)val)
					at--;
				json_array_insert_new(reasons, at, r);
			}
		}
		json_object_set_new(dims, dname, dj);
	}
	while (json_array_size(reasons) > rows)
		json_array_remove(reasons, json_array_size(reasons) - 1);
	json_object_set_new(o, "enforce", enforce);
	json_object_set_new(o, "dimensions", dims);
	json_object_set_new(o, "topReasons", reasons);
}

/* adm_rate - a token bucket and its per-second figures. */
static json_t *
adm_rate(const struct adm_view *v, const char *dim, const char *level,
    const char *this_s, const char *last_s)
{
	int64_t d = adm_find(v, 0, v->h.ndims, dim);
	int64_t f = adm_find(v, v->df, v->h.ndimfields, "limit");

	return json_pack("{s:I,s:f,s:I,s:I}", "limitPerSec",
	    (json_int_t)(d < 0 || f < 0 ? 0 :
		adm_dim_value(v, (uint32_t)d, (uint32_t)f)),
	    "level", (double)adm_gauge_named(v, level) / 1000.0, "thisSecond",
	    (json_int_t)adm_gauge_named(v, this_s), "lastSecond",
	    (json_int_t)adm_gauge_named(v, last_s));
}

/* adm_tickets - tickets held (counted in the slots) and the oldest. */
static void
adm_tickets(const struct adm_view *v, json_t *inflight)
{
	uint64_t held = 0, oldest = 0;

	for (uint32_t i = 0; i < v->h.ticket_capacity; i++) {
		uint64_t t = v->h.tickets_off + (uint64_t)i * v->h.ticket_size;
		uint64_t issued;

		if (seg_u64(v->area, v->size, t + v->h.t_id_off) == 0)
			continue;
		held++;
		issued = seg_u64(v->area, v->size, t + v->h.t_issued_off);
		if (issued != 0 && (oldest == 0 || issued < oldest))
			oldest = issued;
	}
	json_object_set_new(inflight, "ticketsInUse",
	    json_integer((json_int_t)held));
	json_object_set_new(inflight, "ticketCapacity",
	    json_integer(v->h.ticket_capacity));
	json_object_set_new(inflight, "oldestIssuedAt", time_json(oldest));
}

struct top_user {
	uint32_t inflight;
	char name[300];
};

/* user_read - entry i under its sequence word; 0 when empty or busy. */
static int
user_read(const struct adm_view *v, uint32_t i, struct top_user *u)
{
	uint64_t e = v->h.users_off + (uint64_t)i * v->h.user_size;
	const char *key = v->area + e + v->h.u_key_off;
	uint32_t s1 = seg_u32(v->area, v->size, e + v->h.u_seq_off), n;
	uint16_t len;
	size_t k;

	if ((s1 & 1) || seg_u64(v->area, v->size, e + v->h.u_hash_off) == 0)
		return 0;
	u->inflight = seg_u32(v->area, v->size, e + v->h.u_inflight_off);
	memcpy(&len, v->area + e + v->h.u_len_off, sizeof(len));
	n = len < v->h.u_key_size ? len : v->h.u_key_size;
	for (k = 0; k < n; k++) /* printable ASCII only */
		u->name[k] = key[k] > 0x20 && key[k] < 0x7f ? key[k] : '?';
	snprintf(u->name + k, sizeof(u->name) - k, "%s",
	    len > n ? "..." : "");
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return seg_u32(v->area, v->size, e + v->h.u_seq_off) == s1 &&
	    u->inflight > 0;
}

/* adm_top_users - the users holding the most tickets, at most rows. */
static json_t *
adm_top_users(const struct adm_view *v)
{
	unsigned n = 0, cap = rows < 100 ? rows : 100;
	struct top_user *top = xcalloc(cap + 1, sizeof(*top)), u;
	json_t *a = json_array();

	for (uint32_t i = 0; i < v->h.user_capacity; i++) {
		unsigned at;

		if (!user_read(v, i, &u))
			continue;
		for (at = n; at > 0 && top[at - 1].inflight < u.inflight; at--)
			top[at] = top[at - 1];
		top[at] = u;
		if (n < cap)
			n++;
	}
	for (unsigned i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s,s:i}", "user",
		    top[i].name, "inflight", (int)top[i].inflight));
	free(top);
	return a;
}

/*
 * admission_json - chatAdmission: gateway mode, shadow, enforcement and
 * limits per dimension, tickets in flight, the token buckets, counters,
 * the reasons of refusals and soft allows, false-positive pressure and
 * the users holding most tickets; names and offsets read from the area's
 * head.  null when the segment has no admission area.
 */
static json_t *
admission_json(const struct shm_seg *seg)
{
	struct adm_view v;
	json_t *o, *inflight;
	uint64_t mode, pid, soft, would, decisions;
	char name[257];

	if (shm_area_by_name(seg, "admission") == NULL)
		return json_null();
	o = json_object();
	if (adm_view_init(&v, seg) != 0)
		return o;
	mode = adm_value(&v, v.h.settings_off,
	    adm_find(&v, v.s, v.h.nsettings, "gatewayMode"));
	json_object_set_new(o, "gatewayMode", mode < v.h.nmodes ?
		json_string(adm_name(&v, v.m + mode, name, sizeof(name))) :
		json_null());
	json_object_set_new(o, "shadow",
	    json_boolean(adm_value(&v, v.h.settings_off,
		adm_find(&v, v.s, v.h.nsettings, "shadowMode")) != 0));
	adm_dims(&v, o);
	inflight = json_pack("{s:I,s:I}", "global",
	    (json_int_t)adm_gauge_named(&v, "inflight"), "users",
	    (json_int_t)adm_gauge_named(&v, "users"));
	adm_tickets(&v, inflight);
	json_object_set_new(o, "inflight", inflight);
	json_object_set_new(o, "rates",
	    json_pack("{s:o,s:o}", "msgPerSec",
		adm_rate(&v, "global_msg_rate", "msgLevelMilli",
		    "msgThisSecond", "msgLastSecond"),
		"toolPerSec",
		adm_rate(&v, "global_tool_rate", "toolLevelMilli",
		    "toolThisSecond", "toolLastSecond")));
	json_object_set_new(o, "counters",
	    named_u64s(&v, v.c, v.h.ncounters, v.h.counters_off));
	soft = adm_counter_named(&v, "softAllowed");
	would = adm_counter_named(&v, "wouldBlock");
	decisions = adm_counter_named(&v, "allowed") +
	    adm_counter_named(&v, "blocked") +
	    adm_counter_named(&v, "shadowEvaluations");
	json_object_set_new(o, "falsePositivePressure",
	    json_pack("{s:I,s:I,s:I,s:f}", "softAllowed", (json_int_t)soft,
		"wouldBlock", (json_int_t)would, "decisions",
		(json_int_t)decisions, "ratio",
		decisions ? (double)(soft + would) / (double)decisions : 0.0));
	json_object_set_new(o, "topUsers", adm_top_users(&v));
	json_object_set_new(o, "settings",
	    named_u64s(&v, v.s, v.h.nsettings, v.h.settings_off));
	json_object_set_new(o, "gauges",
	    named_u64s(&v, v.g, v.h.ngauges, v.h.gauges_off));
	pid = adm_gauge_named(&v, "writerPid");
	json_object_set_new(o, "writerPid", json_integer((json_int_t)pid));
	json_object_set_new(o, "writerAlive",
	    json_boolean(pid > 0 && pid < INT32_MAX &&
		(kill((pid_t)pid, 0) == 0 || errno == EPERM)));
	json_object_set_new(o, "updatedAt",
	    time_json(adm_gauge_named(&v, "updatedAt")));
	return o;
}

static json_t *
snapshot(const struct shm_seg *seg, long limit)
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
	json_object_set_new(root, "bulkheads", bulkheads_json(seg, limit));
	json_object_set_new(root, "chatAdmission", admission_json(seg));

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
	fprintf(out, "\n%-26s %11s %5s %8s %7s %s\n", "BULKHEAD",
	    "IN FLIGHT", "HELD", "CAPACITY", "EXPIRED", "COUNTERS");
	json_object_foreach(bhs, name, b) {
		json_t *held = json_object_get(b, "held");
		char used[32], hs[16] = "-";

		snprintf(used, sizeof(used), "%lld/%lld",
		    (long long)json_integer_value(
			json_object_get(b, "inFlight")),
		    (long long)json_integer_value(
			json_object_get(b, "maxConcurrent")));
		if (json_is_integer(held))
			snprintf(hs, sizeof(hs), "%lld",
			    (long long)json_integer_value(held));
		fprintf(out, "%-26s %11s %5s %8lld %7lld", name, used, hs,
		    (long long)json_integer_value(
			json_object_get(b, "capacity")),
		    (long long)json_integer_value(
			json_object_get(b, "expired")));
		print_counters(out, b);
		fprintf(out, "\n");
	}
}

/* jnum - an integer member of o (0 when absent). */
static long long
jnum(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* print_admission - the chatAdmission section as text. */
static void
print_admission(FILE *out, json_t *ca)
{
	json_t *inflight = json_object_get(ca, "inflight"), *d, *v;
	json_t *rates = json_object_get(ca, "rates"), *mode;
	const char *name, *k;
	size_t i;

	if (!json_is_object(ca) || json_object_size(ca) == 0)
		return;
	mode = json_object_get(ca, "gatewayMode");
	fprintf(out, "\nchat admission  gateway %s  shadow %s  writer pid %lld"
		     "%s\n",
	    json_is_string(mode) ? json_string_value(mode) : "-",
	    json_is_true(json_object_get(ca, "shadow")) ? "on" : "off",
	    jnum(ca, "writerPid"),
	    json_is_true(json_object_get(ca, "writerAlive")) ? "" :
							       " (not running)");
	fprintf(out, "%-18s %7s %8s %10s %12s %11s\n", "DIMENSION",
	    "ENFORCE", "LIMIT", "BLOCKED", "SOFTALLOWED", "WOULDBLOCK");
	json_object_foreach(json_object_get(ca, "dimensions"), name, d)
		fprintf(out, "%-18s %7s %8lld %10lld %12lld %11lld\n", name,
		    json_is_true(json_object_get(d, "enforce")) ? "yes" : "no",
		    jnum(d, "limit"), jnum(d, "blocked"),
		    jnum(d, "softAllowed"), jnum(d, "wouldBlock"));
	fprintf(out, "in flight %lld  tickets %lld/%lld  users %lld\n",
	    jnum(inflight, "global"), jnum(inflight, "ticketsInUse"),
	    jnum(inflight, "ticketCapacity"), jnum(inflight, "users"));
	json_object_foreach(rates, name, d)
		fprintf(out, "%-10s level %.3f/%lld  this second %lld  last "
			     "second %lld\n",
		    name, json_real_value(json_object_get(d, "level")),
		    jnum(d, "limitPerSec"), jnum(d, "thisSecond"),
		    jnum(d, "lastSecond"));
	fprintf(out, "counters:");
	json_object_foreach(json_object_get(ca, "counters"), k, v)
		fprintf(out, " %s %lld", k, (long long)json_integer_value(v));
	fprintf(out, "\ntop users:");
	json_array_foreach(json_object_get(ca, "topUsers"), i, d) {
		if (i >= 5)
			break;
		fprintf(out, "%s %s %lld", i ? "," : "",
		    json_string_value(json_object_get(d, "user")),
		    jnum(d, "inflight"));
	}
	fprintf(out, "\n");
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
	print_admission(out, json_object_get(snap, "chatAdmission"));
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
			rows = (unsigned)parse_pos(optarg, "-l LIMIT");
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
		json_t *snap = snapshot(&seg, (long)rows);

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
