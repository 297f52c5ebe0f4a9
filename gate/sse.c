/*
 * sse - see sse.h.
 */
#include "gate/sse.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define SSE_MAX_LINE_DEFAULT (1024 * 1024)

void
sse_init(struct sse_reader *r, size_t max_line)
{
	memset(r, 0, sizeof(*r));
	r->max_line = max_line ? max_line : SSE_MAX_LINE_DEFAULT;
}

void
sse_free(struct sse_reader *r)
{
	free(r->buf);
	free(r->data);
	memset(r, 0, sizeof(*r));
}

/* grow - room for need bytes and a NUL in *p. */
static void
grow(char **p, size_t *cap, size_t need)
{
	if (need + 1 <= *cap)
		return;
	*cap = need + 1 > 2 * *cap ? need + 1 : 2 * *cap;
	if (*cap < 128)
		*cap = 128;
	*p = xrealloc(*p, *cap);
}

/* line - one complete line (without its end) in r->buf: 0, 1 when the
 * callback stopped, -1 when the event's data grew past max_line. */
static int
line(struct sse_reader *r, sse_event_fn fn, void *arg)
{
	const char *l = r->buf, *v;
	size_t n = r->len, fl, vl;
	int rc = 0;

	r->len = 0;
	if (n == 0) {
		/* blank line: dispatch the event, if it had data */
		if (r->has_data) {
			grow(&r->data, &r->data_cap, r->data_len);
			r->data[r->data_len] = '\0';
			rc = fn(arg, r->data, r->data_len) != 0;
		}
		r->has_data = 0;
		r->data_len = 0;
		return rc;
	}
	if (l[0] == ':')
		return 0; /* a comment */
	v = memchr(l, ':', n);
	fl = v != NULL ? (size_t)(v - l) : n;
	if (fl != 4 || memcmp(l, "data", 4) != 0)
		return 0; /* event, id, retry, unknown: not needed here */
	if (v == NULL) {
		v = l + n;
		vl = 0;
	} else {
		v++;
		vl = n - fl - 1;
		if (vl > 0 && *v == ' ') {
			v++;
			vl--;
		}
	}
	if (r->data_len + vl + 1 > r->max_line)
		return -1; /* an event's data is bounded like a line */
	if (r->has_data) {
		grow(&r->data, &r->data_cap, r->data_len + 1);
		r->data[r->data_len++] = '\n';
	}
	grow(&r->data, &r->data_cap, r->data_len + vl);
	memcpy(r->data + r->data_len, v, vl);
	r->data_len += vl;
	r->has_data = 1;
	return 0;
}

int
sse_feed(struct sse_reader *r, const void *p, size_t len, sse_event_fn fn,
    void *arg)
{
	const char *s = p, *end = s + len;

	if (r->failed)
		return -1;
	while (s < end) {
		const char *eol;
		size_t take;

		if (r->cr) {
			r->cr = 0;
			if (*s == '\n') {
				s++;
				continue;
			}
		}
		for (eol = s; eol < end && *eol != '\n' && *eol != '\r'; eol++)
			;
		take = (size_t)(eol - s);
		if (r->len + take > r->max_line) {
			r->failed = 1;
			return -1;
		}
		grow(&r->buf, &r->cap, r->len + take);
		memcpy(r->buf + r->len, s, take);
		r->len += take;
		s = eol;
		if (s == end)
			break; /* the line goes on in the next read */
		r->cr = *s == '\r';
		s++;
		switch (line(r, fn, arg)) {
		case 0:
			break;
		case 1:
			return 1;
		default:
			r->failed = 1;
			return -1;
		}
	}
	return 0;
}
