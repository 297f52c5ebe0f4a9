/*
 * http_client_test - http/client.c and http/respparse.c on loopback only.
 *
 * Servers: relgate's own httpd on the test's event loop (plain answers,
 * keep-alive), and a scripted server in a thread (blocking sockets with
 * short receive timeouts; plain or TLS through mbedTLS) that plays a list
 * of steps: odd responses, chunked framing split across many writes,
 * stalls, drips, resets.  The test CA, a "localhost" server certificate
 * and a second, unknown CA are made at start with mbedTLS's x509write API
 * and written to a temporary directory together with a hosts file
 * (localhost and wronghost.test -> 127.0.0.1) that the client's own evdns
 * base reads, so no name ever leaves the machine; an E_DNS case uses a
 * scripted UDP resolver on 127.0.0.1.  Every wait is bounded (WAIT_MS)
 * and no assertion is about elapsed time.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "http/client.h"
#include "http/respparse.h"
#include "http/server.h"
#include "testlib.h"
#include "util/util.h"

#define WAIT_MS 8000

/* --- certificates ----------------------------------------------------- */

static char tmpdir[128];
static char ca_path[256], other_ca_path[256], hosts_path[256];
static unsigned char ca_pem[4096], other_ca_pem[4096];
static unsigned char srv_crt_pem[4096], srv_key_pem[4096];
static unsigned char bad_crt_pem[4096], bad_key_pem[4096];

static mbedtls_entropy_context g_entropy;
static mbedtls_ctr_drbg_context g_drbg;

static void
gen_key(mbedtls_pk_context *pk)
{
	mbedtls_pk_init(pk);
	if (mbedtls_pk_setup(
	        pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
	    mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk),
	        mbedtls_ctr_drbg_random, &g_drbg) != 0)
		abort();
}

/* make_cert - subject cert signed by issuer key (self-signed if same). */
static void
make_cert(mbedtls_pk_context *subj, mbedtls_pk_context *iss,
    const char *subj_name, const char *iss_name, int is_ca, int serial,
    unsigned char *out, size_t outlen)
{
	mbedtls_x509write_cert w;
	mbedtls_mpi sn;

	mbedtls_x509write_crt_init(&w);
	mbedtls_mpi_init(&sn);
	mbedtls_mpi_lset(&sn, serial);
	mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&w, subj);
	mbedtls_x509write_crt_set_issuer_key(&w, iss);
	if (mbedtls_x509write_crt_set_subject_name(&w, subj_name) != 0 ||
	    mbedtls_x509write_crt_set_issuer_name(&w, iss_name) != 0 ||
	    mbedtls_x509write_crt_set_serial(&w, &sn) != 0 ||
	    mbedtls_x509write_crt_set_validity(
	        &w, "20200101000000", "20491231235959") != 0 ||
	    mbedtls_x509write_crt_set_basic_constraints(&w, is_ca, -1) != 0 ||
	    mbedtls_x509write_crt_set_key_usage(&w,
	        is_ca ? MBEDTLS_X509_KU_KEY_CERT_SIGN
	              : MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0 ||
	    mbedtls_x509write_crt_pem(
	        &w, out, outlen, mbedtls_ctr_drbg_random, &g_drbg) != 0)
		abort();
	mbedtls_mpi_free(&sn);
	mbedtls_x509write_crt_free(&w);
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		abort();
}

static void
make_pki(void)
{
	mbedtls_pk_context ca, other, srv, bad;
	static const char hosts[] = "127.0.0.1 localhost wronghost.test\n";

	mbedtls_entropy_init(&g_entropy);
	mbedtls_ctr_drbg_init(&g_drbg);
	if (mbedtls_ctr_drbg_seed(&g_drbg, mbedtls_entropy_func, &g_entropy,
	        (const unsigned char *)"httpc-test", 10) != 0)
		abort();
	gen_key(&ca);
	gen_key(&other);
	gen_key(&srv);
	gen_key(&bad);
	make_cert(&ca, &ca, "CN=relgate test CA", "CN=relgate test CA", 1, 1,
	    ca_pem, sizeof(ca_pem));
	make_cert(&other, &other, "CN=unknown CA", "CN=unknown CA", 1, 2,
	    other_ca_pem, sizeof(other_ca_pem));
	make_cert(&srv, &ca, "CN=localhost", "CN=relgate test CA", 0, 3,
	    srv_crt_pem, sizeof(srv_crt_pem));
	make_cert(&bad, &other, "CN=localhost", "CN=unknown CA", 0, 4,
	    bad_crt_pem, sizeof(bad_crt_pem));
	if (mbedtls_pk_write_key_pem(&srv, srv_key_pem, sizeof(srv_key_pem)) !=
	        0 ||
	    mbedtls_pk_write_key_pem(&bad, bad_key_pem, sizeof(bad_key_pem)) !=
	        0)
		abort();
	mbedtls_pk_free(&ca);
	mbedtls_pk_free(&other);
	mbedtls_pk_free(&srv);
	mbedtls_pk_free(&bad);

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/httpc_test.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		abort();
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tmpdir);
	snprintf(other_ca_path, sizeof(other_ca_path), "%s/other.pem", tmpdir);
	snprintf(hosts_path, sizeof(hosts_path), "%s/hosts", tmpdir);
	write_file(ca_path, ca_pem, strlen((char *)ca_pem));
	write_file(other_ca_path, other_ca_pem, strlen((char *)other_ca_pem));
	write_file(hosts_path, hosts, strlen(hosts));
}

static void
remove_pki(void)
{
	unlink(ca_path);
	unlink(other_ca_path);
	unlink(hosts_path);
	rmdir(tmpdir);
	mbedtls_ctr_drbg_free(&g_drbg);
	mbedtls_entropy_free(&g_entropy);
}

/* --- scripted server (thread) ----------------------------------------- */

enum op {
	OP_END,
	OP_ACCEPT,   /* accept the next connection (closes the current) */
	OP_TLS,      /* server handshake on it */
	OP_READREQ,  /* read one request (head + Content-Length body) */
	OP_SEND,     /* send data */
	OP_DRIP,     /* send data one byte per ms milliseconds */
	OP_SLEEP,    /* ms */
	OP_WAITFLAG, /* until the client side sets flag */
	OP_CLOSE,    /* close the connection */
	OP_RESET,    /* close with RST (SO_LINGER 0) */
	OP_HOLD,     /* read and discard until EOF (eof_seen) or stop */
};

struct step {
	enum op op;
	const char *data;
	int ms;
};

struct srv {
	int lfd, port, fd;
	const struct step *script;
	pthread_t th;
	atomic_int stop, flag, eof_seen, nreq, naccept, done;
	int tls_on;
	char lastreq[8192];
	/* TLS */
	int use_tls_cert; /* 1: good cert, 2: cert of the unknown CA */
	mbedtls_ssl_config conf;
	mbedtls_x509_crt crt;
	mbedtls_pk_context key;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_entropy_context entropy;
	mbedtls_ssl_context ssl;
};

static int
srv_stopped(struct srv *s)
{
	return atomic_load(&s->stop);
}

