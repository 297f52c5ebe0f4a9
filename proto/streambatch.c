/*
 * streambatch - see streambatch.h.
 */
#include "proto/streambatch.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static void
put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = n; i-- > 0; v >>= 8)
		p[i] = (uint8_t)(v & 0xff);
}

static uint64_t
get_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int
sb_add(struct sb_writer *w, const struct sb_record *r, size_t max)
{
	size_t need = w->len + SB_HDR_LEN + r->len;
	uint8_t *p;

	if (need > max)
		return -1;
	if (need > w->cap) {
		w->cap = need > 2 * w->cap ? need : 2 * w->cap;
		w->buf = xrealloc(w->buf, w->cap);
	}
	p = w->buf + w->len;
	put_be(p, r->stream, 8);
	p[8] = r->kind;
	p[9] = 0;
	put_be(p + 10, r->status, 2);
	put_be(p + 12, r->aux, 4);
	put_be(p + 16, r->len, 4);
	if (r->len > 0)
		memcpy(p + SB_HDR_LEN, r->data, r->len);
	w->len = need;
	w->n++;
	return 0;
}

void
sb_reset(struct sb_writer *w)
{
	w->len = 0;
	w->n = 0;
}

void
sb_free(struct sb_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

int
sb_next(const void *buf, size_t len, size_t *pos, struct sb_record *r)
{
	const uint8_t *p = (const uint8_t *)buf + *pos;
	size_t left = len - *pos;

	if (*pos >= len)
		return 0;
	if (left < SB_HDR_LEN)
		return -1;
	r->stream = get_be(p, 8);
	r->kind = p[8];
	r->status = (uint16_t)get_be(p + 10, 2);
	r->aux = (uint32_t)get_be(p + 12, 4);
	r->len = (uint32_t)get_be(p + 16, 4);
	if (p[9] != 0 || r->kind < SB_HEAD || r->kind > SB_FAIL ||
	    r->len > left - SB_HDR_LEN)
		return -1;
	r->data = p + SB_HDR_LEN;
	*pos += SB_HDR_LEN + r->len;
	return 1;
}

int
sb_fail_split(const struct sb_record *r, char *code, size_t codelen,
    const char **msg, size_t *msglen)
{
	const char *d = r->data;
	const char *nul = memchr(d, '\0', r->len);
	size_t cl;

	if (r->kind != SB_FAIL || nul == NULL)
		return -1;
	cl = (size_t)(nul - d);
	if (cl == 0 || cl >= codelen)
		return -1;
	memcpy(code, d, cl);
	code[cl] = '\0';
	*msg = nul + 1;
	*msglen = r->len - cl - 1;
	if (memchr(*msg, '\0', *msglen) != NULL)
		return -1;
	return 0;
}
