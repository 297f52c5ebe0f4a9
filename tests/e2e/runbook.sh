#!/bin/bash
# runbook.sh - the operator commands of docs/runbook.md against a running
# relgate: the snapshot (relstat -j), rate-limit pressure (relctl
# ratelimit summary|events|alerts), bulkhead in-flight leases with their
# owner process (bulkhead inflight --provider), circuit state after a
# primary that fails (circuit list), replay pressure (idempotency recent
# --scope), the tool cache (cache stats, cache clear --namespace: only
# that namespace's entries go), the tool queue (jobs stats, dead-letters,
# requeue), alerts list, reload, and drain (relgated stops; streams open
# then end with an error event).  Then every relctl/relstat command
# line of docs/runbook.md runs and exits 0 (the mutating ones last).
. "$(dirname "$0")/lib.sh"
RGTOOL=$top_builddir/tests/rgtool
command -v curl >/dev/null || { echo "curl is required"; exit 99; }
RUNBOOK=$top_srcdir/docs/runbook.md
[ -f "$RUNBOOK" ] || { echo "docs/runbook.md is missing"; exit 99; }

echo '{ "sentry_key": "runbook-key" }' >"$T/mock.json"
start_relmock --backend-secret backend-secret -c "$T/mock.json"
SECRET=runbook-secret-of-at-least-32-bytes-long
write_config "$T/relgate.json" "\"auth\": { \"jwt\": { \"secret\": \"$SECRET\" } },
  \"provider\": { \"primary\": { \"base_url\": \"$M/v1\" }, \"secondary\": { \"base_url\": \"$M/secondary/v1\" } },
  \"backend\": { \"url\": \"$M/backend\", \"secret\": \"backend-secret\" },
  \"app_url\": \"https://app.example\",
  \"GMAIL_PUBSUB_VERIFY_TOKEN\": \"tok\", \"RATE_LIMIT_GMAIL_PUSH_MAX\": 100000,
  \"RATE_LIMIT_GMAIL_OAUTH_MAX\": 1, \"RATE_LIMIT_GMAIL_OAUTH_WINDOW_MS\": 3600000,
  \"RATE_LIMIT_ALERT_MIN_BLOCKED\": 5, \"SENTRY_DSN\": \"http://runbook-key@127.0.0.1:$MOCK/7\",
  \"FF_ADMISSION_ENFORCE\": false, \"FF_PROVIDER_FAILOVER_ENABLED\": false,
  \"CHAT_PROVIDER_PRIMARY_RETRIES\": 0, \"RATE_LIMIT_CHAT_STREAM_MAX\": 1000,
  \"CIRCUIT_OPENROUTER_PRIMARY_THRESHOLD\": 2, \"CIRCUIT_OPENROUTER_PRIMARY_COOLDOWN_MS\": 600000,
  \"TOOL_JOB_POLL_MS\": 60000,
  \"supervisor\": { \"drain_timeout_ms\": 8000 },
  \"monitor\": { \"alert_interval_ms\": 1000 }"
start_relgated "$T/relgate.json"
check "all roles ready" 'wait_for 15 "$all_ready"'
# the commands find this relgated through its segment, as an operator's
# find theirs through /etc/relgate/relgate.json
export RELGATE_SHM_NAME=$SHM
ctl() { "$RELCTL" "$@"; }
show() { sed 's/^/  | /' "$1"; }
check "relctl talks to the relgated this test started" '[ "$(ctl --json bulkhead inflight | jq length)" -gt 0 ] && [ "$(snap | jq .header.supervisorPid)" = "$SV_PID" ]'

# --- snapshot ---------------------------------------------------------------
"$RELSTAT" -j >"$T/snap.json"
check "relstat -j: every section of the snapshot" 'jq -e '\''["config","processes","rateLimitPressure","circuits","bulkheads","replayProtection","toolCache","toolJobs","toolQueueAlerts","chatAdmission","regionTopology"] - keys == []'\'' "$T/snap.json"'

