/*
 * admission - see admission.h.
 *
 * Tickets: ADM_TICKETS slots.  The writer keeps, in its own memory, a
 * stack of free slots and a dense list of held ones (so a reclaim scan
 * costs what is held, not the capacity); both are rebuilt from the slots'
 * ids when a writer takes the area over.  A slot's generation grows on
 * every take, so an id names one ticket once: a release of an id whose
 * slot moved on, or for another stream, is stale.
 *
 * Users: an open-addressing table with linear probing keyed by the hash
 * of the user id; an entry lives while its user holds a ticket and is
 * removed by shifting the following entries back (no tombstones, so
 * probes stay short however many users come and go).  With twice as many
 * entries as tickets it can never be full.
 *
 * Liveness: a ticket's ingress (provider) is alive while the process
 * table slot of that role and instance still holds the pid recorded in
 * the ticket and kill(pid, 0) does not say ESRCH.  The supervisor clears
 * a slot's pid when it reaps a child, so a killed process is seen at the
 * next scan after it is reaped, and a restarted one (new pid) too.
 */
#include "shm/admission.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/roles.h"
#include "util/util.h"

_Static_assert(ADM_TICKETS <= (1u << ADM_SLOT_BITS), "slot bits");
_Static_assert((ADM_USERS & (ADM_USERS - 1)) == 0, "users: power of two");
_Static_assert(ADM_USERS >= 2 * ADM_TICKETS, "users: room for every ticket");
_Static_assert(sizeof(struct adm_ukey) == 56, "user key size");
_Static_assert(sizeof(struct adm_user) == 64, "user entry: a cache line");
_Static_assert(sizeof(struct adm_ticket) % 8 == 0, "ticket padding");
_Static_assert(offsetof(struct adm_area, tickets) % 64 == 0, "tickets");
_Static_assert(ROLE_COUNT <= 8, "liveness table");

#define MAX_INSTANCES 256u

static const char *const area_names[ADM_NNAMES] = {
#define ADM_DIM_NAME(id, name, enforce, limit) name,
	ADM_DIMS(ADM_DIM_NAME)
#undef ADM_DIM_NAME
#define ADM_NAME3(id, name, doc) name,
	ADM_DIM_FIELDS(ADM_NAME3)
	ADM_COUNTERS(ADM_NAME3)
	ADM_SETTINGS(ADM_NAME3)
	ADM_GAUGES(ADM_NAME3)
#undef ADM_NAME3
#define ADM_MODE_NAME(id, name) name,
	ADM_MODES(ADM_MODE_NAME)
#undef ADM_MODE_NAME
};

/* The processes a ticket may name, as the process table has them now. */
struct procs {
	int32_t pid[ROLE_COUNT][MAX_INSTANCES];   /* 0 = no process */
	uint8_t alive[ROLE_COUNT][MAX_INSTANCES]; /* 0 unknown, 1, 2 dead */
};

struct adm_writer {
	struct shm_seg *seg;
	struct adm_area *a;
	uint32_t nfree, nlive;
	uint32_t free[ADM_TICKETS]; /* a stack of free slots */
	uint32_t live[ADM_TICKETS]; /* held slots, dense */
	uint32_t pos[ADM_TICKETS];  /* slot -> index in live */
	struct procs procs;         /* of the current reclaim scan */
};

size_t
adm_area_size(uint32_t *stride, uint32_t *count)
{
	*stride = sizeof(struct adm_ticket);
	*count = ADM_TICKETS;
	return sizeof(struct adm_area);
}

struct adm_area *
adm_area_of(const struct shm_seg *seg)
{
	const struct shm_area *d;

	if (seg == NULL || seg->hdr == NULL)
		return NULL;
	d = shm_area(seg, SHM_AREA_ADMISSION);
	if (d == NULL || d->size < sizeof(struct adm_area) ||
	    d->offset + d->size > seg->size)
		return NULL;
	return (struct adm_area *)((char *)seg->base + d->offset);
}

