/*
 * proto_test - the message codec: golden bytes written out by hand from
 * the wire format in proto.h, every decoder rejection with its specific
 * proto_err, every truncation, oversized encodes, a round trip of every
 * message type (generated from messages.def) and a mutation run that
 * checks that whatever the decoder accepts re-encodes to the same bytes.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/roles.h"
#include "testlib.h"

/* PING_REQ from ADMISSION instance 5: nonce 0x0102030405060708,
 * reply_to "ipc://x". */
static const uint8_t golden_ping_req[] = {
	0x52, 0x47,             /* magic "RG" */
	0x01,                   /* version */
	0x01,                   /* type PING_REQ */
	0x02,                   /* src role: admission */
	0x05,                   /* src instance */
	0x00, 0x00,             /* reserved */
	0x00, 0x00, 0x00, 0x11, /* body length 17 */
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* nonce */
	0x00, 0x07,                                     /* reply_to len */
	'i', 'p', 'c', ':', '/', '/', 'x',
};

/* PING_REPORT from PROVIDER instance 255: nonce 0xdeadbeefcafef00d,
 * peer tool-worker.1, ok, rtt 0x12345 us, last. */
static const uint8_t golden_ping_report[] = {
	0x52, 0x47, 0x01, 0x04, 0x03, 0xff, 0x00, 0x00, /* header */
	0x00, 0x00, 0x00, 0x10,                         /* body length 16 */
	0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0xf0, 0x0d, /* nonce */
	0x04,                                           /* peer_role */
	0x01,                                           /* peer_instance */
	0x01,                                           /* ok */
	0x00, 0x01, 0x23, 0x45,                         /* rtt_us */
	0x01,                                           /* last */
};

/* PING from INGRESS instance 0: nonce 1, sent_us 2^63+3, reply_to "". */
static const uint8_t golden_ping[] = {
	0x52, 0x47, 0x01, 0x02, 0x01, 0x00, 0x00, 0x00, /* header */
	0x00, 0x00, 0x00, 0x12,                         /* body length 18 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* nonce */
	0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, /* sent_us */
	0x00, 0x00,                                     /* reply_to "" */
};

/* Decode a copy of exactly n bytes, so that ASan sees any overread. */
static int
decode_copy(const uint8_t *src, size_t n, struct proto_msg *out)
{
	uint8_t *b = malloc(n ? n : 1);
	int rc;

	ck_assert_ptr_nonnull(b);
	if (n > 0)
		memcpy(b, src, n);
	rc = proto_decode(n ? b : NULL, n, out);
	free(b);
	return rc;
}

