/*
 * streambatch_test - the STREAM_BATCH record codec: round trip of every
 * kind, the size bound, and a reader that stops at the first malformed
 * record (short header, a length past the buffer, an unknown kind, a
 * reserved byte), never reading past the buffer.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "proto/streambatch.h"
#include "testlib.h"

START_TEST(round_trip)
{
	struct sb_writer w = { 0 };
	struct sb_record r, in[4] = {
		{ .stream = 0x0000123400000001ull, .kind = SB_HEAD,
		    .status = 200, .data = "data: {}\n\n", .len = 10 },
		{ .stream = 7, .kind = SB_DATA, .data = "x", .len = 1 },
		{ .stream = 7, .kind = SB_END, .aux = 1, .data = "", .len = 0 },
		{ .stream = 9, .kind = SB_FAIL, .status = 503, .aux = 2500,
		    .data = "upstream_unavailable\0Try again.", .len = 31 },
	};
	char code[32];
	const char *msg;
	size_t pos = 0, mlen;

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(sb_add(&w, &in[i], 1 << 20), 0);
	ck_assert_uint_eq(w.n, 4);
	ck_assert_uint_eq(w.len, 4 * SB_HDR_LEN + 10 + 1 + 0 + 31);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(sb_next(w.buf, w.len, &pos, &r), 1);
		ck_assert_uint_eq(r.stream, in[i].stream);
		ck_assert_uint_eq(r.kind, in[i].kind);
		ck_assert_uint_eq(r.status, in[i].status);
		ck_assert_uint_eq(r.aux, in[i].aux);
		ck_assert_uint_eq(r.len, in[i].len);
		ck_assert_int_eq(memcmp(r.data, in[i].data, r.len), 0);
	}
	ck_assert_int_eq(sb_next(w.buf, w.len, &pos, &r), 0);
	ck_assert_int_eq(sb_fail_split(&r, code, sizeof(code), &msg, &mlen), 0);
	ck_assert_str_eq(code, "upstream_unavailable");
	ck_assert_uint_eq(mlen, 10);
	ck_assert_int_eq(memcmp(msg, "Try again.", 10), 0);
	/* a code that does not fit is refused */
	ck_assert_int_eq(sb_fail_split(&r, code, 8, &msg, &mlen), -1);
	sb_reset(&w);
	ck_assert_uint_eq(w.len, 0);
	sb_free(&w);
}
END_TEST

START_TEST(size_bound)
{
	struct sb_writer w = { 0 };
	struct sb_record r = { .stream = 1, .kind = SB_DATA, .data = "abcd",
		.len = 4 };

	ck_assert_int_eq(sb_add(&w, &r, 2 * (SB_HDR_LEN + 4)), 0);
	ck_assert_int_eq(sb_add(&w, &r, 2 * (SB_HDR_LEN + 4)), 0);
	ck_assert_int_eq(sb_add(&w, &r, 2 * (SB_HDR_LEN + 4)), -1);
	ck_assert_uint_eq(w.n, 2);
	sb_free(&w);
}
END_TEST

START_TEST(malformed_stops_the_reader)
{
	struct sb_writer w = { 0 };
	struct sb_record r = { .stream = 1, .kind = SB_DATA, .data = "abcd",
		.len = 4 };
	uint8_t *b;
	size_t pos;

	sb_add(&w, &r, 1 << 20);
	b = w.buf;
	/* truncated anywhere: never a record that runs past the end */
	for (size_t cut = 1; cut < w.len; cut++) {
		pos = 0;
		ck_assert_int_eq(sb_next(b, cut, &pos, &r), -1);
	}
	/* a length past the buffer */
	b[19] = 200;
	pos = 0;
	ck_assert_int_eq(sb_next(b, w.len, &pos, &r), -1);
	b[19] = 4;
	/* an unknown kind, a reserved byte */
	b[8] = 9;
	pos = 0;
	ck_assert_int_eq(sb_next(b, w.len, &pos, &r), -1);
	b[8] = SB_DATA;
	b[9] = 1;
	pos = 0;
	ck_assert_int_eq(sb_next(b, w.len, &pos, &r), -1);
	b[9] = 0;
	pos = 0;
	ck_assert_int_eq(sb_next(b, w.len, &pos, &r), 1);
	/* a FAIL without its NUL is malformed */
	r = (struct sb_record){ .kind = SB_FAIL, .data = "code", .len = 4 };
	{
		char code[16];
		const char *msg;
		size_t ml;

		ck_assert_int_eq(sb_fail_split(&r, code, sizeof(code), &msg,
				     &ml),
		    -1);
	}
	sb_free(&w);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("streambatch");
	TCase *tc = tcase_create("codec");
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, size_bound);
	tcase_add_test(tc, malformed_stops_the_reader);
	suite_add_tcase(s, tc);
	return tl_run(s);
}
