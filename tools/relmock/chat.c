/*
 * chat - relmock's OpenAI-compatible chat completions upstream: POST
 * <anything>/chat/completions (so base URLs .../v1 and .../secondary/v1
 * both work), {"model", "messages", "stream"}.
 *
 * stream:true: 200 text/event-stream of chat.completion.chunk events as
 * OpenAI and OpenRouter send them, one token per chunk, then a chunk with
 * finish_reason "stop" (and a usage chunk when stream_options asks for
 * it), then "data: [DONE]".  stream:false: one chat.completion.  The text
 * is deterministic: token i (from 0) is "w<i> " (chatopts.h).  How many
 * tokens and how fast come from the options (chatopts.h): the defaults
 * (config section "chat", POST /_relmock/chat/config), then the
 * x-relmock-chat header, then a "relmock:" directive in the last user
 * message, which is what survives a gateway in between.
 *
 * Owns the record of every request (bounded, main.c) updated when it
 * ends, the chat counters, and the armed fault list (POST
 * /_relmock/chat/arm: one spec consumed per request).  Per stream: one
 * small struct, one timer (the call's), no buffer of its own; a stream
 * whose client left is freed by the core at once (its cleanup).  Faults
 * (status, latency, stall, drop_after, ...) shape the stream in faults.c.
 *
 * Tool calls: a line "relmock-tool: NAME {ARGS}" in the last user message
 * (at most TOOLS_MAX lines) makes the answer call tool NAME with the JSON
 * arguments ARGS, when the request offers a function of that name in
 * "tools" and holds no "tool" message yet: tool_calls deltas (index, id,
 * name, then the arguments in three pieces), finish_reason "tool_calls",
 * [DONE].  Once the request holds a "tool" message (the result fed back),
 * the answer is text that begins "tool result: " and the first 40 bytes of
 * the last such message (newlines as spaces), then the usual tokens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gate/chatstream.h"
#include "tools/relmock/chatopts.h"
#include "tools/relmock/relmock.h"
#include "util/log.h"
#include "util/util.h"

#define MODEL_MAX     256
#define ARM_MAX       1000
#define BURST         64      /* tokens per loop pass without token_ms */
#define QUEUED_MAX    65536   /* ... while less than this is held back */
#define QUEUED_WAIT   10      /* ms before looking again */
#define NOSTREAM_MAX  600000u /* ms: cap of a stream:false answer's wait */
#define CHUNK_MAX     (MODEL_MAX * 6 + 256)
#define ROLE_ONLY     "{\"role\":\"assistant\",\"content\":\"\"}"
#define TOOL_DIRECTIVE "relmock-tool:"
#define TOOLS_MAX     4
#define RESULT_SHOWN  40      /* bytes of a tool result echoed back */
#define TOOL_TEXT     "Let me look. " /* before tool calls (tool_text=1) */
#define FINISH_REASON ",\"finish_reason\":null}]}\n\n"

struct chat {
	struct mock_call *call;
	json_t *rec; /* our reference to the record */
	char *pre;   /* "data: {...,\"delta\":" of every chunk */
	size_t prelen;
	char *id;    /* "chatcmpl-relmock-<pid>-<seq>" */
	char *model; /* as the client sent it */
	struct chat_opts o;
	json_t *calls;   /* [{name, args}] to call, or NULL */
	char *prefix;    /* text before the tokens, or NULL */
	unsigned next;   /* next token to send */
	unsigned prompt; /* words in the messages (usage) */
	unsigned stream : 1;
	unsigned usage : 1; /* stream_options.include_usage */
	unsigned open : 1;  /* headers out, counted in streams_open */
	unsigned done : 1;  /* [DONE] or the whole answer written */
	uint64_t t0;
};

static struct mock_log requests;
static struct chat_opts conf_opts, opts; /* config file's, now */
static json_t *armed;                    /* array of fault spec strings */
static uint64_t nreq, invalid, completed, client_gone, dropped, resets,
    faulted, tool_calls, tool_results, tools_not_offered;
static uint64_t in_flight, streams_open; /* gauges: never reset */

/* --- setup ------------------------------------------------------------ */

static void
chat_init(const struct mock_conf *conf)
{
	json_t *sect = json_object_get(conf->json, "chat");
	char err[160];

	chatopt_defaults(&conf_opts);
	if (sect != NULL &&
	    chatopt_json(sect, &conf_opts, err, sizeof(err)) < 0)
		fatalx("config: chat: %s", err);
	opts = conf_opts;
	armed = json_array();
}

static void
chat_reset(void)
{
	mock_log_clear(&requests);
	json_array_clear(armed);
	opts = conf_opts;
	nreq = invalid = completed = client_gone = dropped = resets = faulted =
	    0;
	tool_calls = tool_results = tools_not_offered = 0;
}

