/*
 * jobq - see jobq.h.
 */
#include "gate/jobq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define COUNTS_KEY "#counts"

static const char *const qos_names[JOBQ_NQOS] = {
#define JOBQ_QOS_NAME(id, name) name,
	JOBQ_QOS(JOBQ_QOS_NAME)
#undef JOBQ_QOS_NAME
};

const char *
jobq_qos_name(enum jobq_qos q)
{
	return (unsigned)q < JOBQ_NQOS ? qos_names[q] : "?";
}

int
jobq_qos_by_name(const char *name)
{
	for (int i = 0; i < JOBQ_NQOS; i++)
		if (strcmp(name, qos_names[i]) == 0)
			return i;
	return -1;
}

void
jobq_limits_own(struct jobq_own_limits *o, const struct jobq_limits *src)
{
	unsigned n = src->ntools < JOBQ_TOOLS_MAX ? src->ntools : JOBQ_TOOLS_MAX;

	o->lim = *src;
	o->lim.tools = o->tools;
	o->lim.ntools = n;
	for (unsigned i = 0; i < n; i++) {
		o->tools[i] = src->tools[i];
		snprintf(o->names[i], sizeof(o->names[i]), "%s",
		    src->tools[i].name);
		o->tools[i].name = o->names[i];
	}
}

static void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

static uint64_t
get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void
qkey(unsigned char k[JOBQ_QKEY_LEN], enum jobq_qos q, uint64_t due,
    const char *id)
{
	k[0] = 'Q';
	k[1] = (unsigned char)('0' + q);
	put_be64(k + 2, due);
	memcpy(k + 10, id, JOBQ_ID_LEN);
}

static void
rkey(unsigned char k[JOBQ_RKEY_LEN], uint64_t until, const char *id)
{
	k[0] = 'R';
	put_be64(k + 1, until);
	memcpy(k + 9, id, JOBQ_ID_LEN);
}

static int
id_ok(const char *id)
{
	if (id == NULL || strlen(id) != JOBQ_ID_LEN)
		return 0;
	for (size_t i = 0; i < JOBQ_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
			(id[i] >= 'a' && id[i] <= 'z') ||
			(id[i] >= 'A' && id[i] <= 'Z') || id[i] == '-' ||
			id[i] == '_'))
			return 0;
	return 1;
}

static uint64_t
row_u64(const json_t *row, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(row, key));

	return v > 0 ? (uint64_t)v : 0;
}

static void
set_u64(json_t *row, const char *key, uint64_t v)
{
	json_object_set_new(row, key, json_integer((json_int_t)v));
}

static const struct jobq_tool *
tool_of(const struct jobq_limits *lim, const char *name)
{
	for (unsigned i = 0; name != NULL && i < lim->ntools; i++)
		if (strcmp(lim->tools[i].name, name) == 0)
			return &lim->tools[i];
	return NULL;
}

/* --- rows and the counts --------------------------------------------------*/

static const char *
row_str(const json_t *row, const char *key)
{
	const char *s = json_string_value(json_object_get(row, key));

	return s != NULL ? s : "";
}


static int
json_load_at(struct store_txn *txn, const char *key, size_t klen,
    json_t **out)
{
	const void *v;
	size_t n;
	int rc = store_txn_get(txn, STORE_JOBS, key, klen, 0, &v, &n, NULL);

	if (rc != STORE_OK)
		return rc;
	*out = json_loadb(v, n, 0, NULL);
	if (*out == NULL || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return STORE_EIO;
	}
	return STORE_OK;
}

/* json_get - as json_load_at, outside a transaction; a row that is not
 * a JSON object counts as absent (STORE_NOTFOUND): STORE_EIO is the
 * store's own failure */
static int
json_get(struct store *st, const char *key, size_t klen, json_t **out)
{
	void *v;
	size_t n;
	int rc = store_get(st, STORE_JOBS, key, klen, 0, &v, &n, NULL);

	*out = NULL;
	if (rc != STORE_OK)
		return rc;
	*out = json_loadb(v, n, 0, NULL);
	free(v);
	if (*out == NULL || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return STORE_NOTFOUND;
	}
	return STORE_OK;
}

static int
json_save_at(struct store_txn *txn, const char *key, size_t klen,
    const json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT);
	int rc;

	if (text == NULL)
		return STORE_EIO;
	rc = store_txn_put(txn, STORE_JOBS, key, klen, text, strlen(text), 0);
	free(text);
	return rc;
}

static int
row_load(struct store_txn *txn, const char *id, json_t **row)
{
	return json_load_at(txn, id, JOBQ_ID_LEN, row);
}

static int
row_save(struct store_txn *txn, const char *id, const json_t *row)
{
	return json_save_at(txn, id, JOBQ_ID_LEN, row);
}

/* counts_load - the counts row, or a new empty one. */
static int
counts_load(struct store_txn *txn, json_t **c)
{
	int rc = json_load_at(txn, COUNTS_KEY, strlen(COUNTS_KEY), c);

	if (rc == STORE_NOTFOUND || rc == STORE_EIO) {
		/* an unreadable counts row is rebuilt from nothing: the caps
		 * then start from zero, which the claims correct over time */
		*c = json_pack("{s:{},s:{}}", "tools", "qos");
		return STORE_OK;
	}
	return rc;
}

