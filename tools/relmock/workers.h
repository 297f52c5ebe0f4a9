/*
 * workers - relmock --workers N (workers.c): N processes on one port
 * (SO_REUSEPORT), a parent that only waits and forwards SIGTERM/SIGINT;
 * and the open-files limit raised to its hard limit.
 */
#ifndef RG_RELMOCK_WORKERS_H
#define RG_RELMOCK_WORKERS_H

/*
 * mock_workers_start - with n <= 1, returns fd.  Else forks n workers and
 * returns, in each worker, the listening socket it serves (fd, bound with
 * SO_REUSEPORT, or its own socket on the same address); the parent never
 * returns: it waits for the workers, forwards SIGTERM/SIGINT, and exits
 * 0 when all exited 0, else 1.  Call before creating the event loop.
 */
int mock_workers_start(unsigned n, int fd);
/* mock_worker_index - this worker's number, from 0 (0 without workers). */
unsigned mock_worker_index(void);
/* mock_nofile_conns - raise RLIMIT_NOFILE's soft limit to its hard limit;
 * returns how many client connections that allows (a few files spare,
 * at most 100000). */
unsigned mock_nofile_conns(void);

#endif
