/*
 * tools_bench - the tool plane's store paths, on a store of its own in a
 * temp dir, with durable commits (fsync per transaction, as relgate
 * runs).  Prints figures; asserts nothing (a benchmark is not a test).
 *   tools_bench [-k KEYS] [-n JOBS] [-b BATCH]
 *
 *   cache   KEYS rows (default 1000) in namespace search_web_v1, then
 *           lookups as the provider makes them for a tool call: the key
 *           (canonical JSON of the arguments, SHA-256) and an LMDB read,
 *           for 3 s: hits/s; then the same for keys that are not there.
 *   queue   JOBS jobs (default 20000) enqueued one per request through
 *           the group-commit writer (as providers enqueue), then claimed
 *           BATCH at a time (default 10, TOOL_JOB_MAX_PER_RUN) and each
 *           completed by a request of its own (as tool-workers end
 *           them): jobs/s of each phase, and of the whole
 *           enqueue -> claim -> complete.  The writer's batches are
 *           store.max_batch (256).
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "gate/jobq.h"
#include "gate/toolcache.h"
#include "store/store.h"
#include "bench/benchutil.h"
#include "util/util.h"

#define MAX_BATCH 256
#define PHASE_NS (3ull * 1000 * 1000 * 1000)
#define INFLIGHT 4096 /* enqueue requests queued at once */

static void
report(const char *part, const char *what, unsigned long n, uint64_t ns)
{
	double s = (double)ns / 1e9;

	printf("{\"part\":\"%s\",\"what\":\"%s\",\"n\":%lu,\"seconds\":%.3f,"
	       "\"perSecond\":%.0f,\"usEach\":%.2f}\n",
	    part, what, n, s, s > 0 ? (double)n / s : 0.0,
	    n > 0 ? (double)ns / 1e3 / (double)n : 0.0);
	fflush(stdout);
}

/* --- completions of writer requests ---------------------------------------*/

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned long done_n, failed_n;

static void
on_done(void *arg, int rc)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	done_n++;
	if (rc != STORE_OK)
		failed_n++;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

