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
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "conf/config.h"
#include "gate/b64.h"
#include "gate/crypto.h"
#include "gate/delivq.h"
#include "gate/replay.h"
#include "store/store.h"
#include "proto/link.h"
#include "shm/shm.h"
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

static int
cmd_reload(void)
{
	long pid = rc.supervisor;

	if (!rc.live)
		return not_running();
	if (kill((pid_t)pid, SIGHUP) != 0) {
		fprintf(stderr, "relctl: cannot signal relgated (pid %ld): "
				"%s\n",
		    pid, strerror(errno));
		return 2;
	}
	printf("reload requested (relgated pid %ld); see relstat for the "
	       "config generation\n",
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

struct requeue {
	const char *id;
	int rc, done;
};

static int
requeue_apply(struct store_txn *txn, void *arg)
{
	struct requeue *q = arg;

	return delivq_requeue(txn, q->id, now_ms());
}

static void
requeue_done(void *arg, int rcode)
{
	struct requeue *q = arg;

	q->rc = rcode;
	q->done = 1;
}

static int
cmd_requeue(const char *id)
{
	struct requeue q = { id, STORE_EIO, 0 };
	struct store_writer *w;
	struct store *st;
	char err[512];

	if (strlen(id) != DELIVQ_ID_LEN) {
		fprintf(stderr, "relctl: a delivery id has %d characters\n",
		    DELIVQ_ID_LEN);
		return 2;
	}
	if (store_open(&st, rc.cfg->state_dir,
		(uint64_t)rc.cfg->store_map_size_mb << 20, 0, NULL, err,
		sizeof(err)) != STORE_OK) {
		store_failed(err);
		return 2;
	}
	w = store_writer_start(st, 1);
	if (store_writer_submit(w, requeue_apply, requeue_done, &q) !=
	    STORE_OK)
		q.rc = STORE_ESTOPPED;
	store_writer_stop(w); /* runs the request, then joins */
	store_close(st);
	if (q.rc == STORE_NOTFOUND) {
		fprintf(stderr, "relctl: no dead letter %s\n", id);
		return 1;
	}
	if (q.rc == STORE_EINVAL) {
		fprintf(stderr, "relctl: dead letter %s cannot be requeued: "
				"its row was unreadable (see rawBase64)\n",
		    id);
		return 1;
	}
	if (q.rc != STORE_OK) {
		fprintf(stderr, "relctl: requeue %s: %s\n", id,
		    store_rc_name(q.rc));
		return 2;
	}
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
	fprintf(stderr, "relctl: unknown command \"%s\"\n", argv[optind]);
	usage(2);
}
