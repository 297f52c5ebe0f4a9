#!/bin/bash
# bench/relmock_streams.sh - how many slow chat streams relmock holds at
# once: relmock --workers W, and bench/sseload --hold opening STREAMS
# streams (ramped over RAMP_MS) of TOKENS tokens at one per TOKEN_MS.
# Prints figures (peak open, completed, time to first byte and to the
# first event, relmock's memory summed over its processes from /proc);
# asserts nothing (a benchmark is not a test).
#   bench/relmock_streams.sh
# Settings from the environment (defaults): STREAMS (20000), TOKENS (60),
# TOKEN_MS (1000), RAMP_MS (10000), WORKERS (4), TIMEOUT (75 s per
# stream: the run ends within RAMP_MS + TIMEOUT + 1 s), PORT (a loopback
# port below the kernel's ephemeral range, picked at random).
# Needs a build in build/ (or BUILD=dir).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$top/build}
STREAMS=${STREAMS:-20000}
TOKENS=${TOKENS:-60}
TOKEN_MS=${TOKEN_MS:-1000}
RAMP_MS=${RAMP_MS:-10000}
WORKERS=${WORKERS:-4}
TIMEOUT=${TIMEOUT:-75}
PORT=${PORT:-$((20000 + RANDOM % 12000))}
RELMOCK=$B/tools/relmock/relmock
SSELOAD=$B/bench/sseload
for x in "$RELMOCK" "$SSELOAD"; do
	[ -x "$x" ] || { echo "bench: no $x (build first: make -C $B)"; exit 2; }
done

T=$(mktemp -d /tmp/rgbench.XXXXXX)
RM_PID=
LOAD_PID=
cleanup() {
	[ -z "$LOAD_PID" ] || kill -TERM "$LOAD_PID" 2>/dev/null || true
	if [ -n "$RM_PID" ]; then
		kill -TERM "$RM_PID" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$RM_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$RM_PID" 2>/dev/null || true # workers follow it
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$RELMOCK" -l "127.0.0.1:$PORT" --workers "$WORKERS" >"$T/relmock.log" 2>&1 &
RM_PID=$!
up=
for _ in $(seq 100); do
	curl -sf -m 1 "http://127.0.0.1:$PORT/_relmock/health" >/dev/null 2>&1 && { up=1; break; }
	sleep 0.05
done
[ -n "$up" ] || { echo "bench: relmock did not start"; cat "$T/relmock.log"; exit 1; }
WPIDS=$(ps --ppid "$RM_PID" -o pid= | tr -d ' ' | tr '\n' ' ')

# proc_sum FILE AWK: AWK's figure from /proc/PID/FILE, summed over
# relmock's parent and workers
proc_sum() {
	local p s=0 v
	for p in $RM_PID $WPIDS; do
		v=$(awk "$2" "/proc/$p/$1" 2>/dev/null || echo 0)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
rss_kb() { proc_sum status '/^VmRSS:/ { print $2 }'; }
cpu_s() {
	awk -v t="$(proc_sum stat '{ print $14 + $15 }')" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.1f", t / hz }'
}

BODY=$(printf '{"model":"relmock/bench","stream":true,"messages":[{"role":"user","content":"relmock: tokens=%s token_ms=%s"}]}' \
	"$TOKENS" "$TOKEN_MS")
rss0=$(rss_kb)
"$SSELOAD" --hold -c "$STREAMS" --ramp-ms "$RAMP_MS" -t "$TIMEOUT" --json \
	-H 'Authorization: Bearer bench' -b "$BODY" \
	"http://127.0.0.1:$PORT/v1/chat/completions" >"$T/sseload.out" 2>&1 &
LOAD_PID=$!
peak=0
while kill -0 "$LOAD_PID" 2>/dev/null; do
	r=$(rss_kb)
	[ "$r" -gt "$peak" ] && peak=$r
	sleep 1
done
wait "$LOAD_PID" || true
LOAD_PID=
rss1=$(rss_kb)
# relmock's own count, per worker: a control request reaches the worker
# its connection lands on, so ask until every worker has answered (bounded)
declare -A wstats=()
for _ in $(seq 200); do
	st=$(curl -s -m 2 "http://127.0.0.1:$PORT/_relmock/chat/stats") || continue
	p=$(jq -r '.pid' <<<"$st" 2>/dev/null) || continue
	wstats[$p]=$st
	[ "${#wstats[@]}" -ge "$WORKERS" ] && break
done
RM=$(printf '%s\n' "${wstats[@]}" | jq -sc '{workers: length,
	completed: (map(.completed) | add), clientGone: (map(.clientGone) | add),
	dropped: (map(.dropped) | add), streamsOpen: (map(.streamsOpen) | add),
	perWorker: map(.requests)}' 2>/dev/null || echo '{}')

echo "relmock_streams: $STREAMS streams of $TOKENS tokens every $TOKEN_MS ms, ramp $RAMP_MS ms, relmock --workers $WORKERS"
grep -v '^{' "$T/sseload.out" || true
J=$(grep '^{' "$T/sseload.out" || echo '{}')
jq -r --argjson rss0 "$rss0" --argjson peak "$peak" --argjson rss1 "$rss1" --arg cpu "$(cpu_s)" \
	--argjson rm "$RM" '
	"figures:",
	"  peak open streams     \(.peakOpen)",
	"  completed normally    \(.completed) of \(.requests) (resets \(.resets), timeouts \(.timeouts), connect errors \(.connectErrors))",
	"  time to first byte    p50 \(.ttfbMs.p50) ms, p99 \(.ttfbMs.p99) ms, max \(.ttfbMs.max) ms",
	"  time to first event   p50 \(.firstEventMs.p50) ms, p99 \(.firstEventMs.p99) ms",
	"  stream duration       p50 \(.totalMs.p50) ms, p99 \(.totalMs.p99) ms",
	"  relmock RSS (all processes): idle \($rss0 / 1024 | floor) MiB, peak \($peak / 1024 | floor) MiB, after \($rss1 / 1024 | floor) MiB",
	"  relmock RSS per held stream  \(if .peakOpen > 0 then (($peak - $rss0) * 1024 / .peakOpen | floor) else 0 end) bytes",
	"  relmock CPU time      \($cpu) s",
	"  relmock counted       completed \($rm.completed), client gone \($rm.clientGone), open after \($rm.streamsOpen) (\($rm.workers) workers, requests each \($rm.perWorker))"' \
	<<<"$J" 2>/dev/null || echo "  (no JSON figures: see above)"
