/*
 * requests - per-route answer counters of the ingress processes.
 */
#include "shm/requests.h"

#include <stddef.h>
#include <string.h>

#include "shm/circuit.h"
#include "util/util.h"

static const uint64_t bucket_us[RQ_NBUCKETS] = {
#define RQ_BUCKET_US(us, le) us,
	RQ_BUCKETS(RQ_BUCKET_US)
#undef RQ_BUCKET_US
};

static const char *const bucket_le[RQ_NBUCKETS + 1] = {
#define RQ_BUCKET_LE(us, le) le,
	RQ_BUCKETS(RQ_BUCKET_LE)
#undef RQ_BUCKET_LE
	"+Inf",
};

static const char *const code_names[RG_E_COUNT] = {
#define RQ_CODE_NAME(id, code, status, msg) code,
	RG_ERRORS(RQ_CODE_NAME)
#undef RQ_CODE_NAME
};

static const char *const class_names[RQ_NCLASSES] = {
#define RQ_CLASS_NAME(id, name) name,
	RQ_CLASSES(RQ_CLASS_NAME)
#undef RQ_CLASS_NAME
};

static const char *const oc_outcome_names[OC_NOUTCOMES] = {
#define OC_OUTCOME_NAME(id, name) name,
	OC_OUTCOMES(OC_OUTCOME_NAME)
#undef OC_OUTCOME_NAME
};

static const char *const oc_verdict_names[OC_NVERDICTS] = {
#define OC_VERDICT_NAME(id, name) name,
	OC_VERDICTS(OC_VERDICT_NAME)
#undef OC_VERDICT_NAME
};

_Static_assert(sizeof(struct rq_row) % 8 == 0, "row padding");
_Static_assert(sizeof(struct oc_row) % 8 == 0, "row padding");

size_t
rq_area_size(uint32_t *stride, uint32_t *count)
{
	*stride = sizeof(struct rq_block);
	*count = RQ_MAX_INSTANCES;
	return (size_t)RQ_MAX_INSTANCES * sizeof(struct rq_block);
}

/* block_at - block i of an array area of blocks of size bytes; NULL when
 * the area has no such block */
static void *
block_at(const struct shm_seg *seg, enum shm_area_id id, unsigned i,
    size_t size)
{
	const struct shm_area *a = shm_area(seg, id);

	if (a == NULL || a->size < ((size_t)i + 1) * size)
		return NULL;
	return (char *)seg->base + a->offset + (size_t)i * size;
}

struct rq_block *
rq_block(const struct shm_seg *seg, unsigned instance)
{
	return instance < RQ_MAX_INSTANCES ?
	    block_at(seg, SHM_AREA_REQUESTS, instance, sizeof(struct rq_block)) :
	    NULL;
}

uint64_t
rq_bucket_us(unsigned i)
{
	return i < RQ_NBUCKETS ? bucket_us[i] : UINT64_MAX;
}

const char *
rq_bucket_le(unsigned i)
{
	return i <= RQ_NBUCKETS ? bucket_le[i] : "+Inf";
}

double
rq_quantile_us(const uint64_t *buckets, double q)
{
	uint64_t total = 0, cum = 0;
	double rank;

	for (unsigned i = 0; i <= RQ_NBUCKETS; i++)
		total += buckets[i];
	if (total == 0)
		return 0;
	rank = q * (double)total;
	for (unsigned i = 0; i < RQ_NBUCKETS; i++) {
		double lo = i ? (double)bucket_us[i - 1] : 0;

		if ((double)(cum + buckets[i]) >= rank && buckets[i] > 0)
			return lo + ((double)bucket_us[i] - lo) *
			    (rank - (double)cum) / (double)buckets[i];
		cum += buckets[i];
	}
	return (double)bucket_us[RQ_NBUCKETS - 1];
}

const char *
rq_code_name(unsigned e)
{
	return e < RG_E_COUNT ? code_names[e] : "unknown";
}

const char *
rq_class_name(unsigned c)
{
	return c < RQ_NCLASSES ? class_names[c] : "none";
}

void
rq_routes(struct rq_block *b, const char *const *names, unsigned n,
    int32_t pid)
{
	if (n > RQ_MAX_ROUTES)
		n = RQ_MAX_ROUTES;
	for (unsigned i = 0; i < RQ_MAX_ROUTES; i++) {
		struct rq_row *r = &b->row[i];
		char want[RQ_NAME_SIZE] = "";

		if (i < n)
			strlcpy_rg(want, names[i], sizeof(want));
		if (strcmp(r->name, want) != 0) {
			/* another route now: its counts start from zero */
			memset(r, 0, sizeof(*r));
			memcpy(r->name, want, sizeof(r->name));
		}
	}
	SHM_STORE(&b->nroutes, n);
	SHM_STORE(&b->pid, pid);
}

