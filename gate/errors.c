/*
 * errors - see errors.h.
 */
#include "gate/errors.h"

#include <stdio.h>
#include <string.h>

#include "util/util.h"

static const struct {
	const char *code;
	int status;
	const char *msg;
} table[RG_E_COUNT] = {
#define RG_ERROR_ROW(id, code, status, msg) { code, status, msg },
	RG_ERRORS(RG_ERROR_ROW)
#undef RG_ERROR_ROW
};

const char *
rg_error_code(enum rg_error e)
{
	return (unsigned)e < RG_E_COUNT ? table[e].code : "internal_error";
}

int
rg_error_status(enum rg_error e)
{
	return (unsigned)e < RG_E_COUNT ? table[e].status : 500;
}

const char *
rg_error_message(enum rg_error e)
{
	return (unsigned)e < RG_E_COUNT ? table[e].msg : "Internal error.";
}

size_t
rg_error_body(char *buf, size_t len, enum rg_error e, const char *message)
{
	static const char tail[] = "\"}}";
	size_t pos;
	int n;

	if ((unsigned)e >= RG_E_COUNT)
		e = RG_E_INTERNAL_ERROR;
	n = snprintf(buf, len, "{\"error\":{\"code\":\"%s\",\"message\":\"",
	    table[e].code);
	if (n < 0 || (size_t)n + sizeof(tail) > len)
		return 0;
	pos = (size_t)n;
	message = message != NULL ? message : table[e].msg;
	json_escape(buf, len - sizeof(tail) + 1, &pos, message,
	    strlen(message));
	memcpy(buf + pos, tail, sizeof(tail));
	return pos + sizeof(tail) - 1;
}

int
rg_error_by_code(const char *code, enum rg_error *e)
{
	for (unsigned i = 0; i < RG_E_COUNT; i++)
		if (strcmp(rg_error_code((enum rg_error)i), code) == 0) {
			*e = (enum rg_error)i;
			return 0;
		}
	return -1;
}
