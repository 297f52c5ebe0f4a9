/*
 * monitor - maintenance, alerts and the admin HTTP listener (SPEC §8).
 *
 * Owns: the rate-limit and admission events the other roles send
 * (deduplicated on their 5-second key, gate/events, and written to the
 * LMDB table events with monitor.events_ttl_ms); the sweeps that keep
 * shared state from leaking -- bulkhead leases of dead or expired holders
 * (monitor.lease_sweep_interval_ms), expired rows of events, alerts,
 * idem and cache, and tool jobs past TOOL_JOB_TTL_MS / dead letters past
 * TOOL_JOB_DLQ_TTL_MS (monitor.sweep_interval_ms, on a thread of its own),
 * LMDB reader slots of dead processes (every minute) --; the alert rules
 * (gate/alerts), checked every monitor.alert_interval_ms -- rate limits,
 * the delivery queue's health, crash loops in the process table, the
 * LMDB map's usage -- and the bulkhead saturation warnings the roles
 * send, each alert key raised at most once per its cooldown, stored in
 * the table alerts and sent to Sentry (a failed send is kept pending and
 * sent again); the map-usage gauges (monitor.storeMapUsagePct); and the
 * admin listener (admin.listen, loopback by default): GET /metrics
 * (every counter and gauge of the segment in the Prometheus text format,
 * shm/metrics), GET /snapshot (the JSON of relstat -j, shm/snapshot),
 * GET /healthz (200 while the monitor runs) and GET /readyz (200 when
 * every process of the table is ready, else 503), both JSON.
 * Any other admin path is a classified 404.
 *
 * Must never: block its loop (the queue scan and the map usage are read
 * on a thread of their own), or serve the admin listener with anything
 * but a classified answer.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "daemons/skeleton.h"
#include "gate/errors.h"
#include "http/server.h"
#include "config.h"
#include "gate/alerts.h"
#include "gate/delivq.h"
#include "gate/events.h"
#include "gate/outcall.h"
#include "http/client.h"
#include "gate/replay.h"
#include "gate/jobq.h"
#include "gate/storesnap.h"
#include "gate/toolcache.h"
#include "shm/bulkhead.h"
#include "shm/metrics.h"
#include "shm/requests.h"
#include "shm/snapshot.h"
#include "util/log.h"
#include "util/util.h"

#define READERS_EVERY_S 60
#define SWEEP_BATCH 1000     /* rows per sweep transaction */
#define SWEEP_MAX 100000     /* rows per table per sweep */
#define JOB_SWEEP_BATCH 1000 /* tool jobs per transaction of a sweep */
#define SNAPSHOT_ROWS 20 /* as relstat -j without -l */
#define SNAPSHOT_WINDOW_MS (60 * 60000ull) /* as relstat -j without -w */
#define SNAPSHOT_SCAN_ROWS 20000 /* rows a store section reads on the loop */

static unsigned ticks;
static uint64_t next_lease_sweep, next_store_sweep;

/* The events of the open 5-second windows, and the rows they left that
 * go to the store together in the next commit. */
static struct ev_table *events;
struct ev_batch {
	struct ev_row *rows;
	size_t n, cap;
	uint64_t ttl_ms;
};
static struct ev_batch *pending;

static void ev_commit(struct role_ctx *ctx, int all);

/* The store sweep's thread (see store_sweeps). */
static int sweeping;      /* a sweep thread runs */
static pthread_t sweep_tid; /* the last one, joined before the next and
                               at exit */
static int sweep_started;

/* What the probe thread reads from the store, off the loop: the delivery
 * queue's health and the map's usage. */
struct probe {
	int check;      /* for an alert check (else only the gauges) */
	int queue_rule; /* the queue is read (TOOL_QUEUE_ALERTS_ENABLED) */
	uint64_t now;   /* when it started */
	uint64_t since; /* dead letters counted from here */
	int queue_rc, usage_rc;
	struct delivq_stats queue;
	uint64_t used, map;
};

/* Alerts: the outbound calls to Sentry, when the rules run next, the
 * keys this monitor raised (their cooldown holds before the row is
 * stored), the restarts seen in the process table, the probe thread. */
static struct {
	struct httpc *http;
	struct outcall_env out;
	uint64_t next_check;
	unsigned in_flight;
	json_t *raised; /* alert key -> createdAt */
	struct alert_crashes crashes;
	struct probe probe;
	pthread_t probe_tid;
	int probe_started; /* a thread to join */
	int probing;       /* it runs (atomic) */
	int check_wanted;  /* a check came while a gauge probe ran */
} al;

static struct {
	struct role_ctx *ctx;
	int fd;
	struct httpd *httpd;
	char *code_header; /* the server's copy outlives a reload's config */
} admin = { .fd = -1 };

/* --- admin HTTP -----------------------------------------------------------*/

static void
admin_reply(struct httpd_req *req, int status, json_t *body)
{
	struct httpd_header h = { "Content-Type", "application/json" };
	char *text = json_dumps(body, JSON_COMPACT);

	httpd_respond(req, status, &h, 1, text, strlen(text));
	free(text);
	json_decref(body);
}

