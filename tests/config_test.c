/*
 * config_test - unit tests of conf/config.c: every error path of the file
 * and the environment, precedence, redaction, the effective-config round
 * trip and the reload rule for KF_RESTART knobs.
 *
 * Each test runs with a clean environment (every knob's variables unset)
 * and a fresh mkdtemp directory that teardown removes.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/config.h"
#include "testlib.h"

static char tmpdir[256];
static char errbuf[1024];

static void
clear_env(void)
{
	char name[128];
	size_t i;

	for (i = 0; i < KNOB_COUNT; i++) {
		unsetenv(config_env_name(&config_knobs[i], name,
		    sizeof(name)));
		if (config_knobs[i].envdef != NULL)
			unsetenv(config_knobs[i].envdef);
	}
}

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/config_test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	clear_env();
	errbuf[0] = '\0';
}

static void
teardown(void)
{
	char path[512];
	struct dirent *de;
	DIR *d;

	clear_env();
	d = opendir(tmpdir);
	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", tmpdir,
			    de->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(tmpdir);
}

/* write_conf - tmpdir/name with text; returns a static path. */
static const char *
write_conf(const char *name, const char *text)
{
	static char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
	return path;
}

static struct config *
load(const char *path, unsigned flags)
{
	errbuf[0] = '\0';
	return config_load(path, flags, errbuf, sizeof(errbuf));
}

/* expect_fail - load must fail with one line holding every needle. */
static void
expect_fail(const char *path, unsigned flags, const char *n1,
    const char *n2, const char *n3)
{
	struct config *cfg = load(path, flags);

	ck_assert_msg(cfg == NULL, "load unexpectedly succeeded");
	ck_assert_msg(strncmp(errbuf, "config: ", 8) == 0, "err: %s", errbuf);
	ck_assert_msg(strchr(errbuf, '\n') == NULL, "multi-line: %s", errbuf);
	ck_assert_msg(n1 == NULL || strstr(errbuf, n1) != NULL,
	    "\"%s\" not in: %s", n1, errbuf);
	ck_assert_msg(n2 == NULL || strstr(errbuf, n2) != NULL,
	    "\"%s\" not in: %s", n2, errbuf);
	ck_assert_msg(n3 == NULL || strstr(errbuf, n3) != NULL,
	    "\"%s\" not in: %s", n3, errbuf);
}

static void
expect_file_fail(const char *text, const char *n1, const char *n2,
    const char *n3)
{
	const char *p = write_conf("bad.json", text);

	expect_fail(p, CONFIG_NO_ENV, n1, n2, n3);
	ck_assert_msg(strstr(errbuf, p) != NULL, "no path in: %s", errbuf);
}

static void
expect_file_ok(const char *text)
{
	struct config *cfg = load(write_conf("ok.json", text), CONFIG_NO_ENV);

	ck_assert_msg(cfg != NULL, "%s: %s", text, errbuf);
	config_free(cfg);
}

static void
expect_env_fail(const char *name, const char *value, const char *n1,
    const char *n2)
{
	ck_assert_int_eq(setenv(name, value, 1), 0);
	expect_fail(NULL, 0, n1, n2, "[from environment");
	unsetenv(name);
}

