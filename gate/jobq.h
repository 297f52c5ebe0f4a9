/*
 * jobq - the durable queue of tool jobs (SPEC section 7) on the LMDB
 * tables jobs (id -> JSON row, and the row "#counts") and jobs_ready (an
 * index of keys without values):
 *   'Q' + class digit + 8-byte big-endian due time + id   a queued job
 *   'R' + 8-byte big-endian end of its lease + id         a running job
 *
 * A claim first queues again the running jobs whose lease has ended (a
 * worker that died, or hung), then takes queued jobs due by now:
 * realtime before interactive before batch, the earliest due first,
 * looking at no more than claim_scan candidates and passing over those
 * whose tool or class is at its running cap.  Every claim is an attempt.
 * A failed attempt is queued again after retry_base_ms * 2^(attempts-1)
 * (at most JOBQ_BACKOFF_MAX_MS) plus up to a quarter of that as jitter,
 * or becomes a dead letter once max_attempts were made; a dead letter
 * stays until it is requeued (attempts start again) or its TTL passes.
 * The counts per tool (queued, running, dead) and per class (queued,
 * running) live in the row "#counts", changed in the same transaction
 * as the rows: a cap is checked without a scan, and two processes
 * claiming at once cannot both take the last place (LMDB serialises
 * write transactions).
 *
 * Rows (JSON, for relctl): {id, tool, qos, args, state: queued|running|
 * dead, attempts, createdAt, queuedAt, dueAt, owner, leasedAt,
 * leaseUntil, lastError, deadLetterReason, deadAt, requestId}.  A row
 * leaves the table when its job completed, or when a dead letter is older
 * than dlq_ttl_ms; a job queued (or requeued) longer than ttl_ms ago and
 * not done becomes a dead letter ("expired").  The end of an attempt
 * (complete, fail) names the owner and the attempt: a worker whose lease
 * ran out and whose job another worker took cannot end that one's
 * attempt.
 *
 * The transaction functions act only through txn (they may run twice,
 * see store.h); the others read with their own read transaction.
 */
#ifndef RG_JOBQ_H
#define RG_JOBQ_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

#define JOBQ_ID_LEN 32
#define JOBQ_TOOL_MAX 64             /* a tool's name, with its NUL */
#define JOBQ_QKEY_LEN (2 + 8 + JOBQ_ID_LEN)
#define JOBQ_RKEY_LEN (1 + 8 + JOBQ_ID_LEN)
#define JOBQ_BACKOFF_MAX_MS 600000u  /* a retry waits at most this (+jitter) */
#define JOBQ_SATURATED 2             /* enqueue: the tool's queue is full */

/* QoS classes in claim order: JOBQ_QOS(ID, name). */
#define JOBQ_QOS(Q)                                                       \
	Q(REALTIME, "realtime")                                           \
	Q(INTERACTIVE, "interactive")                                     \
	Q(BATCH, "batch")

enum jobq_qos {
#define JOBQ_QOS_ENUM(id, name) JOBQ_##id,
	JOBQ_QOS(JOBQ_QOS_ENUM)
#undef JOBQ_QOS_ENUM
	JOBQ_NQOS
};

/* A tool's caps: queued jobs at most queue_max, running_max at once. */
struct jobq_tool {
	const char *name;
	uint32_t queue_max, running_max;
};

struct jobq_limits {
	const struct jobq_tool *tools; /* a job of another tool: refused */
	unsigned ntools;
	uint32_t qos_running_max[JOBQ_NQOS];
	uint32_t claim_scan;   /* queued candidates looked at per claim */
	uint32_t max_attempts; /* then a dead letter */
	uint64_t lease_ms, retry_base_ms;
};

#define JOBQ_TOOLS_MAX 64 /* tools a jobq_own_limits holds */

/* Limits that own their tools and names: what a store commit carries, so
 * a reload may free the config's tools while the commit runs. */
struct jobq_own_limits {
	struct jobq_limits lim;
	struct jobq_tool tools[JOBQ_TOOLS_MAX];
	char names[JOBQ_TOOLS_MAX][JOBQ_TOOL_MAX];
};

/* jobq_limits_own - o becomes a copy of src (at most JOBQ_TOOLS_MAX
 * tools; names cut to JOBQ_TOOL_MAX - 1). */
void jobq_limits_own(struct jobq_own_limits *o, const struct jobq_limits *src);

struct jobq_new {
	const char *id; /* JOBQ_ID_LEN characters */
	const char *tool;
	enum jobq_qos qos;
	const json_t *args;     /* the tool's arguments (not taken) */
	const char *request_id; /* may be NULL */
	unsigned waiter; /* 1 + the provider instance waiting for the
			  * result (told when the job ends); 0: none */
};

/* A claimed job. */
struct jobq_item {
	char id[JOBQ_ID_LEN + 1];
	char tool[JOBQ_TOOL_MAX];
	enum jobq_qos qos;
	uint32_t attempt; /* this one: 1, 2, ... */
	char *args;       /* the arguments' JSON text (malloc'd) */
	unsigned waiter;  /* as in jobq_new */
};

const char *jobq_qos_name(enum jobq_qos q);
/* jobq_qos_by_name - the class, or -1. */
int jobq_qos_by_name(const char *name);

