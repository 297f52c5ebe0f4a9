/*
 * log - see log.h.
 */
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char log_name[48] = "relgate";
static int log_syslog;
static enum log_level log_max = LOG_LVL_INFO;

void
log_init(const char *ident, int to_syslog)
{
	snprintf(log_name, sizeof(log_name), "%s", ident);
	log_syslog = to_syslog;
	if (to_syslog)
		openlog(log_name, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_set_level(enum log_level lvl)
{
	log_max = lvl;
}

const char *
log_ident(void)
{
	return log_name;
}

/* log_emit - one line to the sink; keeps errno intact for callers. */
static void
log_emit(enum log_level lvl, const char *suffix, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[1024];
	int saved = errno;

	if (lvl > log_max)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_syslog) {
		syslog(prio[lvl], "%s%s%s", msg, suffix ? ": " : "",
		    suffix ? suffix : "");
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s[%ld] %s: %s%s%s\n", when,
		    ts.tv_nsec / 1000000, log_name, (long)getpid(),
		    names[lvl], msg, suffix ? ": " : "",
		    suffix ? suffix : "");
	}
	errno = saved;
}

#define LOG_FN(fn, lvl)                                                   \
	void fn(const char *fmt, ...)                                     \
	{                                                                 \
		va_list ap;                                               \
		va_start(ap, fmt);                                        \
		log_emit(lvl, NULL, fmt, ap);                             \
		va_end(ap);                                               \
	}
LOG_FN(log_err, LOG_LVL_ERR)
LOG_FN(log_warn, LOG_LVL_WARN)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_debug, LOG_LVL_DEBUG)

void
fatal(const char *fmt, ...)
{
	va_list ap;
	const char *why = strerror(errno);

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, why, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
