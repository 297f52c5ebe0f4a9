/*
 * provider - upstream chat calls (SPEC §7): one stream per CHAT_START,
 * through the routes primary and secondary, each with its own circuit,
 * bulkhead, timeout and retries (gate/outcall), read incrementally
 * (gate/sse, gate/chatstream) and sent back to the ingress that owns the
 * client as AI SDK 5 UI message stream events, batched: the events of
 * every stream of one ingress go in one STREAM_BATCH per loop pass.
 *
 * Routing: the model class (fast, agent; CHAT_DEFAULT_MODEL_CLASS when
 * the request names none) gives a model per route; an explicit model goes
 * to the primary unchanged.  The secondary, carrying the class's fallback
 * models, is tried only with FF_PROVIDER_FAILOVER_ENABLED and only when
 * the primary failed before its first token: circuit open, bulkhead full,
 * connect error, timeout, 402, 429, 5xx.  Retries (CHAT_PROVIDER_*_RETRIES)
 * happen only before the first byte reached the client: the stream's head
 * goes to the ingress with the first token, so a failure before it is
 * still an HTTP error the client can act on (upstream_* codes, never the
 * upstream's own text).
 *
 * A started stream belongs to this process until it ends: it gives back
 * the admission ticket (CHAT_RELEASE) however it ends -- its end, an
 * upstream failure, a CHAT_CANCEL from the ingress, or the death of that
 * ingress (seen in the process table within WATCH_MS).
 *
 * Must never: block the loop, send a byte of a stream after its END or
 * FAIL, retry after the client got a byte, or log a prompt, an answer or
 * an API key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "daemons/skeleton.h"
#include "gate/chatstream.h"
#include "gate/errors.h"
#include "gate/jobq.h"
#include "gate/outcall.h"
#include "gate/retry.h"
#include "gate/sse.h"
#include "gate/toolcache.h"
#include "gate/tools.h"
#include "http/client.h"
#include "proto/streambatch.h"
#include "shm/requests.h"
#include "util/log.h"
#include "util/util.h"

#define NBUCKETS 65536u   /* streams hash */
#define MAX_INGRESS 64    /* ingress.count is at most 32 */
#define BATCH_MAX (512u * 1024u)
#define RESEND_MS 2       /* a batch the ingress could not take */
/* PACE_US - the least time between two batches to one ingress, unless a
 * stream's head or failure is waiting (those go at once).  Tokens wait at
 * most this long; at high rates a batch then carries many streams'
 * tokens, and a message costs the two processes far more than a token. */
#define PACE_US 4000u
#define WATCH_MS 100      /* how often dead ingress processes are looked for */
#define SSE_MAX_LINE (256u * 1024u)
#define STREAM_IDLE_MS 30000 /* longest pause inside a stream (at least) */
#define SAID_MAX (256u * 1024u) /* a call's text fed back with its calls */
#define CALL_GRACE_MS 1000 /* a body's end after [DONE] with tool calls */
#define JW_BUCKETS 4096u      /* tool jobs waited for, by id */
#define TOOL_ARGS_MAX 65536u  /* a tool call's arguments, as streamed */

enum route { ROUTE_PRIMARY, ROUTE_SECONDARY };

struct pv;

/* One tool call of the model's current answer. */
struct tcall {
	char id[136];               /* the model's call id */
	char name[JOBQ_TOOL_MAX];
	char *args;                 /* the arguments' text, as the model
	                             * sent it ("{}" when none) */
	char *content;              /* what goes back to the model */
	char job[JOBQ_ID_LEN + 1];  /* its job while queued, else "" */
	int resolved;
};

/* A queued job a stream waits for. */
struct jobwait {
	char job[JOBQ_ID_LEN + 1];
	uint64_t stream;
	unsigned call;
	struct jobwait *next;
};

/* One chat stream. */
struct pstream {
	struct pv *pv;
	uint64_t id;
	uint64_t ticket;
	unsigned ingress;
	int32_t ingress_pid;
	struct pstream *hnext;        /* hash chain */
	struct pstream *inext, *iprev; /* streams of one ingress */
	struct pstream *dnext;        /* dirty list of its ingress */
	int dirty;
	/* the request, kept until the stream started (failover needs it) */
	json_t *messages;
	char *model;       /* explicit model, or NULL */
	unsigned model_class; /* 1 fast, 2 agent */
	char message_id[64];
	/* the upstream call */
	enum route route;
	unsigned attempts; /* upstream attempts so far, both routes */
	struct outcall *oc;
	struct sse_reader sse;
	char route_model[256];
	const char *finish; /* the upstream's finish_reason, mapped */
	/* the agent loop (SPEC §7) */
	unsigned round;   /* model calls made before the current one */
	int step_open, text_open;
	char text_id[16];
	/* the tools offered (the OpenAI "tools", a reference; NULL: none)
	 * and the rounds allowed, as at the start: a reload does not change
	 * a running chat */
	json_t *offered;
	unsigned max_rounds;
	int call_over;    /* the current call's [DONE] came with tool calls */
	struct event *grace; /* ...and its body has CALL_GRACE_MS to end */
	struct ui_buf said; /* the current call's text, fed back with its
			     * tool calls (at most SAID_MAX bytes) */
	int said_full;    /* cut at SAID_MAX: nothing more is kept */
	struct oai_calls calls;  /* being assembled */
	struct tcall *tc; /* the calls of this round */
	unsigned ntc, pending;
	unsigned calls_made; /* tool calls of the whole chat */
	struct event *wait; /* TOOL_JOB_WAIT_MS for the queued ones */
	int started;  /* the head (first token) is out or pending */
	int head_sent;
	int done;     /* the last events are pending: END follows */
	int errored;  /* it ended with an error event */
	unsigned end_code; /* 1 + the code of that event (0: none) */
	/* FAIL before the start */
	int failed;
	enum rg_error fail_code;
	uint32_t fail_retry_ms;
	struct ui_buf out; /* events not yet sent */
};

struct ingress_link {
	struct pstream *streams; /* every stream of this ingress */
	struct pstream *dirty;   /* streams with something to send */
	int32_t pid;             /* as last seen in the process table */
	int mixed;               /* a stream of another pid came since */
	int urgent;              /* a head or failure is among the dirty */
	uint64_t last_us;        /* when the last batch went */
};

struct pv {
	struct role_ctx *ctx;
	struct httpc *http;
	struct outcall_env out;
	struct pstream *bucket[NBUCKETS];
	struct ingress_link ing[MAX_INGRESS];
	unsigned nstreams;
	struct event *flush; /* one batch per ingress, once per loop pass */
	struct event *resend; /* the ingress was busy, or pacing */
	struct event *watch;
	struct sb_writer sb;
	char pid_key[16];
	/* the tools of the config */
	struct tool_set tools;
	json_t *openai_tools; /* what the model is offered, or NULL */
	struct jobq_tool caps[TOOLS_MAX];
	struct jobq_limits lim;
	struct jobwait *jw[JW_BUCKETS];
	struct tl_block *tl; /* per tool counts (the tools area) */
};

static struct pv the_pv;

#define CFG(pv) ((pv)->ctx->cfg)
#define COUNT(pv, field) SHM_INC(&(pv)->ctx->self->counters.field)

static void schedule_flush(struct pv *pv, int urgent);
static void route_start(struct pstream *s, enum route r);
static void tool_round(struct pstream *s);
static void tools_forget(struct pstream *s);

