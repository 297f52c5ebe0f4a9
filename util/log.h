/*
 * log - one-line diagnostics for every relgate process.
 *
 * Owns the process ident ("relgated", "ingress.1") and the sink (stderr
 * or syslog).  Three kinds of failure, as in STYLE.md: fatal() for the
 * environment (appends strerror(errno)), fatalx() for bad configuration or
 * input, and assert() for broken invariants.  Never logs a secret: callers
 * pass redacted values.
 */
#ifndef RG_LOG_H
#define RG_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* log_init - set ident and sink; to_syslog=0 writes to stderr. */
void log_init(const char *ident, int to_syslog);
void log_set_level(enum log_level lvl);
const char *log_ident(void);

void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* fatal - log "msg: strerror(errno)" and exit(1). */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/* fatalx - log msg and exit(1). */
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
