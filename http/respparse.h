/*
 * respparse - incremental HTTP/1.x response parser for the client
 * (http/client.h): status line, header fields and a streaming body
 * decoder (Content-Length, chunked with extensions and trailers,
 * close-delimited).
 *
 * Pure: no I/O, no allocation, no global state.  Every input is
 * untrusted and every malformed input ends in a classified error (enum
 * httpr_err), never an assertion.  The head is parsed from one contiguous
 * caller buffer (results are offsets into it, so they survive a realloc);
 * the body is decoded as it arrives, one data span per call, without
 * buffering: chunk framing is a byte-level state machine, so feeding a
 * response byte by byte gives the same data and the same result as
 * feeding it whole.
 *
 * What it accepts: "HTTP/1.<digit> SP 3DIGIT [SP reason]", CR LF or bare
 * LF line ends (RFC 9112 2.2 allows a recipient to take LF alone), token
 * field names with the colon right after them, no obs-fold, at most
 * HTTPR_MAX_FIELDS fields, a head of at most max_head bytes (empty lines
 * before the status line count).  Framing (RFC 9112 6.3): no body after
 * HEAD and for 1xx, 204, 304; else Transfer-Encoding wins (chunked last:
 * chunked, else read until close) and the connection is then not reused
 * if Content-Length was also sent; else Content-Length (digits, repeats
 * and comma lists only with the same value); else until close.  Chunk
 * lines (size, extensions) are limited to HTTPR_MAX_CHUNK_LINE bytes and
 * trailers to max_head bytes; extensions and trailers are discarded.
 *
 * Must never: read outside [buf, buf + len), keep pointers into the
 * caller's buffers, or report a body byte that is framing.
 */
#ifndef RG_HTTP_RESPPARSE_H
#define RG_HTTP_RESPPARSE_H

#include <stddef.h>
#include <stdint.h>

#define HTTPR_MAX_FIELDS     100  /* header fields per response */
#define HTTPR_MAX_CHUNK_LINE 4096 /* chunk-size line incl. extensions */

/* Errors: name, text. */
#define HTTPR_ERRORS(X)                                                       \
	X(NONE, "no error")                                                   \
	X(STATUS_LINE, "malformed status line")                               \
	X(VERSION, "HTTP version not supported")                              \
	X(FIELD, "malformed header field")                                    \
	X(HEAD_TOO_LARGE, "response head too large")                          \
	X(TOO_MANY_FIELDS, "too many header fields")                          \
	X(FRAMING, "invalid Content-Length or Transfer-Encoding")             \
	X(CHUNK, "malformed chunked framing")                                 \
	X(BODY_TOO_LARGE, "response body over its limit")                     \
	X(TRUNCATED, "connection closed before the end of the body")

enum httpr_err {
#define HTTPR_ERR_ENUM(name, text) HTTPR_E_##name,
	HTTPR_ERRORS(HTTPR_ERR_ENUM)
#undef HTTPR_ERR_ENUM
};

enum httpr_rc {
	HTTPR_ERROR = -1, /* p->err says why; the parser stays in error */
	HTTPR_AGAIN = 0,  /* need more bytes */
	HTTPR_DONE = 1,   /* head (or body) complete */
};

enum httpr_body {
	HTTPR_BODY_NONE,    /* no body */
	HTTPR_BODY_LENGTH,  /* content_length bytes */
	HTTPR_BODY_CHUNKED, /* chunked */
	HTTPR_BODY_CLOSE,   /* until the connection closes */
};

/* A view: buf + off, len bytes (not NUL-terminated). */
struct httpr_span {
	uint32_t off;
	uint32_t len;
};

struct httpr_field {
	struct httpr_span name;
	struct httpr_span value; /* without leading/trailing whitespace */
};

/* Parser state and results.  Fields above "private" are results; read
 * the head results only after httpr_head returned HTTPR_DONE. */
struct httpr {
	size_t max_head;  /* set by httpr_init */
	int head_request; /* the request was HEAD: no body */

	/* results of httpr_head */
	unsigned version; /* 10 or 11 (HTTP/1.2+ counts as 11) */
	unsigned status;  /* 100..999 */
	struct httpr_span reason;
	int keep_alive;          /* the connection may carry another one */
	enum httpr_body body;    /* framing of the body */
	uint64_t content_length; /* HTTPR_BODY_LENGTH only */
	size_t head_len;         /* bytes of the head incl. the empty line */
	unsigned nfields;
	struct httpr_field fields[HTTPR_MAX_FIELDS];

	/* progress of httpr_body */
	uint64_t body_bytes; /* decoded body bytes so far */

	enum httpr_err err; /* after HTTPR_ERROR */

	/* private */
	int state;
	size_t line;    /* head: start of the line being read */
	size_t scan;    /* head: no LF in [line, scan) */
	uint64_t left;  /* body: data bytes left (length or chunk) */
	size_t linelen; /* chunk line or trailer bytes so far */
	unsigned ndigits;
	unsigned flags;
};

/* httpr_init - reset for a new response.  head_request: the request was
 * HEAD (the response has no body whatever its fields say). */
void httpr_init(struct httpr *p, size_t max_head, int head_request);

/*
 * httpr_head - parse the head in buf[0..len).  Call again with the same
 * buf and a larger len after HTTPR_AGAIN (the buffer may have moved, its
 * contents must not have changed).  HTTPR_DONE: the results are set and
 * the body (if any) starts at buf + head_len.  A 1xx head is returned
 * like any other (body HTTPR_BODY_NONE): the caller skips it and calls
 * httpr_init again for the final response.
 */
int httpr_head(struct httpr *p, const char *buf, size_t len);

/*
 * httpr_body - after httpr_head returned HTTPR_DONE: decode body bytes
 * from in[0..len).  *used gets the bytes consumed; when *dlen > 0 they
 * include one span of body data at in + *doff, *dlen bytes.  HTTPR_AGAIN:
 * call again with in + *used (what is left, if anything; *used < len only
 * after a data span) followed by more bytes.  HTTPR_DONE: the body is
 * complete (a last data span may come with it) and the next response
 * starts at in + *used.  limit caps the decoded body (UINT64_MAX: none):
 * a Content-Length over it fails at the first call, a chunk size as soon
 * as it would cross it, close-delimited data after limit bytes were
 * delivered.  HTTPR_AGAIN with len > 0 has consumed at least one byte.
 */
int httpr_body(struct httpr *p, const char *in, size_t len, uint64_t limit,
    size_t *used, size_t *doff, size_t *dlen);

/* httpr_eof - the connection closed: HTTPR_DONE for a close-delimited
 * body (or a body already complete), else HTTPR_ERROR (TRUNCATED). */
int httpr_eof(struct httpr *p);

/* httpr_field - value of the first field called name (case-insensitive),
 * NULL if none; *vlen gets its length. */
const char *httpr_field(
    const struct httpr *p, const char *buf, const char *name, size_t *vlen);

/* httpr_err_text - "malformed status line" etc. */
const char *httpr_err_text(enum httpr_err e);

#endif