/* --- the streams table ----------------------------------------------------*/

static unsigned
hslot(uint64_t id)
{
	return (unsigned)(mix64(id) % NBUCKETS);
}

static struct pstream *
stream_find(struct pv *pv, uint64_t id)
{
	struct pstream *s;

	for (s = pv->bucket[hslot(id)]; s != NULL; s = s->hnext)
		if (s->id == id)
			return s;
	return NULL;
}

static void
stream_link(struct pv *pv, struct pstream *s)
{
	struct ingress_link *il = &pv->ing[s->ingress];
	unsigned h = hslot(s->id);

	s->hnext = pv->bucket[h];
	pv->bucket[h] = s;
	if (s->ingress_pid != il->pid)
		il->mixed = 1; /* watch_cb looks at every stream again */
	s->inext = il->streams;
	s->iprev = NULL;
	if (il->streams != NULL)
		il->streams->iprev = s;
	il->streams = s;
	pv->nstreams++;
	SHM_STORE(&pv->ctx->self->counters.prov_streams_open, pv->nstreams);
}

/* said_add - text of the current call, kept for its tool calls' round */
static void
said_add(struct pstream *s, const char *p, size_t len)
{
	if (s->said_full)
		return;
	if (len > SAID_MAX - s->said.len) {
		len = utf8_cut(p, SAID_MAX - s->said.len);
		s->said_full = 1; /* a prefix of what was said, no gap */
	}
	ui_buf_add(&s->said, p, len);
}

static void
said_clear(struct pstream *s)
{
	ui_buf_free(&s->said);
	s->said_full = 0;
}

/* stream_free - the stream is over: its call stops, its ticket goes back
 * to admission.  Not on a dirty list any more. */
