/*
 * b64 - base64 (RFC 4648 section 4) and base64url (section 5) codecs that
 * treat padding correctly.  mbedtls_base64_decode silently drops the tail
 * of unpadded input, so relgate decodes with this module instead.
 *
 * Decoding is strict apart from padding: every character must belong to
 * the chosen alphabet(s), '=' may appear only as the correct padding at
 * the very end, a length of 4k+1 is refused, and the unused low bits of
 * the last character must be zero (so each byte string has exactly one
 * accepted spelling with and one without padding).  No whitespace.
 * Pure functions; no allocation.
 */
#ifndef RG_GATE_B64_H
#define RG_GATE_B64_H

#include <stddef.h>

/* alphabets accepted by b64_decode (may be or-ed) */
#define B64_STD 0x1 /* A-Z a-z 0-9 + / */
#define B64_URL 0x2 /* A-Z a-z 0-9 - _ */

/* B64_DECODED_MAX - bytes that decoding len characters can produce. */
#define B64_DECODED_MAX(len) ((len) / 4 * 3 + 2)
/* B64_ENCODED_LEN - characters of the padded encoding of n bytes (no NUL);
 * the unpadded base64url form is never longer. */
#define B64_ENCODED_LEN(n) (((n) + 2) / 3 * 4)

/* b64_decode - decode src[0..len) using the alphabets in flags, padding
 * optional; returns the decoded length, or -1 if the input is invalid or
 * dst (dstlen bytes) is too small. */
long b64_decode(
    const char *src, size_t len, int flags, unsigned char *dst, size_t dstlen);

/* b64_encode - standard alphabet, padded; NUL-terminated.  Returns the
 * length written, or -1 if dst is too small (dstlen must be at least
 * B64_ENCODED_LEN(len)+1). */
long b64_encode(const void *src, size_t len, char *dst, size_t dstlen);

/* b64url_encode - url-safe alphabet, no padding; NUL-terminated.  Returns
 * the length written, or -1 if dst is too small. */
long b64url_encode(const void *src, size_t len, char *dst, size_t dstlen);

#endif
