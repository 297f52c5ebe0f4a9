#!/bin/bash
# bench/run.sh - relgate's figures against nginx, measured in the same run
# on this machine with the same wrk settings.  Prints figures; asserts
# nothing (a benchmark is not a test).
#   bench/run.sh [reject|accept|all]      (default all)
# Needs a build in build/ (tools/dev.sh test or run makes one) and
# installs wrk and nginx-light when missing (without starting Debian's
# nginx service).  Loopback only; every run is bounded by DURATION.
set -euo pipefail
# relgated stays the user running the benchmark (root included)
export RELGATE_USER=${RELGATE_USER:-$(id -un)}
# the default tools' keys (no tool is called): without them the default
# config is refused
export SERPER_API_KEY=${SERPER_API_KEY:-bench-serper-key}
export EBAY_OAUTH_TOKEN=${EBAY_OAUTH_TOKEN:-Bearer bench-ebay-token}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/e2e/ports.sh" # ports_claim, wait_listening
B=${BUILD:-$top/build}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
what=${1:-all}

. "$top/bench/nginx.sh"      # nginx_need, nginx_conf
. "$top/bench/host.sh"       # steal_ticks, steal_ms_since
nginx_need || { echo "bench: wrk and nginx could not be installed"; exit 2; }
[ -x "$B/daemons/relgated" ] || { echo "bench: no build in $B (run tools/dev.sh test first)"; exit 2; }

T=$(mktemp -d /tmp/rgbench.XXXXXX)
SHM=/rgbench.$$
PIDS=
cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	sleep 0.5
	for p in $PIDS; do kill -KILL "$p" 2>/dev/null || true; done
	rm -f "/dev/shm$SHM"
	rm -rf "$T"
	ports_release
}
trap cleanup EXIT

# listening PID PORT NAME - wait until PID alone serves PORT, or stop
listening() {
	wait_listening 20 "$1" "$2" ||
		{ echo "bench: $3 not listening alone on port $2 ($WAIT_STATE)"; exit 2; }
}

# run_wrk NAME URL [wrk args]: prints "rps p99_ms non2xx steal_ms" (the
# host's steal time during the run)
run_wrk() {
	local name=$1 url=$2 s0; shift 2
	s0=$(steal_ticks)
	wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url" >"$T/$name.wrk" 2>&1
	awk -v steal="$(steal_ms_since "$s0")" '
		/Requests\/sec:/ { rps = $2 }
		$1 == "99%" { v = $2; u = v; gsub(/[0-9.]/, "", u); gsub(/[a-z]/, "", v)
			p99 = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v }
		/Non-2xx or 3xx responses:/ { bad = $5 }
		END { printf "%s %.3f %s %s\n", rps, p99, (bad == "" ? 0 : bad), steal }' "$T/$name.wrk"
}

start_relgated() { # start_relgated EXTRA_JSON -> sets RPORT, RG_PID
	ports_claim 2 RPORT
	cat >"$T/relgate.json" <<JSON
{ "http": { "listen": "127.0.0.1:$RPORT" }, "admin": { "listen": "127.0.0.1:$((RPORT + 1))" },
  "state_dir": "$T/state", "run_dir": "$T/run", "shm": { "name": "$SHM" },
  "ingress": { "count": $WORKERS }, "tool_worker": { "count": 1 }, "log": { "level": "warn"${LOG_EXTRA:-} },
  $1 }
JSON
	"$B/daemons/relgated" -f -c "$T/relgate.json" >>"$T/relgated.log" 2>&1 &
	RG_PID=$!
	PIDS="$PIDS $RG_PID"
	listening "$RG_PID" "$RPORT" relgated
}
stop_relgated() {
	kill -TERM "$RG_PID"; wait "$RG_PID" || true
	rm -rf "$T/state" "$T/run"
}

