/*
 * relctl - operator commands for a running relgate.
 *   relctl [-c FILE] [-n SHM_NAME] [--json] COMMAND ...
 * It finds the relgated to talk to by its shm segment (-n, else shm.name
 * of the configuration) and reads the run and state directories from the
 * effective configuration published there; without a segment, those of
 * the configuration (file and environment) stand, relative ones taken
 * from the current directory.  Commands:
 *   ping    ask every process to ping every peer on its nng links and
 *           print each link's result; exit 0 only if all answered
 *   reload  SIGHUP the supervisor (validate, publish, tell the children)
 *   idempotency recent --scope S   replay-protection keys of a scope with
 *           first/last seen and hit counts (newest first)
 *   deliveries list                 the delivery rows waiting in the queue
 *   deliveries dead-letters         the rows that ran out of attempts
 *   deliveries requeue ID           a dead letter back to the queue
 *   circuit list                    every circuit's state and counters
 *   bulkhead inflight [--provider P]  the live leases of a bulkhead
 *   cache stats [--namespace NS]    the tool cache's rows per namespace
 *   cache clear --namespace NS      remove a namespace's rows
 *   jobs stats|dead-letters [--limit N]  the tool-job queue
 *   jobs requeue ID                 a tool job's dead letter back to the queue
 *   drain   SIGTERM the supervisor and wait until relgated has stopped
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "conf/config.h"
#include "gate/b64.h"
#include "gate/crypto.h"
#include "gate/delivq.h"
#include "gate/replay.h"
#include "gate/jobq.h"
#include "gate/toolcache.h"
#include "store/store.h"
#include "proto/link.h"
#include "gate/alerts.h"
#include "gate/events.h"
#include "shm/shm.h"
#include "shm/snapshot.h"
#include "util/log.h"
#include "util/util.h"

#define DEFAULT_CONFIG RG_SYSCONFDIR "/relgate/relgate.json"
#define PING_DEADLINE_MS 3000

struct target {
	uint8_t role, instance;
	int done;
};

static struct {
	struct config *cfg;
	const char *shm_name;
	int live;          /* directories from a running relgated's segment */
	pid_t supervisor;  /* its pid, from the segment header */
	char shm_err[512]; /* why there is no segment */
	int json;
	struct event_base *base;
	struct link_ctx *link;
	uint64_t nonce;
	struct target targets[SHM_MAX_PROCS];
	unsigned ntargets, ndone;
	unsigned links_ok, links_failed;
	json_t *out;
} rc;

static void print_json(json_t *o);

static void
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: relctl [-c FILE] [-n SHM_NAME] [--json] COMMAND\n"
	    "  -c FILE      configuration (default %s)\n"
	    "  -n SHM_NAME  segment of the relgated to talk to (default: "
	    "shm.name\n"
	    "               of the configuration, /relgate)\n"
	    "  --json       print JSON\n"
	    "  --help, --version\n"
	    "The run and state directories are those of the relgated "
	    "running on the\n"
	    "segment; without one, those of the configuration.\n"
	    "commands:\n"
	    "  ping     ping every nng link of every process\n"
	    "  reload   validate and apply the configuration (SIGHUP)\n"
	    "  idempotency recent --scope S [--limit N]\n"
	    "  deliveries list|dead-letters [--limit N]\n"
	    "  deliveries requeue ID\n"
	    "  ratelimit summary [--window-min N]\n"
	    "           stored rate-limit and admission events of the last N\n"
	    "           minutes (default 60) by source:bucket:outcome[:reason]\n"
	    "  ratelimit events [--limit N]\n"
	    "           the newest stored events\n"
	    "  ratelimit alerts [--limit N]\n"
	    "           the newest rate-limit alerts and whether Sentry took "
	    "them\n"
	    "  alerts list [--kind K] [--limit N]\n"
	    "           the newest alerts of every rule (or of kind K:\n"
	    "           ratelimit, queue, bulkhead, crashloop, store)\n"
	    "  circuit list [--limit N]\n"
	    "           every circuit: state, failures, threshold, cooldown,\n"
	    "           counters\n"
	    "  bulkhead inflight [--provider P] [--limit N]\n"
	    "           every bulkhead's use; with --provider, its live leases\n"
	    "           (owner process, age, expiry), newest first\n"
	    "  cache stats [--namespace NS]\n"
	    "           the tool cache's live entries and bytes per namespace\n"
	    "  cache clear --namespace NS\n"
	    "           remove every entry of namespace NS (e.g. search_web_v1)\n"
	    "  jobs stats\n"
	    "           tool jobs queued, running and dead, per tool and class;\n"
	    "           the oldest queued and running\n"
	    "  jobs dead-letters [--limit N], jobs requeue ID\n"
	    "           the tool jobs that ran out of attempts; one back to the\n"
	    "           queue (its attempts start again)\n"
	    "  drain [--no-wait]\n"
	    "           stop relgated as SIGTERM does: no new connections,\n"
	    "           accepted webhooks committed and answered, open chat\n"
	    "           streams closed with an error event, processes killed\n"
	    "           after supervisor.drain_timeout_ms; waits until it exited\n"
	    "  jwt mint --sub SUB [--ttl SECONDS]\n"
	    "           an HS256 bearer token signed with auth.jwt.secret (from\n"
	    "           the configuration or RELGATE_AUTH_JWT_SECRET), with the\n"
	    "           running relgated's issuer and audience\n",
	    DEFAULT_CONFIG);
	exit(code);
}

/* set_str - *dst = the string v, if it is one. */
static void
set_str(char **dst, const json_t *v)
{
	if (!json_is_string(v))
		return;
	free(*dst);
	*dst = xstrdup(json_string_value(v));
}

/*
 * locate - the run and state directories of the relgated that owns the
 * segment rc.shm_name, from the effective configuration it published
 * there.  Without a segment the configuration's stand, relative ones
 * taken from the current directory.
 */
