/*
 * skeleton - see skeleton.h.  Everything a role process does that is not
 * the role's own business: start-up, heartbeat, reload, pings, shutdown.
 * Must never block its event loop.
 */
#include "daemons/skeleton.h"

#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "gate/jwt.h"
#include "gate/outcall.h"
#include "shm/bulkhead.h"
#include "shm/requests.h"
#include "util/log.h"
#include "util/util.h"

#define PING_TIMEOUT_MS 1000
#define PING_MAX_REQS 8
#define PING_MAX_PEERS 80

/* --- the process graph --------------------------------------------------*/

struct child_def {
	enum rg_role role;
	unsigned fixed;
	int knob;
	enum restart_policy policy;
};

static const struct child_def children[] = {
#define CHILD_DEF(r, fixed, knob, policy) { ROLE_##r, fixed, knob, policy },
	RG_CHILDREN(CHILD_DEF)
#undef CHILD_DEF
};

static const struct {
	enum rg_role from, to;
} links[] = {
#define LINK_DEF(f, t) { ROLE_##f, ROLE_##t },
	RG_LINKS(LINK_DEF)
#undef LINK_DEF
};

unsigned
role_instances(const struct config *cfg, enum rg_role role)
{
	for (size_t i = 0; i < RG_NELEM(children); i++) {
		const struct child_def *c = &children[i];
		int64_t n;

		if (c->role != role)
			continue;
		if (c->knob < 0)
			return c->fixed;
		n = *(const int64_t *)((const char *)cfg +
		    config_knobs[c->knob].offset);
		if (n == 0) {
			long cpus = sysconf(_SC_NPROCESSORS_ONLN);

			n = cpus > 0 ? cpus : 1;
			if (n > 32)
				n = 32;
		}
		return (unsigned)n;
	}
	return 0;
}

enum restart_policy
role_restart_policy(enum rg_role role)
{
	for (size_t i = 0; i < RG_NELEM(children); i++)
		if (children[i].role == role)
			return children[i].policy;
	return RESTART_ALWAYS;
}

unsigned
chat_provider_of(const struct config *cfg, uint64_t stream)
{
	unsigned n = role_instances(cfg, ROLE_PROVIDER);

	return n > 0 ? (unsigned)(stream % n) : 0;
}

int
role_links_to(enum rg_role from, enum rg_role to)
{
	for (size_t i = 0; i < RG_NELEM(links); i++)
		if (links[i].from == from && links[i].to == to)
			return 1;
	return 0;
}

/* outcall_alert - a saturation warning of an outbound call's bulkhead. */
static void
outcall_alert(void *arg, unsigned provider, uint32_t max)
{
	role_alert(arg, "bulkhead_saturated", bh_provider_name(provider),
	    "%u leases in flight, the maximum", max);
}

void
role_outcall_env(struct role_ctx *ctx, struct httpc *http,
    struct outcall_env *env)
{
	*env = (struct outcall_env){ .base = ctx->base,
		.shm = &ctx->shm,
		.http = http,
		.cfg = &ctx->cfg,
		.alert = outcall_alert,
		.alert_arg = ctx,
		.stats = oc_claim(&ctx->shm, ctx->slot, (int32_t)getpid()) };
}

int
jwt_verifier_from_config(const struct config *cfg, struct jwt_verifier **out,
    char *err, size_t errlen)
{
	struct jwt_config jc = {
		.secret = cfg->auth_jwt_secret,
		.public_key_file = cfg->auth_jwt_public_key_file,
		.issuer = cfg->auth_jwt_issuer,
		.audience = cfg->auth_jwt_audience,
		.leeway_s = (uint32_t)cfg->auth_jwt_leeway_s,
	};

	*out = NULL;
	if (cfg->auth_jwt_secret == NULL && cfg->auth_jwt_public_key_file == NULL)
		return 0;
	if (jwt_alg_parse(cfg->auth_jwt_alg, &jc.alg) != 0) {
		snprintf(err, errlen, "unknown alg %s", cfg->auth_jwt_alg);
		return -1;
	}
	*out = jwt_verifier_new(&jc, err, errlen);
	return *out != NULL ? 0 : -1;
}

