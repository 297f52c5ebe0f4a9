/*
 * sentry - relmock's Sentry envelope receiver: POST
 * /api/<project>/envelope/ in the envelope format (a header JSON line,
 * then per item an item header JSON line and its payload: `length` bytes
 * when the item header gives a length, else up to the next newline),
 * authenticated by X-Sentry-Auth (`Sentry sentry_key=...`) or the
 * sentry_key query parameter.
 *
 * Owns the record of the envelopes received, each with its event's
 * level, message and tags picked out, and its counters.  Compressed
 * envelopes (Content-Encoding) are refused with 415: relgate's own
 * client sends them plain.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "gate/crypto.h"
#include "tools/relmock/relmock.h"
#include "util/util.h"

#define KEY_MAX 128

static struct mock_log envelopes;
static uint64_t received, malformed, unauthorized;
static const char *want_key; /* NULL: any key */

static void
sentry_init(const struct mock_conf *conf)
{
	want_key = conf->sentry_key;
}

static void
sentry_reset(void)
{
	mock_log_clear(&envelopes);
	received = malformed = unauthorized = 0;
}

static void
sentry_fini(void)
{
	mock_log_clear(&envelopes);
}

/* auth_key - sentry_key from X-Sentry-Auth, else the query; 0 if none */
static int
auth_key(struct mock_call *call, char *key, size_t len)
{
	const char *h = httpd_req_header(mock_call_req(call), "x-sentry-auth");
	const char *p;
	size_t n;

	key[0] = '\0';
	if (h != NULL && (p = strstr(h, "sentry_key=")) != NULL) {
		p += strlen("sentry_key=");
		n = strcspn(p, ", \t");
		if (n == 0 || n >= len)
			return 0;
		memcpy(key, p, n);
		key[n] = '\0';
		return 1;
	}
	return mock_call_query(call, "sentry_key", key, len) == 1 &&
	    key[0] != '\0';
}

/* message_of - the human message of an event payload */
static json_t *
message_of(json_t *ev)
{
	json_t *m = json_object_get(ev, "message");
	json_t *le = json_object_get(ev, "logentry");
	json_t *ex =
	    json_object_get(json_object_get(ev, "exception"), "values");

	if (json_is_string(m))
		return json_incref(m);
	if (json_is_object(m) &&
	    json_is_string(json_object_get(m, "formatted")))
		return json_incref(json_object_get(m, "formatted"));
	if (json_is_object(m) && json_is_string(json_object_get(m, "message")))
		return json_incref(json_object_get(m, "message"));
	if (json_is_string(json_object_get(le, "formatted")))
		return json_incref(json_object_get(le, "formatted"));
	if (json_is_string(json_object_get(le, "message")))
		return json_incref(json_object_get(le, "message"));
	if (json_is_array(ex) && json_array_size(ex) > 0)
		return json_incref(json_object_get(
		    json_array_get(ex, json_array_size(ex) - 1), "value"));
	return json_null();
}

/* tags_of - tags as an object (Sentry also allows [[k, v], ...]) */
static json_t *
tags_of(json_t *ev)
{
	json_t *t = json_object_get(ev, "tags"), *o, *kv;
	size_t i;

	if (json_is_object(t))
		return json_incref(t);
	o = json_object();
	json_array_foreach(t, i, kv)
	{
		if (json_is_array(kv) && json_array_size(kv) == 2 &&
		    json_is_string(json_array_get(kv, 0)))
			json_object_set(o,
			    json_string_value(json_array_get(kv, 0)),
			    json_array_get(kv, 1));
	}
	return o;
}

