/*
 * outcall_test - the outbound-call path against a local server (relgate's
 * own http/server on 127.0.0.1, on a port below the kernel's ephemeral
 * range): the bulkhead lease, the circuit, classification, retry with
 * backoff and cancel, each observed in the shm segment.
 */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf/config.h"
#include "gate/outcall.h"
#include "gate/retry.h"
#include "http/client.h"
#include "http/server.h"
#include "shm/bulkhead.h"
#include "shm/circuit.h"
#include "shm/shm.h"
#include "util/util.h"
#include "testlib.h"

#define PROV CB_PROV_SERPER_SEARCH

static char segname[64];
static struct shm_seg seg;
static struct event_base *base;
static struct httpd *srv;
static int lfd;
static char origin[64];
static struct httpc *http;
static struct config *cfg;
static struct outcall_env env;
static unsigned alerts;

/* The server's script: the statuses of the next answers to /seq. */
static int script[8];
static unsigned nscript, served;
static struct httpd_req *stalled; /* /stall: never answered */

static int64_t
srv_head(void *arg, struct httpd_req *req)
{
	(void)arg;
	(void)req;
	return 1 << 20;
}

static void
srv_request(void *arg, struct httpd_req *req)
{
	const char *path = httpd_req_path(req);
	struct httpd_header h[2] = { { "Content-Type", "text/plain" },
		{ "Retry-After", "0" } };
	char body[64];
	int st;

	(void)arg;
	served++;
	if (strcmp(path, "/stall") == 0) {
		stalled = req;
		return;
	}
	if (strcmp(path, "/seq") == 0)
		st = served <= nscript ? script[served - 1] : 200;
	else
		st = atoi(path + 1);
	snprintf(body, sizeof(body), "answer %u status %d", served, st);
	httpd_respond(req, st, h, 2, body, strlen(body));
}

static void
srv_close(void *arg, struct httpd_req *req)
{
	(void)arg;
	if (req == stalled)
		stalled = NULL;
}

static const struct httpd_ops srv_ops = {
	.on_head = srv_head,
	.on_request = srv_request,
	.on_close = srv_close,
};

static void
on_alert(void *arg, unsigned provider, uint32_t max)
{
	(void)arg;
	ck_assert_uint_eq(provider, PROV);
	ck_assert_uint_eq(max, 1);
	alerts++;
}

/* free_port - bind a loopback port in 20000..32767 (not one the kernel
 * hands out); returns the socket, or -1. */
