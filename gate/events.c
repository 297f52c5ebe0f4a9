/*
 * events - deduplicated rate-limit and admission events (see events.h).
 */
#include "gate/events.h"

#include <stdio.h>
#include <string.h>

#include "util/util.h"

static const char *const outcome_names[] = { "allowed", "blocked",
	"contention_fallback", "would_block" };

const char *
ev_outcome_name(unsigned outcome)
{
	return outcome < RG_NELEM(outcome_names) ? outcome_names[outcome] :
						   "unknown";
}

/* fnv - FNV-1a over s, continuing h; a separator after each field */
static uint64_t
fnv(uint64_t h, struct proto_str s)
{
	static const unsigned char sep = 0x1f;

	return fnv1a(fnv1a(h, s.p, s.len), &sep, 1);
}

static void
copy(char *dst, size_t len, struct proto_str s)
{
	size_t n = s.len < len - 1 ? s.len : len - 1;

	memcpy(dst, s.p, n);
	dst[n] = '\0';
}

/* same - the row is of these five values */
static int
same(const struct ev_row *r, const struct proto_rl_event *e)
{
	return r->outcome == e->outcome && proto_str_eq(e->source, r->source) &&
	    proto_str_eq(e->bucket, r->bucket) && proto_str_eq(e->key, r->key) &&
	    proto_str_eq(e->reason, r->reason);
}

int
ev_note(struct ev_table *t, const struct proto_rl_event *e,
    void (*flush)(void *arg, const struct ev_row *r), void *arg)
{
	uint64_t window = e->created_at / EV_WINDOW_MS * EV_WINDOW_MS;
	uint64_t h = FNV1A_INIT;
	uint32_t count = e->count > 0 ? e->count : 1;
	unsigned i, probe;
	struct ev_row *r, one;

	h = fnv(h, e->source);
	h = fnv(h, e->bucket);
	h = fnv(h, e->key);
	h = fnv(h, e->reason);
	h ^= e->outcome;
	h = mix64(h);
	i = (unsigned)(mix64(h ^ window) % EV_SLOTS);
	for (probe = 0; probe < 16; probe++, i = (i + 1) % EV_SLOTS) {
		r = &t->row[i];
		if (!t->used[i])
			break;
		if (r->window == window && r->hash == h && same(r, e)) {
			r->count += count;
			return 0;
		}
	}
	if (probe == 16 || t->n + 1 >= EV_SLOTS) {
		/* no room: this occurrence is a row of its own, written now
		 * (ev_write adds it to a stored row of the same key) */
		memset(&one, 0, sizeof(one));
		r = &one;
		i = EV_SLOTS;
	} else {
		memset(r, 0, sizeof(*r));
		t->used[i] = 1;
		t->n++;
	}
	r->window = window;
	r->hash = h;
	r->created_at = e->created_at;
	r->count = count;
	r->retry_after_ms = e->retry_after_ms;
	r->outcome = e->outcome;
	copy(r->source, sizeof(r->source), e->source);
	copy(r->bucket, sizeof(r->bucket), e->bucket);
	copy(r->key, sizeof(r->key), e->key);
	copy(r->reason, sizeof(r->reason), e->reason);
	copy(r->path, sizeof(r->path), e->path);
	copy(r->method, sizeof(r->method), e->method);
	if (i == EV_SLOTS)
		flush(arg, r);
	return 1;
}

void
ev_flush(struct ev_table *t, uint64_t now_ms, int all,
    void (*flush)(void *arg, const struct ev_row *r), void *arg)
{
	for (unsigned i = 0; i < EV_SLOTS && t->n > 0; i++) {
		if (!t->used[i] ||
		    (!all && t->row[i].window + EV_WINDOW_MS > now_ms))
			continue;
		flush(arg, &t->row[i]);
		t->used[i] = 0;
		t->n--;
	}
	/* a removed row may have cut a probe run: put what is left in again,
	 * from a copy (moving rows in place could pass one twice) */
	if (t->n > 0) {
		struct ev_row *left = xmalloc(t->n * sizeof(*left));
		unsigned n = 0;

		for (unsigned i = 0; i < EV_SLOTS; i++)
			if (t->used[i]) {
				left[n++] = t->row[i];
				t->used[i] = 0;
			}
		for (unsigned k = 0; k < n; k++) {
			unsigned j = (unsigned)(mix64(left[k].hash ^
						   left[k].window) %
			    EV_SLOTS);

			while (t->used[j])
				j = (j + 1) % EV_SLOTS;
			t->row[j] = left[k];
			t->used[j] = 1;
		}
		t->n = n;
		free(left);
	}
}

static void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