static void
chat_fini(void)
{
	mock_log_clear(&requests);
	json_decref(armed);
}

/* --- the request -------------------------------------------------------- */

/* words - whitespace-separated words of s (the usage's prompt_tokens) */
static unsigned
words(const char *s)
{
	unsigned n = 0;
	int in = 0;

	for (; *s != '\0'; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
			in = 0;
		} else if (!in) {
			in = 1;
			n++;
		}
	}
	return n;
}

/*
 * content_text - fn(text, arg) for each text of a message's content: the
 * string itself, or each {"type":"text","text":…} part of an array.
 * Stops at the first fn that returns nonzero and returns that.
 */
static int
content_text(
    json_t *content, int (*fn)(const char *, size_t, void *), void *arg)
{
	json_t *part, *t;
	size_t i;
	int r;

	if (json_is_string(content))
		return fn(json_string_value(content),
		    json_string_length(content), arg);
	json_array_foreach(content, i, part)
	{
		t = json_object_get(part, "text");
		if (json_is_string(t) &&
		    (r = fn(json_string_value(t), json_string_length(t),
		         arg)) != 0)
			return r;
	}
	return 0;
}

static int
count_words(const char *s, size_t len, void *arg)
{
	(void)len;
	*(unsigned *)arg += words(s);
	return 0;
}

struct directive {
	struct chat_opts *o;
	char *err;
	size_t errlen;
};

/* apply_directive - the "relmock:" directive of s, if any: 1 applied, -1
 * refused, 0 none */
static int
apply_directive(const char *s, size_t len, void *arg)
{
	struct directive *d = arg;
	const char *spec;
	size_t n;

	if ((spec = chatopt_find(s, len, &n)) == NULL)
		return 0;
	return chatopt_parse(spec, n, d->o, d->err, d->errlen) < 0 ? -1 : 1;
}

/* tool_lines - every "relmock-tool: NAME {ARGS}" line of s into the
 * array arg (of {name, args}); -1 for a malformed one */
struct tool_lines {
	json_t *calls;
	char *err;
	size_t errlen;
};

static int
tool_lines(const char *s, size_t len, void *arg)
{
	struct tool_lines *t = arg;
	const char *end = s + len, *p = s;
	size_t dl = strlen(TOOL_DIRECTIVE);

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *hit, *name, *ne;
		json_t *args;

		if (eol == NULL)
			eol = end;
		hit = memmem(p, (size_t)(eol - p), TOOL_DIRECTIVE, dl);
		if (hit != NULL) {
			name = hit + dl;
			while (name < eol && *name == ' ')
				name++;
			for (ne = name; ne < eol && *ne != ' '; ne++)
				;
			args = json_loadb(ne, (size_t)(eol - ne), 0, NULL);
			if (ne == name || ne - name > 63 || !json_is_object(args) ||
			    json_array_size(t->calls) >= TOOLS_MAX) {
				json_decref(args);
				snprintf(t->err, t->errlen, "%s want NAME {ARGS} "
				    "(at most %d)", TOOL_DIRECTIVE, TOOLS_MAX);
				return -1;
			}
			json_array_append_new(t->calls, json_pack("{s:s%,s:o}",
			    "name", name, (size_t)(ne - name), "args", args));
		}
		p = eol + 1;
	}
	return 0;
}

#define CALLS_MAX 16 /* tool calls of one assistant message */

/* answers_call - 1 if id is the id of one of the tool calls calls */
static int
answers_call(json_t *calls, const char *id)
{
	json_t *c;
	size_t i;

	json_array_foreach(calls, i, c)
	{
		const char *cid = json_string_value(json_object_get(c, "id"));

		if (cid != NULL && strcmp(cid, id) == 0)
			return 1;
	}
	return 0;
}

/* check_calls - the tool_calls of assistant message i: 1 to CALLS_MAX of
 * {id, type "function", function {name, arguments: strings}} */
static int
check_calls(json_t *calls, size_t i, char *err, size_t errlen)
{
	json_t *c, *fn, *type;
	size_t k;

	if (!json_is_array(calls) || json_array_size(calls) == 0 ||
	    json_array_size(calls) > CALLS_MAX) {
		snprintf(err, errlen,
		    "messages[%zu].tool_calls: want an array of 1 to %d", i,
		    CALLS_MAX);
		return -1;
	}
	json_array_foreach(calls, k, c)
	{
		fn = json_object_get(c, "function");
		type = json_object_get(c, "type");
		if (!json_is_string(json_object_get(c, "id")) ||
		    (type != NULL && (!json_is_string(type) ||
			strcmp(json_string_value(type), "function") != 0)) ||
		    !json_is_string(json_object_get(fn, "name")) ||
		    !json_is_string(json_object_get(fn, "arguments"))) {
			snprintf(err, errlen,
			    "messages[%zu].tool_calls[%zu]: want {id, type: "
			    "\"function\", function: {name, arguments}} "
			    "(strings)",
			    i, k);
			return -1;
		}
	}
	return 0;
}

