/*
 * chatstream_test - the chat path's pure pieces: the SSE reader (events
 * split anywhere, CRLF/CR/LF, comments, multi-line data, the line bound),
 * the upstream chunk parser (delta, finish, [DONE], error objects, junk)
 * and the UI message stream writer (every event one JSON object; text
 * escaped), and the chat request body in both forms (relgate's own and
 * the AI SDK 5 transport's).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gate/chatreq.h"
#include "gate/chatstream.h"
#include "gate/sse.h"
#include "testlib.h"

/* --- sse ------------------------------------------------------------------*/

struct got {
	char ev[16][128];
	unsigned n;
	unsigned stop_after; /* 0: never */
};

static int
collect(void *arg, const char *d, size_t len)
{
	struct got *g = arg;

	ck_assert_uint_lt(g->n, 16);
	ck_assert_uint_lt(len, 128);
	ck_assert_int_eq(d[len], '\0');
	memcpy(g->ev[g->n], d, len + 1);
	g->n++;
	return g->stop_after != 0 && g->n == g->stop_after;
}

static const char stream[] =
    ": comment\r\n"
    "event: message\r\n"
    "data: {\"a\":1}\r\n"
    "\r\n"
    "data:no-space\n"
    "id: 7\n"
    "\n"
    "data: line1\r"
    "data: line2\r"
    "\r"
    "retry: 100\n"
    "data\n"
    "\n"
    "data: [DONE]\n\n";

static void
check_events(const struct got *g)
{
	ck_assert_uint_eq(g->n, 5);
	ck_assert_str_eq(g->ev[0], "{\"a\":1}");
	ck_assert_str_eq(g->ev[1], "no-space");
	ck_assert_str_eq(g->ev[2], "line1\nline2");
	ck_assert_str_eq(g->ev[3], "");
	ck_assert_str_eq(g->ev[4], "[DONE]");
}

