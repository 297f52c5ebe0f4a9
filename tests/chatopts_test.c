/*
 * chatopts_test - unit tests of relmock's chat options (tools/relmock/
 * chatopts): the "key=value" items of the x-relmock-chat header and of
 * the "relmock:" directive, finding the directive in a message, the JSON
 * form of the config file and of POST /_relmock/chat/config, and the
 * deterministic text.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"
#include "tools/relmock/chatopts.h"

/* parse - chatopt_parse of a C string onto o; its result */
static int
parse(const char *spec, struct chat_opts *o)
{
	char err[160];

	return chatopt_parse(spec, strlen(spec), o, err, sizeof(err));
}

START_TEST(defaults)
{
	struct chat_opts o;

	chatopt_defaults(&o);
	ck_assert_uint_eq(o.tokens, 8);
	ck_assert_uint_eq(o.token_ms, 0);
	ck_assert_uint_eq(o.first_ms, 0);
	ck_assert_uint_eq(o.role_chunk, 0);
}
END_TEST

START_TEST(items)
{
	struct chat_opts o;

	chatopt_defaults(&o);
	ck_assert_int_eq(parse("tokens=50 token_ms=20 first_ms=100", &o), 0);
	ck_assert_uint_eq(o.tokens, 50);
	ck_assert_uint_eq(o.token_ms, 20);
	ck_assert_uint_eq(o.first_ms, 100);
	ck_assert_uint_eq(o.role_chunk, 0);
	/* the header's separators, and only the given keys change */
	ck_assert_int_eq(parse("tokens=3;role_chunk=1, ;\t", &o), 0);
	ck_assert_uint_eq(o.tokens, 3);
	ck_assert_uint_eq(o.token_ms, 20);
	ck_assert_uint_eq(o.role_chunk, 1);
	ck_assert_uint_eq(o.tool_text, 0);
	ck_assert_int_eq(parse("tool_text=1", &o), 0);
	ck_assert_uint_eq(o.tool_text, 1);
	/* empty: no change */
	ck_assert_int_eq(parse("", &o), 0);
	ck_assert_int_eq(parse("  ; ", &o), 0);
	ck_assert_uint_eq(o.tokens, 3);
	/* bounds are inclusive */
	ck_assert_int_eq(parse("tokens=100000 first_ms=600000", &o), 0);
	ck_assert_uint_eq(o.tokens, CHATOPT_MAX_TOKENS);
	ck_assert_uint_eq(o.first_ms, CHATOPT_MAX_MS);
	ck_assert_int_eq(parse("tokens=0", &o), 0);
	ck_assert_uint_eq(o.tokens, 0);
}
END_TEST

START_TEST(bad_items)
{
	static const char *const bad[] = {
		"tokens",                      /* no value */
		"tokens=",                     /* empty value */
		"tokens=-1",                   /* sign */
		"tokens=1x",                   /* trailing garbage */
		"tokens=100001",               /* over the bound */
		"token_ms=600001",             /* over the bound */
		"role_chunk=2",                /* 0 or 1 */
		"tool_text=2",                 /* 0 or 1 */
		"colour=blue",                 /* unknown key */
		"=5",                          /* no key */
		"tokens=99999999999999999999", /* overflow */
		"tokens=1 bogus=2",            /* a good item then a bad one */
	};
	struct chat_opts o, before;
	char err[160];
	size_t i;

	chatopt_defaults(&o);
	o.token_ms = 7;
	before = o;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(chatopt_parse(bad[i], strlen(bad[i]), &o, err,
		                  sizeof(err)) == -1,
		    "accepted '%s'", bad[i]);
		ck_assert_msg(err[0] != '\0', "no message for '%s'", bad[i]);
		/* a refused spec changes nothing, even its good items */
		ck_assert(memcmp(&o, &before, sizeof(o)) == 0);
	}
	ck_assert_ptr_nonnull(strstr(err, "unknown option 'bogus'"));
}
END_TEST

