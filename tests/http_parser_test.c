/*
 * http_parser_test - golden tests of the request parser: simple and
 * pipelined requests, Content-Length and chunked bodies (extensions,
 * trailers), connection rules, every error path, and the same results
 * whether a request is fed whole, byte by byte or in odd slices.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"
#include "testlib.h"

#define BUFSZ 65536

struct result {
	int rc;
	enum httpp_err err;
	char method[32], path[256], query[256];
	int has_query;
	unsigned version, nfields;
	int keep_alive, expect;
	enum httpp_body body_kind;
	char body[4096];
	size_t body_len, consumed, head_len;
};

static char buf[BUFSZ];

static void
copy_span(char *dst, size_t dsz, const char *b, struct httpp_span s)
{
	size_t n = s.len < dsz - 1 ? s.len : dsz - 1;

	memcpy(dst, b + s.off, n);
	dst[n] = '\0';
}

/* run - feed req in slices of step bytes (0: whole) through head and
 * body; fill res.  p is left for further inspection (buf holds data). */
static void
run(struct httpp *p, const char *req, size_t n, size_t max_head,
    uint64_t limit, size_t step, struct result *res)
{
	size_t len = 0, pos = 0;
	int head_done = 0, rc;

	memset(res, 0, sizeof(*res));
	httpp_init(p, max_head);
	for (;;) {
		size_t take = step ? step : n;

		if (take > n - pos)
			take = n - pos;
		ck_assert_uint_le(len + take, BUFSZ);
		memcpy(buf + len, req + pos, take);
		len += take;
		pos += take;
		if (!head_done) {
			rc = httpp_head(p, buf, len);
			if (rc == HTTPP_AGAIN && pos < n)
				continue;
			if (rc != HTTPP_DONE)
				break;
			head_done = 1;
		}
		rc = httpp_body(p, buf, &len, limit);
		ck_assert_uint_le(p->consumed, len);
		if (rc != HTTPP_AGAIN || pos == n)
			break;
	}
	res->rc = rc;
	res->err = p->err;
	if (!head_done)
		return;
	copy_span(res->method, sizeof(res->method), buf, p->method);
	copy_span(res->path, sizeof(res->path), buf, p->path);
	copy_span(res->query, sizeof(res->query), buf, p->query);
	res->has_query = p->has_query;
	res->version = p->version;
	res->nfields = p->nfields;
	res->keep_alive = p->keep_alive;
	res->expect = p->expect_continue;
	res->body_kind = p->body;
	res->head_len = p->head_len;
	if (rc == HTTPP_DONE) {
		ck_assert_uint_le(p->body_len, sizeof(res->body));
		memcpy(res->body, buf + p->head_len, p->body_len);
		res->body_len = p->body_len;
		res->consumed = p->consumed;
	}
}

static void
same(const struct result *a, const struct result *b)
{
	ck_assert_int_eq(a->rc, b->rc);
	ck_assert_int_eq(a->err, b->err);
	ck_assert_str_eq(a->method, b->method);
	ck_assert_str_eq(a->path, b->path);
	ck_assert_str_eq(a->query, b->query);
	ck_assert_uint_eq(a->version, b->version);
	ck_assert_uint_eq(a->nfields, b->nfields);
	ck_assert_int_eq(a->keep_alive, b->keep_alive);
	ck_assert_uint_eq(a->body_len, b->body_len);
	ck_assert(memcmp(a->body, b->body, a->body_len) == 0);
	ck_assert_uint_eq(a->consumed, b->consumed);
}

/* parse - whole, then byte by byte and by 7 bytes: all must agree. */
static void
parse(const char *req, size_t max_head, uint64_t limit, struct result *res)
{
	struct httpp p;
	struct result r2;
	size_t n = strlen(req);

	run(&p, req, n, max_head, limit, 1, &r2);
	run(&p, req, n, max_head, limit, 7, res);
	same(res, &r2);
	run(&p, req, n, max_head, limit, 0, res);
	same(res, &r2);
}

static void
expect_err(const char *req, enum httpp_err e)
{
	struct result r;

	parse(req, 8192, 1024, &r);
	if (r.rc != HTTPP_ERROR || r.err != e)
		ck_abort_msg("%s: want %s, got rc %d %s", req,
		    httpp_err_name(e), r.rc, httpp_err_name(r.err));
}

static void
expect_ok(const char *req)
{
	struct result r;

	parse(req, 8192, 1024, &r);
	if (r.rc != HTTPP_DONE)
		ck_abort_msg("%s: want DONE, got rc %d %s", req, r.rc,
		    httpp_err_name(r.err));
}

