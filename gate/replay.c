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