/* describe - write names and layout once; losers of the race go on. */
static void
describe(struct adm_area *a)
{
	struct adm_head *h = &a->head;

	if (!shm_describe_begin(&h->described))
		return;
	h->head_size = sizeof(*h);
	h->ndims = ADM_NDIMS;
	h->ndimfields = ADM_NDIMFIELDS;
	h->ncounters = ADM_NCOUNTERS;
	h->nsettings = ADM_NSETTINGS;
	h->ngauges = ADM_NGAUGES;
	h->nmodes = ADM_NMODES;
	h->name_size = ADM_NAME_SIZE;
	h->names_off = offsetof(struct adm_area, names);
	h->dims_off = offsetof(struct adm_area, dims);
	h->counters_off = offsetof(struct adm_area, counters);
	h->settings_off = offsetof(struct adm_area, settings);
	h->gauges_off = offsetof(struct adm_area, gauges);
	h->tickets_off = offsetof(struct adm_area, tickets);
	h->ticket_size = sizeof(struct adm_ticket);
	h->ticket_capacity = ADM_TICKETS;
	h->slot_bits = ADM_SLOT_BITS;
	h->t_id_off = offsetof(struct adm_ticket, id);
	h->t_issued_off = offsetof(struct adm_ticket, issued_at);
	h->t_expires_off = offsetof(struct adm_ticket, expires_at);
	h->users_off = offsetof(struct adm_area, users);
	h->user_size = sizeof(struct adm_user);
	h->user_capacity = ADM_USERS;
	h->u_hash_off = offsetof(struct adm_user, k.hash);
	h->u_len_off = offsetof(struct adm_user, k.len);
	h->u_key_off = offsetof(struct adm_user, k.key);
	h->u_key_size = ADM_UKEY;
	h->u_inflight_off = offsetof(struct adm_user, inflight);
	h->u_seq_off = offsetof(struct adm_user, seq);
	for (unsigned i = 0; i < ADM_NNAMES; i++)
		strlcpy_rg(a->names[i], area_names[i], ADM_NAME_SIZE);
	memcpy(h->magic, ADM_MAGIC, sizeof(h->magic));
	shm_describe_end(&h->described);
}

#define ADM_NAME(id, name, doc) name,
#define ADM_DOC(id, name, doc) doc,
static const char *const counter_names[] = { ADM_COUNTERS(ADM_NAME) };
static const char *const counter_docs[] = { ADM_COUNTERS(ADM_DOC) };
static const char *const setting_names[] = { ADM_SETTINGS(ADM_NAME) };
static const char *const setting_docs[] = { ADM_SETTINGS(ADM_DOC) };
static const char *const gauge_names[] = { ADM_GAUGES(ADM_NAME) };
static const char *const gauge_docs[] = { ADM_GAUGES(ADM_DOC) };
#undef ADM_NAME
#undef ADM_DOC

/* one_row - a table of one row, the u64 array at off, and its fields */
static void
one_row(struct shm_descw *w, const char *table, size_t off,
    const char *const *names, const char *const *docs, unsigned n,
    enum shm_type type, const char *doc)
{
	shm_desc_table(w, "admission", table,
	    &(struct shm_table){ .offset = (uint32_t)off,
		.stride = n * (uint32_t)sizeof(uint64_t),
		.count = 1 },
	    doc);
	shm_desc_u64s(w, table, "", 0, names, docs, n, type, NULL);
}

void
adm_describe(struct shm_descw *w)
{
	shm_desc_table(w, "admission", "adm.dims",
	    &(struct shm_table){ .offset = offsetof(struct adm_area, dims),
		.stride = sizeof(((struct adm_area *)0)->dims[0]),
		.count = ADM_NDIMS,
		.names_off = offsetof(struct adm_area, names),
		.name_size = ADM_NAME_SIZE },
	    "one row per dimension");
#define ADM_DF_DESC(id, name, doc)                                        \
	shm_desc_field(w, "adm.dims", name, ADM_F_##id * sizeof(uint64_t),  \
	    ADM_F_##id == ADM_F_ENFORCE ? SHM_T_FLAG :                    \
	    ADM_F_##id == ADM_F_LIMIT ? SHM_T_U64 :                       \
					  SHM_T_COUNTER,                  \
	    doc);
	ADM_DIM_FIELDS(ADM_DF_DESC)
#undef ADM_DF_DESC
	one_row(w, "adm.counters", offsetof(struct adm_area, counters),
	    counter_names, counter_docs, ADM_NCOUNTERS, SHM_T_COUNTER,
	    "decisions and ticket counters");
	one_row(w, "adm.settings", offsetof(struct adm_area, settings),
	    setting_names, setting_docs, ADM_NSETTINGS, SHM_T_U64,
	    "limits and settings in force");
	one_row(w, "adm.gauges", offsetof(struct adm_area, gauges),
	    gauge_names, gauge_docs, ADM_NGAUGES, SHM_T_GAUGE,
	    "levels, in flight and the writer");
}

void
adm_area_init(struct shm_seg *seg)
{
	struct adm_area *a = adm_area_of(seg);

	assert(seg->writable);
	if (a != NULL)
		describe(a);
}

/* --- users -----------------------------------------------------------------*/