START_TEST(simple_get)
{
	static const char req[] = "GET /a/b?x=1&y HTTP/1.1\r\n"
	                          "Host: example\r\n"
	                          "User-Agent:  t  \r\n"
	                          "X-Empty:\r\n"
	                          "\r\n";
	struct httpp p;
	struct result r;
	size_t vl;
	const char *v;

	parse(req, 8192, 0, &r);
	ck_assert_int_eq(r.rc, HTTPP_DONE);
	ck_assert_str_eq(r.method, "GET");
	ck_assert_str_eq(r.path, "/a/b");
	ck_assert_int_eq(r.has_query, 1);
	ck_assert_str_eq(r.query, "x=1&y");
	ck_assert_uint_eq(r.version, 11);
	ck_assert_uint_eq(r.nfields, 3);
	ck_assert_int_eq(r.keep_alive, 1);
	ck_assert_int_eq(r.body_kind, HTTPP_BODY_NONE);
	ck_assert_uint_eq(r.body_len, 0);
	ck_assert_uint_eq(r.consumed, strlen(req));

	run(&p, req, strlen(req), 8192, 0, 0, &r);
	v = httpp_field(&p, buf, "user-agent", &vl);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(vl, 1);
	ck_assert(v[0] == 't');
	v = httpp_field(&p, buf, "HOST", &vl);
	ck_assert_uint_eq(vl, 7);
	ck_assert(memcmp(v, "example", 7) == 0);
	v = httpp_field(&p, buf, "x-empty", &vl);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(vl, 0);
	ck_assert_ptr_null(httpp_field(&p, buf, "cookie", &vl));
	ck_assert_ptr_null(httpp_field(&p, buf, "hos", &vl));

	/* no query; HTTP/1.0 without Host; leading empty lines */
	parse("\r\n\r\nGET / HTTP/1.0\r\n\r\n", 8192, 0, &r);
	ck_assert_int_eq(r.rc, HTTPP_DONE);
	ck_assert_str_eq(r.path, "/");
	ck_assert_int_eq(r.has_query, 0);
	ck_assert_uint_eq(r.version, 10);
	ck_assert_int_eq(r.keep_alive, 0);
}
END_TEST

START_TEST(post_content_length)
{
	static const char req[] = "POST /api/x HTTP/1.1\r\n"
	                          "Host: h\r\n"
	                          "Content-Length: 11\r\n"
	                          "content-length: 11\r\n"
	                          "\r\n"
	                          "hello worldGET";
	struct result r;

	parse(req, 8192, 11, &r);
	ck_assert_int_eq(r.rc, HTTPP_DONE);
	ck_assert_int_eq(r.body_kind, HTTPP_BODY_LENGTH);
	ck_assert_uint_eq(r.body_len, 11);
	ck_assert(memcmp(r.body, "hello world", 11) == 0);
	ck_assert_uint_eq(r.consumed, strlen(req) - 3);

	/* Content-Length: 0 is no body */
	parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 000\r\n\r\n",
	    8192, 0, &r);
	ck_assert_int_eq(r.rc, HTTPP_DONE);
	ck_assert_int_eq(r.body_kind, HTTPP_BODY_NONE);
}
END_TEST

START_TEST(chunked)
{
	static const char req[] = "POST /c HTTP/1.1\r\n"
	                          "Host: h\r\n"
	                          "Transfer-Encoding: Chunked\r\n"
	                          "\r\n"
	                          "5;name=val;x=\"q\"\r\n"
	                          "hello\r\n"
	                          "6 ; ext\r\n"
	                          " world\r\n"
	                          "00A\r\n"
	                          "0123456789\r\n"
	                          "0\r\n"
	                          "X-Trailer: t\r\n"
	                          "Another: u\r\n"
	                          "\r\n"
	                          "NEXT";
	struct result r;

	parse(req, 8192, 21, &r);
	ck_assert_int_eq(r.rc, HTTPP_DONE);
	ck_assert_int_eq(r.body_kind, HTTPP_BODY_CHUNKED);
	ck_assert_uint_eq(r.body_len, 21);
	ck_assert(memcmp(r.body, "hello world0123456789", 21) == 0);
	/* the next request follows the decoded body */
	ck_assert_uint_eq(r.consumed, r.head_len + 21);
	ck_assert(memcmp(buf + r.consumed, "NEXT", 4) == 0);

	/* an empty Transfer-Encoding is refused, not ignored */
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n"
	           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
}
END_TEST

