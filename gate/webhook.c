/*
 * webhook - see webhook.h.
 */
#include "gate/webhook.h"

#include <assert.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/b64.h"
#include "gate/crypto.h"
#include "util/util.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

/* problems - the "path: problem; ..." message being built */
struct problems {
	char *buf;
	size_t size;
	size_t used;
	unsigned n;       /* items written */
	unsigned dropped; /* items beyond WEBHOOK_MAX_PROBLEMS */
};

static void
pb_init(struct problems *pb, char *buf, size_t size)
{
	pb->buf = buf;
	pb->size = size;
	pb->used = 0;
	pb->n = 0;
	pb->dropped = 0;
	if (size > 0)
		buf[0] = '\0';
}

/* pb_append - formatted text at the end of the message, truncating. */
static void pb_append(struct problems *pb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
pb_append(struct problems *pb, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (pb->used + 1 >= pb->size)
		return;
	va_start(ap, fmt);
	k = vsnprintf(pb->buf + pb->used, pb->size - pb->used, fmt, ap);
	va_end(ap);
	if (k < 0)
		return;
	pb->used += (size_t)k;
	if (pb->used >= pb->size)
		pb->used = pb->size - 1;
}

/* pb_add - one "path: problem" item. */
static void
pb_add(struct problems *pb, const char *path, const char *problem)
{
	if (pb->n >= WEBHOOK_MAX_PROBLEMS) {
		pb->dropped++;
		return;
	}
	pb_append(pb, "%s%s: %s", pb->n > 0 ? "; " : "", path, problem);
	pb->n++;
}

/* pb_done - the result for the problems found. */
static enum webhook_result
pb_done(struct problems *pb)
{
	if (pb->n == 0)
		return WEBHOOK_OK;
	if (pb->dropped > 0)
		pb_append(pb, "; and %u more", pb->dropped);
	return WEBHOOK_INVALID_REQUEST;
}

/* load - parse body as JSON; NULL with the invalid_json message set. */
static json_t *
load(const void *body, size_t len, char *msg, size_t msglen)
{
	json_error_t e;
	json_t *root;

	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
	if (root == NULL && msglen > 0)
		snprintf(msg, msglen,
		    "body is not valid JSON (line %d, column %d)", e.line,
		    e.column);
	return root;
}

/* dump - compact JSON text of v in fresh memory. */
/* --- Gmail Pub/Sub --------------------------------------------------------
 */

/* opt_string - an optional string member copied to out (size outlen);
 * 0 if absent or copied, -1 after reporting a problem. */
static int
opt_string(struct problems *pb, const json_t *obj, const char *key,
    const char *path, char *out, size_t outlen)
{
	const json_t *v = json_object_get(obj, key);
	char problem[64];

	out[0] = '\0';
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		pb_add(pb, path, "must be a string");
		return -1;
	}
	if (json_string_length(v) > outlen - 1) {
		snprintf(problem, sizeof(problem),
		    "must be at most %zu characters", outlen - 1);
		pb_add(pb, path, problem);
		return -1;
	}
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* check_email - emailAddress of the decoded data. */
static void
check_email(struct problems *pb, const json_t *v, struct pubsub_push *out)
{
	static const char path[] = "message.data.emailAddress";
	const char *s;
	size_t n, i;

	if (v == NULL) {
		pb_add(pb, path, "required");
		return;
	}
	if (!json_is_string(v)) {
		pb_add(pb, path, "must be a string");
		return;
	}
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0) {
		pb_add(pb, path, "must not be empty");
		return;
	}
	if (n > PUBSUB_EMAIL_MAX) {
		pb_add(pb, path,
		    "must be at most " STR(PUBSUB_EMAIL_MAX) " characters");
		return;
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			pb_add(
			    pb, path, "must not contain control characters");
			return;
		}
	if (memchr(s, '@', n) == NULL) {
		pb_add(pb, path, "must contain '@'");
		return;
	}
	memcpy(out->email, s, n + 1);
}