/* wait_done - until n requests are done in all */
static void
wait_done(unsigned long n)
{
	pthread_mutex_lock(&mu);
	while (done_n < n)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

/* --- cache --------------------------------------------------------------------*/

static const char NS[] = "search_web_v1";

static json_t *
args_of(unsigned long i)
{
	char q[48];

	snprintf(q, sizeof(q), "query number %lu", i);
	return json_pack("{s:s,s:i}", "query", q, "num", 5);
}

struct cache_put {
	unsigned long from, to;
	uint64_t expires;
};

static int
cache_put_apply(struct store_txn *txn, void *arg)
{
	struct cache_put *p = arg;
	static const char body[] = "{\"organic\":[{\"title\":\"a result of "
				   "about the size of a real one, give or "
				   "take\",\"link\":\"https://example.com/1\"}]}";

	for (unsigned long i = p->from; i < p->to; i++) {
		char key[TC_KEY_MAX];
		json_t *a = args_of(i);
		int rc = tc_key(NS, "search_web", a, key, sizeof(key));

		json_decref(a);
		if (rc != 0)
			return STORE_EINVAL;
		if ((rc = store_txn_put(txn, STORE_CACHE, key, strlen(key), body,
			 sizeof(body) - 1, p->expires)) != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

static void
cache_phase(struct store *st, unsigned long keys)
{
	struct cache_put p = { 0, keys, now_ms() + 3600000 };
	uint64_t t0, ns;
	unsigned long n, hits;

	if (store_run(st, cache_put_apply, &p) != STORE_OK) {
		fprintf(stderr, "tools_bench: cache rows not written\n");
		exit(1);
	}
	for (int miss = 0; miss < 2; miss++) {
		t0 = mono_ns();
		n = hits = 0;
		do {
			for (int k = 0; k < 256; k++, n++) {
				char key[TC_KEY_MAX];
				json_t *a = args_of(miss ? keys + n : n % keys);
				void *v = NULL;
				size_t len;

				if (tc_key(NS, "search_web", a, key,
					sizeof(key)) == 0 &&
				    store_get(st, STORE_CACHE, key, strlen(key),
					now_ms(), &v, &len, NULL) == STORE_OK)
					hits++;
				free(v);
				json_decref(a);
			}
			ns = mono_ns() - t0;
		} while (ns < PHASE_NS);
		report("cache", miss ? "lookups (misses)" : "lookups (hits)",
		    n, ns);
		if ((miss && hits != 0) || (!miss && hits != n))
			fprintf(stderr, "tools_bench: %lu hits of %lu lookups\n",
			    hits, n);
	}
}

/* --- queue --------------------------------------------------------------------*/

static const struct jobq_tool tools[] = { { "search_web", 1u << 30,
	1u << 30 } };
static struct jobq_limits lim = { tools, 1, { 1u << 30, 1u << 30, 1u << 30 },
	50, 3, 60000, 1000 };

struct enq {
	char id[JOBQ_ID_LEN + 1];
	json_t *args;
};

static int
enq_apply(struct store_txn *txn, void *arg)
{
	struct enq *e = arg;
	struct jobq_new j = { e->id, "search_web", JOBQ_INTERACTIVE, e->args,
		NULL, 1 };

	return jobq_enqueue(txn, &j, &lim, now_ms());
}

struct claim {
	unsigned max, n;
	struct jobq_item it[64];
};

static int
claim_apply(struct store_txn *txn, void *arg)
{
	struct claim *c = arg;

	for (unsigned i = 0; i < c->n; i++)
		jobq_item_free(&c->it[i]);
	c->n = 0;
	return jobq_claim(txn, now_ms(), (int32_t)getpid(), &lim, c->max,
	    c->it, &c->n);
}

struct comp {
	char id[JOBQ_ID_LEN + 1];
	uint32_t attempt;
};

static int
comp_apply(struct store_txn *txn, void *arg)
{
	struct comp *c = arg;

	return jobq_complete(txn, c->id, (int32_t)getpid(), c->attempt);
}

static void
queue_phase(struct store_writer *w, unsigned long jobs, unsigned batch)
{
	struct enq *e = xcalloc(jobs, sizeof(*e));
	struct comp *cp = xcalloc(jobs, sizeof(*cp));
	unsigned long base = done_n, completed = 0, reqs = 0;
	uint64_t t0 = mono_ns(), t1, t2;

	for (unsigned long i = 0; i < jobs; i++) {
		snprintf(e[i].id, sizeof(e[i].id), "bench%027lu", i);
		e[i].args = args_of(i);
		if (i >= INFLIGHT)
			wait_done(base + i - INFLIGHT + 1);
		if (store_writer_submit(w, enq_apply, on_done, &e[i]) !=
		    STORE_OK)
			exit(1);
	}
	wait_done(base + jobs);
	t1 = mono_ns();
	report("queue", "enqueue (one job a request)", jobs, t1 - t0);
	base = done_n;
	while (completed < jobs) {
		struct claim c = { .max = batch };
		unsigned long before;

		before = done_n;
		if (store_writer_submit(w, claim_apply, on_done, &c) != STORE_OK)
			exit(1);
		wait_done(before + 1);
		reqs++;
		if (c.n == 0) {
			fprintf(stderr, "tools_bench: the queue ran dry at %lu\n",
			    completed);
			break;
		}
		before = done_n;
		for (unsigned i = 0; i < c.n; i++) {
			struct comp *x = &cp[completed + i];

			memcpy(x->id, c.it[i].id, sizeof(x->id));
			x->attempt = c.it[i].attempt;
			jobq_item_free(&c.it[i]);
			if (store_writer_submit(w, comp_apply, on_done, x) !=
			    STORE_OK)
				exit(1);
		}
		wait_done(before + c.n);
		completed += c.n;
		reqs += c.n;
	}
	t2 = mono_ns();
	report("queue", "claim + complete (a claim a batch, a complete a job)",
	    completed, t2 - t1);
	report("queue", "enqueue -> claim -> complete", completed, t2 - t0);
	printf("{\"part\":\"queue\",\"what\":\"writer requests\",\"n\":%lu,"
	       "\"failed\":%lu}\n", reqs + jobs, failed_n);
	for (unsigned long i = 0; i < jobs; i++)
		json_decref(e[i].args);
	free(e);
	free(cp);
}

/* rm_dir - the store's files, then its directory */
static int
rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];

	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	return rmdir(dir);
}

int
main(int argc, char **argv)
{
	unsigned long keys = 1000, jobs = 20000;
	unsigned batch = 10;
	char dir[] = "/tmp/rgbench-tools.XXXXXX", err[256];
	struct store *st;
	struct store_writer *w;
	int c;

	while ((c = getopt(argc, argv, "k:n:b:")) != -1) {
		switch (c) {
		case 'k':
			keys = (unsigned long)bench_arg("tools_bench", optarg, 1, 1000000, "-k");
			break;
		case 'n':
			jobs = (unsigned long)bench_arg("tools_bench", optarg, 1, 1000000, "-n");
			break;
		case 'b':
			batch = (unsigned)bench_arg("tools_bench", optarg, 1, 64, "-b");
			break;
		default:
			fprintf(stderr,
			    "usage: tools_bench [-k KEYS] [-n JOBS] [-b BATCH]\n");
			return 2;
		}
	}
	if (mkdtemp(dir) == NULL) {
		perror("tools_bench: mkdtemp");
		return 1;
	}
	if (store_open(&st, dir, 1024ull << 20, STORE_CREATE, NULL, err,
		sizeof(err)) != STORE_OK) {
		fprintf(stderr, "tools_bench: %s\n", err);
		return 1;
	}
	cache_phase(st, keys);
	w = store_writer_start(st, MAX_BATCH);
	queue_phase(w, jobs, batch);
	store_writer_stop(w);
	store_close(st);
	return rm_dir(dir) == 0 ? 0 : 1;
}