START_TEST(pipelined)
{
	static const char req[] = "POST /one HTTP/1.1\r\nHost: h\r\n"
	                          "Content-Length: 3\r\n\r\nabc"
	                          "GET /two HTTP/1.1\r\nHost: h\r\n"
	                          "Connection: close\r\n\r\n";
	struct httpp p;
	size_t len = strlen(req), off, rest;

	memcpy(buf, req, len);
	httpp_init(&p, 8192);
	ck_assert_int_eq(httpp_head(&p, buf, len), HTTPP_DONE);
	ck_assert_int_eq(httpp_body(&p, buf, &len, 100), HTTPP_DONE);
	ck_assert_uint_eq(p.body_len, 3);
	ck_assert_int_eq(p.keep_alive, 1);
	off = p.consumed;
	rest = len - off;
	httpp_init(&p, 8192);
	ck_assert_int_eq(httpp_head(&p, buf + off, rest), HTTPP_DONE);
	ck_assert(memcmp(buf + off + p.path.off, "/two", 4) == 0);
	ck_assert_int_eq(httpp_body(&p, buf + off, &rest, 100), HTTPP_DONE);
	ck_assert_uint_eq(p.consumed, rest);
	ck_assert_int_eq(p.keep_alive, 0);
}
END_TEST

START_TEST(incremental)
{
	/* every sample: whole == byte by byte == 7-byte slices (parse()
	 * asserts it), including the error cases */
	static const char *const samples[] = {
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		"\r\n3\r\nabc\r\n1;e\r\nd\r\n0\r\nT: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		"\r\n3\r\nabcX\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: " /* no end: AGAIN */,
	};
	struct result r;
	size_t i;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		parse(samples[i], 8192, 1024, &r);
	parse(samples[5], 8192, 1024, &r);
	ck_assert_int_eq(r.rc, HTTPP_AGAIN);
}
END_TEST

START_TEST(connection_rules)
{
	struct result r;

	parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, close"
	      "\r\n\r\n",
	    8192, 0, &r);
	ck_assert_int_eq(r.keep_alive, 0);
	parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n", 8192,
	    0, &r);
	ck_assert_int_eq(r.keep_alive, 1);
	parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 8192, 0, &r);
	ck_assert_int_eq(r.keep_alive, 1);
	parse("GET / HTTP/1.0\r\n\r\n", 8192, 0, &r);
	ck_assert_int_eq(r.keep_alive, 0);
	parse("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
	      "Content-Length: 1\r\n\r\nx",
	    8192, 10, &r);
	ck_assert_int_eq(r.expect, 1);
	parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\n"
	      "Content-Length: 1\r\n\r\nx",
	    8192, 10, &r);
	ck_assert_int_eq(r.expect, 0);
}
END_TEST