/*
 * check_tool_msgs - tool calls and their results as OpenAI wants them:
 * the tool_calls of an assistant message are each answered by a message
 * {role "tool", tool_call_id, content: a string or an array} before any
 * other message; a tool message answers a call of the assistant message
 * before it.  0, or -1 with err.
 */
static int
check_tool_msgs(json_t *msgs, char *err, size_t errlen)
{
	json_t *m, *calls = NULL, *id, *content;
	size_t i, at = 0, answered = 0;
	const char *role;

	json_array_foreach(msgs, i, m)
	{
		role = json_string_value(json_object_get(m, "role"));
		if (strcmp(role, "tool") == 0) {
			id = json_object_get(m, "tool_call_id");
			content = json_object_get(m, "content");
			if (!json_is_string(id) || calls == NULL ||
			    !answers_call(calls, json_string_value(id))) {
				snprintf(err, errlen,
				    "messages[%zu]: a tool message must "
				    "answer, by tool_call_id, a tool call of "
				    "the assistant message before it",
				    i);
				return -1;
			}
			if (!json_is_string(content) &&
			    !json_is_array(content)) {
				snprintf(err, errlen,
				    "messages[%zu].content: want a string", i);
				return -1;
			}
			answered++;
			continue;
		}
		if (calls != NULL && answered < json_array_size(calls))
			goto unanswered;
		calls = NULL;
		if (strcmp(role, "assistant") == 0 &&
		    json_object_get(m, "tool_calls") != NULL) {
			calls = json_object_get(m, "tool_calls");
			if (check_calls(calls, i, err, errlen) < 0)
				return -1;
			at = i;
			answered = 0;
		}
	}
	if (calls == NULL || answered >= json_array_size(calls))
		return 0;
unanswered:
	snprintf(err, errlen,
	    "messages[%zu]: its tool_calls must each be answered by a tool "
	    "message right after it",
	    at);
	return -1;
}

/* offered - the request's "tools" offer a function named name */
static int
offered(json_t *tools, const char *name)
{
	json_t *t;
	size_t i;

	json_array_foreach(tools, i, t)
	{
		const char *n = json_string_value(json_object_get(
		    json_object_get(t, "function"), "name"));

		if (n != NULL && strcmp(n, name) == 0)
			return 1;
	}
	return 0;
}

/* tool_mode - the calls to make, or the prefix that echoes the result */
static int
tool_mode(json_t *j, json_t *last_user, json_t *last_tool, struct chat *ch,
    char *err, size_t errlen)
{
	struct tool_lines t = { json_array(), err, errlen };
	json_t *c, *keep;
	size_t i;

	if (last_user != NULL &&
	    content_text(json_object_get(last_user, "content"), tool_lines,
		&t) < 0) {
		json_decref(t.calls);
		return -1;
	}
	if (last_tool != NULL) {
		const char *r = json_string_value(json_object_get(last_tool,
		    "content"));
		char shown[RESULT_SHOWN + 1];
		size_t n = r != NULL ? strlen(r) : 0;

		if (n > RESULT_SHOWN)
			n = utf8_cut(r, RESULT_SHOWN);
		for (i = 0; i < n; i++)
			shown[i] = r[i] == '\n' || r[i] == '\r' ? ' ' : r[i];
		shown[n] = '\0';
		ch->prefix = xasprintf("tool result: %s ", shown);
		tool_results++;
		json_decref(t.calls);
		return 0;
	}
	keep = json_array();
	json_array_foreach(t.calls, i, c)
	{
		if (offered(json_object_get(j, "tools"),
			json_string_value(json_object_get(c, "name"))))
			json_array_append(keep, c);
		else
			tools_not_offered++;
	}
	json_decref(t.calls);
	if (json_array_size(keep) > 0)
		ch->calls = keep;
	else
		json_decref(keep);
	return 0;
}

/*
 * check_request - model, messages, stream of the body j; the prompt's
 * words; the options: defaults, header, directive of the last user
 * message.  0, or -1 with the error's code and message.
 */
