/*
 * backend - relmock's stand-in for the chat application's backend: the
 * target of relgate's deliveries (SPEC section 3, "Deliveries to the
 * application"): POST /backend/<topic> with Idempotency-Key,
 * X-Relgate-Delivery and X-Relgate-Signature (sha256=<hex HMAC-SHA256 of
 * the raw body with the backend secret>).
 *
 * Owns the record of every delivery (bounded, main.c), the delivery
 * counters, and the armed "fail the next N" behaviour
 * (/_relmock/backend/fail, /recover).  Judges signatures in constant
 * time; never prints the secret.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/crypto.h"
#include "tools/relmock/relmock.h"
#include "util/util.h"

#define MAX_TOPIC 200

static const char *secret; /* NULL: signatures are not judged */
static struct mock_log deliveries;
static json_t *by_topic; /* topic -> count */
static json_t *keys;     /* idempotency key -> times seen */
static uint64_t received, answered_2xx, failed, duplicates, untracked;
/* armed failures: the next fail_n deliveries (-1: all) */
static long fail_n;
static int fail_status, fail_retry_after, fail_reset, fail_stall;

static void
backend_reset(void)
{
	mock_log_clear(&deliveries);
	json_object_clear(by_topic);
	json_object_clear(keys);
	received = answered_2xx = failed = duplicates = untracked = 0;
	fail_n = 0;
}

static void
backend_init(const struct mock_conf *conf)
{
	secret = conf->backend_secret;
	by_topic = json_object();
	keys = json_object();
}

static void
backend_fini(void)
{
	mock_log_clear(&deliveries);
	json_decref(by_topic);
	json_decref(keys);
}

/* signature - true/false, or null when no secret is configured */
static json_t *
signature(const char *hdr, const char *body, size_t len)
{
	unsigned char want[CRYPTO_SHA256_LEN], got[CRYPTO_SHA256_LEN];

	if (secret == NULL)
		return json_null();
	if (hdr == NULL || strncmp(hdr, "sha256=", 7) != 0 ||
	    strlen(hdr + 7) != 2 * CRYPTO_SHA256_LEN ||
	    crypto_hex_decode(hdr + 7, 2 * CRYPTO_SHA256_LEN, got,
	        sizeof(got)) != CRYPTO_SHA256_LEN)
		return json_false();
	crypto_hmac_sha256(secret, strlen(secret), body, len, want);
	return json_boolean(crypto_ct_eq(want, got, sizeof(want)));
}

/* count_key - duplicates by Idempotency-Key; the set is bounded like the
 * records */
static void
count_key(const char *key)
{
	json_t *n = json_object_get(keys, key);

	if (n != NULL) {
		duplicates++;
		json_integer_set(n, json_integer_value(n) + 1);
	} else if (json_object_size(keys) < mock_conf()->max_records) {
		json_object_set_new(keys, key, json_integer(1));
	} else {
		untracked++;
	}
}

/* opt - a header value as a JSON string, or null */
static json_t *
opt(struct httpd_req *req, const char *name)
{
	const char *v = httpd_req_header(req, name);

	return v != NULL ? json_string(v) : json_null();
}

static void
backend_handle(struct mock_call *call)
{
	struct httpd_req *req = mock_call_req(call);
	const char *topic = mock_call_path_rest(call);
	struct mock_fault *f = mock_call_fault(call);
	char spec[MOCK_FAULT_SPEC_MAX];
	const char *key, *body;
	json_t *rec, *n;
	size_t len;
	int status;

	if (!mock_require_method(call, "POST"))
		return;
	if (topic[0] == '\0' || strlen(topic) > MAX_TOPIC ||
	    strchr(topic, '/') != NULL) {
		mock_reply_error(call, 404, "not_found", "bad topic");
		return;
	}
	if (fail_n != 0 && !mock_call_fault_from_request(call)) {
		mock_fault_clear(f);
		f->set = 1;
		f->reset = fail_reset;
		f->stall = fail_stall;
		f->status = fail_reset || fail_stall ? 0 : fail_status;
		f->retry_after = fail_retry_after;
		if (fail_n > 0)
			fail_n--;
	}
	body = mock_call_body(call, &len);
	key = httpd_req_header(req, "idempotency-key");
	status = f->reset || f->stall ? 0 : f->status != 0 ? f->status : 200;
	received++;
	if (status >= 200 && status < 300 && f->drop_after < 0)
		answered_2xx++;
	else
		failed++;
	n = json_object_get(by_topic, topic);
	if (n != NULL)
		json_integer_set(n, json_integer_value(n) + 1);
	else
		json_object_set_new(by_topic, topic, json_integer(1));
	if (key != NULL)
		count_key(key);
	mock_fault_format(f, spec, sizeof(spec));
	rec = json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:i,s:s*}", "topic",
	    topic, "idempotencyKey", opt(req, "idempotency-key"), "deliveryId",
	    opt(req, "x-relgate-delivery"), "requestId",
	    opt(req, "x-request-id"), "signature",
	    opt(req, "x-relgate-signature"), "signatureValid",
	    signature(httpd_req_header(req, "x-relgate-signature"), body, len),
	    "body", mock_json_body(body, len), "receivedAt",
	    (json_int_t)now_ms(), "status", status, "fault",
	    spec[0] != '\0' ? spec : NULL);
	mock_log_add(&deliveries, rec);
	mock_reply_json(call, 200, json_pack("{s:b}", "ok", 1));
}

