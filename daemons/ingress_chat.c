/*
 * ingress_chat - the chat routes (SPEC §3): POST/OPTIONS /api/chat and
 * GET /api/chat/health.
 *
 * Must never: answer a chat request without CORS headers for an allowed
 * Origin, or show a secret in the health answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemons/ingress.h"
#include "gate/chatreq.h"
#include "gate/webhook.h"
#include "shm/ratelimit.h"
#include "util/util.h"

int64_t
chat_head(struct ing *g, struct httpd_req *req)
{
	const char *origin = httpd_req_header(req, "origin");
	struct hdrs h = { .n = 0 };
	char ip[CLIENTIP_BUFSZ], key[CLIENTIP_BUFSZ + 8];

	if (strcmp(httpd_req_method(req), "OPTIONS") == 0) {
		/* preflight: CORS headers only for an allowed Origin */
		if (ing_origin_allowed(g, origin)) {
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
	if (origin != NULL && !ing_origin_allowed(g, origin))
		return ing_fail(g, req, RG_E_FORBIDDEN, "Origin not allowed.", 0,
		    NULL);
	if (origin == NULL && CFG(g)->chat_require_origin)
		return ing_fail(g, req, RG_E_FORBIDDEN, "Origin required.", 0,
		    NULL);
	ing_cors(g, req, &h);
	if (!ing_is_json(req))
		return ing_fail(g, req, RG_E_UNSUPPORTED_MEDIA_TYPE, NULL, 0, &h);
	/* chat_stream: keyed by the client address */
	ing_client_ip(g, req, ip, sizeof(ip));
	snprintf(key, sizeof(key), "ip:%s", ip);
	if (ing_limit(g, req, RL_BUCKET_CHAT_STREAM, key,
		CFG(g)->rate_limit_chat_stream_max,
		CFG(g)->rate_limit_chat_stream_window_ms, &h) != 0)
		return -1;
	return CHAT_BODY_MAX;
}

void
chat_body(struct ing *g, struct httpd_req *req)
{
	struct hdrs h = { .n = 0 };
	char msg[WEBHOOK_MSG_MAX];
	const void *body;
	size_t len;
	json_t *j;

	ing_cors(g, req, &h);
	body = httpd_req_body(req, &len);
	switch (chatreq_parse(body, len, &j, msg, sizeof(msg))) {
	case CHATREQ_INVALID_JSON:
		ing_fail(g, req, RG_E_INVALID_JSON, NULL, 0, &h);
		return;
	case CHATREQ_INVALID_REQUEST:
		ing_fail(g, req, RG_E_INVALID_REQUEST, msg, 0, &h);
		return;
	case CHATREQ_OK:
		break;
	}
	json_decref(j);
	ing_fail(g, req, RG_E_MISCONFIGURED,
	    "Chat streaming is not available on this gateway.", 0, &h);
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

int64_t
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
		return ing_fail(g, req, RG_E_NOT_FOUND, NULL, 0, NULL);
	if (origin != NULL && !ing_origin_allowed(g, origin))
		return ing_fail(g, req, RG_E_FORBIDDEN, "Origin not allowed.", 0,
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
	key = ing_secret(c->provider_primary_api_key) != NULL;
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
		return ing_fail(g, req, RG_E_INTERNAL_ERROR, NULL, 0, NULL);
	ing_cors(g, req, &h);
	hdr_add(&h, "Content-Type", "application/json");
	hdr_add(&h, "Cache-Control", "no-store");
	httpd_respond(req, strcmp(status, "down") == 0 ? 503 : 200, h.h, h.n,
	    text, strlen(text));
	free(text);
	return -1;
}
