/*
 * testlib.c - the fixtures of testlib.h that need no relgate library:
 * the main of a test program, shared memory and children for tests that
 * hammer shared state from several processes, and relstat on a test's
 * segment.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

/* The process in tl_run: test processes forked by Check inherit it. */
static pid_t runner_pid;

void
tl_segname(char *buf, size_t len, const char *tag)
{
	pid_t runner = runner_pid != 0 ? runner_pid : getpid();
	int n = snprintf(buf, len, "/rgtest.%s.%ld.%ld", tag, (long)runner,
	    (long)getpid());

	ck_assert(n > 0 && (size_t)n < len);
}

static int
rm_segment(const char *dir, const char *name)
{
	char path[300];

	(void)dir;
	snprintf(path, sizeof(path), "/%s", name);
	return shm_unlink(path);
}

static int
rm_tree(const char *dir, const char *name)
{
	char cmd[400];

	if (strchr(name, '\'') != NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/%s'", dir, name);
	return system(cmd);
}

/*
 * remove_run - remove what tests of this run left in dir: the entries
 * named "<prefix><tag>.RUNNER.<...>" (the shm segments of tl_segname in
 * /dev/shm, the store dirs of tl_store_create in /tmp; a failed check
 * ends its process before its teardown).
 */
static void
remove_run(const char *dir, const char *prefix, pid_t runner,
    int (*rm)(const char *dir, const char *name))
{
	char mark[32];
	struct dirent *de;
	DIR *d = opendir(dir);
	size_t plen = strlen(prefix);

	if (d == NULL)
		return;
	snprintf(mark, sizeof(mark), ".%ld.", (long)runner);
	while ((de = readdir(d)) != NULL) {
		const char *tail;

		if (strncmp(de->d_name, prefix, plen) != 0)
			continue;
		tail = strchr(de->d_name + plen, '.');
		if (tail == NULL || strncmp(tail, mark, strlen(mark)) != 0)
			continue;
		if (rm(dir, de->d_name) == 0)
			fprintf(stderr, "testlib: removed %s/%s left by a test\n",
			    dir, de->d_name);
	}
	closedir(d);
}

pid_t
tl_runner(void)
{
	return runner_pid != 0 ? runner_pid : getpid();
}

int
tl_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	runner_pid = getpid();
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	remove_run("/dev/shm", "rgtest.", runner_pid, rm_segment);
	remove_run("/tmp", "rgtest-store.", runner_pid, rm_tree);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

TCase *
tl_tcase(Suite *s, const char *name, SFun setup, SFun teardown, double timeout)
{
	TCase *tc = tcase_create(name);

	if (setup != NULL || teardown != NULL)
		tcase_add_checked_fixture(tc, setup, teardown);
	if (timeout > 0)
		tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

void *
tl_shared_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert(p != MAP_FAILED);
	memset(p, 0, len);
	return p;
}

void
tl_children(int n, void (*child)(void *arg, int id), void *arg, pid_t *pids)
{
	pid_t *own = pids != NULL ? pids : calloc((size_t)n, sizeof(*own));

	ck_assert_ptr_nonnull(own);
	for (int i = 0; i < n; i++) {
		own[i] = fork();
		ck_assert_int_ge(own[i], 0);
		if (own[i] == 0) {
			if (child != NULL)
				child(arg, i);
			_exit(0);
		}
	}
	for (int i = 0; i < n; i++) {
		int st;

		ck_assert_int_eq(waitpid(own[i], &st, 0), own[i]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "child %d ended with status %d", i, st);
	}
	if (own != pids)
		free(own);
}

pid_t
tl_dead_pid(void)
{
	pid_t pid;

	tl_children(1, NULL, NULL, &pid);
	return pid;
}

const char *
tl_row(const char *text, const char *first, char *buf, size_t len)
{
	size_t fl = strlen(first);

	for (const char *l = text; l != NULL && *l != '\0';) {
		const char *end = strchr(l, '\n'), *p = l;
		size_t n = 0;

		if (end == NULL)
			end = l + strlen(l);
		while (p < end && *p == ' ')
			p++;
		if ((size_t)(end - p) >= fl && strncmp(p, first, fl) == 0 &&
		    (p + fl == end || p[fl] == ' ')) {
			for (int sp = 0; p < end && n + 1 < len; p++) {
				if (*p == ' ') {
					sp = 1;
					continue;
				}
				if (sp && n > 0)
					buf[n++] = ' ';
				sp = 0;
				if (n + 1 < len)
					buf[n++] = *p;
			}
			buf[n] = '\0';
			return buf;
		}
		l = *end ? end + 1 : end;
	}
	return NULL;
}

json_t *
tl_relstat(const char *segname, const char *flags, char *text, size_t len)
{
	const char *top = getenv("top_builddir");
	char cmd[512];
	json_error_t jerr;
	json_t *j = NULL;
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "%s/tools/relstat -n %s %s",
	    top ? top : ".", segname, flags);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(text, 1, len - 1, p);
	text[n] = '\0';
	ck_assert_int_eq(pclose(p), 0);
	if (strncmp(flags, "-j", 2) == 0) {
		j = json_loads(text, 0, &jerr);
		ck_assert_msg(j != NULL, "relstat -j: %s", jerr.text);
	}
	return j;
}

json_int_t
tl_jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	ck_assert_msg(json_is_integer(v), "no %s", k);
	return json_integer_value(v);
}