/* check_history - historyId: digits or a non-negative integer. */
static void
check_history(struct problems *pb, const json_t *v, struct pubsub_push *out)
{
	static const char path[] = "message.data.historyId";
	static const char kind[] =
	    "must be a string of digits or a non-negative integer";
	uint64_t h = 0;
	const char *s;
	size_t n, i;
	unsigned d;

	if (v == NULL) {
		pb_add(pb, path, "required");
		return;
	}
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0) {
			pb_add(pb, path, kind);
			return;
		}
		h = (uint64_t)json_integer_value(v);
	} else if (json_is_string(v)) {
		s = json_string_value(v);
		n = json_string_length(v);
		if (n == 0) {
			pb_add(pb, path, kind);
			return;
		}
		for (i = 0; i < n; i++) {
			if (s[i] < '0' || s[i] > '9') {
				pb_add(pb, path, kind);
				return;
			}
			d = (unsigned)(s[i] - '0');
			if (h > (UINT64_MAX - d) / 10) {
				pb_add(pb, path, "out of range");
				return;
			}
			h = h * 10 + d;
		}
	} else {
		pb_add(pb, path, kind);
		return;
	}
	snprintf(out->history_id, sizeof(out->history_id), "%llu",
	    (unsigned long long)h);
}

/* check_data - message.data: base64 of the Gmail notification. */
static void
check_data(struct problems *pb, const json_t *v, struct pubsub_push *out)
{
	static const char path[] = "message.data";
	unsigned char *raw;
	json_t *doc;
	size_t n;
	long k;

	if (v == NULL) {
		pb_add(pb, path, "required");
		return;
	}
	if (!json_is_string(v)) {
		pb_add(pb, path, "must be a base64 string");
		return;
	}
	n = json_string_length(v);
	raw = xmalloc(B64_DECODED_MAX(n));
	k = b64_decode(json_string_value(v), n, B64_STD | B64_URL, raw,
	    B64_DECODED_MAX(n));
	if (k < 0) {
		pb_add(pb, path, "must be a base64 string");
		free(raw);
		return;
	}
	doc = json_loadb(
	    (const char *)raw, (size_t)k, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (doc == NULL || !json_is_object(doc)) {
		pb_add(pb, path, "must decode to a JSON object");
		json_decref(doc);
		return;
	}
	check_email(pb, json_object_get(doc, "emailAddress"), out);
	check_history(pb, json_object_get(doc, "historyId"), out);
	json_decref(doc);
}

enum webhook_result
pubsub_parse(const void *body, size_t len, struct pubsub_push *out, char *msg,
    size_t msglen)
{
	struct problems pb;
	const json_t *m;
	enum webhook_result r;
	json_t *root;

	memset(out, 0, sizeof(*out));
	pb_init(&pb, msg, msglen);
	root = load(body, len, msg, msglen);
	if (root == NULL)
		return WEBHOOK_INVALID_JSON;
	if (!json_is_object(root)) {
		pb_add(&pb, "body", "must be a JSON object");
		goto out;
	}
	m = json_object_get(root, "message");
	if (m == NULL) {
		pb_add(&pb, "message", "required");
	} else if (!json_is_object(m)) {
		pb_add(&pb, "message", "must be an object");
	} else {
		check_data(&pb, json_object_get(m, "data"), out);
		(void)opt_string(&pb, m, "messageId", "message.messageId",
		    out->message_id, sizeof(out->message_id));
	}
	m = json_object_get(root, "subscription");
	if (m != NULL && !json_is_string(m) && !json_is_null(m))
		pb_add(&pb, "subscription", "must be a string");
out:
	json_decref(root);
	r = pb_done(&pb);
	if (r != WEBHOOK_OK)
		memset(out, 0, sizeof(*out));
	return r;
}

/* --- WhatsApp --------------------------------------------------------------
 */

/* wa_ctx - state of one wa_parse walk */
struct wa_ctx {
	struct problems pb;
	struct wa_payload *out;
	size_t total; /* messages seen, including those beyond the cap */
};

/* need_string - a required non-empty string member; NULL after a
 * problem. */
static const char *
need_string(struct wa_ctx *c, const json_t *obj, const char *key,
    const char *path, size_t max)
{
	const json_t *v = json_object_get(obj, key);
	char problem[64];

	if (v == NULL) {
		pb_add(&c->pb, path, "required");
		return NULL;
	}
	if (!json_is_string(v)) {
		pb_add(&c->pb, path, "must be a string");
		return NULL;
	}
	if (json_string_length(v) == 0) {
		pb_add(&c->pb, path, "must not be empty");
		return NULL;
	}
	if (max > 0 && json_string_length(v) > max) {
		snprintf(problem, sizeof(problem),
		    "must be at most %zu characters", max);
		pb_add(&c->pb, path, problem);
		return NULL;
	}
	return json_string_value(v);
}

/* wa_messages - value.messages of one change. */
static void
wa_messages(struct wa_ctx *c, const json_t *arr, const char *base,
    const char *entry_id, const json_t *meta)
{
	struct wa_message *wm;
	const json_t *m;
	const char *id;
	char path[256]; /* longer than base + suffixes */
	size_t i;

	for (i = 0; i < json_array_size(arr); i++) {
		m = json_array_get(arr, i);
		c->total++;
		snprintf(path, sizeof(path), "%s.messages[%zu]", base, i);
		if (!json_is_object(m)) {
			pb_add(&c->pb, path, "must be an object");
			continue;
		}
		snprintf(path, sizeof(path), "%s.messages[%zu].id", base, i);
		id = need_string(c, m, "id", path, WA_ID_MAX);
		if (id == NULL || c->pb.n > 0 || entry_id == NULL ||
		    c->out->n >= WA_MAX_MESSAGES)
			continue;
		wm = &c->out->msg[c->out->n++];
		wm->id = xstrdup(id);
		wm->message = json_incref((json_t *)(uintptr_t)m);
		wm->entry_id = xstrdup(entry_id);
		wm->metadata = json_is_object(meta) ?
		    json_incref((json_t *)(uintptr_t)meta) :
		    NULL;
	}
}

/* wa_change - entry[i].changes[j]. */
static void
wa_change(
    struct wa_ctx *c, const json_t *ch, const char *base, const char *entry_id)
{
	const json_t *value, *v;
	char path[160];

	if (!json_is_object(ch)) {
		pb_add(&c->pb, base, "must be an object");
		return;
	}
	snprintf(path, sizeof(path), "%s.field", base);
	(void)need_string(c, ch, "field", path, 0);
	snprintf(path, sizeof(path), "%s.value", base);
	value = json_object_get(ch, "value");
	if (value == NULL) {
		pb_add(&c->pb, path, "required");
		return;
	}
	if (!json_is_object(value)) {
		pb_add(&c->pb, path, "must be an object");
		return;
	}
	snprintf(path, sizeof(path), "%s.value.statuses", base);
	v = json_object_get(value, "statuses");
	if (v != NULL && !json_is_array(v))
		pb_add(&c->pb, path, "must be an array");
	snprintf(path, sizeof(path), "%s.value.messages", base);
	v = json_object_get(value, "messages");
	if (v == NULL)
		return;
	if (!json_is_array(v)) {
		pb_add(&c->pb, path, "must be an array");
		return;
	}
	snprintf(path, sizeof(path), "%s.value", base);
	wa_messages(c, v, path, entry_id, json_object_get(value, "metadata"));
}

/* wa_entry - entry[i]. */
static void
wa_entry(struct wa_ctx *c, const json_t *e, size_t i)
{
	const json_t *changes;
	const char *id;
	char path[96];
	size_t j, n;

	snprintf(path, sizeof(path), "entry[%zu]", i);
	if (!json_is_object(e)) {
		pb_add(&c->pb, path, "must be an object");
		return;
	}
	snprintf(path, sizeof(path), "entry[%zu].id", i);
	id = need_string(c, e, "id", path, WA_ID_MAX);
	snprintf(path, sizeof(path), "entry[%zu].changes", i);
	changes = json_object_get(e, "changes");
	if (changes == NULL) {
		pb_add(&c->pb, path, "required");
		return;
	}
	if (!json_is_array(changes)) {
		pb_add(&c->pb, path, "must be an array");
		return;
	}
	n = json_array_size(changes);
	if (n > WA_MAX_CHANGES) {
		pb_add(&c->pb, path,
		    "must have at most " STR(WA_MAX_CHANGES) " items");
		n = WA_MAX_CHANGES;
	}
	for (j = 0; j < n; j++) {
		snprintf(path, sizeof(path), "entry[%zu].changes[%zu]", i, j);
		wa_change(c, json_array_get(changes, j), path, id);
	}
}

void
wa_payload_free(struct wa_payload *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->msg[i].id);
		json_decref(p->msg[i].message);
		free(p->msg[i].entry_id);
		json_decref(p->msg[i].metadata);
	}
	p->n = 0;
}

