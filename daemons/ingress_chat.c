/*
 * ingress_chat - POST and OPTIONS /api/chat (SPEC §3, §6, §7): the
 * boundary (Origin, media type, JWT, size, schema), the gateway mode
 * (legacy: the per-user limiter chat_stream decides; shadow: the limiter
 * decides and admission only records; authoritative: admission decides),
 * and the client's side of the stream.
 *
 * A chat is a stream id (pid << 32 | sequence) sent in a CHAT_START to
 * the provider that will run it (through admission in authoritative
 * mode).  The provider answers with STREAM_BATCH records: HEAD (the first
 * token came: 200 text/event-stream and the first events), DATA, END, or
 * FAIL before the start (an HTTP error: upstream_*, overloaded).  The
 * events are the AI SDK 5 UI message stream, written as they come; idle
 * streams get ": ping" every chat.heartbeat_ms.
 *
 * Nothing hangs: a client that leaves cancels its stream at the provider
 * (which stops the upstream call and gives back the ticket and lease); a
 * provider that dies ends each of its streams within WATCH_MS (an error
 * event, or 503 before the start); a chat that gets nothing from the
 * provider in time ends with 504.
 *
 * Must never: answer a chat without CORS headers for an allowed Origin,
 * write to a client after its stream ended, or keep a stream whose
 * provider is gone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "daemons/ingress.h"
#include "gate/chatreq.h"
#include "gate/chatstream.h"
#include "gate/jwt.h"
#include "gate/webhook.h"
#include "proto/streambatch.h"
#include "shm/ratelimit.h"
#include "util/log.h"
#include "util/util.h"

#define NBUCKETS 65536u
#define MAX_PROVIDERS 16 /* provider.count is at most 16 */
#define WATCH_MS 100
#define START_MARGIN_MS 10000 /* beyond the routes' own timeouts */

enum chat_state {
	CS_HEAD,      /* head accepted, body coming */
	CS_PENDING,   /* sent; waiting for the provider's HEAD or FAIL */
	CS_STREAMING, /* the stream is being written */
};

/* One chat request. */
struct chat {
	int kind; /* TAG_CHAT: httpd_req_data */
	struct ing *g;
	uint64_t req_id;
	uint64_t stream;
	enum chat_state state;
	unsigned provider;     /* instance running it */
	int32_t provider_pid;  /* its pid when the chat was sent */
	uint64_t deadline;     /* mono ms: the start must come by then */
	uint64_t last_write;   /* mono ms */
	struct chat *hnext;          /* stream hash */
	struct chat *pnext, *pprev;  /* chats of one provider instance */
	struct chat *qnext, *qprev;  /* pending chats: while CS_PENDING */
	char sub[JWT_SUB_MAX + 1];
};

struct ing_chats {
	struct chat *bucket[NBUCKETS];
	struct chat *by_provider[MAX_PROVIDERS];
	int32_t provider_pid[MAX_PROVIDERS]; /* as last seen by watch */
	int mixed[MAX_PROVIDERS]; /* a chat sent to another pid since */
	struct chat *pending;     /* chats waiting for their start */
	uint32_t seq;
	unsigned open;
	struct event *watch;
};

/* --- the chats ------------------------------------------------------------*/

static unsigned
hslot(uint64_t id)
{
	return (unsigned)(mix64(id) % NBUCKETS);
}

static struct chat *
chat_find(struct ing *g, uint64_t stream)
{
	struct chat *c;

	for (c = g->chats->bucket[hslot(stream)]; c != NULL; c = c->hnext)
		if (c->stream == stream)
			return c;
	return NULL;
}

/* chat_link - c is sent: findable by stream and by provider. */
static void
chat_link(struct ing *g, struct chat *c)
{
	struct ing_chats *cs = g->chats;
	unsigned h = hslot(c->stream);

	c->hnext = cs->bucket[h];
	cs->bucket[h] = c;
	c->pprev = NULL;
	c->pnext = cs->by_provider[c->provider];
	if (c->pnext != NULL)
		c->pnext->pprev = c;
	cs->by_provider[c->provider] = c;
	if (c->provider_pid != cs->provider_pid[c->provider])
		cs->mixed[c->provider] = 1; /* watch looks at each again */
	c->qprev = NULL;
	c->qnext = cs->pending;
	if (c->qnext != NULL)
		c->qnext->qprev = c;
	cs->pending = c;
}

