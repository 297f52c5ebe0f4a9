/*
 * admission - the admission role: decides whether a chat may start (SPEC
 * section 6) and keeps the tickets of the chats it let through.
 *
 * Gateway mode authoritative: the ingress sends CHAT_START here.  The
 * decision (gate/admit) looks at the user's and all tickets in flight
 * and the message and tool-call token buckets.  Refused: ADMIT_REFUSE to
 * the ingress with the dimension as the reason and a jittered
 * Retry-After.  Admitted: a ticket in shm (shm/admission) names the
 * ingress and the provider that will run the stream, the buckets are
 * charged, and the CHAT_START goes on to that provider with the ticket
 * id; a provider that cannot be reached frees the ticket and refuses
 * with "overloaded: provider unreachable".  With
 * ADMISSION_REDIS_SHADOW_MODE the chat is evaluated, never refused, and
 * forwarded without a ticket.  Gateway mode shadow: the ingress's
 * limiter decides and ADMIT_SHADOW only asks for the evaluation.
 * Shadow evaluations never touch the tickets or the buckets that
 * enforcement uses; they measure demand in buckets of their own, so the
 * rate dimensions show what enforcement would do.
 *
 * CHAT_RELEASE frees a ticket when its stream ends.  Every 100 ms the
 * tickets of processes that died (the owning ingress or the provider)
 * are reclaimed, expired ones too, and the buckets drained for relstat.
 *
 * Decisions become RL_EVENTs for the monitor (source "admission", bucket
 * chat_admission or chat_admission_shadow), coalesced (gate/telemetry);
 * plain allowed decisions only at ADMISSION_ALLOWED_EVENT_SAMPLE_PCT.
 *
 * The only writer of the admission area.  Never blocks its loop.
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "daemons/skeleton.h"
#include "gate/admit.h"
#include "gate/retry.h"
#include "gate/telemetry.h"
#include "shm/admission.h"
#include "util/log.h"
#include "util/util.h"

_Static_assert((int)ADMIT_NDIMS == (int)ADM_NDIMS, "one list of dimensions");
_Static_assert((int)ADMIT_NMODES == (int)ADM_NMODES, "one list of modes");

#define SCAN_MS 100            /* reclaim scan and bucket refresh */
#define OVERLOAD_RETRY_MS 1000 /* Retry-After of an "overloaded" refusal */
#define BUCKET "chat_admission"
#define BUCKET_SHADOW "chat_admission_shadow"
#define R_UNREACHABLE "overloaded: provider unreachable"
#define R_TICKETS_FULL "overloaded: admission tickets full"

/* The gauges of one pair of token buckets (enforcement or shadow). */
struct levels {
	unsigned msg, tool, at;
};

static const struct levels enforce_levels = { ADM_G_MSG_LEVEL,
	ADM_G_TOOL_LEVEL, ADM_G_LEVELS_AT };
static const struct levels shadow_levels = { ADM_G_SHADOW_MSG_LEVEL,
	ADM_G_SHADOW_TOOL_LEVEL, ADM_G_SHADOW_LEVELS_AT };

struct adm {
	struct role_ctx *ctx;
	struct adm_writer *w;
	struct admit_policy policy;
	struct event *scan;
	struct tel_table tel;
};

static struct adm the_adm;

#define CFG(g) ((g)->ctx->cfg)
#define COUNT(g, field) SHM_INC(&(g)->ctx->self->counters.field)

/* --- buckets and the per-second figures ----------------------------------*/

/* levels_drain - drain l's buckets to now; their levels into u. */
static void
levels_drain(struct adm *g, const struct levels *l, uint64_t now,
    struct admit_usage *u)
{
	uint64_t at = adm_gauge(g->w, l->at);
	struct admit_rate msg = { adm_gauge(g->w, l->msg), at };
	struct admit_rate tool = { adm_gauge(g->w, l->tool), at };

	u->msg_level_milli = admit_rate_level(&msg,
	    g->policy.limit[ADMIT_D_GLOBAL_MSG_RATE], now);
	u->tool_level_milli = admit_rate_level(&tool,
	    g->policy.limit[ADMIT_D_GLOBAL_TOOL_RATE], now);
	adm_set_gauge(g->w, l->msg, u->msg_level_milli);
	adm_set_gauge(g->w, l->tool, u->tool_level_milli);
	if (now > at)
		adm_set_gauge(g->w, l->at, now);
}

