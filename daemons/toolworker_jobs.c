/*
 * toolworker_jobs - the tool-job runner of a tool-worker (SPEC section
 * 7): claims jobs from the durable queue (gate/jobq) and calls each
 * tool's upstream (gate/tools renders the request) through its circuit
 * and bulkhead (gate/outcall).
 *
 * A 2xx: the result is written to the tool cache (when the tool has one)
 * and the job completed, in one transaction, then sent to the provider
 * instance that waits for it (TOOL_RESULT).  Another answer or a
 * transport failure, after the tool's own retries: the attempt failed
 * (queued again with backoff, or a dead letter after
 * TOOL_JOB_MAX_ATTEMPTS; the waiter hears of the dead letter).  A full
 * bulkhead or an open circuit: the job is put back without counting the
 * attempt, due when the circuit may let a probe in, and the waiter hears
 * of it at once (the chat does not wait for nothing).
 *
 * Woken by TOOL_WAKE from a provider, with TOOL_JOB_POLL_MS as the
 * fallback.  Once a second the owners of running jobs are looked at: the
 * jobs of a tool-worker that died are queued again at once (their lease
 * would hold them for TOOL_JOB_LEASE_MS).  Must never block the loop
 * (the store is written through role_commit, HTTP through gate/outcall)
 * or log a header value, an argument or a result.
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
#include "daemons/toolworker.h"
#include "gate/jobq.h"
#include "gate/outcall.h"
#include "gate/toolcache.h"
#include "gate/tools.h"
#include "http/client.h"
#include "shm/requests.h"
#include "util/log.h"
#include "util/util.h"

#define TJ_CLAIM_MAX 64
#define TJ_BODY_MAX (1u << 20) /* an upstream answer is collected to this */
#define TJ_OWNERS_MAX 64
#define TJ_RESULT_HOLD_MS 2000 /* an outcome held for a busy provider */

/* what the waiter is told (TOOL_RESULT outcome); TJ_NOBODY: nothing */
enum tj_outcome { TJ_DONE, TJ_DEAD, TJ_SATURATED, TJ_CIRCUIT_OPEN,
	TJ_RUNNING, TJ_RETRYING, TJ_NOBODY = 255 };

struct tj;

/* One job in flight, holding a place of bulkhead tool_job. */
struct job {
	struct tj *j;
	struct jobq_item it;
	struct outcall *oc;
	struct bh_lease place;
	struct job *next;
};

/* One store step waiting for its commit. */
struct jstep {
	struct tj *j;
	enum { J_CLAIM, J_COMPLETE, J_FAIL, J_POSTPONE, J_RELEASE } kind;
	struct jobq_item it;   /* the job (not J_CLAIM, J_RELEASE) */
	int32_t owner;
	uint64_t now, due, rnd;
	char reason[300];
	int dead;              /* J_FAIL: it became a dead letter */
	int lost;              /* J_COMPLETE: the attempt was no longer ours */
	unsigned outcome;      /* what the waiter is told (J_POSTPONE) */
	/* J_COMPLETE: the cache row (ns "": none) */
	char ns[TC_NS_MAX];
	json_t *args;
	uint64_t expires;
	char *body;
	size_t blen;
	/* the queue's limits (J_CLAIM, J_FAIL, J_RELEASE), the step's own: a
	 * reload may free j's meanwhile */
	struct jobq_own_limits lim;
	/* J_CLAIM */
	unsigned max, n;
	struct jobq_item items[TJ_CLAIM_MAX];
};

struct tj {
	struct role_ctx *ctx;
	struct outcall_env *out;
	struct tool_set tools;
	struct jobq_tool caps[TOOLS_MAX];
	struct jobq_limits lim;
	struct event *kick, *poll;
	struct job *inflight;
	unsigned ninflight;
	int claiming, again, stopping;
	struct tl_block *tl; /* per tool counts (the tools area) */
};

#define CFG(j) ((j)->ctx->cfg)
#define COUNT(j, field) SHM_INC(&(j)->ctx->self->counters.field)


/* --- the tools --------------------------------------------------------------*/

