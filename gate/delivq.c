/*
 * delivq - see delivq.h.  Rows are JSON (jansson) so operators can read
 * them with relctl; the index key is the due time then the id.
 */
#include "gate/delivq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gate/b64.h"
#include "util/util.h"

static void
ikey(unsigned char k[DELIVQ_KEY_LEN], uint64_t at, const char *id)
{
	for (int i = 7; i >= 0; i--, at >>= 8)
		k[i] = (unsigned char)(at & 0xff);
	memcpy(k + 8, id, DELIVQ_ID_LEN);
}

static int
index_put(struct store_txn *txn, const char *id, uint64_t at)
{
	unsigned char k[DELIVQ_KEY_LEN];

	ikey(k, at, id);
	return store_txn_put(txn, STORE_DELIVERIES_READY, k, sizeof(k), "", 0,
	    0);
}

static int
index_del(struct store_txn *txn, const char *id, uint64_t at)
{
	unsigned char k[DELIVQ_KEY_LEN];
	int rc;

	ikey(k, at, id);
	rc = store_txn_del(txn, STORE_DELIVERIES_READY, k, sizeof(k));
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/*
 * row_check - why a parsed row cannot be used, or NULL when it can: a
 * JSON object and, when deliverable is set, with a topic and a payload.
 */
static const char *
row_check(const json_t *row, const json_error_t *err, int deliverable,
    char *why, size_t len)
{
	if (row == NULL) {
		snprintf(why, len, "unreadable row: %s (at byte %d)",
		    err->text, err->position);
		return why;
	}
	if (!json_is_object(row))
		return "unreadable row: not a JSON object";
	if (!deliverable)
		return NULL;
	if (!json_is_string(json_object_get(row, "topic")))
		return "unreadable row: no topic";
	if (json_object_get(row, "payload") == NULL)
		return "unreadable row: no payload";
	return NULL;
}

/*
 * row_load_raw - the row of id, parsed; STORE_NOTFOUND, or STORE_EIO for
 * a row that cannot be used (row_check; why says why, and *raw / *rlen
 * point at the stored bytes, valid in this transaction).
 */
static int
row_load_raw(struct store_txn *txn, const char *id, int deliverable,
    json_t **row, char *why, size_t whylen, const void **raw, size_t *rlen)
{
	json_error_t err;
	const void *v;
	const char *bad;
	size_t n;
	int rc;

	rc = store_txn_get(txn, STORE_DELIVERIES, id, DELIVQ_ID_LEN, 0, &v, &n,
	    NULL);
	if (rc != STORE_OK)
		return rc;
	*row = json_loadb(v, n, 0, &err);
	bad = row_check(*row, &err, deliverable, why, whylen);
	if (bad == NULL)
		return STORE_OK;
	if (why != bad)
		strlcpy_rg(why, bad, whylen);
	json_decref(*row);
	*row = NULL;
	*raw = v;
	*rlen = n;
	return STORE_EIO;
}

/* row_load - the row of id as a JSON object; STORE_NOTFOUND, STORE_EIO. */
static int
row_load(struct store_txn *txn, const char *id, json_t **row)
{
	const void *raw;
	size_t rlen;
	char why[200];

	return row_load_raw(txn, id, 0, row, why, sizeof(why), &raw, &rlen);
}

static int
row_save(struct store_txn *txn, const char *id, json_t *row)
{
	char *text = json_dumps(row, JSON_COMPACT);
	int rc;

	if (text == NULL)
		return STORE_EIO;
	rc = store_txn_put(txn, STORE_DELIVERIES, id, DELIVQ_ID_LEN, text,
	    strlen(text), 0);
	free(text);
	return rc;
}

static uint64_t
row_u64(json_t *row, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(row, key));

	return v > 0 ? (uint64_t)v : 0;
}

