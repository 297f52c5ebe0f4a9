#!/bin/bash
# chat_admission.sh - admission on the chat route (SPEC §3, §6), over
# real HTTP: in authoritative mode each dimension, enforced, refuses with
# 429, its reason and Retry-After (ADMISSION_RETRY_AFTER_MS with jitter);
# not enforced, it is a soft allow that relstat records; shadow mode never
# blocks and records would_block; a chat's ticket goes back when its
# stream ends, when its client leaves, when its provider is killed -9
# (seen in relstat at once), and by TTL as the last resort; a provider
# too busy to take chats (stopped) gets them refused 503 after 2 s, none
# left waiting.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/chatlib.sh"

conf() { # conf EXTRA: authoritative mode (the defaults) and EXTRA
	write_config "$T/relgate.json" "$CHAT_CONF,
  \"ADMISSION_RETRY_AFTER_MS\": 4000, \"ADMISSION_RETRY_AFTER_JITTER_PCT\": 25,
  \"RATE_LIMIT_CHAT_STREAM_MAX\": 1000${1:+, $1}"
}
# tokens made ahead (node takes a while): a burst must be a burst
declare -A TOKS
tok() {
	[ -n "${TOKS[$1]-}" ] || TOKS[$1]=$(token --alg HS256 --secret "$SECRET" --sub "$1")
	echo "${TOKS[$1]}"
}
premint() { local u; for u in "$@"; do TOKS[$u]=$(token --alg HS256 --secret "$SECRET" --sub "$u"); done; }
post() { # post NAME SUB OPTIONS [curl args]
	local name=$1 sub=$2 opts=$3; shift 3
	curl -sN -m 20 -o "$T/b.$name" -D "$T/h.$name" -H "authorization: Bearer $(tok "$sub")" \
		-H 'content-type: application/json' -d "$(body "$opts")" "$@" "$(url)" >/dev/null 2>&1
	tr -d '\r' <"$T/h.$name" >"$T/h2.$name"; mv "$T/h2.$name" "$T/h.$name"
}
# refused NAME REASON: 429 rate_limited naming REASON, Retry-After 3..5
refused() {
	[ "$(status "$1")" = 429 ] && [ "$(header "$1" x-sendcat-error-code)" = rate_limited ] &&
		jq -e --arg r "$2" '.error.message | contains($r)' "$T/b.$1" >/dev/null &&
		[ "$(header "$1" retry-after)" -ge 3 ] && [ "$(header "$1" retry-after)" -le 5 ]
}
ca='.chatAdmission'
open_streams() { mock_stats | jq .streamsOpen; }
wait_open() { # wait_open N: relmock holds N streams
	local i
	for i in $(seq 200); do [ "$(open_streams)" = "$1" ] && return 0; sleep 0.05; done
	return 1
}

# --- each dimension, enforced -------------------------------------------------
conf '"ADMISSION_USER_MAX_INFLIGHT": 1, "ADMISSION_GLOBAL_MAX_INFLIGHT": 2'
start_relgated "$T/relgate.json"
check "relgated up, authoritative" 'wait_for 15 "$all_ready and $ca.gatewayMode == \"authoritative\""'
premint ann bea cid dan eve fay gil k1 k2 k3 r1 r2 r3 r4 r5 r6 t1 t2 t3 t4 t5
post held1 ann "tokens=2 token_ms=4000" & H1=$!
wait_open 1
post user2 ann "tokens=1"
check "user_inflight: ann's 2nd chat refused, with its reason" 'refused user2 user_inflight'
post held2 bea "tokens=2 token_ms=4000" & H2=$!
wait_open 2
post glob3 cid "tokens=1"
check "global_inflight: a 3rd chat (another user) refused" 'refused glob3 global_inflight'
wait $H1 $H2
check "the held chats were served to their end" '[ "$(status held1)$(status held2)" = 200200 ] && grep -q "\[DONE\]" "$T/b.held1"'
check "normal end: every ticket released" 'wait_for 5 "$ca.inflight.global == 0 and $ca.counters.released >= 2"'
stop_relgated