START_TEST(sse_whole_and_split_everywhere)
{
	size_t n = sizeof(stream) - 1;
	struct sse_reader r;
	struct got g;

	/* in one piece */
	memset(&g, 0, sizeof(g));
	sse_init(&r, 0);
	ck_assert_int_eq(sse_feed(&r, stream, n, collect, &g), 0);
	check_events(&g);
	sse_free(&r);
	/* byte by byte */
	memset(&g, 0, sizeof(g));
	sse_init(&r, 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(sse_feed(&r, stream + i, 1, collect, &g), 0);
	check_events(&g);
	sse_free(&r);
	/* cut in two at every place */
	for (size_t cut = 1; cut < n; cut++) {
		memset(&g, 0, sizeof(g));
		sse_init(&r, 0);
		ck_assert_int_eq(sse_feed(&r, stream, cut, collect, &g), 0);
		ck_assert_int_eq(sse_feed(&r, stream + cut, n - cut, collect,
				     &g),
		    0);
		check_events(&g);
		sse_free(&r);
	}
}
END_TEST

START_TEST(sse_stop_and_bound)
{
	struct sse_reader r;
	struct got g = { .stop_after = 2 };
	char big[200];

	sse_init(&r, 0);
	ck_assert_int_eq(sse_feed(&r, stream, sizeof(stream) - 1, collect,
			     &g),
	    1);
	ck_assert_uint_eq(g.n, 2);
	sse_free(&r);
	/* a line over the bound stops the reader for good */
	memset(&g, 0, sizeof(g));
	memset(big, 'x', sizeof(big));
	memcpy(big, "data: ", 6);
	sse_init(&r, 100);
	ck_assert_int_eq(sse_feed(&r, big, sizeof(big), collect, &g), -1);
	ck_assert_int_eq(sse_feed(&r, "\n\n", 2, collect, &g), -1);
	ck_assert_uint_eq(g.n, 0);
	sse_free(&r);
	/* so do many short data lines of one event */
	sse_init(&r, 100);
	for (int i = 0; i < 30; i++)
		if (sse_feed(&r, "data: 0123456789\n", 17, collect, &g) < 0)
			break;
	ck_assert_int_eq(sse_feed(&r, "\n", 1, collect, &g), -1);
	ck_assert_uint_eq(g.n, 0);
	sse_free(&r);
}
END_TEST

/* --- upstream chunks ------------------------------------------------------*/

static enum oai_kind
parse(const char *s, struct oai_chunk *c)
{
	return oai_parse(s, strlen(s), c);
}

START_TEST(oai_chunks)
{
	struct oai_chunk c;

	ck_assert_int_eq(parse("{\"id\":\"x\",\"choices\":[{\"index\":0,"
			       "\"delta\":{\"role\":\"assistant\","
			       "\"content\":\"he\\\"llo\\n\"},"
			       "\"finish_reason\":null}]}",
			     &c),
	    OAI_DELTA);
	ck_assert_uint_eq(c.content_len, 7);
	ck_assert_int_eq(memcmp(c.content, "he\"llo\n", 7), 0);
	ck_assert_ptr_null(c.finish_reason);
	oai_chunk_free(&c);
	ck_assert_int_eq(parse("{\"choices\":[{\"delta\":{\"role\":"
			       "\"assistant\"}}]}",
			     &c),
	    OAI_DELTA);
	ck_assert_ptr_null(c.content);
	oai_chunk_free(&c);
	ck_assert_int_eq(parse("{\"choices\":[{\"delta\":{},"
			       "\"finish_reason\":\"length\"}]}",
			     &c),
	    OAI_FINISH);
	ck_assert_str_eq(c.finish_reason, "length");
	oai_chunk_free(&c);
	ck_assert_int_eq(parse("[DONE]", &c), OAI_DONE);
	oai_chunk_free(&c);
	ck_assert_int_eq(parse("{\"error\":{\"message\":\"quota\"}}", &c),
	    OAI_ERROR);
	oai_chunk_free(&c);
	ck_assert_int_eq(parse("{\"choices\":[],\"usage\":{}}", &c),
	    OAI_IGNORE);
	oai_chunk_free(&c);
	ck_assert_int_eq(parse("{\"object\":\"x\"}", &c), OAI_IGNORE);
	oai_chunk_free(&c);
	ck_assert_int_eq(parse("{\"choices\":[{\"delta\":{\"content\":7}}]}",
			     &c),
	    OAI_BAD);
	oai_chunk_free(&c);
	ck_assert_int_eq(parse("{\"choices\":{}}", &c), OAI_BAD);
	oai_chunk_free(&c);
	ck_assert_int_eq(parse("{\"choices\":[{\"delta\"", &c), OAI_BAD);
	oai_chunk_free(&c);
	ck_assert_int_eq(parse("[1]", &c), OAI_BAD);
	oai_chunk_free(&c);
}
END_TEST

/* --- the UI message stream ------------------------------------------------*/

/* events - split b into its events; each must be "data: " + JSON + \n\n
 * (or [DONE]); returns how many, objects in out[]. */
static unsigned
events(const struct ui_buf *b, json_t **out, unsigned max)
{
	const char *p = b->p, *end = b->p + b->len;
	unsigned n = 0;

	while (p < end) {
		const char *e = strstr(p, "\n\n");

		ck_assert_ptr_nonnull(e);
		ck_assert_int_eq(strncmp(p, "data: ", 6), 0);
		ck_assert_ptr_null(memchr(p, '\n', (size_t)(e - p)));
		ck_assert_uint_lt(n, max);
		if ((size_t)(e - p) == 12 && strncmp(p + 6, "[DONE]", 6) == 0)
			out[n++] = NULL;
		else {
			out[n] = json_loadb(p + 6, (size_t)(e - p - 6), 0,
			    NULL);
			ck_assert_ptr_nonnull(out[n]);
			n++;
		}
		p = e + 2;
	}
	return n;
}

static const char *
type(json_t *o)
{
	return json_string_value(json_object_get(o, "type"));
}

START_TEST(ui_stream_events)
{
	static const char nasty[] = "a\"b\\c\n\x01</script>\xc3\xa9";
	struct ui_buf b = { 0 };
	json_t *ev[16];
	unsigned n;

	ui_start(&b, "msg-1");
	ui_route(&b, "secondary", "openrouter_chat_secondary", "m\"x", 3);
	ui_start_step(&b);
	ui_text_start(&b, "text-0");
	ui_text_delta(&b, "text-0", nasty, sizeof(nasty) - 1);
	ui_text_end(&b, "text-0");
	ui_error(&b, "upstream_unavailable", "Lost \"it\".");
	ui_finish_step(&b);
	ui_finish(&b, "stop");
	ui_done(&b);
	n = events(&b, ev, 16);
	ck_assert_uint_eq(n, 10);
	ck_assert_str_eq(type(ev[0]), "start");
	ck_assert_str_eq(json_string_value(json_object_get(ev[0],
			     "messageId")),
	    "msg-1");
	ck_assert_str_eq(type(ev[1]), "data-provider-route");
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(ev[1], "data"), "route")),
	    "secondary");
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(ev[1], "data"), "model")),
	    "m\"x");
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(ev[1], "data"), "attempt")),
	    3);
	ck_assert_str_eq(type(ev[2]), "start-step");
	ck_assert_str_eq(type(ev[3]), "text-start");
	ck_assert_str_eq(type(ev[4]), "text-delta");
	ck_assert_str_eq(json_string_value(json_object_get(ev[4], "delta")),
	    nasty);
	ck_assert_str_eq(type(ev[5]), "text-end");
	ck_assert_str_eq(type(ev[6]), "error");
	ck_assert_str_eq(json_string_value(json_object_get(ev[6],
			     "errorText")),
	    "Lost \"it\".");
	ck_assert_str_eq(json_string_value(json_object_get(ev[6], "code")),
	    "upstream_unavailable");
	ck_assert_str_eq(type(ev[7]), "finish-step");
	ck_assert_str_eq(type(ev[8]), "finish");
	ck_assert_ptr_null(ev[9]);
	for (unsigned i = 0; i < n; i++)
		json_decref(ev[i]);
	/* no messageId, no finish reason: the members are left out */
	ui_buf_reset(&b);
	ui_start(&b, NULL);
	ui_finish(&b, NULL);
	n = events(&b, ev, 16);
	ck_assert_uint_eq(n, 2);
	ck_assert_ptr_null(json_object_get(ev[0], "messageId"));
	ck_assert_ptr_null(json_object_get(ev[1], "finishReason"));
	json_decref(ev[0]);
	json_decref(ev[1]);
	ui_buf_free(&b);
	ck_assert_uint_eq(strlen(ui_ping), UI_PING_LEN);
}
END_TEST

