/*
 * tool-worker - runs queued work: the tool jobs the providers queue
 * (toolworker_jobs.c), and the delivery worker, which takes the webhooks
 * the ingress stored (gate/delivq) to the application backend (SPEC §3
 * "Deliveries to the application").
 *
 * A delivery is POSTed to backend.url + "/" + topic with Idempotency-Key
 * and X-Relgate-Delivery (the delivery id), X-Request-Id (the id of the
 * request it came from, as in the access log) and X-Relgate-Signature
 * (sha256=HMAC of the body with backend.secret), through the circuit and
 * the bulkhead "backend" (gate/outcall).  A lease of the bulkhead is
 * taken before a row is claimed, so a full bulkhead leaves rows ready
 * for whoever has room.  2xx: the row goes.  A retryable failure (timeout,
 * connection error, 408, 429, 5xx): due again after a jittered backoff
 * that honours Retry-After.  Otherwise, or after backend.max_attempts: the
 * dead letters.  A row leaves the queue only on a 2xx or into the dead
 * letters; a worker that dies leaves its leased rows to be claimed again
 * when their lease runs out (duplicates possible, same Idempotency-Key).
 *
 * Woken by DELIVERY_WAKE from the ingress, with a slow poll
 * (backend.poll_ms) as the fallback.  Must never block its loop: the
 * store is written through role_commit, HTTP through gate/outcall.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemons/skeleton.h"
#include "daemons/toolworker.h"
#include "gate/crypto.h"
#include "gate/delivq.h"
#include "gate/outcall.h"
#include "gate/retry.h"
#include "http/client.h"
#include "util/log.h"
#include "util/util.h"

#define CLAIM_MAX 32
#define LEASE_MARGIN_MS 5000

struct tw;

/* One delivery in flight. */
struct attempt {
	struct tw *w;
	struct delivq_item item;
	struct outcall *oc;
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
	struct bh_lease leases[CLAIM_MAX]; /* S_CLAIM: one per row asked */
	unsigned n;
};

struct tw {
	struct role_ctx *ctx;
	struct httpc *http;
	struct outcall_env out;
	struct event *kick; /* a claim pass, soon */
	struct event *poll; /* the slow fallback */
	struct attempt *inflight;
	unsigned ninflight;
	int claiming;     /* a claim commit is pending */
	int again;        /* a wake-up came during the claim */
	int stopping;
	int warned_unset; /* backend.url missing, said once */
	struct tj *jobs;  /* the tool-job runner (toolworker_jobs.c) */
};

static struct tw the_tw;

#define CFG(w) ((w)->ctx->cfg)

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
    struct bh_lease *lease);

/* claim_give_back - a claim that will not be sent: its leases go back
 * (its rows keep their lease in the store and are claimed again). */
static void
claim_give_back(struct tw *w, struct step *s, unsigned from)
{
	for (unsigned i = from; i < s->max; i++) {
		if (i < s->n)
			delivq_item_free(&s->items[i]);
		outcall_lease_release(&w->out, &s->leases[i]);
	}
}

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
	if (w->stopping) {
		claim_give_back(w, s, 0);
		free(s);
		return;
	}
	for (unsigned i = 0; i < s->n; i++)
		send_one(w, &s->items[i], &s->leases[i]);
	claim_give_back(w, s, s->n);
	if (s->n == s->max || w->again) {
		w->again = 0;
		tw_kick(w->kick, 0);
	}
	free(s);
}

