/*
 * rgtool - test and bench helper: produces what a real sender would.
 *   rgtool oauth-state SECRET UID EXP_MS     a signed OAuth state
 *   rgtool wa-sign SECRET < BODY              X-Hub-Signature-256 value
 *   rgtool jwt SECRET SUB EXP_S               an HS256 bearer token
 *   rgtool wa-lines SECRET N PREFIX           N signed WhatsApp bodies,
 *       one per line: "SIGNATURE BODY" (message id PREFIX.I each)
 *   rgtool corrupt-delivery STATE_DIR         overwrite the first row of
 *       the deliveries table with bytes that are not JSON; prints its id
 *   rgtool chat-start RUN_DIR INGRESS INGRESS_PID USER STREAM...
 *       what an authoritative ingress sends admission.0 for each stream
 *   rgtool admit-shadow RUN_DIR USER STREAM...  shadow evaluations
 *   rgtool chat-release RUN_DIR STREAM TICKET   a stream's end
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "gate/b64.h"
#include "gate/crypto.h"
#include "gate/oauthstate.h"
#include "proto/link.h"
#include "store/store.h"

static int
usage(void)
{
	fprintf(stderr, "usage: rgtool oauth-state SECRET UID EXP_MS | "
			"wa-sign SECRET | wa-lines SECRET N PREFIX | jwt SECRET SUB EXP_S | "
			"corrupt-delivery STATE_DIR | chat-start RUN_DIR INGRESS "
			"INGRESS_PID USER STREAM... | admit-shadow RUN_DIR USER "
			"STREAM... | chat-release RUN_DIR STREAM TICKET\n");
	return 2;
}

static void
sign(const char *secret, const void *body, size_t len, char *out)
{
	unsigned char mac[CRYPTO_SHA256_LEN];

	crypto_hmac_sha256(secret, strlen(secret), body, len, mac);
	memcpy(out, "sha256=", 7);
	crypto_hex_encode(mac, sizeof(mac), out + 7, 65);
}

static int
first_key(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, uint64_t expires)
{
	char *out = arg;

	(void)val;
	(void)vlen;
	(void)expires;
	if (klen < 64) {
		memcpy(out, key, klen);
		out[klen] = '\0';
	}
	return 1;
}

/* corrupt_delivery - what a torn or foreign write would leave. */
static int
corrupt_delivery(const char *dir)
{
	static const char junk[] = "{\"id\":\"\xff\xfe not json";
	struct store *st;
	char err[256], id[64] = "";
	int rc;

	if (store_open(&st, dir, 64u << 20, 0, NULL, err, sizeof(err)) !=
	    STORE_OK) {
		fprintf(stderr, "rgtool: %s\n", err);
		return 1;
	}
	store_scan(st, STORE_DELIVERIES, NULL, 0, 0, first_key, id);
	rc = id[0] != '\0' ? store_put(st, STORE_DELIVERIES, id, strlen(id),
				   junk, sizeof(junk) - 1, 0) :
			      STORE_NOTFOUND;
	store_close(st);
	if (rc != STORE_OK) {
		fprintf(stderr, "rgtool: %s\n", store_rc_name(rc));
		return 1;
	}
	printf("%s\n", id);
	return 0;
}

/*
 * to_admission - send admission.0 the message m once per stream of
 * streams[n] (m's stream field set by set), from a client inbox in
 * run_dir; the loop runs half a second so queued sends leave.  0 when
 * every send was taken.
 */
static int
to_admission(const char *run_dir, struct proto_msg *m,
    void (*set)(struct proto_msg *, uint64_t), char **streams, int n)
{
	struct event_base *base = event_base_new();
	struct timeval tv = { 0, 500000 };
	struct link_stats st;
	struct link_ctx *l;
	int rc = 0;

	memset(&st, 0, sizeof(st));
	l = base ? link_open(base, run_dir, ROLE_CLIENT, (unsigned)getpid(),
		       NULL, NULL, &st) :
		   NULL;
	if (l == NULL)
		return 2;
	for (int i = 0; i < n; i++) {
		set(m, strtoull(streams[i], NULL, 10));
		if (link_send(l, ROLE_ADMISSION, 0, m) != LINK_OK)
			rc = 1;
	}
	event_base_loopexit(base, &tv);
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	link_close(l);
	event_base_free(base);
	return rc;
}