enum webhook_result
wa_parse(const void *body, size_t len, struct wa_payload *out, char *msg,
    size_t msglen)
{
	const json_t *entry;
	enum webhook_result r;
	struct wa_ctx c;
	json_t *root;
	size_t i, n;

	out->n = 0;
	memset(&c, 0, sizeof(c));
	c.out = out;
	pb_init(&c.pb, msg, msglen);
	root = load(body, len, msg, msglen);
	if (root == NULL)
		return WEBHOOK_INVALID_JSON;
	if (!json_is_object(root)) {
		pb_add(&c.pb, "body", "must be a JSON object");
		goto out;
	}
	(void)need_string(&c, root, "object", "object", 0);
	entry = json_object_get(root, "entry");
	if (entry == NULL) {
		pb_add(&c.pb, "entry", "required");
		goto out;
	}
	if (!json_is_array(entry)) {
		pb_add(&c.pb, "entry", "must be an array");
		goto out;
	}
	n = json_array_size(entry);
	if (n > WA_MAX_ENTRIES) {
		pb_add(&c.pb, "entry",
		    "must have at most " STR(WA_MAX_ENTRIES) " items");
		n = WA_MAX_ENTRIES;
	}
	for (i = 0; i < n; i++)
		wa_entry(&c, json_array_get(entry, i), i);
	if (c.total > WA_MAX_MESSAGES)
		pb_add(&c.pb, "entry",
		    "more than " STR(
		        WA_MAX_MESSAGES) " messages in one payload");
out:
	json_decref(root);
	r = pb_done(&c.pb);
	if (r != WEBHOOK_OK)
		wa_payload_free(out);
	return r;
}