static int
check_request(json_t *j, struct httpd_req *req, struct chat *ch,
    const char **code, char *err, size_t errlen)
{
	json_t *model, *msgs, *m, *role, *stream, *so, *last_user = NULL;
	json_t *last_tool = NULL;
	struct directive d = { &ch->o, err, errlen };
	const char *h;
	size_t i;

	*code = "invalid_request_error";
	model = json_object_get(j, "model");
	msgs = json_object_get(j, "messages");
	stream = json_object_get(j, "stream");
	if (!json_is_object(j)) {
		snprintf(err, errlen, "the body must be a JSON object");
		return -1;
	}
	if (!json_is_string(model) || json_string_length(model) == 0 ||
	    json_string_length(model) > MODEL_MAX) {
		snprintf(err, errlen, "model: want a string of 1 to %d bytes",
		    MODEL_MAX);
		return -1;
	}
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		snprintf(err, errlen, "messages: want a non-empty array");
		return -1;
	}
	json_array_foreach(msgs, i, m)
	{
		role = json_object_get(m, "role");
		if (!json_is_string(role)) {
			snprintf(
			    err, errlen, "messages[%zu].role: missing", i);
			return -1;
		}
		if (strcmp(json_string_value(role), "user") == 0)
			last_user = m;
		if (strcmp(json_string_value(role), "tool") == 0)
			last_tool = m;
		content_text(
		    json_object_get(m, "content"), count_words, &ch->prompt);
	}
	if (check_tool_msgs(msgs, err, errlen) < 0)
		return -1;
	if (stream != NULL && !json_is_boolean(stream)) {
		snprintf(err, errlen, "stream: want a boolean");
		return -1;
	}
	ch->stream = json_is_true(stream);
	so = json_object_get(j, "stream_options");
	ch->usage = json_is_true(json_object_get(so, "include_usage"));
	ch->model = xstrdup(json_string_value(model));
	*code = "bad_relmock_options";
	ch->o = opts;
	h = httpd_req_header(req, "x-relmock-chat");
	if (h != NULL && chatopt_parse(h, strlen(h), &ch->o, err, errlen) < 0)
		return -1;
	if (last_user != NULL &&
	    content_text(json_object_get(last_user, "content"),
	        apply_directive, &d) < 0)
		return -1;
	return ch->stream ? tool_mode(j, last_user, last_tool, ch, err,
				errlen) : 0;
}

/* arm - the next armed fault replaces the call's, unless the request
 * named its own */
static void
arm(struct mock_call *call)
{
	struct mock_fault *f = mock_call_fault(call);
	char err[160];

	if (json_array_size(armed) == 0 || mock_call_fault_from_request(call))
		return;
	/* specs were checked when armed */
	if (mock_fault_parse(json_string_value(json_array_get(armed, 0)), f,
	        err, sizeof(err)) < 0)
		mock_fault_clear(f);
	f->set = 1;
	json_array_remove(armed, 0);
}

/* --- chunks ----------------------------------------------------------------
 */

/* make_pre - the start of every chunk, with the model JSON-escaped */
static void
make_pre(struct chat *ch, time_t created)
{
	json_t *m = json_string(ch->model);
	char *model = json_dumps(m, JSON_ENCODE_ANY);

	json_decref(m);
	if (model == NULL)
		abort();
	ch->pre = xasprintf("data: {\"id\":\"%s\",\"object\":"
	                    "\"chat.completion.chunk\",\"created\":%lld,"
	                    "\"model\":%s,\"choices\":[{\"index\":0,"
	                    "\"delta\":",
	    ch->id, (long long)created, model);
	ch->prelen = strlen(ch->pre);
	free(model);
}

/* role_alone - 1 if a role-only chunk comes first (asked, or no tokens) */
static int
role_alone(const struct chat *ch)
{
	return ch->o.role_chunk || ch->o.tokens == 0;
}

/*
 * chunk - the SSE event of token i into buf (CHUNK_MAX): the role goes
 * with token 0 unless a role chunk went alone first.  Its length.
 */
static size_t
chunk(const struct chat *ch, unsigned i, char *buf)
{
	char tok[16];
	int n;

	chatopt_token(i, tok, sizeof(tok));
	memcpy(buf, ch->pre, ch->prelen);
	n = snprintf(buf + ch->prelen, CHUNK_MAX - ch->prelen,
	    "{%s\"content\":\"%s\"}" FINISH_REASON,
	    i == 0 && !role_alone(ch) ? "\"role\":\"assistant\"," : "", tok);
	return ch->prelen + (size_t)n;
}

/* write_ev - the chunk prefix + rest as one event; -1 once the call is
 * over */
static int
write_ev(struct mock_call *call, const struct chat *ch, const char *rest)
{
	char buf[CHUNK_MAX];
	size_t n = strlen(rest);

	memcpy(buf, ch->pre, ch->prelen);
	memcpy(buf + ch->prelen, rest, n);
	return mock_stream_write(call, buf, ch->prelen + n);
}

