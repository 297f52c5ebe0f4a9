/*
 * testlib_shm.c - the shm segment fixtures of testlib.h: a fresh segment
 * around each test, and forked children attached to it.
 */
#include <unistd.h>

#include "shm/shm.h"
#include "testlib.h"

void
tl_seg_create(struct shm_seg *seg, const char *name, uint32_t slots)
{
	const struct shm_sizes sizes = { .ratelimit_slots = slots };
	char err[256];

	shm_remove(name);
	ck_assert_msg(
	    shm_create(seg, name, &sizes, err, sizeof(err)) == 0, "%s", err);
}

void
tl_seg_destroy(struct shm_seg *seg, const char *name)
{
	shm_detach(seg);
	shm_remove(name);
}

void
tl_seg_attach(struct shm_seg *seg, const char *name)
{
	char err[256];

	if (shm_attach(seg, name, 1, err, sizeof(err)) != 0)
		_exit(3);
}

struct seg_child {
	const char *name;
	void (*child)(struct shm_seg *seg, void *arg, int id);
	void *arg;
};

static void
seg_child_run(void *arg, int id)
{
	const struct seg_child *c = arg;
	struct shm_seg seg;

	tl_seg_attach(&seg, c->name);
	c->child(&seg, c->arg, id);
	shm_detach(&seg);
}

void
tl_seg_children(int n, const char *name,
    void (*child)(struct shm_seg *seg, void *arg, int id), void *arg,
    pid_t *pids)
{
	struct seg_child c = { name, child, arg };

	tl_children(n, seg_child_run, &c, pids);
}
