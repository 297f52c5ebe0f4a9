/*
 * jwt_test - unit tests of gate/jwt: HS256, RS256 and ES256 tokens signed
 * here with keys generated at start-up (mbedTLS), every refusal reason,
 * the Bearer syntax, the size bound and configuration errors.
 *
 * Known answers come from outside mbedTLS: the jwt.io HS256 example and
 * the RS256 and ES256 examples of RFC 7515 appendices A.2 and A.3 (their
 * public keys written as SubjectPublicKeyInfo PEM, and all three checked
 * with Python's hmac and cryptography packages).  None of them has a
 * "sub", and the jwt.io one has no "exp", so they pass the signature step
 * and then fail on a claim, which is what the tests expect.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>

#include "gate/b64.h"
#include "gate/crypto.h"
#include "gate/jwt.h"
#include "testlib.h"
#include "util/util.h"

#define NOW    1700000000ULL
#define SECRET "0123456789abcdef0123456789abcdef"

/* --- keys, made once in main() and inherited by the forked tests -------
 */

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static mbedtls_pk_context rsa_key, rsa1024_key, ec_key, ec384_key;
static char rsa_pem[2048], rsa1024_pem[2048], ec_pem[512], ec384_pem[512];

static void
gen_rsa(mbedtls_pk_context *pk, unsigned bits, char *pem, size_t pemlen)
{
	mbedtls_pk_init(pk);
	if (mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) !=
	        0 ||
	    mbedtls_rsa_gen_key(mbedtls_pk_rsa(*pk), mbedtls_ctr_drbg_random,
	        &drbg, bits, 65537) != 0 ||
	    mbedtls_pk_write_pubkey_pem(pk, (unsigned char *)pem, pemlen) != 0)
		abort();
}

static void
gen_ec(
    mbedtls_pk_context *pk, mbedtls_ecp_group_id id, char *pem, size_t pemlen)
{
	mbedtls_pk_init(pk);
	if (mbedtls_pk_setup(
	        pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
	    mbedtls_ecp_gen_key(
	        id, mbedtls_pk_ec(*pk), mbedtls_ctr_drbg_random, &drbg) != 0 ||
	    mbedtls_pk_write_pubkey_pem(pk, (unsigned char *)pem, pemlen) != 0)
		abort();
}

static void
keys_init(void)
{
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
	        (const unsigned char *)"jwt_test", 8) != 0)
		abort();
	gen_rsa(&rsa_key, 2048, rsa_pem, sizeof(rsa_pem));
	gen_rsa(&rsa1024_key, 1024, rsa1024_pem, sizeof(rsa1024_pem));
	gen_ec(&ec_key, MBEDTLS_ECP_DP_SECP256R1, ec_pem, sizeof(ec_pem));
	gen_ec(&ec384_key, MBEDTLS_ECP_DP_SECP384R1, ec384_pem,
	    sizeof(ec384_pem));
}

/* --- token making ---------------------------------------------------------
 */

enum sig_kind { SIG_HS, SIG_RS, SIG_ES, SIG_ES_DER, SIG_NONE };

/* b64u - base64url of p[0..n) in fresh memory. */
static char *
b64u(const void *p, size_t n)
{
	size_t cap = B64_ENCODED_LEN(n) + 1;
	char *s = xmalloc(cap);

	ck_assert_int_ge(b64url_encode(p, n, s, cap), 0);
	return s;
}

/* sign - the signature of in[0..n) of the given kind into sig. */
static size_t
sign(enum sig_kind kind, const char *secret, const char *in, size_t n,
    unsigned char *sig)
{
	unsigned char hash[32];
	mbedtls_ecp_keypair *ec = mbedtls_pk_ec(ec_key);
	mbedtls_mpi r, s;
	size_t len = 0;

	if (kind == SIG_HS) {
		crypto_hmac_sha256(secret, strlen(secret), in, n, sig);
		return 32;
	}
	if (kind == SIG_NONE)
		return 0;
	ck_assert_int_eq(
	    mbedtls_sha256_ret((const unsigned char *)in, n, hash, 0), 0);
	if (kind == SIG_RS) {
		ck_assert_int_eq(
		    mbedtls_pk_sign(&rsa_key, MBEDTLS_MD_SHA256, hash, 32, sig,
		        &len, mbedtls_ctr_drbg_random, &drbg),
		    0);
		return len;
	}
	if (kind == SIG_ES_DER) {
		ck_assert_int_eq(
		    mbedtls_pk_sign(&ec_key, MBEDTLS_MD_SHA256, hash, 32, sig,
		        &len, mbedtls_ctr_drbg_random, &drbg),
		    0);
		return len;
	}
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	ck_assert_int_eq(mbedtls_ecdsa_sign(&ec->grp, &r, &s, &ec->d, hash, 32,
	                     mbedtls_ctr_drbg_random, &drbg),
	    0);
	ck_assert_int_eq(mbedtls_mpi_write_binary(&r, sig, 32), 0);
	ck_assert_int_eq(mbedtls_mpi_write_binary(&s, sig + 32, 32), 0);
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	return 64;
}

/* join - "h.p.sig" in fresh memory from the encoded parts */
static char *
join(const char *h, const char *p, const unsigned char *sig, size_t siglen)
{
	char *s = b64u(sig, siglen);
	char *t = xasprintf("%s.%s.%s", h, p, s);

	free(s);
	return t;
}

/* token_raw - a token over already-encoded header and payload text. */
static char *
token_raw(enum sig_kind kind, const char *secret, const char *h, const char *p)
{
	unsigned char sig[1024];
	char *in = xasprintf("%s.%s", h, p);
	size_t n = sign(kind, secret, in, strlen(in), sig);
	char *t = join(h, p, sig, n);

	free(in);
	return t;
}

/* token - a token of header and payload JSON. */
static char *
token(enum sig_kind kind, const char *secret, const char *hdr,
    const char *payload)
{
	char *h = b64u(hdr, strlen(hdr)), *p = b64u(payload, strlen(payload));
	char *t = token_raw(kind, secret, h, p);

	free(h);
	free(p);
	return t;
}

static const char *const HS = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char *const RS = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
static const char *const ES = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";

/* pl - a payload in a static buffer */
static const char *pl(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static char pl_buf[16384];
static const char *
pl(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pl_buf, sizeof(pl_buf), fmt, ap);
	va_end(ap);
	return pl_buf;
}

