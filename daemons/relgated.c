/*
 * relgated - the supervisor.
 *
 * Owns: config load and validation, the shm segment, the LMDB environment's
 * creation, the pidfile, and the lifecycle of every child in RG_CHILDREN
 * (fork+exec, restart with backoff, reload, drain).  Never initialises
 * nng, libevent threads, an LMDB env that stays open, or a random
 * generator: it forks for its whole life, and children exec their own
 * binary so each starts clean.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf/config.h"
#include "daemons/skeleton.h"
#include "gate/alerts.h"
#include "gate/jwt.h"
#include "gate/routes.h"
#include "gate/tools.h"
#include "http/server.h"
#include "proto/link.h"
#include "shm/admission.h"
#include "shm/bulkhead.h"
#include "shm/circuit.h"
#include "shm/ratelimit.h"
#include "shm/requests.h"
#include "shm/shm.h"
#include "store/store.h"
#include "util/log.h"
#include "util/util.h"

#define DEFAULT_CONFIG RG_SYSCONFDIR "/relgate/relgate.json"
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define HEALTHY_RESET_MS 60000
#define TICK_MS 100

struct child {
	enum rg_role role;
	unsigned instance;
	unsigned slot;
	pid_t pid;
	uint64_t spawned_ms;  /* monotonic */
	uint64_t backoff_ms;  /* last delay used; 0 = none */
	struct event *restart;
};

static struct {
	const char *config_path;
	unsigned load_flags;
	int foreground;
	struct config *cfg;
	struct shm_seg shm;
	struct shm_proc *self;
	struct event_base *base;
	struct event *drain;
	char cwd[PATH_MAX]; /* at start: relative paths are taken from it */
	char libexec[PATH_MAX];
	char *effective;
	char *pidfile;
	int pidfd;
	int stopping;
	int notified_ready;
	uint64_t gen;
	/* listeners opened while still root, handed to the children that
	 * serve them (RG_LISTEN_FD); -1: the children open their own */
	int listen_fd[SHM_MAX_PROCS]; /* by ingress instance */
	unsigned nlisten;
	int admin_fd;
	struct child kids[SHM_MAX_PROCS];
	unsigned nkids;
} sv = { .pidfd = -1 };

/* sd_notify - systemd's notify protocol: one datagram, no library. */
static void
sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t n;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return;
	n = strlen(path);
	if (n >= sizeof(sa.sun_path))
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		(struct sockaddr *)&sa,
		(socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
		log_warn("sd_notify %s failed: %s", state, strerror(errno));
	close(fd);
}

static enum log_level
level_of(const char *name)
{
	if (strcmp(name, "error") == 0)
		return LOG_LVL_ERR;
	if (strcmp(name, "warn") == 0)
		return LOG_LVL_WARN;
	if (strcmp(name, "debug") == 0)
		return LOG_LVL_DEBUG;
	return LOG_LVL_INFO;
}

/* find_libexec - where the role binaries are when libexec_dir is empty:
 * relgated's own directory if they are there (a build tree), else the
 * installed one. */
static char *
find_libexec(void)
{
	char self[PATH_MAX], probe[PATH_MAX + 32];
	ssize_t n;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return xstrdup(RG_PKGLIBEXECDIR);
	self[n] = '\0';
	if (strrchr(self, '/') != NULL)
		*strrchr(self, '/') = '\0';
	snprintf(probe, sizeof(probe), "%s/%s", self,
	    role_binary(ROLE_INGRESS));
	return xstrdup(access(probe, X_OK) == 0 ? self : RG_PKGLIBEXECDIR);
}

/*
 * check_dsns - every Sentry DSN set parses as one (a URL alone is not
 * enough: the key and the project are in it); 0, else -1 + one line
 * naming the knob, never its value
 */
static int
check_dsns(const struct config *cfg, char *err, size_t errlen)
{
	const struct {
		const char *name, *value;
	} dsns[] = {
		{ "SENTRY_DSN", cfg->sentry_dsn },
		{ "TOOL_QUEUE_SENTRY_DSN", cfg->tool_queue_sentry_dsn },
		{ "RATE_LIMIT_SENTRY_DSN", cfg->rate_limit_sentry_dsn },
	};
	struct alert_dsn d;
	char why[120];
	size_t i;

	for (i = 0; i < sizeof(dsns) / sizeof(dsns[0]); i++) {
		if (dsns[i].value == NULL || dsns[i].value[0] == '\0')
			continue;
		if (alert_dsn_parse(dsns[i].value, &d, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "config: %s: value *** is not a "
			    "Sentry DSN (expected scheme://KEY@HOST[:PORT]/"
			    "PROJECT): %s", dsns[i].name, why);
			return -1;
		}
	}
	return 0;
}

