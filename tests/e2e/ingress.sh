#!/bin/bash
# ingress.sh - the contract of the public HTTP surface (SPEC §3) against
# a real relgated on loopback: every route, every error row this issue can
# produce (status, code header, JSON body, Retry-After, CORS), and replay
# protection with durable hand-off (delivery rows and hit counts in LMDB).
. "$(dirname "$0")/lib.sh"
RGTOOL=$top_builddir/tests/rgtool
command -v curl >/dev/null || { echo "curl is required"; exit 99; }

ORIGIN=https://app.example
cfg_json() { # cfg_json EXTRA
	write_config "$T/relgate.json" "\"http\": { \"listen\": \"127.0.0.1:$PORT\", \"allowed_origins\": [\"$ORIGIN\"], \"header_timeout_ms\": 700, \"max_header_bytes\": 4096 },
  \"app_url\": \"https://app.example/\",
  \"RATE_LIMIT_GMAIL_PUSH_MAX\": 3,
  \"RATE_LIMIT_WHATSAPP_MAX\": 3, \"RATE_LIMIT_GMAIL_OAUTH_MAX\": 3${1:+,
  $1}"
	# write_config already has an "http" member: drop its first line
	sed -i "0,/\"http\": { \"listen\": \"127.0.0.1:$PORT\" },/{//d}" "$T/relgate.json"
}
SECRETS='"GMAIL_PUBSUB_VERIFY_TOKEN": "push-token", "WHATSAPP_VERIFY_TOKEN": "verify-me", "WHATSAPP_APP_SECRET": "app-secret", "OAUTH_STATE_SECRET": "state-secret"'
cfg_json ""   # first without secrets: the misconfigured rows
start_relgated "$T/relgate.json"
check "relgated up" 'wait_for 15 "$all_ready"'

URL=http://127.0.0.1:$PORT
N=0
# req NAME XFF curl-args... : one request from its own client address
# (X-Forwarded-For, believed from loopback) so rate limits do not mix
req() {
	local name=$1 xff=$2; shift 2
	N=$((N + 1))
	curl -s -o "$T/b.$name" -D "$T/h.$name" -H "x-forwarded-for: $xff" "$@" >/dev/null 2>&1
	tr -d '\r' <"$T/h.$name" >"$T/h2.$name"; mv "$T/h2.$name" "$T/h.$name"
}
status() { head -n 1 "$T/h.$1" | awk '{print $2}'; }
header() { grep -i "^$2:" "$T/h.$1" | head -n 1 | cut -d' ' -f2-; }
# expect_error NAME STATUS CODE: status, code header, JSON body with code
expect_error() {
	local name=$1 st=$2 code=$3
	if [ "$(status "$name")" = "$st" ] && [ "$(header "$name" x-sendcat-error-code)" = "$code" ] &&
		jq -e --arg c "$code" '.error.code == $c and (.error.message | type == "string" and length > 0)' "$T/b.$name" >/dev/null 2>&1; then
		ok "$name: $st $code"
	else
		fail "$name: want $st $code, got $(status "$name") $(header "$name" x-sendcat-error-code) $(head -c 200 "$T/b.$name")"
	fi
}
expect_status() { # NAME STATUS
	if [ "$(status "$1")" = "$2" ]; then ok "$1: $2"; else fail "$1: want $2, got $(status "$1")"; fi
}
expect_header() { # NAME HEADER VALUE
	if [ "$(header "$1" "$2")" = "$3" ]; then ok "$1: $2: $3"; else fail "$1: want $2: $3, got '$(header "$1" "$2")'"; fi
}
no_header() { # NAME HEADER
	if [ -z "$(header "$1" "$2")" ]; then ok "$1: no $2"; else fail "$1: unexpected $2"; fi
}
pubsub() { # pubsub EMAIL HISTORY -> envelope JSON
	local data
	data=$(printf '{"emailAddress":"%s","historyId":"%s"}' "$1" "$2" | base64 -w0 | tr -d '=')
	printf '{"message":{"data":"%s","messageId":"m-%s"},"subscription":"projects/p/subscriptions/s"}' "$data" "$2"
}
wa_body() { # wa_body ID... -> payload with one message per id
	local msgs= id
	for id in "$@"; do msgs="$msgs${msgs:+,}{\"id\":\"$id\",\"from\":\"15550001\",\"type\":\"text\",\"text\":{\"body\":\"hi\"}}"; done
	printf '{"object":"whatsapp_business_account","entry":[{"id":"waba-1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"p1"},"messages":[%s]}}]}]}' "$msgs"
}
JSON=(-H 'content-type: application/json')

