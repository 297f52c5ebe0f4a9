/*
 * roles - name tables generated from roles.h.
 */
#include "proto/roles.h"

#include <string.h>

static const char *const role_names[] = {
#define ROLE_NAME(id, name, bin) name,
	RG_ROLES(ROLE_NAME)
#undef ROLE_NAME
};

static const char *const role_bins[] = {
#define ROLE_BIN(id, name, bin) bin,
	RG_ROLES(ROLE_BIN)
#undef ROLE_BIN
};

const char *
role_name(unsigned role)
{
	return role < ROLE_COUNT ? role_names[role] : "unknown";
}

const char *
role_binary(unsigned role)
{
	return role < ROLE_COUNT ? role_bins[role] : "unknown";
}

int
role_by_name(const char *name)
{
	for (unsigned i = 0; i < ROLE_COUNT; i++)
		if (strcmp(role_names[i], name) == 0)
			return (int)i;
	return -1;
}