/*
 * load_config - config_load plus the checks that need more than one knob
 * (the proxied routes, the tools, the JWT settings, the Sentry DSNs),
 * with the values relgated runs with filled in, so that children, relstat
 * and relctl all see them: relative paths taken from the directory
 * relgated started in, ingress.count 0 as the number of processes, an
 * empty libexec_dir as the directory found.  NULL + one line in err.
 */
static struct config *
load_config(char *err, size_t errlen)
{
	struct config *cfg = config_load(sv.config_path, sv.load_flags, err,
	    errlen);
	struct proxy_route *routes;
	struct tool_set tools;
	struct jwt_verifier *jwt;
	char why[400];
	size_t n;

	if (cfg == NULL)
		return NULL;
	if (cfg->libexec_dir[0] == '\0') {
		free(cfg->libexec_dir);
		cfg->libexec_dir = find_libexec();
	}
	if (config_resolve_paths(cfg, sv.cwd, err, errlen) != 0) {
		config_free(cfg);
		return NULL;
	}
	cfg->ingress_count = role_instances(cfg, ROLE_INGRESS);
	if (routes_parse(cfg->routes, &routes, &n, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "config: %s", why);
		config_free(cfg);
		return NULL;
	}
	free(routes);
	if (tools_parse(cfg, &tools, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "config: %s", why);
		config_free(cfg);
		return NULL;
	}
	tools_free(&tools);
	if (jwt_verifier_from_config(cfg, &jwt, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "config: auth.jwt: %s", why);
		config_free(cfg);
		return NULL;
	}
	jwt_verifier_free(jwt);
	if (check_dsns(cfg, err, errlen) != 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* publish_config - effective file for children + redacted shm copy. */
static int
publish_config(struct config *cfg, uint64_t gen)
{
	json_t *j;
	char *text;
	int rc;

	if (config_write_effective(cfg, sv.effective) != 0) {
		log_err("cannot write %s: %s", sv.effective, strerror(errno));
		return -1;
	}
	j = config_to_json(cfg, 1);
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (text == NULL)
		return -1;
	rc = shm_config_publish(&sv.shm, text, gen);
	/* the settings of every circuit and bulkhead, for relstat */
#define PROV_CONF(id, name, kthr, kcool, kmax, kttl)                      \
	cb_configure(&sv.shm, CB_PROV_##id, (uint32_t)cfg->kthr,          \
	    (uint32_t)cfg->kcool);                                        \
	bh_configure(&sv.shm, BH_PROV_##id, (uint32_t)cfg->kmax,          \
	    (uint32_t)cfg->kttl);
	RG_PROVIDERS(PROV_CONF)
#undef PROV_CONF
#define BH_CONF(id, name, kmax, kttl)                                     \
	bh_configure(&sv.shm, BH_PROV_##id, (uint32_t)cfg->kmax,          \
	    (uint32_t)cfg->kttl);
	BH_LOCAL(BH_CONF)
#undef BH_CONF
	if (rc != 0)
		log_err("config snapshot of %zu bytes does not fit in shm",
		    strlen(text));
	free(text);
	SHM_STORE(&sv.self->config_gen, gen);
	return rc;
}

/*
 * fit_open_files - every ingress process holds one descriptor per client
 * connection, http.max_connections of them, plus HTTPD_FD_RESERVE for
 * everything else.  At start the soft RLIMIT_NOFILE is raised to that
 * (never past the hard limit) before the children are forked: they
 * inherit it.  With check_only (relgated -t) nothing changes and the hard
 * limit is what a start could reach.  When the limit cannot hold them,
 * one line in buf says so and is returned (each ingress then lowers its
 * own limit to fit, see httpd_new); NULL when all fit.
 */
static const char *
fit_open_files(const struct config *cfg, int check_only, char *buf, size_t len)
{
	unsigned want = (unsigned)cfg->http_max_connections;
	uint64_t need = httpd_fd_need(want), lim;
	struct rlimit rl;
	int raise_failed = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return NULL;
	if (!check_only && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < need) {
		struct rlimit up = rl;

		up.rlim_cur =
		    rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need
		    ? rl.rlim_max
		    : need;
		if (up.rlim_cur > rl.rlim_cur &&
		    setrlimit(RLIMIT_NOFILE, &up) == 0) {
			log_info("open files limit raised from %llu to %llu "
			         "for http.max_connections %u",
			    (unsigned long long)rl.rlim_cur,
			    (unsigned long long)up.rlim_cur, want);
			rl = up;
		} else if (up.rlim_cur > rl.rlim_cur) {
			raise_failed = 1;
		}
	}
	lim = check_only ? rl.rlim_max : rl.rlim_cur;
	if (lim == RLIM_INFINITY || httpd_fd_room(lim) >= want)
		return NULL;
	snprintf(buf, len,
	    "http.max_connections %u needs %llu open files per ingress "
	    "process, but the %s limit is %llu (ulimit -%s): each ingress "
	    "process will take at most %u connections",
	    want, (unsigned long long)need, raise_failed ? "soft" : "hard",
	    (unsigned long long)lim,
	    raise_failed ? "Sn; raising it failed" : "Hn", httpd_fd_room(lim));
	return buf;
}

static const char *
kid_name(const struct child *k, char *buf, size_t len)
{
	snprintf(buf, len, "%s.%u", role_name(k->role), k->instance);
	return buf;
}

static void spawn(struct child *k);
static void close_listeners(void);
static void pass_listener(int fd, const char *var);

static void
on_restart(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	if (!sv.stopping)
		spawn(arg);
}

/* spawn - fork and exec one child into its slot. */
static void
spawn(struct child *k)
{
	struct shm_proc *p = shm_proc(&sv.shm, k->slot);
	char path[PATH_MAX + 32], slot[16], inst[16], name[48];
	char *argv[9];
	int argc = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", sv.libexec,
	    role_binary(k->role));
	snprintf(slot, sizeof(slot), "%u", k->slot);
	snprintf(inst, sizeof(inst), "%u", k->instance);
	argv[argc++] = path;
	argv[argc++] = "-c";
	argv[argc++] = sv.effective;
	argv[argc++] = "-s";
	argv[argc++] = slot;
	argv[argc++] = "-i";
	argv[argc++] = inst;
	if (!sv.foreground)
		argv[argc++] = "-S";
	argv[argc] = NULL;

	SHM_STORE(&p->ever_ready, 0);
	SHM_STORE(&p->ready_at, 0);
	SHM_STORE(&p->heartbeat_at, 0);
	SHM_STORE(&p->next_start_at, 0);
	SHM_STORE(&p->state, SHM_STATE_STARTING);
	SHM_STORE(&p->started_at, now_ms());
	pid = fork();
	if (pid < 0) {
		log_err("fork for %s: %s", kid_name(k, name, sizeof(name)),
		    strerror(errno));
		SHM_STORE(&p->state, SHM_STATE_DEAD);
		k->pid = 0;
		return;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (k->role == ROLE_INGRESS && k->instance < sv.nlisten)
			pass_listener(sv.listen_fd[k->instance],
			    ROLE_LISTEN_FD_ENV);
		else if (k->role == ROLE_MONITOR)
			pass_listener(sv.admin_fd, ROLE_ADMIN_FD_ENV);
		execv(path, argv);
		fprintf(stderr, "relgated: exec %s: %s\n", path,
		    strerror(errno));
		_exit(127);
	}
	k->pid = pid;
	k->spawned_ms = mono_ms();
	SHM_STORE(&p->pid, (int32_t)pid);
	log_info("started %s (pid %ld)", kid_name(k, name, sizeof(name)),
	    (long)pid);
}

static struct child *
kid_by_pid(pid_t pid)
{
	for (unsigned i = 0; i < sv.nkids; i++)
		if (sv.kids[i].pid == pid)
			return &sv.kids[i];
	return NULL;
}

static unsigned
kids_alive(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < sv.nkids; i++)
		n += sv.kids[i].pid > 0;
	return n;
}