START_TEST(test_defaults_valid)
{
	char name[128];
	struct config *cfg;
	size_t i;

	cfg = load(NULL, 0);
	ck_assert_msg(cfg != NULL, "%s", errbuf);
	ck_assert_str_eq(cfg->http_listen, "127.0.0.1:8080");
	ck_assert_str_eq(cfg->admin_listen, "127.0.0.1:9464");
	ck_assert_str_eq(cfg->state_dir, "/var/lib/relgate");
	ck_assert_int_eq(cfg->store_map_size_mb, 1024);
	ck_assert_int_eq(cfg->tool_worker_count, 2);
	ck_assert_int_eq(cfg->http_trusted_proxies.n, 2);
	ck_assert_str_eq(cfg->http_trusted_proxies.v[1], "::1/128");
	ck_assert_int_eq(cfg->http_allowed_origins.n, 0);
	ck_assert_str_eq(cfg->http_error_code_header, "x-sendcat-error-code");
	ck_assert_str_eq(cfg->auth_jwt_alg, "HS256");
	ck_assert_int_eq(cfg->auth_jwt_leeway_s, 30);
	ck_assert_str_eq(cfg->provider_primary_base_url,
	    "https://openrouter.ai/api/v1");
	ck_assert_ptr_null(cfg->provider_primary_api_key);
	ck_assert_ptr_null(cfg->backend_secret);
	ck_assert_int_eq(cfg->chat_require_origin, 0);
	ck_assert(json_is_array(cfg->routes));
	ck_assert_int_eq(json_array_size(cfg->routes), 1);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_array_get(cfg->routes, 0), "bucket")),
	    "wa_link_code");
	ck_assert_int_eq(cfg->rate_limit_gmail_oauth_max, 30);
	ck_assert_int_eq(cfg->rate_limit_gmail_oauth_window_ms, 300000);
	ck_assert_int_eq(cfg->rate_limit_gmail_push_max, 120);
	ck_assert_int_eq(cfg->rate_limit_gmail_push_window_ms, 60000);
	ck_assert_int_eq(cfg->rate_limit_whatsapp_max, 120);
	ck_assert_int_eq(cfg->rate_limit_chat_stream_max, 30);
	ck_assert_int_eq(cfg->rate_limit_chat_stream_window_ms, 300000);
	ck_assert_int_eq(cfg->rate_limit_wa_link_code_max, 5);
	ck_assert_int_eq(cfg->rate_limit_wa_link_code_window_ms, 600000);
	ck_assert_int_eq(cfg->bulkhead_openrouter_max_concurrent, 24);
	ck_assert_int_eq(cfg->bulkhead_serper_max_concurrent, 12);
	ck_assert_int_eq(cfg->bulkhead_gmail_oauth_max_concurrent, 8);
	ck_assert_int_eq(cfg->tool_cache_web_search_ttl_ms, 300000);
	ck_assert_int_eq(cfg->tool_cache_product_search_ttl_ms, 600000);
	ck_assert_str_eq(cfg->tool_cache_web_search_namespace_version, "v1");
	ck_assert_str_eq(cfg->tool_cache_products_ns_ver, "v1");
	ck_assert_str_eq(cfg->reliability_region_id, "us-east-1");
	ck_assert_str_eq(cfg->reliability_topology_mode, "single_region");
	ck_assert_int_eq(cfg->reliability_region_readiness_only, 1);
	ck_assert_ptr_null(cfg->path);
	for (i = 0; i < KNOB_COUNT; i++)
		ck_assert_int_eq(cfg->source[i], CONFIG_SRC_DEFAULT);
	config_free(cfg);

	/* every default also parses as an environment value */
	for (i = 0; i < KNOB_COUNT; i++) {
		const struct knob *k = &config_knobs[i];

		ck_assert_msg(k->def != NULL || (k->flags & KF_OPTIONAL),
		    "%s: no default", k->key);
		ck_assert_msg(!(k->flags & KF_SECRET) || k->def == NULL,
		    "%s: secret with a default", k->key);
		ck_assert_msg(k->type != KT_INT || k->min <= k->max,
		    "%s: empty range", k->key);
		if (k->def == NULL)
			continue;
		config_env_name(k, name, sizeof(name));
		ck_assert_int_eq(setenv(name, k->def, 1), 0);
		cfg = load(NULL, 0);
		ck_assert_msg(cfg != NULL, "%s=%s: %s", name, k->def, errbuf);
		ck_assert_int_eq(cfg->source[i], CONFIG_SRC_ENV);
		config_free(cfg);
		unsetenv(name);
	}
}
END_TEST

START_TEST(test_env_name)
{
	char buf[128];

	ck_assert_str_eq(config_env_name(&config_knobs[KNOB_http_listen], buf,
			     sizeof(buf)),
	    "RELGATE_HTTP_LISTEN");
	ck_assert_str_eq(config_env_name(&config_knobs[KNOB_auth_jwt_alg],
			     buf, sizeof(buf)),
	    "RELGATE_AUTH_JWT_ALG");
	ck_assert_str_eq(
	    config_env_name(&config_knobs[KNOB_rate_limit_gmail_push_max], buf,
		sizeof(buf)),
	    "RATE_LIMIT_GMAIL_PUSH_MAX");
}
END_TEST

START_TEST(test_file_values)
{
	struct config *cfg;
	const char *p;

	p = write_conf("c.json",
	    "{\"http\":{\"listen\":\"[::1]:8081\","
	    "\"trusted_proxies\":[\"10.0.0.0/8\",\"fd00::/8\"],"
	    "\"allowed_origins\":[\"https://a.example\"]},"
	    "\"state_dir\":\"/srv/rg\","
	    "\"auth\":{\"jwt\":{\"alg\":\"ES256\",\"leeway_s\":5,"
	    "\"issuer\":null}},"
	    "\"backend\":{\"url\":\"http://127.0.0.1:9000/hooks\"},"
	    "\"chat\":{\"require_origin\":true},"
	    "\"routes\":[],"
	    "\"RATE_LIMIT_CHAT_STREAM_MAX\":1000,"
	    "\"FF_PROVIDER_FAILOVER_ENABLED\":false,"
	    "\"RELIABILITY_TOPOLOGY_MODE\":\"active_active\"}");
	cfg = load(p, CONFIG_NO_ENV);
	ck_assert_msg(cfg != NULL, "%s", errbuf);
	ck_assert_str_eq(cfg->path, p);
	ck_assert_str_eq(cfg->http_listen, "[::1]:8081");
	ck_assert_int_eq(cfg->http_trusted_proxies.n, 2);
	ck_assert_str_eq(cfg->http_trusted_proxies.v[1], "fd00::/8");
	ck_assert_str_eq(cfg->http_allowed_origins.v[0], "https://a.example");
	ck_assert_str_eq(cfg->state_dir, "/srv/rg");
	ck_assert_str_eq(cfg->auth_jwt_alg, "ES256");
	ck_assert_int_eq(cfg->auth_jwt_leeway_s, 5);
	ck_assert_ptr_null(cfg->auth_jwt_issuer);
	ck_assert_str_eq(cfg->backend_url, "http://127.0.0.1:9000/hooks");
	ck_assert_int_eq(cfg->chat_require_origin, 1);
	ck_assert_int_eq(json_array_size(cfg->routes), 0);
	ck_assert_int_eq(cfg->rate_limit_chat_stream_max, 1000);
	ck_assert_int_eq(cfg->ff_provider_failover_enabled, 0);
	ck_assert_str_eq(cfg->reliability_topology_mode, "active_active");
	ck_assert_int_eq(cfg->source[KNOB_http_listen], CONFIG_SRC_FILE);
	ck_assert_int_eq(cfg->source[KNOB_admin_listen], CONFIG_SRC_DEFAULT);
	config_free(cfg);
}
END_TEST