static void
set_start(struct proto_msg *m, uint64_t stream)
{
	m->u.chat_start.stream = stream;
}

static void
set_shadow(struct proto_msg *m, uint64_t stream)
{
	m->u.admit_shadow.stream = stream;
}

static void
set_release(struct proto_msg *m, uint64_t stream)
{
	m->u.chat_release.stream = stream;
}

/* chat_msgs - the chat-start, admit-shadow and chat-release commands. */
static int
chat_msgs(int argc, char **argv)
{
	struct proto_msg m;

	memset(&m, 0, sizeof(m));
	if (argc >= 7 && strcmp(argv[1], "chat-start") == 0) {
		m.type = PROTO_T_CHAT_START;
		m.u.chat_start.ingress = (uint8_t)atoi(argv[3]);
		m.u.chat_start.ingress_pid = (uint32_t)atol(argv[4]);
		m.u.chat_start.mode = 2;
		m.u.chat_start.user = proto_str_from(argv[5]);
		m.u.chat_start.thread_id = proto_str_from("t1");
		m.u.chat_start.messages = proto_str_from(
		    "[{\"role\":\"user\",\"content\":\"hi\"}]");
		return to_admission(argv[2], &m, set_start, argv + 6,
		    argc - 6);
	}
	if (argc >= 5 && strcmp(argv[1], "admit-shadow") == 0) {
		m.type = PROTO_T_ADMIT_SHADOW;
		m.u.admit_shadow.user = proto_str_from(argv[3]);
		return to_admission(argv[2], &m, set_shadow, argv + 4,
		    argc - 4);
	}
	if (argc == 5 && strcmp(argv[1], "chat-release") == 0) {
		m.type = PROTO_T_CHAT_RELEASE;
		m.u.chat_release.ticket = strtoull(argv[4], NULL, 10);
		return to_admission(argv[2], &m, set_release, argv + 3, 1);
	}
	return -1;
}

int
main(int argc, char **argv)
{
	int rc;

	char sig[80];

	if (argc >= 5 && strcmp(argv[1], "oauth-state") == 0) {
		char buf[4096];

		if (oauthstate_make(argv[2], argv[3],
			strtoull(argv[4], NULL, 10), buf, sizeof(buf)) < 0)
			return 1;
		printf("%s\n", buf);
		return 0;
	}
	if (argc >= 5 && strcmp(argv[1], "jwt") == 0) {
		char payload[512], head[128], pay[700], mac64[64], msg[900];
		unsigned char mac[CRYPTO_SHA256_LEN];
		static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

		snprintf(payload, sizeof(payload),
		    "{\"sub\":\"%s\",\"exp\":%s}", argv[3], argv[4]);
		b64url_encode(hdr, strlen(hdr), head, sizeof(head));
		b64url_encode(payload, strlen(payload), pay, sizeof(pay));
		snprintf(msg, sizeof(msg), "%s.%s", head, pay);
		crypto_hmac_sha256(argv[2], strlen(argv[2]), msg, strlen(msg),
		    mac);
		b64url_encode(mac, sizeof(mac), mac64, sizeof(mac64));
		printf("%s.%s\n", msg, mac64);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "wa-sign") == 0) {
		static char body[1 << 20];
		size_t n = fread(body, 1, sizeof(body), stdin);

		sign(argv[2], body, n, sig);
		printf("%s\n", sig);
		return 0;
	}
	if (argc >= 5 && strcmp(argv[1], "wa-lines") == 0) {
		long n = atol(argv[3]);

		for (long i = 0; i < n; i++) {
			char body[1024];
			int len = snprintf(body, sizeof(body),
			    "{\"object\":\"whatsapp_business_account\","
			    "\"entry\":[{\"id\":\"waba\",\"changes\":[{"
			    "\"field\":\"messages\",\"value\":{"
			    "\"messaging_product\":\"whatsapp\","
			    "\"messages\":[{\"id\":\"%s.%ld\",\"from\":\"1\","
			    "\"type\":\"text\",\"text\":{\"body\":\"hi\"}}]}}]}"
			    "]}",
			    argv[4], i);

			sign(argv[2], body, (size_t)len, sig);
			printf("%s %s\n", sig, body);
		}
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "corrupt-delivery") == 0)
		return corrupt_delivery(argv[2]);
	if ((rc = chat_msgs(argc, argv)) >= 0)
		return rc;
	return usage();
}