/* good - a valid payload for user u */
static const char *
good(const char *u)
{
	return pl("{\"sub\":\"%s\",\"exp\":%llu,\"iat\":%llu}", u, NOW + 600,
	    NOW - 10);
}

/* --- verifiers ------------------------------------------------------------
 */

static struct jwt_verifier *
vnew(const struct jwt_config *c)
{
	char err[256];
	struct jwt_verifier *v = jwt_verifier_new(c, err, sizeof(err));

	ck_assert_msg(v != NULL, "%s", err);
	return v;
}

static struct jwt_verifier *
hs(const char *iss, const char *aud, uint32_t leeway)
{
	struct jwt_config c = { .alg = JWT_HS256,
		.secret = SECRET,
		.issuer = iss,
		.audience = aud,
		.leeway_s = leeway };

	return vnew(&c);
}

static struct jwt_verifier *
pk(enum jwt_alg alg, const char *pem)
{
	struct jwt_config c = { .alg = alg, .public_key_pem = pem };

	return vnew(&c);
}

/* conf_err - jwt_verifier_new fails on c; the reason is returned. */
static char conf_errbuf[256];
static const char *
conf_err(const struct jwt_config *c)
{
	struct jwt_verifier *v;

	memset(conf_errbuf, 'x', sizeof(conf_errbuf));
	v = jwt_verifier_new(c, conf_errbuf, sizeof(conf_errbuf));
	ck_assert_ptr_null(v);
	ck_assert_int_gt(strlen(conf_errbuf), 0);
	ck_assert_int_lt(strlen(conf_errbuf), sizeof(conf_errbuf));
	ck_assert_ptr_null(strchr(conf_errbuf, '\n'));
	return conf_errbuf;
}

/* vt - jwt_verify_token of the NUL-terminated t at NOW */
static enum jwt_result
vt(const struct jwt_verifier *v, const char *t)
{
	struct jwt_claims c;
	enum jwt_result r = jwt_verify_token(v, t, strlen(t), NOW, &c);

	if (r != JWT_OK)
		ck_assert_str_eq(c.sub, "");
	return r;
}

/* vh - jwt_verify of the NUL-terminated header value h at NOW */
static enum jwt_result
vh(const struct jwt_verifier *v, const char *h)
{
	return jwt_verify(v, h, strlen(h), NOW, NULL);
}

#define ck_result(got, want)                                                  \
	ck_assert_msg((got) == (want), "got %s, want %s",                     \
	    jwt_result_name(got), jwt_result_name(want))

/* --- valid tokens ---------------------------------------------------------
 */

START_TEST(test_hs256_valid)
{
	struct jwt_verifier *v = hs(NULL, NULL, 0);
	char *t = token(SIG_HS, SECRET, HS,
	    pl("{\"sub\":\"user-1\",\"exp\":%llu,\"nbf\":%llu,\"iat\":%llu}",
	        NOW + 60, NOW - 5, NOW - 6));
	struct jwt_claims c;

	ck_result(jwt_verify_token(v, t, strlen(t), NOW, &c), JWT_OK);
	ck_assert_str_eq(c.sub, "user-1");
	ck_assert_uint_eq(c.exp, NOW + 60);
	ck_assert_uint_eq(c.nbf, NOW - 5);
	ck_assert_uint_eq(c.iat, NOW - 6);
	ck_result(jwt_verify_token(v, t, strlen(t), NOW, NULL), JWT_OK);
	free(t);
	/* no typ; unknown header members ignored */
	t = token(
	    SIG_HS, SECRET, "{\"kid\":\"k1\",\"alg\":\"HS256\"}", good("u"));
	ck_result(vt(v, t), JWT_OK);
	free(t);
	t = token(
	    SIG_HS, SECRET, "{\"alg\":\"HS256\",\"typ\":\"jwt\"}", good("u"));
	ck_result(vt(v, t), JWT_OK);
	free(t);
	jwt_verifier_free(v);
}
END_TEST

START_TEST(test_rs256_valid)
{
	struct jwt_verifier *v = pk(JWT_RS256, rsa_pem);
	char *t = token(SIG_RS, NULL, RS, good("rsa-user"));
	struct jwt_claims c;

	ck_result(jwt_verify_token(v, t, strlen(t), NOW, &c), JWT_OK);
	ck_assert_str_eq(c.sub, "rsa-user");
	ck_assert_uint_eq(c.exp, NOW + 600);
	free(t);
	jwt_verifier_free(v);
}
END_TEST

START_TEST(test_es256_valid)
{
	struct jwt_verifier *v = pk(JWT_ES256, ec_pem);
	struct jwt_claims c;
	char *t;
	int i;

	/* several signatures: R or S with leading zero bytes must work */
	for (i = 0; i < 8; i++) {
		t = token(SIG_ES, NULL, ES, good("ec-user"));
		ck_result(jwt_verify_token(v, t, strlen(t), NOW, &c), JWT_OK);
		ck_assert_str_eq(c.sub, "ec-user");
		free(t);
	}
	jwt_verifier_free(v);
}
END_TEST

START_TEST(test_key_files)
{
	char path[] = "/tmp/jwt_test.XXXXXX";
	unsigned char der[512];
	struct jwt_config c = { .alg = JWT_RS256, .public_key_file = path };
	struct jwt_verifier *v;
	char *t;
	int fd, n;

	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
	    write(fd, rsa_pem, strlen(rsa_pem)), (ssize_t)strlen(rsa_pem));
	close(fd);
	v = vnew(&c);
	t = token(SIG_RS, NULL, RS, good("f"));
	ck_result(vt(v, t), JWT_OK);
	free(t);
	jwt_verifier_free(v);

	/* DER SubjectPublicKeyInfo (written at the end of der) */
	n = mbedtls_pk_write_pubkey_der(&ec_key, der, sizeof(der));
	ck_assert_int_gt(n, 0);
	fd = open(path, O_WRONLY | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, der + sizeof(der) - n, (size_t)n), n);
	close(fd);
	c.alg = JWT_ES256;
	v = vnew(&c);
	t = token(SIG_ES, NULL, ES, good("f"));
	ck_result(vt(v, t), JWT_OK);
	free(t);
	jwt_verifier_free(v);
	unlink(path);
}
END_TEST

