#!/bin/bash
# storefull.sh - when the store cannot take a webhook (LMDB map full) the
# sender gets 503 overloaded with Retry-After, never a 200: nothing is
# acknowledged that is not stored.  The daemons stay up, relstat counts it.
. "$(dirname "$0")/lib.sh"
RGTOOL=$top_builddir/tests/rgtool
command -v curl >/dev/null || { echo "curl is required"; exit 99; }

write_config "$T/relgate.json" '"WHATSAPP_APP_SECRET": "s3",
  "RATE_LIMIT_WHATSAPP_MAX": 1000000'
sed -i 's/"map_size_mb": 64/"map_size_mb": 1/' "$T/relgate.json"
start_relgated "$T/relgate.json"
check "relgated up with a 1 MiB map" 'wait_for 15 "$all_ready"'

payload() { # payload N: a webhook with 200 messages id N.0 .. N.199
	local msgs= i
	for i in $(seq 0 199); do
		msgs="$msgs${msgs:+,}{\"id\":\"full.$1.$i\",\"from\":\"15550001\",\"type\":\"text\",\"text\":{\"body\":\"$(printf 'x%.0s' $(seq 40))\"}}"
	done
	printf '{"object":"whatsapp_business_account","entry":[{"id":"waba","changes":[{"field":"messages","value":{"messages":[%s]}}]}]}' "$msgs"
}
got503=
: >"$T/acked"
for n in $(seq 60); do
	payload "$n" >"$T/body"
	sig=$("$RGTOOL" wa-sign s3 <"$T/body")
	curl -s -o "$T/resp" -D "$T/hdr" -H 'content-type: application/json' -H "X-Hub-Signature-256: $sig" \
		--data-binary @"$T/body" "http://127.0.0.1:$PORT/api/whatsapp/webhook"
	st=$(head -n 1 "$T/hdr" | awk '{print $2}')
	if [ "$st" = 200 ]; then
		for i in $(seq 0 199); do echo "full.$n.$i"; done >>"$T/acked"
	elif [ "$st" = 503 ]; then
		got503=$n; break
	else
		fail "payload $n: unexpected status $st"; break
	fi
done
echo "payloads acknowledged before the map filled: $((${got503:-61} - 1))"
check "a full store answers 503" '[ -n "$got503" ]'
tr -d '\r' <"$T/hdr" >"$T/hdr2"
check "503 carries code overloaded and Retry-After: 1" 'grep -qi "^x-sendcat-error-code: overloaded\$" "$T/hdr2" && grep -qi "^retry-after: 1\$" "$T/hdr2"'
check "503 body is the JSON error" 'jq -e ".error.code == \"overloaded\"" "$T/resp"'
snap >"$T/snap.json"
check "relstat: store.map_full and ingress.storeFailures counted" 'jq -e "([.processes[] | .counters[\"store.map_full\"]] | add) >= 1 and ([.processes[] | .counters[\"ingress.storeFailures\"]] | add) >= 1" "$T/snap.json"'
check "every daemon still up" 'jq -e "$all_ready" "$T/snap.json"'
"$RELCTL" -c "$T/relgate.json" --json deliveries list --limit 1000000 | jq -r '.[].idemKey' | sort >"$T/stored"
sort -o "$T/acked" "$T/acked"
check "every acknowledged message has its delivery row ($(wc -l <"$T/acked") acked)" '[ -z "$(comm -23 "$T/acked" "$T/stored")" ]'
check "no row of the refused payload was stored" '[ -z "$(grep "^full.$got503\." "$T/stored")" ]'

stop_relgated
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'
finish
