#!/bin/bash
# bench/chat.sh - the chat path's figures: relgate beside the upstream
# alone (relmock, the baseline), the Portkey AI Gateway and nginx, in one
# run, with one upstream (relmock on this machine, the role sent with the
# first token) and one client (bench/sseload; wrk for the 429 path).
# Prints figures, one JSON line per part and a table, each run with the
# host's steal time during it (bench/host.sh); asserts nothing (a
# benchmark is not a test).
#
#   bench/chat.sh [ttft|hold|reject|pressure|toolspike|all]  (default all)
#
#   ttft      added time to the first token at TTFT_LEVELS concurrent
#             streams: sseload straight to relmock, through relgate and
#             through Portkey; "added" = a gateway's p50/p99 minus the
#             baseline's
#   hold      STREAMS streams held together for DURATION seconds (one
#             token a second): the share completed, relgate's memory per
#             stream (PSS and RSS summed over all its processes, at the
#             peak minus idle); then Portkey at TTFT's top level and at
#             STREAMS
#   reject    the 429 path of admission (authoritative, 1 message/s)
#             beside nginx's limit_req (1 r/s), wrk with the same script
#   pressure  a burst of PRESSURE_CONNS streams from PRESSURE_USERS users
#             against the admission limits: the status mix, how fast the
#             429s come and whether they carry Retry-After
#   toolspike the first token of SPIKE_PLAIN concurrent chats without tool
#             calls (SPIKE_TOKENS tokens each, one each 100 ms), alone
#             (no tool job queued or running) and beside SPIKE_TOOLS
#             concurrent chats whose model calls search_web while the
#             tool's upstream (a relmock of its own) answers only at the
#             tool's timeout (SPIKE_TIMEOUT_MS, each attempt waits it out;
#             the tool's queue and running caps the defaults, its circuit
#             kept closed; after the spike the upstream refuses at once
#             and the jobs left become dead letters):
#             SPIKE_PAIRS pairs of runs (alone first in odd pairs,
#             beside first in even ones), each pair's p99s and the
#             host's steal time during each, the
#             medians and the median of the ratios, of all pairs and of
#             the quiet ones (in both runs, steal at most
#             SPIKE_QUIET_STEAL_MS, and at most SPIKE_QUIET_PEAK_MS of it
#             in any 100 ms), and the median p99 of each side's quiet runs;
#             per run also relgate's event loop probes 10 ms or more late
#             (loopLate, relstat's loop.late over all processes);
#             SPIKE_TOOLS=0 is the control: the same pairs, no spike
#
# Settings from the environment (defaults): STREAMS (20000), DURATION
# (60), TTFT_LEVELS ("100 1000"), TTFT_SECONDS (10), INGRESS (4) and
# PROVIDERS (3) for the hold, TTFT_INGRESS (2) and TTFT_PROVIDERS (2)
# for ttft and pressure, MOCK_WORKERS (4), USERS (40), REJECT_SECONDS (10),
# REJECT_CONNS (64), PRESSURE_CONNS (1000), PRESSURE_USERS (40),
# PRESSURE_SECONDS (10), PRESSURE_BULKHEAD (256), SPIKE_PLAIN (100),
# SPIKE_TOKENS (4), SPIKE_TOOLS (200), SPIKE_TIMEOUT_MS (2000),
# SPIKE_PAIRS (5), SPIKE_QUIET_STEAL_MS (200), SPIKE_QUIET_PEAK_MS (20),
# RAMP_MS (the hold's ramp: 2 ms a stream, at most 40 s), PORTKEY (1; 0
# skips Portkey), BUILD (build/).
#
# Needs a build (tools/dev.sh test, or configure and make in build/);
# installs wrk and nginx-light when missing (without starting Debian's
# nginx), and Portkey (@portkey-ai/gateway, the versions pinned in
# bench/portkey/package.json) with npm under the build directory.
# Loopback only, ports below the ephemeral range (tests/e2e/ports.sh);
# every load is bounded in count and time; it stops only the processes it
# started, by pid, and removes its shm segment and temp dir on any exit.
set -euo pipefail
# relgated stays the user running the benchmark (root included)
export RELGATE_USER=${RELGATE_USER:-$(id -un)}
# the default tools' keys (no tool is called): without them the default
# config is refused
export SERPER_API_KEY=${SERPER_API_KEY:-bench-serper-key}
export EBAY_OAUTH_TOKEN=${EBAY_OAUTH_TOKEN:-Bearer bench-ebay-token}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/e2e/ports.sh" # ports_claim, ports_release, wait_listening
. "$top/bench/nginx.sh"      # nginx_need, nginx_conf
. "$top/bench/host.sh"       # steal_ticks, steal_ms_since
B=${BUILD:-$top/build}
what=${1:-all}
STREAMS=${STREAMS:-20000}
DURATION=${DURATION:-60}
TTFT_LEVELS=${TTFT_LEVELS:-100 1000}
TTFT_SECONDS=${TTFT_SECONDS:-10}
INGRESS=${INGRESS:-4}
PROVIDERS=${PROVIDERS:-3}
TTFT_INGRESS=${TTFT_INGRESS:-2}
TTFT_PROVIDERS=${TTFT_PROVIDERS:-2}
MOCK_WORKERS=${MOCK_WORKERS:-4}
USERS=${USERS:-40}
REJECT_SECONDS=${REJECT_SECONDS:-10}
REJECT_CONNS=${REJECT_CONNS:-64}
PRESSURE_CONNS=${PRESSURE_CONNS:-1000}
PRESSURE_USERS=${PRESSURE_USERS:-40}
PRESSURE_SECONDS=${PRESSURE_SECONDS:-10}
PRESSURE_BULKHEAD=${PRESSURE_BULKHEAD:-256}
PORTKEY=${PORTKEY:-1}
SPIKE_PLAIN=${SPIKE_PLAIN:-100}
SPIKE_TOOLS=${SPIKE_TOOLS:-200}
SPIKE_TIMEOUT_MS=${SPIKE_TIMEOUT_MS:-2000}
SPIKE_PAIRS=${SPIKE_PAIRS:-5}
SPIKE_TOKENS=${SPIKE_TOKENS:-4}
SPIKE_QUIET_STEAL_MS=${SPIKE_QUIET_STEAL_MS:-200}
SPIKE_QUIET_PEAK_MS=${SPIKE_QUIET_PEAK_MS:-20}
case $what in
ttft | hold | reject | pressure | toolspike | all) ;;
*) echo "usage: bench/chat.sh [ttft|hold|reject|pressure|toolspike|all]"; exit 2 ;;
esac

