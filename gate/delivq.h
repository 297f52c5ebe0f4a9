/*
 * delivq - the queue of deliveries to the application (SPEC §3), on the
 * LMDB tables deliveries (id -> JSON row) and deliveries_ready (index:
 * 8-byte big-endian due time + id -> nothing).
 *
 * A row is "ready" (due at nextAttemptAt), "leased" (a worker holds it
 * until leaseUntil; its index entry is moved to that time, so a lease
 * whose holder died is claimed again when it runs out) or "dead" (in the
 * dead letters, no index entry).  A row leaves the table only when the
 * backend answered 2xx (delivq_complete); nothing else deletes one.
 *
 * Every function but delivq_stats runs inside a write transaction
 * (role_commit) and acts only through it, so each may be re-run (see
 * store.h); delivq_stats only reads.
 */
#ifndef RG_DELIVQ_H
#define RG_DELIVQ_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

#define DELIVQ_ID_LEN 32
#define DELIVQ_KEY_LEN (8 + DELIVQ_ID_LEN)

struct delivq_item {
	char id[DELIVQ_ID_LEN + 1];
	char topic[64];
	uint32_t attempts; /* attempts made before this one */
	char *body;        /* the payload JSON (malloc'd) */
	char request_id[65]; /* the request it came from ("" if unknown) */
	size_t blen;
};

/* A new delivery. */
struct delivq_new {
	const char *id; /* DELIVQ_ID_LEN characters */
	const char *topic;
	const char *idem_scope; /* the idempotency claim it came from */
	const char *idem_key;
	size_t idem_klen;
	json_t *payload; /* the body to deliver (not taken) */
	const char *request_id; /* the request it came from (may be NULL) */
};

/* delivq_create - the only way a row is made: written ready, due at now.
 * STORE_EINVAL when the key is not valid UTF-8 text. */
int delivq_create(struct store_txn *txn, const struct delivq_new *d,
    uint64_t now);

/*
 * delivq_claim - lease up to max rows due at now to owner for lease_ms;
 * out[0..*n) get copies (delivq_item_free them).  A row that cannot be
 * read (not a JSON object, no topic or payload) becomes a dead letter
 * whose reason says why and which keeps the stored bytes (rawBase64);
 * it is never dropped, and never requeued.
 */
int delivq_claim(struct store_txn *txn, uint64_t now, int32_t owner,
    uint64_t lease_ms, unsigned max, struct delivq_item *out, unsigned *n);
/* delivq_complete - delivered (2xx): the row and its index go. */
int delivq_complete(struct store_txn *txn, const char *id);
/* delivq_retry - failed attempt: attempts+1, due again at next_at. */
int delivq_retry(struct store_txn *txn, const char *id, uint64_t now,
    uint64_t next_at, const char *reason);
/* delivq_postpone - not attempted (e.g. the circuit is open): ready
 * again at next_at, attempts unchanged. */
int delivq_postpone(struct store_txn *txn, const char *id, uint64_t next_at);
/* delivq_dead - no more attempts: into the dead letters with a reason. */
int delivq_dead(struct store_txn *txn, const char *id, uint64_t now,
    const char *reason);
/* delivq_requeue - a dead letter back to ready (attempts reset), due now;
 * STORE_NOTFOUND if there is no such dead letter, STORE_EINVAL if it is
 * an unreadable row (nothing could be delivered). */
int delivq_requeue(struct store_txn *txn, const char *id, uint64_t now);

/* delivq_due_count - how many rows are due by now, counted up to max, in
 * a read transaction of its own (a worker's look before it takes
 * bulkhead leases for them). */
int delivq_due_count(struct store *st, uint64_t now, unsigned max,
    unsigned *n);

/* delivq_next_due - due time of the earliest indexed row (0 if none). */
int delivq_next_due(struct store_txn *txn, uint64_t *at);

void delivq_item_free(struct delivq_item *it);

/* The queue's health at one time (the queue alert rule, gate/alerts). */
struct delivq_stats {
	uint64_t queued;       /* ready: waiting for an attempt */
	uint64_t running;      /* leased: an attempt in progress */
	uint64_t dead;         /* in the dead letters */
	uint64_t dead_recent;  /* of those, gone there since the window */
	uint64_t oldest_queued_age_ms;  /* now - createdAt (or requeuedAt) */
	uint64_t oldest_running_age_ms; /* now - leasedAt */
	uint64_t rows;         /* rows read */
	int truncated;         /* max_rows reached: the counts are lower
	                          bounds */
};

/*
 * delivq_stats - read the table deliveries in one read transaction, at
 * most max_rows rows (0: all): counts by state, the dead letters since
 * since_ms, and the ages of the oldest waiting and running rows at now.
 * Unreadable rows count as dead.  Reads only; may run on any thread.
 */
int delivq_stats(struct store *st, uint64_t now, uint64_t since_ms,
    size_t max_rows, struct delivq_stats *out);

#endif