conf '"ADMISSION_GLOBAL_MAX_MSG_PER_SEC": 2, "ADMISSION_GLOBAL_MAX_TOOL_PER_SEC": 1000'
start_relgated "$T/relgate.json"
check "relgated up (2 messages/s)" 'wait_for 15 "$all_ready"'
B=; for i in 1 2 3 4 5 6; do post rate$i "r$i" "tokens=1" & B="$B $!"; done
for p in $B; do wait "$p"; done
got=$(for i in 1 2 3 4 5 6; do refused rate$i global_msg_rate && echo x; done | wc -l)
ok200=$(for i in 1 2 3 4 5 6; do [ "$(status rate$i)" = 200 ] && echo x; done | wc -l)
check "global_msg_rate: a burst of 6, some served ($ok200), the rest refused by its reason ($got)" '[ "$got" -ge 3 ] && [ "$ok200" -ge 1 ] && [ $((got + ok200)) = 6 ]'
stop_relgated

conf '"ADMISSION_GLOBAL_MAX_TOOL_PER_SEC": 2, "ADMISSION_EST_TOOL_CALLS_PER_MSG": 2'
start_relgated "$T/relgate.json"
check "relgated up (2 tool calls/s, 2 per message)" 'wait_for 15 "$all_ready"'
B=; for i in 1 2 3 4 5; do post tool$i "t$i" "tokens=1" & B="$B $!"; done
for p in $B; do wait "$p"; done
got=$(for i in 1 2 3 4 5; do refused tool$i global_tool_rate && echo x; done | wc -l)
ok200=$(for i in 1 2 3 4 5; do [ "$(status tool$i)" = 200 ] && echo x; done | wc -l)
check "global_tool_rate: a burst of 5, some served ($ok200), the rest refused by its reason ($got)" '[ "$got" -ge 3 ] && [ "$ok200" -ge 1 ] && [ $((got + ok200)) = 5 ]'
snap >"$T/s.json"
check "relstat: blocked counted per dimension" 'jq -e "$ca.dimensions.global_tool_rate.blocked >= 3" "$T/s.json"'
stop_relgated

# --- not enforced: a soft allow, recorded -----------------------------------
conf '"ADMISSION_USER_MAX_INFLIGHT": 1, "ADMISSION_ENFORCE_USER_INFLIGHT": false'
start_relgated "$T/relgate.json"
check "relgated up (user_inflight recorded only)" 'wait_for 15 "$all_ready and $ca.enforce.user_inflight == false"'
post soft1 dan "tokens=2 token_ms=3000" & S1=$!
wait_open 1
post soft2 dan "tokens=1"
check "soft allow: served" '[ "$(status soft2)" = 200 ]'
check "soft allow: recorded in relstat with its reason" 'wait_for 5 "$ca.dimensions.user_inflight.softAllowed == 1 and $ca.counters.softAllowed == 1"'
wait $S1
stop_relgated

# --- shadow mode: the limiter decides, admission only records -----------------
# (shadow takes no tickets, so the in-flight dimensions see none; the
# rates are evaluated on buckets of their own)
conf '"FF_CHAT_GATEWAY_SHADOW": true, "ADMISSION_GLOBAL_MAX_MSG_PER_SEC": 1'
start_relgated "$T/relgate.json"
check "relgated up, shadow" 'wait_for 15 "$all_ready and $ca.gatewayMode == \"shadow\""'
premint s1 s2 s3 s4
B=; for i in 1 2 3 4; do post sh$i "s$i" "tokens=1" & B="$B $!"; done
for p in $B; do wait "$p"; done
check "shadow: a burst over the message rate is never blocked" '[ "$(status sh1)$(status sh2)$(status sh3)$(status sh4)" = 200200200200 ]'
check "shadow: would_block recorded for the rate, no ticket taken" 'wait_for 5 "$ca.dimensions.global_msg_rate.wouldBlock >= 1 and $ca.counters.blocked == 0 and $ca.inflight.ticketsInUse == 0"'
stop_relgated

# --- tickets: client gone, provider killed, TTL -------------------------------
conf '"ADMISSION_TICKET_TTL_MS": 3000'
start_relgated "$T/relgate.json"
check "relgated up (ticket TTL 3 s)" 'wait_for 15 "$all_ready"'
post gone fay "tokens=50 token_ms=200" -m 1
check "client gone: its ticket released at once" 'wait_for 3 "$ca.inflight.global == 0 and $ca.counters.released == 1"'
CURLS=
for i in 1 2 3; do post k$i "k$i" "tokens=100 token_ms=200" & CURLS="$CURLS $!"; done
wait_open 3
check "3 tickets held" 'wait_for 3 "$ca.inflight.ticketsInUse == 3"'
PROV=$(snap | jq '.processes[] | select(.role == "provider") | .pid')
t0=$(date +%s%N)
kill -KILL "$PROV"
if wait_for 5 "$ca.inflight.ticketsInUse == 0 and $ca.counters.reclaimedDeadProvider == 3"; then
	ok "provider killed: 3 tickets reclaimed, in relstat after $((($(date +%s%N) - t0) / 1000000)) ms"