/* obituary - one line per death, then the restart decision. */
static void
child_died(struct child *k, int status)
{
	struct shm_proc *p = shm_proc(&sv.shm, k->slot);
	int ever_ready = (int)SHM_LOAD(&p->ever_ready);
	uint64_t ready_at = SHM_LOAD(&p->ready_at);
	uint64_t lived = mono_ms() - k->spawned_ms;
	char name[48], how[64], *s;
	long pid = (long)k->pid;
	uint64_t delay;

	shm_exit_str(status, how, sizeof(how));
	kid_name(k, name, sizeof(name));
	k->pid = 0;
	{
		unsigned n = bh_reclaim_pid(&sv.shm, (pid_t)pid);

		if (n > 0)
			log_info("%s (pid %ld): %u bulkhead leases reclaimed",
			    name, pid, n);
	}
	SHM_STORE(&p->last_exit, (int32_t)status);
	SHM_STORE(&p->pid, 0);
	SHM_INC(&sv.self->counters.child_deaths);
	if (sv.stopping) {
		SHM_STORE(&p->state, SHM_STATE_DEAD);
		log_info("%s (pid %ld) stopped: %s", name, pid, how);
		return;
	}
	/* 100 ms doubling to 30 s; reset once it ran healthy for 60 s. */
	if (ever_ready && ready_at && now_ms() - ready_at >= HEALTHY_RESET_MS)
		k->backoff_ms = 0;
	delay = k->backoff_ms ? k->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (delay > BACKOFF_MAX_MS)
		delay = BACKOFF_MAX_MS;
	k->backoff_ms = delay;
	SHM_STORE(&p->backoff_ms, delay);
	SHM_STORE(&p->next_start_at, now_ms() + delay);
	SHM_STORE(&p->state, SHM_STATE_BACKOFF);
	s = ever_ready ? "" : ", never ready: throttled";
	if (!ever_ready)
		SHM_INC(&sv.self->counters.throttled);
	log_warn("obituary: %s (pid %ld) died: %s after %llu ms%s; restart "
		 "in %llu ms",
	    name, pid, how,
	    (unsigned long long)lived, s, (unsigned long long)delay);
	{
		struct timeval tv = { (time_t)(delay / 1000),
			(suseconds_t)(delay % 1000) * 1000 };
		event_add(k->restart, &tv);
	}
}