static void
admin_error(struct httpd_req *req, enum rg_error e, const char *message)
{
	struct httpd_header h[3] = {
		{ "Content-Type", "application/json" },
		{ admin.ctx->cfg->http_error_code_header, rg_error_code(e) },
		{ "Allow", "GET, HEAD" },
	};
	char body[512];
	size_t len = rg_error_body(body, sizeof(body), e, message);

	httpd_respond(req, rg_error_status(e), h,
	    e == RG_E_METHOD_NOT_ALLOWED ? 3 : 2, body, len);
}

/* readiness - every used slot of the process table; *ready is 1 when all
 * of them are ready. */
static json_t *
readiness(const struct shm_seg *seg, int *ready)
{
	json_t *procs = json_array();

	*ready = 1;
	for (unsigned s = 0; s < shm_proc_count(seg); s++) {
		const struct shm_proc *p = shm_proc(seg, s);
		uint32_t st = __atomic_load_n(&p->state, __ATOMIC_ACQUIRE);

		if (st == SHM_STATE_UNUSED)
			continue;
		if (st != SHM_STATE_READY)
			*ready = 0;
		json_array_append_new(procs,
		    json_pack("{s:s,s:i,s:i,s:s}", "role",
			role_name(SHM_LOAD(&p->role)), "instance",
			(int)SHM_LOAD(&p->instance), "pid",
			(int)SHM_LOAD(&p->pid), "state", shm_state_name(st)));
	}
	return procs;
}

static int64_t
admin_head(void *arg, struct httpd_req *req)
{
	const char *path = httpd_req_path(req);
	const char *method = httpd_req_method(req);
	struct role_ctx *ctx = arg;
	json_t *procs;
	int ready;

	if (strcmp(path, "/healthz") != 0 && strcmp(path, "/readyz") != 0 &&
	    strcmp(path, "/metrics") != 0 && strcmp(path, "/snapshot") != 0) {
		admin_error(req, RG_E_NOT_FOUND,
		    "The admin listener serves /metrics, /snapshot, /healthz "
		    "and /readyz.");
		return -1;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		admin_error(req, RG_E_METHOD_NOT_ALLOWED, NULL);
		return -1;
	}
	if (strcmp(path, "/metrics") == 0) {
		struct httpd_header h = { "Content-Type",
			"text/plain; version=0.0.4; charset=utf-8" };
		size_t len;
		char *text = metrics_render(&ctx->shm, &len);

		httpd_respond(req, 200, &h, 1, text, len);
		free(text);
		return -1;
	}
	if (strcmp(path, "/snapshot") == 0) {
		json_t *snap = snapshot_json(&ctx->shm, SNAPSHOT_ROWS);

		storesnap_add(snap, ctx->store, SNAPSHOT_WINDOW_MS,
		    SNAPSHOT_ROWS, SNAPSHOT_SCAN_ROWS);

		json_object_set_new(json_object_get(snap, "header"),
		    "segment", json_string(ctx->cfg->shm_name));
		admin_reply(req, 200, snap);
		return -1;
	}
	if (strcmp(path, "/healthz") == 0) {
		admin_reply(req, 200,
		    json_pack("{s:s,s:s,s:i,s:I}", "status", "ok", "role",
			"monitor", "pid", (int)getpid(), "configGeneration",
			(json_int_t)SHM_LOAD(&ctx->self->config_gen)));
		return -1;
	}
	procs = readiness(&ctx->shm, &ready);
	admin_reply(req, ready ? 200 : 503,
	    json_pack("{s:b,s:o}", "ready", ready, "processes", procs));
	return -1;
}

/* HTTP-level errors (bad request, timeouts) get the server's classified
 * fallback body with the configured code header. */
static const struct httpd_ops admin_http = {
	.on_head = admin_head,
};

static void own_bulkhead_alert(void *arg, unsigned provider, uint32_t max);

static int
monitor_init(struct role_ctx *ctx)
{
	const struct config *c = ctx->cfg;
	struct httpd_limits lim = {
		.max_head_bytes = 8192,
		.max_connections = 64,
	};
	char err[256];

	admin.ctx = ctx;
	admin.code_header = xstrdup(c->http_error_code_header);
	lim.error_code_header = admin.code_header;
	admin.fd = role_listener(ROLE_ADMIN_FD_ENV);
	if (admin.fd < 0)
		admin.fd = httpd_listen(c->admin_listen, 0, err, sizeof(err));
	if (admin.fd < 0) {
		log_err("admin.listen %s: %s", c->admin_listen, err);
		return -1;
	}
	admin.httpd = httpd_new(ctx->base, admin.fd, &admin_http, ctx, &lim);
	al.http = httpc_new(ctx->base, &(struct httpc_opts){
		.ca_file = c->tls_ca_file, .max_idle_per_origin = 4 });
	if (al.http == NULL)
		return -1;
	role_outcall_env(ctx, al.http, &al.out);
	/* this role's own saturation warnings go straight to the rule */
	al.out.alert = own_bulkhead_alert;
	al.raised = json_object();
	log_info("admin HTTP on %s (/metrics, /snapshot, /healthz, /readyz)",
	    c->admin_listen);
	return 0;
}

