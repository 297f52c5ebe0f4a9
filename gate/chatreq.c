/*
 * chatreq - see chatreq.h.
 */
#include "gate/chatreq.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

static void
check_message(struct problems *p, json_t *m, size_t i)
{
	static const char *const roles[] = { "system", "user", "assistant",
		NULL };
	const char *key;
	json_t *v;

	if (!json_is_object(m)) {
		problem(p, "messages[%zu]: must be an object", i);
		return;
	}
	v = json_object_get(m, "role");
	if (v == NULL)
		problem(p, "messages[%zu].role: required", i);
	else if (!json_is_string(v) || !one_of(json_string_value(v), roles))
		problem(p,
		    "messages[%zu].role: must be one of system, user, "
		    "assistant",
		    i);
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
}

enum chatreq_result
chatreq_parse(const char *body, size_t len, json_t **out, char *msg,
    size_t msglen)
{
	static const char *const classes[] = { "fast", "agent", NULL };
	struct problems p = { msg, msglen, 0, 0 };
	json_error_t jerr;
	const char *key;
	json_t *root, *v;

	*out = NULL;
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
	v = json_object_get(root, "threadId");
	if (v == NULL)
		problem(&p, "threadId: required");
	else if (!json_is_string(v) || json_string_length(v) < 1 ||
	    json_string_length(v) > 128)
		problem(&p, "threadId: must be a string of 1..128 characters");
	v = json_object_get(root, "messages");
	if (v == NULL)
		problem(&p, "messages: required");
	else if (!json_is_array(v) || json_array_size(v) < 1 ||
	    json_array_size(v) > 100)
		problem(&p, "messages: must be an array of 1..100 messages");
	else {
		size_t i;
		json_t *m;

		json_array_foreach(v, i, m)
			check_message(&p, m, i);
	}
	v = json_object_get(root, "model");
	if (v != NULL && (!json_is_string(v) || json_string_length(v) < 1 ||
			     json_string_length(v) > 200))
		problem(&p, "model: must be a string of 1..200 characters");
	v = json_object_get(root, "modelClass");
	if (v != NULL && (!json_is_string(v) ||
			     !one_of(json_string_value(v), classes)))
		problem(&p, "modelClass: must be one of fast, agent");
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "threadId") != 0 &&
		    strcmp(key, "messages") != 0 &&
		    strcmp(key, "model") != 0 && strcmp(key, "modelClass") != 0)
			problem(&p, "%.32s: unknown member", key);
	}
	if (p.n == 0) {
		*out = root;
		return CHATREQ_OK;
	}
invalid:
	if (p.n > CHATREQ_MAX_PROBLEMS && p.used + 16 < p.len) {
		snprintf(msg + p.used, p.len - p.used, "; and %u more",
		    p.n - CHATREQ_MAX_PROBLEMS);
	}
	json_decref(root);
	return CHATREQ_INVALID_REQUEST;
}
