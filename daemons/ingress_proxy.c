/*
 * ingress_proxy - the proxied routes of the config (routes[], SPEC §3): a
 * public path forwarded to the application backend (backend.url + the
 * route's backend_path), with JWT auth and a limiter, through the provider
 * backend (gate/outcall: bulkhead, circuit, timeout), signed with
 * backend.secret.  The backend's answer is passed back as it is; a call
 * that got no answer is a classified upstream_* error.
 *
 * Must never: forward a request whose token was refused, or retry a
 * request the backend may have received (these are not idempotent).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemons/ingress.h"
#include "gate/crypto.h"
#include "gate/jwt.h"
#include "gate/outcall.h"
#include "gate/routes.h"
#include "shm/ratelimit.h"
#include "util/log.h"
#include "util/util.h"

#define PROXY_ANSWER_MAX (1024 * 1024)

/* A proxied request, from its head to the backend's answer. */
struct proxied {
	int kind; /* TAG_PROXY: httpd_req_data */
	const struct proxy_route *route;
	struct ing *g;
	uint64_t req_id;
	struct outcall *oc;
	char user[JWT_SUB_MAX + 1];
};

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

/* proxied_close - the client left: stop the call, if any. */
static void
proxied_close(void *arg, struct httpd_req *req)
{
	struct proxied *p = arg;

	(void)req;
	outcall_cancel(p->oc);
	free(p);
}

void
proxy_abort(struct ing *g, struct httpd_req *req, void *data)
{
	(void)g;
	httpd_req_set_close_cb(req, NULL, NULL);
	httpd_req_set_data(req, NULL);
	proxied_close(data, req);
}

int64_t
proxy_head(struct ing *g, struct httpd_req *req, const struct proxy_route *r)
{
	struct jwt_claims claims;
	const char *auth = httpd_req_header(req, "authorization");
	char key[JWT_SUB_MAX + 8];
	struct proxied *p;

	memset(&claims, 0, sizeof(claims));
	if (r->auth_jwt) {
		enum jwt_result jr;

		if (g->jwt == NULL)
			return ing_fail(g, req, RG_E_MISCONFIGURED,
			    "auth.jwt is not configured.", 0, NULL);
		jr = jwt_verify(g->jwt, auth, auth ? strlen(auth) : 0,
		    now_ms() / 1000, &claims);
		if (jr != JWT_OK) {
			log_debug("%s: token refused: %s", r->path,
			    jwt_result_name(jr));
			return ing_fail(g, req, RG_E_UNAUTHORIZED, NULL, 0,
			    NULL);
		}
	}
	if (r->bucket >= 0) {
		int64_t max, window;

		if (r->key_user) {
			snprintf(key, sizeof(key), "user:%s", claims.sub);
		} else {
			char ip[CLIENTIP_BUFSZ];

			ing_client_ip(g, req, ip, sizeof(ip));
			snprintf(key, sizeof(key), "ip:%s", ip);
		}
		bucket_limits(CFG(g), r->bucket, &max, &window);
		if (ing_limit(g, req, (unsigned)r->bucket, key, max, window,
			NULL) != 0)
			return -1;
	}
	if (CFG(g)->backend_url == NULL || CFG(g)->backend_secret == NULL)
		return ing_fail(g, req, RG_E_MISCONFIGURED,
		    "backend.url and backend.secret are needed.", 0, NULL);
	/* the user travels with the request to its body */
	p = xcalloc(1, sizeof(*p));
	p->kind = TAG_PROXY;
	p->route = r;
	p->g = g;
	p->req_id = httpd_req_id(req);
	strlcpy_rg(p->user, claims.sub, sizeof(p->user));
	httpd_req_set_data(req, p);
	httpd_req_set_close_cb(req, proxied_close, p);
	return PROXY_BODY_MAX;
}