static void
load_tools(struct tj *j)
{
	char err[512];

	tools_free(&j->tools);
	if (tools_parse(CFG(j), &j->tools, err, sizeof(err)) != 0) {
		/* relgated checked the config: only the environment changed */
		log_err("tools: %s; no tool job runs", err);
		memset(&j->tools, 0, sizeof(j->tools));
	}
	tools_limits(&j->tools, CFG(j), j->caps, &j->lim);
	if (j->tl == NULL)
		j->tl = tl_claim(&j->ctx->shm, j->ctx->slot, (int32_t)getpid());
	tools_name_rows(&j->tools, j->tl);
}

/* --- store steps --------------------------------------------------------------*/

static int
step_apply(struct store_txn *txn, void *arg)
{
	struct jstep *s = arg;
	int rc;

	switch (s->kind) {
	case J_CLAIM:
		for (unsigned i = 0; i < s->n; i++)
			jobq_item_free(&s->items[i]);
		s->n = 0;
		if (__atomic_load_n(&s->j->stopping, __ATOMIC_ACQUIRE))
			return STORE_OK; /* the worker stops: nothing new */
		return jobq_claim(txn, s->now, (int32_t)getpid(), &s->lim.lim,
		    s->max, s->items, &s->n);
	case J_COMPLETE:
		s->lost = 0;
		if (s->ns[0] != '\0' &&
		    (rc = tc_put(txn, s->ns, s->it.tool, s->args, s->body,
			 s->blen, s->expires)) != STORE_OK)
			return rc;
		rc = jobq_complete(txn, s->it.id, (int32_t)getpid(),
		    s->it.attempt);
		if (rc == STORE_NOTFOUND) {
			s->lost = 1; /* not ours any more (taken by another
				      * worker, expired, a dead letter): the
				      * cache row stays, jobsDone not counted */
			rc = STORE_OK;
		}
		return rc;
	case J_FAIL:
		return jobq_fail(txn, s->it.id, (int32_t)getpid(), s->it.attempt,
		    s->reason, &s->lim.lim, s->now, s->rnd, &s->dead);
	case J_POSTPONE:
		return jobq_postpone(txn, s->it.id, (int32_t)getpid(),
		    s->it.attempt, s->reason, s->due);
	case J_RELEASE: {
		unsigned n = 0;

		rc = jobq_release_owner(txn, s->owner, &s->lim.lim, s->now, &n);
		s->max = n;
		return rc;
	}
	}
	return STORE_EINVAL;
}

static void start_job(struct tj *j, struct jobq_item *it);

/* tell - the job's waiter hears how it ended. */
static void
tell(struct tj *j, const struct jobq_item *it, unsigned outcome,
    const char *reason, const char *body, size_t blen)
{
	size_t max = (size_t)CFG(j)->chat_tool_result_max_bytes;
	struct proto_msg m;

	if (it->waiter == 0)
		return; /* nobody waits (a requeued dead letter) */
	memset(&m, 0, sizeof(m));
	m.type = PROTO_T_TOOL_RESULT;
	m.u.tool_result.job.p = it->id;
	m.u.tool_result.job.len = (uint32_t)strlen(it->id);
	m.u.tool_result.outcome = (uint8_t)outcome;
	m.u.tool_result.attempts = it->attempt;
	m.u.tool_result.reason.p = reason != NULL ? reason : "";
	m.u.tool_result.reason.len = (uint32_t)strlen(m.u.tool_result.reason.p);
	if (body != NULL) {
		m.u.tool_result.cut = blen > max;
		m.u.tool_result.body.p = body;
		m.u.tool_result.body.len = (uint32_t)(blen > max ? max : blen);
	}
	/* progress may be lost to a busy provider; an outcome is held back
	 * for it a while (the chat waits for it) */
	if ((outcome == TJ_RUNNING || outcome == TJ_RETRYING ?
		    link_send(j->ctx->link, ROLE_PROVIDER, it->waiter - 1, &m) :
		    link_send_held(j->ctx->link, ROLE_PROVIDER, it->waiter - 1,
			&m, TJ_RESULT_HOLD_MS)) != LINK_OK)
		COUNT(j, tw_results_lost); /* the provider gives up waiting */
}

/* Jobs claimed as the worker stops. */
struct give_back {
	const struct jobq_item *items;
	unsigned n;
	uint64_t now;
};

