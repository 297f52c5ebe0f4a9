/*
 * tls - relmock's HTTPS front (see tls.h).
 *
 * At start: one CTR_DRBG for the process, an EC P-256 test CA and a
 * "localhost" server certificate made with mbedTLS's x509write API (valid
 * from yesterday for a year, random serials), the CA written to
 * DIR/ca.pem.  Then a loopback listener whose connections are terminated
 * with mbedTLS on non-blocking sockets driven by libevent: for each one,
 * once the handshake is done, a plain TCP connection to relmock's own
 * HTTP listener, and bytes pumped both ways through two bounded buffers
 * (TLS -> up -> plain, plain -> down -> TLS).  A full buffer stops reading
 * its source until it drains.
 *
 * Ends: close_notify from the client shuts the plain side's write half
 * and the answer still flows back; plain EOF sends close_notify and
 * closes; a reset on the plain side (relmock's reset and drop_after
 * faults) forwards what came before it, then resets the TLS connection
 * (no close_notify); a TCP EOF without close_notify, or any error, closes
 * both sides.
 *
 * Must never log or write a private key, nor use a connection's context
 * after a fatal mbedTLS error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "http/server.h"
#include "tools/relmock/tls.h"
#include "util/log.h"
#include "util/util.h"

#define CA_NAME      "CN=relmock test CA,O=relgate tests"
#define SRV_NAME     "CN=localhost,O=relgate tests"
#define HANDSHAKE_MS 10000
#define MAX_CONNS    4096
#define PEM_MAX      4096

/* what a connection waits for, one bit per event */
enum { W_TR = 1, W_TW = 2, W_PR = 4, W_PW = 8 };

struct tls_buf {
	unsigned char data[MOCK_TLS_BUFSZ];
	size_t off, len; /* bytes waiting: data[off .. off + len) */
};

struct tls_conn {
	struct mock_tls *t;
	struct tls_conn *prev, *next;
	mbedtls_ssl_context ssl;
	int tfd, pfd;        /* TLS client side; plain side (-1: none) */
	struct event *ev[4]; /* tfd read, tfd write, pfd read, pfd write */
	struct event *timer; /* handshake deadline */
	int armed;           /* W_* bits of the events added */
	int open;            /* handshake done */
	int p_connecting;    /* connect() to the plain listener pending */
	int t_eof;           /* close_notify read: no more input */
	int t_dead;          /* TCP EOF without close_notify */
	int p_shut;          /* plain write side shut down */
	int p_eof;           /* plain side ended */
	int p_reset;         /* ... by a reset */
	int closing;         /* close_notify under way */
	size_t wpend;        /* length of an ssl_write to retry, 0: none */
	char peer[64];       /* for the log */
	struct tls_buf up;   /* decrypted, to the plain side */
	struct tls_buf down; /* from the plain side, to encrypt */
};

struct mock_tls {
	struct event_base *base;
	int lfd, verbose;
	unsigned port;
	struct event *accept_ev;
	struct sockaddr_storage plain;
	socklen_t plainlen;
	struct tls_conn *conns;
	unsigned nconns;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt crt; /* the server certificate */
	mbedtls_pk_context key;
};

/* --- the test CA ----------------------------------------------------- */

/* gen_key - a fresh EC P-256 key */
static void
gen_key(struct mock_tls *t, mbedtls_pk_context *pk)
{
	mbedtls_pk_init(pk);
	if (mbedtls_pk_setup(
	        pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
	    mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk),
	        mbedtls_ctr_drbg_random, &t->drbg) != 0)
		fatalx("tls: EC key generation failed");
}

/* utc_stamp - "YYYYMMDDhhmmss" of now + days, UTC */
static void
utc_stamp(char out[16], int days)
{
	time_t when = time(NULL) + (time_t)days * 86400;
	struct tm tm;

	if (gmtime_r(&when, &tm) == NULL ||
	    strftime(out, 16, "%Y%m%d%H%M%S", &tm) != 14)
		fatalx("tls: cannot format a validity date");
}

