/*
 * chatopts - the options of relmock's chat endpoint and their three
 * spellings: "key=value" items (the x-relmock-chat header and the
 * "relmock:" directive inside a user message), and a JSON object (the
 * config file's "chat" section and POST /_relmock/chat/config).  Also the
 * deterministic text of a completion: token i (from 0) is "w<i> ".
 *
 * Pure functions (no I/O, no state), so the parsers are unit-tested
 * alone (tests/chatopts_test.c).  Must never accept a value outside the
 * bounds below: they keep a stream's time and size bounded.
 */
#ifndef RG_RELMOCK_CHATOPTS_H
#define RG_RELMOCK_CHATOPTS_H

#include <stddef.h>

#include <jansson.h>

#define CHATOPT_MAX_TOKENS 100000u
#define CHATOPT_MAX_MS     600000u
#define CHATOPT_DIRECTIVE  "relmock:"

/* The options: name (in items, in JSON, and the field), maximum, doc. */
#define CHATOPT_FIELDS(X)                                                     \
	X(tokens, CHATOPT_MAX_TOKENS, "content tokens in the answer")         \
	X(token_ms, CHATOPT_MAX_MS, "ms between two tokens")                  \
	X(first_ms, CHATOPT_MAX_MS, "ms from the headers to the first token") \
	X(role_chunk, 1u, "1: a role-only chunk before the first token")     \
	X(tool_text, 1u, "1: the text \"Let me look. \" before tool calls") \
	X(end_ms, CHATOPT_MAX_MS, "ms the body stays open after [DONE]")

struct chat_opts {
#define CHATOPT_FIELD(name, max, doc) unsigned name;
	CHATOPT_FIELDS(CHATOPT_FIELD)
#undef CHATOPT_FIELD
};

/* chatopt_defaults - tokens 8, no delays, role with the first token. */
void chatopt_defaults(struct chat_opts *o);
/*
 * chatopt_parse - apply the items of spec[0..len) onto o: "key=value"
 * separated by spaces, tabs, ';' or ','; keys as in CHATOPT_FIELDS,
 * values decimal within bounds.  On error o is unchanged; -1 with a
 * message in err.  An empty spec changes nothing.
 */
int chatopt_parse(const char *spec, size_t len, struct chat_opts *o, char *err,
    size_t errlen);
/*
 * chatopt_find - the directive in text[0..len): the bytes after the first
 * "relmock:" up to the end of that line (or of text).  Returns them and
 * their length in *speclen, or NULL when text has no directive.
 */
const char *chatopt_find(const char *text, size_t len, size_t *speclen);
/*
 * chatopt_json - apply the members of JSON object j onto o (integers,
 * role_chunk also a boolean); strict: an unknown key or a bad value is an
 * error (o unchanged, -1 with a message in err).
 */
int chatopt_json(json_t *j, struct chat_opts *o, char *err, size_t errlen);
/* chatopt_to_json - o as {"tokens":…,"token_ms":…,…}. */
json_t *chatopt_to_json(const struct chat_opts *o);
/* chatopt_token - token i ("w<i> ") into buf; its length. */
size_t chatopt_token(unsigned i, char *buf, size_t len);
/* chatopt_text - the whole content for n tokens (malloc'd, NUL-ended);
 * its length in *len. */
char *chatopt_text(unsigned n, size_t *len);

#endif