static int
free_port(unsigned *port)
{
	for (int i = 0; i < 200; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET,
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		*port = 20000 + (unsigned)(retry_rand_os(NULL) % 12768);
		sa.sin_port = htons((uint16_t)*port);
		if (fd >= 0 &&
		    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
	}
	return -1;
}

static void
setup(void)
{
	const struct shm_sizes sizes = { .ratelimit_slots = 64 };
	char err[256], hp[32];
	unsigned port = 0;

	tl_segname(segname, sizeof(segname), "oc");
	shm_remove(segname);
	ck_assert_msg(shm_create(&seg, segname, &sizes, err, sizeof(err)) ==
		0,
	    "%s", err);
	cb_area_init(&seg);
	bh_area_init(&seg);
	cfg = config_load(NULL, CONFIG_NO_ENV, err, sizeof(err));
	ck_assert_msg(cfg != NULL, "%s", err);
	cfg->circuit_serper_threshold = 2;
	cfg->circuit_serper_cooldown_ms = 60000;
	cfg->bulkhead_serper_max_concurrent = 1;
	cfg->bulkhead_serper_lease_ttl_ms = 60000;
	base = event_base_new();
	for (int i = 0; i < 50; i++) {
		int fd = free_port(&port);

		ck_assert_int_ge(fd, 0);
		close(fd);
		snprintf(hp, sizeof(hp), "127.0.0.1:%u", port);
		lfd = httpd_listen(hp, 0, err, sizeof(err));
		if (lfd >= 0)
			break;
	}
	ck_assert_msg(lfd >= 0, "%s", err);
	snprintf(origin, sizeof(origin), "http://127.0.0.1:%u", port);
	srv = httpd_new(base, lfd, &srv_ops, NULL, NULL);
	http = httpc_new(base, &(struct httpc_opts){ .no_system_ca = 1 });
	env = (struct outcall_env){ .base = base,
		.shm = &seg,
		.http = http,
		.cfg = &cfg,
		.alert = on_alert };
	nscript = served = alerts = 0;
	stalled = NULL;
}

static void
teardown(void)
{
	httpc_free(http);
	httpd_free(srv);
	close(lfd);
	event_base_free(base);
	config_free(cfg);
	shm_detach(&seg);
	shm_remove(segname);
}

/* What one call reported. */
struct seen {
	int done, heads, status, head_status;
	enum outcall_verdict verdict;
	enum cb_error kind;
	uint32_t attempts;
	char body[128];
	size_t streamed;
};

static int
seen_head(void *arg, const struct httpc_resp *resp)
{
	struct seen *s = arg;

	s->heads++;
	s->head_status = httpc_resp_status(resp);
	return 0;
}

static void
seen_data(void *arg, const void *data, size_t len)
{
	struct seen *s = arg;

	(void)data;
	s->streamed += len;
}

static void
seen_done(void *arg, const struct outcall_result *res)
{
	struct seen *s = arg;

	s->done++;
	s->verdict = res->verdict;
	s->status = res->status;
	s->kind = res->kind;
	s->attempts = res->attempts;
	if (res->body != NULL)
		strlcpy_rg(s->body, res->body, sizeof(s->body));
	/* the lease is back before the caller hears of the end */
	ck_assert_uint_eq(bh_inflight(&seg, PROV, now_ms()), 0);
}

static const struct outcall_cb collect_cb = { .on_head = seen_head,
	.on_done = seen_done };
static const struct outcall_cb stream_cb = { .on_head = seen_head,
	.on_data = seen_data,
	.on_done = seen_done };

/* run - the loop until s->done or 5 s. */
static void
run(struct seen *s)
{
	uint64_t end = mono_ms() + 5000;

	while (!s->done && mono_ms() < end)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	ck_assert_msg(s->done, "the call did not end within 5 s");
}

static void
spin(unsigned ms)
{
	uint64_t end = mono_ms() + ms;

	while (mono_ms() < end)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static struct outcall *
start(const char *path, const struct outcall_policy *pol,
    const struct outcall_cb *cb, struct seen *s, struct outcall_result *no)
{
	char url[128];

	snprintf(url, sizeof(url), "%s%s", origin, path);
	memset(s, 0, sizeof(*s));
	return outcall_start(&env, PROV,
	    &(struct httpc_req){ .method = "GET",
		.url = url,
		.connect_ms = 1000,
		.first_byte_ms = 300,
		.idle_ms = 300,
		.total_ms = 2000 },
	    pol, cb, s, NULL, no);
}

static uint64_t
circuit(unsigned counter)
{
	struct cb_status st;

	ck_assert_int_eq(cb_status(&seg, PROV, &st), 0);
	return st.counters[counter];
}

static unsigned
circuit_state(void)
{
	struct cb_status st;

	ck_assert_int_eq(cb_status(&seg, PROV, &st), 0);
	return st.state;
}

START_TEST(answer_collected_and_lease_held_while_in_flight)
{
	struct outcall_policy pol = { .collect_max = 1024 };
	struct outcall_result no;
	struct seen s, s2;
	struct outcall *oc = start("/200", &pol, &collect_cb, &s, &no);

	ck_assert_ptr_nonnull(oc);
	ck_assert_uint_eq(bh_inflight(&seg, PROV, now_ms()), 1);
	/* max_concurrent 1: a second call is refused before it is sent,
	 * and the warning goes out once */
	ck_assert_ptr_null(start("/200", &pol, &collect_cb, &s2, &no));
	ck_assert_int_eq(no.verdict, OUTCALL_SATURATED);
	ck_assert_ptr_null(start("/200", &pol, &collect_cb, &s2, &no));
	ck_assert_uint_eq(alerts, 1);
	run(&s);
	ck_assert_int_eq(s.verdict, OUTCALL_ANSWERED);
	ck_assert_int_eq(s.status, 200);
	ck_assert_uint_eq(s.attempts, 1);
	ck_assert_str_eq(s.body, "answer 1 status 200");
	ck_assert_uint_eq(served, 1);
	ck_assert_uint_eq(circuit(CB_C_SUCCESSES), 1);
	ck_assert_uint_eq(bh_count(&seg, PROV, BH_C_RELEASED), 1);
}
END_TEST

START_TEST(classification_and_circuit_opens)
{
	struct outcall_policy pol = { .collect_max = 1024 };
	struct outcall_result no;
	struct seen s;

	/* 404: neutral, the circuit stays closed */
	ck_assert_ptr_nonnull(start("/404", &pol, &collect_cb, &s, &no));
	run(&s);
	ck_assert_int_eq(s.verdict, OUTCALL_ANSWERED);
	ck_assert_int_eq(s.status, 404);
	ck_assert_uint_eq(circuit(CB_C_NEUTRALS), 1);
	/* two 503s (threshold 2, no retry): failures, then open */
	for (int i = 0; i < 2; i++) {
		ck_assert_ptr_nonnull(start("/503", &pol, &collect_cb, &s,
		    &no));
		run(&s);
		ck_assert_int_eq(s.status, 503);
		ck_assert_int_eq(s.heads, 1);
	}
	ck_assert_uint_eq(circuit(CB_C_FAILURES), 2);
	ck_assert_uint_eq(circuit_state(), CB_ST_OPEN);
	/* open: refused with the cooldown left, nothing sent, no lease */
	ck_assert_ptr_null(start("/200", &pol, &collect_cb, &s, &no));
	ck_assert_int_eq(no.verdict, OUTCALL_CIRCUIT_OPEN);
	ck_assert_uint_gt(no.retry_ms, 50000);
	ck_assert_uint_eq(served, 3);
	ck_assert_uint_eq(bh_inflight(&seg, PROV, now_ms()), 0);
}
END_TEST

START_TEST(transport_failures_are_classified)
{
	struct outcall_policy pol = { .collect_max = 1024 };
	struct outcall_result no;
	unsigned port;
	char url[128];
	struct seen s;
	int fd;

	cfg->circuit_serper_threshold = 5;
	/* connection refused: a port bound (not listening) and closed */
	fd = free_port(&port);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/x", port);
	memset(&s, 0, sizeof(s));
	ck_assert_ptr_nonnull(outcall_start(&env, PROV,
	    &(struct httpc_req){ .url = url, .connect_ms = 1000 }, &pol,
	    &collect_cb, &s, NULL, &no));
	run(&s);
	ck_assert_int_eq(s.verdict, OUTCALL_FAILED);
	ck_assert_int_eq(s.kind, CB_ERR_CONNECT);
	ck_assert_int_eq(s.heads, 0);
	/* no first byte in time: a timeout */
	ck_assert_ptr_nonnull(start("/stall", &pol, &collect_cb, &s, &no));
	run(&s);
	ck_assert_int_eq(s.verdict, OUTCALL_FAILED);
	ck_assert_int_eq(s.kind, CB_ERR_TIMEOUT);
	ck_assert_uint_eq(circuit(CB_C_FAILURES), 2);
	/* a URL that cannot be requested: refused, neutral, lease back */
	memset(&s, 0, sizeof(s));
	ck_assert_ptr_null(outcall_start(&env, PROV,
	    &(struct httpc_req){ .url = "ftp://x/" }, &pol, &collect_cb, &s,
	    NULL, &no));
	ck_assert_int_eq(no.verdict, OUTCALL_INVALID);
	ck_assert_uint_eq(circuit(CB_C_NEUTRALS), 1);
	ck_assert_uint_eq(bh_inflight(&seg, PROV, now_ms()), 0);
}
END_TEST

START_TEST(retry_until_an_answer_is_kept)
{
	struct outcall_policy pol = { .max_attempts = 3,
		.base_ms = 20,
		.cap_ms = 40,
		.idempotent = 1,
		.collect_max = 1024 };
	struct outcall_result no;
	struct seen s;

	cfg->circuit_serper_threshold = 5;
	script[0] = 503;
	script[1] = 429;
	script[2] = 200;
	nscript = 3;
	ck_assert_ptr_nonnull(start("/seq", &pol, &collect_cb, &s, &no));
	run(&s);
	ck_assert_int_eq(s.verdict, OUTCALL_ANSWERED);
	ck_assert_int_eq(s.status, 200);
	ck_assert_uint_eq(s.attempts, 3);
	/* the retried answers were never shown to the caller */
	ck_assert_int_eq(s.heads, 1);
	ck_assert_int_eq(s.head_status, 200);
	ck_assert_str_eq(s.body, "answer 3 status 200");
	ck_assert_uint_eq(circuit(CB_C_FAILURES), 2);
	ck_assert_uint_eq(circuit(CB_C_SUCCESSES), 1);
}
END_TEST

START_TEST(no_retry_when_not_idempotent_or_exhausted)
{
	struct outcall_policy pol = { .max_attempts = 3,
		.base_ms = 20,
		.cap_ms = 40,
		.collect_max = 1024 };
	struct outcall_result no;
	struct seen s;

	cfg->circuit_serper_threshold = 10;
	/* not idempotent: the 503 reached the server, so it stands */
	ck_assert_ptr_nonnull(start("/503", &pol, &collect_cb, &s, &no));
	run(&s);
	ck_assert_int_eq(s.status, 503);
	ck_assert_uint_eq(s.attempts, 1);
	ck_assert_uint_eq(served, 1);
	/* idempotent but always 503: max_attempts, then the last answer */
	pol.idempotent = 1;
	ck_assert_ptr_nonnull(start("/503", &pol, &collect_cb, &s, &no));
	run(&s);
	ck_assert_int_eq(s.verdict, OUTCALL_ANSWERED);
	ck_assert_int_eq(s.status, 503);
	ck_assert_uint_eq(s.attempts, 3);
	ck_assert_uint_eq(served, 4);
}
END_TEST

START_TEST(no_retry_once_the_caller_got_bytes)
{
	struct outcall_policy pol = { .max_attempts = 3,
		.base_ms = 20,
		.cap_ms = 40,
		.idempotent = 1 };
	struct outcall_result no;
	struct seen s;

	/* streamed: the answer's bytes went to the caller as they came */
	ck_assert_ptr_nonnull(start("/200", &pol, &stream_cb, &s, &no));
	run(&s);
	ck_assert_int_eq(s.status, 200);
	ck_assert_uint_eq(s.streamed, strlen("answer 1 status 200"));
	ck_assert_str_eq(s.body, "");
	ck_assert_uint_eq(s.attempts, 1);
}
END_TEST

START_TEST(retry_stops_when_the_circuit_opens)
{
	struct outcall_policy pol = { .max_attempts = 5,
		.base_ms = 20,
		.cap_ms = 40,
		.idempotent = 1,
		.collect_max = 1024 };
	struct outcall_result no;
	struct seen s;

	/* threshold 2: the second 503 opens it; the third attempt is not
	 * sent */
	ck_assert_ptr_nonnull(start("/503", &pol, &collect_cb, &s, &no));
	run(&s);
	ck_assert_int_eq(s.verdict, OUTCALL_CIRCUIT_OPEN);
	ck_assert_uint_eq(s.attempts, 2);
	ck_assert_uint_eq(served, 2);
	ck_assert_uint_eq(circuit_state(), CB_ST_OPEN);
}
END_TEST

START_TEST(cancel_gives_everything_back)
{
	struct outcall_policy pol = { .collect_max = 1024 };
	struct outcall_result no;
	struct outcall *oc;
	struct seen s;

	oc = start("/stall", &pol, &collect_cb, &s, &no);
	ck_assert_ptr_nonnull(oc);
	while (stalled == NULL && served == 0)
		event_base_loop(base, EVLOOP_ONCE);
	ck_assert_uint_eq(bh_inflight(&seg, PROV, now_ms()), 1);
	outcall_cancel(oc);
	ck_assert_uint_eq(bh_inflight(&seg, PROV, now_ms()), 0);
	ck_assert_uint_eq(circuit(CB_C_NEUTRALS), 1);
	ck_assert_uint_eq(circuit(CB_C_FAILURES), 0);
	spin(100);
	ck_assert_int_eq(s.done, 0); /* no callback after a cancel */
	/* cancel during the backoff before a retry */
	script[0] = 503;
	nscript = 1;
	served = 0;
	pol = (struct outcall_policy){ .max_attempts = 2,
		.base_ms = 5000,
		.cap_ms = 5000,
		.idempotent = 1 };
	oc = start("/seq", &pol, &collect_cb, &s, &no);
	while (served == 0)
		event_base_loop(base, EVLOOP_ONCE);
	spin(50);
	outcall_cancel(oc);
	ck_assert_uint_eq(bh_inflight(&seg, PROV, now_ms()), 0);
	spin(50);
	ck_assert_int_eq(s.done, 0);
}
END_TEST

START_TEST(a_lease_taken_first_is_used_and_given_back)
{
	struct outcall_policy pol = { .collect_max = 1024 };
	struct outcall_result no;
	struct bh_lease l;
	uint64_t ra;
	char url[128];
	struct seen s;

	ck_assert_int_eq(outcall_lease(&env, PROV, &l, &ra), BH_ACQUIRED);
	ck_assert_uint_eq(bh_inflight(&seg, PROV, now_ms()), 1);
	snprintf(url, sizeof(url), "%s/200", origin);
	memset(&s, 0, sizeof(s));
	/* with the one place taken, a call with the lease still goes */
	ck_assert_ptr_nonnull(outcall_start(&env, PROV,
	    &(struct httpc_req){ .url = url }, &pol, &collect_cb, &s, &l,
	    &no));
	ck_assert_uint_eq(l.id, 0); /* taken over */
	run(&s);
	ck_assert_int_eq(s.status, 200);
	ck_assert_uint_eq(bh_count(&seg, PROV, BH_C_ACQUIRED), 1);
	ck_assert_uint_eq(bh_count(&seg, PROV, BH_C_RELEASED), 1);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("outcall");
	TCase *tc = tcase_create("outcall");

	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, answer_collected_and_lease_held_while_in_flight);
	tcase_add_test(tc, classification_and_circuit_opens);
	tcase_add_test(tc, transport_failures_are_classified);
	tcase_add_test(tc, retry_until_an_answer_is_kept);
	tcase_add_test(tc, no_retry_when_not_idempotent_or_exhausted);
	tcase_add_test(tc, no_retry_once_the_caller_got_bytes);
	tcase_add_test(tc, retry_stops_when_the_circuit_opens);
	tcase_add_test(tc, cancel_gives_everything_back);
	tcase_add_test(tc, a_lease_taken_first_is_used_and_given_back);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tl_run(suite());
}
