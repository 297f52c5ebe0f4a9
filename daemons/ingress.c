/*
 * ingress - the public HTTP surface (SPEC §3).
 *
 * Owns: one SO_REUSEPORT listener per process (http/server), the route
 * table, boundary checks (methods, media types, sizes, Origin, tokens,
 * signatures, schemas), per-IP/per-user rate limits (shm/ratelimit), and
 * the durable hand-off of webhooks: idempotency claims and delivery rows
 * are written in one group-commit transaction (gate/replay through the
 * store's writer thread) and the 200 is sent only after that commit.
 *
 * Must never: block its event loop (the commit runs on the store's writer
 * thread, which wakes the loop through an eventfd), answer an error
 * without its code header and JSON body, acknowledge a webhook that is not
 * stored, or log a secret.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "daemons/skeleton.h"
#include "gate/chatreq.h"
#include "gate/clientip.h"
#include "gate/crypto.h"
#include "gate/errors.h"
#include "gate/jwt.h"
#include "gate/oauthstate.h"
#include "gate/query.h"
#include "gate/replay.h"
#include "gate/retry.h"
#include "gate/routes.h"
#include "gate/webhook.h"
#include "http/client.h"
#include "http/server.h"
#include "shm/bulkhead.h"
#include "shm/circuit.h"
#include "shm/ratelimit.h"
#include "util/log.h"
#include "util/util.h"

#define KIB 1024
#define OAUTH_PARAM_MAX 2048
#define CHALLENGE_MAX 256

enum method {
	M_GET = 1u << 0,
	M_POST = 1u << 1,
	M_OPTIONS = 1u << 2,
};

struct ing;
typedef int64_t (*head_fn)(struct ing *g, struct httpd_req *req);
typedef void (*body_fn)(struct ing *g, struct httpd_req *req);

static int64_t chat_head(struct ing *, struct httpd_req *);
static void chat_body(struct ing *, struct httpd_req *);
static int64_t health_head(struct ing *, struct httpd_req *);
static int64_t push_head(struct ing *, struct httpd_req *);
static void push_body(struct ing *, struct httpd_req *);
static int64_t wa_head(struct ing *, struct httpd_req *);
static void wa_body(struct ing *, struct httpd_req *);
static int64_t oauth_head(struct ing *, struct httpd_req *);
static void oauth_body(struct ing *, struct httpd_req *);

/*
 * The route table (SPEC §3): ROUTE(ID, path, methods, body limit, head
 * handler, body handler).  The head handler answers at once (returns -1)
 * or returns the body limit; the body handler runs when the body is in.
 */
#define INGRESS_ROUTES(R)                                                 \
	R(CHAT, "/api/chat", M_POST | M_OPTIONS, 64 * KIB, chat_head,     \
	    chat_body)                                                    \
	R(CHAT_HEALTH, "/api/chat/health", M_GET, 0, health_head, NULL)   \
	R(GMAIL_PUSH, "/api/gmail/push", M_POST, 256 * KIB, push_head,    \
	    push_body)                                                    \
	R(WA_WEBHOOK, "/api/whatsapp/webhook", M_GET | M_POST, 256 * KIB, \
	    wa_head, wa_body)                                             \
	R(GMAIL_OAUTH, "/api/gmail/auth/callback", M_GET, 0, oauth_head,  \
	    oauth_body)

enum route_id {
#define ROUTE_ENUM(id, path, m, lim, h, b) ROUTE_##id,
	INGRESS_ROUTES(ROUTE_ENUM)
#undef ROUTE_ENUM
	ROUTE_COUNT
};

static const struct route {
	const char *path;
	unsigned methods;
	int64_t limit;
	head_fn head;
	body_fn body;
} routes[ROUTE_COUNT] = {
#define ROUTE_ROW(id, path, m, lim, h, b) { path, m, lim, h, b },
	INGRESS_ROUTES(ROUTE_ROW)
#undef ROUTE_ROW
};

/*
 * What a request carries (httpd_req_data): a tag saying whether it is one
 * of the routes above or a proxied route of the config.  Both structs
 * start with the kind.
 */
enum { TAG_ROUTE = 1, TAG_PROXY };

struct route_tag {
	int kind; /* TAG_ROUTE */
	enum route_id id;
};

static const struct route_tag route_tags[ROUTE_COUNT] = {
#define ROUTE_TAGS(id, path, m, lim, h, b) { TAG_ROUTE, ROUTE_##id },
	INGRESS_ROUTES(ROUTE_TAGS)
#undef ROUTE_TAGS
};

/* A webhook waiting for its commit. */
struct pending {
	uint64_t req_id;
	enum route_id route;
	struct replay_batch batch;
	struct replay_item *items;
	char *data; /* keys and payloads the batch points into */
};

struct ing {
	struct role_ctx *ctx;
	struct httpd *httpd;
	int listen_fd;
	struct cidr_set trusted;
	uint64_t seq;
	unsigned inflight;  /* webhooks waiting for their commit */
	unsigned fresh;     /* new delivery rows not announced yet */
	struct event *wake; /* announces them once per loop pass */
	struct httpc *http; /* outbound: OAuth exchange, proxied routes */
	struct jwt_verifier *jwt; /* NULL: auth.jwt not configured */
	struct proxy_route *proxies;
	size_t nproxies;
};

static struct ing the_ing;

#define CFG(g) ((g)->ctx->cfg)
#define COUNT(g, field) SHM_INC(&(g)->ctx->self->counters.field)

/* --- answers --------------------------------------------------------------*/

struct hdrs {
	struct httpd_header h[8];
	size_t n;
	char retry[24];
};

static void
hdr_add(struct hdrs *h, const char *name, const char *value)
{
	if (h->n < RG_NELEM(h->h))
		h->h[h->n++] = (struct httpd_header){ name, value };
}

/* origin_allowed - Origin is one of http.allowed_origins. */
static int
origin_allowed(const struct ing *g, const char *origin)
{
	const struct config_strlist *l = &CFG(g)->http_allowed_origins;

	for (size_t i = 0; origin != NULL && i < l->n; i++)
		if (strcmp(l->v[i], origin) == 0)
			return 1;
	return 0;
}

/* cors - CORS headers for an allowed Origin on the chat routes. */
static void
cors(const struct ing *g, struct httpd_req *req, struct hdrs *h)
{
	const char *origin = httpd_req_header(req, "origin");

	if (origin_allowed(g, origin)) {
		hdr_add(h, "Access-Control-Allow-Origin", origin);
		hdr_add(h, "Vary", "Origin");
	}
}

/*
 * fail - the classified error answer: status, code header, JSON body and,
 * when retry_s > 0, Retry-After.  h may carry extra headers.
 */
/* u64_str - decimal of v into buf (>= 21 bytes); returns buf. */
static const char *
u64_str(char *buf, uint64_t v)
{
	char tmp[21];
	size_t n = 0, i = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		buf[i++] = tmp[--n];
	buf[i] = '\0';
	return buf;
}

/* Bodies with the default message, built once: the reject path (429 to
 * an abusive client) must cost as little as possible. */
static struct {
	char body[256];
	size_t len;
} default_bodies[RG_E_COUNT];

static int64_t
fail(struct ing *g, struct httpd_req *req, enum rg_error e, const char *msg,
    uint64_t retry_s, struct hdrs *h)
{
	struct hdrs local = { .n = 0 };
	char custom[768];
	const char *body;
	size_t len;

	if (h == NULL)
		h = &local;
	if (msg == NULL && (unsigned)e < RG_E_COUNT) {
		if (default_bodies[e].len == 0)
			default_bodies[e].len = rg_error_body(
			    default_bodies[e].body,
			    sizeof(default_bodies[e].body), e, NULL);
		body = default_bodies[e].body;
		len = default_bodies[e].len;
	} else {
		len = rg_error_body(custom, sizeof(custom), e, msg);
		body = custom;
	}
	hdr_add(h, "Content-Type", "application/json");
	hdr_add(h, CFG(g)->http_error_code_header, rg_error_code(e));
	if (retry_s > 0)
		hdr_add(h, "Retry-After", u64_str(h->retry, retry_s));
	if (e == RG_E_INTERNAL_ERROR)
		COUNT(g, ing_internal_errors);
	httpd_respond(req, rg_error_status(e), h->h, h->n, body, len);
	return -1;
}

