/*
 * rgtool - test and bench helper: produces what a real sender would.
 *   rgtool oauth-state SECRET UID EXP_MS     a signed OAuth state
 *   rgtool wa-sign SECRET < BODY              X-Hub-Signature-256 value
 *   rgtool jwt SECRET SUB EXP_S               an HS256 bearer token
 *   rgtool wa-lines SECRET N PREFIX           N signed WhatsApp bodies,
 *       one per line: "SIGNATURE BODY" (message id PREFIX.I each)
 *   rgtool corrupt-delivery STATE_DIR         overwrite the first row of
 *       the deliveries table with bytes that are not JSON; prints its id
 *   rgtool chat-start RUN_DIR INGRESS INGRESS_PID USER STREAM...
 *       what an authoritative ingress sends admission.0 for each stream
 *   rgtool admit-shadow RUN_DIR USER STREAM...  shadow evaluations
 *   rgtool chat-release RUN_DIR STREAM TICKET   a stream's end
 *   rgtool hold-reader STATE_DIR             open a read transaction of
 *       the store, say "holding PID", and wait (for a kill)
 *   rgtool jobs-put STATE_DIR TOOL N DEAD [AGE_MS]   N queued tool jobs
 *       of TOOL (interactive), DEAD of them failed into the dead letters,
 *       all made AGE_MS ago (default 0); ids rgtool<AGE_MS><I>
 *   rgtool put-expiring STATE_DIR TABLE N TTL_MS   N rows of TABLE
 *       (idem, alerts, events) that expire TTL_MS from now (their values
 *       are not what relgate writes there: for the sweeps only)
 *   rgtool cache-put STATE_DIR NS TOOL N TTL_MS   N tool-cache rows of
 *       TOOL in namespace NS (arguments {"i": 0..N-1}), as a tool-worker
 *       writes them
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <lmdb.h>

#include "gate/b64.h"
#include "gate/crypto.h"
#include "gate/oauthstate.h"
#include "gate/jobq.h"
#include "gate/toolcache.h"
#include "proto/link.h"
#include "store/store.h"

/* hold_reader - a reader slot of the store's environment, held until
 * the process is killed (for the monitor's stale-reader check) */
