/*
 * tools - see tools.h.
 *
 * Owns the struct tool_def of a parsed set and the requests it renders.
 * A header value may be a secret: no error line, log line or snapshot
 * ever carries one (errors name the header and the variable, never the
 * value).
 */
#include "gate/tools.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "shm/circuit.h"
#include "shm/requests.h"
#include "util/util.h"

/* The default tools take their caps and cache settings from the seeds'
 * knobs (conf/knobs.def) when they leave them out. */
static const struct seeded {
	const char *name;
	enum config_knob_id queue_max, running_max, ttl_ms, version;
} seeded[] = {
	{ "search_web", KNOB_tool_job_qmax_web, KNOB_tool_job_runmax_web,
	    KNOB_tool_cache_web_search_ttl_ms,
	    KNOB_tool_cache_web_search_namespace_version },
	{ "search_products", KNOB_tool_job_qmax_prod,
	    KNOB_tool_job_runmax_prod, KNOB_tool_cache_product_search_ttl_ms,
	    KNOB_tool_cache_products_ns_ver },
	{ "search_global", KNOB_tool_job_qmax_glob, KNOB_tool_job_runmax_glob,
	    KNOB_tool_cache_web_search_ttl_ms,
	    KNOB_tool_cache_web_search_namespace_version },
};

static const char *const tool_members[] = { "name", "description",
	"parameters", "qos", "upstream", "timeout_ms", "retries", "circuit",
	"bulkhead", "cache", "queue_max", "running_max", NULL };
static const char *const upstream_members[] = { "method", "url", "headers",
	"body", "query", NULL };
static const char *const cache_members[] = { "namespace", "version",
	"ttl_ms", NULL };
static const char *const schema_types[] = { "string", "number", "integer",
	"boolean", "object", "array", NULL };

/* A growing text (allocation failure aborts). */
struct buf {
	char *p;
	size_t n, cap;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void
buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static const struct seeded *
seeded_by_name(const char *name)
{
	for (size_t i = 0; i < RG_NELEM(seeded); i++)
		if (strcmp(seeded[i].name, name) == 0)
			return &seeded[i];
	return NULL;
}

static int64_t
knob_int(const struct config *cfg, enum config_knob_id id)
{
	const int64_t *v = (const int64_t *)(const void *)((const char *)cfg +
	    config_knobs[id].offset);

	return *v;
}

static const char *
knob_str(const struct config *cfg, enum config_knob_id id)
{
	char *const *v = (char *const *)(const void *)((const char *)cfg +
	    config_knobs[id].offset);

	return *v;
}

/* version_of - "v1" or "1" into *v; -1 if it is neither. */
static int
version_of(const char *s, unsigned *v)
{
	char *end;
	unsigned long n;

	if (s == NULL)
		return -1;
	if (*s == 'v')
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	n = strtoul(s, &end, 10);
	if (*end != '\0' || n > UINT_MAX)
		return -1;
	*v = (unsigned)n;
	return 0;
}

static int
name_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n < 1 || n >= JOBQ_TOOL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* env_name_ok - a variable of "$NAME": 1..63 of [A-Za-z0-9_], no digit
 * first. */
static int
env_name_ok(const char *s)
{
	if (!name_ok(s) || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	return strchr(s, '-') == NULL;
}

static int
in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

/* The context of one tool's errors: "tools[i] (name)". */
struct pctx {
	char *err;
	size_t errlen;
	size_t i;
	const char *name; /* NULL until it is known to be valid */
};

static int __attribute__((format(printf, 3, 4)))
perr(const struct pctx *c, const char *field, const char *fmt, ...)
{
	char msg[300], at[JOBQ_TOOL_MAX + 32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->name != NULL)
		snprintf(at, sizeof(at), "tools[%zu] (%s)", c->i, c->name);
	else
		snprintf(at, sizeof(at), "tools[%zu]", c->i);
	snprintf(c->err, c->errlen, "%s%s%s: %s", at, field[0] != '\0' ? "." :
	    "", field, msg);
	for (char *p = c->err; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return -1;
}

/* unknown - the first member of o not in known, or NULL. */
static const char *
unknown(const json_t *o, const char *const *known)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)(uintptr_t)o, k, v) {
		(void)v;
		if (!in_list(known, k))
			return k;
	}
	return NULL;
}

