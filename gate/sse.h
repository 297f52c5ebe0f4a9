/*
 * sse - an incremental reader of text/event-stream (the WHATWG
 * server-sent events grammar) for upstream chat streams: bytes go in as
 * they arrive, split anywhere (inside a line, inside a CRLF), and each
 * complete event's data comes out once its blank line is seen.
 *
 * Lines end with CRLF, LF or CR.  "data:" lines of one event are joined
 * with LF (one space after the colon dropped); comments (":") and the
 * other fields (event, id, retry) are skipped; a line without a colon is
 * a field with an empty value.  A line, or an event's data, longer than
 * max_line is an error: the reader stops (a bounded buffer, whatever the
 * upstream sends).
 *
 * Owns its line buffer.  Pure: no I/O, no clock.
 */
#ifndef RG_SSE_H
#define RG_SSE_H

#include <stddef.h>

struct sse_reader {
	char *buf; /* the current line, then the event's data */
	size_t len, cap;
	size_t data_len; /* bytes of data joined so far (in data) */
	char *data;
	size_t data_cap;
	int has_data;
	int cr;          /* the last byte was CR: a following LF is its pair */
	int failed;
	size_t max_line;
};

/* data(arg, d, len): one event's data (NUL-terminated at d[len]); return
 * non-zero to stop the reader (sse_feed returns 1). */
typedef int (*sse_event_fn)(void *arg, const char *d, size_t len);

/* sse_init - an empty reader; max_line 0 means 1 MiB. */
void sse_init(struct sse_reader *r, size_t max_line);
void sse_free(struct sse_reader *r);

/* sse_feed - take len bytes.  0: all taken; 1: the callback stopped it;
 * -1: a line over max_line (the reader stays failed). */
int sse_feed(struct sse_reader *r, const void *p, size_t len,
    sse_event_fn fn, void *arg);

#endif
