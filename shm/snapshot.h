/*
 * snapshot - the whole segment as one JSON document: what "relstat -j"
 * prints and the monitor serves on GET /snapshot.
 *
 * Sections: header, areas, processes (with their counters), routes (the
 * answers of every ingress, summed), rateLimitPressure, circuits,
 * bulkheads, chatAdmission, config (secrets already redacted by the
 * supervisor).  The processes and the rate-limit, circuit, bulkhead and
 * admission areas are read through the names and offsets the segment
 * carries, so a reader also reads a newer daemon's segment.
 */
#ifndef RG_SNAPSHOT_H
#define RG_SNAPSHOT_H

#include <jansson.h>

#include "shm/shm.h"

/* snapshot_json - a new document; limit bounds the lists (leases per
 * bulkhead, top users and reasons). */
json_t *snapshot_json(const struct shm_seg *seg, long limit);

#endif