/* levels_charge - one chat more in l's buckets (drained to now before). */
static void
levels_charge(struct adm *g, const struct levels *l, uint64_t now)
{
	uint64_t at = adm_gauge(g->w, l->at);
	struct admit_rate msg = { adm_gauge(g->w, l->msg), at };
	struct admit_rate tool = { adm_gauge(g->w, l->tool), at };

	admit_rate_charge(&msg, g->policy.limit[ADMIT_D_GLOBAL_MSG_RATE], 1,
	    now);
	admit_rate_charge(&tool, g->policy.limit[ADMIT_D_GLOBAL_TOOL_RATE],
	    g->policy.tool_per_msg, now);
	adm_set_gauge(g->w, l->msg, msg.level_milli);
	adm_set_gauge(g->w, l->tool, tool.level_milli);
	adm_set_gauge(g->w, l->at, msg.at_ms);
}

/* tools_charge - n tool calls more in the enforcement tool bucket (a chat
 * made more than the estimate it was charged with). */
static void
tools_charge(struct adm *g, uint32_t n, uint64_t now)
{
	const struct levels *l = &enforce_levels;
	struct admit_usage u;
	struct admit_rate tool;

	levels_drain(g, l, now, &u);
	tool = (struct admit_rate){ adm_gauge(g->w, l->tool),
		adm_gauge(g->w, l->at) };
	admit_rate_charge(&tool, g->policy.limit[ADMIT_D_GLOBAL_TOOL_RATE], n,
	    now);
	adm_set_gauge(g->w, l->tool, tool.level_milli);
}

/* seconds_roll - start a new second for the per-second figures. */
static void
seconds_roll(struct adm *g, uint64_t now)
{
	uint64_t sec = now / 1000, cur = adm_gauge(g->w, ADM_G_SECOND);

	if (sec == cur)
		return;
	adm_set_gauge(g->w, ADM_G_MSG_LAST_SECOND, sec == cur + 1 ?
		adm_gauge(g->w, ADM_G_MSG_THIS_SECOND) : 0);
	adm_set_gauge(g->w, ADM_G_TOOL_LAST_SECOND, sec == cur + 1 ?
		adm_gauge(g->w, ADM_G_TOOL_THIS_SECOND) : 0);
	adm_set_gauge(g->w, ADM_G_MSG_THIS_SECOND, 0);
	adm_set_gauge(g->w, ADM_G_TOOL_THIS_SECOND, 0);
	adm_set_gauge(g->w, ADM_G_SECOND, sec);
}

static void
seconds_add(struct adm *g, uint64_t now)
{
	seconds_roll(g, now);
	adm_set_gauge(g->w, ADM_G_MSG_THIS_SECOND,
	    adm_gauge(g->w, ADM_G_MSG_THIS_SECOND) + 1);
	adm_set_gauge(g->w, ADM_G_TOOL_THIS_SECOND,
	    adm_gauge(g->w, ADM_G_TOOL_THIS_SECOND) + g->policy.tool_per_msg);
}

/* --- telemetry --------------------------------------------------------------*/

/* tel_send - one coalesced event to the monitor. */
static void
tel_send(void *arg, const struct tel_event *ev, uint32_t count)
{
	struct adm *g = arg;
	struct proto_msg m;

	tel_message(ev, count, "admission", now_ms(), &m);
	if (link_send(g->ctx->link, ROLE_MONITOR, 0, &m) == LINK_OK)
		COUNT(g, adm_telemetry_sent);
	else
		COUNT(g, adm_telemetry_dropped);
}

/* event - one decision for the monitor, keyed by the user. */
static void
event(struct adm *g, const char *bucket, struct proto_str user,
    uint8_t outcome, const char *reason, uint32_t retry_after_ms)
{
	char key[TEL_STR];
	struct tel_occurrence oc;

	snprintf(key, sizeof(key), "%.*s", (int)user.len, user.p);
	oc = (struct tel_occurrence){ .outcome = outcome,
		.retry_after_ms = retry_after_ms,
		.bucket = bucket,
		.key = key,
		.path = "/api/chat",
		.method = "POST",
		.reason = reason };
	if (tel_note(&g->tel, &oc, now_ms(), tel_send, g))
		COUNT(g, adm_telemetry_coalesced);
}

