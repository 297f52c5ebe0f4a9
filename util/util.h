/*
 * util - small generic helpers: allocation that aborts on failure, clocks,
 * bounded string copies.  Nothing relgate-specific lives here.
 */
#ifndef RG_UTIL_H
#define RG_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define RG_NELEM(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t sz);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* xasprintf - formatted string in fresh memory; aborts on failure. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* now_ms - wall clock, ms since the epoch (for display and TTLs). */
uint64_t now_ms(void);
/* mono_ms / mono_us - monotonic clock (for intervals and backoff). */
uint64_t mono_ms(void);
uint64_t mono_us(void);
uint64_t mono_ns(void);

/*
 * url_join - base + "/" + path into buf with exactly one slash between
 * them (trailing slashes of base and leading ones of path dropped).
 * Returns the length, or -1 when it does not fit (buf is then "").
 */
int url_join(char *buf, size_t len, const char *base, const char *path);

/* FNV-1a, 64 bits: fnv1a(FNV1A_INIT, p, n), or continued from h. */
#define FNV1A_INIT 0xcbf29ce484222325ull
static inline uint64_t
fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* fmt_u64 - v in base (2..16, lower-case digits) into dst, no NUL;
 * returns the digits written (at most 64). */
size_t fmt_u64(char *dst, uint64_t v, unsigned base);

/* mix64 - a 64-bit value's bits mixed (a hash of ids for tables). */
static inline uint64_t
mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

/* strlcpy_rg - copy with truncation, always NUL-terminates; returns strlen(src). */
size_t strlcpy_rg(char *dst, const char *src, size_t size);

/*
 * json_escape - append the JSON string escape of s[0..n) to dst at *pos,
 * never past cap - 1 (cuts at a character boundary of the escape) and NUL
 * terminates.  Returns 0, or -1 when it had to cut.
 */
int json_escape(char *dst, size_t cap, size_t *pos, const char *s, size_t n);

/* mkdir_p - create a directory and its parents with mode; 0 or -1/errno. */
int mkdir_p(const char *path, unsigned mode);

/* nofile_raise - raise the soft open-files limit (RLIMIT_NOFILE) to the
 * hard limit; returns the soft limit now (0 if it cannot be read). */
unsigned long nofile_raise(void);

/* path_absolute - path as an absolute path in fresh memory: unchanged when
 * it starts with '/', else dir/path with leading "./" dropped. */
char *path_absolute(const char *dir, const char *path);

#endif