/* started - c is no longer waiting for its start: off the pending list
 * (it is on it exactly while CS_PENDING); call before changing state. */
static void
started(struct ing_chats *cs, struct chat *c)
{
	if (c->state != CS_PENDING)
		return;
	if (c->qprev != NULL)
		c->qprev->qnext = c->qnext;
	else
		cs->pending = c->qnext;
	if (c->qnext != NULL)
		c->qnext->qprev = c->qprev;
}

/* chat_free - forget c (its request is answered or gone). */
static void
chat_free(struct ing *g, struct chat *c)
{
	struct ing_chats *cs = g->chats;

	if (c->state != CS_HEAD) {
		struct chat **pp;

		for (pp = &cs->bucket[hslot(c->stream)]; *pp != NULL;
		     pp = &(*pp)->hnext)
			if (*pp == c) {
				*pp = c->hnext;
				break;
			}
		if (c->pprev != NULL)
			c->pprev->pnext = c->pnext;
		else
			cs->by_provider[c->provider] = c->pnext;
		if (c->pnext != NULL)
			c->pnext->pprev = c->pprev;
		started(cs, c);
	}
	cs->open--;
	SHM_STORE(&g->ctx->self->counters.ing_chat_open, cs->open);
	free(c);
}

/* chat_done - c's request got its last byte: forget it. */
static void
chat_done(struct ing *g, struct httpd_req *req, struct chat *c)
{
	if (req != NULL) {
		httpd_req_set_close_cb(req, NULL, NULL);
		httpd_req_set_data(req, NULL);
	}
	chat_free(g, c);
}

static void
send_cancel(struct ing *g, struct chat *c)
{
	struct proto_msg m;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_T_CHAT_CANCEL;
	m.u.chat_cancel.stream = c->stream;
	link_send_held(g->ctx->link, ROLE_PROVIDER, c->provider, &m,
	    LINK_WAIT_RELEASE_MS);
}

/* chat_close - the client left. */
static void
chat_close(void *arg, struct httpd_req *req)
{
	struct chat *c = arg;
	struct ing *g = c->g;

	(void)req;
	if (c->state != CS_HEAD) {
		COUNT(g, ing_chat_client_gone);
		send_cancel(g, c);
	}
	chat_free(g, c);
}

void
chat_abort(struct ing *g, struct httpd_req *req, void *data)
{
	chat_done(g, req, data);
}

/* fail - an error answer before the stream started; forgets c. */
static void
fail(struct ing *g, struct httpd_req *req, struct chat *c, enum rg_error e,
    const char *msg, uint64_t retry_s)
{
	struct hdrs h = { .n = 0 };

	ing_cors(g, req, &h);
	chat_done(g, req, c);
	ing_fail(g, req, e, msg, retry_s, &h);
}

/* --- the head and the body ------------------------------------------------*/

/* preflight - OPTIONS: CORS headers only for an allowed Origin. */
static int64_t
preflight(struct ing *g, struct httpd_req *req, const char *origin)
{
	struct hdrs h = { .n = 0 };

	if (ing_origin_allowed(g, origin)) {
		hdr_add(&h, "Access-Control-Allow-Origin", origin);
		hdr_add(&h, "Access-Control-Allow-Methods", "POST, OPTIONS");
		hdr_add(&h, "Access-Control-Allow-Headers",
		    "authorization, content-type");
		hdr_add(&h, "Access-Control-Max-Age", "600");
		hdr_add(&h, "Vary", "Origin");
	}
	httpd_respond(req, 204, h.h, h.n, NULL, 0);
	return -1;
}

