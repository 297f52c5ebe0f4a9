/*
 * monitor - telemetry sink and periodic maintenance (SPEC §8).  Now: the
 * maintenance that keeps shared state from leaking -- bulkhead leases of
 * dead or expired holders (every 30 s here; the seeds' cron ran every 30
 * min), LMDB reader slots of dead processes (every minute) -- and a count
 * of the rate-limit events it receives.  The event log, alert rules and
 * the Sentry sink come with the monitor issue.
 */
#include "daemons/skeleton.h"
#include "shm/bulkhead.h"
#include "util/log.h"
#include "util/util.h"

#define SWEEP_EVERY_S 30
#define READERS_EVERY_S 60

static unsigned ticks;

static void
monitor_timer(struct role_ctx *ctx)
{
	ticks++;
	if (ticks % SWEEP_EVERY_S == 1) {
		unsigned n = bh_sweep(&ctx->shm, now_ms());

		if (n > 0)
			log_info("bulkhead sweep: %u lease(s) reclaimed", n);
	}
	if (ticks % READERS_EVERY_S == 1) {
		int cleared = 0;

		if (store_reader_check(ctx->store, &cleared) == STORE_OK &&
		    cleared > 0)
			log_info("store: %d stale reader slot(s) cleared",
			    cleared);
	}
}

static void
monitor_message(struct role_ctx *ctx, const struct proto_msg *m)
{
	(void)ctx;
	if (m->type == PROTO_T_ALERT) {
		const struct proto_alert *a = &m->u.alert;

		/* the alert store and the Sentry sink come with the monitor
		 * issue; until then the alert is one log line */
		log_warn("alert from %s.%u: %.*s %.*s: %.*s",
		    role_name(m->src_role), m->src_instance, (int)a->kind.len,
		    a->kind.p, (int)a->key.len, a->key.p, (int)a->message.len,
		    a->message.p);
	}
	/* RL_EVENT: persisted by the monitor issue */
}

static const struct role_ops monitor_ops = {
	.role = ROLE_MONITOR,
	.on_timer = monitor_timer,
	.on_message = monitor_message,
};

int
main(int argc, char **argv)
{
	return role_main(argc, argv, &monitor_ops);
}