/* srv_recv - >0, 0 EOF, -1 nothing yet (timeout), -2 error */
static int
srv_recv(struct srv *s, char *buf, size_t len)
{
	ssize_t n;
	int r;

	if (s->tls_on) {
		r = mbedtls_ssl_read(&s->ssl, (unsigned char *)buf, len);
		if (r > 0)
			return r;
		if (r == 0 || r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
			return 0;
		if (r == MBEDTLS_ERR_SSL_WANT_READ ||
		    r == MBEDTLS_ERR_SSL_WANT_WRITE ||
		    r == MBEDTLS_ERR_SSL_TIMEOUT)
			return -1;
		return -2;
	}
	n = recv(s->fd, buf, len, 0);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return -1;
	return -2;
}

static void
srv_send(struct srv *s, const char *data, size_t len)
{
	size_t off = 0;
	int r;

	while (off < len && !srv_stopped(s)) {
		if (s->tls_on) {
			r = mbedtls_ssl_write(&s->ssl,
			    (const unsigned char *)data + off, len - off);
			if (r == MBEDTLS_ERR_SSL_WANT_WRITE ||
			    r == MBEDTLS_ERR_SSL_WANT_READ)
				continue;
			if (r < 0)
				return;
		} else {
			r = (int)send(
			    s->fd, data + off, len - off, MSG_NOSIGNAL);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r < 0)
				return;
		}
		off += (size_t)r;
	}
}

static void
srv_sleep(struct srv *s, int ms)
{
	while (ms > 0 && !srv_stopped(s)) {
		usleep((ms > 5 ? 5 : ms) * 1000);
		ms -= 5;
	}
}

static void
srv_close_conn(struct srv *s)
{
	if (s->fd < 0)
		return;
	if (s->tls_on)
		mbedtls_ssl_free(&s->ssl);
	s->tls_on = 0;
	close(s->fd);
	s->fd = -1;
}

static void
srv_accept(struct srv *s)
{
	struct pollfd pfd = { .fd = s->lfd, .events = POLLIN };
	struct timeval tv = { 0, 20000 };
	int one = 1;

	srv_close_conn(s);
	while (!srv_stopped(s)) {
		if (poll(&pfd, 1, 20) == 1) {
			s->fd = accept(s->lfd, NULL, NULL);
			if (s->fd >= 0)
				break;
		}
	}
	if (s->fd < 0)
		return;
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	atomic_fetch_add(&s->naccept, 1);
}

/* srv_bio_* - blocking socket with a short SO_RCVTIMEO: a timeout is
 * WANT_READ (mbedtls_net_recv would call it a failure on a blocking
 * socket, which breaks handshakes with a slow client, e.g. valgrind) */
static int
srv_bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct srv *s = ctx;
	ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL);

	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int
srv_bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct srv *s = ctx;
	ssize_t n = recv(s->fd, buf, len, 0);

	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return MBEDTLS_ERR_SSL_WANT_READ;
	return MBEDTLS_ERR_NET_RECV_FAILED;
}

static void
srv_tls(struct srv *s)
{
	int r;

	mbedtls_ssl_init(&s->ssl);
	if (mbedtls_ssl_setup(&s->ssl, &s->conf) != 0)
		abort();
	mbedtls_ssl_set_bio(&s->ssl, s, srv_bio_send, srv_bio_recv, NULL);
	s->tls_on = 1;
	do
		r = mbedtls_ssl_handshake(&s->ssl);
	while ((r == MBEDTLS_ERR_SSL_WANT_READ ||
	           r == MBEDTLS_ERR_SSL_WANT_WRITE) &&
	    !srv_stopped(s));
	if (r != 0) /* the client refused us: nothing more to do here */
		srv_close_conn(s);
}

static void
srv_readreq(struct srv *s)
{
	size_t len = 0, need = 0;
	char *e, *cl;
	int n;

	s->lastreq[0] = '\0';
	while (!srv_stopped(s) && s->fd >= 0 && len < sizeof(s->lastreq) - 1) {
		n = srv_recv(
		    s, s->lastreq + len, sizeof(s->lastreq) - 1 - len);
		if (n == -1)
			continue;
		if (n <= 0)
			return;
		len += (size_t)n;
		s->lastreq[len] = '\0';
		if ((e = strstr(s->lastreq, "\r\n\r\n")) == NULL)
			continue;
		if (need == 0) {
			need = (size_t)(e + 4 - s->lastreq);
			cl = strcasestr(s->lastreq, "\r\ncontent-length:");
			if (cl != NULL && cl < e)
				need += strtoul(cl + 17, NULL, 10);
		}
		if (len >= need) {
			atomic_fetch_add(&s->nreq, 1);
			return;
		}
	}
}

static void
srv_hold(struct srv *s)
{
	char buf[4096];
	int n;

	while (!srv_stopped(s) && s->fd >= 0) {
		n = srv_recv(s, buf, sizeof(buf));
		if (n == 0 || n == -2) {
			atomic_store(&s->eof_seen, 1);
			return;
		}
	}
}

static void *
srv_main(void *arg)
{
	struct srv *s = arg;
	const struct step *st;
	struct linger lg = { 1, 0 };
	int i;

	for (st = s->script; st->op != OP_END && !srv_stopped(s); st++) {
		switch (st->op) {
		case OP_ACCEPT:
			srv_accept(s);
			break;
		case OP_TLS:
			srv_tls(s);
			break;
		case OP_READREQ:
			srv_readreq(s);
			break;
		case OP_SEND:
			srv_send(s, st->data, strlen(st->data));
			break;
		case OP_DRIP:
			for (i = 0; st->data[i] != '\0' && !srv_stopped(s);
			     i++) {
				srv_send(s, st->data + i, 1);
				srv_sleep(s, st->ms);
			}
			break;
		case OP_SLEEP:
			srv_sleep(s, st->ms);
			break;
		case OP_WAITFLAG:
			while (!atomic_load(&s->flag) && !srv_stopped(s))
				usleep(1000);
			break;
		case OP_CLOSE:
			srv_close_conn(s);
			break;
		case OP_RESET:
			if (s->fd >= 0)
				setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg,
				    sizeof(lg));
			srv_close_conn(s);
			break;
		case OP_HOLD:
			srv_hold(s);
			break;
		default:
			break;
		}
	}
	atomic_store(&s->done, 1);
	while (!srv_stopped(s))
		usleep(2000);
	srv_close_conn(s);
	return NULL;
}

static int
listen_any(int backlog, int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, backlog), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* srv_start - run script; cert: 0 plain only, 1 good, 2 unknown CA. */
static struct srv *
srv_start(const struct step *script, int cert)
{
	struct srv *s = xcalloc(1, sizeof(*s));
	const unsigned char *crt = cert == 2 ? bad_crt_pem : srv_crt_pem;
	const unsigned char *key = cert == 2 ? bad_key_pem : srv_key_pem;

	s->fd = -1;
	s->script = script;
	s->use_tls_cert = cert;
	s->lfd = listen_any(16, &s->port);
	if (cert != 0) {
		mbedtls_ssl_config_init(&s->conf);
		mbedtls_x509_crt_init(&s->crt);
		mbedtls_pk_init(&s->key);
		mbedtls_entropy_init(&s->entropy);
		mbedtls_ctr_drbg_init(&s->drbg);
		ck_assert_int_eq(
		    mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func,
		        &s->entropy, (const unsigned char *)"srv", 3),
		    0);
		ck_assert_int_eq(mbedtls_x509_crt_parse(&s->crt, crt,
		                     strlen((const char *)crt) + 1),
		    0);
		ck_assert_int_eq(mbedtls_pk_parse_key(&s->key, key,
		                     strlen((const char *)key) + 1, NULL, 0),
		    0);
		ck_assert_int_eq(
		    mbedtls_ssl_config_defaults(&s->conf,
		        MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
		        MBEDTLS_SSL_PRESET_DEFAULT),
		    0);
		mbedtls_ssl_conf_rng(
		    &s->conf, mbedtls_ctr_drbg_random, &s->drbg);
		ck_assert_int_eq(
		    mbedtls_ssl_conf_own_cert(&s->conf, &s->crt, &s->key), 0);
	}
	ck_assert_int_eq(pthread_create(&s->th, NULL, srv_main, s), 0);
	return s;
}

