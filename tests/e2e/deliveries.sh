#!/bin/bash
# deliveries.sh - webhooks accepted by the ingress reach the application
# backend (relmock) through the tool-worker: exactly once with valid
# signatures and the request's X-Request-Id; after retries when the backend fails a few times; into the
# dead letters when it fails for good, and out again with a requeue; and
# through a kill -9 of the tool-worker mid-delivery (re-claimed after its
# lease, same Idempotency-Key).  The circuit "backend" opens, pauses the
# deliveries, probes after its cooldown and closes on recovery.
. "$(dirname "$0")/lib.sh"
RGTOOL=$top_builddir/tests/rgtool
command -v curl >/dev/null || { echo "curl is required"; exit 99; }

start_relmock --backend-secret backend-secret

write_config "$T/relgate.json" "\"backend\": { \"url\": \"$M/backend\", \"secret\": \"backend-secret\",
    \"timeout_ms\": 2000, \"max_attempts\": 4, \"retry_base_ms\": 100, \"poll_ms\": 200,
    \"circuit\": { \"threshold\": 3, \"cooldown_ms\": 3000 },
    \"bulkhead\": { \"max_concurrent\": 4, \"lease_ttl_ms\": 5000 } },
  \"GMAIL_PUBSUB_VERIFY_TOKEN\": \"tok\", \"RATE_LIMIT_GMAIL_PUSH_MAX\": 100000"
start_relgated "$T/relgate.json"
check "relgated up" 'wait_for 15 "$all_ready"'

push() { # push EMAIL HISTORY [X-REQUEST-ID] -> HTTP status
	local data
	data=$(printf '{"emailAddress":"%s","historyId":"%s"}' "$1" "$2" | base64 -w0)
	curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' ${3:+-H "X-Request-Id: $3"} \
		-d "{\"message\":{\"data\":\"$data\"}}" "http://127.0.0.1:$PORT/api/gmail/push?token=tok"
}
delivered() { curl -s "$M/_relmock/backend/deliveries"; }
# wait_mock SECONDS JQ over the recorded deliveries
wait_mock() {
	local i
	for i in $(seq $(($1 * 20))); do
		delivered | jq -e "$2" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}
queue() { "$RELCTL" -c "$T/relgate.json" --json deliveries list --limit 100000; }

# --- normal operation: each exactly once, signed --------------------------
for i in $(seq 10); do [ "$(push a@example.com $i "$([ "$i" = 1 ] && echo push-rid.1)")" = 200 ] || fail "push $i"; done
check "10 webhooks delivered" 'wait_mock 10 "[.[] | select(.topic == \"gmail.history\")] | length >= 10"'
sleep 0.5
delivered >"$T/d1.json"
check "each exactly once (10 distinct Idempotency-Keys, 10 requests)" 'jq -e "length == 10 and ([.[].idempotencyKey] | unique | length) == 10" "$T/d1.json"'
check "every signature valid, X-Relgate-Delivery = Idempotency-Key" 'jq -e "all(.[]; .signatureValid == true and .deliveryId == .idempotencyKey)" "$T/d1.json"'
check "X-Request-Id carried to the backend: the client's, else one made per request" 'jq -e "([.[] | select(.body.historyId == \"1\") | .requestId] == [\"push-rid.1\"]) and ([.[] | select(.body.historyId != \"1\") | .requestId | select(test(\"^[0-9a-f]{16}$\"))] | unique | length) == 9" "$T/d1.json"'
check "payload is the decoded notification" 'jq -e "any(.[]; .body.emailAddress == \"a@example.com\" and .body.historyId == \"3\")" "$T/d1.json"'
check "queue empty after delivery" '[ "$(queue | jq length)" = 0 ]'

# --- backend fails the next 3 attempts: arrives after retries -------------
curl -s -X POST "$M/_relmock/reset" >/dev/null
curl -s -X POST "$M/_relmock/backend/fail?n=3&status=503" >/dev/null
[ "$(push b@example.com 1)" = 200 ] || fail "push b"
check "delivered after 3 failures (4 attempts, same key)" 'wait_mock 10 "[.[] | select(.status == 200)] | length == 1"'
delivered >"$T/d2.json"
check "attempts: 3 x 503 then 200, one Idempotency-Key" 'jq -e "([.[].status] == [503,503,503,200]) and ([.[].idempotencyKey] | unique | length) == 1" "$T/d2.json"'

# --- fails forever: dead letter after max_attempts; requeue delivers ------
curl -s -X POST "$M/_relmock/reset" >/dev/null
curl -s -X POST "$M/_relmock/backend/fail?n=-1&status=500" >/dev/null
[ "$(push c@example.com 1)" = 200 ] || fail "push c"
dead=
for _ in $(seq 200); do
	dead=$("$RELCTL" -c "$T/relgate.json" --json deliveries dead-letters | jq -r '.[0].id // empty')
	[ -n "$dead" ] && break; sleep 0.05
done
check "dead letter after the configured 4 attempts" '[ -n "$dead" ] && [ "$(delivered | jq length)" -eq 4 ]'
"$RELCTL" -c "$T/relgate.json" --json deliveries dead-letters | jq -c '.[0] | {id, state, attempts, deadLetterReason}'
curl -s -X POST "$M/_relmock/backend/recover" >/dev/null
"$RELCTL" -c "$T/relgate.json" deliveries requeue "$dead"
check "requeued dead letter delivered after recovery" 'wait_mock 10 "[.[] | select(.status == 200)] | length == 1"'
check "no dead letters left" '[ "$("$RELCTL" -c "$T/relgate.json" --json deliveries dead-letters | jq length)" = 0 ]'

# --- circuit: failing backend opens it; cooldown; probe; closes -----------
curl -s -X POST "$M/_relmock/reset" >/dev/null
curl -s -X POST "$M/_relmock/backend/fail?n=-1&status=503" >/dev/null
for i in $(seq 6); do push d@example.com $i >/dev/null; done
check "circuit backend opens after 3 failures (relstat)" 'wait_for 10 ".circuits.backend.state == \"open\""'
n_open=$(delivered | jq length)
sleep 0.7
check "while open, deliveries pause (no new attempts)" '[ "$(delivered | jq length)" -eq "$n_open" ]'
curl -s -X POST "$M/_relmock/backend/recover" >/dev/null
check "after the cooldown a probe goes through and the circuit closes" 'wait_for 10 ".circuits.backend.state == \"closed\""'
check "all 6 delivered after recovery" 'wait_mock 15 "[.[] | select(.status == 200) | .body.emailAddress] | map(select(. == \"d@example.com\")) | length == 6"'

# --- kill -9 a tool-worker mid-delivery: re-claimed after the lease ------
curl -s -X POST "$M/_relmock/reset" >/dev/null
curl -s -X POST "$M/_relmock/backend/fail?n=1&status=stall" >/dev/null
[ "$(push e@example.com 1)" = 200 ] || fail "push e"
check "a delivery is in flight (stalled backend)" 'wait_mock 5 "length >= 1"'
snap | jq -r '.processes[] | select(.role == "tool-worker") | .pid' >"$T/tw"
for p in $(cat "$T/tw"); do kill -KILL "$p"; done
check "delivered once the lease ran out (loss not allowed)" 'wait_mock 20 "[.[] | select(.status == 200)] | length == 1"'
check "the retry carries the same Idempotency-Key" 'jq -n -e --argjson d "$(delivered)" "(\$d | map(.idempotencyKey) | unique | length) == 1"'

stop_relgated
stop_relmock
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'
finish