int
ev_write(struct store_txn *txn, const struct ev_row *r, uint64_t ttl_ms)
{
	unsigned char key[EV_KEY_LEN];
	const void *old;
	size_t olen;
	uint64_t count = r->count, expires = r->window + ttl_ms;
	json_t *o;
	char *text;
	int rc;

	put_be64(key, r->window);
	put_be64(key + 8, r->hash);
	o = NULL;
	if (store_txn_get(txn, STORE_EVENTS, key, sizeof(key), 0, &old, &olen,
		NULL) == STORE_OK &&
	    (o = json_loadb(old, olen, 0, NULL)) != NULL) {
		/* the window's row is there: it keeps its first occurrence,
		 * these add to its count */
		count += (uint64_t)json_integer_value(
		    json_object_get(o, "count"));
		json_object_set_new(o, "count", json_integer((json_int_t)count));
		json_object_set_new(o, "duplicates",
		    json_integer((json_int_t)(count - 1)));
	}
	if (o == NULL)
		o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:I,s:I,"
			      "s:I,s:I}",
		    "source", r->source, "bucket", r->bucket, "key", r->key,
		    "outcome", ev_outcome_name(r->outcome), "reason",
		    r->reason, "retryAfterMs", (json_int_t)r->retry_after_ms,
		    "path", r->path, "method", r->method, "createdAt",
		    (json_int_t)r->created_at, "expiresAt",
		    (json_int_t)expires, "count", (json_int_t)count,
		    "duplicates", (json_int_t)(count - 1));
	if (o == NULL)
		return STORE_EIO;
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	rc = store_txn_put(txn, STORE_EVENTS, key, sizeof(key), text,
	    strlen(text), expires);
	free(text);
	return rc;
}

struct sum_ctx {
	uint64_t since;
	json_t *summary, *recent;
	size_t limit;
};

static void
add(json_t *summary, const char *key, json_int_t count)
{
	json_t *s = json_object_get(summary, key);

	if (s == NULL) {
		s = json_pack("{s:I,s:I,s:I}", "events", (json_int_t)0,
		    "occurrences", (json_int_t)0, "duplicates", (json_int_t)0);
		json_object_set_new(summary, key, s);
	}
	json_integer_set(json_object_get(s, "events"),
	    json_integer_value(json_object_get(s, "events")) + 1);
	json_integer_set(json_object_get(s, "occurrences"),
	    json_integer_value(json_object_get(s, "occurrences")) + count);
	json_integer_set(json_object_get(s, "duplicates"),
	    json_integer_value(json_object_get(s, "duplicates")) + count - 1);
}

static int
sum_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct sum_ctx *c = arg;
	json_t *o;
	json_int_t count;
	const char *reason;
	char k[256];

	(void)key;
	(void)klen;
	(void)expires;
	o = json_loadb(val, vlen, 0, NULL);
	if (o == NULL)
		return 0;
	if ((uint64_t)json_integer_value(json_object_get(o, "createdAt")) <
	    c->since) {
		json_decref(o);
		return 0;
	}
	count = json_integer_value(json_object_get(o, "count"));
	reason = json_string_value(json_object_get(o, "reason"));
	snprintf(k, sizeof(k), "%s:%s:%s",
	    json_string_value(json_object_get(o, "source")),
	    json_string_value(json_object_get(o, "bucket")),
	    json_string_value(json_object_get(o, "outcome")));
	if (c->summary != NULL) {
		add(c->summary, k, count);
		if (reason != NULL && reason[0] != '\0') {
			size_t n = strlen(k);

			snprintf(k + n, sizeof(k) - n, ":%s", reason);
			add(c->summary, k, count);
		}
	}
	if (c->recent != NULL && c->limit > 0) {
		/* rows come oldest first: keep the newest limit */
		json_array_insert_new(c->recent, 0, o);
		if (json_array_size(c->recent) > c->limit)
			json_array_remove(c->recent, c->limit);
		return 0;
	}
	json_decref(o);
	return 0;
}

int
ev_summary(struct store *st, uint64_t since_ms, json_t *summary,
    json_t *recent, size_t limit)
{
	struct sum_ctx c = { since_ms, summary, recent, limit };

	return store_scan(st, STORE_EVENTS, NULL, 0, now_ms(), sum_row, &c);
}

void
ev_snapshot(json_t *snap, struct store *st, uint64_t window_ms,
    size_t limit)
{
	json_t *rl = json_object_get(snap, "rateLimitPressure");
	json_t *sum = json_object(), *recent = json_array();
	uint64_t now = now_ms();
	int rc = st != NULL ? ev_summary(st,
	    now > window_ms ? now - window_ms : 0, sum, recent, limit) :
	    STORE_EIO;

	if (!json_is_object(rl)) {
		rl = json_object();
		json_object_set_new(snap, "rateLimitPressure", rl);
	}
	json_object_set_new(rl, "windowMinutes",
	    json_real((double)window_ms / 60000.0));
	json_object_set_new(rl, "byBucketOutcomeReason", sum);
	json_object_set_new(rl, "recentEvents", recent);
	if (rc != STORE_OK)
		json_object_set_new(rl, "eventsError", json_string(st == NULL ?
			"the store could not be opened" :
			store_rc_name(rc)));
}