static void
stream_free(struct pstream *s)
{
	struct pv *pv = s->pv;
	struct ingress_link *il = &pv->ing[s->ingress];
	struct pstream **pp;

	outcall_cancel(s->oc);
	s->oc = NULL;
	if (s->ticket != 0) {
		struct proto_msg m;

		memset(&m, 0, sizeof(m));
		m.type = PROTO_T_CHAT_RELEASE;
		m.u.chat_release.stream = s->id;
		m.u.chat_release.ticket = s->ticket;
		if (link_send_held(pv->ctx->link, ROLE_ADMISSION, 0, &m,
			LINK_WAIT_RELEASE_MS) != LINK_OK)
			COUNT(pv, prov_release_lost); /* reclaimed by owner */
	}
	for (pp = &pv->bucket[hslot(s->id)]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	if (s->iprev != NULL)
		s->iprev->inext = s->inext;
	else
		il->streams = s->inext;
	if (s->inext != NULL)
		s->inext->iprev = s->iprev;
	pv->nstreams--;
	SHM_STORE(&pv->ctx->self->counters.prov_streams_open, pv->nstreams);
	tools_forget(s);
	said_clear(s);
	if (s->grace != NULL)
		event_free(s->grace);
	json_decref(s->offered);
	json_decref(s->messages);
	free(s->model);
	sse_free(&s->sse);
	ui_buf_free(&s->out);
	free(s);
}

static void
mark_dirty(struct pstream *s)
{
	struct ingress_link *il = &s->pv->ing[s->ingress];

	if (!s->dirty) {
		s->dirty = 1;
		s->dnext = il->dirty;
		il->dirty = s;
	}
	if (s->failed || (s->started && !s->head_sent))
		il->urgent = 1;
	schedule_flush(s->pv, il->urgent);
}

/* --- the head and the end of a stream -------------------------------------*/

static const char *
route_name(enum route r)
{
	return r == ROUTE_PRIMARY ? "primary" : "secondary";
}

static unsigned
route_provider(enum route r)
{
	return r == ROUTE_PRIMARY ? CB_PROV_OPENROUTER_CHAT_PRIMARY :
				    CB_PROV_OPENROUTER_CHAT_SECONDARY;
}

/* tools_on - the model is offered the tools of the config. */
static int
tools_on(const struct pv *pv)
{
	return pv->openai_tools != NULL && CFG(pv)->chat_max_tool_rounds > 0;
}

/* start - the first output came (a token, or the tool calls): the head
 * of the stream (SPEC §7). */
static void
start(struct pstream *s)
{
	/* the attempts so far, the running call's included */
	unsigned n = s->attempts + (s->oc != NULL ? outcall_attempts(s->oc) : 0);

	if (s->started)
		return;
	s->started = 1;
	ui_start(&s->out, s->message_id);
	ui_route(&s->out, route_name(s->route),
	    cb_provider_name(route_provider(s->route)), s->route_model,
	    n > 0 ? n : 1);
	if (s->offered == NULL) {
		/* no retry after this, and no later round */
		json_decref(s->messages);
		s->messages = NULL;
	}
}

/* step_begin - one step per model call: start-step before its output. */
static void
step_begin(struct pstream *s)
{
	start(s);
	if (!s->step_open) {
		ui_start_step(&s->out);
		s->step_open = 1;
	}
}

static void
text_begin(struct pstream *s)
{
	step_begin(s);
	if (!s->text_open) {
		snprintf(s->text_id, sizeof(s->text_id), "text-%u", s->round);
		ui_text_start(&s->out, s->text_id);
		s->text_open = 1;
	}
}

static void
text_close(struct pstream *s)
{
	if (s->text_open) {
		ui_text_end(&s->out, s->text_id);
		s->text_open = 0;
	}
}

static void
step_close(struct pstream *s)
{
	text_close(s);
	if (s->step_open) {
		ui_finish_step(&s->out);
		s->step_open = 0;
	}
}

/* finish_stream - the last events; END goes with the next batch. */
static void
finish_stream(struct pstream *s, const char *reason)
{
	if (s->done)
		return;
	if (!s->started)
		text_begin(s); /* an empty answer: an empty text */
	said_clear(s);
	step_close(s);
	ui_finish(&s->out, reason);
	ui_done(&s->out);
	s->done = 1;
	mark_dirty(s);
}

/* error_stream - the stream started and then failed: an error event
 * (client-safe text), then its end. */
static void
error_stream(struct pstream *s, enum rg_error e, const char *text)
{
	if (s->done)
		return;
	start(s);
	text_close(s);
	ui_error(&s->out, rg_error_code(e), text ? text : rg_error_message(e));
	step_close(s);
	ui_finish(&s->out, "error");
	ui_done(&s->out);
	s->done = 1;
	s->errored = 1;
	s->end_code = (unsigned)e + 1;
	COUNT(s->pv, prov_streams_errored);
	mark_dirty(s);
}

/* fail_stream - the stream never started: an HTTP error to the client. */
static void
fail_stream(struct pstream *s, enum rg_error e, uint32_t retry_ms)
{
	s->failed = 1;
	s->fail_code = e;
	s->fail_retry_ms = retry_ms;
	s->done = 1;
	COUNT(s->pv, prov_streams_failed);
	mark_dirty(s);
}

/* --- the upstream call ----------------------------------------------------*/

/* oai_finish_reason - an OpenAI finish_reason as a UI stream one. */
static const char *
ui_reason(const char *r)
{
	if (r == NULL || strcmp(r, "stop") == 0)
		return "stop";
	if (strcmp(r, "length") == 0)
		return "length";
	if (strcmp(r, "content_filter") == 0)
		return "content-filter";
	if (strcmp(r, "tool_calls") == 0 || strcmp(r, "function_call") == 0)
		return "tool-calls";
	return "other";
}

static int
on_event(void *arg, const char *data, size_t len)
{
	struct pstream *s = arg;
	struct oai_chunk c;

	switch (oai_parse(data, len, &c)) {
	case OAI_FINISH:
		s->finish = ui_reason(c.finish_reason);
		/* FALLTHROUGH */
	case OAI_DELTA:
		if (c.content_len > 0) {
			int first = !s->started;

			text_begin(s);
			ui_text_delta(&s->out, s->text_id, c.content,
			    c.content_len);
			if (s->offered != NULL)
				said_add(s, c.content, c.content_len);
			if (first)
				COUNT(s->pv, prov_streams_started);
			mark_dirty(s);
		}
		if (s->offered != NULL &&
		    oai_calls_add(&s->calls, &c, TOOL_ARGS_MAX) != 0) {
			COUNT(s->pv, prov_bad_chunks);
			oai_chunk_free(&c);
			s->errored = 1; /* tool calls past the bounds */
			return 1;
		}
		break;
	case OAI_DONE:
		oai_chunk_free(&c);
		if (s->calls.n > 0) {
			s->call_over = 1; /* up_data runs the tools */
			return 1;
		}
		finish_stream(s, s->finish ? s->finish : "stop");
		return 1; /* nothing after [DONE] matters */
	case OAI_ERROR:
		oai_chunk_free(&c);
		s->errored = 1; /* on_done decides: fail over or error */
		return 1;
	case OAI_IGNORE:
		break;
	case OAI_BAD:
		COUNT(s->pv, prov_bad_chunks);
		break;
	}
	oai_chunk_free(&c);
	return 0;
}

static int
up_head(void *arg, const struct httpc_resp *resp)
{
	(void)arg;
	/* only a 200 is read as a stream; another answer is classified */
	return httpc_resp_status(resp) != 200;
}

static void route_failed(struct pstream *s, const struct outcall_result *res);

/* call_drop - the running call stops here, its attempts counted */
static void
call_drop(struct pstream *s)
{
	struct outcall *oc = s->oc;

	s->oc = NULL;
	s->attempts += outcall_attempts(oc);
	outcall_cancel(oc);
}

/* call_grace - [DONE] came with tool calls, and the body did not end
 * within CALL_GRACE_MS: the call is over (the circuit hears nothing of
 * it), the tools run */
static void
call_grace(evutil_socket_t fd, short what, void *arg)
{
	struct pstream *s = arg;

	(void)fd;
	(void)what;
	if (!s->call_over || s->done || s->oc == NULL)
		return;
	call_drop(s);
	s->call_over = 0;
	tool_round(s);
}

static void
up_data(void *arg, const void *data, size_t len)
{
	struct pstream *s = arg;

	if (s->done || s->errored || s->call_over)
		return; /* after [DONE]: nothing matters */
	if (sse_feed(&s->sse, data, len, on_event, s) < 0)
		s->errored = 1; /* a line past the bound: cut it off */
	if (s->call_over && !s->errored) {
		/* the model called tools: the body's end follows (the
		 * circuit hears of the call), then up_done runs them; an
		 * upstream that keeps the body open gets CALL_GRACE_MS */
		struct timeval tv = { CALL_GRACE_MS / 1000,
			(CALL_GRACE_MS % 1000) * 1000 };

		if (s->grace == NULL)
			s->grace = evtimer_new(s->pv->ctx->base, call_grace, s);
		if (s->grace != NULL)
			evtimer_add(s->grace, &tv);
		return;
	}
	if (!s->done && !s->errored)
		return;
	if (!s->errored && s->oc != NULL)
		return; /* [DONE]: the body's end follows, and the connection
			 * goes back to the pool (stream_free cancels a call
			 * still running when the end is sent) */
	/* an error: stop reading, from here */
	call_drop(s);
	if (s->done)
		return;
	if (s->started) {
		error_stream(s, RG_E_UPSTREAM_ERROR, NULL);
	} else {
		/* an error before the first token: as a failed answer */
		struct outcall_result r = { .verdict = OUTCALL_ANSWERED,
			.status = 200,
			.rc = HTTPC_E_PROTOCOL,
			.detail = "error in the stream",
			.retry_after = "",
			.content_type = "" };

		route_failed(s, &r);
	}
}

/* classify - an upstream answer or failure as an error code; *failover
 * says whether the secondary may be tried (SPEC §7). */
static enum rg_error
classify(const struct outcall_result *res, int *failover, uint32_t *retry)
{
	*failover = 0;
	*retry = 0;
	switch (res->verdict) {
	case OUTCALL_SATURATED:
		*failover = 1;
		*retry = (uint32_t)res->retry_ms;
		return RG_E_OVERLOADED;
	case OUTCALL_CIRCUIT_OPEN:
		*failover = 1;
		*retry = (uint32_t)res->retry_ms;
		return RG_E_UPSTREAM_UNAVAILABLE;
	case OUTCALL_INVALID:
		return RG_E_MISCONFIGURED;
	case OUTCALL_FAILED:
		*failover = 1;
		if (res->kind == CB_ERR_TIMEOUT)
			return RG_E_UPSTREAM_TIMEOUT;
		return RG_E_UPSTREAM_UNAVAILABLE;
	case OUTCALL_ANSWERED:
		break;
	}
	switch (res->status) {
	case 200:
		*failover = 1; /* a 200 that ended before its first token */
		return RG_E_UPSTREAM_UNAVAILABLE;
	case 400:
	case 404:
	case 422:
		return RG_E_UPSTREAM_BAD_REQUEST;
	case 401:
	case 403:
		return RG_E_UPSTREAM_AUTH;
	case 402:
		*failover = 1;
		return RG_E_UPSTREAM_QUOTA_EXCEEDED;
	case 429: {
		uint64_t ms = 0;

		*failover = 1;
		*retry = retry_parse_after(res->retry_after, now_ms(), &ms) == 0 &&
			ms > 0 && ms < 3600000 ? (uint32_t)ms : 1000;
		return RG_E_UPSTREAM_RATE_LIMITED;
	}
	}
	if (res->status >= 500) {
		*failover = 1;
		*retry = 1000;
		return RG_E_UPSTREAM_UNAVAILABLE;
	}
	return RG_E_UPSTREAM_ERROR;
}

/* route_failed - the route ended before the first token. */
static void
route_failed(struct pstream *s, const struct outcall_result *res)
{
	struct pv *pv = s->pv;
	int failover;
	uint32_t retry;
	enum rg_error e = classify(res, &failover, &retry);

	log_debug("stream %016llx: %s route: %s, status %d",
	    (unsigned long long)s->id, route_name(s->route),
	    outcall_verdict_name(res->verdict), res->status);
	if (s->started) {
		/* a later round of the agent loop: the client has bytes */
		error_stream(s, e, NULL);
		return;
	}
	if (s->route == ROUTE_PRIMARY && failover &&
	    CFG(pv)->ff_provider_failover_enabled) {
		COUNT(pv, prov_failovers);
		route_start(s, ROUTE_SECONDARY);
		return;
	}
	fail_stream(s, e, retry);
}

static void
up_done(void *arg, const struct outcall_result *res)
{
	struct pstream *s = arg;

	s->oc = NULL;
	s->attempts += res->attempts;
	if (s->grace != NULL)
		evtimer_del(s->grace);
	if (s->done)
		return; /* [DONE] came first, or it already failed */
	if (s->calls.n > 0 && !s->errored &&
	    (s->call_over || (res->verdict == OUTCALL_ANSWERED &&
				 res->status == 200 && res->rc == HTTPC_OK))) {
		/* tool calls, with [DONE] (however the body ended after
		 * it), or closed without */
		s->call_over = 0;
		tool_round(s);
		return;
	}
	if (s->started) {
		/* the stream began: no retry now, only an honest end */
		if (!s->errored && res->verdict == OUTCALL_ANSWERED &&
		    res->rc == HTTPC_OK && s->finish != NULL)
			finish_stream(s, s->finish); /* closed without [DONE] */
		else
			error_stream(s,
			    res->kind == CB_ERR_TIMEOUT ? RG_E_UPSTREAM_TIMEOUT :
						     RG_E_UPSTREAM_UNAVAILABLE,
			    "The model provider stopped before the answer "
			    "was complete.");
		return;
	}
	if (res->verdict == OUTCALL_ANSWERED && res->status == 200 &&
	    res->rc == HTTPC_OK && !s->errored && s->finish != NULL) {
		finish_stream(s, s->finish); /* an empty answer */
		return;
	}
	route_failed(s, res);
}

/* route_model - the model (and fallbacks) of route r for s. */
static void
route_model(struct pstream *s, enum route r, json_t *body)
{
	const struct config *c = CFG(s->pv);
	const char *m;

	if (r == ROUTE_PRIMARY) {
		m = s->model != NULL ? s->model :
		    s->model_class == 1 ? c->chat_model_fast_primary :
					  c->chat_model_agent_primary;
		strlcpy_rg(s->route_model, m, sizeof(s->route_model));
		json_object_set_new(body, "model", json_string(m));
		return;
	}
	m = s->model_class == 1 ? c->chat_model_fast_secondary :
				  c->chat_model_agent_secondary;
	/* "a,b,c": the first is the model, all are the fallbacks */
	{
		char list[512], *save = NULL, *t;
		json_t *models = json_array();

		strlcpy_rg(list, m, sizeof(list));
		for (t = strtok_r(list, ", ", &save); t != NULL;
		     t = strtok_r(NULL, ", ", &save))
			json_array_append_new(models, json_string(t));
		if (json_array_size(models) == 0)
			json_array_append_new(models, json_string(m));
		strlcpy_rg(s->route_model,
		    json_string_value(json_array_get(models, 0)),
		    sizeof(s->route_model));
		json_object_set_new(body, "model",
		    json_string(s->route_model));
		if (json_array_size(models) > 1)
			json_object_set_new(body, "models", models);
		else
			json_decref(models);
	}
}

static void
route_start(struct pstream *s, enum route r)
{
	static const struct outcall_cb cb = { up_head, up_data, up_done };
	struct pv *pv = s->pv;
	const struct config *c = CFG(pv);
	const char *base = r == ROUTE_PRIMARY ? c->provider_primary_base_url :
						c->provider_secondary_base_url;
	const char *key = r == ROUTE_PRIMARY ? c->provider_primary_api_key :
					       c->provider_secondary_api_key;
	int64_t timeout = r == ROUTE_PRIMARY ?
	    c->chat_provider_primary_timeout_ms :
	    c->chat_provider_secondary_timeout_ms;
	int64_t retries = r == ROUTE_PRIMARY ? c->chat_provider_primary_retries :
					       c->chat_provider_secondary_retries;
	struct outcall_policy pol = {
		/* no retry once the client got a byte (a later round) */
		.max_attempts = s->started ? 1 : 1 + (uint32_t)retries,
		.idempotent = 1, /* nothing of this call reached the client */
	};
	struct outcall_result refused;
	struct httpc_header h[3];
	char url[2048], auth[4200];
	json_t *body;
	char *text;
	size_t nh = 0;

	s->route = r;
	sse_free(&s->sse);
	sse_init(&s->sse, SSE_MAX_LINE);
	s->finish = NULL;
	s->errored = 0;
	s->call_over = 0;
	if (s->grace != NULL)
		evtimer_del(s->grace);
	oai_calls_free(&s->calls); /* a failed call's half: not this one's */
	said_clear(s);
	body = json_pack("{s:O,s:b}", "messages", s->messages, "stream", 1);
	route_model(s, r, body);
	if (s->offered != NULL && s->round < s->max_rounds)
		json_object_set(body, "tools", s->offered);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL || url_join(url, sizeof(url), base,
				"chat/completions") < 0) {
		free(text);
		if (s->started)
			error_stream(s, RG_E_MISCONFIGURED, NULL);
		else
			fail_stream(s, RG_E_MISCONFIGURED, 0);
		return;
	}
	h[nh++] = (struct httpc_header){ "Content-Type", "application/json" };
	h[nh++] = (struct httpc_header){ "Accept", "text/event-stream" };
	if (key != NULL && key[0] != '\0') {
		snprintf(auth, sizeof(auth), "Bearer %s", key);
		h[nh++] = (struct httpc_header){ "Authorization", auth };
	}
	s->oc = outcall_start(&pv->out, route_provider(r),
	    &(struct httpc_req){ .method = "POST",
		.url = url,
		.headers = h,
		.nheaders = nh,
		.body = text,
		.body_len = strlen(text),
		.connect_ms = (unsigned)timeout,
		.first_byte_ms = (unsigned)timeout,
		/* the route's timeout is to the first byte; a stream may
		 * pause longer between tokens, but not for ever */
		.idle_ms = (unsigned)(timeout > STREAM_IDLE_MS ? timeout :
							  STREAM_IDLE_MS),
		.total_ms = HTTPC_NO_LIMIT },
	    &pol, &cb, s, NULL, &refused);
	free(text);
	memset(auth, 0, sizeof(auth));
	if (s->oc == NULL)
		route_failed(s, &refused);
}

