/*
 * requests - the "requests" area: what each ingress answered, per route
 * (shm/layout.def: RQ_*).  Counted once per request when it is over
 * (http/server on_done), read by the monitor (/metrics) and relstat.
 *
 * Owns: the blocks of the area, one per ingress instance, and their route
 * names.  A block has one writer (its ingress; a restarted one carries on
 * its counts), so counting is a relaxed load and store, no locked
 * instruction; readers may see a row a few requests behind.
 */
#ifndef RG_REQUESTS_H
#define RG_REQUESTS_H

#include <stddef.h>
#include <stdint.h>

#include "gate/errors.h"
#include "shm/layout.def"
#include "shm/shm.h"

enum rq_class {
#define RQ_CLASS_ENUM(id, name) RQ_##id,
	RQ_CLASSES(RQ_CLASS_ENUM)
#undef RQ_CLASS_ENUM
	RQ_NCLASSES
};

enum {
#define RQ_BUCKET_COUNT(us, le) +1
	RQ_NBUCKETS = 0 RQ_BUCKETS(RQ_BUCKET_COUNT) /* and +Inf */
#undef RQ_BUCKET_COUNT
};

struct rq_row {
	char name[RQ_NAME_SIZE]; /* the route's path; "" = unused row */
	uint64_t classes[RQ_NCLASSES];
	uint64_t codes[RG_E_COUNT];          /* classified error answers */
	uint64_t buckets[RQ_NBUCKETS + 1];   /* not cumulative; last +Inf */
	uint64_t sum_us;                     /* of every bucketed answer */
	uint64_t bytes;                      /* of every answer */
};

struct rq_block {
	int32_t pid;       /* the ingress writing here (0: never) */
	uint32_t nroutes;  /* rows in use, row 0 included */
	uint64_t pad[7];
	struct rq_row row[RQ_MAX_ROUTES];
};

enum oc_outcome {
#define OC_OUTCOME_ENUM(id, name) OC_##id,
	OC_OUTCOMES(OC_OUTCOME_ENUM)
#undef OC_OUTCOME_ENUM
	OC_NOUTCOMES
};

enum oc_verdict {
#define OC_VERDICT_ENUM(id, name) OC_V_##id,
	OC_VERDICTS(OC_VERDICT_ENUM)
#undef OC_VERDICT_ENUM
	OC_NVERDICTS
};

struct oc_row {
	uint64_t outcomes[OC_NOUTCOMES]; /* per attempt */
	uint64_t verdicts[OC_NVERDICTS]; /* per call */
	uint64_t buckets[RQ_NBUCKETS + 1];
	uint64_t sum_us;
};

struct oc_block {
	int32_t pid;      /* the last process that wrote here (0: never) */
	uint32_t pad0;
	uint64_t pad[7];
	struct oc_row row[OC_MAX_PROVIDERS];
};

/* rq_area_size - bytes of the area; sets stride and count for shm. */
size_t rq_area_size(uint32_t *stride, uint32_t *count);
/* rq_block - the block of ingress instance; NULL if out of range or the
 * segment has no such area. */
struct rq_block *rq_block(const struct shm_seg *seg, unsigned instance);
/* rq_bucket_us - upper bound of bucket i (UINT64_MAX for +Inf). */
uint64_t rq_bucket_us(unsigned i);
/* rq_bucket_le - its Prometheus le ("0.001", "+Inf"). */
const char *rq_bucket_le(unsigned i);
const char *rq_class_name(unsigned c);
/* rq_quantile_us - the q-quantile (0..1) of a row's buckets, estimated
 * linearly within its bucket as Prometheus's histogram_quantile does
 * (the +Inf bucket gives the last finite bound); 0 when empty. */
double rq_quantile_us(const uint64_t *buckets, double q);
/* rq_code_name - the error code of index e (gate/errors.def). */
const char *rq_code_name(unsigned e);

/* oc_area_size - bytes of the outcalls area; sets stride and count. */
size_t oc_area_size(uint32_t *stride, uint32_t *count);
/* The outcalls area ends with the providers' names (OC_NAME_SIZE each),
 * which oc_area_init writes, so readers name the rows by the segment. */
#define OC_NAME_SIZE 32
void oc_area_init(struct shm_seg *seg);
/* rq_describe, oc_describe - the tables "requests" (a row per route, in
 * every ingress's block, summed by name) and "outcalls" (a row per
 * provider, in every process's block) for the descriptor table. */
