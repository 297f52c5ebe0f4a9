/*
 * ingress_webhook - the durable hand-off and the webhook routes: Gmail
 * Pub/Sub push and WhatsApp (SPEC §3).
 *
 * A hand-off claims the idempotency keys of a request and writes a
 * delivery row for every key seen for the first time, in one group-commit
 * transaction (gate/replay through the store's writer thread); the route
 * answers only after that commit.  The OAuth callback stores its
 * connection record through the same path.
 *
 * Must never: acknowledge a webhook that is not stored, block the loop,
 * or echo anything but a verified challenge.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "daemons/ingress.h"
#include "gate/query.h"
#include "gate/webhook.h"
#include "shm/ratelimit.h"
#include "util/log.h"
#include "util/util.h"

#define CHALLENGE_MAX 256

/* --- the hand-off ---------------------------------------------------------*/

struct handoff {
	uint64_t req_id;
	char rid[72]; /* the request's id, for its deliveries */
	struct ing *g;
	handoff_answer_fn answer;
	struct replay_batch batch;
	struct replay_item *items;
};

struct handoff *
handoff_new(struct httpd_req *req, unsigned n, const char *scope,
    const char *topic)
{
	struct handoff *h = xcalloc(1, sizeof(*h));
	char rid[72];

	h->req_id = httpd_req_id(req);
	h->items = xcalloc(n ? n : 1, sizeof(*h->items));
	h->batch.items = h->items;
	h->batch.n = n;
	h->batch.scope = scope;
	h->batch.topic = topic;
	h->batch.now_ms = now_ms();
	strlcpy_rg(h->rid, ing_request_id(NULL, req, rid, sizeof(rid)),
	    sizeof(h->rid));
	h->batch.request_id = h->rid;
	return h;
}

void
handoff_item(struct handoff *h, unsigned i, const char *key, json_t *payload)
{
	h->items[i].key = xstrdup(key);
	h->items[i].klen = strlen(key);
	h->items[i].payload = payload;
}

static void
handoff_free(struct handoff *h)
{
	for (unsigned i = 0; i < h->batch.n; i++) {
		free((char *)(uintptr_t)h->items[i].key);
		json_decref(h->items[i].payload);
	}
	free(h->items);
	free(h);
}

static int
handoff_apply(struct store_txn *txn, void *arg)
{
	struct handoff *h = arg;

	return replay_apply(txn, &h->batch);
}

void
ing_wake_workers(struct ing *g)
{
	unsigned n = role_instances(CFG(g), ROLE_TOOL_WORKER);
	struct proto_msg m;

	if (g->fresh == 0 || n == 0)
		return;
	memset(&m, 0, sizeof(m));
	m.type = PROTO_T_DELIVERY_WAKE;
	m.u.delivery_wake.count = g->fresh;
	link_send(g->ctx->link, ROLE_TOOL_WORKER, (unsigned)(g->seq % n), &m);
	g->fresh = 0;
}

/* handoff_done - loop thread: the commit finished; count, then answer. */
static void
handoff_done(struct role_ctx *ctx, void *arg, int rc)
{
	struct ing *g = ctx->priv;
	struct handoff *h = arg;

	g->inflight--;
	if (rc == STORE_OK && h->batch.fresh > 0) {
		for (unsigned i = 0; i < h->batch.fresh; i++)
			COUNT(g, ing_deliveries);
		if (g->fresh == 0)
			event_active(g->wake, EV_TIMEOUT, 0);
		g->fresh += h->batch.fresh;
	}
	if (rc != STORE_OK) {
		COUNT(g, ing_store_failures);
		log_warn("%s refused: store %s", h->batch.topic,
		    store_rc_name(rc));
	}
	h->answer(g, httpd_req_lookup(g->httpd, h->req_id), &h->batch, rc);
	handoff_free(h);
}

void
handoff_submit(struct ing *g, struct httpd_req *req, struct handoff *h,
    handoff_answer_fn answer)
{
	h->g = g;
	h->answer = answer;
	replay_prepare(&h->batch, (uint32_t)getpid(), &g->seq);
	h->batch.ttl_ms = (uint64_t)CFG(g)->replay_idem_ttl_ms;
	if (role_commit(g->ctx, handoff_apply, handoff_done, h) != 0) {
		/* the writer is stopping: nothing was stored */
		COUNT(g, ing_store_failures);
		answer(g, req, &h->batch, STORE_ESTOPPED);
		handoff_free(h);
		return;
	}
	g->inflight++;
}