static void
reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *k = kid_by_pid(pid);

		if (k == NULL)
			continue;
		if (!sv.stopping) {
			SHM_INC(&sv.self->counters.child_restarts);
			SHM_INC(&shm_proc(&sv.shm, k->slot)->restarts);
		}
		child_died(k, status);
	}
	if (sv.stopping && kids_alive() == 0)
		event_base_loopbreak(sv.base);
}

static void
warn_restart_knob(const char *key)
{
	log_warn("reload: %s changed; it takes effect at the next start",
	    key);
}

/* reload - SIGHUP: validate, then publish and tell the children. */
static void
reload(void)
{
	char err[512];
	struct config *next;

	log_info("reloading %s", sv.config_path ? sv.config_path : "(none)");
	sd_notify("RELOADING=1");
	next = load_config(err, sizeof(err));
	if (next == NULL) {
		SHM_INC(&sv.self->counters.reloads_failed);
		log_err("reload refused, keeping generation %llu: %s",
		    (unsigned long long)sv.gen, err);
		sd_notify("READY=1");
		return;
	}
	config_keep_restart_knobs(next, sv.cfg, warn_restart_knob);
	if (publish_config(next, sv.gen + 1) != 0) {
		SHM_INC(&sv.self->counters.reloads_failed);
		log_err("reload refused: cannot publish; keeping generation "
			"%llu",
		    (unsigned long long)sv.gen);
		config_free(next);
		publish_config(sv.cfg, sv.gen);
		sd_notify("READY=1");
		return;
	}
	config_free(sv.cfg);
	sv.cfg = next;
	sv.gen++;
	log_set_level(level_of(sv.cfg->log_level));
	SHM_INC(&sv.self->counters.reloads_ok);
	for (unsigned i = 0; i < sv.nkids; i++)
		if (sv.kids[i].pid > 0)
			kill(sv.kids[i].pid, SIGHUP);
	log_info("config generation %llu published", (unsigned long long)sv.gen);
	sd_notify("READY=1");
}

static void
on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	char name[48];

	(void)fd;
	(void)what;
	(void)arg;
	for (unsigned i = 0; i < sv.nkids; i++) {
		struct child *k = &sv.kids[i];

		if (k->pid <= 0)
			continue;
		log_warn("%s (pid %ld) did not stop in time: SIGKILL",
		    kid_name(k, name, sizeof(name)), (long)k->pid);
		kill(k->pid, SIGKILL);
	}
}

