/*
 * admission - the admission role.  For now it runs the shared skeleton only: it
 * heartbeats, reloads, and answers pings on its links; the issues that
 * build the role add its work through these callbacks.
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