# --- A) rate-limit pressure -------------------------------------------------
CB="http://127.0.0.1:$PORT/api/gmail/auth/callback?code=x"
a=(); for i in $(seq 12); do a+=(-o /dev/null "$CB"); done; curl -s "${a[@]}"
# the monitor writes a 5-second window's rows once it ended
check "ratelimit summary: the 11 refusals under http:gmail_oauth_callback:blocked:limit" 'for i in $(seq 100); do ctl --json ratelimit summary --window-min 15 >"$T/sum.json"; jq -e "[.summary[] | select(.key == \"http:gmail_oauth_callback:blocked:limit\") | .occurrences] == [11]" "$T/sum.json" >/dev/null && break; sleep 0.1; done; [ "$i" -lt 100 ]'
ctl ratelimit summary --window-min 15 >"$T/sum.txt"; show "$T/sum.txt"
check "ratelimit summary: a table with the key and 11 occurrences" 'grep -qE "^http:gmail_oauth_callback:blocked[^ ]* +11 " "$T/sum.txt"'
check "ratelimit events --limit 50: rows of that bucket" 'ctl --json ratelimit events --limit 50 | jq -e "[.[] | select(.bucket == \"gmail_oauth_callback\") | .count] | add == 11"'
check "ratelimit alerts: the bucket's alert (threshold 5)" 'for i in $(seq 100); do ctl --json ratelimit alerts --limit 20 | jq -e "any(.[]; .alertKey == \"ratelimit:http:gmail_oauth_callback\")" >/dev/null && break; sleep 0.1; done; [ "$i" -lt 100 ]'
ctl alerts list >"$T/al.txt"; show "$T/al.txt"
check "alerts list: the same alert, in a table" 'grep -q "alertKey=ratelimit:http:gmail_oauth_callback" "$T/al.txt"'

# --- C) bulkhead in flight: a stream held open --------------------------------
TOK=$(ctl -c "$T/relgate.json" jwt mint --sub runbook-user)
chat() { # chat NAME DIRECTIVE: POST /api/chat, answer in $T/b.NAME
	curl -sN -m 90 -o "$T/b.$1" -w '%{http_code}' -H "authorization: Bearer $TOK" -H 'content-type: application/json' \
		-d "{\"threadId\":\"t\",\"messages\":[{\"role\":\"user\",\"content\":\"relmock: $2\"}]}" \
		"http://127.0.0.1:$PORT/api/chat"
}
# (a minute long: it is still open when relctl drain ends it)
chat slow "tokens=300 token_ms=200" >"$T/slow.code" &
SLOW=$!
check "the slow chat holds a lease of openrouter_chat_primary" 'wait_for 10 ".bulkheads.openrouter_chat_primary.inFlight == 1"'
ctl bulkhead inflight --provider openrouter_chat_primary >"$T/bh.txt"; show "$T/bh.txt"
ctl --json bulkhead inflight --provider openrouter_chat_primary >"$T/bh.json"
ppids=$(snap | jq -c '[.processes[] | select(.role == "provider") | .pid]')
check "bulkhead inflight --provider: 1 in flight, its lease owned by a provider process" 'jq -e --argjson p "$ppids" ".inFlight == 1 and (.leases | length) == 1 and (.leases[0].pid as \$x | \$p | index(\$x)) != null and (.leases[0].process | test(\"^provider\\\\.[0-9]+$\"))" "$T/bh.json"'
check "bulkhead inflight --provider: the table says so" 'grep -q "^openrouter_chat_primary: 1 in flight of " "$T/bh.txt" && grep -qE "^[0-9]+ +[0-9]+ +provider\.[0-9]+ " "$T/bh.txt"'
ctl bulkhead inflight >"$T/bhs.txt"; show "$T/bhs.txt"
check "bulkhead inflight: every bulkhead, the primary with 1" 'grep -qE "^openrouter_chat_primary +1 " "$T/bhs.txt" && grep -q "^tool_job " "$T/bhs.txt"'
check "bulkhead inflight --provider nope: exit 2, the names listed" 'ctl bulkhead inflight --provider nope 2>"$T/e"; [ $? -eq 2 ] && grep -q "no bulkhead \"nope\"; bulkheads:.* openrouter_chat_secondary" "$T/e"'

# --- B) circuit opens: the primary answers 503 --------------------------------
curl -s -o /dev/null -d '{"faults":["status=503","status=503"]}' "$M/_relmock/chat/arm"
check "two chats fail on the primary (503 before the stream): 5xx, no failover" '[[ "$(chat f1 "tokens=2")" == 5?? ]] && [[ "$(chat f2 "tokens=2")" == 5?? ]]'
ctl circuit list >"$T/cb.txt"; show "$T/cb.txt"
check "circuit list: openrouter_chat_primary open, threshold 2" 'grep -qE "^openrouter_chat_primary +open +[0-9]+ +2 +600000ms " "$T/cb.txt"'
check "circuit list --json: open, opens 1, the others closed" 'ctl --json circuit list | jq -e "(.[] | select(.circuit == \"openrouter_chat_primary\") | .state == \"open\" and .counters.opens == 1) and ([.[] | select(.circuit != \"openrouter_chat_primary\") | .state] | all(. == \"closed\"))"'
check "circuit list --limit 2: two rows" '[ "$(ctl --json circuit list --limit 2 | jq length)" -eq 2 ]'