/* the tool chunks: every one a JSON object with its members; the input
 * and output are JSON values, not strings of JSON */
START_TEST(ui_tool_events)
{
	struct ui_buf b = { 0 };
	json_t *ev[8], *in = json_pack("{s:s,s:i}", "query", "a\"b", "num", 5);
	json_t *out = json_pack("{s:[{s:s}]}", "organic", "title", "x\ny");
	unsigned n;

	ui_tool_input(&b, "call_1", "search_web", in);
	ui_tool_output(&b, "call_1", out, 1);
	ui_tool_output(&b, "call_1", out, 0);
	ui_tool_error(&b, "call_2", "temporarily unavailable (dead_letter)");
	ui_tool_backpressure(&b, "search_web", "queue_saturated");
	n = events(&b, ev, 8);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(type(ev[0]), "tool-input-available");
	ck_assert_str_eq(json_string_value(json_object_get(ev[0],
			     "toolCallId")), "call_1");
	ck_assert_str_eq(json_string_value(json_object_get(ev[0],
			     "toolName")), "search_web");
	ck_assert(json_equal(json_object_get(ev[0], "input"), in));
	ck_assert_str_eq(type(ev[1]), "tool-output-available");
	ck_assert(json_equal(json_object_get(ev[1], "output"), out));
	ck_assert(json_is_true(json_object_get(ev[1], "preliminary")));
	ck_assert_ptr_null(json_object_get(ev[2], "preliminary"));
	ck_assert_str_eq(type(ev[3]), "tool-output-error");
	ck_assert_str_eq(json_string_value(json_object_get(ev[3],
			     "errorText")),
	    "temporarily unavailable (dead_letter)");
	ck_assert_str_eq(type(ev[4]), "data-tool-backpressure");
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(ev[4], "data"), "reason")),
	    "queue_saturated");
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(ev[4], "data"), "tool")),
	    "search_web");
	for (unsigned i = 0; i < n; i++)
		json_decref(ev[i]);
	json_decref(in);
	json_decref(out);
	ui_buf_free(&b);
}
END_TEST