/* --- signatures and algs --------------------------------------------------
 */

START_TEST(test_wrong_secret)
{
	struct jwt_verifier *v = hs(NULL, NULL, 0);
	char *t = token(SIG_HS, SECRET "x", HS, good("u"));

	ck_result(vt(v, t), JWT_BAD_SIGNATURE);
	free(t);
	t = token(SIG_HS, "0123456789abcdef0123456789abcdeF", HS, good("u"));
	ck_result(vt(v, t), JWT_BAD_SIGNATURE);
	free(t);
	jwt_verifier_free(v);
}
END_TEST

/* tamper - t with the payload replaced by (encoded) p, signature kept */
static char *
tamper(const char *t, const char *p)
{
	const char *d1 = strchr(t, '.'), *d2 = strrchr(t, '.');
	char *e = b64u(p, strlen(p));
	char *r = xasprintf("%.*s.%s%s", (int)(d1 - t), t, e, d2);

	free(e);
	return r;
}

START_TEST(test_tampered)
{
	struct jwt_verifier *h = hs(NULL, NULL, 0);
	struct jwt_verifier *r = pk(JWT_RS256, rsa_pem);
	struct jwt_verifier *e = pk(JWT_ES256, ec_pem);
	char *t, *x;
	size_t mid;

	t = token(SIG_HS, SECRET, HS, good("alice"));
	x = tamper(t, good("admin"));
	ck_result(vt(h, x), JWT_BAD_SIGNATURE);
	free(x);
	/* one signature character changed (not the last: its low bits are
	 * padding and may be refused as base64 instead) */
	mid = strlen(t) - 5;
	t[mid] = t[mid] == 'A' ? 'B' : 'A';
	ck_result(vt(h, t), JWT_BAD_SIGNATURE);
	free(t);

	t = token(SIG_RS, NULL, RS, good("alice"));
	x = tamper(t, good("admin"));
	ck_result(vt(r, x), JWT_BAD_SIGNATURE);
	free(x);
	mid = strlen(t) - 5;
	t[mid] = t[mid] == 'A' ? 'B' : 'A';
	ck_result(vt(r, t), JWT_BAD_SIGNATURE);
	free(t);

	t = token(SIG_ES, NULL, ES, good("alice"));
	x = tamper(t, good("admin"));
	ck_result(vt(e, x), JWT_BAD_SIGNATURE);
	free(x);
	mid = strlen(t) - 5;
	t[mid] = t[mid] == 'A' ? 'B' : 'A';
	ck_result(vt(e, t), JWT_BAD_SIGNATURE);
	free(t);
	jwt_verifier_free(h);
	jwt_verifier_free(r);
	jwt_verifier_free(e);
}
END_TEST

START_TEST(test_alg_none_and_others)
{
	struct jwt_verifier *v = hs(NULL, NULL, 0);
	char *h, *p, *t;

	/* unsecured JWS: empty signature part */
	h = b64u("{\"alg\":\"none\"}", 14);
	p = b64u(good("u"), strlen(good("u")));
	t = xasprintf("%s.%s.", h, p);
	ck_result(vt(v, t), JWT_MALFORMED);
	free(t);
	/* "none" with a (valid HMAC) signature anyway */
	t = token_raw(SIG_HS, SECRET, h, p);
	ck_result(vt(v, t), JWT_BAD_ALG);
	free(t);
	free(h);
	free(p);
	t = token(SIG_HS, SECRET, "{\"alg\":\"None\"}", good("u"));
	ck_result(vt(v, t), JWT_BAD_ALG);
	free(t);
	t = token(SIG_HS, SECRET, "{\"alg\":\"hs256\"}", good("u"));
	ck_result(vt(v, t), JWT_BAD_ALG);
	free(t);
	t = token(SIG_HS, SECRET, "{\"alg\":\"HS384\"}", good("u"));
	ck_result(vt(v, t), JWT_BAD_ALG);
	free(t);
	/* jansson refuses \u0000 */
	t = token(SIG_HS, SECRET, "{\"alg\":\"HS256\\u0000\"}", good("u"));
	ck_result(vt(v, t), JWT_MALFORMED);
	free(t);
	t = token(SIG_HS, SECRET, "{\"typ\":\"JWT\"}", good("u"));
	ck_result(vt(v, t), JWT_MALFORMED);
	free(t);
	t = token(SIG_HS, SECRET, "{\"alg\":256}", good("u"));
	ck_result(vt(v, t), JWT_MALFORMED);
	free(t);
	/* an RS256 token to an HS256 verifier */
	t = token(SIG_RS, NULL, RS, good("u"));
	ck_result(vt(v, t), JWT_BAD_ALG);
	free(t);
	jwt_verifier_free(v);
}
END_TEST

START_TEST(test_alg_confusion)
{
	struct jwt_verifier *r = pk(JWT_RS256, rsa_pem);
	struct jwt_verifier *e = pk(JWT_ES256, ec_pem);
	char *t;

	/* HS256 "signed" with the public key text as the HMAC secret */
	t = token(SIG_HS, rsa_pem, HS, good("attacker"));
	ck_result(vt(r, t), JWT_BAD_ALG);
	free(t);
	t = token(SIG_HS, ec_pem, HS, good("attacker"));
	ck_result(vt(e, t), JWT_BAD_ALG);
	free(t);
	/* and the other asymmetric alg */
	t = token(SIG_ES, NULL, ES, good("u"));
	ck_result(vt(r, t), JWT_BAD_ALG);
	free(t);
	t = token(SIG_RS, NULL, RS, good("u"));
	ck_result(vt(e, t), JWT_BAD_ALG);
	free(t);
	jwt_verifier_free(r);
	jwt_verifier_free(e);
}
END_TEST

