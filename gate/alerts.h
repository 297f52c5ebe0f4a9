/*
 * alerts - the monitor's alerts (SPEC section 8): the rules, the rows of
 * the LMDB table "alerts", and the Sentry envelope that carries one.
 *
 * Rules (each a pure function: what was measured in, the alerts due out;
 * the monitor keeps every alert key to one alert per cooldown):
 * - ratelimit: a (source, bucket) with at least min blocked or
 *   contention_fallback occurrences among the stored events of the window
 *   -> "ratelimit:<source>:<bucket>";
 * - queue: the delivery queue's health (gate/delivq) against the
 *   TOOL_QUEUE_ALERT_* limits -> "queue:deliveries:queued",
 *   "queue:deliveries:dead_letters", "queue:deliveries:oldest_queued_age",
 *   "queue:deliveries:oldest_running_age";
 * - bulkhead: a saturation warning a role sent (PROTO_T_ALERT)
 *   -> "bulkhead:<provider>";
 * - crashloop: a process restarted at least min times in the window
 *   -> "crashloop:<role>.<instance>";
 * - store: the LMDB map used at or above a percentage -> "store:map_usage".
 *
 * A due alert is an object {alertKey, kind, source, value, threshold,
 * windowMs, level, message, ...} (the ratelimit rule adds bucket and
 * occurrences, the others what they measured).  A row is that object with
 * createdAt, expiresAt, sentry: "off"|"pending"|"sent", sentryAttempts
 * and sentryError; its key is "<alert key>|<createdAt, 16 hex digits>"
 * (the newest of a key last).  Messages speak to an operator and carry no
 * secret.
 *
 * Pure but for the store reads and the transaction steps.
 */
#ifndef RG_ALERTS_H
#define RG_ALERTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "gate/delivq.h"
#include "store/store.h"

#define ALERT_TTL_MS (7ull * 24 * 3600 * 1000) /* rows are kept a week */

/* A Sentry DSN taken apart: the envelope URL and the public key. */
struct alert_dsn {
	char url[512]; /* scheme://HOST[:PORT]/api/PROJECT/envelope/ */
	char key[128];
};

/* alert_dsn_parse - "scheme://KEY@HOST[:PORT]/PROJECT" (http or https);
 * 0, or -1 with one line in err. */
int alert_dsn_parse(const char *dsn, struct alert_dsn *out, char *err,
    size_t errlen);

/*
 * alert_ratelimit_rule - from an ev_summary (gate/events) of the last
 * window_ms, the alerts due: every source:bucket whose blocked and
 * contention_fallback occurrences add up to at least min.  A new array.
 */
json_t *alert_ratelimit_rule(json_t *summary, uint64_t min,
    uint64_t window_ms);

/* Limits of the queue rule (TOOL_QUEUE_ALERT_*): an alert when a value is
 * above its limit. */
struct alert_queue_limits {
	uint64_t max_queued;      /* rows waiting (ready) */
	uint64_t max_dead;        /* rows gone to the dead letters in window */
	uint64_t max_queued_age;  /* ms the oldest waiting row has waited */
	uint64_t max_running_age; /* ms the oldest leased row has run */
	uint64_t window_ms;       /* TOOL_QUEUE_ALERT_WINDOW_MIN */
};

/* alert_queue_rule - the queue alerts due for stats (delivq_stats): a new
 * array, one alert per limit exceeded. */
json_t *alert_queue_rule(const struct delivq_stats *stats,
    const struct alert_queue_limits *lim);

/* alert_bulkhead_rule - the alert of a saturation warning about provider
 * (a known bulkhead name, max_concurrent its cap), sent by reporter
 * ("tool-worker.1"). */
json_t *alert_bulkhead_rule(const char *provider, const char *reporter,
    uint64_t max_concurrent);

/*
 * Restart history of the processes, for the crashloop rule: the monitor
 * notes every slot's restart counter (shm process table) once a second;
 * the times of the restarts seen are kept, the newest ALERT_CRASH_KEEP
 * per slot.
 */
#define ALERT_CRASH_SLOTS 72 /* = SHM_MAX_PROCS */
#define ALERT_CRASH_KEEP 64  /* = the largest crashloop threshold */
struct alert_crash_slot {
	uint32_t role, instance;
	int known;         /* restarts has been read once */
	uint64_t restarts; /* as last read */
	uint64_t at[ALERT_CRASH_KEEP]; /* ring of restart times */
	unsigned next, n;
};
struct alert_crashes {
	struct alert_crash_slot slot[ALERT_CRASH_SLOTS];
};

/* alert_crash_note - slot holds (role, instance) with restarts at now: the
 * restarts since the last note are recorded at now.  The first note of a
 * slot, a slot given to another process or a counter that went down
 * (a new segment) only sets the baseline. */
void alert_crash_note(struct alert_crashes *c, unsigned slot, uint32_t role,
    uint32_t instance, uint64_t restarts, uint64_t now);
/* alert_crash_count - restarts of slot recorded at or after since. */
unsigned alert_crash_count(const struct alert_crashes *c, unsigned slot,
    uint64_t since);

/*
 * alert_crashloop_rule - procs: an array of {role, instance, restarts,
 * restartsInWindow, lastExit} (lastExit a string or null); the alerts due
 * for those with restartsInWindow >= min in the window_ms.  A new array.
 */
json_t *alert_crashloop_rule(json_t *procs, uint64_t min,
    uint64_t window_ms);

/* alert_store_rule - the map of map_bytes holds used_bytes: the alert
 * "store:map_usage" when that is at or above pct percent.  A new array. */
json_t *alert_store_rule(uint64_t used_bytes, uint64_t map_bytes,
    uint64_t pct);

/* alert_last - when the newest alert of alert_key was created (0: none,
 * or older than the TTL; UINT64_MAX: the store could not be read). */
uint64_t alert_last(struct store *st, const char *alert_key);

/* alert_in_cooldown - 1 when an alert last raised at last (alert_last's
 * answer: 0 none, UINT64_MAX unknown, which holds it back: no alert
 * storm when the store cannot be read) holds a new one back at now. */
int alert_in_cooldown(uint64_t last, uint64_t now, uint64_t cooldown_ms);

/* alert_row - a new row for a due alert (a copy of due; its "sentry"
 * state is "pending" when a DSN is configured, else "off"). */
json_t *alert_row(json_t *due, int sentry, uint64_t now_ms);

/* alert_put - write row (a txn step); alert_key_of: its store key. */
int alert_put(struct store_txn *txn, json_t *row);
void alert_key_of(json_t *row, char *key, size_t len);

/* alert_list - every live row, the newest first (limit 0: all), with
 * "sentry" == state only when state is not NULL, of kind only when kind
 * is not NULL. */
int alert_list(struct store *st, const char *state, const char *kind,
    size_t limit, json_t *out);

/*
 * alert_envelope - the Sentry envelope of row: its header line, an item
 * header and one event with level, message (alert key and summary) and
 * tags alert_key and source.  A new string (free), *len its length.
 */
char *alert_envelope(json_t *row, uint64_t now_ms, size_t *len);

/* alert_snapshot - in snap: rateLimitPressure.recentAlerts, the newest
 * limit rate-limit alerts, and toolQueueAlerts {recent: the newest limit
 * queue alerts, alertsInWindow: the queue alerts of the last window_ms}
 * (empty without a store). */
void alert_snapshot(json_t *snap, struct store *st, uint64_t window_ms,
    size_t limit);

#endif