static void
srv_free(struct srv *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->th, NULL);
	close(s->lfd);
	if (s->use_tls_cert) {
		mbedtls_ssl_config_free(&s->conf);
		mbedtls_x509_crt_free(&s->crt);
		mbedtls_pk_free(&s->key);
		mbedtls_ctr_drbg_free(&s->drbg);
		mbedtls_entropy_free(&s->entropy);
	}
	free(s);
}

/* --- the client side -------------------------------------------------- */

struct rec {
	int done, nhead, ndata;
	enum httpc_rc rc;
	int status, reused;
	uint32_t flags;
	uint64_t body_bytes;
	char detail[512];
	char body[65536];
	size_t blen;
	const char *hdr_name; /* copied from the head into hdr */
	char hdr[128];
	int head_ret;       /* on_head returns this */
	int cancel_at_data; /* httpc_cancel at this on_data call */
	struct httpc_call *call;
	atomic_int *flag; /* set once body holds flag_text */
	const char *flag_text;
	struct rec *chain; /* on_done: start this one (same URL) */
	const char *chain_url;
};

static struct event_base *B;
static struct evdns_base *D;
static struct httpc *C;
static struct httpc_stats S;

static int
on_head(void *arg, const struct httpc_resp *resp)
{
	struct rec *r = arg;
	const char *v;

	r->nhead++;
	r->status = httpc_resp_status(resp);
	if (r->hdr_name != NULL &&
	    (v = httpc_resp_header(resp, r->hdr_name)) != NULL)
		snprintf(r->hdr, sizeof(r->hdr), "%s", v);
	return r->head_ret;
}

static void
on_data(void *arg, const void *data, size_t len)
{
	struct rec *r = arg;

	ck_assert_uint_gt(len, 0);
	ck_assert_uint_lt(r->blen + len, sizeof(r->body));
	memcpy(r->body + r->blen, data, len);
	r->blen += len;
	r->body[r->blen] = '\0';
	r->ndata++;
	if (r->flag != NULL && strstr(r->body, r->flag_text) != NULL)
		atomic_store(r->flag, 1);
	if (r->cancel_at_data == r->ndata)
		httpc_cancel(r->call);
}

static struct httpc_call *go(struct rec *r, const char *url);

static void
on_done(void *arg, const struct httpc_result *res)
{
	struct rec *r = arg;

	r->done++;
	r->rc = res->rc;
	r->status = res->status;
	r->flags = res->tls_verify_flags;
	r->body_bytes = res->body_bytes;
	r->reused = res->reused;
	snprintf(r->detail, sizeof(r->detail), "%s", res->detail);
	if (r->chain != NULL) {
		/* a call from inside on_done may reuse this connection */
		ck_assert_ptr_nonnull(go(r->chain, r->chain_url));
	}
}

static const struct httpc_cb CB = { on_head, on_data, on_done };

static struct httpc_req REQ; /* template for go() */

