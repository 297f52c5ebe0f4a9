/*
 * alog - the access log: lines handed over by the event loop, written to
 * a file or to syslog by a thread of its own.
 *
 * Owns: one writer thread, two buffers and the file descriptor.  The
 * loop's alog_line copies a line into the current buffer under a mutex
 * (no system call); the thread swaps the buffers and writes.  When the
 * writer falls behind (a stalled disk, a stuck syslog daemon) and the
 * buffer is full, lines are dropped and counted, never waited for.
 *
 * Must never: block the caller of alog_line, or lose a line it accepted
 * short of a write error (counted).
 */
#ifndef RG_ALOG_H
#define RG_ALOG_H

#include <stddef.h>
#include <stdint.h>

/* Counters: written by the writer and alog_line, relaxed atomics; the
 * storage is the caller's (shm). */
#define ALOG_STATS(X)                                                     \
	X(lines, "access log lines written")                              \
	X(dropped, "access log lines dropped: the writer fell behind")    \
	X(write_errors, "access log writes that failed")

struct alog_stats {
#define ALOG_STAT_FIELD(name, doc) uint64_t name;
	ALOG_STATS(ALOG_STAT_FIELD)
#undef ALOG_STAT_FIELD
};

enum alog_mode { ALOG_OFF = 0, ALOG_FILE, ALOG_SYSLOG };

struct alog;

/*
 * alog_open - start the writer: to path (created 0640, appended) or to
 * syslog (facility daemon, level info).  st may be NULL.  NULL with one
 * line in err when the file cannot be opened.
 */
struct alog *alog_open(enum alog_mode mode, const char *path,
    struct alog_stats *st, char *err, size_t errlen);
/* alog_line - queue one line (without its newline). */
void alog_line(struct alog *a, const char *line, size_t len);
/* alog_reopen - open the file again at the next write (after rotation). */
void alog_reopen(struct alog *a);
/* alog_close - write what is queued, stop the thread, free a (waits for
 * the writer: at exit). */
void alog_close(struct alog *a);
/* alog_retire - the same without waiting: a thread of its own closes a
 * (a reload that switches the log; st must outlive it). */
void alog_retire(struct alog *a);

#endif
