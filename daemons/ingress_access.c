/*
 * ingress_access - the request id and the access log of the ingress.
 *
 * A request's id is its X-Request-Id when the client sent a sane one
 * (1..64 of A-Z a-z 0-9 . _ -), else 16 hex digits derived from the
 * server's request id and a random seed of this process: the same value
 * wherever it is asked for, with nothing stored per request.
 *
 * The access log (log.access: off, file, syslog) has one line per request
 * when it is over, in logfmt:
 *   time=2026-12-01T10:00:00.123Z ip=203.0.113.7 method=POST
 *   path=/api/chat status=429 code=rate_limited bytes=213 ms=0.412
 *   rid=5f0c1d2e3a4b6c7d
 * (one line; the path without its query, bytes outside 0x21..0x7e as
 * %XX; status 0 and code "-" for a request that got no answer).  Lines go
 * to util/alog's writer thread: the loop never waits for the disk.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "daemons/ingress.h"
#include "util/alog.h"
#include "util/log.h"
#include "util/util.h"

static uint64_t rid_seed;

static int
rid_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		char ch = s[n];

		if (n >= 64 || !((ch >= 'a' && ch <= 'z') ||
				    (ch >= 'A' && ch <= 'Z') ||
				    (ch >= '0' && ch <= '9') || ch == '.' ||
				    ch == '_' || ch == '-'))
			return 0;
	}
	return n > 0;
}

const char *
ing_request_id(struct ing *g, struct httpd_req *req, char *buf, size_t len)
{
	const char *h = httpd_req_header(req, "x-request-id");
	static uint64_t headless;
	uint64_t id = httpd_req_id(req);

	(void)g;
	if (h != NULL && rid_ok(h))
		return h;
	/* a request refused before its head was read has no id of the
	 * server's (and is asked for its id once, by the access log) */
	if (id == 0)
		id = UINT64_C(1) << 63 | ++headless;
	snprintf(buf, len, "%016llx",
	    (unsigned long long)mix64(rid_seed ^ id));
	return buf;
}

static enum alog_mode
mode_of(const char *s)
{
	if (strcmp(s, "file") == 0)
		return ALOG_FILE;
	if (strcmp(s, "syslog") == 0)
		return ALOG_SYSLOG;
	return ALOG_OFF;
}

int
access_setup(struct ing *g, const struct config *old)
{
	const struct config *c = CFG(g);
	enum alog_mode mode = mode_of(c->log_access);
	char err[512];

	if (rid_seed == 0 && getrandom(&rid_seed, sizeof(rid_seed), 0) !=
	    (ssize_t)sizeof(rid_seed))
		rid_seed = mix64(now_ms() ^ (uint64_t)getpid());
	if (old != NULL && g->alog != NULL &&
	    mode == mode_of(old->log_access) &&
	    strcmp(c->log_access_file, old->log_access_file) == 0) {
		/* the same log: open the file again (it may have been
		 * rotated) */
		alog_reopen(g->alog);
		return 0;
	}
	/* the old writer may be stuck on a stalled disk: not waited for */
	alog_retire(g->alog);
	g->alog = NULL;
	if (mode == ALOG_OFF)
		return 0;
	g->alog = alog_open(mode, c->log_access_file,
	    &g->ctx->self->counters.alog, err, sizeof(err));
	if (g->alog == NULL) {
		/* the public surface does not stop for its log */
		log_err("log.access_file: %s (requests are not logged)", err);
		SHM_INC(&g->ctx->self->counters.alog.write_errors);
		return -1;
	}
	return 0;
}

void
access_exit(struct ing *g)
{
	alog_close(g->alog);
	g->alog = NULL;
}

/* The line is built by hand: this runs for every request, and on the
 * reject path printf's formatting would cost more than the answer. */

/* put_str - s, at most max bytes of it */
static size_t
put_str(char *out, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	memcpy(out, s, n);
	return n;
}

/* put_time - "2026-12-01T10:00:00.123Z", the seconds part cached */
static size_t
put_time(char *out)
{
	static time_t cached = -1;
	static char sec[24];
	static size_t sec_len;
	struct timespec ts;
	struct tm tm;
	long ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != cached) {
		gmtime_r(&ts.tv_sec, &tm);
		sec_len = strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S.", &tm);
		cached = ts.tv_sec;
	}
	memcpy(out, sec, sec_len);
	ms = ts.tv_nsec / 1000000;
	out[sec_len] = (char)('0' + ms / 100);
	out[sec_len + 1] = (char)('0' + ms / 10 % 10);
	out[sec_len + 2] = (char)('0' + ms % 10);
	out[sec_len + 3] = 'Z';
	return sec_len + 4;
}

/* put_path - the path with bytes outside 0x21..0x7e as %XX, at most
 * max bytes of output */
static size_t
put_path(char *out, const char *p, size_t max)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch > 0x20 && ch < 0x7f && ch != '%') {
			if (n + 1 > max)
				break;
			out[n++] = (char)ch;
		} else {
			if (n + 3 > max)
				break;
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	return n;
}

void
access_done(struct ing *g, struct httpd_req *req, const struct httpd_done *d)
{
	/* at most: time 29, ip 4+64, method 8+24, path 6+512, status 8+3,
	 * code 6+32, bytes 7+20, ms 4+24, rid 5+64: 860 */
	char line[1024], ip[64], rid_buf[24];
	const char *method = httpd_req_method(req);
	const char *code = d->code > 0 && d->code <= RG_E_COUNT ?
	    rg_error_code((enum rg_error)(d->code - 1)) :
	    "-";
	size_t n;

	if (g->alog == NULL)
		return;
	ing_client_ip(g, req, ip, sizeof(ip));
#define LIT(s) (memcpy(line + n, s, sizeof(s) - 1), n += sizeof(s) - 1)
	n = 0;
	LIT("time=");
	n += put_time(line + n);
	LIT(" ip=");
	n += put_str(line + n, ip[0] ? ip : "-", sizeof(ip));
	/* a method is a token of the client's: at most 24 bytes of it */
	LIT(" method=");
	n += put_str(line + n, method[0] ? method : "-", 24);
	LIT(" path=");
	if (httpd_req_path(req)[0] == '\0')
		line[n++] = '-';
	else
		n += put_path(line + n, httpd_req_path(req), 512);
	LIT(" status=");
	n += fmt_u64(line + n, (uint64_t)(d->status > 0 ? d->status : 0), 10);
	LIT(" code=");
	n += put_str(line + n, code, 32);
	LIT(" bytes=");
	n += fmt_u64(line + n, d->bytes, 10);
	LIT(" ms=");
	n += fmt_u64(line + n, d->total_us / 1000, 10);
	line[n++] = '.';
	line[n++] = (char)('0' + d->total_us % 1000 / 100);
	line[n++] = (char)('0' + d->total_us % 100 / 10);
	line[n++] = (char)('0' + d->total_us % 10);
	LIT(" rid=");
	n += put_str(line + n, ing_request_id(g, req, rid_buf,
	    sizeof(rid_buf)), 64);
#undef LIT
	alog_line(g->alog, line, n);
}
