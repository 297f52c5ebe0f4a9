/*
 * alog - the access log writer (see alog.h).
 */
#include "util/alog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

#define ALOG_BUF (1024 * 1024) /* per buffer: about 7,000 lines */
#define ALOG_WAKE (256 * 1024) /* a buffer this full wakes the writer */
#define ALOG_FLUSH_MS 100      /* else it writes every 100 ms */

#define STAT_ADD(a, f, n)                                                 \
	__atomic_fetch_add(&(a)->st->f, (uint64_t)(n), __ATOMIC_RELAXED)

struct alog {
	enum alog_mode mode;
	char *path;
	int fd;
	struct alog_stats own, *st;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *cur, *out;  /* the loop fills cur; the thread writes out */
	size_t cur_len;
	uint64_t cur_lines;
	int reopen, stop;
};

static int
open_file(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

	if (fd < 0 && err != NULL)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	return fd;
}

/* write_all - the whole buffer to the file; 0 or -1 */
static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* emit - what the thread took: n bytes of lines */
static void
emit(struct alog *a, const char *p, size_t n, uint64_t lines)
{
	if (a->mode == ALOG_SYSLOG) {
		const char *end = p + n;

		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));

			syslog(LOG_DAEMON | LOG_INFO, "%.*s", (int)(nl - p), p);
			p = nl + 1;
		}
		STAT_ADD(a, lines, lines);
		return;
	}
	if (a->fd < 0 || write_all(a->fd, p, n) != 0) {
		STAT_ADD(a, write_errors, 1);
		STAT_ADD(a, dropped, lines);
		return;
	}
	STAT_ADD(a, lines, lines);
}

static void *
writer(void *arg)
{
	struct alog *a = arg;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		char *buf;
		size_t n;
		uint64_t lines;
		int reopen, stop;

		if (a->cur_len < ALOG_WAKE && !a->stop && !a->reopen) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += ALOG_FLUSH_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&a->cv, &a->mu, &ts);
		}
		buf = a->cur;
		n = a->cur_len;
		lines = a->cur_lines;
		a->cur = a->out;
		a->out = buf;
		a->cur_len = 0;
		a->cur_lines = 0;
		reopen = a->reopen;
		stop = a->stop;
		a->reopen = 0;
		pthread_mutex_unlock(&a->mu);
		if (reopen && a->mode == ALOG_FILE) {
			int fd = open_file(a->path, NULL, 0);

			if (fd >= 0) {
				if (a->fd >= 0)
					close(a->fd);
				a->fd = fd;
			} else {
				STAT_ADD(a, write_errors, 1);
			}
		}
		if (n > 0)
			emit(a, buf, n, lines);
		if (stop)
			return NULL;
		pthread_mutex_lock(&a->mu);
	}
}

struct alog *
alog_open(enum alog_mode mode, const char *path, struct alog_stats *st,
    char *err, size_t errlen)
{
	struct alog *a = xcalloc(1, sizeof(*a));
	int rc;

	a->mode = mode;
	a->fd = -1;
	a->st = st != NULL ? st : &a->own;
	if (mode == ALOG_FILE) {
		a->path = xstrdup(path);
		a->fd = open_file(path, err, errlen);
		if (a->fd < 0) {
			free(a->path);
			free(a);
			return NULL;
		}
	}
	a->cur = xmalloc(ALOG_BUF);
	a->out = xmalloc(ALOG_BUF);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if ((rc = pthread_create(&a->thread, NULL, writer, a)) != 0) {
		snprintf(err, errlen, "access log: no writer thread: %s",
		    strerror(rc));
		if (a->fd >= 0)
			close(a->fd);
		free(a->cur);
		free(a->out);
		free(a->path);
		free(a);
		return NULL;
	}
	return a;
}

void
alog_line(struct alog *a, const char *line, size_t len)
{
	int wake;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	if (a->cur_len + len + 1 > ALOG_BUF) {
		pthread_mutex_unlock(&a->mu);
		STAT_ADD(a, dropped, 1);
		return;
	}
	memcpy(a->cur + a->cur_len, line, len);
	a->cur[a->cur_len + len] = '\n';
	/* no system call per line: the writer wakes on its timer, or once
	 * when the buffer passes ALOG_WAKE */
	wake = a->cur_len < ALOG_WAKE && a->cur_len + len + 1 >= ALOG_WAKE;
	a->cur_len += len + 1;
	a->cur_lines++;
	pthread_mutex_unlock(&a->mu);
	if (wake)
		pthread_cond_signal(&a->cv);
}

void
alog_reopen(struct alog *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->reopen = 1;
	pthread_mutex_unlock(&a->mu);
	pthread_cond_signal(&a->cv);
}

static void *
retire(void *arg)
{
	alog_close(arg);
	return NULL;
}

void
alog_retire(struct alog *a)
{
	pthread_attr_t at;
	pthread_t t;

	if (a == NULL)
		return;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, retire, a) != 0)
		alog_close(a);
	pthread_attr_destroy(&at);
}

void
alog_close(struct alog *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = 1;
	pthread_mutex_unlock(&a->mu);
	pthread_cond_signal(&a->cv);
	pthread_join(a->thread, NULL);
	if (a->fd >= 0)
		close(a->fd);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a->cur);
	free(a->out);
	free(a->path);
	free(a);
}
