/*
 * ingress - the public HTTP surface (SPEC §3): dispatch.
 *
 * Owns: one SO_REUSEPORT listener per process (http/server), the route
 * table below, and the process's outbound-call environment (gate/outcall).
 * A request is routed by path and method to its route family
 * (ingress_*.c, see ingress.h): the head handler answers at once or
 * returns the body limit; the body handler runs when the body is in.
 *
 * Must never: block its event loop, answer an error without its code
 * header and JSON body (ing_fail), acknowledge a webhook that is not
 * stored, or log a secret.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemons/ingress.h"
#include "gate/jwt.h"
#include "gate/outcall.h"
#include "gate/routes.h"
#include "shm/requests.h"
#include "http/client.h"
#include "util/log.h"
#include "util/util.h"

enum method {
	M_GET = 1u << 0,
	M_POST = 1u << 1,
	M_OPTIONS = 1u << 2,
};

typedef int64_t (*head_fn)(struct ing *g, struct httpd_req *req);
typedef void (*body_fn)(struct ing *g, struct httpd_req *req);

/* at exit, how long the answers and error events just written have to
 * reach their clients */
#define EXIT_FLUSH_MS 1000

/*
 * The route table (SPEC §3): ROUTE(ID, path, methods, head handler, body
 * handler).  The head handler answers at once (returns -1) or returns
 * the body limit; the body handler runs when the body is in.
 */
#define INGRESS_ROUTES(R)                                                 \
	R(CHAT, "/api/chat", M_POST | M_OPTIONS, chat_head, NULL)         \
	R(CHAT_HEALTH, "/api/chat/health", M_GET, health_head, NULL)      \
	R(GMAIL_PUSH, "/api/gmail/push", M_POST, push_head, push_body)    \
	R(WA_WEBHOOK, "/api/whatsapp/webhook", M_GET | M_POST, wa_head,   \
	    wa_body)                                                      \
	R(GMAIL_OAUTH, "/api/gmail/auth/callback", M_GET, oauth_head,     \
	    oauth_body)

enum route_id {
#define ROUTE_ENUM(id, path, m, h, b) ROUTE_##id,
	INGRESS_ROUTES(ROUTE_ENUM)
#undef ROUTE_ENUM
	ROUTE_COUNT
};

/* rows of the request counters (shm/requests.h): 0 unmatched, then the
 * fixed routes, then the proxied paths */
#define ROUTE_ROW0 1u
_Static_assert(ROUTE_ROW0 + ROUTE_COUNT + 32 <= RQ_MAX_ROUTES,
    "request counter rows");

static const struct route {
	const char *path;
	unsigned methods;
	head_fn head;
	body_fn body;
} routes[ROUTE_COUNT] = {
#define ROUTE_ROW(id, path, m, h, b) { path, m, h, b },
	INGRESS_ROUTES(ROUTE_ROW)
#undef ROUTE_ROW
};

/* The request data of a fixed route (see TAG_ROUTE in ingress.h). */
struct route_tag {
	int kind; /* TAG_ROUTE */
	enum route_id id;
};

static const struct route_tag route_tags[ROUTE_COUNT] = {
#define ROUTE_TAGS(id, path, m, h, b) { TAG_ROUTE, ROUTE_##id },
	INGRESS_ROUTES(ROUTE_TAGS)
#undef ROUTE_TAGS
};

static struct ing the_ing;

/* --- routing --------------------------------------------------------------*/

static const struct route *
route_of(const char *path, enum route_id *id)
{
	for (unsigned i = 0; i < ROUTE_COUNT; i++)
		if (strcmp(routes[i].path, path) == 0) {
			*id = i;
			return &routes[i];
		}
	return NULL;
}

static unsigned
method_bit(const char *m)
{
	if (strcmp(m, "GET") == 0)
		return M_GET;
	if (strcmp(m, "POST") == 0)
		return M_POST;
	if (strcmp(m, "OPTIONS") == 0)
		return M_OPTIONS;
	return 0;
}

/* allow_header - the Allow list of a route (HEAD goes with GET). */
static void
allow_header(unsigned methods, char *buf, size_t len)
{
	static const struct {
		unsigned bit;
		const char *names;
	} m[] = { { M_GET, "GET, HEAD" }, { M_POST, "POST" },
		{ M_OPTIONS, "OPTIONS" } };
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < RG_NELEM(m); i++)
		if ((methods & m[i].bit) && used < len)
			used += (size_t)snprintf(buf + used, len - used,
			    "%s%s", used ? ", " : "", m[i].names);
}

