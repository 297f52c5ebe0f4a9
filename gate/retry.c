/*
 * retry - see retry.h.  Backoff, Retry-After parsing, and the order of
 * the decisions: retryable outcome, then first byte, idempotence,
 * attempts, Retry-After, deadline.
 */
#include "gate/retry.h"

#include <ctype.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "util/util.h"

#define SECONDS_MAX UINT64_C(315360000) /* ten years: larger is "long" */

static const char *const reason_names[] = {
	"retryable",
	"not_retryable",
	"first_byte_sent",
	"not_idempotent",
	"max_attempts",
	"retry_after_too_long",
	"deadline",
};

_Static_assert(sizeof(reason_names) / sizeof(reason_names[0]) ==
	RETRY_NREASONS,
    "a name per reason");

const char *
retry_reason_name(unsigned reason)
{
	return reason < RETRY_NREASONS ? reason_names[reason] : "unknown";
}

uint64_t
retry_rand_os(void *arg)
{
	static uint64_t mix;
	uint64_t r;

	(void)arg;
	if (getrandom(&r, sizeof(r), 0) == (ssize_t)sizeof(r))
		return r;
	/* no entropy: a splitmix64 step over clock, pid and a counter */
	r = (mix += UINT64_C(0x9e3779b97f4a7c15)) ^ mono_us() ^
	    (uint64_t)getpid() << 32;
	r = (r ^ (r >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	r = (r ^ (r >> 27)) * UINT64_C(0x94d049bb133111eb);
	return r ^ (r >> 31);
}

int
retry_retryable(enum cb_error err, int status)
{
	return cb_classify_error(err, status) == CB_FAILURE;
}

uint64_t
retry_ceiling(const struct retry_policy *p, uint32_t attempts)
{
	uint64_t base = p->base_ms, cap = p->cap_ms;
	uint32_t shift = attempts > 1 ? attempts - 1 : 0;

	if (base == 0 || base >= cap)
		return base < cap ? base : cap;
	if (shift >= 63 || base > (cap >> shift))
		return cap;
	return base << shift;
}

uint64_t
retry_backoff(const struct retry_policy *p, uint32_t attempts)
{
	uint64_t ceil = retry_ceiling(p, attempts);
	uint64_t r = p->rand != NULL ? p->rand(p->rand_arg) :
				       retry_rand_os(NULL);

	/* uniform in [0, ceil]: the high half of r * (ceil + 1) */
	return (uint64_t)(((unsigned __int128)r * (ceil + 1)) >> 64);
}

/* Cursor over a header value. */
struct cur {
	const char *p;
};

/* num - n digits exactly (n > 0), or at most -n digits (n < 0); -1 if
 * none. */
static long
num(struct cur *c, int n)
{
	long v = 0;
	int got = 0, most = n < 0 ? -n : n;

	while (got < most && isdigit((unsigned char)*c->p)) {
		v = v * 10 + (*c->p++ - '0');
		got++;
	}
	if (got == 0 || (n > 0 && got != n))
		return -1;
	return v;
}

static int
lit(struct cur *c, const char *s)
{
	size_t n = strlen(s);

	if (strncmp(c->p, s, n) != 0)
		return 0;
	c->p += n;
	return 1;
}

/* month - "Jan".."Dec" to 1..12, or 0. */
static int
month(struct cur *c)
{
	static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

	for (int m = 0; m < 12; m++)
		if (strncmp(c->p, names + 3 * m, 3) == 0) {
			c->p += 3;
			return m + 1;
		}
	return 0;
}

/* hms - "HH:MM:SS" into seconds of the day, or -1. */
static long
hms(struct cur *c)
{
	long h = num(c, 2), m, s;

	if (h < 0 || !lit(c, ":") || (m = num(c, 2)) < 0 || !lit(c, ":") ||
	    (s = num(c, 2)) < 0 || h > 23 || m > 59 || s > 60)
		return -1;
	return h * 3600 + m * 60 + s;
}

/* days_from_civil - days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* http_date - seconds since the epoch of an HTTP-date, or -1. */
static int64_t
http_date(const char *v)
{
	struct cur c = { v };
	long day, year, secs;
	int mon;

	while (isalpha((unsigned char)*c.p))
		c.p++;
	if (c.p - v < 3)
		return -1;
	if (lit(&c, ", ")) {
		if ((day = num(&c, 2)) < 0)
			return -1;
		if (lit(&c, " ")) { /* IMF-fixdate: 06 Nov 1994 */
			if ((mon = month(&c)) == 0 || !lit(&c, " ") ||
			    (year = num(&c, 4)) < 0)
				return -1;
		} else if (lit(&c, "-")) { /* RFC 850: 06-Nov-94 */
			if ((mon = month(&c)) == 0 || !lit(&c, "-") ||
			    (year = num(&c, 2)) < 0)
				return -1;
			year += year < 70 ? 2000 : 1900;
		} else {
			return -1;
		}
		if (!lit(&c, " ") || (secs = hms(&c)) < 0 ||
		    !lit(&c, " GMT"))
			return -1;
	} else if (lit(&c, " ")) { /* asctime: Nov  6 08:49:37 1994 */
		if ((mon = month(&c)) == 0 || !lit(&c, " "))
			return -1;
		lit(&c, " ");
		if ((day = num(&c, -2)) < 0 || !lit(&c, " ") ||
		    (secs = hms(&c)) < 0 || !lit(&c, " ") ||
		    (year = num(&c, 4)) < 0)
			return -1;
	} else {
		return -1;
	}
	while (*c.p == ' ' || *c.p == '\t')
		c.p++;
	if (*c.p != '\0' || day < 1 || day > 31)
		return -1;
	return days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 +
	    secs;
}

int
retry_parse_after(const char *v, uint64_t now_ms, uint64_t *ms)
{
	const char *p = v;
	uint64_t secs = 0;
	int64_t at;

	if (v == NULL)
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (isdigit((unsigned char)*p)) {
		while (isdigit((unsigned char)*p)) {
			if (secs <= SECONDS_MAX)
				secs = secs * 10 + (uint64_t)(*p - '0');
			p++;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '\0')
			return -1;
		if (secs > SECONDS_MAX)
			secs = SECONDS_MAX;
		*ms = secs * 1000;
		return 0;
	}
	if ((at = http_date(p)) < 0)
		return -1;
	*ms = (uint64_t)at * 1000 > now_ms ? (uint64_t)at * 1000 - now_ms : 0;
	return 0;
}

int
retry_next(const struct retry_policy *p, const struct retry_state *s,
    enum cb_error err, int status, const char *retry_after, uint64_t now_ms,
    uint64_t *delay_ms, enum retry_reason *why)
{
	enum retry_reason dummy;
	uint32_t max = p->max_attempts ? p->max_attempts : 1;
	uint64_t ra_max = p->retry_after_max_ms ? p->retry_after_max_ms :
						  p->cap_ms;
	uint64_t delay, ra;

	if (why == NULL)
		why = &dummy;
	*delay_ms = 0;
	if (!retry_retryable(err, status))
		*why = RETRY_R_NOT_RETRYABLE;
	else if (s->first_byte_sent)
		*why = RETRY_R_FIRST_BYTE_SENT;
	else if (!s->idempotent && !s->safe)
		*why = RETRY_R_NOT_IDEMPOTENT;
	else if (s->attempts >= max)
		*why = RETRY_R_MAX_ATTEMPTS;
	else
		*why = RETRY_R_RETRYABLE;
	if (*why != RETRY_R_RETRYABLE)
		return RETRY_GIVE_UP;
	delay = retry_backoff(p, s->attempts);
	if (retry_after != NULL &&
	    retry_parse_after(retry_after, now_ms, &ra) == 0) {
		if (ra > ra_max) {
			*delay_ms = ra;
			*why = RETRY_R_RETRY_AFTER_TOO_LONG;
			return RETRY_GIVE_UP;
		}
		if (ra > delay)
			delay = ra;
	}
	if (s->deadline_ms != 0 && now_ms + delay >= s->deadline_ms) {
		*why = RETRY_R_DEADLINE;
		return RETRY_GIVE_UP;
	}
	*delay_ms = delay;
	return RETRY_AGAIN;
}