static int
give_back_apply(struct store_txn *txn, void *arg)
{
	const struct give_back *g = arg;

	for (unsigned i = 0; i < g->n; i++) {
		int rc = jobq_postpone(txn, g->items[i].id, (int32_t)getpid(),
		    g->items[i].attempt, "its tool-worker stopped", g->now);

		if (rc != STORE_OK && rc != STORE_NOTFOUND)
			return rc;
	}
	return STORE_OK;
}

/* give_back - jobs claimed as the worker stops are queued again at once,
 * their attempt not counted (in a transaction of their own: the writer
 * is stopping); items are freed. */
static void
give_back(struct tj *j, struct jobq_item *items, unsigned n)
{
	struct give_back g = { items, n, now_ms() };
	int rc;

	if (n > 0 && (rc = store_run(j->ctx->store, give_back_apply, &g)) !=
	    STORE_OK)
		log_err("tool jobs: store %s: %u claimed as the worker stopped "
			"keep their lease", store_rc_name(rc), n);
	for (unsigned i = 0; i < n; i++)
		jobq_item_free(&items[i]);
}

static void
step_done(struct role_ctx *ctx, void *arg, int rc)
{
	struct jstep *s = arg;
	struct tj *j = s->j;

	(void)ctx;
	switch (s->kind) {
	case J_CLAIM:
		j->claiming = 0;
		if (rc != STORE_OK) {
			log_err("tool job claim: store %s", store_rc_name(rc));
			for (unsigned i = 0; i < s->n; i++)
				jobq_item_free(&s->items[i]);
			s->n = 0;
		}
		if (j->stopping) {
			give_back(j, s->items, s->n);
			s->n = 0;
		}
		for (unsigned i = 0; i < s->n; i++) {
			COUNT(j, tw_jobs_claimed);
			/* the chat shows the attempt as progress */
			tell(j, &s->items[i], TJ_RUNNING, "", NULL, 0);
			start_job(j, &s->items[i]);
		}
		if (!j->stopping && (s->n == s->max || j->again)) {
			j->again = 0;
			tw_kick(j->kick, 0);
		}
		break;
	case J_COMPLETE:
		if (rc != STORE_OK)
			log_err("tool job %s: store %s: not completed", s->it.id,
			    store_rc_name(rc));
		else {
			if (s->ns[0] != '\0') {
				COUNT(j, tw_cache_writes);
				tl_count(j->tl, s->it.tool, TL_CACHE_WRITES);
			}
			if (!s->lost) {
				COUNT(j, tw_jobs_done);
				tl_count(j->tl, s->it.tool, TL_JOBS_DONE);
			}
		}
		/* the result is good either way: the chat need not wait */
		tell(j, &s->it, TJ_DONE, "", s->body, s->blen);
		break;
	case J_FAIL:
		if (rc != STORE_OK && rc != STORE_NOTFOUND) {
			log_err("tool job %s: store %s: not updated", s->it.id,
			    store_rc_name(rc));
			break;
		}
		if (rc == STORE_OK && s->dead) {
			COUNT(j, tw_jobs_dead);
			tl_count(j->tl, s->it.tool, TL_JOBS_DEAD);
			log_warn("tool job %s (%s): dead letter after %u "
				 "attempt(s): %s",
			    s->it.id, s->it.tool, s->it.attempt, s->reason);
			tell(j, &s->it, TJ_DEAD, s->reason, NULL, 0);
		} else if (rc == STORE_OK) {
			COUNT(j, tw_jobs_retried);
			tl_count(j->tl, s->it.tool, TL_JOBS_RETRIED);
			tell(j, &s->it, TJ_RETRYING, s->reason, NULL, 0);
		}
		break;
	case J_POSTPONE:
		if (rc == STORE_OK && s->outcome != TJ_NOBODY) {
			COUNT(j, tw_jobs_postponed);
			tl_count(j->tl, s->it.tool, TL_JOBS_POSTPONED);
			tell(j, &s->it, s->outcome, s->reason, NULL, 0);
		}
		break;
	case J_RELEASE:
		if (rc == STORE_OK && s->max > 0) {
			log_warn("tool-worker %d died: %u running tool job(s) "
				 "queued again",
			    (int)s->owner, s->max);
			for (unsigned i = 0; i < s->max; i++)
				COUNT(j, tw_jobs_released);
			tw_kick(j->kick, 0);
		}
		break;
	}
	if (s->kind != J_CLAIM)
		jobq_item_free(&s->it);
	json_decref(s->args);
	free(s->body);
	free(s);
}

