/*
 * relstat - attach read-only to relgate's shared memory and show it.
 *
 * The snapshot (shm/snapshot) reads the process table and the areas
 * through the names and offsets the segment carries, so this relstat
 * also reads a newer daemon's segment (as long as the layout version is
 * not newer than it knows).
 *   relstat [-n SHM_NAME] [-1 | -j | -c] [-w MIN] [-l N]
 * Default on a terminal: a live view that fits the window, like top or
 * varnishstat (keys: q quit, arrows/j/k/space/b scroll, tab, 1-9 and 0
 * sections, / filter); -1 the same sections once as text; -j the JSON
 * snapshot; -c the configuration in force.  Exit 2 with one line when
 * there is no segment or its layout is newer.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>

#include "gate/alerts.h"
#include "gate/events.h"
#include "gate/replay.h"
#include "gate/jobq.h"
#include "gate/storesnap.h"
#include "gate/toolcache.h"
#include "shm/shm.h"
#include "shm/snapshot.h"
#include "util/util.h"

#define RELSTAT_ROWS 20 /* -l: rows per section (leases per bulkhead) */

static volatile sig_atomic_t done, resized, suspended;
static unsigned rows = RELSTAT_ROWS; /* -l: rows per section */
static long window_min = 60;         /* -w: window of the event summary */

static void
on_int(int sig)
{
	(void)sig;
	done = 1;
}

static void
on_winch(int sig)
{
	(void)sig;
	resized = 1;
}

static void
on_tstp(int sig)
{
	(void)sig;
	suspended = 1;
}

static void
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: relstat [-n SHM_NAME] [-1 | -j | -c] [-w MINUTES] "
	    "[-l LIMIT]\n"
	    "  -n SHM_NAME  segment to attach (default $RELGATE_SHM_NAME, else\n"
	    "               /relgate)\n"
	    "  -1           print the sections once as text and exit\n"
	    "  -j           print the whole snapshot once as JSON and exit\n"
	    "  -c           print the configuration in force (secrets "
	    "redacted)\n"
	    "  -w MINUTES   window of the event summary of -j (default 60)\n"
	    "  -l LIMIT     rows per section: the most recent leases of each\n"
	    "               bulkhead, top users and reasons (default 20)\n"
	    "  --help       this text\n"
	    "  --version    print the version\n"
	    "Without -1, -j or -c on a terminal: a live view, refreshed each\n"
	    "second.  Keys: q quit, up/down or j/k scroll, space/b page,\n"
	    "g/G top/end, tab, 1-9 or 0 go to a section, / filter lines, Esc\n"
	    "clear the filter.\n");
	exit(code);
}

static long
parse_pos(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 1 || v > 100000) {
		fprintf(stderr, "relstat: %s must be 1..100000, got \"%s\"\n",
		    what, s);
		exit(2);
	}
	return v;
}

/* --- values ------------------------------------------------------------------*/

/* jnum - an integer member of o (0 when absent). */
static long long
jnum(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static const char *
jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "-";
}

/*
 * Rates: the previous frame's totals, by a key naming the value.  In a
 * one-shot print there is no previous frame: rates show "-".
 */
struct rates {
	json_t *prev, *cur;
	uint64_t prev_ms, now_ms;
};

/* rate - per second since the last frame, into buf ("-" when unknown). */
static const char *
rate(struct rates *r, const char *key, long long v, char *buf, size_t len)
{
	json_t *p;

	snprintf(buf, len, "-");
	if (r == NULL)
		return buf;
	json_object_set_new(r->cur, key, json_integer(v));
	p = r->prev != NULL ? json_object_get(r->prev, key) : NULL;
	if (p != NULL && r->now_ms > r->prev_ms && v >= json_integer_value(p))
		snprintf(buf, len, "%.1f",
		    (double)(v - json_integer_value(p)) * 1000.0 /
			(double)(r->now_ms - r->prev_ms));
	return buf;
}

/* human - a count in at most 7 characters: 1234567 -> "1.23M" */
static const char *
human(long long v, char *buf, size_t len)
{
	if (v < 100000)
		snprintf(buf, len, "%lld", v);
	else if (v < 10000000)
		snprintf(buf, len, "%.1fk", (double)v / 1e3);
	else if (v < 10000000000LL)
		snprintf(buf, len, "%.1fM", (double)v / 1e6);
	else
		snprintf(buf, len, "%.1fG", (double)v / 1e9);
	return buf;
}

