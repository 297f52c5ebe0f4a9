/*
 * toolworker.h - the parts of the tool-worker process: the delivery
 * worker (toolworker.c) and the tool-job runner (toolworker_jobs.c).
 */
#ifndef RG_TOOLWORKER_H
#define RG_TOOLWORKER_H

#include <stdint.h>

struct event;
struct role_ctx;
struct outcall_env;
struct tj;

/* tj_new - the job runner of this process, calling out through out;
 * NULL when it cannot be set up. */
struct tj *tj_new(struct role_ctx *ctx, struct outcall_env *out);
/* tj_wake - jobs were queued: a claim pass soon. */
void tj_wake(struct tj *j);
/* tj_timer - once a second: the jobs of tool-workers that died are
 * queued again. */
void tj_timer(struct tj *j);
/* tj_reload - ctx->cfg changed: the tools again. */
void tj_reload(struct tj *j);
/* tj_stop - calls in flight cancelled, their jobs queued again for the
 * other workers (commits: drain them before tj_free). */
void tj_stop(struct tj *j);
void tj_free(struct tj *j);

/* tw_kick - the claim pass of timer ev: at once (0; once, however often
 * it is asked before it runs) or in after_ms. */
void tw_kick(struct event *ev, uint64_t after_ms);

#endif