/* tool calls streamed in pieces come together by their index */
START_TEST(oai_tool_call_deltas)
{
	static const char *const chunks[] = {
		"{\"choices\":[{\"delta\":{\"role\":\"assistant\","
		"\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":"
		"\"function\",\"function\":{\"name\":\"search_products\","
		"\"arguments\":\"\"}}]}}]}",
		"{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,"
		"\"id\":\"call_a\",\"function\":{\"name\":\"search_\"}}]}}]}",
		"{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,"
		"\"function\":{\"name\":\"web\",\"arguments\":\"{\\\"qu\"}}]}}]}",
		/* index 1 repeats its id and whole name with each piece */
		"{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1,"
		"\"id\":\"call_b\",\"function\":{\"name\":\"search_products\","
		"\"arguments\":\"{\\\"query\\\":\\\"shoes\\\"}\"}},"
		"{\"index\":0,\"function\":{\"arguments\":\"ery\\\":\\\"cats\\\"}\"}}]}}]}",
		/* index 2: a name in two equal pieces, the second without
		 * the id: "abab" */
		"{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":2,"
		"\"id\":\"call_c\",\"function\":{\"name\":\"ab\"}}]}}]}",
		"{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":2,"
		"\"function\":{\"name\":\"ab\",\"arguments\":\"{}\"}}]}}]}",
		"{\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}",
	};
	struct oai_calls a = { 0 };
	struct oai_chunk c;

	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		ck_assert_int_ne(parse(chunks[i], &c), OAI_BAD);
		ck_assert_int_eq(oai_calls_add(&a, &c, 1024), 0);
		oai_chunk_free(&c);
	}
	ck_assert_uint_eq(a.n, 3);
	ck_assert_str_eq(a.c[2].name, "abab");
	ck_assert_str_eq(a.c[0].id, "call_a");
	ck_assert_str_eq(a.c[0].name, "search_web");
	ck_assert_str_eq(a.c[0].args, "{\"query\":\"cats\"}");
	ck_assert_str_eq(a.c[1].id, "call_b");
	ck_assert_str_eq(a.c[1].name, "search_products");
	ck_assert_str_eq(a.c[1].args, "{\"query\":\"shoes\"}");
	oai_calls_free(&a);
	/* an index out of range, arguments over the bound: refused */
	ck_assert_int_ne(parse("{\"choices\":[{\"delta\":{\"tool_calls\":"
			       "[{\"index\":8,\"id\":\"x\"}]}}]}", &c),
	    OAI_BAD);
	ck_assert_int_eq(oai_calls_add(&a, &c, 1024), -1);
	oai_chunk_free(&c);
	oai_calls_free(&a);
	ck_assert_int_ne(parse("{\"choices\":[{\"delta\":{\"tool_calls\":"
			       "[{\"index\":0,\"function\":{\"arguments\":"
			       "\"0123456789\"}}]}}]}", &c),
	    OAI_BAD);
	ck_assert_int_eq(oai_calls_add(&a, &c, 9), -1);
	ck_assert_int_eq(oai_calls_add(&a, &c, 10), 0);
	oai_chunk_free(&c);
	oai_calls_free(&a);
	/* content only: no call */
	ck_assert_int_eq(parse("{\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}",
			     &c), OAI_DELTA);
	ck_assert_int_eq(oai_calls_add(&a, &c, 10), 0);
	ck_assert_uint_eq(a.n, 0);
	oai_chunk_free(&c);
}
END_TEST