/* --- the agent loop (SPEC §7) ----------------------------------------------*/

static unsigned
jw_slot(const char *job)
{
	return (unsigned)(fnv1a(FNV1A_INIT, job, strlen(job)) % JW_BUCKETS);
}

static struct jobwait *
jw_take(struct pv *pv, const char *job)
{
	struct jobwait **pp, *w;

	for (pp = &pv->jw[jw_slot(job)]; (w = *pp) != NULL; pp = &w->next)
		if (strcmp(w->job, job) == 0) {
			*pp = w->next;
			return w;
		}
	return NULL;
}

static struct jobwait *
jw_find(struct pv *pv, const char *job)
{
	struct jobwait *w;

	for (w = pv->jw[jw_slot(job)]; w != NULL; w = w->next)
		if (strcmp(w->job, job) == 0)
			return w;
	return NULL;
}

static void
jw_add(struct pv *pv, const char *job, uint64_t stream, unsigned call)
{
	struct jobwait *w = xcalloc(1, sizeof(*w));
	unsigned h = jw_slot(job);

	strlcpy_rg(w->job, job, sizeof(w->job));
	w->stream = stream;
	w->call = call;
	w->next = pv->jw[h];
	pv->jw[h] = w;
}

/* tools_forget - the stream's tool calls end with it: its queued jobs
 * still run (and fill the cache), nobody waits for them. */
