#!/bin/bash
# relmock.sh - relmock alone (no relgated): start it on a loopback port,
# drive every endpoint and fault with curl, check its records with jq.
# Deliveries and their signatures, "fail the next N", Retry-After,
# latency, stall, reset, drip, OAuth good/bad, Sentry envelopes, reset.
. "$(dirname "$0")/lib.sh"
RGTOOL=$top_builddir/tests/rgtool
command -v curl >/dev/null || { echo "curl is required"; exit 99; }
[ -x "$RELMOCK" ] || { echo "build $RELMOCK first"; exit 99; }
LOG=$T/relmock.log # shown by lib.sh's cleanup on failure
SECRET=backend-secret-1

# sign BODY: the X-Relgate-Signature value of BODY with $SECRET
sign() {
	if command -v openssl >/dev/null; then
		printf 'sha256=%s' "$(printf '%s' "$1" |
			openssl dgst -sha256 -hmac "$SECRET" | sed 's/.*= *//')"
	elif [ -x "$RGTOOL" ]; then
		printf '%s' "$1" | "$RGTOOL" wa-sign "$SECRET"
	else
		echo "need openssl or tests/rgtool to sign" >&2; exit 99
	fi
}

start_relmock --backend-secret "$SECRET" -v
check "relmock answers /_relmock/health" 'curl -sf -m 1 "$M/_relmock/health" | jq -e ".ok == true"'
[ "$FAILS" -eq 0 ] || { finish; exit 1; }
U=$M

# post TOPIC BODY [curl args...]: a delivery; prints "STATUS"
post() {
	local topic=$1 body=$2; shift 2
	curl -s -o /dev/null -w '%{http_code}' -m 5 \
		-H 'Content-Type: application/json' "$@" \
		--data-binary "$body" "$U/backend/$topic"
}
deliveries() { curl -s -m 5 "$U/_relmock/backend/deliveries"; }

# --- deliveries and signatures ------------------------------------------
B1='{"emailAddress":"a@example.com","historyId":"1"}'
st=$(post gmail.history "$B1" -H "Idempotency-Key: d-1" \
	-H "X-Relgate-Delivery: d-1" -H "X-Relgate-Signature: $(sign "$B1")")
check "signed delivery answered 200" 'test "$st" = 200'
check "signed delivery recorded, signature valid" 'jq -e "
	length == 1 and .[0].topic == \"gmail.history\" and
	.[0].idempotencyKey == \"d-1\" and .[0].deliveryId == \"d-1\" and
	.[0].signatureValid == true and .[0].body.historyId == \"1\" and
	.[0].status == 200 and .[0].seq == 1" <<<"$(deliveries)"'
B2='{"emailAddress":"a@example.com","historyId":"2"}'
st=$(post gmail.history "$B2" -H "Idempotency-Key: d-2" \
	-H "X-Relgate-Delivery: d-2" -H "X-Relgate-Signature: $(sign "$B1")")
check "badly signed delivery still answered 200" 'test "$st" = 200'
check "badly signed delivery recorded as invalid" 'jq -e "
	.[1].signatureValid == false and .[1].idempotencyKey == \"d-2\"" \
	<<<"$(deliveries)"'