/* bump - the block's only writer adds: no locked instruction needed */
#define BUMP(p, n) SHM_STORE((p), SHM_LOAD(p) + (n))

/* bucket_of - the bucket of a time */
static unsigned
bucket_of(uint64_t us)
{
	unsigned i = 0;

	while (i < RQ_NBUCKETS && us > bucket_us[i])
		i++;
	return i;
}

/* the providers' names after the blocks of the outcalls area */
#define OC_NAMES_OFF ((size_t)SHM_MAX_PROCS * sizeof(struct oc_block))

size_t
oc_area_size(uint32_t *stride, uint32_t *count)
{
	*stride = sizeof(struct oc_block);
	*count = SHM_MAX_PROCS;
	return OC_NAMES_OFF + (size_t)OC_MAX_PROVIDERS * OC_NAME_SIZE;
}

void
oc_area_init(struct shm_seg *seg)
{
	const struct shm_area *a = shm_area(seg, SHM_AREA_OUTCALLS);
	char *names;

	if (a == NULL || a->size < OC_NAMES_OFF + (size_t)CB_NPROVIDERS *
					  OC_NAME_SIZE)
		return;
	names = (char *)seg->base + a->offset + OC_NAMES_OFF;
	for (unsigned p = 0; p < CB_NPROVIDERS; p++)
		strlcpy_rg(names + (size_t)p * OC_NAME_SIZE,
		    cb_provider_name(p), OC_NAME_SIZE);
}

void
rq_describe(struct shm_descw *w)
{
	shm_desc_table(w, "requests", "requests",
	    &(struct shm_table){ .offset = offsetof(struct rq_block, row),
		.stride = sizeof(struct rq_row),
		.count = RQ_MAX_ROUTES,
		.names_off = offsetof(struct rq_row, name),
		.name_size = RQ_NAME_SIZE,
		.copies = RQ_MAX_INSTANCES,
		.copy_stride = sizeof(struct rq_block),
		.flags = SHM_TF_NAME_IN_ROW | SHM_TF_COPY_LIVE,
		.live_off = offsetof(struct rq_block, pid) },
	    "answers per route of every ingress (summed by route)");
	shm_desc_u64s(w, "requests", "classes.",
	    offsetof(struct rq_row, classes), class_names, NULL, RQ_NCLASSES,
	    SHM_T_COUNTER, "answers of this status class");
	shm_desc_u64s(w, "requests", "codes.", offsetof(struct rq_row, codes),
	    code_names, NULL, RG_E_COUNT, SHM_T_COUNTER,
	    "answers with this error code");
	shm_desc_u64s(w, "requests", "buckets.",
	    offsetof(struct rq_row, buckets), bucket_le, NULL,
	    RQ_NBUCKETS + 1, SHM_T_COUNTER,
	    "answers whose head came by this bound (not cumulative)");
	shm_desc_field(w, "requests", "sumUs", offsetof(struct rq_row, sum_us),
	    SHM_T_COUNTER, "us to the answers' heads, added up");
	shm_desc_field(w, "requests", "bytes", offsetof(struct rq_row, bytes),
	    SHM_T_COUNTER, "bytes of the answers");
}

void
oc_describe(struct shm_descw *w)
{
	shm_desc_table(w, "outcalls", "outcalls",
	    &(struct shm_table){ .offset = offsetof(struct oc_block, row),
		.stride = sizeof(struct oc_row),
		.count = CB_NPROVIDERS,
		.names_off = (uint32_t)OC_NAMES_OFF,
		.name_size = OC_NAME_SIZE,
		.copies = SHM_MAX_PROCS,
		.copy_stride = sizeof(struct oc_block),
		.flags = SHM_TF_COPY_LIVE | SHM_TF_SKIP_ZERO,
		.live_off = offsetof(struct oc_block, pid) },
	    "outbound calls per provider of every process (summed)");
	shm_desc_u64s(w, "outcalls", "attempts.",
	    offsetof(struct oc_row, outcomes), oc_outcome_names, NULL,
	    OC_NOUTCOMES, SHM_T_COUNTER, "attempts with this outcome");
	shm_desc_u64s(w, "outcalls", "calls.",
	    offsetof(struct oc_row, verdicts), oc_verdict_names, NULL,
	    OC_NVERDICTS, SHM_T_COUNTER, "calls with this verdict");
	shm_desc_u64s(w, "outcalls", "buckets.",
	    offsetof(struct oc_row, buckets), bucket_le, NULL, RQ_NBUCKETS + 1,
	    SHM_T_COUNTER,
	    "attempts whose answer's head came by this bound");
	shm_desc_field(w, "outcalls", "sumUs", offsetof(struct oc_row, sum_us),
	    SHM_T_COUNTER, "us to the answers' heads, added up");
}