static json_int_t
count_of(json_t *c, const char *group, const char *name, const char *field)
{
	return json_integer_value(json_object_get(
	    json_object_get(json_object_get(c, group), name), field));
}

static void
count_add(json_t *c, const char *group, const char *name, const char *field,
    json_int_t d)
{
	json_t *g = json_object_get(c, group), *o = json_object_get(g, name);
	json_int_t v;

	if (o == NULL) {
		o = json_object();
		json_object_set_new(g, name, o);
	}
	v = json_integer_value(json_object_get(o, field)) + d;
	json_object_set_new(o, field, json_integer(v > 0 ? v : 0));
}

/* move - one job of tool/qos from state `from` to state `to` in the
 * counts (NULL: none); dead letters are not counted per class. */
static void
move(json_t *c, const char *tool, const char *qos, const char *from,
    const char *to)
{
	if (from != NULL) {
		count_add(c, "tools", tool, from, -1);
		if (strcmp(from, "dead") != 0)
			count_add(c, "qos", qos, from, -1);
	}
	if (to != NULL) {
		count_add(c, "tools", tool, to, 1);
		if (strcmp(to, "dead") != 0)
			count_add(c, "qos", qos, to, 1);
	}
}

static int
counts_save(struct store_txn *txn, json_t *c)
{
	int rc = json_save_at(txn, COUNTS_KEY, strlen(COUNTS_KEY), c);

	json_decref(c);
	return rc;
}

/*
 * load_for - the row of id and the counts for a step on it: the row's
 * state must be state (or, with not set, anything but state), else
 * STORE_NOTFOUND; an unreadable row is STORE_NOTFOUND too.
 */
static int
load_for(struct store_txn *txn, const char *id, const char *state, int not,
    json_t **row, json_t **c)
{
	int rc = row_load(txn, id, row);

	if (rc != STORE_OK)
		return rc == STORE_EIO ? STORE_NOTFOUND : rc;
	if ((strcmp(row_str(*row, "state"), state) == 0) == not) {
		json_decref(*row);
		return STORE_NOTFOUND;
	}
	if ((rc = counts_load(txn, c)) != STORE_OK)
		json_decref(*row);
	return rc;
}

/* counts_done - the end of a step: on success the counts saved, else
 * dropped; returns the step's result. */
static int
counts_done(struct store_txn *txn, json_t *c, int rc)
{
	if (rc != STORE_OK) {
		json_decref(c);
		return rc;
	}
	return counts_save(txn, c);
}