/*
 * make_cert - PEM certificate for subj's key named subj_name, signed by
 * iss (subj itself for the CA): a CA if is_ca, else a server certificate
 * for "localhost" (DNS subjectAltName).  Random 128-bit serial.
 */
static void
make_cert(struct mock_tls *t, mbedtls_pk_context *subj, const char *subj_name,
    mbedtls_pk_context *iss, const char *iss_name, int is_ca,
    unsigned char *out, size_t outlen)
{
	/* SEQUENCE { [2] dNSName "localhost" } */
	static const unsigned char san[] = { 0x30, 0x0b, 0x82, 0x09, 'l', 'o',
		'c', 'a', 'l', 'h', 'o', 's', 't' };
	mbedtls_x509write_cert w;
	unsigned char serial[16];
	char from[16], until[16];
	unsigned int ku;
	mbedtls_mpi sn;
	int rc;

	if (mbedtls_ctr_drbg_random(&t->drbg, serial, sizeof(serial)) != 0)
		fatalx("tls: DRBG failed");
	serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x01); /* > 0 */
	utc_stamp(from, -1);
	utc_stamp(until, 365);
	mbedtls_x509write_crt_init(&w);
	mbedtls_mpi_init(&sn);
	mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&w, subj);
	mbedtls_x509write_crt_set_issuer_key(&w, iss);
	ku = is_ca ? MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN
	           : MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
	if ((rc = mbedtls_mpi_read_binary(&sn, serial, sizeof(serial))) == 0 &&
	    (rc = mbedtls_x509write_crt_set_serial(&w, &sn)) == 0 &&
	    (rc = mbedtls_x509write_crt_set_subject_name(&w, subj_name)) ==
	        0 &&
	    (rc = mbedtls_x509write_crt_set_issuer_name(&w, iss_name)) == 0 &&
	    (rc = mbedtls_x509write_crt_set_validity(&w, from, until)) == 0 &&
	    (rc = mbedtls_x509write_crt_set_basic_constraints(
	         &w, is_ca, -1)) == 0 &&
	    (rc = mbedtls_x509write_crt_set_subject_key_identifier(&w)) == 0 &&
	    (rc = mbedtls_x509write_crt_set_key_usage(&w, ku)) == 0 &&
	    (is_ca ||
	        (rc = mbedtls_x509write_crt_set_authority_key_identifier(
	             &w)) == 0) &&
	    (is_ca ||
	        (rc = mbedtls_x509write_crt_set_extension(&w,
	             MBEDTLS_OID_SUBJECT_ALT_NAME,
	             MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, san,
	             sizeof(san))) == 0))
		rc = mbedtls_x509write_crt_pem(
		    &w, out, outlen, mbedtls_ctr_drbg_random, &t->drbg);
	if (rc != 0)
		fatalx("tls: cannot write the %s certificate (-0x%04x)",
		    is_ca ? "CA" : "server", (unsigned)-rc);
	mbedtls_mpi_free(&sn);
	mbedtls_x509write_crt_free(&w);
}