START_TEST(directive)
{
	static const char msg[] = "Tell me a story.\n"
	                          "relmock: tokens=50 token_ms=20\n"
	                          "relmock: tokens=9\n";
	static const char tail[] = "hi relmock:tokens=4;first_ms=5";
	struct chat_opts o;
	const char *spec;
	size_t n;

	/* the first directive, up to the end of its line */
	spec = chatopt_find(msg, sizeof(msg) - 1, &n);
	ck_assert_ptr_nonnull(spec);
	ck_assert_uint_eq(n, strlen(" tokens=50 token_ms=20"));
	ck_assert(memcmp(spec, " tokens=50 token_ms=20", n) == 0);
	chatopt_defaults(&o);
	ck_assert_int_eq(chatopt_parse(spec, n, &o, NULL, 0), 0);
	ck_assert_uint_eq(o.tokens, 50);
	ck_assert_uint_eq(o.token_ms, 20);
	/* ... or of the text; anywhere in the line */
	spec = chatopt_find(tail, sizeof(tail) - 1, &n);
	ck_assert_ptr_nonnull(spec);
	ck_assert_uint_eq(n, strlen("tokens=4;first_ms=5"));
	/* none; the text is not NUL-terminated at len */
	ck_assert_ptr_null(chatopt_find("no directive", 12, &n));
	ck_assert_ptr_null(chatopt_find("relmock: x", 7, &n));
	spec = chatopt_find("relmock:", 8, &n);
	ck_assert_ptr_nonnull(spec);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(json_form)
{
	struct chat_opts o, before;
	char err[160];
	json_t *j;

	chatopt_defaults(&o);
	j = json_pack(
	    "{s:i,s:i,s:b}", "tokens", 60, "token_ms", 1000, "role_chunk", 1);
	ck_assert_int_eq(chatopt_json(j, &o, err, sizeof(err)), 0);
	json_decref(j);
	ck_assert_uint_eq(o.tokens, 60);
	ck_assert_uint_eq(o.token_ms, 1000);
	ck_assert_uint_eq(o.first_ms, 0);
	ck_assert_uint_eq(o.role_chunk, 1);
	before = o;
	j = json_pack("{s:i,s:s}", "tokens", 1, "first_ms", "5");
	ck_assert_int_eq(chatopt_json(j, &o, err, sizeof(err)), -1);
	json_decref(j);
	j = json_pack("{s:i}", "tokens", -1);
	ck_assert_int_eq(chatopt_json(j, &o, err, sizeof(err)), -1);
	json_decref(j);
	j = json_pack("{s:b}", "tokens", 1); /* a boolean only for 0/1 */
	ck_assert_int_eq(chatopt_json(j, &o, err, sizeof(err)), -1);
	json_decref(j);
	j = json_pack("{s:i}", "speed", 1);
	ck_assert_int_eq(chatopt_json(j, &o, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "speed"));
	json_decref(j);
	j = json_pack("[i]", 1);
	ck_assert_int_eq(chatopt_json(j, &o, err, sizeof(err)), -1);
	json_decref(j);
	ck_assert(memcmp(&o, &before, sizeof(o)) == 0);
	/* round trip */
	j = chatopt_to_json(&o);
	chatopt_defaults(&o);
	ck_assert_int_eq(chatopt_json(j, &o, err, sizeof(err)), 0);
	json_decref(j);
	ck_assert(memcmp(&o, &before, sizeof(o)) == 0);
}
END_TEST

START_TEST(text)
{
	char buf[16], *s;
	size_t n;

	ck_assert_uint_eq(chatopt_token(0, buf, sizeof(buf)), 3);
	ck_assert_str_eq(buf, "w0 ");
	ck_assert_uint_eq(chatopt_token(99999, buf, sizeof(buf)), 7);
	ck_assert_str_eq(buf, "w99999 ");
	s = chatopt_text(3, &n);
	ck_assert_str_eq(s, "w0 w1 w2 ");
	ck_assert_uint_eq(n, 9);
	free(s);
	s = chatopt_text(0, &n);
	ck_assert_str_eq(s, "");
	ck_assert_uint_eq(n, 0);
	free(s);
	s = chatopt_text(CHATOPT_MAX_TOKENS, &n);
	/* w0..w9 take 3 bytes with their space, w10..w99 4, and so on */
	ck_assert_uint_eq(n, 10 * 3 + 90 * 4 + 900 * 5 + 9000 * 6 + 90000 * 7);
	ck_assert_str_eq(s + n - 7, "w99999 ");
	free(s);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("chatopts");
	TCase *tc = tcase_create("chatopts");

	tcase_add_test(tc, defaults);
	tcase_add_test(tc, items);
	tcase_add_test(tc, bad_items);
	tcase_add_test(tc, directive);
	tcase_add_test(tc, json_form);
	tcase_add_test(tc, text);
	suite_add_tcase(s, tc);
	return tl_run(s);
}