/* uint_member - o.name, an integer in [min, max], into *out (def when
 * absent and has_def). */
static int
uint_member(const struct pctx *c, const json_t *o, const char *name,
    const char *field, int64_t min, int64_t max, int has_def, int64_t def,
    int64_t *out)
{
	const json_t *v = json_object_get(o, name);

	if (v == NULL && has_def) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return perr(c, field, "must be an integer in %lld..%lld",
		    (long long)min, (long long)max);
	*out = json_integer_value(v);
	return 0;
}

/* check_parameters - a JSON Schema object of the kinds check_args
 * knows: type object, properties of known types, required naming them. */
static int
check_parameters(const struct pctx *c, const json_t *p)
{
	const json_t *props, *req, *v, *it;
	const char *k;
	size_t i;

	if (!json_is_object(p) ||
	    !json_is_string(json_object_get(p, "type")) ||
	    strcmp(json_string_value(json_object_get(p, "type")), "object") !=
		0)
		return perr(c, "parameters",
		    "must be an object with \"type\": \"object\"");
	props = json_object_get(p, "properties");
	if (props != NULL && !json_is_object(props))
		return perr(c, "parameters.properties", "must be an object");
	json_object_foreach((json_t *)(uintptr_t)props, k, v) {
		const json_t *t = json_object_get(v, "type");
		const json_t *e = json_object_get(v, "enum");
		char f[128];

		snprintf(f, sizeof(f), "parameters.properties.%.60s", k);
		if (!json_is_object(v))
			return perr(c, f, "must be an object");
		if (t != NULL && (!json_is_string(t) ||
				     !in_list(schema_types,
					 json_string_value(t))))
			return perr(c, f,
			    "type must be string, number, integer, boolean, "
			    "object or array");
		if (e != NULL && (!json_is_array(e) || json_array_size(e) == 0))
			return perr(c, f, "enum must be a non-empty array");
	}
	req = json_object_get(p, "required");
	if (req != NULL && !json_is_array(req))
		return perr(c, "parameters.required",
		    "must be an array of property names");
	json_array_foreach(req, i, it) {
		if (!json_is_string(it) ||
		    json_object_get(props, json_string_value(it)) == NULL)
			return perr(c, "parameters.required",
			    "item %zu is not a property of "
			    "parameters.properties",
			    i);
	}
	return 0;
}

/*
 * next_ref - the first "{{name}}" of s at or after *pos: 1 with its name
 * in [*ns, *ns + *nn) and *pos after it; 0 when there is none; -1 when a
 * "{{" is not closed.
 */
static int
next_ref(const char *s, size_t *pos, size_t *start, const char **ns,
    size_t *nn)
{
	const char *o = strstr(s + *pos, "{{"), *e;

	if (o == NULL)
		return 0;
	e = strstr(o + 2, "}}");
	if (e == NULL)
		return -1;
	*start = (size_t)(o - s);
	*ns = o + 2;
	*nn = (size_t)(e - o - 2);
	*pos = (size_t)(e + 2 - s);
	return 1;
}

/* declared - is s[0..n) a property of parameters? */
static int
declared(const json_t *props, const char *s, size_t n)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)(uintptr_t)props, k, v) {
		(void)v;
		if (strlen(k) == n && memcmp(k, s, n) == 0)
			return 1;
	}
	return 0;
}