START_TEST(test_es256_signature_shape)
{
	struct jwt_verifier *v = pk(JWT_ES256, ec_pem);
	unsigned char sig[80] = { 0 };
	char *h, *p, *t;

	/* DER (what mbedtls_pk_sign and many HSMs give) is refused */
	t = token(SIG_ES_DER, NULL, ES, good("u"));
	ck_result(vt(v, t), JWT_BAD_SIGNATURE);
	free(t);
	h = b64u(ES, strlen(ES));
	p = b64u(good("u"), strlen(good("u")));
	/* wrong lengths; r = s = 0 */
	t = join(h, p, sig, 63);
	ck_result(vt(v, t), JWT_BAD_SIGNATURE);
	free(t);
	t = join(h, p, sig, 65);
	ck_result(vt(v, t), JWT_BAD_SIGNATURE);
	free(t);
	t = join(h, p, sig, 64);
	ck_result(vt(v, t), JWT_BAD_SIGNATURE);
	free(t);
	/* r = s = n - 1 ... all 0xff is >= n: out of range */
	memset(sig, 0xff, sizeof(sig));
	t = join(h, p, sig, 64);
	ck_result(vt(v, t), JWT_BAD_SIGNATURE);
	free(t);
	free(h);
	free(p);
	jwt_verifier_free(v);
}
END_TEST

START_TEST(test_rs256_signature_shape)
{
	struct jwt_verifier *v = pk(JWT_RS256, rsa_pem);
	unsigned char sig[300];
	char *h, *p, *t, *in;
	size_t n;

	h = b64u(RS, strlen(RS));
	p = b64u(good("u"), strlen(good("u")));
	in = xasprintf("%s.%s", h, p);
	n = sign(SIG_RS, NULL, in, strlen(in), sig);
	ck_assert_uint_eq(n, 256);
	t = join(h, p, sig, n);
	ck_result(vt(v, t), JWT_OK);
	free(t);
	t = join(h, p, sig, n - 1); /* truncated */
	ck_result(vt(v, t), JWT_BAD_SIGNATURE);
	free(t);
	sig[n] = 0; /* extended */
	t = join(h, p, sig, n + 1);
	ck_result(vt(v, t), JWT_BAD_SIGNATURE);
	free(t);
	free(in);
	free(h);
	free(p);
	jwt_verifier_free(v);
}
END_TEST

START_TEST(test_header_fields)
{
	struct jwt_verifier *v = hs(NULL, NULL, 0);
	static const char *const bad[] = {
		"{\"alg\":\"HS256\",\"typ\":\"JWS\"}",
		"{\"alg\":\"HS256\",\"typ\":1}",
		"{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}",
		"{\"alg\":\"HS256\",\"alg\":\"HS256\"}",
		"[\"HS256\"]",
		"{\"alg\":\"HS256\"",
		"\"HS256\"",
	};
	char *t;
	size_t i;

	for (i = 0; i < RG_NELEM(bad); i++) {
		t = token(SIG_HS, SECRET, bad[i], good("u"));
		ck_assert_msg(vt(v, t) == JWT_MALFORMED, "%s", bad[i]);
		free(t);
	}
	jwt_verifier_free(v);
}
END_TEST

/* --- claims ---------------------------------------------------------------
 */

/* hs_claims - result of an HS256 token with payload p for verifier v */
static enum jwt_result
hs_claims(const struct jwt_verifier *v, const char *p)
{
	char *t = token(SIG_HS, SECRET, HS, p);
	enum jwt_result r = vt(v, t);

	free(t);
	return r;
}

START_TEST(test_expiry)
{
	struct jwt_verifier *v0 = hs(NULL, NULL, 0);
	struct jwt_verifier *v30 = hs(NULL, NULL, 30);
	struct jwt_claims c;
	char *t;

	ck_result(hs_claims(v0, pl("{\"sub\":\"u\",\"exp\":%llu}", NOW - 10)),
	    JWT_EXPIRED);
	ck_result(hs_claims(v30, pl("{\"sub\":\"u\",\"exp\":%llu}", NOW - 10)),
	    JWT_OK);
	/* exp <= now - leeway is expired */
	ck_result(hs_claims(v0, pl("{\"sub\":\"u\",\"exp\":%llu}", NOW)),
	    JWT_EXPIRED);
	ck_result(hs_claims(v0, pl("{\"sub\":\"u\",\"exp\":%llu}", NOW + 1)),
	    JWT_OK);
	ck_result(hs_claims(v30, pl("{\"sub\":\"u\",\"exp\":%llu}", NOW - 30)),
	    JWT_EXPIRED);
	ck_result(hs_claims(v30, pl("{\"sub\":\"u\",\"exp\":%llu}", NOW - 29)),
	    JWT_OK);
	ck_result(hs_claims(v0, "{\"sub\":\"u\",\"exp\":0}"), JWT_EXPIRED);
	/* fractional: rounded down */
	ck_result(hs_claims(v0, pl("{\"sub\":\"u\",\"exp\":%llu.9}", NOW)),
	    JWT_EXPIRED);
	t = token(
	    SIG_HS, SECRET, HS, pl("{\"sub\":\"u\",\"exp\":%llu.9}", NOW + 1));
	ck_result(jwt_verify_token(v0, t, strlen(t), NOW, &c), JWT_OK);
	ck_assert_uint_eq(c.exp, NOW + 1);
	free(t);
	/* the far future, and a clock near the top of uint64 */
	ck_result(
	    hs_claims(v30, "{\"sub\":\"u\",\"exp\":9223372036854775807}"),
	    JWT_OK);
	t = token(SIG_HS, SECRET, HS, good("u"));
	ck_result(jwt_verify_token(v30, t, strlen(t), UINT64_MAX, NULL),
	    JWT_EXPIRED);
	ck_result(jwt_verify_token(v30, t, strlen(t), 0, NULL), JWT_OK);
	free(t);
	jwt_verifier_free(v0);
	jwt_verifier_free(v30);
}
END_TEST

START_TEST(test_not_before)
{
	struct jwt_verifier *v0 = hs(NULL, NULL, 0);
	struct jwt_verifier *v30 = hs(NULL, NULL, 30);
	const char *f = "{\"sub\":\"u\",\"exp\":%llu,\"nbf\":%llu}";

	ck_result(
	    hs_claims(v0, pl(f, NOW + 600, NOW + 10)), JWT_NOT_YET_VALID);
	ck_result(hs_claims(v30, pl(f, NOW + 600, NOW + 10)), JWT_OK);
	ck_result(hs_claims(v0, pl(f, NOW + 600, NOW)), JWT_OK);
	ck_result(hs_claims(v30, pl(f, NOW + 600, NOW + 30)), JWT_OK);
	ck_result(
	    hs_claims(v30, pl(f, NOW + 600, NOW + 31)), JWT_NOT_YET_VALID);
	/* fractional: rounded up */
	ck_result(hs_claims(v0,
	              pl("{\"sub\":\"u\",\"exp\":%llu,\"nbf\":%llu.1}",
	                  NOW + 600, NOW)),
	    JWT_NOT_YET_VALID);
	/* expiry is reported before nbf */
	ck_result(hs_claims(v0, pl(f, NOW - 1, NOW + 10)), JWT_EXPIRED);
	jwt_verifier_free(v0);
	jwt_verifier_free(v30);
}
END_TEST

