/*
 * oauth - relmock's OAuth 2.0 token endpoint (RFC 6749 section 4.1.3),
 * the one relgate's Gmail callback exchanges its code at:
 * POST /oauth/token, application/x-www-form-urlencoded.
 *
 * A code that starts with "good" is granted (tokens, and an id_token
 * signed HS256 with the client secret, as OpenID Connect allows for
 * confidential clients); "bad..." and anything else is invalid_grant;
 * grant_type=refresh_token works the same way on refresh_token.
 *
 * Owns the record of the token requests.  Never records or echoes the
 * client secret: only whether one was sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/b64.h"
#include "gate/crypto.h"
#include "gate/query.h"
#include "tools/relmock/relmock.h"
#include "util/util.h"

#define FIELD_MAX 2048

static struct mock_log requests;
static uint64_t granted;

static void
oauth_reset(void)
{
	mock_log_clear(&requests);
	granted = 0;
}

/* field - a form field of body into out ("" if absent); -1 if malformed */
static int
field(const char *body, size_t len, const char *name, char *out)
{
	int too_long = 0;
	enum query_result r =
	    query_get(body, len, name, out, FIELD_MAX, &too_long);

	return r == QUERY_BAD || too_long ? -1 : r == QUERY_FOUND;
}

/* b64url_json - base64url of the compact JSON of j (fresh string) */
static char *
b64url_json(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	size_t n = strlen(s), cap = B64_ENCODED_LEN(n) + 1;
	char *out = xmalloc(cap);

	(void)b64url_encode(s, n, out, cap);
	free(s);
	return out;
}

/* id_token - header.payload.signature, HS256 with the client secret */
static char *
id_token(const char *client_id, const char *secret)
{
	unsigned char mac[CRYPTO_SHA256_LEN];
	char sig[B64_ENCODED_LEN(CRYPTO_SHA256_LEN) + 1];
	json_t *hj = json_pack("{s:s,s:s}", "alg", "HS256", "typ", "JWT");
	uint64_t now = now_ms() / 1000;
	json_t *pj = json_pack("{s:s,s:s,s:s,s:s,s:b,s:I,s:I}", "iss",
	    "https://relmock.test", "aud", client_id, "sub", "relmock-user",
	    "email", "user@relmock.test", "email_verified", 1, "iat",
	    (json_int_t)now, "exp", (json_int_t)(now + 3600));
	char *h, *p, *signing, *tok;

	h = b64url_json(hj);
	p = b64url_json(pj);
	signing = xasprintf("%s.%s", h, p);
	crypto_hmac_sha256(
	    secret, strlen(secret), signing, strlen(signing), mac);
	(void)b64url_encode(mac, sizeof(mac), sig, sizeof(sig));
	tok = xasprintf("%s.%s", signing, sig);
	free(h);
	free(p);
	free(signing);
	json_decref(hj);
	json_decref(pj);
	return tok;
}

static void
oauth_handle(struct mock_call *call)
{
	static char grant[FIELD_MAX], code[FIELD_MAX], cid[FIELD_MAX],
	    secret[FIELD_MAX], redirect[FIELD_MAX], refresh[FIELD_MAX];
	struct mock_fault *f = mock_call_fault(call);
	const char *body, *err = NULL, *cred;
	char at[64], rt[64], spec[MOCK_FAULT_SPEC_MAX], *idt = NULL;
	int has_secret, status, bad;
	size_t len;
	json_t *ans;

	if (strcmp(mock_call_path_rest(call), "token") != 0) {
		mock_reply_error(call, 404, "not_found", "no such path");
		return;
	}
	if (!mock_require_method(call, "POST"))
		return;
	body = mock_call_body(call, &len);
	/* every field is read (and the static buffers refreshed) */
	bad = field(body, len, "grant_type", grant) < 0;
	bad |= field(body, len, "code", code) < 0;
	bad |= field(body, len, "client_id", cid) < 0;
	has_secret = field(body, len, "client_secret", secret);
	bad |= has_secret < 0;
	bad |= field(body, len, "redirect_uri", redirect) < 0;
	bad |= field(body, len, "refresh_token", refresh) < 0;
	if (bad)
		err = "invalid_request";
	else if (strcmp(grant, "authorization_code") != 0 &&
	    strcmp(grant, "refresh_token") != 0)
		err = "unsupported_grant_type";
	else if (cid[0] == '\0' || !has_secret)
		err = "invalid_client";
	cred = strcmp(grant, "refresh_token") == 0 ? refresh : code;
	if (err == NULL && strncmp(cred, "good", 4) != 0)
		err = "invalid_grant";
	status = err != NULL ? (strcmp(err, "invalid_client") == 0 ? 401 : 400)
	                     : 200;
	if (f->status != 0)
		status = f->status;
	if (err == NULL && secret[0] != '\0')
		idt = id_token(cid, secret);
	memset(secret, 0, sizeof(secret));
	mock_fault_format(f, spec, sizeof(spec));
	mock_log_add(&requests,
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:i,s:s*}", "grantType",
	        grant, "code", code, "clientId", cid, "clientSecret",
	        has_secret > 0 ? "[redacted]" : "", "redirectUri", redirect,
	        "outcome", err != NULL ? err : "granted", "receivedAt",
	        (json_int_t)now_ms(), "status",
	        f->reset || f->stall ? 0 : status, "fault",
	        spec[0] != '\0' ? spec : NULL));
	if (err != NULL) {
		mock_reply_json(call, status == 200 ? 400 : status,
		    json_pack("{s:s,s:s}", "error", err, "error_description",
		        "relmock: code must start with \"good\""));
		return;
	}
	granted++;
	snprintf(at, sizeof(at), "relmock-access-%llu",
	    (unsigned long long)granted);
	snprintf(rt, sizeof(rt), "relmock-refresh-%llu",
	    (unsigned long long)granted);
	ans = json_pack("{s:s,s:s,s:i,s:s,s:s}", "access_token", at,
	    "refresh_token", rt, "expires_in", 3600, "scope",
	    "https://www.googleapis.com/auth/gmail.readonly openid email",
	    "token_type", "Bearer");
	if (idt != NULL) {
		json_object_set_new(ans, "id_token", json_string(idt));
		free(idt);
	}
	mock_reply_json(call, 200, ans);
}

static int
oauth_control(struct mock_call *call, const char *rest)
{
	if (strcmp(rest, "requests") != 0)
		return -1;
	if (mock_require_method(call, "GET"))
		mock_reply_json(call, 200, mock_log_items(&requests));
	return 0;
}

static void
oauth_fini(void)
{
	mock_log_clear(&requests);
}

const struct mock_endpoint mock_oauth_ep = {
	.name = "oauth",
	.prefix = "/oauth/",
	.faultable = 1,
	.handle = oauth_handle,
	.control = oauth_control,
	.reset = oauth_reset,
	.fini = oauth_fini,
};