/* age - ms ago as "850ms", "12s", "3m04s", "2h05m", "3d04h"; "-" for 0 */
static const char *
age(long long at, uint64_t now, char *buf, size_t len)
{
	long long ms = (long long)now - at, s;

	if (at <= 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	if (ms < 0)
		ms = 0;
	s = ms / 1000;
	if (ms < 1000)
		snprintf(buf, len, "%lldms", ms);
	else if (s < 60)
		snprintf(buf, len, "%llds", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
	return buf;
}

/* ms - a latency in ms from a JSON number, "-" for null */
static const char *
ms(json_t *v, char *buf, size_t len)
{
	if (json_is_number(v))
		snprintf(buf, len, "%.2f", json_number_value(v));
	else
		snprintf(buf, len, "-");
	return buf;
}

/* --- sections ----------------------------------------------------------------*/

/* Each section prints its title line (which names its columns) and one
 * line per row; the live view and -1 show the same lines. */
typedef void (*section_fn)(FILE *out, json_t *snap, struct rates *r);

static void
sec_processes(FILE *out, json_t *snap, struct rates *r)
{
	json_t *p;
	size_t i;
	uint64_t now = now_ms();
	char up[24], hb[24], lag[24];

	(void)r;
	fprintf(out, "%-12s %4s %7s %-9s %8s %7s %9s %5s  %s\n", "PROCESS",
	    "INST", "PID", "STATE", "RESTARTS", "UP", "HEARTBEAT", "LAG",
	    "LAST EXIT");
	json_array_foreach(json_object_get(snap, "processes"), i, p) {
		json_t *le = json_object_get(p, "lastExit");

		/* loop.lagMaxMs: roles only (the supervisor has no probe) */
		if (strcmp(jstr(p, "role"), "supervisor") == 0)
			snprintf(lag, sizeof(lag), "-");
		else
			snprintf(lag, sizeof(lag), "%lldms",
			    jnum(json_object_get(p, "counters"),
				"loop.lagMaxMs"));
		fprintf(out, "%-12s %4lld %7lld %-9s %8lld %7s %9s %5s  %s\n",
		    jstr(p, "role"), jnum(p, "instance"), jnum(p, "pid"),
		    jstr(p, "state"), jnum(p, "restarts"),
		    age(jnum(p, "startedAt"), now, up, sizeof(up)),
		    age(jnum(p, "heartbeatAt"), now, hb, sizeof(hb)), lag,
		    json_is_string(le) ? json_string_value(le) : "-");
	}
}

/* top_code - the most frequent error code of a route, "-" if none */
static const char *
top_code(json_t *codes, char *buf, size_t len)
{
	const char *k, *best = NULL;
	json_t *v;
	long long n = 0;

	json_object_foreach(codes, k, v) {
		if (json_integer_value(v) > n) {
			n = json_integer_value(v);
			best = k;
		}
	}
	if (best == NULL)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%s %lld", best, n);
	return buf;
}

static void
sec_routes(FILE *out, json_t *snap, struct rates *r)
{
	const char *name;
	json_t *rt;

	fprintf(out, "%-24s %7s %7s %6s %6s %6s %7s %7s %5s  %s\n", "ROUTE",
	    "REQ", "REQ/S", "2XX", "4XX", "5XX", "P50 MS", "P99 MS", "NONE",
	    "TOP ERROR");
	json_object_foreach(json_object_get(snap, "routes"), name, rt) {
		json_t *c = json_object_get(rt, "byClass");
		json_t *lat = json_object_get(rt, "latencyMs");
		char key[96], b[6][24], p50[16], p99[16], top[64];

		snprintf(key, sizeof(key), "route:%s", name);
		fprintf(out, "%-24.24s %7s %7s %6s %6s %6s %7s %7s %5s  %s\n",
		    name, human(jnum(rt, "requests"), b[0], sizeof(b[0])),
		    rate(r, key, jnum(rt, "requests"), b[1], sizeof(b[1])),
		    human(jnum(c, "2xx"), b[2], sizeof(b[2])),
		    human(jnum(c, "4xx"), b[3], sizeof(b[3])),
		    human(jnum(c, "5xx"), b[4], sizeof(b[4])),
		    ms(json_object_get(lat, "p50"), p50, sizeof(p50)),
		    ms(json_object_get(lat, "p99"), p99, sizeof(p99)),
		    human(jnum(c, "none"), b[5], sizeof(b[5])),
		    top_code(json_object_get(rt, "byCode"), top,
			sizeof(top)));
	}
}

static void
sec_outcalls(FILE *out, json_t *snap, struct rates *r)
{
	json_t *oc = json_object_get(snap, "outcalls"), *p;
	const char *name;

	fprintf(out, "%-25s %7s %6s %6s %6s %6s %6s %7s %7s\n", "PROVIDER CALLS",
	    "CALLS", "CALL/S", "2XX", "4XX", "5XX", "FAILED", "P50 MS",
	    "P99 MS");
	if (json_object_size(oc) == 0)
		fprintf(out, "  (no outbound call yet)\n");
	json_object_foreach(oc, name, p) {
		json_t *c = json_object_get(p, "calls");
		json_t *a = json_object_get(p, "attempts");
		json_t *lat = json_object_get(p, "latencyMs");
		long long calls = 0, failed;
		const char *k;
		json_t *v;
		char key[96], b[6][24], p50[16], p99[16];

		json_object_foreach(c, k, v)
			calls += json_integer_value(v);
		failed = jnum(a, "connect_error") + jnum(a, "timeout") +
		    jnum(a, "protocol_error");
		snprintf(key, sizeof(key), "oc:%s", name);
		fprintf(out, "%-25s %7s %6s %6s %6s %6s %6s %7s %7s\n", name,
		    human(calls, b[0], sizeof(b[0])),
		    rate(r, key, calls, b[1], sizeof(b[1])),
		    human(jnum(a, "2xx"), b[2], sizeof(b[2])),
		    human(jnum(a, "4xx"), b[3], sizeof(b[3])),
		    human(jnum(a, "5xx"), b[4], sizeof(b[4])),
		    human(failed, b[5], sizeof(b[5])),
		    ms(json_object_get(lat, "p50"), p50, sizeof(p50)),
		    ms(json_object_get(lat, "p99"), p99, sizeof(p99)));
	}
}

static void
sec_ratelimits(FILE *out, json_t *snap, struct rates *r)
{
	json_t *rl = json_object_get(snap, "rateLimitPressure");
	json_t *t = json_object_get(rl, "table"), *b;
	const char *name;

	fprintf(out, "%-22s %9s %9s %9s %10s  table %lld/%lld", "RATE LIMIT",
	    "ALLOWED", "BLOCKED", "BLOCKED/S", "CONTENTION", jnum(t, "used"),
	    jnum(t, "slots"));
	if (jnum(t, "reused") > 0 || jnum(t, "probeOverflows") > 0)
		fprintf(out, ", %lld reused, %lld overflows", jnum(t, "reused"),
		    jnum(t, "probeOverflows"));
	fputc('\n', out);
	json_object_foreach(json_object_get(rl, "buckets"), name, b) {
		char key[96], bl[24], ab[24], bb[24], cb[24];

		snprintf(key, sizeof(key), "rl:%s", name);
		fprintf(out, "%-22s %9s %9s %9s %10s\n", name,
		    human(jnum(b, "allowed"), ab, sizeof(ab)),
		    human(jnum(b, "blocked"), bb, sizeof(bb)),
		    rate(r, key, jnum(b, "blocked"), bl, sizeof(bl)),
		    human(jnum(b, "contention_fallback"), cb, sizeof(cb)));
	}
}

static void
sec_circuits(FILE *out, json_t *snap, struct rates *r)
{
	const char *name;
	json_t *c;
	uint64_t now = now_ms();

	fprintf(out, "%-25s %-9s %5s %6s %6s %8s %6s %8s\n", "CIRCUIT",
	    "STATE", "FAILS", "THRESH", "OPENS", "REJECTED", "REJ/S",
	    "OPENED");
	json_object_foreach(json_object_get(snap, "circuits"), name, c) {
		json_t *n = json_object_get(c, "counters");
		char key[96], rj[24], rs[24], op[24];

		snprintf(key, sizeof(key), "cb:%s", name);
		fprintf(out, "%-25s %-9s %5lld %6lld %6lld %8s %6s %8s\n",
		    name, jstr(c, "state"), jnum(c, "consecutiveFailures"),
		    jnum(c, "threshold"), jnum(n, "opens"),
		    human(jnum(n, "rejections"), rj, sizeof(rj)),
		    rate(r, key, jnum(n, "rejections"), rs, sizeof(rs)),
		    age(jnum(c, "openedAt"), now, op, sizeof(op)));
	}
}

static void
sec_bulkheads(FILE *out, json_t *snap, struct rates *r)
{
	const char *name;
	json_t *b;

	fprintf(out, "%-25s %11s %5s %9s %9s %6s %9s\n", "BULKHEAD",
	    "IN FLIGHT", "HELD", "ACQUIRED", "SATURATED", "SAT/S",
	    "RECLAIMED");
	json_object_foreach(json_object_get(snap, "bulkheads"), name, b) {
		json_t *n = json_object_get(b, "counters");
		char used[32], key[96], ac[24], sa[24], ss[24];

		snprintf(used, sizeof(used), "%lld/%lld", jnum(b, "inFlight"),
		    jnum(b, "maxConcurrent"));
		snprintf(key, sizeof(key), "bh:%s", name);
		fprintf(out, "%-25s %11s %5lld %9s %9s %6s %9lld\n", name, used,
		    jnum(b, "held"), human(jnum(n, "acquired"), ac, sizeof(ac)),
		    human(jnum(n, "saturated"), sa, sizeof(sa)),
		    rate(r, key, jnum(n, "saturated"), ss, sizeof(ss)),
		    jnum(n, "reclaimedDead") + jnum(n, "reclaimedExpired"));
	}
}

static void
sec_admission(FILE *out, json_t *snap, struct rates *r)
{
	json_t *ca = json_object_get(snap, "chatAdmission");
	json_t *in = json_object_get(ca, "inflight"), *d, *n, *u;
	json_t *rates = json_object_get(ca, "rates");
	const char *name;
	char al[24], bl[24], bs[24];
	size_t i;

	if (!json_is_object(ca) || json_object_size(ca) == 0) {
		fprintf(out, "ADMISSION  (no admission process has written "
			     "its area)\n");
		return;
	}
	n = json_object_get(ca, "counters");
	fprintf(out, "ADMISSION  %s, shadow %s, pid %lld%s; admitted %s, "
		     "refused %s (%s/s)\n",
	    jstr(ca, "gatewayMode"),
	    json_is_true(json_object_get(ca, "shadow")) ? "on" : "off",
	    jnum(ca, "writerPid"),
	    json_is_true(json_object_get(ca, "writerAlive")) ? "" :
							       " (not running)",
	    human(jnum(n, "allowed"), al, sizeof(al)),
	    human(jnum(n, "blocked"), bl, sizeof(bl)),
	    rate(r, "adm:blocked", jnum(n, "blocked"), bs, sizeof(bs)));
	fprintf(out, "  in flight %lld (tickets %lld/%lld), users %lld; "
		     "chats/s %.1f/%lld, tools/s %.1f/%lld\n",
	    jnum(in, "global"), jnum(in, "ticketsInUse"),
	    jnum(in, "ticketCapacity"), jnum(in, "users"),
	    json_number_value(
		json_object_get(json_object_get(rates, "msgPerSec"), "level")),
	    jnum(json_object_get(rates, "msgPerSec"), "limitPerSec"),
	    json_number_value(
		json_object_get(json_object_get(rates, "toolPerSec"), "level")),
	    jnum(json_object_get(rates, "toolPerSec"), "limitPerSec"));
	fprintf(out, "  %-18s %7s %7s %9s %11s %11s\n", "DIMENSION", "ENFORCE",
	    "LIMIT", "BLOCKED", "SOFTALLOWED", "WOULDBLOCK");
	json_object_foreach(json_object_get(ca, "dimensions"), name, d)
		fprintf(out, "  %-18s %7s %7lld %9lld %11lld %11lld\n", name,
		    json_is_true(json_object_get(d, "enforce")) ? "yes" : "no",
		    jnum(d, "limit"), jnum(d, "blocked"),
		    jnum(d, "softAllowed"), jnum(d, "wouldBlock"));
	fprintf(out, "  top users:");
	json_array_foreach(json_object_get(ca, "topUsers"), i, u) {
		if (i >= 5)
			break;
		fprintf(out, "%s %s %lld", i ? "," : "", jstr(u, "user"),
		    jnum(u, "inflight"));
	}
	fprintf(out, "%s\n", i == 0 ? " none" : "");
}

/* store_error - the line of a section the store could not give */
static int
store_error(FILE *out, const char *title, json_t *o)
{
	if (o == NULL) {
		fprintf(out, "%s  (not read yet)\n", title);
		return 1;
	}
	if (json_is_string(json_object_get(o, "error"))) {
		fprintf(out, "%s  (store: %s)\n", title, jstr(o, "error"));
		return 1;
	}
	return 0;
}

/* age_of - an age in ms (null: none) as age() prints one */
static const char *
age_of(json_t *v, char *buf, size_t len)
{
	uint64_t now = now_ms();

	if (!json_is_integer(v))
		return "-";
	return age((long long)now - (long long)json_integer_value(v), now, buf,
	    len);
}

static void
queue_row(FILE *out, const char *name, json_t *counts, json_t *o)
{
	char a1[24], a2[24];

	fprintf(out, "%-22s %8lld %8lld %8lld %13s %14s\n", name,
	    jnum(counts, "queued"), jnum(counts, "running"),
	    jnum(counts, "dead"),
	    age_of(json_object_get(o, "oldestQueuedAgeMs"), a1, sizeof(a1)),
	    age_of(json_object_get(o, "oldestRunningAgeMs"), a2, sizeof(a2)));
}

static void
sec_queues(FILE *out, json_t *snap, struct rates *r)
{
	json_t *d = json_object_get(snap, "deliveryQueue");
	json_t *j = json_object_get(snap, "toolJobs");

	(void)r;
	fprintf(out, "%-22s %8s %8s %8s %13s %14s\n", "QUEUE", "QUEUED",
	    "RUNNING", "DEAD", "OLDEST QUEUED", "OLDEST RUNNING");
	if (!store_error(out, "deliveries", d))
		queue_row(out, "deliveries", d, d);
	if (!store_error(out, "tool jobs", j))
		queue_row(out, "tool jobs", json_object_get(j, "byStatus"), j);
}

static void
sec_cache(FILE *out, json_t *snap, struct rates *r)
{
	json_t *c = json_object_get(snap, "toolCache");
	json_t *by = json_object_get(c, "byNamespace"), *o;
	const char *name;

	(void)r;
	if (store_error(out, "CACHE", c))
		return;
	if (json_object_size(by) == 0) {
		fprintf(out, "CACHE  no entries\n");
		return;
	}
	fprintf(out, "%-32s %9s %12s\n", "CACHE NAMESPACE", "ENTRIES",
	    "BYTES");
	json_object_foreach(by, name, o)
		fprintf(out, "%-32s %9lld %12lld\n", name, jnum(o, "entries"),
		    jnum(o, "bytes"));
}

static void
sec_alerts(FILE *out, json_t *snap, struct rates *r)
{
	json_t *a = json_object_get(snap, "alerts"), *row;
	json_t *recent = json_object_get(a, "recent");
	char when[24];
	size_t i;

	(void)r;
	if (store_error(out, "ALERTS", a))
		return;
	if (json_array_size(recent) == 0) {
		fprintf(out, "ALERTS  none stored\n");
		return;
	}
	fprintf(out, "%-10s %-44s %-9s %s\n", "ALERT AGE", "KEY", "SENTRY",
	    "MESSAGE");
	json_array_foreach(recent, i, row) {
		if (i >= 5)
			break;
		fprintf(out, "%-10s %-44s %-9s %s\n",
		    age(jnum(row, "createdAt"), now_ms(), when, sizeof(when)),
		    jstr(row, "alertKey"), jstr(row, "sentry"),
		    jstr(row, "message"));
	}
}

static const struct section {
	const char *name;
	section_fn fn;
} sections[] = {
	{ "processes", sec_processes },
	{ "routes", sec_routes },
	{ "provider calls", sec_outcalls },
	{ "rate limits", sec_ratelimits },
	{ "circuits", sec_circuits },
	{ "bulkheads", sec_bulkheads },
	{ "admission", sec_admission },
	{ "queues", sec_queues },
	{ "cache", sec_cache },
	{ "alerts", sec_alerts },
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

/* header_line - uptime, generation, readiness and requests per second */
static void
header_line(FILE *out, json_t *snap, struct rates *r)
{
	json_t *h = json_object_get(snap, "header"), *p, *rt;
	long long req = 0, nready = 0, n = 0;
	const char *name;
	char up[24], rs[24];
	size_t i;

	json_object_foreach(json_object_get(snap, "routes"), name, rt)
		req += jnum(rt, "requests");
	json_array_foreach(json_object_get(snap, "processes"), i, p) {
		n++;
		nready += strcmp(jstr(p, "state"), "ready") == 0;
	}
	fprintf(out, "relgate %s  up %s  config gen %lld  %lld/%lld ready  "
		     "requests %lld  req/s %s\n",
	    jstr(h, "segment"),
	    age(jnum(h, "startedAt"), now_ms(), up, sizeof(up)),
	    jnum(h, "configGeneration"), nready, n, req,
	    rate(r, "requests", req, rs, sizeof(rs)));
}

/*
 * add_events - what the store holds, read-only from the state_dir of the
 * configuration in force: the monitor's events into rateLimitPressure
 * (gate/events), the idempotency keys into replayProtection
 * (gate/replay), the tool cache's rows into toolCache (gate/toolcache),
 * the tool jobs into toolJobs (gate/jobq).
 */
static void
add_events(json_t *snap)
{
	const char *dir = json_string_value(
	    json_object_get(json_object_get(snap, "config"), "state_dir"));
	struct store *st = NULL;
	char err[512];

	if (dir == NULL || store_open(&st, dir, 0, STORE_RDONLY, NULL, err,
			       sizeof(err)) != STORE_OK)
		st = NULL;
	storesnap_add(snap, st, (uint64_t)window_min * 60000, rows, 0);
	if (st != NULL)
		store_close(st);
}

/* --- one-shot ----------------------------------------------------------------*/

static void
print_text(FILE *out, json_t *snap)
{
	header_line(out, snap, NULL);
	for (size_t s = 0; s < NSECTIONS; s++)
		sections[s].fn(out, snap, NULL);
}

static void
print_config(FILE *out, json_t *snap)
{
	char *cfg = json_dumps(json_object_get(snap, "config"),
	    JSON_INDENT(2) | JSON_SORT_KEYS);

	fprintf(out, "%s\n", cfg ? cfg : "null");
	free(cfg);
}

/* --- the live view -----------------------------------------------------------*/

static struct termios saved_tty;
static int tty_raw;

static void
tty_restore(void)
{
	if (!tty_raw)
		return;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	/* cursor back, main screen back */
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	tty_raw = 0;
}

static int
tty_setup(void)
{
	static int registered;
	struct termios t;

	if (tcgetattr(STDIN_FILENO, &saved_tty) != 0)
		return -1;
	t = saved_tty;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) != 0)
		return -1;
	tty_raw = 1;
	if (!registered++)
		atexit(tty_restore);
	/* the alternate screen, cursor hidden */
	fputs("\033[?1049h\033[?25l", stdout);
	return 0;
}

struct view {
	char **line;       /* the frame's lines */
	size_t n, cap;
	size_t sec_at[NSECTIONS];
	size_t top;        /* first body line shown (any visible line) */
	size_t sec;        /* the section tab, 1-9 and 0 went to last */
	char filter[64];
	int typing;        /* reading the filter after "/" */
	unsigned cols, height;
};

static void
view_clear(struct view *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->line[i]);
	v->n = 0;
}