# --- misconfigured (secrets not set yet) ----------------------------------
req push_misconf 10.0.0.1 "${JSON[@]}" -d "$(pubsub a@b.c 1)" "$URL/api/gmail/push?token=x"
expect_error push_misconf 500 misconfigured
req wa_get_misconf 10.0.0.2 "$URL/api/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=x&hub.challenge=c"
expect_error wa_get_misconf 500 misconfigured
req wa_post_misconf 10.0.0.3 "${JSON[@]}" -d "$(wa_body w0)" "$URL/api/whatsapp/webhook"
expect_error wa_post_misconf 500 misconfigured

# reload with the secrets (and prove reload works for route settings)
cfg_json "$SECRETS"
kill -HUP "$SV_PID"
check "reload with secrets applied" 'wait_for 5 ".header.configGeneration == 2 and ([.processes[].configGen] | all(. == 2))"'

# --- routing ---------------------------------------------------------------
req nf 10.0.1.1 "$URL/api/nope"
expect_error nf 404 not_found
req m405 10.0.1.2 -X PUT "$URL/api/chat"
expect_error m405 405 method_not_allowed
expect_header m405 Allow "POST, OPTIONS"
req m405b 10.0.1.3 -X DELETE "$URL/api/gmail/push"
expect_error m405b 405 method_not_allowed
expect_header m405b Allow "POST"
req m405c 10.0.1.4 -X POST "$URL/api/gmail/auth/callback"
expect_header m405c Allow "GET, HEAD"

# --- chat boundary ------------------------------------------------------------
CHAT='{"threadId":"t1","messages":[{"role":"user","content":"hello"}]}'
req opt_ok 10.0.2.1 -X OPTIONS -H "Origin: $ORIGIN" "$URL/api/chat"
expect_status opt_ok 204
expect_header opt_ok Access-Control-Allow-Origin "$ORIGIN"
expect_header opt_ok Access-Control-Allow-Methods "POST, OPTIONS"
expect_header opt_ok Access-Control-Allow-Headers "authorization, content-type"
expect_header opt_ok Vary Origin
check "opt_ok: Access-Control-Max-Age set" '[ -n "$(header opt_ok Access-Control-Max-Age)" ]'
req opt_unknown 10.0.2.2 -X OPTIONS -H "Origin: https://evil.example" "$URL/api/chat"
expect_status opt_unknown 204
no_header opt_unknown Access-Control-Allow-Origin
req chat_origin 10.0.2.3 "${JSON[@]}" -H "Origin: https://evil.example" -d "$CHAT" "$URL/api/chat"
expect_error chat_origin 403 forbidden
no_header chat_origin Access-Control-Allow-Origin
# the chat route needs auth.jwt: without it, 500 misconfigured (with CORS);
# the rest of its contract is tests/e2e/chat.sh
req chat_nojwt 10.0.2.9 "${JSON[@]}" -H "Origin: $ORIGIN" -d "$CHAT" "$URL/api/chat"
expect_error chat_nojwt 500 misconfigured
check "chat_nojwt: names auth.jwt" 'grep -q "auth.jwt" "$T/b.chat_nojwt"'
expect_header chat_nojwt Access-Control-Allow-Origin "$ORIGIN"

