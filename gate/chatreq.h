/*
 * chatreq - the schema of POST /api/chat (SPEC §3):
 *   {"threadId": string 1..128, "messages": [{"role": "system"|"user"|
 *    "assistant", "content": string}] (1..100), "model"?: string,
 *    "modelClass"?: "fast"|"agent"}
 * Anything else is invalid_request with the offending paths listed as
 * "path: problem" items.  Pure function: no I/O.
 */
#ifndef RG_CHATREQ_H
#define RG_CHATREQ_H

#include <stddef.h>

#include <jansson.h>

enum chatreq_result {
	CHATREQ_OK = 0,
	CHATREQ_INVALID_JSON,
	CHATREQ_INVALID_REQUEST,
};

/*
 * chatreq_parse - validate body[0..len).  On CHATREQ_OK *out holds the
 * parsed object (json_decref it); otherwise msg gets the client-safe
 * reason ("messages[2].role: must be one of system, user, assistant; ...").
 */
enum chatreq_result chatreq_parse(const char *body, size_t len,
    json_t **out, char *msg, size_t msglen);

#endif