/* check_template - every "{{x}}" of tpl well-formed and declared. */
static int
check_template(const struct pctx *c, const json_t *tpl, const json_t *props,
    const char *field)
{
	char f[200];
	const char *k, *ns;
	json_t *v;
	size_t i, pos = 0, start, nn;
	int r;

	if (json_is_object(tpl)) {
		json_object_foreach((json_t *)(uintptr_t)tpl, k, v) {
			snprintf(f, sizeof(f), "%s.%.60s", field, k);
			if (check_template(c, v, props, f) != 0)
				return -1;
		}
	} else if (json_is_array(tpl)) {
		json_array_foreach(tpl, i, v) {
			snprintf(f, sizeof(f), "%s[%zu]", field, i);
			if (check_template(c, v, props, f) != 0)
				return -1;
		}
	} else if (json_is_string(tpl)) {
		const char *s = json_string_value(tpl);

		while ((r = next_ref(s, &pos, &start, &ns, &nn)) == 1)
			if (!declared(props, ns, nn))
				return perr(c, field,
				    "\"{{%.*s}}\" names no property of "
				    "parameters.properties",
				    (int)(nn > 60 ? 60 : nn), ns);
		if (r < 0)
			return perr(c, field, "\"{{\" is not closed by \"}}\"");
	}
	return 0;
}

static void
tool_clear(struct tool_def *t)
{
	free(t->description);
	json_decref(t->parameters);
	free(t->url);
	for (size_t j = 0; j < t->nheaders; j++) {
		free(t->hname[j]);
		if (t->hvalue[j] != NULL)
			explicit_bzero(t->hvalue[j], strlen(t->hvalue[j]));
		free(t->hvalue[j]);
	}
	json_decref(t->body);
	json_decref(t->query);
	memset(t, 0, sizeof(*t));
}