static int
index_q(struct store_txn *txn, int put, enum jobq_qos q, uint64_t due,
    const char *id)
{
	unsigned char k[JOBQ_QKEY_LEN];
	int rc;

	qkey(k, q, due, id);
	if (put)
		return store_txn_put(txn, STORE_JOBS_READY, k, sizeof(k), "",
		    0, 0);
	rc = store_txn_del(txn, STORE_JOBS_READY, k, sizeof(k));
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

static int
index_r(struct store_txn *txn, int put, uint64_t until, const char *id)
{
	unsigned char k[JOBQ_RKEY_LEN];
	int rc;

	rkey(k, until, id);
	if (put)
		return store_txn_put(txn, STORE_JOBS_READY, k, sizeof(k), "",
		    0, 0);
	rc = store_txn_del(txn, STORE_JOBS_READY, k, sizeof(k));
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/* row_qos - the row's class (interactive when it is not readable). */
static enum jobq_qos
row_qos(const json_t *row)
{
	const char *s = json_string_value(json_object_get(row, "qos"));
	int q = s != NULL ? jobq_qos_by_name(s) : -1;

	return q < 0 ? JOBQ_INTERACTIVE : (enum jobq_qos)q;
}

/* unindex - remove the index entry of row, whatever its state. */
static int
unindex(struct store_txn *txn, const char *id, const json_t *row)
{
	const char *st = row_str(row, "state");

	if (strcmp(st, "queued") == 0)
		return index_q(txn, 0, row_qos(row), row_u64(row, "dueAt"), id);
	if (strcmp(st, "running") == 0)
		return index_r(txn, 0, row_u64(row, "leaseUntil"), id);
	return STORE_OK;
}

/* to_queued - row (running or dead) queued again, due at due. */
static int
to_queued(struct store_txn *txn, const char *id, json_t *row, json_t *c,
    uint64_t due)
{
	int rc;

	move(c, row_str(row, "tool"), jobq_qos_name(row_qos(row)),
	    row_str(row, "state"), "queued");
	json_object_set_new(row, "state", json_string("queued"));
	set_u64(row, "dueAt", due);
	json_object_del(row, "owner");
	json_object_del(row, "leaseUntil");
	if ((rc = row_save(txn, id, row)) != STORE_OK)
		return rc;
	return index_q(txn, 1, row_qos(row), due, id);
}

/* to_dead - row (queued or running) into the dead letters. */
static int
to_dead(struct store_txn *txn, const char *id, json_t *row, json_t *c,
    uint64_t now, const char *reason)
{
	move(c, row_str(row, "tool"), jobq_qos_name(row_qos(row)),
	    row_str(row, "state"), "dead");
	json_object_set_new(row, "state", json_string("dead"));
	json_object_set_new(row, "deadLetterReason", json_string(reason));
	set_u64(row, "deadAt", now);
	json_object_del(row, "owner");
	json_object_del(row, "leaseUntil");
	return row_save(txn, id, row);
}

/* --- enqueue, claim -----------------------------------------------------------*/

int
jobq_enqueue(struct store_txn *txn, const struct jobq_new *j,
    const struct jobq_limits *lim, uint64_t now)
{
	const struct jobq_tool *t = tool_of(lim, j->tool);
	const void *old;
	size_t olen;
	json_t *c, *row;
	int rc;

	if (t == NULL || (unsigned)j->qos >= JOBQ_NQOS || !id_ok(j->id) ||
	    j->args == NULL)
		return STORE_EINVAL;
	rc = store_txn_get(txn, STORE_JOBS, j->id, JOBQ_ID_LEN, 0, &old, &olen,
	    NULL);
	if (rc != STORE_NOTFOUND)
		return rc == STORE_OK ? STORE_EINVAL : rc; /* the id is taken */
	if ((rc = counts_load(txn, &c)) != STORE_OK)
		return rc;
	if (count_of(c, "tools", t->name, "queued") >= (json_int_t)t->queue_max) {
		json_decref(c);
		return JOBQ_SATURATED;
	}
	row = json_pack("{s:s,s:s,s:s,s:O,s:s,s:i,s:I,s:I,s:I}", "id", j->id,
	    "tool", t->name, "qos", jobq_qos_name(j->qos), "args", j->args,
	    "state", "queued", "attempts", 0, "createdAt", (json_int_t)now,
	    "queuedAt", (json_int_t)now, "dueAt", (json_int_t)now);
	if (j->request_id != NULL)
		json_object_set_new(row, "requestId",
		    json_string(j->request_id));
	if (j->waiter > 0)
		set_u64(row, "waiter", j->waiter);
	move(c, t->name, jobq_qos_name(j->qos), NULL, "queued");
	rc = row_save(txn, j->id, row);
	json_decref(row);
	if (rc == STORE_OK)
		rc = index_q(txn, 1, j->qos, now, j->id);
	return counts_done(txn, c, rc);
}

/* reclaim_stale - running jobs whose lease ended by now: queued again
 * (or dead letters after the last attempt). */
static int
reclaim_stale(struct store_txn *txn, json_t *c, const struct jobq_limits *lim,
    uint64_t now)
{
	unsigned char from[JOBQ_RKEY_LEN] = { 'R' }, key[JOBQ_RKEY_LEN];
	size_t got;
	int rc;

	for (;;) {
		char id[JOBQ_ID_LEN + 1];
		json_t *row;

		rc = store_txn_seek(txn, STORE_JOBS_READY, from, 1, 1, key,
		    sizeof(key), &got);
		if (rc == STORE_NOTFOUND)
			return STORE_OK;
		if (rc != STORE_OK)
			return rc;
		if (got != JOBQ_RKEY_LEN || get_be64(key + 1) > now)
			return STORE_OK;
		memcpy(id, key + 9, JOBQ_ID_LEN);
		id[JOBQ_ID_LEN] = '\0';
		if ((rc = store_txn_del(txn, STORE_JOBS_READY, key,
			 sizeof(key))) != STORE_OK)
			return rc;
		rc = row_load(txn, id, &row);
		if (rc == STORE_NOTFOUND || rc == STORE_EIO)
			continue; /* an entry without a usable row */
		if (rc != STORE_OK)
			return rc;
		if (strcmp(row_str(row, "state"), "running") != 0 ||
		    row_u64(row, "leaseUntil") != get_be64(key + 1))
			rc = STORE_OK; /* an entry its row has left behind */
		else if (row_u64(row, "attempts") >= lim->max_attempts)
			rc = to_dead(txn, id, row, c, now,
			    "lease expired on the last attempt");
		else
			rc = to_queued(txn, id, row, c, now);
		json_decref(row);
		if (rc != STORE_OK)
			return rc;
	}
}

int
jobq_claim(struct store_txn *txn, uint64_t now, int32_t owner,
    const struct jobq_limits *lim, unsigned max, struct jobq_item *out,
    unsigned *n)
{
	uint32_t scanned = 0;
	json_t *c;
	int rc;

	*n = 0;
	if ((rc = counts_load(txn, &c)) != STORE_OK)
		return rc;
	if ((rc = reclaim_stale(txn, c, lim, now)) != STORE_OK)
		goto out;
	for (int q = 0; q < JOBQ_NQOS && *n < max; q++) {
		unsigned char from[JOBQ_QKEY_LEN + 1] = { 'Q', (unsigned char)('0' + q) };
		unsigned char key[JOBQ_QKEY_LEN];
		size_t flen = 2, got;

		scanned = 0; /* each class has its own budget */

		while (*n < max && scanned < lim->claim_scan) {
			const struct jobq_tool *t;
			char id[JOBQ_ID_LEN + 1];
			struct jobq_item *it;
			json_t *row;

			if (count_of(c, "qos", qos_names[q], "running") >=
			    (json_int_t)lim->qos_running_max[q])
				break; /* this class is at its cap */
			rc = store_txn_seek(txn, STORE_JOBS_READY, from, flen, 2,
			    key, sizeof(key), &got);
			if (rc == STORE_NOTFOUND) {
				rc = STORE_OK;
				break;
			}
			if (rc != STORE_OK)
				goto out;
			if (got != JOBQ_QKEY_LEN || get_be64(key + 2) > now)
				break;
			scanned++;
			memcpy(id, key + 10, JOBQ_ID_LEN);
			id[JOBQ_ID_LEN] = '\0';
			/* the next seek starts after this key */
			memcpy(from, key, JOBQ_QKEY_LEN);
			from[JOBQ_QKEY_LEN] = 0;
			flen = JOBQ_QKEY_LEN + 1;
			rc = row_load(txn, id, &row);
			if (rc == STORE_NOTFOUND || rc == STORE_EIO) {
				rc = store_txn_del(txn, STORE_JOBS_READY, key,
				    sizeof(key));
				if (rc != STORE_OK)
					goto out;
				continue;
			}
			if (rc != STORE_OK)
				goto out;
			if (strcmp(row_str(row, "state"), "queued") != 0 ||
			    row_qos(row) != (enum jobq_qos)q ||
			    row_u64(row, "dueAt") != get_be64(key + 2)) {
				/* an entry its row has left behind */
				json_decref(row);
				rc = store_txn_del(txn, STORE_JOBS_READY, key,
				    sizeof(key));
				if (rc != STORE_OK)
					goto out;
				continue;
			}
			t = tool_of(lim, row_str(row, "tool"));
			if (t == NULL) {
				rc = index_q(txn, 0, (enum jobq_qos)q,
				    get_be64(key + 2), id);
				if (rc == STORE_OK)
					rc = to_dead(txn, id, row, c, now,
					    "its tool is not configured");
				json_decref(row);
				if (rc != STORE_OK)
					goto out;
				continue;
			}
			if (count_of(c, "tools", t->name, "running") >=
			    (json_int_t)t->running_max) {
				json_decref(row);
				continue; /* its tool is at its cap */
			}
			move(c, t->name, qos_names[q], "queued", "running");
			json_object_set_new(row, "state", json_string("running"));
			set_u64(row, "attempts", row_u64(row, "attempts") + 1);
			set_u64(row, "owner", (uint64_t)owner);
			set_u64(row, "leasedAt", now);
			set_u64(row, "leaseUntil", now + lim->lease_ms);
			if ((rc = index_q(txn, 0, (enum jobq_qos)q,
				 get_be64(key + 2), id)) != STORE_OK ||
			    (rc = index_r(txn, 1, now + lim->lease_ms, id)) !=
				STORE_OK ||
			    (rc = row_save(txn, id, row)) != STORE_OK) {
				json_decref(row);
				goto out;
			}
			it = &out[(*n)++];
			memset(it, 0, sizeof(*it));
			memcpy(it->id, id, sizeof(it->id));
			strlcpy_rg(it->tool, t->name, sizeof(it->tool));
			it->qos = (enum jobq_qos)q;
			it->attempt = (uint32_t)row_u64(row, "attempts");
			it->waiter = (unsigned)row_u64(row, "waiter");
			it->args = json_dumps(json_object_get(row, "args"),
			    JSON_COMPACT | JSON_ENCODE_ANY);
			json_decref(row);
		}
	}
out:
	if (rc != STORE_OK) {
		for (unsigned i = 0; i < *n; i++)
			jobq_item_free(&out[i]);
		*n = 0;
		json_decref(c);
		return rc;
	}
	return counts_save(txn, c);
}

/* --- the end of an attempt ---------------------------------------------------*/

/* load_attempt - the row of id and the counts, if it is running attempt
 * `attempt` for owner; else STORE_NOTFOUND. */
static int
load_attempt(struct store_txn *txn, const char *id, int32_t owner,
    uint32_t attempt, json_t **row, json_t **c)
{
	int rc;

	if (!id_ok(id))
		return STORE_EINVAL;
	if ((rc = load_for(txn, id, "running", 0, row, c)) != STORE_OK)
		return rc;
	if ((int32_t)row_u64(*row, "owner") != owner ||
	    row_u64(*row, "attempts") != attempt) {
		json_decref(*row);
		json_decref(*c);
		return STORE_NOTFOUND;
	}
	return STORE_OK;
}

int
jobq_complete(struct store_txn *txn, const char *id, int32_t owner,
    uint32_t attempt)
{
	json_t *row, *c;
	int rc;

	if ((rc = load_attempt(txn, id, owner, attempt, &row, &c)) != STORE_OK)
		return rc;
	move(c, row_str(row, "tool"), jobq_qos_name(row_qos(row)),
	    row_str(row, "state"), NULL);
	rc = unindex(txn, id, row);
	if (rc == STORE_OK)
		rc = store_txn_del(txn, STORE_JOBS, id, JOBQ_ID_LEN);
	json_decref(row);
	return counts_done(txn, c, rc);
}

int
jobq_fail(struct store_txn *txn, const char *id, int32_t owner,
    uint32_t attempt, const char *reason, const struct jobq_limits *lim,
    uint64_t now, uint64_t rnd, int *dead)
{
	uint64_t attempts, wait;
	json_t *row, *c;
	int rc;

	if (dead != NULL)
		*dead = 0;
	if ((rc = load_attempt(txn, id, owner, attempt, &row, &c)) != STORE_OK)
		return rc;
	attempts = row_u64(row, "attempts");
	json_object_set_new(row, "lastError", json_string(reason));
	rc = index_r(txn, 0, row_u64(row, "leaseUntil"), id);
	if (rc == STORE_OK && attempts >= lim->max_attempts) {
		char why[300];

		snprintf(why, sizeof(why), "%llu attempt%s failed; last: %s",
		    (unsigned long long)attempts, attempts == 1 ? "" : "s",
		    reason);
		rc = to_dead(txn, id, row, c, now, why);
		if (dead != NULL)
			*dead = 1;
	} else if (rc == STORE_OK) {
		wait = lim->retry_base_ms;
		for (uint64_t i = 1; i < attempts && wait < JOBQ_BACKOFF_MAX_MS;
		     i++)
			wait *= 2;
		if (wait > JOBQ_BACKOFF_MAX_MS)
			wait = JOBQ_BACKOFF_MAX_MS;
		wait += wait / 4 ? rnd % (wait / 4 + 1) : 0;
		rc = to_queued(txn, id, row, c, now + wait);
	}
	json_decref(row);
	return counts_done(txn, c, rc);
}

int
jobq_postpone(struct store_txn *txn, const char *id, int32_t owner,
    uint32_t attempt, const char *reason, uint64_t due)
{
	json_t *row, *c;
	int rc;

	if ((rc = load_attempt(txn, id, owner, attempt, &row, &c)) != STORE_OK)
		return rc;
	set_u64(row, "attempts", attempt - 1);
	json_object_set_new(row, "lastError", json_string(reason));
	rc = index_r(txn, 0, row_u64(row, "leaseUntil"), id);
	if (rc == STORE_OK)
		rc = to_queued(txn, id, row, c, due);
	json_decref(row);
	return counts_done(txn, c, rc);
}

int
jobq_requeue(struct store_txn *txn, const char *id, uint64_t now)
{
	json_t *row, *c;
	int rc;

	if (!id_ok(id))
		return STORE_NOTFOUND;
	if ((rc = load_for(txn, id, "dead", 0, &row, &c)) != STORE_OK)
		return rc;
	set_u64(row, "attempts", 0);
	set_u64(row, "queuedAt", now); /* its TTL starts again */
	json_object_del(row, "deadAt");
	json_object_del(row, "deadLetterReason");
	rc = to_queued(txn, id, row, c, now);
	json_decref(row);
	return counts_done(txn, c, rc);
}

int
jobq_release_owner(struct store_txn *txn, int32_t owner,
    const struct jobq_limits *lim, uint64_t now, unsigned *n)
{
	unsigned char from[JOBQ_RKEY_LEN + 1] = { 'R' }, key[JOBQ_RKEY_LEN];
	size_t flen = 1, got;
	json_t *c;
	int rc;

	*n = 0;
	if ((rc = counts_load(txn, &c)) != STORE_OK)
		return rc;
	for (;;) {
		char id[JOBQ_ID_LEN + 1];
		json_t *row;

		rc = store_txn_seek(txn, STORE_JOBS_READY, from, flen, 1, key,
		    sizeof(key), &got);
		if (rc == STORE_NOTFOUND) {
			rc = STORE_OK;
			break;
		}
		if (rc != STORE_OK || got != JOBQ_RKEY_LEN)
			break;
		memcpy(from, key, JOBQ_RKEY_LEN);
		from[JOBQ_RKEY_LEN] = 0;
		flen = JOBQ_RKEY_LEN + 1;
		memcpy(id, key + 9, JOBQ_ID_LEN);
		id[JOBQ_ID_LEN] = '\0';
		if (row_load(txn, id, &row) != STORE_OK)
			continue;
		if (strcmp(row_str(row, "state"), "running") != 0 ||
		    (int32_t)row_u64(row, "owner") != owner) {
			json_decref(row);
			continue;
		}
		rc = store_txn_del(txn, STORE_JOBS_READY, key, sizeof(key));
		if (rc == STORE_OK)
			rc = row_u64(row, "attempts") >= lim->max_attempts ?
			    to_dead(txn, id, row, c, now,
				"its worker died on the last attempt") :
			    to_queued(txn, id, row, c, now);
		json_decref(row);
		if (rc != STORE_OK)
			break;
		(*n)++;
	}
	return counts_done(txn, c, rc);
}

/* --- owners ------------------------------------------------------------------*/

struct owners_scan {
	struct store *st;
	int32_t *owners;
	unsigned max, n;
	int rc;
};

static int
owners_fn(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct owners_scan *o = arg;
	json_t *row;
	int32_t pid;
	unsigned i;

	(void)val;
	(void)vlen;
	(void)expires;
	if (klen != JOBQ_RKEY_LEN)
		return 0;
	if (json_get(o->st, (const char *)key + 9, JOBQ_ID_LEN, &row) !=
	    STORE_OK)
		return 0; /* gone since */
	pid = strcmp(row_str(row, "state"), "running") == 0 ?
	    (int32_t)row_u64(row, "owner") : 0;
	json_decref(row);
	if (pid <= 0)
		return 0;
	for (i = 0; i < o->n && o->owners[i] != pid; i++)
		;
	if (i == o->n)
		o->owners[o->n++] = pid;
	return o->n >= o->max;
}

int
jobq_running_owners(struct store *st, int32_t *owners, unsigned max,
    unsigned *n)
{
	struct owners_scan o = { st, owners, max, 0, STORE_OK };
	int rc = max == 0 ? STORE_OK :
	    store_scan(st, STORE_JOBS_READY, "R", 1, 0, owners_fn, &o);

	*n = o.n;
	return rc;
}

/* --- TTL cleanup ---------------------------------------------------------------*/

/* queued_at - when the job was queued last (rows before queuedAt: when
 * it was created) */
static uint64_t
queued_at(const json_t *row)
{
	uint64_t q = row_u64(row, "queuedAt");

	return q != 0 ? q : row_u64(row, "createdAt");
}

static int
is_expired(const json_t *row, uint64_t now, uint64_t ttl_ms,
    uint64_t dlq_ttl_ms)
{
	if (strcmp(row_str(row, "state"), "dead") == 0)
		return row_u64(row, "deadAt") + dlq_ttl_ms <= now;
	return queued_at(row) + ttl_ms <= now;
}

struct expired_scan {
	uint64_t now, ttl, dlq_ttl;
	char *ids;
	unsigned max, n;
};

static int
expired_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct expired_scan *x = arg;
	json_t *row;

	(void)expires;
	if (klen != JOBQ_ID_LEN)
		return 0; /* the counts */
	row = json_loadb(val, vlen, 0, NULL);
	if (row != NULL && is_expired(row, x->now, x->ttl, x->dlq_ttl)) {
		memcpy(x->ids + (size_t)x->n * (JOBQ_ID_LEN + 1), key,
		    JOBQ_ID_LEN);
		x->ids[(size_t)x->n * (JOBQ_ID_LEN + 1) + JOBQ_ID_LEN] = '\0';
		x->n++;
	}
	json_decref(row);
	return x->n >= x->max;
}

int
jobq_expired(struct store *st, uint64_t now, uint64_t ttl_ms,
    uint64_t dlq_ttl_ms, char *ids, unsigned max, unsigned *n)
{
	struct expired_scan x = { now, ttl_ms, dlq_ttl_ms, ids, max, 0 };
	int rc = max > 0 ? store_scan(st, STORE_JOBS, NULL, 0, now,
	    expired_row, &x) : STORE_OK;

	*n = x.n;
	return rc;
}

int
jobq_remove_expired(struct store_txn *txn, const char *ids, unsigned n,
    uint64_t now, uint64_t ttl_ms, uint64_t dlq_ttl_ms, unsigned *removed)
{
	json_t *c;
	int rc;

	*removed = 0;
	if ((rc = counts_load(txn, &c)) != STORE_OK)
		return rc;
	for (unsigned i = 0; i < n && rc == STORE_OK; i++) {
		const char *id = ids + (size_t)i * (JOBQ_ID_LEN + 1);
		json_t *row;

		if (row_load(txn, id, &row) != STORE_OK)
			continue;
		if (!is_expired(row, now, ttl_ms, dlq_ttl_ms)) {
			json_decref(row);
			continue;
		}
		rc = unindex(txn, id, row);
		if (rc == STORE_OK &&
		    strcmp(row_str(row, "state"), "dead") != 0) {
			/* not done in time: a dead letter, not a loss */
			char why[128];

			snprintf(why, sizeof(why), "expired: not done %llu ms "
						   "after it was queued",
			    (unsigned long long)ttl_ms);
			rc = to_dead(txn, id, row, c, now, why);
		} else if (rc == STORE_OK) {
			move(c, row_str(row, "tool"),
			    jobq_qos_name(row_qos(row)), "dead", NULL);
			rc = store_txn_del(txn, STORE_JOBS, id, JOBQ_ID_LEN);
		}
		if (rc == STORE_OK)
			(*removed)++;
		json_decref(row);
	}
	return counts_done(txn, c, rc);
}

/* --- readers -------------------------------------------------------------------*/

struct first_key {
	unsigned char key[JOBQ_QKEY_LEN];
	size_t len;
};

static int
first_key(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct first_key *f = arg;

	(void)val;
	(void)vlen;
	(void)expires;
	if (klen <= sizeof(f->key)) {
		memcpy(f->key, key, klen);
		f->len = klen;
	}
	return 1;
}

struct running_scan {
	struct store *st;
	uint64_t oldest; /* the earliest leasedAt */
};

static int
running_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct running_scan *r = arg;
	json_t *row;

	(void)val;
	(void)vlen;
	(void)expires;
	if (klen != JOBQ_RKEY_LEN ||
	    json_get(r->st, (const char *)key + 9, JOBQ_ID_LEN, &row) !=
		STORE_OK)
		return 0;
	if ((r->oldest == 0 ||
			       row_u64(row, "leasedAt") < r->oldest))
		r->oldest = row_u64(row, "leasedAt");
	json_decref(row);
	return 0;
}