int
delivq_create(struct store_txn *txn, const struct delivq_new *d,
    uint64_t now)
{
	json_t *key = json_stringn(d->idem_key, d->idem_klen), *row;
	int rc;

	if (key == NULL || strlen(d->id) != DELIVQ_ID_LEN) {
		json_decref(key);
		return STORE_EINVAL;
	}
	row = json_pack("{s:s,s:s,s:s,s:i,s:I,s:I,s:s,s:o,s:O}", "id", d->id,
	    "topic", d->topic, "state", "ready", "attempts", 0, "createdAt",
	    (json_int_t)now, "nextAttemptAt", (json_int_t)now, "idemScope",
	    d->idem_scope, "idemKey", key, "payload", d->payload);
	if (row == NULL)
		return STORE_EINVAL;
	if (d->request_id != NULL)
		json_object_set_new(row, "requestId",
		    json_string(d->request_id));
	rc = row_save(txn, d->id, row);
	json_decref(row);
	if (rc == STORE_OK)
		rc = index_put(txn, d->id, now);
	return rc;
}

/* dead_unreadable - an unreadable row becomes a dead letter that says
 * why and keeps the stored bytes (base64); it has no index entry. */
static int
dead_unreadable(struct store_txn *txn, const char *id, uint64_t now,
    const char *why, const void *raw, size_t rlen)
{
	size_t cap = (rlen + 2) / 3 * 4 + 1;
	char *b64 = xmalloc(cap);
	json_t *row;
	int rc;

	if (b64_encode(raw, rlen, b64, cap) < 0)
		b64[0] = '\0';
	row = json_pack("{s:s,s:s,s:b,s:I,s:s,s:s}", "id", id, "state", "dead",
	    "unreadable", 1, "deadLetterAt", (json_int_t)now,
	    "deadLetterReason", why, "rawBase64", b64);
	free(b64);
	if (row == NULL)
		return STORE_EIO;
	rc = row_save(txn, id, row);
	json_decref(row);
	return rc;
}

/* due_at - where the row's index entry is: the lease end while leased. */
static uint64_t
due_at(json_t *row)
{
	const char *st = json_string_value(json_object_get(row, "state"));

	if (st != NULL && strcmp(st, "leased") == 0)
		return row_u64(row, "leaseUntil");
	return row_u64(row, "nextAttemptAt");
}

static int
set_u64(json_t *row, const char *key, uint64_t v)
{
	return json_object_set_new(row, key, json_integer((json_int_t)v));
}

