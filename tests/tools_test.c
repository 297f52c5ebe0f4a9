/*
 * tools_test - the tools of the config (gate/tools): the default three
 * parse with their keys in the environment and take the seeds' knobs,
 * and refuse to without them; every validation error is one line naming
 * the tool and the member; templates render whole values with their JSON
 * type and in-string references as text, leaving absent arguments out;
 * arguments are checked against the parameters; GET queries are
 * percent-encoded; the OpenAI tools array and the queue's limits.
 *
 * Tool JSON in this file is written with ' for " (see cfg_with).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "gate/tools.h"
#include "shm/circuit.h"
#include "testlib.h"
#include "util/util.h"

static struct config *cfg;
static char err[512];

static void
setup(void)
{
	char e[256];

	unsetenv("SERPER_API_KEY");
	unsetenv("EBAY_OAUTH_TOKEN");
	cfg = config_load(NULL, CONFIG_NO_ENV, e, sizeof(e));
	ck_assert_msg(cfg != NULL, "%s", e);
	err[0] = '\0';
}

static void
teardown(void)
{
	config_free(cfg);
	unsetenv("SERPER_API_KEY");
	unsetenv("EBAY_OAUTH_TOKEN");
	unsetenv("TOOLS_TEST_KEY");
}

static void
set_keys(void)
{
	ck_assert_int_eq(setenv("SERPER_API_KEY", "serper-secret", 1), 0);
	ck_assert_int_eq(setenv("EBAY_OAUTH_TOKEN", "Bearer ebay-secret", 1),
	    0);
}

/* jsonq - text with ' for ", parsed (the test fails on bad JSON). */
static json_t *
jsonq(const char *text)
{
	char *s = xstrdup(text);
	json_error_t je;
	json_t *j;

	for (char *p = s; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(s, JSON_DECODE_ANY, &je);
	ck_assert_msg(j != NULL, "bad test JSON %s: %s", s, je.text);
	free(s);
	return j;
}

/* cfg_with - cfg's tools replaced by text (jsonq). */
static void
cfg_with(const char *text)
{
	json_decref(cfg->tools);
	cfg->tools = jsonq(text);
}

#define PARAMS                                                            \
	"'parameters':{'type':'object','properties':{'query':{'type':"    \
	"'string'},'num':{'type':'integer'},'flag':{'type':'boolean'}},"  \
	"'required':['query']}"
#define TOOL_T(extra)                                                     \
	"{'name':'t','description':'a tool'," PARAMS ","                  \
	"'upstream':{'method':'POST','url':'https://example.test/s',"     \
	"'headers':{'X-API-KEY':'$TOOLS_TEST_KEY'},"                       \
	"'body':{'q':'{{query}}'}},'circuit':'serper_search',"            \
	"'bulkhead':'serper_search'" extra "}"
#define POST_T(extra) "[" TOOL_T(extra) "]"

/* parse_fails - tools_parse of text refuses with exactly line. */
static void
parse_fails(const char *text, const char *line)
{
	struct tool_set ts = { NULL, 0 };

	cfg_with(text);
	ck_assert_int_eq(tools_parse(cfg, &ts, err, sizeof(err)), -1);
	ck_assert_str_eq(err, line);
	ck_assert_ptr_null(ts.t);
	ck_assert_uint_eq(ts.n, 0);
}

static void
parse_ok(const char *text, struct tool_set *ts)
{
	cfg_with(text);
	ck_assert_msg(tools_parse(cfg, ts, err, sizeof(err)) == 0, "%s", err);
}

START_TEST(default_tools)
{
	struct tool_set ts;
	const struct tool_def *w, *g, *p;

	set_keys();
	ck_assert_msg(tools_parse(cfg, &ts, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(ts.n, 3);
	w = tools_find(&ts, "search_web");
	g = tools_find(&ts, "search_global");
	p = tools_find(&ts, "search_products");
	ck_assert(w != NULL && g != NULL && p != NULL);
	ck_assert_ptr_null(tools_find(&ts, "search"));

	ck_assert_int_eq(w->qos, JOBQ_INTERACTIVE);
	ck_assert_str_eq(w->method, "POST");
	ck_assert_str_eq(w->url, "https://google.serper.dev/search");
	ck_assert_uint_eq(w->nheaders, 1);
	ck_assert_str_eq(w->hname[0], "X-API-KEY");
	ck_assert_str_eq(w->hvalue[0], "serper-secret");
	ck_assert_uint_eq(w->provider, CB_PROV_SERPER_SEARCH);
	ck_assert_str_eq(w->cache_ns, "search_web_v1");
	ck_assert_uint_eq(w->cache_ttl_ms, 300000);
	ck_assert_uint_eq(w->queue_max, 200);  /* TOOL_JOB_QMAX_WEB */
	ck_assert_uint_eq(w->running_max, 8);  /* TOOL_JOB_RUNMAX_WEB */
	ck_assert_uint_eq(w->timeout_ms, 8000);
	ck_assert_uint_eq(w->retries, 2);
	ck_assert_ptr_nonnull(w->body);
	ck_assert_ptr_null(w->query);

	ck_assert_int_eq(g->qos, JOBQ_BATCH);
	ck_assert_str_eq(g->url, "https://google.serper.dev/shopping");
	ck_assert_str_eq(g->hvalue[0], "serper-secret");
	ck_assert_uint_eq(g->provider, CB_PROV_GLOBAL_SEARCH);
	ck_assert_str_eq(g->cache_ns, "search_global_v1");
	ck_assert_uint_eq(g->cache_ttl_ms, 300000);
	ck_assert_uint_eq(g->queue_max, 100); /* TOOL_JOB_QMAX_GLOB */
	ck_assert_uint_eq(g->running_max, 4); /* TOOL_JOB_RUNMAX_GLOB */

	ck_assert_str_eq(p->method, "GET");
	ck_assert_str_eq(p->hname[0], "Authorization");
	ck_assert_str_eq(p->hvalue[0], "Bearer ebay-secret");
	ck_assert_uint_eq(p->provider, CB_PROV_EBAY_SEARCH);
	ck_assert_str_eq(p->cache_ns, "search_products_v1");
	ck_assert_uint_eq(p->cache_ttl_ms, 600000);
	ck_assert_uint_eq(p->queue_max, 200);
	ck_assert_uint_eq(p->running_max, 8);
	ck_assert_ptr_null(p->body);
	ck_assert_ptr_nonnull(p->query);
	tools_free(&ts);
	ck_assert_uint_eq(ts.n, 0);
}
END_TEST

START_TEST(default_tools_follow_the_knobs)
{
	struct tool_set ts;
	const struct tool_def *w, *g, *p;

	set_keys();
	cfg->tool_job_qmax_web = 7;
	cfg->tool_job_runmax_web = 3;
	cfg->tool_job_qmax_glob = 11;
	cfg->tool_job_runmax_prod = 5;
	cfg->tool_cache_web_search_ttl_ms = 120000;
	cfg->tool_cache_product_search_ttl_ms = 900000;
	free(cfg->tool_cache_web_search_namespace_version);
	cfg->tool_cache_web_search_namespace_version = xstrdup("v3");
	free(cfg->tool_cache_products_ns_ver);
	cfg->tool_cache_products_ns_ver = xstrdup("12");
	ck_assert_msg(tools_parse(cfg, &ts, err, sizeof(err)) == 0, "%s", err);
	w = tools_find(&ts, "search_web");
	g = tools_find(&ts, "search_global");
	p = tools_find(&ts, "search_products");
	ck_assert_uint_eq(w->queue_max, 7);
	ck_assert_uint_eq(w->running_max, 3);
	ck_assert_str_eq(w->cache_ns, "search_web_v3");
	ck_assert_uint_eq(w->cache_ttl_ms, 120000);
	ck_assert_uint_eq(g->queue_max, 11);
	ck_assert_str_eq(g->cache_ns, "search_global_v3");
	ck_assert_uint_eq(g->cache_ttl_ms, 120000);
	ck_assert_uint_eq(p->running_max, 5);
	ck_assert_str_eq(p->cache_ns, "search_products_v12");
	ck_assert_uint_eq(p->cache_ttl_ms, 900000);
	tools_free(&ts);

	free(cfg->tool_cache_products_ns_ver);
	cfg->tool_cache_products_ns_ver = xstrdup("latest");
	ck_assert_int_eq(tools_parse(cfg, &ts, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "tools[2] (search_products).cache.version: "
			      "TOOL_CACHE_PRODUCTS_NS_VER is \"latest\", not "
			      "v<number>");
}
END_TEST

START_TEST(default_tools_need_their_keys)
{
	struct tool_set ts;

	ck_assert_int_eq(tools_parse(cfg, &ts, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "tools[0] (search_web).upstream.headers."
			      "X-API-KEY: $SERPER_API_KEY is not set in the "
			      "environment");
	ck_assert_int_eq(setenv("SERPER_API_KEY", "k", 1), 0);
	ck_assert_int_eq(tools_parse(cfg, &ts, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "tools[2] (search_products).upstream.headers."
			      "Authorization: $EBAY_OAUTH_TOKEN is not set in "
			      "the environment");
	/* empty is not set either */
	ck_assert_int_eq(setenv("EBAY_OAUTH_TOKEN", "", 1), 0);
	ck_assert_int_eq(tools_parse(cfg, &ts, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "$EBAY_OAUTH_TOKEN is not set"));
	ck_assert_int_eq(setenv("EBAY_OAUTH_TOKEN", "Bearer t", 1), 0);
	ck_assert_int_eq(tools_parse(cfg, &ts, err, sizeof(err)), 0);
	tools_free(&ts);
	/* no tools at all: fine */
	cfg_with("[]");
	ck_assert_int_eq(tools_parse(cfg, &ts, err, sizeof(err)), 0);
	ck_assert_uint_eq(ts.n, 0);
	ck_assert_ptr_null(tools_openai(&ts));
	tools_free(&ts);
}
END_TEST

START_TEST(explicit_values_and_other_defaults)
{
	struct tool_set ts;
	const struct tool_def *t;

	setenv("TOOLS_TEST_KEY", "v", 1);
	/* a default tool's name with every value given: the knobs do not
	 * apply */
	parse_ok("[{'name':'search_web'," PARAMS ",'qos':'realtime',"
		 "'upstream':{'method':'POST','url':'http://127.0.0.1:9/x'},"
		 "'timeout_ms':500,'retries':0,'circuit':'ebay_search',"
		 "'bulkhead':'ebay_search','cache':{'namespace':'web',"
		 "'version':4,'ttl_ms':5000},'queue_max':9,'running_max':2}]",
	    &ts);
	t = &ts.t[0];
	ck_assert_int_eq(t->qos, JOBQ_REALTIME);
	ck_assert_uint_eq(t->nheaders, 0);
	ck_assert_uint_eq(t->timeout_ms, 500);
	ck_assert_uint_eq(t->retries, 0);
	ck_assert_str_eq(t->cache_ns, "web_v4");
	ck_assert_uint_eq(t->cache_ttl_ms, 5000);
	ck_assert_uint_eq(t->queue_max, 9);
	ck_assert_uint_eq(t->running_max, 2);
	tools_free(&ts);
	/* another tool: TOOLS_DEFAULT_*, no cache */
	parse_ok(POST_T(""), &ts);
	t = &ts.t[0];
	ck_assert_int_eq(t->qos, TOOLS_DEFAULT_QOS);
	ck_assert_str_eq(t->cache_ns, "");
	ck_assert_uint_eq(t->queue_max, TOOLS_DEFAULT_QUEUE_MAX);
	ck_assert_uint_eq(t->running_max, TOOLS_DEFAULT_RUNNING_MAX);
	ck_assert_uint_eq(t->timeout_ms, TOOLS_DEFAULT_TIMEOUT_MS);
	ck_assert_uint_eq(t->retries, TOOLS_DEFAULT_RETRIES);
	ck_assert_str_eq(t->description, "a tool");
	tools_free(&ts);
	parse_ok(POST_T(",'cache':{'namespace':'mine'}"), &ts);
	ck_assert_str_eq(ts.t[0].cache_ns, "mine_v1");
	ck_assert_uint_eq(ts.t[0].cache_ttl_ms, TOOLS_DEFAULT_CACHE_TTL_MS);
	tools_free(&ts);
}
END_TEST

START_TEST(validation_errors)
{
	setenv("TOOLS_TEST_KEY", "v", 1);
	parse_fails("{}", "tools: must be an array");
	parse_fails("[1]", "tools[0]: must be an object");
	parse_fails("[{'name':'a b'}]",
	    "tools[0].name: must be 1..63 of [A-Za-z0-9_-]");
	parse_fails(POST_T(",'colour':'red'"),
	    "tools[0] (t): unknown member \"colour\"");
	parse_fails(POST_T(",'circuit':'nope'"),
	    "tools[0] (t).circuit: not a provider of relgate's circuits "
	    "(relctl circuit list names them)");
	parse_fails(POST_T(",'bulkhead':'ebay_search'"),
	    "tools[0] (t).bulkhead: must be the same provider as circuit "
	    "(\"serper_search\")");
	parse_fails(POST_T(",'qos':'urgent'"),
	    "tools[0] (t).qos: must be \"realtime\", \"interactive\" or "
	    "\"batch\"");
	parse_fails(POST_T(",'timeout_ms':0"),
	    "tools[0] (t).timeout_ms: must be an integer in 1..600000");
	parse_fails(POST_T(",'queue_max':'10'"),
	    "tools[0] (t).queue_max: must be an integer in 1..1000000");
	parse_fails(POST_T(",'cache':{'namespace':'a b'}"),
	    "tools[0] (t).cache.namespace: must be 1..95 of [A-Za-z0-9_.-]");
	parse_fails(POST_T(",'cache':{'namespace':'n','size':1}"),
	    "tools[0] (t).cache: unknown member \"size\"");
	parse_fails(POST_T(",'parameters':{'type':'array'}"),
	    "tools[0] (t).parameters: must be an object with \"type\": "
	    "\"object\"");
	parse_fails(POST_T(",'parameters':{'type':'object','properties':{"
			   "'query':{'type':'text'}}}"),
	    "tools[0] (t).parameters.properties.query: type must be string, "
	    "number, integer, boolean, object or array");
	parse_fails(POST_T(",'parameters':{'type':'object','properties':{"
			   "'query':{'type':'string'}},'required':['q']}"),
	    "tools[0] (t).parameters.required: item 0 is not a property of "
	    "parameters.properties");
	/* the second of two tools of one name */
	parse_fails("[" TOOL_T("") "," TOOL_T("") "]",
	    "tools[1] (t).name: tools[0] has this name too");
}
END_TEST

/* upstream - a tool t with upstream text (the rest valid). */
#define UPSTREAM_T(up)                                                    \
	"[{'name':'t'," PARAMS ",'upstream':" up ",'circuit':"            \
	"'serper_search','bulkhead':'serper_search'}]"

START_TEST(upstream_errors)
{
	parse_fails(UPSTREAM_T("{'method':'PUT','url':'https://a.test/'}"),
	    "tools[0] (t).upstream.method: must be \"GET\" or \"POST\"");
	parse_fails(UPSTREAM_T("{'method':'GET','url':'ftp://a.test/'}"),
	    "tools[0] (t).upstream.url: must be an http:// or https:// URL");
	parse_fails(UPSTREAM_T("{'method':'GET','url':'https://'}"),
	    "tools[0] (t).upstream.url: must be an http:// or https:// URL");
	parse_fails(UPSTREAM_T("{'method':'GET','url':'https://a.test/"
			       "{{query}}'}"),
	    "tools[0] (t).upstream.url: is not a template (arguments go in "
	    "upstream.query)");
	parse_fails(UPSTREAM_T("{'method':'GET','url':'https://a.test/',"
			       "'body':{'q':'{{query}}'}}"),
	    "tools[0] (t).upstream.body: a GET has no body (its arguments go "
	    "in upstream.query)");
	parse_fails(UPSTREAM_T("{'method':'POST','url':'https://a.test/',"
			       "'query':{'q':'{{query}}'}}"),
	    "tools[0] (t).upstream.query: a POST has no query (its arguments "
	    "go in upstream.body)");
	parse_fails(UPSTREAM_T("{'method':'GET','url':'https://a.test/',"
			       "'query':['{{query}}']}"),
	    "tools[0] (t).upstream.query: must be an object of query "
	    "parameters");
	parse_fails(UPSTREAM_T("{'method':'POST','url':'https://a.test/',"
			       "'mode':'x'}"),
	    "tools[0] (t).upstream: unknown member \"mode\"");
	/* templates: unclosed, undeclared (also deep inside) */
	parse_fails(UPSTREAM_T("{'method':'POST','url':'https://a.test/',"
			       "'body':{'q':'{{query'}}"),
	    "tools[0] (t).upstream.body.q: \"{{\" is not closed by \"}}\"");
	parse_fails(UPSTREAM_T("{'method':'POST','url':'https://a.test/',"
			       "'body':{'a':[1,{'b':'x {{nope}} y'}]}}"),
	    "tools[0] (t).upstream.body.a[1].b: \"{{nope}}\" names no "
	    "property of parameters.properties");
	parse_fails(UPSTREAM_T("{'method':'GET','url':'https://a.test/',"
			       "'query':{'q':'{{}}'}}"),
	    "tools[0] (t).upstream.query.q: \"{{}}\" names no property of "
	    "parameters.properties");
	/* headers */
	parse_fails(UPSTREAM_T("{'method':'POST','url':'https://a.test/',"
			       "'headers':{'X-N':5}}"),
	    "tools[0] (t).upstream.headers.X-N: must be a string");
	parse_fails(UPSTREAM_T("{'method':'POST','url':'https://a.test/',"
			       "'headers':{'X-N':'$9X'}}"),
	    "tools[0] (t).upstream.headers.X-N: \"$NAME\" names an "
	    "environment variable: [A-Za-z_][A-Za-z0-9_]*");
	parse_fails(UPSTREAM_T("{'method':'POST','url':'https://a.test/',"
			       "'headers':{'X-N':'$TOOLS_TEST_KEY'}}"),
	    "tools[0] (t).upstream.headers.X-N: $TOOLS_TEST_KEY is not set in "
	    "the environment");
}
END_TEST

START_TEST(no_header_value_in_errors)
{
	struct tool_set ts;

	setenv("TOOLS_TEST_KEY", "very-secret\nvalue", 1);
	cfg_with(POST_T(""));
	ck_assert_int_eq(tools_parse(cfg, &ts, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "tools[0] (t).upstream.headers.X-API-KEY: the "
			      "value holds a control character");
	ck_assert_ptr_null(strstr(err, "secret"));
}
END_TEST

/* body_of - tools_request's body for args (jsonq) of the single tool of
 * text, parsed. */
static json_t *
body_of(const char *text, const char *args)
{
	struct tool_set ts;
	struct tool_req r;
	json_t *a = jsonq(args), *b;

	parse_ok(text, &ts);
	ck_assert_msg(tools_request(&ts.t[0], a, &r, err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert_str_eq(r.method, "POST");
	b = json_loadb(r.body, r.body_len, 0, NULL);
	ck_assert_ptr_nonnull(b);
	tool_req_free(&r);
	json_decref(a);
	tools_free(&ts);
	return b;
}

static void
body_is(const char *text, const char *args, const char *want)
{
	json_t *b = body_of(text, args), *w = jsonq(want);
	char *got = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);

	ck_assert_msg(json_equal(b, w), "body %s", got);
	free(got);
	json_decref(b);
	json_decref(w);
}

#define BODY_T(body)                                                      \
	UPSTREAM_T("{'method':'POST','url':'https://a.test/','body':" body \
		   "}")

START_TEST(templates)
{
	const char *t = BODY_T("{'q':'{{query}}','num':'{{num}}',"
			       "'flag':'{{flag}}','text':'find {{query}} x"
			       "{{num}} {{flag}}.','fixed':5,'nested':{'a':["
			       "'{{query}}','{{num}}',1,null],'o':{'n':"
			       "'{{num}}'}}}");

	/* whole values keep their JSON type; in strings they are text */
	body_is(t, "{'query':'red shoes','num':3,'flag':true}",
	    "{'q':'red shoes','num':3,'flag':true,'text':'find red shoes x3 "
	    "true.','fixed':5,'nested':{'a':['red shoes',3,1,null],'o':{'n':"
	    "3}}}");
	/* absent: the member (or item) left out, empty text */
	body_is(t, "{'query':'q'}",
	    "{'q':'q','text':'find q x .','fixed':5,'nested':{'a':['q',1,"
	    "null],'o':{}}}");
	/* an object or array argument as a whole value, and as text */
	body_is(BODY_T("{'v':'{{query}}','s':'<{{query}}>'}"),
	    "{'query':{'k':[1,2]}}",
	    "{'v':{'k':[1,2]},'s':'<{\\'k\\':[1,2]}>'}");
	/* a template with no reference is sent as it is; no body: {} */
	body_is(BODY_T("{'a':'{x}','b':'}}'}"), "{'query':'q'}",
	    "{'a':'{x}','b':'}}'}");
	body_is(UPSTREAM_T("{'method':'POST','url':'https://a.test/'}"),
	    "{'query':'q'}", "{}");
}
END_TEST

START_TEST(request_post)
{
	struct tool_set ts;
	struct tool_req r;
	json_t *a = jsonq("{'query':'x'}");

	setenv("TOOLS_TEST_KEY", "k1", 1);
	parse_ok(POST_T(""), &ts);
	ck_assert_int_eq(tools_request(&ts.t[0], a, &r, err, sizeof(err)), 0);
	ck_assert_str_eq(r.method, "POST");
	ck_assert_str_eq(r.url, "https://example.test/s");
	ck_assert_str_eq(r.body, "{\"q\":\"x\"}");
	ck_assert_uint_eq(r.body_len, strlen(r.body));
	ck_assert_uint_eq(r.nheaders, 3);
	ck_assert_str_eq(r.headers[0].name, "X-API-KEY");
	ck_assert_str_eq(r.headers[0].value, "k1");
	ck_assert_str_eq(r.headers[1].name, "Content-Type");
	ck_assert_str_eq(r.headers[1].value, "application/json");
	ck_assert_str_eq(r.headers[2].name, "Accept");
	ck_assert_str_eq(r.headers[2].value, "application/json");
	tool_req_free(&r);
	ck_assert_ptr_null(r.url);
	json_decref(a);
	a = jsonq("[1]");
	ck_assert_int_eq(tools_request(&ts.t[0], a, &r, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "arguments: must be an object");
	json_decref(a);
	tools_free(&ts);
}
END_TEST

static void
url_is(const char *url, const char *args, const char *want)
{
	char text[1024];
	struct tool_set ts;
	struct tool_req r;
	json_t *a = jsonq(args);

	snprintf(text, sizeof(text),
	    UPSTREAM_T("{'method':'GET','url':'%s','headers':{'Authorizat"
		       "ion':'Bearer x'},'query':{'q':'{{query}}','limit':"
		       "'{{num}}','tag':'a {{query}}','on':'{{flag}}'}}"),
	    url);
	parse_ok(text, &ts);
	ck_assert_int_eq(tools_request(&ts.t[0], a, &r, err, sizeof(err)), 0);
	ck_assert_str_eq(r.method, "GET");
	ck_assert_str_eq(r.url, want);
	ck_assert_ptr_null(r.body);
	ck_assert_uint_eq(r.body_len, 0);
	ck_assert_uint_eq(r.nheaders, 2);
	ck_assert_str_eq(r.headers[0].name, "Authorization");
	ck_assert_str_eq(r.headers[0].value, "Bearer x");
	ck_assert_str_eq(r.headers[1].name, "Accept");
	tool_req_free(&r);
	json_decref(a);
	tools_free(&ts);
}

START_TEST(request_get)
{
	/* spaces, & = / and UTF-8 are percent-encoded; an integer and a
	 * boolean are their JSON text */
	url_is("https://api.test/s",
	    "{'query':'a b&c=d/\xc3\xa9~','num':10,'flag':false}",
	    "https://api.test/s?q=a%20b%26c%3Dd%2F%C3%A9~&limit=10"
	    "&tag=a%20a%20b%26c%3Dd%2F%C3%A9~&on=false");
	/* absent arguments: the parameter is left out; a URL that has a
	 * query already gets & */
	url_is("https://api.test/s?market=US", "{'query':'x'}",
	    "https://api.test/s?market=US&q=x&tag=a%20x");
}
END_TEST

START_TEST(check_args)
{
	struct tool_set ts;
	const struct tool_def *t;
	static const struct {
		const char *args, *err;
	} cases[] = {
		{ "{'s':'x'}", "query: required" },
		{ "{'query':1}", "query: must be a string" },
		{ "{'query':'x','i':1.5}", "i: must be an integer" },
		{ "{'query':'x','i':'1'}", "i: must be an integer" },
		{ "{'query':'x','n':'1'}", "n: must be a number" },
		{ "{'query':'x','b':0}", "b: must be a boolean" },
		{ "{'query':'x','o':[]}", "o: must be an object" },
		{ "{'query':'x','a':{}}", "a: must be an array" },
		{ "{'query':'x','e':'c'}", "e: not one of the allowed values" },
		{ "{'query':'x','e':1}", "e: must be a string" },
		{ "[]", "arguments: must be an object" },
		{ "'x'", "arguments: must be an object" },
		{ "{'query':null}", "query: must be a string" },
	};
	static const char *const good[] = {
		"{'query':'x'}",
		"{'query':'x','i':3,'n':3,'b':true,'o':{},'a':[],'e':'b'}",
		"{'query':'x','n':2.5}",
		"{'query':'x','extra':{'any':1}}", /* undeclared: allowed */
		"{'query':'x','u':[null]}",       /* no type: anything */
	};

	parse_ok("[{'name':'t','parameters':{'type':'object','properties':{"
		 "'query':{'type':'string'},'i':{'type':'integer'},'n':{"
		 "'type':'number'},'b':{'type':'boolean'},'o':{'type':"
		 "'object'},'a':{'type':'array'},'e':{'type':'string',"
		 "'enum':['a','b']},'u':{}},'required':['query']},"
		 "'upstream':{'method':'POST','url':'https://a.test/'},"
		 "'circuit':'serper_search','bulkhead':'serper_search'}]",
	    &ts);
	t = &ts.t[0];
	for (size_t i = 0; i < RG_NELEM(cases); i++) {
		json_t *a = jsonq(cases[i].args);

		err[0] = '\0';
		ck_assert_msg(tools_check_args(t, a, err, sizeof(err)) == -1,
		    "%s accepted", cases[i].args);
		ck_assert_str_eq(err, cases[i].err);
		json_decref(a);
	}
	for (size_t i = 0; i < RG_NELEM(good); i++) {
		json_t *a = jsonq(good[i]);

		ck_assert_msg(tools_check_args(t, a, err, sizeof(err)) == 0,
		    "%s: %s", good[i], err);
		json_decref(a);
	}
	tools_free(&ts);
}
END_TEST

START_TEST(openai_shape)
{
	struct tool_set ts;
	json_t *o, *f;

	set_keys();
	ck_assert_int_eq(tools_parse(cfg, &ts, err, sizeof(err)), 0);
	o = tools_openai(&ts);
	ck_assert(json_is_array(o));
	ck_assert_uint_eq(json_array_size(o), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *e = json_array_get(o, i);

		ck_assert_uint_eq(json_object_size(e), 2);
		ck_assert_str_eq(json_string_value(json_object_get(e, "type")),
		    "function");
		f = json_object_get(e, "function");
		ck_assert_uint_eq(json_object_size(f), 3);
		ck_assert_str_eq(json_string_value(json_object_get(f, "name")),
		    ts.t[i].name);
		ck_assert(json_is_string(json_object_get(f, "description")));
		ck_assert(json_equal(json_object_get(f, "parameters"),
		    ts.t[i].parameters));
	}
	/* nothing of the upstream is offered to the model */
	{
		char *s = json_dumps(o, 0);

		ck_assert_ptr_null(strstr(s, "serper-secret"));
		ck_assert_ptr_null(strstr(s, "google.serper.dev"));
		free(s);
	}
	json_decref(o);
	tools_free(&ts);
	/* no description: none offered */
	parse_ok(UPSTREAM_T("{'method':'POST','url':'https://a.test/'}"),
	    &ts);
	o = tools_openai(&ts);
	ck_assert_ptr_null(json_object_get(json_object_get(json_array_get(o,
	    0), "function"), "description"));
	json_decref(o);
	tools_free(&ts);
}
END_TEST

START_TEST(limits)
{
	struct tool_set ts;
	struct jobq_tool caps[TOOLS_MAX], jcaps[TOOLS_MAX];
	struct jobq_limits lim;
	json_t *j;
	size_t n;

	set_keys();
	cfg->tool_job_runmax_qos_realtime = 11;
	cfg->tool_job_runmax_qos_interactive = 12;
	cfg->tool_job_runmax_qos_batch = 13;
	cfg->tool_job_claim_scan = 14;
	cfg->tool_job_max_attempts = 15;
	cfg->tool_job_lease_ms = 16000;
	cfg->tool_job_retry_base_ms = 17;
	cfg->tool_job_qmax_prod = 18;
	ck_assert_int_eq(tools_parse(cfg, &ts, err, sizeof(err)), 0);
	tools_limits(&ts, cfg, caps, &lim);
	ck_assert_ptr_eq(lim.tools, caps);
	ck_assert_uint_eq(lim.ntools, 3);
	ck_assert_str_eq(caps[0].name, "search_web");
	ck_assert_uint_eq(caps[0].queue_max, 200);
	ck_assert_uint_eq(caps[0].running_max, 8);
	ck_assert_str_eq(caps[2].name, "search_products");
	ck_assert_uint_eq(caps[2].queue_max, 18);
	ck_assert_uint_eq(lim.qos_running_max[JOBQ_REALTIME], 11);
	ck_assert_uint_eq(lim.qos_running_max[JOBQ_INTERACTIVE], 12);
	ck_assert_uint_eq(lim.qos_running_max[JOBQ_BATCH], 13);
	ck_assert_uint_eq(lim.claim_scan, 14);
	ck_assert_uint_eq(lim.max_attempts, 15);
	ck_assert_uint_eq(lim.lease_ms, 16000);
	ck_assert_uint_eq(lim.retry_base_ms, 17);

	/* the same caps from the effective config's JSON (what relstat
	 * reads), without the environment */
	unsetenv("SERPER_API_KEY");
	j = config_to_json(cfg, 1);
	n = tools_caps_json(j, jcaps, RG_NELEM(jcaps));
	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(jcaps[i].name, caps[i].name);
		ck_assert_uint_eq(jcaps[i].queue_max, caps[i].queue_max);
		ck_assert_uint_eq(jcaps[i].running_max, caps[i].running_max);
	}
	json_decref(j);
	tools_free(&ts);

	/* explicit caps, and another tool's defaults */
	setenv("TOOLS_TEST_KEY", "v", 1);
	parse_ok("[" TOOL_T(",'queue_max':3,'running_max':1") ","
		 "{'name':'u','parameters':{'type':'object'},'upstream':{"
		 "'method':'GET','url':'https://a.test/'},'circuit':"
		 "'backend','bulkhead':'backend'}]",
	    &ts);
	tools_limits(&ts, cfg, caps, &lim);
	ck_assert_uint_eq(lim.ntools, 2);
	ck_assert_uint_eq(caps[0].queue_max, 3);
	ck_assert_uint_eq(caps[0].running_max, 1);
	ck_assert_str_eq(caps[1].name, "u");
	ck_assert_uint_eq(caps[1].queue_max, TOOLS_DEFAULT_QUEUE_MAX);
	ck_assert_uint_eq(caps[1].running_max, TOOLS_DEFAULT_RUNNING_MAX);
	j = config_to_json(cfg, 1);
	n = tools_caps_json(j, jcaps, RG_NELEM(jcaps));
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(jcaps[0].queue_max, 3);
	ck_assert_uint_eq(jcaps[1].running_max, TOOLS_DEFAULT_RUNNING_MAX);
	json_decref(j);
	tools_free(&ts);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("tools");
	TCase *tc = tl_tcase(s, "tools", setup, teardown, 30);

	tcase_add_test(tc, default_tools);
	tcase_add_test(tc, default_tools_follow_the_knobs);
	tcase_add_test(tc, default_tools_need_their_keys);
	tcase_add_test(tc, explicit_values_and_other_defaults);
	tcase_add_test(tc, validation_errors);
	tcase_add_test(tc, upstream_errors);
	tcase_add_test(tc, no_header_value_in_errors);
	tcase_add_test(tc, templates);
	tcase_add_test(tc, request_post);
	tcase_add_test(tc, request_get);
	tcase_add_test(tc, check_args);
	tcase_add_test(tc, openai_shape);
	tcase_add_test(tc, limits);
	return tl_run(s);
}
