/*
 * tool-worker - claims and runs queued jobs (later issues).  For now it
 * runs the shared skeleton only: heartbeat, reload, pings on its links.
 */
#include "daemons/skeleton.h"

static const struct role_ops toolworker_ops = {
	.role = ROLE_TOOL_WORKER,
};

int
main(int argc, char **argv)
{
	return role_main(argc, argv, &toolworker_ops);
}