/* write_ca - dir/ca.pem (0644), through a temporary file and rename */
static void
write_ca(const char *dir, const unsigned char *pem)
{
	char *path = xasprintf("%s/ca.pem", dir);
	char *tmp = xasprintf("%s/.ca.pem.%ld", dir, (long)getpid());
	size_t len = strlen((const char *)pem), done = 0;
	ssize_t n;
	int fd;

	if (mkdir_p(dir, 0755) < 0)
		fatal("tls: mkdir %s", dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || fchmod(fd, 0644) < 0)
		fatal("tls: %s", tmp);
	while (done < len) {
		n = write(fd, pem + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fatal("tls: write %s", tmp);
		done += (size_t)n;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0)
		fatal("tls: %s", path);
	free(tmp);
	free(path);
}

/* make_pki - the CA (written to dir) and the server certificate + key */
static void
make_pki(struct mock_tls *t, const char *dir)
{
	unsigned char ca_pem[PEM_MAX], srv_pem[PEM_MAX];
	mbedtls_pk_context ca;

	gen_key(t, &ca);
	gen_key(t, &t->key);
	make_cert(t, &ca, CA_NAME, &ca, CA_NAME, 1, ca_pem, sizeof(ca_pem));
	make_cert(
	    t, &t->key, SRV_NAME, &ca, CA_NAME, 0, srv_pem, sizeof(srv_pem));
	mbedtls_pk_free(&ca); /* nothing else is ever signed */
	mbedtls_x509_crt_init(&t->crt);
	if (mbedtls_x509_crt_parse(
	        &t->crt, srv_pem, strlen((char *)srv_pem) + 1) != 0)
		fatalx("tls: cannot parse the server certificate");
	write_ca(dir, ca_pem);
}

/* --- connections ----------------------------------------------------- */

static void conn_pump(struct tls_conn *c);

/* bio_send - mbedTLS's output on the non-blocking TLS socket */
static int
bio_send(void *arg, const unsigned char *buf, size_t len)
{
	struct tls_conn *c = arg;
	ssize_t n = send(c->tfd, buf, len, MSG_NOSIGNAL);

	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	if (errno == EPIPE || errno == ECONNRESET)
		return MBEDTLS_ERR_NET_CONN_RESET;
	return MBEDTLS_ERR_NET_SEND_FAILED;
}

/* bio_recv - mbedTLS's input from the non-blocking TLS socket */
static int
bio_recv(void *arg, unsigned char *buf, size_t len)
{
	struct tls_conn *c = arg;
	ssize_t n = recv(c->tfd, buf, len, 0);

	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return MBEDTLS_ERR_SSL_WANT_READ;
	if (errno == ECONNRESET)
		return MBEDTLS_ERR_NET_CONN_RESET;
	return MBEDTLS_ERR_NET_RECV_FAILED;
}

/* conn_close - free c; abrupt: reset the TLS side (SO_LINGER 0) */
static void
conn_close(struct tls_conn *c, int abrupt)
{
	struct linger lg = { 1, 0 };
	size_t i;

	if (abrupt)
		(void)setsockopt(
		    c->tfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	for (i = 0; i < RG_NELEM(c->ev); i++)
		if (c->ev[i] != NULL)
			event_free(c->ev[i]);
	event_free(c->timer);
	mbedtls_ssl_free(&c->ssl);
	close(c->tfd);
	if (c->pfd >= 0)
		close(c->pfd);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->t->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->t->nconns--;
	free(c);
}

/* fail - log an mbedTLS error at -v, once per connection, and close */
static void
fail(struct tls_conn *c, const char *what, int rc)
{
	char msg[128];

	if (c->t->verbose) {
		mbedtls_strerror(rc, msg, sizeof(msg));
		log_info("tls %s: %s: %s", c->peer, what, msg);
	}
	conn_close(c, 0);
}

static void
on_plain(evutil_socket_t fd, short what, void *arg)
{
	struct tls_conn *c = arg;
	socklen_t sl = sizeof(int);
	int err = 0;

	if ((what & EV_WRITE) && c->p_connecting) {
		if (getsockopt((int)fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
			err = errno;
		if (err != 0) {
			log_warn("tls %s: connect to the plain listener: %s",
			    c->peer, strerror(err));
			conn_close(c, 1);
			return;
		}
		c->p_connecting = 0;
	}
	conn_pump(c);
}

static void
on_tls(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_pump(arg);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct tls_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->t->verbose)
		log_info("tls %s: handshake timed out", c->peer);
	conn_close(c, 0);
}

/* plain_connect - start the connection to the plain listener; 0 or -1 */
static int
plain_connect(struct tls_conn *c)
{
	struct mock_tls *t = c->t;
	int one = 1;

	c->pfd = socket(
	    t->plain.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->pfd < 0) {
		log_warn("tls %s: socket: %s", c->peer, strerror(errno));
		return -1;
	}
	(void)setsockopt(c->pfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->pfd, (struct sockaddr *)&t->plain, t->plainlen) < 0) {
		if (errno != EINPROGRESS) {
			log_warn("tls %s: connect to the plain listener: %s",
			    c->peer, strerror(errno));
			return -1;
		}
		c->p_connecting = 1;
	}
	c->ev[2] =
	    event_new(t->base, c->pfd, EV_READ | EV_PERSIST, on_plain, c);
	c->ev[3] =
	    event_new(t->base, c->pfd, EV_WRITE | EV_PERSIST, on_plain, c);
	if (c->ev[2] == NULL || c->ev[3] == NULL)
		fatalx("tls: event_new failed");
	return 0;
}

/* set_events - add exactly the events of the W_* bits in want */
static void
set_events(struct tls_conn *c, int want)
{
	size_t i;

	for (i = 0; i < RG_NELEM(c->ev); i++) {
		int bit = 1 << i;

		if (c->ev[i] == NULL)
			continue;
		if ((want & bit) && !(c->armed & bit))
			event_add(c->ev[i], NULL);
		else if (!(want & bit) && (c->armed & bit))
			event_del(c->ev[i]);
	}
	c->armed = want;
}

/* room - free space at the end of b, compacting it first */
static size_t
room(struct tls_buf *b)
{
	if (b->off > 0 && b->len > 0)
		memmove(b->data, b->data + b->off, b->len);
	b->off = 0;
	return sizeof(b->data) - b->len;
}

/* consume - n bytes of b are out */
static void
consume(struct tls_buf *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len == 0)
		b->off = 0;
}

/*
 * pump_tls_in - TLS -> up: decrypt while up has room.  Returns 1 on
 * progress, 0 if waiting (want updated), -1 if c was closed.
 */
static int
pump_tls_in(struct tls_conn *c, int *want)
{
	size_t free_bytes;
	int r;

	if (c->t_eof || c->closing || (free_bytes = room(&c->up)) == 0)
		return 0;
	r = mbedtls_ssl_read(&c->ssl, c->up.data + c->up.len, free_bytes);
	if (r > 0) {
		c->up.len += (size_t)r;
		return 1;
	}
	if (r == MBEDTLS_ERR_SSL_WANT_READ) {
		*want |= W_TR;
		return 0;
	}
	if (r == MBEDTLS_ERR_SSL_WANT_WRITE) {
		*want |= W_TW;
		return 0;
	}
	if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
		c->t_eof = 1;
		return 1;
	}
	if (r == 0 || r == MBEDTLS_ERR_SSL_CONN_EOF) {
		/* TCP EOF without close_notify: the context is unusable */
		c->t_eof = c->t_dead = 1;
		return 1;
	}
	fail(c, "read", r);
	return -1;
}

