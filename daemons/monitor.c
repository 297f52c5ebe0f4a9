/*
 * monitor - maintenance, alerts and the admin HTTP listener (SPEC §8).
 *
 * Owns: the sweeps that keep shared state from leaking -- bulkhead leases
 * of dead or expired holders (every 30 s), LMDB reader slots of dead
 * processes (every minute) --, the log line of every alert the other
 * roles raise, and the admin listener (admin.listen, loopback by
 * default): GET /healthz (200 while the monitor runs) and GET /readyz
 * (200 when every process of the table is ready, else 503), both JSON.
 * Any other admin path is a classified 404.
 *
 * Must never: block its loop, or serve the admin listener with anything
 * but a classified answer.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "daemons/skeleton.h"
#include "gate/errors.h"
#include "http/server.h"
#include "shm/bulkhead.h"
#include "util/log.h"
#include "util/util.h"

#define SWEEP_EVERY_S 30
#define READERS_EVERY_S 60

static unsigned ticks;

static struct {
	struct role_ctx *ctx;
	int fd;
	struct httpd *httpd;
	char *code_header; /* the server's copy outlives a reload's config */
} admin = { .fd = -1 };

/* --- admin HTTP -----------------------------------------------------------*/

static void
admin_reply(struct httpd_req *req, int status, json_t *body)
{
	struct httpd_header h = { "Content-Type", "application/json" };
	char *text = json_dumps(body, JSON_COMPACT);

	httpd_respond(req, status, &h, 1, text, strlen(text));
	free(text);
	json_decref(body);
}

static void
admin_error(struct httpd_req *req, enum rg_error e, const char *message)
{
	struct httpd_header h[3] = {
		{ "Content-Type", "application/json" },
		{ admin.ctx->cfg->http_error_code_header, rg_error_code(e) },
		{ "Allow", "GET, HEAD" },
	};
	char body[512];
	size_t len = rg_error_body(body, sizeof(body), e, message);

	httpd_respond(req, rg_error_status(e), h,
	    e == RG_E_METHOD_NOT_ALLOWED ? 3 : 2, body, len);
}

/* readiness - every used slot of the process table; *ready is 1 when all
 * of them are ready. */
static json_t *
readiness(const struct shm_seg *seg, int *ready)
{
	json_t *procs = json_array();

	*ready = 1;
	for (unsigned s = 0; s < shm_proc_count(seg); s++) {
		const struct shm_proc *p = shm_proc(seg, s);
		uint32_t st = __atomic_load_n(&p->state, __ATOMIC_ACQUIRE);

		if (st == SHM_STATE_UNUSED)
			continue;
		if (st != SHM_STATE_READY)
			*ready = 0;
		json_array_append_new(procs,
		    json_pack("{s:s,s:i,s:i,s:s}", "role",
			role_name(SHM_LOAD(&p->role)), "instance",
			(int)SHM_LOAD(&p->instance), "pid",
			(int)SHM_LOAD(&p->pid), "state", shm_state_name(st)));
	}
	return procs;
}

static int64_t
admin_head(void *arg, struct httpd_req *req)
{
	const char *path = httpd_req_path(req);
	const char *method = httpd_req_method(req);
	struct role_ctx *ctx = arg;
	json_t *procs;
	int ready;

	if (strcmp(path, "/healthz") != 0 && strcmp(path, "/readyz") != 0) {
		admin_error(req, RG_E_NOT_FOUND,
		    "The admin listener serves /healthz and /readyz.");
		return -1;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		admin_error(req, RG_E_METHOD_NOT_ALLOWED, NULL);
		return -1;
	}
	if (strcmp(path, "/healthz") == 0) {
		admin_reply(req, 200,
		    json_pack("{s:s,s:s,s:i,s:I}", "status", "ok", "role",
			"monitor", "pid", (int)getpid(), "configGeneration",
			(json_int_t)SHM_LOAD(&ctx->self->config_gen)));
		return -1;
	}
	procs = readiness(&ctx->shm, &ready);
	admin_reply(req, ready ? 200 : 503,
	    json_pack("{s:b,s:o}", "ready", ready, "processes", procs));
	return -1;
}

/* HTTP-level errors (bad request, timeouts) get the server's classified
 * fallback body with the configured code header. */
static const struct httpd_ops admin_http = {
	.on_head = admin_head,
};

static int
monitor_init(struct role_ctx *ctx)
{
	const struct config *c = ctx->cfg;
	struct httpd_limits lim = {
		.max_head_bytes = 8192,
		.max_connections = 64,
	};
	char err[256];

	admin.ctx = ctx;
	admin.code_header = xstrdup(c->http_error_code_header);
	lim.error_code_header = admin.code_header;
	admin.fd = role_listener(ROLE_ADMIN_FD_ENV);
	if (admin.fd < 0)
		admin.fd = httpd_listen(c->admin_listen, 0, err, sizeof(err));
	if (admin.fd < 0) {
		log_err("admin.listen %s: %s", c->admin_listen, err);
		return -1;
	}
	admin.httpd = httpd_new(ctx->base, admin.fd, &admin_http, ctx, &lim);
	log_info("admin HTTP on %s (/healthz, /readyz)", c->admin_listen);
	return 0;
}

static void
monitor_exit(struct role_ctx *ctx)
{
	(void)ctx;
	if (admin.httpd != NULL)
		httpd_free(admin.httpd);
	if (admin.fd >= 0)
		close(admin.fd);
	free(admin.code_header);
	admin.httpd = NULL;
	admin.fd = -1;
	admin.code_header = NULL;
}

/* --- maintenance ----------------------------------------------------------*/

static void
monitor_timer(struct role_ctx *ctx)
{
	ticks++;
	if (ticks % SWEEP_EVERY_S == 1) {
		unsigned n = bh_sweep(&ctx->shm, now_ms());

		if (n > 0)
			log_info("bulkhead sweep: %u lease(s) reclaimed", n);
	}
	if (ticks % READERS_EVERY_S == 1) {
		int cleared = 0;

		if (store_reader_check(ctx->store, &cleared) == STORE_OK &&
		    cleared > 0)
			log_info("store: %d stale reader slot(s) cleared",
			    cleared);
	}
}

static void
monitor_message(struct role_ctx *ctx, const struct proto_msg *m)
{
	(void)ctx;
	if (m->type == PROTO_T_ALERT) {
		const struct proto_alert *a = &m->u.alert;

		log_warn("alert from %s.%u: %.*s %.*s: %.*s",
		    role_name(m->src_role), m->src_instance, (int)a->kind.len,
		    a->kind.p, (int)a->key.len, a->key.p, (int)a->message.len,
		    a->message.p);
	}
}

static const struct role_ops monitor_ops = {
	.role = ROLE_MONITOR,
	.init = monitor_init,
	.on_timer = monitor_timer,
	.on_message = monitor_message,
	.on_exit = monitor_exit,
};

int
main(int argc, char **argv)
{
	return role_main(argc, argv, &monitor_ops);
}
