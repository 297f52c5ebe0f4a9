/*
 * b64 - see b64.h.  Hand-written: small, strict, and independent of
 * mbedTLS's treatment of padding.
 */
#include "gate/b64.h"

static const char std_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* sextet - value of c in the alphabets of flags, or -1. */
static int
sextet(unsigned char c, int flags)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if ((flags & B64_STD) != 0 && c == '+')
		return 62;
	if ((flags & B64_STD) != 0 && c == '/')
		return 63;
	if ((flags & B64_URL) != 0 && c == '-')
		return 62;
	if ((flags & B64_URL) != 0 && c == '_')
		return 63;
	return -1;
}

long
b64_decode(
    const char *src, size_t len, int flags, unsigned char *dst, size_t dstlen)
{
	size_t i, n, out = 0, pad = 0, rem;
	unsigned long acc = 0;
	int v;

	/* padding: only when the padded length is a multiple of 4 */
	if (len > 0 && src[len - 1] == '=') {
		pad = (len > 1 && src[len - 2] == '=') ? 2 : 1;
		if (len % 4 != 0)
			return -1;
	}
	n = len - pad;
	rem = n % 4;
	if (rem == 1)
		return -1;
	if (n / 4 * 3 + (rem > 0 ? rem - 1 : 0) > dstlen)
		return -1;
	if (pad > 0 && (4 - rem) % 4 != pad)
		return -1;
	for (i = 0; i < n; i++) {
		v = sextet((unsigned char)src[i], flags);
		if (v < 0)
			return -1;
		acc = (acc << 6 | (unsigned long)v) & 0xffffff;
		if (i % 4 == 3) {
			dst[out++] = (unsigned char)(acc >> 16);
			dst[out++] = (unsigned char)(acc >> 8);
			dst[out++] = (unsigned char)acc;
		}
	}
	if (rem == 2) {
		if ((acc & 0x0f) != 0)
			return -1;
		dst[out++] = (unsigned char)(acc >> 4);
	} else if (rem == 3) {
		if ((acc & 0x03) != 0)
			return -1;
		dst[out++] = (unsigned char)(acc >> 10);
		dst[out++] = (unsigned char)(acc >> 2);
	}
	return (long)out;
}

/* encode - shared body of the two encoders. */
static long
encode(const char *alpha, int padded, const void *src, size_t len, char *dst,
    size_t dstlen)
{
	const unsigned char *s = src;
	size_t i, o = 0, need;
	unsigned long v;

	need = len / 3 * 4;
	if (len % 3 != 0)
		need += padded ? 4 : len % 3 + 1;
	if (dstlen < need + 1)
		return -1;
	for (i = 0; i + 2 < len; i += 3) {
		v = (unsigned long)s[i] << 16 | (unsigned long)s[i + 1] << 8 |
		    s[i + 2];
		dst[o++] = alpha[v >> 18 & 0x3f];
		dst[o++] = alpha[v >> 12 & 0x3f];
		dst[o++] = alpha[v >> 6 & 0x3f];
		dst[o++] = alpha[v & 0x3f];
	}
	if (len - i == 1) {
		v = (unsigned long)s[i] << 16;
		dst[o++] = alpha[v >> 18 & 0x3f];
		dst[o++] = alpha[v >> 12 & 0x3f];
		if (padded) {
			dst[o++] = '=';
			dst[o++] = '=';
		}
	} else if (len - i == 2) {
		v = (unsigned long)s[i] << 16 | (unsigned long)s[i + 1] << 8;
		dst[o++] = alpha[v >> 18 & 0x3f];
		dst[o++] = alpha[v >> 12 & 0x3f];
		dst[o++] = alpha[v >> 6 & 0x3f];
		if (padded)
			dst[o++] = '=';
	}
	dst[o] = '\0';
	return (long)o;
}

long
b64_encode(const void *src, size_t len, char *dst, size_t dstlen)
{
	return encode(std_alpha, 1, src, len, dst, dstlen);
}

long
b64url_encode(const void *src, size_t len, char *dst, size_t dstlen)
{
	return encode(url_alpha, 0, src, len, dst, dstlen);
}