static void
ok_json(struct httpd_req *req, int replay)
{
	static const char body[] = "{\"ok\":true}";
	struct httpd_header h[2] = {
		{ "Content-Type", "application/json" },
		{ "X-Idempotent-Replay", "1" },
	};

	httpd_respond(req, 200, h, replay ? 2 : 1, body, sizeof(body) - 1);
}

/* --- boundary helpers -----------------------------------------------------*/

static const char *
hdr_get(void *ctx, const char *name, size_t *len)
{
	const char *v = httpd_req_header(ctx, name);

	if (v != NULL)
		*len = strlen(v);
	return v;
}

static void
client_ip(struct ing *g, struct httpd_req *req, char *ip, size_t len)
{
	struct clientip_hdrs h = { hdr_get, req };

	clientip_pick(&g->trusted, (const struct sockaddr *)httpd_req_peer(req),
	    &h, ip, len);
}

/* json_type - Content-Type is application/json (parameters allowed). */
static int
is_json_type(struct httpd_req *req)
{
	const char *ct = httpd_req_header(req, "content-type");
	size_t n = sizeof("application/json") - 1;

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

/*
 * Telemetry.  Every blocked or contention outcome becomes an event for the
 * monitor (SPEC §8), but not a message each: an abusive client would turn
 * every refused request into an nng message and a store write.  Events of
 * the same (bucket, key, outcome) are coalesced here for the dedupe
 * window: the first is sent at once, the rest are counted and sent as one
 * event with their count when the window ends (the monitor stores one
 * event and counts duplicates either way).
 */
#define TEL_SLOTS 1024
#define TEL_WINDOW_MS 5000
#define TEL_STR 96

struct tel_slot {
	uint64_t hash;
	uint64_t window_start; /* ms since epoch; 0 = free */
	uint32_t pending;      /* occurrences not sent yet */
	uint32_t retry_after_ms;
	uint8_t outcome;
	char bucket[32], key[TEL_STR], path[TEL_STR], method[16];
};

static struct tel_slot tel[TEL_SLOTS];

static uint64_t
tel_hash(unsigned bucket, const char *key, int outcome)
{
	uint64_t h = 1469598103934665603ull ^ (bucket * 31u + (unsigned)outcome);

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ull;
	return h ? h : 1;
}

static void
tel_send(struct ing *g, const struct tel_slot *t, uint32_t count)
{
	struct proto_msg m;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_T_RL_EVENT;
	m.u.rl_event.created_at = now_ms();
	m.u.rl_event.retry_after_ms = t->retry_after_ms;
	m.u.rl_event.outcome = t->outcome;
	m.u.rl_event.count = count;
	m.u.rl_event.source = proto_str_from("http");
	m.u.rl_event.bucket = proto_str_from(t->bucket);
	m.u.rl_event.key = proto_str_from(t->key);
	m.u.rl_event.reason = proto_str_from(
	    t->outcome == 1 ? "limit" : "table_contention");
	m.u.rl_event.path = proto_str_from(t->path);
	m.u.rl_event.method = proto_str_from(t->method);
	if (link_send(g->ctx->link, ROLE_MONITOR, 0, &m) == LINK_OK)
		COUNT(g, ing_telemetry_sent);
	else
		COUNT(g, ing_telemetry_dropped);
}

/* telemetry - a blocked or contention outcome to the monitor. */
static void
telemetry(struct ing *g, struct httpd_req *req, unsigned bucket,
    const char *key, int outcome, uint64_t retry_ms)
{
	uint8_t out = outcome == RL_BLOCKED ? 1 : 2;
	uint64_t h = tel_hash(bucket, key, out), now = now_ms();
	struct tel_slot *t = &tel[h % TEL_SLOTS];

	if (t->hash == h && now - t->window_start < TEL_WINDOW_MS) {
		t->pending++;
		t->retry_after_ms = (uint32_t)retry_ms;
		COUNT(g, ing_telemetry_coalesced);
		return;
	}
	if (t->window_start != 0 && t->pending > 0)
		tel_send(g, t, t->pending); /* evicted: flush what it held */
	t->hash = h;
	t->window_start = now;
	t->pending = 0;
	t->retry_after_ms = (uint32_t)retry_ms;
	t->outcome = out;
	strlcpy_rg(t->bucket, rl_bucket_name(bucket), sizeof(t->bucket));
	strlcpy_rg(t->key, key, sizeof(t->key));
	strlcpy_rg(t->path, httpd_req_path(req), sizeof(t->path));
	strlcpy_rg(t->method, httpd_req_method(req), sizeof(t->method));
	tel_send(g, t, 1);
}

/* tel_flush - once a second: send the counts of windows that ended. */
static void
tel_flush(struct ing *g)
{
	uint64_t now = now_ms();

	for (unsigned i = 0; i < TEL_SLOTS; i++) {
		struct tel_slot *t = &tel[i];

		if (t->pending == 0 || now - t->window_start < TEL_WINDOW_MS)
			continue;
		tel_send(g, t, t->pending);
		t->pending = 0;
		t->window_start = now;
	}
}

/* limit - check bucket for key; on refusal answer 429 and return -1. */
static int
limit(struct ing *g, struct httpd_req *req, unsigned bucket, const char *key,
    int64_t max, int64_t window_ms, struct hdrs *h)
{
	struct rl_result r;
	int rc;

	rc = rl_check(&g->ctx->shm, bucket, key, strlen(key), mono_ms(),
	    (uint32_t)max, (uint32_t)window_ms, &r);
	if (rc == RL_ALLOWED)
		return 0;
	telemetry(g, req, bucket, key, rc, r.retry_after_ms);
	fail(g, req, RG_E_RATE_LIMITED, NULL,
	    rl_retry_after_s(r.retry_after_ms), h);
	return -1;
}

/* secret - a configured secret, or NULL when unset or empty. */
static const char *
secret(const char *v)
{
	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* --- the durable hand-off -------------------------------------------------*/

static struct pending *
pending_new(enum route_id route, struct httpd_req *req, unsigned n,
    size_t data_len)
{
	struct pending *p = xcalloc(1, sizeof(*p));

	p->req_id = httpd_req_id(req);
	p->route = route;
	p->items = xcalloc(n ? n : 1, sizeof(*p->items));
	p->data = xmalloc(data_len ? data_len : 1);
	p->batch.items = p->items;
	p->batch.n = n;
	p->batch.now_ms = now_ms();
	return p;
}

static void
pending_free(struct pending *p)
{
	free(p->items);
	free(p->data);
	free(p);
}

static int
pending_apply(struct store_txn *txn, void *arg)
{
	struct pending *p = arg;

	return replay_apply(txn, &p->batch);
}

/* wake_workers - new delivery rows: wake a tool-worker, once per pass. */
static void
wake_workers(evutil_socket_t fd, short what, void *arg)
{
	struct ing *g = arg;
	unsigned n = role_instances(CFG(g), ROLE_TOOL_WORKER);
	struct proto_msg m;

	(void)fd;
	(void)what;
	if (g->fresh == 0 || n == 0)
		return;
	memset(&m, 0, sizeof(m));
	m.type = PROTO_T_DELIVERY_WAKE;
	m.u.delivery_wake.count = g->fresh;
	link_send(g->ctx->link, ROLE_TOOL_WORKER, (unsigned)(g->seq % n), &m);
	g->fresh = 0;
}

/* finish - loop thread: answer the webhook whose commit finished. */
static void
finish(struct role_ctx *ctx, void *arg, int rc)
{
	struct ing *g = ctx->priv;
	struct pending *p = arg;
	struct httpd_req *req = httpd_req_lookup(g->httpd, p->req_id);

	g->inflight--;
	if (rc == STORE_OK && p->batch.fresh > 0) {
		for (unsigned i = 0; i < p->batch.fresh; i++)
			COUNT(g, ing_deliveries);
		if (g->fresh == 0)
			event_active(g->wake, EV_TIMEOUT, 0);
		g->fresh += p->batch.fresh;
	}
	if (req == NULL) {
		/* client left: committed or not, nothing to answer */
	} else if (rc != STORE_OK) {
		COUNT(g, ing_store_failures);
		log_warn("webhook refused: store %s", store_rc_name(rc));
		fail(g, req, RG_E_OVERLOADED,
		    "Could not store the webhook; retry later.", 1, NULL);
	} else {
		int replay = p->batch.n > 0 && p->batch.fresh == 0;

		if (replay)
			COUNT(g, ing_replays);
		ok_json(req, replay);
	}
	pending_free(p);
}

/* submit - hand the batch to the writer; the answer comes in finish(). */
static void
submit(struct ing *g, struct httpd_req *req, struct pending *p)
{
	replay_prepare(&p->batch, (uint32_t)getpid(), &g->seq);
	p->batch.ttl_ms = (uint64_t)CFG(g)->replay_idem_ttl_ms;
	if (role_commit(g->ctx, pending_apply, finish, p) != 0) {
		pending_free(p);
		COUNT(g, ing_store_failures);
		fail(g, req, RG_E_OVERLOADED, "Shutting down; retry later.", 1,
		    NULL);
		return;
	}
	g->inflight++;
}

/* --- routes ---------------------------------------------------------------*/

static int64_t
chat_head(struct ing *g, struct httpd_req *req)
{
	const char *origin = httpd_req_header(req, "origin");
	struct hdrs h = { .n = 0 };
	char ip[CLIENTIP_BUFSZ], key[CLIENTIP_BUFSZ + 8];

	if (strcmp(httpd_req_method(req), "OPTIONS") == 0) {
		/* preflight: CORS headers only for an allowed Origin */
		if (origin_allowed(g, origin)) {
			hdr_add(&h, "Access-Control-Allow-Origin", origin);
			hdr_add(&h, "Access-Control-Allow-Methods",
			    "POST, OPTIONS");
			hdr_add(&h, "Access-Control-Allow-Headers",
			    "authorization, content-type");
			hdr_add(&h, "Access-Control-Max-Age", "600");
			hdr_add(&h, "Vary", "Origin");
		}
		httpd_respond(req, 204, h.h, h.n, NULL, 0);
		return -1;
	}
	if (origin != NULL && !origin_allowed(g, origin))
		return fail(g, req, RG_E_FORBIDDEN, "Origin not allowed.", 0,
		    NULL);
	if (origin == NULL && CFG(g)->chat_require_origin)
		return fail(g, req, RG_E_FORBIDDEN, "Origin required.", 0,
		    NULL);
	cors(g, req, &h);
	if (!is_json_type(req))
		return fail(g, req, RG_E_UNSUPPORTED_MEDIA_TYPE, NULL, 0, &h);
	/* chat_stream is per user; until JWT auth lands the key is the
	 * client address (the chat issue switches it to the token's sub). */
	client_ip(g, req, ip, sizeof(ip));
	snprintf(key, sizeof(key), "ip:%s", ip);
	if (limit(g, req, RL_BUCKET_CHAT_STREAM, key,
		CFG(g)->rate_limit_chat_stream_max,
		CFG(g)->rate_limit_chat_stream_window_ms, &h) != 0)
		return -1;
	return routes[ROUTE_CHAT].limit;
}

static void
chat_body(struct ing *g, struct httpd_req *req)
{
	struct hdrs h = { .n = 0 };
	char msg[WEBHOOK_MSG_MAX];
	const void *body;
	size_t len;
	json_t *j;

	cors(g, req, &h);
	body = httpd_req_body(req, &len);
	switch (chatreq_parse(body, len, &j, msg, sizeof(msg))) {
	case CHATREQ_INVALID_JSON:
		fail(g, req, RG_E_INVALID_JSON, NULL, 0, &h);
		return;
	case CHATREQ_INVALID_REQUEST:
		fail(g, req, RG_E_INVALID_REQUEST, msg, 0, &h);
		return;
	case CHATREQ_OK:
		break;
	}
	json_decref(j);
	fail(g, req, RG_E_MISCONFIGURED,
	    "This relgate version does not stream chat.", 0, &h);
}

/* gateway_mode - legacy, shadow or authoritative (SPEC §3). */
static const char *
gateway_mode(const struct config *c)
{
	if (!c->ff_chat_gateway_enabled)
		return "legacy";
	if (c->ff_chat_gateway_shadow)
		return "shadow";
	return c->ff_admission_enforce ? "authoritative" : "legacy";
}

static json_t *
route_json(const char *base, int64_t timeout, int64_t retries,
    int64_t threshold, int64_t cooldown, int64_t maxc, int64_t ttl)
{
	return json_pack("{s:s,s:I,s:I,s:{s:I,s:I},s:{s:I,s:I}}", "baseUrl",
	    base, "timeoutMs", (json_int_t)timeout, "retries",
	    (json_int_t)retries, "circuit", "threshold",
	    (json_int_t)threshold, "cooldownMs", (json_int_t)cooldown,
	    "bulkhead", "maxConcurrent", (json_int_t)maxc, "leaseTtlMs",
	    (json_int_t)ttl);
}

static int64_t
health_head(struct ing *g, struct httpd_req *req)
{
	const struct config *c = CFG(g);
	const char *origin = httpd_req_header(req, "origin");
	struct hdrs h = { .n = 0 };
	unsigned up = 0, total = 0, core_down = 0;
	const char *status;
	json_t *j, *checks;
	char *text;
	int key;

	if (!c->ff_chat_gateway_health_enabled)
		return fail(g, req, RG_E_NOT_FOUND, NULL, 0, NULL);
	if (origin != NULL && !origin_allowed(g, origin))
		return fail(g, req, RG_E_FORBIDDEN, "Origin not allowed.", 0,
		    NULL);
	for (unsigned s = 1; s < shm_proc_count(&g->ctx->shm); s++) {
		const struct shm_proc *p = shm_proc(&g->ctx->shm, s);
		uint32_t st = SHM_LOAD(&p->state);

		if (st == SHM_STATE_UNUSED)
			continue;
		total++;
		if (st == SHM_STATE_READY)
			up++;
		else if (p->role == ROLE_ADMISSION || p->role == ROLE_PROVIDER)
			core_down++;
	}
	key = secret(c->provider_primary_api_key) != NULL;
	status = core_down ? "down" : (up == total && key) ? "ok" : "degraded";
	checks = json_pack("{s:b,s:b,s:n}", "providerKeyPresent", key,
	    "childrenUp", up == total, "redisReachable");
	j = json_pack("{s:s,s:o,s:{s:i,s:i},s:I,s:s,s:{s:{s:b,s:b,s:b,s:b},"
		      "s:I,s:I},s:{s:o,s:o},s:{s:s,s:s,s:b}}",
	    "status", status, "checks", checks, "children", "up", up, "total",
	    total, "configGeneration",
	    (json_int_t)SHM_LOAD(&g->ctx->shm.hdr->config_gen), "gatewayMode",
	    gateway_mode(c), "admission", "enforce", "userInflight",
	    (int)c->admission_enforce_user_inflight, "globalInflight",
	    (int)c->admission_enforce_global_inflight, "globalMsgRate",
	    (int)c->admission_enforce_global_msg_rate, "globalToolRate",
	    (int)c->admission_enforce_global_tool_rate, "retryAfterMs",
	    (json_int_t)c->admission_retry_after_ms, "retryAfterJitterPct",
	    (json_int_t)c->admission_retry_after_jitter_pct, "providerRoutes",
	    "primary",
	    route_json(c->provider_primary_base_url,
		c->chat_provider_primary_timeout_ms,
		c->chat_provider_primary_retries,
		c->circuit_openrouter_primary_threshold,
		c->circuit_openrouter_primary_cooldown_ms,
		c->bulkhead_or_pri_max_concurrent,
		c->bulkhead_or_pri_lease_ttl_ms),
	    "secondary",
	    route_json(c->provider_secondary_base_url,
		c->chat_provider_secondary_timeout_ms,
		c->chat_provider_secondary_retries,
		c->circuit_openrouter_secondary_threshold,
		c->circuit_openrouter_secondary_cooldown_ms,
		c->bulkhead_or_sec_max_concurrent,
		c->bulkhead_or_sec_lease_ttl_ms),
	    "regionTopology", "regionId", c->reliability_region_id,
	    "topologyMode", c->reliability_topology_mode, "readinessOnly",
	    (int)c->reliability_region_readiness_only);
	text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (text == NULL)
		return fail(g, req, RG_E_INTERNAL_ERROR, NULL, 0, NULL);
	cors(g, req, &h);
	hdr_add(&h, "Content-Type", "application/json");
	hdr_add(&h, "Cache-Control", "no-store");
	httpd_respond(req, strcmp(status, "down") == 0 ? 503 : 200, h.h, h.n,
	    text, strlen(text));
	free(text);
	return -1;
}

static int64_t
push_head(struct ing *g, struct httpd_req *req)
{
	const char *want = secret(CFG(g)->gmail_pubsub_verify_token);
	const char *q = httpd_req_query(req);
	char ip[CLIENTIP_BUFSZ], token[512];
	int too_long = 0;

	client_ip(g, req, ip, sizeof(ip));
	if (limit(g, req, RL_BUCKET_GMAIL_PUSH, ip,
		CFG(g)->rate_limit_gmail_push_max,
		CFG(g)->rate_limit_gmail_push_window_ms, NULL) != 0)
		return -1;
	if (want == NULL)
		return fail(g, req, RG_E_MISCONFIGURED,
		    "GMAIL_PUBSUB_VERIFY_TOKEN is not configured.", 0, NULL);
	if (q == NULL ||
	    query_get(q, strlen(q), "token", token, sizeof(token),
		&too_long) != QUERY_FOUND ||
	    too_long ||
	    !webhook_token_eq(token, strlen(token), want, strlen(want)))
		return fail(g, req, RG_E_FORBIDDEN, "Bad verification token.",
		    0, NULL);
	if (!is_json_type(req))
		return fail(g, req, RG_E_UNSUPPORTED_MEDIA_TYPE, NULL, 0, NULL);
	return routes[ROUTE_GMAIL_PUSH].limit;
}

static void
push_body(struct ing *g, struct httpd_req *req)
{
	struct pubsub_push push;
	char msg[WEBHOOK_MSG_MAX];
	const void *body;
	struct pending *p;
	size_t len, klen, pos;
	char *d;

	body = httpd_req_body(req, &len);
	switch (pubsub_parse(body, len, &push, msg, sizeof(msg))) {
	case WEBHOOK_INVALID_JSON:
		fail(g, req, RG_E_INVALID_JSON, NULL, 0, NULL);
		return;
	case WEBHOOK_INVALID_REQUEST:
		fail(g, req, RG_E_INVALID_REQUEST, msg, 0, NULL);
		return;
	case WEBHOOK_OK:
		break;
	}
	/* key emailAddress:historyId; payload the decoded notification */
	klen = strlen(push.email) + 1 + strlen(push.history_id);
	p = pending_new(ROUTE_GMAIL_PUSH, req, 1,
	    klen + 1 + 6 * (klen + sizeof(push.message_id)) + 128);
	d = p->data;
	snprintf(d, klen + 1, "%s:%s", push.email, push.history_id);
	p->items[0].key = d;
	p->items[0].klen = klen;
	pos = klen + 1;
	p->items[0].payload = d + pos;
	pos += (size_t)sprintf(d + pos, "{\"emailAddress\":\"");
	json_escape(d, pos + 6 * strlen(push.email) + 1, &pos, push.email,
	    strlen(push.email));
	pos += (size_t)sprintf(d + pos, "\",\"historyId\":\"%s\","
					"\"messageId\":\"",
	    push.history_id);
	json_escape(d, pos + 6 * strlen(push.message_id) + 1, &pos,
	    push.message_id, strlen(push.message_id));
	pos += (size_t)sprintf(d + pos, "\"}");
	p->items[0].plen = (size_t)(d + pos - p->items[0].payload);
	p->batch.scope = "gmail_push_history";
	p->batch.topic = "gmail.history";
	submit(g, req, p);
}

static int64_t
wa_head(struct ing *g, struct httpd_req *req)
{
	char ip[CLIENTIP_BUFSZ];

	if (strcmp(httpd_req_method(req), "GET") == 0) {
		const char *want = secret(CFG(g)->whatsapp_verify_token);
		const char *q = httpd_req_query(req);
		char mode[32], token[512], challenge[CHALLENGE_MAX + 1];
		struct httpd_header h = { "Content-Type", "text/plain" };
		int tl1 = 0, tl2 = 0, tl3 = 0;
		size_t ql = q != NULL ? strlen(q) : 0;

		if (want == NULL)
			return fail(g, req, RG_E_MISCONFIGURED,
			    "WHATSAPP_VERIFY_TOKEN is not configured.", 0,
			    NULL);
		if (q == NULL ||
		    query_get(q, ql, "hub.mode", mode, sizeof(mode), &tl1) !=
			QUERY_FOUND ||
		    query_get(q, ql, "hub.verify_token", token, sizeof(token),
			&tl2) != QUERY_FOUND ||
		    query_get(q, ql, "hub.challenge", challenge,
			sizeof(challenge), &tl3) != QUERY_FOUND ||
		    tl1 || tl2 || tl3 || strcmp(mode, "subscribe") != 0 ||
		    !webhook_token_eq(token, strlen(token), want,
			strlen(want)))
			return fail(g, req, RG_E_FORBIDDEN,
			    "Verification failed.", 0, NULL);
		httpd_respond(req, 200, &h, 1, challenge, strlen(challenge));
		return -1;
	}
	client_ip(g, req, ip, sizeof(ip));
	if (limit(g, req, RL_BUCKET_WHATSAPP_WEBHOOK, ip,
		CFG(g)->rate_limit_whatsapp_max,
		CFG(g)->rate_limit_whatsapp_window_ms, NULL) != 0)
		return -1;
	if (secret(CFG(g)->whatsapp_app_secret) == NULL)
		return fail(g, req, RG_E_MISCONFIGURED,
		    "WHATSAPP_APP_SECRET is not configured.", 0, NULL);
	if (!is_json_type(req))
		return fail(g, req, RG_E_UNSUPPORTED_MEDIA_TYPE, NULL, 0, NULL);
	return routes[ROUTE_WA_WEBHOOK].limit;
}

static void
wa_body(struct ing *g, struct httpd_req *req)
{
	struct wa_payload *wa = xmalloc(sizeof(*wa));
	char msg[WEBHOOK_MSG_MAX];
	const void *body;
	struct pending *p;
	size_t len, need = 0, pos = 0;

	body = httpd_req_body(req, &len);
	if (!wa_signature_ok(httpd_req_header(req, "x-hub-signature-256"),
		body, len, CFG(g)->whatsapp_app_secret)) {
		free(wa);
		fail(g, req, RG_E_FORBIDDEN, "Bad or missing signature.", 0,
		    NULL);
		return;
	}
	switch (wa_parse(body, len, wa, msg, sizeof(msg))) {
	case WEBHOOK_INVALID_JSON:
		free(wa);
		fail(g, req, RG_E_INVALID_JSON, NULL, 0, NULL);
		return;
	case WEBHOOK_INVALID_REQUEST:
		free(wa);
		fail(g, req, RG_E_INVALID_REQUEST, msg, 0, NULL);
		return;
	case WEBHOOK_OK:
		break;
	}
	if (wa->n == 0) {
		/* statuses only: nothing to deliver */
		wa_payload_free(wa);
		free(wa);
		ok_json(req, 0);
		return;
	}
	for (size_t i = 0; i < wa->n; i++) {
		const struct wa_message *m = &wa->msg[i];

		need += strlen(m->id) + 1 + strlen(m->json) +
		    6 * strlen(m->entry_id) +
		    (m->metadata_json ? strlen(m->metadata_json) : 4) + 64;
	}
	p = pending_new(ROUTE_WA_WEBHOOK, req, (unsigned)wa->n, need);
	for (size_t i = 0; i < wa->n; i++) {
		const struct wa_message *m = &wa->msg[i];
		struct replay_item *it = &p->items[i];
		char *d = p->data;

		it->key = d + pos;
		it->klen = strlen(m->id);
		memcpy(d + pos, m->id, it->klen + 1);
		pos += it->klen + 1;
		it->payload = d + pos;
		pos += (size_t)sprintf(d + pos, "{\"entryId\":\"");
		json_escape(d, pos + 6 * strlen(m->entry_id) + 1, &pos,
		    m->entry_id, strlen(m->entry_id));
		pos += (size_t)sprintf(d + pos, "\",\"metadata\":%s,"
						"\"message\":%s}",
		    m->metadata_json ? m->metadata_json : "null", m->json);
		it->plen = (size_t)(d + pos - it->payload);
		pos++;
	}
	wa_payload_free(wa);
	free(wa);
	p->batch.scope = "whatsapp_message";
	p->batch.topic = "whatsapp.message";
	submit(g, req, p);
}

/* --- outbound calls on behalf of a request ---------------------------------
 *
 * An upcall holds what one outbound call needs while its client waits:
 * the request id (the request may go away: httpd_req_lookup), the
 * bulkhead lease and circuit ticket of its provider, the retry state and
 * the answer collected so far.  The OAuth code exchange and the proxied
 * routes use it.
 */
#define UPCALL_BODY_MAX (1024 * 1024)

struct upcall;
typedef void (*upcall_fn)(struct ing *g, struct upcall *u,
    struct httpd_req *req, const struct httpc_result *res);

struct upcall {
	int kind; /* TAG_PROXY when it carries a proxied request */
	const struct proxy_route *route;
	struct ing *g;
	uint64_t req_id;
	unsigned provider;   /* CB_PROV_x == BH_PROV_x names */
	int bh_provider;
	struct bh_lease lease;
	struct cb_ticket ticket;
	struct httpc_call *call;
	struct httpc_req hreq;
	struct httpc_header hdrs[6];
	char url[2048];
	char *body; /* request body (owned) */
	size_t blen;
	uint32_t attempts, max_attempts, threshold, cooldown_ms;
	upcall_fn finish;
	int status;
	char content_type[128];
	char retry_after[64];
	char *resp; /* response body collected */
	size_t rlen;
	struct event *retry;
	/* route-specific */
	char uid[OAUTHSTATE_UID_MAX + 1];
	char sig[8 + 2 * CRYPTO_SHA256_LEN];
	char user[JWT_SUB_MAX + 1];
};

static void upcall_send(struct upcall *u);

static void
upcall_free(struct upcall *u)
{
	if (u->retry != NULL)
		event_free(u->retry);
	free(u->body);
	free(u->resp);
	free(u);
}

/* upcall_close - the client left: stop the call, give back the lease. */
static void
upcall_close(void *arg, struct httpd_req *req)
{
	struct upcall *u = arg;
	struct ing *g = u->g;

	(void)req;
	if (u->call != NULL) {
		httpc_cancel(u->call);
		cb_record(&g->ctx->shm, u->provider, &u->ticket, CB_NEUTRAL,
		    now_ms(), u->threshold);
	}
	if (u->lease.id != 0)
		bh_release(&g->ctx->shm, &u->lease);
	upcall_free(u);
}

static int
upcall_head(void *arg, const struct httpc_resp *resp)
{
	struct upcall *u = arg;
	const char *ct = httpc_resp_header(resp, "content-type");
	const char *ra = httpc_resp_header(resp, "retry-after");

	u->status = httpc_resp_status(resp);
	strlcpy_rg(u->content_type, ct ? ct : "", sizeof(u->content_type));
	strlcpy_rg(u->retry_after, ra ? ra : "", sizeof(u->retry_after));
	u->rlen = 0;
	return 0;
}

static void
upcall_data(void *arg, const void *data, size_t len)
{
	struct upcall *u = arg;

	if (u->rlen + len > UPCALL_BODY_MAX)
		return; /* max_body ends the call with E_TOO_LARGE */
	u->resp = xrealloc(u->resp, u->rlen + len + 1);
	memcpy(u->resp + u->rlen, data, len);
	u->rlen += len;
	u->resp[u->rlen] = '\0';
}

static void
upcall_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upcall *u = arg;
	uint64_t ra;

	(void)fd;
	(void)what;
	if (httpd_req_lookup(u->g->httpd, u->req_id) == NULL)
		return; /* on_close frees it */
	if (cb_allow(&u->g->ctx->shm, u->provider, now_ms(), u->threshold,
		u->cooldown_ms, 1, &u->ticket, &ra) == CB_OPEN) {
		struct httpc_result r = { .rc = HTTPC_E_CONNECT,
			.detail = "circuit open" };
		struct httpd_req *req = httpd_req_lookup(u->g->httpd,
		    u->req_id);

		httpd_req_set_close_cb(req, NULL, NULL);
		bh_release(&u->g->ctx->shm, &u->lease);
		u->finish(u->g, u, req, &r);
		upcall_free(u);
		return;
	}
	upcall_send(u);
}

static void
upcall_done(void *arg, const struct httpc_result *res)
{
	struct upcall *u = arg;
	struct ing *g = u->g;
	enum cb_error kind = httpc_cb_error(res->rc);
	struct httpd_req *req;
	uint64_t delay = 0, now = now_ms();
	enum retry_reason why;
	struct retry_policy pol = {
		.max_attempts = u->max_attempts,
		.base_ms = 200,
		.cap_ms = 2000,
	};
	struct retry_state st = {
		.attempts = u->attempts,
		/* nothing reached the server: safe to send again */
		.safe = kind == CB_ERR_CONNECT && res->status == 0,
	};

	u->call = NULL;
	cb_record(&g->ctx->shm, u->provider, &u->ticket,
	    kind == CB_ERR_NONE ? cb_classify_http(res->status) :
				  cb_classify_error(kind, 0),
	    now, u->threshold);
	req = httpd_req_lookup(g->httpd, u->req_id);
	if (req == NULL)
		return; /* on_close already freed it */
	if (res->rc != HTTPC_OK &&
	    retry_next(&pol, &st, kind, 0, NULL, now, &delay, &why) ==
		RETRY_AGAIN) {
		struct timeval tv = { (time_t)(delay / 1000),
			(suseconds_t)(delay % 1000) * 1000 };

		if (u->retry == NULL)
			u->retry = evtimer_new(g->ctx->base, upcall_retry_cb, u);
		evtimer_add(u->retry, &tv);
		return;
	}
	httpd_req_set_close_cb(req, NULL, NULL);
	bh_release(&g->ctx->shm, &u->lease);
	u->finish(g, u, req, res);
	upcall_free(u);
}

static void
upcall_send(struct upcall *u)
{
	static const struct httpc_cb cb = { upcall_head, upcall_data,
		upcall_done };
	struct httpd_req *req;

	u->attempts++;
	u->rlen = 0;
	u->call = httpc_request(u->g->http, &u->hreq, &cb, u);
	if (u->call == NULL) {
		struct httpc_result r = { .rc = HTTPC_E_PROTOCOL,
			.detail = "request not valid" };

		cb_record(&u->g->ctx->shm, u->provider, &u->ticket, CB_NEUTRAL,
		    now_ms(), u->threshold);
		req = httpd_req_lookup(u->g->httpd, u->req_id);
		if (req == NULL)
			return;
		httpd_req_set_close_cb(req, NULL, NULL);
		bh_release(&u->g->ctx->shm, &u->lease);
		u->finish(u->g, u, req, &r);
		upcall_free(u);
	}
}

/*
 * upcall_start - acquire the provider's bulkhead and circuit, then call.
 * Returns 0 when the call is under way (finish answers), else the verdict
 * that stopped it: BH_SATURATED (retry_ms set) or CB_OPEN + 100.
 */
static int
upcall_start(struct ing *g, struct httpd_req *req, struct upcall *u,
    uint32_t max_concurrent, uint32_t lease_ttl_ms, uint32_t cooldown_ms,
    uint64_t *retry_ms)
{
	u->g = g;
	u->req_id = httpd_req_id(req);
	u->cooldown_ms = cooldown_ms;
	if (bh_acquire(&g->ctx->shm, (unsigned)u->bh_provider, now_ms(),
		max_concurrent, lease_ttl_ms, &u->lease, retry_ms) !=
	    BH_ACQUIRED) {
		if (bh_should_warn(&g->ctx->shm, (unsigned)u->bh_provider,
			now_ms(), (uint32_t)CFG(g)->bulkhead_sentry_cooldown_ms))
			role_alert(g->ctx, "bulkhead_saturated",
			    bh_provider_name((unsigned)u->bh_provider),
			    "%u leases in flight, the maximum", max_concurrent);
		return BH_SATURATED;
	}
	if (cb_allow(&g->ctx->shm, u->provider, now_ms(), u->threshold,
		cooldown_ms, 1, &u->ticket, retry_ms) == CB_OPEN) {
		bh_release(&g->ctx->shm, &u->lease);
		return CB_OPEN + 100;
	}
	httpd_req_set_close_cb(req, upcall_close, u);
	upcall_send(u);
	return 0;
}

/* --- the Gmail OAuth code exchange ----------------------------------------*/

static void
oauth_finish(struct ing *g, struct upcall *u, struct httpd_req *req,
    const struct httpc_result *res);

static int64_t oauth_redirect(struct ing *g, struct httpd_req *req,
    const char *outcome);

/* form_add - append name=urlencoded(value) to buf. */
static void
form_add(char **buf, size_t *len, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(value), need = *len + strlen(name) + 3 * n + 3;
	char *p;

	*buf = xrealloc(*buf, need);
	p = *buf + *len;
	if (*len > 0)
		*p++ = '&';
	p += sprintf(p, "%s=", name);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.' || c == '~') {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	*len = (size_t)(p - *buf);
}

static void
oauth_exchange(struct ing *g, struct httpd_req *req, const char *uid,
    const char *code)
{
	const struct config *c = CFG(g);
	struct upcall *u = xcalloc(1, sizeof(*u));
	uint64_t retry_ms = 0;
	int rc;

	u->provider = CB_PROV_GMAIL_OAUTH;
	u->bh_provider = BH_PROV_GMAIL_OAUTH;
	u->threshold = (uint32_t)c->circuit_gmail_oauth_threshold;
	u->max_attempts = 1 + (uint32_t)c->oauth_retries;
	u->finish = oauth_finish;
	strlcpy_rg(u->uid, uid, sizeof(u->uid));
	form_add(&u->body, &u->blen, "grant_type", "authorization_code");
	form_add(&u->body, &u->blen, "code", code);
	form_add(&u->body, &u->blen, "client_id", c->oauth_client_id);
	form_add(&u->body, &u->blen, "client_secret", c->oauth_client_secret);
	form_add(&u->body, &u->blen, "redirect_uri", c->oauth_redirect_uri);
	strlcpy_rg(u->url, c->oauth_token_url, sizeof(u->url));
	u->hdrs[0] = (struct httpc_header){ "Content-Type",
		"application/x-www-form-urlencoded" };
	u->hdrs[1] = (struct httpc_header){ "Accept", "application/json" };
	u->hreq = (struct httpc_req){ .method = "POST", .url = u->url,
		.headers = u->hdrs, .nheaders = 2, .body = u->body,
		.body_len = u->blen,
		.connect_ms = (unsigned)c->oauth_timeout_ms,
		.first_byte_ms = (unsigned)c->oauth_timeout_ms,
		.idle_ms = (unsigned)c->oauth_timeout_ms,
		.total_ms = (unsigned)c->oauth_timeout_ms,
		.max_body = 64 * 1024 };
	rc = upcall_start(g, req, u,
	    (uint32_t)c->bulkhead_gmail_oauth_max_concurrent,
	    (uint32_t)c->bulkhead_gmail_oauth_lease_ttl_ms,
	    (uint32_t)c->circuit_gmail_oauth_cooldown_ms, &retry_ms);
	if (rc == 0)
		return;
	upcall_free(u);
	oauth_redirect(g, req, rc == BH_SATURATED ? "busy" : "error");
}

/* A connection record stored: answer gmail=connected. */
static void
oauth_stored(struct role_ctx *ctx, void *arg, int rc)
{
	struct ing *g = ctx->priv;
	struct pending *p = arg;
	struct httpd_req *req = httpd_req_lookup(g->httpd, p->req_id);

	g->inflight--;
	if (rc == STORE_OK && p->batch.fresh > 0) {
		COUNT(g, ing_deliveries);
		if (g->fresh == 0)
			event_active(g->wake, EV_TIMEOUT, 0);
		g->fresh += p->batch.fresh;
	}
	if (req != NULL)
		oauth_redirect(g, req, rc == STORE_OK ? "connected" : "error");
	if (rc != STORE_OK)
		COUNT(g, ing_store_failures);
	pending_free(p);
}

static void
oauth_finish(struct ing *g, struct upcall *u, struct httpd_req *req,
    const struct httpc_result *res)
{
	json_t *tok = NULL, *rec;
	struct pending *p;
	char *text, key[OAUTHSTATE_UID_MAX + 24];
	unsigned char h[CRYPTO_SHA256_LEN];
	char hx[17];

	if (res->rc != HTTPC_OK || u->status != 200 || u->resp == NULL ||
	    (tok = json_loadb(u->resp, u->rlen, 0, NULL)) == NULL ||
	    !json_is_string(json_object_get(tok, "access_token"))) {
		log_warn("gmail oauth exchange failed: %s, status %d",
		    res->rc != HTTPC_OK ? httpc_rc_name(res->rc) : "answer",
		    u->status);
		json_decref(tok);
		oauth_redirect(g, req, "error");
		return;
	}
	rec = json_pack("{s:s,s:O,s:O*,s:O*,s:O*,s:O*,s:I}", "userId", u->uid,
	    "accessToken", json_object_get(tok, "access_token"),
	    "refreshToken", json_object_get(tok, "refresh_token"),
	    "expiresIn", json_object_get(tok, "expires_in"), "scope",
	    json_object_get(tok, "scope"), "idToken",
	    json_object_get(tok, "id_token"), "connectedAt",
	    (json_int_t)now_ms());
	json_decref(tok);
	text = rec != NULL ? json_dumps(rec, JSON_COMPACT) : NULL;
	json_decref(rec);
	if (text == NULL) {
		oauth_redirect(g, req, "error");
		return;
	}
	/* one connection record per user and authorization code */
	crypto_hmac_sha256("gmail.connection", 16, u->body, u->blen, h);
	crypto_hex_encode(h, 8, hx, sizeof(hx));
	snprintf(key, sizeof(key), "%s:%s", u->uid, hx);
	p = pending_new(ROUTE_GMAIL_OAUTH, req, 1,
	    strlen(key) + 1 + strlen(text) + 1);
	p->items[0].key = p->data;
	p->items[0].klen = strlen(key);
	memcpy(p->data, key, p->items[0].klen + 1);
	p->items[0].payload = p->data + p->items[0].klen + 1;
	p->items[0].plen = strlen(text);
	memcpy(p->data + p->items[0].klen + 1, text, p->items[0].plen + 1);
	free(text);
	p->batch.scope = "gmail_connection";
	p->batch.topic = "gmail.connection";
	replay_prepare(&p->batch, (uint32_t)getpid(), &g->seq);
	p->batch.ttl_ms = (uint64_t)CFG(g)->replay_idem_ttl_ms;
	if (role_commit(g->ctx, pending_apply, oauth_stored, p) != 0) {
		pending_free(p);
		oauth_redirect(g, req, "error");
		return;
	}
	g->inflight++;
}

/* --- proxied routes (routes[]) -------------------------------------------*/

static void
proxy_finish(struct ing *g, struct upcall *u, struct httpd_req *req,
    const struct httpc_result *res)
{
	struct httpd_header h[2];
	size_t n = 0;

	switch (httpc_cb_error(res->rc)) {
	case CB_ERR_NONE:
		if (u->content_type[0] != '\0')
			h[n++] = (struct httpd_header){ "Content-Type",
				u->content_type };
		if (u->retry_after[0] != '\0')
			h[n++] = (struct httpd_header){ "Retry-After",
				u->retry_after };
		httpd_respond(req, u->status, h, n, u->resp, u->rlen);
		return;
	case CB_ERR_TIMEOUT:
		fail(g, req, RG_E_UPSTREAM_TIMEOUT, NULL, 0, NULL);
		return;
	case CB_ERR_CONNECT:
		fail(g, req, RG_E_UPSTREAM_UNAVAILABLE, NULL, 1, NULL);
		return;
	default:
		fail(g, req, RG_E_UPSTREAM_ERROR, NULL, 0, NULL);
		return;
	}
}

static const struct proxy_route *
proxy_of(const struct ing *g, const char *path, const char *method,
    unsigned *allow)
{
	const struct proxy_route *hit = NULL;

	*allow = 0;
	for (size_t i = 0; i < g->nproxies; i++) {
		if (strcmp(g->proxies[i].path, path) != 0)
			continue;
		*allow |= 1u << i;
		if (strcmp(g->proxies[i].method, method) == 0)
			hit = &g->proxies[i];
	}
	return hit;
}

/* bucket_limits - a bucket's knobs (RL_BUCKETS names them). */
static void
bucket_limits(const struct config *c, int bucket, int64_t *max,
    int64_t *window)
{
	switch (bucket) {
#define RL_BUCKET_LIMITS(id, name, kmax, kwin)                            \
	case RL_BUCKET_##id:                                              \
		*max = c->kmax;                                           \
		*window = c->kwin;                                        \
		return;
		RL_BUCKETS(RL_BUCKET_LIMITS)
#undef RL_BUCKET_LIMITS
	}
	*max = 0;
	*window = 1000;
}

static int64_t
proxy_head(struct ing *g, struct httpd_req *req, const struct proxy_route *r)
{
	struct jwt_claims claims;
	const char *auth = httpd_req_header(req, "authorization");
	char key[JWT_SUB_MAX + 8];

	memset(&claims, 0, sizeof(claims));
	if (r->auth_jwt) {
		enum jwt_result jr;

		if (g->jwt == NULL)
			return fail(g, req, RG_E_MISCONFIGURED,
			    "auth.jwt is not configured.", 0, NULL);
		jr = jwt_verify(g->jwt, auth, auth ? strlen(auth) : 0,
		    now_ms() / 1000, &claims);
		if (jr != JWT_OK) {
			log_debug("%s: token refused: %s", r->path,
			    jwt_result_name(jr));
			return fail(g, req, RG_E_UNAUTHORIZED, NULL, 0, NULL);
		}
	}
	if (r->bucket >= 0) {
		int64_t max, window;

		if (r->key_user) {
			snprintf(key, sizeof(key), "user:%s", claims.sub);
		} else {
			char ip[CLIENTIP_BUFSZ];

			client_ip(g, req, ip, sizeof(ip));
			snprintf(key, sizeof(key), "ip:%s", ip);
		}
		bucket_limits(CFG(g), r->bucket, &max, &window);
		if (limit(g, req, (unsigned)r->bucket, key, max, window, NULL) !=
		    0)
			return -1;
	}
	if (CFG(g)->backend_url == NULL || CFG(g)->backend_secret == NULL)
		return fail(g, req, RG_E_MISCONFIGURED,
		    "backend.url and backend.secret are needed.", 0, NULL);
	{
		/* the upcall starts here so the user travels with it */
		struct upcall *u = xcalloc(1, sizeof(*u));

		u->kind = TAG_PROXY;
		u->route = r;
		u->g = g;
		strlcpy_rg(u->user, claims.sub, sizeof(u->user));
		httpd_req_set_data(req, u);
		httpd_req_set_close_cb(req, upcall_close, u);
	}
	return 64 * KIB;
}

static void
proxy_body(struct ing *g, struct httpd_req *req, struct upcall *u)
{
	const struct config *c = CFG(g);
	const struct proxy_route *r = u->route;
	const char *ct = httpd_req_header(req, "content-type");
	unsigned char mac[CRYPTO_SHA256_LEN];
	uint64_t retry_ms = 0;
	const void *body;
	size_t len, n = 0;
	int rc;

	body = httpd_req_body(req, &len);
	u->body = xmalloc(len + 1);
	memcpy(u->body, body, len);
	u->blen = len;
	u->provider = CB_PROV_BACKEND;
	u->bh_provider = BH_PROV_BACKEND;
	u->threshold = (uint32_t)c->backend_circuit_threshold;
	u->max_attempts = 1; /* not idempotent: only unsent calls repeat */
	u->finish = proxy_finish;
	snprintf(u->url, sizeof(u->url), "%.*s%s",
	    (int)(strlen(c->backend_url) -
		(c->backend_url[strlen(c->backend_url) - 1] == '/')),
	    c->backend_url, r->backend_path);
	crypto_hmac_sha256(c->backend_secret, strlen(c->backend_secret),
	    u->body, u->blen, mac);
	memcpy(u->sig, "sha256=", 7);
	crypto_hex_encode(mac, sizeof(mac), u->sig + 7, sizeof(u->sig) - 7);
	u->hdrs[n++] = (struct httpc_header){ "Content-Type",
		ct ? ct : "application/json" };
	u->hdrs[n++] = (struct httpc_header){ "X-Relgate-Signature", u->sig };
	if (r->auth_jwt)
		u->hdrs[n++] = (struct httpc_header){ "X-Relgate-User",
			u->user };
	u->hreq = (struct httpc_req){ .method = r->method, .url = u->url,
		.headers = u->hdrs, .nheaders = n, .body = u->body,
		.body_len = u->blen,
		.connect_ms = (unsigned)c->backend_timeout_ms,
		.first_byte_ms = (unsigned)c->backend_timeout_ms,
		.idle_ms = (unsigned)c->backend_timeout_ms,
		.total_ms = (unsigned)c->backend_timeout_ms,
		.max_body = UPCALL_BODY_MAX };
	httpd_req_set_close_cb(req, NULL, NULL);
	rc = upcall_start(g, req, u,
	    (uint32_t)c->backend_bulkhead_max_concurrent,
	    (uint32_t)c->backend_bulkhead_lease_ttl_ms,
	    (uint32_t)c->backend_circuit_cooldown_ms, &retry_ms);
	if (rc == 0)
		return;
	upcall_free(u);
	if (rc == BH_SATURATED)
		fail(g, req, RG_E_OVERLOADED, NULL,
		    rl_retry_after_s(retry_ms), NULL);
	else
		fail(g, req, RG_E_UPSTREAM_UNAVAILABLE, NULL,
		    rl_retry_after_s(retry_ms), NULL);
}
/* oauth_redirect - 302 to <app_url>/settings?tab=connections&gmail=X. */
static int64_t
oauth_redirect(struct ing *g, struct httpd_req *req, const char *outcome)
{
	const char *app = CFG(g)->app_url;
	size_t n = strlen(app);
	char loc[1024];
	struct httpd_header h[2] = { { "Location", loc },
		{ "Cache-Control", "no-store" } };

	while (n > 0 && app[n - 1] == '/')
		n--;
	snprintf(loc, sizeof(loc), "%.*s/settings?tab=connections&gmail=%s",
	    (int)n, app, outcome);
	httpd_respond(req, 302, h, 2, NULL, 0);
	return -1;
}

static int64_t
oauth_head(struct ing *g, struct httpd_req *req)
{
	char ip[CLIENTIP_BUFSZ];

	client_ip(g, req, ip, sizeof(ip));
	if (limit(g, req, RL_BUCKET_GMAIL_OAUTH_CALLBACK, ip,
		CFG(g)->rate_limit_gmail_oauth_max,
		CFG(g)->rate_limit_gmail_oauth_window_ms, NULL) != 0)
		return -1;
	if (secret(CFG(g)->app_url) == NULL)
		return fail(g, req, RG_E_MISCONFIGURED,
		    "app_url is not configured.", 0, NULL);
	/* the rest may wait for the token endpoint: on_request answers */
	return 0;
}

static void
oauth_body(struct ing *g, struct httpd_req *req)
{
	const char *q = httpd_req_query(req);
	const char *sec = secret(CFG(g)->oauth_state_secret);
	size_t ql = q != NULL ? strlen(q) : 0;
	char uid[OAUTHSTATE_UID_MAX + 1];
	char *code, *state, err[256];
	int tl_code = 0, tl_state = 0, tl_err = 0, has_code, has_state;
	enum oauthstate_result r;

	code = xmalloc(OAUTH_PARAM_MAX + 1);
	state = xmalloc(OAUTHSTATE_MAX + 1);
	has_code = q != NULL && query_get(q, ql, "code", code,
				    OAUTH_PARAM_MAX + 1, &tl_code) ==
	    QUERY_FOUND;
	has_state = q != NULL && query_get(q, ql, "state", state,
				     OAUTHSTATE_MAX + 1, &tl_state) ==
	    QUERY_FOUND;
	if ((q != NULL && query_get(q, ql, "error", err, sizeof(err),
			      &tl_err) != QUERY_ABSENT) ||
	    tl_code || tl_state || !has_code || !has_state || !code[0] ||
	    !state[0]) {
		free(code);
		free(state);
		oauth_redirect(g, req, "error");
		return;
	}
	if (sec == NULL) {
		free(code);
		free(state);
		fail(g, req, RG_E_MISCONFIGURED,
		    "OAUTH_STATE_SECRET is not configured.", 0, NULL);
		return;
	}
	r = oauthstate_verify(sec, state, strlen(state), now_ms(), uid,
	    sizeof(uid));
	free(state);
	if (r != OAUTHSTATE_OK) {
		free(code);
		oauth_redirect(g, req, "error");
		return;
	}
	if (CFG(g)->oauth_client_id == NULL ||
	    CFG(g)->oauth_client_secret == NULL ||
	    CFG(g)->oauth_redirect_uri == NULL) {
		free(code);
		fail(g, req, RG_E_MISCONFIGURED,
		    "oauth.client_id, client_secret and redirect_uri are "
		    "needed.",
		    0, NULL);
		return;
	}
	oauth_exchange(g, req, uid, code);
	free(code);
}

/* --- the server callbacks -------------------------------------------------*/

static const struct route *
route_of(const char *path, enum route_id *id)
{
	for (unsigned i = 0; i < ROUTE_COUNT; i++)
		if (strcmp(routes[i].path, path) == 0) {
			*id = i;
			return &routes[i];
		}
	return NULL;
}

static unsigned
method_bit(const char *m)
{
	if (strcmp(m, "GET") == 0)
		return M_GET;
	if (strcmp(m, "POST") == 0)
		return M_POST;
	if (strcmp(m, "OPTIONS") == 0)
		return M_OPTIONS;
	return 0;
}

static void
allow_header(unsigned methods, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s%s", methods & M_GET ? "GET" : "",
	    (methods & M_GET) && (methods & ~M_GET) ? ", " : "",
	    methods & M_POST ? "POST" : "",
	    (methods & M_POST) && (methods & M_OPTIONS) ? ", " : "",
	    methods & M_OPTIONS ? "OPTIONS" : "");
}

