/*
 * link_test - nng links between link_ctx pairs in one process, on one
 * event_base, in a temporary run_dir: ping/pong with replies to reply_to,
 * a dead peer, a peer that comes up after the dial, oversized messages,
 * reply addresses outside run_dir, garbage pushed into an inbox, socket
 * file permissions, stale socket files and removal on close.
 *
 * nng is not fork-safe and Check forks per test: main() never touches
 * nng; every test opens (and closes) its own sockets.  Every wait is
 * bounded by a deadline.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>

#include "proto/link.h"
#include "testlib.h"
#include "util/util.h"

#define WAIT_MS 5000 /* deadline of every wait */

static char topdir[32]; /* per test case, removed by the teardown */

static void
make_topdir(void)
{
	strcpy(topdir, "/tmp/rglXXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(topdir));
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void
remove_topdir(void)
{
	if (topdir[0] != '\0')
		(void)nftw(topdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	topdir[0] = '\0';
}

/* new_run_dir - a fresh directory for one test under topdir. */
static void
new_run_dir(char *buf, size_t len)
{
	static unsigned seq;

	snprintf(buf, len, "%s/%u.%ld", topdir, seq++, (long)getpid());
	ck_assert_int_eq(mkdir(buf, 0700), 0);
}

/* What a test inbox saw. */
struct rx {
	struct link_ctx *ctx;
	struct link_stats st;
	int n;
	int out_of_order; /* a PING whose nonce was not the previous + 1 */
	int answer_pings; /* reply PONG to reply_to */
	int close_on_msg; /* call link_close from the callback */
	int reply_rc;
	struct proto_msg last; /* strings cleared: they do not outlive cb */
	char reply_to[LINK_ADDR_MAX];
};

static void
on_msg(void *arg, const struct proto_msg *m)
{
	struct rx *rx = arg;

	if (m->type == PROTO_T_PING && rx->n > 0 &&
	    rx->last.type == PROTO_T_PING &&
	    m->u.ping.nonce != rx->last.u.ping.nonce + 1)
		rx->out_of_order++;
	rx->n++;
	rx->last = *m;
	rx->reply_to[0] = '\0';
	if (m->type == PROTO_T_PING) {
		const struct proto_str *r = &m->u.ping.reply_to;

		snprintf(rx->reply_to, sizeof(rx->reply_to), "%.*s",
		    (int)r->len, r->p);
		rx->last.u.ping.reply_to.p = NULL;
	}
	if (m->type == PROTO_T_PING && rx->answer_pings) {
		struct proto_msg pong = { .type = PROTO_T_PONG };

		pong.u.pong.nonce = m->u.ping.nonce;
		pong.u.pong.sent_us = m->u.ping.sent_us;
		rx->reply_rc = link_send_addr(rx->ctx, rx->reply_to, &pong);
	}
	if (rx->close_on_msg) {
		link_close(rx->ctx);
		rx->ctx = NULL;
	}
}

/* Test harness: one base with a 10 ms tick, so EVLOOP_ONCE never waits
 * longer than that. */
struct harness {
	struct event_base *base;
	struct event *tick;
	char dir[64];
};

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static void
h_init(struct harness *h)
{
	struct timeval tv = { 0, 10 * 1000 };

	new_run_dir(h->dir, sizeof(h->dir));
	h->base = event_base_new();
	ck_assert_ptr_nonnull(h->base);
	h->tick = event_new(h->base, -1, EV_PERSIST, on_tick, NULL);
	ck_assert_ptr_nonnull(h->tick);
	ck_assert_int_eq(event_add(h->tick, &tv), 0);
}

static void
h_fini(struct harness *h)
{
	event_free(h->tick);
	event_base_free(h->base);
}

static void
rx_open(struct harness *h, struct rx *rx, enum rg_role role,
    unsigned instance)
{
	memset(rx, 0, sizeof(*rx));
	rx->ctx = link_open(h->base, h->dir, role, instance, on_msg, rx,
	    &rx->st);
	ck_assert_ptr_nonnull(rx->ctx);
}

/* run_until - drive the loop until *counter >= want or the deadline;
 * returns whether it got there. */
static int
run_until(struct harness *h, const int *counter, int want)
{
	uint64_t end = mono_ms() + WAIT_MS;

	while (*counter < want && mono_ms() < end)
		ck_assert_int_ge(event_base_loop(h->base, EVLOOP_ONCE), 0);
	return *counter >= want;
}

/* run_for - drive the loop for ms milliseconds. */
static void
run_for(struct harness *h, unsigned ms)
{
	uint64_t end = mono_ms() + ms;

	while (mono_ms() < end)
		ck_assert_int_ge(event_base_loop(h->base, EVLOOP_ONCE), 0);
}

static uint64_t
stat_get(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void
make_ping(struct proto_msg *m, uint64_t nonce, const char *reply_to)
{
	memset(m, 0, sizeof(*m));
	m->type = PROTO_T_PING;
	m->u.ping.nonce = nonce;
	m->u.ping.sent_us = mono_us();
	m->u.ping.reply_to = proto_str_from(reply_to);
}

START_TEST(ping_pong)
{
	struct harness h;
	struct rx a, b;
	struct proto_msg m;
	char want[LINK_ADDR_MAX];

	h_init(&h);
	rx_open(&h, &a, ROLE_PROVIDER, 300);
	rx_open(&h, &b, ROLE_ADMISSION, 3);
	b.answer_pings = 1;
	snprintf(want, sizeof(want), "ipc://%s/provider.300.ipc", h.dir);
	ck_assert_str_eq(link_my_addr(a.ctx), want);

	make_ping(&m, 0x1122334455667788ull, link_my_addr(a.ctx));
	m.src_role = ROLE_MONITOR; /* overwritten by link_send */
	ck_assert_int_eq(link_send(a.ctx, ROLE_ADMISSION, 3, &m), LINK_OK);
	ck_assert_uint_eq(m.src_role, ROLE_PROVIDER);
	ck_assert_uint_eq(m.src_instance, 300 & 0xff);

	ck_assert_msg(run_until(&h, &a.n, 1), "no PONG (b got %d)", b.n);
	/* B saw the PING with its source filled in */
	ck_assert_int_eq(b.n, 1);
	ck_assert_uint_eq(b.last.type, PROTO_T_PING);
	ck_assert_uint_eq(b.last.src_role, ROLE_PROVIDER);
	ck_assert_uint_eq(b.last.src_instance, 44);
	ck_assert_uint_eq(b.last.u.ping.nonce, 0x1122334455667788ull);
	ck_assert_str_eq(b.reply_to, link_my_addr(a.ctx));
	ck_assert_int_eq(b.reply_rc, LINK_OK);
	/* A got the PONG from admission.3 */
	ck_assert_uint_eq(a.last.type, PROTO_T_PONG);
	ck_assert_uint_eq(a.last.src_role, ROLE_ADMISSION);
	ck_assert_uint_eq(a.last.src_instance, 3);
	ck_assert_uint_eq(a.last.u.pong.nonce, 0x1122334455667788ull);
	ck_assert_uint_eq(a.last.u.pong.sent_us, m.u.ping.sent_us);

	ck_assert_uint_eq(stat_get(&a.st.sent), 1);
	ck_assert_uint_eq(stat_get(&a.st.recv), 1);
	ck_assert_uint_eq(stat_get(&b.st.sent), 1);
	ck_assert_uint_eq(stat_get(&b.st.recv), 1);
	ck_assert_uint_eq(stat_get(&a.st.rejected) + stat_get(&b.st.rejected) +
	    stat_get(&a.st.send_err) + stat_get(&b.st.send_err), 0);

	/* a burst larger than one wakeup's batch all arrives, in order */
	for (unsigned i = 0; i < 600; i++) {
		struct proto_msg p = { .type = PROTO_T_PONG };

		p.u.pong.nonce = i;
		while (link_send(a.ctx, ROLE_ADMISSION, 3, &p) == LINK_E_AGAIN)
			ck_assert_int_ge(event_base_loop(h.base,
			    EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
	}
	ck_assert(run_until(&h, &b.n, 601));
	ck_assert_uint_eq(b.last.u.pong.nonce, 599);

	link_close(a.ctx);
	link_close(b.ctx);
	h_fini(&h);
}
END_TEST

START_TEST(socket_file)
{
	struct harness h;
	struct rx a;
	struct stat st;
	char path[LINK_ADDR_MAX];
	mode_t old = umask(0); /* so that 0600 can only come from link */

	h_init(&h);
	rx_open(&h, &a, ROLE_INGRESS, 1);
	umask(old);
	snprintf(path, sizeof(path), "%s/ingress.1.ipc", h.dir);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_str_eq(link_my_addr(a.ctx) + strlen("ipc://"), path);

	link_close(a.ctx);
	ck_assert_int_eq(lstat(path, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	link_close(NULL);
	h_fini(&h);
}
END_TEST

START_TEST(stale_socket_file)
{
	struct harness h;
	struct rx a, b;
	struct proto_msg m;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char path[LINK_ADDR_MAX];
	struct stat st;
	int fd;

	h_init(&h);
	/* a socket file left by a dead process */
	snprintf(path, sizeof(path), "%s/monitor.0.ipc", h.dir);
	ck_assert_uint_lt(strlen(path), sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	ck_assert_int_eq(lstat(path, &st), 0);

	rx_open(&h, &b, ROLE_MONITOR, 0);
	rx_open(&h, &a, ROLE_INGRESS, 0);
	make_ping(&m, 7, "");
	ck_assert_int_eq(link_send(a.ctx, ROLE_MONITOR, 0, &m), LINK_OK);
	ck_assert(run_until(&h, &b.n, 1));
	ck_assert_uint_eq(b.last.u.ping.nonce, 7);
	link_close(b.ctx);
	link_close(a.ctx);

	/* something that is not a socket is not ours to remove */
	snprintf(path, sizeof(path), "%s/monitor.1.ipc", h.dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_ptr_null(link_open(h.base, h.dir, ROLE_MONITOR, 1, on_msg,
	    NULL, NULL));
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	h_fini(&h);
}
END_TEST

START_TEST(dead_peer)
{
	struct harness h;
	struct rx a;
	struct proto_msg m;
	unsigned ok = 0, again = 0;

	h_init(&h);
	rx_open(&h, &a, ROLE_PROVIDER, 0);
	/* nobody listens on monitor.99: every send returns at once, queued
	 * (up to the send buffer) or dropped with LINK_E_AGAIN */
	for (unsigned i = 0; i < 2000; i++) {
		int rc;

		make_ping(&m, i, "");
		rc = link_send(a.ctx, ROLE_MONITOR, 99, &m);
		ck_assert_msg(rc == LINK_OK || rc == LINK_E_AGAIN, "rc %d",
		    rc);
		if (rc == LINK_OK)
			ok++;
		else
			again++;
	}
	ck_assert_uint_eq(stat_get(&a.st.sent), ok);
	ck_assert_uint_eq(stat_get(&a.st.eagain), again);
	ck_assert_uint_gt(again, 0); /* the queue is bounded */
	ck_assert_uint_eq(stat_get(&a.st.send_err), 0);
	link_close(a.ctx);
	h_fini(&h);
}
END_TEST

/* What the give-up callback saw. */
struct gaveup {
	struct link_ctx *ctx;
	unsigned n;
	unsigned not_ping;     /* a message not decoded as the PING sent */
	unsigned out_of_order; /* nonces not oldest first */
	uint64_t last;
	int resend;            /* hold one more from inside the callback */
};

static void
on_giveup(void *arg, const struct proto_msg *m)
{
	struct gaveup *g = arg;

	if (m->type != PROTO_T_PING) {
		g->not_ping++;
		return;
	}
	if (g->n > 0 && m->u.ping.nonce != g->last + 1)
		g->out_of_order++;
	g->last = m->u.ping.nonce;
	g->n++;
	if (g->resend) {
		struct proto_msg r;

		g->resend = 0;
		make_ping(&r, 1000000, "");
		ck_assert_int_eq(link_send_held(g->ctx, ROLE_MONITOR, 6, &r,
				     100),
		    LINK_OK);
	}
}

START_TEST(held_for_a_busy_or_late_peer)
{
	struct gaveup gu = { .resend = 1 };
	struct harness h;
	struct rx a, b;
	struct proto_msg m;

	h_init(&h);
	rx_open(&h, &a, ROLE_PROVIDER, 0);
	/* nobody listens on monitor.5 yet: more than the send buffer takes,
	 * every one accepted (held), none lost */
	for (unsigned i = 0; i < 3000; i++) {
		make_ping(&m, i, "");
		ck_assert_int_eq(link_send_held(a.ctx, ROLE_MONITOR, 5, &m,
				     WAIT_MS),
		    LINK_OK);
	}
	ck_assert_uint_gt(stat_get(&a.st.held), 0);
	ck_assert_uint_eq(stat_get(&a.st.eagain), 0);
	/* the peer comes: while the held ones drain, more are sent; all
	 * arrive, in order (a new one waits behind the held) */
	rx_open(&h, &b, ROLE_MONITOR, 5);
	ck_assert(run_until(&h, &b.n, 1));
	for (unsigned i = 3000; i < 3500; i++) {
		make_ping(&m, i, "");
		ck_assert_int_eq(link_send_held(a.ctx, ROLE_MONITOR, 5, &m,
				     WAIT_MS),
		    LINK_OK);
	}
	ck_assert_msg(run_until(&h, &b.n, 3500), "got %d of 3500", b.n);
	ck_assert_int_eq(b.out_of_order, 0);
	ck_assert_uint_eq(stat_get(&a.st.held_sent), stat_get(&a.st.held));
	ck_assert_uint_eq(stat_get(&a.st.held_dropped), 0);
	/* a peer that never comes: held messages are given up after their
	 * wait, counted, and each handed back to the sender decoded, oldest
	 * first; the callback may hold back a new one (behind the others,
	 * given up in its turn) */
	gu.ctx = a.ctx;
	link_on_giveup(a.ctx, on_giveup, &gu);
	for (unsigned i = 0; i < 2000; i++) {
		make_ping(&m, i, "");
		ck_assert_int_eq(link_send_held(a.ctx, ROLE_MONITOR, 6, &m,
				     100),
		    LINK_OK);
	}
	run_for(&h, 400);
	ck_assert_uint_gt(stat_get(&a.st.held_dropped), 0);
	ck_assert_uint_eq(stat_get(&a.st.held_dropped),
	    stat_get(&a.st.held) - stat_get(&a.st.held_sent));
	ck_assert_uint_eq(gu.not_ping, 0);
	ck_assert_uint_eq(gu.out_of_order, 1); /* the callback's, last */
	ck_assert_uint_eq(gu.last, 1000000);
	ck_assert_uint_eq(gu.n, stat_get(&a.st.held_dropped));
	link_close(b.ctx);
	link_close(a.ctx);
	h_fini(&h);
}
END_TEST

START_TEST(late_peer)
{
	struct harness h;
	struct rx a, b;
	struct proto_msg m;
	int rc;

	h_init(&h);
	rx_open(&h, &a, ROLE_INGRESS, 2);
	/* the dial happens now, to nobody */
	make_ping(&m, 1, "");
	rc = link_send(a.ctx, ROLE_TOOL_WORKER, 1, &m);
	ck_assert(rc == LINK_OK || rc == LINK_E_AGAIN);
	run_for(&h, 50);

	/* the peer comes up; a message sent now arrives */
	rx_open(&h, &b, ROLE_TOOL_WORKER, 1);
	make_ping(&m, 2, "");
	ck_assert_int_eq(link_send(a.ctx, ROLE_TOOL_WORKER, 1, &m), LINK_OK);
	ck_assert(run_until(&h, &b.n, 1));
	if (b.last.u.ping.nonce != 2) /* the first one, queued, came too */
		ck_assert(run_until(&h, &b.n, 2));
	ck_assert_uint_eq(b.last.u.ping.nonce, 2);
	ck_assert_uint_eq(b.last.src_role, ROLE_INGRESS);

	/* the peer restarts: reconnect reaches the new one */
	link_close(b.ctx);
	run_for(&h, 50);
	rx_open(&h, &b, ROLE_TOOL_WORKER, 1);
	{
		uint64_t end = mono_ms() + WAIT_MS;
		uint64_t nonce = 100;

		/* a message handed to the dying pipe may be lost (at most
		 * once): resend until one arrives */
		while (b.n == 0 && mono_ms() < end) {
			make_ping(&m, nonce++, "");
			rc = link_send(a.ctx, ROLE_TOOL_WORKER, 1, &m);
			ck_assert(rc == LINK_OK || rc == LINK_E_AGAIN);
			run_for(&h, 20);
		}
	}
	ck_assert_int_ge(b.n, 1);
	ck_assert_uint_ge(b.last.u.ping.nonce, 100);
	link_close(b.ctx);
	link_close(a.ctx);
	h_fini(&h);
}
END_TEST

START_TEST(oversize)
{
	struct harness h;
	struct rx a, b;
	struct proto_msg m = { .type = PROTO_T_PING_REQ };
	char *big = malloc(2 * PROTO_MAX_MSG);

	ck_assert_ptr_nonnull(big);
	memset(big, 'x', 2 * PROTO_MAX_MSG);
	h_init(&h);
	rx_open(&h, &a, ROLE_CLIENT, 0);
	rx_open(&h, &b, ROLE_SUPERVISOR, 0);

	m.u.ping_req.reply_to.p = big;
	m.u.ping_req.reply_to.len = 2 * PROTO_MAX_MSG;
	ck_assert_int_eq(link_send(a.ctx, ROLE_SUPERVISOR, 0, &m),
	    LINK_E_TOOBIG);
	ck_assert_uint_eq(stat_get(&a.st.oversize), 1);
	ck_assert_int_eq(link_send_addr(a.ctx, link_my_addr(b.ctx), &m),
	    LINK_E_TOOBIG);
	ck_assert_uint_eq(stat_get(&a.st.oversize), 2);
	/* under PROTO_MAX_MSG but too long for a STR */
	m.u.ping_req.reply_to.len = UINT16_MAX + 1;
	ck_assert_int_eq(link_send(a.ctx, ROLE_SUPERVISOR, 0, &m),
	    LINK_E_TOOBIG);
	ck_assert_uint_eq(stat_get(&a.st.oversize), 3);
	ck_assert_uint_eq(stat_get(&a.st.sent), 0);
	/* an unknown type cannot be encoded */
	m.type = 200;
	ck_assert_int_eq(link_send(a.ctx, ROLE_SUPERVISOR, 0, &m),
	    LINK_E_ENCODE);
	ck_assert_uint_eq(stat_get(&a.st.send_err), 1);

	/* the largest STR goes through */
	m.type = PROTO_T_PING_REQ;
	m.u.ping_req.reply_to.len = UINT16_MAX;
	ck_assert_int_eq(link_send(a.ctx, ROLE_SUPERVISOR, 0, &m), LINK_OK);
	ck_assert(run_until(&h, &b.n, 1));
	ck_assert_uint_eq(b.last.type, PROTO_T_PING_REQ);
	ck_assert_uint_eq(b.last.u.ping_req.reply_to.len, UINT16_MAX);
	ck_assert_uint_eq(stat_get(&b.st.rejected), 0);

	link_close(a.ctx);
	link_close(b.ctx);
	h_fini(&h);
	free(big);
}
END_TEST

START_TEST(reply_addr)
{
	struct harness h;
	struct rx a;
	struct proto_msg m;
	char bad[8][2 * LINK_ADDR_MAX], ok[LINK_ADDR_MAX];
	int rc;

	h_init(&h);
	rx_open(&h, &a, ROLE_ADMISSION, 0);
	make_ping(&m, 1, "");
	snprintf(bad[0], sizeof(bad[0]), "ipc:///tmp/elsewhere/x.ipc");
	snprintf(bad[1], sizeof(bad[1]), "tcp://127.0.0.1:1");
	snprintf(bad[2], sizeof(bad[2]), "ipc://%s/../x.ipc", h.dir);
	snprintf(bad[3], sizeof(bad[3]), "ipc://%s/sub/x.ipc", h.dir);
	snprintf(bad[4], sizeof(bad[4]), "ipc://%s/", h.dir);
	snprintf(bad[5], sizeof(bad[5]), "ipc://%sx/y.ipc", h.dir);
	snprintf(bad[6], sizeof(bad[6]), "ipc://%s/%0*d", h.dir, 110, 0);
	snprintf(bad[7], sizeof(bad[7]), "ipc://%s/..", h.dir);
	for (size_t i = 0; i < RG_NELEM(bad); i++)
		ck_assert_msg(link_send_addr(a.ctx, bad[i], &m) == LINK_E_ADDR,
		    "accepted %s", bad[i]);
	ck_assert_int_eq(link_send_addr(a.ctx, NULL, &m), LINK_E_ADDR);
	ck_assert_uint_eq(stat_get(&a.st.send_err), RG_NELEM(bad) + 1);
	ck_assert_uint_eq(stat_get(&a.st.sent) + stat_get(&a.st.eagain), 0);

	/* inside run_dir is fine even when nobody listens there */
	snprintf(ok, sizeof(ok), "ipc://%s/client.7.ipc", h.dir);
	rc = link_send_addr(a.ctx, ok, &m);
	ck_assert(rc == LINK_OK || rc == LINK_E_AGAIN);
	ck_assert_uint_eq(stat_get(&a.st.sent) + stat_get(&a.st.eagain), 1);
	/* and so is our own inbox */
	ck_assert_int_eq(link_send_addr(a.ctx, link_my_addr(a.ctx), &m),
	    LINK_OK);
	ck_assert(run_until(&h, &a.n, 1));
	link_close(a.ctx);
	h_fini(&h);
}
END_TEST

START_TEST(garbage)
{
	struct harness h;
	struct rx b;
	struct proto_msg m;
	nng_socket raw;
	uint8_t buf[64];
	size_t len;
	static const uint8_t bad_type[] = { 0x52, 0x47, 1, 99, 0, 0, 0, 0,
		0, 0, 0, 0 };

	h_init(&h);
	rx_open(&h, &b, ROLE_PROVIDER, 5);
	ck_assert_int_eq(nng_push0_open(&raw), 0);
	ck_assert_int_eq(nng_socket_set_ms(raw, NNG_OPT_SENDTIMEO, WAIT_MS),
	    0);
	ck_assert_int_eq(nng_dial(raw, link_my_addr(b.ctx), NULL, 0), 0);
	ck_assert_int_eq(nng_send(raw, (void *)(uintptr_t)"garbage", 7, 0),
	    0);
	ck_assert_int_eq(nng_send(raw, (void *)(uintptr_t)bad_type,
	    sizeof(bad_type), 0), 0);
	ck_assert_int_eq(nng_send(raw, buf, 0, 0), 0); /* empty */
	/* then a valid message on the same pipe: it comes after them */
	make_ping(&m, 9, "");
	m.src_role = ROLE_INGRESS;
	ck_assert_int_eq(proto_encode(&m, buf, sizeof(buf), &len), PROTO_OK);
	ck_assert_int_eq(nng_send(raw, buf, len, 0), 0);

	ck_assert(run_until(&h, &b.n, 1));
	ck_assert_int_eq(b.n, 1);
	ck_assert_uint_eq(b.last.type, PROTO_T_PING);
	ck_assert_uint_eq(b.last.u.ping.nonce, 9);
	ck_assert_uint_eq(stat_get(&b.st.rejected), 3);
	ck_assert_uint_eq(stat_get(&b.st.recv), 1);
	run_for(&h, 30);
	ck_assert_int_eq(b.n, 1);
	nng_close(raw);
	link_close(b.ctx);
	h_fini(&h);
}
END_TEST

START_TEST(close_in_callback)
{
	struct harness h;
	struct rx a, b;
	struct proto_msg m;
	char path[LINK_ADDR_MAX];
	struct stat st;

	h_init(&h);
	rx_open(&h, &a, ROLE_INGRESS, 0);
	rx_open(&h, &b, ROLE_MONITOR, 0);
	snprintf(path, sizeof(path), "%s", link_my_addr(b.ctx) + 6);
	/* connect first, then queue three messages in B's inbox while the
	 * loop does not run, so that one wakeup sees all of them */
	make_ping(&m, 0, "");
	ck_assert_int_eq(link_send(a.ctx, ROLE_MONITOR, 0, &m), LINK_OK);
	ck_assert(run_until(&h, &b.n, 1));
	for (int i = 1; i <= 3; i++) {
		make_ping(&m, (uint64_t)i, "");
		ck_assert_int_eq(link_send(a.ctx, ROLE_MONITOR, 0, &m),
		    LINK_OK);
	}
	usleep(100 * 1000);
	b.close_on_msg = 1;
	ck_assert(run_until(&h, &b.n, 2));
	ck_assert_ptr_null(b.ctx);
	run_for(&h, 30);
	ck_assert_int_eq(b.n, 2); /* nothing after the close */
	ck_assert_uint_eq(b.last.u.ping.nonce, 1);
	ck_assert_int_eq(lstat(path, &st), -1);
	link_close(a.ctx);
	h_fini(&h);
}
END_TEST

START_TEST(addresses)
{
	struct harness h;
	char buf[LINK_ADDR_MAX], dir[200];
	struct rx a;
	int rc;

	h_init(&h);
	ck_assert_int_eq(link_addr(buf, sizeof(buf), "/run/relgate",
	    ROLE_TOOL_WORKER, 12), 0);
	ck_assert_str_eq(buf, "ipc:///run/relgate/tool-worker.12.ipc");
	ck_assert_int_eq(link_addr(buf, sizeof(buf), "/run/relgate//",
	    ROLE_SUPERVISOR, 0), 0);
	ck_assert_str_eq(buf, "ipc:///run/relgate/supervisor.0.ipc");
	ck_assert_int_eq(link_addr(buf, 10, "/run/relgate", ROLE_INGRESS, 0),
	    -1);
	ck_assert_int_eq(link_addr(buf, sizeof(buf), "/run/relgate",
	    ROLE_COUNT, 0), -1);
	/* a path that does not fit sun_path */
	snprintf(dir, sizeof(dir), "/tmp/%0*d", 100, 0);
	ck_assert_int_eq(link_addr(buf, sizeof(buf), dir, ROLE_INGRESS, 0),
	    -1);
	ck_assert_ptr_null(link_open(h.base, dir, ROLE_INGRESS, 0, on_msg,
	    NULL, NULL));

	/* many distinct peers: the cache stays bounded and usable */
	rx_open(&h, &a, ROLE_PROVIDER, 0);
	for (unsigned i = 0; i < 120; i++) {
		struct proto_msg m;

		make_ping(&m, i, "");
		rc = link_send(a.ctx, ROLE_TOOL_WORKER, 1000 + i % 40, &m);
		ck_assert(rc == LINK_OK || rc == LINK_E_AGAIN);
	}
	ck_assert_uint_eq(stat_get(&a.st.sent) + stat_get(&a.st.eagain), 120);
	{
		struct proto_msg m;

		make_ping(&m, 1, "");
		ck_assert_int_eq(link_send(a.ctx, ROLE_PROVIDER, 0, &m),
		    LINK_OK);
		ck_assert(run_until(&h, &a.n, 1));
	}
	link_close(a.ctx);
	h_fini(&h);
}
END_TEST

static Suite *
link_suite(void)
{
	Suite *s = suite_create("link");
	TCase *tc = tcase_create("ipc");

	tcase_add_unchecked_fixture(tc, make_topdir, remove_topdir);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, ping_pong);
	tcase_add_test(tc, socket_file);
	tcase_add_test(tc, stale_socket_file);
	tcase_add_test(tc, dead_peer);
	tcase_add_test(tc, late_peer);
	tcase_add_test(tc, held_for_a_busy_or_late_peer);
	tcase_add_test(tc, oversize);
	tcase_add_test(tc, reply_addr);
	tcase_add_test(tc, garbage);
	tcase_add_test(tc, close_in_callback);
	tcase_add_test(tc, addresses);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	/* nng is touched only inside the tests, so forking per test is
	 * safe; CK_FORK=no works as well. */
	return tl_run(link_suite());
}
