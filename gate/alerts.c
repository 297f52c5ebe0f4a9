/*
 * alerts - rule, rows and Sentry envelope of the monitor's alerts (see
 * alerts.h).
 */
#include "gate/alerts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "util/util.h"

int
alert_dsn_parse(const char *dsn, struct alert_dsn *out, char *err,
    size_t errlen)
{
	const char *scheme_end, *at, *host, *slash;
	size_t slen;

	memset(out, 0, sizeof(*out));
	scheme_end = dsn != NULL ? strstr(dsn, "://") : NULL;
	if (scheme_end == NULL) {
		snprintf(err, errlen, "not scheme://KEY@HOST/PROJECT");
		return -1;
	}
	slen = (size_t)(scheme_end - dsn);
	if (!((slen == 4 && strncmp(dsn, "http", 4) == 0) ||
		(slen == 5 && strncmp(dsn, "https", 5) == 0))) {
		snprintf(err, errlen, "the scheme must be http or https");
		return -1;
	}
	host = scheme_end + 3;
	at = strchr(host, '@');
	slash = strchr(host, '/');
	if (at == NULL || (slash != NULL && slash < at) || at == host ||
	    *host == ':') {
		snprintf(err, errlen, "no KEY@ before the host");
		return -1;
	}
	if ((size_t)(at - host) >= sizeof(out->key)) {
		snprintf(err, errlen, "the key is too long");
		return -1;
	}
	/* KEY:SECRET (old DSNs): the public key is before the colon */
	snprintf(out->key, sizeof(out->key), "%.*s",
	    (int)strcspn(host, ":@"), host);
	host = at + 1;
	slash = strchr(host, '/');
	if (slash == NULL || slash == host || slash[1] == '\0' ||
	    strchr(slash + 1, '/') != NULL || strchr(slash + 1, '?') != NULL) {
		snprintf(err, errlen, "not scheme://KEY@HOST/PROJECT");
		return -1;
	}
	if ((size_t)snprintf(out->url, sizeof(out->url),
		"%.*s://%.*s/api/%s/envelope/", (int)slen, dsn,
		(int)(slash - host), host, slash + 1) >= sizeof(out->url)) {
		snprintf(err, errlen, "too long");
		return -1;
	}
	return 0;
}

/* due_new - a due alert with the members every kind has */
static json_t *
due_new(const char *key, const char *kind, const char *source,
    uint64_t value, uint64_t threshold, uint64_t window_ms,
    const char *message)
{
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:s}", "alertKey", key,
	    "kind", kind, "source", source, "value", (json_int_t)value,
	    "threshold", (json_int_t)threshold, "windowMs",
	    (json_int_t)window_ms, "level", "warning", "message", message);
}

json_t *
alert_ratelimit_rule(json_t *summary, uint64_t min, uint64_t window_ms)
{
	json_t *per = json_object(), *due = json_array(), *v;
	const char *k;

	/* "source:bucket:outcome" only (4 parts are by reason) */
	json_object_foreach(summary, k, v) {
		char source[64], bucket[64], outcome[64], key[200];
		json_t *sum;

		if (sscanf(k, "%63[^:]:%63[^:]:%63[^:]", source, bucket,
			outcome) != 3 ||
		    strchr(strchr(strchr(k, ':') + 1, ':') + 1, ':') != NULL)
			continue;
		if (strcmp(outcome, "blocked") != 0 &&
		    strcmp(outcome, "contention_fallback") != 0)
			continue;
		snprintf(key, sizeof(key), "ratelimit:%s:%s", source, bucket);
		sum = json_object_get(per, key);
		if (sum == NULL) {
			sum = json_pack("{s:s,s:s,s:I}", "source", source,
			    "bucket", bucket, "occurrences", (json_int_t)0);
			json_object_set_new(per, key, sum);
		}
		json_integer_set(json_object_get(sum, "occurrences"),
		    json_integer_value(json_object_get(sum, "occurrences")) +
			json_integer_value(json_object_get(v, "occurrences")));
	}
	json_object_foreach(per, k, v) {
		uint64_t n = (uint64_t)json_integer_value(
		    json_object_get(v, "occurrences"));
		char msg[512];
		json_t *d;

		if (n < min)
			continue;
		snprintf(msg, sizeof(msg),
		    "%s: %llu blocked or contention events in the last %llu s "
		    "(threshold %llu)",
		    k, (unsigned long long)n,
		    (unsigned long long)(window_ms / 1000),
		    (unsigned long long)min);
		d = due_new(k, "ratelimit", json_string_value(
		    json_object_get(v, "source")), n, min, window_ms, msg);
		json_object_set(d, "bucket", json_object_get(v, "bucket"));
		json_object_set(d, "occurrences",
		    json_object_get(v, "occurrences"));
		json_array_append_new(due, d);
	}
	json_decref(per);
	return due;
}

