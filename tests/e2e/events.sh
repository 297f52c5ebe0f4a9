#!/bin/bash
# events.sh - rate-limit events from the ingress to the monitor to the
# LMDB table events: every refused request counted once (summary
# occurrences = the 429s sent), stored as one row per 5-second key with
# the rest counted as duplicates, the same figures in relctl ratelimit
# summary, relstat -j and GET /snapshot, a summary window that leaves
# older events out, and the monitor's sweep removing expired rows
# (monitor.events_ttl_ms, monitor.sweep_interval_ms; tool jobs, dead
# letters and cache rows past their TTLs too), and the reader slot
# of a process killed in a read transaction cleared by the same schedule.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "curl is required"; exit 99; }
command -v mdb_stat >/dev/null || { echo "mdb_stat is required (apt-get install lmdb-utils)"; exit 99; }

conf() { # conf EXTRA
	write_config "$T/relgate.json" "\"app_url\": \"https://app.example\",
  \"RATE_LIMIT_GMAIL_OAUTH_MAX\": 1, \"RATE_LIMIT_GMAIL_OAUTH_WINDOW_MS\": 3600000${1:+, $1}"
}
CB="http://127.0.0.1:$PORT/api/gmail/auth/callback?code=x"
# flood N: N requests from one curl process; prints the count of 429s
flood() {
	local args=() i
	for i in $(seq "$1"); do args+=(-o /dev/null -w '%{http_code}\n' "$CB"); done
	curl -s "${args[@]}" | grep -c '^429$'
}
KEY=http:gmail_oauth_callback:blocked
summary() { "$RELCTL" -n "$SHM" --json ratelimit summary "$@"; }
occ() { jq --arg k "$1" '[.summary[] | select(.key == $k) | .occurrences] | add // 0'; }
# rows_on_disk: entries of the table events as LMDB counts them
rows_on_disk() { mdb_stat -s events "$T/state" 2>/dev/null | awk '/Entries:/ { n = $2 } END { print n + 0 }'; }

conf '"monitor": { "events_ttl_ms": 3600000 }'
start_relgated "$T/relgate.json"
check "all roles ready" 'wait_for 15 "$all_ready"'

blocked=$(flood 60)
echo "  429s: $blocked of 60"
check "the flood was refused (one allowed by the limit)" '[ "$blocked" -ge 58 ]'
# the senders coalesce for 5 s, the monitor writes a window once it ended
check "the monitor stored them: occurrences = the 429s sent" 'for _ in $(seq 150); do [ "$(summary | occ "$KEY")" -eq "$blocked" ] && break; sleep 0.1; done; [ "$(summary | occ "$KEY")" -eq "$blocked" ]'
summary >"$T/sum.json"
"$RELCTL" -n "$SHM" ratelimit summary | sed 's/^/  | /'
check "and by reason: ...:blocked:limit the same" '[ "$(occ "$KEY:limit" <"$T/sum.json")" -eq "$blocked" ]'
rows=$(jq --arg k "$KEY" '.summary[] | select(.key == $k) | .events' "$T/sum.json")
dups=$(jq --arg k "$KEY" '.summary[] | select(.key == $k) | .duplicates' "$T/sum.json")
echo "  rows stored $rows, duplicates $dups"
check "deduplicated: a few rows (one per 5-second key and sender), the rest duplicates" '[ "$rows" -ge 1 ] && [ "$rows" -le 8 ] && [ "$((rows + dups))" -eq "$blocked" ]'
"$RELCTL" -n "$SHM" --json ratelimit events >"$T/ev.json"
check "relctl ratelimit events: the rows, with their fields and counts" 'jq -e --argjson n "$blocked" '\''([.[] | select(.bucket == "gmail_oauth_callback" and .outcome == "blocked")] | (map(.count) | add) == $n) and all(.[]; .source == "http" and .key == "127.0.0.1" and .path == "/api/gmail/auth/callback" and .method == "GET" and .reason == "limit" and .duplicates == .count - 1 and .expiresAt > .createdAt)'\'' "$T/ev.json"'
check "relstat -j rateLimitPressure.byBucketOutcomeReason: the same" 'snap | jq -e --arg k "$KEY" --argjson n "$blocked" '\''.rateLimitPressure.byBucketOutcomeReason[$k].occurrences == $n and .rateLimitPressure.windowMinutes == 60 and (.rateLimitPressure.recentEvents | length) >= 1'\'''
check "GET /snapshot: the same" 'curl -s "http://127.0.0.1:$ADMIN/snapshot" | jq -e --arg k "$KEY" --argjson n "$blocked" '\''.rateLimitPressure.byBucketOutcomeReason[$k].occurrences == $n'\'''
check "monitor counters: occurrences received, duplicates folded, rows stored" 'snap | jq -e --argjson n "$blocked" '\''.totals["monitor.eventOccurrences"] == $n and .totals["monitor.eventsStored"] + .totals["monitor.eventDuplicates"] >= $n and .totals["monitor.eventStoreFailures"] == 0'\'''

