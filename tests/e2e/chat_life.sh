#!/bin/bash
# chat_life.sh - nothing hangs and nothing leaks on the chat path:
#  - chats one after the other reuse the provider's upstream connection;
#  - a client that leaves mid-stream, or before its first token, cancels
#    the upstream call at once (relmock sees its client go) and gives the
#    bulkhead lease back;
#  - idle streams get ": ping" heartbeats every chat.heartbeat_ms;
#  - kill -9 of the provider mid-stream: every client gets an error event
#    (upstream_unavailable) and the end of its stream, at once (the time
#    is printed; the check only bounds it against a hang); the provider is
#    restarted and serves again;
#  - kill -9 of an ingress mid-stream: the provider stops the orphaned
#    upstream calls;
#  - a provider that never answers (stopped): the chat ends with 504 at
#    the ingress's deadline, streams under way are not touched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/chatlib.sh"

write_config "$T/relgate.json" "$CHAT_CONF,
  \"chat\": { \"heartbeat_ms\": 1000 },
  \"FF_ADMISSION_ENFORCE\": false, \"RATE_LIMIT_CHAT_STREAM_MAX\": 1000"
start_relgated "$T/relgate.json"
check "relgated up" 'wait_for 15 "$all_ready"'
TOK=$(token --alg HS256 --secret "$SECRET" --sub life-user)
chat() { # chat NAME OPTIONS [curl args]: the stream into $T/NAME.sse
	local name=$1 opts=$2; shift 2
	curl -sN -o "$T/$name.sse" -H "authorization: Bearer $TOK" -H 'content-type: application/json' \
		-d "$(body "$opts")" "$@" "$(url)" 2>/dev/null
}
leases() { snap | jq '.bulkheads.openrouter_chat_primary.inFlight'; }
prov_open() { snap | jq '[.processes[] | select(.role == "provider") | .counters["provider.streamsOpen"]] | add'; }