/* --- pings ---------------------------------------------------------------*/

struct ping_peer {
	uint8_t role, instance, ok;
	uint32_t rtt_us;
};

struct ping_req {
	int active;
	uint64_t nonce;
	uint64_t deadline_ms;
	char reply_to[128];
	unsigned npeers, answered;
	struct ping_peer peers[PING_MAX_PEERS];
};

static struct ping_req ping_reqs[PING_MAX_REQS];

static void
ping_report(struct role_ctx *ctx, struct ping_req *pr)
{
	struct proto_msg m;

	for (unsigned i = 0; i < pr->npeers; i++) {
		struct ping_peer *p = &pr->peers[i];

		if (!p->ok)
			SHM_INC(&ctx->self->counters.pings_failed);
		memset(&m, 0, sizeof(m));
		m.type = PROTO_T_PING_REPORT;
		m.u.ping_report.nonce = pr->nonce;
		m.u.ping_report.peer_role = p->role;
		m.u.ping_report.peer_instance = p->instance;
		m.u.ping_report.ok = p->ok;
		m.u.ping_report.rtt_us = p->rtt_us;
		link_send_addr(ctx->link, pr->reply_to, &m);
	}
	memset(&m, 0, sizeof(m));
	m.type = PROTO_T_PING_REPORT;
	m.u.ping_report.nonce = pr->nonce;
	m.u.ping_report.peer_role = (uint8_t)ctx->role;
	m.u.ping_report.peer_instance = (uint8_t)ctx->instance;
	m.u.ping_report.ok = 1;
	m.u.ping_report.last = 1;
	link_send_addr(ctx->link, pr->reply_to, &m);
	pr->active = 0;
}

/* ping_start - a client asked us to ping every peer of our links. */
static void
ping_start(struct role_ctx *ctx, const struct proto_ping_req *req)
{
	struct ping_req *pr = NULL;
	uint64_t sent = mono_us();

	for (unsigned i = 0; i < PING_MAX_REQS; i++)
		if (!ping_reqs[i].active) {
			pr = &ping_reqs[i];
			break;
		}
	if (pr == NULL || req->reply_to.len >= sizeof(pr->reply_to)) {
		log_warn("ping request dropped: too many in flight");
		return;
	}
	memset(pr, 0, sizeof(*pr));
	pr->active = 1;
	pr->nonce = req->nonce;
	pr->deadline_ms = mono_ms() + PING_TIMEOUT_MS;
	memcpy(pr->reply_to, req->reply_to.p, req->reply_to.len);
	for (unsigned to = 0; to < ROLE_COUNT; to++) {
		unsigned n;

		if (!role_links_to(ctx->role, to))
			continue;
		n = role_instances(ctx->cfg, to);
		for (unsigned i = 0; i < n && pr->npeers < PING_MAX_PEERS;
		     i++) {
			struct proto_msg m;

			pr->peers[pr->npeers++] = (struct ping_peer){
				.role = (uint8_t)to, .instance = (uint8_t)i
			};
			memset(&m, 0, sizeof(m));
			m.type = PROTO_T_PING;
			m.u.ping.nonce = pr->nonce;
			m.u.ping.sent_us = sent;
			m.u.ping.reply_to =
			    proto_str_from(link_my_addr(ctx->link));
			link_send(ctx->link, to, i, &m);
		}
	}
	if (pr->npeers == 0)
		ping_report(ctx, pr);
}

static void
ping_pong(struct role_ctx *ctx, const struct proto_msg *m)
{
	for (unsigned r = 0; r < PING_MAX_REQS; r++) {
		struct ping_req *pr = &ping_reqs[r];

		if (!pr->active || pr->nonce != m->u.pong.nonce)
			continue;
		for (unsigned i = 0; i < pr->npeers; i++) {
			struct ping_peer *p = &pr->peers[i];

			if (p->ok || p->role != m->src_role ||
			    p->instance != m->src_instance)
				continue;
			p->ok = 1;
			p->rtt_us = (uint32_t)(mono_us() - m->u.pong.sent_us);
			if (++pr->answered == pr->npeers)
				ping_report(ctx, pr);
			return;
		}
	}
}

