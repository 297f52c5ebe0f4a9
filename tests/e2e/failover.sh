#!/bin/bash
# failover.sh - provider routes (SPEC §7): a primary answering 503 before
# its first token is served by the secondary, and data-provider-route says
# so; with failover off (an explicit model) the client gets the primary's
# code; after CIRCUIT_OPENROUTER_PRIMARY_THRESHOLD failures the primary's
# circuit is open and later chats go straight to the secondary, without
# a call to the primary.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/chatlib.sh"

conf() { # conf FAILOVER
	write_config "$T/relgate.json" "$CHAT_CONF,
  \"FF_ADMISSION_ENFORCE\": false, \"FF_PROVIDER_FAILOVER_ENABLED\": $1,
  \"CHAT_PROVIDER_PRIMARY_RETRIES\": 0, \"CHAT_PROVIDER_SECONDARY_RETRIES\": 0,
  \"CHAT_MODEL_AGENT_PRIMARY\": \"primary/agent\", \"CHAT_MODEL_AGENT_SECONDARY\": \"secondary/a,secondary/b\",
  \"CIRCUIT_OPENROUTER_PRIMARY_THRESHOLD\": 3, \"CIRCUIT_OPENROUTER_PRIMARY_COOLDOWN_MS\": 60000,
  \"RATE_LIMIT_CHAT_STREAM_MAX\": 1000"
}
TOK=$(token --alg HS256 --secret "$SECRET" --sub failover-user)
arm() { curl -s -o /dev/null -d "{\"faults\":$1}" "$M/_relmock/chat/arm"; }
BODY='{"threadId":"t","messages":[{"role":"user","content":"relmock: tokens=4"}]}'
post() { # post NAME [BODY]
	curl -sN -m 20 -o "$T/b.$1" -D "$T/h.$1" -H "authorization: Bearer $TOK" -H 'content-type: application/json' \
		-d "${2:-$BODY}" "$(url)" >/dev/null 2>&1
}
route() { sed -n 's/^data: //p' "$T/b.$1" | jq -c 'select(.type? == "data-provider-route") | .data' 2>/dev/null; }
reqs() { curl -s "$M/_relmock/chat/requests"; }

conf true
start_relgated "$T/relgate.json"
check "relgated up" 'wait_for 15 "$all_ready"'

# --- the primary answers 503: the secondary serves ------------------------
arm '["status=503","none"]'
post fo
check "failover: 200" '[ "$(status fo)" = 200 ]'
check "failover: data-provider-route names the secondary, its first fallback model, attempt 2" \
	'[ "$(route fo)" = "{\"route\":\"secondary\",\"provider\":\"openrouter_chat_secondary\",\"model\":\"secondary/a\",\"attempt\":2}" ]'
reqs >"$T/r1.json"
check "relmock: the primary (503), then the secondary with the fallback models" \
	'jq -e ".[-2].path == \"/v1/chat/completions\" and .[-2].status == 503 and .[-1].path == \"/secondary/v1/chat/completions\" and .[-1].model == \"secondary/a\" and .[-1].outcome == \"completed\"" "$T/r1.json"'
check "the text came from the secondary" 'grep -q "\"delta\":\"w3 \"" "$T/b.fo"'

# --- the circuit opens after 3 failures; then straight to the secondary ---
arm '["status=503","none","status=503","none","none"]'
post c1
post c2
snap >"$T/s1.json"
check "after 3 failures (1 before, 2 now) the primary's circuit is open" 'jq -e ".circuits.openrouter_chat_primary.state == \"open\"" "$T/s1.json"'
curl -s "http://127.0.0.1:$PORT/api/chat/health" >"$T/health.json"
check "health: the routes with their settings and live state, the gateway mode, admission policy" \
	'jq -e ".providerRoutes.primary.circuit.state == \"open\" and .providerRoutes.primary.circuit.threshold == 3 and .providerRoutes.secondary.circuit.state == \"closed\" and (.providerRoutes.primary.bulkhead | has(\"maxConcurrent\") and has(\"inFlight\")) and .gatewayMode == \"legacy\" and (.admission | has(\"retryAfterMs\") and has(\"retryAfterJitterPct\"))" "$T/health.json"'
n=$(reqs | jq length)
post c3
check "open circuit: served by the secondary, attempt 1" '[ "$(status c3)" = 200 ] && [ "$(route c3 | jq -r ".route + \" \" + (.attempt | tostring)")" = "secondary 1" ]'
reqs >"$T/r2.json"
check "open circuit: no call to the primary" 'jq -e --argjson n "$n" "(length == \$n + 1) and .[-1].path == \"/secondary/v1/chat/completions\"" "$T/r2.json"'
snap >"$T/s2.json"
check "relstat: the primary circuit's rejections counted" 'jq -e ".circuits.openrouter_chat_primary.counters.rejections >= 1" "$T/s2.json"'
check "relstat: provider.failovers counted" 'jq -e "[.processes[].counters[\"provider.failovers\"] // 0] | add >= 3" "$T/s2.json"'
stop_relgated

# --- failover off, an explicit model: the primary's code ------------------
conf false
start_relgated "$T/relgate.json"
check "relgated up, failover off" 'wait_for 15 "$all_ready"'
arm '["status=503","none"]'
post explicit '{"threadId":"t","model":"user/chosen","messages":[{"role":"user","content":"relmock: tokens=2"}]}'
check "failover off: 503 upstream_unavailable from the primary" '[ "$(status explicit)" = 503 ] && grep -qi "^x-sendcat-error-code: upstream_unavailable" "$T/h.explicit"'
reqs >"$T/r3.json"
check "the explicit model went to the primary unchanged; no secondary call" \
	'jq -e ".[-1].path == \"/v1/chat/completions\" and .[-1].model == \"user/chosen\"" "$T/r3.json"'
arm '[]'
post explicit_ok '{"threadId":"t","model":"user/chosen","messages":[{"role":"user","content":"relmock: tokens=2"}]}'
check "an explicit model, primary up: its model in data-provider-route" '[ "$(route explicit_ok | jq -r .model)" = user/chosen ]'
stop_relgated
finish
