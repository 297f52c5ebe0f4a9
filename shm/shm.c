/*
 * shm - see shm.h.  Lays the segment out from layout.def and writes the
 * descriptor table that readers use to find every field by name.
 */
#include "shm/shm.h"
#include "shm/requests.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/roles.h"
#include "shm/admission.h"
#include "shm/bulkhead.h"
#include "shm/circuit.h"
#include "shm/ratelimit.h"
#include "util/util.h"

#define SHM_PAGE 4096u
#define SHM_MAX_DESC 512u

#define ROUND_PAGE(n) (((n) + SHM_PAGE - 1) / SHM_PAGE * SHM_PAGE)

_Static_assert(sizeof(struct shm_header) <= SHM_PAGE,
    "shm header must fit in the first page");
_Static_assert(SHM_NAREAS <= SHM_MAX_AREAS, "too many shm areas");
_Static_assert(sizeof(struct shm_desc) % 8 == 0, "descriptor padding");
_Static_assert(sizeof(struct shm_table) == sizeof(struct shm_desc) &&
	offsetof(struct shm_table, type) == offsetof(struct shm_desc, type) &&
	offsetof(struct shm_table, doc) == offsetof(struct shm_desc, doc),
    "a table descriptor has the shape of a field descriptor");
_Static_assert(sizeof(struct shm_proc) % 8 == 0, "proc slot padding");
_Static_assert(offsetof(struct shm_proc, counters) % 8 == 0,
    "counters must be 8-byte aligned");
#define SHM_ALIGN_ASSERT(ctype, cname, pub, type, doc)                    \
	_Static_assert(offsetof(struct shm_proc, cname) % sizeof(ctype) == \
		0,                                                        \
	    "shm_proc." #cname " misaligned for atomics");
SHM_PROC_FIELDS(SHM_ALIGN_ASSERT)
#undef SHM_ALIGN_ASSERT

static const char *const state_names[] = {
#define SHM_STATE_NAME(id, name) name,
	SHM_STATES(SHM_STATE_NAME)
#undef SHM_STATE_NAME
};

struct area_def {
	const char *name;
	const char *doc;
};

static const struct area_def area_defs[SHM_NAREAS] = {
#define SHM_AREA_DEF(id, name, doc) { name, doc },
	SHM_AREAS(SHM_AREA_DEF)
#undef SHM_AREA_DEF
};

/* area_size - bytes (before page rounding) of each area in this build. */
static size_t
area_size(enum shm_area_id id, const struct shm_sizes *sz, uint32_t *stride,
    uint32_t *count)
{
	*stride = 0;
	*count = 0;
	switch (id) {
	case SHM_AREA_DESC:
		*stride = sizeof(struct shm_desc);
		*count = SHM_MAX_DESC;
		return (size_t)SHM_MAX_DESC * sizeof(struct shm_desc);
	case SHM_AREA_PROC:
		*stride = sizeof(struct shm_proc);
		*count = SHM_MAX_PROCS;
		return (size_t)SHM_MAX_PROCS * sizeof(struct shm_proc);
	case SHM_AREA_CONFIG:
		return sizeof(struct shm_config) + SHM_CONFIG_MAX;
	case SHM_AREA_RATELIMIT:
		return rl_area_size(sz != NULL ? sz->ratelimit_slots : 0,
		    stride, count);
	case SHM_AREA_CIRCUIT:
		return cb_area_size(stride, count);
	case SHM_AREA_BULKHEAD:
		return bh_area_size(stride, count);
	case SHM_AREA_ADMISSION:
		return adm_area_size(stride, count);
	case SHM_AREA_STORE:
		return sizeof(struct shm_store);
	case SHM_AREA_REQUESTS:
		return rq_area_size(stride, count);
	case SHM_AREA_OUTCALLS:
		return oc_area_size(stride, count);
	case SHM_AREA_TOOLS:
		return tl_area_size(stride, count);
	default:
		(void)sz;
		return 0; /* not used by this version */
	}
}

int
shm_counter_applies(const char *name, const char *role)
{
	const char *dot = strchr(name, '.');
	char prefix[32];

	if (dot == NULL || (size_t)(dot - name) >= sizeof(prefix))
		return 1;
	memcpy(prefix, name, (size_t)(dot - name));
	prefix[dot - name] = '\0';
	return role_by_name(prefix) < 0 || strcmp(prefix, role) == 0;
}

const char *
shm_state_name(unsigned state)
{
	return state < SHM_NSTATES ? state_names[state] : "unknown";
}

int
shm_name_valid(const char *name)
{
	size_t n = strlen(name);

	return n >= 2 && n <= 64 && name[0] == '/' &&
	    strchr(name + 1, '/') == NULL;
}

static void
join_names(char *buf, size_t len, const char *(*name)(unsigned), unsigned n)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < n && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s",
		    i ? "," : "", name(i));
		if (w < 0)
			break;
		used += (size_t)w;
	}
}