/* proxy_405 - a proxied path with another method: 405 + Allow. */
static int64_t
proxy_405(struct ing *g, struct httpd_req *req, unsigned allow)
{
	struct hdrs h = { .n = 0 };
	char list[64] = "";
	size_t used = 0;

	for (size_t i = 0; i < g->nproxies && used < sizeof(list); i++)
		if (allow & (1u << i))
			used += (size_t)snprintf(list + used,
			    sizeof(list) - used, "%s%s", used ? ", " : "",
			    g->proxies[i].method);
	hdr_add(&h, "Allow", list);
	return fail(g, req, RG_E_METHOD_NOT_ALLOWED, NULL, 0, &h);
}

static int64_t
on_head(void *arg, struct httpd_req *req)
{
	struct ing *g = arg;
	const struct route *r;
	enum route_id id;

	r = route_of(httpd_req_path(req), &id);
	if (r == NULL) {
		unsigned allow;
		const struct proxy_route *p = proxy_of(g, httpd_req_path(req),
		    httpd_req_method(req), &allow);

		if (p != NULL)
			return proxy_head(g, req, p);
		if (allow == 0)
			return fail(g, req, RG_E_NOT_FOUND, NULL, 0, NULL);
		return proxy_405(g, req, allow);
	}
	if ((method_bit(httpd_req_method(req)) & r->methods) == 0) {
		struct hdrs h = { .n = 0 };
		char allow[40];

		allow_header(r->methods, allow, sizeof(allow));
		hdr_add(&h, "Allow", allow);
		return fail(g, req, RG_E_METHOD_NOT_ALLOWED, NULL, 0, &h);
	}
	httpd_req_set_data(req, (void *)(uintptr_t)&route_tags[id]);
	return r->head(g, req);
}