/* fail - POST /_relmock/backend/fail?n=N&status=S|reset|stall
 * [&retry_after=R] */
static void
ctl_fail(struct mock_call *call)
{
	char n[24], st[24], ra[24];
	long vn, vs = 503, vr = -1;
	char *end;

	if (mock_call_query(call, "n", n, sizeof(n)) < 0 ||
	    mock_call_query(call, "status", st, sizeof(st)) < 0 ||
	    mock_call_query(call, "retry_after", ra, sizeof(ra)) < 0)
		goto bad;
	vn = n[0] != '\0' ? strtol(n, &end, 10) : 1;
	if (n[0] != '\0' && (*end != '\0' || vn < -1))
		goto bad;
	if (strcmp(st, "reset") != 0 && strcmp(st, "stall") != 0 &&
	    st[0] != '\0') {
		vs = strtol(st, &end, 10);
		if (*end != '\0' || vs < 200 || vs > 599)
			goto bad;
	}
	if (ra[0] != '\0') {
		vr = strtol(ra, &end, 10);
		if (*end != '\0' || vr < 0 || vr > 86400)
			goto bad;
	}
	fail_n = vn;
	fail_reset = strcmp(st, "reset") == 0;
	fail_stall = strcmp(st, "stall") == 0;
	fail_status = (int)vs;
	fail_retry_after = (int)vr;
	mock_reply_json(call, 200,
	    json_pack("{s:b,s:I,s:o,s:i}", "ok", 1, "failNext",
	        (json_int_t)fail_n, "status",
	        fail_reset ? json_string("reset") : json_integer(fail_status),
	        "retryAfter", fail_retry_after));
	return;
bad:
	mock_reply_error(call, 400, "invalid_request",
	    "want n=N (-1: until recover), status=200..599|reset|stall, "
	    "retry_after=SECONDS");
}

static json_t *
stats_json(void)
{
	return json_pack("{s:I,s:I,s:I,s:O,s:I,s:I,s:I,s:I,s:{s:I,s:o}}",
	    "received", (json_int_t)received, "answered2xx",
	    (json_int_t)answered_2xx, "failed", (json_int_t)failed, "byTopic",
	    by_topic, "distinctIdempotencyKeys",
	    (json_int_t)(json_object_size(keys) + untracked), "duplicates",
	    (json_int_t)duplicates, "keysUntracked", (json_int_t)untracked,
	    "dropped", (json_int_t)deliveries.dropped, "failNext", "remaining",
	    (json_int_t)fail_n, "status",
	    fail_reset ? json_string("reset") : json_integer(fail_status));
}

static int
backend_control(struct mock_call *call, const char *rest)
{
	if (strcmp(rest, "fail") == 0) {
		if (mock_require_method(call, "POST"))
			ctl_fail(call);
	} else if (strcmp(rest, "recover") == 0) {
		if (mock_require_method(call, "POST")) {
			fail_n = 0;
			mock_reply_json(
			    call, 200, json_pack("{s:b}", "ok", 1));
		}
	} else if (strcmp(rest, "deliveries") == 0) {
		if (mock_require_method(call, "GET"))
			mock_reply_json(
			    call, 200, mock_log_items(&deliveries));
	} else if (strcmp(rest, "stats") == 0) {
		if (mock_require_method(call, "GET"))
			mock_reply_json(call, 200, stats_json());
	} else {
		return -1;
	}
	return 0;
}

const struct mock_endpoint mock_backend_ep = {
	.name = "backend",
	.prefix = "/backend/",
	.faultable = 1,
	.init = backend_init,
	.handle = backend_handle,
	.control = backend_control,
	.reset = backend_reset,
	.fini = backend_fini,
};
