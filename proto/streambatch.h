/*
 * streambatch - the records of a STREAM_BATCH message: what a provider
 * sends an ingress for many chat streams at once (one nng message per
 * ingress per loop pass, not one per token).
 *
 * A record: stream (u64), kind (u8), 0 (u8), status (u16), aux (u32),
 * len (u32), then len bytes; integers big-endian.
 *   HEAD  the upstream answered: status 200; data = the first SSE events
 *   DATA  more SSE events (bytes to write to the client as they are)
 *   END   the last SSE events; the stream is over (aux 0, or 1 + the
 *         code of gate/errors.def of the error event it ended with)
 *   FAIL  the stream never started: status is the HTTP status to answer,
 *         aux the Retry-After in ms (0: none), data = "code" NUL "message"
 *
 * The reader checks every length against the buffer; a malformed batch
 * stops at the first bad record.  Pure: no I/O.
 */
#ifndef RG_STREAMBATCH_H
#define RG_STREAMBATCH_H

#include <stddef.h>
#include <stdint.h>

#define SB_HDR_LEN 20u

enum sb_kind {
	SB_HEAD = 1,
	SB_DATA = 2,
	SB_END = 3,
	SB_FAIL = 4,
};

struct sb_record {
	uint64_t stream;
	uint8_t kind;    /* enum sb_kind */
	uint16_t status; /* HEAD, FAIL */
	uint32_t aux;    /* FAIL: Retry-After ms; END: 1 + error */
	const void *data;
	uint32_t len;
};

/* A growing batch. */
struct sb_writer {
	uint8_t *buf;
	size_t len, cap;
	unsigned n; /* records */
};

/* sb_add - append r; -1 (nothing appended) when the batch would pass
 * max bytes. */
int sb_add(struct sb_writer *w, const struct sb_record *r, size_t max);
/* sb_reset - empty the batch, keep the buffer. */
void sb_reset(struct sb_writer *w);
void sb_free(struct sb_writer *w);

/* sb_next - the record at *pos of buf[len]: 1 (and *pos moves past it),
 * 0 at the end, -1 malformed (or an unknown kind). */
int sb_next(const void *buf, size_t len, size_t *pos, struct sb_record *r);

/* sb_fail_split - a FAIL record's code and message (views into r, the
 * message NUL-free, code at most codelen-1 bytes); -1 if malformed. */
int sb_fail_split(const struct sb_record *r, char *code, size_t codelen,
    const char **msg, size_t *msglen);

#endif