static int
parse_headers(const struct pctx *c, struct tool_def *t, const json_t *h)
{
	const char *k;
	json_t *v;

	if (h == NULL)
		return 0;
	if (!json_is_object(h))
		return perr(c, "upstream.headers",
		    "must be an object of header names and string values");
	if (json_object_size(h) > TOOLS_HEADERS_MAX)
		return perr(c, "upstream.headers", "at most %d headers",
		    TOOLS_HEADERS_MAX);
	json_object_foreach((json_t *)(uintptr_t)h, k, v) {
		const char *val, *env;
		char f[120];

		snprintf(f, sizeof(f), "upstream.headers.%.60s", k);
		if (!name_ok(k))
			return perr(c, f,
			    "a header name is 1..63 of [A-Za-z0-9_-]");
		if (!json_is_string(v))
			return perr(c, f, "must be a string");
		val = json_string_value(v);
		if (val[0] == '$') {
			if (!env_name_ok(val + 1))
				return perr(c, f,
				    "\"$NAME\" names an environment "
				    "variable: [A-Za-z_][A-Za-z0-9_]*");
			env = getenv(val + 1);
			if (env == NULL || env[0] == '\0')
				return perr(c, f,
				    "%s is not set in the environment", val);
			val = env;
		}
		for (const char *p = val; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return perr(c, f,
				    "the value holds a control character");
		t->hname[t->nheaders] = xstrdup(k);
		t->hvalue[t->nheaders] = xstrdup(val);
		t->nheaders++;
	}
	return 0;
}

static int
parse_upstream(const struct pctx *c, struct tool_def *t, const json_t *u,
    const json_t *props)
{
	const json_t *m = json_object_get(u, "method");
	const json_t *url = json_object_get(u, "url");
	const json_t *body = json_object_get(u, "body");
	const json_t *query = json_object_get(u, "query");
	const char *k, *s;

	if (!json_is_object(u))
		return perr(c, "upstream", "must be an object");
	if ((k = unknown(u, upstream_members)) != NULL)
		return perr(c, "upstream", "unknown member \"%.40s\"", k);
	if (!json_is_string(m) || (strcmp(json_string_value(m), "GET") != 0 &&
				      strcmp(json_string_value(m), "POST") != 0))
		return perr(c, "upstream.method", "must be \"GET\" or \"POST\"");
	strlcpy_rg(t->method, json_string_value(m), sizeof(t->method));
	s = json_is_string(url) ? json_string_value(url) : NULL;
	if (s == NULL ||
	    (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) ||
	    strlen(s) > 2048 || strchr(s, ' ') != NULL ||
	    s[strncmp(s, "http://", 7) == 0 ? 7 : 8] == '\0')
		return perr(c, "upstream.url",
		    "must be an http:// or https:// URL");
	if (strstr(s, "{{") != NULL)
		return perr(c, "upstream.url",
		    "is not a template (arguments go in upstream.%s)",
		    strcmp(t->method, "GET") == 0 ? "query" : "body");
	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return perr(c, "upstream.url",
			    "must be an http:// or https:// URL");
	t->url = xstrdup(s);
	if (strcmp(t->method, "GET") == 0) {
		if (body != NULL)
			return perr(c, "upstream.body",
			    "a GET has no body (its arguments go in "
			    "upstream.query)");
		if (query != NULL && !json_is_object(query))
			return perr(c, "upstream.query",
			    "must be an object of query parameters");
		if (query != NULL &&
		    check_template(c, query, props, "upstream.query") != 0)
			return -1;
		t->query = query != NULL ? json_deep_copy(query) : NULL;
	} else {
		if (query != NULL)
			return perr(c, "upstream.query",
			    "a POST has no query (its arguments go in "
			    "upstream.body)");
		if (body != NULL &&
		    check_template(c, body, props, "upstream.body") != 0)
			return -1;
		t->body = body != NULL ? json_deep_copy(body) : NULL;
	}
	return parse_headers(c, t, json_object_get(u, "headers"));
}

static int
parse_cache(const struct pctx *c, struct tool_def *t, const json_t *o,
    const struct config *cfg, const struct seeded *sd)
{
	const json_t *ns = json_object_get(o, "namespace");
	const char *k;
	int64_t ttl, ver;

	t->cache_ns[0] = '\0';
	if (o == NULL)
		return 0;
	if (!json_is_object(o))
		return perr(c, "cache", "must be an object");
	if ((k = unknown(o, cache_members)) != NULL)
		return perr(c, "cache", "unknown member \"%.40s\"", k);
	if (!json_is_string(ns) || !tc_ns_valid(json_string_value(ns)))
		return perr(c, "cache.namespace",
		    "must be 1..%d of [A-Za-z0-9_.-]", TC_NS_MAX - 1);
	if (json_object_get(o, "version") == NULL && sd != NULL) {
		unsigned v;
		const char *kv = knob_str(cfg, sd->version);

		if (version_of(kv, &v) != 0)
			return perr(c, "cache.version",
			    "%s is \"%.32s\", not v<number>",
			    config_knobs[sd->version].key, kv);
		ver = v;
	} else if (uint_member(c, o, "version", "cache.version", 0,
		       UINT_MAX, 1, TOOLS_DEFAULT_CACHE_VERSION, &ver) != 0) {
		return -1;
	}
	if (uint_member(c, o, "ttl_ms", "cache.ttl_ms", 1000, 604800000, 1,
		sd != NULL ? knob_int(cfg, sd->ttl_ms) :
			     TOOLS_DEFAULT_CACHE_TTL_MS,
		&ttl) != 0)
		return -1;
	if (tc_namespace(json_string_value(ns), (unsigned)ver, t->cache_ns,
		sizeof(t->cache_ns)) != 0)
		return perr(c, "cache.namespace",
		    "\"%s_v%u\" is longer than %d bytes",
		    json_string_value(ns), (unsigned)ver, TC_NS_MAX - 1);
	t->cache_ttl_ms = (uint64_t)ttl;
	return 0;
}

static int
parse_tool(struct pctx *c, struct tool_def *t, const json_t *o,
    const struct config *cfg)
{
	const json_t *name = json_object_get(o, "name");
	const json_t *desc = json_object_get(o, "description");
	const json_t *qos = json_object_get(o, "qos");
	const json_t *cb = json_object_get(o, "circuit");
	const json_t *bh = json_object_get(o, "bulkhead");
	const struct seeded *sd;
	const char *k;
	int64_t v;
	int p;

	if (!json_is_object(o))
		return perr(c, "", "must be an object");
	if (!json_is_string(name) || !name_ok(json_string_value(name)))
		return perr(c, "name", "must be 1..%d of [A-Za-z0-9_-]",
		    JOBQ_TOOL_MAX - 1);
	c->name = json_string_value(name);
	sd = seeded_by_name(c->name);
	if ((k = unknown(o, tool_members)) != NULL)
		return perr(c, "", "unknown member \"%.40s\"", k);
	strlcpy_rg(t->name, c->name, sizeof(t->name));
	if (desc != NULL && !json_is_string(desc))
		return perr(c, "description", "must be a string");
	t->description = desc != NULL ? xstrdup(json_string_value(desc)) :
					NULL;
	if (check_parameters(c, json_object_get(o, "parameters")) != 0)
		return -1;
	t->parameters = json_deep_copy(json_object_get(o, "parameters"));
	if (qos == NULL) {
		t->qos = TOOLS_DEFAULT_QOS;
	} else if (!json_is_string(qos) ||
	    jobq_qos_by_name(json_string_value(qos)) < 0) {
		return perr(c, "qos",
		    "must be \"realtime\", \"interactive\" or \"batch\"");
	} else {
		t->qos = (enum jobq_qos)jobq_qos_by_name(
		    json_string_value(qos));
	}
	if (parse_upstream(c, t, json_object_get(o, "upstream"),
		json_object_get(t->parameters, "properties")) != 0)
		return -1;
	if (uint_member(c, o, "timeout_ms", "timeout_ms", 1, 600000, 1,
		TOOLS_DEFAULT_TIMEOUT_MS, &v) != 0)
		return -1;
	t->timeout_ms = (uint32_t)v;
	if (uint_member(c, o, "retries", "retries", 0, 10, 1,
		TOOLS_DEFAULT_RETRIES, &v) != 0)
		return -1;
	t->retries = (uint32_t)v;
	p = json_is_string(cb) ? cb_provider_by_name(json_string_value(cb)) :
				 -1;
	if (p < 0)
		return perr(c, "circuit", "not a provider of relgate's circuits "
					  "(relctl circuit list names them)");
	if (!json_is_string(bh) ||
	    strcmp(json_string_value(bh), json_string_value(cb)) != 0)
		return perr(c, "bulkhead",
		    "must be the same provider as circuit (\"%s\")",
		    json_string_value(cb));
	t->provider = (unsigned)p;
	if (parse_cache(c, t, json_object_get(o, "cache"), cfg, sd) != 0)
		return -1;
	if (uint_member(c, o, "queue_max", "queue_max", 1, 1000000, 1,
		sd != NULL ? knob_int(cfg, sd->queue_max) :
			     TOOLS_DEFAULT_QUEUE_MAX,
		&v) != 0)
		return -1;
	t->queue_max = (uint32_t)v;
	if (uint_member(c, o, "running_max", "running_max", 1, 100000, 1,
		sd != NULL ? knob_int(cfg, sd->running_max) :
			     TOOLS_DEFAULT_RUNNING_MAX,
		&v) != 0)
		return -1;
	t->running_max = (uint32_t)v;
	return 0;
}

int
tools_parse(const struct config *cfg, struct tool_set *out, char *err,
    size_t errlen)
{
	const json_t *tools = cfg->tools, *o;
	struct tool_def *t;
	size_t i;

	out->t = NULL;
	out->n = 0;
	if (tools == NULL || json_is_null(tools))
		return 0;
	if (!json_is_array(tools)) {
		snprintf(err, errlen, "tools: must be an array");
		return -1;
	}
	if (json_array_size(tools) > TOOLS_MAX) {
		snprintf(err, errlen, "tools: at most %d tools", TOOLS_MAX);
		return -1;
	}
	t = xcalloc(json_array_size(tools) + 1, sizeof(*t));
	json_array_foreach(tools, i, o) {
		struct pctx c = { err, errlen, i, NULL };

		if (parse_tool(&c, &t[i], o, cfg) != 0)
			goto bad;
		for (size_t j = 0; j < i; j++)
			if (strcmp(t[j].name, t[i].name) == 0) {
				perr(&c, "name", "tools[%zu] has this name too",
				    j);
				goto bad;
			}
	}
	out->t = t;
	out->n = json_array_size(tools);
	return 0;
bad:
	for (size_t j = 0; j <= i && j < json_array_size(tools); j++)
		tool_clear(&t[j]);
	free(t);
	return -1;
}

void
tools_free(struct tool_set *ts)
{
	for (size_t i = 0; i < ts->n; i++)
		tool_clear(&ts->t[i]);
	free(ts->t);
	ts->t = NULL;
	ts->n = 0;
}

const struct tool_def *
tools_find(const struct tool_set *ts, const char *name)
{
	for (size_t i = 0; name != NULL && i < ts->n; i++)
		if (strcmp(ts->t[i].name, name) == 0)
			return &ts->t[i];
	return NULL;
}

json_t *
tools_openai(const struct tool_set *ts)
{
	json_t *a;

	if (ts->n == 0)
		return NULL;
	a = json_array();
	for (size_t i = 0; i < ts->n; i++) {
		const struct tool_def *t = &ts->t[i];
		json_t *f = json_pack("{s:s,s:O}", "name", t->name,
		    "parameters", t->parameters);

		if (t->description != NULL)
			json_object_set_new(f, "description",
			    json_string(t->description));
		json_array_append_new(a,
		    json_pack("{s:s,s:o}", "type", "function", "function", f));
	}
	return a;
}

/* type_ok - does v have the JSON Schema type ty? */
static int
type_ok(const char *ty, const json_t *v)
{
	if (strcmp(ty, "string") == 0)
		return json_is_string(v);
	if (strcmp(ty, "integer") == 0)
		return json_is_integer(v);
	if (strcmp(ty, "number") == 0)
		return json_is_number(v);
	if (strcmp(ty, "boolean") == 0)
		return json_is_boolean(v);
	if (strcmp(ty, "object") == 0)
		return json_is_object(v);
	if (strcmp(ty, "array") == 0)
		return json_is_array(v);
	return 1;
}

int
tools_check_args(const struct tool_def *t, const json_t *args, char *err,
    size_t errlen)
{
	const json_t *props = json_object_get(t->parameters, "properties");
	const json_t *req = json_object_get(t->parameters, "required");
	const json_t *v, *it;
	const char *k;
	size_t i;

	if (!json_is_object(args)) {
		snprintf(err, errlen, "arguments: must be an object");
		return -1;
	}
	json_array_foreach(req, i, it) {
		if (json_object_get(args, json_string_value(it)) == NULL) {
			snprintf(err, errlen, "%.60s: required",
			    json_string_value(it));
			return -1;
		}
	}
	json_object_foreach((json_t *)(uintptr_t)args, k, v) {
		const json_t *p = json_object_get(props, k);
		const json_t *ty = json_object_get(p, "type");
		const json_t *en = json_object_get(p, "enum");
		int found = 0;

		if (p == NULL)
			continue; /* undeclared: allowed, never rendered */
		if (json_is_string(ty) &&
		    !type_ok(json_string_value(ty), v)) {
			const char *s = json_string_value(ty);

			snprintf(err, errlen, "%.60s: must be %s %s", k,
			    s[0] == 'a' || s[0] == 'i' || s[0] == 'o' ? "an" :
									"a",
			    s);
			return -1;
		}
		json_array_foreach(en, i, it)
			found |= json_equal((json_t *)(uintptr_t)it,
			    (json_t *)(uintptr_t)v);
		if (en != NULL && !found) {
			snprintf(err, errlen, "%.60s: not one of the allowed "
					      "values",
			    k);
			return -1;
		}
	}
	return 0;
}

/* arg_text - an argument as text in a longer string: a string as is,
 * another value as its JSON. */
static void
arg_text(struct buf *b, const json_t *v)
{
	char *s;

	if (json_is_string(v)) {
		buf_add(b, json_string_value(v), json_string_length(v));
		return;
	}
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s != NULL)
		buf_str(b, s);
	free(s);
}

