/*
 * ingress_health - GET /api/chat/health (SPEC §3): gateway health and
 * readiness for load balancers and operators: status, readiness checks,
 * gateway mode, admission policy and jitter, the provider routes with
 * their circuit and bulkhead settings and state, region topology.
 *
 * Must never: show a secret (only whether the provider key is present).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemons/ingress.h"
#include "shm/bulkhead.h"
#include "shm/circuit.h"
#include "gate/outcall.h"
#include "util/util.h"

/* route_json - one provider route: its settings and its live state. */
static json_t *
route_json(struct ing *g, unsigned prov, const char *base, int64_t timeout,
    int64_t retries)
{
	struct outcall_limits lim;
	struct cb_status st;
	const char *state = "closed";

	outcall_limits(CFG(g), prov, &lim);
	if (cb_status(&g->ctx->shm, prov, &st) == 0 && st.state < CB_NSTATES)
		state = cb_state_name(st.state);
	return json_pack("{s:s,s:s,s:I,s:I,s:{s:s,s:I,s:I},s:{s:I,s:I,s:I}}",
	    "provider", cb_provider_name(prov), "baseUrl", base, "timeoutMs",
	    (json_int_t)timeout, "retries", (json_int_t)retries, "circuit",
	    "state", state, "threshold", (json_int_t)lim.threshold,
	    "cooldownMs", (json_int_t)lim.cooldown_ms, "bulkhead",
	    "maxConcurrent", (json_int_t)lim.max_concurrent, "leaseTtlMs",
	    (json_int_t)lim.lease_ttl_ms, "inFlight",
	    (json_int_t)bh_inflight(&g->ctx->shm, prov, now_ms()));
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
	    admit_mode_name(admit_gateway_mode(c)), "admission", "enforce", "userInflight",
	    (int)c->admission_enforce_user_inflight, "globalInflight",
	    (int)c->admission_enforce_global_inflight, "globalMsgRate",
	    (int)c->admission_enforce_global_msg_rate, "globalToolRate",
	    (int)c->admission_enforce_global_tool_rate, "retryAfterMs",
	    (json_int_t)c->admission_retry_after_ms, "retryAfterJitterPct",
	    (json_int_t)c->admission_retry_after_jitter_pct, "providerRoutes",
	    "primary",
	    route_json(g, CB_PROV_OPENROUTER_CHAT_PRIMARY,
		c->provider_primary_base_url,
		c->chat_provider_primary_timeout_ms,
		c->chat_provider_primary_retries),
	    "secondary",
	    route_json(g, CB_PROV_OPENROUTER_CHAT_SECONDARY,
		c->provider_secondary_base_url,
		c->chat_provider_secondary_timeout_ms,
		c->chat_provider_secondary_retries),
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