/* webhook_answer - 200 once stored (replay header when nothing was new),
 * 503 when the store refused. */
static void
webhook_answer(struct ing *g, struct httpd_req *req,
    const struct replay_batch *b, int rc)
{
	if (req == NULL)
		return; /* client left: committed or not, nothing to answer */
	if (rc != STORE_OK) {
		ing_fail(g, req, RG_E_OVERLOADED,
		    rc == STORE_ESTOPPED ? "Shutting down; retry later." :
					   "Could not store the webhook; "
					   "retry later.",
		    1, NULL);
		return;
	}
	if (b->n > 0 && b->fresh == 0) {
		COUNT(g, ing_replays);
		ing_ok_json(req, 1);
		return;
	}
	ing_ok_json(req, 0);
}

/* --- Gmail Pub/Sub push ---------------------------------------------------*/

int64_t
push_head(struct ing *g, struct httpd_req *req)
{
	const char *want = ing_secret(CFG(g)->gmail_pubsub_verify_token);
	const char *q = httpd_req_query(req);
	char ip[CLIENTIP_BUFSZ], token[512];
	int too_long = 0;

	ing_client_ip(g, req, ip, sizeof(ip));
	if (ing_limit(g, req, RL_BUCKET_GMAIL_PUSH, ip,
		CFG(g)->rate_limit_gmail_push_max,
		CFG(g)->rate_limit_gmail_push_window_ms, NULL) != 0)
		return -1;
	if (want == NULL)
		return ing_fail(g, req, RG_E_MISCONFIGURED,
		    "GMAIL_PUBSUB_VERIFY_TOKEN is not configured.", 0, NULL);
	if (q == NULL ||
	    query_get(q, strlen(q), "token", token, sizeof(token),
		&too_long) != QUERY_FOUND ||
	    too_long ||
	    !webhook_token_eq(token, strlen(token), want, strlen(want)))
		return ing_fail(g, req, RG_E_FORBIDDEN,
		    "Bad verification token.", 0, NULL);
	if (!ing_is_json(req))
		return ing_fail(g, req, RG_E_UNSUPPORTED_MEDIA_TYPE, NULL, 0,
		    NULL);
	return WEBHOOK_BODY_MAX;
}

void
push_body(struct ing *g, struct httpd_req *req)
{
	struct pubsub_push push;
	char msg[WEBHOOK_MSG_MAX], key[sizeof(push.email) +
	    sizeof(push.history_id) + 1];
	struct handoff *h;
	const void *body;
	json_t *payload;
	size_t len;

	body = httpd_req_body(req, &len);
	switch (pubsub_parse(body, len, &push, msg, sizeof(msg))) {
	case WEBHOOK_INVALID_JSON:
		ing_fail(g, req, RG_E_INVALID_JSON, NULL, 0, NULL);
		return;
	case WEBHOOK_INVALID_REQUEST:
		ing_fail(g, req, RG_E_INVALID_REQUEST, msg, 0, NULL);
		return;
	case WEBHOOK_OK:
		break;
	}
	/* key emailAddress:historyId; payload the decoded notification */
	payload = json_pack("{s:s,s:s,s:s}", "emailAddress", push.email,
	    "historyId", push.history_id, "messageId", push.message_id);
	if (payload == NULL) {
		/* not UTF-8: pubsub_parse lets only JSON strings through */
		ing_fail(g, req, RG_E_INVALID_REQUEST, NULL, 0, NULL);
		return;
	}
	snprintf(key, sizeof(key), "%s:%s", push.email, push.history_id);
	h = handoff_new(req, 1, "gmail_push_history", "gmail.history");
	handoff_item(h, 0, key, payload);
	handoff_submit(g, req, h, webhook_answer);
}

/* --- WhatsApp -------------------------------------------------------------*/

/* wa_verify - GET: the subscription handshake.  The challenge is echoed
 * only when it is digits (what Meta sends), so nothing else can be made
 * to appear in an answer of this origin. */