/* event_allowed - a plain allowed decision, sampled. */
static void
event_allowed(struct adm *g, const char *bucket, struct proto_str user)
{
	if (admit_sample((uint32_t)CFG(g)->admission_allowed_event_sample_pct,
		retry_rand_os(NULL)))
		event(g, bucket, user, TEL_ALLOWED, NULL, 0);
}

/* --- decisions --------------------------------------------------------------*/

static uint32_t
retry_after(struct adm *g)
{
	return admit_retry_after((uint32_t)CFG(g)->admission_retry_after_ms,
	    (uint32_t)CFG(g)->admission_retry_after_jitter_pct,
	    retry_rand_os(NULL));
}

/* usage - what the decision for user looks at now. */
static void
usage(struct adm *g, const struct levels *l, struct proto_str user,
    uint64_t now, struct admit_usage *u)
{
	u->user_inflight = adm_user_inflight(g->w, user.p, user.len);
	u->global_inflight = adm_inflight(g->w);
	levels_drain(g, l, now, u);
}

/* shadow_evaluate - evaluate for user, record what enforcement would do,
 * change nothing enforcement uses. */
static void
shadow_evaluate(struct adm *g, struct proto_str user)
{
	struct admit_policy p = g->policy;
	uint64_t now = now_ms();
	struct admit_usage u;
	struct admit_verdict v;

	p.shadow = 1;
	usage(g, &shadow_levels, user, now, &u);
	admit_decide(&p, &u, &v);
	adm_count(g->w, ADM_C_SHADOW);
	if (v.reason >= 0) {
		adm_count(g->w, ADM_C_WOULD_BLOCK);
		adm_count_dim(g->w, (unsigned)v.reason, ADM_F_WOULD_BLOCK);
		event(g, BUCKET_SHADOW, user, TEL_WOULD_BLOCK,
		    admit_dim_name((unsigned)v.reason), retry_after(g));
		return;
	}
	levels_charge(g, &shadow_levels, now);
	event_allowed(g, BUCKET_SHADOW, user);
}

static void
refuse(struct adm *g, const struct proto_chat_start *cs, uint32_t retry_ms,
    const char *reason)
{
	struct proto_msg m;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_T_ADMIT_REFUSE;
	m.u.admit_refuse.stream = cs->stream;
	m.u.admit_refuse.retry_after_ms = retry_ms;
	m.u.admit_refuse.reason = proto_str_from(reason);
	if (link_send_held(g->ctx->link, ROLE_INGRESS, cs->ingress, &m,
		LINK_WAIT_ANSWER_MS) != LINK_OK)
		COUNT(g, adm_refusals_undelivered);
}

/* forward - the chat to the provider that runs its stream. */
static int
forward(struct adm *g, const struct proto_msg *m, unsigned provider,
    uint64_t ticket)
{
	struct proto_msg f = *m;

	f.u.chat_start.ticket = ticket;
	return link_send_held(g->ctx->link, ROLE_PROVIDER, provider, &f,
	    LINK_WAIT_ANSWER_MS);
}

/* unreachable - the provider cannot take the chat: 503 overloaded. */
static void
unreachable(struct adm *g, const struct proto_chat_start *cs)
{
	adm_count(g->w, ADM_C_FORWARD_FAILURES);
	event(g, BUCKET, cs->user, TEL_BLOCKED, "provider_unreachable",
	    OVERLOAD_RETRY_MS);
	refuse(g, cs, OVERLOAD_RETRY_MS, R_UNREACHABLE);
}

/* admitted - record an admission and its soft reasons. */
static void
admitted(struct adm *g, const struct proto_chat_start *cs,
    const struct admit_verdict *v, uint64_t now)
{
	char reason[48];

	levels_charge(g, &enforce_levels, now);
	seconds_add(g, now);
	adm_count(g->w, ADM_C_ALLOWED);
	if (v->soft == 0) {
		event_allowed(g, BUCKET, cs->user);
		return;
	}
	adm_count(g->w, ADM_C_SOFT_ALLOWED);
	for (unsigned d = 0; d < ADMIT_NDIMS; d++) {
		if (!(v->soft & (1u << d)))
			continue;
		adm_count_dim(g->w, d, ADM_F_SOFT);
		snprintf(reason, sizeof(reason), "soft:%s", admit_dim_name(d));
		event(g, BUCKET, cs->user, TEL_ALLOWED, reason, 0);
	}
}

