/*
 * parser - strict, incremental HTTP/1.x request parser.
 *
 * Pure: no I/O, no allocation, no global state; every input is untrusted
 * and every malformed input ends in a classified error (enum httpp_err),
 * never an assertion.  The caller owns one contiguous buffer holding the
 * bytes of the current request from its first byte on, appends what it
 * reads, and calls httpp_head() and then httpp_body() again with the new
 * length; results are offsets (struct httpp_span) into that buffer, so
 * they survive a realloc of it.  Feeding a request byte by byte gives the
 * same result as feeding it whole.
 *
 * What it accepts (RFC 9112, strictly): origin-form targets and
 * absolute-form ones ("http[s]://authority/path?query": the path and
 * query are those of the URI, "/" when it has no path), at most
 * HTTPP_MAX_EMPTY_LINES empty lines before the request line, HTTP/1.0 and
 * HTTP/1.1, CR LF line ends, token field names with the colon right after
 * the name, no obs-fold, at most HTTPP_MAX_FIELDS fields, a head of at most
 * max_head bytes.  Request smuggling rules: Content-Length is digits only
 * and repeats only with the same value; Transfer-Encoding must end in
 * "chunked" (else 400), a coding other than chunked is 501, chunked twice
 * is 400, Transfer-Encoding in HTTP/1.0 is 400, Content-Length together
 * with Transfer-Encoding is 400; HTTP/1.1 needs exactly one Host.  Every
 * error means: answer and close the connection.
 *
 * Must never: read or write outside [buf, buf + len), keep pointers into
 * the buffer, or accept a request whose framing is ambiguous.
 */
#ifndef RG_HTTP_PARSER_H
#define RG_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#define HTTPP_MAX_FIELDS      100  /* header fields per request: else 431 */
#define HTTPP_MAX_CHUNK_LINE  4096 /* chunk-size line incl. extensions */
#define HTTPP_MAX_EMPTY_LINES 8    /* CRLFs before a request line: else 400 */

/* Errors: name, HTTP status. */
#define HTTPP_ERRORS(X)                                                       \
	X(NONE, 0)                                                            \
	X(BAD_REQUEST, 400)                                                   \
	X(URI_TOO_LONG, 414)                                                  \
	X(HEAD_TOO_LARGE, 431)                                                \
	X(BODY_TOO_LARGE, 413)                                                \
	X(NOT_IMPLEMENTED, 501)                                               \
	X(VERSION, 505)

enum httpp_err {
#define HTTPP_ERR_ENUM(name, status) HTTPP_E_##name,
	HTTPP_ERRORS(HTTPP_ERR_ENUM)
#undef HTTPP_ERR_ENUM
};

enum httpp_rc {
	HTTPP_ERROR = -1, /* p->err says why; the parser stays in error */
	HTTPP_AGAIN = 0,  /* need more bytes */
	HTTPP_DONE = 1,   /* head (or body) complete */
};

enum httpp_body {
	HTTPP_BODY_NONE,    /* no body (or Content-Length: 0) */
	HTTPP_BODY_LENGTH,  /* content_length bytes follow the head */
	HTTPP_BODY_CHUNKED, /* chunked; de-chunked in place by httpp_body */
};

/* A view: buf + off, len bytes (not NUL-terminated). */
struct httpp_span {
	uint32_t off;
	uint32_t len;
};

struct httpp_field {
	struct httpp_span name;
	struct httpp_span value; /* without leading/trailing whitespace */
};

/* Parser state and results.  Fields above "private" are results; read
 * them only after the call that produces them returned HTTPP_DONE. */
struct httpp {
	size_t max_head; /* set by httpp_init */

	/* results of httpp_head */
	struct httpp_span method;
	struct httpp_span target; /* as sent: origin- or absolute-form */
	struct httpp_span path;
	struct httpp_span query; /* without the "?"; len 0 if none */
	int has_query;
	unsigned version;        /* 10 or 11 */
	int keep_alive;          /* after the version and Connection rules */
	int expect_continue;     /* "Expect: 100-continue" was sent */
	enum httpp_body body;    /* framing of the body */
	uint64_t content_length; /* HTTPP_BODY_LENGTH only */
	size_t head_len;         /* bytes of the head incl. the empty line */
	unsigned nfields;
	struct httpp_field fields[HTTPP_MAX_FIELDS];

	/* results of httpp_body */
	size_t body_len; /* body at buf + head_len (de-chunked) */
	size_t consumed; /* bytes of this request; the next one follows */

	enum httpp_err err; /* after HTTPP_ERROR */

	/* private */
	int state;
	size_t line;         /* start of the line being read */
	size_t scan;         /* no LF in [line, scan) */
	size_t raw;          /* chunked: next raw byte to decode */
	uint64_t chunk_left; /* chunked: data bytes left in this chunk */
	size_t trailer_bytes;
	unsigned flags;
	unsigned nhost;
	unsigned empty_lines; /* before the request line */
};

/* httpp_init - reset for a new request; the head may have max_head bytes
 * (request line, fields, empty line; leading empty lines count too). */
void httpp_init(struct httpp *p, size_t max_head);

/*
 * httpp_head - parse the head in buf[0..len).  Call again with the same
 * buf and a larger len after HTTPP_AGAIN (the buffer may have moved, its
 * contents must not have changed).  HTTPP_DONE: the head results are set.
 */
int httpp_head(struct httpp *p, const char *buf, size_t len);

/*
 * httpp_body - after httpp_head returned HTTPP_DONE: read the body of at
 * most limit bytes.  *len is the number of bytes in buf (head included);
 * a chunked body is decoded in place, which moves the bytes that follow
 * it down and lowers *len.  Call again with more bytes appended at
 * buf + *len after HTTPP_AGAIN.  HTTPP_DONE: the body is buf + head_len,
 * body_len bytes, and the next request starts at buf + consumed.  A
 * Content-Length over limit fails at the first call (HTTPP_E_BODY_TOO_LARGE,
 * before any body byte), a chunked one as soon as a chunk size would
 * cross it.
 */
int httpp_body(struct httpp *p, char *buf, size_t *len, uint64_t limit);

/* httpp_field - value of the first field called name (case-insensitive),
 * NULL if none; *vlen gets its length. */
const char *httpp_field(
    const struct httpp *p, const char *buf, const char *name, size_t *vlen);

/* httpp_err_status / httpp_err_name - HTTP status and "BAD_REQUEST" etc. */
int httpp_err_status(enum httpp_err e);
const char *httpp_err_name(enum httpp_err e);

/* httpp_tchar - 1 for the token characters of RFC 9110 5.6.2. */
extern const unsigned char httpp_tchar[256];

/* httpp_ieq - ASCII case-insensitive equality of a[0..alen) and b. */
int httpp_ieq(const char *a, size_t alen, const char *b);

#endif