START_TEST(test_wrong_type)
{
	expect_file_fail("{\"http\":{\"listen\":8080}}",
	    "config: http.listen: expected string \"host:port\", "
	    "got integer 8080 [from ",
	    NULL, NULL);
	expect_file_fail("{\"chat\":{\"require_origin\":\"yes\"}}",
	    "chat.require_origin", "expected boolean", "\"yes\"");
	expect_file_fail("{\"RATE_LIMIT_CHAT_STREAM_MAX\":\"30\"}",
	    "RATE_LIMIT_CHAT_STREAM_MAX", "expected integer", "\"30\"");
	expect_file_fail("{\"RATE_LIMIT_CHAT_STREAM_MAX\":30.5}",
	    "RATE_LIMIT_CHAT_STREAM_MAX", "got real 30.5", NULL);
	expect_file_fail("{\"state_dir\":null}", "state_dir",
	    "expected string, got null", NULL);
	expect_file_fail("{\"http\":{\"allowed_origins\":\"https://a\"}}",
	    "http.allowed_origins", "expected array of strings",
	    "\"https://a\"");
	expect_file_fail("{\"http\":{\"trusted_proxies\":[\"10.0.0.0/8\",7]}}",
	    "http.trusted_proxies", "item 1", "integer 7");
	expect_file_fail("{\"routes\":{\"path\":\"/x\"}}", "routes",
	    "expected JSON array", "object");
	expect_file_fail("{\"http\":5}", "config: http: expected object",
	    "integer 5", NULL);
	expect_file_fail("[1,2]", "top level must be an object", NULL, NULL);
}
END_TEST

START_TEST(test_out_of_range)
{
	expect_file_fail("{\"RATE_LIMIT_GMAIL_PUSH_MAX\":0}",
	    "config: RATE_LIMIT_GMAIL_PUSH_MAX: value 0 out of range "
	    "(allowed 1..1000000) [from ",
	    NULL, NULL);
	expect_file_fail("{\"RATE_LIMIT_GMAIL_PUSH_MAX\":1000001}",
	    "RATE_LIMIT_GMAIL_PUSH_MAX", "value 1000001", "1..1000000");
	expect_file_fail("{\"ADMISSION_RETRY_AFTER_JITTER_PCT\":101}",
	    "ADMISSION_RETRY_AFTER_JITTER_PCT", "value 101", "0..100");
	expect_file_fail("{\"ADMISSION_RETRY_AFTER_JITTER_PCT\":-1}",
	    "ADMISSION_RETRY_AFTER_JITTER_PCT", "value -1", "0..100");
	expect_file_fail("{\"ingress\":{\"count\":33}}", "ingress.count",
	    "value 33", "0..32");
	expect_file_fail("{\"shm\":{\"name\":\"/\"}}", "shm.name",
	    "value \"/\" length 1", "2..64");
	expect_file_fail(
	    "{\"RATE_LIMIT_GMAIL_PUSH_MAX\":99999999999999999999}",
	    "cannot parse", NULL, NULL);
	expect_file_ok("{\"RATE_LIMIT_GMAIL_PUSH_MAX\":1}");
	expect_file_ok("{\"RATE_LIMIT_GMAIL_PUSH_MAX\":1000000}");
}
END_TEST

START_TEST(test_bad_enum)
{
	expect_file_fail("{\"auth\":{\"jwt\":{\"alg\":\"none\"}}}",
	    "config: auth.jwt.alg: value \"none\" not allowed",
	    "HS256|RS256|ES256", NULL);
	expect_file_fail("{\"CHAT_DEFAULT_MODEL_CLASS\":\"slow\"}",
	    "CHAT_DEFAULT_MODEL_CLASS", "\"slow\"", "fast|agent");
	expect_file_fail("{\"log\":{\"level\":\"INFO\"}}", "log.level",
	    "\"INFO\"", NULL);
}
END_TEST