static int
hold_reader(const char *dir)
{
	MDB_env *env;
	MDB_txn *txn;

	if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 32) != 0 ||
	    mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0) != 0 ||
	    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0) {
		fprintf(stderr, "rgtool: %s: cannot open the store\n", dir);
		return 1;
	}
	printf("holding %d\n", (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
}

struct jobs_put {
	struct jobq_limits lim;
	struct jobq_tool tool;
	long n, dead;
	uint64_t now, age;
	int rc;
};

static int
jobs_put_apply(struct store_txn *txn, void *arg)
{
	struct jobs_put *j = arg;
	struct jobq_item it[64];
	unsigned got = 0;
	int rc = STORE_OK;

	for (long i = 0; i < j->n && rc == STORE_OK; i++) {
		char id[JOBQ_ID_LEN + 1], full[64];
		json_t *args = json_pack("{s:s,s:I}", "query", "rgtool",
		    "i", (json_int_t)i);
		struct jobq_new nj = { id, j->tool.name, JOBQ_INTERACTIVE,
			args, NULL, 0 };

		snprintf(full, sizeof(full), "rgtool%013llu%013llu",
		    (unsigned long long)(j->age % 10000000000000ull),
		    (unsigned long long)i % 10000000000000ull);
		memcpy(id, full, JOBQ_ID_LEN);
		id[JOBQ_ID_LEN] = '\0';
		rc = jobq_enqueue(txn, &nj, &j->lim, j->now);
		json_decref(args);
	}
	if (rc == STORE_OK && j->dead > 0)
		rc = jobq_claim(txn, j->now, (int32_t)getpid(), &j->lim,
		    (unsigned)j->dead, it, &got);
	for (unsigned i = 0; i < got; i++) {
		if (rc == STORE_OK)
			rc = jobq_fail(txn, it[i].id, (int32_t)getpid(),
			    it[i].attempt, "rgtool: refused", &j->lim, j->now,
			    0, NULL);
		jobq_item_free(&it[i]);
	}
	return rc;
}

/* jobs_put - n queued jobs of tool, dead of them dead letters */
static int
jobs_put(const char *dir, const char *tool, long n, long dead, long age)
{
	struct jobs_put j;
	struct store *st;
	struct timespec ts;
	char err[256];

	memset(&j, 0, sizeof(j));
	j.tool.name = tool;
	j.tool.queue_max = j.tool.running_max = 100000;
	j.lim.tools = &j.tool;
	j.lim.ntools = 1;
	for (int q = 0; q < JOBQ_NQOS; q++)
		j.lim.qos_running_max[q] = 100000;
	j.lim.claim_scan = 100000;
	j.lim.max_attempts = 1;
	j.lim.lease_ms = 60000;
	j.lim.retry_base_ms = 1000;
	j.n = n;
	j.dead = dead > 64 ? 64 : dead;
	clock_gettime(CLOCK_REALTIME, &ts);
	j.age = age > 0 ? (uint64_t)age : 0;
	j.now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 -
	    j.age;
	if (store_open(&st, dir, 64u << 20, 0, NULL, err, sizeof(err)) !=
	    STORE_OK) {
		fprintf(stderr, "rgtool: %s\n", err);
		return 1;
	}
	j.rc = store_run(st, jobs_put_apply, &j);
	store_close(st);
	if (j.rc != STORE_OK)
		fprintf(stderr, "rgtool: jobs-put: %s\n", store_rc_name(j.rc));
	return j.rc == STORE_OK ? 0 : 1;
}

/* put_expiring - n placeholder rows of table expiring in ttl_ms */
static int
put_expiring(const char *dir, const char *table, long n, long ttl_ms)
{
	struct timespec ts;
	struct store *st;
	char err[256], key[64];
	int t = -1, rc = 0;

	for (int i = 0; i < STORE_NTABLES; i++)
		if (strcmp(store_table_name((enum store_table)i), table) == 0)
			t = i;
	if (t < 0) {
		fprintf(stderr, "rgtool: no table %s\n", table);
		return 2;
	}
	if (store_open(&st, dir, 64u << 20, 0, NULL, err, sizeof(err)) !=
	    STORE_OK) {
		fprintf(stderr, "rgtool: %s\n", err);
		return 1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	for (long i = 0; i < n && rc == 0; i++) {
		snprintf(key, sizeof(key), "rgtool-expiring|%ld", i);
		if (store_put(st, (enum store_table)t, key, strlen(key), "x", 1,
			(uint64_t)ts.tv_sec * 1000 +
			    (uint64_t)ts.tv_nsec / 1000000 +
			    (uint64_t)ttl_ms) != STORE_OK)
			rc = 1;
	}
	store_close(st);
	return rc;
}

/* cache_put - n rows of tool in namespace ns, expiring in ttl_ms */
static int
cache_put(const char *dir, const char *ns, const char *tool, long n,
    long ttl_ms)
{
	struct timespec ts;
	struct store *st;
	char err[256], key[TC_KEY_MAX], val[64];
	uint64_t exp;
	int rc = 0;

	if (store_open(&st, dir, 64u << 20, 0, NULL, err, sizeof(err)) !=
	    STORE_OK) {
		fprintf(stderr, "rgtool: %s\n", err);
		return 1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	exp = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 +
	    (uint64_t)ttl_ms;
	for (long i = 0; i < n && rc == 0; i++) {
		json_t *args = json_pack("{s:I}", "i", (json_int_t)i);
		int len = snprintf(val, sizeof(val), "{\"result\":%ld}", i);

		if (tc_key(ns, tool, args, key, sizeof(key)) != 0 ||
		    store_put(st, STORE_CACHE, key, strlen(key), val,
			(size_t)len, exp) != STORE_OK)
			rc = 1;
		json_decref(args);
	}
	store_close(st);
	if (rc != 0)
		fprintf(stderr, "rgtool: cache-put into %s failed\n", ns);
	return rc;
}

static int
usage(void)
{
	fprintf(stderr, "usage: rgtool oauth-state SECRET UID EXP_MS | "
			"wa-sign SECRET | wa-lines SECRET N PREFIX | jwt SECRET SUB EXP_S | "
			"corrupt-delivery STATE_DIR | chat-start RUN_DIR INGRESS "
			"INGRESS_PID USER STREAM... | admit-shadow RUN_DIR USER "
			"STREAM... | chat-release RUN_DIR STREAM TICKET | "
			"hold-reader STATE_DIR | cache-put STATE_DIR NS TOOL N "
			"TTL_MS | jobs-put STATE_DIR TOOL N DEAD [AGE_MS] | put-expiring "
			"STATE_DIR TABLE N TTL_MS\n");
	return 2;
}

static void
sign(const char *secret, const void *body, size_t len, char *out)
{
	unsigned char mac[CRYPTO_SHA256_LEN];

	crypto_hmac_sha256(secret, strlen(secret), body, len, mac);
	memcpy(out, "sha256=", 7);
	crypto_hex_encode(mac, sizeof(mac), out + 7, 65);
}

static int
first_key(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	char *out = arg;

	(void)val;
	(void)vlen;
	(void)expires;
	if (klen < 64) {
		memcpy(out, key, klen);
		out[klen] = '\0';
	}
	return 1;
}

/* corrupt_delivery - what a torn or foreign write would leave. */
static int
corrupt_delivery(const char *dir)
{
	static const char junk[] = "{\"id\":\"\xff\xfe not json";
	struct store *st;
	char err[256], id[64] = "";
	int rc;

	if (store_open(&st, dir, 64u << 20, 0, NULL, err, sizeof(err)) !=
	    STORE_OK) {
		fprintf(stderr, "rgtool: %s\n", err);
		return 1;
	}
	store_scan(st, STORE_DELIVERIES, NULL, 0, 0, first_key, id);
	rc = id[0] != '\0' ? store_put(st, STORE_DELIVERIES, id, strlen(id),
				   junk, sizeof(junk) - 1, 0) :
			      STORE_NOTFOUND;
	store_close(st);
	if (rc != STORE_OK) {
		fprintf(stderr, "rgtool: %s\n", store_rc_name(rc));
		return 1;
	}
	printf("%s\n", id);
	return 0;
}

/*
 * to_admission - send admission.0 the message m once per stream of
 * streams[n] (m's stream field set by set), from a client inbox in
 * run_dir; the loop runs half a second so queued sends leave.  0 when
 * every send was taken.
 */
static int
to_admission(const char *run_dir, struct proto_msg *m,
    void (*set)(struct proto_msg *, uint64_t), char **streams, int n)
{
	struct event_base *base = event_base_new();
	struct timeval tv = { 0, 500000 };
	struct link_stats st;
	struct link_ctx *l;
	int rc = 0;

	memset(&st, 0, sizeof(st));
	l = base ? link_open(base, run_dir, ROLE_CLIENT, (unsigned)getpid(),
		       NULL, NULL, &st) :
		   NULL;
	if (l == NULL)
		return 2;
	for (int i = 0; i < n; i++) {
		set(m, strtoull(streams[i], NULL, 10));
		if (link_send(l, ROLE_ADMISSION, 0, m) != LINK_OK)
			rc = 1;
	}
	event_base_loopexit(base, &tv);
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	link_close(l);
	event_base_free(base);
	return rc;
}

static void
set_start(struct proto_msg *m, uint64_t stream)
{
	m->u.chat_start.stream = stream;
}

static void
set_shadow(struct proto_msg *m, uint64_t stream)
{
	m->u.admit_shadow.stream = stream;
}

static void
set_release(struct proto_msg *m, uint64_t stream)
{
	m->u.chat_release.stream = stream;
}

/* chat_msgs - the chat-start, admit-shadow and chat-release commands. */
static int
chat_msgs(int argc, char **argv)
{
	struct proto_msg m;

	memset(&m, 0, sizeof(m));
	if (argc >= 7 && strcmp(argv[1], "chat-start") == 0) {
		m.type = PROTO_T_CHAT_START;
		m.u.chat_start.ingress = (uint8_t)atoi(argv[3]);
		m.u.chat_start.ingress_pid = (uint32_t)atol(argv[4]);
		m.u.chat_start.mode = 2;
		m.u.chat_start.user = proto_str_from(argv[5]);
		m.u.chat_start.thread_id = proto_str_from("t1");
		m.u.chat_start.messages = proto_str_from(
		    "[{\"role\":\"user\",\"content\":\"hi\"}]");
		return to_admission(argv[2], &m, set_start, argv + 6,
		    argc - 6);
	}
	if (argc >= 5 && strcmp(argv[1], "admit-shadow") == 0) {
		m.type = PROTO_T_ADMIT_SHADOW;
		m.u.admit_shadow.user = proto_str_from(argv[3]);
		return to_admission(argv[2], &m, set_shadow, argv + 4,
		    argc - 4);
	}
	if (argc == 5 && strcmp(argv[1], "chat-release") == 0) {
		m.type = PROTO_T_CHAT_RELEASE;
		m.u.chat_release.ticket = strtoull(argv[4], NULL, 10);
		return to_admission(argv[2], &m, set_release, argv + 3, 1);
	}
	return -1;
}

int
main(int argc, char **argv)
{
	int rc;

	char sig[80];

	if (argc >= 5 && strcmp(argv[1], "oauth-state") == 0) {
		char buf[4096];

		if (oauthstate_make(argv[2], argv[3],
			strtoull(argv[4], NULL, 10), buf, sizeof(buf)) < 0)
			return 1;
		printf("%s\n", buf);
		return 0;
	}
	if (argc >= 5 && strcmp(argv[1], "jwt") == 0) {
		char payload[512], head[128], pay[700], mac64[64], msg[900];
		unsigned char mac[CRYPTO_SHA256_LEN];
		static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

		snprintf(payload, sizeof(payload),
		    "{\"sub\":\"%s\",\"exp\":%s}", argv[3], argv[4]);
		b64url_encode(hdr, strlen(hdr), head, sizeof(head));
		b64url_encode(payload, strlen(payload), pay, sizeof(pay));
		snprintf(msg, sizeof(msg), "%s.%s", head, pay);
		crypto_hmac_sha256(argv[2], strlen(argv[2]), msg, strlen(msg),
		    mac);
		b64url_encode(mac, sizeof(mac), mac64, sizeof(mac64));
		printf("%s.%s\n", msg, mac64);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "wa-sign") == 0) {
		static char body[1 << 20];
		size_t n = fread(body, 1, sizeof(body), stdin);

		sign(argv[2], body, n, sig);
		printf("%s\n", sig);
		return 0;
	}
	if (argc >= 5 && strcmp(argv[1], "wa-lines") == 0) {
		long n = atol(argv[3]);

		for (long i = 0; i < n; i++) {
			char body[1024];
			int len = snprintf(body, sizeof(body),
			    "{\"object\":\"whatsapp_business_account\","
			    "\"entry\":[{\"id\":\"waba\",\"changes\":[{"
			    "\"field\":\"messages\",\"value\":{"
			    "\"messaging_product\":\"whatsapp\","
			    "\"messages\":[{\"id\":\"%s.%ld\",\"from\":\"1\","
			    "\"type\":\"text\",\"text\":{\"body\":\"hi\"}}]}}]}"
			    "]}",
			    argv[4], i);

			sign(argv[2], body, (size_t)len, sig);
			printf("%s %s\n", sig, body);
		}
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "corrupt-delivery") == 0)
		return corrupt_delivery(argv[2]);
	if ((argc == 6 || argc == 7) && strcmp(argv[1], "jobs-put") == 0)
		return jobs_put(argv[2], argv[3], atol(argv[4]), atol(argv[5]),
		    argc == 7 ? atol(argv[6]) : 0);
	if (argc == 6 && strcmp(argv[1], "put-expiring") == 0)
		return put_expiring(argv[2], argv[3], atol(argv[4]),
		    atol(argv[5]));
	if (argc == 7 && strcmp(argv[1], "cache-put") == 0)
		return cache_put(argv[2], argv[3], argv[4], atol(argv[5]),
		    atol(argv[6]));
	if (argc >= 3 && strcmp(argv[1], "hold-reader") == 0)
		return hold_reader(argv[2]);
	if ((rc = chat_msgs(argc, argv)) >= 0)
		return rc;
	return usage();
}
