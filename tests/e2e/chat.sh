#!/bin/bash
# chat.sh - the contract of POST /api/chat (SPEC §3, §7) against a real
# relgated with relmock as the upstream: every boundary code (401 for a
# missing, bad, expired, not-yet-valid, wrong-audience, wrong-alg, unsigned
# or subject-less token -- tokens made by jose, not by relgate -- 403
# Origin, 415, 413, 400 invalid_json and invalid_request with paths, 429
# with Retry-After from the legacy limiter, 503 overloaded when the
# bulkhead is full), every upstream_* code from relmock's faults before
# the stream, and an error event after it; the stream's headers, CORS
# and events; a reload that rotates the secret; the RS256 and ES256
# configurations.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/chatlib.sh"

ORIGIN=https://app.example
mkdir -p "$T/keys"

# conf ALG: relgated in legacy mode, failover and retries off (each code
# comes from the primary alone), circuits that never open here
conf() {
	local auth
	case $1 in
	HS256) auth="\"secret\": \"$SECRET\"" ;;
	*) auth="\"alg\": \"$1\", \"public_key_file\": \"$T/keys/$1.pem\"" ;;
	esac
	write_config "$T/relgate.json" "\"http\": { \"listen\": \"127.0.0.1:$PORT\", \"allowed_origins\": [\"$ORIGIN\"] },
  \"auth\": { \"jwt\": { $auth, \"issuer\": \"https://auth.example\", \"audience\": \"relgate-e2e\", \"leeway_s\": 30 } },
  \"provider\": { \"primary\": { \"base_url\": \"$M/v1\" }, \"secondary\": { \"base_url\": \"$M/secondary/v1\" } },
  \"FF_ADMISSION_ENFORCE\": false, \"FF_PROVIDER_FAILOVER_ENABLED\": false,
  \"CHAT_PROVIDER_PRIMARY_RETRIES\": 0, \"CHAT_PROVIDER_PRIMARY_TIMEOUT_MS\": 1500,
  \"CIRCUIT_OPENROUTER_PRIMARY_THRESHOLD\": 1000,
  \"BULKHEAD_OR_PRI_MAX_CONCURRENT\": 1,
  \"RATE_LIMIT_CHAT_STREAM_MAX\": 3"
	sed -i "0,/\"http\": { \"listen\": \"127.0.0.1:$PORT\" },/{//d}" "$T/relgate.json"
}
# tok SUB [token.mjs args]: a valid HS256 token for SUB, or as the args say
tok() {
	local sub=$1; shift
	token --alg HS256 --secret "$SECRET" --sub "$sub" --iss https://auth.example --aud relgate-e2e "$@"
}
BODY='{"threadId":"t1","messages":[{"role":"user","content":"hello\nrelmock: tokens=5"}]}'
# post NAME TOKEN [curl args...] : POST /api/chat (default body), headers
# in h.NAME (CR removed), body in b.NAME
post() {
	local name=$1 t=$2 ct=application/json
	shift 2
	case " $* " in *" content-type: "*) ct= ;; esac
	curl -sN -m 20 -o "$T/b.$name" -D "$T/h.$name" ${t:+-H "authorization: Bearer $t"} \
		${ct:+-H "content-type: $ct"} "$@" "$(url)" >/dev/null 2>&1
	tr -d '\r' <"$T/h.$name" >"$T/h2.$name"; mv "$T/h2.$name" "$T/h.$name"
}
# expect_error NAME STATUS CODE: status, code header, JSON body with code
expect_error() {
	local name=$1 st=$2 code=$3
	if [ "$(status "$name")" = "$st" ] && [ "$(header "$name" x-sendcat-error-code)" = "$code" ] &&
		jq -e --arg c "$code" '.error.code == $c and (.error.message | length > 0)' "$T/b.$name" >/dev/null 2>&1; then
		ok "$name: $st $code"
	else
		fail "$name: want $st $code, got $(status "$name") $(header "$name" x-sendcat-error-code) $(head -c 200 "$T/b.$name")"
	fi
}
# events NAME: the SSE events of b.NAME as a JSON array ([DONE] as "DONE")
events() {
	sed -n 's/^data: //p' "$T/b.$1" | while IFS= read -r l; do
		if [ "$l" = "[DONE]" ]; then echo '"DONE"'; else echo "$l"; fi
	done | jq -s .
}
text_of() { events "$1" | jq -r '[.[] | select(type == "object" and .type == "text-delta") | .delta] | add // ""'; }

