/*
 * alog_test - the access log writer: every line queued reaches the file
 * in order; a reopen after a rename writes to the new file; a writer that
 * cannot write (a pipe nobody reads) never makes alog_line wait, and the
 * lines it had no room for are counted as dropped, the rest written once
 * the pipe drains.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"
#include "util/alog.h"
#include "util/util.h"

static char dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/rg-alog.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* lines_of - the lines of path; *n their count; the text (free) */
static char *
lines_of(const char *path, unsigned *n)
{
	FILE *f = fopen(path, "r");
	char *text = xcalloc(1, 8 << 20);
	size_t len;

	ck_assert_ptr_nonnull(f);
	len = fread(text, 1, (8 << 20) - 1, f);
	fclose(f);
	*n = 0;
	for (size_t i = 0; i < len; i++)
		*n += text[i] == '\n';
	return text;
}

START_TEST(lines_in_order_and_reopen)
{
	struct alog_stats st = { 0 };
	char path[128], moved[128], line[64], err[256];
	struct alog *a;
	unsigned n;
	char *text, *p;
	struct stat sb;

	snprintf(path, sizeof(path), "%s/access.log", dir);
	snprintf(moved, sizeof(moved), "%s/access.log.1", dir);
	a = alog_open(ALOG_FILE, path, &st, err, sizeof(err));
	ck_assert_msg(a != NULL, "%s", err);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0640);
	for (int i = 0; i < 5000; i++) {
		int len = snprintf(line, sizeof(line), "line %d", i);

		alog_line(a, line, (size_t)len);
	}
	/* the writer writes a quiet log within its flush time */
	for (int i = 0; i < 100 && __atomic_load_n(&st.lines,
	    __ATOMIC_RELAXED) < 5000; i++)
		usleep(20000);
	ck_assert_uint_eq(st.lines, 5000);
	ck_assert(rename(path, moved) == 0);
	alog_reopen(a);
	alog_line(a, "after", 5);
	alog_close(a);
	ck_assert_uint_eq(st.lines, 5001);
	ck_assert_uint_eq(st.dropped, 0);
	ck_assert_uint_eq(st.write_errors, 0);
	text = lines_of(moved, &n);
	ck_assert_uint_eq(n, 5000);
	p = text;
	for (int i = 0; i < 5000; i++) {
		int len = snprintf(line, sizeof(line), "line %d\n", i);

		ck_assert_msg(strncmp(p, line, (size_t)len) == 0, "line %d", i);
		p += len;
	}
	free(text);
	text = lines_of(path, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(text, "after\n");
	free(text);
}
END_TEST

struct drain {
	int fd;
	uint64_t lines;
};

/* drain - read the pipe to its end, counting lines */
static void *
drain(void *arg)
{
	struct drain *d = arg;
	char buf[65536];
	ssize_t r;

	while ((r = read(d->fd, buf, sizeof(buf))) > 0 ||
	    (r < 0 && errno == EINTR))
		for (ssize_t i = 0; i < r; i++)
			d->lines += buf[i] == '\n';
	return NULL;
}

START_TEST(stalled_writer_drops_never_waits)
{
	struct alog_stats st = { 0 };
	char path[128], err[256], line[200];
	struct alog *a;
	int rfd;
	uint64_t t0, sent = 0, got = 0;

	snprintf(path, sizeof(path), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	rfd = open(path, O_RDONLY | O_NONBLOCK);
	ck_assert_int_ge(rfd, 0);
	a = alog_open(ALOG_FILE, path, &st, err, sizeof(err));
	ck_assert_msg(a != NULL, "%s", err);
	memset(line, 'x', sizeof(line));
	/* 3 MiB of lines against a pipe nobody reads: the writer blocks
	 * in write(), the buffers fill, the rest is dropped */
	t0 = mono_ms();
	for (int i = 0; i < 15000; i++) {
		alog_line(a, line, sizeof(line));
		sent++;
	}
	ck_assert_uint_lt(mono_ms() - t0, 2000); /* it never waited */
	ck_assert_uint_gt(st.dropped, 0);
	/* drain the pipe: the writer finishes what it took, and its close
	 * ends the reader */
	{
		int flags = fcntl(rfd, F_GETFL);
		pthread_t reader;
		struct drain dr = { rfd, 0 };

		fcntl(rfd, F_SETFL, flags & ~O_NONBLOCK);
		ck_assert_int_eq(pthread_create(&reader, NULL, drain, &dr), 0);
		alog_close(a);
		pthread_join(reader, NULL);
		got = dr.lines;
	}
	close(rfd);
	/* every line is either in the pipe or counted as dropped */
	ck_assert_uint_eq(got + st.dropped, sent);
	ck_assert_uint_eq(st.lines, got);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("alog");
	TCase *tc = tl_tcase(s, "alog", setup, teardown, 30);

	tcase_add_test(tc, lines_in_order_and_reopen);
	tcase_add_test(tc, stalled_writer_drops_never_waits);
	return tl_run(s);
}
