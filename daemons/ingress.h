/*
 * ingress.h - what the files of the ingress role share: the role's state,
 * the classified answers, the boundary helpers and the route families.
 *
 *   ingress.c          dispatch: the route table, the server callbacks,
 *                      the role's init/exit
 *   ingress_reply.c    answers (errors, CORS) and boundary helpers
 *                      (client address, media type, rate limits and their
 *                      telemetry)
 *   ingress_webhook.c  the durable hand-off, Gmail push, WhatsApp
 *   ingress_oauth.c    the Gmail OAuth callback and code exchange
 *   ingress_proxy.c    the proxied routes of the config (routes[])
 *   ingress_chat.c     POST/OPTIONS /api/chat: auth, admission, the
 *                      SSE stream from the provider
 *   ingress_health.c   GET /api/chat/health
 *   ingress_access.c   the request id and the access log
 *
 * Nothing here blocks the event loop; every error answer goes through
 * ing_fail.
 */
#ifndef RG_INGRESS_H
#define RG_INGRESS_H

#include <stddef.h>
#include <stdint.h>

#include "daemons/skeleton.h"
#include "gate/clientip.h"
#include "gate/admit.h"
#include "gate/errors.h"
#include "gate/replay.h"
#include "gate/telemetry.h"
#include "http/server.h"

#define KIB 1024
#define CHAT_BODY_MAX (64 * KIB)     /* SPEC §11 */
#define WEBHOOK_BODY_MAX (256 * KIB) /* SPEC §11 */
#define PROXY_BODY_MAX (64 * KIB)

struct event;
struct httpc;
struct jwt_verifier;
struct proxy_route;
struct outcall_env;
struct rq_block;
struct alog;

struct ing {
	struct role_ctx *ctx;
	struct httpd *httpd;
	int listen_fd;
	struct cidr_set trusted;
	uint64_t seq;
	unsigned inflight;  /* hand-offs waiting for their commit */
	unsigned fresh;     /* new delivery rows not announced yet */
	struct event *wake; /* announces them once per loop pass */
	struct httpc *http; /* outbound: OAuth exchange, proxied routes */
	struct outcall_env *out;
	struct jwt_verifier *jwt; /* NULL: auth.jwt not configured */
	struct proxy_route *proxies;
	int stopping; /* at exit: no new chat starts (503) */
	size_t nproxies;
	struct tel_table tel; /* rate-limit events, coalesced */
	struct ing_chats *chats; /* chat streams (ingress_chat.c) */
	struct rq_block *rq;     /* this instance's request counters */
	struct alog *alog;       /* the access log; NULL: off */
	unsigned proxy_row[32];  /* proxied route -> its row in rq */
};

#define CFG(g) ((g)->ctx->cfg)
#define COUNT(g, field) SHM_INC(&(g)->ctx->self->counters.field)

/*
 * What a request carries (httpd_req_data): a tag saying whether it is one
 * of the fixed routes or a proxied route of the config.  Both structs
 * start with the kind.
 */
enum { TAG_ROUTE = 1, TAG_PROXY, TAG_CHAT };

/* --- answers (ingress_reply.c) --------------------------------------------*/

/* Extra response headers of one answer. */
struct hdrs {
	struct httpd_header h[8];
	size_t n;
	char retry[24];
};

void hdr_add(struct hdrs *h, const char *name, const char *value);

/*
 * ing_fail - the classified error answer: status, code header, JSON body
 * (msg, or the code's default message when NULL) and, when retry_s > 0,
 * Retry-After.  h (may be NULL) carries extra headers.  Returns -1 (the
 * "answered" verdict of a head handler).
 */
int64_t ing_fail(struct ing *g, struct httpd_req *req, enum rg_error e,
    const char *msg, uint64_t retry_s, struct hdrs *h);
/* ing_ok_json - 200 {"ok":true}, with X-Idempotent-Replay when replay. */
void ing_ok_json(struct httpd_req *req, int replay);
/* ing_origin_allowed - origin is one of http.allowed_origins. */
int ing_origin_allowed(const struct ing *g, const char *origin);
/* ing_cors - CORS headers for an allowed Origin (the chat routes). */
void ing_cors(const struct ing *g, struct httpd_req *req, struct hdrs *h);

/* --- boundary helpers (ingress_reply.c) ----------------------------------*/