static void
ping_expire(struct role_ctx *ctx)
{
	uint64_t now = mono_ms();

	for (unsigned r = 0; r < PING_MAX_REQS; r++)
		if (ping_reqs[r].active && ping_reqs[r].deadline_ms <= now)
			ping_report(ctx, &ping_reqs[r]);
}

/* --- group commit, answered on the loop -----------------------------------*/

struct commit {
	struct role_ctx *ctx;
	store_apply_fn apply;
	role_commit_done done;
	void *arg;
	int rc;
	struct commit *next;
};

struct role_commits {
	struct store_writer *writer;
	pthread_mutex_t mu;
	struct commit *head, **tailp; /* finished, in order */
	int efd;
	struct event *ev;
	int stopped;
};

static int
commit_apply(struct store_txn *txn, void *arg)
{
	struct commit *c = arg;

	return c->apply(txn, c->arg);
}

/* commit_finished - writer thread: queue for the loop, wake it. */
static void
commit_finished(void *arg, int rc)
{
	struct commit *c = arg;
	struct role_commits *rc_ = c->ctx->commits;
	uint64_t one = 1;
	int wake;

	c->rc = rc;
	c->next = NULL;
	pthread_mutex_lock(&rc_->mu);
	wake = rc_->head == NULL;
	*rc_->tailp = c;
	rc_->tailp = &c->next;
	pthread_mutex_unlock(&rc_->mu);
	if (wake && write(rc_->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_err("eventfd write: %s", strerror(errno));
}

/* commits_run - loop thread: call the done callbacks in commit order. */
static void
commits_run(evutil_socket_t fd, short what, void *arg)
{
	struct role_commits *rc_ = arg;
	struct commit *list, *next;
	uint64_t v;

	(void)what;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_err("eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&rc_->mu);
	list = rc_->head;
	rc_->head = NULL;
	rc_->tailp = &rc_->head;
	pthread_mutex_unlock(&rc_->mu);
	for (; list != NULL; list = next) {
		next = list->next;
		list->done(list->ctx, list->arg, list->rc);
		free(list);
	}
}

static struct role_commits *
commits_start(struct role_ctx *ctx)
{
	struct role_commits *rc_ = xcalloc(1, sizeof(*rc_));

	pthread_mutex_init(&rc_->mu, NULL);
	rc_->tailp = &rc_->head;
	rc_->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (rc_->efd < 0)
		fatal("eventfd");
	rc_->ev = event_new(ctx->base, rc_->efd, EV_READ | EV_PERSIST,
	    commits_run, rc_);
	if (rc_->ev == NULL || event_add(rc_->ev, NULL) != 0)
		fatalx("cannot watch the commit eventfd");
	rc_->writer = store_writer_start(ctx->store,
	    (unsigned)ctx->cfg->store_max_batch);
	store_writer_share_turns(rc_->writer, shm_store_turns(&ctx->shm));
	return rc_;
}

int
role_commit(struct role_ctx *ctx, store_apply_fn apply, role_commit_done done,
    void *arg)
{
	struct commit *c;

	if (ctx->commits == NULL)
		ctx->commits = commits_start(ctx);
	if (ctx->commits->stopped)
		return -1;
	c = xcalloc(1, sizeof(*c));
	c->ctx = ctx;
	c->apply = apply;
	c->done = done;
	c->arg = arg;
	if (store_writer_submit(ctx->commits->writer, commit_apply,
		commit_finished, c) != STORE_OK) {
		free(c);
		return -1;
	}
	return 0;
}

void
role_commit_drain(struct role_ctx *ctx)
{
	struct role_commits *rc_ = ctx->commits;

	if (rc_ == NULL || rc_->stopped)
		return;
	rc_->stopped = 1;
	store_writer_stop(rc_->writer);
	commits_run(rc_->efd, EV_READ, rc_);
}

static void
commits_free(struct role_ctx *ctx)
{
	struct role_commits *rc_ = ctx->commits;

	if (rc_ == NULL)
		return;
	role_commit_drain(ctx);
	event_free(rc_->ev);
	close(rc_->efd);
	pthread_mutex_destroy(&rc_->mu);
	free(rc_);
	ctx->commits = NULL;
}

/* --- the loop ------------------------------------------------------------*/

static struct role_ctx the_ctx;

static void
on_message(void *arg, const struct proto_msg *m)
{
	struct role_ctx *ctx = arg;

	switch (m->type) {
	case PROTO_T_PING_REQ:
		ping_start(ctx, &m->u.ping_req);
		break;
	case PROTO_T_PING: {
		struct proto_msg r;
		char addr[160];

		if (m->u.ping.reply_to.len >= sizeof(addr))
			break;
		memcpy(addr, m->u.ping.reply_to.p, m->u.ping.reply_to.len);
		addr[m->u.ping.reply_to.len] = '\0';
		memset(&r, 0, sizeof(r));
		r.type = PROTO_T_PONG;
		r.u.pong.nonce = m->u.ping.nonce;
		r.u.pong.sent_us = m->u.ping.sent_us;
		if (link_send_addr(ctx->link, addr, &r) == LINK_OK)
			SHM_INC(&ctx->self->counters.pings_answered);
		break;
	}
	case PROTO_T_PONG:
		ping_pong(ctx, m);
		break;
	default:
		if (ctx->ops->on_message != NULL)
			ctx->ops->on_message(ctx, m);
		break;
	}
}

static void
heartbeat(struct role_ctx *ctx)
{
	SHM_STORE(&ctx->self->heartbeat_at, now_ms());
}

/*
 * The loop's lag: a probe each LAG_PROBE_MS measures how late the loop
 * comes to it (a callback that blocks, or the machine not running the
 * process).  loop.lagMaxMs is the most of the window now filling and the
 * one before (LAG_WINDOW_MS each); loop.late counts the probes
 * LAG_LATE_MS or more late.
 */
#define LAG_PROBE_MS 100
#define LAG_WINDOW_MS 10000
#define LAG_LATE_MS 10

struct lag_probe {
	struct role_ctx *ctx;
	uint64_t due;        /* monotonic ms the probe should run */
	uint64_t window_end; /* when the window now filling closes */
	uint64_t max_now, max_before;
};

/* lag_observe - a probe that ran at now (monotonic ms) */
static void
lag_observe(struct lag_probe *p, uint64_t now)
{
	uint64_t late = now > p->due ? now - p->due : 0;

	if (late >= LAG_LATE_MS)
		SHM_INC(&p->ctx->self->counters.loop_late);
	if (now >= p->window_end) {
		/* a window of no probe at all counts as one of no lag */
		p->max_before = now - p->window_end < LAG_WINDOW_MS ?
		    p->max_now : 0;
		p->max_now = 0;
		p->window_end = now + LAG_WINDOW_MS;
	}
	if (late > p->max_now)
		p->max_now = late;
	SHM_STORE(&p->ctx->self->counters.loop_lag_max_ms,
	    p->max_now > p->max_before ? p->max_now : p->max_before);
	/* the next one is due a period after this one was, or after now
	 * when the loop missed whole periods (libevent reschedules so) */
	p->due += LAG_PROBE_MS;
	if (p->due <= now)
		p->due = now + LAG_PROBE_MS;
}

static void
on_lag_probe(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	lag_observe(arg, mono_ms());
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct role_ctx *ctx = arg;

	(void)fd;
	(void)what;
	heartbeat(ctx);
	ping_expire(ctx);
	if (ctx->ops->on_timer != NULL)
		ctx->ops->on_timer(ctx);
}

static void
reload(struct role_ctx *ctx)
{
	char err[512];
	uint64_t gen = __atomic_load_n(&ctx->shm.hdr->config_gen,
	    __ATOMIC_ACQUIRE);
	struct config *next, *old = ctx->cfg;

	next = config_load(ctx->config_path, CONFIG_NO_ENV, err, sizeof(err));
	if (next == NULL) {
		log_err("reload refused, keeping the running config: %s",
		    err);
		SHM_INC(&ctx->self->counters.reloads_failed);
		return;
	}
	config_keep_restart_knobs(next, old, NULL);
	ctx->cfg = next;
	if (ctx->ops->on_reload != NULL)
		ctx->ops->on_reload(ctx, old);
	config_free(old);
	SHM_STORE(&ctx->self->config_gen, gen);
	SHM_INC(&ctx->self->counters.reloads_ok);
	log_info("reloaded config generation %llu", (unsigned long long)gen);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct role_ctx *ctx = arg;

	(void)what;
	if (sig == SIGHUP)
		reload(ctx);
	else
		role_stop(ctx);
}

void
role_alert(struct role_ctx *ctx, const char *kind, const char *key,
    const char *fmt, ...)
{
	struct proto_msg m;
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_warn("alert %s %s: %s", kind, key, text);
	memset(&m, 0, sizeof(m));
	m.type = PROTO_T_ALERT;
	m.u.alert.created_at = now_ms();
	m.u.alert.kind = proto_str_from(kind);
	m.u.alert.key = proto_str_from(key);
	m.u.alert.message = proto_str_from(text);
	link_send(ctx->link, ROLE_MONITOR, 0, &m);
}

int
role_listener(const char *var)
{
	const char *v = getenv(var);
	char *end;
	long fd;
	int on = 0;
	socklen_t len = sizeof(on);

	if (v == NULL)
		return -1;
	fd = strtol(v, &end, 10);
	unsetenv(var);
	if (*end != '\0' || fd < 3 || fd > 65535 ||
	    getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) != 0 ||
	    !on) {
		log_warn("%s: not a listening socket; opening my own", var);
		return -1;
	}
	fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	return (int)fd;
}

int32_t
role_peer_pid(const struct role_ctx *ctx, enum rg_role role,
    unsigned instance)
{
	unsigned n = shm_proc_count(&ctx->shm);

	for (unsigned s = 1; s < n; s++) {
		const struct shm_proc *p = shm_proc(&ctx->shm, s);
		uint32_t st;

		if (p->role != (uint32_t)role || p->instance != instance)
			continue;
		st = SHM_LOAD(&p->state);
		if (st != SHM_STATE_STARTING && st != SHM_STATE_READY &&
		    st != SHM_STATE_STOPPING)
			return 0;
		return SHM_LOAD(&p->pid);
	}
	return 0;
}

void
role_stop(struct role_ctx *ctx)
{
	SHM_STORE(&ctx->self->state, SHM_STATE_STOPPING);
	event_base_loopbreak(ctx->base);
}

static void
usage(const char *prog, int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: %s -c EFFECTIVE_CONFIG -s SLOT -i INSTANCE [-S]\n"
	    "  -c FILE      the effective configuration relgated wrote\n"
	    "  -s SLOT      process-table slot in the shm segment\n"
	    "  -i INSTANCE  instance number of this role\n"
	    "  -S           log to syslog instead of stderr\n"
	    "  --help, --version\n"
	    "relgated starts this program; it is not meant to be run by "
	    "hand.\n",
	    prog);
	exit(code);
}

static unsigned
parse_uint(const char *s, const char *prog)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v > 255)
		usage(prog, 2);
	return (unsigned)v;
}