static void
commit_step(struct tw *w, struct step *s)
{
	s->w = w;
	if (role_commit(w->ctx, step_apply, step_done, s) != 0) {
		/* stopping: the row keeps its lease and is claimed again */
		if (s->kind == S_CLAIM) {
			claim_give_back(w, s, 0);
			w->claiming = 0;
		}
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

static void
attempt_free(struct attempt *a)
{
	delivq_item_free(&a->item);
	free(a);
}

/* on_done - the backend's verdict on one delivery. */
static void
on_done(void *arg, const struct outcall_result *res)
{
	struct attempt *a = arg;
	struct tw *w = a->w;
	const struct config *c = CFG(w);
	int answered = res->verdict == OUTCALL_ANSWERED;
	enum cb_error kind = answered ? CB_ERR_NONE : res->kind;
	uint64_t now = now_ms(), delay = 0;
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

	a->oc = NULL;
	attempt_unlink(w, a);
	if (answered && res->status >= 200 && res->status < 300) {
		verdict(w, a->item.id, S_COMPLETE, 0, NULL);
	} else {
		if (answered)
			snprintf(reason, sizeof(reason), "http %d",
			    res->status);
		else
			snprintf(reason, sizeof(reason), "%s: %s",
			    httpc_rc_name(res->rc), res->detail);
		if (retry_next(&pol, &st, kind, res->status,
			answered && res->retry_after[0] ? res->retry_after :
							  NULL,
			now, &delay, &why) == RETRY_AGAIN)
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
	attempt_free(a);
	tw_kick(w->kick, 0);
}

/* send_one - POST one claimed delivery with its lease, or hand it back
 * for later. */
static void
send_one(struct tw *w, struct delivq_item *it, struct bh_lease *lease)
{
	static const struct outcall_cb cb = { .on_done = on_done };
	const struct config *c = CFG(w);
	struct attempt *a = xcalloc(1, sizeof(*a));
	struct outcall_policy pol = { .max_attempts = 1 };
	struct outcall_result refused;
	char sig[CRYPTO_SIG_LEN], url[2048];
	struct httpc_header h[5];

	a->w = w;
	a->item = *it;
	memset(it, 0, sizeof(*it));
	h[0] = (struct httpc_header){ "Content-Type", "application/json" };
	h[1] = (struct httpc_header){ "Idempotency-Key", a->item.id };
	h[2] = (struct httpc_header){ "X-Relgate-Delivery", a->item.id };
	h[3] = (struct httpc_header){ "X-Relgate-Signature", sig };
	h[4] = (struct httpc_header){ "X-Request-Id", a->item.request_id };
	crypto_sig_sha256(c->backend_secret, a->item.body, a->item.blen, sig);
	if (url_join(url, sizeof(url), c->backend_url, a->item.topic) < 0)
		url[0] = '\0';
	a->oc = outcall_start(&w->out, CB_PROV_BACKEND,
	    &(struct httpc_req){ .method = "POST",
		.url = url,
		.headers = h,
		.nheaders = a->item.request_id[0] != '\0' ? 5 : 4,
		.body = a->item.body,
		.body_len = a->item.blen,
		.connect_ms = (unsigned)c->backend_timeout_ms,
		.first_byte_ms = (unsigned)c->backend_timeout_ms,
		.idle_ms = (unsigned)c->backend_timeout_ms,
		.total_ms = (unsigned)c->backend_timeout_ms,
		.max_body = 1 << 20 },
	    &pol, &cb, a, lease, &refused);
	if (a->oc != NULL) {
		a->next = w->inflight;
		w->inflight = a;
		w->ninflight++;
		return;
	}
	if (refused.verdict == OUTCALL_CIRCUIT_OPEN) {
		/* paused: due again when the circuit may let a probe in */
		uint64_t ra = refused.retry_ms ? refused.retry_ms : 1000;

		verdict(w, a->item.id, S_POSTPONE, now_ms() + ra, NULL);
		tw_kick(w->kick, ra);
	} else {
		/* the URL cannot be requested: a configuration problem */
		log_err("delivery %s: cannot request %s", a->item.id, url);
		verdict(w, a->item.id, S_POSTPONE, now_ms() + 60000, NULL);
	}
	attempt_free(a);
}

/* --- claiming ------------------------------------------------------------*/

static void
claim_pass(evutil_socket_t fd, short what, void *arg)
{
	struct tw *w = arg;
	const struct config *c = CFG(w);
	unsigned room, due = 0;
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
	/* leases only for rows that are due: a lease taken for nothing
	 * would count as the bulkhead's use, and a full one as saturated */
	if (delivq_due_count(w->ctx->store, now_ms(),
		room < CLAIM_MAX ? room : CLAIM_MAX, &due) == STORE_OK) {
		if (due == 0)
			return; /* the next poll or an enqueue's wake looks again */
		room = due;
	}
	s = xcalloc(1, sizeof(*s));
	s->kind = S_CLAIM;
	s->now = now_ms();
	/* a row is claimed only with a lease in hand: a full bulkhead
	 * leaves the rows ready for whoever has room */
	while (s->max < room && s->max < CLAIM_MAX) {
		uint64_t ra = 0;

		if (outcall_lease(&w->out, CB_PROV_BACKEND,
			&s->leases[s->max], &ra) != BH_ACQUIRED) {
			if (s->max == 0 && w->ninflight == 0)
				tw_kick(w->kick, ra ? ra : 1000); /* nobody else will */
			break;
		}
		s->max++;
	}
	if (s->max == 0) {
		free(s);
		return;
	}
	w->claiming = 1;
	commit_step(w, s);
}

void
tw_kick(struct event *ev, uint64_t after_ms)
{
	struct timeval tv = { (time_t)(after_ms / 1000),
		(suseconds_t)(after_ms % 1000) * 1000 };

	if (after_ms == 0 && !evtimer_pending(ev, NULL))
		event_active(ev, EV_TIMEOUT, 0);
	else if (after_ms > 0)
		evtimer_add(ev, &tv);
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
	role_outcall_env(ctx, w->http, &w->out);
	w->kick = evtimer_new(ctx->base, claim_pass, w);
	w->poll = event_new(ctx->base, -1, EV_PERSIST, on_poll, w);
	if (w->kick == NULL || w->poll == NULL || event_add(w->poll, &tv))
		return -1;
	tw_kick(w->kick, 0);
	if ((w->jobs = tj_new(ctx, &w->out)) == NULL)
		return -1;
	return 0;
}

static void
tw_message(struct role_ctx *ctx, const struct proto_msg *m)
{
	struct tw *w = ctx->priv;

	if (w == NULL)
		return;
	if (m->type == PROTO_T_DELIVERY_WAKE)
		tw_kick(w->kick, 0);
	else if (m->type == PROTO_T_TOOL_WAKE)
		tj_wake(w->jobs);
}

static void
tw_timer(struct role_ctx *ctx)
{
	struct tw *w = ctx->priv;

	if (w != NULL)
		tj_timer(w->jobs);
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
	tw_kick(w->kick, 0);
	tj_reload(w->jobs);
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
		outcall_cancel(a->oc);
		attempt_free(a);
	}
	tj_stop(w->jobs);
	role_commit_drain(ctx);
	tj_free(w->jobs);
	httpc_free(w->http);
	event_free(w->kick);
	event_free(w->poll);
}

static const struct role_ops toolworker_ops = {
	.role = ROLE_TOOL_WORKER,
	.init = tw_init,
	.on_message = tw_message,
	.on_timer = tw_timer,
	.on_reload = tw_reload,
	.on_exit = tw_exit,
};

int
main(int argc, char **argv)
{
	return role_main(argc, argv, &toolworker_ops);
}