START_TEST(test_bad_address)
{
	expect_file_fail("{\"http\":{\"listen\":\"127.0.0.1\"}}",
	    "http.listen", "value \"127.0.0.1\" is not a valid address",
	    NULL);
	expect_file_fail("{\"http\":{\"listen\":\"127.0.0.1:0\"}}",
	    "http.listen", "\"127.0.0.1:0\"", "port 1..65535");
	expect_file_fail("{\"admin\":{\"listen\":\"127.0.0.1:70000\"}}",
	    "admin.listen", "\"127.0.0.1:70000\"", NULL);
	expect_file_fail("{\"http\":{\"listen\":\"::1:8080\"}}", "http.listen",
	    "\"::1:8080\"", NULL);
	expect_file_fail("{\"http\":{\"listen\":\"[::1]\"}}", "http.listen",
	    "\"[::1]\"", NULL);
	expect_file_fail("{\"http\":{\"listen\":\"300.1.1.1:80\"}}",
	    "http.listen", "\"300.1.1.1:80\"", NULL);
	expect_file_fail("{\"http\":{\"listen\":\"host:80x\"}}", "http.listen",
	    "\"host:80x\"", NULL);
	expect_file_ok("{\"http\":{\"listen\":\"[::]:65535\"}}");
	expect_file_ok("{\"http\":{\"listen\":\"localhost:1\"}}");
	expect_file_ok("{\"http\":{\"listen\":\"0.0.0.0:80\"}}");
}
END_TEST

START_TEST(test_bad_cidr)
{
	expect_file_fail("{\"http\":{\"trusted_proxies\":[\"10.0.0.0/33\"]}}",
	    "http.trusted_proxies",
	    "value \"10.0.0.0/33\" is not a valid CIDR", NULL);
	expect_file_fail("{\"http\":{\"trusted_proxies\":[\"10.0.0.0\"]}}",
	    "http.trusted_proxies", "\"10.0.0.0\"", "CIDR");
	expect_file_fail("{\"http\":{\"trusted_proxies\":[\"proxy/8\"]}}",
	    "http.trusted_proxies", "\"proxy/8\"", "CIDR");
	expect_file_fail("{\"http\":{\"trusted_proxies\":[\"::1/129\"]}}",
	    "http.trusted_proxies", "\"::1/129\"", "CIDR");
	expect_file_fail("{\"http\":{\"trusted_proxies\":[\"10.0.0.0/\"]}}",
	    "http.trusted_proxies", "\"10.0.0.0/\"", "CIDR");
	expect_file_ok("{\"http\":{\"trusted_proxies\":[\"0.0.0.0/0\","
		       "\"2001:db8::/32\"]}}");
}
END_TEST

START_TEST(test_bad_url)
{
	expect_file_fail("{\"backend\":{\"url\":\"ftp://x.example\"}}",
	    "backend.url", "value \"ftp://x.example\" is not a valid URL",
	    NULL);
	expect_file_fail("{\"backend\":{\"url\":\"http://\"}}", "backend.url",
	    "\"http://\"", NULL);
	expect_file_fail("{\"app_url\":\"www.example.com\"}", "app_url",
	    "\"www.example.com\"", NULL);
	expect_file_fail("{\"oauth\":{\"token_url\":\"https://a b/\"}}",
	    "oauth.token_url", "\"https://a b/\"", NULL);
	expect_file_fail("{\"app_url\":\"https://x:99999/\"}", "app_url",
	    "\"https://x:99999/\"", NULL);
	expect_file_ok("{\"app_url\":\"https://app.example.com/base?q=1\"}");
	expect_file_ok(
	    "{\"ADMISSION_REDIS_URL\":\"rediss://h.example:6380\"}");
	expect_file_ok("{\"backend\":{\"url\":\"http://[::1]:9000\"}}");
}
END_TEST

START_TEST(test_unknown_keys)
{
	expect_file_fail("{\"bogus\":1}",
	    "config: unknown key \"bogus\" [from ", NULL, NULL);
	expect_file_fail("{\"http\":{\"lisen\":\"127.0.0.1:1\"}}",
	    "config: unknown key \"http.lisen\" [from ", NULL, NULL);
	expect_file_fail("{\"auth\":{\"jwt\":{\"algo\":\"HS256\"}}}",
	    "unknown key \"auth.jwt.algo\"", NULL, NULL);
	expect_file_fail("{\"http.listen\":\"127.0.0.1:1\"}",
	    "unknown key \"http.listen\"", "nested", NULL);
	expect_file_fail("{\"http\":{\"RATE_LIMIT_CHAT_STREAM_MAX\":3}}",
	    "unknown key \"http.RATE_LIMIT_CHAT_STREAM_MAX\"", NULL, NULL);
	expect_file_fail("{\"rate_limit_chat_stream_max\":3}",
	    "unknown key \"rate_limit_chat_stream_max\"", NULL, NULL);
}
END_TEST

START_TEST(test_duplicate_and_malformed)
{
	expect_file_fail("{\"http\":{\"listen\":\"127.0.0.1:1\","
			 "\"listen\":\"127.0.0.1:2\"}}",
	    "cannot parse", "duplicate", NULL);
	expect_file_fail("{\"http\":", "cannot parse", "line 1", NULL);
	expect_file_fail("", "cannot parse", NULL, NULL);
	/* the token near a syntax error may be a secret: not echoed */
	expect_file_fail("{\"backend\":{\"secret\":\"topsecret}}",
	    "cannot parse", NULL, NULL);
	ck_assert_ptr_null(strstr(errbuf, "topsecret"));
}
END_TEST

