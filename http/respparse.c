/*
 * respparse - see respparse.h.  The head is line-oriented (a line is
 * examined when its LF has arrived); the body is a byte-level state
 * machine, so framing never needs earlier bytes kept.
 */
#include "http/respparse.h"

#include "http/parser.h"

#include <string.h>

enum {
	ST_STATUS,    /* status line (after optional empty lines) */
	ST_FIELDS,    /* header fields */
	ST_HEAD_DONE, /* head parsed; body not started */
	ST_LENGTH,    /* Content-Length data */
	ST_CLOSE,     /* close-delimited data */
	CK_SIZE0,     /* first hex digit of a chunk size */
	CK_SIZE,      /* further hex digits */
	CK_EXT,       /* after the size: BWS, extensions */
	CK_SIZE_LF,   /* CR seen at the end of the size line */
	CK_DATA,      /* chunk data */
	CK_DATA_CR,   /* CR LF after chunk data */
	CK_DATA_LF,   /* LF after chunk data's CR */
	CK_TR_START,  /* start of a trailer line (or the final empty line) */
	CK_TR_LINE,   /* inside a trailer line */
	CK_TR_LF,     /* CR seen inside/at the end of a trailer line */
	CK_END_LF,    /* CR of the final empty line seen */
	ST_DONE,
	ST_ERROR,
};

/* flags */
#define F_CL         0x01u /* Content-Length seen */
#define F_TE         0x02u /* Transfer-Encoding seen */
#define F_TE_LAST_CK 0x04u /* the last coding so far is chunked */
#define F_CONN_CLOSE 0x08u
#define F_CONN_KA    0x10u
#define F_TR_EMPTY   0x20u /* trailer line: nothing before its CR */


static int
fail(struct httpr *p, enum httpr_err e)
{
	p->err = e;
	p->state = ST_ERROR;
	return HTTPR_ERROR;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}


/* field value characters: VCHAR, obs-text, SP, HTAB */
static int
is_vchar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int
is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (unsigned char)lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void
httpr_init(struct httpr *p, size_t max_head, int head_request)
{
	memset(p, 0, sizeof(*p));
	p->max_head = max_head;
	p->head_request = head_request;
	p->state = ST_STATUS;
}

static struct httpr_span
span(size_t off, size_t len)
{
	struct httpr_span s = { (uint32_t)off, (uint32_t)len };
	return s;
}