static void
monitor_exit(struct role_ctx *ctx)
{
	/* what the open windows hold is written before the writer stops;
	 * a Sentry call in flight is given up (its alert stays pending) */
	ev_commit(ctx, 1);
	/* the store and the segment go after this: the sweep ends first */
	if (sweep_started)
		pthread_join(sweep_tid, NULL);
	sweep_started = 0;
	if (al.probe_started)
		pthread_join(al.probe_tid, NULL);
	al.probe_started = 0;
	json_decref(al.raised);
	al.raised = NULL;
	if (al.http != NULL)
		httpc_free(al.http);
	al.http = NULL;
	role_commit_drain(ctx);
	free(events);
	events = NULL;
	if (admin.httpd != NULL)
		httpd_free(admin.httpd);
	if (admin.fd >= 0)
		close(admin.fd);
	free(admin.code_header);
	admin.httpd = NULL;
	admin.fd = -1;
	admin.code_header = NULL;
}

/* --- events -----------------------------------------------------------------*/

static void
ev_pending(void *arg, const struct ev_row *r)
{
	(void)arg;
	if (pending == NULL)
		pending = xcalloc(1, sizeof(*pending));
	if (pending->n == pending->cap) {
		pending->cap = pending->cap ? pending->cap * 2 : 64;
		pending->rows = xrealloc(pending->rows,
		    pending->cap * sizeof(*pending->rows));
	}
	pending->rows[pending->n++] = *r;
}