START_TEST(utf8_cuts)
{
	/* "a", then U+00E9 (2 bytes), U+2615 (3), U+1F600 (4) */
	static const char t[] = "a\xC3\xA9\xE2\x98\x95\xF0\x9F\x98\x80";
	static const size_t want[] = { 0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10 };

	for (size_t n = 0; n <= 10; n++)
		ck_assert_msg(utf8_cut(t, n) == want[n], "cut at %zu: %zu, want "
		    "%zu", n, utf8_cut(t, n), want[n]);
	/* not UTF-8: left as it is (the caller's validation refuses it) */
	ck_assert_uint_eq(utf8_cut("\x80\x80", 2), 2);
	ck_assert_uint_eq(utf8_cut("a\x80", 2), 2);
}
END_TEST

/* --- the chat request -----------------------------------------------------*/

static enum chatreq_result
req(const char *body, struct chatreq *r, char *msg)
{
	return chatreq_parse(body, strlen(body), r, msg, 512);
}

static char *
messages(const struct chatreq *r)
{
	return json_dumps(r->messages, JSON_COMPACT);
}

START_TEST(chatreq_own_body)
{
	struct chatreq r;
	char msg[512], *m;

	ck_assert_int_eq(req("{\"threadId\":\"t\",\"messages\":[{\"role\":"
			     "\"system\",\"content\":\"s\"},{\"role\":\"user\","
			     "\"content\":\"hi\"}],\"model\":\"x/y\","
			     "\"modelClass\":\"fast\"}",
			     &r, msg),
	    CHATREQ_OK);
	ck_assert_int_eq(r.sdk, 0);
	ck_assert_str_eq(r.thread_id, "t");
	ck_assert_str_eq(r.model, "x/y");
	ck_assert_int_eq(r.model_class, CHATREQ_CLASS_FAST);
	m = messages(&r);
	ck_assert_str_eq(m, "[{\"role\":\"system\",\"content\":\"s\"},"
			    "{\"role\":\"user\",\"content\":\"hi\"}]");
	free(m);
	chatreq_free(&r);
	ck_assert_int_eq(req("{\"threadId\":\"\",\"messages\":[{\"role\":"
			     "\"robot\",\"content\":1,\"x\":2}],\"extra\":1,"
			     "\"modelClass\":\"slow\"}",
			     &r, msg),
	    CHATREQ_INVALID_REQUEST);
	ck_assert_ptr_nonnull(strstr(msg, "threadId: "));
	ck_assert_ptr_nonnull(strstr(msg, "messages[0].role: "));
	ck_assert_ptr_nonnull(strstr(msg, "messages[0].content: "));
	ck_assert_ptr_nonnull(strstr(msg, "messages[0].x: unknown member"));
	ck_assert_ptr_nonnull(strstr(msg, "extra: unknown member"));
	ck_assert_ptr_nonnull(strstr(msg, "modelClass: "));
	ck_assert_ptr_null(r.root);
	ck_assert_int_eq(req("{\"threadId\":", &r, msg), CHATREQ_INVALID_JSON);
	ck_assert_int_eq(req("[]", &r, msg), CHATREQ_INVALID_REQUEST);
	ck_assert_int_eq(req("{\"threadId\":\"t\",\"messages\":[]}", &r, msg),
	    CHATREQ_INVALID_REQUEST);
	ck_assert_ptr_nonnull(strstr(msg, "messages: must be an array of "
					  "1..100"));
}
END_TEST