/* chat_start - the authoritative decision on one chat. */
static void
chat_start(struct adm *g, const struct proto_msg *m)
{
	const struct proto_chat_start *cs = &m->u.chat_start;
	unsigned provider = chat_provider_of(CFG(g), cs->stream);
	int32_t provider_pid = shm_proc_pid(&g->ctx->shm, ROLE_PROVIDER,
	    provider);
	uint64_t now = now_ms(), id;
	struct admit_usage u;
	struct admit_verdict v;
	struct adm_take t;

	if (g->policy.shadow) {
		shadow_evaluate(g, cs->user);
		if (forward(g, m, provider, 0) != LINK_OK)
			unreachable(g, cs);
		return;
	}
	usage(g, &enforce_levels, cs->user, now, &u);
	admit_decide(&g->policy, &u, &v);
	if (v.action == ADMIT_REFUSE) {
		uint32_t ms = retry_after(g);
		const char *dim = admit_dim_name((unsigned)v.reason);

		adm_count(g->w, ADM_C_BLOCKED);
		adm_count_dim(g->w, (unsigned)v.reason, ADM_F_BLOCKED);
		event(g, BUCKET, cs->user, TEL_BLOCKED, dim, ms);
		refuse(g, cs, ms, dim);
		return;
	}
	if (provider_pid <= 0) {
		unreachable(g, cs);
		return;
	}
	t = (struct adm_take){ .stream = cs->stream,
		.user = cs->user.p,
		.user_len = cs->user.len,
		.ingress = cs->ingress,
		.ingress_pid = (int32_t)cs->ingress_pid,
		.provider = (uint16_t)provider,
		.provider_pid = provider_pid,
		.now_ms = now,
		.ttl_ms = (uint64_t)CFG(g)->admission_ticket_ttl_ms };
	id = adm_take(g->w, &t);
	if (id == 0) {
		adm_count(g->w, ADM_C_TICKETS_FULL);
		event(g, BUCKET, cs->user, TEL_BLOCKED, "tickets_full",
		    OVERLOAD_RETRY_MS);
		refuse(g, cs, OVERLOAD_RETRY_MS, R_TICKETS_FULL);
		return;
	}
	if (forward(g, m, provider, id) != LINK_OK) {
		adm_drop(g->w, id);
		unreachable(g, cs);
		return;
	}
	admitted(g, cs, &v, now);
}

/* giveup - a message the link gave up after LINK_WAIT_*_MS: a chat its
 * provider never took is refused (503, its ticket freed); a refusal its
 * ingress never took is counted. */
static void
giveup(void *arg, const struct proto_msg *m)
{
	struct adm *g = arg;

	switch (m->type) {
	case PROTO_T_CHAT_START:
		if (m->u.chat_start.ticket != 0)
			adm_drop(g->w, m->u.chat_start.ticket);
		unreachable(g, &m->u.chat_start);
		break;
	case PROTO_T_ADMIT_REFUSE:
		COUNT(g, adm_refusals_undelivered);
		break;
	default:
		break;
	}
}

static void
adm_message(struct role_ctx *ctx, const struct proto_msg *m)
{
	struct adm *g = ctx->priv;

	switch (m->type) {
	case PROTO_T_CHAT_START:
		chat_start(g, m);
		break;
	case PROTO_T_ADMIT_SHADOW:
		shadow_evaluate(g, m->u.admit_shadow.user);
		break;
	case PROTO_T_TOOL_CHARGE:
		if (m->u.tool_charge.count > 0 &&
		    m->u.tool_charge.count <= 1000) {
			uint64_t now = now_ms();

			tools_charge(g, m->u.tool_charge.count, now);
			seconds_roll(g, now);
			adm_set_gauge(g->w, ADM_G_TOOL_THIS_SECOND,
			    adm_gauge(g->w, ADM_G_TOOL_THIS_SECOND) +
				m->u.tool_charge.count);
		}
		break;
	case PROTO_T_CHAT_RELEASE:
		/* ticket 0: a stream admitted in shadow mode, never held */
		if (m->u.chat_release.ticket != 0)
			adm_release(g->w, m->u.chat_release.ticket,
			    m->u.chat_release.stream);
		break;
	default:
		log_debug("ignored %s from %s.%u", proto_type_name(m->type),
		    role_name(m->src_role), m->src_instance);
		break;
	}
	adm_set_gauge(g->w, ADM_G_UPDATED_AT, now_ms());
}