/* ms_text - a duration for a message: "850 ms", "42 s", "12 min" */
static void
ms_text(uint64_t ms, char *buf, size_t len)
{
	if (ms < 10000)
		snprintf(buf, len, "%llu ms", (unsigned long long)ms);
	else if (ms < 600000)
		snprintf(buf, len, "%llu s", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llu min",
		    (unsigned long long)(ms / 60000));
}

/* queue_add - to due, the alert "queue:deliveries:<name>" when value is
 * above limit; what: the message after the key */
static void
queue_add(json_t *due, const char *name, uint64_t value, uint64_t limit,
    uint64_t window_ms, const char *what)
{
	char key[96], msg[512];

	if (value <= limit)
		return;
	snprintf(key, sizeof(key), "queue:deliveries:%s", name);
	snprintf(msg, sizeof(msg), "%s: %s", key, what);
	json_array_append_new(due, due_new(key, "queue", "deliveries", value,
	    limit, window_ms, msg));
}

/* age_text - "<lead> <age> (more than <limit>)" */
static void
age_text(char *buf, size_t len, const char *lead, uint64_t age,
    uint64_t limit)
{
	char a[32], b[32];

	ms_text(age, a, sizeof(a));
	ms_text(limit, b, sizeof(b));
	snprintf(buf, len, "%s %s (more than %s)", lead, a, b);
}

json_t *
alert_queue_rule(const struct delivq_stats *s,
    const struct alert_queue_limits *l)
{
	json_t *due = json_array();
	const char *lb = s->truncated ? "at least " : "";
	char what[256], w[32];

	snprintf(what, sizeof(what),
	    "%s%llu deliveries waiting for the backend (more than %llu)", lb,
	    (unsigned long long)s->queued, (unsigned long long)l->max_queued);
	queue_add(due, "queued", s->queued, l->max_queued, 0, what);
	ms_text(l->window_ms, w, sizeof(w));
	snprintf(what, sizeof(what),
	    "%s%llu deliveries went to the dead letters in the last %s (more "
	    "than %llu; %llu dead letters held)",
	    lb, (unsigned long long)s->dead_recent, w,
	    (unsigned long long)l->max_dead, (unsigned long long)s->dead);
	queue_add(due, "dead_letters", s->dead_recent, l->max_dead,
	    l->window_ms, what);
	age_text(what, sizeof(what), "the oldest waiting delivery has waited",
	    s->oldest_queued_age_ms, l->max_queued_age);
	queue_add(due, "oldest_queued_age", s->oldest_queued_age_ms,
	    l->max_queued_age, 0, what);
	age_text(what, sizeof(what),
	    "a delivery attempt has been running for",
	    s->oldest_running_age_ms, l->max_running_age);
	queue_add(due, "oldest_running_age", s->oldest_running_age_ms,
	    l->max_running_age, 0, what);
	return due;
}