else
	fail "provider killed: tickets not reclaimed"
fi
for p in $CURLS; do wait "$p"; done
check "the killed provider's clients got an error event" 'grep -q "upstream_unavailable" "$T/b.k1"'
check "provider back" 'wait_for 15 "$all_ready"'
post ttl gil "tokens=3 token_ms=2500" & L=$!
check "a long stream holds its ticket" 'wait_for 5 "$ca.inflight.ticketsInUse == 1"'
check "TTL: the ticket expires after 3 s, the last resort" 'wait_for 8 "$ca.counters.expired == 1 and $ca.inflight.ticketsInUse == 0"'
wait $L
check "the stream itself ends normally" '[ "$(status ttl)" = 200 ] && grep -q "\[DONE\]" "$T/b.ttl"'
check "its late release counted stale" 'wait_for 5 "$ca.counters.staleReleases >= 1"'
stop_relgated

# --- a provider that takes no chat: refused, not left waiting -----------------
# The provider is stopped (SIGSTOP) while 3,000 chats come: admission holds
# back what the provider's queue cannot take for 2 s, then refuses each
# with 503 overloaded and frees its ticket; the rest start once the
# provider runs again.  Nothing waits for the ingress's start deadline.
conf '"ADMISSION_USER_MAX_INFLIGHT": 10000, "ADMISSION_GLOBAL_MAX_INFLIGHT": 100000,
  "ADMISSION_GLOBAL_MAX_MSG_PER_SEC": 100000, "ADMISSION_GLOBAL_MAX_TOOL_PER_SEC": 1000000,
  "BULKHEAD_OR_PRI_MAX_CONCURRENT": 32768, "CHAT_PROVIDER_PRIMARY_TIMEOUT_MS": 60000'
start_relgated "$T/relgate.json"
check "relgated up" 'wait_for 15 "$all_ready"'
PROV=$(snap | jq '.processes[] | select(.role == "provider") | .pid')
# four users: each stays under the chat_stream limit (1,000 per window)
for u in st1 st2 st3 st4; do echo "authorization: Bearer $(tok "$u")"; done >"$T/auth"
kill -STOP "$PROV"
"$top_builddir/bench/sseload" --json -c 3000 -n 3000 -d 5 -t 30 --header-file "$T/auth" \
	-b "$(body "tokens=2")" "$(url)" >"$T/stopped.out" 2>&1 & SL=$!
# long enough for the held-back starts to be given up, short of the
# supervisor's heartbeat timeout
check "the burst reached admission while the provider was stopped" 'wait_for 10 "$ca.counters.allowed >= 2500"'
sleep 3
kill -CONT "$PROV"
wait "$SL"
grep '^{' "$T/stopped.out" >"$T/stopped.json" || echo '{}' >"$T/stopped.json"
echo "provider stopped: $(jq -c '{status, timeouts, resets, non2xxMs}' "$T/stopped.json")"
check "some chats were refused 503 overloaded while it was stopped" 'jq -e ".status[\"503\"] > 0" "$T/stopped.json" >/dev/null'
check "every other chat was served once it ran again" 'jq -e ".requests == 3000 and .completed + .status[\"503\"] == 3000" "$T/stopped.json" >/dev/null'
check "no client waited out its timeout, none was reset" 'jq -e ".ended == 3000 and .timeouts == 0 and .resets == 0 and .cancelled == 0 and .connectErrors == 0" "$T/stopped.json" >/dev/null'
check "relstat: the refusals counted as forward failures" 'wait_for 5 "$ca.counters.forwardFailures > 0"'
check "every ticket came back" 'wait_for 10 "$ca.inflight.ticketsInUse == 0"'
check "the provider was not restarted (same pid)" '[ "$(snap | jq ".processes[] | select(.role == \"provider\") | .pid")" = "$PROV" ]'
stop_relgated
finish
