/*
 * notify_recv - test helper: bind a unix datagram socket (as systemd's
 * NOTIFY_SOCKET) and print each datagram on its own line until SECONDS
 * pass or a datagram equals STOP_AT.
 *   notify_recv PATH SECONDS [STOP_AT]
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_un sa;
	struct timespec t0, t;
	char buf[512];
	long ms;
	int fd;

	if (argc < 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: notify_recv PATH SECONDS [STOP_AT]\n");
		return 2;
	}
	ms = atol(argv[2]) * 1000;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("notify_recv");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long left;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &t);
		left = ms - ((t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			break;
		buf[n] = '\0';
		printf("%s\n", buf);
		fflush(stdout);
		if (argc > 3 && strcmp(buf, argv[3]) == 0)
			break;
	}
	close(fd);
	unlink(argv[1]);
	return 0;
}