/* proxy_of - the proxied route of path and method; *allow gets the bits
 * (route indexes) of every proxied route on path. */
static const struct proxy_route *
proxy_of(const struct ing *g, const char *path, const char *method,
    unsigned *allow)
{
	const struct proxy_route *hit = NULL;

	*allow = 0;
	for (size_t i = 0; i < g->nproxies; i++) {
		if (strcmp(g->proxies[i].path, path) != 0)
			continue;
		*allow |= 1u << i;
		if (strcmp(g->proxies[i].method, method) == 0)
			hit = &g->proxies[i];
	}
	return hit;
}

/* proxy_405 - a proxied path with another method: 405 + Allow. */
static int64_t
proxy_405(struct ing *g, struct httpd_req *req, unsigned allow)
{
	struct hdrs h = { .n = 0 };
	char list[64] = "";
	size_t used = 0;

	for (size_t i = 0; i < g->nproxies && used < sizeof(list); i++)
		if (allow & (1u << i))
			used += (size_t)snprintf(list + used,
			    sizeof(list) - used, "%s%s", used ? ", " : "",
			    g->proxies[i].method);
	hdr_add(&h, "Allow", list);
	return ing_fail(g, req, RG_E_METHOD_NOT_ALLOWED, NULL, 0, &h);
}

/* --- the server callbacks -------------------------------------------------*/

static int64_t
on_head(void *arg, struct httpd_req *req)
{
	struct ing *g = arg;
	const struct route *r;
	enum route_id id;

	r = route_of(httpd_req_path(req), &id);
	if (r != NULL)
		httpd_req_set_route(req, ROUTE_ROW0 + id);
	if (r == NULL) {
		unsigned allow;
		const struct proxy_route *p = proxy_of(g, httpd_req_path(req),
		    httpd_req_method(req), &allow);

		if (p != NULL) {
			httpd_req_set_route(req,
			    g->proxy_row[p - g->proxies]);
			return proxy_head(g, req, p);
		}
		if (allow == 0)
			return ing_fail(g, req, RG_E_NOT_FOUND, NULL, 0, NULL);
		/* allow's lowest bit: a proxied route on this path */
		httpd_req_set_route(req,
		    g->proxy_row[__builtin_ctz(allow)]);
		return proxy_405(g, req, allow);
	}
	if ((method_bit(httpd_req_method(req)) & r->methods) == 0) {
		struct hdrs h = { .n = 0 };
		char allow[40];

		allow_header(r->methods, allow, sizeof(allow));
		hdr_add(&h, "Allow", allow);
		return ing_fail(g, req, RG_E_METHOD_NOT_ALLOWED, NULL, 0, &h);
	}
	httpd_req_set_data(req, (void *)(uintptr_t)&route_tags[id]);
	return r->head(g, req);
}

static void
on_request(void *arg, struct httpd_req *req)
{
	struct ing *g = arg;
	const int *kind = httpd_req_data(req);
	const struct route *r = NULL;

	if (kind != NULL && *kind == TAG_PROXY) {
		proxy_body(g, req, (void *)(uintptr_t)kind);
		return;
	}
	if (kind != NULL && *kind == TAG_CHAT) {
		chat_body(g, req, (void *)(uintptr_t)kind);
		return;
	}
	if (kind != NULL)
		r = &routes[((const struct route_tag *)(const void *)kind)->id];
	if (r == NULL || r->body == NULL) {
		ing_fail(g, req, RG_E_INTERNAL_ERROR, NULL, 0, NULL);
		return;
	}
	r->body(g, req);
}

