/*
 * util - see util.h.
 */
#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

static void
oom(void)
{
	fputs("relgate: out of memory\n", stderr);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		oom();
	return q;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		oom();
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	return p;
}

static uint64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
now_ms(void)
{
	return clock_ns(CLOCK_REALTIME) / 1000000u;
}

uint64_t
mono_ms(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000000u;
}

uint64_t
mono_us(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000u;
}

uint64_t
mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

size_t
strlcpy_rg(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size > 0) {
		size_t c = n < size - 1 ? n : size - 1;

		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

int
json_escape(char *dst, size_t cap, size_t *pos, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t p = *pos;
	int rc = 0;

	if (cap == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t w = 1;

		esc[0] = (char)c;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			w = 2;
		} else if (c < 0x20 || c == 0x7f) {
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			w = 6;
		}
		if (p + w > cap - 1) {
			rc = -1;
			break;
		}
		memcpy(dst + p, esc, w);
		p += w;
	}
	dst[p] = '\0';
	*pos = p;
	return rc;
}

unsigned long
nofile_raise(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (unsigned long)rl.rlim_cur;
}

int
mkdir_p(const char *path, unsigned mode)
{
	char buf[4096];
	char *p;

	if (strlcpy_rg(buf, path, sizeof(buf)) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

int
url_join(char *buf, size_t len, const char *base, const char *path)
{
	size_t bl = strlen(base);
	int n;

	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	while (*path == '/')
		path++;
	n = snprintf(buf, len, "%.*s/%s", (int)bl, base, path);
	if (n < 0 || (size_t)n >= len) {
		if (len > 0)
			buf[0] = '\0';
		return -1;
	}
	return n;
}

char *
path_absolute(const char *dir, const char *path)
{
	size_t n;

	if (path[0] == '/')
		return xstrdup(path);
	while (path[0] == '.' && path[1] == '/')
		for (path += 2; path[0] == '/'; path++)
			;
	if (strcmp(path, ".") == 0)
		path = "";
	n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (path[0] == '\0')
		return xasprintf("%.*s", (int)n, dir);
	return xasprintf("%.*s%s%s", (int)n, dir,
	    n == 1 && dir[0] == '/' ? "" : "/", path);
}

size_t
fmt_u64(char *dst, uint64_t v, unsigned base)
{
	char tmp[64];
	size_t n = 0, i;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v != 0);
	for (i = 0; i < n; i++)
		dst[i] = tmp[n - 1 - i];
	return n;
}
