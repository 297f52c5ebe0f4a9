/*
 * jwt - see jwt.h.  mbedTLS does the cryptography (HMAC through
 * gate/crypto, RSA through mbedtls_pk_verify, ECDSA through
 * mbedtls_ecdsa_verify on the raw R || S of JWS); jansson parses the
 * two JSON parts; gate/b64 decodes base64url strictly.
 */
#include "gate/jwt.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>

#include "gate/b64.h"
#include "gate/crypto.h"
#include "util/util.h"

#define KEYFILE_MAX  65536 /* bytes of a public key file */
#define RSA_MIN_BITS 2048
#define SIG_MAX      (MBEDTLS_MPI_MAX_SIZE) /* bytes of an RSA signature */
#define ES256_SIGLEN 64
/* TIME_MAX - larger exp/nbf/iat values are malformed (fits int64_t) */
#define TIME_MAX 9000000000000000000.0

struct jwt_verifier {
	enum jwt_alg alg;
	unsigned char *secret; /* HS256 */
	size_t secretlen;
	mbedtls_pk_context *pk; /* RS256, ES256; pointer so verify is const */
	size_t siglen;          /* decoded signature length required */
	char *issuer;           /* NULL = unchecked */
	size_t issuerlen;
	char *audience; /* NULL = unchecked */
	size_t audiencelen;
	uint32_t leeway_s;
};

int
jwt_alg_parse(const char *name, enum jwt_alg *alg)
{
	if (name == NULL)
		return -1;
	if (strcmp(name, "HS256") == 0)
		*alg = JWT_HS256;
	else if (strcmp(name, "RS256") == 0)
		*alg = JWT_RS256;
	else if (strcmp(name, "ES256") == 0)
		*alg = JWT_ES256;
	else
		return -1;
	return 0;
}

const char *
jwt_alg_name(enum jwt_alg alg)
{
	switch (alg) {
	case JWT_HS256:
		return "HS256";
	case JWT_RS256:
		return "RS256";
	case JWT_ES256:
		return "ES256";
	}
	return "unknown";
}

const char *
jwt_result_name(enum jwt_result r)
{
	switch (r) {
	case JWT_OK:
		return "ok";
	case JWT_MISSING:
		return "missing";
	case JWT_MALFORMED:
		return "malformed";
	case JWT_BAD_ALG:
		return "bad_alg";
	case JWT_BAD_SIGNATURE:
		return "bad_signature";
	case JWT_EXPIRED:
		return "expired";
	case JWT_NOT_YET_VALID:
		return "not_yet_valid";
	case JWT_BAD_ISSUER:
		return "bad_issuer";
	case JWT_BAD_AUDIENCE:
		return "bad_audience";
	case JWT_NO_SUBJECT:
		return "no_subject";
	}
	return "unknown";
}

/* --- configuration -------------------------------------------------------
 */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* seterr - format a one-line reason into err (if any room). */