static void
on_error(void *arg, struct httpd_req *req, enum httpd_err err)
{
	static const enum rg_error map[] = {
		[HTTPD_E_NONE] = RG_E_INTERNAL_ERROR,
		[HTTPD_E_BAD_REQUEST] = RG_E_BAD_REQUEST,
		[HTTPD_E_URI_TOO_LONG] = RG_E_URI_TOO_LONG,
		[HTTPD_E_HEAD_TOO_LARGE] = RG_E_HEADERS_TOO_LARGE,
		[HTTPD_E_BODY_TOO_LARGE] = RG_E_PAYLOAD_TOO_LARGE,
		[HTTPD_E_TIMEOUT] = RG_E_REQUEST_TIMEOUT,
		[HTTPD_E_NOT_IMPLEMENTED] = RG_E_NOT_IMPLEMENTED,
		[HTTPD_E_VERSION] = RG_E_HTTP_VERSION,
	};
	struct ing *g = arg;
	const int *kind = httpd_req_data(req);
	struct hdrs h = { .n = 0 };

	if (kind != NULL && *kind == TAG_PROXY) {
		/* answered here: on_close will not come for it */
		proxy_abort(g, req, (void *)(uintptr_t)kind);
		kind = NULL;
	}
	if (kind != NULL && *kind == TAG_CHAT) {
		/* answered here: on_close will not come for it */
		chat_abort(g, req, (void *)(uintptr_t)kind);
		ing_cors(g, req, &h);
		kind = NULL;
	}
	if (kind != NULL && *kind == TAG_ROUTE &&
	    ((const struct route_tag *)(const void *)kind)->id == ROUTE_CHAT)
		ing_cors(g, req, &h);
	ing_fail(g, req,
	    (unsigned)err < RG_NELEM(map) ? map[err] : RG_E_INTERNAL_ERROR,
	    NULL, 0, &h);
}

/* on_done - every request, when it is over: the route's counters and
 * the access log. */
static void
on_done(void *arg, struct httpd_req *req, const struct httpd_done *d)
{
	struct ing *g = arg;

	rq_count(g->rq, d->route, d->status, (int)d->code - 1, d->answer_us,
	    d->bytes);
	access_done(g, req, d);
}

static const struct httpd_ops ingress_http = {
	.on_head = on_head,
	.on_request = on_request,
	.on_error = on_error,
	.on_done = on_done,
};

/* count_routes - name the rows of this instance's request counters:
 * unmatched, the fixed routes, then each distinct proxied path. */
static void
count_routes(struct ing *g)
{
	const char *names[RQ_MAX_ROUTES];
	unsigned n = 0;

	names[n++] = "unmatched";
	for (unsigned i = 0; i < ROUTE_COUNT; i++)
		names[n++] = routes[i].path;
	for (size_t i = 0; i < g->nproxies; i++) {
		unsigned row = 0;

		/* one row per path (proxied routes differ by method) */
		for (unsigned j = ROUTE_ROW0; j < n; j++)
			if (strcmp(names[j], g->proxies[i].path) == 0)
				row = j;
		if (row == 0 && n < RQ_MAX_ROUTES) {
			row = n;
			names[n++] = g->proxies[i].path;
		}
		g->proxy_row[i] = row;
	}
	g->rq = rq_block(&g->ctx->shm, g->ctx->instance);
	if (g->rq != NULL)
		rq_routes(g->rq, names, n, (int32_t)getpid());
}

/* --- the role -------------------------------------------------------------*/

/* wake - new delivery rows: wake a tool-worker, once per loop pass. */
static void
wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ing_wake_workers(arg);
}

static int
outbound_init(struct ing *g)
{
	const struct config *c = CFG(g);
	struct httpc_opts o = { .ca_file = c->tls_ca_file,
		.max_idle_per_origin = 16 };
	char why[400];

	g->http = httpc_new(g->ctx->base, &o);
	g->out = xcalloc(1, sizeof(*g->out));
	role_outcall_env(g->ctx, g->http, g->out);
	if (routes_parse(c->routes, &g->proxies, &g->nproxies, why,
		sizeof(why)) != 0) {
		log_err("config: %s", why);
		return -1;
	}
	if (g->nproxies > 32) {
		log_err("config: routes: at most 32 proxied routes");
		return -1;
	}
	if (jwt_verifier_from_config(c, &g->jwt, why, sizeof(why)) != 0) {
		log_err("config: auth.jwt: %s", why);
		return -1;
	}
	return 0;
}