static const char *
state_name_fn(unsigned i)
{
	return shm_state_name(i);
}

static const char *
role_name_fn(unsigned i)
{
	return role_name(i);
}

/* desc_next - the next free descriptor of w, zeroed, or NULL (full) */
static struct shm_desc *
desc_next(struct shm_descw *w)
{
	struct shm_desc *e;

	if (w->n >= w->max)
		return NULL;
	e = &w->d[w->n++];
	memset(e, 0, sizeof(*e));
	return e;
}

void
shm_desc_field(struct shm_descw *w, const char *table, const char *name,
    size_t offset, enum shm_type type, const char *doc)
{
	struct shm_desc *e = desc_next(w);

	if (e == NULL)
		return;
	strlcpy_rg(e->area, table, sizeof(e->area));
	strlcpy_rg(e->name, name, sizeof(e->name));
	e->offset = (uint32_t)offset;
	/* the counter tables mark their gauges in the doc */
	if (type == SHM_T_COUNTER && strncmp(doc, "gauge: ", 7) == 0) {
		type = SHM_T_GAUGE;
		doc += 7;
	}
	e->type = type;
	strlcpy_rg(e->doc, doc, sizeof(e->doc));
	if (type == SHM_T_STATE)
		join_names(e->values, sizeof(e->values), state_name_fn,
		    SHM_NSTATES);
	else if (type == SHM_T_ROLE)
		join_names(e->values, sizeof(e->values), role_name_fn,
		    ROLE_COUNT);
}

void
shm_desc_u64s(struct shm_descw *w, const char *table, const char *prefix,
    size_t off, const char *const *names, const char *const *docs,
    unsigned n, enum shm_type type, const char *doc)
{
	char name[sizeof(w->d->name)];

	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s%s", prefix, names[i]);
		shm_desc_field(w, table, name, off + i * sizeof(uint64_t), type,
		    docs != NULL ? docs[i] : doc);
	}
}

void
shm_desc_table(struct shm_descw *w, const char *area, const char *name,
    const struct shm_table *t, const char *doc)
{
	struct shm_desc *e = desc_next(w);
	struct shm_table *te = (struct shm_table *)(void *)e;

	if (e == NULL)
		return;
	*te = *t;
	memset(te->area, 0, sizeof(te->area));
	memset(te->name, 0, sizeof(te->name));
	memset(te->doc, 0, sizeof(te->doc));
	strlcpy_rg(te->area, area, sizeof(te->area));
	strlcpy_rg(te->name, name, sizeof(te->name));
	strlcpy_rg(te->doc, doc, sizeof(te->doc));
	te->type = SHM_T_TABLE;
}

/* fill_descs - the descriptor table: the process table's fields and
 * counters, generated from layout.def, then the tables of the areas. */
