/*
 * tool-worker - runs queued work: the delivery worker, which takes the
 * webhooks the ingress stored (gate/delivq) to the application backend
 * (SPEC §3 "Deliveries to the application").  It runs no tool jobs in
 * this version.
 *
 * A delivery is POSTed to backend.url + "/" + topic with Idempotency-Key
 * and X-Relgate-Delivery (the delivery id) and X-Relgate-Signature
 * (sha256=HMAC of the body with backend.secret), through the circuit and
 * the bulkhead "backend".  2xx: the row goes.  A retryable failure (timeout,
 * connection error, 408, 429, 5xx): due again after a jittered backoff
 * that honours Retry-After.  Otherwise, or after backend.max_attempts: the
 * dead letters.  A row leaves the queue only on a 2xx or into the dead
 * letters; a worker that dies leaves its leased rows to be claimed again
 * when their lease runs out (duplicates possible, same Idempotency-Key).
 *
 * Woken by DELIVERY_WAKE from the ingress, with a slow poll
 * (backend.poll_ms) as the fallback.  Must never block its loop: the
 * store is written through role_commit, HTTP through http/client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemons/skeleton.h"
#include "gate/crypto.h"
#include "gate/delivq.h"
#include "gate/retry.h"
#include "http/client.h"
#include "shm/bulkhead.h"
#include "shm/circuit.h"
#include "util/log.h"
#include "util/util.h"

#define CLAIM_MAX 32
#define LEASE_MARGIN_MS 5000

struct tw;

/* One delivery in flight. */
struct attempt {
	struct tw *w;
	struct delivq_item item;
	struct bh_lease lease;
	struct cb_ticket ticket;
	struct httpc_call *call;
	int status;
	char retry_after[64];
	struct attempt *next;
};

/* One store step (claim or a verdict) waiting for its commit. */
struct step {
	struct tw *w;
	enum { S_CLAIM, S_COMPLETE, S_RETRY, S_POSTPONE, S_DEAD } kind;
	char id[DELIVQ_ID_LEN + 1];
	uint64_t now, next_at;
	char reason[160];
	unsigned max;
	struct delivq_item items[CLAIM_MAX];
	unsigned n;
};

struct tw {
	struct role_ctx *ctx;
	struct httpc *http;
	struct event *kick; /* a claim pass, soon */
	struct event *poll; /* the slow fallback */
	struct attempt *inflight;
	unsigned ninflight;
	int claiming;     /* a claim commit is pending */
	int again;        /* a wake-up came during the claim */
	int stopping;
	int warned_unset; /* backend.url missing, said once */
};

static struct tw the_tw;

#define CFG(w) ((w)->ctx->cfg)
#define SEG(w) (&(w)->ctx->shm)

static void kick(struct tw *w, uint64_t after_ms);

/* --- store steps ---------------------------------------------------------*/

static int
step_apply(struct store_txn *txn, void *arg)
{
	struct step *s = arg;

	switch (s->kind) {
	case S_CLAIM:
		for (unsigned i = 0; i < s->n; i++)
			delivq_item_free(&s->items[i]);
		return delivq_claim(txn, s->now, (int32_t)getpid(),
		    (uint64_t)CFG(s->w)->backend_timeout_ms + LEASE_MARGIN_MS,
		    s->max, s->items, &s->n);
	case S_COMPLETE:
		return delivq_complete(txn, s->id);
	case S_RETRY:
		return delivq_retry(txn, s->id, s->now, s->next_at, s->reason);
	case S_POSTPONE:
		return delivq_postpone(txn, s->id, s->next_at);
	case S_DEAD:
		return delivq_dead(txn, s->id, s->now, s->reason);
	}
	return STORE_EINVAL;
}

static void send_one(struct tw *w, struct delivq_item *it,
    const struct bh_lease *lease);