int64_t
chat_head(struct ing *g, struct httpd_req *req)
{
	const char *origin = httpd_req_header(req, "origin");
	const char *auth = httpd_req_header(req, "authorization");
	struct hdrs h = { .n = 0 };
	struct jwt_claims claims;
	enum jwt_result jr;
	struct chat *c;

	if (strcmp(httpd_req_method(req), "OPTIONS") == 0)
		return preflight(g, req, origin);
	if (g->stopping) /* a head completed while the ingress stops */
		return ing_fail(g, req, RG_E_OVERLOADED,
		    "The gateway is restarting; retry shortly.", 1, NULL);
	if (origin != NULL && !ing_origin_allowed(g, origin))
		return ing_fail(g, req, RG_E_FORBIDDEN, "Origin not allowed.",
		    0, NULL);
	if (origin == NULL && CFG(g)->chat_require_origin)
		return ing_fail(g, req, RG_E_FORBIDDEN, "Origin required.", 0,
		    NULL);
	ing_cors(g, req, &h);
	if (g->jwt == NULL)
		return ing_fail(g, req, RG_E_MISCONFIGURED,
		    "auth.jwt is not configured.", 0, &h);
	jr = jwt_verify(g->jwt, auth, auth ? strlen(auth) : 0,
	    now_ms() / 1000, &claims);
	if (jr != JWT_OK) {
		log_debug("chat: token refused: %s", jwt_result_name(jr));
		return ing_fail(g, req, RG_E_UNAUTHORIZED, NULL, 0, &h);
	}
	if (!ing_is_json(req))
		return ing_fail(g, req, RG_E_UNSUPPORTED_MEDIA_TYPE, NULL, 0,
		    &h);
	if (admit_gateway_mode(CFG(g)) != ADMIT_MODE_AUTHORITATIVE) {
		char key[JWT_SUB_MAX + 8];

		snprintf(key, sizeof(key), "user:%s", claims.sub);
		h.n = 0;
		ing_cors(g, req, &h);
		if (ing_limit(g, req, RL_BUCKET_CHAT_STREAM, key,
			CFG(g)->rate_limit_chat_stream_max,
			CFG(g)->rate_limit_chat_stream_window_ms, &h) != 0)
			return -1;
	}
	c = xcalloc(1, sizeof(*c));
	c->kind = TAG_CHAT;
	c->g = g;
	c->req_id = httpd_req_id(req);
	c->state = CS_HEAD;
	memcpy(c->sub, claims.sub, sizeof(c->sub));
	g->chats->open++;
	SHM_STORE(&g->ctx->self->counters.ing_chat_open, g->chats->open);
	httpd_req_set_data(req, c);
	httpd_req_set_close_cb(req, chat_close, c);
	/* a client that leaves while its stream is prepared stops it */
	httpd_req_end_on_eof(req);
	return CHAT_BODY_MAX;
}

/* start_deadline - how long the provider may take to start a stream:
 * every attempt of both routes, and a margin. */
static uint64_t
start_deadline(const struct config *c)
{
	return (uint64_t)(c->chat_provider_primary_timeout_ms *
			     (1 + c->chat_provider_primary_retries) +
		   c->chat_provider_secondary_timeout_ms *
		       (1 + c->chat_provider_secondary_retries)) +
	    START_MARGIN_MS;
}

void
chat_body(struct ing *g, struct httpd_req *req, void *data)
{
	const struct config *cfg = CFG(g);
	enum admit_mode mode = admit_gateway_mode(cfg);
	struct chat *c = data;
	struct chatreq cr;
	struct proto_msg m;
	char msg[WEBHOOK_MSG_MAX], mid[40];
	const void *body;
	char *msgs;
	size_t len;
	int rc;

	if (g->stopping) { /* the body came in while the ingress stops */
		fail(g, req, c, RG_E_OVERLOADED,
		    "The gateway is restarting; retry shortly.", 1);
		return;
	}
	body = httpd_req_body(req, &len);
	switch (chatreq_parse(body, len, &cr, msg, sizeof(msg))) {
	case CHATREQ_INVALID_JSON:
		fail(g, req, c, RG_E_INVALID_JSON, NULL, 0);
		return;
	case CHATREQ_INVALID_REQUEST:
		fail(g, req, c, RG_E_INVALID_REQUEST, msg, 0);
		return;
	case CHATREQ_OK:
		break;
	}
	c->stream = (uint64_t)getpid() << 32 | ++g->chats->seq;
	c->provider = chat_provider_of(cfg, c->stream);
	c->provider_pid = role_peer_pid(g->ctx, ROLE_PROVIDER, c->provider);
	if (c->provider >= MAX_PROVIDERS || c->provider_pid == 0) {
		chatreq_free(&cr);
		fail(g, req, c, RG_E_OVERLOADED,
		    "The chat service is starting; retry shortly.", 1);
		return;
	}
	msgs = json_dumps(cr.messages, JSON_COMPACT);
	snprintf(mid, sizeof(mid), "msg-%016llx",
	    (unsigned long long)c->stream);
	memset(&m, 0, sizeof(m));
	m.type = PROTO_T_CHAT_START;
	m.u.chat_start.stream = c->stream;
	m.u.chat_start.ingress = (uint8_t)g->ctx->instance;
	m.u.chat_start.ingress_pid = (uint32_t)getpid();
	m.u.chat_start.mode = (uint8_t)mode;
	m.u.chat_start.created_at = now_ms();
	m.u.chat_start.model_class = (uint8_t)cr.model_class;
	m.u.chat_start.user = proto_str_from(c->sub);
	m.u.chat_start.thread_id = proto_str_from(cr.thread_id);
	m.u.chat_start.model = proto_str_from(cr.model ? cr.model : "");
	m.u.chat_start.message_id = proto_str_from(
	    cr.message_id ? cr.message_id : mid);
	m.u.chat_start.messages = proto_str_from(msgs ? msgs : "[]");
	rc = link_send_held(g->ctx->link,
	    mode == ADMIT_MODE_AUTHORITATIVE ? ROLE_ADMISSION : ROLE_PROVIDER,
	    mode == ADMIT_MODE_AUTHORITATIVE ? 0 : c->provider, &m,
	    LINK_WAIT_ANSWER_MS);
	free(msgs);
	chatreq_free(&cr);
	if (rc != LINK_OK) {
		fail(g, req, c, RG_E_OVERLOADED,
		    "The chat service is busy; retry shortly.", 1);
		return;
	}
	if (mode == ADMIT_MODE_SHADOW) {
		/* admission computes and records; it never blocks here */
		memset(&m, 0, sizeof(m));
		m.type = PROTO_T_ADMIT_SHADOW;
		m.u.admit_shadow.stream = c->stream;
		m.u.admit_shadow.user = proto_str_from(c->sub);
		link_send(g->ctx->link, ROLE_ADMISSION, 0, &m);
	}
	c->state = CS_PENDING;
	c->deadline = mono_ms() + start_deadline(cfg);
	chat_link(g, c);
}