static int64_t
wa_verify(struct ing *g, struct httpd_req *req)
{
	const char *want = ing_secret(CFG(g)->whatsapp_verify_token);
	const char *q = httpd_req_query(req);
	char mode[32], token[512], challenge[CHALLENGE_MAX + 1];
	struct httpd_header h = { "Content-Type", "text/plain" };
	int tl1 = 0, tl2 = 0, tl3 = 0;
	size_t ql = q != NULL ? strlen(q) : 0;

	if (want == NULL)
		return ing_fail(g, req, RG_E_MISCONFIGURED,
		    "WHATSAPP_VERIFY_TOKEN is not configured.", 0, NULL);
	if (q == NULL ||
	    query_get(q, ql, "hub.mode", mode, sizeof(mode), &tl1) !=
		QUERY_FOUND ||
	    query_get(q, ql, "hub.verify_token", token, sizeof(token), &tl2) !=
		QUERY_FOUND ||
	    query_get(q, ql, "hub.challenge", challenge, sizeof(challenge),
		&tl3) != QUERY_FOUND ||
	    tl1 || tl2 || tl3 || strcmp(mode, "subscribe") != 0 ||
	    !webhook_token_eq(token, strlen(token), want, strlen(want)))
		return ing_fail(g, req, RG_E_FORBIDDEN, "Verification failed.",
		    0, NULL);
	if (!wa_challenge_ok(challenge))
		return ing_fail(g, req, RG_E_INVALID_REQUEST,
		    "hub.challenge: must be digits", 0, NULL);
	httpd_respond(req, 200, &h, 1, challenge, strlen(challenge));
	return -1;
}

int64_t
wa_head(struct ing *g, struct httpd_req *req)
{
	char ip[CLIENTIP_BUFSZ];

	if (strcmp(httpd_req_method(req), "GET") == 0)
		return wa_verify(g, req);
	ing_client_ip(g, req, ip, sizeof(ip));
	if (ing_limit(g, req, RL_BUCKET_WHATSAPP_WEBHOOK, ip,
		CFG(g)->rate_limit_whatsapp_max,
		CFG(g)->rate_limit_whatsapp_window_ms, NULL) != 0)
		return -1;
	if (ing_secret(CFG(g)->whatsapp_app_secret) == NULL)
		return ing_fail(g, req, RG_E_MISCONFIGURED,
		    "WHATSAPP_APP_SECRET is not configured.", 0, NULL);
	if (!ing_is_json(req))
		return ing_fail(g, req, RG_E_UNSUPPORTED_MEDIA_TYPE, NULL, 0,
		    NULL);
	return WEBHOOK_BODY_MAX;
}

void
wa_body(struct ing *g, struct httpd_req *req)
{
	struct wa_payload *wa = xmalloc(sizeof(*wa));
	char msg[WEBHOOK_MSG_MAX];
	struct handoff *h;
	const void *body;
	size_t len;

	body = httpd_req_body(req, &len);
	if (!wa_signature_ok(httpd_req_header(req, "x-hub-signature-256"),
		body, len, CFG(g)->whatsapp_app_secret)) {
		free(wa);
		ing_fail(g, req, RG_E_FORBIDDEN, "Bad or missing signature.", 0,
		    NULL);
		return;
	}
	switch (wa_parse(body, len, wa, msg, sizeof(msg))) {
	case WEBHOOK_INVALID_JSON:
		free(wa);
		ing_fail(g, req, RG_E_INVALID_JSON, NULL, 0, NULL);
		return;
	case WEBHOOK_INVALID_REQUEST:
		free(wa);
		ing_fail(g, req, RG_E_INVALID_REQUEST, msg, 0, NULL);
		return;
	case WEBHOOK_OK:
		break;
	}
	if (wa->n == 0) {
		/* statuses only: nothing to deliver */
		free(wa);
		ing_ok_json(req, 0);
		return;
	}
	h = handoff_new(req, (unsigned)wa->n, "whatsapp_message",
	    "whatsapp.message");
	for (size_t i = 0; i < wa->n; i++) {
		const struct wa_message *m = &wa->msg[i];

		handoff_item(h, (unsigned)i, m->id,
		    json_pack("{s:s,s:O?,s:O}", "entryId", m->entry_id,
			"metadata", m->metadata, "message", m->message));
	}
	wa_payload_free(wa);
	free(wa);
	handoff_submit(g, req, h, webhook_answer);
}
