/*
 * bulkhead_bench - the cost of bh_acquire and bh_release with many leases
 * held, on a private shm segment.  Prints figures; asserts nothing (a
 * benchmark is not a test).
 *   bulkhead_bench [-n HELD] [-i ITERATIONS] [-p PROCESSES]
 * HELD leases (default 20000) of bulkhead openrouter_chat_primary are
 * taken and kept (split among PROCESSES, default 1); then each process
 * churns ITERATIONS times (default 20000): the oldest of its leases is
 * released and a new one acquired (as streams end and start), with
 * max_concurrent one above HELD.  With one process, then: a lease more
 * acquired and released, and acquires refused at
 * max_concurrent = HELD (the saturated path): first with the clock
 * still, as in a burst (a recent scan answers), then with the clock
 * moving BH_RESCAN_MS per call (every refusal scans the slots).  Every
 * phase stops after ITERATIONS or 10 s, whichever comes first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm/bulkhead.h"
#include "shm/shm.h"
#include "bench/benchutil.h"
#include "util/util.h"

#define PROV     BH_PROV_OPENROUTER_CHAT_PRIMARY
#define TTL_MS   180000u
#define PHASE_NS (10ull * 1000 * 1000 * 1000)

static void
report(const char *who, const char *what, unsigned long n, uint64_t ns)
{
	printf("%-6s %-44s %8lu ops %10.0f ns/op\n", who, what, n,
	    n ? (double)ns / (double)n : 0.0);
}

/* refuse - acquires at max_concurrent total (all held) as long as n,
 * the clock moving step ms per call. */
static void
refuse(struct shm_seg *seg, const char *who, const char *what, unsigned total,
    uint64_t now, uint64_t step, unsigned long iters)
{
	uint64_t t0 = mono_ns();
	unsigned long n;

	for (n = 0; n < iters && (n % 64 || mono_ns() - t0 < PHASE_NS); n++) {
		struct bh_lease x;

		now += step;
		if (bh_acquire(seg, PROV, now, total, TTL_MS, &x, NULL) ==
		    BH_ACQUIRED)
			bh_release(seg, &x);
	}
	report(who, what, n, mono_ns() - t0);
}

/* run - one process: hold held leases, churn, saturate, release all. */
static int
run(const char *name, unsigned held, unsigned total, unsigned long iters,
    const char *who, int wait_fd)
{
	struct bh_lease *l = calloc(held ? held : 1, sizeof(*l));
	struct shm_seg seg;
	unsigned long n;
	uint64_t t0, now = now_ms();
	char err[256], c;

	if (l == NULL || shm_attach(&seg, name, 1, err, sizeof(err)) != 0) {
		fprintf(stderr, "bulkhead_bench: %s\n", err);
		return 1;
	}
	t0 = mono_ns();
	for (n = 0; n < held; n++)
		if (bh_acquire(&seg, PROV, now, total + 1, TTL_MS, &l[n],
		        NULL) != BH_ACQUIRED)
			break;
	report(who, "acquire while filling", n, mono_ns() - t0);
	if (n < held) {
		fprintf(
		    stderr, "bulkhead_bench: only %lu leases granted\n", n);
		return 1;
	}
	/* every process holds its share before anyone churns */
	if (wait_fd >= 0 && read(wait_fd, &c, 1) != 0)
		return 1;
	t0 = mono_ns();
	for (n = 0; n < iters && (n % 256 || mono_ns() - t0 < PHASE_NS); n++) {
		unsigned k = (unsigned)(n % held);

		bh_release(&seg, &l[k]);
		if (bh_acquire(&seg, PROV, now, total + 1, TTL_MS, &l[k],
		        NULL) != BH_ACQUIRED)
			return 1;
	}
	report(who, "release oldest + acquire (churn at HELD)", n,
	    mono_ns() - t0);
	if (wait_fd >= 0)
		goto out; /* the rest measures one process alone */
	t0 = mono_ns();
	for (n = 0; n < iters && (n % 256 || mono_ns() - t0 < PHASE_NS); n++) {
		struct bh_lease x;

		if (bh_acquire(&seg, PROV, now, total + 1, TTL_MS, &x, NULL) !=
		    BH_ACQUIRED)
			return 1;
		bh_release(&seg, &x);
	}
	report(who, "acquire + release of one more", n, mono_ns() - t0);
	refuse(&seg, who, "acquire refused (saturated, burst)", total, now, 0,
	    iters / 10);
	refuse(&seg, who, "acquire refused (saturated, a scan each)", total,
	    now, BH_RESCAN_MS, iters / 10);
out:
	t0 = mono_ns();
	for (n = 0; n < held; n++)
		bh_release(&seg, &l[n]);
	report(who, "release all", n, mono_ns() - t0);
	shm_detach(&seg);
	free(l);
	return 0;
}

int
main(int argc, char **argv)
{
	const struct shm_sizes sizes = { .ratelimit_slots = 64 };
	unsigned long iters = 20000;
	unsigned held = 20000, procs = 1;
	struct shm_seg seg;
	char name[64], err[256];
	int opt, rc = 0, gate[2];

	while ((opt = getopt(argc, argv, "n:i:p:")) != -1) {
		switch (opt) {
		case 'n':
			held = (unsigned)bench_arg("bulkhead_bench", optarg, 1, 1000000, "-n");
			break;
		case 'i':
			iters =
			    (unsigned long)bench_arg("bulkhead_bench", optarg, 1, 10000000, "-i");
			break;
		case 'p':
			procs = (unsigned)bench_arg("bulkhead_bench", optarg, 1, 16, "-p");
			break;
		default:
			fprintf(stderr,
			    "usage: bulkhead_bench [-n HELD] "
			    "[-i ITERATIONS] [-p PROCESSES]\n");
			return 2;
		}
	}
	snprintf(name, sizeof(name), "/rgbench.bh.%ld", (long)getpid());
	shm_remove(name);
	if (shm_create(&seg, name, &sizes, err, sizeof(err)) != 0) {
		fprintf(stderr, "bulkhead_bench: %s\n", err);
		return 1;
	}
	bh_area_init(&seg);
	printf("bulkhead_bench: %u leases held by %u process(es), "
	       "%lu iterations, segment %zu bytes\n",
	    held, procs, iters, seg.size);
	if (procs == 1) {
		rc = run(name, held, held, iters, "p0", -1);
	} else {
		pid_t pid[16];
		char who[16];

		if (pipe(gate) != 0)
			return 1;
		for (unsigned i = 0; i < procs; i++) {
			snprintf(who, sizeof(who), "p%u", i);
			fflush(stdout);
			pid[i] = fork();
			if (pid[i] == 0) {
				close(gate[1]);
				rc = run(name, held / procs, held, iters, who,
				    gate[0]);
				fflush(stdout);
				_exit(rc);
			}
		}
		close(gate[0]);
		/* the children are filling; they churn once all hold */
		for (int k = 0; k < 100 &&
		     bh_inflight(&seg, PROV, now_ms()) < held / procs * procs;
		     k++)
			usleep(100000);
		close(gate[1]);
		for (unsigned i = 0; i < procs; i++) {
			int st;

			if (waitpid(pid[i], &st, 0) != pid[i] ||
			    !WIFEXITED(st) || WEXITSTATUS(st) != 0)
				rc = 1;
		}
	}
	printf("bulkhead_bench: in flight at the end %u\n",
	    bh_inflight(&seg, PROV, now_ms()));
	shm_detach(&seg);
	shm_remove(name);
	return rc;
}