conf HS256
start_relgated "$T/relgate.json"
check "relgated up" 'wait_for 15 "$all_ready"'

# --- a stream -------------------------------------------------------------
post ok "$(tok alice)" -H "Origin: $ORIGIN" -d "$BODY"
check "ok: 200 text/event-stream" '[ "$(status ok)" = 200 ] && [ "$(header ok content-type)" = text/event-stream ]'
check "ok: AI SDK stream headers" '[ "$(header ok x-vercel-ai-ui-message-stream)" = v1 ] && [ "$(header ok cache-control)" = no-cache ] && [ "$(header ok x-accel-buffering)" = no ]'
check "ok: CORS for the allowed Origin" '[ "$(header ok access-control-allow-origin)" = "$ORIGIN" ] && [ "$(header ok vary)" = Origin ]'
check "ok: nosniff" '[ "$(header ok x-content-type-options)" = nosniff ]'
events ok >"$T/ev.ok"
check "ok: events in order (start, route, start-step, text, finish, [DONE])" \
	'jq -e "[.[] | if type == \"object\" then .type else . end] | (.[0:4] == [\"start\",\"data-provider-route\",\"start-step\",\"text-start\"]) and (.[-4:] == [\"text-end\",\"finish-step\",\"finish\",\"DONE\"])" "$T/ev.ok"'
check "ok: the text is what relmock sent" '[ "$(text_of ok)" = "$(want_text 5)" ]'
check "ok: data-provider-route names route, provider, model, attempt" \
	'jq -e ".[1].data == {route: \"primary\", provider: \"openrouter_chat_primary\", model: .[1].data.model, attempt: 1} and (.[1].data.model | length > 0)" "$T/ev.ok"'
check "ok: finish says stop" 'jq -e "map(select(type == \"object\" and .type == \"finish\"))[0].finishReason == \"stop\"" "$T/ev.ok"'
curl -s "$M/_relmock/chat/requests" >"$T/reqs.json"
check "relmock got the normalized messages and stream:true" \
	'jq -e ".[-1] | .stream == true and .messages == [{role: \"user\", content: \"hello\nrelmock: tokens=5\"}] and .path == \"/v1/chat/completions\"" "$T/reqs.json"'

# --- 401 ------------------------------------------------------------------
post no_token "" -d "$BODY"
expect_error no_token 401 unauthorized
post bad_token "not.a.token" -d "$BODY"
expect_error bad_token 401 unauthorized
post bad_sig "$(token --alg HS256 --secret wrong-secret-wrong-secret-wrong-32 --sub x --iss https://auth.example --aud relgate-e2e)" -d "$BODY"
expect_error bad_sig 401 unauthorized
post expired "$(tok bob --exp -120)" -d "$BODY"
expect_error expired 401 unauthorized
post in_leeway "$(tok bob2 --exp -10)" -d "$BODY"
check "a token expired 10 s ago is within the 30 s leeway" '[ "$(status in_leeway)" = 200 ]'
post not_yet "$(tok carol --nbf +600)" -d "$BODY"
expect_error not_yet 401 unauthorized
post wrong_aud "$(token --alg HS256 --secret "$SECRET" --sub dave --iss https://auth.example --aud someone-else)" -d "$BODY"
expect_error wrong_aud 401 unauthorized
post wrong_iss "$(token --alg HS256 --secret "$SECRET" --sub dave --iss https://evil.example --aud relgate-e2e)" -d "$BODY"
expect_error wrong_iss 401 unauthorized
post none "$(token --alg none --sub erin --iss https://auth.example --aud relgate-e2e)" -d "$BODY"
expect_error none 401 unauthorized
post no_sub "$(tok x --no-sub)" -d "$BODY"
expect_error no_sub 401 unauthorized
post rs_vs_hs "$(token --alg RS256 --key-dir "$T/keys" --sub frank --iss https://auth.example --aud relgate-e2e)" -d "$BODY"
expect_error rs_vs_hs 401 unauthorized
post cors_401 "" -H "Origin: $ORIGIN" -d "$BODY"
check "401 carries CORS for the allowed Origin" '[ "$(header cors_401 access-control-allow-origin)" = "$ORIGIN" ]'