/* proxied_done - pass the backend's answer on, or classify its absence. */
static void
proxied_done(void *arg, const struct outcall_result *res)
{
	struct proxied *p = arg;
	struct ing *g = p->g;
	struct httpd_req *req = httpd_req_lookup(g->httpd, p->req_id);
	struct httpd_header h[2];
	size_t n = 0;

	free(p);
	if (req == NULL)
		return; /* cannot happen: the close callback cancels */
	httpd_req_set_close_cb(req, NULL, NULL);
	httpd_req_set_data(req, NULL);
	if (res->verdict == OUTCALL_ANSWERED) {
		if (res->content_type[0] != '\0')
			h[n++] = (struct httpd_header){ "Content-Type",
				res->content_type };
		if (res->retry_after[0] != '\0')
			h[n++] = (struct httpd_header){ "Retry-After",
				res->retry_after };
		httpd_respond(req, res->status, h, n, res->body, res->blen);
		return;
	}
	if (res->verdict == OUTCALL_CIRCUIT_OPEN) {
		ing_fail(g, req, RG_E_UPSTREAM_UNAVAILABLE, NULL,
		    rl_retry_after_s(res->retry_ms), NULL);
		return;
	}
	switch (res->kind) {
	case CB_ERR_TIMEOUT:
		ing_fail(g, req, RG_E_UPSTREAM_TIMEOUT, NULL, 0, NULL);
		return;
	case CB_ERR_CONNECT:
		ing_fail(g, req, RG_E_UPSTREAM_UNAVAILABLE, NULL, 1, NULL);
		return;
	default:
		ing_fail(g, req, RG_E_UPSTREAM_ERROR, NULL, 0, NULL);
		return;
	}
}

void
proxy_body(struct ing *g, struct httpd_req *req, void *data)
{
	static const struct outcall_cb cb = { .on_done = proxied_done };
	const struct config *c = CFG(g);
	struct proxied *p = data;
	const struct proxy_route *r = p->route;
	const char *ct = httpd_req_header(req, "content-type");
	struct outcall_policy pol = {
		.max_attempts = 1, /* not idempotent: never repeated */
		.collect_max = PROXY_ANSWER_MAX,
	};
	struct outcall_result refused;
	char sig[CRYPTO_SIG_LEN], url[2048];
	struct httpc_header hdrs[3];
	const void *body;
	size_t len, n = 0;

	body = httpd_req_body(req, &len);
	if (url_join(url, sizeof(url), c->backend_url, r->backend_path) < 0) {
		proxy_abort(g, req, p);
		ing_fail(g, req, RG_E_MISCONFIGURED,
		    "backend.url is too long.", 0, NULL);
		return;
	}
	crypto_sig_sha256(c->backend_secret, body, len, sig);
	hdrs[n++] = (struct httpc_header){ "Content-Type",
		ct ? ct : "application/json" };
	hdrs[n++] = (struct httpc_header){ "X-Relgate-Signature", sig };
	if (r->auth_jwt)
		hdrs[n++] = (struct httpc_header){ "X-Relgate-User", p->user };
	p->oc = outcall_start(g->out, CB_PROV_BACKEND,
	    &(struct httpc_req){ .method = r->method,
		.url = url,
		.headers = hdrs,
		.nheaders = n,
		.body = body,
		.body_len = len,
		.connect_ms = (unsigned)c->backend_timeout_ms,
		.first_byte_ms = (unsigned)c->backend_timeout_ms,
		.idle_ms = (unsigned)c->backend_timeout_ms,
		.total_ms = (unsigned)c->backend_timeout_ms },
	    &pol, &cb, p, NULL, &refused);
	if (p->oc != NULL)
		return;
	proxy_abort(g, req, p);
	if (refused.verdict == OUTCALL_SATURATED)
		ing_fail(g, req, RG_E_OVERLOADED, NULL,
		    rl_retry_after_s(refused.retry_ms), NULL);
	else if (refused.verdict == OUTCALL_CIRCUIT_OPEN)
		ing_fail(g, req, RG_E_UPSTREAM_UNAVAILABLE, NULL,
		    rl_retry_after_s(refused.retry_ms), NULL);
	else
		ing_fail(g, req, RG_E_MISCONFIGURED,
		    "backend.url cannot be requested.", 0, NULL);
}