struct ages_scan {
	struct store *st;
	uint64_t now;
	size_t rows, max_rows;
	int cut;
	json_t *by_tool, *by_qos;
	/* the queued scan of one class: the tools with queued jobs (from
	 * the counts row), and those seen in this class so far */
	const json_t *queued_tools;
	size_t nqueued_tools;
	json_t *seen;
};

/* older - obj[name].key = max(it, age) */
static void
older(json_t *obj, const char *name, const char *key, uint64_t age)
{
	json_t *o = json_object_get(obj, name);

	if (o == NULL) {
		o = json_object();
		json_object_set_new(obj, name, o);
	}
	if (json_object_get(o, key) == NULL ||
	    (uint64_t)json_integer_value(json_object_get(o, key)) < age)
		json_object_set_new(o, key, json_integer((json_int_t)age));
}

static int
ages_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct ages_scan *a = arg;
	const unsigned char *k = key;
	int queued = klen == JOBQ_QKEY_LEN && k[0] == 'Q';
	json_t *row;
	uint64_t at;

	(void)val;
	(void)vlen;
	(void)expires;
	if (!queued && !(klen == JOBQ_RKEY_LEN && k[0] == 'R'))
		return 0;
	if (queued && get_be64(k + 2) > a->now)
		return 1; /* in due order: the rest of the class waits for
			   * its time, not for a worker */
	if (a->max_rows > 0 && a->rows++ >= a->max_rows) {
		a->cut = 1;
		return 1;
	}
	if (json_get(a->st, (const char *)key + (queued ? 10 : 9),
		JOBQ_ID_LEN, &row) != STORE_OK)
		return 0;
	at = queued ? row_u64(row, "dueAt") : row_u64(row, "leasedAt");
	if (at > 0 && at <= a->now) {
		const char *f = queued ? "oldestQueuedAgeMs" :
					 "oldestRunningAgeMs";

		older(a->by_tool, row_str(row, "tool"), f, a->now - at);
		older(a->by_qos, row_str(row, "qos"), f, a->now - at);
	}
	if (queued) {
		/* in due order: a tool's first row in the class is its
		 * oldest there; the class is done once every tool with
		 * queued jobs has been seen */
		json_object_set_new(a->seen, row_str(row, "tool"), json_true());
		if (json_object_size(a->seen) >= a->nqueued_tools) {
			json_decref(row);
			return 1;
		}
	}
	json_decref(row);
	return 0;
}