static void
tools_forget(struct pstream *s)
{
	for (unsigned i = 0; i < s->ntc; i++) {
		free(jw_take(s->pv, s->tc[i].job));
		free(s->tc[i].args);
		free(s->tc[i].content);
	}
	free(s->tc);
	s->tc = NULL;
	s->ntc = s->pending = 0;
	oai_calls_free(&s->calls);
	if (s->wait != NULL) {
		event_free(s->wait);
		s->wait = NULL;
	}
}

/* resolved - call t has its answer; the next round when it was the last. */
static void next_round(struct pstream *s);

static void
resolved(struct pstream *s, struct tcall *t)
{
	t->resolved = 1;
	t->job[0] = '\0';
	mark_dirty(s);
}

/* tool_ok - the tool's result (an upstream's 2xx body) for call t. */
static void
tool_ok(struct pstream *s, struct tcall *t, const char *body, size_t len,
    int cut)
{
	size_t max = (size_t)CFG(s->pv)->chat_tool_result_max_bytes;
	json_t *out;

	if (len > max) {
		len = max;
		cut = 1;
	}
	if (cut)
		len = utf8_cut(body, len); /* never half a character */
	out = cut ? NULL : json_loadb(body, len, JSON_DECODE_ANY, NULL);
	if (out == NULL)
		out = json_stringn(body, len); /* cut, or not JSON */
	if (out == NULL) {
		/* not UTF-8 text: neither the client nor the model can
		 * take it */
		body = "(a result that is not UTF-8 text)";
		len = strlen(body);
		out = json_string(body);
	}
	t->content = xmalloc(len + 1);
	memcpy(t->content, body, len);
	t->content[len] = '\0';
	ui_tool_output(&s->out, t->id, out, 0);
	json_decref(out);
	tl_count(s->pv->tl, t->name, TL_RESULTS);
	resolved(s, t);
}

/* tool_fail - call t failed: reason (one of the backpressure reasons, or
 * NULL) and a line for the client; the model gets the non-fatal text. */
static void
tool_fail(struct pstream *s, struct tcall *t, const char *reason,
    const char *text)
{
	json_t *j;

	if (reason != NULL) {
		ui_tool_backpressure(&s->out, t->name, reason);
		j = json_pack("{s:s,s:s}", "error", "temporarily unavailable",
		    "reason", reason);
	} else {
		j = json_pack("{s:s}", "error", text);
	}
	ui_tool_error(&s->out, t->id, text);
	t->content = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	resolved(s, t);
}

static void
tool_fail_bp(struct pstream *s, struct tcall *t, const char *reason)
{
	char text[128];

	snprintf(text, sizeof(text), "temporarily unavailable (%s)", reason);
	tool_fail(s, t, reason, text);
}

/* circuit_open - the circuit of the tool's upstream refuses calls now. */
static int
circuit_open(struct pv *pv, const struct tool_def *d)
{
	struct cb_status st;

	return cb_status(&pv->ctx->shm, d->provider, &st) == 0 &&
	    st.state == CB_ST_OPEN &&
	    now_ms() < st.opened_at + st.cooldown_ms;
}

/* cache_get - the cached result of d(args): 1 and the body, or 0. */
static int
cache_get(struct pv *pv, const struct tool_def *d, const json_t *args,
    void **body, size_t *len)
{
	return d->cache_ns[0] != '\0' &&
	    tc_get(pv->ctx->store, d->cache_ns, d->name, args, now_ms(), body,
		len) == 0;
}

/* The jobs of one round, queued in one transaction. */
struct enqueue {
	struct pv *pv;
	uint64_t stream;
	unsigned round, n;
	struct jobq_own_limits lim; /* a reload may free pv's meanwhile */
	struct {
		unsigned call;
		char id[JOBQ_ID_LEN + 1];
		char tool[JOBQ_TOOL_MAX];
		enum jobq_qos qos;
		json_t *args;
		int rc;
	} e[OAI_MAX_CALLS];
};

static int
enqueue_apply(struct store_txn *txn, void *arg)
{
	struct enqueue *q = arg;
	uint64_t now = now_ms();

	for (unsigned i = 0; i < q->n; i++) {
		struct jobq_new j = { q->e[i].id, q->e[i].tool, q->e[i].qos,
			q->e[i].args, NULL, q->pv->ctx->instance + 1 };
		int rc = jobq_enqueue(txn, &j, &q->lim.lim, now);

		q->e[i].rc = rc;
		if (rc != STORE_OK && rc != JOBQ_SATURATED)
			return rc;
	}
	return STORE_OK;
}

static void
wake_workers(struct pv *pv, unsigned n)
{
	unsigned workers = role_instances(CFG(pv), ROLE_TOOL_WORKER);
	struct proto_msg m;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_T_TOOL_WAKE;
	m.u.tool_wake.count = n;
	for (unsigned i = 0; i < workers; i++)
		(void)link_send(pv->ctx->link, ROLE_TOOL_WORKER, i, &m);
}

static void
enqueue_done(struct role_ctx *ctx, void *arg, int rc)
{
	struct enqueue *q = arg;
	struct pv *pv = q->pv;
	struct pstream *s = stream_find(pv, q->stream);
	unsigned queued = 0;

	(void)ctx;
	for (unsigned i = 0; i < q->n; i++) {
		struct tcall *t;

		json_decref(q->e[i].args);
		if (rc == STORE_OK && q->e[i].rc == STORE_OK) {
			/* queued, whether or not the chat still waits: the
			 * job runs for the cache */
			queued++;
			COUNT(pv, prov_tool_queued);
			tl_count(pv->tl, q->e[i].tool, TL_JOBS_QUEUED);
			continue;
		}
		if (s == NULL || s->done || s->round != q->round)
			continue; /* the chat went */
		t = &s->tc[q->e[i].call];
		free(jw_take(pv, q->e[i].id)); /* no such job */
		if (t->resolved)
			continue;
		if (rc != STORE_OK) {
			log_err("tool jobs: store %s: not queued",
			    store_rc_name(rc));
			tool_fail(s, t, NULL, "the tool queue is unavailable");
		} else {
			COUNT(pv, prov_tool_saturated);
			tl_count(pv->tl, t->name, TL_QUEUE_SATURATED);
			tool_fail_bp(s, t, "queue_saturated");
		}
		s->pending--;
	}
	if (queued > 0)
		wake_workers(pv, queued);
	if (s != NULL && !s->done && s->round == q->round && s->pending == 0)
		next_round(s);
	free(q);
}

static void
wait_over(evutil_socket_t fd, short what, void *arg)
{
	struct pstream *s = arg;

	(void)fd;
	(void)what;
	for (unsigned i = 0; i < s->ntc; i++) {
		struct tcall *t = &s->tc[i];

		if (t->resolved || t->job[0] == '\0')
			continue;
		free(jw_take(s->pv, t->job));
		COUNT(s->pv, prov_tool_timeouts);
		tl_count(s->pv->tl, t->name, TL_WAIT_TIMEOUTS);
		tool_fail_bp(s, t, "queue_timeout");
		s->pending--;
	}
	if (s->pending == 0)
		next_round(s);
}

