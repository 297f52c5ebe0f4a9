/*
 * query - read one parameter of a URL query string
 * (application/x-www-form-urlencoded: '&'-separated name=value pairs,
 * '+' is a space, %XX escapes).  Pure function, fixed caller buffers.
 */
#ifndef RG_GATE_QUERY_H
#define RG_GATE_QUERY_H

#include <stddef.h>

enum query_result {
	QUERY_BAD = -1,   /* present, but a bad %-escape or an encoded NUL */
	QUERY_ABSENT = 0, /* no parameter of that name */
	QUERY_FOUND = 1,  /* present (its value may be empty) */
};

/* query_get - the value of the first parameter called name (names are
 * compared after decoding, exactly) in query[0..len) (a leading '?' is
 * skipped), decoded into out (outlen >= 1 bytes, NUL-terminated).  When
 * the decoded value needs more than outlen-1 bytes, *too_long is set to 1,
 * out is "" and QUERY_FOUND is returned; else *too_long is 0.  On
 * QUERY_ABSENT and QUERY_BAD out is "".  too_long may be NULL. */
enum query_result query_get(const char *query, size_t len, const char *name,
    char *out, size_t outlen, int *too_long);

#endif