static void
ukey_make(struct adm_ukey *k, const char *user, size_t len)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)user[i]) * 1099511628211ull;
	memset(k, 0, sizeof(*k));
	k->hash = h ? h : 1;
	k->len = (uint16_t)(len > UINT16_MAX ? UINT16_MAX : len);
	memcpy(k->key, user, len < ADM_UKEY ? len : ADM_UKEY);
}

static int
ukey_eq(const struct adm_ukey *a, const struct adm_ukey *b)
{
	return a->hash == b->hash && a->len == b->len &&
	    memcmp(a->key, b->key, ADM_UKEY) == 0;
}

/* user_write - set entry e to k / inflight under its sequence word
 * (k NULL: empty). */
static void
user_write(struct adm_user *e, const struct adm_ukey *k, uint32_t inflight)
{
	uint32_t seq = SHM_LOAD(&e->seq);

	SHM_STORE(&e->seq, seq + 1);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	if (k != NULL) {
		memcpy(e->k.key, k->key, ADM_UKEY);
		SHM_STORE(&e->k.len, k->len);
		SHM_STORE(&e->k.hash, k->hash);
	} else {
		SHM_STORE(&e->k.hash, 0);
		SHM_STORE(&e->k.len, 0);
		memset(e->k.key, 0, ADM_UKEY);
	}
	SHM_STORE(&e->inflight, inflight);
	__atomic_store_n(&e->seq, seq + 2, __ATOMIC_RELEASE);
}

/* user_find - the entry of k, or the empty one where it would go. */
static uint32_t
user_find(const struct adm_area *a, const struct adm_ukey *k)
{
	uint32_t mask = ADM_USERS - 1, i = (uint32_t)k->hash & mask;

	for (uint32_t n = 0; n < ADM_USERS; n++, i = (i + 1) & mask) {
		const struct adm_user *e = &a->users[i];

		if (e->k.hash == 0 || ukey_eq(&e->k, k))
			return i;
	}
	assert(!"admission user table full"); /* twice the tickets */
	return 0;
}

/* user_remove - empty entry i and close the gap behind it. */
static void
user_remove(struct adm_area *a, uint32_t i)
{
	uint32_t mask = ADM_USERS - 1, j = i;

	for (;;) {
		uint32_t home;

		j = (j + 1) & mask;
		if (a->users[j].k.hash == 0)
			break;
		home = (uint32_t)a->users[j].k.hash & mask;
		/* j stays when its home lies cyclically in (i, j] */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		user_write(&a->users[i], &a->users[j].k, a->users[j].inflight);
		i = j;
	}
	user_write(&a->users[i], NULL, 0);
}

/* user_add - one ticket more (delta 1) or less (-1) for user k. */
static void
user_add(struct adm_writer *w, const struct adm_ukey *k, int delta)
{
	struct adm_area *a = w->a;
	uint32_t i = user_find(a, k);
	struct adm_user *e = &a->users[i];
	uint64_t users = SHM_LOAD(&a->gauges[ADM_G_USERS]);

	if (e->k.hash == 0) {
		if (delta < 0)
			return; /* not held: nothing to give back */
		user_write(e, k, 1);
		SHM_STORE(&a->gauges[ADM_G_USERS], users + 1);
	} else if (delta > 0) {
		user_write(e, k, e->inflight + 1);
	} else if (e->inflight > 1) {
		user_write(e, k, e->inflight - 1);
	} else {
		user_remove(a, i);
		SHM_STORE(&a->gauges[ADM_G_USERS], users ? users - 1 : 0);
	}
}

uint32_t
adm_user_inflight(const struct adm_writer *w, const char *user, size_t len)
{
	struct adm_ukey k;
	const struct adm_user *e;

	ukey_make(&k, user, len);
	e = &w->a->users[user_find(w->a, &k)];
	return e->k.hash != 0 ? e->inflight : 0;
}

uint32_t
adm_inflight(const struct adm_writer *w)
{
	return w->nlive;
}

/* --- tickets ---------------------------------------------------------------*/

static void
live_add(struct adm_writer *w, uint32_t slot)
{
	w->pos[slot] = w->nlive;
	w->live[w->nlive++] = slot;
}

static void
live_remove(struct adm_writer *w, uint32_t slot)
{
	uint32_t i = w->pos[slot], last = w->live[--w->nlive];

	w->live[i] = last;
	w->pos[last] = i;
}

static void
set_inflight(struct adm_writer *w)
{
	SHM_STORE(&w->a->gauges[ADM_G_INFLIGHT], (uint64_t)w->nlive);
}