/* finish - the stop chunk, usage if asked, [DONE], the end */
/* end_body - after [DONE]: the body ends now, or end_ms later */
static void
end_body(struct mock_call *call, const struct chat *ch)
{
	if (ch->o.end_ms > 0)
		mock_call_after(call, ch->o.end_ms, mock_stream_end);
	else
		mock_stream_end(call);
}

static void
finish(struct mock_call *call, struct chat *ch)
{
	static const char done_ev[] = "data: [DONE]\n\n";
	static const char delta[] = "{\"index\":0,\"delta\":";
	char buf[CHUNK_MAX];
	size_t n;

	if (write_ev(call, ch, "{},\"finish_reason\":\"stop\"}]}\n\n") < 0)
		return;
	if (ch->usage) { /* no choices: the prefix without its last item */
		n = ch->prelen - (sizeof(delta) - 1);
		memcpy(buf, ch->pre, n);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
		    "],\"usage\":{\"prompt_tokens\":%u,"
		    "\"completion_tokens\":%u,\"total_tokens\":%u}}\n\n",
		    ch->prompt, ch->o.tokens, ch->prompt + ch->o.tokens);
		if (mock_stream_write(call, buf, n) < 0)
			return;
	}
	if (mock_stream_write(call, done_ev, sizeof(done_ev) - 1) < 0)
		return;
	ch->done = 1;
	end_body(call, ch);
}

/* tick - the next token (a burst without token_ms); then wait, or
 * finish */
static void
tick(struct mock_call *call)
{
	struct chat *ch = mock_call_data(call);
	unsigned burst = ch->o.token_ms > 0 ? 1 : BURST;
	char buf[CHUNK_MAX];

	while (burst-- > 0 && ch->next < ch->o.tokens) {
		if (mock_stream_write(call, buf, chunk(ch, ch->next, buf)) < 0)
			return;
		ch->next++;
	}
	if (ch->next == ch->o.tokens)
		finish(call, ch);
	else if (ch->o.token_ms > 0)
		mock_call_after(call, ch->o.token_ms, tick);
	else
		mock_call_after(call,
		    mock_stream_queued(call) > QUEUED_MAX ? QUEUED_WAIT : 0,
		    tick);
}

/* write_delta - one chunk whose delta is the JSON d (taken) and whose
 * finish_reason is fin (NULL: null); -1 once the call is over */
static int
write_delta(struct mock_call *call, const struct chat *ch, json_t *d,
    const char *fin)
{
	char *dj = json_dumps(d, JSON_COMPACT);
	char *ev = xasprintf("%s%s,\"finish_reason\":%s%s%s}]}\n\n", ch->pre,
	    dj != NULL ? dj : "{}", fin != NULL ? "\"" : "",
	    fin != NULL ? fin : "null", fin != NULL ? "\"" : "");
	int rc = mock_stream_write(call, ev, strlen(ev));

	free(ev);
	free(dj);
	json_decref(d);
	return rc;
}

/* call_tools - the answer is tool calls: each call's head, its arguments
 * in three pieces, finish_reason tool_calls, [DONE] */
static void
call_tools(struct mock_call *call, struct chat *ch)
{
	static const char done_ev[] = "data: [DONE]\n\n";
	json_t *c;
	size_t i;

	if (ch->o.tool_text &&
	    write_delta(call, ch, json_pack("{s:s,s:s}", "role", "assistant",
		"content", TOOL_TEXT), NULL) < 0)
		return;

	json_array_foreach(ch->calls, i, c)
	{
		char *args = json_dumps(json_object_get(c, "args"), JSON_COMPACT);
		/* pieces end between characters: each is a JSON string */
		size_t n = strlen(args), a = utf8_cut(args, n / 3),
		       b = utf8_cut(args, 2 * n / 3);
		char *id = xasprintf("call_%s_%zu", ch->id + 17, i);
		json_t *d = json_pack("{s:[{s:I,s:s,s:s,s:{s:O,s:s}}]}",
		    "tool_calls", "index", (json_int_t)i, "id", id, "type",
		    "function", "function", "name", json_object_get(c, "name"),
		    "arguments", "");

		if (i == 0 && !ch->o.tool_text) {
			json_object_set_new(d, "role", json_string("assistant"));
			json_object_set_new(d, "content", json_null());
		}
		free(id);
		if (write_delta(call, ch, d, NULL) < 0 ||
		    write_delta(call, ch, json_pack("{s:[{s:I,s:{s:s%}}]}",
			"tool_calls", "index", (json_int_t)i, "function",
			"arguments", args, a), NULL) < 0 ||
		    write_delta(call, ch, json_pack("{s:[{s:I,s:{s:s%}}]}",
			"tool_calls", "index", (json_int_t)i, "function",
			"arguments", args + a, b - a), NULL) < 0 ||
		    write_delta(call, ch, json_pack("{s:[{s:I,s:{s:s%}}]}",
			"tool_calls", "index", (json_int_t)i, "function",
			"arguments", args + b, n - b), NULL) < 0) {
			free(args);
			return;
		}
		free(args);
		tool_calls++;
	}
	if (write_delta(call, ch, json_object(), "tool_calls") < 0 ||
	    mock_stream_write(call, done_ev, sizeof(done_ev) - 1) < 0)
		return;
	ch->done = 1;
	end_body(call, ch);
}

