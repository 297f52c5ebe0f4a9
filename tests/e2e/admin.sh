#!/bin/bash
# admin.sh - the operator's view of a running relgate: the admin listener
# (GET /healthz, GET /readyz: 200 when every process is ready, 503 when one
# is not; GET /snapshot: relstat -j; anything else a classified error),
# the effective configuration in relstat (relative directories resolved,
# ingress.count and libexec_dir as running), and relctl finding relgated
# by its segment alone (-n), from any directory, with one line when it
# cannot reach one.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "curl is required"; exit 99; }
A=http://127.0.0.1:$ADMIN

# answer HEAD_FILE STATUS [CODE] - the status line, and the error code
# header when CODE is given
answer() {
	local code
	grep -q "^HTTP/1.1 $2 " "$1" || return 1
	[ -z "${3:-}" ] && return 0
	code=$(sed -n 's/^x-sendcat-error-code: *//Ip' "$1" | tr -d '\r')
	[ "$code" = "$3" ]
}
get() { curl -s -D "$T/h" -o "$T/b" "$@"; } # head in $T/h, body in $T/b
bad_request() { # a malformed request line; the raw answer in $T/raw
	exec 3<>"/dev/tcp/127.0.0.1/$ADMIN"
	printf 'GARBAGE\r\n\r\n' >&3
	timeout 5 cat <&3 >"$T/raw"
	exec 3<&-
}

# relative state_dir and run_dir, taken from the directory relgated starts in
cat >"$T/relgate.json" <<JSON
{ "http": { "listen": "127.0.0.1:$PORT" }, "admin": { "listen": "127.0.0.1:$ADMIN" },
  "state_dir": "var/state", "run_dir": "./var/run", "shm": { "name": "$SHM" },
  "store": { "map_size_mb": 64 }, "ingress": { "count": 0 } }
JSON
(cd "$T" && exec "$RELGATED" -f -c relgate.json >>"$LOG" 2>&1) &
SV_PID=$!
check "all roles ready" 'wait_for 15 "$all_ready"'
snap >"$T/snap.json"
ncpu=$(nproc); [ "$ncpu" -gt 32 ] && ncpu=32
check "relstat config: state_dir and run_dir absolute" 'jq -e --arg t "$T" '\''.config.state_dir == "\($t)/var/state" and .config.run_dir == "\($t)/var/run"'\'' "$T/snap.json"'
check "relstat config: ingress.count is the running count ($ncpu), not 0" 'jq -e --argjson n "$ncpu" '\''.config.ingress.count == $n and ([.processes[] | select(.role == "ingress")] | length) == $n'\'' "$T/snap.json"'
check "relstat config: libexec_dir is the directory in use" 'jq -e --arg d "$top_builddir/daemons" '\''.config.libexec_dir == $d'\'' "$T/snap.json"'
check "the store is where state_dir says" 'test -e "$T/var/state/data.mdb"'
check "the sockets are where run_dir says" 'test -S "$T/var/run/monitor.0.ipc"'

# --- admin HTTP -------------------------------------------------------------
mon_pid=$(jq '.processes[] | select(.role == "monitor") | .pid' "$T/snap.json")
get "$A/healthz"
check "/healthz: 200" 'answer "$T/h" 200'
check "/healthz: JSON, status ok, from the monitor" 'jq -e --argjson p "$mon_pid" '\''.status == "ok" and .pid == $p'\'' "$T/b"'
get "$A/readyz"
check "/readyz: 200" 'answer "$T/h" 200'
check "/readyz: JSON content type" 'grep -qi '\''^content-type: application/json'\'' "$T/h"'
check "/readyz: every process listed and ready" 'jq -e --argjson n $((ncpu + 6)) '\''.ready == true and (.processes | length) == $n and all(.processes[]; .state == "ready")'\'' "$T/b"'
get "$A/snapshot"
check "/snapshot: 200, JSON" 'answer "$T/h" 200 && grep -qi '\''^content-type: application/json'\'' "$T/h"'
check "/snapshot: the sections of relstat -j, this segment, every process" 'jq -e --arg s "$SHM" --argjson n $((ncpu + 6)) '\''.header.segment == $s and (.processes | length) == $n and has("routes") and has("rateLimitPressure") and has("circuits") and has("bulkheads") and has("chatAdmission") and has("config")'\'' "$T/b"'
check "/snapshot: every section an operator reads" 'jq -e '\''["header","processes","totals","routes","outcalls","rateLimitPressure","circuits","bulkheads","chatAdmission","replayProtection","toolCache","toolJobs","toolQueueAlerts","regionTopology","config"] - keys == []'\'' "$T/b"'
check "/snapshot: regionTopology from the settings in force" 'jq -e '\''.regionTopology | .readinessOnly == true and .admissionState == "shm"'\'' "$T/b"'
check "/snapshot: the same keys as relstat -j" '[ "$(jq -c "keys" "$T/b")" = "$(snap | jq -c keys)" ]'
for p in /nope /metrics/x; do
	get "$A$p"
	check "$p: 404 with code header not_found" 'answer "$T/h" 404 not_found'
	check "$p: JSON error body not_found" 'jq -e '\''.error.code == "not_found"'\'' "$T/b"'