static void
on_request(void *arg, struct httpd_req *req)
{
	struct ing *g = arg;
	const int *kind = httpd_req_data(req);
	const struct route *r = NULL;

	if (kind != NULL && *kind == TAG_PROXY) {
		proxy_body(g, req, (struct upcall *)(void *)(uintptr_t)kind);
		return;
	}
	if (kind != NULL)
		r = &routes[((const struct route_tag *)(const void *)kind)->id];
	if (r == NULL || r->body == NULL) {
		fail(g, req, RG_E_INTERNAL_ERROR, NULL, 0, NULL);
		return;
	}
	r->body(g, req);
}

static void
on_error(void *arg, struct httpd_req *req, enum httpd_err err)
{
	static const enum rg_error map[] = {
		[HTTPD_E_NONE] = RG_E_INTERNAL_ERROR,
		[HTTPD_E_BAD_REQUEST] = RG_E_BAD_REQUEST,
		[HTTPD_E_URI_TOO_LONG] = RG_E_URI_TOO_LONG,
		[HTTPD_E_HEAD_TOO_LARGE] = RG_E_HEADERS_TOO_LARGE,
		[HTTPD_E_BODY_TOO_LARGE] = RG_E_PAYLOAD_TOO_LARGE,
		[HTTPD_E_TIMEOUT] = RG_E_REQUEST_TIMEOUT,
		[HTTPD_E_NOT_IMPLEMENTED] = RG_E_NOT_IMPLEMENTED,
		[HTTPD_E_VERSION] = RG_E_HTTP_VERSION,
	};
	const int *kind = httpd_req_data(req);
	struct hdrs h = { .n = 0 };

	if (kind != NULL && *kind == TAG_PROXY) {
		/* answered here: on_close will not come for its upcall */
		httpd_req_set_close_cb(req, NULL, NULL);
		httpd_req_set_data(req, NULL);
		upcall_free((struct upcall *)(void *)(uintptr_t)kind);
		kind = NULL;
	}
	if (kind != NULL && *kind == TAG_ROUTE &&
	    ((const struct route_tag *)(const void *)kind)->id == ROUTE_CHAT)
		cors(arg, req, &h);
	fail(arg, req,
	    (unsigned)err < RG_NELEM(map) ? map[err] : RG_E_INTERNAL_ERROR,
	    NULL, 0, &h);
}

