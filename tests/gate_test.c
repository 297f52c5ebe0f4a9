/*
 * gate_test - unit tests of gate/: base64 and hex codecs, HMAC known
 * answers (RFC 4231), trusted-proxy matching and client-IP selection, the
 * Gmail Pub/Sub and WhatsApp webhook parsers, the WhatsApp signature,
 * token comparison, OAuth state and query-string decoding.
 *
 * Known answers were computed independently (Python's base64/hmac); the
 * tests never check an encoder only against its own decoder.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "gate/b64.h"
#include "gate/clientip.h"
#include "gate/crypto.h"
#include "gate/oauthstate.h"
#include "gate/query.h"
#include "gate/webhook.h"
#include "testlib.h"
#include "util/util.h"

/* --- helpers --------------------------------------------------------------
 */

/* hdr_table - header lookup callback over a NULL-terminated name/value
 * array */
static const char *
hdr_table(void *ctx, const char *name, size_t *len)
{
	const char *const *t = ctx;

	for (; t[0] != NULL; t += 2)
		if (strcasecmp(t[0], name) == 0) {
			*len = strlen(t[1]);
			return t[1];
		}
	return NULL;
}

static struct sockaddr_storage peer_ss;

/* peer - a sockaddr for the text address a (IPv4 or IPv6). */
static const struct sockaddr *
peer(const char *a)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&peer_ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&peer_ss;

	memset(&peer_ss, 0, sizeof(peer_ss));
	if (inet_pton(AF_INET, a, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
	} else {
		ck_assert_int_eq(inet_pton(AF_INET6, a, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
	}
	return (const struct sockaddr *)&peer_ss;
}

static void
set_of(struct cidr_set *s, const char *a, const char *b)
{
	char err[256];

	clientip_set_init(s);
	if (a != NULL)
		ck_assert_msg(
		    clientip_set_add(s, a, err, sizeof(err)) == 0, "%s", err);
	if (b != NULL)
		ck_assert_msg(
		    clientip_set_add(s, b, err, sizeof(err)) == 0, "%s", err);
}

/* pick - clientip_pick with a header table; the source is returned, the
 * address is in the static buffer ip. */
static char ip[CLIENTIP_BUFSZ];

static enum clientip_source
pick(const struct cidr_set *s, const char *peeraddr, const char **tab)
{
	struct clientip_hdrs h = { hdr_table, (void *)tab };

	return clientip_pick(s, peer(peeraddr), &h, ip, sizeof(ip));
}

/* --- base64, hex, HMAC ----------------------------------------------------
 */

START_TEST(test_b64_decode)
{
	unsigned char out[64];
	long n;

	/* RFC 4648 section 10 vectors, padded and unpadded */
	n = b64_decode("Zm9vYmFy", 8, B64_STD, out, sizeof(out));
	ck_assert_int_eq(n, 6);
	ck_assert_mem_eq(out, "foobar", 6);
	n = b64_decode("Zm9vYg==", 8, B64_STD, out, sizeof(out));
	ck_assert_int_eq(n, 4);
	ck_assert_mem_eq(out, "foob", 4);
	n = b64_decode("Zm9vYg", 6, B64_STD, out, sizeof(out)); /* %4 == 2 */
	ck_assert_int_eq(n, 4);
	ck_assert_mem_eq(out, "foob", 4);
	n = b64_decode("Zm9vYmE=", 8, B64_STD, out, sizeof(out));
	ck_assert_int_eq(n, 5);
	n = b64_decode("Zm9vYmE", 7, B64_STD, out, sizeof(out)); /* %4 == 3 */
	ck_assert_int_eq(n, 5);
	ck_assert_mem_eq(out, "fooba", 5);
	ck_assert_int_eq(b64_decode("", 0, B64_STD, out, sizeof(out)), 0);
	/* alphabets: 0xfb 0xff is "+/8" / "-_8" */
	n = b64_decode("+/8", 3, B64_STD, out, sizeof(out));
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(out[0], 0xfb);
	ck_assert_int_eq(out[1], 0xff);
	ck_assert_int_eq(b64_decode("-_8", 3, B64_STD, out, sizeof(out)), -1);
	ck_assert_int_eq(b64_decode("-_8", 3, B64_URL, out, sizeof(out)), 2);
	ck_assert_int_eq(b64_decode("+/8", 3, B64_URL, out, sizeof(out)), -1);
	ck_assert_int_eq(
	    b64_decode("-/8", 3, B64_STD | B64_URL, out, sizeof(out)), 2);
	/* invalid: 4k+1, bad char, misplaced or wrong padding, stray bits */
	ck_assert_int_eq(b64_decode("Zm9vY", 5, B64_STD, out, 64), -1);
	ck_assert_int_eq(b64_decode("Zm9v!mFy", 8, B64_STD, out, 64), -1);
	ck_assert_int_eq(b64_decode("Zm9v YmFy", 9, B64_STD, out, 64), -1);
	ck_assert_int_eq(b64_decode("Zg=", 3, B64_STD, out, 64), -1);
	ck_assert_int_eq(b64_decode("Zm8=", 4, B64_STD, out, 64), 2);
	ck_assert_mem_eq(out, "fo", 2);
	ck_assert_int_eq(b64_decode("Zm9=", 4, B64_STD, out, 64), -1);
	ck_assert_int_eq(b64_decode("Zm==", 4, B64_STD, out, 64), -1);
	ck_assert_int_eq(b64_decode("Zm8==", 5, B64_STD, out, 64), -1);
	ck_assert_int_eq(b64_decode("Z===", 4, B64_STD, out, 64), -1);
	ck_assert_int_eq(b64_decode("====", 4, B64_STD, out, 64), -1);
	ck_assert_int_eq(b64_decode("Zm=v", 4, B64_STD, out, 64), -1);
	ck_assert_int_eq(b64_decode("Zh==", 4, B64_STD, out, 64), -1);
	ck_assert_int_eq(b64_decode("Zg==", 4, B64_STD, out, 64), 1);
	/* output too small */
	ck_assert_int_eq(b64_decode("Zm9vYmFy", 8, B64_STD, out, 5), -1);
	ck_assert_int_eq(b64_decode("Zm9vYmFy", 8, B64_STD, out, 6), 6);
}
END_TEST

START_TEST(test_b64_encode)
{
	const unsigned char bin[] = { 0xfb, 0xff };
	char buf[32];

	ck_assert_int_eq(b64_encode("foob", 4, buf, sizeof(buf)), 8);
	ck_assert_str_eq(buf, "Zm9vYg==");
	ck_assert_int_eq(b64_encode("fooba", 5, buf, sizeof(buf)), 8);
	ck_assert_str_eq(buf, "Zm9vYmE=");
	ck_assert_int_eq(b64_encode("", 0, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "");
	ck_assert_int_eq(b64url_encode("foob", 4, buf, sizeof(buf)), 6);
	ck_assert_str_eq(buf, "Zm9vYg");
	ck_assert_int_eq(b64url_encode(bin, 2, buf, sizeof(buf)), 3);
	ck_assert_str_eq(buf, "-_8");
	ck_assert_int_eq(b64_encode(bin, 2, buf, sizeof(buf)), 4);
	ck_assert_str_eq(buf, "+/8=");
	/* room for the NUL is required */
	ck_assert_int_eq(b64_encode("foobar", 6, buf, 8), -1);
	ck_assert_int_eq(b64_encode("foobar", 6, buf, 9), 8);
	ck_assert_int_eq(b64url_encode("foob", 4, buf, 6), -1);
}
END_TEST

START_TEST(test_hex_hmac)
{
	/* RFC 4231 test case 2 */
	static const char want[] = "5bdcc146bf60754e6a042426089575c7"
	                           "5a003f089d2739839dec58b964ec3843";
	unsigned char mac[CRYPTO_SHA256_LEN], back[CRYPTO_SHA256_LEN];
	char hex[2 * CRYPTO_SHA256_LEN + 1];

	crypto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
	ck_assert_uint_eq(
	    crypto_hex_encode(mac, sizeof(mac), hex, sizeof(hex)), 64);
	ck_assert_str_eq(hex, want);
	ck_assert_int_eq(crypto_hex_decode(want, 64, back, sizeof(back)), 32);
	ck_assert_mem_eq(back, mac, 32);
	ck_assert_int_eq(crypto_hex_decode("ABcd", 4, back, 2), 2);
	ck_assert_int_eq(back[0], 0xab);
	ck_assert_int_eq(back[1], 0xcd);
	ck_assert_int_eq(crypto_hex_decode("abc", 3, back, 2), -1);
	ck_assert_int_eq(crypto_hex_decode("zz", 2, back, 2), -1);
	ck_assert_int_eq(crypto_hex_decode("abcdef", 6, back, 2), -1);
	ck_assert_int_eq(crypto_ct_eq("abc", "abc", 3), 1);
	ck_assert_int_eq(crypto_ct_eq("abc", "abd", 3), 0);
}
END_TEST

START_TEST(test_token_eq)
{
	ck_assert_int_eq(webhook_token_eq("s3cret", 6, "s3cret", 6), 1);
	ck_assert_int_eq(webhook_token_eq("s3cres", 6, "s3cret", 6), 0);
	ck_assert_int_eq(webhook_token_eq("s3cre", 5, "s3cret", 6), 0);
	ck_assert_int_eq(webhook_token_eq("s3cret!", 7, "s3cret", 6), 0);
	ck_assert_int_eq(webhook_token_eq("", 0, "", 0), 0);
	ck_assert_int_eq(webhook_token_eq("", 0, "x", 1), 0);
	/* length-bounded: bytes after alen do not count */
	ck_assert_int_eq(webhook_token_eq("abcX", 3, "abc", 3), 1);
}
END_TEST

/* --- client IP ------------------------------------------------------------
 */

START_TEST(test_cidr_parse)
{
	struct cidr_set s;
	char err[256];
	size_t i;
	static const char *bad[] = { "10.0.0.0", "10.0.0.0/33", "::1/129",
		"10.0.0.0/", "/8", "10.0.0/8", "10.0.0.0/8x", "10.0.0.0/-1",
		"10.0.0.0/ 8", "fe80::1%eth0/64", "10.0.0.0/0008",
		"example.com/8", "" };

	clientip_set_init(&s);
	for (i = 0; i < RG_NELEM(bad); i++) {
		err[0] = '\0';
		ck_assert_msg(
		    clientip_set_add(&s, bad[i], err, sizeof(err)) == -1,
		    "accepted %s", bad[i]);
		ck_assert_msg(strstr(err, "is not a CIDR") != NULL, "%s: %s",
		    bad[i], err);
	}
	ck_assert_uint_eq(s.n, 0);
	clientip_set_add(&s, "10.0.0.0/33", err, sizeof(err));
	ck_assert_str_eq(
	    err, "\"10.0.0.0/33\" is not a CIDR: prefix must be 0..32");
	clientip_set_add(&s, "10.0.0.0", err, sizeof(err));
	ck_assert_ptr_nonnull(strstr(err, "missing /prefix"));
	clientip_set_add(&s, "10.0.0.300/8", err, sizeof(err));
	ck_assert_ptr_nonnull(strstr(err, "not an IPv4 or IPv6 address"));
	ck_assert_int_eq(clientip_set_add(&s, "10.1.2.3/8", err, 256), 0);
	ck_assert_int_eq(s.v[0].addr[1], 0); /* host bits cleared */
	ck_assert_int_eq(clientip_set_add(&s, "0.0.0.0/0", err, 256), 0);
	ck_assert_int_eq(clientip_set_add(&s, "::/0", err, 256), 0);
	ck_assert_int_eq(
	    clientip_set_add(&s, "::ffff:10.0.0.0/104", err, 256), 0);
	ck_assert_int_eq(s.v[3].family, AF_INET);
	ck_assert_int_eq(s.v[3].bits, 8);
	/* the set is bounded */
	clientip_set_init(&s);
	for (i = 0; i < CLIENTIP_MAX_CIDRS; i++)
		ck_assert_int_eq(
		    clientip_set_add(&s, "10.0.0.0/8", err, 256), 0);
	ck_assert_int_eq(clientip_set_add(&s, "10.0.0.0/8", err, 256), -1);
	ck_assert_ptr_nonnull(strstr(err, "too many"));
}
END_TEST

START_TEST(test_cidr_match)
{
	struct cidr_set s;

	set_of(&s, "192.168.1.7/32", NULL);
	ck_assert_int_eq(clientip_set_contains(&s, peer("192.168.1.7")), 1);
	ck_assert_int_eq(clientip_set_contains(&s, peer("192.168.1.8")), 0);
	ck_assert_int_eq(
	    clientip_set_contains(&s, peer("::ffff:192.168.1.7")), 1);
	set_of(&s, "0.0.0.0/0", NULL);
	ck_assert_int_eq(clientip_set_contains(&s, peer("203.0.113.9")), 1);
	ck_assert_int_eq(clientip_set_contains(&s, peer("2001:db8::1")), 0);
	set_of(&s, "::/0", NULL);
	ck_assert_int_eq(clientip_set_contains(&s, peer("2001:db8::1")), 1);
	ck_assert_int_eq(clientip_set_contains(&s, peer("203.0.113.9")), 0);
	set_of(&s, "::1/128", "10.20.0.0/14");
	ck_assert_int_eq(clientip_set_contains(&s, peer("::1")), 1);
	ck_assert_int_eq(clientip_set_contains(&s, peer("::2")), 0);
	ck_assert_int_eq(clientip_set_contains(&s, peer("10.23.255.255")), 1);
	ck_assert_int_eq(clientip_set_contains(&s, peer("10.24.0.0")), 0);
	ck_assert_int_eq(clientip_set_contains(&s, peer("10.19.255.255")), 0);
	set_of(&s, "2001:db8:abcd::/47", NULL);
	ck_assert_int_eq(
	    clientip_set_contains(&s, peer("2001:db8:abcd::1")), 1);
	ck_assert_int_eq(
	    clientip_set_contains(&s, peer("2001:db8:abce::1")), 0);
	ck_assert_int_eq(
	    clientip_set_contains(&s, peer("2001:db8:abcc::1")), 1);
	clientip_set_init(&s);
	ck_assert_int_eq(clientip_set_contains(&s, peer("127.0.0.1")), 0);
}
END_TEST

START_TEST(test_clientip_untrusted)
{
	const char *tab[] = { "X-Forwarded-For", "1.1.1.1", "cf-connecting-ip",
		"2.2.2.2", "x-real-ip", "3.3.3.3", NULL };
	struct cidr_set s;

	set_of(&s, "127.0.0.0/8", "::1/128");
	ck_assert_int_eq(pick(&s, "198.51.100.7", tab), CLIENTIP_PEER);
	ck_assert_str_eq(ip, "198.51.100.7");
	ck_assert_int_eq(pick(&s, "2001:db8::7", tab), CLIENTIP_PEER);
	ck_assert_str_eq(ip, "2001:db8::7");
	/* dual-stack socket: mapped peer shown as IPv4 */
	ck_assert_int_eq(pick(&s, "::ffff:198.51.100.7", tab), CLIENTIP_PEER);
	ck_assert_str_eq(ip, "198.51.100.7");
	/* no headers at all, trusted peer: the peer */
	ck_assert_int_eq(
	    clientip_pick(&s, peer("127.0.0.1"), NULL, ip, sizeof(ip)),
	    CLIENTIP_PEER);
	ck_assert_str_eq(ip, "127.0.0.1");
}
END_TEST

START_TEST(test_clientip_trusted_order)
{
	const char *all[] = { "x-real-ip", "3.3.3.3", "x-forwarded-for",
		"1.2.3.4, 5.6.7.8", "cf-connecting-ip", "2.2.2.2", NULL };
	const char *no_cf[] = { "x-real-ip", "3.3.3.3", "X-Forwarded-For",
		"  1.2.3.4 ,5.6.7.8", NULL };
	const char *xri[] = { "x-real-ip", "2001:DB8::0:1", NULL };
	const char *none[] = { "x-other", "9.9.9.9", NULL };
	struct cidr_set s;

	set_of(&s, "127.0.0.0/8", "::1/128");
	ck_assert_int_eq(pick(&s, "127.0.0.1", all), CLIENTIP_CF);
	ck_assert_str_eq(ip, "2.2.2.2");
	ck_assert_int_eq(pick(&s, "::1", no_cf), CLIENTIP_XFF);
	ck_assert_str_eq(ip, "1.2.3.4");
	ck_assert_int_eq(pick(&s, "::ffff:127.0.0.1", xri), CLIENTIP_XRI);
	ck_assert_str_eq(ip, "2001:db8::1");
	ck_assert_int_eq(pick(&s, "127.9.9.9", none), CLIENTIP_PEER);
	ck_assert_str_eq(ip, "127.9.9.9");
}
END_TEST

START_TEST(test_clientip_malformed)
{
	const char *bad_cf[] = { "cf-connecting-ip", "not-an-ip",
		"x-forwarded-for", "1.2.3.4", NULL };
	const char *bad_all[] = { "cf-connecting-ip", "", "x-forwarded-for",
		"unknown, 1.2.3.4", "x-real-ip", "1.2.3.4:8080", NULL };
	const char *mapped[] = { "x-forwarded-for", "[::ffff:10.1.2.3]",
		NULL };
	struct cidr_set s;
	char out[CLIENTIP_BUFSZ];

	set_of(&s, "127.0.0.0/8", NULL);
	ck_assert_int_eq(pick(&s, "127.0.0.1", bad_cf), CLIENTIP_XFF);
	ck_assert_str_eq(ip, "1.2.3.4");
	ck_assert_int_eq(pick(&s, "127.0.0.1", bad_all), CLIENTIP_PEER);
	ck_assert_str_eq(ip, "127.0.0.1");
	ck_assert_int_eq(pick(&s, "127.0.0.1", mapped), CLIENTIP_XFF);
	ck_assert_str_eq(ip, "10.1.2.3");
	ck_assert_int_eq(clientip_parse_addr("[1.2.3.4]", 9, out, 46), -1);
	ck_assert_int_eq(clientip_parse_addr("1.2.3", 5, out, 46), -1);
	ck_assert_int_eq(clientip_parse_addr("fe80::1%eth0", 12, out, 46), -1);
	ck_assert_int_eq(clientip_parse_addr(" \t", 2, out, 46), -1);
	ck_assert_int_eq(clientip_parse_addr(",1.2.3.4", 8, out, 46), -1);
	/* length-bounded: only v[0..len) is read */
	ck_assert_int_eq(clientip_parse_addr("1.2.3.45", 7, out, 46), 0);
	ck_assert_str_eq(out, "1.2.3.4");
}
END_TEST

/* --- Gmail Pub/Sub --------------------------------------------------------
 */

static char msg[WEBHOOK_MSG_MAX];

static enum webhook_result
push(const char *body, struct pubsub_push *p)
{
	return pubsub_parse(body, strlen(body), p, msg, sizeof(msg));
}

/* envelope - a push body with data d (already quoted JSON or a literal) */
static const char *
envelope(const char *data)
{
	static char buf[2048];

	snprintf(buf, sizeof(buf),
	    "{\"message\":{\"data\":%s,\"messageId\":\"2070443601311540\","
	    "\"publishTime\":\"2021-02-26T19:13:55.749Z\"},"
	    "\"subscription\":\"projects/p/subscriptions/s\"}",
	    data);
	return buf;
}

START_TEST(test_pubsub_ok)
{
	struct pubsub_push p;

	/* padded, raw length % 3 == 0 (no padding needed) */
	ck_assert_int_eq(push(envelope("\"eyJlbWFpbEFkZHJlc3MiOiJ1c2VyQGV4YW1w"
	                               "bGUuY29tIiwiaGlzdG9yeUlkIjoiMTIzNDU2"
	                               "NyJ9\""),
	                     &p),
	    WEBHOOK_OK);
	ck_assert_str_eq(msg, "");
	ck_assert_str_eq(p.email, "user@example.com");
	ck_assert_str_eq(p.history_id, "1234567");
	ck_assert_str_eq(p.message_id, "2070443601311540");
	/* unpadded, length % 4 == 2 */
	ck_assert_int_eq(push(envelope("\"eyJlbWFpbEFkZHJlc3MiOiJ1c2VyQGV4YW1w"
	                               "bGUuY29tIiwiaGlzdG9yeUlkIjoiMTIzNDU2"
	                               "NzgifQ\""),
	                     &p),
	    WEBHOOK_OK);
	ck_assert_str_eq(p.history_id, "12345678");
	/* unpadded, length % 4 == 3 */
	ck_assert_int_eq(push(envelope("\"eyJlbWFpbEFkZHJlc3MiOiJ1c2VyQGV4YW1w"
	                               "bGUuY29tIiwiaGlzdG9yeUlkIjoiMTIzNDU2"
	                               "Nzg5In0\""),
	                     &p),
	    WEBHOOK_OK);
	ck_assert_str_eq(p.history_id, "123456789");
	ck_assert_str_eq(p.email, "user@example.com");
	/* historyId as a number */
	ck_assert_int_eq(push(envelope("\"eyJlbWFpbEFkZHJlc3MiOiJhQGIuYyIsImhp"
	                               "c3RvcnlJZCI6OTg3NjV9\""),
	                     &p),
	    WEBHOOK_OK);
	ck_assert_str_eq(p.email, "a@b.c");
	ck_assert_str_eq(p.history_id, "98765");
	/* historyId "0042" is canonicalised */
	ck_assert_int_eq(push(envelope("\"eyJlbWFpbEFkZHJlc3MiOiJ1Pz5AeC5pbyIs"
	                               "Imhpc3RvcnlJZCI6IjAwNDIifQ==\""),
	                     &p),
	    WEBHOOK_OK);
	ck_assert_str_eq(p.history_id, "42");
	ck_assert_str_eq(p.email, "u?>@x.io");
	/* messageId and subscription are optional */
	ck_assert_int_eq(push("{\"message\":{\"data\":\"eyJlbWFpbEFkZHJlc3Mi"
	                      "OiJhQGIuYyIsImhpc3RvcnlJZCI6OTg3NjV9\"}}",
	                     &p),
	    WEBHOOK_OK);
	ck_assert_str_eq(p.message_id, "");
}
END_TEST

START_TEST(test_pubsub_invalid)
{
	struct pubsub_push p;

	ck_assert_int_eq(push("not json", &p), WEBHOOK_INVALID_JSON);
	ck_assert_ptr_nonnull(strstr(msg, "not valid JSON"));
	ck_assert_ptr_null(strstr(msg, "not json")); /* input not echoed */
	ck_assert_int_eq(push("", &p), WEBHOOK_INVALID_JSON);
	ck_assert_int_eq(push("{\"a\":1,\"a\":2}", &p), WEBHOOK_INVALID_JSON);
	ck_assert_int_eq(push("[1,2]", &p), WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg, "body: must be a JSON object");
	ck_assert_int_eq(push("{}", &p), WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg, "message: required");
	ck_assert_int_eq(push("{\"message\":[],\"subscription\":1}", &p),
	    WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg,
	    "message: must be an object; subscription: "
	    "must be a string");
	ck_assert_int_eq(push(envelope("12"), &p), WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg, "message.data: must be a base64 string");
	ck_assert_int_eq(
	    push(envelope("\"%%%%\""), &p), WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg, "message.data: must be a base64 string");
	ck_assert_int_eq(
	    push(envelope("\"Zm9vY\""), &p), WEBHOOK_INVALID_REQUEST);
	/* "not json" */
	ck_assert_int_eq(
	    push(envelope("\"bm90IGpzb24=\""), &p), WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg, "message.data: must decode to a JSON object");
	/* {"historyId":"1"} */
	ck_assert_int_eq(push(envelope("\"eyJoaXN0b3J5SWQiOiIxIn0=\""), &p),
	    WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg, "message.data.emailAddress: required");
	ck_assert_str_eq(p.email, "");
	/* {"emailAddress":7,"historyId":true} */
	ck_assert_int_eq(push(envelope("\"eyJlbWFpbEFkZHJlc3MiOjcsImhpc3Rvcn"
	                               "lJZCI6dHJ1ZX0=\""),
	                     &p),
	    WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg,
	    "message.data.emailAddress: must be a string; "
	    "message.data.historyId: must be a string of "
	    "digits or a non-negative integer");
	ck_assert_int_eq(push("{\"message\":{\"messageId\":5}}", &p),
	    WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg,
	    "message.data: required; message.messageId: "
	    "must be a string");
}
END_TEST

/* data_of - push body whose data is the base64 of json (encoded here with
 * b64_encode, itself checked against known answers above) */
static enum webhook_result
push_doc(const char *json, struct pubsub_push *p)
{
	char data[1200], q[1300];

	ck_assert_int_ge(
	    b64_encode(json, strlen(json), data, sizeof(data)), 0);
	snprintf(q, sizeof(q), "\"%s\"", data);
	return push(envelope(q), p);
}

START_TEST(test_pubsub_fields)
{
	struct pubsub_push p;
	char big[400], doc[600];

	ck_assert_int_eq(
	    push_doc("{\"emailAddress\":\"\",\"historyId\":1}", &p),
	    WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg, "message.data.emailAddress: must not be empty");
	ck_assert_int_eq(push_doc("{\"emailAddress\":\"nobody\","
	                          "\"historyId\":1}",
	                     &p),
	    WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg, "message.data.emailAddress: must contain '@'");
	ck_assert_int_eq(push_doc("{\"emailAddress\":\"a\\n@b\","
	                          "\"historyId\":1}",
	                     &p),
	    WEBHOOK_INVALID_REQUEST);
	memset(big, 'a', 319);
	big[319] = '\0';
	snprintf(doc, sizeof(doc),
	    "{\"emailAddress\":\"@%s\",\"historyId\":1}", big);
	ck_assert_int_eq(push_doc(doc, &p), WEBHOOK_OK); /* 320 */
	snprintf(doc, sizeof(doc),
	    "{\"emailAddress\":\"@a%s\",\"historyId\":1}", big);
	ck_assert_int_eq(push_doc(doc, &p), WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg,
	    "message.data.emailAddress: must be at most "
	    "320 characters");
	ck_assert_int_eq(push_doc("{\"emailAddress\":\"a@b\",\"historyId\":"
	                          "-1}",
	                     &p),
	    WEBHOOK_INVALID_REQUEST);
	ck_assert_int_eq(push_doc("{\"emailAddress\":\"a@b\",\"historyId\":"
	                          "1.5}",
	                     &p),
	    WEBHOOK_INVALID_REQUEST);
	ck_assert_int_eq(push_doc("{\"emailAddress\":\"a@b\",\"historyId\":"
	                          "\"12a\"}",
	                     &p),
	    WEBHOOK_INVALID_REQUEST);
	ck_assert_int_eq(push_doc("{\"emailAddress\":\"a@b\",\"historyId\":"
	                          "\"\"}",
	                     &p),
	    WEBHOOK_INVALID_REQUEST);
	ck_assert_int_eq(push_doc("{\"emailAddress\":\"a@b\",\"historyId\":"
	                          "\"18446744073709551615\"}",
	                     &p),
	    WEBHOOK_OK);
	ck_assert_str_eq(p.history_id, "18446744073709551615");
	ck_assert_int_eq(push_doc("{\"emailAddress\":\"a@b\",\"historyId\":"
	                          "\"18446744073709551616\"}",
	                     &p),
	    WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg, "message.data.historyId: out of range");
	ck_assert_int_eq(push_doc("{\"emailAddress\":\"a@b\",\"historyId\":"
	                          "0}",
	                     &p),
	    WEBHOOK_OK);
	ck_assert_str_eq(p.history_id, "0");
}
END_TEST

/* --- WhatsApp -------------------------------------------------------------
 */

/* assert_json_text - v is exactly the compact JSON want. */
static void
assert_json_text(const json_t *v, const char *want)
{
	char *text = json_dumps(v, JSON_COMPACT);

	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, want);
	free(text);
}

static enum webhook_result
wa(const char *body, struct wa_payload *p)
{
	return wa_parse(body, strlen(body), p, msg, sizeof(msg));
}

START_TEST(test_wa_messages)
{
	static const char body[] =
	    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":"
	    "\"102290129340398\",\"changes\":[{\"field\":\"messages\","
	    "\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
	    "\"phone_number_id\":\"106540352242922\"},\"messages\":[{"
	    "\"from\":\"16505551234\",\"id\":\"wamid.A\",\"type\":\"text\","
	    "\"text\":{\"body\":\"hi\"}},{\"id\":\"wamid.B\"}]}},{\"field\":"
	    "\"messages\",\"value\":{\"messages\":[{\"id\":\"wamid.C\","
	    "\"x\" : [1, 2]}]}}]}]}";
	struct wa_payload p;

	ck_assert_int_eq(wa(body, &p), WEBHOOK_OK);
	ck_assert_uint_eq(p.n, 3);
	ck_assert_str_eq(p.msg[0].id, "wamid.A");
	ck_assert_str_eq(p.msg[1].id, "wamid.B");
	ck_assert_str_eq(p.msg[2].id, "wamid.C");
	assert_json_text(p.msg[0].message,
	    "{\"from\":\"16505551234\",\"id\":\"wamid.A\",\"type\":\"text\","
	    "\"text\":{\"body\":\"hi\"}}");
	assert_json_text(p.msg[2].message, "{\"id\":\"wamid.C\",\"x\":[1,2]}");
	ck_assert_str_eq(p.msg[0].entry_id, "102290129340398");
	assert_json_text(p.msg[1].metadata,
	    "{\"phone_number_id\":\"106540352242922\"}");
	ck_assert_ptr_null(p.msg[2].metadata);
	wa_payload_free(&p);
	ck_assert_uint_eq(p.n, 0);
}
END_TEST

START_TEST(test_wa_statuses)
{
	struct wa_payload p;

	ck_assert_int_eq(wa("{\"object\":\"whatsapp_business_account\","
	                    "\"entry\":[{\"id\":\"1\",\"changes\":[{"
	                    "\"field\":\"messages\",\"value\":{\"statuses\":"
	                    "[{\"id\":\"wamid.S\",\"status\":\"read\"}]}}]}]}",
	                     &p),
	    WEBHOOK_OK);
	ck_assert_uint_eq(p.n, 0);
	ck_assert_str_eq(msg, "");
	ck_assert_int_eq(
	    wa("{\"object\":\"x\",\"entry\":[]}", &p), WEBHOOK_OK);
	ck_assert_uint_eq(p.n, 0);
}
END_TEST

START_TEST(test_wa_invalid)
{
	struct wa_payload p;
	char *body;
	size_t i, off;

	ck_assert_int_eq(wa("{\"object\":", &p), WEBHOOK_INVALID_JSON);
	ck_assert_uint_eq(p.n, 0);
	ck_assert_int_eq(
	    wa("{\"object\":\"x\"}", &p), WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg, "entry: required");
	ck_assert_int_eq(wa("{\"entry\":{}}", &p), WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg, "object: required; entry: must be an array");
	ck_assert_int_eq(wa("{\"object\":\"x\",\"entry\":[{\"id\":\"1\","
	                    "\"changes\":[{\"field\":\"m\",\"value\":{}},"
	                    "{\"field\":\"m\",\"value\":{\"messages\":[{"
	                    "\"id\":\"a\"},{\"from\":\"1\"},{\"id\":3}]}}]}]}",
	                     &p),
	    WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg,
	    "entry[0].changes[1].value.messages[1].id: required; "
	    "entry[0].changes[1].value.messages[2].id: must be a string");
	ck_assert_uint_eq(p.n, 0); /* wamid a was released */
	ck_assert_int_eq(wa("{\"object\":\"x\",\"entry\":[7,{\"changes\":"
	                    "[]},{\"id\":\"\",\"changes\":[{\"value\":[]}]},"
	                    "{\"id\":\"e\",\"changes\":[{\"field\":\"f\","
	                    "\"value\":{\"messages\":{},\"statuses\":1}}]}]}",
	                     &p),
	    WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg,
	    "entry[0]: must be an object; entry[1].id: required; "
	    "entry[2].id: must not be empty; entry[2].changes[0].field: "
	    "required; entry[2].changes[0].value: must be an object; "
	    "entry[3].changes[0].value.statuses: must be an array; "
	    "entry[3].changes[0].value.messages: must be an array");
	/* more than 8 problems: summarised */
	ck_assert_int_eq(wa("{\"entry\":[1,2,3,4,5,6,7,8,9,10]}", &p),
	    WEBHOOK_INVALID_REQUEST);
	ck_assert_ptr_nonnull(strstr(msg,
	    "entry[6]: must be an object; "
	    "and 3 more"));
	/* 257 messages */
	body = malloc(257 * 16 + 200);
	off = (size_t)sprintf(body,
	    "{\"object\":\"x\",\"entry\":[{\"id\":"
	    "\"1\",\"changes\":[{\"field\":\"m\","
	    "\"value\":{\"messages\":[");
	for (i = 0; i < 257; i++)
		off += (size_t)sprintf(
		    body + off, "%s{\"id\":\"m%zu\"}", i > 0 ? "," : "", i);
	strcpy(body + off, "]}}]}]}");
	ck_assert_int_eq(wa(body, &p), WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg, "entry: more than 256 messages in one payload");
	ck_assert_uint_eq(p.n, 0);
	/* exactly 256 is fine */
	off = (size_t)sprintf(body,
	    "{\"object\":\"x\",\"entry\":[{\"id\":"
	    "\"1\",\"changes\":[{\"field\":\"m\","
	    "\"value\":{\"messages\":[");
	for (i = 0; i < 256; i++)
		off += (size_t)sprintf(
		    body + off, "%s{\"id\":\"m%zu\"}", i > 0 ? "," : "", i);
	strcpy(body + off, "]}}]}]}");
	ck_assert_int_eq(wa(body, &p), WEBHOOK_OK);
	ck_assert_uint_eq(p.n, 256);
	ck_assert_str_eq(p.msg[255].id, "m255");
	wa_payload_free(&p);
	free(body);
}
END_TEST

START_TEST(test_wa_limits)
{
	struct wa_payload p;
	char *body;
	size_t i, off;

	body = malloc(101 * 32 + 100);
	off = (size_t)sprintf(body, "{\"object\":\"x\",\"entry\":[");
	for (i = 0; i < 101; i++)
		off += (size_t)sprintf(body + off,
		    "%s{\"id\":\"e\",\"changes\":[]}", i > 0 ? "," : "");
	strcpy(body + off, "]}");
	ck_assert_int_eq(wa(body, &p), WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg, "entry: must have at most 100 items");
	off = (size_t)sprintf(body,
	    "{\"object\":\"x\",\"entry\":[{\"id\":"
	    "\"e\",\"changes\":[");
	for (i = 0; i < 101; i++)
		off += (size_t)sprintf(body + off,
		    "%s{\"field\":\"f\",\"value\":{}}", i > 0 ? "," : "");
	strcpy(body + off, "]}]}");
	ck_assert_int_eq(wa(body, &p), WEBHOOK_INVALID_REQUEST);
	ck_assert_str_eq(msg, "entry[0].changes: must have at most 100 items");
	free(body);
}
END_TEST

START_TEST(test_wa_signature)
{
	static const char body[] =
	    "{\"object\":\"whatsapp_business_account\",\"entry\":[]}";
	static const char good[] = "sha256=d3e4f9da0ce6c71ab3dba55929b8eeee"
	                           "e2455349e534924ead19f98d143e904f";
	static const char upper[] = "sha256=D3E4F9DA0CE6C71AB3DBA55929B8EEEE"
	                            "E2455349E534924EAD19F98D143E904F";
	static const char wrong[] = "sha256=d3e4f9da0ce6c71ab3dba55929b8eeee"
	                            "e2455349e534924ead19f98d143e904e";
	static const char empty[] = "sha256=f685db4c946698bf105ff5b62e30bc1f"
	                            "78216f3914b12bb750f8992aa6748824";
	size_t n = strlen(body);

	ck_assert_int_eq(wa_signature_ok(good, body, n, "app-secret"), 1);
	ck_assert_int_eq(wa_signature_ok(upper, body, n, "app-secret"), 1);
	ck_assert_int_eq(wa_signature_ok(wrong, body, n, "app-secret"), 0);
	ck_assert_int_eq(wa_signature_ok(good, body, n, "app-secreT"), 0);
	ck_assert_int_eq(wa_signature_ok(good, body, n - 1, "app-secret"), 0);
	ck_assert_int_eq(wa_signature_ok(good + 7, body, n, "app-secret"), 0);
	ck_assert_int_eq(
	    wa_signature_ok("SHA256=d3e4f9da0ce6c71ab3dba55929b8ee"
	                    "eee2455349e534924ead19f98d143e904f",
	        body, n, "app-secret"),
	    0);
	ck_assert_int_eq(
	    wa_signature_ok("sha256=d3e4f9da0ce6c71ab3dba55929b8ee"
	                    "eee2455349e534924ead19f98d143e904",
	        body, n, "app-secret"),
	    0);
	ck_assert_int_eq(
	    wa_signature_ok("sha256=d3e4f9da0ce6c71ab3dba55929b8ee"
	                    "eee2455349e534924ead19f98d143e904f0",
	        body, n, "app-secret"),
	    0);
	ck_assert_int_eq(
	    wa_signature_ok("sha256=g3e4f9da0ce6c71ab3dba55929b8ee"
	                    "eee2455349e534924ead19f98d143e904f",
	        body, n, "app-secret"),
	    0);
	ck_assert_int_eq(wa_signature_ok("sha256=", body, n, "app-secret"), 0);
	ck_assert_int_eq(wa_signature_ok(NULL, body, n, "app-secret"), 0);
	ck_assert_int_eq(wa_signature_ok(good, body, n, ""), 0);
	ck_assert_int_eq(wa_signature_ok(good, body, n, NULL), 0);
	ck_assert_int_eq(wa_signature_ok(empty, NULL, 0, "app-secret"), 1);
	ck_assert_int_eq(wa_signature_ok(empty, "", 0, "app-secret"), 1);
	ck_assert_int_eq(wa_signature_ok(good, "", 0, "app-secret"), 0);
}
END_TEST

/* --- OAuth state ----------------------------------------------------------
 */

#define NOW 1700000000000ULL /* 2023-11-14, in ms */

START_TEST(test_oauth_roundtrip)
{
	/* made by Python as the app would: {"userId":"user_42","exp":
	 * 1900000000} (seconds), HMAC key "state-secret" */
	static const char app[] =
	    "eyJ1c2VySWQiOiJ1c2VyXzQyIiwiZXhwIjoxOTAwMDAwMDAwfQ."
	    "F6H258wzB0gT-3zuYpOnQXbpBKi6EhOsVJU6HpCU8i0";
	char st[OAUTHSTATE_MAX + 1], uid[OAUTHSTATE_UID_MAX + 1];
	long n;

	ck_assert_int_eq(oauthstate_verify("state-secret", app, strlen(app),
	                     NOW, uid, sizeof(uid)),
	    OAUTHSTATE_OK);
	ck_assert_str_eq(uid, "user_42");
	/* exp in seconds: 1900000000 s = 1900000000000 ms */
	ck_assert_int_eq(oauthstate_verify("state-secret", app, strlen(app),
	                     1900000000000ULL, uid, sizeof(uid)),
	    OAUTHSTATE_EXPIRED);
	ck_assert_str_eq(uid, "");
	ck_assert_int_eq(oauthstate_verify("state-secret", app, strlen(app),
	                     1899999999999ULL, uid, sizeof(uid)),
	    OAUTHSTATE_OK);

	n = oauthstate_make("k", "u-1", NOW + 600000, st, sizeof(st));
	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq(strlen(st), (size_t)n);
	/* {"uid":"u-1","exp":1700000600000} */
	ck_assert_str_eq(st,
	    "eyJ1aWQiOiJ1LTEiLCJleHAiOjE3MDAwMDA2MDAwMDB9."
	    "VpBgatj0FZD9ld6DchcUKw2s6aNFH_eTOyX1MTnINF4");
	ck_assert_int_eq(
	    oauthstate_verify("k", st, (size_t)n, NOW, uid, sizeof(uid)),
	    OAUTHSTATE_OK);
	ck_assert_str_eq(uid, "u-1");
	ck_assert_int_eq(oauthstate_verify("k", st, (size_t)n, NOW + 600000,
	                     uid, sizeof(uid)),
	    OAUTHSTATE_EXPIRED);
	ck_assert_int_eq(
	    oauthstate_verify("K", st, (size_t)n, NOW, uid, sizeof(uid)),
	    OAUTHSTATE_BAD_SIGNATURE);
	ck_assert_int_eq(
	    oauthstate_verify("", st, (size_t)n, NOW, uid, sizeof(uid)),
	    OAUTHSTATE_BAD_SIGNATURE);
	/* uid does not fit the caller's buffer */
	ck_assert_int_eq(oauthstate_verify("k", st, (size_t)n, NOW, uid, 3),
	    OAUTHSTATE_MALFORMED);
	ck_assert_int_eq(
	    oauthstate_verify("k", st, (size_t)n, NOW, uid, 4), OAUTHSTATE_OK);
	ck_assert_int_eq(oauthstate_make("", "u", NOW, st, sizeof(st)), -1);
	ck_assert_int_eq(oauthstate_make("k", "", NOW, st, sizeof(st)), -1);
	ck_assert_int_eq(oauthstate_make("k", "u-1", NOW, st, 50), -1);
	ck_assert_str_eq(
	    oauthstate_result_name(OAUTHSTATE_EXPIRED), "expired");
}
END_TEST

START_TEST(test_oauth_tampered)
{
	char st[OAUTHSTATE_MAX + 1], t[OAUTHSTATE_MAX + 8];
	char uid[OAUTHSTATE_UID_MAX + 1];
	char *dot;
	long n;

	n = oauthstate_make("k", "u-1", NOW + 600000, st, sizeof(st));
	ck_assert_int_gt(n, 0);
	dot = strchr(st, '.');
	/* tampered payload: one character of the first segment */
	strcpy(t, st);
	t[3] = t[3] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(oauthstate_verify("k", t, strlen(t), NOW, uid, 257),
	    OAUTHSTATE_BAD_SIGNATURE);
	ck_assert_str_eq(uid, "");
	/* tampered signature */
	strcpy(t, st);
	t[n - 5] = t[n - 5] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(oauthstate_verify("k", t, strlen(t), NOW, uid, 257),
	    OAUTHSTATE_BAD_SIGNATURE);
	/* missing dot, empty parts, two dots */
	ck_assert_int_eq(
	    oauthstate_verify("k", st, (size_t)(dot - st), NOW, uid, 257),
	    OAUTHSTATE_MALFORMED);
	ck_assert_int_eq(
	    oauthstate_verify("k", dot, strlen(dot), NOW, uid, 257),
	    OAUTHSTATE_MALFORMED);
	ck_assert_int_eq(
	    oauthstate_verify("k", st, (size_t)(dot - st) + 1, NOW, uid, 257),
	    OAUTHSTATE_MALFORMED);
	snprintf(t, sizeof(t), "%s.", st);
	ck_assert_int_eq(oauthstate_verify("k", t, strlen(t), NOW, uid, 257),
	    OAUTHSTATE_MALFORMED);
	/* bad base64url: '+' in the payload, '=' in the middle */
	strcpy(t, st);
	t[2] = '+';
	ck_assert_int_eq(oauthstate_verify("k", t, strlen(t), NOW, uid, 257),
	    OAUTHSTATE_MALFORMED);
	strcpy(t, st);
	t[n - 2] = '*';
	ck_assert_int_eq(oauthstate_verify("k", t, strlen(t), NOW, uid, 257),
	    OAUTHSTATE_MALFORMED);
	/* signature of the wrong size */
	snprintf(t, sizeof(t), "%.*sAAAA", (int)(n - 4), st);
	ck_assert_int_eq(
	    oauthstate_verify("k", t, strlen(t) - 4, NOW, uid, 257),
	    OAUTHSTATE_MALFORMED);
	/* oversized */
	memset(t, 'A', OAUTHSTATE_MAX + 1);
	t[100] = '.';
	ck_assert_int_eq(
	    oauthstate_verify("k", t, OAUTHSTATE_MAX + 1, NOW, uid, 257),
	    OAUTHSTATE_MALFORMED);
	ck_assert_int_eq(oauthstate_verify("k", "", 0, NOW, uid, 257),
	    OAUTHSTATE_MALFORMED);
}
END_TEST

/* signed - a state over an arbitrary payload text, made here */
static const char *
signed_state(const char *payload)
{
	static char st[OAUTHSTATE_MAX + 1];
	unsigned char mac[CRYPTO_SHA256_LEN];
	long p;

	p = b64url_encode(payload, strlen(payload), st, sizeof(st));
	ck_assert_int_gt(p, 0);
	crypto_hmac_sha256("k", 1, st, (size_t)p, mac);
	st[p] = '.';
	ck_assert_int_gt(b64url_encode(mac, sizeof(mac), st + p + 1,
	                     sizeof(st) - (size_t)p - 1),
	    0);
	return st;
}

START_TEST(test_oauth_payload)
{
	char uid[OAUTHSTATE_UID_MAX + 1];
	const char *s;
	static const char *bad[] = { "not json", "[]", "{\"exp\":9e12}",
		"{\"uid\":1,\"exp\":9e12}", "{\"uid\":\"\",\"exp\":9e12}",
		"{\"uid\":\"u\"}", "{\"uid\":\"u\",\"exp\":\"9e12\"}",
		"{\"uid\":\"u\",\"exp\":-5}",
		"{\"uid\":\"u\",\"uid\":\"v\",\"exp\":9e12}" };
	size_t i;

	for (i = 0; i < RG_NELEM(bad); i++) {
		s = signed_state(bad[i]);
		ck_assert_msg(oauthstate_verify("k", s, strlen(s), NOW, uid,
		                  sizeof(uid)) == OAUTHSTATE_MALFORMED,
		    "accepted %s", bad[i]);
	}
	s = signed_state("{\"uid\":\"u\",\"exp\":1700000000001.5}");
	ck_assert_int_eq(oauthstate_verify("k", s, strlen(s), NOW, uid, 257),
	    OAUTHSTATE_OK);
	s = signed_state("{\"uid\":\"u\",\"exp\":1700000000000}");
	ck_assert_int_eq(oauthstate_verify("k", s, strlen(s), NOW, uid, 257),
	    OAUTHSTATE_EXPIRED);
	/* seconds: 1700000001 s is after NOW, 99999999999 s far after */
	s = signed_state("{\"uid\":\"u\",\"exp\":1700000001}");
	ck_assert_int_eq(oauthstate_verify("k", s, strlen(s), NOW, uid, 257),
	    OAUTHSTATE_OK);
	s = signed_state("{\"uid\":\"u\",\"exp\":1699999999}");
	ck_assert_int_eq(oauthstate_verify("k", s, strlen(s), NOW, uid, 257),
	    OAUTHSTATE_EXPIRED);
	/* uid wins over userId */
	s = signed_state("{\"userId\":\"b\",\"uid\":\"a\",\"exp\":9e12}");
	ck_assert_int_eq(oauthstate_verify("k", s, strlen(s), NOW, uid, 257),
	    OAUTHSTATE_OK);
	ck_assert_str_eq(uid, "a");
}
END_TEST

/* --- query strings --------------------------------------------------------
 */

static char qv[32];
static int too_long;

static enum query_result
q(const char *query, const char *name)
{
	return query_get(
	    query, strlen(query), name, qv, sizeof(qv), &too_long);
}

START_TEST(test_query)
{
	ck_assert_int_eq(q("hub.mode=subscribe&hub.verify_token=a%2Bb+c%20d"
	                   "&hub.challenge=1158201444",
	                     "hub.verify_token"),
	    QUERY_FOUND);
	ck_assert_str_eq(qv, "a+b c d");
	ck_assert_int_eq(too_long, 0);
	ck_assert_int_eq(
	    q("hub.mode=subscribe&hub.challenge=1158201444", "hub.challenge"),
	    QUERY_FOUND);
	ck_assert_str_eq(qv, "1158201444");
	ck_assert_int_eq(q("?token=x", "token"), QUERY_FOUND);
	ck_assert_str_eq(qv, "x");
	ck_assert_int_eq(q("tokens=x&xtoken=y", "token"), QUERY_ABSENT);
	ck_assert_str_eq(qv, "");
	ck_assert_int_eq(q("", "token"), QUERY_ABSENT);
	ck_assert_int_eq(
	    query_get(NULL, 0, "token", qv, sizeof(qv), NULL), QUERY_ABSENT);
	ck_assert_int_eq(q("a=1&&token&b=2", "token"), QUERY_FOUND);
	ck_assert_str_eq(qv, "");
	ck_assert_int_eq(q("token=&token=2", "token"), QUERY_FOUND);
	ck_assert_str_eq(qv, "");
	ck_assert_int_eq(q("token=1&token=2", "token"), QUERY_FOUND);
	ck_assert_str_eq(qv, "1");
	ck_assert_int_eq(q("hub%2Emode=subscribe", "hub.mode"), QUERY_FOUND);
	ck_assert_str_eq(qv, "subscribe");
	ck_assert_int_eq(q("s=%e2%82%AC=", "s"), QUERY_FOUND);
	ck_assert_str_eq(qv, "\xe2\x82\xac=");
	/* bad escapes and encoded NUL */
	ck_assert_int_eq(q("token=ab%2", "token"), QUERY_BAD);
	ck_assert_int_eq(q("token=%zz", "token"), QUERY_BAD);
	ck_assert_int_eq(q("token=a%00b", "token"), QUERY_BAD);
	ck_assert_str_eq(qv, "");
	ck_assert_int_eq(q("x=%&token=ok", "token"), QUERY_FOUND);
	ck_assert_str_eq(qv, "ok");
	/* too long: 31 decoded bytes fit, 32 do not */
	ck_assert_int_eq(
	    q("code=0123456789012345678901234567890", "code"), QUERY_FOUND);
	ck_assert_int_eq(too_long, 0);
	ck_assert_int_eq(
	    q("code=01234567890123456789012345678901", "code"), QUERY_FOUND);
	ck_assert_int_eq(too_long, 1);
	ck_assert_str_eq(qv, "");
	/* decoded length counts, not encoded length */
	ck_assert_int_eq(q("code=%41%41%41%41%41%41%41%41%41%41%41%41%41%41"
	                   "%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"
	                   "%41%41",
	                     "code"),
	    QUERY_FOUND);
	ck_assert_int_eq(too_long, 0);
	ck_assert_uint_eq(strlen(qv), 31);
	/* length-bounded */
	ck_assert_int_eq(
	    query_get("token=abc", 8, "token", qv, sizeof(qv), NULL),
	    QUERY_FOUND);
	ck_assert_str_eq(qv, "ab");
}
END_TEST

static Suite *
gate_suite(void)
{
	Suite *s = suite_create("gate");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_b64_decode);
	tcase_add_test(tc, test_b64_encode);
	tcase_add_test(tc, test_hex_hmac);
	tcase_add_test(tc, test_token_eq);
	tcase_add_test(tc, test_cidr_parse);
	tcase_add_test(tc, test_cidr_match);
	tcase_add_test(tc, test_clientip_untrusted);
	tcase_add_test(tc, test_clientip_trusted_order);
	tcase_add_test(tc, test_clientip_malformed);
	tcase_add_test(tc, test_pubsub_ok);
	tcase_add_test(tc, test_pubsub_invalid);
	tcase_add_test(tc, test_pubsub_fields);
	tcase_add_test(tc, test_wa_messages);
	tcase_add_test(tc, test_wa_statuses);
	tcase_add_test(tc, test_wa_invalid);
	tcase_add_test(tc, test_wa_limits);
	tcase_add_test(tc, test_wa_signature);
	tcase_add_test(tc, test_oauth_roundtrip);
	tcase_add_test(tc, test_oauth_tampered);
	tcase_add_test(tc, test_oauth_payload);
	tcase_add_test(tc, test_query);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tl_run(gate_suite());
}
