/*
 * chatstream - the two stream formats of the chat path (SPEC §7).
 *
 * In: the data of one upstream SSE event of an OpenAI-compatible
 * /chat/completions stream (a chat.completion.chunk, "[DONE]", or an
 * {"error":…} object some upstreams send mid-stream).
 *
 * Out: the AI SDK 5 "UI message stream" v1 that the browser's useChat and
 * readUIMessageStream read: each chunk one "data: <JSON object>\n\n", the
 * stream ended by "data: [DONE]\n\n".  The writers append to a growing
 * buffer; every string is JSON-escaped, every object is one line.
 *
 * Pure: no I/O.  Never lets upstream text through unescaped, and never
 * puts an upstream's error text into the client's stream (error chunks
 * carry relgate's own client-safe message).
 */
#ifndef RG_CHATSTREAM_H
#define RG_CHATSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* --- the upstream's chunks ------------------------------------------------*/

enum oai_kind {
	OAI_DELTA,   /* content (may be empty: a role-only chunk) */
	OAI_FINISH,  /* finish_reason set (content may come with it) */
	OAI_DONE,    /* "[DONE]" */
	OAI_ERROR,   /* an error object instead of a chunk */
	OAI_IGNORE,  /* valid, nothing for the client (usage, no choices) */
	OAI_BAD,     /* not JSON, or not the shape of a chunk */
};

struct oai_chunk {
	enum oai_kind kind;
	const char *content; /* into root; NULL when none */
	size_t content_len;
	const char *finish_reason; /* into root; NULL when none */
	json_t *root;              /* free with oai_chunk_free */
};

/* oai_parse - one event's data. */
enum oai_kind oai_parse(const char *data, size_t len, struct oai_chunk *c);
void oai_chunk_free(struct oai_chunk *c);

/*
 * The tool calls of one model answer, assembled from the chunks' deltas
 * (choices[0].delta.tool_calls[]: index, then id, function.name and
 * pieces of function.arguments).  Calls are kept by their index.
 */
#define OAI_MAX_CALLS 8

struct oai_call {
	int used;
	char *id, *name, *args; /* NUL-ended, or NULL (none came) */
	size_t idlen, namelen, alen;
};

struct oai_calls {
	struct oai_call c[OAI_MAX_CALLS];
	unsigned n; /* the highest index seen + 1 */
};

/* oai_calls_add - the tool-call deltas of chunk c into a; -1 when an
 * index is out of 0..OAI_MAX_CALLS-1, an id or name is over 128 bytes,
 * the arguments over max, or the deltas are not of that shape. */
int oai_calls_add(struct oai_calls *a, const struct oai_chunk *c,
    size_t max);
void oai_calls_free(struct oai_calls *a);

/* utf8_cut - the length of the longest prefix of p[0..len) that does not
 * end inside a UTF-8 sequence: where text cut at len bytes may end. */
size_t utf8_cut(const char *p, size_t len);

/* --- the client's stream --------------------------------------------------*/

struct ui_buf {
	char *p;
	size_t len, cap;
};

void ui_buf_free(struct ui_buf *b);
void ui_buf_reset(struct ui_buf *b);
/* ui_buf_add - p[0..n) appended as it is (NUL-ended after it) */
void ui_buf_add(struct ui_buf *b, const char *p, size_t n);

/* {"type":"start","messageId":id} (id NULL or "": none) */
void ui_start(struct ui_buf *b, const char *message_id);
/* {"type":"data-provider-route","data":{route, provider, model, attempt}} */
void ui_route(struct ui_buf *b, const char *route, const char *provider,
    const char *model, unsigned attempt);
void ui_start_step(struct ui_buf *b);
void ui_finish_step(struct ui_buf *b);
void ui_text_start(struct ui_buf *b, const char *id);
void ui_text_delta(struct ui_buf *b, const char *id, const char *text,
    size_t len);
void ui_text_end(struct ui_buf *b, const char *id);
/* {"type":"error","errorText":text,"code":code} */
void ui_error(struct ui_buf *b, const char *code, const char *text);
/* {"type":"finish","finishReason":reason} (NULL: no reason) */
void ui_finish(struct ui_buf *b, const char *reason);
/* {"type":"tool-input-available","toolCallId","toolName","input"} */
void ui_tool_input(struct ui_buf *b, const char *call_id, const char *tool,
    const json_t *input);
/* {"type":"tool-output-available","toolCallId","output"[,"preliminary":true]} */
void ui_tool_output(struct ui_buf *b, const char *call_id,
    const json_t *output, int preliminary);
/* {"type":"tool-output-error","toolCallId","errorText"} */
void ui_tool_error(struct ui_buf *b, const char *call_id, const char *text);
/* {"type":"data-tool-backpressure","data":{"tool","reason"}} */
void ui_tool_backpressure(struct ui_buf *b, const char *tool,
    const char *reason);
/* data: [DONE] */
void ui_done(struct ui_buf *b);
/* : ping (an SSE comment: the heartbeat) */
extern const char ui_ping[];
#define UI_PING_LEN 8

#endif