/* go - the headers are out: the role chunk, then the first token (or the
 * tool calls) */
static void
go(struct mock_call *call)
{
	struct chat *ch = mock_call_data(call);

	ch->open = 1;
	streams_open++;
	if (ch->calls != NULL) {
		call_tools(call, ch);
		return;
	}
	if (role_alone(ch) && write_ev(call, ch, ROLE_ONLY FINISH_REASON) < 0)
		return;
	if (ch->prefix != NULL &&
	    write_delta(call, ch, json_pack("{s:s}", "content", ch->prefix),
		NULL) < 0)
		return;
	if (ch->o.first_ms > 0)
		mock_call_after(call, ch->o.first_ms, tick);
	else
		tick(call);
}

/* answer_whole - stream:false, when the last token would have come */
static void
answer_whole(struct mock_call *call)
{
	struct chat *ch = mock_call_data(call);
	size_t len;
	char *text = chatopt_text(ch->o.tokens, &len);
	json_t *j;

	j = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s%},s:s}],"
	              "s:{s:i,s:i,s:i}}",
	    "id", ch->id, "object", "chat.completion", "created",
	    (json_int_t)time(NULL), "model", ch->model, "choices", "index", 0,
	    "message", "role", "assistant", "content", text, len,
	    "finish_reason", "stop", "usage", "prompt_tokens", ch->prompt,
	    "completion_tokens", ch->o.tokens, "total_tokens",
	    ch->prompt + ch->o.tokens);
	free(text);
	ch->next = ch->o.tokens;
	ch->done = 1;
	mock_reply_json(call, 200, j);
}

/* --- the end of a call ------------------------------------------------------
 */

/* tokens_out - tokens whose whole chunk is within the first sent body
 * bytes */
static unsigned
tokens_out(const struct chat *ch, size_t sent)
{
	char buf[CHUNK_MAX];
	size_t at = 0;
	unsigned i;

	if (role_alone(ch))
		at = ch->prelen + strlen(ROLE_ONLY FINISH_REASON);
	for (i = 0; i < ch->next; i++) {
		at += chunk(ch, i, buf);
		if (at > sent)
			break;
	}
	return i;
}

/* chat_end - the call is over, however: count it, complete its record,
 * free the stream */
static void
chat_end(void *arg)
{
	struct chat *ch = arg;
	const char *how = mock_call_outcome(ch->call);
	const struct mock_fault *f = mock_call_fault(ch->call);
	unsigned tokens = ch->next;
	int status = 200;

	if (how == NULL)
		how = "client gone";
	if (strcmp(how, "answered") == 0 && f->status != 0) {
		how = "faulted";
		status = f->status;
		tokens = 0;
		faulted++;
	} else if (strcmp(how, "answered") == 0) {
		how = "completed";
		completed++;
	} else if (strcmp(how, "client gone") == 0) {
		status = ch->open ? 200 : 0;
		client_gone++;
	} else if (strcmp(how, "dropped") == 0) {
		tokens = tokens_out(ch, mock_call_sent(ch->call));
		dropped++;
	} else {
		status = 0;
		tokens = 0;
		resets++;
	}
	json_object_set_new(ch->rec, "outcome", json_string(how));
	json_object_set_new(ch->rec, "status", json_integer(status));
	json_object_set_new(ch->rec, "tokensSent", json_integer(tokens));
	json_object_set_new(ch->rec, "bytesSent",
	    json_integer((json_int_t)mock_call_sent(ch->call)));
	json_object_set_new(
	    ch->rec, "ms", json_integer((json_int_t)(mono_ms() - ch->t0)));
	json_decref(ch->rec);
	in_flight--;
	if (ch->open)
		streams_open--;
	free(ch->pre);
	free(ch->id);
	free(ch->model);
	free(ch->prefix);
	json_decref(ch->calls);
	free(ch);
}

/* --- the handler ------------------------------------------------------------
 */

