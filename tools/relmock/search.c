/*
 * search - relmock's stand-ins for the search APIs behind relgate's
 * default tools (SPEC section 7):
 *
 *   POST /serper/search, /serper/shopping   Serper: header X-API-KEY,
 *        body {"q": string, "num": 1..20 (default 5)}
 *   GET  /ebay/buy/browse/v1/item_summary/search?q=…&limit=…   eBay
 *        Browse: header Authorization: Bearer <token>
 *
 * The answers are deterministic from the query, in the shape of the real
 * APIs (organic / shopping results; itemSummaries).  The keys come from
 * the config file's sections ("serper": {"key": …}, "ebay": {"token": …});
 * defaults "relmock-serper-key" and "relmock-ebay-token".  A wrong key:
 * 401.  Faults apply as to every endpoint (faults/serper, faults/ebay).
 * Counters: GET /_relmock/serper/stats, /_relmock/ebay/stats.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/relmock/relmock.h"
#include "util/log.h"
#include "util/util.h"

#define Q_MAX 512
#define NUM_MAX 20

struct counts {
	uint64_t requests, answered, unauthorized, bad;
	uint64_t search, shopping; /* serper's two */
};

static const char *serper_key = "relmock-serper-key";
static const char *ebay_token = "relmock-ebay-token";
static struct counts serper, ebay;

static const char *
section_str(const struct mock_conf *conf, const char *sect, const char *key,
    const char *dflt)
{
	json_t *s = json_object_get(conf->json, sect), *v;

	if (s == NULL)
		return dflt;
	if (!json_is_object(s))
		fatalx("config: %s must be an object", sect);
	v = json_object_get(s, key);
	if (v == NULL)
		return dflt;
	if (!json_is_string(v) || json_string_length(v) == 0)
		fatalx("config: %s.%s must be a non-empty string", sect, key);
	return json_string_value(v);
}

static json_t *
counts_json(const struct counts *c, int with_kinds)
{
	json_t *j = json_pack("{s:I,s:I,s:I,s:I}", "requests",
	    (json_int_t)c->requests, "answered", (json_int_t)c->answered,
	    "unauthorized", (json_int_t)c->unauthorized, "bad",
	    (json_int_t)c->bad);

	if (with_kinds) {
		json_object_set_new(j, "search", json_integer((json_int_t)c->search));
		json_object_set_new(j, "shopping",
		    json_integer((json_int_t)c->shopping));
	}
	return j;
}