int
role_main(int argc, char **argv, const struct role_ops *ops)
{
	struct role_ctx *ctx = &the_ctx;
	struct event *ev_term, *ev_int, *ev_hup, *ev_tick, *ev_lag;
	struct timeval one_s = { 1, 0 };
	struct timeval lag_period = { 0, LAG_PROBE_MS * 1000 };
	struct lag_probe lag = { ctx, 0, 0, 0, 0 };
	char ident[48], err[512];
	int opt, to_syslog = 0, have_slot = 0, have_inst = 0;
	uint64_t gen;

	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *prog = role_binary(ops->role);

	ctx->ops = ops;
	ctx->role = ops->role;
	while ((opt = getopt_long(argc, argv, "c:s:i:S", longopts, NULL)) !=
	    -1) {
		switch (opt) {
		case 'c':
			ctx->config_path = optarg;
			break;
		case 's':
			ctx->slot = parse_uint(optarg, prog);
			have_slot = 1;
			break;
		case 'i':
			ctx->instance = parse_uint(optarg, prog);
			have_inst = 1;
			break;
		case 'S':
			to_syslog = 1;
			break;
		case 'h':
			usage(prog, 0);
			break;
		case 'V':
			printf("%s %s\n", prog, RG_VERSION);
			return 0;
		default:
			usage(prog, 2);
		}
	}
	if (ctx->config_path == NULL || !have_slot || !have_inst)
		usage(prog, 2);
	snprintf(ident, sizeof(ident), "%s.%u", role_name(ctx->role),
	    ctx->instance);
	log_init(ident, to_syslog);

	/* Die with the supervisor: no stray children. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		fatalx("supervisor already gone");
	signal(SIGPIPE, SIG_IGN);

	ctx->cfg = config_load(ctx->config_path, CONFIG_NO_ENV, err,
	    sizeof(err));
	if (ctx->cfg == NULL)
		fatalx("%s", err);
	if (shm_attach(&ctx->shm, ctx->cfg->shm_name, 1, err, sizeof(err)))
		fatalx("%s", err);
	gen = __atomic_load_n(&ctx->shm.hdr->config_gen, __ATOMIC_ACQUIRE);
	ctx->self = shm_proc(&ctx->shm, ctx->slot);
	if (ctx->self == NULL || SHM_LOAD(&ctx->self->role) != ctx->role ||
	    SHM_LOAD(&ctx->self->instance) != ctx->instance)
		fatalx("process slot %u is not %s.%u", ctx->slot, ident,
		    ctx->instance);
	SHM_STORE(&ctx->self->pid, (int32_t)getpid());
	heartbeat(ctx);

	if (store_open(&ctx->store, ctx->cfg->state_dir,
		(uint64_t)ctx->cfg->store_map_size_mb << 20, 0,
		&ctx->self->counters.store, err, sizeof(err)) != STORE_OK)
		fatalx("%s", err);

	ctx->base = event_base_new();
	if (ctx->base == NULL)
		fatalx("cannot create the event loop");
	ev_term = evsignal_new(ctx->base, SIGTERM, on_signal, ctx);
	ev_int = evsignal_new(ctx->base, SIGINT, on_signal, ctx);
	ev_hup = evsignal_new(ctx->base, SIGHUP, on_signal, ctx);
	ev_tick = event_new(ctx->base, -1, EV_PERSIST, on_tick, ctx);
	ev_lag = event_new(ctx->base, -1, EV_PERSIST, on_lag_probe, &lag);
	if (!ev_term || !ev_int || !ev_hup || !ev_tick || !ev_lag ||
	    evsignal_add(ev_term, NULL) || evsignal_add(ev_int, NULL) ||
	    evsignal_add(ev_hup, NULL) || event_add(ev_tick, &one_s))
		fatalx("cannot set up signals and timers");

	ctx->link = link_open(ctx->base, ctx->cfg->run_dir, ctx->role,
	    ctx->instance, on_message, ctx, &ctx->self->counters.link);
	if (ctx->link == NULL)
		fatalx("cannot open the message inbox");

	if (ops->init != NULL && ops->init(ctx) != 0)
		fatalx("role initialisation failed");

	SHM_STORE(&ctx->self->config_gen, gen);
	SHM_STORE(&ctx->self->ready_at, now_ms());
	SHM_STORE(&ctx->self->ever_ready, 1);
	__atomic_store_n(&ctx->self->state, SHM_STATE_READY,
	    __ATOMIC_RELEASE);
	log_info("ready (pid %ld, config generation %llu)", (long)getpid(),
	    (unsigned long long)gen);

	/* the probe starts with the loop (start-up is not lag) */
	lag.due = mono_ms() + LAG_PROBE_MS;
	lag.window_end = lag.due + LAG_WINDOW_MS;
	if (event_add(ev_lag, &lag_period))
		fatalx("cannot set up the loop's lag probe");
	event_base_loop(ctx->base, EVLOOP_NO_EXIT_ON_EMPTY);

	log_info("stopping");
	if (ops->on_exit != NULL)
		ops->on_exit(ctx);
	commits_free(ctx);
	link_close(ctx->link);
	store_close(ctx->store);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_free(ev_tick);
	event_free(ev_lag);
	event_base_free(ctx->base);
	shm_detach(&ctx->shm);
	config_free(ctx->cfg);
	return 0;
}