static struct httpc_call *
go(struct rec *r, const char *url)
{
	struct httpc_req q = REQ;

	q.url = url;
	r->call = httpc_request(C, &q, &CB, r);
	return r->call;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* run_until - run the loop until pred(arg) or WAIT_MS; returns pred. */
static int
run_until(int (*pred)(void *), void *arg)
{
	struct event *tick = event_new(B, -1, EV_PERSIST, tick_cb, NULL);
	struct timeval tv = { 0, 10000 };
	uint64_t end = mono_ms() + WAIT_MS;

	event_add(tick, &tv);
	while (!pred(arg) && mono_ms() < end)
		event_base_loop(B, EVLOOP_ONCE);
	event_free(tick);
	return pred(arg);
}

static int
is_done(void *arg)
{
	return ((struct rec *)arg)->done > 0;
}

static int
flag_set(void *arg)
{
	return atomic_load((atomic_int *)arg) != 0;
}

/* run_for - run the loop for ms (to see that nothing is called back). */
static void
run_for(unsigned ms)
{
	struct event *tick = event_new(B, -1, EV_PERSIST, tick_cb, NULL);
	struct timeval tv = { 0, 10000 };
	uint64_t end = mono_ms() + ms;

	event_add(tick, &tv);
	while (mono_ms() < end)
		event_base_loop(B, EVLOOP_ONCE);
	event_free(tick);
}

static void
wait_done(struct rec *r)
{
	ck_assert_msg(run_until(is_done, r), "call not done in time");
	ck_assert_int_eq(r->done, 1);
}

/* client - (re)create the client with the test resolver. */
static void
client(const struct httpc_opts *o)
{
	struct httpc_opts x;

	if (C != NULL)
		httpc_free(C);
	memset(&S, 0, sizeof(S));
	x = o != NULL ? *o : (struct httpc_opts) { .no_system_ca = 1 };
	x.dns = D;
	x.stats = &S;
	C = httpc_new(B, &x);
}

static void
setup(void)
{
	B = event_base_new();
	ck_assert_ptr_nonnull(B);
	D = evdns_base_new(B, 0);
	ck_assert_ptr_nonnull(D);
	ck_assert_int_eq(evdns_base_load_hosts(D, hosts_path), 0);
	memset(&REQ, 0, sizeof(REQ));
	C = NULL;
	client(NULL);
}

static void
teardown(void)
{
	httpc_free(C);
	C = NULL;
	evdns_base_free(D, 0);
	event_base_free(B);
}

static char *
url(const char *scheme, const char *host, int port, const char *path)
{
	static char buf[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(
	    buf[i], sizeof(buf[i]), "%s://%s:%d%s", scheme, host, port, path);
	return buf[i];
}

/* --- httpd as the server ---------------------------------------------- */

static struct httpd *H;
static struct httpd_stats HS;
static int hport, hlfd;

static void
h_request(void *arg, struct httpd_req *req)
{
	const char *x = httpd_req_header(req, "x-echo");
	struct httpd_header hd[] = { { "X-Path", httpd_req_path(req) },
		{ "X-Echo", x != NULL ? x : "" } };
	size_t blen;
	const void *b = httpd_req_body(req, &blen);

	(void)arg;
	if (blen > 0)
		httpd_respond(req, 200, hd, 2, b, blen);
	else
		httpd_respond(req, 200, hd, 2, "hello world", 11);
}

static const struct httpd_ops HOPS = { .on_request = h_request };

static void
httpd_up(unsigned ka_ms)
{
	struct httpd_limits lim = { .keepalive_timeout_ms = ka_ms };
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char err[128];

	hlfd = httpd_listen("127.0.0.1:0", 0, err, sizeof(err));
	ck_assert_int_ge(hlfd, 0);
	ck_assert_int_eq(getsockname(hlfd, (struct sockaddr *)&sin, &len), 0);
	hport = ntohs(sin.sin_port);
	memset(&HS, 0, sizeof(HS));
	H = httpd_new(B, hlfd, &HOPS, NULL, &lim);
	httpd_set_stats(H, &HS);
}

static void
httpd_down(void)
{
	httpd_free(H);
	close(hlfd);
}

/* --- tests: the response parser --------------------------------------- */

/* parse_all - head + body of resp, fed in pieces of step bytes (0: whole).
 * Returns the body rc; body text into out. */
static int
parse_all(const char *resp, size_t step, int head_req, uint64_t limit,
    struct httpr *p, char *out, size_t *outlen, size_t *rest)
{
	size_t len = strlen(resp), have, off, used, doff, dlen;
	int rc;

	httpr_init(p, 65536, head_req);
	*outlen = 0;
	have = step ? 0 : len;
	do {
		if (step)
			have = have + step > len ? len : have + step;
		rc = httpr_head(p, resp, have);
	} while (rc == HTTPR_AGAIN && have < len);
	if (rc != HTTPR_DONE)
		return rc == HTTPR_ERROR ? -2 : -3;
	off = p->head_len;
	for (;;) {
		size_t end =
		    step ? (off + step > len ? len : off + step) : len;
		rc = httpr_body(
		    p, resp + off, end - off, limit, &used, &doff, &dlen);
		if (dlen) {
			memcpy(out + *outlen, resp + off + doff, dlen);
			*outlen += dlen;
		}
		off += used;
		if (rc != HTTPR_AGAIN || (off == len && used == 0))
			break;
		if (off == len)
			break;
	}
	out[*outlen] = '\0';
	*rest = len - off;
	return rc;
}

START_TEST(t_parse_chunked_golden)
{
	static const char resp[] =
	    "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/event-stream\r\n"
	    "Transfer-Encoding: gzip, chunked\r\n"
	    "\r\n"
	    "5;name=value;q=\"quoted\"\r\nhello\r\n"
	    "1\r\n \r\n"
	    "1A  ; ext\r\nabcdefghijklmnopqrstuvwxyz\r\n"
	    "0;last\r\n"
	    "X-Trailer: yes\r\n"
	    "Other: 1\r\n"
	    "\r\n"
	    "NEXT";
	struct httpr p;
	char out[256], whole[256];
	size_t olen, wlen, rest, step;

	ck_assert_int_eq(
	    parse_all(resp, 0, 0, UINT64_MAX, &p, whole, &wlen, &rest),
	    HTTPR_DONE);
	ck_assert_str_eq(whole, "hello abcdefghijklmnopqrstuvwxyz");
	ck_assert_uint_eq(rest, 4);
	ck_assert_int_eq(p.body, HTTPR_BODY_CHUNKED);
	ck_assert_int_eq(p.keep_alive, 1);
	ck_assert_uint_eq(p.body_bytes, wlen);
	for (step = 1; step < 12; step++) {
		ck_assert_int_eq(parse_all(resp, step, 0, UINT64_MAX, &p, out,
		                     &olen, &rest),
		    HTTPR_DONE);
		ck_assert_str_eq(out, whole);
		ck_assert_uint_eq(rest, 4);
	}
	/* a limit below the body fails at the chunk that crosses it */
	ck_assert_int_eq(
	    parse_all(resp, 0, 0, 10, &p, out, &olen, &rest), HTTPR_ERROR);
	ck_assert_int_eq(p.err, HTTPR_E_BODY_TOO_LARGE);
}
END_TEST

START_TEST(t_parse_heads)
{
	struct httpr p;
	char out[256];
	size_t olen, rest;
	size_t vlen;
	const char *v;
	static const char cl[] = "HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n"
	                         "X-A:  spaced  \r\n\r\nabcdef";

	ck_assert_int_eq(
	    parse_all(cl, 0, 0, UINT64_MAX, &p, out, &olen, &rest),
	    HTTPR_DONE);
	ck_assert_str_eq(out, "abc");
	ck_assert_uint_eq(rest, 3);
	v = httpr_field(&p, cl, "x-a", &vlen);
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq((int)vlen, 6);
	ck_assert_int_eq(memcmp(v, "spaced", 6), 0);
	/* HEAD: no body whatever the fields say */
	ck_assert_int_eq(
	    parse_all(cl, 0, 1, UINT64_MAX, &p, out, &olen, &rest),
	    HTTPR_DONE);
	ck_assert_uint_eq(olen, 0);
	/* 204, 304, 1xx: no body */
	ck_assert_int_eq(parse_all("HTTP/1.1 204 No Content\r\n"
	                           "Content-Length: 5\r\n\r\n",
	                     0, 0, UINT64_MAX, &p, out, &olen, &rest),
	    HTTPR_DONE);
	ck_assert_int_eq(p.body, HTTPR_BODY_NONE);
	ck_assert_int_eq(parse_all("HTTP/1.1 100 Continue\r\n\r\n", 0, 0,
	                     UINT64_MAX, &p, out, &olen, &rest),
	    HTTPR_DONE);
	ck_assert_uint_eq(p.status, 100);
	/* close-delimited, bare LF, empty reason, HTTP/1.0 */
	ck_assert_int_eq(parse_all("HTTP/1.0 200\nServer: x\n\nbody", 0, 0,
	                     UINT64_MAX, &p, out, &olen, &rest),
	    HTTPR_AGAIN);
	ck_assert_int_eq(p.body, HTTPR_BODY_CLOSE);
	ck_assert_int_eq(p.keep_alive, 0);
	ck_assert_str_eq(out, "body");
	ck_assert_int_eq(httpr_eof(&p), HTTPR_DONE);
	/* Content-Length cut short: truncated */
	ck_assert_int_eq(parse_all("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n"
	                           "\r\nabc",
	                     0, 0, UINT64_MAX, &p, out, &olen, &rest),
	    HTTPR_AGAIN);
	ck_assert_int_eq(httpr_eof(&p), HTTPR_ERROR);
	ck_assert_int_eq(p.err, HTTPR_E_TRUNCATED);
	/* TE + CL: chunked wins, not reused */
	ck_assert_int_eq(parse_all("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
	                           "Transfer-Encoding: chunked\r\n\r\n"
	                           "2\r\nok\r\n0\r\n\r\n",
	                     1, 0, UINT64_MAX, &p, out, &olen, &rest),
	    HTTPR_DONE);
	ck_assert_str_eq(out, "ok");
	ck_assert_int_eq(p.keep_alive, 0);
	/* Connection: close on 1.1, keep-alive on 1.0 */
	ck_assert_int_eq(parse_all("HTTP/1.1 200 OK\r\nConnection: close\r\n"
	                           "Content-Length: 0\r\n\r\n",
	                     0, 0, UINT64_MAX, &p, out, &olen, &rest),
	    HTTPR_DONE);
	ck_assert_int_eq(p.keep_alive, 0);
	ck_assert_int_eq(parse_all("HTTP/1.0 200 OK\r\nConnection: keep-alive"
	                           "\r\nContent-Length: 0\r\n\r\n",
	                     0, 0, UINT64_MAX, &p, out, &olen, &rest),
	    HTTPR_DONE);
	ck_assert_int_eq(p.keep_alive, 1);
}
END_TEST

START_TEST(t_parse_errors)
{
	static const struct {
		const char *resp;
		enum httpr_err err;
	} bad[] = {
		{ "HTTP/2.0 200 OK\r\n\r\n", HTTPR_E_VERSION },
		{ "HTTP/1.1 20 OK\r\n\r\n", HTTPR_E_STATUS_LINE },
		{ "HTTP/1.1 099 X\r\n\r\n", HTTPR_E_STATUS_LINE },
		{ "ICY 200 OK\r\n\r\n", HTTPR_E_STATUS_LINE },
		{ "HTTP/1.1 200 OK\r\nA b: c\r\n\r\n", HTTPR_E_FIELD },
		{ "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", HTTPR_E_FIELD },
		{ "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", HTTPR_E_FIELD },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
		  "Content-Length: 2\r\n\r\n",
		    HTTPR_E_FRAMING },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		    HTTPR_E_FRAMING },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n"
		  "\r\n",
		    HTTPR_E_FRAMING },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, "
		  "gzip\r\n\r\n",
		    HTTPR_E_FRAMING },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n",
		    HTTPR_E_CHUNK },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "1\r\nab\r\n",
		    HTTPR_E_CHUNK },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "1000000000000000\r\n",
		    HTTPR_E_CHUNK },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "1;a\001\r\n",
		    HTTPR_E_CHUNK },
	};
	struct httpr p;
	char out[256];
	size_t olen, rest, i;

	for (i = 0; i < RG_NELEM(bad); i++) {
		ck_assert_msg(parse_all(bad[i].resp, 0, 0, UINT64_MAX, &p, out,
		                  &olen, &rest) != HTTPR_DONE,
		    "accepted #%zu", i);
		ck_assert_msg(p.err == bad[i].err, "#%zu: err %d", i, p.err);
		/* byte by byte: the same error */
		parse_all(
		    bad[i].resp, 1, 0, UINT64_MAX, &p, out, &olen, &rest);
		ck_assert_msg(
		    p.err == bad[i].err, "#%zu bytewise: err %d", i, p.err);
	}
	/* 101 fields over the limit */
	{
		char big[8192];
		size_t n =
		    (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");
		for (i = 0; i < 101; i++)
			n += (size_t)snprintf(
			    big + n, sizeof(big) - n, "F%zu: v\r\n", i);
		snprintf(big + n, sizeof(big) - n, "\r\n");
		httpr_init(&p, 65536, 0);
		ck_assert_int_eq(
		    httpr_head(&p, big, strlen(big)), HTTPR_ERROR);
		ck_assert_int_eq(p.err, HTTPR_E_TOO_MANY_FIELDS);
		httpr_init(&p, 64, 0);
		ck_assert_int_eq(
		    httpr_head(&p, big, strlen(big)), HTTPR_ERROR);
		ck_assert_int_eq(p.err, HTTPR_E_HEAD_TOO_LARGE);
	}
}
END_TEST