static void
check_encodes_to(const struct proto_msg *m, const uint8_t *want, size_t n)
{
	uint8_t buf[256];
	size_t len = 0;

	ck_assert_uint_eq(proto_encoded_size(m), n);
	ck_assert_int_eq(proto_encode(m, buf, sizeof(buf), &len), PROTO_OK);
	ck_assert_uint_eq(len, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(buf[i] == want[i],
		    "byte %zu: got 0x%02x want 0x%02x", i, buf[i], want[i]);
}

START_TEST(golden_ping_req_bytes)
{
	struct proto_msg m = { 0 }, d;

	m.type = PROTO_T_PING_REQ;
	m.src_role = ROLE_ADMISSION;
	m.src_instance = 5;
	m.u.ping_req.nonce = 0x0102030405060708ull;
	m.u.ping_req.reply_to = proto_str_from("ipc://x");
	check_encodes_to(&m, golden_ping_req, sizeof(golden_ping_req));

	ck_assert_int_eq(proto_decode(golden_ping_req,
	    sizeof(golden_ping_req), &d), PROTO_OK);
	ck_assert_uint_eq(d.type, PROTO_T_PING_REQ);
	ck_assert_uint_eq(d.src_role, ROLE_ADMISSION);
	ck_assert_uint_eq(d.src_instance, 5);
	ck_assert_uint_eq(d.u.ping_req.nonce, 0x0102030405060708ull);
	ck_assert_uint_eq(d.u.ping_req.reply_to.len, 7);
	ck_assert(proto_str_eq(d.u.ping_req.reply_to, "ipc://x"));
	/* strings point into the caller's buffer */
	ck_assert_ptr_eq(d.u.ping_req.reply_to.p,
	    (const char *)golden_ping_req + 22);
}
END_TEST

START_TEST(golden_ping_report_bytes)
{
	struct proto_msg m = { 0 }, d;

	m.type = PROTO_T_PING_REPORT;
	m.src_role = ROLE_PROVIDER;
	m.src_instance = 255;
	m.u.ping_report.nonce = 0xdeadbeefcafef00dull;
	m.u.ping_report.peer_role = ROLE_TOOL_WORKER;
	m.u.ping_report.peer_instance = 1;
	m.u.ping_report.ok = 1;
	m.u.ping_report.rtt_us = 0x12345;
	m.u.ping_report.last = 1;
	check_encodes_to(&m, golden_ping_report, sizeof(golden_ping_report));

	ck_assert_int_eq(proto_decode(golden_ping_report,
	    sizeof(golden_ping_report), &d), PROTO_OK);
	ck_assert_uint_eq(d.type, PROTO_T_PING_REPORT);
	ck_assert_uint_eq(d.src_role, ROLE_PROVIDER);
	ck_assert_uint_eq(d.src_instance, 255);
	ck_assert_uint_eq(d.u.ping_report.nonce, 0xdeadbeefcafef00dull);
	ck_assert_uint_eq(d.u.ping_report.peer_role, ROLE_TOOL_WORKER);
	ck_assert_uint_eq(d.u.ping_report.peer_instance, 1);
	ck_assert_uint_eq(d.u.ping_report.ok, 1);
	ck_assert_uint_eq(d.u.ping_report.rtt_us, 0x12345);
	ck_assert_uint_eq(d.u.ping_report.last, 1);
}
END_TEST

START_TEST(golden_ping_bytes)
{
	struct proto_msg m = { 0 }, d;

	m.type = PROTO_T_PING;
	m.src_role = ROLE_INGRESS;
	m.u.ping.nonce = 1;
	m.u.ping.sent_us = 0x8000000000000003ull;
	m.u.ping.reply_to = proto_str_from("");
	check_encodes_to(&m, golden_ping, sizeof(golden_ping));

	ck_assert_int_eq(proto_decode(golden_ping, sizeof(golden_ping), &d),
	    PROTO_OK);
	ck_assert_uint_eq(d.type, PROTO_T_PING);
	ck_assert_uint_eq(d.src_role, ROLE_INGRESS);
	ck_assert_uint_eq(d.src_instance, 0);
	ck_assert_uint_eq(d.u.ping.nonce, 1);
	ck_assert_uint_eq(d.u.ping.sent_us, 0x8000000000000003ull);
	ck_assert_uint_eq(d.u.ping.reply_to.len, 0);
	ck_assert(proto_str_eq(d.u.ping.reply_to, ""));
}
END_TEST

/* mutated - decode golden_ping_req with byte i set to v. */
static int
mutated(size_t i, uint8_t v)
{
	uint8_t b[sizeof(golden_ping_req)];
	struct proto_msg d;

	memcpy(b, golden_ping_req, sizeof(b));
	b[i] = v;
	return decode_copy(b, sizeof(b), &d);
}

START_TEST(reject_header)
{
	struct proto_msg d;

	ck_assert_int_eq(proto_decode(NULL, 0, &d), PROTO_E_SHORT);
	ck_assert_int_eq(decode_copy(golden_ping_req, 0, &d), PROTO_E_SHORT);
	ck_assert_int_eq(decode_copy(golden_ping_req, 11, &d), PROTO_E_SHORT);
	ck_assert_int_eq(mutated(0, 0x53), PROTO_E_MAGIC);
	ck_assert_int_eq(mutated(1, 0x48), PROTO_E_MAGIC);
	ck_assert_int_eq(mutated(2, 2), PROTO_E_VERSION);
	ck_assert_int_eq(mutated(2, 0), PROTO_E_VERSION);
	ck_assert_int_eq(mutated(6, 0x80), PROTO_E_RESERVED);
	ck_assert_int_eq(mutated(7, 0x01), PROTO_E_RESERVED);
	ck_assert_int_eq(mutated(4, ROLE_COUNT), PROTO_E_SOURCE);
	ck_assert_int_eq(mutated(4, 255), PROTO_E_SOURCE);
	ck_assert_int_eq(mutated(3, 0), PROTO_E_TYPE);
	ck_assert_int_eq(mutated(3, 200), PROTO_E_TYPE);
	ck_assert_int_eq(mutated(3, 255), PROTO_E_TYPE);
	/* body length larger / smaller than the buffer */
	ck_assert_int_eq(mutated(11, 0x12), PROTO_E_LENGTH);
	ck_assert_int_eq(mutated(11, 0x10), PROTO_E_LENGTH);
	ck_assert_int_eq(mutated(8, 0xff), PROTO_E_LENGTH);
	/* a bare header with body length 0 of a type that has fields */
	ck_assert_int_eq(decode_copy((const uint8_t[]){ 0x52, 0x47, 1, 3, 0,
	    0, 0, 0, 0, 0, 0, 0 }, 12, &d), PROTO_E_FIELD);
	/* on failure nothing half-decoded is left behind */
	ck_assert_uint_eq(d.type, PROTO_T_NONE);
}
END_TEST

START_TEST(reject_fields)
{
	uint8_t b[sizeof(golden_ping_req) + 1];
	struct proto_msg d;

	/* STR length one past the body (body length still consistent) */
	ck_assert_int_eq(mutated(21, 8), PROTO_E_FIELD);
	ck_assert_int_eq(mutated(20, 0xff), PROTO_E_FIELD);
	/* STR length one short: a byte is left over */
	ck_assert_int_eq(mutated(21, 6), PROTO_E_TRAILING);

	/* trailing byte with a body length that counts it */
	memcpy(b, golden_ping_req, sizeof(golden_ping_req));
	b[sizeof(golden_ping_req)] = 0;
	b[11] = 0x12;
	ck_assert_int_eq(decode_copy(b, sizeof(b), &d), PROTO_E_TRAILING);
	/* trailing byte with the original body length */
	b[11] = 0x11;
	ck_assert_int_eq(decode_copy(b, sizeof(b), &d), PROTO_E_LENGTH);
}
END_TEST

/* check_truncations - every prefix of a valid message is rejected, both
 * as is and with the body length patched to agree with the prefix. */
static void
check_truncations(const uint8_t *msg, size_t n)
{
	uint8_t *b = malloc(n);
	struct proto_msg d;

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(decode_copy(msg, n, &d), PROTO_OK);
	for (size_t k = 0; k < n; k++) {
		int want = k < PROTO_HDR_LEN ? PROTO_E_SHORT : PROTO_E_LENGTH;

		ck_assert_msg(decode_copy(msg, k, &d) == want,
		    "prefix %zu of %zu not rejected as %s", k, n,
		    proto_err_name(want));
		if (k < PROTO_HDR_LEN)
			continue;
		memcpy(b, msg, k);
		b[8] = (uint8_t)((k - PROTO_HDR_LEN) >> 24);
		b[9] = (uint8_t)((k - PROTO_HDR_LEN) >> 16);
		b[10] = (uint8_t)((k - PROTO_HDR_LEN) >> 8);
		b[11] = (uint8_t)(k - PROTO_HDR_LEN);
		ck_assert_msg(decode_copy(b, k, &d) == PROTO_E_FIELD,
		    "patched prefix %zu of %zu accepted", k, n);
	}
	free(b);
}

START_TEST(reject_truncations)
{
	check_truncations(golden_ping_req, sizeof(golden_ping_req));
	check_truncations(golden_ping_report, sizeof(golden_ping_report));
	check_truncations(golden_ping, sizeof(golden_ping));
}
END_TEST

START_TEST(encode_too_big)
{
	struct proto_msg m = { 0 };
	uint8_t small[64];
	size_t len = 0, n;
	char *big = malloc(2 * PROTO_MAX_MSG);
	uint8_t *out = malloc(4 * PROTO_MAX_MSG);

	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(out);
	memset(big, 'a', 2 * PROTO_MAX_MSG);

	/* a STR making the message larger than PROTO_MAX_MSG */
	m.type = PROTO_T_PING_REQ;
	m.u.ping_req.reply_to.p = big;
	m.u.ping_req.reply_to.len = 2 * PROTO_MAX_MSG;
	ck_assert_uint_gt(proto_encoded_size(&m), PROTO_MAX_MSG);
	ck_assert_int_eq(proto_encode(&m, out, 4 * PROTO_MAX_MSG, &len),
	    PROTO_E_TOOBIG);
	/* a STR within PROTO_MAX_MSG but longer than its u16 prefix */
	m.u.ping_req.reply_to.len = UINT16_MAX + 1;
	ck_assert_int_eq(proto_encode(&m, out, 4 * PROTO_MAX_MSG, &len),
	    PROTO_E_TOOBIG);
	/* the longest STR is fine, and round-trips */
	m.u.ping_req.reply_to.len = UINT16_MAX;
	ck_assert_int_eq(proto_encode(&m, out, 4 * PROTO_MAX_MSG, &len),
	    PROTO_OK);
	ck_assert_uint_eq(len, PROTO_HDR_LEN + 8 + 2 + UINT16_MAX);
	{
		struct proto_msg d;

		ck_assert_int_eq(proto_decode(out, len, &d), PROTO_OK);
		ck_assert_uint_eq(d.u.ping_req.reply_to.len, UINT16_MAX);
	}

	/* cap too small by one byte, then exactly enough */
	m.u.ping_req.reply_to = proto_str_from("reply");
	n = proto_encoded_size(&m);
	ck_assert_uint_eq(n, PROTO_HDR_LEN + 8 + 2 + 5);
	ck_assert_int_eq(proto_encode(&m, small, n - 1, &len),
	    PROTO_E_TOOBIG);
	ck_assert_int_eq(proto_encode(&m, small, 0, &len), PROTO_E_TOOBIG);
	ck_assert_int_eq(proto_encode(&m, small, n, &len), PROTO_OK);
	ck_assert_uint_eq(len, n);

	/* unknown types */
	m.type = 0;
	ck_assert_uint_eq(proto_encoded_size(&m), 0);
	ck_assert_int_eq(proto_encode(&m, small, sizeof(small), &len),
	    PROTO_E_TYPE);
	m.type = 200;
	ck_assert_uint_eq(proto_encoded_size(&m), 0);
	ck_assert_int_eq(proto_encode(&m, small, sizeof(small), &len),
	    PROTO_E_TYPE);
	free(big);
	free(out);
}
END_TEST

/*
 * Round trip, generated from messages.def: every field of every message
 * is filled from a seed, encoded, decoded and compared.
 */
static char strpool[3][300];

/* A kind no message uses yet still needs its filler. */
#define FILL_FN static __attribute__((unused)) void

FILL_FN
fill_U8(uint8_t *v, unsigned s)
{
	*v = (uint8_t)(0xa5 ^ s);
}
FILL_FN
fill_U16(uint16_t *v, unsigned s)
{
	*v = (uint16_t)(0xbeef + s * 7);
}
FILL_FN
fill_U32(uint32_t *v, unsigned s)
{
	*v = 0xfedcba98u - s;
}
FILL_FN
fill_U64(uint64_t *v, unsigned s)
{
	*v = 0xfedcba9876543210ull + s;
}
FILL_FN
fill_I64(int64_t *v, unsigned s)
{
	*v = -(int64_t)0x123456789ll - (int64_t)s;
}
FILL_FN
fill_STR(struct proto_str *v, unsigned s)
{
	v->p = strpool[s % 3];
	v->len = (uint32_t)((s * 37) % sizeof(strpool[0]));
}
FILL_FN
fill_BLOB(struct proto_str *v, unsigned s)
{
	fill_STR(v, s + 1);
}

#define same_U8(a, b) ck_assert_uint_eq(a, b)
#define same_U16(a, b) ck_assert_uint_eq(a, b)
#define same_U32(a, b) ck_assert_uint_eq(a, b)
#define same_U64(a, b) ck_assert_uint_eq(a, b)
#define same_I64(a, b) ck_assert_int_eq(a, b)
#define same_STR(a, b)                                                    \
	do {                                                              \
		ck_assert_uint_eq((a).len, (b).len);                      \
		ck_assert(memcmp((a).p, (b).p, (a).len) == 0);            \
	} while (0)
#define same_BLOB(a, b) same_STR(a, b)

static void
round_trip_seed(unsigned seed, unsigned *ntypes)
{
	struct proto_msg m, d;
	uint8_t buf[2048];
	size_t len;

#define RT_FILL(kind, fname) fill_##kind(&cur->fname, seed + nf++);
#define RT_SAME(kind, fname) same_##kind(cur->fname, got->fname);
#define RT_CASE(ID, name, num, FIELDS)                                    \
	{                                                                 \
		struct proto_##name *cur = &m.u.name, *got = &d.u.name;   \
		unsigned nf = 0;                                          \
		memset(&m, 0, sizeof(m));                                 \
		m.type = PROTO_T_##ID;                                    \
		m.src_role = (uint8_t)(seed % ROLE_COUNT);                \
		m.src_instance = (uint8_t)(seed * 13);                    \
		FIELDS(RT_FILL)                                           \
		(void)nf;                                                 \
		ck_assert_int_eq(proto_encode(&m, buf, sizeof(buf), &len), \
		    PROTO_OK);                                            \
		ck_assert_uint_eq(len, proto_encoded_size(&m));           \
		ck_assert_int_eq(decode_copy(buf, len, &d), PROTO_OK);    \
		ck_assert_int_eq(proto_decode(buf, len, &d), PROTO_OK);   \
		ck_assert_uint_eq(d.type, PROTO_T_##ID);                  \
		ck_assert_uint_eq(d.src_role, m.src_role);                \
		ck_assert_uint_eq(d.src_instance, m.src_instance);        \
		FIELDS(RT_SAME)                                           \
		ck_assert_str_eq(proto_type_name(PROTO_T_##ID), #name);   \
		check_truncations(buf, len);                              \
		(*ntypes)++;                                              \
	}
	PROTO_MESSAGES(RT_CASE)
#undef RT_CASE
#undef RT_SAME
#undef RT_FILL
}

START_TEST(round_trip_all)
{
	unsigned ntypes = 0, want = 0;

#define COUNT(ID, name, num, FIELDS) want++;
	PROTO_MESSAGES(COUNT)
#undef COUNT
	for (size_t i = 0; i < sizeof(strpool); i++)
		((char *)strpool)[i] = (char)('a' + i % 26);
	for (unsigned seed = 0; seed < 24; seed++)
		round_trip_seed(seed, &ntypes);
	ck_assert_uint_eq(ntypes, 24 * want);
	ck_assert_uint_ge(want, 4);
}
END_TEST

START_TEST(names)
{
	ck_assert_str_eq(proto_type_name(PROTO_T_PING), "ping");
	ck_assert_str_eq(proto_type_name(PROTO_T_PING_REPORT),
	    "ping_report");
	ck_assert_str_eq(proto_type_name(0), "unknown");
	ck_assert_str_eq(proto_type_name(200), "unknown");
	ck_assert_str_eq(proto_type_name(100000), "unknown");
	ck_assert_str_eq(proto_err_name(PROTO_OK), "ok");
	ck_assert_str_eq(proto_err_name(PROTO_E_SHORT), "short");
	ck_assert_str_eq(proto_err_name(PROTO_E_TRAILING), "trailing");
	ck_assert_str_eq(proto_err_name(PROTO_E_RESERVED), "reserved");
	ck_assert_str_eq(proto_err_name(PROTO_E_SOURCE), "source");
	ck_assert_str_eq(proto_err_name(-100), "unknown");
	ck_assert_str_eq(proto_err_name(3), "unknown");
	ck_assert(proto_str_eq(proto_str_from(""), ""));
	ck_assert(!proto_str_eq(proto_str_from("ab"), "abc"));
}
END_TEST

/*
 * Mutations: flip bytes of valid messages at random.  The decoder must
 * never crash (ASan watches), and whatever it accepts must re-encode to
 * exactly the same bytes: the wire form has one encoding per message.
 */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

START_TEST(mutations)
{
	static const struct {
		const uint8_t *p;
		size_t n;
	} seeds[] = {
		{ golden_ping_req, sizeof(golden_ping_req) },
		{ golden_ping_report, sizeof(golden_ping_report) },
		{ golden_ping, sizeof(golden_ping) },
	};
	unsigned accepted = 0, rejected = 0;

	for (unsigned iter = 0; iter < 60000; iter++) {
		uint8_t b[64], re[64];
		size_t n = seeds[iter % 3].n, len;
		unsigned flips = 1 + (unsigned)(xorshift() % 3);
		struct proto_msg d;
		int rc;

		memcpy(b, seeds[iter % 3].p, n);
		for (unsigned f = 0; f < flips; f++)
			b[xorshift() % n] ^= (uint8_t)(1 + xorshift() % 255);
		if (xorshift() % 4 == 0)
			n -= xorshift() % n;
		rc = decode_copy(b, n, &d);
		if (rc != PROTO_OK) {
			ck_assert_int_lt(rc, 0);
			ck_assert_str_ne(proto_err_name(rc), "unknown");
			rejected++;
			continue;
		}
		accepted++;
		/* d points into a freed copy: decode b itself again */
		ck_assert_int_eq(proto_decode(b, n, &d), PROTO_OK);
		ck_assert_int_eq(proto_encode(&d, re, sizeof(re), &len),
		    PROTO_OK);
		ck_assert_uint_eq(len, n);
		ck_assert(memcmp(re, b, n) == 0);
	}
	ck_assert_uint_gt(accepted, 0);
	ck_assert_uint_gt(rejected, 0);
}
END_TEST

static Suite *
proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("codec");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, golden_ping_req_bytes);
	tcase_add_test(tc, golden_ping_report_bytes);
	tcase_add_test(tc, golden_ping_bytes);
	tcase_add_test(tc, reject_header);
	tcase_add_test(tc, reject_fields);
	tcase_add_test(tc, reject_truncations);
	tcase_add_test(tc, encode_too_big);
	tcase_add_test(tc, round_trip_all);
	tcase_add_test(tc, names);
	tcase_add_test(tc, mutations);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tl_run(proto_suite());
}