START_TEST(test_claim_types)
{
	struct jwt_verifier *v = hs(NULL, NULL, 0);
	static const char *const bad[] = {
		"{\"sub\":\"u\"}",
		"{\"sub\":\"u\",\"exp\":\"1800000000\"}",
		"{\"sub\":\"u\",\"exp\":null}",
		"{\"sub\":\"u\",\"exp\":-1}",
		"{\"sub\":\"u\",\"exp\":-1.5}",
		"{\"sub\":\"u\",\"exp\":1e300}",
		"{\"sub\":\"u\",\"exp\":1800000000,\"nbf\":true}",
		"{\"sub\":\"u\",\"exp\":1800000000,\"iat\":\"now\"}",
		"{\"sub\":\"u\",\"exp\":1800000000,\"exp\":1800000000}",
		"{\"sub\":\"u\",\"exp\":99999999999999999999999}",
		"[1800000000]",
		"1800000000",
		"{\"sub\":\"u\",\"exp\":1800000000",
		"",
	};
	size_t i;

	for (i = 0; i < RG_NELEM(bad); i++)
		ck_assert_msg(
		    hs_claims(v, bad[i]) == JWT_MALFORMED, "%s", bad[i]);
	ck_result(hs_claims(v,
	              "{\"sub\":\"u\",\"exp\":1800000000,\"iat\":1.5,"
	              "\"extra\":{\"a\":[1,2]}}"),
	    JWT_OK);
	jwt_verifier_free(v);
}
END_TEST

START_TEST(test_issuer_audience)
{
	struct jwt_verifier *v = hs("https://auth.example", "relgate", 0);
	struct jwt_verifier *none = hs(NULL, NULL, 0);
	const char *f = "{\"sub\":\"u\",\"exp\":1800000000%s}";

	ck_result(hs_claims(v,
	              pl(f,
	                  ",\"iss\":\"https://auth.example\","
	                  "\"aud\":\"relgate\"")),
	    JWT_OK);
	ck_result(hs_claims(v, pl(f, ",\"aud\":\"relgate\"")), JWT_BAD_ISSUER);
	ck_result(hs_claims(v,
	              pl(f,
	                  ",\"iss\":\"https://auth.example/\","
	                  "\"aud\":\"relgate\"")),
	    JWT_BAD_ISSUER);
	ck_result(hs_claims(v, pl(f, ",\"iss\":7,\"aud\":\"relgate\"")),
	    JWT_BAD_ISSUER);
	ck_result(hs_claims(v, pl(f, ",\"iss\":\"https://auth.example\"")),
	    JWT_BAD_AUDIENCE);
	ck_result(hs_claims(v,
	              pl(f,
	                  ",\"iss\":\"https://auth.example\","
	                  "\"aud\":\"relgate2\"")),
	    JWT_BAD_AUDIENCE);
	ck_result(hs_claims(v,
	              pl(f,
	                  ",\"iss\":\"https://auth.example\","
	                  "\"aud\":\"relgat\"")),
	    JWT_BAD_AUDIENCE);
	ck_result(hs_claims(v,
	              pl(f,
	                  ",\"iss\":\"https://auth.example\","
	                  "\"aud\":[\"other\",\"relgate\"]")),
	    JWT_OK);
	ck_result(hs_claims(v,
	              pl(f,
	                  ",\"iss\":\"https://auth.example\","
	                  "\"aud\":[\"other\",1,null]")),
	    JWT_BAD_AUDIENCE);
	ck_result(hs_claims(v,
	              pl(f,
	                  ",\"iss\":\"https://auth.example\","
	                  "\"aud\":[]")),
	    JWT_BAD_AUDIENCE);
	ck_result(hs_claims(v,
	              pl(f,
	                  ",\"iss\":\"https://auth.example\","
	                  "\"aud\":{\"relgate\":1}")),
	    JWT_BAD_AUDIENCE);
	/* not configured: not checked */
	ck_result(
	    hs_claims(none, pl(f, ",\"iss\":\"x\",\"aud\":[\"y\"]")), JWT_OK);
	ck_result(hs_claims(none, pl(f, ",\"iss\":1,\"aud\":2")), JWT_OK);
	jwt_verifier_free(v);
	jwt_verifier_free(none);
}
END_TEST

START_TEST(test_subject)
{
	struct jwt_verifier *v = hs(NULL, NULL, 0);
	const char *f = "{\"exp\":1800000000%s}";
	char sub[JWT_SUB_MAX + 2], *t;
	struct jwt_claims c;

	ck_result(hs_claims(v, pl(f, "")), JWT_NO_SUBJECT);
	ck_result(hs_claims(v, pl(f, ",\"sub\":\"\"")), JWT_NO_SUBJECT);
	ck_result(hs_claims(v, pl(f, ",\"sub\":42")), JWT_NO_SUBJECT);
	ck_result(hs_claims(v, pl(f, ",\"sub\":null")), JWT_NO_SUBJECT);
	ck_result(hs_claims(v, pl(f, ",\"sub\":\"a\\nb\"")), JWT_NO_SUBJECT);
	ck_result(hs_claims(v, pl(f, ",\"sub\":\"a\\u0000b\"")),
	    JWT_MALFORMED); /* jansson refuses \u0000 */
	ck_result(
	    hs_claims(v, pl(f, ",\"sub\":\"a\\u007fb\"")), JWT_NO_SUBJECT);
	/* UTF-8 is fine */
	ck_result(hs_claims(v, pl(f, ",\"sub\":\"j\\u00fcrgen\"")), JWT_OK);
	memset(sub, 's', sizeof(sub));
	sub[JWT_SUB_MAX] = '\0';
	t = token(SIG_HS, SECRET, HS,
	    pl("{\"exp\":1800000000,\"sub\":\"%s\"}", sub));
	ck_result(jwt_verify_token(v, t, strlen(t), NOW, &c), JWT_OK);
	ck_assert_str_eq(c.sub, sub);
	free(t);
	sub[JWT_SUB_MAX] = 's';
	sub[JWT_SUB_MAX + 1] = '\0';
	ck_result(hs_claims(v, pl("{\"exp\":1800000000,\"sub\":\"%s\"}", sub)),
	    JWT_NO_SUBJECT);
	jwt_verifier_free(v);
}
END_TEST