/* free_slot - give a held slot back; counts counter (or nothing: -1). */
static void
free_slot(struct adm_writer *w, uint32_t slot, int counter)
{
	struct adm_ticket *t = &w->a->tickets[slot];

	__atomic_store_n(&t->id, 0, __ATOMIC_RELEASE);
	user_add(w, &t->user, -1);
	live_remove(w, slot);
	w->free[w->nfree++] = slot;
	set_inflight(w);
	if (counter >= 0)
		adm_count(w, (unsigned)counter);
}

uint64_t
adm_take(struct adm_writer *w, const struct adm_take *in)
{
	struct adm_ticket *t;
	uint32_t slot;
	uint64_t gen, id;

	if (w->nfree == 0)
		return 0;
	slot = w->free[--w->nfree];
	t = &w->a->tickets[slot];
	gen = t->gen >= ADM_GEN_MAX ? 1 : t->gen + 1;
	id = gen << ADM_SLOT_BITS | slot;
	SHM_STORE(&t->gen, gen);
	SHM_STORE(&t->stream, in->stream);
	SHM_STORE(&t->issued_at, in->now_ms);
	SHM_STORE(&t->expires_at, in->now_ms + in->ttl_ms);
	SHM_STORE(&t->ingress_pid, in->ingress_pid);
	SHM_STORE(&t->provider_pid, in->provider_pid);
	SHM_STORE(&t->ingress, in->ingress);
	SHM_STORE(&t->provider, in->provider);
	ukey_make(&t->user, in->user, in->user_len);
	__atomic_store_n(&t->id, id, __ATOMIC_RELEASE);
	user_add(w, &t->user, 1);
	live_add(w, slot);
	set_inflight(w);
	return id;
}

/* held - the slot of ticket id when it is held (for stream, unless
 * stream is NULL), else -1. */
static int64_t
held(const struct adm_writer *w, uint64_t id, const uint64_t *stream)
{
	uint32_t slot = ADM_ID_SLOT(id);
	const struct adm_ticket *t;

	if (id == 0 || slot >= ADM_TICKETS)
		return -1;
	t = &w->a->tickets[slot];
	if (t->id != id || (stream != NULL && t->stream != *stream))
		return -1;
	return slot;
}

int
adm_release(struct adm_writer *w, uint64_t id, uint64_t stream)
{
	int64_t slot = held(w, id, &stream);

	if (slot < 0) {
		adm_count(w, ADM_C_STALE_RELEASES);
		return -1;
	}
	free_slot(w, (uint32_t)slot, ADM_C_RELEASED);
	return 0;
}

void
adm_drop(struct adm_writer *w, uint64_t id)
{
	int64_t slot = held(w, id, NULL);

	if (slot >= 0)
		free_slot(w, (uint32_t)slot, -1);
}

/* --- reclaim ----------------------------------------------------------------*/

static void
procs_load(const struct shm_seg *seg, struct procs *p)
{
	memset(p, 0, sizeof(*p));
	for (unsigned s = 1; s < shm_proc_count(seg); s++) {
		const struct shm_proc *e = shm_proc(seg, s);
		uint32_t role = SHM_LOAD(&e->role);
		uint32_t inst = SHM_LOAD(&e->instance);

		if (SHM_LOAD(&e->state) == SHM_STATE_UNUSED ||
		    role >= ROLE_COUNT || inst >= MAX_INSTANCES)
			continue;
		p->pid[role][inst] = SHM_LOAD(&e->pid);
	}
}

/* proc_alive - is the process recorded as (role, inst, pid) still it? */
static int
proc_alive(struct procs *p, unsigned role, unsigned inst, int32_t pid)
{
	uint8_t *a;

	if (inst >= MAX_INSTANCES || pid <= 0 || p->pid[role][inst] != pid)
		return 0;
	a = &p->alive[role][inst];
	if (*a == 0)
		*a = kill(pid, 0) == 0 || errno != ESRCH ? 1 : 2;
	return *a == 1;
}

void
adm_reclaim(struct adm_writer *w, uint64_t now_ms, struct adm_reclaimed *out)
{
	struct procs *p = &w->procs;

	memset(out, 0, sizeof(*out));
	if (w->nlive == 0)
		return;
	procs_load(w->seg, p);
	for (uint32_t i = 0; i < w->nlive;) {
		uint32_t slot = w->live[i];
		const struct adm_ticket *t = &w->a->tickets[slot];

		if (!proc_alive(p, ROLE_INGRESS, t->ingress, t->ingress_pid)) {
			free_slot(w, slot, ADM_C_RECLAIMED_INGRESS);
			out->dead_ingress++;
		} else if (!proc_alive(p, ROLE_PROVIDER, t->provider,
			       t->provider_pid)) {
			free_slot(w, slot, ADM_C_RECLAIMED_PROVIDER);
			out->dead_provider++;
		} else if (t->expires_at <= now_ms) {
			free_slot(w, slot, ADM_C_EXPIRED);
			out->expired++;
		} else {
			i++; /* a freed slot's place takes the last one */
		}
	}
}