RELGATED=$B/daemons/relgated
RELSTAT=$B/tools/relstat
RELCTL=$B/tools/relctl
RELMOCK=$B/tools/relmock/relmock
SSELOAD=$B/bench/sseload
for x in "$RELGATED" "$RELSTAT" "$RELCTL" "$RELMOCK" "$SSELOAD"; do
	[ -x "$x" ] || { echo "bench: no $x (build first: tools/dev.sh test, or make -C $B)"; exit 2; }
done
for x in jq curl ss; do
	command -v "$x" >/dev/null || { echo "bench: $x is required"; exit 2; }
done

T=$(mktemp -d /tmp/rgchat.XXXXXX)
SHM=/rgchat.$$
SECRET=bench-secret-of-at-least-32-bytes-long.$$
PIDS= # every process started here (their children go with them)
RG_PID=
cleanup() {
	local p
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for _ in $(seq 100); do
		local any=
		for p in $PIDS; do kill -0 "$p" 2>/dev/null && any=1; done
		[ -n "$any" ] || break
		sleep 0.1
	done
	for p in $PIDS; do kill -KILL "$p" 2>/dev/null || true; done
	rm -f "/dev/shm$SHM"
	if [ -n "${KEEP:-}" ]; then echo "bench: files kept in $T"; else rm -rf "$T"; fi
	ports_release
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# forget PID - a process that has ended is no longer ours to stop
# cpu_ticks FILE - CPU time (user + system, in clock ticks) of relgated and
# its processes, summed by process name ("provider 1234" lines), and the
# machine's steal time (CPU time its host gave to others), into FILE
cpu_ticks() {
	local p
	for p in $RG_PID $(pgrep -P "$RG_PID"); do
		cat "/proc/$p/stat" 2>/dev/null
	done | sed 's/^[0-9]* (\([^)]*\)) /\1 /' | awk '{ t[$1] += $13 + $14 } END { for (k in t) print k, t[k] }' >"$1.tmp"
	# and the time the host took from this machine's CPUs
	awk '$1 == "cpu" { print "steal(host)", $9 }' /proc/stat >>"$1.tmp"
	sort "$1.tmp" >"$1"
	rm -f "$1.tmp"
}
# cpu_spent BEFORE AFTER - "name ms" of each process name between the two
cpu_spent() {
	join "$1" "$2" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%s%s %d ms", sep, $1, ($3 - $2) * 1000 / hz; sep = ", " } END { print "" }'
}
# steal_ms BEFORE AFTER - the host's steal time between the two, in ms
steal_ms() {
	join "$1" "$2" | awk -v hz="$(getconf CLK_TCK)" '$1 == "steal(host)" { printf "%d\n", ($3 - $2) * 1000 / hz }'
}
forget() { PIDS=$(tr ' ' '\n' <<<"$PIDS" | grep -vx "$1" | tr '\n' ' '); }

# stop PID - SIGTERM, wait at most 15 s, then SIGKILL
stop() {
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 150); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	forget "$1"
}

listening() { # listening PID PORT NAME: wait until PID alone serves PORT
	wait_listening 30 "$1" "$2" ||
		{ echo "bench: $3 not listening alone on port $2 ($WAIT_STATE)"; exit 2; }
}

load_avg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- what the parts need --------------------------------------------------

# need_portkey - Portkey installed under $B/bench/portkey-install from the pinned
# package.json (npm, bounded); PORTKEY_JS is its server
PORTKEY_DIR=$B/bench/portkey-install
PORTKEY_JS=$PORTKEY_DIR/node_modules/@portkey-ai/gateway/build/start-server.js
need_portkey() {
	command -v node >/dev/null && command -v npm >/dev/null ||
		{ echo "bench: node and npm are required for Portkey (PORTKEY=0 skips it)"; exit 2; }
	mkdir -p "$PORTKEY_DIR"
	if ! cmp -s "$top/bench/portkey/package.json" "$PORTKEY_DIR/package.json" || [ ! -f "$PORTKEY_JS" ]; then
		cp "$top/bench/portkey/package.json" "$PORTKEY_DIR/"
		rm -rf "$PORTKEY_DIR/node_modules" "$PORTKEY_DIR/package-lock.json"
		timeout 300 npm install --prefix "$PORTKEY_DIR" --ignore-scripts --no-audit --no-fund \
			>"$PORTKEY_DIR/npm.log" 2>&1 ||
			{ cat "$PORTKEY_DIR/npm.log"; rm -f "$PORTKEY_DIR/package.json"; echo "bench: npm install of Portkey failed"; exit 2; }
	fi
	cp "$top/bench/portkey/loopback.mjs" "$PORTKEY_DIR/"
	PORTKEY_VERSION=$(jq -r .version "$PORTKEY_DIR/node_modules/@portkey-ai/gateway/package.json")
	PORTKEY_DEPS="hono $(jq -r .version "$PORTKEY_DIR/node_modules/hono/package.json"), @hono/node-server $(jq -r .version "$PORTKEY_DIR/node_modules/@hono/node-server/package.json")"
}

# --- relmock: the one upstream ------------------------------------------

start_relmock() {
	ports_claim 1 MOCK
	"$RELMOCK" -l "127.0.0.1:$MOCK" --workers "$MOCK_WORKERS" >"$T/relmock.log" 2>&1 &
	MOCK_PID=$!
	PIDS="$PIDS $MOCK_PID"
	listening "$MOCK_PID" "$MOCK" relmock
}

# --- relgated ------------------------------------------------------------