static void
commit(struct tj *j, struct jstep *s)
{
	s->j = j;
	if (s->kind == J_CLAIM || s->kind == J_FAIL || s->kind == J_RELEASE)
		jobq_limits_own(&s->lim, &j->lim);
	if (role_commit(j->ctx, step_apply, step_done, s) != 0) {
		/* stopping: the job keeps its lease and is claimed again */
		if (s->kind == J_CLAIM)
			j->claiming = 0;
		jobq_item_free(&s->it);
		json_decref(s->args);
		free(s->body);
		free(s);
	}
}

/* --- one job --------------------------------------------------------------------*/

/* job_free - the job's place in bulkhead tool_job goes back. */
static void
job_free(struct job *jb)
{
	bh_release(&jb->j->ctx->shm, &jb->place);
	jobq_item_free(&jb->it);
	free(jb);
}

static void
job_unlink(struct tj *j, struct job *jb)
{
	struct job **p;

	for (p = &j->inflight; *p != NULL; p = &(*p)->next)
		if (*p == jb) {
			*p = jb->next;
			j->ninflight--;
			return;
		}
}

/* end_job - a step for the job; it is no longer in flight. */
static struct jstep *
end_job(struct job *jb, int kind)
{
	struct jstep *s = xcalloc(1, sizeof(*s));

	s->kind = kind;
	s->it = jb->it;
	memset(&jb->it, 0, sizeof(jb->it));
	s->now = now_ms();
	return s;
}

static uint64_t
rnd64(void)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = mono_us();
	return r;
}

/* cache_row - the cache row of the job's result; ns "" when its tool has
 * no cache (or went in a reload). */
static void
cache_row(struct tj *j, struct jstep *s)
{
	const struct tool_def *t = tools_find(&j->tools, s->it.tool);

	s->ns[0] = '\0';
	if (t == NULL || t->cache_ns[0] == '\0' ||
	    (s->args = json_loads(s->it.args, 0, NULL)) == NULL)
		return;
	strlcpy_rg(s->ns, t->cache_ns, sizeof(s->ns));
	s->expires = s->now + t->cache_ttl_ms;
}

static void
on_done(void *arg, const struct outcall_result *res)
{
	struct job *jb = arg;
	struct tj *j = jb->j;
	struct jstep *s;

	jb->oc = NULL;
	job_unlink(j, jb);
	if (res->verdict == OUTCALL_ANSWERED && res->status >= 200 &&
	    res->status < 300) {
		s = end_job(jb, J_COMPLETE);
		s->blen = res->body != NULL ? res->blen : 0;
		s->body = xmalloc(s->blen + 1);
		if (s->blen > 0)
			memcpy(s->body, res->body, s->blen);
		s->body[s->blen] = '\0';
		cache_row(j, s);
	} else if (res->verdict == OUTCALL_SATURATED ||
	    res->verdict == OUTCALL_CIRCUIT_OPEN) {
		/* the circuit opened between the tool's own retries */
		s = end_job(jb, J_POSTPONE);
		s->outcome = res->verdict == OUTCALL_SATURATED ? TJ_SATURATED :
								TJ_CIRCUIT_OPEN;
		s->due = s->now + (res->retry_ms > 0 ? res->retry_ms : 1000);
		snprintf(s->reason, sizeof(s->reason), "%s",
		    s->outcome == TJ_SATURATED ? "bulkhead_saturated" :
						 "circuit_open");
	} else {
		s = end_job(jb, J_FAIL);
		s->rnd = rnd64();
		if (res->verdict == OUTCALL_ANSWERED)
			snprintf(s->reason, sizeof(s->reason), "http %d",
			    res->status);
		else
			snprintf(s->reason, sizeof(s->reason), "%s: %s",
			    httpc_rc_name(res->rc), res->detail);
	}
	job_free(jb);
	commit(j, s);
	tw_kick(j->kick, 0);
}