START_TEST(chatreq_ai_sdk_body)
{
	struct chatreq r;
	char msg[512], *m;

	/* what DefaultChatTransport sends for useChat, unchanged */
	ck_assert_int_eq(req("{\"id\":\"chat-1\",\"messages\":["
			     "{\"id\":\"u1\",\"role\":\"user\",\"parts\":["
			     "{\"type\":\"text\",\"text\":\"hel\"},"
			     "{\"type\":\"file\",\"url\":\"x\"},"
			     "{\"type\":\"text\",\"text\":\"lo\"}],"
			     "\"metadata\":{\"k\":1}},"
			     "{\"id\":\"a1\",\"role\":\"assistant\",\"parts\":["
			     "{\"type\":\"step-start\"},"
			     "{\"type\":\"data-provider-route\",\"data\":{}},"
			     "{\"type\":\"text\",\"text\":\"hi\","
			     "\"state\":\"done\"}]},"
			     "{\"id\":\"a2\",\"role\":\"assistant\",\"parts\":["
			     "{\"type\":\"step-start\"}]},"
			     "{\"id\":\"u2\",\"role\":\"user\",\"parts\":["
			     "{\"type\":\"text\",\"text\":\"again\"}]}],"
			     "\"trigger\":\"submit-message\","
			     "\"messageId\":\"a9\"}",
			     &r, msg),
	    CHATREQ_OK);
	ck_assert_int_eq(r.sdk, 1);
	ck_assert_str_eq(r.thread_id, "chat-1");
	ck_assert_str_eq(r.message_id, "a9");
	ck_assert_ptr_null(r.model);
	ck_assert_int_eq(r.model_class, CHATREQ_CLASS_DEFAULT);
	m = messages(&r);
	/* the assistant message without text is dropped */
	ck_assert_str_eq(m, "[{\"role\":\"user\",\"content\":\"hello\"},"
			    "{\"role\":\"assistant\",\"content\":\"hi\"},"
			    "{\"role\":\"user\",\"content\":\"again\"}]");
	free(m);
	chatreq_free(&r);
	ck_assert_int_eq(req("{\"id\":\"c\",\"messages\":[{\"role\":\"user\","
			     "\"parts\":[{\"type\":\"text\",\"text\":5},7]},"
			     "{\"role\":\"user\"}],\"bogus\":1}",
			     &r, msg),
	    CHATREQ_INVALID_REQUEST);
	ck_assert_ptr_nonnull(strstr(msg, "messages[0].parts[0].text: "));
	ck_assert_ptr_nonnull(strstr(msg, "messages[0].parts[1]: "));
	ck_assert_ptr_nonnull(strstr(msg, "messages[1].parts: required"));
	ck_assert_ptr_nonnull(strstr(msg, "bogus: unknown member"));
	/* nothing but empty assistant messages: nothing to send */
	ck_assert_int_eq(req("{\"id\":\"c\",\"messages\":[{\"role\":"
			     "\"assistant\",\"parts\":[]}]}",
			     &r, msg),
	    CHATREQ_INVALID_REQUEST);
	ck_assert_ptr_nonnull(strstr(msg, "no message has any text"));
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("chatstream");
	TCase *tc = tcase_create("chatstream");

	tcase_add_test(tc, sse_whole_and_split_everywhere);
	tcase_add_test(tc, sse_stop_and_bound);
	tcase_add_test(tc, oai_chunks);
	tcase_add_test(tc, ui_stream_events);
	tcase_add_test(tc, ui_tool_events);
	tcase_add_test(tc, oai_tool_call_deltas);
	tcase_add_test(tc, utf8_cuts);
	tcase_add_test(tc, chatreq_own_body);
	tcase_add_test(tc, chatreq_ai_sdk_body);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tl_run(suite());
}