# --- health ---------------------------------------------------------------
req health 10.0.3.1 -H "Origin: $ORIGIN" "$URL/api/chat/health"
expect_status health 200
check "health: JSON with status, checks, gatewayMode, regionTopology" 'jq -e "(.status | IN(\"ok\",\"degraded\",\"down\")) and .children.up == 7 and .gatewayMode and .regionTopology.regionId == \"us-east-1\" and .providerRoutes.primary.bulkhead.maxConcurrent" "$T/b.health"'
req health_origin 10.0.3.2 -H "Origin: https://evil.example" "$URL/api/chat/health"
expect_error health_origin 403 forbidden

# --- Gmail push ---------------------------------------------------------------
req push_tok 10.0.4.1 "${JSON[@]}" -d "$(pubsub a@b.c 1)" "$URL/api/gmail/push?token=wrong"
expect_error push_tok 403 forbidden
req push_notok 10.0.4.2 "${JSON[@]}" -d "$(pubsub a@b.c 1)" "$URL/api/gmail/push"
expect_error push_notok 403 forbidden
req push_415 10.0.4.3 -H 'content-type: text/plain' -d "$(pubsub a@b.c 1)" "$URL/api/gmail/push?token=push-token"
expect_error push_415 415 unsupported_media_type
req push_json 10.0.4.4 "${JSON[@]}" -d '{"message":' "$URL/api/gmail/push?token=push-token"
expect_error push_json 400 invalid_json
req push_schema 10.0.4.5 "${JSON[@]}" -d '{"message":{"data":"!!!"}}' "$URL/api/gmail/push?token=push-token"
expect_error push_schema 400 invalid_request
check "push_schema: message names message.data" 'jq -e ".error.message | test(\"message.data\")" "$T/b.push_schema"'
head -c 300000 /dev/zero | tr '\0' 'a' >"$T/big300k"
req push_413 10.0.4.6 "${JSON[@]}" --data-binary @"$T/big300k" "$URL/api/gmail/push?token=push-token"
expect_error push_413 413 payload_too_large
req push_new 10.0.4.7 "${JSON[@]}" -d "$(pubsub user@example.com 1001)" "$URL/api/gmail/push?token=push-token"
expect_status push_new 200
no_header push_new X-Idempotent-Replay
req push_again 10.0.4.8 "${JSON[@]}" -d "$(pubsub user@example.com 1001)" "$URL/api/gmail/push?token=push-token"
expect_status push_again 200
expect_header push_again X-Idempotent-Replay 1
for i in 1 2 3; do req push_rl_$i 10.0.4.9 "${JSON[@]}" -d "$(pubsub rl@example.com $i)" "$URL/api/gmail/push?token=push-token"; done
req push_rl 10.0.4.9 "${JSON[@]}" -d "$(pubsub rl@example.com 9)" "$URL/api/gmail/push?token=push-token"
expect_error push_rl 429 rate_limited
check "push_rl: Retry-After in 1..60" '[ "$(header push_rl Retry-After)" -ge 1 ] && [ "$(header push_rl Retry-After)" -le 60 ]'