/* ing_client_ip - the client address (SPEC §3: trusted proxies). */
void ing_client_ip(struct ing *g, struct httpd_req *req, char *ip,
    size_t len);
/* ing_is_json - Content-Type is application/json (parameters allowed). */
int ing_is_json(struct httpd_req *req);
/* ing_limit - check bucket for key; on refusal answer 429 (with h's
 * headers), send the telemetry and return -1. */
int ing_limit(struct ing *g, struct httpd_req *req, unsigned bucket,
    const char *key, int64_t max, int64_t window_ms, struct hdrs *h);
/* ing_tel_flush - once a second: send the counts of windows that ended. */
void ing_tel_flush(struct ing *g);
/* ing_secret - a configured secret, or NULL when unset or empty. */
const char *ing_secret(const char *v);

/* --- request id and access log (ingress_access.c) ------------------------*/

/* ing_request_id - the request's X-Request-Id when sane, else an id made
 * for it (16 hex digits); the same on every call for one request. */
const char *ing_request_id(struct ing *g, struct httpd_req *req, char *buf,
    size_t len);
/* access_setup - open (old NULL) or follow a reload: reopen the same
 * file, or switch to the new log.access settings.  -1 after logging why
 * when the file cannot be opened (the log is then off). */
int access_setup(struct ing *g, const struct config *old);
/* access_done - the line of a finished request */
void access_done(struct ing *g, struct httpd_req *req,
    const struct httpd_done *d);
void access_exit(struct ing *g);

/* --- the durable hand-off (ingress_webhook.c) -----------------------------*/

struct handoff;
/* Called on the loop when the hand-off's commit finished (rc STORE_*);
 * req is NULL when the client left meanwhile. */
typedef void (*handoff_answer_fn)(struct ing *g, struct httpd_req *req,
    const struct replay_batch *b, int rc);

/* handoff_new - a batch of n items for scope/topic. */
struct handoff *handoff_new(struct httpd_req *req, unsigned n,
    const char *scope, const char *topic);
/* handoff_item - item i: its idempotency key and its payload (taken). */
void handoff_item(struct handoff *h, unsigned i, const char *key,
    json_t *payload);
/* handoff_submit - claim the keys and write the deliveries in one group
 * commit; answer() replies when it is durable.  Takes h. */
void handoff_submit(struct ing *g, struct httpd_req *req, struct handoff *h,
    handoff_answer_fn answer);
/* ing_wake_workers - announce new delivery rows to a tool-worker. */
void ing_wake_workers(struct ing *g);

/* --- the chat route (ingress_chat.c) --------------------------------------*/


int64_t chat_head(struct ing *g, struct httpd_req *req);
/* chat_body - data is what chat_head attached (TAG_CHAT). */
void chat_body(struct ing *g, struct httpd_req *req, void *data);
/* chat_abort - the server answered the request itself: drop data. */
void chat_abort(struct ing *g, struct httpd_req *req, void *data);
/* chat_message - STREAM_BATCH and ADMIT_REFUSE. */
void chat_message(struct ing *g, const struct proto_msg *m);
int chat_init(struct ing *g);
/* chat_tick - once a second: heartbeats. */
void chat_tick(struct ing *g);
/* chat_exit - every stream ends (an error event; or 503 before start);
 * the table stays until chat_table_free (after the connections are
 * gone: their close callbacks still find their chats). */
void chat_exit(struct ing *g);
void chat_table_free(struct ing *g);

/* --- route families -------------------------------------------------------*/

int64_t health_head(struct ing *g, struct httpd_req *req);
int64_t push_head(struct ing *g, struct httpd_req *req);
void push_body(struct ing *g, struct httpd_req *req);
int64_t wa_head(struct ing *g, struct httpd_req *req);
void wa_body(struct ing *g, struct httpd_req *req);
int64_t oauth_head(struct ing *g, struct httpd_req *req);
void oauth_body(struct ing *g, struct httpd_req *req);

/* proxy_head - a proxied route's head: auth, limiter, then the body. */
int64_t proxy_head(struct ing *g, struct httpd_req *req,
    const struct proxy_route *r);
/* proxy_body - forward the request (data is what proxy_head attached). */
void proxy_body(struct ing *g, struct httpd_req *req, void *data);
/* proxy_abort - the server answered the request itself (an error): drop
 * what proxy_head attached. */
void proxy_abort(struct ing *g, struct httpd_req *req, void *data);

#endif