json_t *
alert_bulkhead_rule(const char *provider, const char *reporter,
    uint64_t max_concurrent)
{
	char key[128], msg[512];
	json_t *d;

	snprintf(key, sizeof(key), "bulkhead:%s", provider);
	snprintf(msg, sizeof(msg),
	    "%s: saturated, all %llu of its places were taken and calls were "
	    "refused (seen by %s)",
	    key, (unsigned long long)max_concurrent, reporter);
	d = due_new(key, "bulkhead", reporter, max_concurrent, max_concurrent,
	    0, msg);
	json_object_set_new(d, "provider", json_string(provider));
	return d;
}

void
alert_crash_note(struct alert_crashes *c, unsigned slot, uint32_t role,
    uint32_t instance, uint64_t restarts, uint64_t now)
{
	struct alert_crash_slot *s;

	if (slot >= ALERT_CRASH_SLOTS)
		return;
	s = &c->slot[slot];
	if (!s->known || s->role != role || s->instance != instance ||
	    restarts < s->restarts) {
		memset(s, 0, sizeof(*s));
		s->known = 1;
		s->role = role;
		s->instance = instance;
		s->restarts = restarts;
		return;
	}
	/* (more than the ring holds: the ring's worth) */
	for (uint64_t k = restarts - s->restarts < ALERT_CRASH_KEEP ?
		 restarts - s->restarts : ALERT_CRASH_KEEP;
	     k > 0; k--) {
		s->at[s->next] = now;
		s->next = (s->next + 1) % ALERT_CRASH_KEEP;
		if (s->n < ALERT_CRASH_KEEP)
			s->n++;
	}
	s->restarts = restarts;
}

unsigned
alert_crash_count(const struct alert_crashes *c, unsigned slot,
    uint64_t since)
{
	const struct alert_crash_slot *s;
	unsigned n = 0;

	if (slot >= ALERT_CRASH_SLOTS)
		return 0;
	s = &c->slot[slot];
	for (unsigned i = 0; i < s->n; i++)
		n += s->at[i] >= since;
	return n;
}

json_t *
alert_crashloop_rule(json_t *procs, uint64_t min, uint64_t window_ms)
{
	json_t *due = json_array(), *p;
	size_t i;

	json_array_foreach(procs, i, p) {
		uint64_t n = (uint64_t)json_integer_value(
		    json_object_get(p, "restartsInWindow"));
		const char *role = json_string_value(json_object_get(p,
		    "role"));
		const char *exit = json_string_value(json_object_get(p,
		    "lastExit"));
		char key[128], msg[512], w[32];
		json_t *d;

		if (role == NULL || n < min)
			continue;
		ms_text(window_ms, w, sizeof(w));
		snprintf(key, sizeof(key), "crashloop:%s.%lld", role,
		    (long long)json_integer_value(json_object_get(p,
			"instance")));
		snprintf(msg, sizeof(msg),
		    "%s: restarted %llu times in the last %s (threshold %llu, "
		    "%lld in all; last exit: %s)",
		    key, (unsigned long long)n, w, (unsigned long long)min,
		    (long long)json_integer_value(json_object_get(p,
			"restarts")),
		    exit != NULL ? exit : "none");
		d = due_new(key, "crashloop", role, n, min, window_ms, msg);
		json_object_set(d, "instance", json_object_get(p, "instance"));
		json_object_set(d, "restarts", json_object_get(p, "restarts"));
		json_object_set(d, "lastExit", json_object_get(p, "lastExit"));
		json_array_append_new(due, d);
	}
	return due;
}