/*
 * render - tpl with the arguments of args: NULL when tpl is exactly
 * "{{arg}}" of an absent argument (its member or item is left out).
 */
static json_t *
render(const json_t *tpl, const json_t *args)
{
	const char *k, *s, *ns;
	json_t *v, *out, *r;
	size_t i, pos = 0, last = 0, start, nn;
	struct buf b = { NULL, 0, 0 };

	if (json_is_object(tpl)) {
		out = json_object();
		json_object_foreach((json_t *)(uintptr_t)tpl, k, v)
			if ((r = render(v, args)) != NULL)
				json_object_set_new(out, k, r);
		return out;
	}
	if (json_is_array(tpl)) {
		out = json_array();
		json_array_foreach(tpl, i, v)
			if ((r = render(v, args)) != NULL)
				json_array_append_new(out, r);
		return out;
	}
	if (!json_is_string(tpl))
		return json_deep_copy(tpl);
	s = json_string_value(tpl);
	if (next_ref(s, &pos, &start, &ns, &nn) == 1 && start == 0 &&
	    s[pos] == '\0') {
		char name[JOBQ_TOOL_MAX * 4];

		snprintf(name, sizeof(name), "%.*s", (int)nn, ns);
		v = json_object_get(args, name);
		return v != NULL ? json_deep_copy(v) : NULL;
	}
	buf_add(&b, "", 0);
	pos = 0;
	while (next_ref(s, &pos, &start, &ns, &nn) == 1) {
		char name[JOBQ_TOOL_MAX * 4];

		buf_add(&b, s + last, start - last);
		snprintf(name, sizeof(name), "%.*s", (int)nn, ns);
		v = json_object_get(args, name);
		if (v != NULL)
			arg_text(&b, v);
		last = pos;
	}
	buf_str(&b, s + last);
	out = json_stringn(b.p, b.n);
	free(b.p);
	return out != NULL ? out : json_string(""); /* not UTF-8: empty */
}