static void
step_done(struct role_ctx *ctx, void *arg, int rc)
{
	struct step *s = arg;
	struct tw *w = s->w;

	(void)ctx;
	if (s->kind != S_CLAIM) {
		if (rc != STORE_OK && rc != STORE_NOTFOUND)
			log_err("delivery %s: store %s: %s", s->id,
			    store_rc_name(rc),
			    s->kind == S_COMPLETE ? "not removed" : "not updated");
		free(s);
		return;
	}
	w->claiming = 0;
	if (rc != STORE_OK) {
		log_err("delivery claim: store %s", store_rc_name(rc));
		s->n = 0;
	}
	for (unsigned i = 0; i < s->n; i++) {
		struct bh_lease lease;
		uint64_t ra;

		if (w->stopping ||
		    bh_acquire(SEG(w), BH_PROV_BACKEND, now_ms(),
			(uint32_t)CFG(w)->backend_bulkhead_max_concurrent,
			(uint32_t)CFG(w)->backend_bulkhead_lease_ttl_ms, &lease,
			&ra) != BH_ACQUIRED) {
			/* saturated meanwhile: the lease on the row runs out
			 * and it is claimed again; nothing is lost */
			if (!w->stopping &&
			    bh_should_warn(SEG(w), BH_PROV_BACKEND, now_ms(),
				(uint32_t)CFG(w)->bulkhead_sentry_cooldown_ms))
				role_alert(w->ctx, "bulkhead_saturated",
				    "backend", "%lld leases in flight, the "
				    "maximum",
				    (long long)CFG(w)
					->backend_bulkhead_max_concurrent);
			delivq_item_free(&s->items[i]);
			continue;
		}
		send_one(w, &s->items[i], &lease);
	}
	if (s->n == s->max || w->again) {
		w->again = 0;
		kick(w, 0);
	}
	free(s);
}

static void
commit_step(struct tw *w, struct step *s)
{
	s->w = w;
	if (role_commit(w->ctx, step_apply, step_done, s) != 0) {
		/* stopping: the row keeps its lease and is claimed again */
		for (unsigned i = 0; i < s->n; i++)
			delivq_item_free(&s->items[i]);
		if (s->kind == S_CLAIM)
			w->claiming = 0;
		free(s);
	}
}

static void
verdict(struct tw *w, const char *id, int kind, uint64_t next_at,
    const char *reason)
{
	struct step *s = xcalloc(1, sizeof(*s));

	s->kind = kind;
	memcpy(s->id, id, sizeof(s->id));
	s->now = now_ms();
	s->next_at = next_at;
	strlcpy_rg(s->reason, reason ? reason : "", sizeof(s->reason));
	commit_step(w, s);
}

/* --- one attempt ---------------------------------------------------------*/

static void
attempt_unlink(struct tw *w, struct attempt *a)
{
	struct attempt **p;

	for (p = &w->inflight; *p != NULL; p = &(*p)->next)
		if (*p == a) {
			*p = a->next;
			w->ninflight--;
			return;
		}
}

static int
on_head(void *arg, const struct httpc_resp *resp)
{
	struct attempt *a = arg;
	const char *ra = httpc_resp_header(resp, "retry-after");

	a->status = httpc_resp_status(resp);
	if (ra != NULL)
		strlcpy_rg(a->retry_after, ra, sizeof(a->retry_after));
	return 0;
}

static void
on_data(void *arg, const void *data, size_t len)
{
	(void)arg;
	(void)data;
	(void)len; /* the backend's answer body is not needed */
}

static void
on_done(void *arg, const struct httpc_result *res)
{
	struct attempt *a = arg;
	struct tw *w = a->w;
	enum cb_error kind = httpc_cb_error(res->rc);
	int status = res->rc == HTTPC_OK ? a->status : 0;
	uint64_t now = now_ms(), delay = 0;
	const struct config *c = CFG(w);
	struct retry_policy pol = {
		.max_attempts = (uint32_t)c->backend_max_attempts,
		.base_ms = (uint32_t)c->backend_retry_base_ms,
		.cap_ms = 3600000,
	};
	struct retry_state st = {
		.attempts = a->item.attempts + 1,
		.idempotent = 1, /* the Idempotency-Key makes it so */
	};
	enum retry_reason why;
	char reason[160];

	a->call = NULL;
	attempt_unlink(w, a);
	bh_release(SEG(w), &a->lease);
	cb_record(SEG(w), CB_PROV_BACKEND, &a->ticket,
	    kind == CB_ERR_NONE ? cb_classify_http(status) :
				  cb_classify_error(kind, 0),
	    now, (uint32_t)c->backend_circuit_threshold);
	if (kind == CB_ERR_NONE && status >= 200 && status < 300) {
		verdict(w, a->item.id, S_COMPLETE, 0, NULL);
	} else if (kind == CB_ERR_CANCELLED) {
		/* shutting down: the lease runs out, another worker goes on */
	} else {
		if (kind == CB_ERR_NONE)
			snprintf(reason, sizeof(reason), "http %d", status);
		else
			snprintf(reason, sizeof(reason), "%s: %s",
			    httpc_rc_name(res->rc), res->detail);
		if (retry_next(&pol, &st, kind, status,
			a->retry_after[0] ? a->retry_after : NULL, now, &delay,
			&why) == RETRY_AGAIN)
			verdict(w, a->item.id, S_RETRY, now + delay, reason);
		else {
			char dead[200];

			snprintf(dead, sizeof(dead), "%s (%s)", reason,
			    retry_reason_name(why));
			log_warn("delivery %s to %s: dead letter after %u "
				 "attempt(s): %s",
			    a->item.id, a->item.topic, st.attempts, dead);
			verdict(w, a->item.id, S_DEAD, 0, dead);
		}
	}
	delivq_item_free(&a->item);
	free(a);
	kick(w, 0);
}