/* --- the stream -----------------------------------------------------------*/

/* stream_start - the provider's HEAD: 200 and the first events. */
static int
stream_start(struct ing *g, struct httpd_req *req, struct chat *c)
{
	struct hdrs h = { .n = 0 };

	hdr_add(&h, "Content-Type", "text/event-stream");
	hdr_add(&h, "Cache-Control", "no-cache");
	hdr_add(&h, "x-vercel-ai-ui-message-stream", "v1");
	hdr_add(&h, "x-accel-buffering", "no");
	ing_cors(g, req, &h);
	if (httpd_stream_start(req, 200, h.h, h.n) != 0)
		return -1;
	started(g->chats, c);
	c->state = CS_STREAMING;
	COUNT(g, ing_chat_streams);
	return 0;
}

/* stream_write - events to the client; -1 when c is gone (forgotten). */
static int
stream_write(struct ing *g, struct httpd_req *req, struct chat *c,
    const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (httpd_stream_write(req, data, len) >= 0) {
		c->last_write = mono_ms();
		return 0;
	}
	if (errno == ENOBUFS) {
		/* a client that does not read: stop its upstream call */
		COUNT(g, ing_chat_slow_clients);
		send_cancel(g, c);
		chat_done(g, req, c);
		httpd_req_abort(req);
		return -1;
	}
	return 0; /* EPIPE: the client is gone; on_close follows */
}

/* stream_error_end - the stream ends with an error event. */
static void
stream_error_end(struct ing *g, struct httpd_req *req, struct chat *c,
    enum rg_error e, const char *text)
{
	struct ui_buf b = { 0 };

	/* counted with the route as this code, though the status was 200 */
	httpd_req_set_code(req, (unsigned)e + 1);
	ui_error(&b, rg_error_code(e), text);
	ui_finish(&b, "error");
	ui_done(&b);
	if (stream_write(g, req, c, b.p, b.len) == 0) {
		chat_done(g, req, c);
		httpd_stream_end(req);
	}
	ui_buf_free(&b);
}

/* record - one record of a STREAM_BATCH. */
static void
record(struct ing *g, unsigned from, const struct sb_record *r)
{
	struct chat *c = chat_find(g, r->stream);
	struct httpd_req *req;