/* start_job - call the upstream of one claimed job (it is taken over). */
static void
start_job(struct tj *j, struct jobq_item *it)
{
	static const struct outcall_cb cb = { .on_done = on_done };
	struct job *jb = xcalloc(1, sizeof(*jb));
	const struct tool_def *t;
	struct outcall_result refused;
	struct outcall_policy pol = { .idempotent = 1,
		.collect_max = TJ_BODY_MAX };
	struct tool_req req;
	struct jstep *s;
	char err[256];
	json_t *args;

	jb->j = j;
	jb->it = *it;
	memset(it, 0, sizeof(*it));
	if (bh_acquire(&j->ctx->shm, BH_PROV_TOOL_JOB, now_ms(),
		(uint32_t)CFG(j)->bulkhead_tool_job_max,
		(uint32_t)CFG(j)->bulkhead_tool_job_lease_ms, &jb->place,
		NULL) != BH_ACQUIRED) {
		/* the workers together run BULKHEAD_TOOL_JOB_MAX jobs: this
		 * one waits in the queue (its waiter keeps waiting) */
		memset(&jb->place, 0, sizeof(jb->place));
		s = end_job(jb, J_POSTPONE);
		s->outcome = TJ_NOBODY;
		s->due = s->now + 200;
		snprintf(s->reason, sizeof(s->reason), "bulkhead tool_job full");
		free(jb);
		commit(j, s);
		return;
	}
	t = tools_find(&j->tools, jb->it.tool);
	args = json_loads(jb->it.args != NULL ? jb->it.args : "", 0, NULL);
	if (t == NULL || args == NULL ||
	    tools_request(t, args, &req, err, sizeof(err)) != 0) {
		json_decref(args);
		s = end_job(jb, J_FAIL);
		snprintf(s->reason, sizeof(s->reason), "%s",
		    t == NULL ? "its tool is not configured" :
		    args == NULL ? "its arguments are not JSON" : err);
		job_free(jb);
		commit(j, s);
		return;
	}
	json_decref(args);
	pol.max_attempts = 1 + t->retries;
	jb->oc = outcall_start(j->out, t->provider,
	    &(struct httpc_req){ .method = req.method,
		.url = req.url,
		.headers = req.headers,
		.nheaders = req.nheaders,
		.body = req.body,
		.body_len = req.body != NULL ? req.body_len : 0,
		.connect_ms = t->timeout_ms,
		.first_byte_ms = t->timeout_ms,
		.idle_ms = t->timeout_ms,
		.total_ms = t->timeout_ms,
		.max_body = TJ_BODY_MAX },
	    &pol, &cb, jb, NULL, &refused);
	tool_req_free(&req);
	if (jb->oc != NULL) {
		jb->next = j->inflight;
		j->inflight = jb;
		j->ninflight++;
		return;
	}
	if (refused.verdict == OUTCALL_INVALID) {
		s = end_job(jb, J_FAIL);
		snprintf(s->reason, sizeof(s->reason),
		    "the upstream URL cannot be requested");
	} else {
		s = end_job(jb, J_POSTPONE);
		s->outcome = refused.verdict == OUTCALL_SATURATED ?
		    TJ_SATURATED : TJ_CIRCUIT_OPEN;
		s->due = s->now + (refused.retry_ms > 0 ? refused.retry_ms :
							  1000);
		snprintf(s->reason, sizeof(s->reason), "%s",
		    s->outcome == TJ_SATURATED ? "bulkhead_saturated" :
						 "circuit_open");
	}
	job_free(jb);
	commit(j, s);
}

/* --- claiming ---------------------------------------------------------------------*/

static void
claim_pass(evutil_socket_t fd, short what, void *arg)
{
	struct tj *j = arg;
	const struct config *c = CFG(j);
	unsigned room = (unsigned)c->bulkhead_tool_job_max;
	struct jstep *s;

	(void)fd;
	(void)what;
	if (j->stopping || j->tools.n == 0)
		return;
	if (j->claiming) {
		j->again = 1;
		return;
	}
	/* the places of bulkhead tool_job the workers leave free */
	{
		uint32_t held = bh_inflight(&j->ctx->shm, BH_PROV_TOOL_JOB,
		    now_ms());

		room = held >= room ? 0 : room - held;
	}
	if (room > (unsigned)c->tool_job_max_per_run)
		room = (unsigned)c->tool_job_max_per_run;
	if (room > TJ_CLAIM_MAX)
		room = TJ_CLAIM_MAX;
	if (room == 0)
		return; /* an ending job kicks the next pass */
	s = xcalloc(1, sizeof(*s));
	s->kind = J_CLAIM;
	s->now = now_ms();
	s->max = room;
	j->claiming = 1;
	commit(j, s);
}

