/*
 * query - see query.h.
 */
#include "gate/query.h"

#include <assert.h>
#include <string.h>

#include "gate/crypto.h"


/*
 * decode - %-decode s[0..len) into out (room for outlen bytes, no NUL
 * added); returns the decoded length (which may exceed outlen: the excess
 * is counted, not written), or -1 on a bad escape or an encoded NUL.
 */
static long
decode(const char *s, size_t len, char *out, size_t outlen)
{
	size_t i, o = 0;
	int hi, lo;
	char c;

	for (i = 0; i < len; i++) {
		c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (len - i < 3)
				return -1;
			hi = crypto_hexval((unsigned char)s[i + 1]);
			lo = crypto_hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '\0') {
			return -1;
		}
		if (o < outlen)
			out[o] = c;
		o++;
	}
	return (long)o;
}

/* value - decode the value of a matched pair; eq == amp means no '='. */
static enum query_result
value(const char *eq, const char *amp, char *out, size_t outlen, int *too_long)
{
	long n;

	if (eq == amp)
		return QUERY_FOUND; /* "name" alone: empty value */
	n = decode(eq + 1, (size_t)(amp - eq - 1), out, outlen - 1);
	if (n < 0) {
		out[0] = '\0';
		return QUERY_BAD;
	}
	if ((size_t)n > outlen - 1) {
		out[0] = '\0';
		if (too_long != NULL)
			*too_long = 1;
		return QUERY_FOUND;
	}
	out[n] = '\0';
	return QUERY_FOUND;
}

enum query_result
query_get(const char *query, size_t len, const char *name, char *out,
    size_t outlen, int *too_long)
{
	const char *p, *end, *amp, *eq;
	size_t namelen = strlen(name);
	char key[128];
	long n;

	assert(outlen >= 1 && namelen <= sizeof(key));
	out[0] = '\0';
	if (too_long != NULL)
		*too_long = 0;
	if (query == NULL)
		return QUERY_ABSENT;
	p = query;
	end = query + len;
	if (p < end && *p == '?')
		p++;
	for (;; p = amp + 1) {
		amp = memchr(p, '&', (size_t)(end - p));
		if (amp == NULL)
			amp = end;
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq == NULL)
			eq = amp;
		n = decode(p, (size_t)(eq - p), key, sizeof(key));
		if (amp > p && n >= 0 && (size_t)n == namelen &&
		    memcmp(key, name, namelen) == 0)
			return value(eq, amp, out, outlen, too_long);
		if (amp == end)
			break;
	}
	return QUERY_ABSENT;
}