/* --- the writer -------------------------------------------------------------*/

/* head_ok - the area was described by this layout. */
static int
head_ok(const struct adm_head *h)
{
	return memcmp(h->magic, ADM_MAGIC, sizeof(h->magic)) == 0 &&
	    h->head_size == sizeof(*h) && h->ndims == ADM_NDIMS &&
	    h->ncounters == ADM_NCOUNTERS && h->ngauges == ADM_NGAUGES &&
	    h->nsettings == ADM_NSETTINGS &&
	    h->ndimfields == ADM_NDIMFIELDS &&
	    h->ticket_size == sizeof(struct adm_ticket) &&
	    h->ticket_capacity == ADM_TICKETS &&
	    h->user_capacity == ADM_USERS;
}

/* rebuild - free list, live list, user table and gauges from the ids. */
static void
rebuild(struct adm_writer *w)
{
	struct adm_area *a = w->a;

	for (uint32_t i = 0; i < ADM_USERS; i++)
		if (a->users[i].k.hash != 0 || a->users[i].inflight != 0)
			user_write(&a->users[i], NULL, 0);
	SHM_STORE(&a->gauges[ADM_G_USERS], 0);
	w->nfree = w->nlive = 0;
	for (uint32_t s = ADM_TICKETS; s-- > 0;) {
		struct adm_ticket *t = &a->tickets[s];
		uint64_t id = t->id;

		if (id != 0 && (ADM_ID_SLOT(id) != s || ADM_ID_GEN(id) == 0))
			SHM_STORE(&t->id, 0); /* not a ticket: never handed out */
		if (t->id == 0) {
			w->free[w->nfree++] = s;
			continue;
		}
		live_add(w, s);
		user_add(w, &t->user, 1);
	}
	set_inflight(w);
}

struct adm_writer *
adm_writer_open(struct shm_seg *seg, uint64_t now_ms)
{
	struct adm_area *a = adm_area_of(seg);
	struct adm_writer *w;

	if (a == NULL || !seg->writable)
		return NULL;
	if (!shm_described(&a->head.described))
		describe(a);
	if (!shm_described(&a->head.described) || !head_ok(&a->head))
		return NULL;
	w = xcalloc(1, sizeof(*w));
	w->seg = seg;
	w->a = a;
	rebuild(w);
	if (a->gauges[ADM_G_WRITER_PID] != 0)
		adm_count(w, ADM_C_RESUMES);
	adm_set_gauge(w, ADM_G_RESUMED_TICKETS, w->nlive);
	adm_set_gauge(w, ADM_G_WRITER_PID, (uint64_t)getpid());
	adm_set_gauge(w, ADM_G_WRITER_STARTED_AT, now_ms);
	adm_set_gauge(w, ADM_G_UPDATED_AT, now_ms);
	return w;
}

void
adm_writer_close(struct adm_writer *w)
{
	free(w);
}

void
adm_set_dim(struct adm_writer *w, unsigned dim, unsigned field, uint64_t v)
{
	assert(dim < ADM_NDIMS && field < ADM_NDIMFIELDS);
	SHM_STORE(&w->a->dims[dim][field], v);
}

void
adm_set_setting(struct adm_writer *w, unsigned setting, uint64_t v)
{
	assert(setting < ADM_NSETTINGS);
	SHM_STORE(&w->a->settings[setting], v);
}

void
adm_set_gauge(struct adm_writer *w, unsigned gauge, uint64_t v)
{
	assert(gauge < ADM_NGAUGES);
	SHM_STORE(&w->a->gauges[gauge], v);
}

uint64_t
adm_gauge(const struct adm_writer *w, unsigned gauge)
{
	assert(gauge < ADM_NGAUGES);
	return SHM_LOAD(&w->a->gauges[gauge]);
}

void
adm_count(struct adm_writer *w, unsigned counter)
{
	assert(counter < ADM_NCOUNTERS);
	SHM_INC(&w->a->counters[counter]);
}

void
adm_count_dim(struct adm_writer *w, unsigned dim, unsigned field)
{
	assert(dim < ADM_NDIMS && field < ADM_NDIMFIELDS);
	SHM_INC(&w->a->dims[dim][field]);
}