/* parse - the envelope into rec's eventId and items; -1 if malformed */
static int
parse(const char *p, size_t len, json_t *rec)
{
	const char *end = p + len, *nl;
	json_t *hdr, *ih, *pl, *items = json_array(), *item, *ev = NULL;
	json_int_t ilen;
	size_t n;

	json_object_set_new(rec, "items", items);
	nl = memchr(p, '\n', len);
	n = nl != NULL ? (size_t)(nl - p) : len;
	if ((hdr = json_loadb(p, n, 0, NULL)) == NULL ||
	    !json_is_object(hdr)) {
		json_decref(hdr);
		return -1;
	}
	json_object_set_new(rec, "eventId",
	    json_object_get(hdr, "event_id") != NULL
	        ? json_incref(json_object_get(hdr, "event_id"))
	        : json_null());
	json_decref(hdr);
	p = nl != NULL ? nl + 1 : end;
	while (p < end) {
		if (*p == '\n') { /* blank line, e.g. the last newline */
			p++;
			continue;
		}
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		ih = json_loadb(p, n, 0, NULL);
		if (!json_is_object(ih) ||
		    !json_is_string(json_object_get(ih, "type"))) {
			json_decref(ih);
			return -1;
		}
		p = nl != NULL ? nl + 1 : end;
		if (json_is_integer(json_object_get(ih, "length"))) {
			ilen =
			    json_integer_value(json_object_get(ih, "length"));
			if (ilen < 0 || ilen > end - p) {
				json_decref(ih);
				return -1;
			}
			n = (size_t)ilen;
		} else {
			nl = memchr(p, '\n', (size_t)(end - p));
			n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		}
		item = json_pack("{s:O,s:I}", "type",
		    json_object_get(ih, "type"), "length", (json_int_t)n);
		pl = json_loadb(p, n, 0, NULL);
		if (json_is_object(pl) &&
		    (strcmp(json_string_value(json_object_get(ih, "type")),
		         "event") == 0 ||
		        json_object_get(pl, "level") != NULL)) {
			json_object_set_new(item, "level",
			    json_is_string(json_object_get(pl, "level"))
			        ? json_incref(json_object_get(pl, "level"))
			        : json_string("error"));
			json_object_set_new(item, "message", message_of(pl));
			json_object_set_new(item, "tags", tags_of(pl));
			if (ev == NULL)
				ev = item;
		}
		json_decref(pl);
		json_decref(ih);
		json_array_append_new(items, item);
		p += n;
		if (p < end && *p == '\n')
			p++;
	}
	if (ev != NULL) {
		json_object_set(rec, "level", json_object_get(ev, "level"));
		json_object_set(
		    rec, "message", json_object_get(ev, "message"));
		json_object_set(rec, "tags", json_object_get(ev, "tags"));
	}
	return 0;
}

static void
sentry_handle(struct mock_call *call)
{
	const char *rest = mock_call_path_rest(call);
	struct mock_fault *f = mock_call_fault(call);
	char project[64], key[KEY_MAX], spec[MOCK_FAULT_SPEC_MAX];
	const char *body, *ce;
	size_t n, len;
	json_t *rec;

	n = strspn(rest,
	    "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
	if (n == 0 || n >= sizeof(project) ||
	    (strcmp(rest + n, "/envelope/") != 0 &&
	        strcmp(rest + n, "/envelope") != 0)) {
		mock_reply_json(call, 404,
		    json_pack("{s:s}", "detail", "relmock: no such path"));
		return;
	}
	memcpy(project, rest, n);
	project[n] = '\0';
	if (!mock_require_method(call, "POST"))
		return;
	if (!auth_key(call, key, sizeof(key)) ||
	    (want_key != NULL &&
	        !crypto_token_eq(
	            want_key, strlen(want_key), key, strlen(key)))) {
		unauthorized++;
		mock_reply_json(call, 401,
		    json_pack("{s:s}", "detail",
		        key[0] != '\0' ? "invalid api key"
		                       : "missing authorization information"));
		return;
	}
	ce = httpd_req_header(mock_call_req(call), "content-encoding");
	if (ce != NULL && strcmp(ce, "identity") != 0) {
		mock_reply_json(call, 415,
		    json_pack("{s:s}", "detail",
		        "relmock: compressed envelopes are not supported"));
		return;
	}
	body = mock_call_body(call, &len);
	mock_fault_format(f, spec, sizeof(spec));
	rec = json_pack("{s:s,s:s,s:I,s:s*}", "project", project, "sentryKey",
	    key, "receivedAt", (json_int_t)now_ms(), "fault",
	    spec[0] != '\0' ? spec : NULL);
	if (parse(body, len, rec) < 0) {
		malformed++;
		json_decref(rec);
		mock_reply_json(call, 400,
		    json_pack("{s:s}", "detail", "invalid envelope"));
		return;
	}
	received++;
	mock_reply_json(call, 200,
	    json_pack("{s:O?}", "id", json_object_get(rec, "eventId")));
	mock_log_add(&envelopes, rec);
}

static int
sentry_control(struct mock_call *call, const char *rest)
{
	if (strcmp(rest, "envelopes") == 0) {
		if (mock_require_method(call, "GET"))
			mock_reply_json(call, 200, mock_log_items(&envelopes));
	} else if (strcmp(rest, "stats") == 0) {
		if (mock_require_method(call, "GET"))
			mock_reply_json(call, 200,
			    json_pack("{s:I,s:I,s:I,s:I}", "received",
			        (json_int_t)received, "malformed",
			        (json_int_t)malformed, "unauthorized",
			        (json_int_t)unauthorized, "dropped",
			        (json_int_t)envelopes.dropped));
	} else {
		return -1;
	}
	return 0;
}

const struct mock_endpoint mock_sentry_ep = {
	.name = "sentry",
	.prefix = "/api/",
	.faultable = 1,
	.init = sentry_init,
	.handle = sentry_handle,
	.control = sentry_control,
	.reset = sentry_reset,
	.fini = sentry_fini,
};
