/*
 * provider - the provider role.  For now it runs the shared skeleton only: it
 * heartbeats, reloads, and answers pings on its links; the issues that
 * build the role add its work through these callbacks.
 */
#include "daemons/skeleton.h"

static const struct role_ops provider_ops = {
	.role = ROLE_PROVIDER,
};

int
main(int argc, char **argv)
{
	return role_main(argc, argv, &provider_ops);
}
