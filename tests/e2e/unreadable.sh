#!/bin/bash
# unreadable.sh - a delivery row that cannot be read is never lost from
# sight: relctl shows it among the dead letters with its reason at once,
# the delivery worker turns it into a dead letter that keeps the stored
# bytes (and sends nothing), and a requeue of it is refused with why.
. "$(dirname "$0")/lib.sh"
RGTOOL=$top_builddir/tests/rgtool
command -v curl >/dev/null || { echo "curl is required"; exit 99; }

# first without a backend: the two pushes wait in the queue
write_config "$T/relgate.json" "\"GMAIL_PUBSUB_VERIFY_TOKEN\": \"tok\""
start_relgated "$T/relgate.json"
check "relgated up" 'wait_for 15 "$all_ready"'
push() {
	local data
	data=$(printf '{"emailAddress":"%s","historyId":"%s"}' "$1" "$2" | base64 -w0)
	curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
		-d "{\"message\":{\"data\":\"$data\"}}" "http://127.0.0.1:$PORT/api/gmail/push?token=tok"
}
check "two pushes stored" '[ "$(push u@example.com 1)$(push u@example.com 2)" = 200200 ]'
dl() { "$RELCTL" -c "$T/relgate.json" --json deliveries "$@"; }
check "both wait in the queue" '[ "$(dl list | jq length)" = 2 ]'

ID=$("$RGTOOL" corrupt-delivery "$T/state")
check "a row was overwritten" '[ "${#ID}" -eq 32 ]'
dl dead-letters >"$T/dead1.json"
check "relctl shows it as a dead letter with its reason at once" \
	'jq -e --arg id "$ID" "length == 1 and .[0].id == \$id and (.[0].deadLetterReason | startswith(\"unreadable row\"))" "$T/dead1.json"'
dl list >"$T/list1.json"
check "the other row is still listed as it was" \
	'jq -e --arg id "$ID" "[.[] | select(.id != \$id and .state == \"ready\")] | length == 1" "$T/list1.json"'
stop_relgated
check "relgated stopped cleanly" '[ "$SV_RC" = 0 ]'

# now with a backend: the worker meets the row
start_relmock --backend-secret backend-secret
write_config "$T/relgate.json" "\"GMAIL_PUBSUB_VERIFY_TOKEN\": \"tok\",
  \"backend\": { \"url\": \"http://127.0.0.1:$MOCK/backend\", \"secret\": \"backend-secret\", \"poll_ms\": 200 }"
start_relgated "$T/relgate.json"
check "relgated up with a backend" 'wait_for 15 "$all_ready"'
delivered() { curl -s "http://127.0.0.1:$MOCK/_relmock/backend/deliveries"; }
for _ in $(seq 100); do [ "$(delivered | jq 'length')" = 1 ] && break; sleep 0.1; done
check "the readable row was delivered" '[ "$(delivered | jq length)" = 1 ]'
for _ in $(seq 100); do dl dead-letters | jq -e '.[0].rawBase64 != null' >/dev/null 2>&1 && break; sleep 0.1; done
dl dead-letters >"$T/dead2.json"
check "the worker made it a dead letter that keeps the stored bytes" \
	'jq -e --arg id "$ID" ".[0].id == \$id and length == 1 and .[0].state == \"dead\" and (.[0].deadLetterReason | startswith(\"unreadable row\")) and (.[0].rawBase64 | @base64d | contains(\"not json\"))" "$T/dead2.json"'
delivered >"$T/sent.json"
check "nothing of it was sent" 'jq -e --arg id "$ID" "all(.[]; .idempotencyKey != \$id)" "$T/sent.json"'
"$RELCTL" -c "$T/relgate.json" deliveries requeue "$ID" >"$T/rq.out" 2>&1
RQ=$?
check "requeue is refused, saying why" '[ "$RQ" = 1 ] && grep -q unreadable "$T/rq.out"'
stop_relgated
kill "$MOCK_PID" 2>/dev/null
finish
