/*
 * testlib_store.c - the store fixtures of testlib.h: a store in a temp
 * dir around each test, and one step through the writer thread, waited
 * for with a bound.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "testlib.h"

void
tl_store_create(char *dir, size_t len, const char *tag, struct store **st,
    struct store_writer **w, unsigned max_batch)
{
	char err[256];

	snprintf(dir, len, "/tmp/rgtest-store.%s.%ld.XXXXXX", tag,
	    (long)tl_runner());
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(store_open(st, dir, 16u << 20, STORE_CREATE, NULL,
			     err, sizeof(err)),
	    STORE_OK);
	*w = store_writer_start(*st, max_batch);
}

void
tl_store_destroy(const char *dir, struct store *st, struct store_writer *w)
{
	char cmd[128];

	store_writer_stop(w);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

struct tl_step {
	int (*apply)(struct store_txn *txn, void *arg);
	void *arg;
	int rc, done;
};

static int
step_apply(struct store_txn *txn, void *arg)
{
	struct tl_step *s = arg;

	return s->apply(txn, s->arg);
}

static void
step_done(void *arg, int rc)
{
	struct tl_step *s = arg;

	s->rc = rc;
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
}

int
tl_write(struct store_writer *w,
    int (*apply)(struct store_txn *txn, void *arg), void *arg)
{
	/* on the heap: a writer that finishes after the test gave up on it
	 * still has somewhere to write (the step is left to leak then) */
	struct tl_step *s = calloc(1, sizeof(*s));
	struct timespec now, end;
	int rc;

	ck_assert_ptr_nonnull(s);
	s->apply = apply;
	s->arg = arg;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += 20; /* one fsync; a busy disk under ASan is slow */
	ck_assert_int_eq(
	    store_writer_submit(w, step_apply, step_done, s), STORE_OK);
	do {
		if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE))
			break;
		usleep(1000);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec ||
	    (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	ck_assert_msg(__atomic_load_n(&s->done, __ATOMIC_ACQUIRE),
	    "the writer did not finish the step within 20 s");
	rc = s->rc;
	free(s);
	return rc;
}

json_t *
tl_payload_m1(void)
{
	static json_t *p;

	if (p == NULL)
		p = json_pack("{s:i}", "m", 1);
	return p;
}
