/*
 * parser - see parser.h.  Line-oriented: a line is examined only when its
 * LF has arrived, so incremental and whole-buffer parsing agree; limits
 * are checked the same way on complete and on partial lines.
 */
#include "http/parser.h"

#include <string.h>
#include <sys/types.h>

enum {
	ST_REQLINE,
	ST_FIELDS,
	ST_HEAD_DONE,
	CK_SIZE,
	CK_DATA,
	CK_DATA_END,
	CK_TRAILER,
	ST_DONE,
	ST_ERROR,
};

/* flags */
#define F_CL         0x01u /* Content-Length seen */
#define F_TE         0x02u /* Transfer-Encoding seen */
#define F_TE_CHUNKED 0x04u /* chunked seen */
#define F_TE_LAST_CK 0x08u /* the last coding so far is chunked */
#define F_TE_OTHER   0x10u /* a coding other than chunked */
#define F_CONN_CLOSE 0x20u
#define F_CONN_KA    0x40u

/* token characters (RFC 9110 5.6.2), shared with respparse.c */
const unsigned char httpp_tchar[256] = {
	['0' ... '9'] = 1,
	['A' ... 'Z'] = 1,
	['a' ... 'z'] = 1,
	['!'] = 1,
	['#'] = 1,
	['$'] = 1,
	['%'] = 1,
	['&'] = 1,
	['\''] = 1,
	['*'] = 1,
	['+'] = 1,
	['-'] = 1,
	['.'] = 1,
	['^'] = 1,
	['_'] = 1,
	['`'] = 1,
	['|'] = 1,
	['~'] = 1,
};

