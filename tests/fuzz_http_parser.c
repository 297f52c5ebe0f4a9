/* fuzz-sources: http/parser.c */
/*
 * fuzz_http_parser - libFuzzer target for http/parser.c (built by
 * tests/fuzz.sh, not by make).  The first three input bytes choose the
 * head limit, the body limit and a split point; the rest is a byte stream
 * of pipelined requests, parsed whole and in two pieces.  Invariants:
 * views stay inside the head, the body inside the buffer, consumed <= len,
 * and both feedings give the same results.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                              \
	do {                                                                  \
		if (!(x))                                                     \
			abort();                                              \
	} while (0)

struct outcome {
	int rc;
	enum httpp_err err;
	size_t head_len, body_len, consumed, len;
	unsigned nfields;
	int keep_alive;
};

static void
check_views(const struct httpp *p, size_t len)
{
	unsigned i;

	CHECK(p->head_len <= len);
	CHECK(p->head_len <= p->max_head);
	CHECK(p->nfields <= HTTPP_MAX_FIELDS);
	CHECK((size_t)p->method.off + p->method.len <= p->head_len);
	CHECK((size_t)p->target.off + p->target.len <= p->head_len);
	CHECK((size_t)p->path.off + p->path.len <= p->head_len);
	CHECK((size_t)p->query.off + p->query.len <= p->head_len);
	CHECK(p->version == 10 || p->version == 11);
	for (i = 0; i < p->nfields; i++) {
		CHECK((size_t)p->fields[i].name.off + p->fields[i].name.len <=
		    p->head_len);
		CHECK(
		    (size_t)p->fields[i].value.off + p->fields[i].value.len <=
		    p->head_len);
	}
}

/* feed - parse buf (which holds `have` of the n input bytes, room for
 * all) as one request; appends the rest at `split`. */
static void
feed(const uint8_t *in, size_t n, size_t split, size_t max_head,
    uint64_t limit, char *buf, struct outcome *o, struct httpp *p)
{
	size_t len, pos;
	int rc = HTTPP_AGAIN, head_done = 0, round;

	httpp_init(p, max_head);
	memcpy(buf, in, split);
	len = pos = split;
	for (round = 0; round < 2; round++) {
		if (round == 1) {
			/* the rest arrives, whatever the state */
			memcpy(buf + len, in + pos, n - pos);
			len += n - pos;
			pos = n;
		}
		if (rc != HTTPP_AGAIN)
			continue;
		if (!head_done) {
			rc = httpp_head(p, buf, len);
			if (rc != HTTPP_DONE)
				continue;
			head_done = 1;
			check_views(p, len);
		}
		{
			size_t before = len;

			rc = httpp_body(p, buf, &len, limit);
			CHECK(len <= before);
		}
		if (rc == HTTPP_DONE) {
			CHECK(p->consumed <= len);
			CHECK(p->head_len + p->body_len == p->consumed);
			CHECK(p->body_len <= limit);
		}
	}
	if (rc == HTTPP_ERROR)
		CHECK(p->err != HTTPP_E_NONE);
	memset(o, 0, sizeof(*o));
	o->rc = rc;
	o->err = p->err;
	o->len = len;
	if (head_done) {
		o->head_len = p->head_len;
		o->nfields = p->nfields;
		o->keep_alive = p->keep_alive;
	}
	if (rc == HTTPP_DONE) {
		o->body_len = p->body_len;
		o->consumed = p->consumed;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct httpp *p1, *p2;
	struct outcome o1, o2;
	char *b1, *b2;
	size_t max_head, n, split, off = 0;
	uint64_t limit;
	int reqs;

	if (size < 3)
		return 0;
	max_head = 16 + (size_t)data[0] * 8;
	limit = (uint64_t)data[1] * 4;
	data += 3;
	n = size - 3;
	split = n ? data[-1] % (n + 1) : 0;
	p1 = malloc(sizeof(*p1));
	p2 = malloc(sizeof(*p2));
	b1 = malloc(n + 1);
	b2 = malloc(n + 1);
	CHECK(p1 && p2 && b1 && b2);

	/* pipelined requests: whole and split must agree, request by
	 * request */
	for (reqs = 0; reqs < 16 && off < n; reqs++) {
		size_t rest = n - off, sp = split < rest ? split : rest;

		feed(data + off, rest, rest, max_head, limit, b1, &o1, p1);
		feed(data + off, rest, sp, max_head, limit, b2, &o2, p2);
		CHECK(o1.rc == o2.rc);
		CHECK(o1.err == o2.err);
		CHECK(o1.head_len == o2.head_len);
		CHECK(o1.nfields == o2.nfields);
		CHECK(o1.keep_alive == o2.keep_alive);
		CHECK(o1.body_len == o2.body_len);
		CHECK(o1.consumed == o2.consumed);
		if (o1.rc != HTTPP_DONE)
			break;
		CHECK(o1.len == o2.len);
		CHECK(memcmp(b1, b2, o1.len) == 0);
		if (o1.consumed == 0)
			break;
		/* the raw bytes of this request: framing was removed in
		 * place, so the next request is at rest - (len - consumed) */
		off += rest - (o1.len - o1.consumed);
	}
	free(b1);
	free(b2);
	free(p1);
	free(p2);
	return 0;
}
