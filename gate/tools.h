/*
 * tools - the tools of the config (tools[], SPEC section 7): what the
 * model is offered, how a call's arguments are checked, and the upstream
 * request a call becomes.
 *
 *   {"name": "search_web", "description": "Search the web",
 *    "parameters": {"type": "object",
 *                   "properties": {"query": {"type": "string"}},
 *                   "required": ["query"]},
 *    "qos": "interactive",
 *    "upstream": {"method": "POST", "url": "https://google.serper.dev/search",
 *                 "headers": {"X-API-KEY": "$SERPER_API_KEY"},
 *                 "body": {"q": "{{query}}", "num": 5}},
 *    "timeout_ms": 8000, "retries": 2,
 *    "circuit": "serper_search", "bulkhead": "serper_search",
 *    "cache": {"namespace": "search_web", "version": 1, "ttl_ms": 300000},
 *    "queue_max": 200, "running_max": 12}
 *
 * Templates: upstream.body (POST) or upstream.query (GET, an object of
 * query parameters) is JSON; a string that is exactly "{{arg}}" becomes
 * the argument's JSON value (absent: the member is left out), "{{arg}}"
 * inside a longer string the argument's text (a string as is, another
 * value as its JSON; absent: empty).  A header value "$NAME" is the
 * environment variable NAME, read when the config is parsed; its value is
 * never logged.  circuit and bulkhead name a provider row of shm (the
 * outcall module keeps both at one index, so they must name the same
 * one).  queue_max, running_max, cache.ttl_ms and cache.version may be
 * left out: the default tools then take the knobs named for them
 * (TOOL_JOB_QMAX_WEB, ...), others TOOLS_DEFAULT_*.
 *
 * Parsed once per config by relgated (start, -t, reload: one line per
 * error, naming tools[i].member and the tool) and by the processes that
 * use them.  Pure but for getenv.
 */
#ifndef RG_TOOLS_H
#define RG_TOOLS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "gate/jobq.h"
#include "gate/toolcache.h"
#include "http/client.h"

struct config;

#define TOOLS_MAX JOBQ_TOOLS_MAX
#define TOOLS_HEADERS_MAX 16

/* What a tool that is not one of the default three leaves out. */
#define TOOLS_DEFAULT_QUEUE_MAX 100
#define TOOLS_DEFAULT_RUNNING_MAX 4
#define TOOLS_DEFAULT_CACHE_TTL_MS 300000
#define TOOLS_DEFAULT_CACHE_VERSION 1
#define TOOLS_DEFAULT_TIMEOUT_MS 8000
#define TOOLS_DEFAULT_RETRIES 2
#define TOOLS_DEFAULT_QOS JOBQ_INTERACTIVE

struct tool_def {
	char name[JOBQ_TOOL_MAX]; /* [A-Za-z0-9_-], 1..63 */
	char *description;
	json_t *parameters; /* JSON Schema object (owned) */
	enum jobq_qos qos;
	char method[8];  /* GET | POST */
	char *url;       /* http[s]://..., no template */
	size_t nheaders;
	char *hname[TOOLS_HEADERS_MAX];
	char *hvalue[TOOLS_HEADERS_MAX]; /* $NAME resolved (a secret) */
	json_t *body;    /* POST: the template (owned), or NULL */
	json_t *query;   /* GET: the template (owned), or NULL */
	uint32_t timeout_ms, retries;
	unsigned provider; /* circuit and bulkhead row (CB_PROV_*) */
	char cache_ns[TC_NS_MAX]; /* "<namespace>_v<version>"; "": no cache */
	uint64_t cache_ttl_ms;
	uint32_t queue_max, running_max;
};

struct tool_set {
	struct tool_def *t;
	size_t n;
};

/*
 * tools_parse - cfg->tools into *out (tools_free it), with the knobs of
 * cfg for what a default tool leaves out.  0, or -1 with one line in err
 * ("tools[0] (search_web).upstream.headers.X-API-KEY: $SERPER_API_KEY is
 * not set in the environment").
 */
int tools_parse(const struct config *cfg, struct tool_set *out, char *err,
    size_t errlen);
void tools_free(struct tool_set *ts);

/* tools_find - the tool named name, or NULL. */
const struct tool_def *tools_find(const struct tool_set *ts,
    const char *name);

/* tools_openai - the OpenAI "tools" array offered to the model:
 * [{"type":"function","function":{name, description, parameters}}]
 * (a new reference; NULL when there is no tool). */
json_t *tools_openai(const struct tool_set *ts);

/*
 * tools_check_args - args (the model's arguments) against t->parameters:
 * an object; every required member present; each member declared in
 * properties of its declared type (string, number, integer, boolean,
 * object, array; "enum" honoured).  0, or -1 with one client-safe line in
 * err ("query: required", "num: must be an integer").
 */
int tools_check_args(const struct tool_def *t, const json_t *args,
    char *err, size_t errlen);

/* The upstream request of one call (all owned; tool_req_free). */
struct tool_req {
	char method[8];
	char *url; /* with the query of a GET */
	struct httpc_header headers[TOOLS_HEADERS_MAX + 2];
	size_t nheaders; /* the tool's, then Content-Type and Accept */
	char *body;      /* POST: the rendered JSON; GET: NULL */
	size_t body_len;
};

/* tools_request - the request for t(args); 0, or -1 with err. */
int tools_request(const struct tool_def *t, const json_t *args,
    struct tool_req *out, char *err, size_t errlen);
void tool_req_free(struct tool_req *r);

/* tools_limits - the queue's limits: every tool's caps (into tools, room
 * for ts->n) and the knobs' class caps, claim scan, attempts, lease and
 * retry base. */
void tools_limits(const struct tool_set *ts, const struct config *cfg,
    struct jobq_tool *tools, struct jobq_limits *lim);

/*
 * tools_caps_json - every tool's caps from the effective config in file
 * form (config_to_json: what relstat reads from shm), without reading
 * the environment: into out (room for max), names pointing into cfg;
 * returns how many.  An entry without a valid name is skipped.
 */
size_t tools_caps_json(const json_t *cfg, struct jobq_tool *out,
    size_t max);

/* tools_name_rows - the rows of a block of the tools area (shm/requests.h)
 * named after ts's tools, in order (b may be NULL). */
struct tl_block;
void tools_name_rows(const struct tool_set *ts, struct tl_block *b);

#endif
