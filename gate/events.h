/*
 * events - the monitor's store of rate-limit and admission events (SPEC
 * section 8): deduplication on the 5-second key, the rows of the LMDB
 * table "events", and the summaries read back from it.
 *
 * An event is (source, bucket, key, outcome, reason) with retryAfterMs,
 * path, method and its time.  Occurrences of the same five values in the
 * same 5-second window (createdAt / 5000) are one row: the first is kept,
 * the others add to its count (duplicates = count - 1 are counted, not
 * stored).  The senders already coalesce (gate/telemetry): what arrives
 * carries a count of its own.
 *
 * A row's key is 16 bytes: its window's start in ms, then a hash of the
 * five values, both big-endian, so rows are in time order; its value is
 * JSON: {source, bucket, key, outcome, reason, retryAfterMs, path,
 * method, createdAt, expiresAt, count, duplicates}.
 *
 * Owns: the table of open windows (fixed size; a window that finds it
 * full is written at once).  Pure but for ev_write and ev_summary, which
 * work inside a store transaction or scan.
 */
#ifndef RG_EVENTS_H
#define RG_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto/proto.h"
#include "store/store.h"

#define EV_WINDOW_MS 5000
#define EV_SLOTS 4096
#define EV_KEY_LEN 16

struct ev_row {
	uint64_t window;       /* ms: the window's start */
	uint64_t hash;         /* of the five values */
	uint64_t created_at;   /* the first occurrence */
	uint32_t count;        /* occurrences in the window */
	uint32_t retry_after_ms;
	uint8_t outcome;       /* 0 allowed .. 3 would_block */
	char source[24], bucket[32], key[96], reason[48];
	char path[96], method[16];
};

struct ev_table {
	struct ev_row row[EV_SLOTS];
	uint8_t used[EV_SLOTS];
	unsigned n;
};

/* Outcome names, in the order of the RL_EVENT message. */
const char *ev_outcome_name(unsigned outcome);

/*
 * ev_note - an RL_EVENT message: added to its window's row.  When the
 * table is full the row is handed to flush at once.  Returns 1 when it
 * opened a row, 0 when it was folded into one.
 */
int ev_note(struct ev_table *t, const struct proto_rl_event *e,
    void (*flush)(void *arg, const struct ev_row *r), void *arg);
/* ev_flush - hand over (and forget) the rows whose window ended at or
 * before now_ms (all: every row). */
void ev_flush(struct ev_table *t, uint64_t now_ms, int all,
    void (*flush)(void *arg, const struct ev_row *r), void *arg);

/*
 * ev_write - store r in txn with a TTL of ttl_ms: added to the row of
 * the same key when one is there (a window's late occurrences).  A
 * store_apply_fn step.
 */
int ev_write(struct store_txn *txn, const struct ev_row *r, uint64_t ttl_ms);

/*
 * ev_summary - events created at or after since_ms, summed by
 * "source:bucket:outcome" and "source:bucket:outcome:reason" into
 * *summary ({key: {events, occurrences, duplicates}}, the largest first
 * is the caller's to sort); the newest limit rows into *recent (an array
 * of the stored JSON, newest first; limit 0: none).  Either may be NULL.
 * STORE_OK or a store error.
 */
int ev_summary(struct store *st, uint64_t since_ms, json_t *summary,
    json_t *recent, size_t limit);

/*
 * ev_snapshot - the stored side of rateLimitPressure in snap (relstat -j,
 * GET /snapshot): windowMinutes, byBucketOutcomeReason (ev_summary over
 * the last window_ms) and recentEvents (the newest limit rows).  Without
 * a store (st NULL, or a read error) they say why in "eventsError".
 */
void ev_snapshot(json_t *snap, struct store *st, uint64_t window_ms,
    size_t limit);

#endif