static void
locate(void)
{
	struct shm_seg seg;
	char cwd[PATH_MAX], *text;
	json_t *j, *v;

	if (shm_attach(&seg, rc.shm_name, 0, rc.shm_err,
		sizeof(rc.shm_err)) != 0) {
		if (getcwd(cwd, sizeof(cwd)) != NULL)
			config_resolve_paths(rc.cfg, cwd, NULL, 0);
		return;
	}
	rc.supervisor = seg.hdr->supervisor_pid;
	text = xmalloc(SHM_CONFIG_MAX + 1);
	if (shm_config_read(&seg, text, SHM_CONFIG_MAX + 1, NULL) == 0 &&
	    (j = json_loads(text, 0, NULL)) != NULL) {
		set_str(&rc.cfg->run_dir, json_object_get(j, "run_dir"));
		set_str(&rc.cfg->state_dir, json_object_get(j, "state_dir"));
		v = json_object_get(json_object_get(j, "auth"), "jwt");
		set_str(&rc.cfg->auth_jwt_issuer, json_object_get(v, "issuer"));
		set_str(&rc.cfg->auth_jwt_audience,
		    json_object_get(v, "audience"));
		v = json_object_get(json_object_get(j, "store"),
		    "map_size_mb");
		if (json_is_integer(v))
			rc.cfg->store_map_size_mb = json_integer_value(v);
		v = json_object_get(json_object_get(j, "supervisor"),
		    "drain_timeout_ms");
		if (json_is_integer(v))
			rc.cfg->supervisor_drain_timeout_ms =
			    json_integer_value(v);
		rc.live = 1;
		json_decref(j);
	} else {
		snprintf(rc.shm_err, sizeof(rc.shm_err),
		    "segment %s has no configuration yet", rc.shm_name);
	}
	free(text);
	shm_detach(&seg);
}

/* not_running - the one line for "no relgated on this segment". */
static int
not_running(void)
{
	fprintf(stderr,
	    "relctl: %s (is relgated running? -n SHM_NAME names its "
	    "segment)\n",
	    rc.shm_err);
	return 2;
}

/* why_silent - one line on why a process did not answer: can its inbox
 * socket be reached at all? */
static void
why_silent(const struct target *t)
{
	struct sockaddr_un sa;
	char addr[LINK_ADDR_MAX], why[128];
	int fd, rv = -1;

	if (link_addr(addr, sizeof(addr), rc.cfg->run_dir, t->role,
		t->instance) != 0 ||
	    strncmp(addr, "ipc://", 6) != 0 ||
	    strlen(addr + 6) >= sizeof(sa.sun_path)) {
		fprintf(stderr,
		    "relctl: no inbox address for %s.%u under %s\n",
		    role_name(t->role), t->instance, rc.cfg->run_dir);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strlcpy_rg(sa.sun_path, addr + 6, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		rv = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		snprintf(why, sizeof(why), "%s", strerror(errno));
		close(fd);
	} else {
		snprintf(why, sizeof(why), "%s", strerror(errno));
	}
	if (rv == 0) {
		fprintf(stderr, "relctl: %s.%u at %s did not answer within "
				"%d ms\n",
		    role_name(t->role), t->instance, addr, PING_DEADLINE_MS);
		return;
	}
	if (why[0] >= 'A' && why[0] <= 'Z')
		why[0] = (char)(why[0] - 'A' + 'a');
	fprintf(stderr,
	    "relctl: cannot reach %s.%u at %s: %s (is relgated running "
	    "with shm %s?)\n",
	    role_name(t->role), t->instance, addr, why, rc.shm_name);
}

static void
on_report(void *arg, const struct proto_msg *m)
{
	const struct proto_ping_report *r = &m->u.ping_report;

	(void)arg;
	if (m->type != PROTO_T_PING_REPORT || r->nonce != rc.nonce)
		return;
	if (r->last) {
		for (unsigned i = 0; i < rc.ntargets; i++) {
			struct target *t = &rc.targets[i];

			if (t->role == m->src_role &&
			    t->instance == m->src_instance && !t->done) {
				t->done = 1;
				rc.ndone++;
			}
		}
		if (rc.ndone == rc.ntargets)
			event_base_loopbreak(rc.base);
		return;
	}
	if (r->ok)
		rc.links_ok++;
	else
		rc.links_failed++;
	if (rc.json) {
		json_t *o = json_object();

		json_object_set_new(o, "from", json_sprintf("%s.%u",
		    role_name(m->src_role), m->src_instance));
		json_object_set_new(o, "to", json_sprintf("%s.%u",
		    role_name(r->peer_role), r->peer_instance));
		json_object_set_new(o, "ok", json_boolean(r->ok));
		json_object_set_new(o, "rttUs", r->ok ?
		    json_integer(r->rtt_us) : json_null());
		json_array_append_new(rc.out, o);
	} else {
		char from[32], to[32];

		snprintf(from, sizeof(from), "%s.%u", role_name(m->src_role),
		    m->src_instance);
		snprintf(to, sizeof(to), "%s.%u", role_name(r->peer_role),
		    r->peer_instance);
		if (r->ok)
			printf("%-16s -> %-16s ok %u us\n", from, to,
			    r->rtt_us);
		else
			printf("%-16s -> %-16s NO ANSWER\n", from, to);
	}
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(rc.base);
}

static int
cmd_ping(void)
{
	struct shm_seg seg;
	struct link_stats stats;
	struct timeval tv = { PING_DEADLINE_MS / 1000,
		(PING_DEADLINE_MS % 1000) * 1000 };
	struct event *deadline;
	char err[512];
	int status = 0;

	if (!rc.live)
		return not_running();
	if (shm_attach(&seg, rc.shm_name, 0, err, sizeof(err)) != 0) {
		fprintf(stderr, "relctl: %s\n", err);
		return 2;
	}
	for (unsigned s = 1; s < shm_proc_count(&seg); s++) {
		const struct shm_proc *p = shm_proc(&seg, s);

		if (SHM_LOAD(&p->state) == SHM_STATE_UNUSED)
			continue;
		rc.targets[rc.ntargets++] = (struct target){
			.role = (uint8_t)p->role,
			.instance = (uint8_t)p->instance
		};
	}
	shm_detach(&seg);
	memset(&stats, 0, sizeof(stats));
	rc.base = event_base_new();
	rc.link = link_open(rc.base, rc.cfg->run_dir, ROLE_CLIENT,
	    (unsigned)getpid(), on_report, NULL, &stats);
	if (rc.base == NULL || rc.link == NULL) {
		fprintf(stderr, "relctl: cannot open an inbox in %s (run "
				"relctl as the user relgated runs as)\n",
		    rc.cfg->run_dir);
		return 2;
	}
	rc.nonce = ((uint64_t)getpid() << 32) ^ mono_us();
	rc.out = json_array();
	for (unsigned i = 0; i < rc.ntargets; i++) {
		struct proto_msg m;

		memset(&m, 0, sizeof(m));
		m.type = PROTO_T_PING_REQ;
		m.u.ping_req.nonce = rc.nonce;
		m.u.ping_req.reply_to = proto_str_from(link_my_addr(rc.link));
		link_send(rc.link, rc.targets[i].role, rc.targets[i].instance,
		    &m);
	}
	deadline = evtimer_new(rc.base, on_deadline, NULL);
	evtimer_add(deadline, &tv);
	if (rc.ntargets > 0)
		event_base_loop(rc.base, EVLOOP_NO_EXIT_ON_EMPTY);
	for (unsigned i = 0; i < rc.ntargets; i++) {
		if (rc.targets[i].done)
			continue;
		status = 1;
		why_silent(&rc.targets[i]);
	}
	if (rc.links_failed || rc.ntargets == 0)
		status = 1;
	if (rc.json) {
		json_t *o = json_pack("{s:o,s:i,s:i,s:i,s:i}", "links", rc.out,
		    "linksOk", rc.links_ok, "linksFailed", rc.links_failed,
		    "processes", rc.ntargets, "processesAnswered", rc.ndone);
		char *s = json_dumps(o, JSON_INDENT(2));

		printf("%s\n", s);
		free(s);
		json_decref(o);
	} else {
		printf("%u links ok, %u failed; %u of %u processes "
		       "answered\n",
		    rc.links_ok, rc.links_failed, rc.ndone, rc.ntargets);
		json_decref(rc.out);
	}
	event_free(deadline);
	link_close(rc.link);
	event_base_free(rc.base);
	return status;
}

/*
 * supervisor_ok - the segment's supervisor pid is a running relgated: a
 * segment left behind by a relgated that was killed names a pid that may
 * since belong to another process, which must not get our signal.
 */
static int
supervisor_ok(pid_t pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
	if (pid <= 0 || (f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "relctl: relgated (pid %ld, from segment %s) "
				"is not running\n",
		    (long)pid, rc.shm_name);
		return 0;
	}
	if (fgets(comm, sizeof(comm), f) == NULL)
		comm[0] = '\0';
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	if (strcmp(comm, "relgated") != 0) {
		fprintf(stderr, "relctl: pid %ld named by segment %s is %s, not "
				"relgated (a segment left by a relgated that "
				"was killed?); nothing signalled\n",
		    (long)pid, rc.shm_name, comm[0] ? comm : "unknown");
		return 0;
	}
	return 1;
}

static int
cmd_reload(void)
{
	long pid = rc.supervisor;

	if (!rc.live)
		return not_running();
	if (!supervisor_ok((pid_t)pid))
		return 2;
	if (kill((pid_t)pid, SIGHUP) != 0) {
		fprintf(stderr, "relctl: cannot signal relgated (pid %ld): "
				"%s\n",
		    pid, strerror(errno));
		return 2;
	}
	if (rc.json)
		print_json(json_pack("{s:s,s:I}", "reload", "requested", "pid",
		    (json_int_t)pid));
	else
		printf("reload requested (relgated pid %ld); see relstat for "
		       "the config generation\n",
		    pid);
	return 0;
}

/* store_failed - the store error, and where state_dir came from. */
static void
store_failed(const char *err)
{
	if (rc.live)
		fprintf(stderr, "relctl: %s\n", err);
	else
		fprintf(stderr, "relctl: %s (%s; the configuration's "
				"state_dir was used)\n",
		    err, rc.shm_err);
}

/* open_store - the LMDB environment, read-only. */
static struct store *
open_store(void)
{
	struct store *st;
	char err[512];

	if (store_open(&st, rc.cfg->state_dir, 0, STORE_RDONLY, NULL, err,
		sizeof(err)) != STORE_OK) {
		store_failed(err);
		return NULL;
	}
	return st;
}

/* open_store_rw - the LMDB environment for writing. */
static struct store *
open_store_rw(void)
{
	struct store *st;
	char err[512];

	if (store_open(&st, rc.cfg->state_dir,
		(uint64_t)rc.cfg->store_map_size_mb << 20, 0, NULL, err,
		sizeof(err)) != STORE_OK) {
		store_failed(err);
		return NULL;
	}
	return st;
}

/* print_json - o (a reference taken) as indented JSON on stdout. */
static void
print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_ENCODE_ANY);

	printf("%s\n", s != NULL ? s : "null");
	free(s);
	json_decref(o);
}

