/*
 * ingress_oauth - GET /api/gmail/auth/callback (SPEC §3): the OAuth
 * redirect target.  Checks the limiter and the signed state, exchanges
 * the code at oauth.token_url through the provider gmail_oauth
 * (gate/outcall: bulkhead, circuit, timeout, retries), stores the
 * connection record durably (topic gmail.connection) and redirects the
 * browser to <app_url>/settings?tab=connections&gmail=<outcome>.
 *
 * Must never: log the code, a token or the client secret; redirect
 * "connected" before the record is committed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemons/ingress.h"
#include "gate/crypto.h"
#include "gate/oauthstate.h"
#include "gate/outcall.h"
#include "gate/query.h"
#include "shm/ratelimit.h"
#include "util/log.h"
#include "util/util.h"

#define OAUTH_PARAM_MAX 2048
#define OAUTH_ANSWER_MAX (64 * 1024)

/* One code exchange while its browser waits. */
struct exchange {
	struct ing *g;
	uint64_t req_id;
	struct outcall *oc;
	char uid[OAUTHSTATE_UID_MAX + 1];
	char code_hash[17]; /* the record's key: one per user and code */
};

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

/* stored - the connection record's commit finished. */
static void
stored(struct ing *g, struct httpd_req *req, const struct replay_batch *b,
    int rc)
{
	(void)b;
	if (req != NULL)
		oauth_redirect(g, req, rc == STORE_OK ? "connected" : "error");
}

/* exchange_close - the browser left: stop the call. */
static void
exchange_close(void *arg, struct httpd_req *req)
{
	struct exchange *x = arg;

	(void)req;
	outcall_cancel(x->oc);
	free(x);
}

static void
exchange_done(void *arg, const struct outcall_result *res)
{
	struct exchange *x = arg;
	struct ing *g = x->g;
	struct httpd_req *req = httpd_req_lookup(g->httpd, x->req_id);
	json_t *tok = NULL, *rec;
	struct handoff *h;
	char key[OAUTHSTATE_UID_MAX + 24];

	if (req == NULL) {
		free(x); /* cannot happen: the close callback cancels */
		return;
	}
	httpd_req_set_close_cb(req, NULL, NULL);
	if (res->verdict != OUTCALL_ANSWERED || res->status != 200 ||
	    res->body == NULL ||
	    (tok = json_loadb(res->body, res->blen, 0, NULL)) == NULL ||
	    !json_is_string(json_object_get(tok, "access_token"))) {
		log_warn("gmail oauth exchange failed: %s, status %d",
		    res->verdict == OUTCALL_ANSWERED ?
			"answer" :
			(res->verdict == OUTCALL_FAILED ?
				httpc_rc_name(res->rc) :
				outcall_verdict_name(res->verdict)),
		    res->status);
		json_decref(tok);
		free(x);
		oauth_redirect(g, req, "error");
		return;
	}
	rec = json_pack("{s:s,s:O,s:O*,s:O*,s:O*,s:O*,s:I}", "userId", x->uid,
	    "accessToken", json_object_get(tok, "access_token"),
	    "refreshToken", json_object_get(tok, "refresh_token"),
	    "expiresIn", json_object_get(tok, "expires_in"), "scope",
	    json_object_get(tok, "scope"), "idToken",
	    json_object_get(tok, "id_token"), "connectedAt",
	    (json_int_t)now_ms());
	json_decref(tok);
	if (rec == NULL) {
		free(x);
		oauth_redirect(g, req, "error");
		return;
	}
	snprintf(key, sizeof(key), "%s:%s", x->uid, x->code_hash);
	free(x);
	h = handoff_new(req, 1, "gmail_connection", "gmail.connection");
	handoff_item(h, 0, key, rec);
	handoff_submit(g, req, h, stored);
}

/* exchange_start - POST the code to oauth.token_url. */
static void
exchange_start(struct ing *g, struct httpd_req *req, const char *uid,
    const char *code)
{
	static const struct outcall_cb cb = { .on_done = exchange_done };
	const struct config *c = CFG(g);
	struct exchange *x = xcalloc(1, sizeof(*x));
	struct httpc_header hdrs[2] = {
		{ "Content-Type", "application/x-www-form-urlencoded" },
		{ "Accept", "application/json" },
	};
	struct outcall_policy pol = {
		.max_attempts = 1 + (uint32_t)c->oauth_retries,
		.collect_max = OAUTH_ANSWER_MAX,
	};
	struct outcall_result refused;
	unsigned char mac[CRYPTO_SHA256_LEN];
	char *body = NULL;
	size_t blen = 0;

	x->g = g;
	x->req_id = httpd_req_id(req);
	strlcpy_rg(x->uid, uid, sizeof(x->uid));
	crypto_hmac_sha256("gmail.connection", 16, code, strlen(code), mac);
	crypto_hex_encode(mac, 8, x->code_hash, sizeof(x->code_hash));
	form_add(&body, &blen, "grant_type", "authorization_code");
	form_add(&body, &blen, "code", code);
	form_add(&body, &blen, "client_id", c->oauth_client_id);
	form_add(&body, &blen, "client_secret", c->oauth_client_secret);
	form_add(&body, &blen, "redirect_uri", c->oauth_redirect_uri);
	x->oc = outcall_start(g->out, CB_PROV_GMAIL_OAUTH,
	    &(struct httpc_req){ .method = "POST",
		.url = c->oauth_token_url,
		.headers = hdrs,
		.nheaders = 2,
		.body = body,
		.body_len = blen,
		.connect_ms = (unsigned)c->oauth_timeout_ms,
		.first_byte_ms = (unsigned)c->oauth_timeout_ms,
		.idle_ms = (unsigned)c->oauth_timeout_ms,
		.total_ms = (unsigned)c->oauth_timeout_ms },
	    &pol, &cb, x, NULL, &refused);
	free(body);
	if (x->oc == NULL) {
		free(x);
		oauth_redirect(g, req,
		    refused.verdict == OUTCALL_SATURATED ? "busy" : "error");
		return;
	}
	httpd_req_set_close_cb(req, exchange_close, x);
}

int64_t
oauth_head(struct ing *g, struct httpd_req *req)
{
	char ip[CLIENTIP_BUFSZ];

	ing_client_ip(g, req, ip, sizeof(ip));
	if (ing_limit(g, req, RL_BUCKET_GMAIL_OAUTH_CALLBACK, ip,
		CFG(g)->rate_limit_gmail_oauth_max,
		CFG(g)->rate_limit_gmail_oauth_window_ms, NULL) != 0)
		return -1;
	if (ing_secret(CFG(g)->app_url) == NULL)
		return ing_fail(g, req, RG_E_MISCONFIGURED,
		    "app_url is not configured.", 0, NULL);
	/* the rest may wait for the token endpoint: on_request answers */
	return 0;
}

void
oauth_body(struct ing *g, struct httpd_req *req)
{
	const char *q = httpd_req_query(req);
	const char *sec = ing_secret(CFG(g)->oauth_state_secret);
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
		ing_fail(g, req, RG_E_MISCONFIGURED,
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
		ing_fail(g, req, RG_E_MISCONFIGURED,
		    "oauth.client_id, client_secret and redirect_uri are "
		    "needed.",
		    0, NULL);
		return;
	}
	exchange_start(g, req, uid, code);
	free(code);
}