json_t *
alert_store_rule(uint64_t used, uint64_t map, uint64_t pct)
{
	json_t *due = json_array(), *d;
	char msg[512];
	uint64_t have;

	/* used * 100 >= map * pct, without rounding down the usage */
	if (map == 0 || used * 100 < map * pct)
		return due;
	have = used * 100 / map;
	/* KiB below 10 MiB: a small map reads "576 of 1024 KiB" */
	snprintf(msg, sizeof(msg),
	    "store:map_usage: the LMDB map is %llu %% used (%llu of %llu "
	    "%s, threshold %llu %%); writes are refused when it is full: "
	    "raise store.map_size_mb",
	    (unsigned long long)have,
	    (unsigned long long)(used >> (map < (10u << 20) ? 10 : 20)),
	    (unsigned long long)(map >> (map < (10u << 20) ? 10 : 20)),
	    map < (10u << 20) ? "KiB" : "MiB", (unsigned long long)pct);
	d = due_new("store:map_usage", "store", "store", have, pct, 0, msg);
	json_object_set_new(d, "usedBytes", json_integer((json_int_t)used));
	json_object_set_new(d, "mapBytes", json_integer((json_int_t)map));
	json_array_append_new(due, d);
	return due;
}

struct last_ctx {
	uint64_t at;
};

static int
last_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct last_ctx *c = arg;
	json_t *o = json_loadb(val, vlen, 0, NULL);
	uint64_t at = (uint64_t)json_integer_value(
	    json_object_get(o, "createdAt"));

	(void)key;
	(void)klen;
	(void)expires;
	if (at > c->at)
		c->at = at;
	json_decref(o);
	return 0;
}

uint64_t
alert_last(struct store *st, const char *alert_key)
{
	struct last_ctx c = { 0 };
	char prefix[256];
	int n = snprintf(prefix, sizeof(prefix), "%s|", alert_key);

	if (n <= 0 || (size_t)n >= sizeof(prefix))
		return 0;
	if (store_scan(st, STORE_ALERTS, prefix, (size_t)n, now_ms(),
		last_row, &c) != STORE_OK)
		return UINT64_MAX;
	return c.at;
}

int
alert_in_cooldown(uint64_t last, uint64_t now, uint64_t cooldown_ms)
{
	return last != 0 && (last == UINT64_MAX || now < last + cooldown_ms);
}

json_t *
alert_row(json_t *due, int sentry, uint64_t now)
{
	json_t *row = json_deep_copy(due);

	if (json_object_get(row, "level") == NULL)
		json_object_set_new(row, "level", json_string("warning"));
	json_object_set_new(row, "createdAt", json_integer((json_int_t)now));
	json_object_set_new(row, "expiresAt",
	    json_integer((json_int_t)(now + ALERT_TTL_MS)));
	json_object_set_new(row, "sentry",
	    json_string(sentry ? "pending" : "off"));
	json_object_set_new(row, "sentryAttempts", json_integer(0));
	json_object_set_new(row, "sentryError", json_string(""));
	return row;
}

void
alert_key_of(json_t *row, char *key, size_t len)
{
	snprintf(key, len, "%s|%016llx",
	    json_string_value(json_object_get(row, "alertKey")),
	    (unsigned long long)json_integer_value(
		json_object_get(row, "createdAt")));
}

int
alert_put(struct store_txn *txn, json_t *row)
{
	char key[300], *text = json_dumps(row, JSON_COMPACT);
	int rc;

	if (text == NULL)
		return STORE_EIO;
	alert_key_of(row, key, sizeof(key));
	rc = store_txn_put(txn, STORE_ALERTS, key, strlen(key), text,
	    strlen(text),
	    (uint64_t)json_integer_value(json_object_get(row, "expiresAt")));
	free(text);
	return rc;
}

struct list_ctx {
	const char *state, *kind;
	json_t *out;
};

/* str_is - member k of o is the string want */
static int
str_is(json_t *o, const char *k, const char *want)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v != NULL && strcmp(v, want) == 0;
}

static int
list_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct list_ctx *c = arg;
	json_t *o = json_loadb(val, vlen, 0, NULL);

	(void)key;
	(void)klen;
	(void)expires;
	if (o == NULL)
		return 0;
	if ((c->state != NULL && !str_is(o, "sentry", c->state)) ||
	    (c->kind != NULL && !str_is(o, "kind", c->kind))) {
		json_decref(o);
		return 0;
	}
	json_array_append_new(c->out, o);
	return 0;
}

