/*
 * roles - the process roles of relgate, declared once.
 *
 * ROLE(ID, name, binary) - ID is the enum suffix, name the public name
 * (relstat's "role" field, SPEC section 10), binary the file the
 * supervisor execs from libexec_dir.  The order is part of the shm and
 * message layouts: append only.
 */
#ifndef RG_ROLES_H
#define RG_ROLES_H

#define RG_ROLES(ROLE)                                                    \
	ROLE(SUPERVISOR, "supervisor", "relgated")                        \
	ROLE(INGRESS, "ingress", "ingress")                               \
	ROLE(ADMISSION, "admission", "admission")                         \
	ROLE(PROVIDER, "provider", "provider")                            \
	ROLE(TOOL_WORKER, "tool-worker", "tool-worker")                   \
	ROLE(MONITOR, "monitor", "monitor")                               \
	ROLE(CLIENT, "client", "relctl")

enum rg_role {
#define ROLE_ENUM(id, name, bin) ROLE_##id,
	RG_ROLES(ROLE_ENUM)
#undef ROLE_ENUM
	ROLE_COUNT
};

/* role_name - public name of a role, "unknown" when out of range. */
const char *role_name(unsigned role);
/* role_binary - executable name of a role. */
const char *role_binary(unsigned role);
/* role_by_name - role for a public name, or -1. */
int role_by_name(const char *name);

#endif