static const struct httpd_ops ingress_http = {
	.on_head = on_head,
	.on_request = on_request,
	.on_error = on_error,
};

/* --- the role -------------------------------------------------------------*/

static int
ingress_init(struct role_ctx *ctx)
{
	struct ing *g = &the_ing;
	const struct config *c = ctx->cfg;
	struct httpd_limits lim = {
		.max_head_bytes = (size_t)c->http_max_header_bytes,
		.head_timeout_ms = (unsigned)c->http_header_timeout_ms,
		.body_timeout_ms = (unsigned)c->http_body_timeout_ms,
		.keepalive_timeout_ms = (unsigned)c->http_keepalive_timeout_ms,
		.max_connections = (unsigned)c->http_max_connections,
		.error_code_header = c->http_error_code_header,
	};
	char err[256];

	g->ctx = ctx;
	ctx->priv = g;
	clientip_set_init(&g->trusted);
	for (size_t i = 0; i < c->http_trusted_proxies.n; i++)
		if (clientip_set_add(&g->trusted, c->http_trusted_proxies.v[i],
			err, sizeof(err)) != 0) {
			log_err("http.trusted_proxies: %s", err);
			return -1;
		}
	g->wake = event_new(ctx->base, -1, 0, wake_workers, g);
	{
		struct httpc_opts o = { .ca_file = c->tls_ca_file,
			.max_idle_per_origin = 16 };
		char why[400];

		g->http = httpc_new(ctx->base, &o);
		if (routes_parse(c->routes, &g->proxies, &g->nproxies, why,
			sizeof(why)) != 0) {
			log_err("config: %s", why);
			return -1;
		}
		if (g->nproxies > 32) {
			log_err("config: routes: at most 32 proxied routes");
			return -1;
		}
		if (c->auth_jwt_secret != NULL ||
		    c->auth_jwt_public_key_file != NULL) {
			g->jwt = jwt_verifier_from_config(c, why, sizeof(why));
			if (g->jwt == NULL) {
				log_err("config: auth.jwt: %s", why);
				return -1;
			}
		}
	}
	g->listen_fd = httpd_listen(c->http_listen, 1, err, sizeof(err));
	if (g->listen_fd < 0) {
		log_err("http.listen %s: %s", c->http_listen, err);
		return -1;
	}
	g->httpd = httpd_new(ctx->base, g->listen_fd, &ingress_http, g, &lim);
	httpd_set_stats(g->httpd, &ctx->self->counters.http);
	log_info("listening on %s", c->http_listen);
	return 0;
}

static void
ingress_exit(struct role_ctx *ctx)
{
	struct ing *g = ctx->priv;

	if (g == NULL || g->httpd == NULL)
		return;
	/* stop taking requests; commit what was accepted; answer it */
	httpd_drain(g->httpd);
	role_commit_drain(ctx);
	wake_workers(-1, 0, g);
	httpd_free(g->httpd);
	close(g->listen_fd);
	event_free(g->wake);
	httpc_free(g->http);
	jwt_verifier_free(g->jwt);
	free(g->proxies);
}

static void
ingress_tick(struct role_ctx *ctx)
{
	if (ctx->priv != NULL)
		tel_flush(ctx->priv);
}

static const struct role_ops ingress_ops = {
	.role = ROLE_INGRESS,
	.init = ingress_init,
	.on_timer = ingress_tick,
	.on_exit = ingress_exit,
};

int
main(int argc, char **argv)
{
	return role_main(argc, argv, &ingress_ops);
}