	if (c == NULL) {
		/* not here (the client left, or a stale batch): stop it */
		COUNT(g, ing_chat_unknown);
		if (r->kind != SB_END && r->kind != SB_FAIL) {
			struct chat tmp = { .stream = r->stream,
				.provider = from };

			send_cancel(g, &tmp);
		}
		return;
	}
	req = httpd_req_lookup(g->httpd, c->req_id);
	if (req == NULL) {
		send_cancel(g, c);
		chat_free(g, c);
		return;
	}
	switch (r->kind) {
	case SB_HEAD:
		if (c->state == CS_PENDING && stream_start(g, req, c) != 0) {
			send_cancel(g, c);
			chat_done(g, req, c);
			return;
		}
		/* FALLTHROUGH */
	case SB_DATA:
		if (c->state == CS_STREAMING)
			stream_write(g, req, c, r->data, r->len);
		return;
	case SB_END:
		if (c->state != CS_STREAMING) {
			fail(g, req, c, RG_E_UPSTREAM_ERROR, NULL, 0);
			return;
		}
		/* an error event ends it: counted as that code */
		if (r->aux > 0 && r->aux <= RG_E_COUNT)
			httpd_req_set_code(req, r->aux);
		if (stream_write(g, req, c, r->data, r->len) == 0) {
			chat_done(g, req, c);
			httpd_stream_end(req);
		}
		return;
	case SB_FAIL: {
		char code[64];
		const char *msg;
		size_t ml;
		enum rg_error e;

		if (c->state != CS_PENDING) {
			stream_error_end(g, req, c, RG_E_UPSTREAM_ERROR, NULL);
			return;
		}
		COUNT(g, ing_chat_failed);
		if (sb_fail_split(r, code, sizeof(code), &msg, &ml) != 0 ||
		    rg_error_by_code(code, &e) != 0)
			e = RG_E_UPSTREAM_ERROR;
		fail(g, req, c, e, NULL,
		    r->aux ? rl_retry_after_s(r->aux) : 0);
		return;
	}
	}
}

static void
batch(struct ing *g, const struct proto_msg *m)
{
	const struct proto_stream_batch *b = &m->u.stream_batch;
	struct sb_record r;
	size_t pos = 0;
	int rc;

	while ((rc = sb_next(b->records.p, b->records.len, &pos, &r)) == 1)
		record(g, m->src_instance, &r);
	if (rc < 0)
		log_warn("stream batch from provider.%u: malformed record",
		    m->src_instance);
}

static void
refused(struct ing *g, const struct proto_admit_refuse *a)
{
	struct chat *c = chat_find(g, a->stream);
	struct httpd_req *req;
	char msg[128];
	int overloaded;

	if (c == NULL || c->state != CS_PENDING)
		return;
	req = httpd_req_lookup(g->httpd, c->req_id);
	if (req == NULL) {
		chat_free(g, c);
		return;
	}
	COUNT(g, ing_chat_refused);
	overloaded = a->reason.len >= 10 &&
	    memcmp(a->reason.p, "overloaded", 10) == 0;
	/* the dimension that refused, for the client and its operator */
	snprintf(msg, sizeof(msg), "%s (%.*s); retry later.",
	    overloaded ? "The chat service is busy" :
			 "Too many chat requests",
	    (int)(a->reason.len < 64 ? a->reason.len : 64), a->reason.p);
	fail(g, req, c, overloaded ? RG_E_OVERLOADED : RG_E_RATE_LIMITED,
	    msg, rl_retry_after_s(a->retry_after_ms));
}

/* giveup - a chat start that admission (or the provider) never took: the
 * client hears 503 overloaded now instead of waiting for its deadline. */
static void
giveup(void *arg, const struct proto_msg *m)
{
	struct ing *g = arg;
	struct chat *c;
	struct httpd_req *req;

	if (m->type != PROTO_T_CHAT_START)
		return; /* a cancel: the provider's own watch ends it */
	c = chat_find(g, m->u.chat_start.stream);
	if (c == NULL || c->state != CS_PENDING)
		return;
	COUNT(g, ing_chat_refused);
	req = httpd_req_lookup(g->httpd, c->req_id);
	if (req == NULL) {
		chat_free(g, c);
		return;
	}
	fail(g, req, c, RG_E_OVERLOADED,
	    "The chat service is busy; retry shortly.", 1);
}

void
chat_message(struct ing *g, const struct proto_msg *m)
{
	if (m->type == PROTO_T_STREAM_BATCH)
		batch(g, m);
	else if (m->type == PROTO_T_ADMIT_REFUSE)
		refused(g, &m->u.admit_refuse);
}

/* --- nothing hangs --------------------------------------------------------*/

