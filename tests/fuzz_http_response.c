/* fuzz-sources: http/respparse.c http/parser.c */
/*
 * fuzz_http_response - libFuzzer target for http/respparse.c (built by
 * tests/fuzz.sh, not by make).  The first two input bytes choose HEAD or
 * not, the head limit, the body limit and a piece size; the rest is a
 * byte stream of responses on one keep-alive connection, parsed fed whole
 * and fed in pieces, then ended with httpr_eof.  Invariants: views stay
 * inside the head, every span inside its input, HTTPR_AGAIN with input
 * consumes some, body_bytes counts what was delivered, and both feedings
 * give the same results and the same body bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/respparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                              \
	do {                                                                  \
		if (!(x))                                                     \
			abort();                                              \
	} while (0)

#define MAX_RESP 8

struct trace {
	int nresp;
	int head_rc[MAX_RESP], body_rc[MAX_RESP], eof_rc;
	enum httpr_err err[MAX_RESP];
	unsigned status[MAX_RESP], nfields[MAX_RESP];
	int keep_alive[MAX_RESP], body[MAX_RESP];
	size_t head_len[MAX_RESP];
	uint64_t body_bytes[MAX_RESP];
	uint8_t *out;
	size_t outlen;
};

static void
check_head(const struct httpr *p, size_t have)
{
	unsigned i;

	CHECK(p->head_len <= have && p->head_len <= p->max_head);
	CHECK(p->nfields <= HTTPR_MAX_FIELDS);
	CHECK(p->reason.off + p->reason.len <= p->head_len);
	for (i = 0; i < p->nfields; i++) {
		CHECK(p->fields[i].name.off + p->fields[i].name.len <
		    p->head_len);
		CHECK(p->fields[i].value.off + p->fields[i].value.len <
		    p->head_len);
	}
	CHECK(p->status >= 100 && p->status <= 999);
}

/* run - parse the responses in d[0..n), pieces of step bytes (0: whole) */
static void
run(const uint8_t *d, size_t n, size_t step, int head_req, size_t max_head,
    uint64_t limit, struct trace *t)
{
	const char *buf;
	size_t pos = 0, avail, have, off, end, used, doff, dlen;
	uint64_t got;
	struct httpr p;
	int rc = HTTPR_DONE, k;

	t->nresp = 0;
	t->outlen = 0;
	t->eof_rc = 99;
	for (k = 0; k < MAX_RESP && pos < n; k++) {
		buf = (const char *)d + pos;
		avail = n - pos;
		httpr_init(&p, max_head, head_req);
		have = step ? (step < avail ? step : avail) : avail;
		for (;;) {
			rc = httpr_head(&p, buf, have);
			if (rc != HTTPR_AGAIN || have == avail)
				break;
			have = have + step < avail ? have + step : avail;
		}
		t->nresp++;
		t->head_rc[k] = rc;
		t->body_rc[k] = 99;
		t->err[k] = p.err;
		t->status[k] = rc == HTTPR_DONE ? p.status : 0;
		t->nfields[k] = rc == HTTPR_DONE ? p.nfields : 0;
		t->keep_alive[k] = rc == HTTPR_DONE ? p.keep_alive : 0;
		t->body[k] = rc == HTTPR_DONE ? (int)p.body : -1;
		t->head_len[k] = rc == HTTPR_DONE ? p.head_len : 0;
		t->body_bytes[k] = 0;
		if (rc != HTTPR_DONE)
			return;
		check_head(&p, have);
		off = p.head_len;
		got = 0;
		for (;;) {
			end = step ? (off + step < avail ? off + step : avail)
			           : avail;
			rc = httpr_body(&p, buf + off, end - off, limit, &used,
			    &doff, &dlen);
			CHECK(used <= end - off);
			if (dlen > 0) {
				CHECK(doff + dlen <= used);
				memcpy(t->out + t->outlen, buf + off + doff,
				    dlen);
				t->outlen += dlen;
				got += dlen;
			}
			if (rc == HTTPR_AGAIN && end > off)
				CHECK(used > 0);
			off += used;
			if (rc != HTTPR_AGAIN || off == avail)
				break;
		}
		CHECK(p.body_bytes == got);
		CHECK(got <= limit);
		t->body_rc[k] = rc;
		t->err[k] = p.err;
		t->body_bytes[k] = got;
		if (rc == HTTPR_AGAIN) { /* the input ends: the peer closes */
			t->eof_rc = httpr_eof(&p);
			CHECK(t->eof_rc == HTTPR_DONE ||
			    p.err == HTTPR_E_TRUNCATED);
			t->err[k] = p.err;
			return;
		}
		if (rc != HTTPR_DONE)
			return;
		CHECK(p.body != HTTPR_BODY_LENGTH || got == p.content_length);
		pos += off;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t heads[] = { 65536, 256, 48, 4096 };
	static const uint64_t limits[] = { UINT64_MAX, 0, 7, 1000 };
	struct trace a, b;
	size_t step;
	int head_req, i;

	if (size < 2)
		return 0;
	head_req = data[0] & 1;
	step = (size_t)(data[1] % 17); /* 0: whole */
	a.out = malloc(size);
	b.out = malloc(size);
	CHECK(a.out != NULL && b.out != NULL);
	run(data + 2, size - 2, 0, head_req, heads[(data[0] >> 1) & 3],
	    limits[(data[0] >> 3) & 3], &a);
	run(data + 2, size - 2, step ? step : 1, head_req,
	    heads[(data[0] >> 1) & 3], limits[(data[0] >> 3) & 3], &b);
	CHECK(a.nresp == b.nresp && a.eof_rc == b.eof_rc);
	for (i = 0; i < a.nresp; i++) {
		CHECK(a.head_rc[i] == b.head_rc[i]);
		CHECK(a.body_rc[i] == b.body_rc[i]);
		CHECK(a.err[i] == b.err[i]);
		CHECK(a.status[i] == b.status[i]);
		CHECK(a.nfields[i] == b.nfields[i]);
		CHECK(a.keep_alive[i] == b.keep_alive[i]);
		CHECK(a.body[i] == b.body[i]);
		CHECK(a.head_len[i] == b.head_len[i]);
		CHECK(a.body_bytes[i] == b.body_bytes[i]);
	}
	CHECK(a.outlen == b.outlen && memcmp(a.out, b.out, a.outlen) == 0);
	free(a.out);
	free(b.out);
	return 0;
}
