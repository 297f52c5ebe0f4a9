#!/bin/bash
# chat_tools.sh - the agent loop, read by the real client (npm ai@5:
# DefaultChatTransport + readUIMessageStream).  relmock plays the model
# (its "relmock-tool:" directive makes it call a tool) and the tools'
# upstreams (Serper, eBay):
# - a chat whose model calls search_web: the tool chunks, the result fed
#   back to the model (its answer echoes it), the client's tool part in
#   state output-available, two steps;
# - the same question again: from the tool cache (no upstream call);
# - the tool's upstream failing for good: its attempts, a dead letter,
#   data-tool-backpressure dead_letter, the chat still finishes;
# - a queue of one with concurrent chats: queue_saturated for the one
#   that finds it full while the first completes;
# - kill -9 of every tool-worker mid-job: the job is queued again and the
#   chat gets its result; nothing is left in the queue.
export SERPER_API_KEY=relmock-serper-key EBAY_OAUTH_TOKEN="Bearer relmock-ebay-token"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/chatlib.sh"
unset RELGATE_TOOLS # the tools of this script's config

params='"parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}'
tool() { # tool NAME PATH CIRCUIT QMAX RUNMAX: a Serper-style tool on relmock
	printf '{"name": "%s", "description": "Search %s", %s, "qos": "interactive",
	  "upstream": {"method": "POST", "url": "%s/serper/%s", "headers": {"X-API-KEY": "$SERPER_API_KEY"},
	               "body": {"q": "{{query}}", "num": 3}},
	  "timeout_ms": 8000, "retries": 0, "circuit": "%s", "bulkhead": "%s",
	  "cache": {"namespace": "%s", "version": 1, "ttl_ms": 300000}, "queue_max": %s, "running_max": %s}' \
		"$1" "$1" "$params" "$M" "$2" "$3" "$3" "$1" "$4" "$5"
}
write_config "$T/relgate.json" "$CHAT_CONF,
  \"FF_ADMISSION_ENFORCE\": false, \"FF_PROVIDER_FAILOVER_ENABLED\": false,
  \"CHAT_PROVIDER_PRIMARY_RETRIES\": 0,
  \"chat\": { \"tool_result_max_bytes\": 1024 },
  \"TOOL_JOB_MAX_ATTEMPTS\": 2, \"TOOL_JOB_RETRY_BASE_MS\": 100, \"TOOL_JOB_POLL_MS\": 100,
  \"tools\": [ $(tool search_web search serper_search 50 4),
    $(tool search_slow shopping global_search 1 1),
    {\"name\": \"search_products\", \"description\": \"Search products\", $params,
     \"upstream\": {\"method\": \"GET\", \"url\": \"$M/ebay/buy/browse/v1/item_summary/search\",
                  \"headers\": {\"Authorization\": \"\$EBAY_OAUTH_TOKEN\"}, \"query\": {\"q\": \"{{query}}\", \"limit\": 2}},
     \"timeout_ms\": 8000, \"retries\": 0, \"circuit\": \"ebay_search\", \"bulkhead\": \"ebay_search\",
     \"cache\": {\"namespace\": \"search_products\", \"version\": 1, \"ttl_ms\": 300000}} ]"
start_relgated "$T/relgate.json"
check "relgated up" 'wait_for 15 "$all_ready"'
TOK=$(token --alg HS256 --secret "$SECRET" --sub tools-user)
client() { timeout 60 node "$NODE_DIR/chat_client.mjs" "$(url)" "$TOK" "$@"; }
serper() { curl -s "$M/_relmock/serper/stats" | jq -r ".$1"; }
ebay() { curl -s "$M/_relmock/ebay/stats" | jq -r ".$1"; }
total() { snap | jq -r ".totals[\"$1\"] // 0"; }
# part JSON TOOL: the client's tool part of TOOL
part() { jq -c "[.parts[] | select(.type == \"tool-$2\")][0]" "$1"; }

# --- a tool call, its result fed back ---------------------------------------------
# (the model says something first, then calls the tool)
circ() { snap | jq -c '.circuits.openrouter_chat_primary.counters | {successes, failures, neutrals}'; }
circ >"$T/circ0.json"
client 'Find cats.
relmock-tool: search_web {"query":"cats"}
relmock: tokens=3 tool_text=1' >"$T/a.json"; rc=$?
part "$T/a.json" search_web | sed 's/^/  /' | cut -c1-200
check "the client read the chat to its end" '[ "$rc" = 0 ] && jq -e ".error == null" "$T/a.json"'
check "its tool part: output-available (the final output, not a preliminary one), the model's input, relmock's result" 'jq -e "[.parts[] | select(.type == \"tool-search_web\")] | length == 1 and .[0].state == \"output-available\" and .[0].input == {query: \"cats\"} and .[0].output.organic[0].title == \"Result 1 for cats\" and (.[0].preliminary // false) == false" "$T/a.json"'
check "the result went back to the model: its answer echoes it (after what it said first)" 'jq -e ".text | startswith(\"Let me look. tool result: {\\\"searchParameters\\\"\") and endswith(\"w0 w1 w2 \")" "$T/a.json"'
check "data-provider-route: primary, attempt 1" 'jq -e "[.parts[] | select(.type == \"data-provider-route\")][0].data | .route == \"primary\" and .attempt == 1" "$T/a.json"'
circ >"$T/circ1.json"
check "the primary's circuit: both model calls recorded as successes (the one with tool calls too)" 'jq -se ".[1].successes - .[0].successes == 2 and .[1].neutrals == .[0].neutrals and .[1].failures == .[0].failures" "$T/circ0.json" "$T/circ1.json"'
check "two steps: the tool call, then the answer" 'jq -e "[.parts[] | select(.type == \"step-start\")] | length == 2" "$T/a.json"'
check "one call to the search upstream" '[ "$(serper search)" = 1 ]'
curl -s "$M/_relmock/chat/requests" >"$T/reqs.json"
check "relmock: the first call offered the tools, the second carried the result" 'jq -e ".[-2].toolsOffered == 3 and (.[-2].toolCalls | length) == 1 and .[-1].toolResult == true" "$T/reqs.json"'
check "the second call's messages: the assistant's text and call, and the tool message" 'jq -e ".[-1].messages[-2].content == \"Let me look. \" and .[-1].messages[-2].tool_calls[0].function.name == \"search_web\" and .[-1].messages[-1].role == \"tool\" and (.[-1].messages[-1].tool_call_id == .[-1].messages[-2].tool_calls[0].id)" "$T/reqs.json"'

# --- the same question: from the cache ------------------------------------------------
client 'Find cats again.
relmock-tool: search_web {"query":"cats"}' >"$T/b.json"
check "the same call again: output-available, the same result" 'jq -e "[.parts[] | select(.type == \"tool-search_web\")][0] | .state == \"output-available\" and .output.organic[0].title == \"Result 1 for cats\"" "$T/b.json"'
check "data-provider-route of a chat whose first output is a tool call: attempt 1" 'jq -e "[.parts[] | select(.type == \"data-provider-route\")][0].data.attempt == 1" "$T/b.json"'
check "no second call to the upstream (relmock's counter)" '[ "$(serper search)" = 1 ]'
check "provider.toolCacheHits 1, toolJobsQueued 1" '[ "$(total provider.toolCacheHits)" = 1 ] && [ "$(total provider.toolJobsQueued)" = 1 ]'
snap | jq -c '.tools.search_web' | sed 's/^/  /'
check "relstat -j tools.search_web: 2 calls, 1 hit, 1 miss, 1 job done, 1 result cached, nothing queued" 'snap | jq -e ".tools.search_web | .calls == 2 and .cacheHits == 1 and .cacheMisses == 1 and .jobsQueued == 1 and .jobsDone == 1 and .cacheWrites == 1 and .results == 2 and .queued == 0 and .running == 0"'

# --- an upstream that keeps its body open after [DONE] (45 s: past the
# stream's 30 s idle bound): the tools run after a short grace, and the
# call is recorded neither way (a cancel), not as the failure of a timeout
circ >"$T/circ2.json"
client 'Find birds.
relmock-tool: search_web {"query":"birds"}
relmock: tokens=2 end_ms=45000' >"$T/h.json"; rc=$?
check "body held open after [DONE]: the chat finished with the tool's result" '[ "$rc" = 0 ] && jq -e ".error == null and ([.parts[] | select(.type == \"tool-search_web\")][0].state == \"output-available\") and (.text | endswith(\"w0 w1 \"))" "$T/h.json"'
circ >"$T/circ3.json"
check "body held open: both calls cancelled once answered (neutral), no failure recorded" 'jq -se ".[1].neutrals - .[0].neutrals == 2 and .[1].failures == .[0].failures" "$T/circ2.json" "$T/circ3.json"'

# --- a result cut at chat.tool_result_max_bytes (1024) inside a character ----------------
# a query of 3-byte characters behind 0 to 2 ASCII ones: the first whose
# result (asked of relmock directly) has its 1024th byte inside one
cut_q=
for k in 0 1 2; do
	q="$(head -c "$k" /dev/zero | tr '\0' x)$(for _ in $(seq 160); do printf '\342\230\225'; done)"
	curl -s -H "X-API-KEY: $SERPER_API_KEY" -H 'Content-Type: application/json' \
		--data-binary "$(jq -cn --arg q "$q" '{q: $q, num: 3}')" "$M/serper/search" >"$T/u.body"
	head -c 1024 "$T/u.body" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1 || { cut_q=$q; break; }
done
check "a query whose result, cut at 1024 bytes, ends inside a character" '[ -n "$cut_q" ] && [ "$(wc -c <"$T/u.body")" -gt 1024 ]'
client "Find coffee.
relmock-tool: search_web $(jq -cn --arg q "$cut_q" '{query: $q}')" >"$T/u.json"; rc=$?
check "cut inside a character: the chat finished, no error" '[ "$rc" = 0 ] && jq -e ".error == null" "$T/u.json"'
check "its tool part: output-available, the result's first 1022-1023 bytes as text (cut between characters)" 'jq -e --rawfile b "$T/u.body" "[.parts[] | select(.type == \"tool-search_web\")][0] | .state == \"output-available\" and (.output | type == \"string\") and (.output as \$o | \$b | startswith(\$o)) and (.output | utf8bytelength | . >= 1022 and . < 1024)" "$T/u.json"'
curl -s "$M/_relmock/chat/requests" >"$T/reqs.json"
check "the model got the cut result as its tool message, and answered" 'jq -e ".[-1].messages[-1].role == \"tool\" and (.[-1].messages[-1].content | utf8bytelength) < 1024 and .[-1].toolResult == true" "$T/reqs.json" && jq -e ".text | startswith(\"tool result: {\\\"searchParameters\\\"\")" "$T/u.json"'

# --- the upstream failing for good: a dead letter ------------------------------------
curl -s -o /dev/null -X POST --data-binary "status=503" "$M/_relmock/faults/ebay"
client 'Find shoes.
relmock-tool: search_products {"query":"shoes"}' >"$T/c.json"; rc=$?
jq -c '.parts[] | select(.type | startswith("data-tool") or startswith("tool-"))' "$T/c.json" | sed 's/^/  /' | cut -c1-200
check "the chat still finished" '[ "$rc" = 0 ] && jq -e ".error == null" "$T/c.json"'
check "data-tool-backpressure: search_products, dead_letter" 'jq -e "[.parts[] | select(.type == \"data-tool-backpressure\")][0].data == {tool: \"search_products\", reason: \"dead_letter\"}" "$T/c.json"'
check "its tool part: output-error" 'jq -e "[.parts[] | select(.type == \"tool-search_products\")][0].state == \"output-error\"" "$T/c.json"'
check "the model got the non-fatal text" 'jq -e ".text | startswith(\"tool result: {\\\"error\\\":\\\"temporarily unavailable\\\"\")" "$T/c.json"'
check "TOOL_JOB_MAX_ATTEMPTS (2) calls to the upstream" '[ "$(ebay requests)" = 2 ]'
check "relstat -j tools.search_products: the dead letter counted, the gauge 1" 'wait_for 5 ".tools.search_products | .jobsDead == 1 and .jobsRetried == 1 and .deadLetters == 1"'
check "relctl jobs dead-letters: the job, its reason" '"$RELCTL" -c "$T/relgate.json" --json jobs dead-letters | jq -e "length == 1 and .[0].tool == \"search_products\" and (.[0].deadLetterReason | test(\"2 attempts failed; last: http 503\"))"'
# the same, read raw: the attempts as preliminary outputs before the end
curl -sN -m 30 -H "authorization: Bearer $TOK" -H 'content-type: application/json' \
	-d '{"threadId":"t","messages":[{"role":"user","content":"relmock-tool: search_products {\"query\":\"boots\"}"}]}' \
	"$(url)" >"$T/raw.sse"
grep -o '"type":"tool-output-[a-z]*".*' "$T/raw.sse" | sed 's/^/  /'
check "raw stream: attempt 1 running, retrying, attempt 2 running (preliminary), then the error" 'grep -o "\"output\":{[^}]*},\"preliminary\":true" "$T/raw.sse" | tr "\n" " " | grep -q "^\"output\":{\"status\":\"running\",\"attempt\":1},\"preliminary\":true \"output\":{\"status\":\"retrying\",\"attempt\":1},\"preliminary\":true \"output\":{\"status\":\"running\",\"attempt\":2},\"preliminary\":true $" && grep -q "\"type\":\"tool-output-error\"" "$T/raw.sse" && grep -q "^data: \[DONE\]" "$T/raw.sse"'
check "the client's part of the dead-letter chat: output-error after the preliminary outputs" 'jq -e "[.parts[] | select(.type == \"tool-search_products\")][0] | .state == \"output-error\" and (.preliminary // false) == false" "$T/c.json"'
curl -s -o /dev/null -X POST --data-binary "" "$M/_relmock/faults/ebay"

# --- a queue of one: queue_saturated -------------------------------------------------------
curl -s -o /dev/null -X POST --data-binary "latency_ms=3000" "$M/_relmock/faults/serper"
client 'one
relmock-tool: search_slow {"query":"q1"}' >"$T/q1.json" &
q1=$!
check "the first slow job running" 'wait_for 10 ".toolJobs.byStatus.running == 1"'
client 'two
relmock-tool: search_slow {"query":"q2"}' >"$T/q2.json" &
q2=$!
sleep 0.5
client 'three
relmock-tool: search_slow {"query":"q3"}' >"$T/q3.json" &
q3=$!
check "relstat -j toolClasses and tools: an interactive job of search_slow running, one waiting behind it (their ages)" 'wait_for 5 ".toolClasses.interactive.running == 1 and .toolClasses.interactive.queued == 1 and .toolClasses.interactive.oldestQueuedAgeMs > 0 and .toolClasses.interactive.oldestRunningAgeMs > 0 and .tools.search_slow.queued == 1 and .tools.search_slow.running == 1 and .tools.search_slow.oldestQueuedAgeMs > 0 and .tools.search_slow.oldestRunningAgeMs > .tools.search_slow.oldestQueuedAgeMs"'
wait $q1 $q2 $q3
for f in q1 q2 q3; do echo "  $f: $(jq -c '[.parts[] | select(.type == "tool-search_slow" or .type == "data-tool-backpressure") | .state // .data.reason]' "$T/$f.json")"; done
check "the first: output-available" 'jq -e "[.parts[] | select(.type == \"tool-search_slow\")][0].state == \"output-available\"" "$T/q1.json"'
check "the second waited in the queue: output-available" 'jq -e "[.parts[] | select(.type == \"tool-search_slow\")][0].state == \"output-available\"" "$T/q2.json"'
check "the third found the queue full: queue_saturated, output-error, the chat finished" 'jq -e "([.parts[] | select(.type == \"data-tool-backpressure\")][0].data.reason == \"queue_saturated\") and ([.parts[] | select(.type == \"tool-search_slow\")][0].state == \"output-error\") and .error == null" "$T/q3.json"'
check "provider.toolQueueSaturated 1; tools.search_slow.queueSaturated 1" '[ "$(total provider.toolQueueSaturated)" = 1 ] && snap | jq -e ".tools.search_slow.queueSaturated == 1"'

# --- kill -9 of the tool-workers mid-job --------------------------------------------------
before=$(serper requests)
client 'killed
relmock-tool: search_web {"query":"dogs"}' >"$T/k.json" &
k=$!
check "the job running" 'wait_for 10 ".toolJobs.byStatus.running == 1"'
workers=$(snap | jq -r '.processes[] | select(.role == "tool-worker") | .pid')
for p in $workers; do kill -9 "$p"; done
echo "  killed tool-workers: $(echo $workers)"
wait $k; rc=$?
check "the chat got its result all the same" '[ "$rc" = 0 ] && jq -e "[.parts[] | select(.type == \"tool-search_web\")][0] | .state == \"output-available\" and .output.organic[0].title == \"Result 1 for dogs\"" "$T/k.json"'
check "the upstream was called again for it" '[ "$(serper requests)" -ge $((before + 2)) ]'
check "toolWorker.jobsReleased: the job of the dead worker queued again" '[ "$(total toolWorker.jobsReleased)" -ge 1 ]'
check "nothing left in jobs but the two dead letters" 'snap | jq -e ".toolJobs.byStatus == {queued: 0, running: 0, dead: 2}"'

remember_pids
stop_relgated
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'
finish