/* view_add - the lines of text, each a new entry */
static void
view_add(struct view *v, char *text, size_t len)
{
	char *p = text, *end = text + len;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (v->n == v->cap) {
			v->cap = v->cap ? v->cap * 2 : 128;
			v->line = xrealloc(v->line, v->cap * sizeof(*v->line));
		}
		v->line[v->n] = xmalloc(n + 1);
		memcpy(v->line[v->n], p, n);
		v->line[v->n][n] = '\0';
		v->n++;
		p += n + 1;
	}
}

/* shown - a body line passes the filter (titles always do) */
static int
shown(const struct view *v, size_t i)
{
	for (size_t s = 0; s < NSECTIONS; s++)
		if (v->sec_at[s] == i)
			return 1;
	return v->filter[0] == '\0' || strcasestr(v->line[i], v->filter);
}

static void
put_line(const char *s, unsigned cols, int reverse)
{
	size_t n = strlen(s);

	if (n > cols)
		n = cols;
	if (reverse)
		fputs("\033[7m", stdout);
	fwrite(s, 1, n, stdout);
	if (reverse)
		for (; n < cols; n++)
			fputc(' ', stdout);
	fputs(reverse ? "\033[0m\033[K\r\n" : "\033[K\r\n", stdout);
}

/* view_draw - header, as many body lines as fit, the key line */
static void
view_draw(struct view *v, const char *head)
{
	unsigned body = v->height > 2 ? v->height - 2 : 1, drawn = 0;
	size_t i, visible = 0;
	char keys[160];

	for (i = 0; i < v->n; i++)
		visible += shown(v, i);
	/* a section goes to the top even near the end: the rest of the
	 * window stays empty */
	if (v->top >= visible)
		v->top = visible > 0 ? visible - 1 : 0;
	fputs("\033[H", stdout);
	put_line(head, v->cols, 1);
	for (i = 0, visible = 0; i < v->n && drawn < body; i++) {
		if (!shown(v, i))
			continue;
		if (visible++ < v->top)
			continue;
		put_line(v->line[i], v->cols, 0);
		drawn++;
	}
	for (; drawn < body; drawn++)
		put_line("", v->cols, 0);
	if (v->typing)
		snprintf(keys, sizeof(keys), "filter: %s_", v->filter);
	else
		snprintf(keys, sizeof(keys),
		    "q quit  j/k scroll  tab/1-%zu section  / filter%s%s",
		    NSECTIONS, v->filter[0] ? "  Esc clear  filter: " : "",
		    v->filter);
	fputs("\033[7m", stdout);
	fwrite(keys, 1, strlen(keys) < v->cols ? strlen(keys) : v->cols,
	    stdout);
	fputs("\033[0m\033[K", stdout);
	fflush(stdout);
}

