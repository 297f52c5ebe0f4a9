/*
 * toolcache_test - the tool cache's rows (gate/toolcache): namespaces
 * "<name>_v<version>", a key that does not depend on the order of the
 * arguments but on the tool, the arguments and the namespace; stats per
 * namespace (live rows only); a clear removes one namespace's rows,
 * expired ones and their TTL index entries too, in batches, and leaves
 * the others; store_del_prefix refuses an empty prefix and a read-only
 * store.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gate/crypto.h"
#include "gate/toolcache.h"
#include "testlib.h"
#include "util/util.h"

static char dir[256];
static struct store *st;
static struct store_writer *w;

static void
setup(void)
{
	tl_store_create(dir, sizeof(dir), "tcache", &st, &w, 64);
}

static void
teardown(void)
{
	tl_store_destroy(dir, st, w);
}

START_TEST(sha256_known_answer)
{
	unsigned char d[CRYPTO_SHA256_LEN];
	char hex[2 * CRYPTO_SHA256_LEN + 1];

	crypto_sha256("abc", 3, d);
	crypto_hex_encode(d, sizeof(d), hex, sizeof(hex));
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223"
			      "b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(names_and_keys)
{
	char ns[TC_NS_MAX], k1[TC_KEY_MAX], k2[TC_KEY_MAX], k3[TC_KEY_MAX];
	char long_name[200];
	json_t *a = json_pack("{s:s,s:i}", "query", "red shoes", "num", 5);
	json_t *b = json_pack("{s:i,s:s}", "num", 5, "query", "red shoes");
	json_t *c = json_pack("{s:i,s:s}", "num", 6, "query", "red shoes");

	ck_assert_int_eq(tc_namespace("search_web", 1, ns, sizeof(ns)), 0);
	ck_assert_str_eq(ns, "search_web_v1");
	ck_assert_int_eq(tc_namespace("bad name", 1, ns, sizeof(ns)), -1);
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	ck_assert_int_eq(tc_namespace(long_name, 1, ns, sizeof(ns)), -1);
	ck_assert(!tc_ns_valid(""));
	ck_assert(!tc_ns_valid("a|b"));

	ck_assert_int_eq(tc_key("search_web_v1", "search_web", a, k1,
			     sizeof(k1)),
	    0);
	ck_assert_int_eq(strlen(k1), strlen("search_web_v1|") + 64);
	ck_assert(strncmp(k1, "search_web_v1|", 14) == 0);
	/* the same arguments in another order: the same key */
	ck_assert_int_eq(tc_key("search_web_v1", "search_web", b, k2,
			     sizeof(k2)),
	    0);
	ck_assert_str_eq(k1, k2);
	/* another argument value, another tool, another namespace */
	ck_assert_int_eq(tc_key("search_web_v1", "search_web", c, k3,
			     sizeof(k3)),
	    0);
	ck_assert_str_ne(k1, k3);
	ck_assert_int_eq(tc_key("search_web_v1", "search_global", a, k3,
			     sizeof(k3)),
	    0);
	ck_assert_str_ne(k1, k3);
	ck_assert_int_eq(tc_key("search_web_v2", "search_web", a, k3,
			     sizeof(k3)),
	    0);
	ck_assert_str_ne(k1, k3); /* another namespace, the same digits */
	ck_assert_str_eq(k1 + 14, k3 + 14);
	ck_assert_int_eq(tc_key("search_web_v1", "search_web", a, k3, 40), -1);
	json_decref(a);
	json_decref(b);
	json_decref(c);
}
END_TEST

/* put_n - n rows in ns with values of vlen bytes, expiring at exp */
static void
put_n(const char *ns, int n, size_t vlen, uint64_t exp)
{
	char key[TC_KEY_MAX], *val = xcalloc(1, vlen ? vlen : 1);

	for (int i = 0; i < n; i++) {
		json_t *args = json_pack("{s:i}", "i", i);

		ck_assert_int_eq(tc_key(ns, "t", args, key, sizeof(key)), 0);
		ck_assert_int_eq(store_put(st, STORE_CACHE, key, strlen(key),
				     val, vlen, exp),
		    STORE_OK);
		json_decref(args);
	}
	free(val);
}

static json_int_t
stat_of(json_t *by, const char *ns, const char *f)
{
	return json_integer_value(json_object_get(json_object_get(by, ns), f));
}