struct rows {
	json_t *arr;
	size_t limit;
};

static int
idem_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct rows *r = arg;
	struct replay_idem rec;
	const char *bar = memchr(key, '|', klen);
	size_t off = bar ? (size_t)(bar - (const char *)key) + 1 : 0;

	if (vlen != sizeof(rec))
		return 0;
	memcpy(&rec, val, sizeof(rec));
	json_array_append_new(r->arr,
	    json_pack("{s:s%,s:I,s:I,s:I,s:s%,s:I}", "key",
		(const char *)key + off, klen - off, "firstSeen",
		(json_int_t)rec.first_seen, "lastSeen",
		(json_int_t)rec.last_seen, "hitCount",
		(json_int_t)rec.hit_count, "deliveryId", rec.delivery_id,
		(size_t)REPLAY_ID_LEN, "expiresAt", (json_int_t)expires));
	return 0;
}

static int
by_last_seen(const void *a, const void *b)
{
	json_int_t x = json_integer_value(
	    json_object_get(*(json_t *const *)a, "lastSeen"));
	json_int_t y = json_integer_value(
	    json_object_get(*(json_t *const *)b, "lastSeen"));

	return x < y ? 1 : x > y ? -1 : 0;
}

static int
print_rows(json_t *arr, size_t limit, const char *const *cols)
{
	size_t n = json_array_size(arr);
	json_t **v = xcalloc(n ? n : 1, sizeof(*v)), *out;

	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(arr, i);
	if (cols != NULL && strcmp(cols[0], "key") == 0)
		qsort(v, n, sizeof(*v), by_last_seen);
	out = json_array();
	for (size_t i = 0; i < n && i < limit; i++)
		json_array_append(out, v[i]);
	if (rc.json) {
		char *s = json_dumps(out, JSON_INDENT(2));

		printf("%s\n", s);
		free(s);
	} else {
		for (size_t i = 0; i < json_array_size(out); i++) {
			json_t *o = json_array_get(out, i);

			for (size_t c = 0; cols[c] != NULL; c++) {
				json_t *f = json_object_get(o, cols[c]);
				char *t = json_is_string(f) ?
				    xstrdup(json_string_value(f)) :
				    json_dumps(f, JSON_ENCODE_ANY | JSON_COMPACT);

				printf("%s%s=%s", c ? "  " : "", cols[c],
				    t ? t : "null");
				free(t);
			}
			printf("\n");
		}
		printf("%zu of %zu rows\n", json_array_size(out), n);
	}
	json_decref(out);
	free(v);
	return 0;
}

static size_t
opt_limit(int argc, char **argv)
{
	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], "--limit") == 0) {
			long v = atol(argv[i + 1]);

			return v > 0 ? (size_t)v : 1;
		}
	return (size_t)rc.cfg->ops_max_rows_per_section;
}

