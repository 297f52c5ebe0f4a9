/*
 * testlib - fixtures shared by relgate's unit tests (Check): the main of
 * a test program, children forked to hammer shared state, relstat run on
 * a test's segment, shm segments made and removed around each test, and
 * one step run through the store's writer.
 *
 * libtestlib.a holds one object per group, so a test links only the
 * relgate libraries of the fixtures it uses: testlib.c needs none,
 * testlib_shm.c needs librgshm, testlib_store.c needs librgstore.
 * A fixture that cannot do its job fails the running test (ck_assert);
 * it never returns an error.
 */
#ifndef RG_TESTS_TESTLIB_H
#define RG_TESTS_TESTLIB_H

#include <check.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct shm_seg;
struct store;
struct store_txn;
struct store_writer;

/* --- testlib.c ------------------------------------------------------ */

/* tl_run - run every test of s, each in its own process (CK_NORMAL
 * output), then remove the segments named by tl_segname during the run;
 * returns the exit status for main. */
int tl_run(Suite *s);

/*
 * tl_segname - a POSIX shm name for the running test, in buf:
 * "/rgtest.TAG.RUNNER.PID" (RUNNER: the pid of the process in tl_run,
 * PID: the test's own).  tl_run removes every segment named for it when
 * the run ends, so a test that fails before its teardown leaves none.
 */
void tl_segname(char *buf, size_t len, const char *tag);

/* tl_tcase - a test case name added to s, with setup and teardown around
 * each test (both may be NULL) and a timeout in seconds (0: Check's). */
TCase *tl_tcase(
    Suite *s, const char *name, SFun setup, SFun teardown, double timeout);

/* tl_shared_map - len zeroed bytes shared with children forked later
 * (munmap when done). */
void *tl_shared_map(size_t len);

/*
 * tl_children - fork n children; child i runs child(arg, i) and exits 0
 * when it returns (a child that fails calls _exit with another status);
 * child NULL: each exits 0 at once.  Waits for all of them and fails the
 * test unless every one exited 0.  pids (NULL or n entries) receives
 * their pids, reaped: kill(pid, 0) then fails with ESRCH.
 */
void tl_children(
    int n, void (*child)(void *arg, int id), void *arg, pid_t *pids);

/* tl_dead_pid - the pid of a child that exited and was reaped. */
pid_t tl_dead_pid(void);

/*
 * tl_relstat - run the built relstat ($top_builddir/tools/relstat) with
 * flags on the segment segname; its output in text (at most len - 1
 * bytes, NUL-terminated).  Returns the parsed output when flags begin
 * with "-j" (the caller json_decrefs it), else NULL.  Fails the test
 * unless relstat exits 0.
 */
json_t *tl_relstat(
    const char *segname, const char *flags, char *text, size_t len);

/*
 * tl_row - the line of relstat -1's text whose first word is first (after
 * any indent), its words joined by single spaces, in buf; NULL when there
 * is none.  "gmail_push   4   3   -   0" -> "gmail_push 4 3 - 0".
 */
const char *tl_row(const char *text, const char *first, char *buf,
    size_t len);

/* tl_jint - the integer member k of o; fails the test if there is none. */
json_int_t tl_jint(json_t *o, const char *k);

/* --- testlib_shm.c -------------------------------------------------- */

/* tl_seg_create - a new segment name (a leftover one removed first) with
 * a rate-limit table of slots entries, attached writable in seg. */
void tl_seg_create(struct shm_seg *seg, const char *name, uint32_t slots);

/* tl_seg_destroy - detach seg and remove name. */
void tl_seg_destroy(struct shm_seg *seg, const char *name);

/* tl_seg_attach - in a forked child: attach name writable, or _exit(3). */
void tl_seg_attach(struct shm_seg *seg, const char *name);

/* tl_seg_children - tl_children whose children attach the segment name
 * (tl_seg_attach) and run child(seg, arg, id) on it. */
void tl_seg_children(int n, const char *name,
    void (*child)(struct shm_seg *seg, void *arg, int id), void *arg,
    pid_t *pids);

/* --- testlib_store.c ------------------------------------------------ */

/* tl_runner - the pid of the process in tl_run (this one outside it). */
pid_t tl_runner(void);

/* tl_store_create - a new temp dir (path in dir, len bytes) named after
 * tag and the runner ("/tmp/rgtest-store.TAG.RUNNER.XXXXXX": tl_run
 * removes those a failed test left), a 16 MiB store in it and that
 * store's writer (max_batch). */
void tl_store_create(char *dir, size_t len, const char *tag, struct store **st,
    struct store_writer **w, unsigned max_batch);

/* tl_store_destroy - stop the writer, close the store, remove dir. */
void tl_store_destroy(
    const char *dir, struct store *st, struct store_writer *w);

/* tl_payload_m1 - the delivery payload {"m":1}, made once (stays
 * reachable). */
json_t *tl_payload_m1(void);

/*
 * tl_write - run apply(txn, arg) as a write transaction through w and
 * wait for its result, at most 20 s: fails the test when the writer has
 * not finished by then.  Returns the transaction's result.
 */
int tl_write(struct store_writer *w,
    int (*apply)(struct store_txn *txn, void *arg), void *arg);

#endif