static void
chat_handle(struct mock_call *call)
{
	struct httpd_req *req = mock_call_req(call);
	struct httpd_header h[] = {
		{ "Content-Type", "text/event-stream" },
		{ "Cache-Control", "no-cache" },
	};
	char err[200], spec[MOCK_FAULT_SPEC_MAX];
	const char *body, *code;
	struct chat *ch;
	uint64_t wait;
	json_t *j;
	size_t len;

	if (!mock_require_method(call, "POST"))
		return;
	nreq++;
	body = mock_call_body(call, &len);
	j = json_loadb(body, len, 0, NULL);
	ch = xcalloc(1, sizeof(*ch));
	ch->call = call;
	ch->t0 = mono_ms();
	if (j == NULL) {
		code = "invalid_request_error";
		snprintf(err, sizeof(err), "the body is not JSON");
	}
	if (j == NULL ||
	    check_request(j, req, ch, &code, err, sizeof(err)) < 0) {
		invalid++;
		mock_log_add(&requests,
		    json_pack("{s:s,s:o,s:s,s:s,s:i,s:I}", "path",
		        httpd_req_path(req), "body", mock_json_body(body, len),
		        "outcome", "invalid", "error", err, "status", 400,
		        "receivedAt", (json_int_t)now_ms()));
		json_decref(j);
		free(ch->model);
		free(ch->prefix);
		json_decref(ch->calls);
		free(ch);
		mock_reply_error(call, 400, code, err);
		return;
	}
	arm(call);
	mock_fault_format(mock_call_fault(call), spec, sizeof(spec));
	/* the seq mock_log_add will give */
	ch->id = xasprintf("chatcmpl-relmock-%ld-%llu", (long)getpid(),
	    (unsigned long long)(requests.seq + 1));
	/* the fields chat_end sets are there from the start, so the record
	 * hardly grows past what mock_log_add counted */
	ch->rec = json_pack("{s:s,s:s,s:O,s:O,s:b,s:o,s:s*,s:I,s:s,s:i,s:i,"
	                    "s:i,s:i}",
	    "id", ch->id, "path", httpd_req_path(req), "model",
	    json_object_get(j, "model"), "messages",
	    json_object_get(j, "messages"), "stream", ch->stream, "options",
	    chatopt_to_json(&ch->o), "fault", spec[0] != '\0' ? spec : NULL,
	    "receivedAt", (json_int_t)now_ms(), "outcome", "in progress",
	    "status", 0, "tokensSent", 0, "bytesSent", 0, "ms", 0);
	json_object_set_new(ch->rec, "toolsOffered",
	    json_integer((json_int_t)json_array_size(json_object_get(j,
		"tools"))));
	json_object_set_new(ch->rec, "toolCalls", ch->calls != NULL ?
	    json_deep_copy(ch->calls) : json_array());
	json_object_set_new(ch->rec, "toolResult", json_boolean(ch->prefix !=
	    NULL));
	json_decref(j);
	json_incref(ch->rec);
	mock_log_add(&requests, ch->rec);
	make_pre(ch, time(NULL));
	in_flight++;
	mock_call_set_cleanup(call, chat_end, ch);
	if (ch->stream) {
		mock_stream_begin(call, 200, h, RG_NELEM(h), go);
		return;
	}
	wait = ch->o.first_ms;
	if (ch->o.tokens > 0)
		wait += (uint64_t)(ch->o.tokens - 1) * ch->o.token_ms;
	if (wait > NOSTREAM_MAX)
		wait = NOSTREAM_MAX;
	if (wait > 0)
		mock_call_after(call, (unsigned)wait, answer_whole);
	else
		answer_whole(call);
}

/* --- control ----------------------------------------------------------------
 */

/* find - the record whose seq or id is key; NULL if none */
static json_t *
find(const char *key)
{
	json_t *items = mock_log_items(&requests), *r, *found = NULL;
	const char *id;
	char seq[24];
	size_t i;

	json_array_foreach(items, i, r)
	{
		snprintf(seq, sizeof(seq), "%lld",
		    (long long)json_integer_value(json_object_get(r, "seq")));
		id = json_string_value(json_object_get(r, "id"));
		if (strcmp(seq, key) == 0 ||
		    (id != NULL && strcmp(id, key) == 0)) {
			found = json_deep_copy(r);
			break;
		}
	}
	json_decref(items);
	return found;
}

/* one - GET /_relmock/chat/requests/<seq|id>: the record and its text */
static void
one(struct mock_call *call, const char *key)
{
	json_t *r = find(key), *o;
	size_t len;
	char *text;

	if (r == NULL || (o = json_object_get(r, "options")) == NULL) {
		json_decref(r);
		mock_reply_error(call, 404, "not_found", "no such request");
		return;
	}
	text = chatopt_text(
	    (unsigned)json_integer_value(json_object_get(o, "tokens")), &len);
	json_object_set_new(r, "text", json_stringn(text, len));
	free(text);
	mock_reply_json(call, 200, r);
}