# start_relgated NAME EXTRA_JSON - a relgated with relmock as both chat
# routes, INGRESS ingress and PROVIDERS provider processes, and EXTRA
RPORT=
start_relgated() {
	[ -n "$RPORT" ] || ports_claim 2 RPORT
	rm -rf "$T/state" "$T/run"
	cat >"$T/relgate-$1.json" <<JSON
{ "http": { "listen": "127.0.0.1:$RPORT" }, "admin": { "listen": "127.0.0.1:$((RPORT + 1))" },
  "state_dir": "$T/state", "run_dir": "$T/run", "shm": { "name": "$SHM" },
  "store": { "map_size_mb": 64 }, "log": { "level": "warn" },
  "ingress": { "count": $INGRESS }, "provider": { "count": $PROVIDERS,
    "primary": { "base_url": "http://127.0.0.1:$MOCK/v1" },
    "secondary": { "base_url": "http://127.0.0.1:$MOCK/v1" } },
  "tool_worker": { "count": 1 },
  "auth": { "jwt": { "secret": "$SECRET" } },
  $2 }
JSON
	"$RELGATED" -f -c "$T/relgate-$1.json" >>"$T/relgated.log" 2>&1 &
	RG_PID=$!
	PIDS="$PIDS $RG_PID"
	if ! wait_listening 30 "$RG_PID" "$RPORT"; then
		echo "bench: relgated not listening alone on port $RPORT ($WAIT_STATE)"
		ss -Hltnp "sport = $RPORT"
		tail -n 20 "$T/relgated.log"
		exit 2
	fi
	local i
	for i in $(seq 200); do
		"$RELSTAT" -n "$SHM" -j 2>/dev/null | jq -e '[.processes[] | select(.role != "supervisor") | .state] |
			length > 0 and all(. == "ready")' >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "bench: relgated not ready"; tail -n 20 "$T/relgated.log"; exit 2
}
stop_relgated() {
	"$RELSTAT" -n "$SHM" -j >"$T/relstat-last.json" 2>/dev/null || true
	stop "$RG_PID"
	RG_PID=
	rm -f "/dev/shm$SHM"
}
relgate_pids() { "$RELSTAT" -n "$SHM" -j 2>/dev/null | jq -r --arg s "$RG_PID" '[.processes[].pid] + [$s | tonumber] | unique | .[] | select(. > 0)'; }

# The chats go to relmock's worker at full capacity: no limit of relgate's
# but capacity applies (admission, the bulkhead, the chat_stream limiter)
WIDE_OPEN='"BULKHEAD_OR_PRI_MAX_CONCURRENT": 32768, "BULKHEAD_OR_SEC_MAX_CONCURRENT": 32768,
  "ADMISSION_GLOBAL_MAX_INFLIGHT": 1000000, "ADMISSION_USER_MAX_INFLIGHT": 10000,
  "ADMISSION_GLOBAL_MAX_MSG_PER_SEC": 1000000, "ADMISSION_GLOBAL_MAX_TOOL_PER_SEC": 1000000,
  "RATE_LIMIT_CHAT_STREAM_MAX": 1000000, "CIRCUIT_OPENROUTER_PRIMARY_THRESHOLD": 1000,
  "CHAT_PROVIDER_PRIMARY_TIMEOUT_MS": 60000'

# tokens N FILE - an Authorization header for each of N users, a line each
tokens() {
	local i
	: >"$2"
	for i in $(seq "$1"); do
		printf 'Authorization: Bearer %s\n' \
			"$(RELGATE_AUTH_JWT_SECRET=$SECRET "$RELCTL" jwt mint --sub "bench-user-$i" --ttl 7200)" >>"$2"
	done
}

# --- Portkey -------------------------------------------------------------

start_portkey() {
	[ -n "${PK_PORT:-}" ] || ports_claim 1 PK_PORT
	(cd "$PORTKEY_DIR" && exec env NODE_ENV=production node --import ./loopback.mjs \
		"$PORTKEY_JS" --port="$PK_PORT" --headless) >"$T/portkey.log" 2>&1 &
	PK_PID=$!
	PIDS="$PIDS $PK_PID"
	listening "$PK_PID" "$PK_PORT" portkey
	# Portkey routes by these headers: OpenAI's API at relmock's base URL
	PK_HDRS=(-H 'x-portkey-provider: openai' -H "x-portkey-custom-host: http://127.0.0.1:$MOCK/v1")
}
PK_HDRS=()

# --- bodies and URLs -----------------------------------------------------

# body KIND OPTIONS - the request of a target: relgate's chat body, or the
# OpenAI one for relmock and Portkey; OPTIONS is relmock's directive
body() {
	if [ "$1" = relgate ]; then
		printf '{"threadId":"bench","messages":[{"role":"user","content":"relmock: %s"}]}' "$2"
	else
		printf '{"model":"relmock/bench","stream":true,"messages":[{"role":"user","content":"relmock: %s"}]}' "$2"
	fi
}
url() {
	case $1 in
	direct) echo "http://127.0.0.1:$MOCK/v1/chat/completions" ;;
	relgate) echo "http://127.0.0.1:$RPORT/api/chat" ;;
	portkey) echo "http://127.0.0.1:$PK_PORT/v1/chat/completions" ;;
	esac
}

# smoke TARGET - one stream with curl -N: its first and last events
smoke() {
	local extra=()
	[ "$1" != portkey ] || extra=("${PK_HDRS[@]}")
	curl -sN -m 10 -o "$T/smoke.$1" -w '%{http_code}' "${extra[@]}" \
		-H "$(head -n 1 "$T/tokens")" -H 'content-type: application/json' \
		-d "$(body "$1" "tokens=3")" "$(url "$1")" >"$T/smoke.$1.code" 2>/dev/null || true
	printf '  %-8s one stream with curl -N: HTTP %s, %s data events, last: %s\n' "$1" \
		"$(cat "$T/smoke.$1.code")" "$(grep -c '^data:' "$T/smoke.$1" || true)" \
		"$(grep '^data:' "$T/smoke.$1" | tail -n 1 | cut -c1-60)"
}

# sse TARGET NAME [sseload args] - sseload against TARGET; its JSON line
# in $T/NAME.json, its report in $T/NAME.out
sse() {
	local target=$1 name=$2 extra=()
	shift 2
	[ "$target" != portkey ] || extra=("${PK_HDRS[@]}")
	"$SSELOAD" --json --header-file "$T/tokens" "${extra[@]}" "$@" "$(url "$target")" \
		>"$T/$name.out" 2>&1 &
	LOAD_PID=$!
	PIDS="$PIDS $LOAD_PID"
	wait "$LOAD_PID" || true
	forget "$LOAD_PID"
	grep '^{' "$T/$name.out" >"$T/$name.json" || echo '{}' >"$T/$name.json"
}

# --- memory: PSS and RSS summed over processes -----------------------------