/* view_goto - scroll to section s (its place among the visible lines) */
static void
view_goto(struct view *v, size_t s)
{
	size_t vis = 0;

	for (size_t i = 0; i < v->n && i < v->sec_at[s]; i++)
		vis += shown(v, i);
	v->top = vis;
	v->sec = s;
}

/* view_last - top for the last page */
static size_t
view_last(const struct view *v)
{
	unsigned body = v->height > 2 ? v->height - 2 : 1;
	size_t visible = 0;

	for (size_t i = 0; i < v->n; i++)
		visible += shown(v, i);
	return visible > body ? visible - body : 0;
}

/* keys of escape sequences */
enum { K_UP = 256, K_DOWN, K_PGUP, K_PGDN, K_HOME, K_END };

/* view_key - one key; 1 to redraw */
static int
view_key(struct view *v, int c)
{
	unsigned page = v->height > 3 ? v->height - 3 : 1;
	size_t n = strlen(v->filter);

	if (v->typing) {
		if (c == '\r' || c == '\n') {
			v->typing = 0;
		} else if (c == 27) {
			v->typing = 0;
			v->filter[0] = '\0';
		} else if ((c == 127 || c == 8) && n > 0) {
			v->filter[n - 1] = '\0';
		} else if (c >= ' ' && c < 127 && n + 1 < sizeof(v->filter)) {
			v->filter[n] = (char)c;
			v->filter[n + 1] = '\0';
		}
		v->top = 0;
		return 1;
	}
	switch (c) {
	case 'q':
	case 'Q':
		done = 1;
		return 0;
	case 'j':
	case K_DOWN:
		v->top++;
		break;
	case 'k':
	case K_UP:
		if (v->top > 0)
			v->top--;
		break;
	case ' ':
	case K_PGDN:
		v->top += page;
		break;
	case 'b':
	case K_PGUP:
		v->top = v->top > page ? v->top - page : 0;
		break;
	case 'g':
	case K_HOME:
		v->top = 0;
		v->sec = 0;
		break;
	case 'G':
	case K_END:
		v->top = view_last(v);
		break;
	case '\t':
		view_goto(v, (v->sec + 1) % NSECTIONS);
		break;
	case '/':
		v->typing = 1;
		v->filter[0] = '\0';
		break;
	case 27:
		v->filter[0] = '\0';
		break;
	default:
		if (c >= '1' && c <= '9' && c < '1' + (int)NSECTIONS)
			view_goto(v, (size_t)(c - '1'));
		else if (c == '0' && NSECTIONS >= 10)
			view_goto(v, 9); /* the tenth */
		else
			return 0;
	}
	return 1;
}