START_TEST(test_missing_file)
{
	char path[512];
	struct config *cfg;

	snprintf(path, sizeof(path), "%s/nope.json", tmpdir);
	expect_fail(path, 0, "config: cannot read ", path,
	    "No such file or directory");
	cfg = load(path, CONFIG_FILE_OPTIONAL);
	ck_assert_msg(cfg != NULL, "%s", errbuf);
	ck_assert_ptr_null(cfg->path);
	ck_assert_str_eq(cfg->http_listen, "127.0.0.1:8080");
	config_free(cfg);
	expect_fail(tmpdir, CONFIG_FILE_OPTIONAL, "cannot read", tmpdir,
	    NULL);
}
END_TEST

START_TEST(test_precedence)
{
	struct config *cfg;
	const char *p;

	cfg = load(NULL, 0);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(cfg->rate_limit_chat_stream_max, 30);
	ck_assert_int_eq(cfg->source[KNOB_rate_limit_chat_stream_max],
	    CONFIG_SRC_DEFAULT);
	config_free(cfg);

	p = write_conf("p.json",
	    "{\"RATE_LIMIT_CHAT_STREAM_MAX\":50,"
	    "\"http\":{\"listen\":\"127.0.0.1:8001\"}}");
	cfg = load(p, 0);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(cfg->rate_limit_chat_stream_max, 50);
	ck_assert_int_eq(cfg->source[KNOB_rate_limit_chat_stream_max],
	    CONFIG_SRC_FILE);
	ck_assert_str_eq(cfg->http_listen, "127.0.0.1:8001");
	config_free(cfg);

	setenv("RATE_LIMIT_CHAT_STREAM_MAX", "70", 1);
	setenv("RELGATE_HTTP_LISTEN", "127.0.0.1:8002", 1);
	cfg = load(p, 0);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_int_eq(cfg->rate_limit_chat_stream_max, 70);
	ck_assert_int_eq(cfg->source[KNOB_rate_limit_chat_stream_max],
	    CONFIG_SRC_ENV);
	ck_assert_str_eq(cfg->http_listen, "127.0.0.1:8002");
	ck_assert_int_eq(cfg->source[KNOB_http_listen], CONFIG_SRC_ENV);
	config_free(cfg);

	/* environment lists: JSON array or comma list */
	setenv("RELGATE_HTTP_TRUSTED_PROXIES", "[\"10.1.0.0/16\"]", 1);
	setenv("ALLOWED_ORIGINS", " https://a.example , http://b:3000", 1);
	setenv("RELGATE_ROUTES", "[]", 1);
	setenv("FF_CHAT_GATEWAY_SHADOW", "1", 1);
	cfg = load(NULL, 0);
	ck_assert_msg(cfg != NULL, "%s", errbuf);
	ck_assert_int_eq(cfg->http_trusted_proxies.n, 1);
	ck_assert_str_eq(cfg->http_trusted_proxies.v[0], "10.1.0.0/16");
	ck_assert_int_eq(cfg->http_allowed_origins.n, 2);
	ck_assert_str_eq(cfg->http_allowed_origins.v[0], "https://a.example");
	ck_assert_str_eq(cfg->http_allowed_origins.v[1], "http://b:3000");
	ck_assert_int_eq(json_array_size(cfg->routes), 0);
	ck_assert_int_eq(cfg->ff_chat_gateway_shadow, 1);
	config_free(cfg);
}
END_TEST

START_TEST(test_envdef)
{
	struct config *cfg;
	const char *p;

	setenv("OPENROUTER_API_KEY", "or-envdef", 1);
	cfg = load(NULL, 0);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_str_eq(cfg->provider_primary_api_key, "or-envdef");
	ck_assert_str_eq(cfg->provider_secondary_api_key, "or-envdef");
	config_free(cfg);

	p = write_conf("k.json",
	    "{\"provider\":{\"primary\":{\"api_key\":\"or-file\"}}}");
	cfg = load(p, 0);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_str_eq(cfg->provider_primary_api_key, "or-file");
	ck_assert_int_eq(cfg->source[KNOB_provider_primary_api_key],
	    CONFIG_SRC_FILE);
	ck_assert_str_eq(cfg->provider_secondary_api_key, "or-envdef");
	config_free(cfg);

	setenv("RELGATE_PROVIDER_PRIMARY_API_KEY", "or-relgate", 1);
	cfg = load(p, 0);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_str_eq(cfg->provider_primary_api_key, "or-relgate");
	config_free(cfg);
	cfg = load(NULL, 0);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_str_eq(cfg->provider_primary_api_key, "or-relgate");
	config_free(cfg);

	unsetenv("RELGATE_PROVIDER_PRIMARY_API_KEY");
	unsetenv("OPENROUTER_API_KEY");
	cfg = load(NULL, 0);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_ptr_null(cfg->provider_primary_api_key);
	config_free(cfg);

	setenv("HTTP_ERROR_CODE_HEADER", "x-err", 1);
	cfg = load(NULL, 0);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_str_eq(cfg->http_error_code_header, "x-err");
	config_free(cfg);
}
END_TEST