/* --- shape, encoding, size ------------------------------------------------
 */

START_TEST(test_shape)
{
	struct jwt_verifier *v = hs(NULL, NULL, 0);
	static const char *const bad[] = {
		"abc",
		"a.b",
		"a.b.c.d",
		".b.c",
		"a..c",
		"a.b.",
		"..",
		"...",
		"eyJhbGciOiJIUzI1NiJ9",
	};
	char *good_t, *t, *h, *p;
	size_t i;

	for (i = 0; i < RG_NELEM(bad); i++)
		ck_assert_msg(vt(v, bad[i]) == JWT_MALFORMED, "%s", bad[i]);
	ck_result(vt(v, ""), JWT_MISSING);
	ck_result(jwt_verify_token(v, NULL, 0, NOW, NULL), JWT_MISSING);

	good_t = token(SIG_HS, SECRET, HS, good("u"));
	ck_result(vt(v, good_t), JWT_OK);
	/* a fourth part */
	t = xasprintf("%s.x", good_t);
	ck_result(vt(v, t), JWT_MALFORMED);
	free(t);
	/* base64url alphabet only, no padding, no whitespace */
	t = xstrdup(good_t);
	t[3] = '*';
	ck_result(vt(v, t), JWT_MALFORMED);
	free(t);
	t = xasprintf("%s=", good_t);
	ck_result(vt(v, t), JWT_MALFORMED);
	free(t);
	t = xstrdup(good_t);
	t[strlen(t) - 3] = '+';
	ck_result(vt(v, t), JWT_MALFORMED);
	free(t);
	t = xasprintf(" %s", good_t);
	ck_result(vt(v, t), JWT_MALFORMED);
	free(t);
	/* signature of 4k+1 characters (43 + 2) */
	t = xasprintf("%sAA", good_t);
	ck_result(vt(v, t), JWT_MALFORMED);
	/* a longer signature: well-formed, wrong length */
	t[strlen(t) - 1] = '\0';
	ck_result(vt(v, t), JWT_BAD_SIGNATURE);
	free(t);
	/* correctly signed but the payload is not base64url / not JSON */
	h = b64u(HS, strlen(HS));
	t = token_raw(SIG_HS, SECRET, h, "e30!");
	ck_result(vt(v, t), JWT_MALFORMED);
	free(t);
	p = b64u("not json", 8);
	t = token_raw(SIG_HS, SECRET, h, p);
	ck_result(vt(v, t), JWT_MALFORMED);
	free(t);
	free(p);
	/* the header is not JSON */
	p = b64u(good("u"), strlen(good("u")));
	t = token_raw(SIG_HS, SECRET, "e30", p); /* "{}" */
	ck_result(vt(v, t), JWT_MALFORMED);
	free(t);
	t = token_raw(SIG_HS, SECRET, "bm9uZQ", p); /* "none" */
	ck_result(vt(v, t), JWT_MALFORMED);
	free(t);
	free(p);
	free(h);
	/* length is honoured: trailing garbage beyond len is not read */
	t = xasprintf("%s.garbage", good_t);
	ck_result(jwt_verify_token(v, t, strlen(good_t), NOW, NULL), JWT_OK);
	free(t);
	free(good_t);
	jwt_verifier_free(v);
}
END_TEST

START_TEST(test_size_bound)
{
	struct jwt_verifier *v = hs(NULL, NULL, 0);
	char *filler = xmalloc(JWT_TOKEN_MAX + 1), *t, *last_ok = NULL;
	size_t n, len;

	/* grow a claim until the token passes JWT_TOKEN_MAX */
	for (n = 5900;; n++) {
		memset(filler, 'f', n);
		filler[n] = '\0';
		t = token(SIG_HS, SECRET, HS,
		    pl("{\"sub\":\"u\",\"exp\":1800000000,\"x\":\"%s\"}",
		        filler));
		len = strlen(t);
		if (len > JWT_TOKEN_MAX)
			break;
		free(last_ok);
		last_ok = t;
	}
	ck_assert_ptr_nonnull(last_ok);
	ck_assert_uint_ge(strlen(last_ok), JWT_TOKEN_MAX - 3);
	ck_result(vt(v, last_ok), JWT_OK);
	ck_result(vt(v, t), JWT_MALFORMED);
	free(t);
	/* far too long, and through the header path too */
	t = xmalloc(100000);
	memset(t, 'A', 99999);
	t[99999] = '\0';
	ck_result(vt(v, t), JWT_MALFORMED);
	ck_result(vh(v, "Bearer A"), JWT_MALFORMED);
	free(t);
	free(last_ok);
	free(filler);
	jwt_verifier_free(v);
}
END_TEST