/* by_occurrences - summary rows, the most occurrences first */
static int
by_occurrences(const void *a, const void *b)
{
	json_int_t x = json_integer_value(
	    json_object_get(*(json_t *const *)a, "occurrences"));
	json_int_t y = json_integer_value(
	    json_object_get(*(json_t *const *)b, "occurrences"));
	int c = x < y ? 1 : x > y ? -1 : 0;

	return c != 0 ? c :
			strcmp(json_string_value(json_object_get(
				   *(json_t *const *)a, "key")),
			    json_string_value(json_object_get(
				*(json_t *const *)b, "key")));
}

/*
 * cmd_ratelimit - "ratelimit summary [--window-min N]": the stored
 * events of the window summed by source:bucket:outcome[:reason];
 * "ratelimit events [--limit N]": the newest rows.
 */
static int
cmd_ratelimit(int argc, char **argv)
{
	long window = 60;
	size_t limit;
	json_t *sum, *recent, *rows, *row;
	struct store *st;
	const char *k;
	int src;

	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], "--window-min") == 0)
			window = atol(argv[i + 1]);
	if (argc < 1 || (strcmp(argv[0], "summary") != 0 &&
			    strcmp(argv[0], "events") != 0) ||
	    window < 1 || window > 43200) {
		fprintf(stderr, "usage: relctl ratelimit summary "
				"[--window-min 1..43200] | events [--limit N]\n");
		return 2;
	}
	if ((st = open_store()) == NULL)
		return 2;
	limit = opt_limit(argc, argv);
	sum = json_object();
	recent = json_array();
	src = ev_summary(st, strcmp(argv[0], "events") == 0 ? 0 :
			     now_ms() - (uint64_t)window * 60000,
	    sum, recent, strcmp(argv[0], "events") == 0 ? limit : 0);
	store_close(st);
	if (src != STORE_OK) {
		fprintf(stderr, "relctl: reading events: %s\n",
		    store_rc_name(src));
		json_decref(sum);
		json_decref(recent);
		return 1;
	}
	if (strcmp(argv[0], "events") == 0) {
		static const char *const cols[] = { "createdAt", "source",
			"bucket", "outcome", "reason", "key", "count", "path",
			NULL };

		print_rows(recent, limit, cols);
		json_decref(sum);
		json_decref(recent);
		return 0;
	}
	rows = json_array();
	json_object_foreach(sum, k, row) {
		json_object_set_new(row, "key", json_string(k));
		json_array_append(rows, row);
	}
	{
		size_t n = json_array_size(rows);
		json_t **v = xcalloc(n ? n : 1, sizeof(*v)), *sorted;

		for (size_t i = 0; i < n; i++)
			v[i] = json_array_get(rows, i);
		qsort(v, n, sizeof(*v), by_occurrences);
		sorted = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append(sorted, v[i]);
		free(v);
		if (rc.json) {
			json_t *out = json_pack("{s:i,s:o}", "windowMinutes",
			    (int)window, "summary", sorted);
			char *s = json_dumps(out, JSON_INDENT(2));

			printf("%s\n", s);
			free(s);
			json_decref(out);
		} else {
			printf("%-52s %11s %7s %10s\n", "SOURCE:BUCKET:OUTCOME"
			    "[:REASON]", "OCCURRENCES", "EVENTS",
			    "DUPLICATES");
			json_array_foreach(sorted, n, row)
				printf("%-52s %11lld %7lld %10lld\n",
				    json_string_value(
					json_object_get(row, "key")),
				    (long long)json_integer_value(
					json_object_get(row, "occurrences")),
				    (long long)json_integer_value(
					json_object_get(row, "events")),
				    (long long)json_integer_value(
					json_object_get(row, "duplicates")));
			printf("%zu keys, last %ld minutes\n",
			    json_array_size(sorted), window);
			json_decref(sorted);
		}
	}
	json_decref(rows);
	json_decref(sum);
	json_decref(recent);
	return 0;
}

/* cmd_alerts - "alerts list [--kind K]" / "ratelimit alerts": the newest
 * alerts (of one kind) */
static int
cmd_alerts(int argc, char **argv)
{
	static const char *const cols[] = { "createdAt", "alertKey", "kind",
		"value", "threshold", "sentry", "sentryAttempts",
		"sentryError", NULL };
	const char *kind = NULL;
	struct store *st;
	json_t *rows;
	size_t limit;
	int src;

	if (argc < 1 || (strcmp(argv[0], "list") != 0 &&
			    strcmp(argv[0], "alerts") != 0)) {
		fprintf(stderr, "usage: relctl alerts list [--kind K] "
				"[--limit N]\n");
		return 2;
	}
	if (strcmp(argv[0], "alerts") == 0)
		kind = "ratelimit"; /* relctl ratelimit alerts */
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--kind") == 0)
			kind = argv[i + 1];
	if ((st = open_store()) == NULL)
		return 2;
	limit = opt_limit(argc, argv);
	rows = json_array();
	src = alert_list(st, NULL, kind, 0, rows);
	store_close(st);
	if (src != STORE_OK) {
		fprintf(stderr, "relctl: reading alerts: %s\n",
		    store_rc_name(src));
		json_decref(rows);
		return 1;
	}
	print_rows(rows, limit, cols);
	json_decref(rows);
	return 0;
}

static int
cmd_idempotency(int argc, char **argv)
{
	static const char *const cols[] = { "key", "hitCount", "firstSeen",
		"lastSeen", "deliveryId", NULL };
	const char *scope = NULL;
	struct rows r = { NULL, 0 };
	struct store *st;
	char prefix[128];
	int status;

	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], "--scope") == 0)
			scope = argv[i + 1];
	if (argc < 1 || strcmp(argv[0], "recent") != 0 || scope == NULL) {
		fprintf(stderr, "usage: relctl idempotency recent --scope S "
				"[--limit N]\n");
		return 2;
	}
	if ((st = open_store()) == NULL)
		return 2;
	r.arr = json_array();
	snprintf(prefix, sizeof(prefix), "%s|", scope);
	status = store_scan(st, STORE_IDEM, prefix, strlen(prefix), now_ms(),
		     idem_row, &r) == STORE_OK ?
	    print_rows(r.arr, opt_limit(argc, argv), cols) :
	    2;
	json_decref(r.arr);
	store_close(st);
	return status;
}

struct drows {
	json_t *arr;
	int dead_only;
};