# --- WhatsApp ---------------------------------------------------------------
req wa_verify 10.0.5.1 "$URL/api/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"
expect_status wa_verify 200
check "wa_verify: body is the challenge, text/plain" '[ "$(cat "$T/b.wa_verify")" = 1158201444 ] && header wa_verify Content-Type | grep -q text/plain'
req wa_verify_html 10.0.5.1 "$URL/api/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=%3Cscript%3E1"
expect_error wa_verify_html 400 invalid_request
check "wa_verify_html: the challenge is not echoed" '! grep -q script "$T/b.wa_verify_html"'
req wa_verify_bad 10.0.5.2 "$URL/api/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=x"
expect_error wa_verify_bad 403 forbidden
wa_post() { # wa_post NAME XFF BODY [SIG]
	local sig=${4-$(printf '%s' "$3" | "$RGTOOL" wa-sign app-secret)}
	req "$1" "$2" "${JSON[@]}" ${sig:+-H "X-Hub-Signature-256: $sig"} --data-binary "$3" "$URL/api/whatsapp/webhook"
}
B3=$(wa_body wamid.A wamid.B wamid.C)
wa_post wa_nosig 10.0.5.3 "$B3" ""
expect_error wa_nosig 403 forbidden
wa_post wa_badsig 10.0.5.4 "$B3" "sha256=$(printf '0%.0s' $(seq 64))"
expect_error wa_badsig 403 forbidden
wa_post wa_json 10.0.5.5 '{"object":'
expect_error wa_json 400 invalid_json
wa_post wa_schema 10.0.5.6 '{"object":"x","entry":[{"id":"e","changes":[{"field":"messages","value":{"messages":[{"from":"1"}]}}]}]}'
expect_error wa_schema 400 invalid_request
check "wa_schema: path of the missing id" 'jq -e ".error.message | test(\"entry\\\\[0\\\\].changes\\\\[0\\\\].value.messages\\\\[0\\\\].id\")" "$T/b.wa_schema"'
req wa_415 10.0.5.7 -H 'content-type: text/plain' -d "$B3" "$URL/api/whatsapp/webhook"
expect_error wa_415 415 unsupported_media_type
wa_post wa_two 10.0.5.8 "$(wa_body wamid.A wamid.B)"
expect_status wa_two 200
no_header wa_two X-Idempotent-Replay
wa_post wa_three 10.0.5.9 "$B3"
expect_status wa_three 200
no_header wa_three X-Idempotent-Replay
wa_post wa_repeat 10.0.5.10 "$B3"
expect_status wa_repeat 200
expect_header wa_repeat X-Idempotent-Replay 1
for i in 1 2 3; do wa_post wa_rl_$i 10.0.5.11 "$(wa_body rl.$i)"; done
wa_post wa_rl 10.0.5.11 "$(wa_body rl.9)"
expect_error wa_rl 429 rate_limited

# --- OAuth callback -----------------------------------------------------------
expect_redirect() { # NAME OUTCOME
	local loc; loc=$(header "$1" Location)
	if [ "$(status "$1")" = 302 ] && [ "$loc" = "https://app.example/settings?tab=connections&gmail=$2" ]; then
		ok "$1: 302 gmail=$2"
	else fail "$1: want 302 gmail=$2, got $(status "$1") $loc"; fi
}
CB=$URL/api/gmail/auth/callback
GOOD=$("$RGTOOL" oauth-state state-secret user-1 $(( $(date +%s) * 1000 + 600000 )))
OLD=$("$RGTOOL" oauth-state state-secret user-1 $(( $(date +%s) * 1000 - 1000 )))
OTHER=$("$RGTOOL" oauth-state other-secret user-1 $(( $(date +%s) * 1000 + 600000 )))
req cb_missing 10.0.6.1 "$CB?code=abc"
expect_redirect cb_missing error
req cb_error 10.0.6.2 "$CB?error=access_denied&state=$GOOD"
expect_redirect cb_error error
req cb_bad 10.0.6.3 "$CB?code=abc&state=$OTHER"
expect_redirect cb_bad error
req cb_expired 10.0.6.4 "$CB?code=abc&state=$OLD"
expect_redirect cb_expired error
req cb_big 10.0.6.5 "$CB?code=abc&state=$(head -c 3000 /dev/zero | tr '\0' 'a')"
expect_redirect cb_big error
req cb_good 10.0.6.6 "$CB?code=abc&state=$GOOD"
expect_error cb_good 500 misconfigured
check "cb_good: names the missing OAuth client settings" 'grep -q "oauth.client_id" "$T/b.cb_good"'
for i in 1 2 3; do req cb_rl_$i 10.0.6.7 "$CB?code=abc"; done
req cb_rl 10.0.6.7 "$CB?code=abc"
expect_error cb_rl 429 rate_limited