/* pct_encode - s as a query component (RFC 3986 unreserved kept). */
static void
pct_encode(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			buf_add(b, (const char *)&s[i], 1);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };

			buf_add(b, e, 3);
		}
	}
}

static void
add_header(struct tool_req *r, const char *name, const char *value)
{
	r->headers[r->nheaders].name = xstrdup(name);
	r->headers[r->nheaders].value = xstrdup(value);
	r->nheaders++;
}

int
tools_request(const struct tool_def *t, const json_t *args,
    struct tool_req *out, char *err, size_t errlen)
{
	struct buf u = { NULL, 0, 0 };
	json_t *r;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(args)) {
		snprintf(err, errlen, "arguments: must be an object");
		return -1;
	}
	strlcpy_rg(out->method, t->method, sizeof(out->method));
	buf_str(&u, t->url);
	if (t->query != NULL) {
		const char *k;
		json_t *v;
		int first = strchr(t->url, '?') == NULL;

		r = render(t->query, args);
		json_object_foreach(r, k, v) {
			buf_str(&u, first ? "?" : "&");
			first = 0;
			pct_encode(&u, k, strlen(k));
			buf_str(&u, "=");
			if (json_is_string(v)) {
				pct_encode(&u, json_string_value(v),
				    json_string_length(v));
			} else {
				char *s = json_dumps(v,
				    JSON_COMPACT | JSON_ENCODE_ANY);

				if (s != NULL)
					pct_encode(&u, s, strlen(s));
				free(s);
			}
		}
		json_decref(r);
	}
	out->url = u.p;
	if (strcmp(t->method, "POST") == 0) {
		r = t->body != NULL ? render(t->body, args) : json_object();
		out->body = json_dumps(r != NULL ? r : json_null(),
		    JSON_COMPACT | JSON_ENCODE_ANY);
		json_decref(r);
		if (out->body == NULL) {
			snprintf(err, errlen, "the body cannot be encoded");
			tool_req_free(out);
			return -1;
		}
		out->body_len = strlen(out->body);
	}
	for (size_t i = 0; i < t->nheaders; i++)
		add_header(out, t->hname[i], t->hvalue[i]);
	if (out->body != NULL)
		add_header(out, "Content-Type", "application/json");
	add_header(out, "Accept", "application/json");
	return 0;
}