# --- the window: 1 minute leaves out what is older -----------------------
sleep 1
check "summary --window-min 1: still in (younger than a minute)" '[ "$(summary --window-min 1 | occ "$KEY")" -eq "$blocked" ]'
check "a window below 1 minute is refused in one line" '! "$RELCTL" -n "$SHM" ratelimit summary --window-min 0 2>"$T/err" && [ "$(wc -l <"$T/err")" -eq 1 ]'
remember_pids
stop_relgated
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'

# --- TTL and sweep: events kept 8 s from their window, swept every second --
# (a row is written when its 5-second window ended: it lives about 3 s;
# the tool-workers look for queued jobs once a minute and are woken by
# no chat here: the jobs put below stay as they are put)
rm -rf "$T/state"
conf '"monitor": { "events_ttl_ms": 8000, "sweep_interval_ms": 1000 },
  "TOOL_JOB_TTL_MS": 60000, "TOOL_JOB_DLQ_TTL_MS": 60000, "TOOL_JOB_POLL_MS": 60000'
start_relgated "$T/relgate.json"
check "restarted with an 8 s events TTL" 'wait_for 15 "$all_ready"'
before=$(rows_on_disk)
echo "  rows on disk before: $before"
blocked2=$(flood 20)
check "the new flood: stored (rows on disk grew)" 'for _ in $(seq 150); do [ "$(rows_on_disk)" -gt "$before" ] && break; sleep 0.1; done; [ "$(rows_on_disk)" -gt "$before" ]'
check "every row expired: none in the summary" 'for _ in $(seq 150); do [ "$(summary | occ "$KEY")" -eq 0 ] && break; sleep 0.1; done; [ "$(summary | occ "$KEY")" -eq 0 ]'
check "the sweep removed the expired rows from disk" 'for _ in $(seq 150); do [ "$(rows_on_disk)" -eq 0 ] && break; sleep 0.1; done; [ "$(rows_on_disk)" -eq 0 ]'
check "monitor.swept counts them" 'snap | jq -e '\''.totals["monitor.swept"] >= 1'\'''
echo "  second flood: $blocked2 refused; rows swept: $(snap | jq '.totals["monitor.swept"]')"

# --- the other tables: tool jobs not done TOOL_JOB_TTL_MS (1 min here)
# after they were queued become dead letters, dead letters past
# TOOL_JOB_DLQ_TTL_MS (1 min) go, cache rows past their TTL go --------
entries() { mdb_stat -s "$1" "$T/state" 2>/dev/null | awk '/Entries:/ { n = $2 } END { print n + 0 }'; }
"$top_builddir/tests/rgtool" jobs-put "$T/state" search_web 3 1 120000 && # made 2 min ago: 2 queued, 1 dead
	"$top_builddir/tests/rgtool" jobs-put "$T/state" search_web 2 0 &&     # fresh
	"$top_builddir/tests/rgtool" cache-put "$T/state" search_web_v1 search_web 4 1000
check "the sweep: the old dead letter removed, the 2 old jobs made dead letters (expired), the 2 fresh ones kept" 'for _ in $(seq 100); do [ "$(entries jobs)" -eq 5 ] && break; sleep 0.1; done; [ "$(entries jobs)" -eq 5 ] && [ "$(entries jobs_ready)" -eq 2 ] && "$RELCTL" -n "$SHM" --json jobs stats | jq -e ".byStatus == {\"queued\":2,\"running\":0,\"dead\":2}" && [ "$("$RELCTL" -n "$SHM" --json jobs dead-letters | jq "[.[] | select(.deadLetterReason | startswith(\"expired: \"))] | length")" -eq 2 ]'
check "the sweep removed the expired cache rows" 'for _ in $(seq 100); do [ "$(entries cache)" -eq 0 ] && break; sleep 0.1; done; [ "$(entries cache)" -eq 0 ]'
# the idempotency keys and the alerts: rows that expire in a second
for t in idem alerts; do
	before_t=$(entries "$t")
	"$top_builddir/tests/rgtool" put-expiring "$T/state" "$t" 5 1000
	check "$t: 5 rows put ($before_t before), swept once expired" '[ "$(entries "$t")" -eq $((before_t + 5)) ] && for _ in $(seq 100); do [ "$(entries "$t")" -eq "$before_t" ] && break; sleep 0.1; done; [ "$(entries "$t")" -eq "$before_t" ]'
done

# --- a reader killed with its transaction open: its slot is cleared ------
"$top_builddir/tests/rgtool" hold-reader "$T/state" >"$T/hold.out" 2>&1 &
hold=$!
for _ in $(seq 50); do grep -q '^holding' "$T/hold.out" && break; sleep 0.1; done
readers() { mdb_stat -r "$T/state" 2>/dev/null | awk '$1 ~ /^[0-9]+$/ { print $1 }'; }
check "the reader holds a slot" 'readers | grep -qx "$hold"'
kill -KILL "$hold"; wait "$hold" 2>/dev/null
check "the monitor's check (with the sweep) cleared it" 'for _ in $(seq 50); do readers | grep -qx "$hold" || break; sleep 0.1; done; ! readers | grep -qx "$hold"'
check "store.stale_readers counts it" 'snap | jq -e '\''.totals["store.stale_readers"] >= 1'\'''
remember_pids
stop_relgated
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'
finish