/* --- tests: plain HTTP ------------------------------------------------ */

START_TEST(t_get_content_length)
{
	struct rec r = { .hdr_name = "x-echo" };
	struct httpc_header hd[] = { { "X-Echo", "ping" } };

	httpd_up(0);
	REQ.headers = hd;
	REQ.nheaders = 1;
	ck_assert_ptr_nonnull(
	    go(&r, url("http", "127.0.0.1", hport, "/a/b?q=1#frag")));
	wait_done(&r);
	ck_assert_int_eq(r.rc, HTTPC_OK);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(r.nhead, 1);
	ck_assert_str_eq(r.body, "hello world");
	ck_assert_str_eq(r.hdr, "ping");
	ck_assert_uint_eq(r.body_bytes, 11);
	ck_assert_uint_eq(S.requests, 1);
	ck_assert_uint_eq(S.connects, 1);
	ck_assert_uint_eq(S.res_ok, 1);
	ck_assert_uint_eq(S.pooled, 1);
	ck_assert_uint_gt(S.bytes_in, 11);
	ck_assert_uint_eq(S.active, 0);
	httpd_down();
}
END_TEST

static int
idle_closed(void *arg)
{
	(void)arg;
	return S.idle_closed > 0;
}

START_TEST(t_keepalive_reuse)
{
	struct rec a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
	const char *u;

	httpd_up(300);
	u = url("http", "localhost", hport, "/one");
	/* b starts from a's on_done: it gets a's connection */
	a.chain = &b;
	a.chain_url = u;
	ck_assert_ptr_nonnull(go(&a, u));
	wait_done(&a);
	wait_done(&b);
	ck_assert_int_eq(a.rc, HTTPC_OK);
	ck_assert_int_eq(b.rc, HTTPC_OK);
	ck_assert_int_eq(a.reused, 0);
	ck_assert_int_eq(b.reused, 1);
	ck_assert_uint_eq(S.reused, 1);
	ck_assert_uint_eq(S.connects, 1);
	/* a POST with a body on the pooled connection */
	REQ.method = "POST";
	REQ.body = "posted";
	REQ.body_len = 6;
	ck_assert_ptr_nonnull(go(&c, u));
	wait_done(&c);
	ck_assert_int_eq(c.rc, HTTPC_OK);
	ck_assert_str_eq(c.body, "posted");
	ck_assert_uint_eq(S.reused, 2);
	ck_assert_uint_eq(S.connects, 1);
	ck_assert_uint_eq(S.idle, 1);
	/* the server closes the idle connection: dropped from the pool */
	ck_assert(run_until(idle_closed, NULL));
	ck_assert_uint_eq(S.idle, 0);
	REQ.method = "HEAD";
	REQ.body = NULL;
	REQ.body_len = 0;
	ck_assert_ptr_nonnull(go(&d, u));
	wait_done(&d);
	ck_assert_int_eq(d.rc, HTTPC_OK);
	ck_assert_int_eq(d.reused, 0);
	ck_assert_uint_eq(d.blen, 0); /* HEAD: no body */
	ck_assert_uint_eq(S.connects, 2);
	ck_assert_uint_eq(S.retries, 0);
	httpd_down();
}
END_TEST

START_TEST(t_pool_disabled)
{
	struct httpc_opts o = { .no_system_ca = 1, .max_idle_per_origin = -1 };
	struct rec a = { 0 }, b = { 0 };

	httpd_up(0);
	client(&o);
	ck_assert_ptr_nonnull(go(&a, url("http", "127.0.0.1", hport, "/")));
	wait_done(&a);
	ck_assert_ptr_nonnull(go(&b, url("http", "127.0.0.1", hport, "/")));
	wait_done(&b);
	ck_assert_int_eq(b.rc, HTTPC_OK);
	ck_assert_uint_eq(S.connects, 2);
	ck_assert_uint_eq(S.reused, 0);
	ck_assert_uint_eq(S.pooled, 0);
	httpd_down();
}
END_TEST

/* a reused connection the server closes after reading the request: the
 * call is retried once on a fresh one */
START_TEST(t_retry_on_reused)
{
	static const struct step sc[] = {
		{ OP_ACCEPT, NULL, 0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none",
		    0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_CLOSE, NULL, 0 },
		{ OP_ACCEPT, NULL, 0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo",
		    0 },
		{ OP_HOLD, NULL, 0 },
		{ OP_END, NULL, 0 },
	};
	struct srv *s = srv_start(sc, 0);
	struct rec a = { 0 }, b = { 0 };

	ck_assert_ptr_nonnull(go(&a, url("http", "127.0.0.1", s->port, "/")));
	wait_done(&a);
	ck_assert_str_eq(a.body, "one");
	ck_assert_ptr_nonnull(go(&b, url("http", "127.0.0.1", s->port, "/")));
	wait_done(&b);
	ck_assert_int_eq(b.rc, HTTPC_OK);
	ck_assert_str_eq(b.body, "two");
	ck_assert_int_eq(b.reused, 0);
	ck_assert_uint_eq(S.reused, 1);
	ck_assert_uint_eq(S.retries, 1);
	ck_assert_uint_eq(S.connects, 2);
	ck_assert_int_eq(atomic_load(&s->nreq), 3);
	srv_free(s);
}
END_TEST

/* chunked: extensions, trailers, many small chunks in separate writes;
 * the server waits for the client to have seen the first chunk, so the
 * test cannot pass unless bodies are delivered as they arrive */