static void
stop(int sig)
{
	struct timeval tv;
	uint64_t ms = (uint64_t)sv.cfg->supervisor_drain_timeout_ms;

	if (sv.stopping)
		return;
	sv.stopping = 1;
	close_listeners();
	sd_notify("STOPPING=1");
	log_info("%s: stopping %u children (drain timeout %llu ms)",
	    sigabbrev_np(sig), kids_alive(), (unsigned long long)ms);
	SHM_STORE(&sv.self->state, SHM_STATE_STOPPING);
	for (unsigned i = 0; i < sv.nkids; i++) {
		struct child *k = &sv.kids[i];

		event_del(k->restart);
		if (k->pid > 0) {
			SHM_STORE(&shm_proc(&sv.shm, k->slot)->state,
			    SHM_STATE_STOPPING);
			kill(k->pid, SIGTERM);
		} else {
			SHM_STORE(&shm_proc(&sv.shm, k->slot)->state,
			    SHM_STATE_DEAD);
		}
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(sv.drain, &tv);
	if (kids_alive() == 0)
		event_base_loopbreak(sv.base);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	switch (sig) {
	case SIGCHLD:
		reap();
		break;
	case SIGHUP:
		if (!sv.stopping)
			reload();
		break;
	default:
		stop((int)sig);
		break;
	}
}

/* on_tick - readiness, start timeouts, stale heartbeats, backoff reset. */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = now_ms(), mono = mono_ms();
	unsigned ready = 0;
	char name[48];

	(void)fd;
	(void)what;
	(void)arg;
	SHM_STORE(&sv.self->heartbeat_at, now);
	if (sv.stopping)
		return;
	for (unsigned i = 0; i < sv.nkids; i++) {
		struct child *k = &sv.kids[i];
		struct shm_proc *p = shm_proc(&sv.shm, k->slot);
		uint32_t st = __atomic_load_n(&p->state, __ATOMIC_ACQUIRE);
		uint64_t hb = SHM_LOAD(&p->heartbeat_at);

		if (k->pid <= 0)
			continue;
		if (st == SHM_STATE_READY) {
			ready++;
			if (k->backoff_ms &&
			    now - SHM_LOAD(&p->ready_at) >= HEALTHY_RESET_MS) {
				k->backoff_ms = 0;
				SHM_STORE(&p->backoff_ms, 0);
			}
			if (hb && now > hb &&
			    now - hb > (uint64_t)sv.cfg
					   ->supervisor_heartbeat_timeout_ms) {
				log_err("%s (pid %ld) heartbeat is %llu ms "
					"old: SIGKILL",
				    kid_name(k, name, sizeof(name)),
				    (long)k->pid,
				    (unsigned long long)(now - hb));
				SHM_INC(&sv.self->counters.heartbeat_kills);
				kill(k->pid, SIGKILL);
			}
		} else if (st == SHM_STATE_STARTING &&
		    mono - k->spawned_ms >
			(uint64_t)sv.cfg->supervisor_start_timeout_ms) {
			log_err("%s (pid %ld) not ready after %lld ms: SIGKILL",
			    kid_name(k, name, sizeof(name)), (long)k->pid,
			    (long long)sv.cfg->supervisor_start_timeout_ms);
			SHM_INC(&sv.self->counters.start_timeouts);
			kill(k->pid, SIGKILL);
		}
	}
	if (!sv.notified_ready && ready == sv.nkids) {
		sv.notified_ready = 1;
		log_info("all %u children ready", sv.nkids);
		sd_notify("READY=1");
	}
}

