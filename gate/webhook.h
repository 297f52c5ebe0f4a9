/*
 * webhook - the request-boundary checks of the inbound webhooks: the Gmail
 * Pub/Sub push envelope, the WhatsApp (Meta) webhook payload and its
 * X-Hub-Signature-256, and the shared-token comparison of ?token= and
 * hub.verify_token.
 *
 * Every parser returns a classified result (never an unclassified error)
 * and, on WEBHOOK_INVALID_*, a client-safe message: at most
 * WEBHOOK_MAX_PROBLEMS "path: problem" items joined by "; ", built only
 * from member names and indices, never from the input's values.  Pure
 * functions, no I/O, no globals; outputs are caller buffers or memory that
 * the matching _free releases.
 */
#ifndef RG_GATE_WEBHOOK_H
#define RG_GATE_WEBHOOK_H

#include <stddef.h>

#include <jansson.h>

#define WEBHOOK_MSG_MAX      512 /* a message buffer of this size is enough */
#define WEBHOOK_MAX_PROBLEMS 8

enum webhook_result {
	WEBHOOK_OK,
	WEBHOOK_INVALID_JSON,    /* 400 invalid_json */
	WEBHOOK_INVALID_REQUEST, /* 400 invalid_request */
};

/* --- Gmail Pub/Sub push ------------------------------------------------ */

#define PUBSUB_EMAIL_MAX   320
#define PUBSUB_HISTORY_MAX 20 /* digits of UINT64_MAX */
#define PUBSUB_ID_MAX      128

struct pubsub_push {
	char email[PUBSUB_EMAIL_MAX + 1];
	char history_id[PUBSUB_HISTORY_MAX + 1]; /* canonical decimal */
	char message_id[PUBSUB_ID_MAX + 1];      /* "" when not sent */
};

/* pubsub_parse - body is {"message":{"data":B64,"messageId"?:string,..},
 * "subscription"?:string,..}; B64 (standard or url-safe alphabet, padding
 * optional) decodes to {"emailAddress":string,"historyId":string of digits
 * or integer >= 0,..}.  emailAddress: 1..320 bytes, contains '@', no
 * control characters.  historyId: <= UINT64_MAX, output without leading
 * zeros (it is half of the idempotency key).  Unknown members are
 * allowed; duplicate members are invalid JSON. */
enum webhook_result pubsub_parse(const void *body, size_t len,
    struct pubsub_push *out, char *msg, size_t msglen);

/* --- WhatsApp ------------------------------------------------------------ */

#define WA_MAX_ENTRIES  100
#define WA_MAX_CHANGES  100 /* per entry */
#define WA_MAX_MESSAGES 256 /* per payload */
#define WA_ID_MAX       256

struct wa_message {
	char *id;            /* message id, 1..WA_ID_MAX bytes */
	json_t *message;     /* the message object (a reference) */
	char *entry_id;      /* id of its entry (the WABA id) */
	json_t *metadata;    /* value.metadata (a reference), or NULL */
};

struct wa_payload {
	size_t n;
	struct wa_message msg[WA_MAX_MESSAGES];
};

/* wa_parse - body is {"object":string,"entry":[{"id":string,"changes":
 * [{"field":string,"value":{"messages"?:[{"id":string,..}],"statuses"?:
 * [..],..}}]}]} with at most WA_MAX_ENTRIES entries, WA_MAX_CHANGES
 * changes per entry and WA_MAX_MESSAGES messages in all.  On WEBHOOK_OK
 * out holds every message in order (n may be 0, e.g. statuses only); the
 * caller releases it with wa_payload_free.  On error out->n is 0 and
 * nothing needs freeing. */
enum webhook_result wa_parse(const void *body, size_t len,
    struct wa_payload *out, char *msg, size_t msglen);

/* wa_payload_free - release what wa_parse stored; p->n becomes 0. */
void wa_payload_free(struct wa_payload *p);

/* wa_signature_ok - 1 if header_value is exactly "sha256=" followed by
 * 64 hex digits (either case) equal, compared in constant time, to
 * HMAC-SHA256(app_secret, body[0..len)).  NULL/malformed header or an
 * empty/NULL secret: 0. */
int wa_signature_ok(const char *header_value, const void *body, size_t len,
    const char *app_secret);

/* wa_challenge_ok - hub.challenge is 1..256 ASCII digits (what Meta
 * sends), the only text the verification echoes. */
int wa_challenge_ok(const char *challenge);

/* webhook_token_eq - constant-time comparison of a presented token a with
 * the configured b (see crypto_token_eq: only lengths may leak; empty
 * never matches). */
int webhook_token_eq(const char *a, size_t alen, const char *b, size_t blen);

#endif
