/*
 * oauthstate - see oauthstate.h.
 */
#include "gate/oauthstate.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "gate/b64.h"
#include "gate/crypto.h"

/* EXP_SECONDS_BELOW - an exp below this is in seconds (10^11 s is the year
 * 5138; 10^11 ms is 1973) */
#define EXP_SECONDS_BELOW 100000000000ULL

const char *
oauthstate_result_name(enum oauthstate_result r)
{
	switch (r) {
	case OAUTHSTATE_OK:
		return "ok";
	case OAUTHSTATE_MALFORMED:
		return "malformed";
	case OAUTHSTATE_BAD_SIGNATURE:
		return "bad_signature";
	case OAUTHSTATE_EXPIRED:
		return "expired";
	}
	return "unknown";
}

/* read_exp - exp member as ms since the epoch; -1 if absent or invalid. */
static int
read_exp(const json_t *v, uint64_t *exp_ms)
{
	double d;
	uint64_t e;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return -1;
		e = (uint64_t)json_integer_value(v);
	} else if (json_is_real(v)) {
		d = json_real_value(v);
		if (!isfinite(d) || d < 0 || d >= 9e18)
			return -1;
		e = (uint64_t)d;
	} else {
		return -1;
	}
	*exp_ms = e < EXP_SECONDS_BELOW ? e * 1000 : e;
	return 0;
}

/* read_payload - uid and exp of the decoded payload; 0 or -1. */
static int
read_payload(const unsigned char *p, size_t n, char *uid, size_t uidlen,
    uint64_t *exp_ms)
{
	const json_t *u;
	json_t *doc;
	size_t ulen;
	int rc = -1;

	doc = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);
	if (doc == NULL || !json_is_object(doc))
		goto out;
	u = json_object_get(doc, "uid");
	if (u == NULL)
		u = json_object_get(doc, "userId");
	if (!json_is_string(u))
		goto out;
	ulen = json_string_length(u);
	if (ulen == 0 || ulen > OAUTHSTATE_UID_MAX || ulen >= uidlen)
		goto out;
	if (read_exp(json_object_get(doc, "exp"), exp_ms) < 0)
		goto out;
	memcpy(uid, json_string_value(u), ulen + 1);
	rc = 0;
out:
	json_decref(doc);
	return rc;
}

enum oauthstate_result
oauthstate_verify(const char *secret, const char *state, size_t len,
    uint64_t now_ms, char *uid, size_t uidlen)
{
	unsigned char payload[B64_DECODED_MAX(OAUTHSTATE_MAX)];
	unsigned char sig[CRYPTO_SHA256_LEN + 3], mac[CRYPTO_SHA256_LEN];
	const char *dot;
	size_t plen, slen;
	uint64_t exp_ms;
	long n, k;

	assert(uidlen >= 1);
	uid[0] = '\0';
	if (state == NULL || len == 0 || len > OAUTHSTATE_MAX)
		return OAUTHSTATE_MALFORMED;
	dot = memchr(state, '.', len);
	if (dot == NULL)
		return OAUTHSTATE_MALFORMED;
	plen = (size_t)(dot - state);
	slen = len - plen - 1;
	if (plen == 0 || slen == 0)
		return OAUTHSTATE_MALFORMED;
	k = b64_decode(dot + 1, slen, B64_URL, sig, sizeof(sig));
	if (k != CRYPTO_SHA256_LEN)
		return OAUTHSTATE_MALFORMED;
	n = b64_decode(state, plen, B64_URL, payload, sizeof(payload));
	if (n <= 0)
		return OAUTHSTATE_MALFORMED;
	if (secret == NULL || secret[0] == '\0')
		return OAUTHSTATE_BAD_SIGNATURE;
	crypto_hmac_sha256(secret, strlen(secret), state, plen, mac);
	if (!crypto_ct_eq(mac, sig, sizeof(mac)))
		return OAUTHSTATE_BAD_SIGNATURE;
	if (read_payload(payload, (size_t)n, uid, uidlen, &exp_ms) < 0) {
		uid[0] = '\0';
		return OAUTHSTATE_MALFORMED;
	}
	if (exp_ms <= now_ms) {
		uid[0] = '\0';
		return OAUTHSTATE_EXPIRED;
	}
	return OAUTHSTATE_OK;
}

long
oauthstate_make(const char *secret, const char *uid, uint64_t exp_ms,
    char *buf, size_t buflen)
{
	char json[OAUTHSTATE_UID_MAX * 6 + 64];
	unsigned char mac[CRYPTO_SHA256_LEN];
	json_t *doc;
	size_t n;
	long p, s;

	if (secret == NULL || secret[0] == '\0' || uid == NULL ||
	    uid[0] == '\0' || strlen(uid) > OAUTHSTATE_UID_MAX ||
	    exp_ms > INT64_MAX)
		return -1;
	doc = json_pack("{s:s, s:I}", "uid", uid, "exp", (json_int_t)exp_ms);
	if (doc == NULL) /* uid is not UTF-8 */
		return -1;
	n = json_dumpb(doc, json, sizeof(json), JSON_COMPACT);
	json_decref(doc);
	if (n == 0 || n > sizeof(json))
		return -1;
	p = b64url_encode(json, n, buf, buflen);
	if (p < 0)
		return -1;
	crypto_hmac_sha256(secret, strlen(secret), buf, (size_t)p, mac);
	if ((size_t)p + 1 >= buflen)
		return -1;
	buf[p] = '.';
	s = b64url_encode(
	    mac, sizeof(mac), buf + p + 1, buflen - (size_t)p - 1);
	if (s < 0 || (size_t)(p + 1 + s) > OAUTHSTATE_MAX)
		return -1;
	return p + 1 + s;
}