struct shm_descw;
void rq_describe(struct shm_descw *w);
void oc_describe(struct shm_descw *w);
/* oc_block - the block of process-table slot; NULL if out of range or
 * the segment has no such area.  oc_claim: the same, marked as pid's. */
struct oc_block *oc_block(const struct shm_seg *seg, unsigned slot);
struct oc_block *oc_claim(const struct shm_seg *seg, unsigned slot,
    int32_t pid);
/*
 * oc_attempt - one attempt to provider is over: its outcome is the
 * status class of its answer (status 200..599), else failure; head says
 * whether an answer's head came (even one cut off later), head_us how
 * long after the attempt began.
 * oc_verdict - one call is over (enum oc_verdict).  b may be NULL.
 */
void oc_attempt(struct oc_block *b, unsigned provider, int status,
    enum oc_outcome failure, int head, uint64_t head_us);
void oc_verdict(struct oc_block *b, unsigned provider, unsigned verdict);
const char *oc_outcome_name(unsigned o);
const char *oc_verdict_name(unsigned v);

/* --- the tools area (shm/layout.def TL_*) -------------------------------*/

enum tl_field {
#define TL_FIELD_ENUM(id, name, type, doc) TL_##id,
	TL_FIELDS(TL_FIELD_ENUM)
#undef TL_FIELD_ENUM
	TL_NFIELDS
};

struct tl_row {
	char name[TL_NAME_SIZE]; /* the tool's name; "" = unused row */
	uint64_t v[TL_NFIELDS];
};

enum {
#define TL_CLASS_COUNT(id, name) +1
	TL_NCLASSES = 0 TL_CLASSES(TL_CLASS_COUNT)
#undef TL_CLASS_COUNT
};

/* A QoS class's gauges (the monitor's block). */
struct tl_class {
	char name[16];
	uint64_t queued, running;
	uint64_t oldest_queued_ms; /* the oldest due job's wait; 0: none */
	uint64_t oldest_running_ms; /* the oldest running job's age */
};

struct tl_block {
	int32_t pid;   /* the process writing here (0: never) */
	uint32_t pad0;
	uint64_t pad[7];
	struct tl_row row[TL_MAX_TOOLS];
	struct tl_class cls[TL_NCLASSES];
};

size_t tl_area_size(uint32_t *stride, uint32_t *count);
void tl_describe(struct shm_descw *w);
/* tl_claim - the block of process-table slot marked as pid's (NULL if
 * out of range or the segment has no such area). */
struct tl_block *tl_claim(const struct shm_seg *seg, unsigned slot,
    int32_t pid);
/* tl_tools - the writer, at start and reload: rows 0..n-1 named; a row
 * whose name changed starts from zero, rows past n are cleared. */
void tl_tools(struct tl_block *b, const char *const *names, unsigned n);
/* tl_find - the row of tool name (-1: none, or b NULL). */
int tl_find(const struct tl_block *b, const char *name);
/* tl_add - field f of row i grows by n; tl_set - a gauge's value.  Out of
 * range (or b NULL): nothing. */
void tl_add(struct tl_block *b, int i, enum tl_field f, uint64_t n);
void tl_set(struct tl_block *b, int i, enum tl_field f, uint64_t v);
/* tl_count - field f of tool name's row grows by one (no such row:
 * nothing). */
void tl_count(struct tl_block *b, const char *name, enum tl_field f);
/* tl_class - the gauges of class c (its row named on the way). */
void tl_class(struct tl_block *b, unsigned c, uint64_t queued,
    uint64_t running, uint64_t oldest_queued_ms, uint64_t oldest_running_ms);
const char *tl_class_name(unsigned c);

/*
 * rq_routes - the writer, at start: rows 0..n-1 named (row 0 is
 * "unmatched"); a row whose name changed starts again from zero, rows
 * past n are cleared.  n is capped at RQ_MAX_ROUTES.
 */
void rq_routes(struct rq_block *b, const char *const *names, unsigned n,
    int32_t pid);

/*
 * rq_count - one request is over: status (0: no answer), its classified
 * error (-1: none), the time to its answer's head and the answer's
 * bytes.  A route out of range counts as row 0.
 */
void rq_count(struct rq_block *b, unsigned route, int status, int code,
    uint64_t answer_us, uint64_t bytes);

#endif
