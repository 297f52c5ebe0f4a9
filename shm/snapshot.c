/*
 * snapshot - the segment as the JSON of "relstat -j" and the monitor's
 * GET /snapshot (see snapshot.h).
 */
#include "shm/snapshot.h"

#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm/admission.h"
#include "shm/bulkhead.h"
#include "shm/circuit.h"
#include "shm/ratelimit.h"
#include "shm/requests.h"
#include "util/util.h"

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
	case SHM_T_GAUGE:
		memcpy(&u64, f, 8);
		return json_integer((json_int_t)u64);
	case SHM_T_TIME_MS:
		memcpy(&u64, f, 8);
		return u64 ? json_integer((json_int_t)u64) : json_null();
	case SHM_T_FLAG:
		memcpy(&u64, f, 8);
		return json_boolean(u64 != 0);
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

/* seg_u32 - an aligned u32 at off in an area of size bytes, or 0. */
static uint32_t
seg_u32(const char *area, uint64_t size, uint64_t off)
{
	if (off % 4 != 0 || off + 4 > size)
		return 0;
	return SHM_LOAD((const uint32_t *)(const void *)(area + off));
}

/*
 * area_of - the start of area name when it holds a head of hsize bytes
 * inside the segment (else NULL); *a is the area, *described says
 * whether its head is complete.  Every self-describing head begins with
 * char magic[8] and uint32_t described.
 */
static const char *
area_of(const struct shm_seg *seg, const char *name, size_t hsize,
    const struct shm_area **ap, int *described)
{
	const struct shm_area *a = shm_area_by_name(seg, name);
	const char *area;

	*ap = a;
	if (a == NULL || a->size < hsize || a->offset + a->size > seg->size)
		return NULL;
	area = (const char *)seg->base + a->offset;
	*described = shm_described(
	    (const uint32_t *)(const void *)(area + 8));
	return area;
}

_Static_assert(offsetof(struct rl_head, described) == 8, "head prefix");
_Static_assert(offsetof(struct cb_head, described) == 8, "head prefix");
_Static_assert(offsetof(struct bh_head, described) == 8, "head prefix");
_Static_assert(offsetof(struct adm_head, described) == 8, "head prefix");

/* area_name - the i-th NUL-padded name of a names table into buf. */
static const char *
area_name(const char *area, uint32_t names_off, uint32_t name_size,
    uint64_t i, char *buf, size_t len)
{
	const char *p = area + names_off + i * name_size;

	snprintf(buf, len, "%.*s", (int)strnlen(p, name_size), p);
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

/* --- the described tables --------------------------------------------------*/

/* field_width - bytes of a field of type, 0 for a type this build does
 * not know (a newer daemon's: left out) */
static unsigned
field_width(uint32_t type)
{
	switch (type) {
	case SHM_T_U32:
	case SHM_T_I32:
	case SHM_T_ROLE:
	case SHM_T_STATE:
	case SHM_T_EXIT:
		return 4;
	case SHM_T_U64:
	case SHM_T_TIME_MS:
	case SHM_T_COUNTER:
	case SHM_T_GAUGE:
	case SHM_T_FLAG:
		return 8;
	default:
		return 0;
	}
}

/* merge - o[key] = v, or added to an integer already there (a copy of
 * the same row) */
static void
merge(json_t *o, const char *key, json_t *v)
{
	json_t *old = json_object_get(o, key);

	if (old != NULL && json_is_integer(old) && json_is_integer(v)) {
		json_integer_set(old,
		    json_integer_value(old) + json_integer_value(v));
		json_decref(v);
	} else {
		json_object_set_new(o, key, v);
	}
}

/* row_fields - the fields of table (the descriptors d[0..nd) whose area
 * column names it) of the row at off in an area of size bytes, of stride
 * bytes, merged into ro; a dotted name goes into the group before its
 * dot */
static void
row_fields(json_t *ro, const char *table, const struct shm_desc *d,
    size_t nd, const char *area, uint64_t size, uint64_t off,
    uint32_t stride)
{
	for (size_t k = 0; k < nd; k++) {
		unsigned w = field_width(d[k].type);
		char name[sizeof(d[k].name) + 1], *dot;
		json_t *into = ro;

		if (strncmp(d[k].area, table, sizeof(d[k].area)) != 0 ||
		    w == 0 || (uint64_t)d[k].offset + w > stride ||
		    off + d[k].offset + w > size)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)sizeof(d[k].name),
		    d[k].name);
		if ((dot = strchr(name, '.')) != NULL) {
			*dot = '\0';
			into = json_object_get(ro, name);
			if (into == NULL) {
				into = json_object();
				json_object_set_new(ro, name, into);
			}
		}
		merge(into, dot != NULL ? dot + 1 : name,
		    field_json(&d[k], area + off));
	}
}