static uint32_t
fill_descs(struct shm_desc *d)
{
	struct shm_descw w = { d, 0, SHM_MAX_DESC };

#define DESC_FIELD(ctype, cname, pub, type, doc)                          \
	shm_desc_field(&w, "proc", pub, offsetof(struct shm_proc, cname),  \
	    type, doc);
	SHM_PROC_FIELDS(DESC_FIELD)
#undef DESC_FIELD
	/* the counter structs of other modules: "prefix" #name */
#define DESC_STATS(prefix, member, cname, doc)                            \
	shm_desc_field(&w, "proc", prefix #cname,                         \
	    offsetof(struct shm_proc, counters.member.cname), SHM_T_COUNTER, \
	    doc);
#define DESC_LINK(cname, doc) DESC_STATS("link.", link, cname, doc)
#define DESC_HTTP(cname, doc) DESC_STATS("http.", http, cname, doc)
#define DESC_STORE(cname, doc) DESC_STATS("store.", store, cname, doc)
#define DESC_ALOG(cname, doc) DESC_STATS("ingress.access_", alog, cname, doc)
	LINK_STATS(DESC_LINK)
	HTTPD_STATS(DESC_HTTP)
	STORE_STATS(DESC_STORE)
	ALOG_STATS(DESC_ALOG)
#undef DESC_LINK
#undef DESC_HTTP
#undef DESC_STORE
#undef DESC_ALOG
#undef DESC_STATS
#define DESC_COUNTER(cname, pub, doc)                                     \
	shm_desc_field(&w, "proc", pub,                                   \
	    offsetof(struct shm_proc, counters.cname), SHM_T_COUNTER, doc);
	SHM_PROC_COUNTERS(DESC_COUNTER)
#undef DESC_COUNTER
	rl_describe(&w);
	cb_describe(&w);
	bh_describe(&w);
	adm_describe(&w);
	rq_describe(&w);
	oc_describe(&w);
	tl_describe(&w);
	return w.n;
}

/* owner_alive - is the supervisor recorded in an existing segment alive? */
static int
owner_alive(const char *name)
{
	struct shm_header h;
	int fd = shm_open(name, O_RDONLY, 0);
	ssize_t r;

	if (fd < 0)
		return 0;
	r = pread(fd, &h, sizeof(h), 0);
	close(fd);
	if (r != (ssize_t)sizeof(h) || memcmp(h.magic, SHM_MAGIC, 8) != 0)
		return 0;
	if (h.supervisor_pid <= 0 || h.supervisor_pid == getpid())
		return 0;
	return kill(h.supervisor_pid, 0) == 0 || errno == EPERM;
}

int
shm_create(struct shm_seg *seg, const char *name,
    const struct shm_sizes *sizes, char *err, size_t errlen)
{
	struct shm_header *h;
	uint64_t off;
	size_t total;
	int fd;

	memset(seg, 0, sizeof(*seg));
	if (!shm_name_valid(name)) {
		snprintf(err, errlen,
		    "shm: bad segment name \"%s\" (want /name)", name);
		return -1;
	}
	if (owner_alive(name)) {
		snprintf(err, errlen,
		    "shm: segment %s is in use by a running relgated", name);
		return -1;
	}
	shm_unlink(name); /* stale segment of a dead supervisor */

	total = SHM_PAGE;
	for (int i = 0; i < SHM_NAREAS; i++) {
		uint32_t stride, count;

		total += ROUND_PAGE(area_size(i, sizes, &stride, &count));
	}
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0640);
	if (fd < 0) {
		snprintf(err, errlen, "shm: cannot create %s: %s", name,
		    strerror(errno));
		return -1;
	}
	fchmod(fd, 0640); /* umask must not widen or narrow it */
	if (ftruncate(fd, (off_t)total) != 0) {
		snprintf(err, errlen, "shm: cannot size %s to %zu bytes: %s",
		    name, total, strerror(errno));
		close(fd);
		shm_unlink(name);
		return -1;
	}
	seg->base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
	    0);
	close(fd);
	if (seg->base == MAP_FAILED) {
		snprintf(err, errlen, "shm: cannot map %s: %s", name,
		    strerror(errno));
		seg->base = NULL;
		shm_unlink(name);
		return -1;
	}
	seg->size = total;
	seg->writable = 1;
	h = seg->hdr = seg->base;
	memcpy(h->magic, SHM_MAGIC, 8);
	h->layout_version = SHM_LAYOUT_VERSION;
	h->header_size = sizeof(*h);
	h->size = total;
	h->supervisor_pid = getpid();
	h->started_at = now_ms();
	h->nareas = SHM_NAREAS;
	off = SHM_PAGE;
	for (int i = 0; i < SHM_NAREAS; i++) {
		struct shm_area *a = &h->areas[i];
		size_t sz = area_size(i, sizes, &a->stride, &a->count);

		strlcpy_rg(a->name, area_defs[i].name, sizeof(a->name));
		strlcpy_rg(a->doc, area_defs[i].doc, sizeof(a->doc));
		a->size = sz;
		a->offset = sz ? off : 0;
		off += ROUND_PAGE(sz);
	}
	h->ndesc = fill_descs((struct shm_desc *)((char *)seg->base +
	    h->areas[SHM_AREA_DESC].offset));
	return 0;
}