/* send_one - POST one claimed delivery, or hand it back for later. */
static void
send_one(struct tw *w, struct delivq_item *it, const struct bh_lease *lease)
{
	const struct config *c = CFG(w);
	static const struct httpc_cb cb = { on_head, on_data, on_done };
	struct attempt *a = xcalloc(1, sizeof(*a));
	unsigned char mac[CRYPTO_SHA256_LEN];
	char sig[8 + 2 * CRYPTO_SHA256_LEN], url[2048];
	struct httpc_header h[4] = {
		{ "Content-Type", "application/json" },
		{ "Idempotency-Key", a->item.id },
		{ "X-Relgate-Delivery", a->item.id },
		{ "X-Relgate-Signature", sig },
	};
	struct httpc_req req = {
		.method = "POST",
		.headers = h,
		.nheaders = 4,
		.connect_ms = (unsigned)c->backend_timeout_ms,
		.first_byte_ms = (unsigned)c->backend_timeout_ms,
		.idle_ms = (unsigned)c->backend_timeout_ms,
		.total_ms = (unsigned)c->backend_timeout_ms,
		.max_body = 1 << 20,
	};
	uint64_t ra;
	int v;

	a->w = w;
	a->item = *it;
	a->lease = *lease;
	memset(it, 0, sizeof(*it));
	v = cb_allow(SEG(w), CB_PROV_BACKEND, now_ms(),
	    (uint32_t)c->backend_circuit_threshold,
	    (uint32_t)c->backend_circuit_cooldown_ms, 1, &a->ticket, &ra);
	if (v == CB_OPEN) {
		/* paused: due again when the circuit may let a probe in */
		bh_release(SEG(w), &a->lease);
		verdict(w, a->item.id, S_POSTPONE, now_ms() + (ra ? ra : 1000),
		    NULL);
		delivq_item_free(&a->item);
		free(a);
		kick(w, ra ? ra : 1000);
		return;
	}
	crypto_hmac_sha256(c->backend_secret, strlen(c->backend_secret),
	    a->item.body, a->item.blen, mac);
	memcpy(sig, "sha256=", 7);
	crypto_hex_encode(mac, sizeof(mac), sig + 7, sizeof(sig) - 7);
	snprintf(url, sizeof(url), "%s%s%s", c->backend_url,
	    c->backend_url[strlen(c->backend_url) - 1] == '/' ? "" : "/",
	    a->item.topic);
	req.url = url;
	req.body = a->item.body;
	req.body_len = a->item.blen;
	a->next = w->inflight;
	w->inflight = a;
	w->ninflight++;
	a->call = httpc_request(w->http, &req, &cb, a);
	if (a->call == NULL) {
		/* the URL cannot be requested: a configuration problem */
		log_err("delivery %s: cannot request %s", a->item.id, url);
		attempt_unlink(w, a);
		bh_release(SEG(w), &a->lease);
		cb_record(SEG(w), CB_PROV_BACKEND, &a->ticket, CB_NEUTRAL,
		    now_ms(), (uint32_t)c->backend_circuit_threshold);
		verdict(w, a->item.id, S_POSTPONE, now_ms() + 60000, NULL);
		delivq_item_free(&a->item);
		free(a);
	}
}