START_TEST(t_chunked_incremental)
{
	static char many[64][16];
	static struct step sc[80];
	struct srv *s;
	struct rec r = { 0 };
	char want[128] = "hello";
	int n = 0, i;

	sc[n++] = (struct step) { OP_ACCEPT, NULL, 0 };
	sc[n++] = (struct step) { OP_READREQ, NULL, 0 };
	sc[n++] = (struct step) { OP_SEND,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		"Content-Type: text/event-stream\r\n\r\n"
		"5;a=1;b=\"x y\"\r\nhello\r\n",
		0 };
	sc[n++] = (struct step) { OP_WAITFLAG, NULL, 0 };
	for (i = 0; i < 40; i++) {
		snprintf(
		    many[i], sizeof(many[i]), "1\r\n%c\r\n", 'a' + i % 26);
		want[5 + i] = (char)('a' + i % 26);
		sc[n++] = (struct step) { OP_SEND, many[i], 0 };
		if (i % 4 == 0)
			sc[n++] = (struct step) { OP_SLEEP, NULL, 2 };
	}
	want[45] = '\0';
	sc[n++] = (struct step) { OP_DRIP, "0;end\r\nX-T: 1\r\n\r\n", 1 };
	sc[n++] = (struct step) { OP_HOLD, NULL, 0 };
	sc[n] = (struct step) { OP_END, NULL, 0 };
	s = srv_start(sc, 0);
	r.flag = &s->flag;
	r.flag_text = "hello";
	r.hdr_name = "content-type";
	ck_assert_ptr_nonnull(go(&r, url("http", "127.0.0.1", s->port, "/")));
	wait_done(&r);
	ck_assert_int_eq(r.rc, HTTPC_OK);
	ck_assert_str_eq(r.body, want);
	ck_assert_str_eq(r.hdr, "text/event-stream");
	ck_assert_int_ge(r.ndata, 2);
	ck_assert_uint_eq(S.pooled, 1);
	srv_free(s);
}
END_TEST

START_TEST(t_close_delimited)
{
	static const struct step sc[] = {
		{ OP_ACCEPT, NULL, 0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_SEND, "HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\nsome ",
		    0 },
		{ OP_SLEEP, NULL, 5 },
		{ OP_SEND, "bytes until close", 0 },
		{ OP_CLOSE, NULL, 0 },
		{ OP_END, NULL, 0 },
	};
	struct srv *s = srv_start(sc, 0);
	struct rec r = { 0 };

	ck_assert_ptr_nonnull(go(&r, url("http", "127.0.0.1", s->port, "/")));
	wait_done(&r);
	ck_assert_int_eq(r.rc, HTTPC_OK);
	ck_assert_str_eq(r.body, "some bytes until close");
	ck_assert_uint_eq(S.pooled, 0);
	srv_free(s);
}
END_TEST

START_TEST(t_interim_and_204)
{
	static const struct step sc[] = {
		{ OP_ACCEPT, NULL, 0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_SEND, "HTTP/1.1 100 Continue\r\n\r\n", 0 },
		{ OP_SEND,
		    "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
		    "HTTP/1.1 204 No Content\r\nX-Y: z\r\n\r\n",
		    0 },
		{ OP_HOLD, NULL, 0 },
		{ OP_END, NULL, 0 },
	};
	struct srv *s = srv_start(sc, 0);
	struct rec r = { .hdr_name = "x-y" };

	ck_assert_ptr_nonnull(go(&r, url("http", "127.0.0.1", s->port, "/")));
	wait_done(&r);
	ck_assert_int_eq(r.rc, HTTPC_OK);
	ck_assert_int_eq(r.status, 204);
	ck_assert_int_eq(r.nhead, 1);
	ck_assert_str_eq(r.hdr, "z");
	ck_assert_uint_eq(r.blen, 0);
	ck_assert_uint_eq(S.pooled, 1);
	srv_free(s);
}
END_TEST

START_TEST(t_protocol_and_limits)
{
	static const struct step bad[] = {
		{ OP_ACCEPT, NULL, 0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_SEND, "SSH-2.0-OpenSSH\r\n\r\n", 0 },
		{ OP_HOLD, NULL, 0 },
		{ OP_END, NULL, 0 },
	};
	static const struct step big[] = {
		{ OP_ACCEPT, NULL, 0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
		    0 },
		{ OP_HOLD, NULL, 0 },
		{ OP_END, NULL, 0 },
	};
	struct srv *s = srv_start(bad, 0), *t = srv_start(big, 0);
	struct rec a = { 0 }, b = { 0 };

	ck_assert_ptr_nonnull(go(&a, url("http", "127.0.0.1", s->port, "/")));
	REQ.max_body = 10;
	ck_assert_ptr_nonnull(go(&b, url("http", "127.0.0.1", t->port, "/")));
	wait_done(&a);
	wait_done(&b);
	ck_assert_int_eq(a.rc, HTTPC_E_PROTOCOL);
	ck_assert_int_eq(b.rc, HTTPC_E_TOO_LARGE);
	ck_assert_int_eq(b.status, 200);
	ck_assert_uint_eq(S.res_protocol, 1);
	ck_assert_uint_eq(S.res_too_large, 1);
	srv_free(s);
	srv_free(t);
}
END_TEST

START_TEST(t_bad_requests)
{
	static const char *urls[] = { "ftp://127.0.0.1/", "http://",
		"http://a@127.0.0.1/", "http://127.0.0.1:0/",
		"http://127.0.0.1:65536/", "http://127.0.0.1:8x/",
		"http://[::1/", "http://[zz]/", "http://exa mple/",
		"http://example.com/a b", "https:/example.com/" };
	struct httpc_header crlf[] = { { "X-A", "b\r\nInjected: 1" } };
	struct httpc_header host[] = { { "Host", "evil" } };
	struct rec r = { 0 };
	size_t i;

	for (i = 0; i < RG_NELEM(urls); i++)
		ck_assert_msg(go(&r, urls[i]) == NULL, "accepted %s", urls[i]);
	REQ.headers = crlf;
	REQ.nheaders = 1;
	ck_assert_ptr_null(go(&r, "http://127.0.0.1/"));
	REQ.headers = host;
	ck_assert_ptr_null(go(&r, "http://127.0.0.1/"));
	REQ.headers = NULL;
	REQ.nheaders = 0;
	REQ.method = "GE T";
	ck_assert_ptr_null(go(&r, "http://127.0.0.1/"));
	ck_assert_uint_eq(S.requests, 0);
	/* nothing was called back */
	run_for(100);
	ck_assert_int_eq(r.done, 0);
}
END_TEST

/* --- tests: failures and timeouts ------------------------------------- */

START_TEST(t_connect_refused)
{
	struct rec r = { 0 };
	int port, fd = listen_any(1, &port);

	close(fd); /* nothing listens there now */
	ck_assert_ptr_nonnull(go(&r, url("http", "127.0.0.1", port, "/")));
	wait_done(&r);
	ck_assert_int_eq(r.rc, HTTPC_E_CONNECT);
	ck_assert_uint_eq(S.res_connect, 1);
}
END_TEST

/* a listener whose accept queue is full: the SYN goes unanswered, so the
 * TCP connect itself times out */
