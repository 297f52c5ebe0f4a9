#!/bin/bash
# metrics.sh - GET /metrics on the admin listener: the Prometheus text
# format passes promtool's check (names, HELP and TYPE of every family),
# gauges are typed as gauges, every process of the table is there with
# its role and instance, and the answers per route grow by exactly the
# requests this test sent: by status class, by error code, and in the
# latency histogram's count; a stream that ended with an error event is
# counted under its code.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "curl is required"; exit 99; }
# promtool comes with Debian's prometheus package; tools/dev.sh test
# fetches it when the machine has none
command -v promtool >/dev/null || { fail "promtool not found (tools/dev.sh test fetches it into build/.tools)"; finish; exit 1; }
A=http://127.0.0.1:$ADMIN

# msum FILE NAME [LABEL=VALUE...] - the sum of NAME's samples carrying
# every given label (0 when there is none)
msum() {
	local f=$1 name=$2; shift 2
	awk -v name="$name" -v want="$*" '
	BEGIN { n = split(want, w, " ") }
	/^#/ { next }
	{
		i = index($0, "{"); m = i ? substr($0, 1, i - 1) : $1
		if (m != name) next
		for (k = 1; k <= n; k++) {
			split(w[k], kv, "=")
			if (index($0, kv[1] "=\"" kv[2] "\"") == 0) next
		}
		s += $NF
	}
	END { printf "%d\n", s }' "$f"
}
scrape() { curl -s -D "$T/mh" -o "$1" "$A/metrics"; }

start_relmock
write_config "$T/relgate.json" "\"provider\": { \"count\": 1, \"primary\": { \"base_url\": \"$M/v1\" } },
  \"auth\": { \"jwt\": { \"secret\": \"metrics-test-secret-0123456789abcdef\" } }"
start_relgated "$T/relgate.json"
check "all roles ready" 'wait_for 15 "$all_ready"'
snap >"$T/snap.json"
nproc_table=$(jq '.processes | length' "$T/snap.json")
mon_pid=$(jq '.processes[] | select(.role == "monitor") | .pid' "$T/snap.json")
check "the admin listener is this relgated's monitor" '[ "$(curl -s "$A/healthz" | jq .pid)" = "$mon_pid" ]'

scrape "$T/m0"
check "/metrics: 200" 'grep -q "^HTTP/1.1 200 " "$T/mh"'
check "/metrics: the Prometheus text content type" 'grep -qi "^content-type: text/plain; version=0.0.4" "$T/mh"'
promtool check metrics <"$T/m0" >"$T/promtool.out" 2>&1; prc=$?
sed 's/^/  promtool: /' "$T/promtool.out" | head -20
check "promtool check metrics: no problem" '[ "$prc" -eq 0 ] && [ ! -s "$T/promtool.out" ]'
check "every family has HELP and TYPE" '[ "$(grep -c "^# HELP " "$T/m0")" -eq "$(grep -c "^# TYPE " "$T/m0")" ] && [ "$(grep -c "^# TYPE " "$T/m0")" -gt 100 ]'
check "gauges are gauges (open connections, chats in progress, group commit size)" 'grep -qx "# TYPE relgate_http_open gauge" "$T/m0" && grep -qx "# TYPE relgate_ingress_chat_open gauge" "$T/m0" && grep -qx "# TYPE relgate_store_batch_last gauge" "$T/m0"'
check "counters are counters (restarts, link messages)" 'grep -qx "# TYPE relgate_process_restarts_total counter" "$T/m0" && grep -qx "# TYPE relgate_link_sent_total counter" "$T/m0"'
check "every process of the table is ready, by role and instance" '[ "$(msum "$T/m0" relgate_process_state state=ready)" -eq "$nproc_table" ] && [ "$(grep -c "^relgate_process_pid{" "$T/m0")" -eq "$nproc_table" ]'
check "the monitor's pid under role monitor" 'grep -qx "relgate_process_pid{role=\"monitor\",instance=\"0\"} $mon_pid" "$T/m0"'
check "a role's own counters only on that role" '! grep -q "^relgate_ingress_chat_streams_total{role=\"provider\"" "$T/m0" && grep -q "^relgate_ingress_chat_streams_total{role=\"ingress\"" "$T/m0"'
missing=$(grep "^# TYPE " "$T/m0" | awk '{print $3}' | while read -r f; do grep -q "^| \`$f\` |" "$top_srcdir/docs/metrics.md" || echo "$f"; done)
[ -z "$missing" ] || echo "  not in docs/metrics.md (tools/metrics-doc.sh rewrites its table): $missing"
check "docs/metrics.md lists every family" '[ -z "$missing" ]'
check "times in seconds: circuits' cooldown, admission's ticket TTL" 'grep -q "^relgate_circuit_cooldown_seconds{provider=\"openrouter_chat_primary\"} [0-9]*\.[0-9]*$" "$T/m0" && grep -q "^relgate_admission_ticket_ttl_seconds " "$T/m0"'

