#!/bin/bash
# relmock_tls.sh - relmock's HTTPS front alone (no relgated): start relmock
# with a plain and a TLS listener, then with curl only (openssl may not be
# installed): the test CA it wrote verifies https://localhost, the system
# CAs and a wrong name do not, deliveries and faults (status, reset, drip)
# work over HTTPS as over HTTP, big bodies pass the bounded buffers, and
# SIGTERM exits 0 (under ASan: with no leak).
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "curl is required"; exit 99; }
[ -x "$RELMOCK" ] || { echo "build $RELMOCK first"; exit 99; }
LOG=$T/relmock.log # shown by lib.sh's cleanup on failure
CA=$T/tls/ca.pem

start_relmock --tls -v
check "relmock answers /_relmock/health over plain HTTP" 'curl -sf -m 1 "$M/_relmock/health" | jq -e ".ok == true"'
[ "$FAILS" -eq 0 ] || { finish; exit 1; }
U=$M
TPORT=$MOCK_TLS
S=https://localhost:$TPORT

mode=$(stat -c %a "$CA" 2>&1)
check "ca.pem written, mode 0644 ($mode)" 'test "$mode" = 644'
check "ca.pem holds one certificate and no key" 'test \
	"$(grep -c "BEGIN CERTIFICATE" "$CA")" = 1 -a \
	"$(grep -c "PRIVATE KEY" "$CA")" = 0'

# --- verification ----------------------------------------------------------
out=$(curl -sS -m 5 --cacert "$CA" "$S/_relmock/health")
check "health over HTTPS with the test CA" 'jq -e ".ok == true" <<<"$out"'
curl -s -o /dev/null -m 5 "$S/_relmock/health"; rc=$?
check "without the test CA: certificate error (rc $rc)" 'test "$rc" = 60'
curl -s -o /dev/null -m 5 --cacert "$CA" \
	--resolve "wrong.example:$TPORT:127.0.0.1" \
	"https://wrong.example:$TPORT/_relmock/health"; rc=$?
check "wrong name: verification fails (rc $rc)" \
	'test "$rc" = 51 -o "$rc" = 60'
for _ in $(seq 40); do
	grep -q "handshake failed" "$LOG" && break; sleep 0.05
done
check "failed handshake logged at -v" 'grep -q "tls .*handshake failed" "$LOG"'
curl -s -o /dev/null -m 5 --cacert "$CA" --tlsv1.2 --tls-max 1.2 \
	"$S/_relmock/health"; rc=$?
check "TLS 1.2 accepted" 'test "$rc" = 0'

# --- deliveries and faults over HTTPS --------------------------------------
sc() { curl -s -o /dev/null -w '%{http_code}' -m 5 --cacert "$CA" "$@"; }
B='{"emailAddress":"a@example.com","historyId":"7"}'
st=$(sc -H 'Content-Type: application/json' -H 'Idempotency-Key: t-1' \
	--data-binary "$B" "$S/backend/x")
check "POST /backend/x over HTTPS answered 200" 'test "$st" = 200'
check "the HTTPS delivery is recorded (read over plain HTTP)" 'jq -e "
	length == 1 and .[0].topic == \"x\" and .[0].idempotencyKey == \"t-1\" and
	.[0].body.historyId == \"7\" and .[0].status == 200" \
	<<<"$(curl -s -m 5 "$U/_relmock/backend/deliveries")"'
st=$(sc -H 'x-relmock-fault: status=503' --data-binary "$B" "$S/backend/x")
check "fault status=503 applies over HTTPS" 'test "$st" = 503'
st=$(sc -H 'x-relmock-fault: reset' --data-binary "$B" "$S/backend/x"); rc=$?
check "fault reset over HTTPS: no answer (rc $rc, $st)" \
	'test "$rc" != 0 -a "$st" = 000'
out=$(curl -s -m 10 --cacert "$CA" -H 'x-relmock-fault: drip_ms=5;drip_bytes=3' \
	--data-binary "$B" "$S/backend/x")
check "fault drip over HTTPS: whole body" 'jq -e ".ok == true" <<<"$out"'

# a body far bigger than the per-direction buffers, in and out
BIG=$(head -c 300000 /dev/zero | tr '\0' a)
printf '{"s":"%s"}' "$BIG" >"$T/big.json"
st=$(sc -H 'Content-Type: application/json' --data-binary "@$T/big.json" \
	"$S/backend/big")
check "300 kB body over HTTPS answered 200" 'test "$st" = 200'
curl -s -m 10 "$U/_relmock/backend/deliveries" >"$T/deliv.json"
check "300 kB body recorded whole" 'jq -e \
	"[.[] | select(.topic == \"big\")][0].body.s | length == 300000" \
	"$T/deliv.json"'
got=$(curl -s -m 10 --cacert "$CA" "$S/_relmock/backend/deliveries" | wc -c)
check "big answer read back over HTTPS ($got bytes)" \
	'test "$got" -eq "$(wc -c <"$T/deliv.json")"'

# concurrent connections
jobs_pids=
for i in $(seq 20); do
	sc --data-binary '{"n":1}' "$S/backend/par" >"$T/par.$i" &
	jobs_pids="$jobs_pids $!"
done
for p in $jobs_pids; do wait "$p"; done # never plain wait: relmock runs
all200=1
for i in $(seq 20); do [ "$(cat "$T/par.$i")" = 200 ] || all200=; done
check "20 concurrent HTTPS deliveries answered 200" 'test -n "$all200"'
check "20 concurrent HTTPS deliveries recorded" 'jq -e \
	"[.[] | select(.topic == \"par\")] | length == 20" \
	<<<"$(curl -s -m 5 "$U/_relmock/backend/deliveries")"'

# a client that connects and sends garbage does not hurt the next one
printf 'GET / HTTP/1.1\r\n\r\n' | curl -s -m 2 "telnet://127.0.0.1:$TPORT" \
	>/dev/null 2>&1
out=$(curl -sS -m 5 --cacert "$CA" "$S/_relmock/health")
check "HTTPS still served after a non-TLS client" 'jq -e ".ok == true" <<<"$out"'

# --- clean exit ------------------------------------------------------------
stop_relmock
check "SIGTERM: relmock exits 0 (rc $MOCK_RC)" '[ "$MOCK_RC" = 0 ]'
finish
