/*
 * outcall - see outcall.h.
 */
#include "gate/outcall.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf/config.h"
#include "gate/retry.h"
#include "shm/requests.h"
#include "util/util.h"

#define HDR_MAX 16

/* a provider has its circuit and its bulkhead at one index */
#define PROV_SAME(id, name, thr, cool, max, ttl)                          \
	_Static_assert((int)CB_PROV_##id == (int)BH_PROV_##id, name);
RG_PROVIDERS(PROV_SAME)
#undef PROV_SAME
#define DEFAULT_BASE_MS 200
#define DEFAULT_CAP_MS 2000

struct outcall {
	struct outcall_env *env;
	unsigned provider;
	struct outcall_limits lim;
	struct outcall_policy pol;
	const struct outcall_cb *cb;
	void *arg;
	/* the request, owned */
	struct httpc_req req;
	struct httpc_header hdrs[HDR_MAX];
	char *strings; /* method, url, header names and values */
	void *body;
	/* state */
	struct bh_lease lease;
	struct cb_ticket ticket;
	int has_ticket;
	struct httpc_call *call;
	struct event *retry;
	uint32_t attempts;
	int status;        /* this attempt's answer, 0 = none yet */
	int discard;       /* this attempt's answer will be retried */
	int delivered;     /* body bytes reached the caller */
	uint64_t sent_us;  /* mono: this attempt began */
	uint64_t head_us;  /* from then to its answer's head */
	char retry_after[64];
	char content_type[128];
	char *resp; /* collected body */
	size_t rlen;
};

static const char *const verdict_names[] = { "answered", "failed",
	"saturated", "circuit_open", "invalid" };

const char *
outcall_verdict_name(enum outcall_verdict v)
{
	return (unsigned)v < RG_NELEM(verdict_names) ? verdict_names[v] :
						       "unknown";
}

enum cb_error
outcall_error_kind(enum httpc_rc rc)
{
	switch (rc) {
	case HTTPC_OK:
		return CB_ERR_NONE;
	case HTTPC_E_TIMEOUT_CONNECT:
	case HTTPC_E_TIMEOUT_FIRST_BYTE:
	case HTTPC_E_TIMEOUT_IDLE:
	case HTTPC_E_TIMEOUT_TOTAL:
		return CB_ERR_TIMEOUT;
	case HTTPC_E_PROTOCOL:
	case HTTPC_E_TOO_LARGE:
	case HTTPC_E_RESET:
		return CB_ERR_PROTOCOL;
	case HTTPC_E_CANCELLED:
		return CB_ERR_CANCELLED;
	default:
		return CB_ERR_CONNECT; /* DNS, connect, TLS */
	}
}

void
outcall_limits(const struct config *c, unsigned provider,
    struct outcall_limits *out)
{
	switch (provider) {
#define PROV_LIMITS(id, name, kthr, kcool, kmax, kttl)                    \
	case CB_PROV_##id:                                                \
		out->threshold = (uint32_t)c->kthr;                       \
		out->cooldown_ms = (uint32_t)c->kcool;                    \
		out->max_concurrent = (uint32_t)c->kmax;                  \
		out->lease_ttl_ms = (uint32_t)c->kttl;                    \
		return;
		RG_PROVIDERS(PROV_LIMITS)
#undef PROV_LIMITS
	}
	memset(out, 0, sizeof(*out));
}

int
outcall_lease(struct outcall_env *env, unsigned provider, struct bh_lease *l,
    uint64_t *retry_ms)
{
	const struct config *c = *env->cfg;
	struct outcall_limits lim;
	uint64_t now = now_ms();

	outcall_limits(c, provider, &lim);
	if (bh_acquire(env->shm, provider, now, lim.max_concurrent,
		lim.lease_ttl_ms, l, retry_ms) == BH_ACQUIRED)
		return BH_ACQUIRED;
	memset(l, 0, sizeof(*l));
	if (env->alert != NULL &&
	    bh_should_warn(env->shm, provider, now,
		(uint32_t)c->bulkhead_sentry_cooldown_ms))
		env->alert(env->alert_arg, provider, lim.max_concurrent);
	return BH_SATURATED;
}

void
outcall_lease_release(struct outcall_env *env, struct bh_lease *l)
{
	if (l->id != 0)
		bh_release(env->shm, l);
	memset(l, 0, sizeof(*l));
}

/* --- the copy of the request ---------------------------------------------*/

static void
copy_request(struct outcall *oc, const struct httpc_req *r)
{
	size_t n = r->nheaders < HDR_MAX ? r->nheaders : HDR_MAX, need = 0;
	const char *method = r->method != NULL ? r->method : "GET";
	char *p;

	need += strlen(method) + 1 + strlen(r->url) + 1;
	for (size_t i = 0; i < n; i++)
		need += strlen(r->headers[i].name) + 1 +
		    strlen(r->headers[i].value) + 1;
	p = oc->strings = xmalloc(need);
	oc->req = *r;
	oc->req.method = p;
	p = stpcpy(p, method) + 1;
	oc->req.url = p;
	p = stpcpy(p, r->url) + 1;
	for (size_t i = 0; i < n; i++) {
		oc->hdrs[i].name = p;
		p = stpcpy(p, r->headers[i].name) + 1;
		oc->hdrs[i].value = p;
		p = stpcpy(p, r->headers[i].value) + 1;
	}
	oc->req.headers = oc->hdrs;
	oc->req.nheaders = n;
	if (r->body_len > 0) {
		oc->body = xmalloc(r->body_len);
		memcpy(oc->body, r->body, r->body_len);
	}
	oc->req.body = oc->body;
	if (oc->pol.collect_max > 0 && oc->cb->on_data == NULL &&
	    (oc->req.max_body == 0 || oc->req.max_body > oc->pol.collect_max))
		oc->req.max_body = oc->pol.collect_max;
}

static void
oc_free(struct outcall *oc)
{
	if (oc->retry != NULL)
		event_free(oc->retry);
	free(oc->strings);
	free(oc->body);
	free(oc->resp);
	free(oc);
}

/* finish - give back what is held, answer once, free. */
static void
finish(struct outcall *oc, struct outcall_result *res)
{
	outcall_lease_release(oc->env, &oc->lease);
	oc_verdict(oc->env->stats, oc->provider, res->verdict);
	res->attempts = oc->attempts;
	if (res->detail == NULL)
		res->detail = "";
	res->retry_after = oc->retry_after;
	res->content_type = oc->content_type;
	res->body = oc->resp;
	res->blen = oc->rlen;
	oc->cb->on_done(oc->arg, res);
	oc_free(oc);
}

/* --- one attempt ----------------------------------------------------------*/

static void send_attempt(struct outcall *oc);

static int
on_head(void *arg, const struct httpc_resp *resp)
{
	struct outcall *oc = arg;
	const char *ct = httpc_resp_header(resp, "content-type");
	const char *ra = httpc_resp_header(resp, "retry-after");

	oc->status = httpc_resp_status(resp);
	oc->head_us = mono_us() - oc->sent_us;
	strlcpy_rg(oc->content_type, ct ? ct : "", sizeof(oc->content_type));
	strlcpy_rg(oc->retry_after, ra ? ra : "", sizeof(oc->retry_after));
	oc->rlen = 0;
	/* an answer that a retry replaces is not shown: stop reading it */
	oc->discard = oc->attempts < oc->pol.max_attempts &&
	    oc->pol.idempotent && retry_retryable(CB_ERR_NONE, oc->status);
	if (oc->discard)
		return 1;
	return oc->cb->on_head != NULL ? oc->cb->on_head(oc->arg, resp) : 0;
}

static void
on_data(void *arg, const void *data, size_t len)
{
	struct outcall *oc = arg;

	if (oc->cb->on_data != NULL) {
		oc->delivered = 1;
		oc->cb->on_data(oc->arg, data, len);
		return;
	}
	if (oc->pol.collect_max == 0 || oc->rlen + len > oc->pol.collect_max)
		return; /* req.max_body ends the attempt as E_TOO_LARGE */
	oc->resp = xrealloc(oc->resp, oc->rlen + len + 1);
	memcpy(oc->resp + oc->rlen, data, len);
	oc->rlen += len;
	oc->resp[oc->rlen] = '\0';
}

static void
retry_fire(evutil_socket_t fd, short what, void *arg)
{
	struct outcall *oc = arg;
	uint64_t ra = 0;

	(void)fd;
	(void)what;
	if (cb_allow(oc->env->shm, oc->provider, now_ms(), oc->lim.threshold,
		oc->lim.cooldown_ms, 1, &oc->ticket, &ra) == CB_OPEN) {
		struct outcall_result res = { .verdict = OUTCALL_CIRCUIT_OPEN,
			.retry_ms = ra,
			.detail = "circuit open" };

		finish(oc, &res);
		return;
	}
	oc->has_ticket = 1;
	send_attempt(oc);
}

/* failure_of - the outcome counted for a failed attempt */
static enum oc_outcome
failure_of(enum cb_error kind)
{
	switch (kind) {
	case CB_ERR_CONNECT:
		return OC_CONNECT;
	case CB_ERR_TIMEOUT:
		return OC_TIMEOUT;
	case CB_ERR_CANCELLED:
		return OC_CANCELLED;
	default:
		return OC_PROTOCOL;
	}
}

static void
on_done(void *arg, const struct httpc_result *hres)
{
	struct outcall *oc = arg;
	enum cb_error kind = outcall_error_kind(hres->rc);
	uint64_t now = now_ms(), delay = 0;
	struct retry_policy rp = {
		.max_attempts = oc->pol.max_attempts,
		.base_ms = oc->pol.base_ms,
		.cap_ms = oc->pol.cap_ms,
		.rand = oc->env->rand,
		.rand_arg = oc->env->rand_arg,
	};
	struct retry_state st = { .attempts = oc->attempts };
	struct outcall_result res = { .rc = hres->rc,
		.detail = hres->detail };
	int status = oc->status;

	oc->call = NULL;
	if (oc->discard)
		kind = CB_ERR_NONE; /* the answer was read: count it */
	else if (kind != CB_ERR_NONE && kind != CB_ERR_CANCELLED)
		status = 0;
	else if (kind == CB_ERR_CANCELLED && status > 0)
		kind = CB_ERR_NONE; /* the caller's on_head stopped it */
	cb_record(oc->env->shm, oc->provider, &oc->ticket,
	    kind == CB_ERR_NONE ? cb_classify_http(status) :
				  cb_classify_error(kind, 0),
	    now, oc->lim.threshold);
	oc_attempt(oc->env->stats, oc->provider,
	    kind == CB_ERR_NONE ? status : 0, failure_of(kind),
	    oc->status > 0, oc->head_us);
	oc->has_ticket = 0;
	st.idempotent = (uint8_t)oc->pol.idempotent;
	/* nothing reached the server: safe to send again */
	st.safe = kind == CB_ERR_CONNECT && status == 0;
	st.first_byte_sent = (uint8_t)oc->delivered;
	if (kind != CB_ERR_CANCELLED &&
	    retry_next(&rp, &st, kind, status,
		oc->retry_after[0] ? oc->retry_after : NULL, now, &delay,
		NULL) == RETRY_AGAIN) {
		struct timeval tv = { (time_t)(delay / 1000),
			(suseconds_t)(delay % 1000) * 1000 };

		if (oc->retry == NULL)
			oc->retry = evtimer_new(oc->env->base, retry_fire, oc);
		evtimer_add(oc->retry, &tv);
		return;
	}
	if (kind == CB_ERR_NONE && status > 0) {
		res.verdict = OUTCALL_ANSWERED;
		res.status = status;
	} else {
		res.verdict = OUTCALL_FAILED;
		res.kind = kind;
	}
	finish(oc, &res);
}

static void
send_attempt(struct outcall *oc)
{
	static const struct httpc_cb cb = { on_head, on_data, on_done };

	oc->attempts++;
	oc->status = 0;
	oc->head_us = 0;
	oc->sent_us = mono_us();
	oc->discard = 0;
	oc->rlen = 0;
	oc->retry_after[0] = oc->content_type[0] = '\0';
	oc->call = httpc_request(oc->env->http, &oc->req, &cb, oc);
}

/* --- the call -------------------------------------------------------------*/

struct outcall *
outcall_start(struct outcall_env *env, unsigned provider,
    const struct httpc_req *req, const struct outcall_policy *pol,
    const struct outcall_cb *cb, void *arg, struct bh_lease *lease,
    struct outcall_result *refused)
{
	struct outcall *oc = xcalloc(1, sizeof(*oc));
	uint64_t ra = 0;

	memset(refused, 0, sizeof(*refused));
	oc->env = env;
	oc->provider = provider;
	oc->cb = cb;
	oc->arg = arg;
	oc->pol = *pol;
	if (oc->pol.max_attempts == 0)
		oc->pol.max_attempts = 1;
	if (oc->pol.base_ms == 0)
		oc->pol.base_ms = DEFAULT_BASE_MS;
	if (oc->pol.cap_ms == 0)
		oc->pol.cap_ms = DEFAULT_CAP_MS;
	outcall_limits(*env->cfg, provider, &oc->lim);
	if (lease != NULL) {
		oc->lease = *lease;
		memset(lease, 0, sizeof(*lease));
	} else if (outcall_lease(env, provider, &oc->lease, &ra) !=
	    BH_ACQUIRED) {
		refused->verdict = OUTCALL_SATURATED;
		refused->retry_ms = ra;
		refused->detail = "bulkhead saturated";
		oc_verdict(env->stats, provider, OC_V_SATURATED);
		oc_free(oc);
		return NULL;
	}
	if (cb_allow(env->shm, provider, now_ms(), oc->lim.threshold,
		oc->lim.cooldown_ms, 1, &oc->ticket, &ra) == CB_OPEN) {
		outcall_lease_release(env, &oc->lease);
		refused->verdict = OUTCALL_CIRCUIT_OPEN;
		refused->retry_ms = ra;
		refused->detail = "circuit open";
		oc_verdict(env->stats, provider, OC_V_CIRCUIT_OPEN);
		oc_free(oc);
		return NULL;
	}
	oc->has_ticket = 1;
	copy_request(oc, req);
	send_attempt(oc);
	if (oc->call == NULL) {
		cb_record(env->shm, provider, &oc->ticket, CB_NEUTRAL,
		    now_ms(), oc->lim.threshold);
		outcall_lease_release(env, &oc->lease);
		refused->verdict = OUTCALL_INVALID;
		refused->detail = "request not valid";
		oc_verdict(env->stats, provider, OC_V_INVALID);
		oc_free(oc);
		return NULL;
	}
	return oc;
}

unsigned
outcall_attempts(const struct outcall *oc)
{
	return oc->attempts;
}

void
outcall_cancel(struct outcall *oc)
{
	if (oc == NULL)
		return;
	if (oc->call != NULL) {
		httpc_cancel(oc->call);
		oc_attempt(oc->env->stats, oc->provider, 0, OC_CANCELLED,
		    oc->status > 0, oc->head_us);
	}
	if (oc->has_ticket)
		cb_record(oc->env->shm, oc->provider, &oc->ticket, CB_NEUTRAL,
		    now_ms(), oc->lim.threshold);
	outcall_lease_release(oc->env, &oc->lease);
	oc_free(oc);
}