/* read_keys - what the terminal sent; the arrows and page keys come as
 * ESC [ A..D, ESC [ 5 ~ and so on. */
static int
read_keys(struct view *v)
{
	unsigned char buf[64];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	int redraw = 0;

	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == 27 && i + 1 < n &&
		    (buf[i + 1] == '[' || buf[i + 1] == 'O')) {
			/* CSI or SS3: parameters 0x30-0x3f, then the final
			 * byte 0x40-0x7e; keys we do not know are ignored */
			long p1 = 0;
			int k = 0, first = 1;

			for (i += 2; i < n && buf[i] >= 0x30 && buf[i] <= 0x3f;
			     i++) {
				if (buf[i] == ';')
					first = 0;
				else if (first && buf[i] >= '0' && buf[i] <= '9')
					p1 = p1 * 10 + (buf[i] - '0');
			}
			if (i >= n)
				break;
			switch (buf[i]) {
			case 'A': k = K_UP; break;
			case 'B': k = K_DOWN; break;
			case 'H': k = K_HOME; break;
			case 'F': k = K_END; break;
			case '~':
				k = p1 == 5 ? K_PGUP : p1 == 6 ? K_PGDN :
				    p1 == 1 ? K_HOME : p1 == 4 ? K_END : 0;
				break;
			}
			if (k != 0)
				redraw |= view_key(v, k);
			continue;
		}
		redraw |= view_key(v, buf[i]);
	}
	return redraw;
}

