/*
 * rawconn - raw TCP client for the end-to-end tests, loopback only:
 *
 *   rawconn send PORT [-s] [-t MS]
 *       connect to 127.0.0.1:PORT, send stdin byte for byte, then with -s
 *       shut the sending side (shutdown(SHUT_WR), a half-close), and copy
 *       what comes back to stdout until the server closes (exit 0) or
 *       nothing has come for MS ms (default 5000; exit 3).
 *   rawconn hold PORT N SECONDS
 *       open N idle connections (raising its own soft open-files limit
 *       as far as the hard one allows), print "held N" once all are
 *       connected, keep them SECONDS (at most 600), then exit.
 *
 * Everything is bounded: N <= 20000, every wait has a deadline.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HOLD   20000
#define MAX_HOLD_S 600
#define CONNECT_MS 5000

static int
usage(void)
{
	fprintf(stderr,
	    "usage: rawconn send PORT [-s] [-t MS] | "
	    "rawconn hold PORT N SECONDS\n");
	return 2;
}

static long
arg_num(const char *s, long min, long max)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "rawconn: bad number \"%s\" (%ld..%ld)\n", s,
		    min, max);
		exit(2);
	}
	return v;
}

/* dial - a blocking connection to 127.0.0.1:port, or -1. */
static int
dial(int port)
{
	struct sockaddr_in sin;
	struct timeval tv = { CONNECT_MS / 1000, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	/* a connect that the kernel retries is bounded too */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
do_send(int port, int half_close, int idle_ms)
{
	char buf[65536];
	struct pollfd pfd;
	ssize_t n;
	int fd = dial(port);

	if (fd < 0) {
		fprintf(stderr, "rawconn: connect: %s\n", strerror(errno));
		return 1;
	}
	while ((n = read(0, buf, sizeof(buf))) > 0) {
		ssize_t off = 0;

		while (off < n) {
			ssize_t w = send(
			    fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);

			if (w < 0) {
				/* the server may answer and close early */
				fprintf(stderr, "rawconn: send: %s\n",
				    strerror(errno));
				goto out;
			}
			off += w;
		}
	}
	if (half_close && shutdown(fd, SHUT_WR) != 0) {
		fprintf(stderr, "rawconn: shutdown: %s\n", strerror(errno));
		return 1;
	}
out:
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		int rc = poll(&pfd, 1, idle_ms);

		if (rc == 0) {
			fprintf(
			    stderr, "rawconn: nothing for %d ms\n", idle_ms);
			return 3;
		}
		if (rc < 0 && errno == EINTR)
			continue;
		n = rc < 0 ? -1 : read(fd, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n < 0) {
			fprintf(
			    stderr, "rawconn: read: %s\n", strerror(errno));
			return 1;
		}
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return 1;
	}
	close(fd);
	return fflush(stdout) == 0 ? 0 : 1;
}

static int
do_hold(int port, long n, long secs)
{
	struct rlimit rl;
	time_t end;
	long i;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)n + 16) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)n + 16 ? rl.rlim_max
		                                           : (rlim_t)n + 16;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (i = 0; i < n; i++) {
		if (dial(port) < 0) {
			fprintf(stderr, "rawconn: connection %ld: %s\n", i + 1,
			    strerror(errno));
			return 1;
		}
	}
	printf("held %ld\n", n);
	fflush(stdout);
	end = time(NULL) + secs;
	while (time(NULL) < end)
		sleep(1);
	return 0;
}

int
main(int argc, char **argv)
{
	int port, half_close = 0, idle_ms = 5000, i;

	if (argc < 3)
		return usage();
	port = (int)arg_num(argv[2], 1, 65535);
	if (strcmp(argv[1], "send") == 0) {
		for (i = 3; i < argc; i++) {
			if (strcmp(argv[i], "-s") == 0)
				half_close = 1;
			else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
				idle_ms = (int)arg_num(argv[++i], 1, 60000);
			else
				return usage();
		}
		return do_send(port, half_close, idle_ms);
	}
	if (strcmp(argv[1], "hold") == 0 && argc == 5)
		return do_hold(port, arg_num(argv[3], 1, MAX_HOLD),
		    arg_num(argv[4], 1, MAX_HOLD_S));
	return usage();
}