START_TEST(test_bearer)
{
	struct jwt_verifier *v = hs(NULL, NULL, 0);
	char *t = token(SIG_HS, SECRET, HS, good("bob")), *h;
	struct jwt_claims c;
	static const char *const ok_fmt[] = {
		"Bearer %s",
		"bearer %s",
		"BEARER %s",
		"BeArEr   %s",
		"Bearer\t%s",
		"  Bearer %s  ",
		"Bearer %s\t",
	};
	static const char *const missing[] = {
		"",
		"   ",
		"Basic dXNlcjpwYXNz",
		"Bear",
		"Token abc.def.ghi",
	};
	static const char *const malformed[] = {
		"Bearer",
		"Bearer ",
		"bearer \t ",
		"Bearer a.b",
	};
	size_t i;

	for (i = 0; i < RG_NELEM(ok_fmt); i++) {
		h = xasprintf(ok_fmt[i], t);
		ck_assert_msg(jwt_verify(v, h, strlen(h), NOW, &c) == JWT_OK,
		    "%s", ok_fmt[i]);
		ck_assert_str_eq(c.sub, "bob");
		free(h);
	}
	for (i = 0; i < RG_NELEM(missing); i++)
		ck_assert_msg(
		    vh(v, missing[i]) == JWT_MISSING, "'%s'", missing[i]);
	for (i = 0; i < RG_NELEM(malformed); i++)
		ck_assert_msg(vh(v, malformed[i]) == JWT_MALFORMED, "'%s'",
		    malformed[i]);
	ck_result(jwt_verify(v, NULL, 0, NOW, &c), JWT_MISSING);
	ck_assert_str_eq(c.sub, "");
	/* a bare token is not an Authorization value */
	ck_result(vh(v, t), JWT_MISSING);
	/* no space after the scheme: another scheme */
	h = xasprintf("Bearer%s", t);
	ck_result(vh(v, h), JWT_MISSING);
	free(h);
	/* two tokens */
	h = xasprintf("Bearer %s %s", t, t);
	ck_result(vh(v, h), JWT_MALFORMED);
	free(h);
	/* a comma list is not unpacked */
	h = xasprintf("Bearer %s, Basic x", t);
	ck_result(vh(v, h), JWT_MALFORMED);
	free(h);
	/* len is honoured */
	h = xasprintf("Bearer %sXYZ", t);
	ck_result(jwt_verify(v, h, strlen(h) - 3, NOW, NULL), JWT_OK);
	free(h);
	free(t);
	jwt_verifier_free(v);
}
END_TEST

/* --- known answers --------------------------------------------------------
 */