static int
ev_apply(struct store_txn *txn, void *arg)
{
	struct ev_batch *b = arg;

	for (size_t i = 0; i < b->n; i++) {
		int rc = ev_write(txn, &b->rows[i], b->ttl_ms);

		if (rc != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

static void
ev_done(struct role_ctx *ctx, void *arg, int rc)
{
	struct ev_batch *b = arg;

	if (rc == STORE_OK)
		SHM_ADD_N(&ctx->self->counters.mon_events_stored, b->n);
	else
		SHM_ADD_N(&ctx->self->counters.mon_event_store_failures, b->n);
	free(b->rows);
	free(b);
}

/* ev_commit - the windows that ended (all: every one) to the store */
static void
ev_commit(struct role_ctx *ctx, int all)
{
	struct ev_batch *b;

	if (events == NULL)
		return;
	ev_flush(events, now_ms(), all, ev_pending, NULL);
	b = pending;
	pending = NULL;
	if (b == NULL)
		return;
	b->ttl_ms = (uint64_t)ctx->cfg->monitor_events_ttl_ms;
	if (role_commit(ctx, ev_apply, ev_done, b) != 0)
		ev_done(ctx, b, STORE_EIO);
}

static void
ev_message(struct role_ctx *ctx, const struct proto_rl_event *e)
{
	uint32_t count = e->count > 0 ? e->count : 1;
	struct shm_counters *c = &ctx->self->counters;

	if (events == NULL)
		events = xcalloc(1, sizeof(*events));
	SHM_INC(&c->mon_events_received);
	SHM_ADD_N(&c->mon_event_occurrences, count);
	/* a window's first occurrence opens its row, every other one is a
	 * duplicate */
	if (ev_note(events, e, ev_pending, NULL))
		count--;
	SHM_ADD_N(&c->mon_event_duplicates, count);
}

/* --- alerts ------------------------------------------------------------------*/

#define SENTRY_TIMEOUT_MS 10000
#define SENTRY_RESEND_MAX 16 /* pending alerts sent again per check */


#define QUEUE_SCAN_MAX 100000 /* delivery rows read per queue check */

/* dsn_for - the Sentry DSN of an alert kind: RATE_LIMIT_SENTRY_DSN or
 * TOOL_QUEUE_SENTRY_DSN for theirs, else SENTRY_DSN; NULL: none */
static const char *
dsn_for(const struct config *c, const char *kind)
{
	const char *own = NULL;

	if (kind != NULL && strcmp(kind, "ratelimit") == 0)
		own = c->rate_limit_sentry_dsn;
	else if (kind != NULL && strcmp(kind, "queue") == 0)
		own = c->tool_queue_sentry_dsn;
	if (own != NULL && own[0])
		return own;
	if (c->sentry_dsn != NULL && c->sentry_dsn[0])
		return c->sentry_dsn;
	return NULL;
}

/* dsn_of - the parsed DSN of kind in d; 0 when there is none (or it is
 * not valid: said in the log) */
static int
dsn_of(const struct config *c, const char *kind, struct alert_dsn *d)
{
	const char *dsn = dsn_for(c, kind);
	char err[160];

	if (dsn == NULL)
		return 0;
	if (alert_dsn_parse(dsn, d, err, sizeof(err)) == 0)
		return 1;
	log_warn("the Sentry DSN of %s alerts: %s: they are not sent", kind,
	    err);
	return 0;
}

struct sentry_call {
	struct role_ctx *ctx;
	json_t *row;
	struct outcall *oc;
	char *envelope;
	char auth[256];
};

static int
row_apply(struct store_txn *txn, void *arg)
{
	return alert_put(txn, arg);
}

static void
row_done(struct role_ctx *ctx, void *arg, int rc)
{
	if (rc != STORE_OK)
		log_warn("alert %s not stored: %s",
		    json_string_value(json_object_get(arg, "alertKey")),
		    store_rc_name(rc));
	(void)ctx;
	json_decref(arg);
}

/* row_save - write row (a copy: the writer thread reads it while the
 * loop goes on changing the row's Sentry state) */
static void
row_save(struct role_ctx *ctx, json_t *row)
{
	json_t *copy = json_deep_copy(row);

	if (copy != NULL && role_commit(ctx, row_apply, row_done, copy) != 0)
		json_decref(copy);
}

static void
sentry_done(void *arg, const struct outcall_result *res)
{
	struct sentry_call *sc = arg;
	int ok = res->verdict == OUTCALL_ANSWERED && res->status >= 200 &&
	    res->status < 300;
	char why[160];

	if (ok) {
		SHM_INC(&sc->ctx->self->counters.mon_alerts_sent);
		json_object_set_new(sc->row, "sentry", json_string("sent"));
		json_object_set_new(sc->row, "sentryError", json_string(""));
	} else {
		SHM_INC(&sc->ctx->self->counters.mon_alert_send_failures);
		if (res->verdict == OUTCALL_ANSWERED)
			snprintf(why, sizeof(why), "HTTP %d", res->status);
		else
			snprintf(why, sizeof(why), "%s",
			    outcall_verdict_name(res->verdict));
		json_object_set_new(sc->row, "sentryError", json_string(why));
		log_warn("alert %s: Sentry refused or unreachable (%s); sent "
			 "again at the next check",
		    json_string_value(json_object_get(sc->row, "alertKey")),
		    why);
	}
	row_save(sc->ctx, sc->row);
	json_decref(sc->row);
	free(sc->envelope);
	free(sc);
	al.in_flight--;
}

/* sentry_send - row to Sentry through the outbound-call module (circuit
 * and bulkhead "sentry"); its state is saved when the call is over */
static void
sentry_send(struct role_ctx *ctx, json_t *row, const struct alert_dsn *d)
{
	/* outcall keeps a pointer to its callbacks */
	static const struct outcall_cb cb = { .on_done = sentry_done };
	struct sentry_call *sc = xcalloc(1, sizeof(*sc));
	struct outcall_result refused;
	struct httpc_header h[2];
	size_t len;

	sc->ctx = ctx;
	sc->row = json_incref(row);
	sc->envelope = alert_envelope(row, now_ms(), &len);
	snprintf(sc->auth, sizeof(sc->auth),
	    "Sentry sentry_version=7, sentry_key=%s, sentry_client=relgate/%s",
	    d->key, PACKAGE_VERSION);
	h[0] = (struct httpc_header){ "Content-Type",
		"application/x-sentry-envelope" };
	h[1] = (struct httpc_header){ "X-Sentry-Auth", sc->auth };
	json_object_set_new(row, "sentryAttempts",
	    json_integer(json_integer_value(
		json_object_get(row, "sentryAttempts")) + 1));
	al.in_flight++;
	sc->oc = outcall_start(&al.out, CB_PROV_SENTRY,
	    &(struct httpc_req){ .method = "POST",
		.url = d->url,
		.headers = h,
		.nheaders = 2,
		.body = sc->envelope,
		.body_len = len,
		.connect_ms = SENTRY_TIMEOUT_MS,
		.first_byte_ms = SENTRY_TIMEOUT_MS,
		.idle_ms = SENTRY_TIMEOUT_MS,
		.total_ms = SENTRY_TIMEOUT_MS },
	    &(struct outcall_policy){ .max_attempts = 1, .collect_max = 4096 },
	    &cb, sc, NULL, &refused);
	if (sc->oc == NULL)
		sentry_done(sc, &refused);
}

/*
 * alert_raise - due (gate/alerts), unless its key is in its cooldown:
 * stored first (a failed send never loses it), then sent to Sentry when
 * its kind has a DSN.  1 if raised.
 */
static int
alert_raise(struct role_ctx *ctx, json_t *due, uint64_t cooldown_ms,
    uint64_t now)
{
	const char *key = json_string_value(json_object_get(due, "alertKey"));
	uint64_t last = alert_last(ctx->store, key);
	uint64_t mine = (uint64_t)json_integer_value(
	    json_object_get(al.raised, key));
	struct alert_dsn d;
	int sentry;
	json_t *row;

	/* the store's newest row, or this monitor's when the row is not
	 * stored yet; a store error reads as "just raised": no storm */
	if (last != UINT64_MAX && mine > last)
		last = mine;
	if (alert_in_cooldown(last, now, cooldown_ms)) {
		SHM_INC(&ctx->self->counters.mon_alerts_cooled);
		return 0;
	}
	sentry = dsn_of(ctx->cfg, json_string_value(json_object_get(due,
	    "kind")), &d);
	row = alert_row(due, sentry, now);
	json_object_set_new(al.raised, key, json_integer((json_int_t)now));
	SHM_INC(&ctx->self->counters.mon_alerts_raised);
	log_warn("alert %s", json_string_value(json_object_get(row,
	    "message")));
	row_save(ctx, row);
	if (sentry)
		sentry_send(ctx, row, &d);
	json_decref(row);
	return 1;
}

/* raise_all - every alert of due (an array, taken) with one cooldown */
static void
raise_all(struct role_ctx *ctx, json_t *due, uint64_t cooldown_ms,
    uint64_t now)
{
	json_t *v;
	size_t i;

	json_array_foreach(due, i, v)
		alert_raise(ctx, v, cooldown_ms, now);
	json_decref(due);
}

/* bulkhead_alert - a saturation warning about provider, from reporter */
static void
bulkhead_alert(struct role_ctx *ctx, unsigned provider,
    const char *reporter)
{
	struct outcall_limits lim;

	outcall_limits(ctx->cfg, provider, &lim);
	raise_all(ctx, json_pack("[o]", alert_bulkhead_rule(
	    bh_provider_name(provider), reporter, lim.max_concurrent)),
	    (uint64_t)ctx->cfg->bulkhead_sentry_cooldown_ms, now_ms());
}

/* own_bulkhead_alert - the monitor's own outbound calls (the bulkhead
 * sentry) are saturated */
static void
own_bulkhead_alert(void *arg, unsigned provider, uint32_t max)
{
	(void)max;
	bulkhead_alert(arg, provider, "monitor.0");
}

/* warning_message - PROTO_T_ALERT from a role: a bulkhead saturation
 * warning becomes the alert bulkhead:<provider>; anything else is only
 * logged */
static void
warning_message(struct role_ctx *ctx, const struct proto_msg *m)
{
	const struct proto_alert *a = &m->u.alert;
	char reporter[64];
	unsigned p;

	log_warn("alert from %s.%u: %.*s %.*s: %.*s", role_name(m->src_role),
	    m->src_instance, (int)a->kind.len, a->kind.p, (int)a->key.len,
	    a->key.p, (int)a->message.len, a->message.p);
	if (a->kind.len != strlen("bulkhead_saturated") ||
	    memcmp(a->kind.p, "bulkhead_saturated", a->kind.len) != 0)
		return;
	for (p = 0; p < BH_NPROVIDERS; p++)
		if (strlen(bh_provider_name(p)) == a->key.len &&
		    memcmp(bh_provider_name(p), a->key.p, a->key.len) == 0)
			break;
	if (p == BH_NPROVIDERS) {
		SHM_INC(&ctx->self->counters.mon_alert_warnings_dropped);
		return;
	}
	snprintf(reporter, sizeof(reporter), "%s.%u", role_name(m->src_role),
	    m->src_instance);
	bulkhead_alert(ctx, p, reporter);
}

/* crash_note - the restart counters of the process table, once a second */
static void
crash_note(struct role_ctx *ctx, uint64_t now)
{
	for (unsigned s = 0; s < shm_proc_count(&ctx->shm); s++) {
		const struct shm_proc *p = shm_proc(&ctx->shm, s);

		if (SHM_LOAD(&p->state) == SHM_STATE_UNUSED)
			continue;
		alert_crash_note(&al.crashes, s, SHM_LOAD(&p->role),
		    SHM_LOAD(&p->instance), SHM_LOAD(&p->restarts), now);
	}
}

/* crash_check - the crashloop rule over the restarts of the window */
static void
crash_check(struct role_ctx *ctx, uint64_t now)
{
	const struct config *c = ctx->cfg;
	uint64_t window = (uint64_t)c->monitor_alert_window_ms;
	json_t *procs = json_array();

	for (unsigned s = 0; s < shm_proc_count(&ctx->shm); s++) {
		const struct shm_proc *p = shm_proc(&ctx->shm, s);
		char buf[64];
		const char *exit;

		if (SHM_LOAD(&p->state) == SHM_STATE_UNUSED)
			continue;
		exit = shm_exit_str(SHM_LOAD(&p->last_exit), buf, sizeof(buf));
		json_array_append_new(procs,
		    json_pack("{s:s,s:i,s:I,s:i,s:s?}", "role",
			role_name(SHM_LOAD(&p->role)), "instance",
			(int)SHM_LOAD(&p->instance), "restarts",
			(json_int_t)SHM_LOAD(&p->restarts),
			"restartsInWindow",
			(int)alert_crash_count(&al.crashes, s,
			    now > window ? now - window : 0),
			"lastExit", exit));
	}
	raise_all(ctx, alert_crashloop_rule(procs,
	    (uint64_t)c->monitor_crashloop_restarts, window),
	    (uint64_t)c->monitor_alert_cooldown_ms, now);
	json_decref(procs);
}

/* probe_thread - the queue's health and the map's usage (see struct
 * probe), read while the loop goes on */
static void *
probe_thread(void *arg)
{
	struct role_ctx *ctx = arg;
	struct probe *pr = &al.probe;

	pr->usage_rc = store_usage(ctx->store, &pr->used, &pr->map);
	pr->queue_rc = pr->queue_rule ? delivq_stats(ctx->store, pr->now,
	    pr->since, QUEUE_SCAN_MAX, &pr->queue) : STORE_OK;
	__atomic_store_n(&al.probing, 0, __ATOMIC_RELEASE);
	return NULL;
}

/* probe_start - a probe, unless one runs; check: for the alert rules */
static void
probe_start(struct role_ctx *ctx, int check)
{
	const struct config *c = ctx->cfg;

	if (al.probe_started) {
		/* running, or its result not taken yet */
		al.check_wanted |= check;
		return;
	}
	memset(&al.probe, 0, sizeof(al.probe));
	al.probe.check = check;
	al.probe.queue_rule = check && c->tool_queue_alerts_enabled;
	al.probe.now = now_ms();
	al.probe.since = al.probe.now -
	    (uint64_t)c->tool_queue_alert_window_min * 60000;
	__atomic_store_n(&al.probing, 1, __ATOMIC_RELEASE);
	if (pthread_create(&al.probe_tid, NULL, probe_thread, ctx) != 0) {
		log_warn("alerts: no thread to read the queue and the map");
		__atomic_store_n(&al.probing, 0, __ATOMIC_RELEASE);
		return;
	}
	al.probe_started = 1;
}

/* probe_done - once a probe is over: the gauges, and for a check the
 * queue and store rules */
static void
probe_done(struct role_ctx *ctx)
{
	const struct config *c = ctx->cfg;
	struct shm_counters *n = &ctx->self->counters;
	struct probe *pr = &al.probe;

	if (!al.probe_started || __atomic_load_n(&al.probing,
					 __ATOMIC_ACQUIRE))
		return;
	pthread_join(al.probe_tid, NULL);
	al.probe_started = 0;
	if (pr->usage_rc == STORE_OK) {
		SHM_STORE(&n->mon_store_map_bytes, pr->map);
		SHM_STORE(&n->mon_store_used_bytes, pr->used);
		SHM_STORE(&n->mon_store_usage_pct,
		    pr->map ? pr->used * 100 / pr->map : 0);
	}
	if (!pr->check) {
		if (al.check_wanted)
			probe_start(ctx, 1);
		al.check_wanted = 0;
		return;
	}
	if (pr->usage_rc == STORE_OK)
		raise_all(ctx, alert_store_rule(pr->used, pr->map,
		    (uint64_t)c->store_map_alert_pct),
		    (uint64_t)c->monitor_alert_cooldown_ms, now_ms());
	if (pr->queue_rule && pr->queue_rc == STORE_OK &&
	    c->tool_queue_alerts_enabled) {
		struct alert_queue_limits lim = {
			.max_queued = (uint64_t)c->tool_queue_alert_max_queued,
			.max_dead = (uint64_t)c->tool_queue_alert_max_dlq,
			.max_queued_age =
			    (uint64_t)c->tool_queue_alert_max_queued_age_ms,
			.max_running_age =
			    (uint64_t)c->tool_queue_alert_max_running_age_ms,
			.window_ms = pr->now - pr->since,
		};

		raise_all(ctx, alert_queue_rule(&pr->queue, &lim),
		    (uint64_t)c->tool_queue_alert_cooldown_ms, now_ms());
	}
}

/* resend - the alerts Sentry did not take at their time, no more at once
 * than its bulkhead takes */
static void
resend(struct role_ctx *ctx, uint64_t now)
{
	const struct config *c = ctx->cfg;
	json_t *pend, *v;
	size_t i;

	if (al.in_flight > 0)
		return;
	pend = json_array();
	if (alert_list(ctx->store, "pending", NULL,
		(size_t)c->sentry_bulkhead_max_concurrent < SENTRY_RESEND_MAX ?
		    (size_t)c->sentry_bulkhead_max_concurrent :
		    SENTRY_RESEND_MAX,
		pend) == STORE_OK)
		json_array_foreach(pend, i, v) {
			struct alert_dsn d;

			if ((uint64_t)json_integer_value(
				json_object_get(v, "createdAt")) < now &&
			    dsn_of(c, json_string_value(json_object_get(v,
				"kind")), &d))
				sentry_send(ctx, v, &d);
		}
	json_decref(pend);
}

/*
 * alert_check - the rules that read shm and the events at once (rate
 * limits, crash loops); a probe for those that read the queue and the
 * map (probe_done); then the alerts Sentry has not taken yet are sent
 * again.
 */
static void
alert_check(struct role_ctx *ctx)
{
	const struct config *c = ctx->cfg;
	json_t *sum = json_object();
	uint64_t now = now_ms(), window = (uint64_t)c->monitor_alert_window_ms;

	if (ev_summary(ctx->store, now - window, sum, NULL, 0) == STORE_OK)
		raise_all(ctx, alert_ratelimit_rule(sum,
		    (uint64_t)c->rate_limit_alert_min_blocked, window),
		    (uint64_t)c->rate_limit_alert_cooldown_ms, now);
	json_decref(sum);
	crash_check(ctx, now);
	probe_start(ctx, 1);
	resend(ctx, now);
}

/* --- maintenance ----------------------------------------------------------*/


/* the tool jobs' TTLs for the sweep thread (copied: a reload may free
 * the config it came from while the thread runs) */
static uint64_t sweep_job_ttl, sweep_dlq_ttl;

struct job_rm {
	const char *ids;
	unsigned n, removed;
};

static int
job_rm_apply(struct store_txn *txn, void *arg)
{
	struct job_rm *r = arg;

	return jobq_remove_expired(txn, r->ids, r->n, now_ms(), sweep_job_ttl,
	    sweep_dlq_ttl, &r->removed);
}

/* sweep_jobs - tool jobs past TOOL_JOB_TTL_MS and dead letters past
 * TOOL_JOB_DLQ_TTL_MS, JOB_SWEEP_BATCH per transaction; how many */
static unsigned long
sweep_jobs(struct role_ctx *ctx)
{
	char *ids = xmalloc((size_t)JOB_SWEEP_BATCH * (JOBQ_ID_LEN + 1));
	unsigned long total = 0;
	struct job_rm r = { ids, 0, 0 };

	do {
		if (jobq_expired(ctx->store, now_ms(), sweep_job_ttl,
			sweep_dlq_ttl, ids, JOB_SWEEP_BATCH, &r.n) != STORE_OK ||
		    (r.n > 0 && store_run(ctx->store, job_rm_apply, &r) !=
			    STORE_OK)) {
			log_warn("store sweep of jobs failed");
			break;
		}
		total += r.n > 0 ? r.removed : 0;
	} while (r.n == JOB_SWEEP_BATCH && r.removed > 0 && total < SWEEP_MAX);
	free(ids);
	return total;
}

/*
 * sweep_thread - expired rows of the tables without an index, in
 * transactions of SWEEP_BATCH rows, and the tool jobs past their TTL, on
 * a thread of its own: the monitor's loop (the admin listener) does not
 * wait for LMDB.
 */
static void *
sweep_thread(void *arg)
{
	static const enum store_table tables[] = { STORE_EVENTS,
		STORE_ALERTS, STORE_IDEM, STORE_CACHE };
	struct role_ctx *ctx = arg;
	unsigned long total = 0;
	int cleared = 0;

	/* reader slots of killed processes hold old pages from reuse */
	if (store_reader_check(ctx->store, &cleared) == STORE_OK && cleared > 0)
		log_info("store: %d stale reader slot(s) cleared", cleared);
	for (size_t i = 0; i < RG_NELEM(tables); i++) {
		size_t removed = 0;

		if (store_sweep(ctx->store, tables[i], now_ms(), SWEEP_BATCH,
			SWEEP_MAX, &removed) != STORE_OK)
			log_warn("store sweep of %s failed",
			    store_table_name(tables[i]));
		total += (unsigned long)removed;
	}
	total += sweep_jobs(ctx);
	SHM_ADD_N(&ctx->self->counters.mon_swept, total);
	if (total > 0)
		log_info("store sweep: %lu expired row(s) removed", total);
	__atomic_store_n(&sweeping, 0, __ATOMIC_RELEASE);
	return NULL;
}

static void
store_sweeps(struct role_ctx *ctx)
{
	if (__atomic_load_n(&sweeping, __ATOMIC_ACQUIRE))
		return; /* the last one is still at it */
	if (sweep_started)
		pthread_join(sweep_tid, NULL); /* done: at once */
	sweep_started = 0;
	__atomic_store_n(&sweeping, 1, __ATOMIC_RELEASE);
	sweep_job_ttl = (uint64_t)ctx->cfg->tool_job_ttl_ms;
	sweep_dlq_ttl = (uint64_t)ctx->cfg->tool_job_dlq_ttl_ms;
	if (pthread_create(&sweep_tid, NULL, sweep_thread, ctx) != 0) {
		log_warn("store sweep: no thread");
		__atomic_store_n(&sweeping, 0, __ATOMIC_RELEASE);
		return;
	}
	sweep_started = 1;
}

/* tool_gauges - the queue's gauges per tool of the config and per class
 * (the tools area, shm/layout.def TL_*), once a second: the counts from
 * the store's counts row, the oldest ages from the running and due jobs'
 * rows (at most AGES_MAX_ROWS of them: past that the ages are of the
 * rows read). */
#define AGES_MAX_ROWS 5000
static void
tool_gauges(struct role_ctx *ctx)
{
	static struct tl_block *b;
	static json_t *named; /* the tools the rows were named by (a copy) */
	json_t *tools = ctx->cfg->tools, *st, *by, *t, *ages_t, *ages_q;
	uint64_t now = now_ms();
	int cut = 0;
	size_t i;

	if (b == NULL)
		b = tl_claim(&ctx->shm, ctx->slot, (int32_t)getpid());
	if (b == NULL)
		return;
	if (!json_equal(named, tools)) { /* at start, after a reload */
		const char *names[TL_MAX_TOOLS];
		unsigned n = 0;

		json_array_foreach(tools, i, t) {
			const char *nm = json_string_value(json_object_get(t,
			    "name"));

			if (nm != NULL && n < TL_MAX_TOOLS)
				names[n++] = nm;
		}
		tl_tools(b, names, n);
		json_decref(named);
		named = json_deep_copy(tools);
	}
	st = json_object();
	ages_t = json_object();
	ages_q = json_object();
	if (jobq_stats(ctx->store, now, st) == STORE_OK &&
	    jobq_ages(ctx->store, now, AGES_MAX_ROWS, ages_t, ages_q, &cut) ==
		STORE_OK) {
		by = json_object_get(st, "byTool");
		for (i = 0; i < TL_MAX_TOOLS && b->row[i].name[0] != '\0'; i++) {
			const char *nm = b->row[i].name;

			t = json_object_get(by, nm);
			tl_set(b, (int)i, TL_QUEUED, (uint64_t)json_integer_value(
			    json_object_get(t, "queued")));
			tl_set(b, (int)i, TL_RUNNING, (uint64_t)json_integer_value(
			    json_object_get(t, "running")));
			tl_set(b, (int)i, TL_DEAD, (uint64_t)json_integer_value(
			    json_object_get(t, "dead")));
			t = json_object_get(ages_t, nm);
			tl_set(b, (int)i, TL_OLDEST_QUEUED_MS,
			    (uint64_t)json_integer_value(json_object_get(t,
				"oldestQueuedAgeMs")));
			tl_set(b, (int)i, TL_OLDEST_RUNNING_MS,
			    (uint64_t)json_integer_value(json_object_get(t,
				"oldestRunningAgeMs")));
		}
		by = json_object_get(st, "byQos");
		for (unsigned c = 0; c < TL_NCLASSES; c++) {
			const char *cn = tl_class_name(c);
			json_t *a = json_object_get(ages_q, cn);

			t = json_object_get(by, cn);
			tl_class(b, c, (uint64_t)json_integer_value(
					   json_object_get(t, "queued")),
			    (uint64_t)json_integer_value(
				json_object_get(t, "running")),
			    (uint64_t)json_integer_value(
				json_object_get(a, "oldestQueuedAgeMs")),
			    (uint64_t)json_integer_value(
				json_object_get(a, "oldestRunningAgeMs")));
		}
	}
	json_decref(ages_t);
	json_decref(ages_q);
	json_decref(st);
}

static void
monitor_timer(struct role_ctx *ctx)
{
	const struct config *c = ctx->cfg;
	uint64_t now = mono_ms();

	ticks++;
	ev_commit(ctx, 0);
	crash_note(ctx, now_ms());
	probe_done(ctx);
	if (now >= al.next_check) {
		if (al.next_check != 0)
			alert_check(ctx);
		al.next_check = now + (uint64_t)c->monitor_alert_interval_ms;
	}
	if (now >= next_lease_sweep) {
		unsigned n = bh_sweep(&ctx->shm, now_ms());

		if (n > 0)
			log_info("bulkhead sweep: %u lease(s) reclaimed", n);
		next_lease_sweep = now + (uint64_t)c->monitor_lease_sweep_interval_ms;
	}
	if (now >= next_store_sweep) {
		if (next_store_sweep != 0)
			store_sweeps(ctx);
		next_store_sweep = now + (uint64_t)c->monitor_sweep_interval_ms;
	}
	if (ticks % READERS_EVERY_S == 1) {
		int cleared = 0;

		if (store_reader_check(ctx->store, &cleared) == STORE_OK &&
		    cleared > 0)
			log_info("store: %d stale reader slot(s) cleared",
			    cleared);
		probe_start(ctx, 0); /* the map gauges */
	}
	tool_gauges(ctx);
}

static void
monitor_message(struct role_ctx *ctx, const struct proto_msg *m)
{
	if (m->type == PROTO_T_RL_EVENT)
		ev_message(ctx, &m->u.rl_event);
	if (m->type == PROTO_T_ALERT)
		warning_message(ctx, m);
}

static const struct role_ops monitor_ops = {
	.role = ROLE_MONITOR,
	.init = monitor_init,
	.on_timer = monitor_timer,
	.on_message = monitor_message,
	.on_exit = monitor_exit,
};

int
main(int argc, char **argv)
{
	return role_main(argc, argv, &monitor_ops);
}