static int
delivery_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct drows *r = arg;
	json_error_t jerr;
	json_t *o = json_loadb(val, vlen, 0, &jerr);
	const char *st;

	(void)expires;
	if (o == NULL || !json_is_object(o)) {
		/* a row that cannot be read is shown, never hidden: the
		 * delivery worker makes it a dead letter when it meets it */
		char why[200];

		snprintf(why, sizeof(why), "unreadable row: %s",
		    o == NULL ? jerr.text : "not a JSON object");
		json_decref(o);
		o = json_pack("{s:s%,s:s,s:s}", "id", (const char *)key, klen,
		    "state", "dead", "deadLetterReason", why);
		if (o == NULL)
			return 0;
	}
	st = json_string_value(json_object_get(o, "state"));
	if (r->dead_only && (st == NULL || strcmp(st, "dead") != 0))
		json_decref(o);
	else
		json_array_append_new(r->arr, o);
	return 0;
}

static int
requeue_apply(struct store_txn *txn, void *arg)
{
	return delivq_requeue(txn, arg, now_ms());
}

/* write_one - apply(arg) in one write transaction of the store: its
 * result, or -1 (after one line) when the store cannot be opened */
static int
write_one(store_apply_fn apply, void *arg)
{
	struct store *st = open_store_rw();
	int src;

	if (st == NULL)
		return -1;
	src = store_run(st, apply, arg);
	store_close(st);
	return src;
}

static int
cmd_requeue(const char *id)
{
	int wrc;

	if (strlen(id) != DELIVQ_ID_LEN) {
		fprintf(stderr, "relctl: a delivery id has %d characters\n",
		    DELIVQ_ID_LEN);
		return 2;
	}
	if ((wrc = write_one(requeue_apply, (void *)(uintptr_t)id)) == -1)
		return 2;
	if (wrc == STORE_NOTFOUND) {
		fprintf(stderr, "relctl: no dead letter %s\n", id);
		return 1;
	}
	if (wrc == STORE_EINVAL) {
		fprintf(stderr, "relctl: dead letter %s cannot be requeued: "
				"its row was unreadable (see rawBase64)\n",
		    id);
		return 1;
	}
	if (wrc != STORE_OK) {
		fprintf(stderr, "relctl: requeue %s: %s\n", id,
		    store_rc_name(wrc));
		return 2;
	}
	if (rc.json)
		print_json(json_pack("{s:s}", "requeued", id));
	else
		printf("requeued %s\n", id);
	return 0;
}

static int
cmd_deliveries(int argc, char **argv)
{
	static const char *const cols[] = { "id", "topic", "state",
		"attempts", "idemKey", "lastError", "deadLetterReason", NULL };
	struct drows r = { NULL, 0 };
	struct store *st;
	int status;

	if (argc >= 2 && strcmp(argv[0], "requeue") == 0)
		return cmd_requeue(argv[1]);
	if (argc < 1 || (strcmp(argv[0], "list") != 0 &&
			    strcmp(argv[0], "dead-letters") != 0)) {
		fprintf(stderr, "usage: relctl deliveries list|dead-letters "
				"[--limit N] | requeue ID\n");
		return 2;
	}
	r.dead_only = strcmp(argv[0], "dead-letters") == 0;
	if ((st = open_store()) == NULL)
		return 2;
	r.arr = json_array();
	status = store_scan(st, STORE_DELIVERIES, NULL, 0, now_ms(),
		     delivery_row, &r) == STORE_OK ?
	    print_rows(r.arr, opt_limit(argc, argv), cols) :
	    2;
	json_decref(r.arr);
	store_close(st);
	return status;
}

/* --- circuit, bulkhead: the shm segment ------------------------------------*/

/* live_snapshot - the segment's state (relstat -j without the store's
 * sections); NULL after one line when there is no segment. */
static json_t *
live_snapshot(long limit)
{
	struct shm_seg seg;
	json_t *snap;

	if (!rc.live)
		return not_running(), NULL;
	if (shm_attach(&seg, rc.shm_name, 0, rc.shm_err,
		sizeof(rc.shm_err)) != 0)
		return not_running(), NULL;
	snap = snapshot_json(&seg, limit);
	shm_detach(&seg);
	return snap;
}

/* when_str - a time in ms as an age or a wait from now, "never" for
 * null or 0. */
static const char *
when_str(const json_t *v, char *buf, size_t len)
{
	int64_t t = json_integer_value(v), d = (int64_t)now_ms() - t;
	int64_t a = d < 0 ? -d : d;

	if (!json_is_integer(v) || t == 0)
		return "never";
	if (a < 10000)
		snprintf(buf, len, d < 0 ? "in %.1fs" : "%.1fs ago",
		    (double)a / 1000);
	else if (a < 600000)
		snprintf(buf, len, d < 0 ? "in %llds" : "%llds ago",
		    (long long)(a / 1000));
	else if (a < 36000000)
		snprintf(buf, len, d < 0 ? "in %lldm" : "%lldm ago",
		    (long long)(a / 60000));
	else
		snprintf(buf, len, d < 0 ? "in %lldh" : "%lldh ago",
		    (long long)(a / 3600000));
	return buf;
}

/* age_str - an age in ms as seconds, "-" for null */
static const char *
age_str(const json_t *v, char *buf, size_t len)
{
	if (!json_is_integer(v))
		return "-";
	snprintf(buf, len, "%.1fs", (double)json_integer_value(v) / 1000);
	return buf;
}

static long long
int_at(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);

	return (long long)json_integer_value(b ? json_object_get(v, b) : v);
}

/* cmd_circuit - "circuit list": every circuit of the segment */
static int
cmd_circuit(int argc, char **argv)
{
	size_t limit, n = 0, total;
	json_t *snap, *circuits, *c, *out;
	const char *name;
	char t1[32], t2[32];

	if (argc < 1 || strcmp(argv[0], "list") != 0) {
		fprintf(stderr, "usage: relctl circuit list [--limit N]\n");
		return 2;
	}
	limit = opt_limit(argc, argv);
	if ((snap = live_snapshot((long)limit)) == NULL)
		return 2;
	circuits = json_object_get(snap, "circuits");
	total = json_object_size(circuits);
	out = json_array();
	if (!rc.json)
		printf("%-26s %-9s %5s %6s %9s %-10s %-10s %7s %9s %10s\n",
		    "CIRCUIT", "STATE", "FAILS", "THRESH", "COOLDOWN",
		    "OPENED", "CHANGED", "OPENS", "REJECTED", "FAILURES");
	json_object_foreach(circuits, name, c) {
		if (n++ >= limit)
			break;
		if (rc.json) {
			json_t *o = json_deep_copy(c);

			json_object_set_new(o, "circuit", json_string(name));
			json_array_append_new(out, o);
			continue;
		}
		printf("%-26s %-9s %5lld %6lld %7lldms %-10s %-10s %7lld "
		       "%9lld %10lld\n",
		    name, json_string_value(json_object_get(c, "state")),
		    int_at(c, "consecutiveFailures", NULL),
		    int_at(c, "threshold", NULL), int_at(c, "cooldownMs", NULL),
		    when_str(json_object_get(c, "openedAt"), t1, sizeof(t1)),
		    when_str(json_object_get(c, "changedAt"), t2, sizeof(t2)),
		    int_at(c, "counters", "opens"),
		    int_at(c, "counters", "rejections"),
		    int_at(c, "counters", "failures"));
	}
	if (rc.json)
		print_json(json_incref(out));
	else
		printf("%zu of %zu circuits\n", n < limit ? n : limit, total);
	json_decref(out);
	json_decref(snap);
	return 0;
}

