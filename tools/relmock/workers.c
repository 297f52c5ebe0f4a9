/*
 * workers - relmock --workers N: N processes serving one loopback port,
 * so that more streams are held than one process may open files.
 *
 * The parent binds the port (SO_REUSEPORT), forks the workers and only
 * waits: worker 0 serves the parent's socket, every other worker binds
 * its own socket to the same address (SO_REUSEPORT), and the parent
 * closes its copy, so the kernel spreads connections over the workers'
 * sockets alone.  Each worker is a whole relmock (its own records,
 * counters, faults, control API); nothing is shared.  The parent forwards
 * SIGTERM/SIGINT to the workers and waits for them; if a worker exits on
 * its own, the parent stops the others and exits 1; if the parent is
 * killed outright, the workers get SIGTERM (PR_SET_PDEATHSIG).
 *
 * Fork without exec is safe here: relmock does not use nng, and the
 * workers create their event loop after the fork.  Must never leave a
 * worker behind: the parent returns only after reaping all of them.
 */
#include "tools/relmock/workers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http/server.h"
#include "util/log.h"
#include "util/util.h"

#define FDS_SPARE 64 /* files kept for other than clients */
#define MAX_CONNS 100000u

static unsigned worker_index;

unsigned
mock_worker_index(void)
{
	return worker_index;
}

unsigned
mock_nofile_conns(void)
{
	unsigned long n = nofile_raise();

	if (n >= MAX_CONNS + FDS_SPARE)
		return MAX_CONNS;
	return n > 2 * FDS_SPARE ? (unsigned)(n - FDS_SPARE) : FDS_SPARE;
}

/* bind_again - another SO_REUSEPORT socket on the address fd is bound
 * to */
static int
bind_again(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const struct sockaddr_in *s4 = (const void *)&ss;
	const struct sockaddr_in6 *s6 = (const void *)&ss;
	char host[INET6_ADDRSTRLEN], hp[INET6_ADDRSTRLEN + 16], err[256];
	int nfd;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		fatal("getsockname");
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(hp, sizeof(hp), "[%s]:%u", host,
		    (unsigned)ntohs(s6->sin6_port));
	} else {
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(hp, sizeof(hp), "%s:%u", host,
		    (unsigned)ntohs(s4->sin_port));
	}
	if ((nfd = httpd_listen(hp, 1, err, sizeof(err))) < 0)
		fatalx("worker %u: listen %s: %s", worker_index, hp, err);
	return nfd;
}

static void
on_chld(int sig)
{
	(void)sig;
}

/* signal_all - sig to every worker still running */
static void
signal_all(const pid_t *pids, unsigned n, int sig)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], sig);
}

/* supervise - the parent's life: wait, forward, reap, exit (with 1 if
 * rc is, or if a worker failed); never returns */
static void
supervise(pid_t *pids, unsigned n, const sigset_t *set, int rc)
{
	unsigned left = n, i;
	int sig, st, stopping = rc != 0;
	pid_t p;

	while (left > 0) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("signal %d: stopping %u workers", sig, left);
			stopping = 1;
			signal_all(pids, n, sig);
			continue;
		}
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			for (i = 0; i < n && pids[i] != p; i++)
				;
			if (i == n)
				continue;
			pids[i] = 0;
			left--;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				rc = 1;
				log_warn("worker %u (pid %ld) %s %d", i,
				    (long)p,
				    WIFEXITED(st) ? "exited with"
				                  : "killed by signal",
				    WIFEXITED(st) ? WEXITSTATUS(st)
				                  : WTERMSIG(st));
			}
			if (!stopping) {
				if (rc == 0)
					log_warn("worker %u (pid %ld) exited",
					    i, (long)p);
				rc = 1;
				stopping = 1;
				signal_all(pids, n, SIGTERM);
			}
		}
	}
	exit(rc);
}

int
mock_workers_start(unsigned n, int fd)
{
	struct sigaction sa;
	sigset_t set, old;
	pid_t *pids, parent;
	unsigned i;

	if (n <= 1)
		return fd;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_chld; /* SIGCHLD must not be discarded */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old);
	fflush(stdout);
	fflush(stderr);
	pids = xcalloc(n, sizeof(*pids));
	parent = getpid();
	for (i = 0; i < n; i++) {
		if ((pids[i] = fork()) < 0) {
			log_err("fork worker %u: %s", i, strerror(errno));
			signal_all(pids, i, SIGTERM);
			supervise(pids, i, &set, 1);
		}
		if (pids[i] == 0) {
			free(pids);
			worker_index = i;
			/* a parent killed outright takes its workers along */
			if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 ||
			    getppid() != parent)
				_exit(1);
			signal(SIGCHLD, SIG_DFL);
			sigprocmask(SIG_SETMASK, &old, NULL);
			if (i > 0) {
				int nfd = bind_again(fd);

				close(fd);
				fd = nfd;
			}
			return fd;
		}
	}
	close(fd);
	supervise(pids, n, &set, 0);
	return -1; /* not reached */
}
