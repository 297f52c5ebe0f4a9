# lib.sh - shared helpers for relgate's end-to-end tests (sourced).
#
# Each test gets its own temp dir, shm name and loopback ports, starts the
# real relgated from the build tree, and cleans up on any exit: it stops
# only the processes it started (by pid), removes its shm segment, its
# temp dir and its port claims.  Every wait is bounded.
#
# Ports: tests/e2e/ports.sh picks them outside the kernel's ephemeral
# range and claims them; start_relgated and start_relmock make sure the
# process they started, and no other, serves its port, and move to other
# ports when one is taken.

set -u
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
RELGATED=$top_builddir/daemons/relgated
# relgated started as root runs as the system user relgate unless told
# otherwise: the tests' daemons run as the user running the tests
export RELGATE_USER=${RELGATE_USER:-$(id -un)}
# the default tools' keys: without them the default config is refused
export SERPER_API_KEY=${SERPER_API_KEY:-test-serper-key}
export EBAY_OAUTH_TOKEN=${EBAY_OAUTH_TOKEN:-Bearer test-ebay-token}
# the default tools, their upstreams on loopback: a tool job a test
# leaves to the tool-workers never leaves the machine (port 9: nobody
# listens; chatlib.sh points them at relmock; a test may set tools itself
# and unset this)
tools_at() { sed "s|@BASE@|$1|g" "$top_srcdir/tools/relmock/tools.json"; }
export RELGATE_TOOLS=$(tools_at http://127.0.0.1:9)
RELSTAT=$top_builddir/tools/relstat
RELCTL=$top_builddir/tools/relctl
RELMOCK=$top_builddir/tools/relmock/relmock
command -v jq >/dev/null || { echo "jq is required (apt-get install jq)"; exit 99; }
command -v ss >/dev/null || { echo "ss is required (apt-get install iproute2)"; exit 99; }
. "$top_srcdir/tests/e2e/ports.sh"

T=$(mktemp -d /tmp/rg.XXXXXX)
SHM=/rgt.$$.$RANDOM
LOG=$T/relgated.log
SV_PID=
MOCK_PID=
PIDS_SEEN=

# CLEANUP_HOOK: shell a test adds to the cleanup (run first, on any exit)
CLEANUP_HOOK=
cleanup() {
	local rc=$?
	[ -n "$CLEANUP_HOOK" ] && eval "$CLEANUP_HOOK"
	if [ -n "$SV_PID" ] && kill -0 "$SV_PID" 2>/dev/null; then
		kill -TERM "$SV_PID" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$SV_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$SV_PID" 2>/dev/null
	fi
	if [ -n "$MOCK_PID" ] && kill -TERM "$MOCK_PID" 2>/dev/null; then
		for _ in $(seq 50); do kill -0 "$MOCK_PID" 2>/dev/null || break; sleep 0.1; done
	fi
	for p in $PIDS_SEEN; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -f "/dev/shm${SHM}"
	ports_release
	if [ "$rc" -ne 0 ] && [ -f "$LOG" ]; then
		echo "--- relgated log (last 40 lines) ---"; tail -n 40 "$LOG"
	fi
	rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
ports_claim 2 PORT || exit 99 # PORT: the HTTP listener, ADMIN: admin
ADMIN=$((PORT + 1))

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

# start_relgated CONFIG - start relgated in the foreground (SV_PID) and
# wait until its ingress processes, and no other process, listen on
# $PORT.  When another process listens there (a test of another build
# picked it too), stop ours, move PORT and ADMIN to newly claimed ports
# (in CONFIG and in RELGATE_HTTP_LISTEN/RELGATE_ADMIN_LISTEN when set)
# and start again.  A relgated that does not come up is left to the
# script's checks.
start_relgated() {
	local try old_port old_admin
	for try in 1 2 3 4 5; do
		"$RELGATED" -f -c "$1" >>"$LOG" 2>&1 &
		SV_PID=$!
		wait_listening 20 "$SV_PID" "$PORT" && return 0
		[ "$WAIT_STATE" = foreign ] || return 1
		echo "port $PORT: another process listens there; moving relgated to other ports"
		remember_pids
		stop_relgated >/dev/null || kill -KILL "$SV_PID" 2>/dev/null
		SV_PID=
		old_port=$PORT old_admin=$ADMIN
		ports_claim 2 PORT || break
		ADMIN=$((PORT + 1))
		ports_release "$old_port" "$old_admin"
		sed -i -e "s/127\.0\.0\.1:$old_port\"/127.0.0.1:$PORT\"/" \
			-e "s/127\.0\.0\.1:$old_admin\"/127.0.0.1:$ADMIN\"/" "$1"
		if [ -n "${RELGATE_HTTP_LISTEN-}" ]; then
			RELGATE_HTTP_LISTEN=127.0.0.1:$PORT
		fi
		if [ -n "${RELGATE_ADMIN_LISTEN-}" ]; then
			RELGATE_ADMIN_LISTEN=127.0.0.1:$ADMIN
		fi
	done
	fail "relgated: no port of its own after $try tries"
	return 1
}

# start_relmock [--tls] [RELMOCK ARGS...] - start relmock (MOCK_PID) on
# claimed ports, MOCK for plain HTTP (base URL in M) and, with --tls,
# MOCK_TLS for HTTPS (its test CA in $T/tls/ca.pem), and wait until it,
# and no other process, listens there.  A port taken meanwhile: start
# again on other ports.  Its output goes to $T/relmock.log.
start_relmock() {
	local tls= try i
	if [ "${1-}" = --tls ]; then tls=1; shift; fi
	for try in 1 2 3 4 5; do
		ports_claim 2 MOCK || break
		MOCK_TLS=$((MOCK + 1))
		M=http://127.0.0.1:$MOCK
		if [ -n "$tls" ]; then
			"$RELMOCK" -l "127.0.0.1:$MOCK" --tls-listen "127.0.0.1:$MOCK_TLS" \
				--tls-dir "$T/tls" "$@" >>"$T/relmock.log" 2>&1 &
		else
			"$RELMOCK" -l "127.0.0.1:$MOCK" "$@" >>"$T/relmock.log" 2>&1 &
		fi
		MOCK_PID=$!
		PIDS_SEEN="$PIDS_SEEN $MOCK_PID"
		if wait_listening 10 "$MOCK_PID" "$MOCK" ${tls:+"$MOCK_TLS"}; then
			[ -n "$tls" ] || return 0
			# the CA is written after the TLS listener opens
			for i in $(seq 100); do
				grep -q "tls listening on 127.0.0.1:$MOCK_TLS " "$T/relmock.log" && return 0
				sleep 0.05
			done
			WAIT_STATE="no CA written"
		fi
		echo "relmock on ports $MOCK/$MOCK_TLS: $WAIT_STATE; trying other ports"
		kill -KILL "$MOCK_PID" 2>/dev/null
		wait "$MOCK_PID" 2>/dev/null
		MOCK_PID=
		ports_release "$MOCK" "$MOCK_TLS"
	done
	fail "relmock: not started on ports of its own after $try tries (see relmock.log)"
	return 1
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

# stop_pid PID - SIGTERM and wait (at most 10 s); sets STOP_RC to its
# exit status, or to "timeout" (false) when it is still running.
stop_pid() {
	STOP_RC=timeout
	kill -TERM "$1" 2>/dev/null
	for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$1" 2>/dev/null && return 1
	wait "$1"; STOP_RC=$?
}

# stop_relgated, stop_relmock - stop_pid; set SV_RC, MOCK_RC
stop_relgated() {
	stop_pid "$SV_PID"; SV_RC=$STOP_RC
	[ "$SV_RC" != timeout ] && SV_PID=
}
stop_relmock() {
	stop_pid "$MOCK_PID"; MOCK_RC=$STOP_RC
	[ "$MOCK_RC" != timeout ] && MOCK_PID=
}

# node_clients - make the npm clients of tests/node (the AI SDK, jose)
# ready in $NODE_DIR (tests/node-clients of the build tree, never the
# source directory; npm ci from the lockfile, once, bounded); exit 99 (an
# error, not a skip) when node or npm is missing.
node_clients() {
	NODE_DIR=$top_builddir/tests/node-clients
	command -v node >/dev/null && command -v npm >/dev/null ||
		{ echo "node and npm are required for this test"; exit 99; }
	mkdir -p "$NODE_DIR"
	(
		flock -w 300 9 || exit 1
		if ! cmp -s "$top_srcdir/tests/node/package-lock.json" "$NODE_DIR/package-lock.json" ||
			[ ! -d "$NODE_DIR/node_modules/ai" ] || [ ! -d "$NODE_DIR/node_modules/jose" ]; then
			cp "$top_srcdir/tests/node/package.json" "$top_srcdir/tests/node/package-lock.json" "$NODE_DIR/"
			timeout 300 npm ci --prefix "$NODE_DIR" --ignore-scripts --no-audit --no-fund >"$NODE_DIR/npm.log" 2>&1 ||
				{ cat "$NODE_DIR/npm.log"; rm -f "$NODE_DIR/package-lock.json"; exit 1; }
		fi
		cp "$top_srcdir"/tests/node/*.mjs "$NODE_DIR/"
	) 9>"$NODE_DIR.lock" || { echo "npm ci of tests/node failed"; exit 99; }
}
# token ARGS - a bearer token made by jose (tests/node/token.mjs)
token() { node "$NODE_DIR/token.mjs" "$@"; }
