#!/bin/bash
# ratelimit.sh - the shm rate limiter through real HTTP: the exact limit
# boundary with Retry-After, window roll-over, one bucket shared by two
# ingress processes, spoofed X-Forwarded-For from an untrusted peer
# ignored, and the fail-closed contention fallback on a tiny table.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "curl is required"; exit 99; }

WINDOW=4000
write_config "$T/relgate.json" "\"app_url\": \"https://app.example\",
  \"ratelimit\": { \"table_slots\": 64 },
  \"RATE_LIMIT_GMAIL_OAUTH_MAX\": 5, \"RATE_LIMIT_GMAIL_OAUTH_WINDOW_MS\": $WINDOW"
# only 127.0.0.2 is a trusted proxy: 127.0.0.1 is an ordinary client
sed -i "s|\"http\": { \"listen\": \"127.0.0.1:$PORT\" }|\"http\": { \"listen\": \"127.0.0.1:$PORT\", \"trusted_proxies\": [\"127.0.0.2/32\"] }|" "$T/relgate.json"
start_relgated "$T/relgate.json"
check "relgated up" 'wait_for 15 "$all_ready"'
CB="http://127.0.0.1:$PORT/api/gmail/auth/callback?code=x"

# one request, a new connection each time: prints "STATUS RETRY_AFTER"
hit() { # hit [curl args]
	curl -s -o /dev/null -D - "$@" "$CB" | tr -d '\r' | awk '
		NR == 1 { s = $2 } tolower($1) == "retry-after:" { r = $2 }
		END { print s, (r == "" ? "-" : r) }'
}
# burst [-i ADDRESS] XFF...: one request per X-Forwarded-For value, from
# ADDRESS, each on a new connection, all from one curl process so that
# they fall in one rate window even on a busy machine (a curl process per
# request took 0.2 s each under load); prints "STATUS RETRY_AFTER" each
burst() {
	local from=127.0.0.1 args=() x
	if [ "$1" = -i ]; then from=$2; shift 2; fi
	for x in "$@"; do
		[ ${#args[@]} -eq 0 ] || args+=(--next)
		args+=(-s -o /dev/null -D - --interface "$from" -H "connection: close"
			-H "x-forwarded-for: $x" "$CB")
	done
	curl "${args[@]}" | tr -d '\r' | awk '
		/^HTTP\// { if (s != "") print s, r; s = $2; r = "-" }
		tolower($1) == "retry-after:" { r = $2 }
		END { if (s != "") print s, r }'
}
ingress_requests() { snap | jq -c '[.processes[] | select(.role == "ingress") | .counters["http.requests"]]'; }

before=$(ingress_requests)
burst $(printf '203.0.113.%d ' $(seq 20)) >"$T/seq"
after=$(ingress_requests)
echo "statuses: $(awk '{print $1}' "$T/seq" | sort | uniq -c | tr '\n' ' ')"
check "boundary: the first 5 allowed (302)" '[ "$(head -n 5 "$T/seq" | awk "\$1 == 302" | wc -l)" -eq 5 ]'
check "boundary: the 6th..20th refused (429)" '[ "$(tail -n 15 "$T/seq" | awk "\$1 == 429" | wc -l)" -eq 15 ]'
ra=$(sed -n 6p "$T/seq" | awk '{print $2}')
check "boundary: Retry-After of the 6th is 1..$((WINDOW / 1000)) s (got $ra)" '[ "$ra" -ge 1 ] && [ "$ra" -le $((WINDOW / 1000)) ]'
check "spoofed x-forwarded-for from an untrusted peer ignored (20 different XFF, one bucket)" '[ "$(awk "\$1 == 302" "$T/seq" | wc -l)" -eq 5 ]'
check "two ingress processes served these requests ($before -> $after)" 'jq -n -e --argjson a "$before" --argjson b "$after" "(\$b | length) == 2 and (\$b[0] > \$a[0]) and (\$b[1] > \$a[1])"'

# window roll-over: after Retry-After the key starts a new window
last=$(tail -n 1 "$T/seq" | awk '{print $2}')
sleep "$last.3"
check "roll-over: allowed again after the window" '[ "$(hit | awk "{print \$1}")" = 302 ]'

# a trusted proxy's X-Forwarded-For is the key
burst -i 127.0.0.2 $(printf '198.51.100.%d ' $(seq 5)) >"$T/trusted"
check "trusted proxy: 5 different forwarded clients all allowed" '[ "$(awk "\$1 == 302" "$T/trusted" | wc -l)" -eq 5 ]'
burst -i 127.0.0.2 $(printf '198.51.100.77 %.0s' $(seq 6)) >"$T/same"
check "trusted proxy: one forwarded client limited at 5" '[ "$(awk "\$1 == 302" "$T/same" | wc -l)" -eq 5 ] && [ "$(tail -n 1 "$T/same" | awk "{print \$1}")" = 429 ]'

# tiny table (64 slots): 100 distinct live keys cannot all fit -> 429.
# A 10 min window first (reload), so that no key of the flood expires
# during it however slow the machine is.
sed -i "s/\"RATE_LIMIT_GMAIL_OAUTH_WINDOW_MS\": $WINDOW/\"RATE_LIMIT_GMAIL_OAUTH_WINDOW_MS\": 600000/" "$T/relgate.json"
kill -HUP "$SV_PID"
check "reload: a 10 min window for the flood" 'wait_for 10 ".config.RATE_LIMIT_GMAIL_OAUTH_WINDOW_MS == 600000 and ([.processes[].configGen] | all(. == 2))"'
burst -i 127.0.0.2 $(printf '192.0.2.%d ' $(seq 100)) >"$T/flood"
snap >"$T/snap.json"
cf=$(jq '.rateLimitPressure.buckets.gmail_oauth_callback.contention_fallback' "$T/snap.json")
echo "flood: $(awk '{print $1}' "$T/flood" | sort | uniq -c | tr '\n' ' ')  contention_fallback=$cf"
check "contention: table full refuses new keys with 429 (fail closed)" '[ "$(awk "\$1 == 429" "$T/flood" | wc -l)" -gt 0 ]'
check "contention: counted as contention_fallback in relstat" '[ "$cf" -gt 0 ] && [ "$cf" -eq "$(awk "\$1 == 429" "$T/flood" | wc -l)" ]'
check "relstat: blocked counted for the bucket" 'jq -e ".rateLimitPressure.buckets.gmail_oauth_callback.blocked >= 16" "$T/snap.json"'
check "telemetry: every refusal reported to the monitor (sent or coalesced)" 'jq -e "([.processes[] | .counters[\"ingress.telemetrySent\"]] | add) >= 1 and ([.processes[] | .counters[\"ingress.telemetrySent\"] + .counters[\"ingress.telemetryCoalesced\"]] | add) >= (.rateLimitPressure.buckets.gmail_oauth_callback | .blocked + .contention_fallback)" "$T/snap.json"'

stop_relgated
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'
finish