START_TEST(stats_and_clear)
{
	uint64_t now = now_ms(), n = 0;
	json_t *by = json_object();
	size_t removed = 99;

	put_n("search_web_v1", 2500, 10, now + 60000);
	put_n("search_web_v2", 3, 20, now + 120000);
	put_n("search_products_v1", 4, 0, now + 1);
	/* an expired row of search_web_v1: not counted, but cleared */
	ck_assert_int_eq(store_put(st, STORE_CACHE, "search_web_v1|old", 17,
			     "x", 1, now - 1000),
	    STORE_OK);
	usleep(5000);
	ck_assert_int_eq(tc_stats(st, by), STORE_OK);
	ck_assert_int_eq(json_object_size(by), 2); /* products expired */
	ck_assert_int_eq(stat_of(by, "search_web_v1", "entries"), 2500);
	ck_assert_int_eq(stat_of(by, "search_web_v1", "bytes"),
	    2500 * (14 + 64 + 10));
	ck_assert_int_eq(stat_of(by, "search_web_v2", "entries"), 3);
	ck_assert_int_eq(stat_of(by, "search_web_v2", "nextExpiresAt"),
	    (json_int_t)(now + 120000));
	json_decref(by);

	/* 2501 rows in three batches; v2 and products untouched */
	ck_assert_int_eq(tc_clear(st, "search_web_v1", &removed), STORE_OK);
	ck_assert_uint_eq(removed, 2501);
	ck_assert_int_eq(store_count(st, STORE_CACHE, &n), STORE_OK);
	ck_assert_uint_eq(n, 3 + 4);
	by = json_object();
	ck_assert_int_eq(tc_stats(st, by), STORE_OK);
	ck_assert_int_eq(stat_of(by, "search_web_v2", "entries"), 3);
	ck_assert_ptr_null(json_object_get(by, "search_web_v1"));
	json_decref(by);
	/* the TTL index lost the cleared rows' entries: a sweep after all
	 * expired removes only the seven left */
	ck_assert_int_eq(store_sweep(st, STORE_CACHE, now + 200000, 100, 0,
			     &removed),
	    STORE_OK);
	ck_assert_uint_eq(removed, 7);
	ck_assert_int_eq(store_count(st, STORE_CACHE, &n), STORE_OK);
	ck_assert_uint_eq(n, 0);

	/* nothing to clear is not an error; a bad namespace is */
	ck_assert_int_eq(tc_clear(st, "search_web_v1", &removed), STORE_OK);
	ck_assert_uint_eq(removed, 0);
	ck_assert_int_eq(tc_clear(st, "a|b", &removed), STORE_EINVAL);
	ck_assert_int_eq(store_del_prefix(st, STORE_CACHE, "", 0, 10,
			     &removed),
	    STORE_EINVAL);
}
END_TEST

struct put_one {
	const char *ns;
	json_t *args;
	const char *body;
	uint64_t expires;
};

static int
put_one_apply(struct store_txn *txn, void *arg)
{
	struct put_one *p = arg;

	return tc_put(txn, p->ns, "search_web", p->args, p->body,
	    strlen(p->body), p->expires);
}

/* got - 1 and the body in buf when tool search_web(args) is cached in ns */
static int
got(const char *ns, const json_t *args, uint64_t now, char *buf, size_t len)
{
	void *b;
	size_t n;

	if (tc_get(st, ns, "search_web", args, now, &b, &n) != 0)
		return 0;
	ck_assert_uint_lt(n, len);
	memcpy(buf, b, n);
	buf[n] = '\0';
	free(b);
	return 1;
}

/* the cache as the provider reads it and the tool-worker writes it: a
 * hit (whatever the order of the arguments), a miss for other arguments,
 * expiry, a version bump, a clear */