struct oc_block *
oc_block(const struct shm_seg *seg, unsigned slot)
{
	return slot < SHM_MAX_PROCS ?
	    block_at(seg, SHM_AREA_OUTCALLS, slot, sizeof(struct oc_block)) :
	    NULL;
}

struct oc_block *
oc_claim(const struct shm_seg *seg, unsigned slot, int32_t pid)
{
	struct oc_block *b = oc_block(seg, slot);

	if (b != NULL)
		SHM_STORE(&b->pid, pid);
	return b;
}

void
oc_attempt(struct oc_block *b, unsigned provider, int status,
    enum oc_outcome failure, int head, uint64_t head_us)
{
	struct oc_row *r;
	unsigned o = (unsigned)failure;

	if (b == NULL || provider >= OC_MAX_PROVIDERS)
		return;
	r = &b->row[provider];
	if (status >= 200 && status <= 599)
		o = status < 300 ? OC_C2XX : status < 400 ? OC_C3XX :
		    status < 500 ? OC_C4XX : OC_C5XX;
	if (o < OC_NOUTCOMES)
		BUMP(&r->outcomes[o], 1);
	if (head) {
		BUMP(&r->buckets[bucket_of(head_us)], 1);
		BUMP(&r->sum_us, head_us);
	}
}

void
oc_verdict(struct oc_block *b, unsigned provider, unsigned verdict)
{
	if (b != NULL && provider < OC_MAX_PROVIDERS && verdict < OC_NVERDICTS)
		BUMP(&b->row[provider].verdicts[verdict], 1);
}

const char *
oc_outcome_name(unsigned o)
{
	return o < OC_NOUTCOMES ? oc_outcome_names[o] : "unknown";
}

const char *
oc_verdict_name(unsigned v)
{
	return v < OC_NVERDICTS ? oc_verdict_names[v] : "unknown";
}

void
rq_count(struct rq_block *b, unsigned route, int status, int code,
    uint64_t answer_us, uint64_t bytes)
{
	struct rq_row *r;
	unsigned cls = status >= 100 && status < 600 ? (unsigned)status / 100
	                                             : RQ_NONE;

	if (b == NULL)
		return;
	r = &b->row[route < RQ_MAX_ROUTES ? route : 0];
	BUMP(&r->classes[cls], 1);
	if (code >= 0 && code < RG_E_COUNT)
		BUMP(&r->codes[code], 1);
	if (status == 0)
		return;
	BUMP(&r->buckets[bucket_of(answer_us)], 1);
	BUMP(&r->sum_us, answer_us);
	BUMP(&r->bytes, bytes);
}

/* --- the tools area ---------------------------------------------------------*/

static const char *const tl_names[] = {
#define TL_NAME(id, name, type, doc) name,
	TL_FIELDS(TL_NAME)
#undef TL_NAME
};
static const char *const tl_docs[] = {
#define TL_DOC(id, name, type, doc) doc,
	TL_FIELDS(TL_DOC)
#undef TL_DOC
};
static const enum shm_type tl_types[] = {
#define TL_TYPE(id, name, type, doc) SHM_T_##type,
	TL_FIELDS(TL_TYPE)
#undef TL_TYPE
};

static const char *const tl_class_names[] = {
#define TL_CLASS_NAME(id, name) name,
	TL_CLASSES(TL_CLASS_NAME)
#undef TL_CLASS_NAME
};

const char *
tl_class_name(unsigned c)
{
	return c < TL_NCLASSES ? tl_class_names[c] : "unknown";
}

void
tl_class(struct tl_block *b, unsigned c, uint64_t queued, uint64_t running,
    uint64_t oldest_queued_ms, uint64_t oldest_running_ms)
{
	struct tl_class *k;

	if (b == NULL || c >= TL_NCLASSES)
		return;
	k = &b->cls[c];
	if (strcmp(k->name, tl_class_names[c]) != 0)
		strlcpy_rg(k->name, tl_class_names[c], sizeof(k->name));
	SHM_STORE(&k->queued, queued);
	SHM_STORE(&k->running, running);
	SHM_STORE(&k->oldest_queued_ms, oldest_queued_ms);
	SHM_STORE(&k->oldest_running_ms, oldest_running_ms);
}