bench_reject() {
	local nport
	ports_claim 1 nport
	mkdir -p "$T/nginx/www"
	echo '{"ok":true}' >"$T/nginx/www/ok.json"
	nginx_conf "$T/nginx" "$WORKERS" "  limit_req_zone \$binary_remote_addr zone=cb:10m rate=1r/m;
  server {
    listen 127.0.0.1:$nport reuseport;
    root $T/nginx/www;
    location / {
      limit_req zone=cb nodelay;
      limit_req_status 429;
      default_type application/json;
      try_files /ok.json =404;
    }
  }"
	nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" &
	local npid=$!
	PIDS="$PIDS $npid"
	listening "$npid" "$nport" nginx
	read -r n_rps n_p99 n_bad n_steal < <(run_wrk nginx_reject "http://127.0.0.1:$nport/api/gmail/auth/callback?code=x")
	kill -TERM "$npid"; wait "$npid" 2>/dev/null || true

	start_relgated '"app_url": "https://app.example", "RATE_LIMIT_GMAIL_OAUTH_MAX": 1, "RATE_LIMIT_GMAIL_OAUTH_WINDOW_MS": 3600000'
	read -r r_rps r_p99 r_bad r_steal < <(run_wrk relgate_reject "http://127.0.0.1:$RPORT/api/gmail/auth/callback?code=x")
	[ -z "${VERBOSE:-}" ] || grep -A4 "Latency Distribution" "$T/nginx_reject.wrk" "$T/relgate_reject.wrk"
	stop_relgated
	# the same with the access log to a file
	LOG_EXTRA=", \"access\": \"file\", \"access_file\": \"$T/access.log\"" \
		start_relgated '"app_url": "https://app.example", "RATE_LIMIT_GMAIL_OAUTH_MAX": 1, "RATE_LIMIT_GMAIL_OAUTH_WINDOW_MS": 3600000'
	read -r l_rps l_p99 l_bad l_steal < <(run_wrk relgate_reject_log "http://127.0.0.1:$RPORT/api/gmail/auth/callback?code=x")
	"$B/tools/relstat" -n "$SHM" -j >"$T/snap.json"
	stop_relgated
	local l_lines l_dropped
	l_lines=$(jq '.totals["ingress.access_lines"]' "$T/snap.json")
	l_dropped=$(jq '.totals["ingress.access_dropped"]' "$T/snap.json")

	echo "reject path (429 to a client over its limit; wrk -t$THREADS -c$CONNS -d${DURATION}s, $WORKERS server processes each):"
	printf '  %-8s %12s %10s %10s %10s\n' server req/s p99_ms non2xx3xx steal_ms
	printf '  %-8s %12s %10s %10s %10s\n' nginx "$n_rps" "$n_p99" "$n_bad" "$n_steal" \
		relgate "$r_rps" "$r_p99" "$r_bad" "$r_steal" "+access" "$l_rps" "$l_p99" "$l_bad" "$l_steal"
	awk -v r="$r_rps" -v n="$n_rps" -v rp="$r_p99" -v np="$n_p99" -v l="$l_rps" 'BEGIN {
		printf "  relgate/nginx throughput: %.2fx   p99: relgate %.3f ms vs nginx %.3f ms\n", r / n, rp, np
		printf "  access log to a file costs %.1f%% of the throughput\n", (r - l) * 100 / r }'
	echo "  access log lines written $l_lines, dropped $l_dropped ($(wc -l <"$T/access.log") lines in the file)"
}

bench_accept() {
	local lines=$T/wa.lines n=${ACCEPT_BODIES:-400000}
	"$B/tests/rgtool" wa-lines bench-secret "$n" "bench$$" >"$lines"
	start_relgated '"WHATSAPP_APP_SECRET": "bench-secret", "RATE_LIMIT_WHATSAPP_MAX": 1000000, "store": { "map_size_mb": 4096 }'
	read -r a_rps a_p99 a_bad a_steal < <(WA_LINES=$lines THREADS=$THREADS run_wrk relgate_accept "http://127.0.0.1:$RPORT/api/whatsapp/webhook" -s "$top/bench/wa_accept.lua")
	"$B/tools/relstat" -n "$SHM" -j >"$T/snap.json"
	sed -n '/Latency Distribution/,/requests in/p' "$T/relgate_accept.wrk" | sed 's/^/  /' 
	stop_relgated
	echo "accept path (WhatsApp webhook: HMAC verify + idempotency claim + delivery row, group commit with fsync; $WORKERS ingress):"
	printf '  req/s %s   p99 %s ms   non-2xx %s   host steal %s ms\n' "$a_rps" "$a_p99" "$a_bad" "$a_steal"
	jq -r '[.processes[] | select(.role == "ingress") | .counters] |
		"  deliveries committed \(map(.["ingress.deliveries"]) | add), replays \(map(.["ingress.replays"]) | add), store failures \(map(.["ingress.storeFailures"]) | add)",
		"  group commit: \(map(.["store.requests"]) | add) requests in \(map(.["store.commits"]) | add) commits (mean batch \((map(.["store.requests"]) | add) / ([(map(.["store.commits"]) | add), 1] | max) | . * 10 | floor / 10)), largest batch \(map(.["store.batch_max"]) | max)"' "$T/snap.json"
}

echo "relgate bench: $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ), nginx $(nginx -v 2>&1 | sed 's|.*/||'), $(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}')"
case $what in
reject) bench_reject ;;
accept) bench_accept ;;
all) bench_reject; bench_accept ;;
*) echo "usage: bench/run.sh [reject|accept|all]"; exit 2 ;;
esac