START_TEST(hit_miss_expiry_version_clear)
{
	uint64_t now = now_ms();
	json_t *a = json_pack("{s:s,s:i}", "query", "cats", "num", 5);
	json_t *same = json_pack("{s:i,s:s}", "num", 5, "query", "cats");
	json_t *other = json_pack("{s:s,s:i}", "query", "dogs", "num", 5);
	struct put_one p = { "search_web_v1", a, "{\"organic\":[1]}",
		now + 1000 };
	char buf[64];
	size_t removed;
	json_t *by = json_object();

	ck_assert_int_eq(got("search_web_v1", a, now, buf, sizeof(buf)), 0);
	ck_assert_int_eq(tl_write(w, put_one_apply, &p), STORE_OK);
	ck_assert_int_eq(got("search_web_v1", a, now, buf, sizeof(buf)), 1);
	ck_assert_str_eq(buf, "{\"organic\":[1]}");
	ck_assert_int_eq(got("search_web_v1", same, now, buf, sizeof(buf)), 1);
	ck_assert_int_eq(got("search_web_v1", other, now, buf, sizeof(buf)),
	    0);
	/* expired = absent */
	ck_assert_int_eq(got("search_web_v1", a, now + 999, buf, sizeof(buf)),
	    1);
	ck_assert_int_eq(got("search_web_v1", a, now + 1000, buf, sizeof(buf)),
	    0);
	/* version 2: another namespace, empty; version 1 untouched */
	ck_assert_int_eq(got("search_web_v2", a, now, buf, sizeof(buf)), 0);
	p.ns = "search_web_v2";
	p.body = "{\"organic\":[2]}";
	p.expires = now + 60000;
	ck_assert_int_eq(tl_write(w, put_one_apply, &p), STORE_OK);
	ck_assert_int_eq(got("search_web_v2", a, now, buf, sizeof(buf)), 1);
	ck_assert_str_eq(buf, "{\"organic\":[2]}");
	ck_assert_int_eq(got("search_web_v1", a, now, buf, sizeof(buf)), 1);
	ck_assert_str_eq(buf, "{\"organic\":[1]}");
	/* stats see both; a clear of v1 leaves v2 */
	ck_assert_int_eq(tc_stats(st, by), STORE_OK);
	ck_assert_int_eq(stat_of(by, "search_web_v1", "entries"), 1);
	ck_assert_int_eq(stat_of(by, "search_web_v2", "entries"), 1);
	json_decref(by);
	ck_assert_int_eq(tc_clear(st, "search_web_v1", &removed), STORE_OK);
	ck_assert_uint_eq(removed, 1);
	ck_assert_int_eq(got("search_web_v1", a, now, buf, sizeof(buf)), 0);
	ck_assert_int_eq(got("search_web_v2", a, now, buf, sizeof(buf)), 1);
	/* a bad namespace: nothing read, nothing written */
	ck_assert_int_eq(got("a|b", a, now, buf, sizeof(buf)), 0);
	p.ns = "a|b";
	ck_assert_int_eq(tl_write(w, put_one_apply, &p), STORE_EINVAL);
	json_decref(a);
	json_decref(same);
	json_decref(other);
}
END_TEST

START_TEST(prefix_is_exact)
{
	size_t removed = 0;
	uint64_t n = 0;

	/* "search_web_v1|" must not take "search_web_v10|" */
	put_n("search_web_v1", 5, 1, 0);
	put_n("search_web_v10", 6, 1, 0);
	ck_assert_int_eq(tc_clear(st, "search_web_v1", &removed), STORE_OK);
	ck_assert_uint_eq(removed, 5);
	ck_assert_int_eq(store_count(st, STORE_CACHE, &n), STORE_OK);
	ck_assert_uint_eq(n, 6);
}
END_TEST

/* entries_in - toolCache.byNamespace[ns].entries of snap */
static json_int_t
entries_in(json_t *snap, const char *ns)
{
	return json_integer_value(json_object_get(json_object_get(
	    json_object_get(json_object_get(snap, "toolCache"), "byNamespace"),
	    ns), "entries"));
}

START_TEST(snapshot_section)
{
	json_t *snap = json_object();

	put_n("search_global_v1", 2, 3, 0);
	tc_snapshot(snap, st, 0);
	ck_assert_int_eq(entries_in(snap, "search_global_v1"), 2);
	ck_assert_ptr_null(json_object_get(json_object_get(snap, "toolCache"),
	    "truncated"));
	/* bounded: 3 of the 5 rows read, the section says it was cut; in
	 * key order, v1's two rows, then the first of v2's three */
	put_n("search_global_v2", 3, 3, 0);
	tc_snapshot(snap, st, 3);
	ck_assert(json_is_true(json_object_get(json_object_get(snap,
	    "toolCache"), "truncated")));
	ck_assert_int_eq(entries_in(snap, "search_global_v1"), 2);
	ck_assert_int_eq(entries_in(snap, "search_global_v2"), 1);
	tc_snapshot(snap, NULL, 0);
	ck_assert_ptr_nonnull(
	    json_object_get(json_object_get(snap, "toolCache"), "error"));
	json_decref(snap);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("toolcache");
	TCase *tc = tl_tcase(s, "toolcache", setup, teardown, 60);

	tcase_add_test(tc, sha256_known_answer);
	tcase_add_test(tc, names_and_keys);
	tcase_add_test(tc, stats_and_clear);
	tcase_add_test(tc, hit_miss_expiry_version_clear);
	tcase_add_test(tc, prefix_is_exact);
	tcase_add_test(tc, snapshot_section);
	return tl_run(s);
}