static void
take_pidfile(void)
{
	char buf[32];
	int n;

	sv.pidfile = xasprintf("%s/relgated.pid", sv.cfg->run_dir);
	sv.pidfd = open(sv.pidfile, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (sv.pidfd < 0)
		fatal("cannot open pidfile %s", sv.pidfile);
	if (flock(sv.pidfd, LOCK_EX | LOCK_NB) != 0) {
		n = (int)pread(sv.pidfd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		fatalx("another relgated is running with run_dir %s (pid %s)",
		    sv.cfg->run_dir, buf);
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(sv.pidfd, 0) != 0 || pwrite(sv.pidfd, buf, (size_t)n, 0)
	    != n)
		fatal("cannot write pidfile %s", sv.pidfile);
}

/* The user the supervisor and its children run as. */
struct runas {
	int drop; /* started as root: switch to uid/gid */
	uid_t uid;
	gid_t gid;
	char name[64];
};

/*
 * resolve_runas - who relgated runs as.  Started as root: the setting
 * user (empty: the system user relgate, which must then exist; "root"
 * only when set so explicitly), group from the setting or the user's
 * own.  Started as anyone else: that user; a setting naming somebody else
 * is an error.  Returns 0, or -1 with one line in err.
 */
static int
resolve_runas(const struct config *c, struct runas *ra, char *err,
    size_t len)
{
	const char *name = c->user[0] != '\0' ? c->user : "relgate";
	struct passwd *pw;
	struct group *gr;

	memset(ra, 0, sizeof(*ra));
	if (geteuid() != 0) {
		pw = getpwuid(geteuid());
		if (c->user[0] != '\0' &&
		    (pw == NULL || strcmp(pw->pw_name, c->user) != 0)) {
			snprintf(err, len,
			    "config: user: \"%s\": only root can switch "
			    "users; relgated runs as the user that starts it "
			    "(%s)",
			    c->user, pw != NULL ? pw->pw_name : "?");
			return -1;
		}
		if (c->group[0] != '\0') {
			gr = getgrnam(c->group);
			if (gr == NULL || gr->gr_gid != getegid()) {
				snprintf(err, len,
				    "config: group: \"%s\": only root can "
				    "switch groups",
				    c->group);
				return -1;
			}
		}
		return 0;
	}
	pw = getpwnam(name);
	if (pw == NULL) {
		if (c->user[0] == '\0')
			snprintf(err, len,
			    "started as root, and there is no user relgate "
			    "to run as: create it (adduser --system --group "
			    "relgate) or set user in the configuration");
		else
			snprintf(err, len, "config: user: no such user \"%s\"",
			    name);
		return -1;
	}
	ra->uid = pw->pw_uid;
	ra->gid = pw->pw_gid;
	if (c->group[0] != '\0') {
		gr = getgrnam(c->group);
		if (gr == NULL) {
			snprintf(err, len,
			    "config: group: no such group \"%s\"", c->group);
			return -1;
		}
		ra->gid = gr->gr_gid;
	}
	strlcpy_rg(ra->name, pw->pw_name, sizeof(ra->name));
	ra->drop = ra->uid != 0 || ra->gid != 0;
	return 0;
}

/* chown_tree1 - dir and the entries directly in it (the LMDB files) to
 * the user, so that a state directory made by root stays usable. */
static void
chown_tree1(const char *dir, const struct runas *ra)
{
	DIR *d;
	struct dirent *e;

	if (chown(dir, ra->uid, ra->gid) != 0)
		fatal("cannot give %s to user %s", dir, ra->name);
	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fchownat(dirfd(d), e->d_name, ra->uid, ra->gid,
			AT_SYMLINK_NOFOLLOW) != 0)
			fatal("cannot give %s/%s to user %s", dir, e->d_name,
			    ra->name);
	}
	closedir(d);
}

/* drop_privileges - from root to ra, for good. */
static void
drop_privileges(const struct runas *ra)
{
	if (initgroups(ra->name, ra->gid) != 0 || setgid(ra->gid) != 0 ||
	    setuid(ra->uid) != 0)
		fatal("cannot switch to user %s", ra->name);
	if (ra->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		fatalx("could regain root after switching to user %s",
		    ra->name);
	log_info("running as user %s (uid %u, gid %u)", ra->name,
	    (unsigned)ra->uid, (unsigned)ra->gid);
}

/* open_listeners - before leaving root: one SO_REUSEPORT listener per
 * ingress process and the admin listener, so that ports below 1024
 * work; each child gets its own when it starts (and again after a
 * restart: connections that came meanwhile wait in its queue). */
static void
open_listeners(const struct config *c)
{
	char err[256];

	for (unsigned i = 0; i < (unsigned)c->ingress_count; i++) {
		sv.listen_fd[i] = httpd_listen(c->http_listen, 1, err,
		    sizeof(err));
		if (sv.listen_fd[i] < 0)
			fatalx("http.listen %s: %s", c->http_listen, err);
		sv.nlisten++;
	}
	sv.admin_fd = httpd_listen(c->admin_listen, 0, err, sizeof(err));
	if (sv.admin_fd < 0)
		fatalx("admin.listen %s: %s", c->admin_listen, err);
}

/* close_listeners - at stop: new connections are refused by the kernel
 * instead of waiting in queues nobody reads any more. */
static void
close_listeners(void)
{
	for (unsigned i = 0; i < sv.nlisten; i++)
		close(sv.listen_fd[i]);
	sv.nlisten = 0;
	if (sv.admin_fd >= 0)
		close(sv.admin_fd);
	sv.admin_fd = -1;
}

/* pass_listener - in the child, before exec: fd survives the exec (the
 * others are close-on-exec) and its number goes in the environment. */
static void
pass_listener(int fd, const char *var)
{
	char num[16];

	if (fd < 0 || fcntl(fd, F_SETFD, 0) != 0)
		return;
	snprintf(num, sizeof(num), "%d", fd);
	setenv(var, num, 1);
}

static void
daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	setsid();
	pid = fork();
	if (pid < 0)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if (chdir("/") != 0)
		fatal("chdir /");
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}