void
tool_req_free(struct tool_req *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		char *v = (char *)(uintptr_t)r->headers[i].value;

		explicit_bzero(v, strlen(v));
		free((char *)(uintptr_t)r->headers[i].name);
		free(v);
	}
	free(r->url);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

void
tools_limits(const struct tool_set *ts, const struct config *cfg,
    struct jobq_tool *tools, struct jobq_limits *lim)
{
	for (size_t i = 0; i < ts->n; i++) {
		tools[i].name = ts->t[i].name;
		tools[i].queue_max = ts->t[i].queue_max;
		tools[i].running_max = ts->t[i].running_max;
	}
	lim->tools = tools;
	lim->ntools = (unsigned)ts->n;
	lim->qos_running_max[JOBQ_REALTIME] =
	    (uint32_t)cfg->tool_job_runmax_qos_realtime;
	lim->qos_running_max[JOBQ_INTERACTIVE] =
	    (uint32_t)cfg->tool_job_runmax_qos_interactive;
	lim->qos_running_max[JOBQ_BATCH] =
	    (uint32_t)cfg->tool_job_runmax_qos_batch;
	lim->claim_scan = (uint32_t)cfg->tool_job_claim_scan;
	lim->max_attempts = (uint32_t)cfg->tool_job_max_attempts;
	lim->lease_ms = (uint64_t)cfg->tool_job_lease_ms;
	lim->retry_base_ms = (uint64_t)cfg->tool_job_retry_base_ms;
}