/* all_zero - every number of a row (and of its groups) is 0 */
static int
all_zero(json_t *o)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		if (json_is_object(v) ? !all_zero(v) :
					json_is_true(v) ||
			    (json_is_integer(v) && json_integer_value(v) != 0))
			return 0;
	}
	return 1;
}

/* table_fits - the rows of every copy, their names and the live word of
 * t lie inside an area of size bytes */
static int
table_fits(const struct shm_table *t, uint32_t copies, uint64_t size)
{
	uint64_t last = (uint64_t)(copies - 1) * t->copy_stride;

	if (t->count == 0 || t->count > 65536 || copies > 4096 ||
	    t->name_size > RQ_NAME_SIZE || (t->name_size == 0 && t->count != 1))
		return 0;
	if (t->offset + last + (uint64_t)t->count * t->stride > size)
		return 0;
	if (t->flags & SHM_TF_COPY_LIVE &&
	    (t->live_off % 4 != 0 || last + t->live_off + 4 > size))
		return 0;
	if (t->flags & SHM_TF_NAME_IN_ROW)
		return (uint64_t)t->names_off + t->name_size <= t->stride;
	return t->names_off + (uint64_t)t->count * t->name_size <= size;
}

/*
 * table_json - the described table name as {row: {field: value}}, the
 * rows of every copy added up by name (a row without a name is not in
 * use), or {field: value} for a table of one row; NULL when the segment
 * does not describe it or the description does not fit its area (an
 * older layout: the caller shows the section empty).
 */
static json_t *
table_json(const struct shm_seg *seg, const char *name)
{
	const struct shm_table *t = shm_table(seg, name);
	const struct shm_area *a;
	const struct shm_desc *d;
	char aname[sizeof(t->area) + 1], rname[RQ_NAME_SIZE + 1];
	const char *area;
	uint32_t copies;
	json_t *o;
	size_t nd;

	if (t == NULL)
		return NULL;
	snprintf(aname, sizeof(aname), "%.*s", (int)sizeof(t->area), t->area);
	a = shm_area_by_name(seg, aname);
	copies = t->copies ? t->copies : 1;
	if (a == NULL || a->offset + a->size > seg->size ||
	    !table_fits(t, copies, a->size))
		return NULL;
	area = (const char *)seg->base + a->offset;
	d = shm_descs(seg, &nd);
	o = json_object();
	for (uint32_t c = 0; c < copies; c++) {
		uint64_t base = t->offset + (uint64_t)c * t->copy_stride;

		if (t->flags & SHM_TF_COPY_LIVE &&
		    seg_u32(area, a->size,
			(uint64_t)c * t->copy_stride + t->live_off) == 0)
			continue;
		for (uint32_t r = 0; r < t->count; r++) {
			uint64_t row = base + (uint64_t)r * t->stride;
			const char *np = area + (t->flags & SHM_TF_NAME_IN_ROW ?
				row + t->names_off :
				t->names_off + (uint64_t)r * t->name_size);
			json_t *ro = o;

			if (t->name_size > 0) {
				snprintf(rname, sizeof(rname), "%.*s",
				    (int)strnlen(np, t->name_size), np);
				if (rname[0] == '\0')
					continue;
				if ((ro = json_object_get(o, rname)) == NULL) {
					ro = json_object();
					json_object_set_new(o, rname, ro);
				}
			}
			row_fields(ro, name, d, nd, area, a->size, row,
			    t->stride);
		}
	}
	if (t->flags & SHM_TF_SKIP_ZERO && t->name_size > 0) {
		const char *k;
		json_t *v;
		void *tmp;

		json_object_foreach_safe(o, tmp, k, v)
			if (all_zero(v))
				json_object_del(o, k);
	}
	return o;
}