int
delivq_claim(struct store_txn *txn, uint64_t now, int32_t owner,
    uint64_t lease_ms, unsigned max, struct delivq_item *out, unsigned *n)
{
	unsigned char key[DELIVQ_KEY_LEN];
	int rc = STORE_OK;

	*n = 0;
	while (*n < max) {
		char id[DELIVQ_ID_LEN + 1], why[200];
		uint64_t at = 0;
		const void *raw;
		size_t rlen;
		json_t *row, *payload;
		struct delivq_item *it;
		const char *topic;

		rc = store_txn_first(txn, STORE_DELIVERIES_READY, key,
		    sizeof(key));
		if (rc != STORE_OK)
			break;
		for (int i = 0; i < 8; i++)
			at = at << 8 | key[i];
		if (at > now)
			break;
		memcpy(id, key + 8, DELIVQ_ID_LEN);
		id[DELIVQ_ID_LEN] = '\0';
		if ((rc = index_del(txn, id, at)) != STORE_OK)
			break;
		rc = row_load_raw(txn, id, 1, &row, why, sizeof(why), &raw,
		    &rlen);
		if (rc == STORE_NOTFOUND)
			continue; /* an index entry without its row */
		if (rc == STORE_EIO) {
			/* unreadable: a dead letter that says why, for a
			 * human; never dropped */
			if ((rc = dead_unreadable(txn, id, now, why, raw,
				 rlen)) != STORE_OK)
				break;
			continue;
		}
		if (rc != STORE_OK)
			break;
		json_object_set_new(row, "state", json_string("leased"));
		set_u64(row, "leasedAt", now);
		set_u64(row, "leaseUntil", now + lease_ms);
		set_u64(row, "leaseOwner", (uint64_t)owner);
		if ((rc = row_save(txn, id, row)) != STORE_OK ||
		    (rc = index_put(txn, id, now + lease_ms)) !=
			STORE_OK) {
			json_decref(row);
			break;
		}
		it = &out[(*n)++];
		memset(it, 0, sizeof(*it));
		memcpy(it->id, id, sizeof(it->id));
		topic = json_string_value(json_object_get(row, "topic"));
		strlcpy_rg(it->topic, topic ? topic : "", sizeof(it->topic));
		it->attempts = (uint32_t)row_u64(row, "attempts");
		if (json_is_string(json_object_get(row, "requestId")))
			strlcpy_rg(it->request_id, json_string_value(
			    json_object_get(row, "requestId")),
			    sizeof(it->request_id));
		payload = json_object_get(row, "payload");
		it->body = json_dumps(payload ? payload : json_null(),
		    JSON_COMPACT | JSON_ENCODE_ANY);
		it->blen = it->body ? strlen(it->body) : 0;
		json_decref(row);
	}
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int
delivq_complete(struct store_txn *txn, const char *id)
{
	json_t *row;
	int rc = row_load(txn, id, &row);

	if (rc != STORE_OK)
		return rc;
	rc = index_del(txn, id, due_at(row));
	json_decref(row);
	if (rc == STORE_OK)
		rc = store_txn_del(txn, STORE_DELIVERIES, id, DELIVQ_ID_LEN);
	return rc;
}

/* reschedule - ready again at next_at; attempted: count it, with why. */
static int
reschedule(struct store_txn *txn, const char *id, uint64_t now,
    uint64_t next_at, const char *reason, int attempted)
{
	json_t *row;
	int rc = row_load(txn, id, &row);

	if (rc != STORE_OK)
		return rc;
	if ((rc = index_del(txn, id, due_at(row))) == STORE_OK) {
		json_object_set_new(row, "state", json_string("ready"));
		set_u64(row, "nextAttemptAt", next_at);
		if (attempted) {
			set_u64(row, "attempts", row_u64(row, "attempts") + 1);
			set_u64(row, "lastAttemptAt", now);
			json_object_set_new(row, "lastError",
			    json_string(reason));
		}
		json_object_del(row, "leasedAt");
		json_object_del(row, "leaseUntil");
		json_object_del(row, "leaseOwner");
		rc = row_save(txn, id, row);
	}
	if (rc == STORE_OK)
		rc = index_put(txn, id, next_at);
	json_decref(row);
	return rc;
}

int
delivq_retry(struct store_txn *txn, const char *id, uint64_t now,
    uint64_t next_at, const char *reason)
{
	return reschedule(txn, id, now, next_at, reason, 1);
}

int
delivq_postpone(struct store_txn *txn, const char *id, uint64_t next_at)
{
	return reschedule(txn, id, 0, next_at, NULL, 0);
}

int
delivq_dead(struct store_txn *txn, const char *id, uint64_t now,
    const char *reason)
{
	json_t *row;
	int rc = row_load(txn, id, &row);

	if (rc != STORE_OK)
		return rc;
	if ((rc = index_del(txn, id, due_at(row))) == STORE_OK) {
		json_object_set_new(row, "state", json_string("dead"));
		set_u64(row, "attempts", row_u64(row, "attempts") + 1);
		set_u64(row, "deadLetterAt", now);
		set_u64(row, "lastAttemptAt", now);
		json_object_set_new(row, "deadLetterReason",
		    json_string(reason));
		json_object_del(row, "leasedAt");
		json_object_del(row, "leaseUntil");
		json_object_del(row, "leaseOwner");
		rc = row_save(txn, id, row);
	}
	json_decref(row);
	return rc;
}

int
delivq_requeue(struct store_txn *txn, const char *id, uint64_t now)
{
	const char *st;
	json_t *row;
	int rc = row_load(txn, id, &row);

	if (rc != STORE_OK)
		return rc;
	st = json_string_value(json_object_get(row, "state"));
	if (st == NULL || strcmp(st, "dead") != 0) {
		json_decref(row);
		return STORE_NOTFOUND;
	}
	if (json_is_true(json_object_get(row, "unreadable"))) {
		json_decref(row);
		return STORE_EINVAL;
	}
	json_object_set_new(row, "state", json_string("ready"));
	set_u64(row, "attempts", 0);
	set_u64(row, "nextAttemptAt", now);
	set_u64(row, "requeuedAt", now);
	rc = row_save(txn, id, row);
	if (rc == STORE_OK)
		rc = index_put(txn, id, now);
	json_decref(row);
	return rc;
}

int
delivq_next_due(struct store_txn *txn, uint64_t *at)
{
	unsigned char key[DELIVQ_KEY_LEN];
	int rc = store_txn_first(txn, STORE_DELIVERIES_READY, key,
	    sizeof(key));

	*at = 0;
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc == STORE_OK)
		for (int i = 0; i < 8; i++)
			*at = *at << 8 | key[i];
	return rc;
}