/* owner_of - "role.instance" of the process with pid in snap, or "-". */
static const char *
owner_of(json_t *snap, json_int_t pid, char *buf, size_t len)
{
	size_t i;
	json_t *p;

	json_array_foreach(json_object_get(snap, "processes"), i, p)
		if (json_integer_value(json_object_get(p, "pid")) == pid) {
			snprintf(buf, len, "%s.%lld",
			    json_string_value(json_object_get(p, "role")),
			    int_at(p, "instance", NULL));
			return buf;
		}
	return "-";
}

/* bulkhead_leases - one bulkhead's live leases, owners named */
static int
bulkhead_leases(json_t *snap, const char *name, json_t *b, size_t limit)
{
	json_t *leases = json_object_get(b, "leases"), *l;
	char owner[48], t1[32], t2[32];
	size_t i;

	json_array_foreach(leases, i, l)
		json_object_set_new(l, "process", json_string(owner_of(snap,
		    json_integer_value(json_object_get(l, "pid")), owner,
		    sizeof(owner))));
	if (rc.json) {
		json_object_set_new(b, "bulkhead", json_string(name));
		print_json(json_incref(b));
		return 0;
	}
	printf("%s: %lld in flight of %lld (lease TTL %lld ms; %lld expired, "
	       "not yet reclaimed)\n",
	    name, int_at(b, "inFlight", NULL), int_at(b, "maxConcurrent", NULL),
	    int_at(b, "leaseTtlMs", NULL), int_at(b, "expired", NULL));
	printf("%-10s %-8s %-16s %-10s %-10s\n", "LEASE", "PID", "PROCESS",
	    "ACQUIRED", "EXPIRES");
	json_array_foreach(leases, i, l)
		printf("%-10lld %-8lld %-16s %-10s %-10s\n", int_at(l, "id", NULL),
		    int_at(l, "pid", NULL),
		    json_string_value(json_object_get(l, "process")),
		    when_str(json_object_get(l, "acquiredAt"), t1, sizeof(t1)),
		    when_str(json_object_get(l, "expiresAt"), t2, sizeof(t2)));
	printf("%zu of %lld leases shown (--limit %zu)\n",
	    json_array_size(leases), int_at(b, "inFlight", NULL), limit);
	return 0;
}

/* cmd_bulkhead - "bulkhead inflight [--provider P]" */
static int
cmd_bulkhead(int argc, char **argv)
{
	const char *prov = NULL, *name;
	json_t *snap, *bhs, *b;
	size_t limit;
	int status = 0;

	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], "--provider") == 0)
			prov = argv[i + 1];
	if (argc < 1 || strcmp(argv[0], "inflight") != 0) {
		fprintf(stderr, "usage: relctl bulkhead inflight [--provider P] "
				"[--limit N]\n");
		return 2;
	}
	limit = opt_limit(argc, argv);
	if ((snap = live_snapshot((long)limit)) == NULL)
		return 2;
	bhs = json_object_get(snap, "bulkheads");
	if (prov != NULL && (b = json_object_get(bhs, prov)) != NULL) {
		status = bulkhead_leases(snap, prov, b, limit);
	} else if (prov != NULL) {
		fprintf(stderr, "relctl: no bulkhead \"%s\"; bulkheads:", prov);
		json_object_foreach(bhs, name, b)
			fprintf(stderr, " %s", name);
		fprintf(stderr, "\n");
		status = 2;
	} else if (rc.json) {
		print_json(json_incref(bhs));
	} else {
		printf("%-26s %8s %6s %8s %9s %10s %10s %9s\n", "BULKHEAD",
		    "INFLIGHT", "MAX", "TTL_MS", "EXPIRED", "ACQUIRED",
		    "SATURATED", "RECLAIMED");
		json_object_foreach(bhs, name, b)
			printf("%-26s %8lld %6lld %8lld %9lld %10lld %10lld "
			       "%9lld\n",
			    name, int_at(b, "inFlight", NULL),
			    int_at(b, "maxConcurrent", NULL),
			    int_at(b, "leaseTtlMs", NULL),
			    int_at(b, "expired", NULL),
			    int_at(b, "counters", "acquired"),
			    int_at(b, "counters", "saturated"),
			    int_at(b, "counters", "reclaimedDead") +
				int_at(b, "counters", "reclaimedExpired"));
		printf("%zu bulkheads; --provider NAME lists its leases\n",
		    json_object_size(bhs));
	}
	json_decref(snap);
	return status;
}

/* --- cache: the store --------------------------------------------------------*/

static int
cmd_cache(int argc, char **argv)
{
	const char *ns = NULL, *name;
	struct store *st;
	json_t *by, *o;
	size_t removed = 0, n = 0;
	char t1[32], t2[32];
	int src;

	for (int i = 0; i + 1 < argc; i++)
		if (strcmp(argv[i], "--namespace") == 0)
			ns = argv[i + 1];
	if (argc < 1 || (strcmp(argv[0], "stats") != 0 &&
			    strcmp(argv[0], "clear") != 0) ||
	    (strcmp(argv[0], "clear") == 0 && ns == NULL)) {
		fprintf(stderr, "usage: relctl cache stats [--namespace NS] | "
				"clear --namespace NS\n");
		return 2;
	}
	if (ns != NULL && !tc_ns_valid(ns)) {
		fprintf(stderr, "relctl: namespace \"%s\": 1..%d of "
				"A-Z a-z 0-9 _ . - (e.g. search_web_v1)\n",
		    ns, TC_NS_MAX - 1);
		return 2;
	}
	if (strcmp(argv[0], "clear") == 0) {
		if ((st = open_store_rw()) == NULL)
			return 2;
		src = tc_clear(st, ns, &removed);
		store_close(st);
		if (src != STORE_OK) {
			fprintf(stderr, "relctl: clearing %s: %s (%zu entries "
					"removed before)\n",
			    ns, store_rc_name(src), removed);
			return 1;
		}
		if (rc.json)
			print_json(json_pack("{s:s,s:I}", "namespace", ns,
			    "removed", (json_int_t)removed));
		else
			printf("cache namespace %s cleared: %zu entries "
			       "removed\n",
			    ns, removed);
		return 0;
	}
	if ((st = open_store()) == NULL)
		return 2;
	by = json_object();
	src = tc_stats(st, by);
	store_close(st);
	if (src != STORE_OK) {
		fprintf(stderr, "relctl: reading the cache: %s\n",
		    store_rc_name(src));
		json_decref(by);
		return 1;
	}
	if (ns != NULL) {
		o = json_object_get(by, ns);
		o = o != NULL ? json_pack("{s:O}", ns, o) : json_object();
		json_decref(by);
		by = o;
	}
	if (rc.json) {
		print_json(json_pack("{s:o}", "byNamespace", by));
		return 0;
	}
	printf("%-32s %9s %12s %-12s %-12s\n", "NAMESPACE", "ENTRIES", "BYTES",
	    "NEXT_EXPIRY", "LAST_EXPIRY");
	json_object_foreach(by, name, o) {
		printf("%-32s %9lld %12lld %-12s %-12s\n", name,
		    int_at(o, "entries", NULL), int_at(o, "bytes", NULL),
		    when_str(json_object_get(o, "nextExpiresAt"), t1,
			sizeof(t1)),
		    when_str(json_object_get(o, "lastExpiresAt"), t2,
			sizeof(t2)));
		n += (size_t)int_at(o, "entries", NULL);
	}
	printf("%zu namespaces, %zu live entries\n", json_object_size(by), n);
	json_decref(by);
	return 0;
}