/* plan_children - lay out the process table: slot 0 is relgated. */
static void
plan_children(void)
{
	unsigned slot = 1;

	for (unsigned r = 0; r < ROLE_COUNT; r++) {
		unsigned n = role_instances(sv.cfg, r);

		for (unsigned i = 0; i < n; i++) {
			struct child *k = &sv.kids[sv.nkids++];
			struct shm_proc *p = shm_proc(&sv.shm, slot);

			if (slot >= shm_proc_count(&sv.shm))
				fatalx("too many children for the process "
				       "table (%u)",
				    shm_proc_count(&sv.shm));
			k->role = r;
			k->instance = i;
			k->slot = slot++;
			k->restart = evtimer_new(sv.base, on_restart, k);
			p->role = r;
			p->instance = i;
			p->last_exit = -1;
			p->state = SHM_STATE_STARTING;
		}
	}
}

static void
check_binaries(void)
{
	for (unsigned r = 0; r < ROLE_COUNT; r++) {
		char path[PATH_MAX + 32];

		if (role_instances(sv.cfg, r) == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", sv.libexec,
		    role_binary(r));
		if (access(path, X_OK) != 0)
			fatal("role binary %s", path);
	}
}

static void
cleanup(void)
{
	for (unsigned i = 0; i < sv.nkids; i++) {
		const struct child *k = &sv.kids[i];
		char addr[256];

		if (link_addr(addr, sizeof(addr), sv.cfg->run_dir, k->role,
			k->instance) == 0 &&
		    strncmp(addr, "ipc://", 6) == 0)
			unlink(addr + 6);
		event_free(sv.kids[i].restart);
	}
	shm_detach(&sv.shm);
	shm_remove(sv.cfg->shm_name);
	unlink(sv.effective);
	unlink(sv.pidfile);
	close(sv.pidfd);
}