struct due_count {
	uint64_t now;
	unsigned max, n;
};

static int
due_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct due_count *d = arg;
	const unsigned char *k = key;
	uint64_t at = 0;

	(void)val;
	(void)vlen;
	(void)expires;
	if (klen != DELIVQ_KEY_LEN)
		return 0;
	for (int i = 0; i < 8; i++)
		at = at << 8 | k[i];
	if (at > d->now)
		return 1; /* in due order: the rest is later */
	return ++d->n >= d->max;
}

int
delivq_due_count(struct store *st, uint64_t now, unsigned max, unsigned *n)
{
	struct due_count d = { now, max, 0 };
	int rc = max > 0 ? store_scan(st, STORE_DELIVERIES_READY, NULL, 0, now,
	    due_row, &d) : STORE_OK;

	*n = d.n;
	return rc;
}

void
delivq_item_free(struct delivq_item *it)
{
	free(it->body);
	it->body = NULL;
}

struct stats_ctx {
	uint64_t now, since;
	size_t max;
	struct delivq_stats *out;
};

static uint64_t
age_of(uint64_t now, uint64_t at)
{
	return at != 0 && now > at ? now - at : 0;
}

static int
stats_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct stats_ctx *c = arg;
	struct delivq_stats *s = c->out;
	json_t *row = json_loadb(val, vlen, 0, NULL);
	const char *st = json_string_value(json_object_get(row, "state"));
	uint64_t age;

	(void)key;
	(void)klen;
	(void)expires;
	if (c->max != 0 && s->rows >= c->max) {
		json_decref(row);
		s->truncated = 1;
		return 1;
	}
	s->rows++;
	if (st != NULL && strcmp(st, "ready") == 0) {
		uint64_t since = row_u64(row, "requeuedAt");

		s->queued++;
		if (since == 0)
			since = row_u64(row, "createdAt");
		age = age_of(c->now, since);
		if (age > s->oldest_queued_age_ms)
			s->oldest_queued_age_ms = age;
	} else if (st != NULL && strcmp(st, "leased") == 0) {
		s->running++;
		age = age_of(c->now, row_u64(row, "leasedAt"));
		if (age > s->oldest_running_age_ms)
			s->oldest_running_age_ms = age;
	} else {
		/* dead, or a row that cannot be read (it becomes one) */
		s->dead++;
		if (row_u64(row, "deadLetterAt") >= c->since)
			s->dead_recent++;
	}
	json_decref(row);
	return 0;
}

int
delivq_stats(struct store *st, uint64_t now, uint64_t since_ms,
    size_t max_rows, struct delivq_stats *out)
{
	struct stats_ctx c = { now, since_ms, max_rows, out };

	memset(out, 0, sizeof(*out));
	return store_scan(st, STORE_DELIVERIES, NULL, 0, now, stats_row, &c);
}
