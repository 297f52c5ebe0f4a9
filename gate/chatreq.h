/*
 * chatreq - the body of POST /api/chat (SPEC §3), in either of its two
 * forms, validated and normalized for the provider:
 *
 *   relgate's own: {"threadId": string 1..128, "messages": [{"role":
 *     "system"|"user"|"assistant", "content": string}] (1..100),
 *     "model"?: string 1..200, "modelClass"?: "fast"|"agent"} -- strict:
 *     any other member is a problem;
 *   the AI SDK 5 DefaultChatTransport's, sent unchanged by useChat:
 *     {"id": string 1..128, "messages": [{"id"?, "role", "parts": [{"type":
 *     "text", "text": string}, …], "metadata"?}] (1..100), "trigger"?:
 *     string, "messageId"?: string, "model"?, "modelClass"?} -- id is the
 *     thread id, a message's content is the concatenation of its text
 *     parts; other part types (step-start, reasoning, tool and data parts)
 *     and extra members of a message or part are ignored, as the
 *     transport sends them; an assistant message with no text is dropped.
 *
 * A broken body is invalid_request with the offending paths listed as
 * "path: problem" items.  Pure function: no I/O.
 */
#ifndef RG_CHATREQ_H
#define RG_CHATREQ_H

#include <stddef.h>

#include <jansson.h>

#define CHATREQ_MAX_MESSAGES 100
#define CHATREQ_THREAD_MAX 128
#define CHATREQ_MODEL_MAX 200

enum chatreq_result {
	CHATREQ_OK = 0,
	CHATREQ_INVALID_JSON,
	CHATREQ_INVALID_REQUEST,
};

enum chatreq_class {
	CHATREQ_CLASS_DEFAULT = 0,
	CHATREQ_CLASS_FAST = 1,
	CHATREQ_CLASS_AGENT = 2,
};

struct chatreq {
	int sdk;                 /* 1: the AI SDK transport's body */
	const char *thread_id;   /* into root */
	const char *model;       /* into root; NULL: none */
	enum chatreq_class model_class;
	const char *message_id;  /* SDK messageId; NULL: none */
	json_t *messages;        /* normalized [{"role","content"}] */
	json_t *root;
};

/*
 * chatreq_parse - validate body[0..len).  On CHATREQ_OK *out is filled
 * (chatreq_free it); otherwise msg gets the client-safe reason
 * ("messages[2].role: must be one of system, user, assistant; ...").
 */
enum chatreq_result chatreq_parse(const char *body, size_t len,
    struct chatreq *out, char *msg, size_t msglen);
void chatreq_free(struct chatreq *r);

#endif