# --- the boundary ---------------------------------------------------------
post origin "$(tok gina)" -H "Origin: https://evil.example" -d "$BODY"
expect_error origin 403 forbidden
check "403: no CORS headers for a disallowed Origin" '[ -z "$(header origin access-control-allow-origin)" ]'
post ctype "$(tok gina2)" -H 'content-type: text/plain' -d "$BODY"
expect_error ctype 415 unsupported_media_type
head -c 70000 /dev/zero | tr '\0' 'a' >"$T/big"
post big "$(tok gina3)" --data-binary @"$T/big"
expect_error big 413 payload_too_large
post badjson "$(tok gina4)" -d '{"threadId":'
expect_error badjson 400 invalid_json
post schema "$(tok gina5)" -d '{"threadId":"","messages":[{"role":"robot","content":1}],"extra":1}'
expect_error schema 400 invalid_request
check "invalid_request lists the paths" 'jq -e ".error.message | test(\"threadId: \") and test(\"messages\\\\[0\\\\].role: \") and test(\"messages\\\\[0\\\\].content: \") and test(\"extra: \")" "$T/b.schema"'
post sdkbad "$(tok gina6)" -d '{"id":"c","messages":[{"role":"user","parts":[{"type":"text","text":5}]}]}'
expect_error sdkbad 400 invalid_request
check "invalid_request of the AI SDK body names its path" 'jq -e ".error.message | test(\"messages\\\\[0\\\\].parts\\\\[0\\\\].text: \")" "$T/b.sdkbad"'

# --- 429 from the legacy limiter (chat_stream, per user: 3) ---------------
RL=$(tok henry)
for i in 1 2 3; do post rl_$i "$RL" -d "$BODY"; done
check "limiter: the user's first 3 are served" '[ "$(status rl_1)$(status rl_2)$(status rl_3)" = 200200200 ]'
post rl "$RL" -d "$BODY"
expect_error rl 429 rate_limited
check "limiter: Retry-After in 1..300" '[ "$(header rl retry-after)" -ge 1 ] && [ "$(header rl retry-after)" -le 300 ]'
post rl_other "$(tok irene)" -d "$BODY"
check "limiter: another user is still served" '[ "$(status rl_other)" = 200 ]'

# --- upstream codes before the stream -------------------------------------
# upstream FAULT NAME STATUS CODE: relmock answers FAULT, the client gets
upstream() {
	curl -s -o /dev/null -X POST --data-binary "$1" "$M/_relmock/faults/chat"
	post "$2" "$(tok "u-$2")" -d "$BODY"
	expect_error "$2" "$3" "$4"
}
upstream "status=402" up402 502 upstream_quota_exceeded
upstream "status=429;retry_after=7" up429 503 upstream_rate_limited
check "upstream 429: Retry-After passed on" '[ "$(header up429 retry-after)" = 7 ]'
upstream "status=503" up503 503 upstream_unavailable
upstream "status=500" up500 503 upstream_unavailable
upstream "status=400" up400 502 upstream_bad_request
upstream "status=404" up404 502 upstream_bad_request
upstream "status=422" up422 502 upstream_bad_request
upstream "status=401" up401 502 upstream_auth
upstream "status=403" up403 502 upstream_auth
upstream "status=409" up409 502 upstream_error
upstream "stall" upstall 504 upstream_timeout
upstream "reset" upreset 503 upstream_unavailable
check "the upstream's own error text never reaches the client" '! grep -q relmock_fault "$T"/b.up*'
curl -s -o /dev/null -X POST --data-binary "" "$M/_relmock/faults/chat"
curl -s -o /dev/null -X POST --data-binary "none" "$M/_relmock/faults/chat"