# --- D) replay pressure: the same push twice ----------------------------------
push() {
	local data
	data=$(printf '{"emailAddress":"ops@example.com","historyId":"%s"}' "$1" | base64 -w0)
	curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
		-d "{\"message\":{\"data\":\"$data\"}}" "http://127.0.0.1:$PORT/api/gmail/push?token=tok"
}
check "a push, then the same push again: both 200" '[ "$(push 4711)" = 200 ] && [ "$(push 4711)" = 200 ]'
ctl idempotency recent --scope gmail_push_history --limit 50 >"$T/idem.txt"; show "$T/idem.txt"
check "idempotency recent --scope gmail_push_history: the key with hitCount 2" 'grep -q "hitCount=2" "$T/idem.txt" && ctl --json idempotency recent --scope gmail_push_history | jq -e "length == 1 and .[0].hitCount == 2"'

# --- E) tool cache --------------------------------------------------------------
"$RGTOOL" cache-put "$T/state" search_web_v1 search_web 5 600000 &&
	"$RGTOOL" cache-put "$T/state" search_products_v1 search_products 3 600000 &&
	"$RGTOOL" cache-put "$T/state" search_web_v10 search_web 2 600000
ctl cache stats >"$T/cs.txt"; show "$T/cs.txt"
check "cache stats: entries per namespace" 'grep -qE "^search_web_v1 +5 " "$T/cs.txt" && grep -qE "^search_products_v1 +3 " "$T/cs.txt" && grep -q "^3 namespaces, 10 live entries" "$T/cs.txt"'
check "cache stats --json --namespace: one namespace, bytes counted" 'ctl --json cache stats --namespace search_products_v1 | jq -e ".byNamespace | keys == [\"search_products_v1\"] and .search_products_v1.entries == 3 and .search_products_v1.bytes > 3 * 64"'
check "relstat -j toolCache.byNamespace: the same entries" 'wait_for 5 ".toolCache.byNamespace.search_web_v1.entries == 5 and .toolCache.byNamespace.search_products_v1.entries == 3"'
ctl cache clear --namespace search_web_v1 >"$T/cc.txt"; show "$T/cc.txt"
check "cache clear --namespace search_web_v1: says 5 entries removed" 'grep -qx "cache namespace search_web_v1 cleared: 5 entries removed" "$T/cc.txt"'
check "after the clear: search_web_v1 gone, search_web_v10 and products kept" 'ctl --json cache stats | jq -e ".byNamespace | has(\"search_web_v1\") == false and .search_web_v10.entries == 2 and .search_products_v1.entries == 3"'
check "cache clear again: 0 removed, exit 0" '[ "$(ctl --json cache clear --namespace search_web_v1 | jq .removed)" = 0 ]'
check "cache clear without --namespace, or a bad one: exit 2" 'ctl cache clear 2>/dev/null; a=$?; ctl cache clear --namespace "a|b" 2>/dev/null; b=$?; [ $a -eq 2 ] && [ $b -eq 2 ]'