static int
ingress_init(struct role_ctx *ctx)
{
	struct ing *g = &the_ing;
	const struct config *c = ctx->cfg;
	struct httpd_limits lim = {
		.max_head_bytes = (size_t)c->http_max_header_bytes,
		.head_timeout_ms = (unsigned)c->http_header_timeout_ms,
		.body_timeout_ms = (unsigned)c->http_body_timeout_ms,
		.keepalive_timeout_ms = (unsigned)c->http_keepalive_timeout_ms,
		.max_connections = (unsigned)c->http_max_connections,
		.error_code_header = c->http_error_code_header,
	};
	char err[256];

	g->ctx = ctx;
	ctx->priv = g;
	clientip_set_init(&g->trusted);
	for (size_t i = 0; i < c->http_trusted_proxies.n; i++)
		if (clientip_set_add(&g->trusted, c->http_trusted_proxies.v[i],
			err, sizeof(err)) != 0) {
			log_err("http.trusted_proxies: %s", err);
			return -1;
		}
	g->wake = event_new(ctx->base, -1, 0, wake, g);
	if (outbound_init(g) != 0 || chat_init(g) != 0)
		return -1;
	count_routes(g);
	(void)access_setup(g, NULL);
	g->listen_fd = role_listener(ROLE_LISTEN_FD_ENV);
	if (g->listen_fd < 0)
		g->listen_fd = httpd_listen(c->http_listen, 1, err,
		    sizeof(err));
	if (g->listen_fd < 0) {
		log_err("http.listen %s: %s", c->http_listen, err);
		return -1;
	}
	g->httpd = httpd_new(ctx->base, g->listen_fd, &ingress_http, g, &lim);
	httpd_set_stats(g->httpd, &ctx->self->counters.http);
	log_info("listening on %s", c->http_listen);
	return 0;
}

/*
 * exit_flush - let the answers and the streams' error events written at
 * exit reach their clients: run the loop (ticks and messages no longer
 * reach the ingress) until every connection has closed, at most
 * EXIT_FLUSH_MS.
 */
static void
exit_flush(struct role_ctx *ctx, struct ing *g)
{
	const struct timeval slice = { 0, 50 * 1000 };
	uint64_t until = mono_ms() + EXIT_FLUSH_MS;

	ctx->priv = NULL;
	while (httpd_nconns(g->httpd) > 0 && mono_ms() < until) {
		event_base_loopexit(ctx->base, &slice);
		event_base_loop(ctx->base, EVLOOP_ONCE);
	}
	ctx->priv = g;
}

static void
ingress_exit(struct role_ctx *ctx)
{
	struct ing *g = ctx->priv;

	if (g == NULL || g->httpd == NULL)
		return;
	/* stop taking requests; commit what was accepted; answer it */
	g->stopping = 1;
	httpd_drain(g->httpd);
	chat_exit(g);
	role_commit_drain(ctx);
	ing_wake_workers(g);
	exit_flush(ctx, g);
	httpd_free(g->httpd); /* close callbacks still use the chat table */
	chat_table_free(g);
	access_exit(g);
	close(g->listen_fd);
	event_free(g->wake);
	httpc_free(g->http);
	free(g->out);
	jwt_verifier_free(g->jwt);
	free(g->proxies);
}

static void
ingress_tick(struct role_ctx *ctx)
{
	if (ctx->priv != NULL) {
		ing_tel_flush(ctx->priv);
		chat_tick(ctx->priv);
	}
}

static void
ingress_message(struct role_ctx *ctx, const struct proto_msg *m)
{
	if (ctx->priv != NULL)
		chat_message(ctx->priv, m);
}

/*
 * jwt_reload - the token settings of the new config (a rotated secret or
 * key file, a new issuer): a verifier that cannot be made keeps the one
 * running, with one line in the log
 */
static void
jwt_reload(struct ing *g)
{
	struct jwt_verifier *v;
	char why[400];

	if (jwt_verifier_from_config(CFG(g), &v, why, sizeof(why)) != 0) {
		log_err("reload: auth.jwt: %s; the running token settings "
			"are kept",
		    why);
		return;
	}
	jwt_verifier_free(g->jwt);
	g->jwt = v;
}

static void
ingress_reload(struct role_ctx *ctx, const struct config *old)
{
	if (ctx->priv == NULL)
		return;
	(void)access_setup(ctx->priv, old);
	jwt_reload(ctx->priv);
}

static const struct role_ops ingress_ops = {
	.role = ROLE_INGRESS,
	.init = ingress_init,
	.on_reload = ingress_reload,
	.on_message = ingress_message,
	.on_timer = ingress_tick,
	.on_exit = ingress_exit,
};

int
main(int argc, char **argv)
{
	return role_main(argc, argv, &ingress_ops);
}