static int
poll_every(struct tj *j)
{
	struct timeval tv = { (time_t)(CFG(j)->tool_job_poll_ms / 1000),
		(suseconds_t)(CFG(j)->tool_job_poll_ms % 1000) * 1000 };

	event_del(j->poll);
	return event_add(j->poll, &tv);
}

/* is_tool_worker - pid is a running tool-worker (not gone, not a zombie
 * its supervisor has yet to reap, not a process that took its pid). */
static int
is_tool_worker(int32_t pid)
{
	char path[64], st[256] = "";
	const char *rp;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return errno != ENOENT; /* unsure: leave it to its lease */
	if (fgets(st, sizeof(st), f) == NULL)
		st[0] = '\0';
	fclose(f);
	/* "pid (comm) S ...": comm may hold anything; the last ')' ends it */
	rp = strrchr(st, ')');
	return strstr(st, "(tool-worker)") != NULL && rp != NULL &&
	    rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

/* --- the runner -----------------------------------------------------------------*/

void
tj_timer(struct tj *j)
{
	int32_t owners[TJ_OWNERS_MAX];
	unsigned n = 0;

	if (j == NULL || j->stopping ||
	    jobq_running_owners(j->ctx->store, owners, TJ_OWNERS_MAX, &n) !=
		STORE_OK)
		return;
	for (unsigned i = 0; i < n; i++) {
		struct jstep *s;

		if (owners[i] == (int32_t)getpid() || is_tool_worker(owners[i]))
			continue;
		s = xcalloc(1, sizeof(*s));
		s->kind = J_RELEASE;
		s->owner = owners[i];
		s->now = now_ms();
		commit(j, s);
	}
}

void
tj_wake(struct tj *j)
{
	if (j != NULL)
		tw_kick(j->kick, 0);
}

void
tj_reload(struct tj *j)
{
	if (j == NULL)
		return;
	load_tools(j);
	poll_every(j);
	tw_kick(j->kick, 0);
}

/* result_giveup - an outcome held for a busy provider too long: lost
 * (the chat ends its wait at TOOL_JOB_WAIT_MS) */
static void
result_giveup(void *arg, const struct proto_msg *m)
{
	struct role_ctx *ctx = arg;

	if (m->type == PROTO_T_TOOL_RESULT)
		SHM_INC(&ctx->self->counters.tw_results_lost);
}

struct tj *
tj_new(struct role_ctx *ctx, struct outcall_env *out)
{
	struct tj *j = xcalloc(1, sizeof(*j));

	j->ctx = ctx;
	j->out = out;
	link_on_giveup(ctx->link, result_giveup, ctx);
	load_tools(j);
	j->kick = evtimer_new(ctx->base, claim_pass, j);
	j->poll = event_new(ctx->base, -1, EV_PERSIST, claim_pass, j);
	if (j->kick == NULL || j->poll == NULL || poll_every(j) != 0) {
		tj_stop(j);
		tj_free(j);
		return NULL;
	}
	tw_kick(j->kick, 0);
	return j;
}

void
tj_stop(struct tj *j)
{
	if (j == NULL)
		return;
	__atomic_store_n(&j->stopping, 1, __ATOMIC_RELEASE);
	/* the jobs in flight go to the other workers now, their attempt
	 * not counted (it was cut short, not failed) */
	while (j->inflight != NULL) {
		struct job *jb = j->inflight;
		struct jstep *s;

		j->inflight = jb->next;
		j->ninflight--;
		outcall_cancel(jb->oc);
		s = end_job(jb, J_POSTPONE);
		s->outcome = TJ_NOBODY;
		s->due = s->now;
		snprintf(s->reason, sizeof(s->reason),
		    "its tool-worker stopped");
		job_free(jb);
		commit(j, s);
	}
}

void
tj_free(struct tj *j)
{
	if (j == NULL)
		return;
	if (j->kick != NULL)
		event_free(j->kick);
	if (j->poll != NULL)
		event_free(j->poll);
	tools_free(&j->tools);
	free(j);
}