# --- F) tool queue ---------------------------------------------------------------
# (the tool-workers here look for queued jobs once a minute, TOOL_JOB_POLL_MS,
# and no chat wakes them: the jobs put below stay as they are put)
"$RGTOOL" jobs-put "$T/state" search_web 5 2
ctl jobs stats >"$T/js.txt"; show "$T/js.txt"
check "jobs stats: 3 queued, 2 dead, per tool and class" 'grep -q "^queued 3  running 0  dead 2  oldest queued [0-9.]*s  oldest running -" "$T/js.txt" && grep -qE "^search_web +3 +0 +2$" "$T/js.txt" && grep -qE "^interactive +3 +0$" "$T/js.txt"'
check "relstat -j toolJobs: the same figures, pressure against TOOL_JOB_QMAX_WEB" 'wait_for 5 ".toolJobs.byStatus == {\"queued\":3,\"running\":0,\"dead\":2} and .toolJobs.pressureByTool.search_web.queueMax == 200 and .toolJobs.pressureByTool.search_web.queued == 3 and (.toolJobs.recentDeadLetters | length) == 2 and .toolJobs.oldestQueuedAgeMs >= 0"'
ctl jobs dead-letters >"$T/jd.txt"; show "$T/jd.txt"
dead_id=$(ctl --json jobs dead-letters | jq -r '.[0].id')
check "jobs dead-letters: two rows with their reason" '[ "$(grep -c "deadLetterReason=1 attempt failed; last: rgtool: refused$" "$T/jd.txt")" -eq 2 ]'
ctl jobs requeue "$dead_id" >"$T/jr.txt"; show "$T/jr.txt"
check "jobs requeue ID: says so; 4 queued, 1 dead" 'grep -qx "requeued tool job $dead_id (attempts start again)" "$T/jr.txt" && ctl --json jobs stats | jq -e ".byStatus == {\"queued\":4,\"running\":0,\"dead\":1}"'
check "jobs requeue of one that is not a dead letter: exit 1" 'ctl jobs requeue "$dead_id" 2>/dev/null; [ $? -eq 1 ]'
dead2=$(ctl --json jobs dead-letters | jq -r '.[0].id')
check "jobs requeue --json: what it did as JSON" 'ctl --json jobs requeue "$dead2" | jq -e ".requeued == \"$dead2\"" && ctl jobs requeue "$dead2" 2>/dev/null; [ $? -eq 1 ] && ctl jobs dead-letters | grep -q "^0 of 0 rows"'
"$RGTOOL" jobs-put "$T/state" search_web 2 1 5 # 2 more (other ids), 1 a dead letter

# --- the snapshot after all that: every section with live values ---------------
"$RELSTAT" -j >"$T/live.json"
check "relstat -j after the load: processes ready, totals counted" 'jq -e "(.processes | length) == 8 and all(.processes[]; .state == \"ready\" and .pid > 0) and .totals[\"http.requests\"] > 0" "$T/live.json"'
check "relstat -j: routes and outcalls counted" 'jq -e ".routes[\"/api/gmail/auth/callback\"].requests == 12 and (.outcalls | tostring | test(\"openrouter_chat_primary\"))" "$T/live.json"'
check "relstat -j: rateLimitPressure by bucket, outcome and reason, and its alert" 'jq -e ".rateLimitPressure.byBucketOutcomeReason[\"http:gmail_oauth_callback:blocked:limit\"].occurrences == 11 and (.rateLimitPressure.recentAlerts | length) == 1" "$T/live.json"'
check "relstat -j: circuits and bulkheads as the commands showed them" 'jq -e ".circuits.openrouter_chat_primary.state == \"open\" and .bulkheads.openrouter_chat_primary.counters.acquired >= 1 and .bulkheads.backend.counters.acquired >= 1" "$T/live.json"'
check "relstat -j: replayProtection, toolCache, toolJobs, deliveryQueue, alerts" 'jq -e ".replayProtection.byScope.gmail_push_history.repeats == 1 and .toolCache.byNamespace.search_products_v1.entries == 3 and .toolJobs.byStatus.dead == 1 and (.toolJobs.recentDeadLetters | length) == 1 and .toolJobs.pressureByTool.search_web.queued == 6 and .deliveryQueue.queued == 0 and (.alerts.recent | length) >= 1 and (.toolQueueAlerts | has(\"recent\"))" "$T/live.json"'
acq1=$(jq .bulkheads.backend.counters.acquired "$T/live.json"); sleep 1.5
acq2=$(snap | jq .bulkheads.backend.counters.acquired)
check "idle delivery workers take no backend lease (leases only for due rows): $acq1 then $acq2, no bulkhead alert" '[ "$acq1" = "$acq2" ] && [ "$acq2" -le 2 ] && jq -e "([.alerts.recent[] | select(.kind == \"bulkhead\")] | length) == 0 and .bulkheads.backend.counters.saturated == 0" "$T/live.json"'
check "relstat -j: chatAdmission live (the chats counted, its reasons), regionTopology" 'jq -e ".chatAdmission.writerAlive == true and (.chatAdmission | has(\"topReasons\") and has(\"falsePositivePressure\")) and .regionTopology.admissionState == \"shm\"" "$T/live.json"'
check "relstat -j: the secrets as ***, nowhere in clear" 'jq -e ".config.auth.jwt.secret == \"***\" and .config.backend.secret == \"***\"" "$T/live.json" && ! grep -q -e "$SECRET" -e backend-secret -e runbook-key "$T/live.json"'