static int
fail(struct httpp *p, enum httpp_err e)
{
	p->err = e;
	p->state = ST_ERROR;
	return HTTPP_ERROR;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

int
httpp_ieq(const char *a, size_t alen, const char *b)
{
	size_t i;

	for (i = 0; i < alen; i++) {
		if (b[i] == '\0' ||
		    lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	}
	return b[i] == '\0';
}

/* is_field_char - field-value octet: HTAB, SP, VCHAR, obs-text. */
static int
is_field_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int
is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

void
httpp_init(struct httpp *p, size_t max_head)
{
	/* fields[] is not cleared: nfields bounds every read of it */
	p->max_head = max_head;
	p->method = p->target = p->path = p->query =
	    (struct httpp_span) { 0, 0 };
	p->has_query = 0;
	p->version = 0;
	p->keep_alive = 0;
	p->expect_continue = 0;
	p->body = HTTPP_BODY_NONE;
	p->content_length = 0;
	p->head_len = 0;
	p->nfields = 0;
	p->body_len = 0;
	p->consumed = 0;
	p->err = HTTPP_E_NONE;
	p->state = ST_REQLINE;
	p->line = p->scan = p->raw = 0;
	p->chunk_left = 0;
	p->trailer_bytes = 0;
	p->flags = 0;
	p->nhost = 0;
	p->empty_lines = 0;
}

static struct httpp_span
span(size_t off, size_t len)
{
	return (struct httpp_span) { (uint32_t)off, (uint32_t)len };
}

/* scheme_len - length of "http://" or "https://" (any case) at the
 * start of t[0..n), else 0. */
static size_t
scheme_len(const unsigned char *t, size_t n)
{
	if (n >= 7 && httpp_ieq((const char *)t, 7, "http://"))
		return 7;
	if (n >= 8 && httpp_ieq((const char *)t, 8, "https://"))
		return 8;
	return 0;
}

/*
 * absolute_path - an absolute-form target (RFC 9112 3.2.2) without its
 * query, t[0..n): where its path starts, 0 if it has none, -1 if it is
 * not "http[s]://authority[/path]".  The authority must be non-empty and
 * carry no userinfo (RFC 9110 4.2.4); it is not used: routing goes by
 * the path, as for an origin-form target.
 */
static ssize_t
absolute_path(const unsigned char *t, size_t n)
{
	size_t a = scheme_len(t, n), i;

	if (a == 0)
		return -1;
	for (i = a; i < n && t[i] != '/'; i++) {
		if (t[i] == '@')
			return -1;
	}
	if (i == a)
		return -1;
	return i < n ? (ssize_t)i : 0;
}

/* parse_reqline - method SP request-target SP HTTP-version; the target
 * in origin-form or absolute-form. */
static int
parse_reqline(struct httpp *p, const char *buf, size_t ls, size_t n)
{
	const unsigned char *s = (const unsigned char *)buf + ls;
	size_t i, t0, j, q;
	ssize_t a;
	const unsigned char *v;

	for (i = 0; i < n && httpp_tchar[s[i]]; i++)
		;
	if (i == 0 || i >= n || s[i] != ' ')
		return fail(p, HTTPP_E_BAD_REQUEST);
	p->method = span(ls, i);

	t0 = i + 1;
	for (j = t0; j < n && s[j] != ' '; j++)
		;
	if (j >= n || j == t0)
		return fail(p, HTTPP_E_BAD_REQUEST);
	q = j;
	for (i = t0; i < j; i++) {
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '#')
			return fail(p, HTTPP_E_BAD_REQUEST);
		if (s[i] == '?' && q == j)
			q = i;
	}
	p->target = span(ls + t0, j - t0);
	if (q < j) {
		p->has_query = 1;
		p->query = span(ls + q + 1, j - q - 1);
	}
	if (s[t0] == '/')
		p->path = span(ls + t0, q - t0);
	else if ((a = absolute_path(s + t0, q - t0)) > 0)
		p->path = span(ls + t0 + a, q - t0 - a);
	else if (a == 0) /* no path: "/" (the second slash of "//") */
		p->path = span(ls + t0 + scheme_len(s + t0, q - t0) - 1, 1);
	else
		return fail(p, HTTPP_E_BAD_REQUEST);

	v = s + j + 1;
	if (n - (j + 1) != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' ||
	    v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9')
		return fail(p, HTTPP_E_BAD_REQUEST);
	if (v[5] == '1' && v[7] == '1')
		p->version = 11;
	else if (v[5] == '1' && v[7] == '0')
		p->version = 10;
	else
		return fail(p, HTTPP_E_VERSION);
	return HTTPP_AGAIN;
}

/* check_field - validate a field line; name length in *nlen, value start
 * and end (trimmed) in *vs, *ve, all relative to s. */
static int
check_field(
    const unsigned char *s, size_t n, size_t *nlen, size_t *vs, size_t *ve)
{
	size_t i, b, e;

	for (i = 0; i < n && httpp_tchar[s[i]]; i++)
		;
	/* a leading SP/HTAB is obs-fold; a SP before the colon is refused */
	if (i == 0 || i >= n || s[i] != ':')
		return -1;
	for (b = i + 1; b < n; b++) {
		if (!is_field_char(s[b]))
			return -1;
	}
	for (b = i + 1; b < n && is_ows(s[b]); b++)
		;
	for (e = n; e > b && is_ows(s[e - 1]); e--)
		;
	*nlen = i;
	*vs = b;
	*ve = e;
	return 0;
}

/* next_elem - next comma-separated list element of v[*pos..n), trimmed;
 * returns 0 at the end. */
static int
next_elem(const char *v, size_t n, size_t *pos, size_t *es, size_t *el)
{
	size_t i = *pos, b, e;

	if (i > n)
		return 0;
	for (e = i; e < n && v[e] != ','; e++)
		;
	*pos = e + 1;
	for (b = i; b < e && is_ows((unsigned char)v[b]); b++)
		;
	while (e > b && is_ows((unsigned char)v[e - 1]))
		e--;
	*es = b;
	*el = e - b;
	return 1;
}

static int
field_content_length(struct httpp *p, const char *v, size_t n)
{
	uint64_t x = 0;
	size_t i;

	if (n == 0)
		return fail(p, HTTPP_E_BAD_REQUEST);
	for (i = 0; i < n; i++) {
		unsigned d = (unsigned char)v[i] - '0';

		if (d > 9)
			return fail(p, HTTPP_E_BAD_REQUEST);
		if (x > ((uint64_t)INT64_MAX - d) / 10)
			return fail(p, HTTPP_E_BAD_REQUEST);
		x = x * 10 + d;
	}
	if ((p->flags & F_CL) && x != p->content_length)
		return fail(p, HTTPP_E_BAD_REQUEST);
	p->flags |= F_CL;
	p->content_length = x;
	return HTTPP_AGAIN;
}

static int
field_transfer_encoding(struct httpp *p, const char *v, size_t n)
{
	size_t pos = 0, es, el;

	p->flags |= F_TE;
	while (next_elem(v, n, &pos, &es, &el)) {
		if (el == 0)
			return fail(p, HTTPP_E_BAD_REQUEST);
		if (httpp_ieq(v + es, el, "chunked")) {
			if (p->flags & F_TE_CHUNKED)
				return fail(p, HTTPP_E_BAD_REQUEST);
			p->flags |= F_TE_CHUNKED | F_TE_LAST_CK;
		} else {
			p->flags |= F_TE_OTHER;
			p->flags &= ~F_TE_LAST_CK;
		}
	}
	return HTTPP_AGAIN;
}

static void
field_connection(struct httpp *p, const char *v, size_t n)
{
	size_t pos = 0, es, el;

	while (next_elem(v, n, &pos, &es, &el)) {
		if (httpp_ieq(v + es, el, "close"))
			p->flags |= F_CONN_CLOSE;
		else if (httpp_ieq(v + es, el, "keep-alive"))
			p->flags |= F_CONN_KA;
	}
}

static int
parse_field(struct httpp *p, const char *buf, size_t ls, size_t n)
{
	const unsigned char *s = (const unsigned char *)buf + ls;
	size_t nlen, vs, ve;
	const char *name = buf + ls, *v;
	struct httpp_field *f;

	if (check_field(s, n, &nlen, &vs, &ve) != 0)
		return fail(p, HTTPP_E_BAD_REQUEST);
	if (p->nfields >= HTTPP_MAX_FIELDS)
		return fail(p, HTTPP_E_HEAD_TOO_LARGE);
	f = &p->fields[p->nfields++];
	f->name = span(ls, nlen);
	f->value = span(ls + vs, ve - vs);
	v = buf + ls + vs;

	switch (nlen) {
	case 4:
		if (httpp_ieq(name, nlen, "host") && ++p->nhost > 1)
			return fail(p, HTTPP_E_BAD_REQUEST);
		break;
	case 6:
		if (httpp_ieq(name, nlen, "expect") &&
		    httpp_ieq(v, ve - vs, "100-continue"))
			p->expect_continue = 1;
		break;
	case 10:
		if (httpp_ieq(name, nlen, "connection"))
			field_connection(p, v, ve - vs);
		break;
	case 14:
		if (httpp_ieq(name, nlen, "content-length"))
			return field_content_length(p, v, ve - vs);
		break;
	case 17:
		if (httpp_ieq(name, nlen, "transfer-encoding"))
			return field_transfer_encoding(p, v, ve - vs);
		break;
	}
	return HTTPP_AGAIN;
}

/* finish_head - framing and connection rules once all fields are in. */
static int
finish_head(struct httpp *p)
{
	if (p->version == 11 && p->nhost != 1)
		return fail(p, HTTPP_E_BAD_REQUEST);
	if (p->flags & F_TE) {
		if (p->version == 10 || (p->flags & F_CL) ||
		    !(p->flags & F_TE_LAST_CK))
			return fail(p, HTTPP_E_BAD_REQUEST);
		if (p->flags & F_TE_OTHER)
			return fail(p, HTTPP_E_NOT_IMPLEMENTED);
		p->body = HTTPP_BODY_CHUNKED;
	} else if ((p->flags & F_CL) && p->content_length > 0) {
		p->body = HTTPP_BODY_LENGTH;
	}
	if (p->version == 11)
		p->keep_alive = !(p->flags & F_CONN_CLOSE);
	else
		p->keep_alive =
		    (p->flags & F_CONN_KA) && !(p->flags & F_CONN_CLOSE);
	if (p->version == 10)
		p->expect_continue = 0;
	p->state = ST_HEAD_DONE;
	return HTTPP_DONE;
}

int
httpp_head(struct httpp *p, const char *buf, size_t len)
{
	if (p->state == ST_ERROR)
		return HTTPP_ERROR;
	if (p->state != ST_REQLINE && p->state != ST_FIELDS)
		return HTTPP_DONE;
	for (;;) {
		const char *lf = NULL;
		size_t end, ls, n;
		enum httpp_err big = p->state == ST_REQLINE
		    ? HTTPP_E_URI_TOO_LONG
		    : HTTPP_E_HEAD_TOO_LARGE;
		int rc;

		if (p->scan < len)
			lf = memchr(buf + p->scan, '\n', len - p->scan);
		if (lf == NULL) {
			p->scan = len;
			/* the line will end at or after max_head + 1 */
			if (len >= p->max_head)
				return fail(p, big);
			return HTTPP_AGAIN;
		}
		end = (size_t)(lf - buf) + 1;
		if (end > p->max_head)
			return fail(p, big);
		ls = p->line;
		if (end - ls < 2 || buf[end - 2] != '\r')
			return fail(p, HTTPP_E_BAD_REQUEST);
		n = end - 2 - ls;
		p->line = p->scan = end;
		if (p->state == ST_REQLINE) {
			/* a few empty lines may precede a request (RFC 9112
			 * 2.2); a stream of them is not a client */
			if (n == 0 && ++p->empty_lines > HTTPP_MAX_EMPTY_LINES)
				return fail(p, HTTPP_E_BAD_REQUEST);
			if (n == 0)
				continue;
			if ((rc = parse_reqline(p, buf, ls, n)) != HTTPP_AGAIN)
				return rc;
			p->state = ST_FIELDS;
		} else if (n == 0) {
			p->head_len = end;
			return finish_head(p);
		} else if ((rc = parse_field(p, buf, ls, n)) != HTTPP_AGAIN) {
			return rc;
		}
	}
}

/* chunk_size_line - "1*HEXDIG [ BWS ; chunk-ext ]"; the size in *size. */
static int
chunk_size_line(const unsigned char *s, size_t n, uint64_t *size)
{
	uint64_t x = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned c = s[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			d = (c | 0x20) - 'a' + 10;
		else
			break;
		if (x > ((uint64_t)INT64_MAX >> 4))
			return -1;
		x = x << 4 | d;
	}
	if (i == 0)
		return -1;
	while (i < n && is_ows(s[i]))
		i++;
	if (i < n) {
		/* extensions are ignored, but must be printable */
		if (s[i] != ';')
			return -1;
		for (i++; i < n; i++) {
			if (!is_field_char(s[i]))
				return -1;
		}
	}
	*size = x;
	return 0;
}

/* dechunk - decode what is available; the caller compacts. */
static int
dechunk(struct httpp *p, char *buf, size_t len, uint64_t limit)
{
	for (;;) {
		switch (p->state) {
		case CK_SIZE:
		case CK_TRAILER: {
			size_t room, end, n, ls = p->raw, nl, vs, ve;
			const char *lf = NULL;
			enum httpp_err big;
			uint64_t size;

			if (p->state == CK_SIZE) {
				room = HTTPP_MAX_CHUNK_LINE;
				big = HTTPP_E_BAD_REQUEST;
			} else {
				room = p->max_head - p->head_len -
				    p->trailer_bytes;
				big = HTTPP_E_HEAD_TOO_LARGE;
			}
			if (p->scan < len)
				lf =
				    memchr(buf + p->scan, '\n', len - p->scan);
			if (lf == NULL) {
				p->scan = len;
				if (len - ls >= room)
					return fail(p, big);
				return HTTPP_AGAIN;
			}
			end = (size_t)(lf - buf) + 1;
			if (end - ls > room)
				return fail(p, big);
			if (end - ls < 2 || buf[end - 2] != '\r')
				return fail(p, HTTPP_E_BAD_REQUEST);
			n = end - 2 - ls;
			p->raw = p->scan = end;
			if (p->state == CK_TRAILER) {
				p->trailer_bytes += end - ls;
				if (n == 0) {
					p->state = ST_DONE;
					return HTTPP_DONE;
				}
				if (check_field(
				        (const unsigned char *)buf + ls, n,
				        &nl, &vs, &ve) != 0)
					return fail(p, HTTPP_E_BAD_REQUEST);
				break;
			}
			if (chunk_size_line((const unsigned char *)buf + ls, n,
			        &size) != 0)
				return fail(p, HTTPP_E_BAD_REQUEST);
			if (size == 0) {
				p->state = CK_TRAILER;
			} else {
				if (size > limit - p->body_len)
					return fail(p, HTTPP_E_BODY_TOO_LARGE);
				p->chunk_left = size;
				p->state = CK_DATA;
			}
			break;
		}
		case CK_DATA: {
			size_t k = len - p->raw;
			size_t dst = p->head_len + p->body_len;

			if (k == 0)
				return HTTPP_AGAIN;
			if (k > p->chunk_left)
				k = (size_t)p->chunk_left;
			if (dst != p->raw)
				memmove(buf + dst, buf + p->raw, k);
			p->body_len += k;
			p->raw += k;
			p->chunk_left -= k;
			if (p->chunk_left == 0)
				p->state = CK_DATA_END;
			break;
		}
		case CK_DATA_END:
			if (len - p->raw < 2)
				return HTTPP_AGAIN;
			if (buf[p->raw] != '\r' || buf[p->raw + 1] != '\n')
				return fail(p, HTTPP_E_BAD_REQUEST);
			p->raw += 2;
			p->scan = p->raw;
			p->state = CK_SIZE;
			break;
		default:
			return fail(p, HTTPP_E_BAD_REQUEST);
		}
	}
}

int
httpp_body(struct httpp *p, char *buf, size_t *lenp, uint64_t limit)
{
	size_t len = *lenp, dst;
	int rc;

	if (p->state == ST_ERROR)
		return HTTPP_ERROR;
	if (p->state == ST_DONE)
		return HTTPP_DONE;
	if (p->state < ST_HEAD_DONE)
		return fail(p, HTTPP_E_BAD_REQUEST); /* misuse: no head */
	if (p->state == ST_HEAD_DONE) {
		switch (p->body) {
		case HTTPP_BODY_NONE:
			p->consumed = p->head_len;
			p->state = ST_DONE;
			return HTTPP_DONE;
		case HTTPP_BODY_LENGTH:
			if (p->content_length > limit)
				return fail(p, HTTPP_E_BODY_TOO_LARGE);
			break;
		case HTTPP_BODY_CHUNKED:
			p->raw = p->scan = p->head_len;
			p->state = CK_SIZE;
			break;
		}
	}
	if (p->body == HTTPP_BODY_LENGTH) {
		/* content_length <= limit was checked above */
		if (len - p->head_len < p->content_length)
			return HTTPP_AGAIN;
		p->body_len = (size_t)p->content_length;
		p->consumed = p->head_len + p->body_len;
		p->state = ST_DONE;
		return HTTPP_DONE;
	}
	rc = dechunk(p, buf, len, limit);
	if (rc == HTTPP_ERROR)
		return rc;
	/* close the gap left by chunk framing */
	dst = p->head_len + p->body_len;
	if (p->raw > dst) {
		size_t delta = p->raw - dst;

		memmove(buf + dst, buf + p->raw, len - p->raw);
		len -= delta;
		p->raw -= delta;
		p->scan -= delta;
		*lenp = len;
	}
	if (rc == HTTPP_DONE)
		p->consumed = dst;
	return rc;
}

const char *
httpp_field(
    const struct httpp *p, const char *buf, const char *name, size_t *vlen)
{
	unsigned i;

	for (i = 0; i < p->nfields; i++) {
		const struct httpp_field *f = &p->fields[i];

		if (httpp_ieq(buf + f->name.off, f->name.len, name)) {
			if (vlen != NULL)
				*vlen = f->value.len;
			return buf + f->value.off;
		}
	}
	return NULL;
}

int
httpp_err_status(enum httpp_err e)
{
	switch (e) {
#define HTTPP_ERR_STATUS(name, status)                                        \
	case HTTPP_E_##name:                                                  \
		return status;
		HTTPP_ERRORS(HTTPP_ERR_STATUS)
#undef HTTPP_ERR_STATUS
	}
	return 500;
}

const char *
httpp_err_name(enum httpp_err e)
{
	switch (e) {
#define HTTPP_ERR_NAME(name, status)                                          \
	case HTTPP_E_##name:                                                  \
		return #name;
		HTTPP_ERRORS(HTTPP_ERR_NAME)
#undef HTTPP_ERR_NAME
	}
	return "UNKNOWN";
}
