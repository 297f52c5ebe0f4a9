/* fuzz-sources: gate/clientip.c gate/webhook.c gate/oauthstate.c gate/b64.c gate/crypto.c gate/query.c util/util.c util/log.c */
/*
 * fuzz_boundary - libFuzzer target for the request-boundary parsers of
 * gate/.  The first input byte selects the parser, the rest is its input:
 *
 *	0 forwarding-header address, trusted-proxy CIDR, clientip_pick
 *	1 Gmail Pub/Sub push envelope
 *	2 WhatsApp payload and X-Hub-Signature-256 header
 *	3 OAuth state verification
 *	4 query-string lookup
 *	5 base64 / base64url / hex decoding, with round-trip properties
 *
 * Crashes, sanitizer reports, leaks and broken properties (__builtin_trap)
 * are findings.  tests/fuzz.sh builds it with the sources listed above.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gate/b64.h"
#include "gate/clientip.h"
#include "gate/crypto.h"
#include "gate/oauthstate.h"
#include "gate/query.h"
#include "gate/webhook.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c))                                                     \
			__builtin_trap();                                     \
	} while (0)

/* fuzz_hdr - every forwarding header has the fuzz input as its value */
struct fuzz_hdr {
	const char *v;
	size_t len;
};

static const char *
fuzz_get(void *ctx, const char *name, size_t *len)
{
	const struct fuzz_hdr *h = ctx;

	(void)name;
	*len = h->len;
	return h->v;
}

static void
fuzz_clientip(const char *s, size_t n, const char *z)
{
	struct fuzz_hdr fh = { s, n };
	struct clientip_hdrs h = { fuzz_get, &fh };
	struct sockaddr_in6 sin6;
	struct cidr_set set;
	char out[CLIENTIP_BUFSZ], err[256];

	(void)clientip_parse_addr(s, n, out, sizeof(out));
	clientip_set_init(&set);
	if (clientip_set_add(&set, z, err, sizeof(err)) == 0)
		CHECK(set.n == 1 && set.v[0].bits <= 128);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr.s6_addr[15] = 1; /* ::1 */
	(void)clientip_set_add(&set, "::1/128", err, sizeof(err));
	(void)clientip_pick(
	    &set, (const struct sockaddr *)&sin6, &h, out, sizeof(out));
	CHECK(strlen(out) < CLIENTIP_BUFSZ);
}

static void
fuzz_webhooks(const char *s, size_t n, const char *z, int which)
{
	char msg[WEBHOOK_MSG_MAX];
	struct pubsub_push p;
	struct wa_payload *w;
	size_t i;

	if (which == 1) {
		if (pubsub_parse(s, n, &p, msg, sizeof(msg)) == WEBHOOK_OK)
			CHECK(strchr(p.email, '@') != NULL &&
			    p.history_id[0] != '\0');
		CHECK(strlen(msg) < sizeof(msg));
		return;
	}
	w = xmalloc(sizeof(*w));
	if (wa_parse(s, n, w, msg, sizeof(msg)) == WEBHOOK_OK) {
		CHECK(w->n <= WA_MAX_MESSAGES);
		for (i = 0; i < w->n; i++)
			CHECK(w->msg[i].id[0] != '\0' &&
			    json_is_object(w->msg[i].message));
		wa_payload_free(w);
	} else {
		CHECK(w->n == 0);
	}
	free(w);
	(void)wa_signature_ok(z, s, n, "app-secret");
}

static void
fuzz_oauth(const char *s, size_t n)
{
	char uid[OAUTHSTATE_UID_MAX + 1], st[OAUTHSTATE_MAX + 1];
	enum oauthstate_result r;
	long k;

	r = oauthstate_verify("k", s, n, 1700000000000ULL, uid, sizeof(uid));
	if (r != OAUTHSTATE_OK)
		CHECK(uid[0] == '\0');
	/* round trip with the input as a user id (when it is valid UTF-8) */
	if (n > 0 && n <= OAUTHSTATE_UID_MAX && memchr(s, '\0', n) == NULL) {
		memcpy(uid, s, n);
		uid[n] = '\0';
		k = oauthstate_make(
		    "k", uid, 1800000000000ULL, st, sizeof(st));
		if (k > 0) {
			r = oauthstate_verify("k", st, (size_t)k,
			    1700000000000ULL, uid, sizeof(uid));
			CHECK(r == OAUTHSTATE_OK && strlen(uid) == n &&
			    memcmp(uid, s, n) == 0);
		}
	}
}

static void
fuzz_query(const char *s, size_t n)
{
	static const char *names[] = { "token", "hub.mode", "hub.verify_token",
		"hub.challenge", "code", "state", "error" };
	char out[16];
	int too_long;
	size_t i;

	for (i = 0; i < RG_NELEM(names); i++) {
		if (query_get(s, n, names[i], out, sizeof(out), &too_long) !=
		    QUERY_FOUND)
			CHECK(out[0] == '\0');
		CHECK(strlen(out) < sizeof(out));
	}
	(void)query_get(s, n, "token", out, 1, NULL);
}

static void
fuzz_codecs(const char *s, size_t n)
{
	unsigned char *bin;
	char *enc;
	size_t m, plain;
	long k, e;
	int flags;

	bin = xmalloc(B64_DECODED_MAX(n) + 1);
	enc = xmalloc(B64_ENCODED_LEN(B64_DECODED_MAX(n)) + 1);
	plain = n;
	while (plain > 0 && s[plain - 1] == '=')
		plain--;
	for (flags = 1; flags <= 3; flags++) {
		k = b64_decode(s, n, flags, bin, B64_DECODED_MAX(n));
		if (k < 0)
			continue;
		m = (size_t)k;
		/* canonical: re-encoding gives the input back */
		e = b64url_encode(bin, m, enc, B64_ENCODED_LEN(m) + 1);
		CHECK(e >= 0 && (size_t)e == plain);
		if (flags == B64_URL)
			CHECK(memcmp(enc, s, plain) == 0);
		e = b64_encode(bin, m, enc, B64_ENCODED_LEN(m) + 1);
		CHECK(e >= 0 && (size_t)e >= plain);
		if (flags == B64_STD)
			CHECK(memcmp(enc, s, plain) == 0);
	}
	(void)crypto_hex_decode(s, n, bin, B64_DECODED_MAX(n));
	free(enc);
	free(bin);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, *z;
	size_t n;

	if (size == 0)
		return 0;
	/* exact-size copy so that any over-read is an ASan report */
	n = size - 1;
	s = xmalloc(n);
	memcpy(s, data + 1, n);
	z = xmalloc(n + 1);
	memcpy(z, data + 1, n);
	z[n] = '\0';
	switch (data[0] % 6) {
	case 0:
		fuzz_clientip(s, n, z);
		break;
	case 1:
	case 2:
		fuzz_webhooks(s, n, z, data[0] % 6);
		break;
	case 3:
		fuzz_oauth(s, n);
		break;
	case 4:
		fuzz_query(s, n);
		break;
	default:
		fuzz_codecs(s, n);
		break;
	}
	free(z);
	free(s);
	return 0;
}