/* --- timers, configuration --------------------------------------------------*/

/* on_scan - every SCAN_MS: reclaim, drain the buckets, roll seconds. */
static void
on_scan(evutil_socket_t fd, short what, void *arg)
{
	struct adm *g = arg;
	uint64_t now = now_ms();
	struct adm_reclaimed r;
	struct admit_usage u;

	(void)fd;
	(void)what;
	adm_reclaim(g->w, now, &r);
	if (r.dead_ingress + r.dead_provider + r.expired > 0)
		log_info("tickets reclaimed: %u of a dead ingress, %u of a "
			 "dead provider, %u expired",
		    r.dead_ingress, r.dead_provider, r.expired);
	levels_drain(g, &enforce_levels, now, &u);
	levels_drain(g, &shadow_levels, now, &u);
	seconds_roll(g, now);
	adm_set_gauge(g->w, ADM_G_UPDATED_AT, now);
}

/* publish_limits - the policy from the config, and into the area. */
static void
publish_limits(struct adm *g)
{
	const struct config *c = CFG(g);

	admit_policy_from_config(c, &g->policy);
	for (unsigned d = 0; d < ADMIT_NDIMS; d++) {
		adm_set_dim(g->w, d, ADM_F_LIMIT, g->policy.limit[d]);
		adm_set_dim(g->w, d, ADM_F_ENFORCE,
		    (g->policy.enforce >> d) & 1u);
	}
	adm_set_setting(g->w, ADM_S_GATEWAY_MODE, admit_gateway_mode(c));
	adm_set_setting(g->w, ADM_S_SHADOW_MODE, (uint64_t)g->policy.shadow);
	adm_set_setting(g->w, ADM_S_TOOL_PER_MSG, g->policy.tool_per_msg);
	adm_set_setting(g->w, ADM_S_TICKET_TTL_MS,
	    (uint64_t)c->admission_ticket_ttl_ms);
	adm_set_setting(g->w, ADM_S_RETRY_AFTER_MS,
	    (uint64_t)c->admission_retry_after_ms);
	adm_set_setting(g->w, ADM_S_JITTER_PCT,
	    (uint64_t)c->admission_retry_after_jitter_pct);
	adm_set_setting(g->w, ADM_S_SAMPLE_PCT,
	    (uint64_t)c->admission_allowed_event_sample_pct);
	adm_set_setting(g->w, ADM_S_SCAN_MS, SCAN_MS);
	adm_set_setting(g->w, ADM_S_CONFIGURED_AT, now_ms());
}

static void
adm_timer(struct role_ctx *ctx)
{
	struct adm *g = ctx->priv;

	tel_flush(&g->tel, now_ms(), tel_send, g);
}

static void
adm_reload(struct role_ctx *ctx, const struct config *old)
{
	(void)old;
	publish_limits(ctx->priv);
}

static int
adm_init(struct role_ctx *ctx)
{
	struct adm *g = &the_adm;
	struct timeval tv = { 0, SCAN_MS * 1000 };

	g->ctx = ctx;
	ctx->priv = g;
	g->w = adm_writer_open(&ctx->shm, now_ms());
	if (g->w == NULL) {
		log_err("the shared-memory segment has no admission area");
		return -1;
	}
	if (adm_inflight(g->w) > 0)
		log_info("resuming with %u ticket(s) held",
		    adm_inflight(g->w));
	publish_limits(g);
	link_on_giveup(ctx->link, giveup, g);
	g->scan = event_new(ctx->base, -1, EV_PERSIST, on_scan, g);
	if (g->scan == NULL || event_add(g->scan, &tv) != 0)
		return -1;
	on_scan(-1, 0, g); /* reclaim what died while we were down */
	return 0;
}

static void
adm_exit(struct role_ctx *ctx)
{
	struct adm *g = ctx->priv;

	if (g == NULL)
		return;
	tel_flush(&g->tel, UINT64_MAX, tel_send, g);
	if (g->scan != NULL)
		event_free(g->scan);
	adm_writer_close(g->w);
	g->w = NULL;
}

static const struct role_ops admission_ops = {
	.role = ROLE_ADMISSION,
	.init = adm_init,
	.on_message = adm_message,
	.on_timer = adm_timer,
	.on_reload = adm_reload,
	.on_exit = adm_exit,
};

int
main(int argc, char **argv)
{
	return role_main(argc, argv, &admission_ops);
}
