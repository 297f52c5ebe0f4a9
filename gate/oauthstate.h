/*
 * oauthstate - the signed `state` of the Gmail OAuth redirect:
 *
 *	state = B64URL(payload) "." B64URL(HMAC-SHA256(secret,
 *B64URL(payload)))
 *
 * The MAC covers the first segment's text exactly as received (no
 * re-encoding), so the application that makes states must MAC the string
 * it sends.  payload is JSON {"uid":string,"exp":number}: "userId" is
 * accepted for "uid", and an exp below 10^11 is read as seconds, anything
 * else as milliseconds since the epoch.  base64url without padding is what
 * oauthstate_make writes; padding is accepted on input.  Pure functions,
 * no I/O, no globals: the caller passes the clock.
 */
#ifndef RG_GATE_OAUTHSTATE_H
#define RG_GATE_OAUTHSTATE_H

#include <stddef.h>
#include <stdint.h>

#define OAUTHSTATE_MAX     2048 /* characters of a whole state */
#define OAUTHSTATE_UID_MAX 256  /* bytes of a user id */

enum oauthstate_result {
	OAUTHSTATE_OK,
	OAUTHSTATE_MALFORMED,     /* shape, size, base64url or JSON */
	OAUTHSTATE_BAD_SIGNATURE, /* MAC mismatch, or no secret */
	OAUTHSTATE_EXPIRED,       /* exp <= now */
};

/* oauthstate_result_name - "ok", "malformed", "bad_signature", "expired". */
const char *oauthstate_result_name(enum oauthstate_result r);

/* oauthstate_verify - check state[0..len) against secret (NUL-terminated;
 * empty never verifies) at time now_ms.  The MAC is checked in constant
 * time before the payload is parsed.  On OAUTHSTATE_OK the user id
 * (1..OAUTHSTATE_UID_MAX bytes, and shorter than uidlen, else MALFORMED) is
 * in uid; otherwise uid is "". */
enum oauthstate_result oauthstate_verify(const char *secret, const char *state,
    size_t len, uint64_t now_ms, char *uid, size_t uidlen);

/* oauthstate_make - a state for uid expiring at exp_ms, NUL-terminated in
 * buf; returns its length, or -1 if buf (buflen bytes) is too small, the
 * secret is empty or uid is empty or longer than OAUTHSTATE_UID_MAX. */
long oauthstate_make(const char *secret, const char *uid, uint64_t exp_ms,
    char *buf, size_t buflen);

#endif