/* pump_plain_out - up -> plain; then the half-close.  As pump_tls_in. */
static int
pump_plain_out(struct tls_conn *c, int *want)
{
	ssize_t n;

	if (c->p_connecting)
		return 0;
	if (c->up.len > 0) {
		n = send(
		    c->pfd, c->up.data + c->up.off, c->up.len, MSG_NOSIGNAL);
		if (n > 0) {
			consume(&c->up, (size_t)n);
			return 1;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			*want |= W_PW;
			return 0;
		}
		/* the plain side is gone: what it sent still goes out */
		c->up.len = c->up.off = 0;
		if (!c->p_eof)
			c->p_eof = c->p_reset = 1;
		return 1;
	}
	if (c->t_dead) {
		conn_close(c, 0);
		return -1;
	}
	if (c->t_eof && !c->p_shut) {
		(void)shutdown(c->pfd, SHUT_WR);
		c->p_shut = 1;
		return 1;
	}
	return 0;
}

/* pump_plain_in - plain -> down while down has room.  As pump_tls_in. */
static int
pump_plain_in(struct tls_conn *c, int *want)
{
	size_t free_bytes;
	ssize_t n;

	if (c->p_connecting || c->p_eof || c->wpend > 0 ||
	    (free_bytes = room(&c->down)) == 0)
		return 0;
	n = recv(c->pfd, c->down.data + c->down.len, free_bytes, 0);
	if (n > 0) {
		c->down.len += (size_t)n;
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		*want |= W_PR;
		return 0;
	}
	c->p_eof = 1;
	c->p_reset = n < 0; /* ECONNRESET: relmock's reset faults */
	return 1;
}