START_TEST(t_timeout_connect_tcp)
{
	struct rec r = { 0 };
	struct sockaddr_in sin;
	struct pollfd pfd;
	int port, lfd = listen_any(0, &port), fill[4], i;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	for (i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		(void)connect(fill[i], (struct sockaddr *)&sin, sizeof(sin));
		if (i == 0) { /* the first one takes the only queue slot */
			pfd.fd = fill[0];
			pfd.events = POLLOUT;
			ck_assert_int_eq(poll(&pfd, 1, WAIT_MS), 1);
		}
	}
	REQ.connect_ms = 150;
	ck_assert_ptr_nonnull(go(&r, url("http", "127.0.0.1", port, "/")));
	wait_done(&r);
	ck_assert_int_eq(r.rc, HTTPC_E_TIMEOUT_CONNECT);
	ck_assert_str_eq(r.detail, "TCP connect");
	for (i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
}
END_TEST

/* A UDP "resolver" on 127.0.0.1 answering NXDOMAIN to everything. */
static void
dns_cb(evutil_socket_t fd, short what, void *arg)
{
	unsigned char buf[512];
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	ssize_t n;

	(void)what;
	(void)arg;
	n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
	if (n < 12)
		return;
	buf[2] |= 0x80;               /* QR */
	buf[3] = (buf[3] & 0xf0) | 3; /* NXDOMAIN */
	sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen);
}

START_TEST(t_dns_failure)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct event *ev;
	struct rec r = { 0 }, h = { 0 };
	char ns[64];
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	ev = event_new(B, fd, EV_READ | EV_PERSIST, dns_cb, NULL);
	event_add(ev, NULL);
	snprintf(ns, sizeof(ns), "127.0.0.1:%d", ntohs(sin.sin_port));
	ck_assert_int_eq(evdns_base_nameserver_ip_add(D, ns), 0);
	ck_assert_ptr_nonnull(go(&r, "http://no-such-host.test:1/"));
	wait_done(&r);
	ck_assert_int_eq(r.rc, HTTPC_E_DNS);
	ck_assert_uint_eq(S.res_dns, 1);
	/* a call cancelled while resolving: no callback */
	ck_assert_ptr_nonnull(go(&h, "http://no-such-host.test:1/"));
	httpc_cancel(h.call);
	run_for(100);
	ck_assert_int_eq(h.done, 0);
	ck_assert_uint_eq(S.res_cancelled, 1);
	event_free(ev);
	close(fd);
}
END_TEST

START_TEST(t_timeout_first_byte)
{
	static const struct step sc[] = {
		{ OP_ACCEPT, NULL, 0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_HOLD, NULL, 0 },
		{ OP_END, NULL, 0 },
	};
	struct srv *s = srv_start(sc, 0);
	struct rec r = { 0 };

	REQ.first_byte_ms = 150;
	ck_assert_ptr_nonnull(go(&r, url("http", "127.0.0.1", s->port, "/")));
	wait_done(&r);
	ck_assert_int_eq(r.rc, HTTPC_E_TIMEOUT_FIRST_BYTE);
	ck_assert_int_eq(atomic_load(&s->nreq), 1);
	srv_free(s);
}
END_TEST

START_TEST(t_timeout_total_and_idle)
{
	static const struct step drip[] = {
		{ OP_ACCEPT, NULL, 0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
		    0 },
		{ OP_DRIP,
		    "....................................................."
		    "..................................................",
		    20 },
		{ OP_HOLD, NULL, 0 },
		{ OP_END, NULL, 0 },
	};
	static const struct step stall[] = {
		{ OP_ACCEPT, NULL, 0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab",
		    0 },
		{ OP_HOLD, NULL, 0 },
		{ OP_END, NULL, 0 },
	};
	struct srv *s = srv_start(drip, 0), *t = srv_start(stall, 0);
	struct rec a = { 0 }, b = { 0 };

	/* bytes keep coming (idle never fires), the total deadline does */
	REQ.total_ms = 300;
	ck_assert_ptr_nonnull(go(&a, url("http", "127.0.0.1", s->port, "/")));
	REQ.total_ms = 0;
	REQ.idle_ms = 150;
	ck_assert_ptr_nonnull(go(&b, url("http", "127.0.0.1", t->port, "/")));
	wait_done(&a);
	wait_done(&b);
	ck_assert_int_eq(a.rc, HTTPC_E_TIMEOUT_TOTAL);
	ck_assert_int_eq(a.status, 200);
	ck_assert_uint_gt(a.blen, 0);
	ck_assert_int_eq(b.rc, HTTPC_E_TIMEOUT_IDLE);
	ck_assert_str_eq(b.body, "ab");
	srv_free(s);
	srv_free(t);
}
END_TEST

START_TEST(t_reset_mid_body)
{
	static const struct step rst[] = {
		{ OP_ACCEPT, NULL, 0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_SEND,
		    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
		    "0123456789",
		    0 },
		{ OP_SLEEP, NULL, 20 },
		{ OP_RESET, NULL, 0 },
		{ OP_END, NULL, 0 },
	};
	static const struct step fin[] = {
		{ OP_ACCEPT, NULL, 0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_SEND,
		    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "4\r\nabcd\r\n",
		    0 },
		{ OP_CLOSE, NULL, 0 },
		{ OP_END, NULL, 0 },
	};
	static const struct step early[] = {
		{ OP_ACCEPT, NULL, 0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_CLOSE, NULL, 0 },
		{ OP_END, NULL, 0 },
	};
	struct srv *s = srv_start(rst, 0), *t = srv_start(fin, 0),
	           *u = srv_start(early, 0);
	struct rec a = { 0 }, b = { 0 }, c = { 0 };

	ck_assert_ptr_nonnull(go(&a, url("http", "127.0.0.1", s->port, "/")));
	ck_assert_ptr_nonnull(go(&b, url("http", "127.0.0.1", t->port, "/")));
	ck_assert_ptr_nonnull(go(&c, url("http", "127.0.0.1", u->port, "/")));
	wait_done(&a);
	wait_done(&b);
	wait_done(&c);
	ck_assert_int_eq(a.rc, HTTPC_E_RESET);
	ck_assert_uint_eq(a.body_bytes, 10);
	ck_assert_int_eq(b.rc, HTTPC_E_RESET);
	ck_assert_str_eq(b.body, "abcd");
	/* a fresh connection closed before any byte: no retry */
	ck_assert_int_eq(c.rc, HTTPC_E_RESET);
	ck_assert_uint_eq(S.retries, 0);
	ck_assert_uint_eq(S.res_reset, 3);
	srv_free(s);
	srv_free(t);
	srv_free(u);
}
END_TEST

START_TEST(t_cancel_inside_callbacks)
{
	static const struct step sc[] = {
		{ OP_ACCEPT, NULL, 0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_SEND,
		    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "3\r\none\r\n",
		    0 },
		{ OP_SLEEP, NULL, 10 },
		{ OP_SEND, "3\r\ntwo\r\n", 0 },
		{ OP_HOLD, NULL, 0 },
		{ OP_END, NULL, 0 },
	};
	struct srv *s = srv_start(sc, 0), *t = srv_start(sc, 0);
	struct rec a = { .cancel_at_data = 1 }, b = { .head_ret = 1 };

	ck_assert_ptr_nonnull(go(&a, url("http", "127.0.0.1", s->port, "/")));
	ck_assert_ptr_nonnull(go(&b, url("http", "127.0.0.1", t->port, "/")));
	/* the server sees the connection go; no callback comes after */
	ck_assert(run_until(flag_set, &s->eof_seen));
	wait_done(&b);
	ck_assert(run_until(flag_set, &t->eof_seen));
	ck_assert_int_eq(a.done, 0);
	ck_assert_int_eq(a.ndata, 1);
	ck_assert_str_eq(a.body, "one");
	/* on_head abort: on_done(E_CANCELLED) */
	ck_assert_int_eq(b.rc, HTTPC_E_CANCELLED);
	ck_assert_int_eq(b.ndata, 0);
	ck_assert_uint_eq(S.res_cancelled, 2);
	ck_assert_uint_eq(S.active, 0);
	ck_assert_uint_eq(S.pooled, 0);
	srv_free(s);
	srv_free(t);
}
END_TEST