static void
term_size(struct view *v)
{
	struct winsize ws;

	v->cols = 80;
	v->height = 24;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 &&
	    ws.ws_row > 0) {
		v->cols = ws.ws_col;
		v->height = ws.ws_row;
	}
}

/* The sections the live view reads from the store, read again every
 * STORE_REFRESH_MS (a scan of the cache or the queues is not for every
 * second). */
#define STORE_REFRESH_MS 5000
static const char *const store_keys[] = { "toolCache", "toolJobs",
	"deliveryQueue", "alerts", "toolQueueAlerts", "replayProtection" };

/* store_sections - the store's sections into snap, read again when the
 * last read is older than STORE_REFRESH_MS */
static void
store_sections(json_t *snap)
{
	static json_t *stored;
	static uint64_t stored_at;

	if (stored == NULL || mono_ms() - stored_at >= STORE_REFRESH_MS) {
		json_t *full = json_deep_copy(snap);

		add_events(full);
		json_decref(stored);
		stored = json_object();
		for (size_t i = 0; i < RG_NELEM(store_keys); i++)
			json_object_set(stored, store_keys[i],
			    json_object_get(full, store_keys[i]));
		json_decref(full);
		stored_at = mono_ms();
	}
	for (size_t i = 0; i < RG_NELEM(store_keys); i++)
		json_object_set(snap, store_keys[i],
		    json_object_get(stored, store_keys[i]));
}

