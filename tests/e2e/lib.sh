# lib.sh - shared helpers for relgate's end-to-end tests (sourced).
#
# Each test gets its own temp dir, shm name and loopback ports, starts the
# real relgated from the build tree, and cleans up on any exit: it stops
# only the processes it started (by pid), removes its shm segment and its
# temp dir.  Every wait is bounded.

set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
RELGATED=$top_builddir/daemons/relgated
RELSTAT=$top_builddir/tools/relstat
RELCTL=$top_builddir/tools/relctl
command -v jq >/dev/null || { echo "jq is required (apt-get install jq)"; exit 99; }

T=$(mktemp -d /tmp/rg.XXXXXX)
SHM=/rgt.$$.$RANDOM
PORT=$((20000 + RANDOM % 20000))
ADMIN=$((PORT + 1))
LOG=$T/relgated.log
SV_PID=
PIDS_SEEN=
FAILS=0
PASSES=0

cleanup() {
	local rc=$?
	if [ -n "$SV_PID" ] && kill -0 "$SV_PID" 2>/dev/null; then
		kill -TERM "$SV_PID" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$SV_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$SV_PID" 2>/dev/null
	fi
	for p in $PIDS_SEEN; do kill -KILL "$p" 2>/dev/null; done
	rm -f "/dev/shm${SHM}"
	if [ "$rc" -ne 0 ] && [ -f "$LOG" ]; then
		echo "--- relgated log (last 40 lines) ---"; tail -n 40 "$LOG"
	fi
	rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$(dirname "${BASH_SOURCE[0]}")/check.sh"

# write_config FILE [extra JSON members]
write_config() {
	cat >"$1" <<JSON
{
  "http": { "listen": "127.0.0.1:$PORT" },
  "admin": { "listen": "127.0.0.1:$ADMIN" },
  "state_dir": "$T/state",
  "run_dir": "$T/run",
  "shm": { "name": "$SHM" },
  "store": { "map_size_mb": 64 },
  "ingress": { "count": 2 },
  "tool_worker": { "count": 2 }${2:+,
  $2}
}
JSON
}

start_relgated() { # start_relgated CONFIG
	"$RELGATED" -f -c "$1" >>"$LOG" 2>&1 &
	SV_PID=$!
}

snap() { "$RELSTAT" -n "$SHM" -j 2>/dev/null; }

remember_pids() {
	local p
	for p in $(snap | jq -r '.processes[].pid' 2>/dev/null); do
		[ "$p" -gt 0 ] 2>/dev/null && case " $PIDS_SEEN " in *" $p "*) ;; *) PIDS_SEEN="$PIDS_SEEN $p" ;; esac
	done
}

# wait_for SECONDS JQ_FILTER: poll relstat -j until the filter is true
wait_for() {
	local secs=$1 filter=$2 i
	local out
	for i in $(seq $((secs * 20))); do
		# jq -e is true on empty input: require a snapshot first
		out=$(snap)
		if [ -n "$out" ] && jq -e "$filter" >/dev/null 2>&1 <<<"$out"; then
			remember_pids; return 0
		fi
		sleep 0.05
	done
	return 1
}

all_ready='([.processes[] | select(.role != "supervisor") | .state] | length > 0 and all(. == "ready"))'

# stop_relgated: SIGTERM and wait (bounded); sets SV_RC
stop_relgated() {
	SV_RC=
	kill -TERM "$SV_PID"
	for _ in $(seq 200); do kill -0 "$SV_PID" 2>/dev/null || break; sleep 0.05; done
	if kill -0 "$SV_PID" 2>/dev/null; then SV_RC=timeout; return 1; fi
	wait "$SV_PID"; SV_RC=$?
	SV_PID=
}