static int
newest_first(const void *a, const void *b)
{
	json_int_t x = json_integer_value(
	    json_object_get(*(json_t *const *)a, "createdAt"));
	json_int_t y = json_integer_value(
	    json_object_get(*(json_t *const *)b, "createdAt"));

	return x < y ? 1 : x > y ? -1 : 0;
}

int
alert_list(struct store *st, const char *state, const char *kind,
    size_t limit, json_t *out)
{
	json_t *all = json_array();
	struct list_ctx c = { state, kind, all };
	size_t n;
	json_t **v;
	int rc = store_scan(st, STORE_ALERTS, NULL, 0, now_ms(), list_row, &c);

	n = json_array_size(all);
	v = xcalloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(all, i);
	qsort(v, n, sizeof(*v), newest_first);
	for (size_t i = 0; i < n && (limit == 0 || i < limit); i++)
		json_array_append(out, v[i]);
	free(v);
	json_decref(all);
	return rc;
}

char *
alert_envelope(json_t *row, uint64_t now, size_t *len)
{
	char id[33], ts[32], key[300], *head, *item, *event, *out;
	json_t *ev;
	time_t sec = (time_t)(now / 1000);
	struct tm tm;

	uint64_t h;

	/* the event id comes from the row: an alert sent again (its first
	 * send may have reached Sentry after all) is the same event */
	alert_key_of(row, key, sizeof(key));
	h = fnv1a(FNV1A_INIT, key, strlen(key));
	snprintf(id, sizeof(id), "%016llx%016llx",
	    (unsigned long long)mix64(h), (unsigned long long)mix64(~h));
	gmtime_r(&sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ev = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:{s:O,s:O,s:O}}",
	    "event_id", id, "timestamp", ts, "platform", "c", "level",
	    json_string_value(json_object_get(row, "level")), "logger",
	    "relgate", "message",
	    json_string_value(json_object_get(row, "message")), "tags",
	    "alert_key", json_object_get(row, "alertKey"), "source",
	    json_object_get(row, "source"), "kind",
	    json_object_get(row, "kind"));
	event = ev != NULL ? json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS) :
			     NULL;
	json_decref(ev);
	head = xasprintf("{\"event_id\":\"%s\",\"sent_at\":\"%s\","
			 "\"sdk\":{\"name\":\"relgate\",\"version\":\"%s\"}}",
	    id, ts, PACKAGE_VERSION);
	item = xasprintf("{\"type\":\"event\",\"length\":%zu}",
	    event != NULL ? strlen(event) : 0);
	out = xasprintf("%s\n%s\n%s\n", head, item, event ? event : "");
	*len = strlen(out);
	free(head);
	free(item);
	free(event);
	return out;
}

void
alert_snapshot(json_t *snap, struct store *st, uint64_t window_ms,
    size_t limit)
{
	json_t *rl = json_object_get(snap, "rateLimitPressure");
	json_t *recent = json_array(), *queue = json_array(), *v;
	uint64_t since = now_ms() - window_ms;
	json_int_t in_window = 0;
	size_t i;

	if (st != NULL) {
		(void)alert_list(st, NULL, "ratelimit", limit, recent);
		(void)alert_list(st, NULL, "queue", 0, queue);
	}
	json_array_foreach(queue, i, v)
		in_window += (uint64_t)json_integer_value(json_object_get(v,
				 "createdAt")) >= since;
	while (limit != 0 && json_array_size(queue) > limit)
		json_array_remove(queue, json_array_size(queue) - 1);
	if (json_is_object(rl))
		json_object_set_new(rl, "recentAlerts", recent);
	else
		json_decref(recent);
	json_object_set_new(snap, "toolQueueAlerts",
	    json_pack("{s:o,s:I,s:I}", "recent", queue, "alertsInWindow",
		in_window, "windowMs", (json_int_t)window_ms));
}