START_TEST(t_free_with_calls)
{
	static const struct step sc[] = {
		{ OP_ACCEPT, NULL, 0 },
		{ OP_READREQ, NULL, 0 },
		{ OP_HOLD, NULL, 0 },
		{ OP_END, NULL, 0 },
	};
	struct srv *s = srv_start(sc, 0);
	struct rec a = { 0 }, b = { 0 };

	ck_assert_ptr_nonnull(go(&a, url("http", "127.0.0.1", s->port, "/")));
	ck_assert_ptr_nonnull(go(&b, url("http", "127.0.0.1", s->port, "/")));
	ck_assert(run_until(flag_set, &s->nreq));
	httpc_free(C);
	C = NULL;
	ck_assert_int_eq(a.done, 1);
	ck_assert_int_eq(a.rc, HTTPC_E_CANCELLED);
	ck_assert_int_eq(b.done, 1);
	ck_assert_int_eq(b.rc, HTTPC_E_CANCELLED);
	ck_assert(run_until(flag_set, &s->eof_seen));
	srv_free(s);
	client(NULL);
}
END_TEST

/* --- tests: TLS ------------------------------------------------------- */

static const struct step tls_two[] = {
	{ OP_ACCEPT, NULL, 0 },
	{ OP_TLS, NULL, 0 },
	{ OP_READREQ, NULL, 0 },
	{ OP_SEND,
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "6\r\nsecret\r\n0\r\n\r\n",
	    0 },
	{ OP_READREQ, NULL, 0 },
	{ OP_SEND, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain", 0 },
	{ OP_HOLD, NULL, 0 },
	{ OP_END, NULL, 0 },
};

START_TEST(t_tls_ok)
{
	struct httpc_opts o = { .no_system_ca = 1, .ca_file = ca_path };
	struct srv *s = srv_start(tls_two, 1);
	struct rec a = { 0 }, b = { 0 };

	client(&o);
	ck_assert_ptr_nonnull(go(&a, url("https", "localhost", s->port, "/")));
	wait_done(&a);
	ck_assert_msg(
	    a.rc == HTTPC_OK, "%s: %s", httpc_rc_name(a.rc), a.detail);
	ck_assert_str_eq(a.body, "secret");
	ck_assert_ptr_nonnull(go(&b, url("https", "LocalHost", s->port, "/")));
	wait_done(&b);
	ck_assert_int_eq(b.rc, HTTPC_OK);
	ck_assert_str_eq(b.body, "again");
	ck_assert_int_eq(b.reused, 1);
	ck_assert_uint_eq(S.tls_handshakes, 1);
	ck_assert_uint_eq(S.connects, 1);
	ck_assert_int_eq(strstr(s->lastreq, "Host: localhost:") != NULL, 1);
	srv_free(s);
}
END_TEST

START_TEST(t_tls_wrong_host)
{
	struct httpc_opts o = { .no_system_ca = 1, .ca_file = ca_path };
	struct srv *s = srv_start(tls_two, 1);
	struct rec r = { 0 };

	client(&o);
	ck_assert_ptr_nonnull(
	    go(&r, url("https", "wronghost.test", s->port, "/")));
	wait_done(&r);
	ck_assert_int_eq(r.rc, HTTPC_E_TLS);
	ck_assert(r.flags & MBEDTLS_X509_BADCERT_CN_MISMATCH);
	ck_assert_ptr_nonnull(strstr(r.detail, "CN"));
	ck_assert_uint_eq(S.res_tls, 1);
	ck_assert_int_eq(atomic_load(&s->nreq), 0);
	srv_free(s);
}
END_TEST

START_TEST(t_tls_unknown_ca)
{
	struct httpc_opts o = { .no_system_ca = 1, .ca_file = ca_path };
	struct httpc_opts none = { .no_system_ca = 1 };
	struct srv *s = srv_start(tls_two, 2), *t = srv_start(tls_two, 1);
	struct rec a = { 0 }, b = { 0 };

	/* signed by a CA we do not trust */
	client(&o);
	ck_assert_ptr_nonnull(go(&a, url("https", "localhost", s->port, "/")));
	wait_done(&a);
	ck_assert_int_eq(a.rc, HTTPC_E_TLS);
	ck_assert(a.flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED);
	/* no CA at all (system bundle off, no CA file) */
	client(&none);
	ck_assert_ptr_nonnull(go(&b, url("https", "localhost", t->port, "/")));
	wait_done(&b);
	ck_assert_int_eq(b.rc, HTTPC_E_TLS);
	ck_assert_int_eq(atomic_load(&s->nreq), 0);
	ck_assert_int_eq(atomic_load(&t->nreq), 0);
	srv_free(s);
	srv_free(t);
}
END_TEST

/* the server accepts but never answers the handshake: connect_ms covers
 * DNS, TCP and TLS, so this is E_TIMEOUT_CONNECT */
START_TEST(t_timeout_connect_tls)
{
	static const struct step sc[] = {
		{ OP_ACCEPT, NULL, 0 },
		{ OP_HOLD, NULL, 0 },
		{ OP_END, NULL, 0 },
	};
	struct httpc_opts o = { .no_system_ca = 1, .ca_file = ca_path };
	struct srv *s = srv_start(sc, 1);
	struct rec r = { 0 };

	client(&o);
	REQ.connect_ms = 150;
	ck_assert_ptr_nonnull(go(&r, url("https", "localhost", s->port, "/")));
	wait_done(&r);
	ck_assert_int_eq(r.rc, HTTPC_E_TIMEOUT_CONNECT);
	ck_assert_ptr_nonnull(strstr(r.detail, "TLS"));
	srv_free(s);
}
END_TEST

static Suite *
client_suite(void)
{
	Suite *s = suite_create("http_client");
	TCase *tp = tcase_create("respparse");
	TCase *tc = tcase_create("plain");
	TCase *tt = tcase_create("tls");

	tcase_add_test(tp, t_parse_chunked_golden);
	tcase_add_test(tp, t_parse_heads);
	tcase_add_test(tp, t_parse_errors);
	suite_add_tcase(s, tp);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_get_content_length);
	tcase_add_test(tc, t_keepalive_reuse);
	tcase_add_test(tc, t_pool_disabled);
	tcase_add_test(tc, t_retry_on_reused);
	tcase_add_test(tc, t_chunked_incremental);
	tcase_add_test(tc, t_close_delimited);
	tcase_add_test(tc, t_interim_and_204);
	tcase_add_test(tc, t_protocol_and_limits);
	tcase_add_test(tc, t_bad_requests);
	tcase_add_test(tc, t_connect_refused);
	tcase_add_test(tc, t_timeout_connect_tcp);
	tcase_add_test(tc, t_dns_failure);
	tcase_add_test(tc, t_timeout_first_byte);
	tcase_add_test(tc, t_timeout_total_and_idle);
	tcase_add_test(tc, t_reset_mid_body);
	tcase_add_test(tc, t_cancel_inside_callbacks);
	tcase_add_test(tc, t_free_with_calls);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tt, setup, teardown);
	tcase_set_timeout(tt, 60);
	tcase_add_test(tt, t_tls_ok);
	tcase_add_test(tt, t_tls_wrong_host);
	tcase_add_test(tt, t_tls_unknown_ca);
	tcase_add_test(tt, t_timeout_connect_tls);
	suite_add_tcase(s, tt);
	return s;
}

int
main(void)
{
	int rc;

	signal(SIGPIPE, SIG_IGN);
	make_pki();
	rc = tl_run(client_suite());
	remove_pki();
	return rc;
}