/* table_or_empty - table_json, {} when the table is not described */
static json_t *
table_or_empty(const struct shm_seg *seg, const char *name)
{
	json_t *o = table_json(seg, name);

	return o != NULL ? o : json_object();
}

/* row_named - the row of o named by entry i of an area's names table */
static json_t *
row_named(json_t *o, const char *area, uint32_t names_off,
    uint32_t name_size, uint64_t i)
{
	char name[257];

	return json_object_get(o,
	    area_name(area, names_off, name_size, i, name, sizeof(name)));
}

/*
 * ratelimit_json - rateLimitPressure: outcome counters per bucket and the
 * table statistics, as the area's tables describe them.  null when the
 * segment has no ratelimit area.
 */
static json_t *
ratelimit_json(const struct shm_seg *seg)
{
	if (shm_area_by_name(seg, "ratelimit") == NULL)
		return json_null();
	return json_pack("{s:o,s:o}", "buckets",
	    table_or_empty(seg, "rl.buckets"), "table",
	    table_or_empty(seg, "rl.table"));
}

/*
 * circuits_json - circuits: the described settings and counters of every
 * circuit, and what its state word says: state, consecutive failures,
 * probes in flight, when it changed (and opened, while open); the word's
 * place and the state names read from the area's head (struct cb_head).
 * null when the segment has no circuit area.
 */
static json_t *
circuits_json(const struct shm_seg *seg)
{
	const struct shm_area *a;
	struct cb_head h;
	json_t *o;
	char sname[257];
	int described;
	const char *area = area_of(seg, "circuit", sizeof(h), &a,
	    &described);

	if (area == NULL)
		return json_null();
	o = table_or_empty(seg, "circuit");
	if (!described)
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
		json_t *c = row_named(o, area, h.names_off, h.name_size, p);

		if (c == NULL)
			continue;
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
		if (st == CB_ST_OPEN)
			json_object_set_new(c, "openedAt",
			    time_json(CB_W_TIME(w)));
		json_object_set_new(c, "changedAt", time_json(CB_W_TIME(w)));
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
 * bulkheads_json - bulkheads: the described settings and counters of
 * every bulkhead, and what its lease words say: live and expired leases,
 * places held, capacity and its rows most recent live leases (owner pid,
 * id, times); the words' place read from the area's head (struct
 * bh_head; also the first format, BHAREA1, which had no count).  null
 * when the segment has no bulkhead area.
 */
static json_t *
bulkheads_json(const struct shm_seg *seg, long limit)
{
	const struct shm_area *a;
	uint64_t now = now_ms();
	struct lease_row *live;
	struct bh_head h;
	json_t *o;
	int described;
	const char *area = area_of(seg, "bulkhead", sizeof(h), &a,
	    &described);

	if (area == NULL)
		return json_null();
	o = table_or_empty(seg, "bulkhead");
	if (!described)
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
		json_t *b = row_named(o, area, h.names_off, h.name_size, p);
		json_t *leases;
		uint32_t n = 0, expired = 0;

		if (b == NULL)
			continue;
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
		leases = json_array();
		for (uint32_t i = 0; i < n && i < limit; i++)
			json_array_append_new(leases,
			    json_pack("{s:I,s:I,s:o,s:I}", "pid",
				(json_int_t)live[i].pid, "id",
				(json_int_t)live[i].id, "acquiredAt",
				time_json(live[i].acquired_at), "expiresAt",
				(json_int_t)live[i].expires_at));
		json_object_set_new(b, "inFlight", json_integer(n));
		json_object_set_new(b, "expired", json_integer(expired));
		json_object_set_new(b, "held", h.held_off ?
			json_integer(BH_H_COUNT(seg_u64(area, a->size,
			    base + h.held_off))) :
			json_null());
		json_object_set_new(b, "capacity", json_integer(h.capacity));
		json_object_set_new(b, "leases", leases);
	}
	free(live);
	return o;
}

