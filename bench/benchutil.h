/*
 * benchutil - what the benchmark programs share.
 */
#ifndef RG_BENCH_BENCHUTIL_H
#define RG_BENCH_BENCHUTIL_H

/* bench_arg - the decimal option value s of option what, lo..hi; else a
 * one-line error naming prog and what, and exit 2. */
long bench_arg(const char *prog, const char *s, long lo, long hi,
    const char *what);

#endif