int
jobq_ages(struct store *st, uint64_t now, size_t max_rows, json_t *by_tool,
    json_t *by_qos, int *cut)
{
	struct ages_scan a = { st, now, 0, max_rows, 0, by_tool, by_qos, NULL,
		0, NULL };
	json_t *counts = NULL, *t;
	const char *name;
	int rc = store_scan(st, STORE_JOBS_READY, "R", 1, now, ages_row, &a);

	if (rc == STORE_OK &&
	    (rc = json_get(st, COUNTS_KEY, strlen(COUNTS_KEY), &counts)) ==
		STORE_NOTFOUND)
		rc = STORE_OK; /* no counts: no tool known to have jobs */
	json_object_foreach(json_object_get(counts, "tools"), name, t)
		if (json_integer_value(json_object_get(t, "queued")) > 0)
			a.nqueued_tools++;
	if (a.nqueued_tools == 0)
		a.nqueued_tools = SIZE_MAX; /* not known: every due row */
	/* class by class, each scan stopping early when it can */
	for (int q = 0; rc == STORE_OK && !a.cut && q < JOBQ_NQOS; q++) {
		char prefix[2] = { 'Q', (char)('0' + q) };

		a.seen = json_object();
		rc = store_scan(st, STORE_JOBS_READY, prefix, 2, now, ages_row,
		    &a);
		json_decref(a.seen);
	}
	json_decref(counts);
	*cut = a.cut;
	return rc;
}

