#!/bin/bash
# chat_sdk.sh - relgate's chat stream read by the real client: npm ai@5,
# run by Node.  DefaultChatTransport sends the chat (once with the body it
# sends for useChat, unchanged; once mapped to relgate's own body by
# prepareSendMessagesRequest), readUIMessageStream assembles the assistant
# message: its text must be what relmock sent.  An error event after the
# stream started surfaces as the client's error; an error before it, as
# the transport's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/chatlib.sh"

ORIGIN=https://app.example
write_config "$T/relgate.json" "\"http\": { \"listen\": \"127.0.0.1:$PORT\", \"allowed_origins\": [\"$ORIGIN\"] },
  $CHAT_CONF,
  \"FF_ADMISSION_ENFORCE\": false, \"FF_PROVIDER_FAILOVER_ENABLED\": false,
  \"CHAT_PROVIDER_PRIMARY_RETRIES\": 0"
sed -i "0,/\"http\": { \"listen\": \"127.0.0.1:$PORT\" },/{//d}" "$T/relgate.json"
start_relgated "$T/relgate.json"
check "relgated up" 'wait_for 15 "$all_ready"'
TOK=$(token --alg HS256 --secret "$SECRET" --sub sdk-user)
client() { node "$NODE_DIR/chat_client.mjs" "$(url)" "$TOK" "$@"; }

client "Hi there.
relmock: tokens=30 token_ms=5" --origin "$ORIGIN" >"$T/own.json"; rc=$?
check "transport body: the client read the stream to its end" '[ "$rc" = 0 ] && jq -e ".error == null" "$T/own.json"'
check "transport body: the assembled text is what relmock sent" '[ "$(jq -r .text "$T/own.json")" = "$(want_text 30)" ]'
check "transport body: the route part is a data part of the message" 'jq -e "[.parts[] | select(.type == \"data-provider-route\")][0].data.route == \"primary\"" "$T/own.json"'
curl -s "$M/_relmock/chat/requests" >"$T/reqs.json"
check "relmock saw the text of the transport's parts" 'jq -e ".[-1].messages[-1] == {role: \"user\", content: \"Hi there.\nrelmock: tokens=30 token_ms=5\"}" "$T/reqs.json"'

client "relmock: tokens=12" --map >"$T/mapped.json"; rc=$?
check "mapped body: read to its end" '[ "$rc" = 0 ] && jq -e ".error == null" "$T/mapped.json"'
check "mapped body: the assembled text is what relmock sent" '[ "$(jq -r .text "$T/mapped.json")" = "$(want_text 12)" ]'

curl -s -o /dev/null -d '{"faults":["drop_after=900"]}' "$M/_relmock/chat/arm"
client "relmock: tokens=60 token_ms=5" >"$T/drop.json"
check "an error event surfaces as the client's error" 'jq -e ".error | type == \"string\" and length > 0" "$T/drop.json"'
check "the text before the error is kept" 'jq -e ".text | startswith(\"w0 w1 \")" "$T/drop.json"'

curl -s -o /dev/null -d '{"faults":["status=402"]}' "$M/_relmock/chat/arm"
client "relmock: tokens=3" >"$T/quota.json"
check "an error before the stream is the transport's error" 'jq -e ".error | type == \"string\" and length > 0" "$T/quota.json"'
stop_relgated
finish
