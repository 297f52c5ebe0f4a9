/*
 * crypto - see crypto.h.
 */
#include "gate/crypto.h"

#include <assert.h>
#include <string.h>
#include <mbedtls/constant_time.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>

void
crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
    unsigned char out[CRYPTO_SHA256_LEN])
{
	static const unsigned char empty[1];
	const mbedtls_md_info_t *md;
	int rc;

	md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
	assert(md != NULL);
	rc = mbedtls_md_hmac(md, keylen > 0 ? key : empty, keylen,
	    len > 0 ? msg : empty, len, out);
	/* only MBEDTLS_ERR_MD_BAD_INP_DATA (NULL md) or an allocation failure
	 */
	assert(rc == 0);
	(void)rc;
}

void
crypto_sha256(const void *msg, size_t len, unsigned char out[CRYPTO_SHA256_LEN])
{
	static const unsigned char empty[1];
	int rc = mbedtls_sha256_ret(len > 0 ? msg : empty, len, out, 0);

	assert(rc == 0); /* it fails only on a bad argument */
	(void)rc;
}

size_t
crypto_hex_encode(const void *src, size_t len, char *dst, size_t dstlen)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *s = src;
	size_t i;

	assert(dstlen >= 2 * len + 1);
	for (i = 0; i < len; i++) {
		dst[2 * i] = digits[s[i] >> 4];
		dst[2 * i + 1] = digits[s[i] & 0x0f];
	}
	dst[2 * len] = '\0';
	return 2 * len;
}

int
crypto_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long
crypto_hex_decode(
    const char *src, size_t len, unsigned char *dst, size_t dstlen)
{
	size_t i;
	int hi, lo;

	if (len % 2 != 0 || len / 2 > dstlen)
		return -1;
	for (i = 0; i < len / 2; i++) {
		hi = crypto_hexval((unsigned char)src[2 * i]);
		lo = crypto_hexval((unsigned char)src[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		dst[i] = (unsigned char)(hi << 4 | lo);
	}
	return (long)(len / 2);
}

int
crypto_ct_eq(const void *a, const void *b, size_t n)
{
	return mbedtls_ct_memcmp(a, b, n) == 0;
}

int
crypto_token_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen == 0 || blen == 0)
		return 0;
	if (alen != blen) {
		/* same work as a match of b, then refuse: only lengths leak */
		(void)crypto_ct_eq(b, b, blen);
		return 0;
	}
	return crypto_ct_eq(a, b, alen);
}

void
crypto_sig_sha256(const char *secret, const void *body, size_t len,
    char out[CRYPTO_SIG_LEN])
{
	unsigned char mac[CRYPTO_SHA256_LEN];

	crypto_hmac_sha256(secret, strlen(secret), body, len, mac);
	memcpy(out, "sha256=", 7);
	crypto_hex_encode(mac, sizeof(mac), out + 7, CRYPTO_SIG_LEN - 7);
}
