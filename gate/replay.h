/*
 * replay - replay protection and durable hand-off of inbound webhooks.
 *
 * One group-commit request claims the idempotency keys of a webhook
 * (table idem: "scope|key" -> first seen, last seen, hit count, delivery
 * id; TTL replay.idem_ttl_ms) and writes a delivery row (table
 * deliveries, due at once in deliveries_ready: gate/delivq.h) for every key
 * seen for the first time -- in the same transaction, so a webhook is
 * acknowledged only when both are durable, and a repeat never yields a
 * second delivery.
 *
 * replay_apply runs on the store's writer thread and may run twice (the
 * store re-runs a batch that did not fit): it derives everything from the
 * batch and the transaction, and resets its outputs first.
 */
#ifndef RG_REPLAY_H
#define RG_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

#define REPLAY_ID_LEN 32 /* hex: ms timestamp, pid, sequence */
#define REPLAY_MAX_ITEMS 256

struct replay_item {
	const char *key; /* idempotency key within the scope */
	size_t klen;
	json_t *payload; /* delivery payload (the caller's reference) */
	char delivery_id[REPLAY_ID_LEN + 1]; /* set by replay_prepare */
	/* results */
	int fresh;          /* 1: first sighting, delivery written */
	uint64_t hit_count; /* sightings including this one */
};

struct replay_batch {
	const char *scope; /* "gmail_push_history", "whatsapp_message" */
	const char *topic; /* "gmail.history", "whatsapp.message" */
	const char *request_id; /* the request's id, into its deliveries */
	uint64_t now_ms;
	uint64_t ttl_ms;
	unsigned n;
	struct replay_item *items;
	/* results */
	unsigned fresh; /* deliveries written */
};

/* Stored idempotency record (fixed layout, host byte order). */
struct replay_idem {
	uint64_t first_seen;
	uint64_t last_seen;
	uint64_t hit_count;
	char delivery_id[REPLAY_ID_LEN];
};

/* replay_prepare - give every item a delivery id (stable across re-runs
 * of the apply); seq is the caller's counter. */
void replay_prepare(struct replay_batch *b, uint32_t pid, uint64_t *seq);

/* replay_apply - store_apply_fn for a struct replay_batch. */
int replay_apply(struct store_txn *txn, void *arg);

/* replay_idem_key - "scope|key" into buf; -1 if it does not fit. */
int replay_idem_key(char *buf, size_t len, size_t *out, const char *scope,
    const char *key, size_t klen);

/*
 * replay_snapshot - replayProtection of relstat -j / GET /snapshot into
 * snap: per scope, the live keys, the repeats they caught (hits beyond
 * the first) and the last time one was seen; the limit keys seen last
 * (scope, key, hitCount, lastSeen).  Without a store: an error string.
 */
void replay_snapshot(json_t *snap, struct store *st, size_t limit);

#endif
