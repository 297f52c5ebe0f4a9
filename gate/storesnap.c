/*
 * storesnap - see storesnap.h.
 */
#include "gate/storesnap.h"

#include "gate/alerts.h"
#include "gate/delivq.h"
#include "gate/events.h"
#include "gate/jobq.h"
#include "gate/replay.h"
#include "gate/toolcache.h"
#include "gate/tools.h"
#include "util/util.h"

#define DELIVQ_SNAPSHOT_ROWS 100000 /* rows read for deliveryQueue */

static json_t *
age_json(uint64_t count, uint64_t age_ms)
{
	return count > 0 ? json_integer((json_int_t)age_ms) : json_null();
}

static void
delivery_section(json_t *snap, struct store *st, size_t max_rows)
{
	struct delivq_stats d;
	json_t *o;
	int rc = st != NULL ? delivq_stats(st, now_ms(), 0,
	    max_rows != 0 && max_rows < DELIVQ_SNAPSHOT_ROWS ? max_rows :
							       DELIVQ_SNAPSHOT_ROWS,
	    &d) : STORE_EIO;

	if (rc != STORE_OK) {
		json_object_set_new(snap, "deliveryQueue",
		    json_pack("{s:s}", "error", st == NULL ?
			"the store could not be opened" : store_rc_name(rc)));
		return;
	}
	o = json_pack("{s:I,s:I,s:I,s:o,s:o,s:b}", "queued",
	    (json_int_t)d.queued, "running", (json_int_t)d.running, "dead",
	    (json_int_t)d.dead, "oldestQueuedAgeMs",
	    age_json(d.queued, d.oldest_queued_age_ms), "oldestRunningAgeMs",
	    age_json(d.running, d.oldest_running_age_ms), "truncated",
	    d.truncated);
	json_object_set_new(snap, "deliveryQueue", o);
}

static void
alerts_section(json_t *snap, struct store *st, size_t limit)
{
	json_t *recent = json_array(), *o;
	int rc = st != NULL ? alert_list(st, NULL, NULL, limit, recent) :
			      STORE_EIO;

	o = json_pack("{s:o}", "recent", recent);
	if (rc != STORE_OK)
		json_object_set_new(o, "error", json_string(st == NULL ?
			"the store could not be opened" : store_rc_name(rc)));
	json_object_set_new(snap, "alerts", o);
}

void
storesnap_add(json_t *snap, struct store *st, uint64_t window_ms,
    size_t limit, size_t max_rows)
{
	struct jobq_tool tools[TOOLS_MAX];
	size_t ntools = tools_caps_json(json_object_get(snap, "config"),
	    tools, RG_NELEM(tools));

	tc_snapshot(snap, st, max_rows);
	jobq_snapshot(snap, st, tools, ntools, limit, max_rows);
	ev_snapshot(snap, st, window_ms, limit);
	replay_snapshot(snap, st, limit);
	alert_snapshot(snap, st, window_ms, limit);
	delivery_section(snap, st, max_rows);
	alerts_section(snap, st, limit);
}