/* --- signatures and tokens ------------------------------------------------
 */

int
wa_signature_ok(const char *header_value, const void *body, size_t len,
    const char *app_secret)
{
	static const char prefix[] = "sha256=";
	unsigned char want[CRYPTO_SHA256_LEN], got[CRYPTO_SHA256_LEN];
	const size_t plen = sizeof(prefix) - 1;
	size_t hlen;

	if (header_value == NULL || app_secret == NULL ||
	    app_secret[0] == '\0')
		return 0;
	hlen = strlen(header_value);
	if (hlen != plen + 2 * CRYPTO_SHA256_LEN ||
	    memcmp(header_value, prefix, plen) != 0)
		return 0;
	if (crypto_hex_decode(header_value + plen, hlen - plen, got,
	        sizeof(got)) != CRYPTO_SHA256_LEN)
		return 0;
	crypto_hmac_sha256(app_secret, strlen(app_secret), body, len, want);
	return crypto_ct_eq(want, got, sizeof(want));
}

int
webhook_token_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	return crypto_token_eq(a, alen, b, blen);
}

int
wa_challenge_ok(const char *challenge)
{
	size_t n = 0;

	for (; challenge[n] != '\0'; n++)
		if (challenge[n] < '0' || challenge[n] > '9')
			return 0;
	return n >= 1 && n <= 256;
}