/* pump_tls_out - down -> TLS, then the close.  As pump_tls_in. */
static int
pump_tls_out(struct tls_conn *c, int *want)
{
	size_t len;
	int r;

	if (c->down.len > 0) {
		/* a write that wanted more must be retried as it was */
		len = c->wpend > 0 ? c->wpend : c->down.len;
		r = mbedtls_ssl_write(
		    &c->ssl, c->down.data + c->down.off, len);
		if (r > 0) {
			consume(&c->down, (size_t)r);
			c->wpend = 0;
			return 1;
		}
		if (r == MBEDTLS_ERR_SSL_WANT_WRITE ||
		    r == MBEDTLS_ERR_SSL_WANT_READ) {
			c->wpend = len;
			*want |= r == MBEDTLS_ERR_SSL_WANT_WRITE ? W_TW : W_TR;
			return 0;
		}
		fail(c, "write", r);
		return -1;
	}
	if (!c->p_eof)
		return 0;
	if (c->p_reset) {
		conn_close(c, 1);
		return -1;
	}
	c->closing = 1;
	r = mbedtls_ssl_close_notify(&c->ssl);
	if (r == MBEDTLS_ERR_SSL_WANT_WRITE) {
		*want |= W_TW;
		return 0;
	}
	conn_close(c, 0);
	return -1;
}

/* conn_pump - move every byte that can move now, then wait for events */
static void
conn_pump(struct tls_conn *c)
{
	int r, progress, want;

	do {
		want = 0;
		if (!c->open) {
			r = mbedtls_ssl_handshake(&c->ssl);
			if (r == MBEDTLS_ERR_SSL_WANT_READ) {
				want |= W_TR;
				break;
			}
			if (r == MBEDTLS_ERR_SSL_WANT_WRITE) {
				want |= W_TW;
				break;
			}
			if (r != 0) {
				fail(c, "handshake failed", r);
				return;
			}
			c->open = 1;
			event_del(c->timer);
			if (plain_connect(c) < 0) {
				conn_close(c, 1);
				return;
			}
		}
		progress = 0;
		if ((r = pump_tls_in(c, &want)) < 0)
			return;
		progress |= r;
		if ((r = pump_plain_out(c, &want)) < 0)
			return;
		progress |= r;
		if ((r = pump_plain_in(c, &want)) < 0)
			return;
		progress |= r;
		if ((r = pump_tls_out(c, &want)) < 0)
			return;
		progress |= r;
		if (c->p_connecting)
			want |= W_PW;
	} while (progress);
	set_events(c, want);
}

static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
	static const struct timeval deadline = { HANDSHAKE_MS / 1000, 0 };
	struct mock_tls *t = arg;
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (void *)&ss;
	struct sockaddr_in6 *s6 = (void *)&ss;
	struct tls_conn *c;
	char host[INET6_ADDRSTRLEN];
	socklen_t sl;
	int fd, r, one = 1;

	(void)what;
	for (;;) {
		sl = sizeof(ss);
		fd = accept4((int)lfd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("tls: accept: %s", strerror(errno));
			return;
		}
		if (t->nconns >= MAX_CONNS) {
			log_warn(
			    "tls: %u connections: refusing more", t->nconns);
			close(fd);
			continue;
		}
		(void)setsockopt(
		    fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = xcalloc(1, sizeof(*c));
		c->t = t;
		c->tfd = fd;
		c->pfd = -1;
		if (ss.ss_family == AF_INET6)
			snprintf(c->peer, sizeof(c->peer), "[%s]:%u",
			    inet_ntop(
			        AF_INET6, &s6->sin6_addr, host, sizeof(host)),
			    (unsigned)ntohs(s6->sin6_port));
		else
			snprintf(c->peer, sizeof(c->peer), "%s:%u",
			    inet_ntop(
			        AF_INET, &s4->sin_addr, host, sizeof(host)),
			    (unsigned)ntohs(s4->sin_port));
		mbedtls_ssl_init(&c->ssl);
		if ((r = mbedtls_ssl_setup(&c->ssl, &t->conf)) != 0)
			fatalx(
			    "tls: mbedtls_ssl_setup: -0x%04x", (unsigned)-r);
		mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
		c->ev[0] =
		    event_new(t->base, fd, EV_READ | EV_PERSIST, on_tls, c);
		c->ev[1] =
		    event_new(t->base, fd, EV_WRITE | EV_PERSIST, on_tls, c);
		c->timer = evtimer_new(t->base, on_deadline, c);
		if (c->ev[0] == NULL || c->ev[1] == NULL || c->timer == NULL)
			fatalx("tls: event_new failed");
		evtimer_add(c->timer, &deadline);
		c->next = t->conns;
		if (t->conns != NULL)
			t->conns->prev = c;
		t->conns = c;
		t->nconns++;
		conn_pump(c);
	}
}

