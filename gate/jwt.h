/*
 * jwt - verifier of the bearer tokens (RFC 7519 JWTs in JWS compact form)
 * that ingress accepts on /api/chat and on proxied routes with auth "jwt".
 *
 * Owns: the verification key (HS256 secret, or an RS256/ES256 public key
 * parsed once by jwt_verifier_new) and the rules that turn a token into a
 * user id.  The algorithm is pinned by configuration: a token whose header
 * names any other alg (including "none") is refused before any key is
 * used, so a public key can never be mistaken for an HMAC secret.  The
 * signature is checked before the payload is decoded or parsed.
 *
 * Never: fetches keys (jku, x5u, jwk and kid headers are ignored), logs,
 * or tells the client why a token failed (every result other than JWT_OK
 * is a 401 "unauthorized"; jwt_result_name is for logs and telemetry).
 *
 * Thread safety: a verifier is immutable after jwt_verifier_new;
 * jwt_verify may run concurrently on one verifier from several threads.
 * (mbedTLS caches Montgomery and comb tables inside the key on first use;
 * jwt_verifier_new makes that first use itself, and RSA public operations
 * also lock the key's mutex, MBEDTLS_THREADING_C being on in Debian.)
 * A verifier must not cross fork() into a process that frees it twice.
 */
#ifndef RG_GATE_JWT_H
#define RG_GATE_JWT_H

#include <stddef.h>
#include <stdint.h>

#define JWT_TOKEN_MAX 8192 /* characters of a token (without "Bearer ") */
#define JWT_SUB_MAX   256  /* bytes of a subject (user id) */

enum jwt_alg {
	JWT_HS256, /* HMAC-SHA256 with a shared secret */
	JWT_RS256, /* RSASSA-PKCS1-v1_5 with SHA-256, RSA key >= 2048 bits */
	JWT_ES256, /* ECDSA P-256 with SHA-256, signature raw R || S */
};

/* jwt_config - what jwt_verifier_new needs; strings are copied or parsed
 * there, so the caller may free them afterwards. */
struct jwt_config {
	enum jwt_alg alg;
	/* HS256: the key, used as its bytes (no base64 decoding); must be
	 * non-empty.  RFC 7518 section 3.2 asks for at least 32 bytes. */
	const char *secret;
	/* RS256/ES256: the public key, either as PEM text
	 * (SubjectPublicKeyInfo "PUBLIC KEY", or "RSA PUBLIC KEY" for RSA) or
	 * as the path of a PEM or DER file.  Exactly one of the two must be
	 * set. */
	const char *public_key_pem;
	const char *public_key_file;
	/* required "iss" and "aud" values; NULL or "" = not checked */
	const char *issuer;
	const char *audience;
	uint32_t leeway_s; /* clock skew allowed on exp and nbf */
};

enum jwt_result {
	JWT_OK,
	JWT_MISSING,       /* no header value, or not the Bearer scheme */
	JWT_MALFORMED,     /* size, shape, base64url, JSON, header fields,
	                    * or a claim of the wrong type (exp absent) */
	JWT_BAD_ALG,       /* header alg is not the configured one */
	JWT_BAD_SIGNATURE, /* signature of the wrong length or invalid */
	JWT_EXPIRED,       /* exp + leeway <= now */
	JWT_NOT_YET_VALID, /* nbf > now + leeway */
	JWT_BAD_ISSUER,    /* iss configured and not equal */
	JWT_BAD_AUDIENCE,  /* aud configured and not equal / not in array */
	JWT_NO_SUBJECT,    /* sub absent, not a string, empty, longer than
	                    * JWT_SUB_MAX, or holding a control character */
};

/* jwt_claims - what a verified token says; filled on JWT_OK only (zeroed
 * otherwise).  Times are seconds since the epoch, rounded towards the
 * stricter side (exp down, nbf up); nbf and iat are 0 when absent. */
struct jwt_claims {
	char sub[JWT_SUB_MAX + 1]; /* NUL-terminated, no control chars */
	uint64_t exp;
	uint64_t nbf;
	uint64_t iat;
};

struct jwt_verifier;

/* jwt_alg_parse - "HS256", "RS256" or "ES256" (exact case) into *alg;
 * 0, or -1 for anything else. */
int jwt_alg_parse(const char *name, enum jwt_alg *alg);

/* jwt_alg_name - "HS256", "RS256" or "ES256". */
const char *jwt_alg_name(enum jwt_alg alg);

/* jwt_result_name - "ok", "missing", "malformed", "bad_alg",
 * "bad_signature", "expired", "not_yet_valid", "bad_issuer",
 * "bad_audience", "no_subject". */
const char *jwt_result_name(enum jwt_result r);

/* jwt_verifier_new - a verifier for c, or NULL with a one-line reason in
 * err (errlen bytes, always NUL-terminated when errlen > 0): missing
 * secret or key, both a PEM and a file, unreadable or unparsable key, a
 * key of the wrong type for the alg (RS256 needs RSA >= 2048 bits, ES256
 * a P-256 EC key).  The reason never contains the secret. */
struct jwt_verifier *jwt_verifier_new(
    const struct jwt_config *c, char *err, size_t errlen);

/* jwt_verifier_free - release v; NULL is allowed. */
void jwt_verifier_free(struct jwt_verifier *v);

/* jwt_verify - check the value of an Authorization header,
 * hdr[0..len), at time now_s (seconds since the epoch): the scheme
 * "Bearer" in any case, one or more spaces or tabs, the token, optional
 * trailing spaces or tabs.  NULL, empty or blank -> JWT_MISSING; another
 * scheme -> JWT_MISSING; "Bearer" without a token -> JWT_MALFORMED.
 * Then as jwt_verify_token.  out may be NULL. */
enum jwt_result jwt_verify(const struct jwt_verifier *v, const char *hdr,
    size_t len, uint64_t now_s, struct jwt_claims *out);

/* jwt_verify_token - check a bare compact token tok[0..len): at most
 * JWT_TOKEN_MAX characters, exactly three non-empty base64url parts
 * without padding (so a token has one spelling only).  In this order:
 * the header JSON ("alg" equal to the configured alg, "typ" absent or
 * "JWT" in any case, no "crit"); the signature; the payload JSON ("exp" a
 * number, required; "nbf" and "iat" numbers when present); then exp, nbf,
 * "iss" and "aud" when configured ("aud" a string or an array holding
 * the string), and "sub".  Duplicate JSON keys are malformed.  An empty
 * token is JWT_MISSING.  out may be NULL. */
enum jwt_result jwt_verify_token(const struct jwt_verifier *v, const char *tok,
    size_t len, uint64_t now_s, struct jwt_claims *out);

#endif