# --- requests by route, class and code ------------------------------------
N405=37 N404=23 N401=11
for _ in $(seq $N405); do curl -s -o /dev/null "http://127.0.0.1:$PORT/api/chat"; done
for _ in $(seq $N404); do curl -s -o /dev/null "http://127.0.0.1:$PORT/nothing/here?x=1"; done
for _ in $(seq $N401); do curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' "http://127.0.0.1:$PORT/api/chat"; done
curl -s -o /dev/null "http://127.0.0.1:$PORT/api/chat/health"
scrape "$T/m1"
d() { echo $(($(msum "$T/m1" "$@") - $(msum "$T/m0" "$@"))); }
echo "  /api/chat 405: +$(d relgate_route_errors_total route=/api/chat code=method_not_allowed), 401: +$(d relgate_route_errors_total route=/api/chat code=unauthorized), unmatched 404: +$(d relgate_route_errors_total route=unmatched code=not_found)"
check "errors_total{route=/api/chat,code=method_not_allowed} grew by exactly $N405" '[ "$(d relgate_route_errors_total route=/api/chat code=method_not_allowed)" -eq $N405 ]'
check "errors_total{route=/api/chat,code=unauthorized} grew by exactly $N401" '[ "$(d relgate_route_errors_total route=/api/chat code=unauthorized)" -eq $N401 ]'
check "errors_total{route=unmatched,code=not_found} grew by exactly $N404" '[ "$(d relgate_route_errors_total route=unmatched code=not_found)" -eq $N404 ]'
check "requests_total{route=/api/chat,class=4xx} grew by exactly $((N405 + N401))" '[ "$(d relgate_route_requests_total route=/api/chat class=4xx)" -eq $((N405 + N401)) ]'
check "requests_total{route=/api/chat/health,class=2xx} grew by exactly 1" '[ "$(d relgate_route_requests_total route=/api/chat/health class=2xx)" -eq 1 ]'
check "no other route or class moved" '[ "$(d relgate_route_requests_total)" -eq $((N405 + N404 + N401 + 1)) ]'
check "the histogram counted each answer of /api/chat once" '[ "$(d relgate_route_response_seconds_count route=/api/chat)" -eq $((N405 + N401)) ] && [ "$(d relgate_route_response_seconds_bucket route=/api/chat le=+Inf)" -eq $((N405 + N401)) ]'
check "answer bytes counted" '[ "$(d relgate_route_response_bytes_total route=/api/chat)" -gt $((100 * (N405 + N401))) ]'
promtool check metrics <"$T/m1" >"$T/promtool.out" 2>&1; prc=$?
check "promtool check metrics after the load: no problem" '[ "$prc" -eq 0 ] && [ ! -s "$T/promtool.out" ]'

# --- a stream that began 200 and ended with an error event ----------------
# a token minted by relgate's signer: this test is about counting, the
# token contract is chat.sh's
tok=$("$RELCTL" -c "$T/relgate.json" -n "$SHM" jwt mint --sub metrics-user)
curl -s -N -o "$T/chat0.out" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
	-d '{"threadId":"t0","messages":[{"role":"user","content":"relmock: tokens=3"}]}' "http://127.0.0.1:$PORT/api/chat"
curl -s -o /dev/null -X POST -d '{"faults":["drop_after=700"]}' "$M/_relmock/chat/arm"
curl -s -N -o "$T/chat.out" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
	-d '{"threadId":"t1","messages":[{"role":"user","content":"relmock: tokens=40 token_ms=5"}]}' "http://127.0.0.1:$PORT/api/chat"
scrape "$T/m2"
check "the stream ended with an error event" 'grep -q "\"type\":\"error\"" "$T/chat.out"'
grep "^relgate_route_errors_total\|^relgate_route_requests_total.*route=\"/api/chat\".*class=\"2xx" "$T/m2" | sed "s/^/  /"
check "counted as 2xx and as its error code" '[ "$(($(msum "$T/m2" relgate_route_requests_total route=/api/chat class=2xx) - $(msum "$T/m1" relgate_route_requests_total route=/api/chat class=2xx)))" -eq 2 ] && [ "$(($(msum "$T/m2" relgate_route_errors_total route=/api/chat code=upstream_unavailable) + $(msum "$T/m2" relgate_route_errors_total route=/api/chat code=upstream_error)))" -eq 1 ]'

# --- the provider's calls to relmock: one answered, one cut off ----------
o() { msum "$T/m2" "$@" role=provider provider=openrouter_chat_primary; }
grep "^relgate_outcall_.*openrouter_chat_primary" "$T/m2" | grep -v "_bucket\| 0$" | sed 's/^/  /'
check "outcall attempts: one 2xx, one cut off (protocol_error)" '[ "$(o relgate_outcall_attempts_total outcome=2xx)" -eq 1 ] && [ "$(o relgate_outcall_attempts_total outcome=protocol_error)" -eq 1 ] && [ "$(o relgate_outcall_attempts_total)" -eq 2 ]'
check "outcall calls: one answered, one failed" '[ "$(o relgate_outcall_calls_total verdict=answered)" -eq 1 ] && [ "$(o relgate_outcall_calls_total verdict=failed)" -eq 1 ]'
check "outcall latency: both heads timed" '[ "$(o relgate_outcall_response_seconds_count)" -eq 2 ] && [ "$(o relgate_outcall_response_seconds_bucket le=+Inf)" -eq 2 ]'
promtool check metrics <"$T/m2" >"$T/promtool.out" 2>&1; prc=$?
check "promtool check metrics with the outcall families: no problem" '[ "$prc" -eq 0 ] && [ ! -s "$T/promtool.out" ]'
check "relstat -j outcalls: the same" 'snap | jq -e '\''.outcalls.openrouter_chat_primary | .calls.answered == 1 and .calls.failed == 1 and .attempts["2xx"] == 1 and (.latencyMs.p50 > 0)'\'''

remember_pids
stop_relgated
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'
finish
