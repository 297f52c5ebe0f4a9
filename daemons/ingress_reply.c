/*
 * ingress_reply - the ingress's answers and boundary helpers: classified
 * errors (code header, JSON body, Retry-After), CORS, the client address,
 * the media type, and the rate limits with their telemetry (SPEC §3, §4).
 *
 * Must never: answer an error without its code header and JSON body, or
 * send one nng message per refused request (gate/telemetry coalesces).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "daemons/ingress.h"
#include "shm/ratelimit.h"
#include "util/util.h"

void
hdr_add(struct hdrs *h, const char *name, const char *value)
{
	if (h->n < RG_NELEM(h->h))
		h->h[h->n++] = (struct httpd_header){ name, value };
}

int
ing_origin_allowed(const struct ing *g, const char *origin)
{
	const struct config_strlist *l = &CFG(g)->http_allowed_origins;

	for (size_t i = 0; origin != NULL && i < l->n; i++)
		if (strcmp(l->v[i], origin) == 0)
			return 1;
	return 0;
}

void
ing_cors(const struct ing *g, struct httpd_req *req, struct hdrs *h)
{
	const char *origin = httpd_req_header(req, "origin");

	if (ing_origin_allowed(g, origin)) {
		hdr_add(h, "Access-Control-Allow-Origin", origin);
		hdr_add(h, "Vary", "Origin");
	}
}

/* u64_str - decimal of v into buf (>= 21 bytes); returns buf. */
static const char *
u64_str(char *buf, uint64_t v)
{
	buf[fmt_u64(buf, v, 10)] = '\0';
	return buf;
}

/* Bodies with the default message, built once: the reject path (429 to
 * an abusive client) must cost as little as possible. */
static struct {
	char body[256];
	size_t len;
} default_bodies[RG_E_COUNT];

int64_t
ing_fail(struct ing *g, struct httpd_req *req, enum rg_error e,
    const char *msg, uint64_t retry_s, struct hdrs *h)
{
	struct hdrs local = { .n = 0 };
	char custom[768];
	const char *body;
	size_t len;

	if (h == NULL)
		h = &local;
	if (msg == NULL && (unsigned)e < RG_E_COUNT) {
		if (default_bodies[e].len == 0)
			default_bodies[e].len = rg_error_body(
			    default_bodies[e].body,
			    sizeof(default_bodies[e].body), e, NULL);
		body = default_bodies[e].body;
		len = default_bodies[e].len;
	} else {
		len = rg_error_body(custom, sizeof(custom), e, msg);
		body = custom;
	}
	hdr_add(h, "Content-Type", "application/json");
	hdr_add(h, CFG(g)->http_error_code_header, rg_error_code(e));
	if (retry_s > 0)
		hdr_add(h, "Retry-After", u64_str(h->retry, retry_s));
	if (e == RG_E_INTERNAL_ERROR)
		COUNT(g, ing_internal_errors);
	httpd_req_set_code(req, (unsigned)e + 1);
	httpd_respond(req, rg_error_status(e), h->h, h->n, body, len);
	return -1;
}

void
ing_ok_json(struct httpd_req *req, int replay)
{
	static const char body[] = "{\"ok\":true}";
	struct httpd_header h[2] = {
		{ "Content-Type", "application/json" },
		{ "X-Idempotent-Replay", "1" },
	};

	httpd_respond(req, 200, h, replay ? 2 : 1, body, sizeof(body) - 1);
}

static const char *
hdr_get(void *ctx, const char *name, size_t *len)
{
	const char *v = httpd_req_header(ctx, name);

	if (v != NULL)
		*len = strlen(v);
	return v;
}

void
ing_client_ip(struct ing *g, struct httpd_req *req, char *ip, size_t len)
{
	struct clientip_hdrs h = { hdr_get, req };

	clientip_pick(&g->trusted, (const struct sockaddr *)httpd_req_peer(req),
	    &h, ip, len);
}

int
ing_is_json(struct httpd_req *req)
{
	const char *ct = httpd_req_header(req, "content-type");
	size_t n = sizeof("application/json") - 1;

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

const char *
ing_secret(const char *v)
{
	return v != NULL && v[0] != '\0' ? v : NULL;
}

/* --- telemetry ------------------------------------------------------------*/

/* tel_send - one coalesced event to the monitor. */
static void
tel_send(void *arg, const struct tel_event *ev, uint32_t count)
{
	struct ing *g = arg;
	struct proto_msg m;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_T_RL_EVENT;
	m.u.rl_event.created_at = now_ms();
	m.u.rl_event.retry_after_ms = ev->retry_after_ms;
	m.u.rl_event.outcome = ev->outcome;
	m.u.rl_event.count = count;
	m.u.rl_event.source = proto_str_from("http");
	m.u.rl_event.bucket = proto_str_from(ev->bucket);
	m.u.rl_event.key = proto_str_from(ev->key);
	m.u.rl_event.reason = proto_str_from(
	    ev->outcome == TEL_BLOCKED ? "limit" : "table_contention");
	m.u.rl_event.path = proto_str_from(ev->path);
	m.u.rl_event.method = proto_str_from(ev->method);
	if (link_send(g->ctx->link, ROLE_MONITOR, 0, &m) == LINK_OK)
		COUNT(g, ing_telemetry_sent);
	else
		COUNT(g, ing_telemetry_dropped);
}

void
ing_tel_flush(struct ing *g)
{
	tel_flush(&g->tel, now_ms(), tel_send, g);
}

int
ing_limit(struct ing *g, struct httpd_req *req, unsigned bucket,
    const char *key, int64_t max, int64_t window_ms, struct hdrs *h)
{
	struct tel_occurrence oc;
	struct rl_result r;
	int rc;

	rc = rl_check(&g->ctx->shm, bucket, key, strlen(key), mono_ms(),
	    (uint32_t)max, (uint32_t)window_ms, &r);
	if (rc == RL_ALLOWED)
		return 0;
	oc = (struct tel_occurrence){
		.outcome = rc == RL_BLOCKED ? TEL_BLOCKED : TEL_CONTENTION,
		.retry_after_ms = r.retry_after_ms,
		.bucket = rl_bucket_name(bucket),
		.key = key,
		.path = httpd_req_path(req),
		.method = httpd_req_method(req),
	};
	if (tel_note(&g->tel, &oc, now_ms(), tel_send, g))
		COUNT(g, ing_telemetry_coalesced);
	ing_fail(g, req, RG_E_RATE_LIMITED, NULL,
	    rl_retry_after_s(r.retry_after_ms), h);
	return -1;
}
