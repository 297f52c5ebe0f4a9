/*
 * storesnap - the sections of the snapshot that come from the store, for
 * every reader that has one (relstat -j and its live view, the monitor's
 * GET /snapshot): toolCache, toolJobs, rateLimitPressure's stored events
 * and recentAlerts, replayProtection, toolQueueAlerts, deliveryQueue
 * (the deliveries to the application: queued, running, dead, the oldest
 * ages) and alerts (the newest alerts of every rule).
 */
#ifndef RG_STORESNAP_H
#define RG_STORESNAP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

/* storesnap_add - the sections into snap (whose "config" gives the tools'
 * caps); st NULL: the store could not be opened (each section says so);
 * window_ms bounds the summaries, limit the lists, max_rows (0: none) the
 * rows the cache, jobs and deliveries scans read (a section cut short
 * says "truncated"). */
void storesnap_add(json_t *snap, struct store *st, uint64_t window_ms,
    size_t limit, size_t max_rows);

#endif