/* the jwt.io example; secret "your-256-bit-secret" */
static const char JWTIO[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5"
    "MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

/* RFC 7515 A.2 and A.3: payload {"iss":"joe","exp":1300819380,...} */
#define RFC_PAYLOAD                                                           \
	"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"    \
	"cGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
static const char RFC_A2[] =
    "eyJhbGciOiJSUzI1NiJ9." RFC_PAYLOAD
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAu"
    "HIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFd"
    "iuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eS"
    "N9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI"
    "2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77"
    "Rw";
static const char RFC_A2_PEM[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAofgWCuLjybRlzo0tZWJj\n"
    "NiuSfb4p4fAkd/wWJcyQoTbji9k0l8W26mPddxHmfHQp+Vaw+4qPCJrcS2mJPMEz\n"
    "P1Pt0Bm4d4QlL+yRT+SFd2lZS+pCgNMsD1W/YpRPEwOWvG6b32690r2jZ47soMZo\n"
    "9wGzjb/7OMg0LOL+bSf63kpaSHSXndS5z5rexMdbBYUsLA9e+KXBdQOS+UTo7WTB\n"
    "EMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6/I5IhlJH7aGhyxX\n"
    "FvUK+DWNmoudF8NAco9/h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXp\n"
    "oQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";
static const char RFC_A3[] =
    "eyJhbGciOiJFUzI1NiJ9." RFC_PAYLOAD
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQ"
    "xfKTUJqPP3-Kg6NU1Q";
static const char RFC_A3_PEM[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7\n"
    "6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==\n"
    "-----END PUBLIC KEY-----\n";
#define RFC_EXP 1300819380ULL

/* flip - a copy of t with the character at i changed */
static char *
flip(const char *t, size_t i)
{
	char *c = xstrdup(t);

	c[i] = c[i] == 'A' ? 'B' : 'A';
	return c;
}

START_TEST(test_kat_jwtio)
{
	struct jwt_config c = { .alg = JWT_HS256,
		.secret = "your-256-bit-secret" };
	struct jwt_verifier *v = vnew(&c);
	char *t;

	/* the signature passes; the payload has no exp */
	ck_result(jwt_verify_token(v, JWTIO, strlen(JWTIO), NOW, NULL),
	    JWT_MALFORMED);
	t = flip(JWTIO, strlen(JWTIO) - 10);
	ck_result(
	    jwt_verify_token(v, t, strlen(t), NOW, NULL), JWT_BAD_SIGNATURE);
	free(t);
	jwt_verifier_free(v);
	c.secret = "your-256-bit-secreT";
	v = vnew(&c);
	ck_result(jwt_verify_token(v, JWTIO, strlen(JWTIO), NOW, NULL),
	    JWT_BAD_SIGNATURE);
	jwt_verifier_free(v);
}
END_TEST

/* kat_rfc - an RFC 7515 example through a verifier for pem */
static void
kat_rfc(enum jwt_alg alg, const char *pem, const char *tok)
{
	struct jwt_config c = {
		.alg = alg, .public_key_pem = pem, .issuer = "joe"
	};
	struct jwt_verifier *v = vnew(&c);
	size_t len = strlen(tok);
	char *t;

	/* signature, exp and iss pass; there is no sub */
	ck_result(jwt_verify_token(v, tok, len, RFC_EXP - 100, NULL),
	    JWT_NO_SUBJECT);
	ck_result(jwt_verify_token(v, tok, len, RFC_EXP, NULL), JWT_EXPIRED);
	t = flip(tok, len - 10);
	ck_result(jwt_verify_token(v, t, len, RFC_EXP - 100, NULL),
	    JWT_BAD_SIGNATURE);
	free(t);
	/* one payload character changed */
	t = flip(tok, strlen("eyJhbGciOiJSUzI1NiJ9.") + 5);
	ck_result(jwt_verify_token(v, t, len, RFC_EXP - 100, NULL),
	    JWT_BAD_SIGNATURE);
	free(t);
	jwt_verifier_free(v);
	c.issuer = "jane";
	v = vnew(&c);
	ck_result(jwt_verify_token(v, tok, len, RFC_EXP - 100, NULL),
	    JWT_BAD_ISSUER);
	jwt_verifier_free(v);
}

START_TEST(test_kat_rfc7515_rs256)
{
	kat_rfc(JWT_RS256, RFC_A2_PEM, RFC_A2);
}
END_TEST

START_TEST(test_kat_rfc7515_es256)
{
	kat_rfc(JWT_ES256, RFC_A3_PEM, RFC_A3);
}
END_TEST

/* --- configuration --------------------------------------------------------
 */

START_TEST(test_config_errors)
{
	struct jwt_config c;
	const char *e;
	char priv[4096];

	memset(&c, 0, sizeof(c));
	c.alg = JWT_HS256;
	conf_err(&c);
	c.secret = "";
	conf_err(&c);
	/* HS256 with a key set (alg left at its default); no secret leak */
	c.secret = "hunter2-hunter2";
	c.public_key_file = "/etc/relgate/jwt.pem";
	e = conf_err(&c);
	ck_assert_ptr_null(strstr(e, "hunter2"));

	memset(&c, 0, sizeof(c));
	c.alg = JWT_RS256;
	conf_err(&c);
	c.public_key_pem = ec_pem;
	e = conf_err(&c);
	ck_assert_ptr_nonnull(strstr(e, "RSA"));
	c.public_key_pem = rsa1024_pem;
	e = conf_err(&c);
	ck_assert_ptr_nonnull(strstr(e, "1024"));
	c.public_key_pem = rsa_pem;
	c.secret = "s";
	conf_err(&c);
	c.secret = NULL;
	c.public_key_file = "/nonexistent/jwt.pem";
	conf_err(&c);
	c.public_key_pem = NULL;
	e = conf_err(&c);
	ck_assert_ptr_nonnull(strstr(e, "/nonexistent/jwt.pem"));
	ck_assert_ptr_nonnull(strstr(e, "No such file"));
	c.public_key_file = "/";
	conf_err(&c);
	c.public_key_file = "/dev/null";
	conf_err(&c);
	c.public_key_file = NULL;
	c.public_key_pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n"
	                   "-----END PUBLIC KEY-----\n";
	conf_err(&c);
	c.public_key_pem = "not a key";
	conf_err(&c);
	/* a private key is not a public key */
	ck_assert_int_eq(mbedtls_pk_write_key_pem(
	                     &rsa_key, (unsigned char *)priv, sizeof(priv)),
	    0);
	c.public_key_pem = priv;
	conf_err(&c);

	memset(&c, 0, sizeof(c));
	c.alg = JWT_ES256;
	c.public_key_pem = rsa_pem;
	e = conf_err(&c);
	ck_assert_ptr_nonnull(strstr(e, "P-256"));
	c.public_key_pem = ec384_pem;
	conf_err(&c);
	c.alg = (enum jwt_alg)7;
	c.public_key_pem = ec_pem;
	conf_err(&c);
	ck_assert_ptr_null(jwt_verifier_new(NULL, NULL, 0));
	jwt_verifier_free(NULL);
}
END_TEST

START_TEST(test_names)
{
	enum jwt_alg a;

	ck_assert_int_eq(jwt_alg_parse("HS256", &a), 0);
	ck_assert_int_eq(a, JWT_HS256);
	ck_assert_int_eq(jwt_alg_parse("RS256", &a), 0);
	ck_assert_int_eq(a, JWT_RS256);
	ck_assert_int_eq(jwt_alg_parse("ES256", &a), 0);
	ck_assert_int_eq(a, JWT_ES256);
	ck_assert_int_eq(jwt_alg_parse("none", &a), -1);
	ck_assert_int_eq(jwt_alg_parse("hs256", &a), -1);
	ck_assert_int_eq(jwt_alg_parse(NULL, &a), -1);
	ck_assert_str_eq(jwt_alg_name(JWT_ES256), "ES256");
	ck_assert_str_eq(jwt_result_name(JWT_OK), "ok");
	ck_assert_str_eq(jwt_result_name(JWT_BAD_ALG), "bad_alg");
	ck_assert_str_eq(jwt_result_name(JWT_NOT_YET_VALID), "not_yet_valid");
	ck_assert_str_eq(jwt_result_name(JWT_NO_SUBJECT), "no_subject");
}
END_TEST

/* --- one verifier, several threads ----------------------------------------
 */

struct worker {
	const struct jwt_verifier *v;
	const char *tok;
	int bad;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct jwt_claims c;
	int i;

	for (i = 0; i < 25; i++)
		if (jwt_verify_token(w->v, w->tok, strlen(w->tok), NOW, &c) !=
		        JWT_OK ||
		    strcmp(c.sub, "t") != 0)
			w->bad++;
	return NULL;
}

START_TEST(test_threads)
{
	struct jwt_verifier *r = pk(JWT_RS256, rsa_pem);
	struct jwt_verifier *e = pk(JWT_ES256, ec_pem);
	char *rt = token(SIG_RS, NULL, RS, good("t"));
	char *et = token(SIG_ES, NULL, ES, good("t"));
	struct worker w[6];
	pthread_t th[6];
	int i;

	for (i = 0; i < 6; i++) {
		w[i].v = i % 2 ? r : e;
		w[i].tok = i % 2 ? rt : et;
		w[i].bad = 0;
		ck_assert_int_eq(
		    pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(w[i].bad, 0);
	}
	free(rt);
	free(et);
	jwt_verifier_free(r);
	jwt_verifier_free(e);
}
END_TEST

static Suite *
jwt_suite(void)
{
	Suite *s = suite_create("jwt");
	TCase *tc = tcase_create("jwt");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_hs256_valid);
	tcase_add_test(tc, test_rs256_valid);
	tcase_add_test(tc, test_es256_valid);
	tcase_add_test(tc, test_key_files);
	tcase_add_test(tc, test_wrong_secret);
	tcase_add_test(tc, test_tampered);
	tcase_add_test(tc, test_alg_none_and_others);
	tcase_add_test(tc, test_alg_confusion);
	tcase_add_test(tc, test_es256_signature_shape);
	tcase_add_test(tc, test_rs256_signature_shape);
	tcase_add_test(tc, test_header_fields);
	tcase_add_test(tc, test_expiry);
	tcase_add_test(tc, test_not_before);
	tcase_add_test(tc, test_claim_types);
	tcase_add_test(tc, test_issuer_audience);
	tcase_add_test(tc, test_subject);
	tcase_add_test(tc, test_shape);
	tcase_add_test(tc, test_size_bound);
	tcase_add_test(tc, test_bearer);
	tcase_add_test(tc, test_kat_jwtio);
	tcase_add_test(tc, test_kat_rfc7515_rs256);
	tcase_add_test(tc, test_kat_rfc7515_es256);
	tcase_add_test(tc, test_config_errors);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	int rc;

	keys_init();
	rc = tl_run(jwt_suite());
	mbedtls_pk_free(&rsa_key);
	mbedtls_pk_free(&rsa1024_key);
	mbedtls_pk_free(&ec_key);
	mbedtls_pk_free(&ec384_key);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	return rc;
}