# mem_each PIDS... - "PID PSS_KB RSS_KB" a line, from /proc/PID/smaps_rollup
mem_each() {
	local p
	for p in "$@"; do
		awk -v p="$p" '/^Pss:/ { s = $2 } /^Rss:/ { r = $2 } END { print p, s + 0, r + 0 }' \
			"/proc/$p/smaps_rollup" 2>/dev/null || true
	done
}
# mem PIDS... - "PSS_KB RSS_KB" summed
mem() { mem_each "$@" | awk '{ s += $2; r += $3 } END { print s + 0, r + 0 }'; }

# watch_mem PIDFN - while the load runs ($LOAD_PID), sample the memory of
# the pids PIDFN prints every second; sets PEAK_PSS, PEAK_RSS (KiB) and
# keeps the per-process figures of the PSS peak in $T/peak.mem
watch_mem() {
	local pss rss
	PEAK_PSS=0 PEAK_RSS=0
	: >"$T/peak.mem"
	while kill -0 "$LOAD_PID" 2>/dev/null; do
		mem_each $($1) >"$T/sample.mem"
		read -r pss rss < <(awk '{ s += $2; r += $3 } END { print s + 0, r + 0 }' "$T/sample.mem")
		[ "$pss" -le "$PEAK_PSS" ] || { PEAK_PSS=$pss; cp "$T/sample.mem" "$T/peak.mem"; }
		[ "$rss" -le "$PEAK_RSS" ] || PEAK_RSS=$rss
		sleep 1
	done
}

# roles_at_peak IDLE_FILE - relgate's PSS by role: idle and at the peak
# (MiB), from $T/peak.mem and the idle sample, roles from relstat
roles_at_peak() {
	"$RELSTAT" -n "$SHM" -j 2>/dev/null | jq -r --arg s "$RG_PID" \
		'.processes[] | "\(.pid) \(.role)"' >"$T/roles" || true
	echo "$RG_PID supervisor" >>"$T/roles"
	awk 'FILENAME == ARGV[1] { role[$1] = $2; next }
		FILENAME == ARGV[2] { idle[role[$1]] += $2; next }
		{ peak[role[$1]] += $2; n[role[$1]]++ }
		END { printf "  relgate PSS by role, idle -> peak:"
			for (r in peak) printf " %s(%d) %.1f -> %.1f MiB;", r, n[r], idle[r] / 1024, peak[r] / 1024
			printf "\n" }' "$T/roles" "$1" "$T/peak.mem"
}
portkey_pids() { echo "$PK_PID"; }

