/*
 * admission - the admission role.  In this version it runs the shared
 * skeleton only: it heartbeats, reloads, and answers pings on its links;
 * its work goes into these callbacks.
 */
#include "daemons/skeleton.h"

static const struct role_ops admission_ops = {
	.role = ROLE_ADMISSION,
};

int
main(int argc, char **argv)
{
	return role_main(argc, argv, &admission_ops);
}