# --- an error after the stream started ------------------------------------
DROP_BODY='{"threadId":"t","messages":[{"role":"user","content":"relmock: tokens=40 token_ms=20"}]}'
curl -s -o /dev/null -X POST -d '{"faults":["drop_after=700"]}' "$M/_relmock/chat/arm"
post drop "$(tok jack2)" -d "$DROP_BODY"
events drop >"$T/ev.drop"
check "mid-stream drop: 200, some text, then an error event" \
	'[ "$(status drop)" = 200 ] && jq -e "(map(select(type == \"object\" and .type == \"text-delta\")) | length > 0) and (map(select(type == \"object\" and .type == \"error\"))[0] | .code == \"upstream_unavailable\" and (.errorText | length > 0))" "$T/ev.drop"'
check "mid-stream drop: finish error and [DONE] end it" 'jq -e ".[-2].type == \"finish\" and .[-2].finishReason == \"error\" and .[-1] == \"DONE\"" "$T/ev.drop"'

# --- 503 overloaded: the primary's bulkhead (1) is full -------------------
FULL_TOKEN=$(tok liam) # made first: the slow stream must still be open
post slow "$(tok kate)" -d '{"threadId":"t","messages":[{"role":"user","content":"relmock: tokens=3 token_ms=4000"}]}' &
SLOW=$!
check "the slow stream holds the one lease" 'settle 20 ".streamsOpen == 1"'
post full "$FULL_TOKEN" -d "$BODY"
expect_error full 503 overloaded
check "overloaded: Retry-After >= 1" '[ "$(header full retry-after)" -ge 1 ]'
wait "$SLOW"
check "the slow stream finished normally" '[ "$(status slow)" = 200 ] && [ "$(text_of slow)" = "$(want_text 3)" ]'
snap >"$T/snap.json"
check "relstat: the bulkhead is empty again" 'jq -e ".bulkheads.openrouter_chat_primary.inFlight == 0" "$T/snap.json"'

# --- a reload rotates the HS256 secret -------------------------------------
OLD_TOKEN=$(tok pia)
gen=$(snap | jq '.header.configGeneration')
OLD_SECRET=$SECRET
SECRET=e2e-rotated-secret-of-at-least-32-bytes
conf HS256
kill -HUP "$SV_PID"
check "reload with a new secret: every process runs generation $((gen + 1))" \
	'wait_for 10 "[.processes[].configGen] | all(. == $((gen + 1)))"'
post rotated_new "$(tok quinn)" -d "$BODY"
check "after the reload a token of the new secret is served" '[ "$(status rotated_new)" = 200 ] && [ "$(text_of rotated_new)" = "$(want_text 5)" ]'
post rotated_old "$OLD_TOKEN" -d "$BODY"
expect_error rotated_old 401 unauthorized
SECRET=$OLD_SECRET
stop_relgated
check "relgated stopped" '[ "$SV_RC" = 0 ]'

# --- RS256 and ES256: the configured alg only -----------------------------
for alg in RS256 ES256; do
	token --alg "$alg" --key-dir "$T/keys" --sub warmup >/dev/null # keys
	conf "$alg"
	start_relgated "$T/relgate.json"
	check "relgated up with $alg" 'wait_for 15 "$all_ready"'
	post "$alg" "$(token --alg "$alg" --key-dir "$T/keys" --sub mia --iss https://auth.example --aud relgate-e2e)" -d "$BODY"
	check "$alg: a $alg token is served" '[ "$(status "$alg")" = 200 ] && [ "$(text_of "$alg")" = "$(want_text 5)" ]'
	post "hs_vs_$alg" "$(tok noah)" -d "$BODY"
	expect_error "hs_vs_$alg" 401 unauthorized
	post "none_vs_$alg" "$(token --alg none --sub olga --iss https://auth.example --aud relgate-e2e)" -d "$BODY"
	expect_error "none_vs_$alg" 401 unauthorized
	stop_relgated
done
finish