/* --- the front ------------------------------------------------------- */

/* loopback_port - 1 if fd is bound to a loopback address; *port set */
static int
loopback_port(
    int fd, struct sockaddr_storage *ss, socklen_t *sl, unsigned *port)
{
	const struct sockaddr_in *s4 = (const void *)ss;
	const struct sockaddr_in6 *s6 = (const void *)ss;

	*sl = sizeof(*ss);
	if (getsockname(fd, (struct sockaddr *)ss, sl) < 0)
		fatal("tls: getsockname");
	if (ss->ss_family == AF_INET) {
		*port = ntohs(s4->sin_port);
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		*port = ntohs(s6->sin6_port);
		return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
	}
	return 0;
}

struct mock_tls *
mock_tls_start(struct event_base *base, const char *hostport, const char *dir,
    int plain_fd, int verbose)
{
	struct mock_tls *t = xcalloc(1, sizeof(*t));
	struct sockaddr_storage ss;
	char pers[64], err[256];
	unsigned plain_port;
	socklen_t sl;
	int rc;

	t->base = base;
	t->verbose = verbose;
	if (!loopback_port(plain_fd, &t->plain, &t->plainlen, &plain_port))
		fatalx("tls: the plain listener is not on loopback");
	if ((t->lfd = httpd_listen(hostport, 0, err, sizeof(err))) < 0)
		fatalx("tls listen %s: %s", hostport, err);
	if (!loopback_port(t->lfd, &ss, &sl, &t->port))
		fatalx("tls listen %s: relmock serves loopback addresses only",
		    hostport);

	/* one DRBG per process, seeded here (no fork detection) */
	mbedtls_entropy_init(&t->entropy);
	mbedtls_ctr_drbg_init(&t->drbg);
	snprintf(pers, sizeof(pers), "relmock-tls %ld %lld", (long)getpid(),
	    (long long)time(NULL));
	if ((rc = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func,
	         &t->entropy, (const unsigned char *)pers, strlen(pers))) != 0)
		fatalx("tls: DRBG seed failed (-0x%04x)", (unsigned)-rc);
	make_pki(t, dir);

	mbedtls_ssl_config_init(&t->conf);
	if ((rc = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_SERVER,
	         MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)) !=
	        0 ||
	    (rc = mbedtls_ssl_conf_own_cert(&t->conf, &t->crt, &t->key)) != 0)
		fatalx("tls: SSL config failed (-0x%04x)", (unsigned)-rc);
	mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
	    MBEDTLS_SSL_MINOR_VERSION_3); /* TLS 1.2 */
	mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);

	t->accept_ev =
	    event_new(base, t->lfd, EV_READ | EV_PERSIST, on_accept, t);
	if (t->accept_ev == NULL || event_add(t->accept_ev, NULL) < 0)
		fatalx("tls: event_new failed");
	return t;
}

unsigned
mock_tls_port(const struct mock_tls *t)
{
	return t->port;
}

void
mock_tls_free(struct mock_tls *t)
{
	if (t == NULL)
		return;
	while (t->conns != NULL)
		conn_close(t->conns, 0);
	event_free(t->accept_ev);
	close(t->lfd);
	mbedtls_ssl_config_free(&t->conf);
	mbedtls_x509_crt_free(&t->crt);
	mbedtls_pk_free(&t->key);
	mbedtls_ctr_drbg_free(&t->drbg);
	mbedtls_entropy_free(&t->entropy);
	free(t);
}