static void
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: relgated [-f] [-c FILE] [-t] [--help-config[=markdown]]\n"
	    "  -f             stay in the foreground, log to stderr\n"
	    "  -c FILE        configuration file (default %s)\n"
	    "  -t             check the configuration and exit\n"
	    "  --help-config  list every setting, its environment name, "
	    "default and range\n"
	    "  --help         this text\n"
	    "  --version      print the version\n",
	    DEFAULT_CONFIG);
	exit(code);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help-config", optional_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct event *ev[4], *tick;
	static const int sigs[4] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	struct timeval tv = { 0, TICK_MS * 1000 };
	int opt, test_only = 0;
	char err[512], fds_msg[512];
	const char *fds;
	struct runas runas;

	log_init("relgated", 0);
	sv.admin_fd = -1; /* no listener opened for the children (yet) */
	sv.load_flags = CONFIG_FILE_OPTIONAL;
	while ((opt = getopt_long(argc, argv, "fc:th", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			sv.foreground = 1;
			break;
		case 'c':
			sv.config_path = optarg;
			sv.load_flags = 0;
			break;
		case 't':
			test_only = 1;
			break;
		case 'H':
			config_help(stdout,
			    optarg && strcmp(optarg, "markdown") == 0);
			return 0;
		case 'h':
			usage(0);
			break;
		case 'V':
			printf("relgated %s\n", RG_VERSION);
			return 0;
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (getcwd(sv.cwd, sizeof(sv.cwd)) == NULL)
		fatal("getcwd");
	if (sv.config_path == NULL)
		sv.config_path = DEFAULT_CONFIG;
	else
		sv.config_path = path_absolute(sv.cwd, sv.config_path);

	sv.cfg = load_config(err, sizeof(err));
	if (test_only) {
		if (sv.cfg == NULL) {
			fprintf(stderr, "relgated: %s\n", err);
			return 1;
		}
		/* a user or group set explicitly must exist (and be
		 * reachable from the user running this) */
		if ((sv.cfg->user[0] != '\0' || sv.cfg->group[0] != '\0') &&
		    resolve_runas(sv.cfg, &runas, err, sizeof(err)) != 0) {
			fprintf(stderr, "relgated: %s\n", err);
			return 1;
		}
		fds = fit_open_files(sv.cfg, 1, err, sizeof(err));
		if (fds != NULL)
			fprintf(stderr, "relgated: warning: %s\n", fds);
		printf("relgated: configuration %s is ok\n", sv.config_path);
		return 0;
	}
	if (sv.cfg == NULL)
		fatalx("%s", err);
	log_set_level(level_of(sv.cfg->log_level));
	if (!shm_name_valid(sv.cfg->shm_name))
		fatalx("config: shm.name: \"%s\" must look like /name",
		    sv.cfg->shm_name);
	strlcpy_rg(sv.libexec, sv.cfg->libexec_dir, sizeof(sv.libexec));
	check_binaries();
	if (resolve_runas(sv.cfg, &runas, err, sizeof(err)) != 0)
		fatalx("%s", err);
	/* while still root: the open-files limit may need raising */
	fds = fit_open_files(sv.cfg, 0, fds_msg, sizeof(fds_msg));

	if (!sv.foreground) {
		daemonize();
		log_init("relgated", 1);
	}
	umask(027);
	if (mkdir_p(sv.cfg->run_dir, 0750) != 0)
		fatal("cannot create run_dir %s", sv.cfg->run_dir);
	if (mkdir_p(sv.cfg->state_dir, 0750) != 0)
		fatal("cannot create state_dir %s", sv.cfg->state_dir);
	if (runas.drop) {
		/* the listeners first, while root: ports below 1024 */
		open_listeners(sv.cfg);
		/* everything from here on belongs to the user: the pidfile,
		 * the LMDB files, the segment (group-readable: relstat for
		 * members of the group) */
		chown_tree1(sv.cfg->run_dir, &runas);
		chown_tree1(sv.cfg->state_dir, &runas);
		drop_privileges(&runas);
	}
	take_pidfile();
	sv.effective = xasprintf("%s/effective.json", sv.cfg->run_dir);

	{
		struct store *st;

		if (store_open(&st, sv.cfg->state_dir,
			(uint64_t)sv.cfg->store_map_size_mb << 20,
			STORE_CREATE, NULL, err, sizeof(err)) != STORE_OK)
			fatalx("%s", err);
		store_close(st); /* an MDB_env must not cross fork() */
	}
	{
		struct shm_sizes sizes = {
			.ratelimit_slots = (uint32_t)sv.cfg->ratelimit_table_slots,
		};

		if (shm_create(&sv.shm, sv.cfg->shm_name, &sizes, err,
			sizeof(err)) != 0)
			fatalx("%s", err);
		rl_area_init(&sv.shm);
		cb_area_init(&sv.shm);
		bh_area_init(&sv.shm);
		adm_area_init(&sv.shm);
		oc_area_init(&sv.shm);
	}
	sv.self = shm_proc(&sv.shm, 0);
	sv.self->role = ROLE_SUPERVISOR;
	sv.self->instance = 0;
	sv.self->pid = getpid();
	sv.self->last_exit = -1;
	sv.self->started_at = now_ms();
	sv.self->heartbeat_at = now_ms();
	sv.self->ever_ready = 1;
	sv.self->ready_at = now_ms();
	sv.self->state = SHM_STATE_READY;
	sv.gen = 1;
	if (publish_config(sv.cfg, sv.gen) != 0) {
		shm_remove(sv.cfg->shm_name);
		fatalx("cannot publish the configuration");
	}

	sv.base = event_base_new();
	if (sv.base == NULL)
		fatalx("cannot create the event loop");
	for (int i = 0; i < 4; i++) {
		ev[i] = evsignal_new(sv.base, sigs[i], on_signal, NULL);
		if (ev[i] == NULL || evsignal_add(ev[i], NULL) != 0)
			fatalx("cannot catch signal %d", sigs[i]);
	}
	signal(SIGPIPE, SIG_IGN);
	tick = event_new(sv.base, -1, EV_PERSIST, on_tick, NULL);
	sv.drain = evtimer_new(sv.base, on_drain_timeout, NULL);
	if (tick == NULL || sv.drain == NULL || event_add(tick, &tv) != 0)
		fatalx("cannot set up timers");
	plan_children();
	if (fds != NULL)
		log_warn("%s", fds);
	shm_publish_ready(&sv.shm);
	log_info("relgated %s starting %u children (shm %s, state %s, run %s)",
	    RG_VERSION, sv.nkids, sv.cfg->shm_name, sv.cfg->state_dir,
	    sv.cfg->run_dir);
	for (unsigned i = 0; i < sv.nkids; i++)
		spawn(&sv.kids[i]);

	event_base_loop(sv.base, EVLOOP_NO_EXIT_ON_EMPTY);

	reap();
	log_info("all children stopped; removing %s and %s",
	    sv.cfg->shm_name, sv.cfg->run_dir);
	cleanup();
	for (int i = 0; i < 4; i++)
		event_free(ev[i]);
	event_free(tick);
	event_free(sv.drain);
	event_base_free(sv.base);
	config_free(sv.cfg);
	free(sv.effective);
	free(sv.pidfile);
	return 0;
}