/* cap_json - tool o's member, else the seeded knob (top-level in cfg),
 * else def. */
static uint32_t
cap_json(const json_t *cfg, const json_t *o, const char *member,
    const struct seeded *sd, enum config_knob_id id, uint32_t def)
{
	const json_t *v = json_object_get(o, member);

	if (v == NULL && sd != NULL)
		v = json_object_get(cfg, config_knobs[id].key);
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > UINT32_MAX)
		return def;
	return (uint32_t)json_integer_value(v);
}

size_t
tools_caps_json(const json_t *cfg, struct jobq_tool *out, size_t max)
{
	const json_t *tools = json_object_get(cfg, "tools"), *o;
	size_t i, n = 0;

	json_array_foreach(tools, i, o) {
		const char *name = json_string_value(json_object_get(o,
		    "name"));
		const struct seeded *sd;

		if (n == max)
			break;
		if (!name_ok(name))
			continue;
		sd = seeded_by_name(name);
		out[n].name = name;
		out[n].queue_max = cap_json(cfg, o, "queue_max", sd,
		    sd != NULL ? sd->queue_max : KNOB_COUNT,
		    TOOLS_DEFAULT_QUEUE_MAX);
		out[n].running_max = cap_json(cfg, o, "running_max", sd,
		    sd != NULL ? sd->running_max : KNOB_COUNT,
		    TOOLS_DEFAULT_RUNNING_MAX);
		n++;
	}
	return n;
}

void
tools_name_rows(const struct tool_set *ts, struct tl_block *b)
{
	const char *names[TL_MAX_TOOLS];
	unsigned n = 0;

	for (size_t i = 0; i < ts->n && n < TL_MAX_TOOLS; i++)
		names[n++] = ts->t[i].name;
	tl_tools(b, names, n);
}