static void
job_id(char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[JOBQ_ID_LEN / 2];

	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		uint64_t a = mono_us() ^ ((uint64_t)getpid() << 40);
		static uint64_t seq;

		a = mix64(a + ++seq);
		memcpy(r, &a, 8);
		a = mix64(a);
		memcpy(r + 8, &a, 8);
	}
	for (size_t i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[JOBQ_ID_LEN] = '\0';
}

/* tool_call - one call of the round: validated, from the cache, or into
 * the batch of jobs to queue. */
static void
tool_call(struct pstream *s, unsigned i, struct enqueue *q)
{
	struct pv *pv = s->pv;
	struct tcall *t = &s->tc[i];
	const struct tool_def *d = tools_find(&pv->tools, t->name);
	json_t *args = json_loads(t->args, 0, NULL);
	char err[256];
	void *body;
	size_t len;

	if (args != NULL) {
		ui_tool_input(&s->out, t->id, t->name, args);
	} else {
		json_t *raw = json_string(t->args);

		ui_tool_input(&s->out, t->id, t->name, raw);
		json_decref(raw);
	}
	COUNT(pv, prov_tool_calls);
	tl_count(pv->tl, t->name, TL_CALLS);
	if (d == NULL) {
		COUNT(pv, prov_tool_invalid);
		tool_fail(s, t, NULL, "unknown tool");
	} else if (!json_is_object(args) ||
	    tools_check_args(d, args, err, sizeof(err)) != 0) {
		char text[300];

		COUNT(pv, prov_tool_invalid);
		tl_count(pv->tl, t->name, TL_INVALID);
		snprintf(text, sizeof(text), "invalid arguments: %s",
		    json_is_object(args) ? err : "not a JSON object");
		tool_fail(s, t, NULL, text);
	} else if (cache_get(pv, d, args, &body, &len)) {
		COUNT(pv, prov_tool_cache_hits);
		tl_count(pv->tl, t->name, TL_CACHE_HITS);
		tool_ok(s, t, body, len, 0);
		free(body);
	} else if (circuit_open(pv, d)) {
		if (d->cache_ns[0] != '\0') {
			COUNT(pv, prov_tool_cache_misses);
			tl_count(pv->tl, t->name, TL_CACHE_MISSES);
		}
		tl_count(pv->tl, t->name, TL_CIRCUIT_OPEN);
		tool_fail_bp(s, t, "circuit_open");
	} else {
		if (d->cache_ns[0] != '\0') {
			COUNT(pv, prov_tool_cache_misses);
			tl_count(pv->tl, t->name, TL_CACHE_MISSES);
		}
		q->e[q->n].call = i;
		job_id(q->e[q->n].id);
		/* waited for from now: a result may come before the commit's
		 * word reaches this loop */
		strlcpy_rg(t->job, q->e[q->n].id, sizeof(t->job));
		jw_add(pv, t->job, s->id, i);
		strlcpy_rg(q->e[q->n].tool, d->name, sizeof(q->e[q->n].tool));
		q->e[q->n].qos = d->qos;
		q->e[q->n].args = args;
		q->n++;
		return; /* args go with the job */
	}
	json_decref(args);
}

/* charge - admission charged the chat ADMISSION_EST_TOOL_CALLS_PER_MSG
 * tool calls when it admitted it; the calls past that are charged now. */
static void
charge(struct pstream *s, unsigned calls)
{
	unsigned est = (unsigned)CFG(s->pv)->admission_est_tool_calls_per_msg;
	unsigned before = s->calls_made, extra;
	struct proto_msg m;

	s->calls_made += calls;
	if (s->ticket == 0 || s->calls_made <= est)
		return; /* not admitted by admission, or within the estimate */
	extra = s->calls_made - (before > est ? before : est);
	memset(&m, 0, sizeof(m));
	m.type = PROTO_T_TOOL_CHARGE;
	m.u.tool_charge.stream = s->id;
	m.u.tool_charge.count = extra;
	(void)link_send(s->pv->ctx->link, ROLE_ADMISSION, 0, &m);
}

/* tool_round - the model's answer ended with tool calls: each is shown
 * to the client (tool-input-available), answered from the cache or
 * queued, and the model is called again with the results. */
static void
tool_round(struct pstream *s)
{
	struct pv *pv = s->pv;
	struct enqueue *q;
	int first = !s->started;

	if (s->round >= s->max_rounds) {
		oai_calls_free(&s->calls); /* no more rounds: as it is */
		finish_stream(s, "tool-calls");
		return;
	}
	step_begin(s);
	if (first)
		COUNT(pv, prov_streams_started);
	text_close(s);
	s->tc = xcalloc(s->calls.n, sizeof(*s->tc));
	s->ntc = 0;
	for (unsigned i = 0; i < s->calls.n; i++) {
		const struct oai_call *k = &s->calls.c[i];
		struct tcall *t;

		if (!k->used)
			continue;
		t = &s->tc[s->ntc++];
		if (k->id != NULL && k->id[0] != '\0')
			strlcpy_rg(t->id, k->id, sizeof(t->id));
		else
			snprintf(t->id, sizeof(t->id), "call-%u-%u", s->round,
			    i);
		strlcpy_rg(t->name, k->name != NULL ? k->name : "",
		    sizeof(t->name));
		t->args = xstrdup(k->args != NULL && k->alen > 0 ? k->args :
								  "{}");
	}
	oai_calls_free(&s->calls);
	charge(s, s->ntc);
	q = xcalloc(1, sizeof(*q));
	q->pv = pv;
	q->stream = s->id;
	q->round = s->round;
	s->pending = s->ntc;
	for (unsigned i = 0; i < s->ntc; i++) {
		tool_call(s, i, q);
		if (s->tc[i].resolved)
			s->pending--;
	}
	mark_dirty(s);
	if (q->n == 0) {
		free(q);
		next_round(s);
		return;
	}
	if (s->wait == NULL)
		s->wait = evtimer_new(pv->ctx->base, wait_over, s);
	if (s->wait != NULL) {
		int64_t ms = CFG(pv)->tool_job_wait_ms;
		struct timeval tv = { (time_t)(ms / 1000),
			(suseconds_t)(ms % 1000) * 1000 };

		evtimer_add(s->wait, &tv);
	}
	jobq_limits_own(&q->lim, &pv->lim);
	if (role_commit(pv->ctx, enqueue_apply, enqueue_done, q) != 0) {
		/* stopping: the stream ends with the process */
		for (unsigned i = 0; i < q->n; i++)
			json_decref(q->e[i].args);
		free(q);
	}
}

/* next_round - every call of the round has its answer: the model again,
 * with its calls and their results. */
static void
next_round(struct pstream *s)
{
	struct pv *pv = s->pv;
	json_t *calls = json_array(), *said;

	if (s->wait != NULL)
		evtimer_del(s->wait);
	step_close(s);
	for (unsigned i = 0; i < s->ntc; i++)
		json_array_append_new(calls, json_pack("{s:s,s:s,s:{s:s,s:s}}",
		    "id", s->tc[i].id, "type", "function", "function", "name",
		    s->tc[i].name, "arguments", s->tc[i].args));
	said = s->said.len > 0 ? json_stringn(s->said.p, s->said.len) : NULL;
	json_array_append_new(s->messages, json_pack("{s:s,s:o,s:o}", "role",
	    "assistant", "content", said != NULL ? said : json_null(),
	    "tool_calls", calls));
	said_clear(s);
	for (unsigned i = 0; i < s->ntc; i++) {
		json_t *m = json_pack("{s:s,s:s,s:s}", "role", "tool",
		    "tool_call_id", s->tc[i].id, "content",
		    s->tc[i].content != NULL ? s->tc[i].content : "");

		/* every call gets its tool message, or the model refuses
		 * the next request */
		if (m == NULL)
			m = json_pack("{s:s,s:s,s:s}", "role", "tool",
			    "tool_call_id", s->tc[i].id, "content",
			    "{\"error\":\"a result that is not UTF-8 text\"}");
		json_array_append_new(s->messages, m);
	}
	tools_forget(s);
	s->round++;
	COUNT(pv, prov_tool_rounds);
	mark_dirty(s);
	route_start(s, s->route);
}