static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
isset(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* read_keyfile - the whole file at path (at most KEYFILE_MAX bytes),
 * NUL-terminated in fresh memory; NULL with a reason in err. */
static unsigned char *
read_keyfile(const char *path, size_t *lenp, char *err, size_t errlen)
{
	unsigned char *buf;
	size_t n;
	FILE *fp;

	fp = fopen(path, "rb");
	if (fp == NULL) {
		seterr(err, errlen, "public key file %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	buf = xmalloc(KEYFILE_MAX + 2);
	n = fread(buf, 1, KEYFILE_MAX + 1, fp);
	if (ferror(fp)) {
		seterr(err, errlen, "public key file %s: %s", path,
		    strerror(errno != 0 ? errno : EIO));
		goto fail;
	}
	if (n > KEYFILE_MAX) {
		seterr(err, errlen, "public key file %s: larger than %d bytes",
		    path, KEYFILE_MAX);
		goto fail;
	}
	if (n == 0) {
		seterr(err, errlen, "public key file %s: empty", path);
		goto fail;
	}
	fclose(fp);
	buf[n] = '\0';
	*lenp = n;
	return buf;
fail:
	fclose(fp);
	free(buf);
	return NULL;
}

/* parse_key - the public key of c into pk; 0, or -1 with a reason. */
static int
parse_key(const struct jwt_config *c, mbedtls_pk_context *pk, char *err,
    size_t errlen)
{
	unsigned char *buf = NULL;
	const char *what;
	char mbed[128];
	size_t n;
	int ret;

	if (isset(c->public_key_pem)) {
		what = "public key";
		/* PEM: the length passed includes the NUL */
		ret = mbedtls_pk_parse_public_key(pk,
		    (const unsigned char *)c->public_key_pem,
		    strlen(c->public_key_pem) + 1);
	} else {
		what = c->public_key_file;
		buf = read_keyfile(c->public_key_file, &n, err, errlen);
		if (buf == NULL)
			return -1;
		/* PEM with its NUL, or DER as it is */
		if (strstr((const char *)buf, "-----BEGIN ") != NULL)
			n++;
		ret = mbedtls_pk_parse_public_key(pk, buf, n);
		free(buf);
	}
	if (ret != 0) {
		mbedtls_strerror(ret, mbed, sizeof(mbed));
		seterr(err, errlen,
		    "%s: not a PEM or DER public key (SubjectPublicKeyInfo):"
		    " %s",
		    what, mbed);
		return -1;
	}
	return 0;
}

/* warm_up - one throw-away verification, so that the tables mbedTLS
 * caches inside the key on first use (RSA: R^2 mod N; ECDSA: the comb
 * table of the generator) are built now and only read by jwt_verify. */
static void
warm_up(struct jwt_verifier *v)
{
	unsigned char hash[CRYPTO_SHA256_LEN] = { 1 };
	unsigned char zero[SIG_MAX] = { 0 };
	mbedtls_ecp_keypair *ec;
	mbedtls_mpi r, s;

	if (v->alg == JWT_RS256) {
		(void)mbedtls_pk_verify(v->pk, MBEDTLS_MD_SHA256, hash,
		    sizeof(hash), zero, v->siglen);
	} else if (v->alg == JWT_ES256) {
		ec = mbedtls_pk_ec(*v->pk);
		mbedtls_mpi_init(&r);
		mbedtls_mpi_init(&s);
		if (mbedtls_mpi_lset(&r, 1) != 0 ||
		    mbedtls_mpi_lset(&s, 1) != 0)
			abort();
		(void)mbedtls_ecdsa_verify(
		    &ec->grp, hash, sizeof(hash), &ec->Q, &r, &s);
		mbedtls_mpi_free(&r);
		mbedtls_mpi_free(&s);
	}
}

/* check_key - the parsed key suits the alg; 0, or -1 with a reason. */
static int
check_key(struct jwt_verifier *v, char *err, size_t errlen)
{
	mbedtls_pk_type_t t = mbedtls_pk_get_type(v->pk);
	size_t bits = mbedtls_pk_get_bitlen(v->pk);

	if (v->alg == JWT_RS256) {
		if (t != MBEDTLS_PK_RSA) {
			seterr(err, errlen,
			    "RS256 needs an RSA public key, not %s",
			    mbedtls_pk_get_name(v->pk));
			return -1;
		}
		if (bits < RSA_MIN_BITS ||
		    mbedtls_pk_get_len(v->pk) > SIG_MAX) {
			seterr(err, errlen,
			    "RS256 key has %zu bits; %d to %d allowed", bits,
			    RSA_MIN_BITS, SIG_MAX * 8);
			return -1;
		}
		mbedtls_rsa_set_padding(mbedtls_pk_rsa(*v->pk),
		    MBEDTLS_RSA_PKCS_V15, MBEDTLS_MD_NONE);
		v->siglen = mbedtls_pk_get_len(v->pk);
		return 0;
	}
	/* ES256; an id-ecDH key (ECKEY_DH) must not sign */
	if ((t != MBEDTLS_PK_ECKEY && t != MBEDTLS_PK_ECDSA) ||
	    mbedtls_pk_ec(*v->pk)->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
		seterr(err, errlen,
		    "ES256 needs a P-256 EC public key, not %s%s",
		    mbedtls_pk_get_name(v->pk),
		    t == MBEDTLS_PK_ECKEY || t == MBEDTLS_PK_ECDSA
		        ? " on another curve"
		        : "");
		return -1;
	}
	v->siglen = ES256_SIGLEN;
	return 0;
}

struct jwt_verifier *
jwt_verifier_new(const struct jwt_config *c, char *err, size_t errlen)
{
	struct jwt_verifier *v;
	int haskey;

	seterr(err, errlen, "%s", "");
	if (c == NULL) {
		seterr(err, errlen, "no JWT configuration");
		return NULL;
	}
	if (c->alg != JWT_HS256 && c->alg != JWT_RS256 &&
	    c->alg != JWT_ES256) {
		seterr(err, errlen, "unknown JWT alg %d", (int)c->alg);
		return NULL;
	}
	haskey = isset(c->public_key_pem) || isset(c->public_key_file);
	if (c->alg == JWT_HS256) {
		if (!isset(c->secret)) {
			seterr(err, errlen, "HS256 needs a secret");
			return NULL;
		}
		if (haskey) {
			seterr(err, errlen,
			    "a public key is set but the alg is HS256 "
			    "(set the alg to RS256 or ES256)");
			return NULL;
		}
	} else {
		if (!haskey) {
			seterr(err, errlen, "%s needs a public key file",
			    jwt_alg_name(c->alg));
			return NULL;
		}
		if (isset(c->public_key_pem) && isset(c->public_key_file)) {
			seterr(err, errlen,
			    "both a public key and a public key file are set");
			return NULL;
		}
		if (isset(c->secret)) {
			seterr(err, errlen,
			    "a secret is set but the alg is %s",
			    jwt_alg_name(c->alg));
			return NULL;
		}
	}

	v = xcalloc(1, sizeof(*v));
	v->alg = c->alg;
	v->leeway_s = c->leeway_s;
	if (c->alg == JWT_HS256) {
		v->secretlen = strlen(c->secret);
		v->secret = xmalloc(v->secretlen);
		memcpy(v->secret, c->secret, v->secretlen);
		v->siglen = CRYPTO_SHA256_LEN;
	} else {
		v->pk = xmalloc(sizeof(*v->pk));
		mbedtls_pk_init(v->pk);
		if (parse_key(c, v->pk, err, errlen) < 0 ||
		    check_key(v, err, errlen) < 0) {
			jwt_verifier_free(v);
			return NULL;
		}
		warm_up(v);
	}
	if (isset(c->issuer)) {
		v->issuer = xstrdup(c->issuer);
		v->issuerlen = strlen(c->issuer);
	}
	if (isset(c->audience)) {
		v->audience = xstrdup(c->audience);
		v->audiencelen = strlen(c->audience);
	}
	return v;
}

void
jwt_verifier_free(struct jwt_verifier *v)
{
	if (v == NULL)
		return;
	if (v->secret != NULL) {
		mbedtls_platform_zeroize(v->secret, v->secretlen);
		free(v->secret);
	}
	if (v->pk != NULL) {
		mbedtls_pk_free(v->pk);
		free(v->pk);
	}
	free(v->issuer);
	free(v->audience);
	free(v);
}

/* --- verification --------------------------------------------------------
 */

static int
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

enum jwt_result
jwt_verify(const struct jwt_verifier *v, const char *hdr, size_t len,
    uint64_t now_s, struct jwt_claims *out)
{
	size_t i;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (hdr == NULL)
		return JWT_MISSING;
	while (len > 0 && is_ows(hdr[0])) {
		hdr++;
		len--;
	}
	while (len > 0 && is_ows(hdr[len - 1]))
		len--;
	if (len < 6 || strncasecmp(hdr, "Bearer", 6) != 0)
		return JWT_MISSING;
	if (len == 6)
		return JWT_MALFORMED; /* the scheme without a token */
	if (!is_ows(hdr[6]))
		return JWT_MISSING; /* "Bearerfoo": another scheme */
	for (i = 6; i < len && is_ows(hdr[i]); i++)
		;
	return jwt_verify_token(v, hdr + i, len - i, now_s, out);
}

/* parse_json - an object from p[0..n), duplicate keys refused; NULL if
 * not. */
static json_t *
parse_json(const unsigned char *p, size_t n)
{
	json_t *doc;

	doc = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);
	if (doc != NULL && !json_is_object(doc)) {
		json_decref(doc);
		doc = NULL;
	}
	return doc;
}

/* check_header - alg, typ and crit of the decoded header. */
static enum jwt_result
check_header(const struct jwt_verifier *v, const unsigned char *p, size_t n)
{
	const char *want = jwt_alg_name(v->alg);
	enum jwt_result r = JWT_MALFORMED;
	const json_t *alg, *typ;
	json_t *doc;

	doc = parse_json(p, n);
	if (doc == NULL)
		return JWT_MALFORMED;
	alg = json_object_get(doc, "alg");
	if (!json_is_string(alg))
		goto out;
	if (json_string_length(alg) != strlen(want) ||
	    memcmp(json_string_value(alg), want, strlen(want)) != 0) {
		r = JWT_BAD_ALG;
		goto out;
	}
	typ = json_object_get(doc, "typ");
	if (typ != NULL &&
	    (!json_is_string(typ) || json_string_length(typ) != 3 ||
	        strncasecmp(json_string_value(typ), "JWT", 3) != 0))
		goto out;
	/* no extension is understood, so any "crit" must be refused */
	if (json_object_get(doc, "crit") != NULL)
		goto out;
	r = JWT_OK;
out:
	json_decref(doc);
	return r;
}

/* check_signature - sig[0..siglen) over in[0..inlen) with the key of v. */
static enum jwt_result
check_signature(const struct jwt_verifier *v, const char *in, size_t inlen,
    const unsigned char *sig, size_t siglen)
{
	unsigned char hash[CRYPTO_SHA256_LEN];
	mbedtls_ecp_keypair *ec;
	mbedtls_mpi r, s;
	int ok;

	if (siglen != v->siglen)
		return JWT_BAD_SIGNATURE;
	if (v->alg == JWT_HS256) {
		crypto_hmac_sha256(v->secret, v->secretlen, in, inlen, hash);
		ok = crypto_ct_eq(hash, sig, CRYPTO_SHA256_LEN);
		mbedtls_platform_zeroize(hash, sizeof(hash));
		return ok ? JWT_OK : JWT_BAD_SIGNATURE;
	}
	if (mbedtls_sha256_ret((const unsigned char *)in, inlen, hash, 0) != 0)
		abort();
	if (v->alg == JWT_RS256) {
		ok = mbedtls_pk_verify(v->pk, MBEDTLS_MD_SHA256, hash,
		         sizeof(hash), sig, siglen) == 0;
		return ok ? JWT_OK : JWT_BAD_SIGNATURE;
	}
	/* ES256: R and S, 32 bytes each, big-endian (RFC 7518 3.4) */
	ec = mbedtls_pk_ec(*v->pk);
	mbedtls_mpi_init(&r);
	mbedtls_mpi_init(&s);
	if (mbedtls_mpi_read_binary(&r, sig, ES256_SIGLEN / 2) != 0 ||
	    mbedtls_mpi_read_binary(
	        &s, sig + ES256_SIGLEN / 2, ES256_SIGLEN / 2) != 0)
		abort(); /* allocation */
	ok = mbedtls_ecdsa_verify(
	         &ec->grp, hash, sizeof(hash), &ec->Q, &r, &s) == 0;
	mbedtls_mpi_free(&r);
	mbedtls_mpi_free(&s);
	return ok ? JWT_OK : JWT_BAD_SIGNATURE;
}

/* read_time - the NumericDate member name of doc into *t, rounded down
 * (up if round_up); 1 if present, 0 if absent, -1 if not a usable
 * number. */
static int
read_time(const json_t *doc, const char *name, int round_up, uint64_t *t)
{
	const json_t *m = json_object_get(doc, name);
	double d;

	if (m == NULL)
		return 0;
	if (json_is_integer(m)) {
		if (json_integer_value(m) < 0)
			return -1;
		*t = (uint64_t)json_integer_value(m);
		return 1;
	}
	if (!json_is_real(m))
		return -1;
	d = json_real_value(m);
	if (!isfinite(d) || d < 0 || d > TIME_MAX)
		return -1;
	*t = (uint64_t)(round_up ? ceil(d) : floor(d));
	return 1;
}

/* str_eq - m is a JSON string equal to s[0..n). */
static int
str_eq(const json_t *m, const char *s, size_t n)
{
	return json_is_string(m) && json_string_length(m) == n &&
	    memcmp(json_string_value(m), s, n) == 0;
}

/* check_audience - aud equals the configured audience or, as an array,
 * holds it. */
static int
check_audience(const struct jwt_verifier *v, const json_t *aud)
{
	const json_t *e;
	size_t i;

	if (json_is_array(aud)) {
		json_array_foreach(aud, i,
		    e) if (str_eq(e, v->audience, v->audiencelen)) return 1;
		return 0;
	}
	return str_eq(aud, v->audience, v->audiencelen);
}

/* check_sub - sub is 1..JWT_SUB_MAX bytes with no control character. */
static int
check_sub(const json_t *sub)
{
	const unsigned char *p;
	size_t i, n;

	if (!json_is_string(sub))
		return 0;
	n = json_string_length(sub);
	if (n == 0 || n > JWT_SUB_MAX)
		return 0;
	p = (const unsigned char *)json_string_value(sub);
	for (i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return 0;
	return 1;
}

/* check_claims - the decoded payload against v at now_s. */
static enum jwt_result
check_claims(const struct jwt_verifier *v, const unsigned char *p, size_t n,
    uint64_t now_s, struct jwt_claims *out)
{
	enum jwt_result r = JWT_MALFORMED;
	uint64_t exp = 0, nbf = 0, iat = 0, late;
	const json_t *sub;
	json_t *doc;

	doc = parse_json(p, n);
	if (doc == NULL)
		return JWT_MALFORMED;
	if (read_time(doc, "exp", 0, &exp) != 1 ||
	    read_time(doc, "nbf", 1, &nbf) < 0 ||
	    read_time(doc, "iat", 0, &iat) < 0)
		goto out;
	/* exp <= now - leeway and nbf > now + leeway, without wrapping */
	late = now_s > UINT64_MAX - v->leeway_s ? UINT64_MAX
	                                        : now_s + v->leeway_s;
	if (exp + v->leeway_s <= now_s) {
		r = JWT_EXPIRED;
		goto out;
	}
	if (nbf > late) {
		r = JWT_NOT_YET_VALID;
		goto out;
	}
	if (v->issuer != NULL &&
	    !str_eq(json_object_get(doc, "iss"), v->issuer, v->issuerlen)) {
		r = JWT_BAD_ISSUER;
		goto out;
	}
	if (v->audience != NULL &&
	    !check_audience(v, json_object_get(doc, "aud"))) {
		r = JWT_BAD_AUDIENCE;
		goto out;
	}
	sub = json_object_get(doc, "sub");
	if (!check_sub(sub)) {
		r = JWT_NO_SUBJECT;
		goto out;
	}
	if (out != NULL) {
		memcpy(out->sub, json_string_value(sub),
		    json_string_length(sub) + 1);
		out->exp = exp;
		out->nbf = nbf;
		out->iat = iat;
	}
	r = JWT_OK;
out:
	json_decref(doc);
	return r;
}

enum jwt_result
jwt_verify_token(const struct jwt_verifier *v, const char *tok, size_t len,
    uint64_t now_s, struct jwt_claims *out)
{
	unsigned char buf[B64_DECODED_MAX(JWT_TOKEN_MAX)];
	unsigned char sig[SIG_MAX + 3];
	const char *d1, *d2;
	size_t hlen, plen, slen;
	enum jwt_result r;
	long n, k;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (tok == NULL || len == 0)
		return JWT_MISSING;
	if (len > JWT_TOKEN_MAX || memchr(tok, '=', len) != NULL)
		return JWT_MALFORMED;
	d1 = memchr(tok, '.', len);
	if (d1 == NULL)
		return JWT_MALFORMED;
	d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
	if (d2 == NULL)
		return JWT_MALFORMED;
	hlen = (size_t)(d1 - tok);
	plen = (size_t)(d2 - d1 - 1);
	slen = len - (size_t)(d2 + 1 - tok);
	if (hlen == 0 || plen == 0 || slen == 0 ||
	    memchr(d2 + 1, '.', slen) != NULL)
		return JWT_MALFORMED;

	/* header: pins the alg before any key is used */
	n = b64_decode(tok, hlen, B64_URL, buf, sizeof(buf));
	if (n <= 0)
		return JWT_MALFORMED;
	r = check_header(v, buf, (size_t)n);
	if (r != JWT_OK)
		return r;

	/* signature over the text "header.payload" as received */
	k = b64_decode(d2 + 1, slen, B64_URL, sig, sizeof(sig));
	if (k < 0) /* not base64url, or longer than any key's */
		return JWT_MALFORMED;
	r = check_signature(v, tok, hlen + 1 + plen, sig, (size_t)k);
	if (r != JWT_OK)
		return r;

	/* payload, only now */
	n = b64_decode(d1 + 1, plen, B64_URL, buf, sizeof(buf));
	if (n <= 0)
		return JWT_MALFORMED;
	return check_claims(v, buf, (size_t)n, now_s, out);
}