# --- upstream connections are kept alive between chats ------------------------
MP=${M##*:}
for i in 1 2 3 4 5; do chat ka$i "tokens=3"; done
check "keep-alive: 5 chats one after the other each ended normally" '[ "$(cat "$T"/ka?.sse | grep -c "^data: \[DONE\]$")" = 5 ]'
check "keep-alive: the provider closed no upstream connection (none in TIME-WAIT)" '[ "$(ss -Htan state time-wait "( dport = :$MP )" | wc -l)" = 0 ]'
check "keep-alive: one pooled connection to relmock left open" '[ "$(ss -Htn state established "( dport = :$MP )" | wc -l)" -ge 1 ]'

# --- a client that leaves mid-stream ----------------------------------------
chat gone "tokens=100 token_ms=100" -m 1
check "mid-stream: the client left after some tokens" 'grep -q "\"delta\":\"w0 \"" "$T/gone.sse"'
check "mid-stream: relmock saw its client go (upstream cancelled)" 'settle 3 ".clientGone >= 1 and .streamsOpen == 0"'
check "mid-stream: the lease and the provider stream are gone" 'wait_for 3 ".bulkheads.openrouter_chat_primary.inFlight == 0 and ([.processes[] | select(.role == \"provider\") | .counters[\"provider.streamsOpen\"]] | add) == 0"'

# --- a client that leaves before its first token ----------------------------
chat early "tokens=3 first_ms=5000" -m 1
check "before the first token: nothing was answered" '[ ! -s "$T/early.sse" ]'
check "before the first token: relmock saw its client go" 'settle 3 ".clientGone >= 2 and .inFlight == 0"'
check "before the first token: lease and stream gone" 'wait_for 3 ".bulkheads.openrouter_chat_primary.inFlight == 0 and ([.processes[] | select(.role == \"ingress\") | .counters[\"ingress.chatClientGone\"]] | add) >= 2"'

# --- heartbeats --------------------------------------------------------------
chat beat "tokens=2 token_ms=2600"
check "an idle stream gets ': ping' comments" 'grep -q "^: ping$" "$T/beat.sse"'
check "... and still ends normally" 'grep -q "^data: \[DONE\]$" "$T/beat.sse"'

# --- kill -9 of the provider mid-stream -------------------------------------
N=12
CURLS=
for i in $(seq $N); do chat kill$i "tokens=200 token_ms=100" -m 30 & CURLS="$CURLS $!"; done
check "$N streams under way" 'settle 10 ".streamsOpen == $N"'
PROV=$(snap | jq '.processes[] | select(.role == "provider") | .pid')
t0=$(date +%s%N)
kill -KILL "$PROV"
for p in $CURLS; do wait "$p"; done
t1=$(date +%s%N)
echo "provider killed: all $N clients ended within $(( (t1 - t0) / 1000000 )) ms"
ended=0
for i in $(seq $N); do
	if grep -q '"type":"error".*"code":"upstream_unavailable"' "$T/kill$i.sse" &&
		[ "$(tail -n 2 "$T/kill$i.sse" | head -n 1)" = "data: [DONE]" ]; then
		ended=$((ended + 1))
	fi
done
check "every client got an upstream_unavailable error event and [DONE]" '[ "$ended" = "$N" ]'
check "no client hung (all ended within 5 s of the kill)" '[ $(( (t1 - t0) / 1000000 )) -lt 5000 ]'
check "the provider is back with a new pid" 'wait_for 15 "$all_ready and ([.processes[] | select(.role == \"provider\") | .pid][0] != $PROV)"'
check "its streams' leases were reclaimed" 'wait_for 3 ".bulkheads.openrouter_chat_primary.inFlight == 0"'
chat after "tokens=3"
check "a chat after the restart is served" 'grep -q "^data: \[DONE\]$" "$T/after.sse"'

# --- kill -9 of an ingress mid-stream ---------------------------------------
curl -s -o /dev/null -X POST "$M/_relmock/reset"
CURLS=
for i in $(seq 6); do chat ing$i "tokens=200 token_ms=100" -m 30 & CURLS="$CURLS $!"; done
check "6 streams under way" 'settle 10 ".streamsOpen == 6"'
for p in $(snap | jq '.processes[] | select(.role == "ingress") | .pid'); do kill -KILL "$p"; done
for p in $CURLS; do wait "$p"; done
check "the provider stopped the orphaned upstream calls" 'settle 5 ".streamsOpen == 0"'
check "relstat: provider.streamsOrphaned counted" 'wait_for 5 "([.processes[] | .counters[\"provider.streamsOrphaned\"] // 0] | add) >= 6"'
check "leases back" 'wait_for 5 ".bulkheads.openrouter_chat_primary.inFlight == 0"'
check "the ingress processes are back" 'wait_for 15 "$all_ready"'
stop_relgated

# --- a provider that never answers: the ingress's own deadline ----------------
# Routes' timeouts 1 s each, no retries: a chat whose start never comes
# ends with 504 after 1 + 1 + 10 s (the margin), even with the provider
# stopped (SIGSTOP: alive, silent; the supervisor's heartbeat timeout is
# raised so it is not restarted meanwhile).
write_config "$T/relgate.json" "$CHAT_CONF,
  \"supervisor\": { \"heartbeat_timeout_ms\": 60000 },
  \"FF_ADMISSION_ENFORCE\": false, \"RATE_LIMIT_CHAT_STREAM_MAX\": 1000,
  \"CHAT_PROVIDER_PRIMARY_TIMEOUT_MS\": 1000, \"CHAT_PROVIDER_PRIMARY_RETRIES\": 0,
  \"CHAT_PROVIDER_SECONDARY_TIMEOUT_MS\": 1000, \"CHAT_PROVIDER_SECONDARY_RETRIES\": 0"
start_relgated "$T/relgate.json"
check "relgated up (1 s routes)" 'wait_for 15 "$all_ready"'
chat running "tokens=200 token_ms=100" -m 40 & RUN=$!
check "one stream under way" 'settle 10 ".streamsOpen == 1"'
PROV=$(snap | jq '.processes[] | select(.role == "provider") | .pid')
kill -STOP "$PROV"
t0=$(date +%s%N)
st=$(curl -s -m 40 -o "$T/silent.body" -w '%{http_code}' -H "authorization: Bearer $TOK" \
	-H 'content-type: application/json' -d "$(body "tokens=3")" "$(url)")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -CONT "$PROV"
echo "provider silent: answered $st after $ms ms"
check "a chat its provider never starts: 504 upstream_timeout" '[ "$st" = 504 ] && jq -e ".error.code == \"upstream_timeout\"" "$T/silent.body" >/dev/null'
check "... at the deadline (12 s), not before it" '[ "$ms" -ge 11500 ] && [ "$ms" -lt 30000 ]'
check "relstat: ingress.chatTimeouts counted" 'wait_for 3 "([.processes[] | .counters[\"ingress.chatTimeouts\"] // 0] | add) == 1"'
wait "$RUN"
check "the stream already under way was not cut by that deadline" 'grep -q "^data: \[DONE\]$" "$T/running.sse"'
stop_relgated
finish