/* --- jobs: the tool-job queue ---------------------------------------------*/

static int
jrequeue_apply(struct store_txn *txn, void *arg)
{
	return jobq_requeue(txn, arg, now_ms());
}

static int
cmd_jobs(int argc, char **argv)
{
	static const char *const cols[] = { "id", "tool", "qos", "attempts",
		"deadAt", "deadLetterReason", NULL };
	struct store *st;
	json_t *o, *v;
	const char *name;
	char t1[32], t2[32];
	int src;

	if (argc >= 2 && strcmp(argv[0], "requeue") == 0) {
		int wrc;

		if (strlen(argv[1]) != JOBQ_ID_LEN) {
			fprintf(stderr, "relctl: a tool job id has %d "
					"characters\n",
			    JOBQ_ID_LEN);
			return 2;
		}
		if ((wrc = write_one(jrequeue_apply, argv[1])) == -1)
			return 2;
		if (wrc == STORE_NOTFOUND) {
			fprintf(stderr, "relctl: no tool job dead letter %s\n",
			    argv[1]);
			return 1;
		}
		if (wrc != STORE_OK) {
			fprintf(stderr, "relctl: requeue %s: %s\n", argv[1],
			    store_rc_name(wrc));
			return 1;
		}
		if (rc.json)
			print_json(json_pack("{s:s}", "requeued", argv[1]));
		else
			printf("requeued tool job %s (attempts start again)\n",
			    argv[1]);
		return 0;
	}
	if (argc < 1 || (strcmp(argv[0], "stats") != 0 &&
			    strcmp(argv[0], "dead-letters") != 0)) {
		fprintf(stderr, "usage: relctl jobs stats | dead-letters "
				"[--limit N] | requeue ID\n");
		return 2;
	}
	if ((st = open_store()) == NULL)
		return 2;
	o = strcmp(argv[0], "stats") == 0 ? json_object() : json_array();
	src = json_is_object(o) ? jobq_stats(st, now_ms(), o) :
				  jobq_dead_letters(st, 0, o);
	store_close(st);
	if (src != STORE_OK) {
		fprintf(stderr, "relctl: reading the tool jobs: %s\n",
		    store_rc_name(src));
		json_decref(o);
		return 1;
	}
	if (json_is_array(o)) {
		print_rows(o, opt_limit(argc, argv), cols);
		json_decref(o);
		return 0;
	}
	if (rc.json) {
		print_json(o);
		return 0;
	}
	v = json_object_get(o, "byStatus");
	printf("queued %lld  running %lld  dead %lld  oldest queued %s  "
	       "oldest running %s\n",
	    int_at(v, "queued", NULL), int_at(v, "running", NULL),
	    int_at(v, "dead", NULL),
	    age_str(json_object_get(o, "oldestQueuedAgeMs"), t1, sizeof(t1)),
	    age_str(json_object_get(o, "oldestRunningAgeMs"), t2,
		sizeof(t2)));
	printf("%-20s %8s %8s %8s\n", "TOOL", "QUEUED", "RUNNING", "DEAD");
	json_object_foreach(json_object_get(o, "byTool"), name, v)
		printf("%-20s %8lld %8lld %8lld\n", name,
		    int_at(v, "queued", NULL), int_at(v, "running", NULL),
		    int_at(v, "dead", NULL));
	printf("%-20s %8s %8s\n", "CLASS", "QUEUED", "RUNNING");
	json_object_foreach(json_object_get(o, "byQos"), name, v)
		printf("%-20s %8lld %8lld\n", name, int_at(v, "queued", NULL),
		    int_at(v, "running", NULL));
	json_decref(o);
	return 0;
}

/* --- drain -------------------------------------------------------------------*/

/* cmd_drain - SIGTERM the supervisor; unless --no-wait, wait until it
 * has gone (its children drained or, after drain_timeout_ms, killed). */
static int
cmd_drain(int argc, char **argv)
{
	pid_t pid = rc.supervisor;
	uint64_t start = now_ms(), limit;
	int wait = !(argc >= 1 && strcmp(argv[0], "--no-wait") == 0);

	if (argc >= 1 && wait) {
		fprintf(stderr, "usage: relctl drain [--no-wait]\n");
		return 2;
	}
	if (!rc.live)
		return not_running();
	if (!supervisor_ok(pid))
		return 2;
	limit = (uint64_t)rc.cfg->supervisor_drain_timeout_ms + 5000;
	if (kill(pid, SIGTERM) != 0) {
		fprintf(stderr, "relctl: cannot signal relgated (pid %ld): %s\n",
		    (long)pid, strerror(errno));
		return 2;
	}
	if (!rc.json)
		printf("drain requested: relgated pid %ld takes no new "
		       "connections and stops; its processes have %lld ms\n",
		    (long)pid, (long long)rc.cfg->supervisor_drain_timeout_ms);
	fflush(stdout);
	if (!wait) {
		if (rc.json)
			print_json(json_pack("{s:s,s:I}", "drain", "requested",
			    "pid", (json_int_t)pid));
		return 0;
	}
	while (kill(pid, 0) == 0 || errno == EPERM) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		if (now_ms() - start > limit) {
			fprintf(stderr, "relctl: relgated pid %ld still running "
					"after %llu ms\n",
			    (long)pid, (unsigned long long)(now_ms() - start));
			return 1;
		}
		nanosleep(&ts, NULL);
	}
	if (rc.json)
		print_json(json_pack("{s:s,s:I,s:I}", "drain", "stopped", "pid",
		    (json_int_t)pid, "stoppedAfterMs",
		    (json_int_t)(now_ms() - start)));
	else
		printf("relgated pid %ld stopped after %llu ms\n", (long)pid,
		    (unsigned long long)(now_ms() - start));
	return 0;
}