int
jobq_stats(struct store *st, uint64_t now, json_t *out)
{
	struct running_scan r = { st, 0 };
	uint64_t oldest_due = 0;
	json_int_t q = 0, run = 0, dead = 0;
	json_t *c = NULL, *tools, *qos, *o;
	const char *name;
	int rc = json_get(st, COUNTS_KEY, strlen(COUNTS_KEY), &c);

	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		return rc; /* an unreadable counts row: counted from nothing */
	if (c == NULL) {
		json_decref(c);
		c = json_pack("{s:{},s:{}}", "tools", "qos");
	}
	tools = json_object_get(c, "tools");
	qos = json_object_get(c, "qos");
	json_object_foreach(tools, name, o) {
		q += json_integer_value(json_object_get(o, "queued"));
		run += json_integer_value(json_object_get(o, "running"));
		dead += json_integer_value(json_object_get(o, "dead"));
	}
	for (int i = 0; i < JOBQ_NQOS; i++) {
		char prefix[2] = { 'Q', (char)('0' + i) };
		struct first_key f = { { 0 }, 0 };

		if (json_object_get(qos, qos_names[i]) == NULL)
			json_object_set_new(qos, qos_names[i],
			    json_pack("{s:i,s:i}", "queued", 0, "running", 0));
		rc = store_scan(st, STORE_JOBS_READY, prefix, 2, now, first_key,
		    &f);
		if (rc != STORE_OK)
			break;
		/* the class's oldest due job: its wait so far (null: none) */
		json_object_set_new(json_object_get(qos, qos_names[i]),
		    "oldestQueuedAgeMs",
		    f.len == JOBQ_QKEY_LEN && get_be64(f.key + 2) <= now ?
			json_integer((json_int_t)(now - get_be64(f.key + 2))) :
			json_null());
		if (f.len == JOBQ_QKEY_LEN && get_be64(f.key + 2) <= now &&
		    (oldest_due == 0 || get_be64(f.key + 2) < oldest_due))
			oldest_due = get_be64(f.key + 2);
	}
	if (rc == STORE_OK)
		rc = store_scan(st, STORE_JOBS_READY, "R", 1, now, running_row,
		    &r);
	json_object_set_new(out, "byStatus",
	    json_pack("{s:I,s:I,s:I}", "queued", q, "running", run, "dead",
		dead));
	json_object_set(out, "byTool", tools);
	json_object_set(out, "byQos", qos);
	json_object_set_new(out, "oldestQueuedAgeMs", oldest_due ?
		json_integer((json_int_t)(now - oldest_due)) :
		json_null());
	json_object_set_new(out, "oldestRunningAgeMs",
	    r.oldest && r.oldest <= now ?
		json_integer((json_int_t)(now - r.oldest)) :
		json_null());
	json_decref(c);
	return rc;
}

