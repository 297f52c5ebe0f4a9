/*
 * chatreq - see chatreq.h.
 */
#include "gate/chatreq.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define CHATREQ_MAX_PROBLEMS 8

struct problems {
	char *buf;
	size_t len, used;
	unsigned n;
};

static void
problem(struct problems *p, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (p->n++ >= CHATREQ_MAX_PROBLEMS || p->used + 3 >= p->len)
		return;
	if (p->used > 0) {
		memcpy(p->buf + p->used, "; ", 2);
		p->used += 2;
	}
	va_start(ap, fmt);
	w = vsnprintf(p->buf + p->used, p->len - p->used, fmt, ap);
	va_end(ap);
	if (w > 0)
		p->used += (size_t)w < p->len - p->used ? (size_t)w :
							  p->len - p->used - 1;
}

static int
one_of(const char *s, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(s, *set) == 0)
			return 1;
	return 0;
}

static const char *const roles[] = { "system", "user", "assistant", NULL };

/* check_role - m.role is a known role; the role, or NULL. */
static const char *
check_role(struct problems *p, json_t *m, size_t i)
{
	json_t *v = json_object_get(m, "role");

	if (v == NULL) {
		problem(p, "messages[%zu].role: required", i);
		return NULL;
	}
	if (!json_is_string(v) || !one_of(json_string_value(v), roles)) {
		problem(p,
		    "messages[%zu].role: must be one of system, user, "
		    "assistant",
		    i);
		return NULL;
	}
	return json_string_value(v);
}

static void
add_message(json_t *out, const char *role, json_t *content)
{
	json_array_append_new(out,
	    json_pack("{s:s,s:o}", "role", role, "content", content));
}

/* own_message - {"role","content"} of relgate's body (strict). */
static void
own_message(struct problems *p, json_t *m, size_t i, json_t *out)
{
	const char *key, *role;
	json_t *v;

	if (!json_is_object(m)) {
		problem(p, "messages[%zu]: must be an object", i);
		return;
	}
	role = check_role(p, m, i);
	v = json_object_get(m, "content");
	if (v == NULL)
		problem(p, "messages[%zu].content: required", i);
	else if (!json_is_string(v))
		problem(p, "messages[%zu].content: must be a string", i);
	json_object_foreach(m, key, v)
	{
		if (strcmp(key, "role") != 0 && strcmp(key, "content") != 0)
			problem(p, "messages[%zu].%.32s: unknown member", i,
			    key);
	}
	if (p->n == 0 && role != NULL)
		add_message(out, role,
		    json_incref(json_object_get(m, "content")));
}

/* sdk_message - a UIMessage of the AI SDK: its text parts joined. */
static void
sdk_message(struct problems *p, json_t *m, size_t i, json_t *out)
{
	const char *role;
	json_t *parts, *part;
	size_t j, len = 0;
	char *text = NULL;

	if (!json_is_object(m)) {
		problem(p, "messages[%zu]: must be an object", i);
		return;
	}
	role = check_role(p, m, i);
	parts = json_object_get(m, "parts");
	if (parts == NULL) {
		problem(p, "messages[%zu].parts: required", i);
		return;
	}
	if (!json_is_array(parts)) {
		problem(p, "messages[%zu].parts: must be an array", i);
		return;
	}
	json_array_foreach(parts, j, part)
	{
		json_t *type, *t;

		if (!json_is_object(part) ||
		    !json_is_string(type = json_object_get(part, "type"))) {
			problem(p,
			    "messages[%zu].parts[%zu]: must be an object with "
			    "a type",
			    i, j);
			continue;
		}
		if (strcmp(json_string_value(type), "text") != 0)
			continue; /* other part types are not text */
		t = json_object_get(part, "text");
		if (!json_is_string(t)) {
			problem(p,
			    "messages[%zu].parts[%zu].text: must be a string",
			    i, j);
			continue;
		}
		text = xrealloc(text, len + json_string_length(t) + 1);
		memcpy(text + len, json_string_value(t),
		    json_string_length(t));
		len += json_string_length(t);
	}
	if (p->n == 0 && role != NULL &&
	    (len > 0 || strcmp(role, "assistant") != 0))
		add_message(out, role, json_stringn(text ? text : "", len));
	free(text);
}