/* --- chatAdmission ---------------------------------------------------------*/

/* The admission area's tickets, users and mode names as found through
 * its head (struct adm_head); its scalar fields are described tables. */
struct adm_view {
	const char *area;
	uint64_t size;
	struct adm_head h;
	uint32_t m; /* the first mode name */
};

/* adm_view_init - the head, checked against the area; 0 or -1. */
static int
adm_view_init(struct adm_view *v, const struct shm_seg *seg)
{
	const struct shm_area *a;
	const struct adm_head *h = &v->h;
	uint64_t nnames;
	int described;

	v->area = area_of(seg, "admission", sizeof(v->h), &a, &described);
	if (v->area == NULL || !described)
		return -1;
	v->size = a->size;
	memcpy(&v->h, v->area, sizeof(v->h));
	nnames = (uint64_t)h->ndims + h->ndimfields + h->ncounters +
	    h->nsettings + h->ngauges + h->nmodes;
	if (memcmp(h->magic, ADM_MAGIC, sizeof(h->magic)) != 0 ||
	    !names_ok(a, h->names_off, h->name_size, nnames) ||
	    h->u_key_size > 255 || h->ticket_capacity > (1u << 24) ||
	    h->user_capacity > (1u << 24) ||
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
	v->m = (uint32_t)(nnames - h->nmodes);
	return 0;
}

/* jint - the integer o[key], 0 when there is none */
static json_int_t
jint(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* adm_dims - from the dimensions {dim: {field: value}}: enforce {dim:
 * bool}, and every counting field of every dimension as topReasons rows
 * "<field>:<dim>" (the largest first, at most rows). */
static void
adm_dims(json_t *dims, json_t *o, long rows)
{
	json_t *enforce = json_object(), *reasons = json_array(), *dj, *v;
	const char *dname, *fname;
	char reason[520];

	json_object_foreach(dims, dname, dj) {
		json_object_foreach(dj, fname, v) {
			json_int_t val = json_integer_value(v);
			size_t at = json_array_size(reasons);

			if (strcmp(fname, "enforce") == 0) {
				json_object_set(enforce, dname, v);
				continue;
			}
			if (strcmp(fname, "limit") == 0 || val == 0)
				continue;
			snprintf(reason, sizeof(reason), "%s:%s", fname, dname);
			/* insertion in descending count order */
			while (at > 0 &&
			    jint(json_array_get(reasons, at - 1), "count") <
				val)
				at--;
			json_array_insert_new(reasons, at,
			    json_pack("{s:s,s:I}", "reason", reason, "count",
				val));
		}
	}
	while (json_array_size(reasons) > (size_t)rows)
		json_array_remove(reasons, json_array_size(reasons) - 1);
	json_object_set_new(o, "enforce", enforce);
	json_object_set(o, "dimensions", dims);
	json_object_set_new(o, "topReasons", reasons);
}

/* adm_rate - a token bucket and its per-second figures. */
static json_t *
adm_rate(json_t *dims, json_t *gauges, const char *dim, const char *level,
    const char *this_s, const char *last_s)
{
	return json_pack("{s:I,s:f,s:I,s:I}", "limitPerSec",
	    jint(json_object_get(dims, dim), "limit"), "level",
	    (double)jint(gauges, level) / 1000.0, "thisSecond",
	    jint(gauges, this_s), "lastSecond", jint(gauges, last_s));
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
adm_top_users(const struct adm_view *v, long rows)
{
	unsigned n = 0, cap = rows < 100 ? (unsigned)rows : 100;
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
 * the users holding most tickets.  The scalar fields come from the
 * area's described tables, the tickets, users and mode names through
 * its head.  null when the segment has no admission area; {} when it
 * describes neither.
 */
static json_t *
admission_json(const struct shm_seg *seg, long rows)
{
	struct adm_view v;
	json_t *o, *dims, *counters, *settings, *gauges, *inflight;
	json_int_t mode, pid, soft, would, decisions;
	char name[257];

	if (shm_area_by_name(seg, "admission") == NULL)
		return json_null();
	o = json_object();
	if ((dims = table_json(seg, "adm.dims")) == NULL ||
	    adm_view_init(&v, seg) != 0) {
		json_decref(dims);
		return o;
	}
	counters = table_or_empty(seg, "adm.counters");
	settings = table_or_empty(seg, "adm.settings");
	gauges = table_or_empty(seg, "adm.gauges");
	mode = jint(settings, "gatewayMode");
	json_object_set_new(o, "gatewayMode",
	    mode >= 0 && mode < v.h.nmodes ?
		json_string(area_name(v.area, v.h.names_off, v.h.name_size,
		    v.m + (uint64_t)mode, name, sizeof(name))) :
		json_null());
	json_object_set_new(o, "shadow",
	    json_boolean(jint(settings, "shadowMode") != 0));
	adm_dims(dims, o, rows);
	inflight = json_pack("{s:I,s:I}", "global", jint(gauges, "inflight"),
	    "users", jint(gauges, "users"));
	adm_tickets(&v, inflight);
	json_object_set_new(o, "inflight", inflight);
	json_object_set_new(o, "rates",
	    json_pack("{s:o,s:o}", "msgPerSec",
		adm_rate(dims, gauges, "global_msg_rate", "msgLevelMilli",
		    "msgThisSecond", "msgLastSecond"),
		"toolPerSec",
		adm_rate(dims, gauges, "global_tool_rate", "toolLevelMilli",
		    "toolThisSecond", "toolLastSecond")));
	json_object_set_new(o, "counters", counters);
	soft = jint(counters, "softAllowed");
	would = jint(counters, "wouldBlock");
	decisions = jint(counters, "allowed") + jint(counters, "blocked") +
	    jint(counters, "shadowEvaluations");
	json_object_set_new(o, "falsePositivePressure",
	    json_pack("{s:I,s:I,s:I,s:f}", "softAllowed", soft, "wouldBlock",
		would, "decisions", decisions, "ratio",
		decisions ? (double)(soft + would) / (double)decisions : 0.0));
	json_object_set_new(o, "topUsers", adm_top_users(&v, rows));
	json_object_set_new(o, "settings", settings);
	json_object_set_new(o, "gauges", gauges); /* o keeps it */
	pid = jint(gauges, "writerPid");
	json_object_set_new(o, "writerPid", json_integer(pid));
	json_object_set_new(o, "writerAlive",
	    json_boolean(pid > 0 && pid < INT32_MAX &&
		(kill((pid_t)pid, 0) == 0 || errno == EPERM)));
	json_object_set_new(o, "updatedAt",
	    time_json((uint64_t)jint(gauges, "updatedAt")));
	json_decref(dims);
	return o;
}

/* is_gauge - the descriptor of name says gauge */
static int
is_gauge(const struct shm_desc *d, size_t nd, const char *name)
{
	for (size_t k = 0; k < nd; k++)
		if (strncmp(d[k].area, "proc", sizeof(d[k].area)) == 0 &&
		    strncmp(d[k].name, name, sizeof(d[k].name)) == 0)
			return d[k].type == SHM_T_GAUGE;
	return 0;
}

/* region_json - regionTopology: the region settings in force (SPEC
 * section 9); one host keeps its state in shm and LMDB */
static json_t *
region_json(json_t *cfg)
{
	json_t *o = json_object();

	json_object_set(o, "regionId",
	    json_object_get(cfg, "RELIABILITY_REGION_ID") ?
		json_object_get(cfg, "RELIABILITY_REGION_ID") :
		json_null());
	json_object_set(o, "topologyMode",
	    json_object_get(cfg, "RELIABILITY_TOPOLOGY_MODE") ?
		json_object_get(cfg, "RELIABILITY_TOPOLOGY_MODE") :
		json_null());
	json_object_set(o, "readinessOnly",
	    json_object_get(cfg, "RELIABILITY_REGION_READINESS_ONLY") ?
		json_object_get(cfg, "RELIABILITY_REGION_READINESS_ONLY") :
		json_null());
	json_object_set_new(o, "admissionState", json_string("shm"));
	return o;
}

/*
 * tools_json - toolCache, toolJobs and toolQueueAlerts as the segment
 * alone gives them: empty (their shape is that of the snapshot's
 * readers).  The readers with a store fill them: toolCache by
 * tc_snapshot, toolJobs by jobq_snapshot, toolQueueAlerts (the alerts
 * of the delivery queue) by alert_snapshot.
 */
static void
tools_json(json_t *root)
{
	json_object_set_new(root, "toolCache",
	    json_pack("{s:{}}", "byNamespace"));
	json_object_set_new(root, "toolJobs",
	    json_pack("{s:{s:i,s:i,s:i},s:{},s:{},s:n,s:[]}", "byStatus",
		"queued", 0, "running", 0, "dead", 0, "byTool",
		"pressureByTool", "oldestQueuedAgeMs", "recentDeadLetters"));
	json_object_set_new(root, "toolQueueAlerts",
	    json_pack("{s:[],s:i,s:i}", "recent", "alertsInWindow", 0,
		"windowMs", 0));
}

/* totals_json - totals: every counter (not the gauges: a sum of the
 * largest group commits means nothing) summed over the processes */
static json_t *
totals_json(json_t *procs, const struct shm_desc *d, size_t nd)
{
	json_t *t = json_object(), *p, *v;
	const char *k;
	size_t i;

	json_array_foreach(procs, i, p) {
		json_object_foreach(json_object_get(p, "counters"), k, v) {
			json_t *sum = json_object_get(t, k);

			if (is_gauge(d, nd, k))
				continue;
			if (sum == NULL)
				json_object_set_new(t, k, json_integer(
				    json_integer_value(v)));
			else
				json_integer_set(sum, json_integer_value(sum) +
				    json_integer_value(v));
		}
	}
	return t;
}

/* latency_json - {mean, p50, p90, p99} in ms of a bucket row, nulls
 * when it is empty */
static json_t *
latency_json(const uint64_t *buckets, uint64_t sum_us)
{
	static const double qs[] = { 0.5, 0.9, 0.99 };
	static const char *const qnames[] = { "p50", "p90", "p99" };
	json_t *lat = json_object();
	uint64_t n = 0;

	for (unsigned k = 0; k <= RQ_NBUCKETS; k++)
		n += buckets[k];
	json_object_set_new(lat, "mean",
	    n ? json_real((double)sum_us / (double)n / 1000) : json_null());
	for (unsigned q = 0; q < RG_NELEM(qs); q++)
		json_object_set_new(lat, qnames[q], n ?
			json_real(rq_quantile_us(buckets, qs[q]) / 1000) :
			json_null());
	return lat;
}

/* buckets_of - a row's "buckets" group (keys the bounds' le) as the
 * array latency_json reads; its "sumUs" into *sum_us */
static void
buckets_of(json_t *row, uint64_t *buckets, uint64_t *sum_us)
{
	json_t *b = json_object_get(row, "buckets");

	for (unsigned k = 0; k <= RQ_NBUCKETS; k++)
		buckets[k] = (uint64_t)json_integer_value(
		    json_object_get(b, rq_bucket_le(k)));
	*sum_us = (uint64_t)json_integer_value(json_object_get(row, "sumUs"));
}

/*
 * routes_json - routes: {path: {requests, answered, byClass, byCode,
 * bytes, latencyMs: {mean, p50, p90, p99}}}, the answers of every
 * ingress summed (the described table "requests"; byCode: only the
 * codes seen).  Latency is the time to the answer's head, quantiles
 * estimated within the buckets.
 */
static json_t *
routes_json(const struct shm_seg *seg)
{
	json_t *t = table_or_empty(seg, "requests"), *o = json_object();
	json_t *row, *v;
	const char *name, *k;

	json_object_foreach(t, name, row) {
		json_t *ro = json_object(), *codes = json_object();
		json_t *cls = json_object_get(row, "classes");
		uint64_t buckets[RQ_NBUCKETS + 1], sum_us, total = 0;

		json_object_foreach(cls, k, v)
			total += (uint64_t)json_integer_value(v);
		json_object_foreach(json_object_get(row, "codes"), k, v)
			if (json_integer_value(v) > 0)
				json_object_set(codes, k, v);
		buckets_of(row, buckets, &sum_us);
		json_object_set_new(ro, "requests",
		    json_integer((json_int_t)total));
		json_object_set_new(ro, "answered",
		    json_integer((json_int_t)total -
			json_integer_value(json_object_get(cls, "none"))));
		json_object_set_new(ro, "byClass",
		    cls != NULL ? json_incref(cls) : json_object());
		json_object_set_new(ro, "byCode", codes);
		json_object_set(ro, "bytes", json_object_get(row, "bytes"));
		json_object_set_new(ro, "latencyMs",
		    latency_json(buckets, sum_us));
		json_object_set_new(o, name, ro);
	}
	json_decref(t);
	return o;
}

/*
 * outcalls_json - outcalls: {provider: {calls: {verdict: n}, attempts:
 * {outcome: n}, latencyMs}}, the calls of every process summed (the
 * described table "outcalls"), providers never called left out.
 */
static json_t *
outcalls_json(const struct shm_seg *seg)
{
	json_t *t = table_or_empty(seg, "outcalls"), *o = json_object();
	json_t *row;
	const char *name;

	json_object_foreach(t, name, row) {
		json_t *po = json_object();
		uint64_t buckets[RQ_NBUCKETS + 1], sum_us;

		buckets_of(row, buckets, &sum_us);
		json_object_set(po, "calls", json_object_get(row, "calls"));
		json_object_set(po, "attempts", json_object_get(row, "attempts"));
		json_object_set_new(po, "latencyMs",
		    latency_json(buckets, sum_us));
		json_object_set_new(o, name, po);
	}
	json_decref(t);
	return o;
}

json_t *
snapshot_json(const struct shm_seg *seg, long limit)
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
		const char *slot, *role, *key;
		json_t *o, *counters, *v;
		void *tmp;

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
			/* the counters have dotted names */
			json_object_set_new(strchr(name, '.') != NULL ?
				counters : o,
			    name, field_json(&d[k], slot));
		}
		/* another role's own counters are always 0 here */
		role = json_string_value(json_object_get(o, "role"));
		json_object_foreach_safe(counters, tmp, key, v)
			if (role != NULL && !shm_counter_applies(key, role))
				json_object_del(counters, key);
		json_object_set_new(o, "counters", counters);
		json_array_append_new(procs, o);
	}
	json_object_set_new(root, "processes", procs);
	json_object_set_new(root, "totals", totals_json(procs, d, nd));
	json_object_set_new(root, "routes", routes_json(seg));
	json_object_set_new(root, "outcalls", outcalls_json(seg));
	/* calls, cache lookups, jobs and queue gauges per tool */
	json_object_set_new(root, "tools", table_or_empty(seg, "tools"));
	json_object_set_new(root, "toolClasses",
	    table_or_empty(seg, "toolClasses"));
	json_object_set_new(root, "rateLimitPressure", ratelimit_json(seg));
	json_object_set_new(root, "circuits", circuits_json(seg));
	json_object_set_new(root, "bulkheads", bulkheads_json(seg, limit));
	json_object_set_new(root, "chatAdmission", admission_json(seg, limit));

	if (shm_config_read(seg, text, SHM_CONFIG_MAX + 1, &gen) == 0 &&
	    (cfg = json_loads(text, 0, NULL)) != NULL)
		json_object_set_new(root, "config", cfg);
	else
		json_object_set_new(root, "config", json_null());
	json_object_set_new(root, "regionTopology",
	    region_json(json_object_get(root, "config")));
	tools_json(root);
	free(text);
	return root;
}