START_TEST(errors_request_line)
{
	expect_err("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET /\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET / HTTX/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET / HTTP/1.10\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET / http/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET / HTTP/1.2\r\nHost: h\r\n\r\n", HTTPP_E_VERSION);
	expect_err("GET / HTTP/2.0\r\nHost: h\r\n\r\n", HTTPP_E_VERSION);
	expect_err("GET / HTTP/0.9\r\nHost: h\r\n\r\n", HTTPP_E_VERSION);
	expect_err("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET * HTTP/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err(
	    "GET /a#f HTTP/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err(
	    "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err(
	    "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	/* missing CR */
	expect_err("GET / HTTP/1.1\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
}
END_TEST

START_TEST(absolute_form)
{
	struct result r;

	/* RFC 9112 3.2.2: routed by the URI's path and query */
	parse("GET http://gw.example/api/chat/health?x=1 HTTP/1.1\r\n"
	      "Host: gw.example\r\n\r\n",
	    8192, 0, &r);
	ck_assert_int_eq(r.rc, HTTPP_DONE);
	ck_assert_str_eq(r.path, "/api/chat/health");
	ck_assert_int_eq(r.has_query, 1);
	ck_assert_str_eq(r.query, "x=1");
	parse("GET HTTPS://[::1]:8443/a/b HTTP/1.1\r\nHost: h\r\n\r\n", 8192,
	    0, &r);
	ck_assert_int_eq(r.rc, HTTPP_DONE);
	ck_assert_str_eq(r.path, "/a/b");
	ck_assert_int_eq(r.has_query, 0);
	/* no path: "/" */
	parse("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", 8192, 0, &r);
	ck_assert_int_eq(r.rc, HTTPP_DONE);
	ck_assert_str_eq(r.path, "/");
	ck_assert_int_eq(r.has_query, 0);
	parse("GET http://h?q=/x HTTP/1.1\r\nHost: h\r\n\r\n", 8192, 0, &r);
	ck_assert_int_eq(r.rc, HTTPP_DONE);
	ck_assert_str_eq(r.path, "/");
	ck_assert_str_eq(r.query, "q=/x");
	/* not http(s), no authority, userinfo */
	expect_err(
	    "GET ftp://h/a HTTP/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err(
	    "GET http:/h/a HTTP/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err(
	    "GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET http://u:p@h/a HTTP/1.1\r\nHost: h\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err(
	    "GET http:// HTTP/1.1\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
}
END_TEST

START_TEST(leading_empty_lines)
{
	static char req[40100];
	struct result r;
	size_t n = 0;
	int i;

	/* up to HTTPP_MAX_EMPTY_LINES are ignored */
	for (i = 0; i < HTTPP_MAX_EMPTY_LINES; i++)
		n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\n");
	strcpy(req + n, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
	parse(req, 8192, 0, &r);
	ck_assert_int_eq(r.rc, HTTPP_DONE);
	ck_assert_str_eq(r.path, "/x");
	/* one more is a bad request */
	memmove(req + 2, req, strlen(req) + 1);
	memcpy(req, "\r\n", 2);
	expect_err(req, HTTPP_E_BAD_REQUEST);
	/* 20,000 of them: 400, not 414, long before the head limit */
	for (n = 0, i = 0; i < 20000; i++, n += 2)
		memcpy(req + n, "\r\n", 2);
	strcpy(req + n, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	parse(req, 16384, 0, &r);
	ck_assert_int_eq(r.rc, HTTPP_ERROR);
	ck_assert_int_eq(r.err, HTTPP_E_BAD_REQUEST);
}
END_TEST

START_TEST(errors_fields)
{
	expect_err("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
	    HTTPP_E_BAD_REQUEST); /* obs-fold */
	expect_err("GET / HTTP/1.1\r\n Host: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET / HTTP/1.1\r\nHost : h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err(
	    "GET / HTTP/1.1\r\n: h\r\nHost: h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET / HTTP/1.1\r\nHost h\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n",
	    HTTPP_E_BAD_REQUEST); /* missing CR */
	expect_err("GET / HTTP/1.1\r\nHost: h\r\n\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
	    HTTPP_E_BAD_REQUEST); /* bare CR */
	expect_err(
	    "GET / HTTP/1.1\r\nHost: h\x7f\r\n\r\n", HTTPP_E_BAD_REQUEST);
	expect_err("GET / HTTP/1.1\r\n\r\n", HTTPP_E_BAD_REQUEST); /* Host */
	expect_err("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	{
		/* NUL inside a value */
		static const char req[] =
		    "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
		struct httpp p;
		struct result r;

		run(&p, req, sizeof(req) - 1, 8192, 0, 0, &r);
		ck_assert_int_eq(r.rc, HTTPP_ERROR);
		ck_assert_int_eq(r.err, HTTPP_E_BAD_REQUEST);
	}
	/* obs-text in values is allowed */
	expect_ok("GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n");
}
END_TEST

START_TEST(errors_framing)
{
	/* Content-Length */
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	           "Content-Length: 6\r\n\r\nhello!",
	    HTTPP_E_BAD_REQUEST);
	expect_err(
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err(
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\n"
	           "Content-Length: 99999999999999999999\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\n"
	           "Content-Length: 9223372036854775808\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	/* INT64_MAX parses, and is over any limit */
	expect_err("POST / HTTP/1.1\r\nHost: h\r\n"
	           "Content-Length: 9223372036854775807\r\n\r\n",
	    HTTPP_E_BODY_TOO_LARGE);
	/* smuggling: CL and TE together, in either order */
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
	           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	           "\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	/* transfer codings */
	expect_err("POST / HTTP/1.1\r\nHost: h\r\n"
	           "Transfer-Encoding: gzip, chunked\r\n\r\n",
	    HTTPP_E_NOT_IMPLEMENTED);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\n"
	           "Transfer-Encoding: gzip\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\n"
	           "Transfer-Encoding: chunked, gzip\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\n"
	           "Transfer-Encoding: chunked\r\n"
	           "Transfer-Encoding: chunked\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\n"
	           "Transfer-Encoding: chunked,\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\n"
	           "Transfer-Encoding: xchunked\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
}
END_TEST

START_TEST(errors_limits)
{
	char req[16384];
	struct result r;
	int i, n;

	/* head over the limit: in the fields (431), in the line (414) */
	n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: h\r\nX: ");
	memset(req + n, 'a', 200);
	strcpy(req + n + 200, "\r\n\r\n");
	parse(req, 128, 0, &r);
	ck_assert_int_eq(r.rc, HTTPP_ERROR);
	ck_assert_int_eq(r.err, HTTPP_E_HEAD_TOO_LARGE);
	n = snprintf(req, sizeof(req), "GET /");
	memset(req + n, 'a', 200);
	strcpy(req + n + 200, " HTTP/1.1\r\nHost: h\r\n\r\n");
	parse(req, 128, 0, &r);
	ck_assert_int_eq(r.err, HTTPP_E_URI_TOO_LONG);
	/* exactly at the limit is fine, one byte more is not */
	strcpy(req, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	parse(req, strlen(req), 0, &r);
	ck_assert_int_eq(r.rc, HTTPP_DONE);
	parse(req, strlen(req) - 1, 0, &r);
	ck_assert_int_eq(r.err, HTTPP_E_HEAD_TOO_LARGE);
	/* field count */
	n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: h\r\n");
	for (i = 0; i < HTTPP_MAX_FIELDS; i++)
		n += snprintf(
		    req + n, sizeof(req) - (size_t)n, "X%d: v\r\n", i);
	strcpy(req + n, "\r\n");
	parse(req, sizeof(req), 0, &r);
	ck_assert_int_eq(r.err, HTTPP_E_HEAD_TOO_LARGE);

	/* bodies over the limit */
	parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", 8192,
	    10, &r);
	ck_assert_int_eq(r.err, HTTPP_E_BODY_TOO_LARGE);
	parse(
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n6\r\n",
	    8192, 10, &r);
	ck_assert_int_eq(r.err, HTTPP_E_BODY_TOO_LARGE);
	parse(
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
	    8192, 10, &r);
	ck_assert_int_eq(r.rc, HTTPP_DONE);
	ck_assert_uint_eq(r.body_len, 10);

	/* trailers count against the head limit */
	strcpy(req,
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	    "\r\n\r\n0\r\nT: 0123456789\r\n\r\n");
	parse(req, 72, 10, &r);
	ck_assert_int_eq(r.err, HTTPP_E_HEAD_TOO_LARGE);
	parse(req, 73, 10, &r);
	ck_assert_int_eq(r.rc, HTTPP_DONE);
}
END_TEST

START_TEST(errors_chunks)
{
	char req[8192];
	int n;

	expect_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	           "\r\n\r\nfffffffffffffffff\r\n",
	    HTTPP_E_BAD_REQUEST); /* size overflow */
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	           "\r\n\r\n8000000000000000\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	           "\r\n\r\n7fffffffffffffff\r\n",
	    HTTPP_E_BODY_TOO_LARGE);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	           "\r\n\r\n5\r\nhelloXX0\r\n\r\n",
	    HTTPP_E_BAD_REQUEST); /* bad chunk terminator */
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	           "\r\n\r\n5\r\nhello\n0\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	           "\r\n\r\n5\nhello\r\n0\r\n\r\n",
	    HTTPP_E_BAD_REQUEST); /* bare LF after the size */
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	           "\r\n\r\nx\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	           "\r\n\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	           "\r\n\r\n5 x\r\nhello\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	           "\r\n\r\n-5\r\nhello\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	           "\r\n\r\n0\r\nbad trailer\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	expect_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
	           "\r\n\r\n0\r\nT: 1\r\n folded\r\n\r\n",
	    HTTPP_E_BAD_REQUEST);
	/* an endless chunk extension */
	n = snprintf(req, sizeof(req),
	    "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n1;");
	memset(req + n, 'e', HTTPP_MAX_CHUNK_LINE);
	req[n + HTTPP_MAX_CHUNK_LINE] = '\0';
	expect_err(req, HTTPP_E_BAD_REQUEST);
}
END_TEST

static Suite *
parser_suite(void)
{
	Suite *s = suite_create("http_parser");
	TCase *tc = tcase_create("parser");

	tcase_add_test(tc, simple_get);
	tcase_add_test(tc, post_content_length);
	tcase_add_test(tc, chunked);
	tcase_add_test(tc, pipelined);
	tcase_add_test(tc, incremental);
	tcase_add_test(tc, connection_rules);
	tcase_add_test(tc, errors_request_line);
	tcase_add_test(tc, absolute_form);
	tcase_add_test(tc, leading_empty_lines);
	tcase_add_test(tc, errors_fields);
	tcase_add_test(tc, errors_framing);
	tcase_add_test(tc, errors_limits);
	tcase_add_test(tc, errors_chunks);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tl_run(parser_suite());
}