static json_t *
stats_json(void)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
	                 "s:I,s:I,s:I}",
	    "pid", (json_int_t)getpid(), "requests", (json_int_t)nreq,
	    "invalid", (json_int_t)invalid, "inFlight", (json_int_t)in_flight,
	    "streamsOpen", (json_int_t)streams_open, "completed",
	    (json_int_t)completed, "clientGone", (json_int_t)client_gone,
	    "dropped", (json_int_t)dropped, "reset", (json_int_t)resets,
	    "faulted", (json_int_t)faulted, "armed",
	    (json_int_t)json_array_size(armed), "recordsDropped",
	    (json_int_t)requests.dropped, "toolCalls", (json_int_t)tool_calls,
	    "toolResults", (json_int_t)tool_results, "toolsNotOffered",
	    (json_int_t)tools_not_offered);
}

/* config - GET: the defaults now; POST {…}: change some (an empty body
 * restores the config file's) */
static void
config(struct mock_call *call)
{
	const struct httpd_req *req = mock_call_req(call);
	const char *body;
	char err[160];
	json_t *j;
	size_t len;

	if (strcmp(httpd_req_method(req), "POST") == 0) {
		body = mock_call_body(call, &len);
		if (len == 0) {
			opts = conf_opts;
		} else if ((j = json_loadb(body, len, 0, NULL)) == NULL ||
		    chatopt_json(j, &opts, err, sizeof(err)) < 0) {
			if (j == NULL)
				snprintf(err, sizeof(err), "not JSON");
			json_decref(j);
			mock_reply_error(
			    call, 400, "bad_relmock_options", err);
			return;
		} else {
			json_decref(j);
		}
	} else if (!mock_require_method(call, "GET")) {
		return;
	}
	mock_reply_json(call, 200, chatopt_to_json(&opts));
}

/* arm_set - POST {"faults":["status=503", …]}: the next requests' faults,
 * one each, in order (replacing what was armed; [] disarms) */
static void
arm_set(struct mock_call *call)
{
	struct mock_fault f;
	const char *body;
	char err[200];
	json_t *j, *list, *v;
	size_t len, i;

	body = mock_call_body(call, &len);
	j = json_loadb(body, len, 0, NULL);
	list = json_object_get(j, "faults");
	if (!json_is_array(list) || json_array_size(list) > ARM_MAX) {
		snprintf(err, sizeof(err),
		    "want {\"faults\":[SPEC, ...]} (at most %d)", ARM_MAX);
		goto bad;
	}
	json_array_foreach(list, i, v)
	{
		if (!json_is_string(v) ||
		    mock_fault_parse(
		        json_string_value(v), &f, err, sizeof(err)) < 0) {
			if (!json_is_string(v))
				snprintf(err, sizeof(err),
				    "faults[%zu]: want a string", i);
			goto bad;
		}
	}
	json_array_clear(armed);
	json_array_extend(armed, list);
	json_decref(j);
	mock_reply_json(
	    call, 200, json_pack("{s:b,s:O}", "ok", 1, "armed", armed));
	return;
bad:
	json_decref(j);
	mock_reply_error(call, 400, "bad_fault_spec", err);
}

static int
chat_control(struct mock_call *call, const char *rest)
{
	if (strcmp(rest, "requests") == 0) {
		if (mock_require_method(call, "GET"))
			mock_reply_json(call, 200, mock_log_items(&requests));
	} else if (strncmp(rest, "requests/", 9) == 0) {
		if (mock_require_method(call, "GET"))
			one(call, rest + 9);
	} else if (strcmp(rest, "stats") == 0) {
		if (mock_require_method(call, "GET"))
			mock_reply_json(call, 200, stats_json());
	} else if (strcmp(rest, "config") == 0) {
		config(call);
	} else if (strcmp(rest, "arm") == 0) {
		if (strcmp(httpd_req_method(mock_call_req(call)), "GET") == 0)
			mock_reply_json(
			    call, 200, json_pack("{s:O}", "armed", armed));
		else if (mock_require_method(call, "POST"))
			arm_set(call);
	} else {
		return -1;
	}
	return 0;
}

const struct mock_endpoint mock_chat_ep = {
	.name = "chat",
	.prefix = "/",
	.suffix = "/chat/completions",
	.faultable = 1,
	.init = chat_init,
	.handle = chat_handle,
	.control = chat_control,
	.reset = chat_reset,
	.fini = chat_fini,
};