post gmail.history "$B1" -H "Idempotency-Key: d-1" >/dev/null
check "stats count topics, keys and duplicates" 'jq -e "
	.received == 3 and .answered2xx == 3 and .failed == 0 and
	.byTopic[\"gmail.history\"] == 3 and .distinctIdempotencyKeys == 2 and
	.duplicates == 1" <<<"$(curl -s "$U/_relmock/backend/stats")"'

# --- fail the next N, Retry-After -----------------------------------------
check "arm fail next 2" 'jq -e ".ok and .failNext == 2" <<<"$(curl -s \
	-X POST "$U/_relmock/backend/fail?n=2&status=503&retry_after=2")"'
codes=
for i in 1 2 3; do codes="$codes $(post t.fail "{\"i\":$i}")"; done
check "fail next 2: 503 503 200 (got$codes)" 'test "$codes" = " 503 503 200"'
curl -s -X POST "$U/_relmock/backend/fail?n=1&status=429&retry_after=7" \
	>/dev/null
hdrs=$(curl -s -D - -o /dev/null -d '{}' "$U/backend/t.ra")
check "429 carries Retry-After: 7" 'grep -qi "^retry-after: 7" <<<"$hdrs"'
check "failures recorded with their status" 'jq -e "
	[.[] | select(.topic == \"t.fail\") | .status] == [503, 503, 200]" \
	<<<"$(deliveries)"'
curl -s -X POST "$U/_relmock/backend/fail?n=-1&status=500" >/dev/null
codes="$(post t.forever '{}') $(post t.forever '{}')"
curl -s -X POST "$U/_relmock/backend/recover" >/dev/null
codes="$codes $(post t.forever '{}')"
check "n=-1 fails until recover (got $codes)" 'test "$codes" = "500 500 200"'
hdrs=$(curl -s -D - -o /dev/null -H 'x-relmock-fault: status=503;retry_after=2' \
	-d '{}' "$U/backend/t.hdr")
check "per-request fault: 503" 'grep -q "^HTTP/1.1 503" <<<"$hdrs"'
check "per-request fault: Retry-After: 2" 'grep -qi "^retry-after: 2" <<<"$hdrs"'
st=$(curl -s -o /dev/null -w '%{http_code}' -d '{}' \
	"$U/backend/t.q?relmock_fault=status%3D402")
check "fault by query parameter: 402" 'test "$st" = 402'

# --- latency, stall, reset, drip, drop -------------------------------------
st=$(post t.lat '{}' -H 'x-relmock-fault: latency_ms=200')
check "latency fault still answers 200" 'test "$st" = 200'
curl -s -o /dev/null -m 1 -H 'x-relmock-fault: stall' -d '{}' "$U/backend/t.stall"
rc=$?
check "stall: curl --max-time 1 times out (rc $rc)" 'test "$rc" = 28'
curl -s -o /dev/null -m 5 -H 'x-relmock-fault: reset' -d '{}' "$U/backend/t.reset"
rc=$?
check "reset: connection error, no answer (rc $rc)" 'test "$rc" = 52 -o "$rc" = 56'
out=$(curl -s -m 5 -H 'x-relmock-fault: drip_ms=10;drip_bytes=2' -d '{}' \
	"$U/backend/t.drip")
check "drip: whole body arrives" 'jq -e ".ok == true" <<<"$out"'
curl -s -o /dev/null -m 5 -H 'x-relmock-fault: drop_after=4' -d '{}' \
	"$U/backend/t.drop"
rc=$?
check "drop_after: body cut by a reset (rc $rc)" 'test "$rc" -ne 0'
check "control API still up after faults" 'jq -e ".ok" \
	<<<"$(curl -s -m 2 "$U/_relmock/health")"'
check "faults counted per endpoint" 'jq -e ".endpoints.backend |
	.stall == 1 and .reset == 1 and .latency == 1 and .drip == 1 and
	.drop == 1 and .status == 7" <<<"$(curl -s "$U/_relmock/stats")"'
st=$(curl -s -o /dev/null -w '%{http_code}' -H 'x-relmock-fault: bogus' \
	-d '{}' "$U/backend/t")
check "unknown fault spec: 400" 'test "$st" = 400'

# --- default faults at run time --------------------------------------------
curl -s -d 'status=502' "$U/_relmock/faults/backend" >/dev/null
st="$(post t.def '{}') $(post t.def '{}' -H 'x-relmock-fault: none')"
curl -s -X POST "$U/_relmock/faults/backend" >/dev/null
st="$st $(post t.def '{}')"
check "default fault, 'none' overrides it, cleared (got $st)" \
	'test "$st" = "502 200 200"'

# --- OAuth token endpoint ----------------------------------------------------
form='grant_type=authorization_code&client_id=cid&client_secret=top-secret&redirect_uri=https%3A%2F%2Fgw.example%2Fapi%2Fgmail%2Fauth%2Fcallback'
out=$(curl -s -m 5 -d "$form&code=good-1" "$U/oauth/token")
check "oauth good code: tokens" 'jq -e ".token_type == \"Bearer\" and
	(.access_token | length > 0) and (.refresh_token | length > 0) and
	.expires_in > 0 and (.scope | length > 0)" <<<"$out"'
out=$(curl -s -m 5 -w '\n%{http_code}' -d "$form&code=bad-1" "$U/oauth/token")
check "oauth bad code: 400 invalid_grant" 'test "$(tail -n1 <<<"$out")" = 400'
check "oauth bad code body" 'jq -e ".error == \"invalid_grant\"" \
	<<<"$(head -n1 <<<"$out")"'
st=$(curl -s -o /dev/null -w '%{http_code}' -H 'x-relmock-fault: status=503' \
	-d "$form&code=good-2" "$U/oauth/token")
check "oauth faults apply: 503" 'test "$st" = 503'
reqs=$(curl -s "$U/_relmock/oauth/requests")
check "oauth requests recorded" 'jq -e "length == 3 and
	.[0].code == \"good-1\" and .[0].clientId == \"cid\" and
	.[1].outcome == \"invalid_grant\" and .[2].status == 503" <<<"$reqs"'
check "oauth client_secret never echoed" '! grep -q top-secret <<<"$reqs"'

# --- Sentry envelopes ------------------------------------------------------------
ev='{"level":"warning","message":"tool queue backlog","tags":{"alert":"tool_queue_depth"}}'
env=$(printf '{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","dsn":"http://pub@127.0.0.1/42"}\n{"type":"event","length":%d}\n%s\n' \
	"${#ev}" "$ev")
st=$(curl -s -o /dev/null -w '%{http_code}' --data-binary "$env" \
	-H 'X-Sentry-Auth: Sentry sentry_version=7, sentry_key=pub, sentry_client=relgate/0' \
	"$U/api/42/envelope/")
check "sentry envelope accepted" 'test "$st" = 200'
st=$(curl -s -o /dev/null -w '%{http_code}' --data-binary "$env" \
	"$U/api/42/envelope/?sentry_key=pub")
check "sentry auth by query" 'test "$st" = 200'
st=$(curl -s -o /dev/null -w '%{http_code}' --data-binary "$env" \
	"$U/api/42/envelope/")
check "sentry without auth: 401" 'test "$st" = 401'
check "sentry envelope recorded: level, message, tags" 'jq -e "length == 2 and
	.[0].project == \"42\" and .[0].sentryKey == \"pub\" and
	.[0].eventId == \"9ec79c33ec9942ab8353589fcb2e04dc\" and
	.[0].level == \"warning\" and .[0].message == \"tool queue backlog\" and
	.[0].tags.alert == \"tool_queue_depth\"" \
	<<<"$(curl -s "$U/_relmock/sentry/envelopes")"'

# --- reset ---------------------------------------------------------------------------
check "reset answers ok" 'jq -e ".ok" <<<"$(curl -s -X POST "$U/_relmock/reset")"'
check "reset clears deliveries" 'jq -e "length == 0" <<<"$(deliveries)"'
check "reset clears oauth and sentry records" 'test \
	"$(curl -s "$U/_relmock/oauth/requests")$(curl -s "$U/_relmock/sentry/envelopes")" = "[][]"'
check "reset clears counters" 'jq -e ".received == 0 and .duplicates == 0" \
	<<<"$(curl -s "$U/_relmock/backend/stats")"'
check "reset clears fault counters" 'jq -e ".endpoints.backend.faulted == 0" \
	<<<"$(curl -s "$U/_relmock/stats")"'

# --- clean shutdown ----------------------------------------------------------------
stop_relmock
check "SIGTERM: exit 0 (got $MOCK_RC)" '[ "$MOCK_RC" = 0 ]'
finish