size_t
tl_area_size(uint32_t *stride, uint32_t *count)
{
	*stride = sizeof(struct tl_block);
	*count = SHM_MAX_PROCS;
	return (size_t)SHM_MAX_PROCS * sizeof(struct tl_block);
}

void
tl_describe(struct shm_descw *w)
{
	shm_desc_table(w, "tools", "tools",
	    &(struct shm_table){ .offset = offsetof(struct tl_block, row),
		.stride = sizeof(struct tl_row),
		.count = TL_MAX_TOOLS,
		.names_off = offsetof(struct tl_row, name),
		.name_size = TL_NAME_SIZE,
		.copies = SHM_MAX_PROCS,
		.copy_stride = sizeof(struct tl_block),
		.flags = SHM_TF_NAME_IN_ROW | SHM_TF_COPY_LIVE |
		    SHM_TF_SKIP_ZERO,
		.live_off = offsetof(struct tl_block, pid) },
	    "calls, cache and jobs per tool of every process (summed)");
	for (unsigned f = 0; f < TL_NFIELDS; f++)
		shm_desc_field(w, "tools", tl_names[f],
		    offsetof(struct tl_row, v) + f * sizeof(uint64_t),
		    tl_types[f], tl_docs[f]);
	shm_desc_table(w, "tools", "toolClasses",
	    &(struct shm_table){ .offset = offsetof(struct tl_block, cls),
		.stride = sizeof(struct tl_class),
		.count = TL_NCLASSES,
		.names_off = offsetof(struct tl_class, name),
		.name_size = sizeof(((struct tl_class *)0)->name),
		.copies = SHM_MAX_PROCS,
		.copy_stride = sizeof(struct tl_block),
		.flags = SHM_TF_NAME_IN_ROW | SHM_TF_COPY_LIVE |
		    SHM_TF_SKIP_ZERO,
		.live_off = offsetof(struct tl_block, pid) },
	    "tool jobs per QoS class, set by the monitor");
	shm_desc_field(w, "toolClasses", "queued",
	    offsetof(struct tl_class, queued), SHM_T_GAUGE, "jobs queued now");
	shm_desc_field(w, "toolClasses", "running",
	    offsetof(struct tl_class, running), SHM_T_GAUGE,
	    "jobs running now");
	shm_desc_field(w, "toolClasses", "oldestQueuedAgeMs",
	    offsetof(struct tl_class, oldest_queued_ms), SHM_T_GAUGE,
	    "wait so far of the oldest due job (0: none)");
	shm_desc_field(w, "toolClasses", "oldestRunningAgeMs",
	    offsetof(struct tl_class, oldest_running_ms), SHM_T_GAUGE,
	    "age of the oldest running job (0: none)");
}

struct tl_block *
tl_claim(const struct shm_seg *seg, unsigned slot, int32_t pid)
{
	struct tl_block *b = slot < SHM_MAX_PROCS ?
	    block_at(seg, SHM_AREA_TOOLS, slot, sizeof(struct tl_block)) :
	    NULL;

	if (b != NULL)
		SHM_STORE(&b->pid, pid);
	return b;
}

void
tl_tools(struct tl_block *b, const char *const *names, unsigned n)
{
	if (b == NULL)
		return;
	if (n > TL_MAX_TOOLS)
		n = TL_MAX_TOOLS;
	for (unsigned i = 0; i < TL_MAX_TOOLS; i++) {
		struct tl_row *r = &b->row[i];
		char want[TL_NAME_SIZE] = "";

		if (i < n)
			strlcpy_rg(want, names[i], sizeof(want));
		if (strcmp(r->name, want) != 0) {
			memset(r, 0, sizeof(*r));
			memcpy(r->name, want, sizeof(r->name));
		}
	}
}

int
tl_find(const struct tl_block *b, const char *name)
{
	for (unsigned i = 0; b != NULL && i < TL_MAX_TOOLS &&
	     b->row[i].name[0] != '\0'; i++)
		if (strcmp(b->row[i].name, name) == 0)
			return (int)i;
	return -1;
}

void
tl_add(struct tl_block *b, int i, enum tl_field f, uint64_t n)
{
	if (b != NULL && i >= 0 && i < TL_MAX_TOOLS && f < TL_NFIELDS)
		BUMP(&b->row[i].v[f], n);
}

void
tl_count(struct tl_block *b, const char *name, enum tl_field f)
{
	tl_add(b, tl_find(b, name), f, 1);
}

void
tl_set(struct tl_block *b, int i, enum tl_field f, uint64_t v)
{
	if (b != NULL && i >= 0 && i < TL_MAX_TOOLS && f < TL_NFIELDS)
		SHM_STORE(&b->row[i].v[f], v);
}