struct dead_scan {
	json_t *arr;
	size_t max, n;
	int cut;
};

static int
dead_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct dead_scan *d = arg;
	json_t *arr = d->arr, *row;

	(void)key;
	(void)expires;
	if (d->max != 0 && d->n++ >= d->max) {
		d->cut = 1;
		return 1;
	}
	if (klen != JOBQ_ID_LEN)
		return 0;
	row = json_loadb(val, vlen, 0, NULL);
	if (json_is_object(row) && strcmp(row_str(row, "state"), "dead") == 0)
		json_array_append(arr, row);
	json_decref(row);
	return 0;
}

static int
newest_dead_first(const void *a, const void *b)
{
	uint64_t x = row_u64(*(json_t *const *)a, "deadAt");
	uint64_t y = row_u64(*(json_t *const *)b, "deadAt");

	return x < y ? 1 : x > y ? -1 : 0;
}

int
jobq_dead_letters(struct store *st, size_t limit, json_t *out)
{
	return jobq_dead_letters_upto(st, limit, 0, out, NULL);
}

int
jobq_dead_letters_upto(struct store *st, size_t limit, size_t max_rows,
    json_t *out, int *cut)
{
	json_t *all = json_array(), **v;
	struct dead_scan d = { all, max_rows, 0, 0 };
	size_t n;
	int rc = store_scan(st, STORE_JOBS, NULL, 0, 0, dead_row, &d);

	if (cut != NULL)
		*cut = d.cut;

	n = json_array_size(all);
	v = xcalloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(all, i);
	qsort(v, n, sizeof(*v), newest_dead_first);
	for (size_t i = 0; i < n && (limit == 0 || i < limit); i++)
		json_array_append(out, v[i]);
	free(v);
	json_decref(all);
	return rc;
}