/* --- claiming ------------------------------------------------------------*/

static void
claim_pass(evutil_socket_t fd, short what, void *arg)
{
	struct tw *w = arg;
	const struct config *c = CFG(w);
	unsigned room;
	struct step *s;

	(void)fd;
	(void)what;
	if (w->stopping)
		return;
	if (c->backend_url == NULL || c->backend_secret == NULL) {
		if (!w->warned_unset)
			log_warn("backend.url or backend.secret unset: "
				 "deliveries wait in the queue");
		w->warned_unset = 1;
		return;
	}
	if (w->claiming) {
		w->again = 1;
		return;
	}
	room = (unsigned)c->backend_bulkhead_max_concurrent;
	room = w->ninflight >= room ? 0 : room - w->ninflight;
	if (room == 0)
		return; /* an answer kicks the next pass */
	s = xcalloc(1, sizeof(*s));
	s->kind = S_CLAIM;
	s->now = now_ms();
	s->max = room < CLAIM_MAX ? room : CLAIM_MAX;
	w->claiming = 1;
	commit_step(w, s);
}

static void
kick(struct tw *w, uint64_t after_ms)
{
	struct timeval tv = { (time_t)(after_ms / 1000),
		(suseconds_t)(after_ms % 1000) * 1000 };

	if (after_ms == 0 && !evtimer_pending(w->kick, NULL))
		event_active(w->kick, EV_TIMEOUT, 0);
	else if (after_ms > 0)
		evtimer_add(w->kick, &tv);
}

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	claim_pass(-1, 0, arg);
}

/* --- the role ------------------------------------------------------------*/

static struct httpc *
client_new(struct role_ctx *ctx)
{
	struct httpc_opts o = {
		.ca_file = ctx->cfg->tls_ca_file,
		.max_idle_per_origin = 16,
		.stats = NULL,
	};

	return httpc_new(ctx->base, &o);
}

static int
tw_init(struct role_ctx *ctx)
{
	struct tw *w = &the_tw;
	struct timeval tv = { (time_t)(ctx->cfg->backend_poll_ms / 1000),
		(suseconds_t)(ctx->cfg->backend_poll_ms % 1000) * 1000 };

	w->ctx = ctx;
	ctx->priv = w;
	w->http = client_new(ctx);
	if (w->http == NULL)
		return -1;
	w->kick = evtimer_new(ctx->base, claim_pass, w);
	w->poll = event_new(ctx->base, -1, EV_PERSIST, on_poll, w);
	if (w->kick == NULL || w->poll == NULL || event_add(w->poll, &tv))
		return -1;
	kick(w, 0);
	return 0;
}

static void
tw_message(struct role_ctx *ctx, const struct proto_msg *m)
{
	if (m->type == PROTO_T_DELIVERY_WAKE && ctx->priv != NULL)
		kick(ctx->priv, 0);
}

static void
tw_reload(struct role_ctx *ctx, const struct config *old)
{
	struct tw *w = ctx->priv;
	struct timeval tv = { (time_t)(ctx->cfg->backend_poll_ms / 1000),
		(suseconds_t)(ctx->cfg->backend_poll_ms % 1000) * 1000 };

	(void)old;
	w->warned_unset = 0;
	event_del(w->poll);
	event_add(w->poll, &tv);
	kick(w, 0);
}

static void
tw_exit(struct role_ctx *ctx)
{
	struct tw *w = ctx->priv;

	if (w == NULL)
		return;
	w->stopping = 1;
	/* in-flight deliveries keep their row leases: another worker (or
	 * the next start) takes them when the lease runs out */
	while (w->inflight != NULL) {
		struct attempt *a = w->inflight;

		w->inflight = a->next;
		if (a->call != NULL)
			httpc_cancel(a->call);
		bh_release(SEG(w), &a->lease);
		delivq_item_free(&a->item);
		free(a);
	}
	role_commit_drain(ctx);
	httpc_free(w->http);
	event_free(w->kick);
	event_free(w->poll);
}

static const struct role_ops toolworker_ops = {
	.role = ROLE_TOOL_WORKER,
	.init = tw_init,
	.on_message = tw_message,
	.on_reload = tw_reload,
	.on_exit = tw_exit,
};

int
main(int argc, char **argv)
{
	return role_main(argc, argv, &toolworker_ops);
}
