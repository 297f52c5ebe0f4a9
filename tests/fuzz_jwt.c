/* fuzz-sources: gate/jwt.c gate/b64.c gate/crypto.c util/util.c util/log.c */
/*
 * fuzz_jwt - libFuzzer target for gate/jwt.  Three verifiers (HS256 with
 * issuer and audience, RS256 and ES256 with the RFC 7515 example keys) are
 * made once.  The first input byte selects the mode, the rest is its
 * input:
 *
 *	0 an Authorization header value, to jwt_verify on every verifier
 *	1 a bare token, to jwt_verify_token on every verifier
 *	2 "HEADER\0PAYLOAD": both base64url-encoded and HMAC-signed here, so
 *	  the fuzzer reaches the JSON and claim checks behind the signature;
 *	  the result must never be bad_signature, and "Bearer " + token must
 *	  give the same answer
 *	3 as 2, with the clock taken from the first 8 bytes
 *
 * Properties on every JWT_OK: a non-empty subject of at most JWT_SUB_MAX
 * bytes without control characters.  Crashes, sanitizer reports, leaks and
 * broken properties (__builtin_trap) are findings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gate/b64.h"
#include "gate/crypto.h"
#include "gate/jwt.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c))                                                     \
			__builtin_trap();                                     \
	} while (0)

#define SECRET "fuzz-secret-fuzz-secret-fuzz-sec"
#define NOW    1700000000ULL

static const char rs_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAofgWCuLjybRlzo0tZWJj\n"
    "NiuSfb4p4fAkd/wWJcyQoTbji9k0l8W26mPddxHmfHQp+Vaw+4qPCJrcS2mJPMEz\n"
    "P1Pt0Bm4d4QlL+yRT+SFd2lZS+pCgNMsD1W/YpRPEwOWvG6b32690r2jZ47soMZo\n"
    "9wGzjb/7OMg0LOL+bSf63kpaSHSXndS5z5rexMdbBYUsLA9e+KXBdQOS+UTo7WTB\n"
    "EMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6/I5IhlJH7aGhyxX\n"
    "FvUK+DWNmoudF8NAco9/h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXp\n"
    "oQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";
static const char es_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7\n"
    "6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==\n"
    "-----END PUBLIC KEY-----\n";

static struct jwt_verifier *vs[4];

static struct jwt_verifier *
mk(enum jwt_alg alg, const char *secret, const char *pem, const char *iss,
    const char *aud)
{
	struct jwt_config c = { .alg = alg,
		.secret = secret,
		.public_key_pem = pem,
		.issuer = iss,
		.audience = aud,
		.leeway_s = 30 };
	char err[256];
	struct jwt_verifier *v = jwt_verifier_new(&c, err, sizeof(err));

	CHECK(v != NULL);
	return v;
}

static void
init(void)
{
	if (vs[0] != NULL)
		return;
	vs[0] = mk(JWT_HS256, SECRET, NULL, NULL, NULL);
	vs[1] = mk(JWT_HS256, SECRET, NULL, "iss", "aud");
	vs[2] = mk(JWT_RS256, NULL, rs_pem, NULL, NULL);
	vs[3] = mk(JWT_ES256, NULL, es_pem, NULL, NULL);
}

/* check_ok - the properties of a result and its claims */
static void
check_ok(enum jwt_result r, const struct jwt_claims *c)
{
	size_t i, n;

	CHECK((int)r >= JWT_OK && (int)r <= JWT_NO_SUBJECT);
	CHECK(jwt_result_name(r)[0] != 'u'); /* not "unknown" */
	if (r != JWT_OK) {
		CHECK(c->sub[0] == '\0');
		return;
	}
	n = strlen(c->sub);
	CHECK(n >= 1 && n <= JWT_SUB_MAX);
	for (i = 0; i < n; i++)
		CHECK((unsigned char)c->sub[i] >= 0x20 &&
		    (unsigned char)c->sub[i] != 0x7f);
}

/* signed_token - HMAC-signed token of header h[0..hn), payload p[0..pn)
 * verified at now; the answers of both entry points must agree. */
static void
signed_token(
    const uint8_t *h, size_t hn, const uint8_t *p, size_t pn, uint64_t now)
{
	size_t cap = B64_ENCODED_LEN(hn) + B64_ENCODED_LEN(pn) + 64;
	unsigned char mac[CRYPTO_SHA256_LEN];
	struct jwt_claims c1, c2;
	enum jwt_result r1, r2;
	char *tok, *hdr;
	long a, b, s;
	size_t i;

	tok = xmalloc(cap + 7);
	hdr = tok;
	memcpy(hdr, "Bearer ", 7);
	tok = hdr + 7;
	a = b64url_encode(h, hn, tok, cap);
	CHECK(a >= 0);
	tok[a] = '.';
	b = b64url_encode(p, pn, tok + a + 1, cap - (size_t)a - 1);
	CHECK(b >= 0);
	crypto_hmac_sha256(
	    SECRET, strlen(SECRET), tok, (size_t)(a + 1 + b), mac);
	tok[a + 1 + b] = '.';
	s = b64url_encode(
	    mac, sizeof(mac), tok + a + b + 2, cap - (size_t)(a + b + 2));
	CHECK(s >= 0);
	for (i = 0; i < 2; i++) {
		r1 = jwt_verify_token(
		    vs[i], tok, (size_t)(a + b + s + 2), now, &c1);
		check_ok(r1, &c1);
		CHECK(r1 != JWT_BAD_SIGNATURE);
		r2 = jwt_verify(vs[i], hdr, (size_t)(a + b + s + 9), now, &c2);
		CHECK(r1 == r2);
		CHECK(strcmp(c1.sub, c2.sub) == 0 && c1.exp == c2.exp &&
		    c1.nbf == c2.nbf && c1.iat == c2.iat);
		if (r1 == JWT_OK) {
			CHECK(c1.exp + 30 > now);
			CHECK(c1.nbf <= now + 30);
		}
	}
	free(hdr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *zero;
	struct jwt_claims c;
	uint64_t now = NOW;
	enum jwt_result r;
	size_t i;

	init();
	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		for (i = 0; i < RG_NELEM(vs); i++) {
			r = jwt_verify(
			    vs[i], (const char *)data + 1, size - 1, NOW, &c);
			check_ok(r, &c);
		}
		break;
	case 1:
		for (i = 0; i < RG_NELEM(vs); i++) {
			r = jwt_verify_token(
			    vs[i], (const char *)data + 1, size - 1, NOW, &c);
			check_ok(r, &c);
			CHECK(r != JWT_MISSING || size == 1);
		}
		break;
	case 3:
		if (size < 9)
			return 0;
		memcpy(&now, data + 1, sizeof(now));
		data += 8;
		size -= 8;
		/* FALLTHROUGH */
	case 2:
		zero = memchr(data + 1, 0, size - 1);
		if (zero == NULL)
			return 0;
		signed_token(data + 1, (size_t)(zero - data - 1), zero + 1,
		    size - (size_t)(zero - data) - 1, now);
		break;
	}
	return 0;
}