int
shm_attach(struct shm_seg *seg, const char *name, int writable, char *err,
    size_t errlen)
{
	struct shm_header h;
	struct stat st;
	int fd;

	memset(seg, 0, sizeof(*seg));
	fd = shm_open(name, writable ? O_RDWR : O_RDONLY, 0);
	if (fd < 0) {
		snprintf(err, errlen, "shm: no segment %s: %s", name,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(h) ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		snprintf(err, errlen, "shm: segment %s is not initialised",
		    name);
		close(fd);
		return -1;
	}
	if (memcmp(h.magic, SHM_MAGIC, 8) != 0) {
		snprintf(err, errlen, "shm: segment %s is not a relgate segment",
		    name);
		close(fd);
		return -1;
	}
	if (h.layout_version > SHM_LAYOUT_VERSION ||
	    (writable && h.layout_version != SHM_LAYOUT_VERSION)) {
		snprintf(err, errlen,
		    "shm: segment %s has layout version %u, this build knows "
		    "%u",
		    name, h.layout_version, SHM_LAYOUT_VERSION);
		close(fd);
		return -1;
	}
	if (h.size > (uint64_t)st.st_size || h.size < SHM_PAGE) {
		snprintf(err, errlen,
		    "shm: segment %s size %llu disagrees with its header", name,
		    (unsigned long long)st.st_size);
		close(fd);
		return -1;
	}
	seg->base = mmap(NULL, h.size,
	    writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (seg->base == MAP_FAILED) {
		snprintf(err, errlen, "shm: cannot map %s: %s", name,
		    strerror(errno));
		seg->base = NULL;
		return -1;
	}
	seg->size = h.size;
	seg->writable = writable;
	seg->hdr = seg->base;
	return 0;
}

void
shm_detach(struct shm_seg *seg)
{
	if (seg->base != NULL)
		munmap(seg->base, seg->size);
	memset(seg, 0, sizeof(*seg));
}

int
shm_remove(const char *name)
{
	return shm_unlink(name);
}

void
shm_publish_ready(struct shm_seg *seg)
{
	__atomic_store_n(&seg->hdr->ready, 1, __ATOMIC_RELEASE);
}

int
shm_is_ready(const struct shm_seg *seg)
{
	return __atomic_load_n(&seg->hdr->ready, __ATOMIC_ACQUIRE) == 1;
}

const struct shm_area *
shm_area(const struct shm_seg *seg, enum shm_area_id id)
{
	if ((unsigned)id >= seg->hdr->nareas || (unsigned)id >= SHM_MAX_AREAS)
		return NULL;
	return &seg->hdr->areas[id];
}

const struct shm_area *
shm_area_by_name(const struct shm_seg *seg, const char *name)
{
	uint32_t n = seg->hdr->nareas;

	for (uint32_t i = 0; i < n && i < SHM_MAX_AREAS; i++)
		if (strncmp(seg->hdr->areas[i].name, name,
			sizeof(seg->hdr->areas[i].name)) == 0)
			return &seg->hdr->areas[i];
	return NULL;
}

const struct shm_desc *
shm_descs(const struct shm_seg *seg, size_t *n)
{
	const struct shm_area *a = shm_area_by_name(seg, "desc");

	if (a == NULL || a->offset + a->size > seg->size) {
		*n = 0;
		return NULL;
	}
	*n = seg->hdr->ndesc;
	if (*n > a->count)
		*n = a->count;
	return (const struct shm_desc *)((const char *)seg->base + a->offset);
}

const struct shm_table *
shm_table(const struct shm_seg *seg, const char *name)
{
	size_t n;
	const struct shm_desc *d = shm_descs(seg, &n);

	for (size_t i = 0; i < n; i++)
		if (d[i].type == SHM_T_TABLE &&
		    strncmp(d[i].name, name, sizeof(d[i].name)) == 0)
			return (const struct shm_table *)(const void *)&d[i];
	return NULL;
}

struct shm_proc *
shm_proc(const struct shm_seg *seg, unsigned slot)
{
	const struct shm_area *a = &seg->hdr->areas[SHM_AREA_PROC];

	if (slot >= a->count)
		return NULL;
	return (struct shm_proc *)((char *)seg->base + a->offset +
	    (size_t)slot * a->stride);
}

unsigned
shm_proc_count(const struct shm_seg *seg)
{
	return seg->hdr->areas[SHM_AREA_PROC].count;
}

int32_t
shm_proc_pid(const struct shm_seg *seg, unsigned role, unsigned instance)
{
	for (unsigned s = 1; s < shm_proc_count(seg); s++) {
		const struct shm_proc *p = shm_proc(seg, s);

		if (SHM_LOAD(&p->state) != SHM_STATE_UNUSED &&
		    SHM_LOAD(&p->role) == role &&
		    SHM_LOAD(&p->instance) == instance)
			return SHM_LOAD(&p->pid);
	}
	return 0;
}

static struct shm_config *
config_area(const struct shm_seg *seg)
{
	const struct shm_area *a = &seg->hdr->areas[SHM_AREA_CONFIG];

	return (struct shm_config *)((char *)seg->base + a->offset);
}

int
shm_config_publish(struct shm_seg *seg, const char *json, uint64_t gen)
{
	struct shm_config *c = config_area(seg);
	size_t n = strlen(json);
	uint64_t seq;

	if (n + 1 > SHM_CONFIG_MAX)
		return -1;
	seq = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&c->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(c->json, json, n + 1);
	c->len = (uint32_t)n;
	c->gen = gen;
	__atomic_store_n(&c->seq, seq + 2, __ATOMIC_RELEASE);
	__atomic_store_n(&seg->hdr->config_gen, gen, __ATOMIC_RELEASE);
	return 0;
}

int
shm_config_read(const struct shm_seg *seg, char *buf, size_t len,
    uint64_t *gen)
{
	const struct shm_config *c = config_area(seg);

	for (int tries = 0; tries < 1000; tries++) {
		uint64_t s1 = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
		uint32_t n;

		if (s1 & 1)
			continue;
		n = c->len;
		if (n >= len || n >= SHM_CONFIG_MAX)
			return -1;
		memcpy(buf, c->json, n);
		buf[n] = '\0';
		if (gen != NULL)
			*gen = c->gen;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&c->seq, __ATOMIC_RELAXED) == s1)
			return 0;
	}
	return -1;
}

int
shm_describe_begin(uint32_t *described)
{
	uint32_t expect = 0;

	return !shm_described(described) &&
	    __atomic_compare_exchange_n(described, &expect, 1, 0,
		__ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

void
shm_describe_end(uint32_t *described)
{
	__atomic_store_n(described, 2, __ATOMIC_RELEASE);
}

int
shm_described(const uint32_t *described)
{
	return __atomic_load_n(described, __ATOMIC_ACQUIRE) == 2;
}

uint32_t *
shm_store_turns(const struct shm_seg *seg)
{
	const struct shm_area *a = shm_area(seg, SHM_AREA_STORE);

	if (a == NULL || a->size < sizeof(struct shm_store))
		return NULL;
	return &((struct shm_store *)((char *)seg->base + a->offset))
		    ->writers_waiting;
}

const char *
shm_exit_str(int32_t status, char *buf, size_t len)
{
	if (status < 0)
		return NULL;
	if (WIFEXITED(status))
		snprintf(buf, len, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "signal %d (%s)", WTERMSIG(status),
		    sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(
			WTERMSIG(status)) : "?");
	else
		snprintf(buf, len, "status %d", status);
	return buf;
}
