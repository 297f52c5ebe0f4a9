#!/bin/bash
# outbound.sh - the outbound calls made for a waiting client, against
# relmock: the Gmail OAuth code exchange (connected, error, busy) and the
# proxied link-code route (JWT 401s, 5 per user per 10 min then 429).
# The application backend is reached over HTTPS (relmock's test CA, given
# to relgate as tls.ca_file), so both go through the TLS client.
. "$(dirname "$0")/lib.sh"
RGTOOL=$top_builddir/tests/rgtool
command -v curl >/dev/null || { echo "curl is required"; exit 99; }

start_relmock --tls --backend-secret backend-secret

write_config "$T/relgate.json" "\"app_url\": \"https://app.example\",
  \"backend\": { \"url\": \"https://localhost:$MOCK_TLS/backend\", \"secret\": \"backend-secret\", \"timeout_ms\": 2000 },
  \"tls\": { \"ca_file\": \"$T/tls/ca.pem\" },
  \"oauth\": { \"token_url\": \"$M/oauth/token\", \"client_id\": \"cid\", \"client_secret\": \"csecret\",
    \"redirect_uri\": \"https://app.example/api/gmail/auth/callback\", \"timeout_ms\": 1500, \"retries\": 1 },
  \"auth\": { \"jwt\": { \"alg\": \"HS256\", \"secret\": \"jwt-secret\" } },
  \"routes\": [ { \"method\": \"POST\", \"path\": \"/api/whatsapp/link-code\", \"backend_path\": \"/link-code\",
    \"auth\": \"jwt\", \"bucket\": \"wa_link_code\", \"key\": \"user\" } ],
  \"OAUTH_STATE_SECRET\": \"state-secret\", \"BULKHEAD_GMAIL_OAUTH_MAX_CONCURRENT\": 1,
  \"RATE_LIMIT_GMAIL_OAUTH_MAX\": 1000"
start_relgated "$T/relgate.json"
check "relgated up" 'wait_for 15 "$all_ready"'
URL=http://127.0.0.1:$PORT

state() { "$RGTOOL" oauth-state state-secret "$1" $(( $(date +%s) * 1000 + 600000 )); }
callback() { # callback CODE UID -> the gmail= outcome of the redirect
	curl -s -o /dev/null -D - --max-time 10 "$URL/api/gmail/auth/callback?code=$1&state=$(state "$2")" |
		tr -d '\r' | sed -n 's/^[Ll]ocation: .*gmail=//p'
}

# --- OAuth: connected ---------------------------------------------------------
check "good code: gmail=connected" '[ "$(callback good-code-1 user-7)" = connected ]'
curl -s "$M/_relmock/oauth/requests" >"$T/oauth.json"
check "token endpoint got the code exchange (secret redacted in its record)" 'jq -e "length == 1 and .[0].code == \"good-code-1\" and .[0].clientId == \"cid\" and .[0].grantType == \"authorization_code\" and .[0].clientSecret == \"[redacted]\"" "$T/oauth.json"'
for _ in $(seq 100); do curl -s "$M/_relmock/backend/deliveries" | jq -e '[.[] | select(.topic == "gmail.connection")] | length == 1' >/dev/null && break; sleep 0.05; done
curl -s "$M/_relmock/backend/deliveries" >"$T/conn.json"
check "connection record delivered (topic gmail.connection, user, tokens)" 'jq -e "[.[] | select(.topic == \"gmail.connection\")][0] | .signatureValid and .body.userId == \"user-7\" and (.body.accessToken | length > 0)" "$T/conn.json"'

# --- OAuth: error -------------------------------------------------------------
check "refused code (invalid_grant): gmail=error" '[ "$(callback bad-code user-7)" = error ]'
curl -s -X POST --data 'status=503' "$M/_relmock/faults/oauth" >/dev/null
check "token endpoint failing (503, after retries): gmail=error" '[ "$(callback good-code-2 user-7)" = error ]'
curl -s -X POST --data '' "$M/_relmock/faults/oauth" >/dev/null