/* tool_result - a tool-worker's word on a job. */
static void
tool_result(struct pv *pv, const struct proto_tool_result *m)
{
	char job[JOBQ_ID_LEN + 1];
	struct jobwait *w;
	struct pstream *s;
	struct tcall *t;
	static const char *const reasons[] = { NULL, "dead_letter",
		"bulkhead_saturated", "circuit_open" };

	if (m->job.len != JOBQ_ID_LEN)
		return;
	memcpy(job, m->job.p, JOBQ_ID_LEN);
	job[JOBQ_ID_LEN] = '\0';
	if (m->outcome == 4 || m->outcome == 5) {
		/* progress: a preliminary output; the chat keeps waiting */
		json_t *o;

		if ((w = jw_find(pv, job)) == NULL ||
		    (s = stream_find(pv, w->stream)) == NULL || s->done ||
		    w->call >= s->ntc || s->tc[w->call].resolved)
			return;
		o = json_pack("{s:s,s:i}", "status",
		    m->outcome == 4 ? "running" : "retrying", "attempt",
		    (int)m->attempts);
		ui_tool_output(&s->out, s->tc[w->call].id, o, 1);
		json_decref(o);
		mark_dirty(s);
		return;
	}
	if ((w = jw_take(pv, job)) == NULL)
		return; /* its chat went, or it was given up */
	s = stream_find(pv, w->stream);
	t = s != NULL && w->call < s->ntc ? &s->tc[w->call] : NULL;
	free(w);
	if (t == NULL || t->resolved || s->done)
		return;
	COUNT(pv, prov_tool_results);
	if (m->outcome == 0)
		tool_ok(s, t, m->body.p != NULL ? m->body.p : "", m->body.len,
		    m->cut);
	else
		tool_fail_bp(s, t, m->outcome < RG_NELEM(reasons) ?
		    reasons[m->outcome] : "dead_letter");
	if (--s->pending == 0)
		next_round(s);
}

/* tools_load - the tools of the config, what the model is offered and
 * the queue's limits. */
static void
tools_load(struct pv *pv)
{
	char err[512];

	tools_free(&pv->tools);
	json_decref(pv->openai_tools);
	pv->openai_tools = NULL;
	if (tools_parse(CFG(pv), &pv->tools, err, sizeof(err)) != 0) {
		log_err("tools: %s; the model is offered no tool", err);
		memset(&pv->tools, 0, sizeof(pv->tools));
	}
	pv->openai_tools = tools_openai(&pv->tools);
	tools_limits(&pv->tools, CFG(pv), pv->caps, &pv->lim);
	if (pv->tl == NULL)
		pv->tl = tl_claim(&pv->ctx->shm, pv->ctx->slot,
		    (int32_t)getpid());
	tools_name_rows(&pv->tools, pv->tl);
}

/* --- batches to the ingress -----------------------------------------------*/

/* add_records - what s has to say, appended to pv->sb; 0, or -1 when the
 * batch is full (nothing of s appended). */
static int
add_records(struct pv *pv, struct pstream *s)
{
	size_t mark = pv->sb.len;
	unsigned n = pv->sb.n;
	struct sb_record r = { .stream = s->id };

	if (s->failed) {
		char d[256];
		const char *code = rg_error_code(s->fail_code);
		const char *msg = rg_error_message(s->fail_code);
		int len = snprintf(d, sizeof(d), "%s%c%s", code, '\0', msg);

		r.kind = SB_FAIL;
		r.status = (uint16_t)rg_error_status(s->fail_code);
		r.aux = s->fail_retry_ms;
		r.data = d;
		r.len = (uint32_t)len;
		return sb_add(&pv->sb, &r, BATCH_MAX);
	}
	if (s->started && !s->head_sent) {
		r.kind = SB_HEAD;
		r.status = 200;
	} else {
		r.kind = SB_DATA;
	}
	r.data = s->out.p;
	r.len = (uint32_t)s->out.len;
	if (r.len > 0 || r.kind == SB_HEAD)
		if (sb_add(&pv->sb, &r, BATCH_MAX) != 0)
			return -1;
	if (s->done) {
		r = (struct sb_record){ .stream = s->id,
			.kind = SB_END,
			.aux = s->end_code };
		if (sb_add(&pv->sb, &r, BATCH_MAX) != 0) {
			pv->sb.len = mark;
			pv->sb.n = n;
			return -1;
		}
	}
	return 0;
}

/* sent - s's records went out. */
static void
sent(struct pstream *s)
{
	if (s->started)
		s->head_sent = 1;
	ui_buf_reset(&s->out);
	s->dirty = 0;
	if (s->done)
		stream_free(s);
}

static int
send_batch(struct pv *pv, unsigned ingress)
{
	struct proto_msg m;

	memset(&m, 0, sizeof(m));
	m.type = PROTO_T_STREAM_BATCH;
	m.u.stream_batch.provider_pid = (uint32_t)getpid();
	m.u.stream_batch.records.p = (const char *)pv->sb.buf;
	m.u.stream_batch.records.len = (uint32_t)pv->sb.len;
	if (link_send(pv->ctx->link, ROLE_INGRESS, ingress, &m) != LINK_OK) {
		COUNT(pv, prov_batch_retries);
		return -1;
	}
	COUNT(pv, prov_batches);
	return 0;
}

/* flush_ingress - every dirty stream of one ingress, in as few batches as
 * fit; what could not be sent stays dirty. */
static int
flush_ingress(struct pv *pv, unsigned i)
{
	struct ingress_link *il = &pv->ing[i];

	while (il->dirty != NULL) {
		struct pstream *s, *next, *taken = NULL, **tail = &taken;

		sb_reset(&pv->sb);
		for (s = il->dirty; s != NULL; s = next) {
			next = s->dnext;
			if (add_records(pv, s) != 0 && pv->sb.n > 0)
				break;
			il->dirty = next;
			*tail = s;
			tail = &s->dnext;
			*tail = NULL;
		}
		if (pv->sb.n == 0)
			return 0;
		if (send_batch(pv, i) != 0) {
			/* put them back in front; try again soon */
			*tail = il->dirty;
			il->dirty = taken;
			return -1;
		}
		for (s = taken; s != NULL; s = next) {
			next = s->dnext;
			sent(s);
		}
	}
	return 0;
}

/* flush_all - a batch to every ingress with something to send whose last
 * batch is PACE_US old, or that waits for a head or failure (or all of
 * them: force); the timer for the rest. */
