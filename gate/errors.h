/*
 * errors - the error-code table of SPEC §3 (gate/errors.def) and the one
 * function that renders an error body.  Every error a client sees comes
 * from here: status, code header value, JSON body.
 */
#ifndef RG_ERRORS_H
#define RG_ERRORS_H

#include <stddef.h>

#include "gate/errors.def"

enum rg_error {
#define RG_ERROR_ENUM(id, code, status, msg) RG_E_##id,
	RG_ERRORS(RG_ERROR_ENUM)
#undef RG_ERROR_ENUM
	RG_E_COUNT
};

const char *rg_error_code(enum rg_error e);
/* rg_error_by_code - the error named code; -1 if none. */
int rg_error_by_code(const char *code, enum rg_error *e);
int rg_error_status(enum rg_error e);
const char *rg_error_message(enum rg_error e);

/*
 * rg_error_body - {"error":{"code":"...","message":"..."}} into buf;
 * message NULL = the default.  The message is JSON-escaped and cut to fit.
 * Returns the length written (always < len; len must be >= 128).
 */
size_t rg_error_body(char *buf, size_t len, enum rg_error e,
    const char *message);

#endif
