/*
 * provider - the provider role.  In this version it runs the shared
 * skeleton only: it heartbeats, reloads, and answers pings on its links;
 * its work goes into these callbacks.
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
