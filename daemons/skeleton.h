/*
 * skeleton - the one main loop every relgate role runs.
 *
 * A role's main() hands a const struct role_ops to role_main(), which
 * parses the command line the supervisor gives (-c FILE -s SLOT -i N),
 * sets up logging, the config (the supervisor's validated effective file),
 * signals, the role's own libevent base, its own LMDB env, its nng inbox
 * and links, a heartbeat into its process-table slot, and exits cleanly on
 * SIGTERM.  Pings along every link of RG_LINKS are answered here, so the
 * whole process graph is testable before the roles do real work.
 *
 * Also declared here, once: the process graph.  RG_CHILDREN is the
 * supervisor's table of children; RG_LINKS the directed nng links.
 */
#ifndef RG_SKELETON_H
#define RG_SKELETON_H

#include <stddef.h>

#include "conf/config.h"
#include "proto/link.h"
#include "proto/roles.h"
#include "shm/shm.h"
#include "store/store.h"

struct event_base;

enum restart_policy {
	RESTART_ALWAYS, /* restart with backoff whatever the exit */
};

/*
 * RG_CHILD(ROLE, fixed_count, count_knob, policy): count_knob (a KNOB_
 * id, or -1) overrides fixed_count; a knob value of 0 means "one per
 * CPU".
 */
#define RG_CHILDREN(C)                                                    \
	C(INGRESS, 0, KNOB_ingress_count, RESTART_ALWAYS)                 \
	C(ADMISSION, 1, -1, RESTART_ALWAYS)                               \
	C(PROVIDER, 1, KNOB_provider_count, RESTART_ALWAYS)               \
	C(TOOL_WORKER, 2, KNOB_tool_worker_count, RESTART_ALWAYS)         \
	C(MONITOR, 1, -1, RESTART_ALWAYS)

/* RG_LINK(FROM, TO): FROM sends to every instance of TO (SPEC §1). */
#define RG_LINKS(L)                                                       \
	L(INGRESS, ADMISSION)                                             \
	L(INGRESS, PROVIDER)                                              \
	L(INGRESS, TOOL_WORKER)                                           \
	L(INGRESS, MONITOR)                                               \
	L(ADMISSION, INGRESS)                                             \
	L(ADMISSION, PROVIDER)                                            \
	L(ADMISSION, MONITOR)                                             \
	L(PROVIDER, INGRESS)                                              \
	L(PROVIDER, ADMISSION)                                            \
	L(PROVIDER, TOOL_WORKER)                                          \
	L(PROVIDER, MONITOR)                                              \
	L(TOOL_WORKER, PROVIDER)                                          \
	L(TOOL_WORKER, MONITOR)

/* role_instances - how many processes of role cfg asks for (0 if the
 * role is not a child). */
unsigned role_instances(const struct config *cfg, enum rg_role role);
/* role_restart_policy - the policy of a child role. */
enum restart_policy role_restart_policy(enum rg_role role);
/* chat_provider_of - the provider instance that runs a chat stream. */
unsigned chat_provider_of(const struct config *cfg, uint64_t stream);
/* role_links_to - 1 if role `from` has a link to role `to`. */
int role_links_to(enum rg_role from, enum rg_role to);

struct role_commits;

struct role_ctx {
	const struct role_ops *ops;
	enum rg_role role;
	unsigned instance;
	unsigned slot;
	const char *config_path;
	struct config *cfg;
	struct event_base *base;
	struct shm_seg shm;
	struct shm_proc *self;
	struct store *store;
	struct link_ctx *link;
	struct role_commits *commits; /* see role_commit */
	void *priv; /* the role's own state */
};

struct role_ops {
	enum rg_role role;
	/* init - after the skeleton is set up, before "ready"; non-zero
	 * aborts start-up (the supervisor restarts with backoff). */
	int (*init)(struct role_ctx *ctx);
	/* on_message - messages the skeleton does not handle itself. */
	void (*on_message)(struct role_ctx *ctx, const struct proto_msg *m);
	/* on_timer - once a second, after the heartbeat. */
	void (*on_timer)(struct role_ctx *ctx);
	/* on_reload - ctx->cfg is the new config; old is still valid. */
	void (*on_reload)(struct role_ctx *ctx, const struct config *old);
	/* on_exit - SIGTERM: release what the role holds. */
	void (*on_exit)(struct role_ctx *ctx);
};

/* role_outcall_env - env for this role's outbound calls (gate/outcall)
 * through http: its loop, segment and config; bulkhead saturation
 * warnings go out through role_alert. */
struct httpc;
struct outcall_env;
void role_outcall_env(struct role_ctx *ctx, struct httpc *http,
    struct outcall_env *env);

/* jwt_verifier_from_config - the auth.jwt.* settings as a verifier in
 * *out (NULL when neither a secret nor a key file is set); 0, else -1 +
 * one line in err. */
struct jwt_verifier;
int jwt_verifier_from_config(const struct config *cfg,
    struct jwt_verifier **out, char *err, size_t errlen);

/* role_main - run a role until SIGTERM; returns the exit status. */
int role_main(int argc, char **argv, const struct role_ops *ops);

/*
 * role_commit - run apply in a group-commit transaction on the store's
 * writer thread (started on first use; batches with every other commit of
 * this process, one fsync each); done(ctx, arg, rc) is then called on the
 * event loop.  The loop never waits for LMDB.  apply may run twice (see
 * store.h).  Returns 0, or -1 when the writer is stopping (done is not
 * called).
 */
typedef void (*role_commit_done)(struct role_ctx *ctx, void *arg, int rc);
int role_commit(struct role_ctx *ctx, store_apply_fn apply,
    role_commit_done done, void *arg);
/* role_commit_drain - stop taking commits, run what is queued and call
 * its done callbacks (for on_exit, before the role drops its clients). */
void role_commit_drain(struct role_ctx *ctx);

/*
 * role_peer_pid - the pid of the running process (role, instance) from
 * the process table, or 0 when it is not running (backoff, dead, never
 * started).  A peer whose pid changed was restarted: what it held is gone.
 */
int32_t role_peer_pid(const struct role_ctx *ctx, enum rg_role role,
    unsigned instance);

/*
 * role_listener - the listener relgated opened for this process while it
 * was still root (its number in the environment variable var, which is
 * then removed), or -1 when there is none and the role opens its own.
 * A number that is not a listening socket is logged and ignored.
 */
#define ROLE_LISTEN_FD_ENV "RG_LISTEN_FD" /* an ingress's http.listen */
#define ROLE_ADMIN_FD_ENV "RG_ADMIN_FD"   /* the monitor's admin.listen */
int role_listener(const char *var);

/* role_alert - an operational warning to the monitor (non-blocking; a
 * drop is counted in link.eagain) and one log line. */
void role_alert(struct role_ctx *ctx, const char *kind, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* role_stop - leave the loop (as on SIGTERM). */
void role_stop(struct role_ctx *ctx);

#endif
