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

/* --- the client's stream --------------------------------------------------*/

struct ui_buf {
	char *p;
	size_t len, cap;
};

void ui_buf_free(struct ui_buf *b);
void ui_buf_reset(struct ui_buf *b);

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
/* data: [DONE] */
void ui_done(struct ui_buf *b);
/* : ping (an SSE comment: the heartbeat) */
extern const char ui_ping[];
#define UI_PING_LEN 8

#endif
