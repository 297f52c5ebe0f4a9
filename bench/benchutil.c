/*
 * benchutil - see benchutil.h.
 */
#include "bench/benchutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

long
bench_arg(const char *prog, const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi) {
		fprintf(stderr, "%s: %s must be %ld..%ld\n", prog, what, lo, hi);
		exit(2);
	}
	return v;
}
