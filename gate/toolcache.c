/*
 * toolcache - see toolcache.h.
 */
#include "gate/toolcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate/crypto.h"
#include "util/util.h"

int
tc_ns_valid(const char *ns)
{
	size_t n = strlen(ns);

	if (n == 0 || n >= TC_NS_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)ns[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_' || c == '.' ||
			c == '-'))
			return 0;
	}
	return 1;
}

int
tc_namespace(const char *name, unsigned version, char *out, size_t len)
{
	int n = snprintf(out, len, "%s_v%u", name, version);

	return n < 0 || (size_t)n >= len || !tc_ns_valid(out) ? -1 : 0;
}

int
tc_key(const char *ns, const char *tool, const json_t *args, char *out,
    size_t len)
{
	unsigned char sum[CRYPTO_SHA256_LEN];
	char *canon, *msg;
	size_t tl = strlen(tool), cl, nl = strlen(ns);

	if (!tc_ns_valid(ns) || len < nl + 2 + 2 * CRYPTO_SHA256_LEN)
		return -1;
	canon = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS |
		JSON_ENCODE_ANY);
	if (canon == NULL)
		return -1;
	cl = strlen(canon);
	msg = xmalloc(tl + 1 + cl);
	memcpy(msg, tool, tl + 1); /* the NUL separates name and arguments */
	memcpy(msg + tl + 1, canon, cl);
	crypto_sha256(msg, tl + 1 + cl, sum);
	free(msg);
	free(canon);
	memcpy(out, ns, nl);
	out[nl] = '|';
	crypto_hex_encode(sum, sizeof(sum), out + nl + 1, len - nl - 1);
	return 0;
}

struct stat_scan {
	json_t *by_ns;
	size_t max, n;
	int cut;
};

static int
stat_row(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	struct stat_scan *sc = arg;
	json_t *by_ns = sc->by_ns, *o;
	const char *bar = memchr(key, '|', klen);
	size_t nl = bar != NULL ? (size_t)(bar - (const char *)key) : 0;
	char ns[TC_NS_MAX];

	(void)val;
	if (sc->max != 0 && sc->n++ >= sc->max) {
		sc->cut = 1;
		return 1;
	}
	if (nl >= sizeof(ns))
		nl = sizeof(ns) - 1;
	memcpy(ns, key, nl);
	ns[nl] = '\0';
	if ((o = json_object_get(by_ns, ns)) == NULL) {
		o = json_pack("{s:I,s:I,s:I,s:I}", "entries", (json_int_t)0,
		    "bytes", (json_int_t)0, "nextExpiresAt",
		    (json_int_t)expires, "lastExpiresAt", (json_int_t)expires);
		json_object_set_new(by_ns, ns, o);
	}
#define BUMP(f, by)                                                       \
	json_object_set_new(o, f,                                         \
	    json_integer(json_integer_value(json_object_get(o, f)) + (by)))
	BUMP("entries", 1);
	BUMP("bytes", (json_int_t)(klen + vlen));
#undef BUMP
	if ((json_int_t)expires <
	    json_integer_value(json_object_get(o, "nextExpiresAt")))
		json_object_set_new(o, "nextExpiresAt",
		    json_integer((json_int_t)expires));
	if ((json_int_t)expires >
	    json_integer_value(json_object_get(o, "lastExpiresAt")))
		json_object_set_new(o, "lastExpiresAt",
		    json_integer((json_int_t)expires));
	return 0;
}

int
tc_stats_upto(struct store *st, json_t *by_ns, size_t max_rows, int *cut)
{
	struct stat_scan sc = { by_ns, max_rows, 0, 0 };
	int rc = store_scan(st, STORE_CACHE, NULL, 0, now_ms(), stat_row, &sc);

	if (cut != NULL)
		*cut = sc.cut;
	return rc;
}

int
tc_get(struct store *st, const char *ns, const char *tool, const json_t *args,
    uint64_t now, void **body, size_t *len)
{
	char key[TC_KEY_MAX];

	*body = NULL;
	*len = 0;
	if (tc_key(ns, tool, args, key, sizeof(key)) != 0)
		return -1;
	return store_get(st, STORE_CACHE, key, strlen(key), now, body, len,
		   NULL) == STORE_OK ? 0 : -1;
}

int
tc_put(struct store_txn *txn, const char *ns, const char *tool,
    const json_t *args, const void *body, size_t len, uint64_t expires)
{
	char key[TC_KEY_MAX];

	if (tc_key(ns, tool, args, key, sizeof(key)) != 0)
		return STORE_EINVAL;
	return store_txn_put(txn, STORE_CACHE, key, strlen(key), body, len,
	    expires);
}

int
tc_stats(struct store *st, json_t *by_ns)
{
	return tc_stats_upto(st, by_ns, 0, NULL);
}

int
tc_clear(struct store *st, const char *ns, size_t *removed)
{
	char prefix[TC_NS_MAX + 1];
	size_t n = strlen(ns);

	if (removed != NULL)
		*removed = 0;
	if (!tc_ns_valid(ns))
		return STORE_EINVAL;
	memcpy(prefix, ns, n);
	prefix[n] = '|';
	return store_del_prefix(st, STORE_CACHE, prefix, n + 1, TC_CLEAR_BATCH,
	    removed);
}

void
tc_snapshot(json_t *snap, struct store *st, size_t max_rows)
{
	json_t *o = json_object(), *by_ns = json_object();
	int cut = 0;
	int rc = st != NULL ? tc_stats_upto(st, by_ns, max_rows, &cut) :
			      STORE_EIO;

	json_object_set_new(o, "byNamespace", by_ns);
	if (cut)
		json_object_set_new(o, "truncated", json_true());
	if (rc != STORE_OK)
		json_object_set_new(o, "error", json_string(st == NULL ?
			"the store could not be opened" : store_rc_name(rc)));
	json_object_set_new(snap, "toolCache", o);
}