START_TEST(test_env_errors)
{
	expect_env_fail("RATE_LIMIT_GMAIL_PUSH_MAX", "0",
	    "config: RATE_LIMIT_GMAIL_PUSH_MAX: value 0 out of range "
	    "(allowed 1..1000000) [from environment]",
	    NULL);
	expect_env_fail("RATE_LIMIT_CHAT_STREAM_MAX", "12abc",
	    "RATE_LIMIT_CHAT_STREAM_MAX: expected integer", "\"12abc\"");
	expect_env_fail("RATE_LIMIT_CHAT_STREAM_MAX", " 12", "\" 12\"", NULL);
	expect_env_fail("RATE_LIMIT_CHAT_STREAM_MAX", "12 ", "\"12 \"", NULL);
	expect_env_fail("RATE_LIMIT_CHAT_STREAM_MAX", "", "expected integer",
	    "\"\"");
	expect_env_fail("RATE_LIMIT_CHAT_STREAM_MAX", "0x10", "\"0x10\"",
	    NULL);
	expect_env_fail("RATE_LIMIT_CHAT_STREAM_MAX", "99999999999999999999",
	    "value \"99999999999999999999\" out of range", NULL);
	expect_env_fail("FF_CHAT_GATEWAY_ENABLED", "yes",
	    "FF_CHAT_GATEWAY_ENABLED: expected true|false|1|0", "\"yes\"");
	expect_env_fail("FF_CHAT_GATEWAY_ENABLED", "TRUE", "\"TRUE\"", NULL);
	expect_env_fail("RELGATE_HTTP_LISTEN", "127.0.0.1:70000",
	    "http.listen", "\"127.0.0.1:70000\"");
	expect_env_fail("RELGATE_HTTP_TRUSTED_PROXIES", "10.0.0.0/8,,::1/128",
	    "http.trusted_proxies", "empty item");
	expect_env_fail("RELGATE_HTTP_TRUSTED_PROXIES", "10.0.0.0/8,bad/1",
	    "http.trusted_proxies", "\"bad/1\"");
	expect_env_fail("RELGATE_HTTP_TRUSTED_PROXIES", "[\"10.0.0.0/8\"",
	    "http.trusted_proxies", "expected JSON array");
	expect_env_fail("RELGATE_ROUTES", "{\"a\":1}", "routes",
	    "expected JSON array");
	expect_env_fail("RELGATE_ROUTES", "[", "routes", "\"[\"");
	expect_env_fail("RELIABILITY_TOPOLOGY_MODE", "multi", "\"multi\"",
	    "single_region|active_standby|active_active");
	expect_env_fail("RELGATE_LOG_LEVEL", "loud\nx", "log.level",
	    "\"loud?x\"");
}
END_TEST

START_TEST(test_no_env)
{
	struct config *cfg;

	setenv("RATE_LIMIT_CHAT_STREAM_MAX", "70", 1);
	setenv("RELGATE_HTTP_LISTEN", "127.0.0.1:8002", 1);
	setenv("OPENROUTER_API_KEY", "or-envdef", 1);
	setenv("RATE_LIMIT_GMAIL_PUSH_MAX", "junk", 1);
	cfg = load(NULL, CONFIG_NO_ENV);
	ck_assert_msg(cfg != NULL, "%s", errbuf);
	ck_assert_int_eq(cfg->rate_limit_chat_stream_max, 30);
	ck_assert_str_eq(cfg->http_listen, "127.0.0.1:8080");
	ck_assert_ptr_null(cfg->provider_primary_api_key);
	config_free(cfg);
}
END_TEST

START_TEST(test_redaction)
{
	struct config *cfg;
	json_t *j, *o;
	char *text;
	const char *p;

	p = write_conf("s.json",
	    "{\"backend\":{\"secret\":\"s3cr3t-backend\"},"
	    "\"WHATSAPP_APP_SECRET\":\"s3cr3t-wa\"}");
	setenv("RELGATE_AUTH_JWT_SECRET", "s3cr3t-jwt", 1);
	cfg = load(p, 0);
	ck_assert_msg(cfg != NULL, "%s", errbuf);
	j = config_to_json(cfg, 1);
	text = json_dumps(j, JSON_COMPACT);
	ck_assert_ptr_null(strstr(text, "s3cr3t"));
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(j, "backend"), "secret")),
	    "***");
	ck_assert_str_eq(
	    json_string_value(json_object_get(j, "WHATSAPP_APP_SECRET")),
	    "***");
	o = json_object_get(json_object_get(j, "auth"), "jwt");
	ck_assert_str_eq(json_string_value(json_object_get(o, "secret")),
	    "***");
	ck_assert(json_is_null(json_object_get(j, "OAUTH_STATE_SECRET")));
	ck_assert(json_is_null(json_object_get(j, "SENTRY_DSN")));
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(j, "http"), "listen")),
	    "127.0.0.1:8080");
	free(text);
	json_decref(j);

	j = config_to_json(cfg, 0);
	ck_assert_str_eq(
	    json_string_value(json_object_get(j, "WHATSAPP_APP_SECRET")),
	    "s3cr3t-wa");
	json_decref(j);
	config_free(cfg);

	/* a bad secret is named but never echoed */
	expect_file_fail("{\"OAUTH_STATE_SECRET\":\"\"}", "OAUTH_STATE_SECRET",
	    "value ***", NULL);
	expect_file_fail("{\"backend\":{\"secret\":123456789}}",
	    "backend.secret", "integer ***", NULL);
	ck_assert_ptr_null(strstr(errbuf, "123456789"));
	expect_env_fail("SENTRY_DSN", "s3cr3t-not-a-url", "SENTRY_DSN",
	    "value ***");
	ck_assert_ptr_null(strstr(errbuf, "s3cr3t"));
}
END_TEST