/* lost - c's provider died or nothing came in time. */
static void
lost(struct ing *g, struct chat *c, int timeout)
{
	struct httpd_req *req = httpd_req_lookup(g->httpd, c->req_id);

	if (timeout)
		COUNT(g, ing_chat_timeouts);
	else
		COUNT(g, ing_chat_provider_lost);
	send_cancel(g, c);
	if (req == NULL) {
		chat_free(g, c);
	} else if (c->state == CS_STREAMING) {
		stream_error_end(g, req, c, RG_E_UPSTREAM_UNAVAILABLE,
		    "The connection to the model provider was lost.");
	} else {
		fail(g, req, c,
		    timeout ? RG_E_UPSTREAM_TIMEOUT : RG_E_UPSTREAM_UNAVAILABLE,
		    NULL, timeout ? 0 : 1);
	}
}

/* watch - providers that died, and starts that never came. */
static void
watch(evutil_socket_t fd, short what, void *arg)
{
	struct ing *g = arg;
	struct ing_chats *cs = g->chats;
	unsigned n = role_instances(CFG(g), ROLE_PROVIDER);
	uint64_t now = mono_ms();
	struct chat *c, *next;

	(void)fd;
	(void)what;
	/* a provider's chats are looked at only when its pid changed, or a
	 * chat went to another pid since: with thousands of streams open,
	 * a walk of all of them ten times a second is not free */
	for (unsigned p = 0; p < n && p < MAX_PROVIDERS; p++) {
		int32_t pid = role_peer_pid(g->ctx, ROLE_PROVIDER, p);

		if (cs->by_provider[p] != NULL &&
		    (pid != cs->provider_pid[p] || cs->mixed[p]))
			for (c = cs->by_provider[p]; c != NULL; c = next) {
				next = c->pnext;
				if (c->provider_pid != pid)
					lost(g, c, 0);
			}
		cs->provider_pid[p] = pid;
		cs->mixed[p] = 0;
	}
	for (c = cs->pending; c != NULL; c = next) {
		next = c->qnext;
		if (now > c->deadline)
			lost(g, c, 1);
	}
}

void
chat_tick(struct ing *g)
{
	struct ing_chats *cs = g->chats;
	uint64_t now = mono_ms(), every = (uint64_t)CFG(g)->chat_heartbeat_ms;

	for (unsigned p = 0; p < MAX_PROVIDERS; p++) {
		struct chat *c, *next;

		for (c = cs->by_provider[p]; c != NULL; c = next) {
			struct httpd_req *req;

			next = c->pnext;
			if (c->state != CS_STREAMING ||
			    now - c->last_write < every)
				continue;
			req = httpd_req_lookup(g->httpd, c->req_id);
			if (req != NULL &&
			    stream_write(g, req, c, ui_ping, UI_PING_LEN) == 0)
				COUNT(g, ing_chat_heartbeats);
		}
	}
}

int
chat_init(struct ing *g)
{
	struct timeval tv = { 0, WATCH_MS * 1000 };

	g->chats = xcalloc(1, sizeof(*g->chats));
	link_on_giveup(g->ctx->link, giveup, g);
	g->chats->watch = event_new(g->ctx->base, -1, EV_PERSIST, watch, g);
	if (g->chats->watch == NULL || event_add(g->chats->watch, &tv) != 0)
		return -1;
	return 0;
}

void
chat_exit(struct ing *g)
{
	struct ing_chats *cs = g->chats;

	if (cs == NULL)
		return;
	for (unsigned p = 0; p < MAX_PROVIDERS; p++)
		while (cs->by_provider[p] != NULL) {
			struct chat *c = cs->by_provider[p];
			struct httpd_req *req = httpd_req_lookup(g->httpd,
			    c->req_id);

			send_cancel(g, c);
			if (req == NULL)
				chat_free(g, c);
			else if (c->state == CS_STREAMING)
				stream_error_end(g, req, c,
				    RG_E_UPSTREAM_UNAVAILABLE,
				    "The gateway is restarting; try again.");
			else
				fail(g, req, c, RG_E_OVERLOADED,
				    "The gateway is restarting; retry shortly.",
				    1);
			/* stream_error_end may leave c when the write fails */
			if (cs->by_provider[p] == c)
				chat_done(g, req, c);
		}
}

void
chat_table_free(struct ing *g)
{
	if (g->chats == NULL)
		return;
	event_free(g->chats->watch);
	free(g->chats);
	g->chats = NULL;
}