# --- HTTP-level errors are classified too -------------------------------------
req big_head 10.0.7.1 -H "x-junk: $(head -c 5000 /dev/zero | tr '\0' 'a')" "$URL/api/chat/health"
expect_error big_head 431 headers_too_large
exec 3<>"/dev/tcp/127.0.0.1/$PORT"; printf 'GET /api/chat/health HTTP/1.1\r\nHost: x\r\n' >&3
timeout 5 cat <&3 | tr -d '\r' >"$T/slow.txt"; exec 3<&-
check "slow head: 408 request_timeout with code header" 'grep -q "^HTTP/1.1 408" "$T/slow.txt" && grep -qi "^x-sendcat-error-code: request_timeout" "$T/slow.txt"'
exec 3<>"/dev/tcp/127.0.0.1/$PORT"; printf 'BROKEN\r\n\r\n' >&3
timeout 5 cat <&3 | tr -d '\r' >"$T/bad.txt"; exec 3<&-
check "malformed request: 400 with code header" 'grep -q "^HTTP/1.1 400" "$T/bad.txt" && grep -qi "^x-sendcat-error-code: bad_request" "$T/bad.txt"'

# --- replay protection in LMDB -----------------------------------------------
"$RELCTL" -c "$T/relgate.json" --json deliveries list --limit 1000 >"$T/deliv.json"
check "deliveries: 1 gmail (pushed twice) + 3 rate-limit pushes" 'jq -e "[.[] | select(.topic == \"gmail.history\")] | length == 4" "$T/deliv.json"'
check "deliveries: user@example.com:1001 exactly once" 'jq -e "[.[] | select(.idemKey == \"user@example.com:1001\")] | length == 1" "$T/deliv.json"'
check "deliveries: wamid.A, .B, .C once each (3 msgs, 2 seen -> 1 new)" 'jq -e "[.[] | select(.topic == \"whatsapp.message\") | .idemKey] | map(select(startswith(\"wamid.\"))) | sort == [\"wamid.A\",\"wamid.B\",\"wamid.C\"]" "$T/deliv.json"'
check "delivery rows carry topic, payload and attempt state" 'jq -e "all(.[]; .id and .topic and .payload and .state == \"ready\" and .attempts == 0)" "$T/deliv.json"'
"$RELCTL" -c "$T/relgate.json" --json idempotency recent --scope whatsapp_message >"$T/idem.json"
check "idempotency: wamid.A seen 3 times, wamid.C twice" 'jq -e "(.[] | select(.key == \"wamid.A\") | .hitCount == 3) and (.[] | select(.key == \"wamid.C\") | .hitCount == 2)" "$T/idem.json"'
"$RELCTL" -c "$T/relgate.json" idempotency recent --scope gmail_push_history | head -n 3
snap >"$T/snap.json"
check "relstat: replays and deliveries counted" 'jq -e "([.processes[] | .counters[\"ingress.replays\"]] | add) == 2 and ([.processes[] | .counters[\"ingress.deliveries\"]] | add) == 10" "$T/snap.json"'
jq -c '.replayProtection.byScope' "$T/snap.json" | sed 's/^/  replayProtection: /'
keys=$(jq length "$T/idem.json"); repeats=$(jq '[.[].hitCount - 1] | add' "$T/idem.json")
check "relstat: replayProtection per scope: the keys relctl lists ($keys) and their repeats ($repeats)" 'jq -e --argjson k "$keys" --argjson r "$repeats" ".replayProtection.byScope.whatsapp_message | .keys == \$k and .repeats == \$r and .lastSeen > 0 and \$r >= 3" "$T/snap.json"'
check "relstat: replayProtection recentKeys, the last seen first" 'jq -e "(.replayProtection.recentKeys | length) >= 3 and ([.replayProtection.recentKeys[].lastSeen] | . == (sort | reverse)) and any(.replayProtection.recentKeys[]; .scope == \"whatsapp_message\" and .key == \"wamid.A\" and .hitCount == 3)" "$T/snap.json"'
check "relstat: rateLimitPressure shows blocked per bucket" 'jq -e ".rateLimitPressure.buckets | (.gmail_push.blocked >= 1 and .whatsapp_webhook.blocked >= 1 and .gmail_oauth_callback.blocked >= 1)" "$T/snap.json"'

stop_relgated
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'
finish