# --- OAuth: busy (bulkhead gmail_oauth holds 1) -------------------------------
curl -s -X POST --data 'latency_ms=3000' "$M/_relmock/faults/oauth" >/dev/null
callback good-code-3 user-8 >"$T/slow.out" &
slow=$!
for _ in $(seq 100); do snap | jq -e '.bulkheads.gmail_oauth.inFlight == 1' >/dev/null 2>&1 && break; sleep 0.05; done
check "second exchange while the bulkhead is full: gmail=busy" '[ "$(callback good-code-4 user-9)" = busy ]'
wait "$slow"
curl -s -X POST --data '' "$M/_relmock/faults/oauth" >/dev/null
check "the slow one still connected (timeout 1.5 s vs latency 3 s: error is fine too)" 'grep -qE "^(connected|error)\$" "$T/slow.out"'
for _ in $(seq 40); do grep -q 'monitor.0.*alert from ingress.*bulkhead_saturated gmail_oauth' "$LOG" && break; sleep 0.05; done
check "saturation warning reached the monitor" 'grep -q "monitor.0.*alert from ingress.*bulkhead_saturated gmail_oauth" "$LOG"'
check "relstat: bulkhead gmail_oauth counted the saturation" 'jq -e ".bulkheads.gmail_oauth.counters.saturated >= 1" <(snap)'

# --- proxied route: link-code -------------------------------------------------
LC=$URL/api/whatsapp/link-code
tok() { "$RGTOOL" jwt jwt-secret "$1" $(( $(date +%s) + 600 )); }
code() { curl -s -o "$T/lc.body" -D "$T/lc.hdr" -w '%{http_code}' -H 'content-type: application/json' "$@" -d '{"phone":"+15550001"}' "$LC"; }
check "no token: 401" '[ "$(code)" = 401 ] && grep -qi "^x-sendcat-error-code: unauthorized" "$T/lc.hdr"'
check "bad token: 401" '[ "$(code -H "Authorization: Bearer $("$RGTOOL" jwt wrong-secret u1 $(( $(date +%s) + 600 )))")" = 401 ]'
check "expired token: 401" '[ "$(code -H "Authorization: Bearer $("$RGTOOL" jwt jwt-secret u1 $(( $(date +%s) - 600 )))")" = 401 ]'
T1=$(tok user-1)
for i in 1 2 3 4 5; do
	st=$(code -H "Authorization: Bearer $T1")
	[ "$st" = 200 ] || fail "link-code $i for user-1: $st"
done
ok "5 link-code requests for user-1 forwarded (200)"
check "6th for user-1: 429 rate_limited" '[ "$(code -H "Authorization: Bearer $T1")" = 429 ] && grep -qi "^x-sendcat-error-code: rate_limited" "$T/lc.hdr"'
ra=$(tr -d '\r' <"$T/lc.hdr" | sed -n 's/^[Rr]etry-[Aa]fter: //p')
check "6th: Retry-After within the 10 min window (got $ra)" '[ "$ra" -ge 1 ] && [ "$ra" -le 600 ]'
check "another user still allowed" '[ "$(code -H "Authorization: Bearer $(tok user-2)")" = 200 ]'
curl -s "$M/_relmock/backend/deliveries" >"$T/lc.json"
check "backend got 6 signed link-code calls" 'jq -e "[.[] | select(.topic == \"link-code\") | .signatureValid] | length == 6 and all" "$T/lc.json"'
head -c 70000 /dev/zero | tr '\0' 'a' >"$T/big"
check "body over 64 KiB on the proxied route: 413" '[ "$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $(tok user-3)" -H "content-type: application/json" --data-binary @"$T/big" "$LC")" = 413 ]'
check "405 with Allow on the proxied path" '[ "$(curl -s -o /dev/null -w "%{http_code}" -X GET "$LC")" = 405 ]'

stop_relgated
stop_relmock
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'
finish