/* slug - q with every byte outside [a-z0-9] as '-', lower case */
static void
slug(const char *q, char *out, size_t len)
{
	size_t i;

	for (i = 0; q[i] != '\0' && i + 1 < len; i++) {
		char c = q[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[i] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c :
									      '-';
	}
	out[i] = '\0';
}

/* --- serper ---------------------------------------------------------------*/

static void
serper_init(const struct mock_conf *conf)
{
	serper_key = section_str(conf, "serper", "key", serper_key);
}

static void
serper_reset(void)
{
	memset(&serper, 0, sizeof(serper));
}

static void
serper_handle(struct mock_call *call)
{
	const char *rest = mock_call_path_rest(call);
	const char *key = httpd_req_header(mock_call_req(call), "x-api-key");
	int shopping = strcmp(rest, "shopping") == 0;
	json_t *j, *list;
	const char *body;
	char s[Q_MAX];
	size_t len;
	json_int_t num = 5;

	serper.requests++;
	if (!shopping && strcmp(rest, "search") != 0) {
		mock_reply_error(call, 404, "not_found", "no such endpoint");
		return;
	}
	if (!mock_require_method(call, "POST"))
		return;
	if (key == NULL || strcmp(key, serper_key) != 0) {
		serper.unauthorized++;
		mock_reply_json(call, 401, json_pack("{s:s,s:i}", "message",
		    "Unauthorized.", "statusCode", 401));
		return;
	}
	body = mock_call_body(call, &len);
	j = json_loadb(body, len, 0, NULL);
	if (!json_is_string(json_object_get(j, "q")) ||
	    json_string_length(json_object_get(j, "q")) == 0 ||
	    json_string_length(json_object_get(j, "q")) >= Q_MAX ||
	    (json_object_get(j, "num") != NULL &&
		(!json_is_integer(json_object_get(j, "num")) ||
		    (num = json_integer_value(json_object_get(j, "num"))) < 1 ||
		    num > NUM_MAX))) {
		serper.bad++;
		json_decref(j);
		mock_reply_json(call, 400, json_pack("{s:s,s:i}", "message",
		    "want {\"q\": a non-empty string, \"num\": 1..20}",
		    "statusCode", 400));
		return;
	}
	slug(json_string_value(json_object_get(j, "q")), s, sizeof(s));
	list = json_array();
	for (json_int_t i = 1; i <= num; i++) {
		char *title = xasprintf("%s %lld for %s",
		    shopping ? "Offer" : "Result", (long long)i,
		    json_string_value(json_object_get(j, "q")));
		char *link = xasprintf("https://example.com/%s/%lld", s,
		    (long long)i);

		json_array_append_new(list, shopping ?
		    json_pack("{s:s,s:s,s:s,s:s,s:I}", "title", title, "price",
			"$10.00", "source", "Example Store", "link", link,
			"position", i) :
		    json_pack("{s:s,s:s,s:s,s:I}", "title", title, "link", link,
			"snippet", "A result relmock made for the query.",
			"position", i));
		free(title);
		free(link);
	}
	if (shopping)
		serper.shopping++;
	else
		serper.search++;
	serper.answered++;
	mock_reply_json(call, 200, json_pack("{s:{s:O,s:I,s:s},s:o}",
	    "searchParameters", "q", json_object_get(j, "q"), "num", num,
	    "type", shopping ? "shopping" : "search",
	    shopping ? "shopping" : "organic", list));
	json_decref(j);
}

static int
serper_control(struct mock_call *call, const char *rest)
{
	if (strcmp(rest, "stats") != 0)
		return -1;
	if (mock_require_method(call, "GET"))
		mock_reply_json(call, 200, counts_json(&serper, 1));
	return 0;
}

const struct mock_endpoint mock_serper_ep = {
	.name = "serper",
	.prefix = "/serper/",
	.faultable = 1,
	.init = serper_init,
	.handle = serper_handle,
	.control = serper_control,
	.reset = serper_reset,
};

/* --- ebay ------------------------------------------------------------------*/

static void
ebay_init(const struct mock_conf *conf)
{
	ebay_token = section_str(conf, "ebay", "token", ebay_token);
}

static void
ebay_reset(void)
{
	memset(&ebay, 0, sizeof(ebay));
}

static void
ebay_handle(struct mock_call *call)
{
	const char *auth = httpd_req_header(mock_call_req(call),
	    "authorization");
	char q[Q_MAX], lim[16], s[Q_MAX];
	json_t *items;
	long limit = 3;

	ebay.requests++;
	if (strcmp(mock_call_path_rest(call),
		"buy/browse/v1/item_summary/search") != 0) {
		mock_reply_error(call, 404, "not_found", "no such endpoint");
		return;
	}
	if (!mock_require_method(call, "GET"))
		return;
	if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0 ||
	    strcmp(auth + 7, ebay_token) != 0) {
		ebay.unauthorized++;
		mock_reply_json(call, 401, json_pack("{s:[{s:i,s:s}]}",
		    "errors", "errorId", 1001, "message",
		    "Invalid access token"));
		return;
	}
	if (mock_call_query(call, "q", q, sizeof(q)) != 1 || q[0] == '\0' ||
	    (mock_call_query(call, "limit", lim, sizeof(lim)) == 1 &&
		lim[0] != '\0' &&
		((limit = strtol(lim, NULL, 10)) < 1 || limit > NUM_MAX))) {
		ebay.bad++;
		mock_reply_json(call, 400, json_pack("{s:[{s:i,s:s}]}",
		    "errors", "errorId", 12001, "message",
		    "want q (non-empty) and limit 1..20"));
		return;
	}
	slug(q, s, sizeof(s));
	items = json_array();
	for (long i = 1; i <= limit; i++) {
		char *id = xasprintf("v1|%s-%ld|0", s, i);
		char *title = xasprintf("%s item %ld", q, i);

		json_array_append_new(items, json_pack("{s:s,s:s,s:{s:s,s:s}}",
		    "itemId", id, "title", title, "price", "value", "12.00",
		    "currency", "USD"));
		free(id);
		free(title);
	}
	ebay.answered++;
	mock_reply_json(call, 200, json_pack("{s:I,s:I,s:o}", "total",
	    (json_int_t)limit, "limit", (json_int_t)limit, "itemSummaries",
	    items));
}

static int
ebay_control(struct mock_call *call, const char *rest)
{
	if (strcmp(rest, "stats") != 0)
		return -1;
	if (mock_require_method(call, "GET"))
		mock_reply_json(call, 200, counts_json(&ebay, 0));
	return 0;
}

const struct mock_endpoint mock_ebay_ep = {
	.name = "ebay",
	.prefix = "/ebay/",
	.faultable = 1,
	.init = ebay_init,
	.handle = ebay_handle,
	.control = ebay_control,
	.reset = ebay_reset,
};