done
get -X POST "$A/readyz"
check "POST /readyz: 405 method_not_allowed" 'answer "$T/h" 405 method_not_allowed'
check "POST /readyz: Allow: GET, HEAD" 'grep -qi '\''^allow: GET, HEAD'\'' "$T/h"'
bad_request
check "malformed request: 400 with code header bad_request" 'answer "$T/raw" 400 bad_request'

# --- relctl by segment only, from another directory ---------------------------
(cd / && "$RELCTL" -n "$SHM" reload) >"$T/reload.out"
check "relctl -n reload: supervisor found through the segment" 'wait_for 5 '\''.header.configGeneration == 2'\'''
bad_request
check "after a reload the admin errors still carry the code header" 'answer "$T/raw" 400 bad_request'
(cd / && "$RELCTL" -n "$SHM" --json ping) >"$T/ping.json"; prc=$?
check "relctl -n ping from /: exit 0" '[ "$prc" -eq 0 ]'
check "relctl -n ping from /: every process answered" 'jq -e '\''.linksFailed == 0 and .processesAnswered == .processes'\'' "$T/ping.json"'
(cd / && "$RELCTL" -n "$SHM" deliveries list) >"$T/list.out"; prc=$?
check "relctl -n deliveries list from /: exit 0" '[ "$prc" -eq 0 ]'
check "relctl -n deliveries list from /: the running store (empty)" 'grep -q '\''^0 of 0 rows'\'' "$T/list.out"'
"$RELCTL" -n "/rgt.none.$$" ping >/dev/null 2>"$T/none.err"; prc=$?
check "relctl on a missing segment: exit 2" '[ "$prc" -eq 2 ]'
check "relctl on a missing segment: one line that says why" 'grep -qx "relctl: shm: no segment /rgt.none.$$: .* (is relgated running? -n SHM_NAME names its segment)" "$T/none.err"'
check "relctl on a missing segment: nothing else" '[ "$(wc -l <"$T/none.err")" -eq 1 ]'
remember_pids
stop_relgated
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'

# --- a role that never gets ready: /readyz 503, relctl names it -------------
mkdir -p "$T/libexec"
for b in ingress admission provider monitor; do
	ln -s "$top_builddir/daemons/$b" "$T/libexec/$b"
done
printf '#!/bin/sh\nexit 3\n' >"$T/libexec/tool-worker"
chmod +x "$T/libexec/tool-worker"
write_config "$T/relgate2.json" "\"libexec_dir\": \"$T/libexec\""
start_relgated "$T/relgate2.json"
check "monitor ready" 'wait_for 15 '\''.processes[] | select(.role == "monitor") | .state == "ready"'\'''
get "$A/readyz"
check "/readyz: 503 while tool-worker is not ready" 'answer "$T/h" 503'
check "/readyz: says which process is not ready" 'jq -e '\''.ready == false and any(.processes[]; .role == "tool-worker" and .state != "ready")'\'' "$T/b"'
get "$A/healthz"
check "/healthz: still 200" 'answer "$T/h" 200'
"$RELCTL" -n "$SHM" ping >/dev/null 2>"$T/ping.err"; prc=$?
sed 's/^/  /' "$T/ping.err"
check "relctl ping: exit 1" '[ "$prc" -eq 1 ]'
check "relctl ping: one line naming tool-worker.0, its socket and why" 'grep -qx "relctl: cannot reach tool-worker.0 at ipc://$T/run/tool-worker.0.ipc: .* (is relgated running with shm $SHM?)" "$T/ping.err"'
remember_pids
stop_relgated
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'
finish