START_TEST(test_write_effective)
{
	struct config *cfg, *back;
	char path[512], name[600];
	json_t *a, *b;
	struct stat st;
	struct dirent *de;
	DIR *d;
	int n = 0;

	setenv("OPENROUTER_API_KEY", "or-key", 1);
	setenv("RELGATE_HTTP_ALLOWED_ORIGINS", "https://a.example", 1);
	setenv("BULKHEAD_SERPER_MAX_CONCURRENT", "3", 1);
	cfg = load(write_conf("in.json",
		       "{\"backend\":{\"secret\":\"bk\"},\"libexec_dir\":\"\","
		       "\"RELIABILITY_REGION_READINESS_ONLY\":false}"),
	    0);
	ck_assert_msg(cfg != NULL, "%s", errbuf);
	snprintf(path, sizeof(path), "%s/effective.json", tmpdir);
	ck_assert_int_eq(config_write_effective(cfg, path), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	/* twice: the rename replaces the old file */
	ck_assert_int_eq(config_write_effective(cfg, path), 0);

	unsetenv("OPENROUTER_API_KEY");
	back = load(path, CONFIG_NO_ENV);
	ck_assert_msg(back != NULL, "%s", errbuf);
	a = config_to_json(cfg, 0);
	b = config_to_json(back, 0);
	ck_assert(json_equal(a, b));
	ck_assert_str_eq(back->provider_primary_api_key, "or-key");
	ck_assert_str_eq(back->backend_secret, "bk");
	ck_assert_int_eq(back->bulkhead_serper_max_concurrent, 3);
	ck_assert_int_eq(back->reliability_region_readiness_only, 0);
	ck_assert_ptr_null(back->oauth_client_secret);
	json_decref(a);
	json_decref(b);
	config_free(back);

	/* no temporary files left behind */
	d = opendir(tmpdir);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	ck_assert_int_eq(n, 2);

	snprintf(name, sizeof(name), "%s/no/such/dir/e.json", tmpdir);
	errno = 0;
	ck_assert_int_eq(config_write_effective(cfg, name), -1);
	ck_assert_int_eq(errno, ENOENT);
	config_free(cfg);
}
END_TEST

static char warned[8][64];
static int nwarned;

static void
record_warn(const char *key)
{
	if (nwarned < 8)
		snprintf(warned[nwarned++], sizeof(warned[0]), "%s", key);
}

START_TEST(test_keep_restart)
{
	struct config *cur, *next;

	cur = load(write_conf("cur.json",
		       "{\"http\":{\"listen\":\"127.0.0.1:8001\"},"
		       "\"RATE_LIMIT_CHAT_STREAM_MAX\":10}"),
	    CONFIG_NO_ENV);
	ck_assert_ptr_nonnull(cur);
	next = load(write_conf("next.json",
			"{\"http\":{\"listen\":\"127.0.0.1:8002\"},"
			"\"state_dir\":\"/srv/other\","
			"\"tool_worker\":{\"count\":4},"
			"\"RATE_LIMIT_CHAT_STREAM_MAX\":20}"),
	    CONFIG_NO_ENV);
	ck_assert_ptr_nonnull(next);
	nwarned = 0;
	config_keep_restart_knobs(next, cur, record_warn);
	ck_assert_int_eq(nwarned, 3);
	ck_assert_str_eq(warned[0], "http.listen");
	ck_assert_str_eq(warned[1], "state_dir");
	ck_assert_str_eq(warned[2], "tool_worker.count");
	ck_assert_str_eq(next->http_listen, "127.0.0.1:8001");
	ck_assert_str_eq(next->state_dir, "/var/lib/relgate");
	ck_assert_int_eq(next->tool_worker_count, 2);
	ck_assert_int_eq(next->source[KNOB_state_dir], CONFIG_SRC_DEFAULT);
	ck_assert_int_eq(next->rate_limit_chat_stream_max, 20);
	config_free(cur);

	/* nothing left to change: no warnings, and next owns its copies */
	nwarned = 0;
	cur = load(NULL, CONFIG_NO_ENV);
	ck_assert_ptr_nonnull(cur);
	config_free(next);
	next = load(NULL, CONFIG_NO_ENV);
	config_keep_restart_knobs(next, cur, record_warn);
	ck_assert_int_eq(nwarned, 0);
	config_free(cur);
	config_free(next);
}
END_TEST

START_TEST(test_help)
{
	char *buf = NULL, *p;
	size_t len = 0, lines = 0;
	FILE *fp;

	fp = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(fp);
	config_help(fp, 0);
	fclose(fp);
	for (p = buf; *p != '\0'; p++)
		lines += *p == '\n';
	ck_assert_int_eq(lines, KNOB_COUNT);
	ck_assert_ptr_nonnull(strstr(buf,
	    "http.listen env=RELGATE_HTTP_LISTEN type=addr "
	    "default=127.0.0.1:8080"));
	ck_assert_ptr_nonnull(strstr(buf, "allowed=1..1000000"));
	free(buf);

	buf = NULL;
	fp = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(fp);
	config_help(fp, 1);
	fclose(fp);
	lines = 0;
	for (p = buf; (p = strstr(p, "\n| `")) != NULL; p++)
		lines++;
	ck_assert_int_eq(lines, KNOB_COUNT);
	ck_assert_ptr_nonnull(strstr(buf, "HS256\\|RS256\\|ES256"));
	free(buf);
}
END_TEST

/* shipped_conf - path of etc/relgate.json in the source tree. */
static const char *
shipped_conf(void)
{
	static char path[1024];
	const char *top = getenv("top_srcdir");
	char *slash;

	if (top != NULL) {
		snprintf(path, sizeof(path), "%s/etc/relgate.json", top);
		return path;
	}
	/* __FILE__ is SRCDIR/tests/config_test.c */
	snprintf(path, sizeof(path), "%s", __FILE__);
	slash = strrchr(path, '/');
	if (slash == NULL)
		return "../etc/relgate.json";
	*slash = '\0';
	slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(path, sizeof(path), "etc/relgate.json");
	else
		snprintf(slash, sizeof(path) - (size_t)(slash - path),
		    "/etc/relgate.json");
	return path;
}

START_TEST(test_shipped_file)
{
	struct config *def, *cfg;
	json_t *a, *b;

	def = load(NULL, CONFIG_NO_ENV);
	ck_assert_ptr_nonnull(def);
	cfg = load(shipped_conf(), CONFIG_NO_ENV);
	ck_assert_msg(cfg != NULL, "%s", errbuf);
	ck_assert_int_eq(cfg->source[KNOB_http_listen], CONFIG_SRC_FILE);
	ck_assert_int_eq(cfg->source[KNOB_routes], CONFIG_SRC_FILE);
	/* the envdef'd knobs stay out of the file, or envdefs would lose */
	ck_assert_int_eq(cfg->source[KNOB_provider_primary_api_key],
	    CONFIG_SRC_DEFAULT);
	ck_assert_int_eq(cfg->source[KNOB_http_allowed_origins],
	    CONFIG_SRC_DEFAULT);
	a = config_to_json(def, 0);
	b = config_to_json(cfg, 0);
	ck_assert_msg(json_equal(a, b), "etc/relgate.json differs from the "
					"built-in defaults");
	json_decref(a);
	json_decref(b);
	config_free(def);
	config_free(cfg);
}
END_TEST

START_TEST(test_resolve_paths)
{
	struct config *cfg;
	char longdir[300];

	cfg = load(write_conf("paths.json", "{\"state_dir\":\"var/state\","
			     "\"run_dir\":\"./var//run\","
			     "\"tls\":{\"ca_file\":\"ca.pem\"},"
			     "\"libexec_dir\":\"/opt/rg\"}"), CONFIG_NO_ENV);
	ck_assert_msg(cfg != NULL, "%s", errbuf);
	ck_assert_int_eq(config_resolve_paths(cfg, "/srv/rg/", errbuf,
			     sizeof(errbuf)),
	    0);
	ck_assert_str_eq(cfg->state_dir, "/srv/rg/var/state");
	ck_assert_str_eq(cfg->run_dir, "/srv/rg/var//run");
	ck_assert_str_eq(cfg->tls_ca_file, "/srv/rg/ca.pem");
	ck_assert_str_eq(cfg->libexec_dir, "/opt/rg");
	ck_assert_ptr_null(cfg->auth_jwt_public_key_file);
	ck_assert_str_eq(cfg->shm_name, "/relgate"); /* not a path knob */
	config_free(cfg);

	/* run_dir allows 80 bytes: a deep directory makes it too long */
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';
	cfg = load(write_conf("run.json", "{\"run_dir\":\"run\"}"),
	    CONFIG_NO_ENV);
	ck_assert_msg(cfg != NULL, "%s", errbuf);
	ck_assert_int_eq(config_resolve_paths(cfg, longdir, errbuf,
			     sizeof(errbuf)),
	    -1);
	ck_assert_ptr_nonnull(strstr(errbuf, "config: run_dir: \"run\" is /"));
	ck_assert_ptr_nonnull(strstr(errbuf, "at most 80"));
	ck_assert_str_eq(cfg->run_dir, "run");
	config_free(cfg);
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_defaults_valid);
	tcase_add_test(tc, test_env_name);
	tcase_add_test(tc, test_file_values);
	tcase_add_test(tc, test_wrong_type);
	tcase_add_test(tc, test_out_of_range);
	tcase_add_test(tc, test_bad_enum);
	tcase_add_test(tc, test_bad_address);
	tcase_add_test(tc, test_bad_cidr);
	tcase_add_test(tc, test_bad_url);
	tcase_add_test(tc, test_unknown_keys);
	tcase_add_test(tc, test_duplicate_and_malformed);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_precedence);
	tcase_add_test(tc, test_envdef);
	tcase_add_test(tc, test_env_errors);
	tcase_add_test(tc, test_no_env);
	tcase_add_test(tc, test_redaction);
	tcase_add_test(tc, test_write_effective);
	tcase_add_test(tc, test_keep_restart);
	tcase_add_test(tc, test_help);
	tcase_add_test(tc, test_shipped_file);
	tcase_add_test(tc, test_resolve_paths);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tl_run(config_suite());
}