void
jobq_snapshot(json_t *snap, struct store *st, const struct jobq_tool *tools,
    size_t ntools, size_t limit, size_t max_rows)
{
	json_t *o = json_object(), *pressure = json_object();
	json_t *dead = json_array(), *by_tool;
	uint64_t now = now_ms();
	int cut = 0;
	int rc = st != NULL ? jobq_stats(st, now, o) : STORE_EIO;

	if (rc == STORE_OK && st != NULL)
		rc = jobq_dead_letters_upto(st, limit, max_rows, dead, &cut);
	if (cut)
		json_object_set_new(o, "truncated", json_true());
	by_tool = json_object_get(o, "byTool");
	for (size_t i = 0; i < ntools; i++) {
		json_t *t = json_object_get(by_tool, tools[i].name);
		json_int_t qmax = (json_int_t)tools[i].queue_max;
		json_int_t queued = json_integer_value(
		    json_object_get(t, "queued"));

		json_object_set_new(pressure, tools[i].name,
		    json_pack("{s:I,s:I,s:I,s:I,s:f}", "queued", queued,
			"queueMax", qmax, "running",
			json_integer_value(json_object_get(t, "running")),
			"runningMax", (json_int_t)tools[i].running_max,
			"queueUtilization",
			qmax > 0 ? (double)queued / (double)qmax : 0.0));
	}
	if (json_object_get(o, "byStatus") == NULL) {
		json_object_set_new(o, "byStatus",
		    json_pack("{s:i,s:i,s:i}", "queued", 0, "running", 0,
			"dead", 0));
		json_object_set_new(o, "byTool", json_object());
		json_object_set_new(o, "oldestQueuedAgeMs", json_null());
	}
	json_object_set_new(o, "pressureByTool", pressure);
	json_object_set_new(o, "recentDeadLetters", dead);
	if (rc != STORE_OK)
		json_object_set_new(o, "error", json_string(st == NULL ?
			"the store could not be opened" : store_rc_name(rc)));
	json_object_set_new(snap, "toolJobs", o);
}

void
jobq_item_free(struct jobq_item *it)
{
	free(it->args);
	it->args = NULL;
}