static void
flush_all(struct pv *pv, int force)
{
	uint64_t now = mono_us(), wait = 0;

	for (unsigned i = 0; i < MAX_INGRESS; i++) {
		struct ingress_link *il = &pv->ing[i];
		uint64_t due = il->last_us + PACE_US, w;

		if (il->dirty == NULL)
			continue;
		if (force || il->urgent || now >= due) {
			if (flush_ingress(pv, i) != 0) {
				w = RESEND_MS * 1000u;
			} else {
				il->urgent = 0;
				il->last_us = now;
				continue;
			}
		} else {
			w = due - now;
		}
		if (wait == 0 || w < wait)
			wait = w;
	}
	if (wait > 0) {
		struct timeval tv = { 0, (suseconds_t)wait };

		evtimer_add(pv->resend, &tv);
	}
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	flush_all(arg, 0);
}

/* schedule_flush - something became dirty: a pass now when it is urgent
 * or nothing is waiting for the timer; otherwise the timer sends it. */
static void
schedule_flush(struct pv *pv, int urgent)
{
	if (urgent || !evtimer_pending(pv->resend, NULL))
		event_active(pv->flush, EV_TIMEOUT, 0);
}

/* --- messages --------------------------------------------------------------*/

static void
chat_start(struct pv *pv, const struct proto_chat_start *m)
{
	struct pstream *s;
	json_t *msgs;

	if (m->ingress >= MAX_INGRESS || stream_find(pv, m->stream) != NULL) {
		COUNT(pv, prov_bad_starts);
		return;
	}
	msgs = json_loadb(m->messages.p, m->messages.len, 0, NULL);
	s = xcalloc(1, sizeof(*s));
	s->pv = pv;
	s->id = m->stream;
	s->ticket = m->ticket;
	s->ingress = m->ingress;
	s->ingress_pid = (int32_t)m->ingress_pid;
	s->model_class = m->model_class != 0 ? m->model_class :
	    strcmp(CFG(pv)->chat_default_model_class, "fast") == 0 ? 1 : 2;
	if (m->model.len > 0)
		s->model = xasprintf("%.*s", (int)m->model.len, m->model.p);
	snprintf(s->message_id, sizeof(s->message_id), "%.*s",
	    (int)m->message_id.len, m->message_id.p);
	s->messages = msgs;
	if (tools_on(pv)) {
		s->offered = json_incref(pv->openai_tools);
		s->max_rounds = (unsigned)CFG(pv)->chat_max_tool_rounds;
	}
	stream_link(pv, s);
	COUNT(pv, prov_streams);
	if (!json_is_array(msgs)) {
		fail_stream(s, RG_E_INTERNAL_ERROR, 0);
		return;
	}
	route_start(s, ROUTE_PRIMARY);
}

static void
chat_cancel(struct pv *pv, uint64_t id)
{
	struct pstream *s = stream_find(pv, id);

	if (s == NULL)
		return;
	COUNT(pv, prov_streams_cancelled);
	if (s->dirty) {
		/* drop it from its dirty list first */
		struct pstream **pp = &pv->ing[s->ingress].dirty;

		for (; *pp != NULL; pp = &(*pp)->dnext)
			if (*pp == s) {
				*pp = s->dnext;
				break;
			}
	}
	stream_free(s);
}

static void
pv_message(struct role_ctx *ctx, const struct proto_msg *m)
{
	struct pv *pv = ctx->priv;

	if (pv == NULL)
		return;
	switch (m->type) {
	case PROTO_T_CHAT_START:
		chat_start(pv, &m->u.chat_start);
		break;
	case PROTO_T_CHAT_CANCEL:
		chat_cancel(pv, m->u.chat_cancel.stream);
		break;
	case PROTO_T_TOOL_RESULT:
		tool_result(pv, &m->u.tool_result);
		break;
	default:
		break;
	}
}

/* watch - the streams of an ingress that died go with it. */
static void
watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pv *pv = arg;

	(void)fd;
	(void)what;
	for (unsigned i = 0; i < MAX_INGRESS; i++) {
		struct ingress_link *il = &pv->ing[i];
		struct pstream *s, *next;
		int32_t pid;

		if (il->streams == NULL)
			continue;
		pid = role_peer_pid(pv->ctx, ROLE_INGRESS, i);
		if (pid == il->pid && !il->mixed)
			continue; /* every stream is of this live ingress */
		il->pid = pid;
		il->mixed = 0;
		for (s = il->streams; s != NULL; s = next) {
			next = s->inext;
			if (s->ingress_pid == pid)
				continue;
			COUNT(pv, prov_streams_orphaned);
			chat_cancel(pv, s->id);
		}
	}
}

/* --- the role -------------------------------------------------------------*/

static int
pv_init(struct role_ctx *ctx)
{
	struct pv *pv = &the_pv;
	struct httpc_opts o = { .ca_file = ctx->cfg->tls_ca_file,
		.max_idle_per_origin = 256,
		.max_idle_total = 4096 };
	struct timeval tv = { 0, WATCH_MS * 1000 };

	pv->ctx = ctx;
	ctx->priv = pv;
	pv->http = httpc_new(ctx->base, &o);
	role_outcall_env(ctx, pv->http, &pv->out);
	pv->flush = event_new(ctx->base, -1, 0, flush_cb, pv);
	pv->resend = evtimer_new(ctx->base, flush_cb, pv);
	pv->watch = event_new(ctx->base, -1, EV_PERSIST, watch_cb, pv);
	tools_load(pv);
	if (pv->flush == NULL || pv->resend == NULL || pv->watch == NULL ||
	    event_add(pv->watch, &tv) != 0)
		return -1;
	return 0;
}

static void
pv_exit(struct role_ctx *ctx)
{
	struct pv *pv = ctx->priv;

	if (pv == NULL)
		return;
	/* every stream ends with an error event its client can read */
	for (unsigned i = 0; i < MAX_INGRESS; i++) {
		struct pstream *s, *next;

		for (s = pv->ing[i].streams; s != NULL; s = next) {
			next = s->inext;
			outcall_cancel(s->oc);
			s->oc = NULL;
			if (s->started)
				error_stream(s, RG_E_UPSTREAM_UNAVAILABLE,
				    "The gateway is restarting; try again.");
			else if (!s->done)
				fail_stream(s, RG_E_UPSTREAM_UNAVAILABLE, 1000);
		}
	}
	flush_all(pv, 1);
	for (unsigned i = 0; i < MAX_INGRESS; i++)
		while (pv->ing[i].streams != NULL)
			chat_cancel(pv, pv->ing[i].streams->id);
	event_free(pv->flush);
	event_free(pv->resend);
	event_free(pv->watch);
	httpc_free(pv->http);
	sb_free(&pv->sb);
	role_commit_drain(ctx);
	tools_free(&pv->tools);
	json_decref(pv->openai_tools);
	for (unsigned i = 0; i < JW_BUCKETS; i++)
		while (pv->jw[i] != NULL) {
			struct jobwait *w = pv->jw[i];

			pv->jw[i] = w->next;
			free(w);
		}
}

static void
pv_reload(struct role_ctx *ctx, const struct config *old)
{
	struct pv *pv = ctx->priv;

	(void)old;
	if (pv != NULL)
		tools_load(pv); /* streams keep the round they are in */
}

static const struct role_ops provider_ops = {
	.role = ROLE_PROVIDER,
	.init = pv_init,
	.on_message = pv_message,
	.on_reload = pv_reload,
	.on_exit = pv_exit,
};

int
main(int argc, char **argv)
{
	return role_main(argc, argv, &provider_ops);
}
