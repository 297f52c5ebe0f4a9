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
 * Every function runs inside a write transaction (role_commit) and acts
 * only through it, so each may be re-run (see store.h).
 */
#ifndef RG_DELIVQ_H
#define RG_DELIVQ_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define DELIVQ_ID_LEN 32
#define DELIVQ_KEY_LEN (8 + DELIVQ_ID_LEN)

struct delivq_item {
	char id[DELIVQ_ID_LEN + 1];
	char topic[64];
	uint32_t attempts; /* attempts made before this one */
	char *body;        /* the payload JSON (malloc'd) */
	size_t blen;
};

/* delivq_index_put - make id due at at (used when a row is created). */
int delivq_index_put(struct store_txn *txn, const char *id, uint64_t at);

/*
 * delivq_claim - lease up to max rows due at now to owner for lease_ms;
 * out[0..*n) get copies (delivq_item_free them).  Rows whose JSON is
 * unreadable are moved to the dead letters, never dropped.
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
 * STORE_NOTFOUND if there is no such dead letter. */
int delivq_requeue(struct store_txn *txn, const char *id, uint64_t now);

/* delivq_next_due - due time of the earliest indexed row (0 if none). */
int delivq_next_due(struct store_txn *txn, uint64_t *at);

void delivq_item_free(struct delivq_item *it);

#endif
