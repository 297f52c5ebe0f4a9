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

/* --- tool calls ------------------------------------------------------------*/

/* append - more text to a call's member (NUL-ended); -1 past max. */
static int
append(char **p, size_t *len, const char *s, size_t n, size_t max)
{
	if (*len + n > max)
		return -1;
	*p = xrealloc(*p, *len + n + 1);
	memcpy(*p + *len, s, n);
	*len += n;
	(*p)[*len] = '\0';
	return 0;
}

/* same - v is the string p[0..len) (len > 0) */
static int
same(const char *p, size_t len, const json_t *v)
{
	return len > 0 && json_is_string(v) && json_string_length(v) == len &&
	    memcmp(p, json_string_value(v), len) == 0;
}

size_t
utf8_cut(const char *p, size_t len)
{
	size_t i = len, cont = 0, need;
	unsigned char lead;

	while (i > 0 && cont < 3 && ((unsigned char)p[i - 1] & 0xC0) == 0x80) {
		i--;
		cont++;
	}
	if (i == 0)
		return len;
	lead = (unsigned char)p[i - 1];
	if (lead < 0x80 || (lead & 0xC0) == 0x80)
		return len; /* whole, or not UTF-8 (left to the validation) */
	need = (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 :
	    (lead & 0xF8) == 0xF0 ? 4 : 1;
	return cont + 1 >= need ? len : i - 1;
}

int
oai_calls_add(struct oai_calls *a, const struct oai_chunk *c, size_t max)
{
	json_t *calls = json_object_get(json_object_get(json_array_get(
	    json_object_get(c->root, "choices"), 0), "delta"), "tool_calls");
	json_t *tc;
	size_t i;

	if (calls == NULL || json_is_null(calls))
		return 0;
	if (!json_is_array(calls))
		return -1;
	json_array_foreach(calls, i, tc) {
		json_t *ix = json_object_get(tc, "index");
		json_t *fn = json_object_get(tc, "function");
		json_t *v;
		struct oai_call *k;
		int again;
		json_int_t at = json_is_integer(ix) ? json_integer_value(ix) :
		    (json_int_t)i;

		if (at < 0 || at >= OAI_MAX_CALLS)
			return -1;
		k = &a->c[at];
		k->used = 1;
		if ((unsigned)at + 1 > a->n)
			a->n = (unsigned)at + 1;
		/* the id comes once; some upstreams repeat it, and the
		 * whole name with it, in every delta of the call: a name
		 * that comes again with the call's id is not a piece */
		v = json_object_get(tc, "id");
		again = same(k->id, k->idlen, v);
		if (json_is_string(v) && k->idlen == 0 &&
		    append(&k->id, &k->idlen, json_string_value(v),
			json_string_length(v), 128) != 0)
			return -1;
		v = json_object_get(fn, "name");
		if (json_is_string(v) &&
		    !(again && same(k->name, k->namelen, v)) &&
		    append(&k->name, &k->namelen, json_string_value(v),
			json_string_length(v), 128) != 0)
			return -1;
		v = json_object_get(fn, "arguments");
		if (json_is_string(v) &&
		    append(&k->args, &k->alen, json_string_value(v),
			json_string_length(v), max) != 0)
			return -1;
	}
	return 0;
}

void
oai_calls_free(struct oai_calls *a)
{
	for (unsigned i = 0; i < OAI_MAX_CALLS; i++) {
		free(a->c[i].id);
		free(a->c[i].name);
		free(a->c[i].args);
	}
	memset(a, 0, sizeof(*a));
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

void
ui_buf_add(struct ui_buf *b, const char *p, size_t n)
{
	need(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
lit(struct ui_buf *b, const char *s)
{
	ui_buf_add(b, s, strlen(s));
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

/* jval - a JSON value (compact; one line). */
static void
jval(struct ui_buf *b, const json_t *v)
{
	char *t = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) :
			      NULL;

	lit(b, t != NULL ? t : "null");
	free(t);
}

void
ui_tool_input(struct ui_buf *b, const char *call_id, const char *tool,
    const json_t *input)
{
	lit(b, "data: {\"type\":\"tool-input-available\",\"toolCallId\":");
	cstr(b, call_id);
	lit(b, ",\"toolName\":");
	cstr(b, tool);
	lit(b, ",\"input\":");
	jval(b, input);
	lit(b, "}\n\n");
}

void
ui_tool_output(struct ui_buf *b, const char *call_id, const json_t *output,
    int preliminary)
{
	lit(b, "data: {\"type\":\"tool-output-available\",\"toolCallId\":");
	cstr(b, call_id);
	lit(b, ",\"output\":");
	jval(b, output);
	if (preliminary)
		lit(b, ",\"preliminary\":true");
	lit(b, "}\n\n");
}

void
ui_tool_error(struct ui_buf *b, const char *call_id, const char *text)
{
	lit(b, "data: {\"type\":\"tool-output-error\",\"toolCallId\":");
	cstr(b, call_id);
	lit(b, ",\"errorText\":");
	cstr(b, text);
	lit(b, "}\n\n");
}

void
ui_tool_backpressure(struct ui_buf *b, const char *tool, const char *reason)
{
	lit(b, "data: {\"type\":\"data-tool-backpressure\",\"data\":{\"tool\":");
	cstr(b, tool);
	lit(b, ",\"reason\":");
	cstr(b, reason);
	lit(b, "}}\n\n");
}
