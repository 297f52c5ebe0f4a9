/*
 * chatstream - see chatstream.h.
 */
#include "gate/chatstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

const char ui_ping[] = ": ping\n\n";
_Static_assert(sizeof(ui_ping) - 1 == UI_PING_LEN, "UI_PING_LEN");

/* --- the upstream's chunks ------------------------------------------------*/

enum oai_kind
oai_parse(const char *data, size_t len, struct oai_chunk *c)
{
	json_t *choices, *ch, *delta, *v;

	memset(c, 0, sizeof(*c));
	if (len == 6 && memcmp(data, "[DONE]", 6) == 0)
		return c->kind = OAI_DONE;
	c->root = json_loadb(data, len, 0, NULL);
	if (!json_is_object(c->root))
		return c->kind = OAI_BAD;
	if (json_object_get(c->root, "error") != NULL)
		return c->kind = OAI_ERROR;
	choices = json_object_get(c->root, "choices");
	if (choices == NULL)
		return c->kind = OAI_IGNORE;
	if (!json_is_array(choices))
		return c->kind = OAI_BAD;
	if (json_array_size(choices) == 0)
		return c->kind = OAI_IGNORE; /* e.g. the usage chunk */
	ch = json_array_get(choices, 0);
	if (!json_is_object(ch))
		return c->kind = OAI_BAD;
	delta = json_object_get(ch, "delta");
	if (delta != NULL && !json_is_object(delta) && !json_is_null(delta))
		return c->kind = OAI_BAD;
	v = json_object_get(delta, "content");
	if (json_is_string(v)) {
		c->content = json_string_value(v);
		c->content_len = json_string_length(v);
	} else if (v != NULL && !json_is_null(v)) {
		return c->kind = OAI_BAD;
	}
	v = json_object_get(ch, "finish_reason");
	if (json_is_string(v))
		c->finish_reason = json_string_value(v);
	return c->kind = c->finish_reason != NULL ? OAI_FINISH : OAI_DELTA;
}

void
oai_chunk_free(struct oai_chunk *c)
{
	json_decref(c->root);
	c->root = NULL;
}

/* --- the client's stream --------------------------------------------------*/

static void
need(struct ui_buf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	b->cap = b->len + more + 1 > 2 * b->cap ? b->len + more + 1 :
						  2 * b->cap;
	if (b->cap < 256)
		b->cap = 256;
	b->p = xrealloc(b->p, b->cap);
}

static void
lit(struct ui_buf *b, const char *s)
{
	size_t n = strlen(s);

	need(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* str - a JSON string: quotes and escapes (at most 6 bytes a byte). */
static void
str(struct ui_buf *b, const char *s, size_t n)
{
	need(b, 6 * n + 2);
	b->p[b->len++] = '"';
	json_escape(b->p, b->cap, &b->len, s, n);
	b->p[b->len++] = '"';
	b->p[b->len] = '\0';
}

static void
cstr(struct ui_buf *b, const char *s)
{
	str(b, s, strlen(s));
}

void
ui_buf_free(struct ui_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void
ui_buf_reset(struct ui_buf *b)
{
	b->len = 0;
}

void
ui_start(struct ui_buf *b, const char *message_id)
{
	lit(b, "data: {\"type\":\"start\"");
	if (message_id != NULL && message_id[0] != '\0') {
		lit(b, ",\"messageId\":");
		cstr(b, message_id);
	}
	lit(b, "}\n\n");
}

void
ui_route(struct ui_buf *b, const char *route, const char *provider,
    const char *model, unsigned attempt)
{
	char n[16];

	lit(b, "data: {\"type\":\"data-provider-route\",\"data\":{\"route\":");
	cstr(b, route);
	lit(b, ",\"provider\":");
	cstr(b, provider);
	lit(b, ",\"model\":");
	cstr(b, model);
	snprintf(n, sizeof(n), "%u", attempt);
	lit(b, ",\"attempt\":");
	lit(b, n);
	lit(b, "}}\n\n");
}

void
ui_start_step(struct ui_buf *b)
{
	lit(b, "data: {\"type\":\"start-step\"}\n\n");
}

void
ui_finish_step(struct ui_buf *b)
{
	lit(b, "data: {\"type\":\"finish-step\"}\n\n");
}

void
ui_text_start(struct ui_buf *b, const char *id)
{
	lit(b, "data: {\"type\":\"text-start\",\"id\":");
	cstr(b, id);
	lit(b, "}\n\n");
}

void
ui_text_delta(struct ui_buf *b, const char *id, const char *text,
    size_t len)
{
	lit(b, "data: {\"type\":\"text-delta\",\"id\":");
	cstr(b, id);
	lit(b, ",\"delta\":");
	str(b, text, len);
	lit(b, "}\n\n");
}

void
ui_text_end(struct ui_buf *b, const char *id)
{
	lit(b, "data: {\"type\":\"text-end\",\"id\":");
	cstr(b, id);
	lit(b, "}\n\n");
}

void
ui_error(struct ui_buf *b, const char *code, const char *text)
{
	lit(b, "data: {\"type\":\"error\",\"errorText\":");
	cstr(b, text);
	lit(b, ",\"code\":");
	cstr(b, code);
	lit(b, "}\n\n");
}

void
ui_finish(struct ui_buf *b, const char *reason)
{
	lit(b, "data: {\"type\":\"finish\"");
	if (reason != NULL) {
		lit(b, ",\"finishReason\":");
		cstr(b, reason);
	}
	lit(b, "}\n\n");
}

void
ui_done(struct ui_buf *b)
{
	lit(b, "data: [DONE]\n\n");
}