# hold_run TARGET NAME STREAMS PIDFN - STREAMS streams held for DURATION s
# (ramped), memory of PIDFN's processes sampled; prints the figures and
# appends a JSON line to $T/NAME.sum
hold_run() {
	local target=$1 name=$2 n=$3 pidfn=$4 ramp idle_pss idle_rss s0 extra=()
	# 2 ms per stream, at most 40 s: with DURATION 60 every stream is
	# still open when the last one starts
	ramp=${RAMP_MS:-$((n < 500 ? 1000 : 2 * n))}
	[ -n "${RAMP_MS-}" ] || [ "$ramp" -le 40000 ] || ramp=40000
	[ "$target" != portkey ] || extra=("${PK_HDRS[@]}")
	mem_each $($pidfn) >"$T/idle.mem"
	read -r idle_pss idle_rss < <(awk '{ s += $2; r += $3 } END { print s + 0, r + 0 }' "$T/idle.mem")
	s0=$(steal_ticks)
	"$SSELOAD" --json --hold -c "$n" --ramp-ms "$ramp" -t $((DURATION + 30)) -p 4 \
		--header-file "$T/tokens" "${extra[@]}" -b "$(body "$target" "tokens=$DURATION token_ms=1000")" \
		"$(url "$target")" >"$T/$name.out" 2>&1 &
	LOAD_PID=$!
	PIDS="$PIDS $LOAD_PID"
	watch_mem "$pidfn"
	wait "$LOAD_PID" || true
	forget "$LOAD_PID"
	grep '^{' "$T/$name.out" >"$T/$name.json" || echo '{}' >"$T/$name.json"
	jq -c --arg part hold --arg target "$target" --argjson n "$n" --argjson dur "$DURATION" \
		--argjson ip "$idle_pss" --argjson ir "$idle_rss" --argjson pp "$PEAK_PSS" --argjson pr "$PEAK_RSS" \
		--argjson steal "$(steal_ms_since "$s0")" '{
		part: $part, target: $target, streams: $n, seconds: $dur,
		completed: (.completed // 0), completedPct: ((.completed // 0) * 100000 / $n | floor / 1000),
		peakOpen: (.peakOpen // 0), status: (.status // {}), resets: (.resets // 0),
		timeouts: (.timeouts // 0), connectErrors: (.connectErrors // 0), noMarker: (.noMarker // 0),
		firstEventMs: (.firstEventMs // {}),
		pssKiB: {idle: $ip, peak: $pp}, rssKiB: {idle: $ir, peak: $pr},
		pssPerStreamKiB: (($pp - $ip) * 10 / $n | floor / 10),
		rssPerStreamKiB: (($pr - $ir) * 10 / $n | floor / 10),
		pssPerOpenStreamKiB: (if (.peakOpen // 0) > 0 then ($pp - $ip) * 10 / .peakOpen | floor / 10 else null end),
		stealMs: $steal}' \
		"$T/$name.json" | tee -a "$T/$name.sum"
}

# --- part 1: added time to first token -----------------------------------

# ttft_run TARGET LEVEL [TOKENS] - one measurement, a JSON line out
ttft_run() {
	local target=$1 n=$2 tokens=${3:-20} name=ttft-$1-$2
	# streams of TOKENS tokens, one each 100 ms (20: 2 s): N in flight
	# keeps N open; the first N starts spread over one stream's length
	sse "$target" "$name" -c "$n" -d "$TTFT_SECONDS" --ramp-ms $((tokens * 100)) -t 30 \
		-b "$(body "$target" "tokens=$tokens token_ms=100")"
	jq -c --arg target "$target" --argjson n "$n" '{part: "ttft", target: $target, streams: $n,
		requests: (.requests // 0), completed: (.completed // 0), peakOpen: (.peakOpen // 0),
		status: (.status // {}), resets: (.resets // 0), timeouts: (.timeouts // 0),
		firstEventMs: (.firstEventMs // {})}' "$T/$name.json"
}

part_ttft() {
	local n t targets="direct relgate"
	echo "== ttft: time to the first token at $TTFT_LEVELS concurrent streams ($TTFT_SECONDS s each); relgate $TTFT_INGRESS ingress, $TTFT_PROVIDERS provider (load $(load_avg))"
	INGRESS=$TTFT_INGRESS PROVIDERS=$TTFT_PROVIDERS start_relgated ttft "$WIDE_OPEN"
	[ "$PORTKEY" = 0 ] || { start_portkey; targets="$targets portkey"; }
	for t in $targets; do smoke "$t"; done
	# warm up every target alike (connections, Node's JIT)
	for t in $targets; do
		sse "$t" "warm-$t" -c 50 -n 1000 -d 10 -t 10 -b "$(body "$t" "tokens=2")"
	done
	: >"$T/ttft.sum"
	for n in $TTFT_LEVELS; do
		for t in $targets; do
			# the host's steal time during the run moves the p99 (a
			# shared machine): printed beside it
			cpu_ticks "$T/cpu0"
			ttft_run "$t" "$n" >"$T/run.json"
			cpu_ticks "$T/cpu1"
			jq -c --argjson steal "$(steal_ms "$T/cpu0" "$T/cpu1")" '. + {stealMs: $steal}' "$T/run.json" >>"$T/ttft.sum"
		done
	done
	stop_relgated
	[ "$PORTKEY" = 0 ] || { stop "$PK_PID"; }
	# added = a gateway's figure minus the direct one at the same level
	jq -sc '(map(select(.target == "direct") | {key: (.streams | tostring), value: .firstEventMs}) | from_entries) as $base |
		.[] | . + {addedMs: (if .target == "direct" then null else
			{p50: ((.firstEventMs.p50 - $base[.streams | tostring].p50) * 1000 | round / 1000),
			 p99: ((.firstEventMs.p99 - $base[.streams | tostring].p99) * 1000 | round / 1000)} end)}' \
		"$T/ttft.sum" | tee "$T/ttft.result"
}

# --- part 2: streams held ---------------------------------------------------

part_hold() {
	echo "== hold: $STREAMS streams held for $DURATION s (1 token/s); relgate $INGRESS ingress, $PROVIDERS provider (load $(load_avg))"
	: >"$T/hold.sum"
	start_relgated hold "$WIDE_OPEN"
	smoke relgate
	sleep 2
	hold_run relgate hold-relgate "$STREAMS" relgate_pids >/dev/null
	roles_at_peak "$T/idle.mem"
	echo "  relgate counters: $("$RELSTAT" -n "$SHM" -j | jq -c '[.processes[] | select(.role == "ingress" or .role == "provider") | .counters] |
		{chatStreams: (map(.["ingress.chatStreams"] // 0) | add), chatFailed: (map(.["ingress.chatFailed"] // 0) | add),
		 chatSlowClients: (map(.["ingress.chatSlowClients"] // 0) | add), chatClientGone: (map(.["ingress.chatClientGone"] // 0) | add),
		 streamsFailed: (map(.["provider.streamsFailed"] // 0) | add), streamsErrored: (map(.["provider.streamsErrored"] // 0) | add)}' 2>/dev/null)"
	stop_relgated
	if [ "$PORTKEY" != 0 ]; then
		local n top_level
		top_level=$(tr ' ' '\n' <<<"$TTFT_LEVELS" | sort -n | tail -n 1)
		for n in $top_level "$STREAMS"; do
			start_portkey
			smoke portkey
			sleep 2
			hold_run portkey "hold-portkey-$n" "$n" portkey_pids >/dev/null
			stop "$PK_PID"
		done
		cat "$T"/hold-portkey-*.sum >>"$T/hold.sum" 2>/dev/null || true
	fi
	cat "$T/hold-relgate.sum" "$T/hold.sum" >"$T/hold.result"
	cat "$T/hold.result"
}

# --- part 3: the 429 path beside nginx's limit_req ------------------------

# run_wrk NAME URL - wrk with bench/chat_wrk.lua; its JSON line (from the
# script's done()) in $T/NAME.json
run_wrk() {
	local s0
	s0=$(steal_ticks)
	CHAT_TOKENS_FILE=$T/tokens CHAT_BODY=$(body relgate "tokens=1") \
		wrk -t2 -c"$REJECT_CONNS" -d"${REJECT_SECONDS}s" --latency -s "$top/bench/chat_wrk.lua" "$2" \
		>"$T/$1.wrk" 2>&1 &
	LOAD_PID=$!
	PIDS="$PIDS $LOAD_PID"
	wait "$LOAD_PID" || true
	forget "$LOAD_PID"
	grep '^{' "$T/$1.wrk" | tail -n 1 >"$T/$1.json" || echo '{}' >"$T/$1.json"
	jq -c --argjson steal "$(steal_ms_since "$s0")" '. + {stealMs: $steal}' "$T/$1.json" >"$T/$1.json.tmp"
	mv "$T/$1.json.tmp" "$T/$1.json"
}

part_reject() {
	local nport npid
	nginx_need || { echo "bench: wrk and nginx could not be installed"; exit 2; }
	echo "== reject: 429 from admission vs nginx limit_req (wrk -t2 -c$REJECT_CONNS -d${REJECT_SECONDS}s, $USERS users; load $(load_avg))"
	ports_claim 1 nport
	# a 429 of the shape relgate answers; the request let through gets 200
	nginx_conf "$T/nginx" 2 "$(cat <<CONF
  client_body_buffer_size 64k;
  limit_req_zone \$binary_remote_addr zone=chat:10m rate=1r/s;
  server {
    listen 127.0.0.1:$nport reuseport;
    location = /api/chat {
      limit_req zone=chat nodelay;
      limit_req_status 429;
      error_page 429 = @limited;
      try_files /nonexistent @chat;
    }
    location @limited {
      default_type application/json;
      add_header Retry-After 2 always;
      add_header x-sendcat-error-code rate_limited always;
      return 429 '{"error":{"code":"rate_limited","message":"Too many chat requests (global_msg_rate); retry later."}}';
    }
    location @chat {
      default_type application/json;
      return 200 '{"ok":true}';
    }
  }
CONF
)"
	nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" &
	npid=$!
	PIDS="$PIDS $npid"
	listening "$npid" "$nport" nginx
	curl -s -o /dev/null -w '  nginx    one request: HTTP %{http_code}\n' -X POST -d x "http://127.0.0.1:$nport/api/chat" || true
	run_wrk reject-nginx "http://127.0.0.1:$nport/api/chat"
	stop "$npid"
	# relgate: authoritative admission, 1 message/s; 2 ingress as nginx's 2
	# workers; relgate's own limiter out of the way
	INGRESS=2 start_relgated reject '"ADMISSION_GLOBAL_MAX_MSG_PER_SEC": 1, "ADMISSION_USER_MAX_INFLIGHT": 10000,
  "ADMISSION_GLOBAL_MAX_INFLIGHT": 100000, "ADMISSION_GLOBAL_MAX_TOOL_PER_SEC": 1000000,
  "RATE_LIMIT_CHAT_STREAM_MAX": 1000000, "BULKHEAD_OR_PRI_MAX_CONCURRENT": 1024'
	curl -s -o "$T/reject.one" -D "$T/reject.one.h" -H "$(head -n 1 "$T/tokens")" -H 'content-type: application/json' \
		-d "$(body relgate tokens=1)" "http://127.0.0.1:$RPORT/api/chat" >/dev/null || true
	curl -s -o "$T/reject.two" -D "$T/reject.two.h" -H "$(head -n 1 "$T/tokens")" -H 'content-type: application/json' \
		-d "$(body relgate tokens=1)" "http://127.0.0.1:$RPORT/api/chat" >/dev/null || true
	echo "  relgate  two requests: HTTP $(head -n 1 "$T/reject.one.h" | cut -d' ' -f2), then $(head -n 1 "$T/reject.two.h" | cut -d' ' -f2) $(cat "$T/reject.two")"
	run_wrk reject-relgate "http://127.0.0.1:$RPORT/api/chat"
	"$RELSTAT" -n "$SHM" -j >"$T/reject.relstat" 2>/dev/null || true
	stop_relgated
	jq -c '{part: "reject", target: "nginx"} + .' "$T/reject-nginx.json" >"$T/reject.result"
	jq -c '{part: "reject", target: "relgate"} + .' "$T/reject-relgate.json" >>"$T/reject.result"
	cat "$T/reject.result"
	jq -r '.chatAdmission.counters | "  relgate admission: allowed \(.allowed), blocked \(.blocked)"' "$T/reject.relstat" 2>/dev/null || true
}

# --- part 4: the pressure drill ---------------------------------------------

part_pressure() {
	local s0 steal
	echo "== pressure: a burst of $PRESSURE_CONNS streams from $PRESSURE_USERS users for $PRESSURE_SECONDS s against admission's defaults (load $(load_avg))"
	# admission's default limits (3 per user, 200 in flight, 50 messages/s,
	# 100 tool calls/s), the bulkhead sized above the in-flight limit
	INGRESS=$TTFT_INGRESS PROVIDERS=$TTFT_PROVIDERS start_relgated pressure "\"BULKHEAD_OR_PRI_MAX_CONCURRENT\": $PRESSURE_BULKHEAD, \"BULKHEAD_OR_SEC_MAX_CONCURRENT\": $PRESSURE_BULKHEAD,
  \"RATE_LIMIT_CHAT_STREAM_MAX\": 1000000"
	head -n "$PRESSURE_USERS" "$T/tokens.all" >"$T/tokens"
	# every connection starts at once, and asks again as soon as it is
	# answered (a 429 too): streams of 20 tokens, one each 100 ms
	s0=$(steal_ticks)
	sse relgate pressure -c "$PRESSURE_CONNS" -d "$PRESSURE_SECONDS" -t 30 \
		-b "$(body relgate "tokens=20 token_ms=100")"
	steal=$(steal_ms_since "$s0")
	"$RELSTAT" -n "$SHM" -j >"$T/pressure.relstat" 2>/dev/null || echo '{}' >"$T/pressure.relstat"
	stop_relgated
	cp "$T/tokens.all" "$T/tokens"
	jq -c --slurpfile rs "$T/pressure.relstat" --argjson steal "$steal" '{part: "pressure", target: "relgate", connections: .connections,
		users: '"$PRESSURE_USERS"', requests: .requests, status: .status,
		s5xx: ([.status | to_entries[] | select(.key | startswith("5")) | .value] | add // 0),
		timeouts: .timeouts, resets: .resets, connectErrors: .connectErrors, completed: .completed,
		retryAfter: .retryAfter, non2xxMs: .non2xxMs, firstEventMs: .firstEventMs,
		blockedBy: ($rs[0].chatAdmission.dimensions // {} | with_entries(.value |= .blocked)),
		stealMs: $steal}' \
		"$T/pressure.json" | tee "$T/pressure.result"
}

# --- the table ---------------------------------------------------------------

table() {
	echo
	echo "== figures ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average now $(load_avg))"
	if [ -s "$T/ttft.result" ]; then
		echo "time to first token (ms, sseload first data event; added = minus direct)"
		printf '  %-8s %7s %9s %9s %11s %11s %10s %9s\n' target streams p50 p99 added_p50 added_p99 completed steal_ms
		jq -r '[.target, .streams, .firstEventMs.p50, .firstEventMs.p99,
			(.addedMs.p50 // "-"), (.addedMs.p99 // "-"), "\(.completed)/\(.requests)", (.stealMs // "-")] | @tsv' "$T/ttft.result" |
			while IFS=$'\t' read -r a b c d e f g h; do
				printf '  %-8s %7s %9s %9s %11s %11s %10s %9s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h"
			done
	fi
	if [ -s "$T/hold.result" ]; then
		echo "held streams ($DURATION s, 1 token/s; memory summed over the gateway's processes)"
		printf '  %-8s %7s %10s %9s %9s %9s %12s %12s %14s\n' target streams completed% peakOpen resets timeouts \
			PSS/stream RSS/stream PSS/open_stream
		jq -r '[.target, .streams, .completedPct, .peakOpen, .resets, .timeouts,
			"\(.pssPerStreamKiB) KiB", "\(.rssPerStreamKiB) KiB", "\(.pssPerOpenStreamKiB) KiB"] | @tsv' "$T/hold.result" |
			while IFS=$'\t' read -r a b c d e f g h i; do
				printf '  %-8s %7s %10s %9s %9s %9s %12s %12s %14s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h" "$i"
			done
		jq -r '"  \(.target) at \(.streams): first event p50 \(.firstEventMs.p50 // "-") ms, p99 \(.firstEventMs.p99 // "-") ms; PSS \(.pssKiB.idle) -> \(.pssKiB.peak) KiB, RSS \(.rssKiB.idle) -> \(.rssKiB.peak) KiB; status \(.status | tostring); host steal \(.stealMs // "-") ms"' "$T/hold.result"
	fi
	if [ -s "$T/reject.result" ]; then
		echo "429 path (wrk -t2 -c$REJECT_CONNS -d${REJECT_SECONDS}s, POST JSON with Authorization)"
		printf '  %-8s %10s %9s %9s %9s  %s\n' server req/s p50_ms p99_ms steal_ms statuses
		jq -r '[.target, .rps, .p50Ms, .p99Ms, (.stealMs // "-"), (.status | tostring), (.errors | tostring)] | @tsv' "$T/reject.result" |
			while IFS=$'\t' read -r a b c d g e f; do
				printf '  %-8s %10s %9s %9s %9s  %s %s\n' "$a" "$b" "$c" "$d" "$g" "$e" "$f"
			done
	fi
	if [ -s "$T/pressure.result" ]; then
		echo "pressure drill"
		jq -r '"  \(.requests) requests: status \(.status | tostring), 5xx \(.s5xx), timeouts \(.timeouts), resets \(.resets), connect errors \(.connectErrors)",
			"  refusals: \(.non2xxMs.n) answered in p50 \(.non2xxMs.p50) ms, p99 \(.non2xxMs.p99) ms, max \(.non2xxMs.max) ms; with Retry-After \(.retryAfter)",
			"  streams served: \(.completed) (first event p50 \(.firstEventMs.p50) ms, p99 \(.firstEventMs.p99) ms); refused by \(.blockedBy | tostring); host steal \(.stealMs // "-") ms"' "$T/pressure.result"
	fi
}

# --- part 5: tool spikes beside chats without tools ---------------------------

# spike_run PAIR SIDE CPU_BEFORE CPU_AFTER - one run of the chats without
# tools, its JSON line (with the host's steal time, and the most of it in
# 100 ms) into toolspike.sum
spike_run() {
	local watch late0
	steal_watch "$T/steal.tl" $((TTFT_SECONDS + 40)) &
	watch=$!
	PIDS="$PIDS $watch"
	late0=$(loop_late)
	cpu_ticks "$3"
	ttft_run relgate "$SPIKE_PLAIN" "$SPIKE_TOKENS" >"$T/run.json"
	cpu_ticks "$4"
	stop "$watch"
	jq -c --argjson pair "$1" --arg run "$2" --argjson steal "$(steal_ms "$3" "$4")" \
		--argjson peak "$(steal_peak "$T/steal.tl")" --argjson late "$(($(loop_late) - late0))" \
		'. + {part: "toolspike", pair: $pair, run: $run, stealMs: $steal, stealPeakMs: $peak, loopLate: $late}' "$T/run.json" >>"$T/toolspike.sum"
}

# loop_late - relgate's event loop probes run 10 ms or more late so far,
# over all its processes (relstat -j, loop.late)
loop_late() {
	"$RELSTAT" -n "$SHM" -j | jq '.totals["loop.late"] // 0'
}

# tool_fault SPEC - the tools' relmock answers with SPEC from now on
tool_fault() {
	curl -sf -o /dev/null --data-binary "$1" "http://127.0.0.1:$TOOLMOCK/_relmock/faults/serper" ||
		echo "  the tools' relmock refused the fault $1"
}

# spike_drain - wait (at most 60 s) until no tool job is queued or
# running: a run alone is one with the tool-workers idle
spike_drain() {
	local i
	for i in $(seq 120); do
		if "$RELSTAT" -n "$SHM" -j 2>/dev/null |
			jq -e '[.tools[] | .queued + .running] | add | . == 0' >/dev/null; then
			echo "  tool jobs drained in $(((i - 1) * 5 / 10)).$(((i - 1) * 5 % 10)) s"
			return 0
		fi
		sleep 0.5
	done
	echo "  tool jobs still queued or running after 60 s: $("$RELSTAT" -n "$SHM" -j | jq -c '.tools.search_web | {queued, running}')"
}

# spike_beside PAIR - the spike (tool chats for the whole measurement and
# a little more; none with SPIKE_TOOLS=0, the control: both runs of a pair
# alone), the run beside it, then the spike's end and its jobs drained
spike_beside() {
	local spike_pid
	if [ "$SPIKE_TOOLS" -gt 0 ]; then
		tool_fault "latency_ms=$SPIKE_TIMEOUT_MS"
		"$SSELOAD" --json --header-file "$T/tokens" -c "$SPIKE_TOOLS" -d $((TTFT_SECONDS + 6)) -t 60 \
			-b "$(printf '{"threadId":"spike","messages":[{"role":"user","content":"relmock-tool: search_web {\\"query\\":\\"spike\\"}"}]}')" \
			"$(url relgate)" >"$T/spike-tools.out" 2>&1 &
	else
		sleep $((TTFT_SECONDS + 6)) >"$T/spike-tools.out" &
	fi
	spike_pid=$!
	PIDS="$PIDS $spike_pid"
	sleep 3 # the tool chats are in their wait
	spike_run "$1" beside "$T/cpu2" "$T/cpu3"
	wait "$spike_pid" || true
	forget "$spike_pid"
	grep '^{' "$T/spike-tools.out" >>"$T/spike-tools.all" || true
	# the spike's end: the upstream refuses at once (nothing cached, the
	# circuit untouched), every job left a dead letter within seconds
	[ "$SPIKE_TOOLS" -eq 0 ] || tool_fault "status=404"
	spike_drain
}

part_toolspike() {
	local tool
	echo "== toolspike: first token of $SPIKE_PLAIN concurrent chats without tools ($TTFT_SECONDS s), alone and beside $SPIKE_TOOLS concurrent tool chats (tool upstream at its timeout, $SPIKE_TIMEOUT_MS ms); relgate $TTFT_INGRESS ingress, $TTFT_PROVIDERS provider (load $(load_avg))"
	ports_claim 1 TOOLMOCK
	printf '{"listen": "127.0.0.1:%s", "serper": {"key": "%s"}}\n' \
		"$TOOLMOCK" "$SERPER_API_KEY" >"$T/toolmock.json"
	"$RELMOCK" -c "$T/toolmock.json" >"$T/toolmock.log" 2>&1 &
	TM_PID=$!
	PIDS="$PIDS $TM_PID"
	listening "$TM_PID" "$TOOLMOCK" "the tools' relmock"
	tool="{\"name\": \"search_web\", \"description\": \"Search the web\",
	  \"parameters\": {\"type\": \"object\", \"properties\": {\"query\": {\"type\": \"string\"}}, \"required\": [\"query\"]},
	  \"upstream\": {\"method\": \"POST\", \"url\": \"http://127.0.0.1:$TOOLMOCK/serper/search\",
	    \"headers\": {\"X-API-KEY\": \"\$SERPER_API_KEY\"}, \"body\": {\"q\": \"{{query}}\"}},
	  \"timeout_ms\": $SPIKE_TIMEOUT_MS, \"retries\": 0, \"circuit\": \"serper_search\", \"bulkhead\": \"serper_search\"}"
	INGRESS=$TTFT_INGRESS PROVIDERS=$TTFT_PROVIDERS start_relgated toolspike "$WIDE_OPEN,
	  \"CIRCUIT_SERPER_THRESHOLD\": 1000, \"tools\": [ $tool ]"
	smoke relgate
	sse relgate warm-spike -c 50 -n 1000 -d 10 -t 10 -b "$(body relgate "tokens=2")"
	: >"$T/toolspike.sum"
	: >"$T/spike-tools.all"
	# pairs of runs, alone and beside a spike, the order swapped every
	# other pair (on a shared machine one pair's p99 moves with the
	# neighbours, the median of the pairs' ratios less so; the swap keeps a
	# drift from favouring either side)
	for pair in $(seq "$SPIKE_PAIRS"); do
		if [ $((pair % 2)) -eq 1 ]; then
			spike_run "$pair" alone "$T/cpu0" "$T/cpu1"
			spike_beside "$pair"
		else
			spike_beside "$pair"
			spike_run "$pair" alone "$T/cpu0" "$T/cpu1"
		fi
		echo "  pair $pair: relgate's CPU alone: $(cpu_spent "$T/cpu0" "$T/cpu1")"
		echo "  pair $pair: relgate's CPU beside: $(cpu_spent "$T/cpu2" "$T/cpu3")"
		jq -sc --argjson pair "$pair" '[.[] | select(.pair == $pair)] | (map(select(.run == "alone"))[0]) as $a | (map(select(.run == "beside"))[0]) as $b | {pair: $pair, first: .[0].run, aloneP99: $a.firstEventMs.p99, besideP99: $b.firstEventMs.p99, stealMs: [$a.stealMs, $b.stealMs], stealPeakMs: [$a.stealPeakMs, $b.stealPeakMs], loopLate: [$a.loopLate, $b.loopLate]}' "$T/toolspike.sum"
	done
	echo "  tool chats: $(jq -sc '{requests: (map(.requests) | add), completed: (map(.completed) | add), status200: (map(.status["200"] // 0) | add), timeouts: (map(.timeouts) | add)}' "$T/spike-tools.all" 2>/dev/null)"
	echo "  relgate: $("$RELSTAT" -n "$SHM" -j | jq -c '.totals | {toolCalls: .["provider.toolCalls"], toolJobsQueued: .["provider.toolJobsQueued"], toolWaitTimeouts: .["provider.toolWaitTimeouts"], toolResults: .["provider.toolResults"], jobsRetried: .["toolWorker.jobsRetried"], jobsDead: .["toolWorker.jobsDead"], jobsPostponed: .["toolWorker.jobsPostponed"]}' 2>/dev/null)"
	stop_relgated
	stop "$TM_PID"
	jq -sc --argjson quiet "$SPIKE_QUIET_STEAL_MS" --argjson peak "$SPIKE_QUIET_PEAK_MS" 'def med: sort | if length == 0 then null else (.[(length - 1) / 2 | floor] + .[length / 2 | floor]) / 2 end;
		def r3: . * 1000 | round / 1000;
		def m3: med | if . == null then null else r3 end;
		def ratio: [.[] | select((.alone.p99 // 0) > 0) | .beside.p99 / .alone.p99] | m3;
		def quiet: .stealMs <= $quiet and (.stealPeakMs // 0) <= $peak;
		[group_by(.pair)[] | (map(select(.run == "alone"))[0]) as $a |
		  (map(select(.run == "beside"))[0]) as $b |
		  {alone: $a.firstEventMs, beside: $b.firstEventMs, quiet: (($a | quiet) and ($b | quiet))}] as $p |
		{part: "toolspike", streams: .[0].streams, pairs: ($p | length),
		 aloneMs: {p50: ($p | map(.alone.p50) | m3), p99: ($p | map(.alone.p99) | m3)},
		 besideSpikeMs: {p50: ($p | map(.beside.p50) | m3), p99: ($p | map(.beside.p99) | m3)},
		 p99Ratios: [$p[] | if (.alone.p99 // 0) > 0 then (.beside.p99 / .alone.p99 | r3) else null end],
		 p99Ratio: ($p | ratio),
		 quietPairs: ([$p[] | select(.quiet)] | length),
		 quietP99Ratio: ([$p[] | select(.quiet)] | ratio)} +
		([.[] | select(quiet)] as $q |
		 ($q | map(select(.run == "alone") | .firstEventMs.p99)) as $a |
		 ($q | map(select(.run != "alone") | .firstEventMs.p99)) as $b |
		 {quietRuns: {alone: ($a | length), beside: ($b | length)},
		  quietRunsP99Ms: {alone: ($a | m3), beside: ($b | m3)},
		  quietRunsP99Ratio: (if ($a | med // 0) > 0 and ($b | med) != null then ($b | med) / ($a | med) | r3 else null end)})' \
		"$T/toolspike.sum" | tee "$T/toolspike.result"
}

# --- run -----------------------------------------------------------------------

echo "relgate chat bench: $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ), load average $(load_avg)"
case $what in ttft | hold | all) [ "$PORTKEY" = 0 ] || need_portkey ;; esac
[ -z "${PORTKEY_VERSION:-}" ] || echo "  Portkey AI Gateway $PORTKEY_VERSION ($PORTKEY_DEPS), Node.js $(node --version)"
start_relmock
tokens "$(( USERS > PRESSURE_USERS ? USERS : PRESSURE_USERS ))" "$T/tokens.all"
head -n "$USERS" "$T/tokens.all" >"$T/tokens"
case $what in
ttft) part_ttft ;;
hold) part_hold ;;
reject) part_reject ;;
pressure) part_pressure ;;
toolspike) part_toolspike ;;
all) part_ttft; part_hold; part_reject; part_pressure; part_toolspike ;;
esac
table