static void
check_string(struct problems *p, json_t *root, const char *name,
    size_t max, int required)
{
	json_t *v = json_object_get(root, name);

	if (v == NULL) {
		if (required)
			problem(p, "%s: required", name);
		return;
	}
	if (!json_is_string(v) || json_string_length(v) < 1 ||
	    json_string_length(v) > max)
		problem(p, "%s: must be a string of 1..%zu characters", name,
		    max);
}

enum chatreq_result
chatreq_parse(const char *body, size_t len, struct chatreq *out, char *msg,
    size_t msglen)
{
	static const char *const classes[] = { "fast", "agent", NULL };
	static const char *const own_keys[] = { "threadId", "messages",
		"model", "modelClass", NULL };
	static const char *const sdk_keys[] = { "id", "messages", "trigger",
		"messageId", "model", "modelClass", NULL };
	struct problems p = { msg, msglen, 0, 0 };
	json_error_t jerr;
	const char *key;
	json_t *root, *v, *msgs;

	memset(out, 0, sizeof(*out));
	msg[0] = '\0';
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(msg, msglen, "Body is not valid JSON.");
		return CHATREQ_INVALID_JSON;
	}
	if (!json_is_object(root)) {
		problem(&p, "body: must be an object");
		goto invalid;
	}
	/* the AI SDK's body names the thread "id" */
	out->sdk = json_object_get(root, "threadId") == NULL &&
	    json_object_get(root, "id") != NULL;
	check_string(&p, root, out->sdk ? "id" : "threadId",
	    CHATREQ_THREAD_MAX, 1);
	msgs = json_array();
	v = json_object_get(root, "messages");
	if (v == NULL)
		problem(&p, "messages: required");
	else if (!json_is_array(v) || json_array_size(v) < 1 ||
	    json_array_size(v) > CHATREQ_MAX_MESSAGES)
		problem(&p, "messages: must be an array of 1..%d messages",
		    CHATREQ_MAX_MESSAGES);
	else {
		size_t i;
		json_t *m;

		json_array_foreach(v, i, m)
		{
			if (out->sdk)
				sdk_message(&p, m, i, msgs);
			else
				own_message(&p, m, i, msgs);
		}
		if (p.n == 0 && json_array_size(msgs) == 0)
			problem(&p, "messages: no message has any text");
	}
	check_string(&p, root, "model", CHATREQ_MODEL_MAX, 0);
	v = json_object_get(root, "modelClass");
	if (v != NULL && (!json_is_string(v) ||
			     !one_of(json_string_value(v), classes)))
		problem(&p, "modelClass: must be one of fast, agent");
	if (out->sdk) {
		check_string(&p, root, "trigger", 64, 0);
		check_string(&p, root, "messageId", 128, 0);
	}
	json_object_foreach(root, key, v)
	{
		if (!one_of(key, out->sdk ? sdk_keys : own_keys))
			problem(&p, "%.32s: unknown member", key);
	}
	if (p.n == 0) {
		out->root = root;
		out->messages = msgs;
		out->thread_id = json_string_value(
		    json_object_get(root, out->sdk ? "id" : "threadId"));
		out->model = json_string_value(json_object_get(root, "model"));
		out->message_id = json_string_value(
		    json_object_get(root, "messageId"));
		v = json_object_get(root, "modelClass");
		out->model_class = v == NULL ? CHATREQ_CLASS_DEFAULT :
		    strcmp(json_string_value(v), "fast") == 0 ?
					       CHATREQ_CLASS_FAST :
					       CHATREQ_CLASS_AGENT;
		return CHATREQ_OK;
	}
	json_decref(msgs);
invalid:
	if (p.n > CHATREQ_MAX_PROBLEMS && p.used + 16 < p.len) {
		snprintf(msg + p.used, p.len - p.used, "; and %u more",
		    p.n - CHATREQ_MAX_PROBLEMS);
	}
	json_decref(root);
	memset(out, 0, sizeof(*out));
	return CHATREQ_INVALID_REQUEST;
}

void
chatreq_free(struct chatreq *r)
{
	json_decref(r->messages);
	json_decref(r->root);
	memset(r, 0, sizeof(*r));
}