/* parse_status - "HTTP/1.d SP 3DIGIT [SP reason]" in buf[ls..ls+n). */
static int
parse_status(struct httpr *p, const char *buf, size_t ls, size_t n)
{
	const unsigned char *s = (const unsigned char *)buf + ls;
	size_t i;

	if (n < 12 || memcmp(s, "HTTP/", 5) != 0)
		return fail(p, HTTPR_E_STATUS_LINE);
	if (s[5] < '0' || s[5] > '9' || s[6] != '.' || s[7] < '0' ||
	    s[7] > '9')
		return fail(p, HTTPR_E_STATUS_LINE);
	if (s[5] != '1')
		return fail(p, HTTPR_E_VERSION);
	p->version = s[7] == '0' ? 10 : 11;
	if (s[8] != ' ')
		return fail(p, HTTPR_E_STATUS_LINE);
	for (i = 9; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return fail(p, HTTPR_E_STATUS_LINE);
	p->status = (unsigned)(s[9] - '0') * 100 +
	    (unsigned)(s[10] - '0') * 10 + (unsigned)(s[11] - '0');
	if (p->status < 100)
		return fail(p, HTTPR_E_STATUS_LINE);
	if (n == 12) {
		p->reason = span(ls + 12, 0);
		return 0;
	}
	if (s[12] != ' ')
		return fail(p, HTTPR_E_STATUS_LINE);
	for (i = 13; i < n; i++)
		if (!is_vchar(s[i]))
			return fail(p, HTTPR_E_STATUS_LINE);
	p->reason = span(ls + 13, n - 13);
	return 0;
}

/* next_elem - the next element of a comma list in v[*pos..n), OWS
 * trimmed; 0 at the end of the list. */
static int
next_elem(const char *v, size_t n, size_t *pos, size_t *es, size_t *el)
{
	size_t i = *pos, s, e;

	if (i >= n)
		return 0;
	while (i < n && (v[i] == ',' || is_ows((unsigned char)v[i])))
		i++;
	if (i >= n) {
		*pos = n;
		return 0;
	}
	s = i;
	while (i < n && v[i] != ',')
		i++;
	e = i;
	while (e > s && is_ows((unsigned char)v[e - 1]))
		e--;
	*pos = i;
	*es = s;
	*el = e - s;
	return 1;
}

static int
field_content_length(struct httpr *p, const char *v, size_t n)
{
	size_t pos = 0, es, el, i;
	uint64_t x;
	int any = 0;

	while (next_elem(v, n, &pos, &es, &el)) {
		x = 0;
		if (el == 0)
			return fail(p, HTTPR_E_FRAMING);
		for (i = 0; i < el; i++) {
			unsigned char c = (unsigned char)v[es + i];
			if (c < '0' || c > '9')
				return fail(p, HTTPR_E_FRAMING);
			if (x >
			    ((uint64_t)INT64_MAX - (uint64_t)(c - '0')) / 10)
				return fail(p, HTTPR_E_FRAMING);
			x = x * 10 + (c - '0');
		}
		if ((p->flags & F_CL) && x != p->content_length)
			return fail(p, HTTPR_E_FRAMING);
		p->flags |= F_CL;
		p->content_length = x;
		any = 1;
	}
	if (!any)
		return fail(p, HTTPR_E_FRAMING);
	return 0;
}

static int
field_transfer_encoding(struct httpr *p, const char *v, size_t n)
{
	size_t pos = 0, es, el, k;

	p->flags |= F_TE;
	while (next_elem(v, n, &pos, &es, &el)) {
		/* a coding may carry parameters: compare the name only */
		for (k = 0; k < el && httpp_tchar[(unsigned char)v[es + k]]; k++)
			;
		if (k == 0)
			return fail(p, HTTPR_E_FRAMING);
		if (p->flags & F_TE_LAST_CK) /* something after chunked */
			return fail(p, HTTPR_E_FRAMING);
		if (httpp_ieq(v + es, k, "chunked"))
			p->flags |= F_TE_LAST_CK;
	}
	return 0;
}

static void
field_connection(struct httpr *p, const char *v, size_t n)
{
	size_t pos = 0, es, el;

	while (next_elem(v, n, &pos, &es, &el)) {
		if (httpp_ieq(v + es, el, "close"))
			p->flags |= F_CONN_CLOSE;
		else if (httpp_ieq(v + es, el, "keep-alive"))
			p->flags |= F_CONN_KA;
	}
}

/* parse_field - one "name: value" line in buf[ls..ls+n). */
static int
parse_field(struct httpr *p, const char *buf, size_t ls, size_t n)
{
	const unsigned char *s = (const unsigned char *)buf + ls;
	size_t i, vs, ve;
	struct httpr_field *f;

	for (i = 0; i < n && httpp_tchar[s[i]]; i++)
		;
	if (i == 0 || i == n || s[i] != ':')
		return fail(p, HTTPR_E_FIELD);
	for (vs = i + 1; vs < n; vs++)
		if (!is_vchar(s[vs]))
			return fail(p, HTTPR_E_FIELD);
	vs = i + 1;
	while (vs < n && is_ows(s[vs]))
		vs++;
	ve = n;
	while (ve > vs && is_ows(s[ve - 1]))
		ve--;
	if (p->nfields == HTTPR_MAX_FIELDS)
		return fail(p, HTTPR_E_TOO_MANY_FIELDS);
	f = &p->fields[p->nfields++];
	f->name = span(ls, i);
	f->value = span(ls + vs, ve - vs);
	if (httpp_ieq((const char *)s, i, "content-length"))
		return field_content_length(p, (const char *)s + vs, ve - vs);
	if (httpp_ieq((const char *)s, i, "transfer-encoding"))
		return field_transfer_encoding(
		    p, (const char *)s + vs, ve - vs);
	if (httpp_ieq((const char *)s, i, "connection"))
		field_connection(p, (const char *)s + vs, ve - vs);
	return 0;
}

/* finish_head - framing and persistence (RFC 9112 6.3, 9.3). */
static void
finish_head(struct httpr *p)
{
	if (p->version >= 11)
		p->keep_alive = !(p->flags & F_CONN_CLOSE);
	else
		p->keep_alive =
		    (p->flags & F_CONN_KA) && !(p->flags & F_CONN_CLOSE);
	if (p->head_request || p->status < 200 || p->status == 204 ||
	    p->status == 304) {
		p->body = HTTPR_BODY_NONE;
		p->content_length = 0;
	} else if (p->flags & F_TE) {
		if (p->flags & F_TE_LAST_CK) {
			p->body = HTTPR_BODY_CHUNKED;
		} else {
			p->body = HTTPR_BODY_CLOSE;
			p->keep_alive = 0;
		}
		if ((p->flags & F_CL) || p->version < 11)
			p->keep_alive = 0;
		p->content_length = 0;
	} else if (p->flags & F_CL) {
		p->body = p->content_length > 0 ? HTTPR_BODY_LENGTH
		                                : HTTPR_BODY_NONE;
	} else {
		p->body = HTTPR_BODY_CLOSE;
		p->keep_alive = 0;
	}
	p->state = ST_HEAD_DONE;
}

int
httpr_head(struct httpr *p, const char *buf, size_t len)
{
	const char *lf;
	size_t end, le, n;

	if (p->state == ST_ERROR)
		return HTTPR_ERROR;
	if (p->state != ST_STATUS && p->state != ST_FIELDS)
		return HTTPR_DONE;
	for (;;) {
		if (p->scan < len)
			lf = memchr(buf + p->scan, '\n', len - p->scan);
		else
			lf = NULL;
		if (lf == NULL) {
			p->scan = len;
			if (len > p->max_head)
				return fail(p, HTTPR_E_HEAD_TOO_LARGE);
			return HTTPR_AGAIN;
		}
		end = (size_t)(lf - buf);
		if (end + 1 > p->max_head)
			return fail(p, HTTPR_E_HEAD_TOO_LARGE);
		le = end;
		if (le > p->line && buf[le - 1] == '\r')
			le--;
		n = le - p->line;
		if (memchr(buf + p->line, '\r', n) != NULL) /* bare CR */
			return fail(p,
			    p->state == ST_STATUS ? HTTPR_E_STATUS_LINE
			                          : HTTPR_E_FIELD);
		if (p->state == ST_STATUS) {
			if (n > 0) {
				if (parse_status(p, buf, p->line, n) < 0)
					return HTTPR_ERROR;
				p->state = ST_FIELDS;
			}
		} else if (n == 0) {
			p->head_len = end + 1;
			finish_head(p);
			return HTTPR_DONE;
		} else if (is_ows((unsigned char)buf[p->line])) {
			return fail(p, HTTPR_E_FIELD); /* obs-fold */
		} else if (parse_field(p, buf, p->line, n) < 0) {
			return HTTPR_ERROR;
		}
		p->line = p->scan = end + 1;
	}
}

/* body_start - the first call of httpr_body: pick the state. */
static int
body_start(struct httpr *p, uint64_t limit)
{
	switch (p->body) {
	case HTTPR_BODY_NONE:
		p->state = ST_DONE;
		break;
	case HTTPR_BODY_LENGTH:
		if (p->content_length > limit)
			return fail(p, HTTPR_E_BODY_TOO_LARGE);
		p->left = p->content_length;
		p->state = ST_LENGTH;
		break;
	case HTTPR_BODY_CHUNKED:
		p->state = CK_SIZE0;
		break;
	case HTTPR_BODY_CLOSE:
		p->state = ST_CLOSE;
		break;
	}
	return 0;
}

/* chunk_line_byte - count a byte of a chunk line against its limit. */
static int
chunk_line_byte(struct httpr *p)
{
	if (++p->linelen > HTTPR_MAX_CHUNK_LINE)
		return fail(p, HTTPR_E_CHUNK);
	return 0;
}

/* trailer_byte - count a trailer byte against the head limit. */
static int
trailer_byte(struct httpr *p)
{
	if (++p->linelen > p->max_head)
		return fail(p, HTTPR_E_HEAD_TOO_LARGE);
	return 0;
}

/* size_line_end - the chunk-size line is complete. */
static int
size_line_end(struct httpr *p, uint64_t limit)
{
	p->linelen = 0;
	if (p->left == 0) {
		p->state = CK_TR_START;
		return 0;
	}
	if (p->left > limit - p->body_bytes)
		return fail(p, HTTPR_E_BODY_TOO_LARGE);
	p->state = CK_DATA;
	return 0;
}

int
httpr_body(struct httpr *p, const char *in, size_t len, uint64_t limit,
    size_t *used, size_t *doff, size_t *dlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, n;
	int h;

	*used = 0;
	*doff = 0;
	*dlen = 0;
	if (p->state == ST_ERROR)
		return HTTPR_ERROR;
	if (p->state == ST_HEAD_DONE && body_start(p, limit) < 0)
		return HTTPR_ERROR;
	while (p->state != ST_DONE) {
		if (p->state == ST_LENGTH || p->state == CK_DATA ||
		    p->state == ST_CLOSE) {
			if (i == len)
				break;
			n = len - i;
			if (p->state == ST_CLOSE) {
				/* up to the limit, then the error */
				if (p->body_bytes == limit)
					return fail(p, HTTPR_E_BODY_TOO_LARGE);
				if (n > limit - p->body_bytes)
					n = (size_t)(limit - p->body_bytes);
			} else if (n > p->left) {
				n = (size_t)p->left;
			}
			*doff = i;
			*dlen = n;
			i += n;
			p->body_bytes += n;
			if (p->state != ST_CLOSE)
				p->left -= n;
			if (p->state == ST_LENGTH && p->left == 0)
				p->state = ST_DONE;
			else if (p->state == CK_DATA && p->left == 0)
				p->state = CK_DATA_CR;
			break; /* one data span per call */
		}
		if (i == len)
			break;
		switch (p->state) {
		case CK_SIZE0:
			if ((h = hexval(s[i])) < 0)
				return fail(p, HTTPR_E_CHUNK);
			p->left = (uint64_t)h;
			p->ndigits = 1;
			p->linelen = 1;
			p->state = CK_SIZE;
			break;
		case CK_SIZE:
			if (chunk_line_byte(p) < 0)
				return HTTPR_ERROR;
			if ((h = hexval(s[i])) >= 0) {
				if (++p->ndigits > 15) /* < 2^60 */
					return fail(p, HTTPR_E_CHUNK);
				p->left = p->left * 16 + (uint64_t)h;
			} else if (s[i] == ';' || is_ows(s[i])) {
				p->state = CK_EXT;
			} else if (s[i] == '\r') {
				p->state = CK_SIZE_LF;
			} else if (s[i] == '\n') {
				if (size_line_end(p, limit) < 0)
					return HTTPR_ERROR;
			} else {
				return fail(p, HTTPR_E_CHUNK);
			}
			break;
		case CK_EXT:
			if (chunk_line_byte(p) < 0)
				return HTTPR_ERROR;
			if (s[i] == '\r') {
				p->state = CK_SIZE_LF;
			} else if (s[i] == '\n') {
				if (size_line_end(p, limit) < 0)
					return HTTPR_ERROR;
			} else if (!is_vchar(s[i])) {
				return fail(p, HTTPR_E_CHUNK);
			}
			break;
		case CK_SIZE_LF:
			if (s[i] != '\n')
				return fail(p, HTTPR_E_CHUNK);
			if (size_line_end(p, limit) < 0)
				return HTTPR_ERROR;
			break;
		case CK_DATA_CR:
			if (s[i] == '\r')
				p->state = CK_DATA_LF;
			else if (s[i] == '\n')
				p->state = CK_SIZE0;
			else
				return fail(p, HTTPR_E_CHUNK);
			break;
		case CK_DATA_LF:
			if (s[i] != '\n')
				return fail(p, HTTPR_E_CHUNK);
			p->state = CK_SIZE0;
			break;
		case CK_TR_START:
			if (s[i] == '\r') {
				p->flags |= F_TR_EMPTY;
				p->state = CK_TR_LF;
			} else if (s[i] == '\n') {
				p->state = ST_DONE;
			} else if (!httpp_tchar[s[i]]) { /* a field name starts */
				return fail(p, HTTPR_E_CHUNK);
			} else {
				p->flags &= ~F_TR_EMPTY;
				p->state = CK_TR_LINE;
			}
			if (trailer_byte(p) < 0)
				return HTTPR_ERROR;
			break;
		case CK_TR_LINE:
			if (trailer_byte(p) < 0)
				return HTTPR_ERROR;
			if (s[i] == '\r')
				p->state = CK_TR_LF;
			else if (s[i] == '\n')
				p->state = CK_TR_START;
			else if (!is_vchar(s[i]))
				return fail(p, HTTPR_E_CHUNK);
			break;
		case CK_TR_LF:
			if (trailer_byte(p) < 0)
				return HTTPR_ERROR;
			if (s[i] != '\n')
				return fail(p, HTTPR_E_CHUNK);
			p->state =
			    (p->flags & F_TR_EMPTY) ? ST_DONE : CK_TR_START;
			break;
		default:
			return fail(p, HTTPR_E_CHUNK);
		}
		i++;
	}
	*used = i;
	return p->state == ST_DONE ? HTTPR_DONE : HTTPR_AGAIN;
}

int
httpr_eof(struct httpr *p)
{
	if (p->state == ST_ERROR)
		return HTTPR_ERROR;
	if (p->state == ST_DONE || p->state == ST_CLOSE ||
	    (p->state == ST_HEAD_DONE &&
	        (p->body == HTTPR_BODY_NONE || p->body == HTTPR_BODY_CLOSE))) {
		p->state = ST_DONE;
		return HTTPR_DONE;
	}
	return fail(p, HTTPR_E_TRUNCATED);
}

const char *
httpr_field(
    const struct httpr *p, const char *buf, const char *name, size_t *vlen)
{
	unsigned i;

	for (i = 0; i < p->nfields; i++) {
		const struct httpr_field *f = &p->fields[i];
		if (httpp_ieq(buf + f->name.off, f->name.len, name)) {
			if (vlen != NULL)
				*vlen = f->value.len;
			return buf + f->value.off;
		}
	}
	return NULL;
}

const char *
httpr_err_text(enum httpr_err e)
{
	switch (e) {
#define HTTPR_ERR_TEXT(name, text)                                            \
	case HTTPR_E_##name:                                                  \
		return text;
		HTTPR_ERRORS(HTTPR_ERR_TEXT)
#undef HTTPR_ERR_TEXT
	}
	return "unknown error";
}