/* jobq_enqueue - a new queued job due at now; JOBQ_SATURATED (nothing
 * written) when its tool has queue_max jobs queued; STORE_EINVAL for an
 * unknown tool, a bad class or id, or an id already in the table. */
int jobq_enqueue(struct store_txn *txn, const struct jobq_new *j,
    const struct jobq_limits *lim, uint64_t now);

/* jobq_claim - up to max jobs for owner (a pid) leased for lim->lease_ms
 * (see above); out[0..*n) get copies (jobq_item_free them).  The apply
 * function that calls it may run twice (store.h): free out[0..*n) before
 * each call. */
int jobq_claim(struct store_txn *txn, uint64_t now, int32_t owner,
    const struct jobq_limits *lim, unsigned max, struct jobq_item *out,
    unsigned *n);

/* jobq_complete - attempt `attempt` of owner is done: the row and its
 * index entry go.  STORE_NOTFOUND when the job is not running that
 * attempt for that owner (gone, requeued, taken by another worker). */
int jobq_complete(struct store_txn *txn, const char *id, int32_t owner,
    uint32_t attempt);

/* jobq_fail - attempt `attempt` of owner failed: queued again after the
 * backoff (rnd picks the jitter) or, after the last attempt, a dead
 * letter with reason.  *dead (may be NULL) tells which.  STORE_NOTFOUND
 * as for jobq_complete. */
int jobq_fail(struct store_txn *txn, const char *id, int32_t owner,
    uint32_t attempt, const char *reason, const struct jobq_limits *lim,
    uint64_t now, uint64_t rnd, int *dead);

/* jobq_postpone - attempt `attempt` of owner never reached the upstream
 * (its bulkhead was full, its circuit open): queued again, due at due,
 * the attempt not counted; reason kept as lastError.  STORE_NOTFOUND as
 * for jobq_complete. */
int jobq_postpone(struct store_txn *txn, const char *id, int32_t owner,
    uint32_t attempt, const char *reason, uint64_t due);

/* jobq_requeue - a dead letter queued again, due now, attempts from 0;
 * STORE_NOTFOUND when there is no such dead letter. */
int jobq_requeue(struct store_txn *txn, const char *id, uint64_t now);

/* jobq_release_owner - every job owner holds is queued again, due now
 * (its attempt counted: after the last one it is a dead letter); *n gets
 * how many. */
int jobq_release_owner(struct store_txn *txn, int32_t owner,
    const struct jobq_limits *lim, uint64_t now, unsigned *n);

/* jobq_running_owners - the distinct owners of running jobs, at most max
 * into owners; *n how many. */
int jobq_running_owners(struct store *st, int32_t *owners, unsigned max,
    unsigned *n);

/*
 * jobq_expired - up to max ids (JOBQ_ID_LEN + 1 bytes each, in ids) of
 * jobs past their TTL at now: queued (or running) more than ttl_ms after
 * they were queued, dead letters more than dlq_ttl_ms after they died;
 * *n how many.  jobq_remove_expired, inside txn, makes the first dead
 * letters (reason "expired ...") and removes the second, if they are
 * still expired; *removed counts both.
 */
int jobq_expired(struct store *st, uint64_t now, uint64_t ttl_ms,
    uint64_t dlq_ttl_ms, char *ids, unsigned max, unsigned *n);
int jobq_remove_expired(struct store_txn *txn, const char *ids, unsigned n,
    uint64_t now, uint64_t ttl_ms, uint64_t dlq_ttl_ms, unsigned *removed);

/*
 * jobq_stats - {byStatus: {queued, running, dead}, byTool: {tool:
 * {queued, running, dead}}, byQos: {class: {queued, running,
 * oldestQueuedAgeMs (null when none is due)}},
 * oldestQueuedAgeMs, oldestRunningAgeMs (null when none)} into out.
 */
int jobq_stats(struct store *st, uint64_t now, json_t *out);

/* jobq_ages - the wait so far of the oldest due queued job and the age
 * of the oldest running one, per tool and per class: {name:
 * {oldestQueuedAgeMs, oldestRunningAgeMs}} (a member only when there is
 * one) into by_tool and by_qos, from at most max_rows rows (0: all;
 * *cut says whether rows were left unread). */
int jobq_ages(struct store *st, uint64_t now, size_t max_rows, json_t *by_tool,
    json_t *by_qos, int *cut);

/* jobq_dead_letters - the newest limit dead letters (limit 0: all), the
 * most recent first, into the array out. */
int jobq_dead_letters(struct store *st, size_t limit, json_t *out);
/* jobq_dead_letters_upto - the same from at most max_rows rows of the
 * table (0: all); *cut says whether rows were left unread. */
int jobq_dead_letters_upto(struct store *st, size_t limit, size_t max_rows,
    json_t *out, int *cut);

/* jobq_snapshot - the snapshot's toolJobs from st (NULL: the store could
 * not be opened): jobq_stats, pressureByTool (queued and running against
 * the caps of each of tools[0..ntools), the tools of the config) and
 * recentDeadLetters (from at most max_rows rows, 0: all; "truncated" when
 * rows were left). */
void jobq_snapshot(json_t *snap, struct store *st,
    const struct jobq_tool *tools, size_t ntools, size_t limit,
    size_t max_rows);

void jobq_item_free(struct jobq_item *it);

#endif
