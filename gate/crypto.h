/*
 * crypto - the few primitives the request boundary needs: HMAC-SHA256,
 * hex encoding, and comparisons whose time does not depend on the bytes
 * compared.  Thin wrappers over mbedTLS; pure functions, no I/O, no state.
 *
 * Never compare secrets, MACs or tokens with memcmp/strcmp: use
 * crypto_ct_eq / crypto_token_eq.
 */
#ifndef RG_GATE_CRYPTO_H
#define RG_GATE_CRYPTO_H

#include <stddef.h>

#define CRYPTO_SHA256_LEN 32

/* crypto_hmac_sha256 - out = HMAC-SHA256(key, msg); msg may be NULL when
 * len is 0. */
void crypto_hmac_sha256(const void *key, size_t keylen, const void *msg,
    size_t len, unsigned char out[CRYPTO_SHA256_LEN]);

/* crypto_sha256 - out = SHA-256(msg); msg may be NULL when len is 0. */
void crypto_sha256(
    const void *msg, size_t len, unsigned char out[CRYPTO_SHA256_LEN]);

/* crypto_hex_encode - lowercase hex of src into dst, NUL-terminated;
 * dstlen must be at least 2*len+1 (asserted).  Returns 2*len. */
size_t crypto_hex_encode(
    const void *src, size_t len, char *dst, size_t dstlen);

/* crypto_sig_sha256 - "sha256=" + lowercase hex HMAC-SHA256(secret, body):
 * the signature header value of relgate's requests to the application
 * (X-Relgate-Signature) and of WhatsApp's (X-Hub-Signature-256). */
#define CRYPTO_SIG_LEN (7 + 2 * CRYPTO_SHA256_LEN + 1)
void crypto_sig_sha256(const char *secret, const void *body, size_t len,
    char out[CRYPTO_SIG_LEN]);

/* crypto_hexval - value of one hex digit (either case), or -1. */
int crypto_hexval(unsigned char c);

/* crypto_hex_decode - exactly len hex digits (either case) into dst;
 * returns the number of bytes (len/2), or -1 if len is odd, a character is
 * not a hex digit, or dst is shorter than len/2. */
long crypto_hex_decode(
    const char *src, size_t len, unsigned char *dst, size_t dstlen);

/* crypto_ct_eq - 1 if the n bytes at a and b are equal, else 0; time
 * depends on n only. */
int crypto_ct_eq(const void *a, const void *b, size_t n);

/* crypto_token_eq - 1 if the strings a[0..alen) and b[0..blen) are equal.
 * Time depends on the lengths only, never on the content: the length of a
 * configured token may leak, its bytes do not.  An empty string never
 * matches (an unset token must not accept an empty one). */
int crypto_token_eq(const char *a, size_t alen, const char *b, size_t blen);

#endif