/* b64url_json - base64url of the compact JSON of o (freed), in buf. */
static int
b64url_json(json_t *o, char *buf, size_t len)
{
	char *text = json_dumps(o, JSON_COMPACT);
	long n;

	json_decref(o);
	if (text == NULL)
		return -1;
	n = b64url_encode(text, strlen(text), buf, len);
	free(text);
	return n < 0 ? -1 : 0;
}

/*
 * cmd_jwt - "jwt mint": a token the chat route takes, for trying it out
 * and for drills.  HS256 only: relctl never holds a private key.
 */
static int
cmd_jwt(int argc, char **argv)
{
	const char *sub = NULL, *key = rc.cfg->auth_jwt_secret;
	long ttl = 3600;
	char head[128], body[2048], sig[64], msg[2200];
	unsigned char mac[CRYPTO_SHA256_LEN];
	uint64_t now = now_ms() / 1000;
	json_t *claims;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--sub") == 0)
			sub = argv[i + 1];
		else if (strcmp(argv[i], "--ttl") == 0)
			ttl = strtol(argv[i + 1], NULL, 10);
	}
	if (argc < 1 || strcmp(argv[0], "mint") != 0 || sub == NULL ||
	    sub[0] == '\0' || ttl <= 0 || ttl > 31 * 86400 || argc % 2 != 1) {
		fprintf(stderr, "usage: relctl jwt mint --sub SUB "
				"[--ttl SECONDS (1..2678400)]\n");
		return 2;
	}
	if (strcmp(rc.cfg->auth_jwt_alg, "HS256") != 0) {
		fprintf(stderr, "relctl: auth.jwt.alg is %s: only HS256 "
				"tokens can be minted here\n",
		    rc.cfg->auth_jwt_alg);
		return 2;
	}
	if (key == NULL || key[0] == '\0') {
		fprintf(stderr, "relctl: auth.jwt.secret is not set (in -c "
				"FILE or RELGATE_AUTH_JWT_SECRET)\n");
		return 2;
	}
	claims = json_pack("{s:s,s:I,s:I}", "sub", sub, "iat",
	    (json_int_t)now, "exp", (json_int_t)(now + (uint64_t)ttl));
	if (claims == NULL) {
		fprintf(stderr, "relctl: --sub must be UTF-8 text\n");
		return 2;
	}
	if (rc.cfg->auth_jwt_issuer != NULL)
		json_object_set_new(claims, "iss",
		    json_string(rc.cfg->auth_jwt_issuer));
	if (rc.cfg->auth_jwt_audience != NULL)
		json_object_set_new(claims, "aud",
		    json_string(rc.cfg->auth_jwt_audience));
	if (b64url_json(json_pack("{s:s,s:s}", "alg", "HS256", "typ", "JWT"),
		head, sizeof(head)) != 0 ||
	    b64url_json(claims, body, sizeof(body)) != 0) {
		fprintf(stderr, "relctl: the claims do not fit a token\n");
		return 2;
	}
	snprintf(msg, sizeof(msg), "%s.%s", head, body);
	crypto_hmac_sha256(key, strlen(key), msg, strlen(msg), mac);
	b64url_encode(mac, sizeof(mac), sig, sizeof(sig));
	printf("%s.%s\n", msg, sig);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *shm_name = NULL;
	unsigned flags = 0;
	char err[512];
	int opt;

	log_init("relctl", 0);
	log_set_level(LOG_LVL_WARN);
	while ((opt = getopt_long(argc, argv, "+c:n:h", longopts, NULL)) !=
	    -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'n':
			shm_name = optarg;
			break;
		case 'V':
			printf("relctl %s\n", RG_VERSION);
			return 0;
		case 'J':
			rc.json = 1;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (optind >= argc)
		usage(2);
	if (path == NULL) {
		path = DEFAULT_CONFIG;
		flags = CONFIG_FILE_OPTIONAL;
	}
	rc.cfg = config_load(path, flags, err, sizeof(err));
	if (rc.cfg == NULL) {
		fprintf(stderr, "relctl: %s\n", err);
		return 2;
	}
	rc.shm_name = shm_name != NULL ? shm_name : rc.cfg->shm_name;
	if (!shm_name_valid(rc.shm_name)) {
		fprintf(stderr, "relctl: shm name \"%s\" must look like "
				"/name\n",
		    rc.shm_name);
		return 2;
	}
	locate();
	if (strcmp(argv[optind], "ping") == 0)
		return cmd_ping();
	if (strcmp(argv[optind], "reload") == 0)
		return cmd_reload();
	if (strcmp(argv[optind], "idempotency") == 0)
		return cmd_idempotency(argc - optind - 1, argv + optind + 1);
	if (strcmp(argv[optind], "deliveries") == 0)
		return cmd_deliveries(argc - optind - 1, argv + optind + 1);
	if (strcmp(argv[optind], "jwt") == 0)
		return cmd_jwt(argc - optind - 1, argv + optind + 1);
	if (strcmp(argv[optind], "ratelimit") == 0 && optind + 1 < argc &&
	    strcmp(argv[optind + 1], "alerts") == 0)
		return cmd_alerts(argc - optind - 1, argv + optind + 1);
	if (strcmp(argv[optind], "ratelimit") == 0)
		return cmd_ratelimit(argc - optind - 1, argv + optind + 1);
	if (strcmp(argv[optind], "alerts") == 0)
		return cmd_alerts(argc - optind - 1, argv + optind + 1);
	if (strcmp(argv[optind], "circuit") == 0)
		return cmd_circuit(argc - optind - 1, argv + optind + 1);
	if (strcmp(argv[optind], "bulkhead") == 0)
		return cmd_bulkhead(argc - optind - 1, argv + optind + 1);
	if (strcmp(argv[optind], "cache") == 0)
		return cmd_cache(argc - optind - 1, argv + optind + 1);
	if (strcmp(argv[optind], "jobs") == 0)
		return cmd_jobs(argc - optind - 1, argv + optind + 1);
	if (strcmp(argv[optind], "drain") == 0)
		return cmd_drain(argc - optind - 1, argv + optind + 1);
	fprintf(stderr, "relctl: unknown command \"%s\"\n", argv[optind]);
	usage(2);
}