/* frame - the view's lines from a new snapshot; the header into head */
static void
frame(struct view *v, const struct shm_seg *seg, const char *name,
    struct rates *r, char *head, size_t hlen)
{
	json_t *snap = snapshot_json(seg, (long)rows);
	char *text = NULL;
	size_t len = 0;
	FILE *mem;

	store_sections(snap);
	json_object_set_new(json_object_get(snap, "header"), "segment",
	    json_string(name));
	r->now_ms = mono_ms();
	r->cur = json_object();
	mem = open_memstream(&text, &len);
	header_line(mem, snap, r);
	fclose(mem);
	snprintf(head, hlen, "%.*s", (int)(len > 0 ? len - 1 : 0), text);
	free(text);
	view_clear(v);
	for (size_t s = 0; s < NSECTIONS; s++) {
		text = NULL;
		len = 0;
		mem = open_memstream(&text, &len);
		sections[s].fn(mem, snap, r);
		if (s + 1 < NSECTIONS)
			fputc('\n', mem);
		fclose(mem);
		v->sec_at[s] = v->n;
		view_add(v, text, len);
		free(text);
	}
	json_decref(r->prev);
	r->prev = r->cur;
	r->prev_ms = r->now_ms;
	json_decref(snap);
}

static void
live(const struct shm_seg *seg, const char *name)
{
	struct view v = { 0 };
	struct rates r = { 0 };
	char head[512];
	uint64_t next = 0;

	signal(SIGWINCH, on_winch);
	signal(SIGTSTP, on_tstp);
	term_size(&v);
	if (tty_setup() != 0) {
		fprintf(stderr, "relstat: the terminal cannot be set up for "
				"the live view (-1 prints once)\n");
		exit(2);
	}
	fputs("\033[2J", stdout);
	while (!done) {
		struct pollfd pfd = { STDIN_FILENO, POLLIN, 0 };
		uint64_t now = mono_ms();
		int redraw = 0;

		if (now >= next) {
			frame(&v, seg, name, &r, head, sizeof(head));
			next = now + 1000;
			redraw = 1;
		}
		if (suspended) {
			/* Ctrl-Z: the terminal as it was, stop; on fg, the
			 * view again */
			suspended = 0;
			tty_restore();
			signal(SIGTSTP, SIG_DFL);
			raise(SIGTSTP);
			signal(SIGTSTP, on_tstp);
			if (tty_setup() != 0)
				break;
			resized = 1;
		}
		if (resized) {
			resized = 0;
			term_size(&v);
			fputs("\033[2J", stdout);
			redraw = 1;
		}
		if (redraw)
			view_draw(&v, head);
		now = mono_ms();
		if (poll(&pfd, 1, next > now ? (int)(next - now) : 0) > 0 &&
		    read_keys(&v))
			view_draw(&v, head);
	}
	view_clear(&v);
	free(v.line);
	json_decref(r.prev);
	tty_restore();
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = getenv("RELGATE_SHM_NAME");
	struct shm_seg seg;
	char err[512];
	int opt, mode = 0; /* 0 live, 1 text, 2 json, 3 config */
	json_t *snap;

	while ((opt = getopt_long(argc, argv, "n:1jcw:l:h", longopts,
		    NULL)) != -1) {
		switch (opt) {
		case 'n':
			name = optarg;
			break;
		case '1':
			mode = 1;
			break;
		case 'j':
			mode = 2;
			break;
		case 'c':
			mode = 3;
			break;
		case 'w':
			window_min = parse_pos(optarg, "-w MINUTES");
			break;
		case 'l':
			rows = (unsigned)parse_pos(optarg, "-l LIMIT");
			break;
		case 'h':
			usage(0);
			break;
		case 'V':
			printf("relstat %s\n", RG_VERSION);
			return 0;
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (name == NULL || name[0] == '\0')
		name = "/relgate";
	if (mode == 0 &&
	    (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO)))
		mode = 1;
	if (shm_attach(&seg, name, 0, err, sizeof(err)) != 0) {
		fprintf(stderr, "relstat: %s\n", err);
		return 2;
	}
	signal(SIGINT, on_int);
	signal(SIGTERM, on_int);
	signal(SIGQUIT, on_int);
	signal(SIGHUP, on_int);
	if (mode == 0) {
		live(&seg, name);
		shm_detach(&seg);
		return 0;
	}
	snap = snapshot_json(&seg, (long)rows);
	json_object_set_new(json_object_get(snap, "header"), "segment",
	    json_string(name));
	if (mode == 1 || mode == 2)
		add_events(snap);
	if (mode == 2) {
		char *s = json_dumps(snap, JSON_INDENT(2));

		printf("%s\n", s);
		free(s);
	} else if (mode == 3) {
		print_config(stdout, snap);
	} else {
		print_text(stdout, snap);
	}
	fflush(stdout);
	json_decref(snap);
	shm_detach(&seg);
	return 0;
}