# --- reload: failover on, so chats go to the secondary past the open circuit --
sed -i 's/"FF_PROVIDER_FAILOVER_ENABLED": false/"FF_PROVIDER_FAILOVER_ENABLED": true/' "$T/relgate.json"
gen=$(snap | jq .header.configGeneration)
check "reload: says so, the generation moves on" 'ctl reload | grep -q "^reload requested (relgated pid $SV_PID)" && wait_for 10 ".header.configGeneration == $((gen + 1))"'
check "reload --json: what it did as JSON" 'ctl --json reload | jq -e ".reload == \"requested\" and .pid == $SV_PID" && wait_for 10 ".header.configGeneration == $((gen + 2))"'

# --- every command line of docs/runbook.md ---------------------------------------
# lines "$ relctl ..." / "$ relstat ..." in its code blocks; those that
# change something (cache clear, requeue, reload, drain) are run by the
# checks above and below
grep -E '^\$ (relctl|relstat) ' "$RUNBOOK" | sed 's/^\$ //' | sort -u >"$T/doc_cmds"
check "docs/runbook.md: at least 12 relctl/relstat command lines" '[ "$(wc -l <"$T/doc_cmds")" -ge 12 ]'
bad=0
while read -r line; do
	case "$line" in *"<"*|*" drain"*|*" reload"*|*" requeue "*|*"cache clear"*) continue ;; esac
	set -- $line
	cmd=$1; shift
	case $cmd in relctl) bin=$RELCTL ;; relstat) bin=$RELSTAT ;; esac
	if ! "$bin" "$@" >"$T/out" 2>&1; then
		echo "  docs/runbook.md: '$line' failed:"; show "$T/out"; bad=$((bad + 1))
	elif [ -n "${RUNBOOK_SHOW-}" ]; then # to refresh the outputs the doc shows
		echo "\$ $line"; head -n 70 "$T/out"
	fi
done <"$T/doc_cmds"
check "docs/runbook.md: every read-only command line runs (exit 0)" '[ "$bad" -eq 0 ]'
for c in "relctl drain" "relctl reload" "relctl cache clear --namespace"; do
	check "docs/runbook.md shows '$c'" 'grep -q "^\$ $c" "$RUNBOOK"'
done

# --- drain: relgated stops; streams open at that moment end with an error ----
chat last "tokens=300 token_ms=200" >"$T/last.code" &
LAST=$!
check "two streams open before the drain (one on each route)" 'wait_for 10 ".bulkheads.openrouter_chat_secondary.inFlight == 1 and .bulkheads.openrouter_chat_primary.inFlight == 1"'
ctl drain >"$T/drain.txt" 2>&1; drc=$?; show "$T/drain.txt"
check "drain: exit 0, what it did, relgated stopped" '[ $drc -eq 0 ] && grep -q "^drain requested: relgated pid $SV_PID takes no new connections and stops; its processes have 8000 ms" "$T/drain.txt" && grep -qE "^relgated pid $SV_PID stopped after [0-9]+ ms" "$T/drain.txt" && ! kill -0 "$SV_PID" 2>/dev/null'
wait "$SLOW" "$LAST" 2>/dev/null
for n in slow last; do echo "  $n: HTTP $(cat "$T/$n.code"), last events:"; tail -n 4 "$T/b.$n" | sed 's/^/  | /'; done
# cut_ok NAME: the answer began 200 and ended with an error event
# upstream_unavailable, finish and [DONE]
cut_ok() {
	[ "$(cat "$T/$1.code")" = 200 ] &&
		grep -q '^data: {"type":"error","errorText":".*upstream_unavailable' "$T/b.$1" &&
		tail -n 4 "$T/b.$1" | grep -q '^data: {"type":"finish"' &&
		tail -n 2 "$T/b.$1" | grep -qx 'data: \[DONE\]'
}
check "both streams open at the drain (primary, secondary): 200, an error event upstream_unavailable, finish, [DONE]" 'cut_ok slow && cut_ok last'
check "after the drain: relctl says relgated is not running (exit 2)" 'ctl circuit list 2>"$T/e"; [ $? -eq 2 ] && grep -q "is relgated running" "$T/e"'
SV_PID=
finish
