/*
 * replay - see replay.h.
 */
#include "gate/replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/delivq.h"
#include "util/util.h"

void
replay_prepare(struct replay_batch *b, uint32_t pid, uint64_t *seq)
{
	for (unsigned i = 0; i < b->n; i++)
		snprintf(b->items[i].delivery_id, REPLAY_ID_LEN + 1,
		    "%016llx%08x%08x", (unsigned long long)b->now_ms, pid,
		    (unsigned)((*seq)++ & 0xffffffffu));
}

int
replay_idem_key(char *buf, size_t len, size_t *out, const char *scope,
    const char *key, size_t klen)
{
	size_t sl = strlen(scope);

	if (sl + 1 + klen > len || sl + 1 + klen > STORE_MAX_KEY)
		return -1;
	memcpy(buf, scope, sl);
	buf[sl] = '|';
	memcpy(buf + sl + 1, key, klen);
	*out = sl + 1 + klen;
	return 0;
}

int
replay_apply(struct store_txn *txn, void *arg)
{
	struct replay_batch *b = arg;
	char key[STORE_MAX_KEY];
	size_t klen;
	int rc;

	b->fresh = 0;
	for (unsigned i = 0; i < b->n; i++) {
		struct replay_item *it = &b->items[i];
		struct replay_idem rec;
		const void *old;
		size_t olen;

		it->fresh = 0;
		it->hit_count = 0;
		if (replay_idem_key(key, sizeof(key), &klen, b->scope, it->key,
			it->klen) != 0)
			return STORE_EINVAL;
		rc = store_txn_get(txn, STORE_IDEM, key, klen, b->now_ms, &old,
		    &olen, NULL);
		if (rc == STORE_OK && olen == sizeof(rec)) {
			memcpy(&rec, old, sizeof(rec));
			rec.last_seen = b->now_ms;
			rec.hit_count++;
			it->hit_count = rec.hit_count;
			/* keep the first sighting's expiry window moving */
			rc = store_txn_put(txn, STORE_IDEM, key, klen, &rec,
			    sizeof(rec), b->now_ms + b->ttl_ms);
			if (rc != STORE_OK)
				return rc;
			continue;
		}
		if (rc != STORE_OK && rc != STORE_NOTFOUND)
			return rc;
		memset(&rec, 0, sizeof(rec));
		rec.first_seen = rec.last_seen = b->now_ms;
		rec.hit_count = 1;
		memcpy(rec.delivery_id, it->delivery_id, REPLAY_ID_LEN);
		rc = store_txn_put(txn, STORE_IDEM, key, klen, &rec,
		    sizeof(rec), b->now_ms + b->ttl_ms);
		if (rc == STORE_OK) {
			struct delivq_new d = {
				.id = it->delivery_id,
				.topic = b->topic,
				.idem_scope = b->scope,
				.idem_key = it->key,
				.idem_klen = it->klen,
				.payload = it->payload,
				.request_id = b->request_id,
			};

			rc = delivq_create(txn, &d, b->now_ms);
		}
		if (rc != STORE_OK)
			return rc;
		it->fresh = 1;
		it->hit_count = 1;
		b->fresh++;
	}
	return STORE_OK;
}

/* --- the operator's view ------------------------------------------------*/

struct replay_view {
	json_t *scopes, *recent;
	size_t limit;
};

static int
replay_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct replay_view *v = arg;
	const char *bar = memchr(key, '|', klen);
	struct replay_idem rec;
	char scope[64];
	json_t *s, *r;
	size_t n, at;

	(void)expires;
	if (bar == NULL || vlen != sizeof(rec))
		return 0;
	memcpy(&rec, val, sizeof(rec));
	n = (size_t)(bar - (const char *)key);
	snprintf(scope, sizeof(scope), "%.*s", (int)n, (const char *)key);
	s = json_object_get(v->scopes, scope);
	if (s == NULL) {
		s = json_pack("{s:I,s:I,s:I}", "keys", (json_int_t)0,
		    "repeats", (json_int_t)0, "lastSeen", (json_int_t)0);
		json_object_set_new(v->scopes, scope, s);
	}
	json_integer_set(json_object_get(s, "keys"),
	    json_integer_value(json_object_get(s, "keys")) + 1);
	json_integer_set(json_object_get(s, "repeats"),
	    json_integer_value(json_object_get(s, "repeats")) +
		(json_int_t)(rec.hit_count > 0 ? rec.hit_count - 1 : 0));
	if ((json_int_t)rec.last_seen >
	    json_integer_value(json_object_get(s, "lastSeen")))
		json_integer_set(json_object_get(s, "lastSeen"),
		    (json_int_t)rec.last_seen);
	if (v->limit == 0)
		return 0;
	/* keep the limit seen last, the newest first */
	for (at = 0; at < json_array_size(v->recent); at++)
		if (json_integer_value(json_object_get(
			json_array_get(v->recent, at), "lastSeen")) <
		    (json_int_t)rec.last_seen)
			break;
	if (at >= v->limit)
		return 0;
	r = json_pack("{s:s,s:s%,s:I,s:I}", "scope", scope, "key", bar + 1,
	    klen - n - 1, "hitCount", (json_int_t)rec.hit_count, "lastSeen",
	    (json_int_t)rec.last_seen);
	json_array_insert_new(v->recent, at, r);
	if (json_array_size(v->recent) > v->limit)
		json_array_remove(v->recent, v->limit);
	return 0;
}

void
replay_snapshot(json_t *snap, struct store *st, size_t limit)
{
	struct replay_view v = { json_object(), json_array(), limit };
	json_t *o = json_object();
	int rc = st != NULL ? store_scan(st, STORE_IDEM, NULL, 0, now_ms(),
	    replay_row, &v) : STORE_EIO;

	json_object_set_new(o, "byScope", v.scopes);
	json_object_set_new(o, "recentKeys", v.recent);
	if (rc != STORE_OK)
		json_object_set_new(o, "error", json_string(st == NULL ?
			"the store could not be opened" : store_rc_name(rc)));
	json_object_set_new(snap, "replayProtection", o);
}
