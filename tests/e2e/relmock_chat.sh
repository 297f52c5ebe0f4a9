#!/bin/bash
# relmock_chat.sh - relmock's OpenAI-compatible chat endpoint alone (no
# relgated), with curl -N and jq: the chunk format and the assembled text,
# the options (header, "relmock:" directive, config, defaults), stream:false,
# faults before the stream (402/429/503 with Retry-After), a mid-stream drop
# of a timed stream, stall, a client that leaves, the armed fault list,
# records and counters; then --workers 2 (both processes answer, the
# config's "chat" section, a clean stop); and bench/sseload's reading of
# these streams.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "curl is required"; exit 99; }
[ -x "$RELMOCK" ] || { echo "build $RELMOCK first"; exit 99; }
LOG=$T/relmock.log # shown by lib.sh's cleanup on failure

# start_mock [ARGS...]: relmock on claimed ports, confirmed to be the
# process that listens there (lib.sh); sets SV_PID, U (empty: not started)
start_mock() {
	U=
	start_relmock "$@" || return 1
	U=$M
	SV_PID=$MOCK_PID
}

# stop_relmock: SIGTERM, bounded wait; sets RC
stop_relmock() {
	kill -TERM "$SV_PID"
	for _ in $(seq 100); do kill -0 "$SV_PID" 2>/dev/null || break; sleep 0.05; done
	if kill -0 "$SV_PID" 2>/dev/null; then RC=timeout; else wait "$SV_PID"; RC=$?; fi
	SV_PID=
}

# body CONTENT [STREAM]: a chat request whose only message is CONTENT
body() {
	jq -cn --arg c "$1" --argjson s "${2:-true}" \
		'{model: "relmock/test-1", messages: [{role: "system", content: "be brief"},
		  {role: "user", content: $c}], stream: $s}'
}
# chat BODY [curl args...]: POST to /v1/chat/completions, the SSE on stdout
chat() {
	local b=$1; shift
	curl -sN -m 10 -H 'Content-Type: application/json' "$@" \
		--data-binary "$b" "$U/v1/chat/completions"
}
# text N: the documented content of N tokens ("w0 w1 ... w<N-1> ")
text() { jq -rn --argjson n "$1" '[range($n)] | map("w\(.) ") | add // ""'; }
# sse_ok SSE: nothing but "data: ..." lines, each followed by a blank line
sse_ok() { awk 'NR % 2 == 1 && substr($0, 1, 6) != "data: " { bad = 1 }
	NR % 2 == 0 && $0 != "" { bad = 1 } END { exit bad || NR < 2 }' <<<"$1"; }
# events SSE: the data payloads, one per line
events() { sed -n 's/^data: //p' <<<"$1"; }
# whole_events FILE: events complete with their blank line in FILE
whole_events() { awk 'prev ~ /^data: / && $0 == "" { n++ } { prev = $0 }
	END { print n + 0 }' "$1"; }
records() { curl -s -m 5 "$U/_relmock/chat/requests"; }
stats() { curl -s -m 5 "$U/_relmock/chat/stats"; }
# settle JQ: poll the chat stats until JQ holds (bounded, 5 s)
settle() {
	for _ in $(seq 100); do
		jq -e "$1" >/dev/null 2>&1 <<<"$(stats)" && return 0
		sleep 0.05
	done
	return 1
}

start_mock -v
check "relmock answers /_relmock/health" 'test -n "$U"'
[ -n "$U" ] || { finish; exit 1; }

# --- the chunk format -----------------------------------------------------
sse=$(chat "$(body 'hello
relmock: tokens=5')")
ev=$(events "$sse")
check "every line is 'data: ...' then a blank line" 'sse_ok "$sse"'
check "the last event is [DONE]" 'test "$(tail -n1 <<<"$ev")" = "[DONE]"'
chunks=$(sed '$d' <<<"$ev")
check "every other event is a JSON chunk" 'jq -se '\''length == 6 and
	all(.[]; .object == "chat.completion.chunk" and .model == "relmock/test-1" and
	    (.id | startswith("chatcmpl-")) and (.created | type == "number") and
	    (.choices | length == 1) and .choices[0].index == 0)'\'' <<<"$chunks"'
check "one id for the whole stream" 'jq -se '\''[.[].id] | unique | length == 1'\'' <<<"$chunks"'
check "the role comes with the first token" 'jq -se '\''.[0].choices[0] ==
	{index: 0, delta: {role: "assistant", content: "w0 "}, finish_reason: null}'\'' <<<"$chunks"'
check "then content-only deltas" 'jq -se '\''.[1:5] | all(.[]; .choices[0].delta |
	keys == ["content"])'\'' <<<"$chunks"'
check "a final chunk: empty delta, finish_reason stop" 'jq -se '\''.[-1].choices[0] ==
	{index: 0, delta: {}, finish_reason: "stop"}'\'' <<<"$chunks"'
got=$(jq -sj '[.[].choices[0].delta.content // empty] | add' <<<"$chunks")
check "assembled content is the text of 5 tokens ('$got')" 'test "$got" = "$(text 5)"'
id=$(jq -sr '.[0].id' <<<"$chunks")
check "the record of that id has the same text" 'jq -e --arg t "$(text 5)" '\''.text == $t and .tokensSent == 5 and .outcome == "completed"'\'' <<<"$(curl -s "$U/_relmock/chat/requests/$id")"'

# role chunk alone, through the header; the directive wins over the header
sse=$(chat "$(body 'relmock: role_chunk=1')" -H 'x-relmock-chat: tokens=3;role_chunk=0')
chunks=$(events "$sse" | sed '$d')
check "role_chunk=1: a role-only chunk first, then 3 tokens" 'jq -se '\''length == 5 and
	.[0].choices[0].delta == {role: "assistant", content: ""} and
	([.[1:4][].choices[0].delta] == [{content: "w0 "}, {content: "w1 "}, {content: "w2 "}])'\'' <<<"$chunks"'
# a longer stream (bursts of tokens without token_ms), with usage
sse=$(chat "$(jq -c '.stream_options = {include_usage: true}' <<<"$(body 'relmock: tokens=300')")")
chunks=$(events "$sse" | sed '$d')
got=$(jq -sj '[.[].choices[0].delta.content // empty] | add' <<<"$chunks")
check "300 tokens assemble to the documented text" 'test "$got" = "$(text 300)"'
check "include_usage: a usage chunk without choices before [DONE]" 'jq -se '\''.[-1] |
	.choices == [] and .usage.completion_tokens == 300 and .usage.prompt_tokens == 4'\'' <<<"$chunks"'

# --- stream:false -----------------------------------------------------------
out=$(curl -s -m 10 --data-binary "$(body 'relmock: tokens=4' false)" "$U/secondary/v1/chat/completions")
check "stream:false: one chat.completion with the whole text" 'jq -e --arg t "$(text 4)" '\''
	.object == "chat.completion" and .model == "relmock/test-1" and
	.choices[0].message == {role: "assistant", content: $t} and
	.choices[0].finish_reason == "stop" and .usage.completion_tokens == 4'\'' <<<"$out"'

# --- options in the record; delays ------------------------------------------
chat "$(body 'relmock: tokens=3 token_ms=20 first_ms=150')" >/dev/null
check "record: path, model, messages, stream, options" 'jq -e '\''.[-1] |
	.path == "/v1/chat/completions" and .model == "relmock/test-1" and
	.messages[1].role == "user" and .stream == true and
	.options == {tokens: 3, token_ms: 20, first_ms: 150, role_chunk: 0, tool_text: 0, end_ms: 0} and
	.outcome == "completed" and .tokensSent == 3'\'' <<<"$(records)"'
check "stream:false recorded with its path" 'jq -e '\''[.[] | select(.stream == false)][0] |
	.path == "/secondary/v1/chat/completions" and .options.tokens == 4'\'' <<<"$(records)"'
curl -s -d '{"tokens":2,"first_ms":50}' "$U/_relmock/chat/config" >/dev/null
sse=$(chat "$(body 'no directive')")
check "POST /_relmock/chat/config sets the defaults" 'jq -e '\''.[-1].options ==
	{tokens: 2, token_ms: 0, first_ms: 50, role_chunk: 0, tool_text: 0, end_ms: 0}'\'' <<<"$(records)"'
check "... and the stream follows them" 'test "$(events "$sse" | wc -l)" = 4'
check "GET /_relmock/chat/config" 'jq -e '\''.tokens == 2'\'' <<<"$(curl -s "$U/_relmock/chat/config")"'
curl -s -X POST "$U/_relmock/chat/config" >/dev/null
check "an empty POST restores the defaults (8 tokens)" 'jq -e '\''.tokens == 8'\'' <<<"$(curl -s "$U/_relmock/chat/config")"'

# --- refusals ------------------------------------------------------------------
out=$(chat "$(body 'relmock: tokens=ten')" -w '\n%{http_code}')
check "bad directive: 400 bad_relmock_options" 'test "$(tail -n1 <<<"$out")" = 400'
check "bad directive body names the option" 'jq -e '\''.error.code == "bad_relmock_options" and
	(.error.message | test("tokens"))'\'' <<<"$(head -n1 <<<"$out")"'
st=$(chat '{"model":"m"}' -o /dev/null -w '%{http_code}')
check "no messages: 400" 'test "$st" = 400'
st=$(chat "$(body x)" -o /dev/null -w '%{http_code}' -H 'x-relmock-chat: speed=9')
check "bad header options: 400" 'test "$st" = 400'
st=$(curl -s -o /dev/null -w '%{http_code}' -d '{}' "$U/v1/chat/other")
check "a path not ending in /chat/completions: 404" 'test "$st" = 404'
check "invalid requests recorded as invalid" 'jq -e '\''[.[] | select(.outcome == "invalid")] |
	length == 3 and all(.[]; .status == 400)'\'' <<<"$(records)"'

# --- faults before the stream ---------------------------------------------------
for s in 402 429 503; do
	hdrs=$(chat "$(body x)" -D - -o "$T/err.json" -H "x-relmock-fault: status=$s;retry_after=2")
	check "status=$s: answered $s" 'grep -q "^HTTP/1.1 $s " <<<"$hdrs"'
	check "status=$s: Retry-After: 2" 'grep -qi '\''^retry-after: 2'\'' <<<"$hdrs"'
	check "status=$s: a JSON error, not a stream" 'jq -e '\''.error.code == "relmock_fault"'\'' "$T/err.json"'
done
check "faulted requests recorded with their status" 'jq -e '\''[.[] | select(.outcome == "faulted") |
	.status] == [402, 429, 503]'\'' <<<"$(records)"'

# --- mid-stream drop of a timed stream ------------------------------------------------
chat "$(body 'relmock: tokens=20 token_ms=30')" -H 'x-relmock-fault: drop_after=600' >"$T/drop.sse"
rc=$?
check "drop_after=600: curl sees a cut stream (rc $rc)" 'test "$rc" = 56 -o "$rc" = 18'
check "drop_after=600: exactly 600 bytes arrived" 'test "$(wc -c <"$T/drop.sse")" = 600'
check "drop_after=600: no [DONE]" 'bash -c '\''! grep -q "\[DONE\]" "$1"'\'' _ "$T/drop.sse"'
full=$(whole_events "$T/drop.sse")
check "the record: dropped after the whole tokens that went out ($full)" 'jq -e --argjson n "$full" '\''.[-1] | .outcome == "dropped" and .tokensSent == $n and .bytesSent == 600'\'' <<<"$(records)"'
# a drop in a stream at the default pace
chat "$(body 'relmock: tokens=50')" -H 'x-relmock-fault: drop_after=1000' >"$T/drop2.sse"
check "drop_after=1000 without token_ms: 1000 bytes" 'test "$(wc -c <"$T/drop2.sse")" = 1000'

# --- stall, client gone --------------------------------------------------------------------
curl -sN -m 1 -H 'x-relmock-fault: stall' --data-binary "$(body x)" "$U/v1/chat/completions" >/dev/null
rc=$?
check "stall: curl -m 1 times out (rc $rc)" 'test "$rc" = 28'
curl -sN -m 1 --data-binary "$(body 'relmock: tokens=100 token_ms=200')" \
	"$U/v1/chat/completions" >"$T/gone.sse"
rc=$?
check "a slow stream: curl -m 1 leaves mid-stream (rc $rc)" 'test "$rc" = 28'
check "... after some tokens" 'grep -q '\''"content":"w0 "'\'' "$T/gone.sse"'
check "streams whose client left are freed (none open)" 'settle '\''.inFlight == 0 and .streamsOpen == 0'\'''
check "records: client gone after the stall and mid-stream" 'jq -e '\''[.[] | select(.outcome == "client gone")] |
	length == 2 and .[0].fault == "stall" and .[0].tokensSent == 0 and
	.[1].tokensSent > 0 and .[1].tokensSent < 100'\'' <<<"$(records)"'

# --- armed faults: the first attempts fail, the next succeeds --------------------------------
check "arm two faults" 'jq -e '\''.ok and (.armed | length == 2)'\'' <<<"$(curl -s \
	-d '\''{"faults":["status=503;retry_after=1","status=429"]}'\'' "$U/_relmock/chat/arm")"'
codes=
for _ in 1 2 3; do codes="$codes $(chat "$(body 'relmock: tokens=2')" -o /dev/null -w '%{http_code}')"; done
check "armed: 503 429 200 (got$codes)" 'test "$codes" = " 503 429 200"'
check "armed list consumed" 'jq -e '\''.armed == []'\'' <<<"$(curl -s "$U/_relmock/chat/arm")"'
st=$(curl -s -o /dev/null -w '%{http_code}' -d '{"faults":["bogus"]}' "$U/_relmock/chat/arm")
check "a bad armed spec: 400" 'test "$st" = 400'
curl -s -d '{"faults":["status=502"]}' "$U/_relmock/chat/arm" >/dev/null
st=$(chat "$(body x)" -o /dev/null -w '%{http_code}' -H 'x-relmock-fault: none')
check "a request's own fault wins over the armed one" 'test "$st" = 200'
st=$(chat "$(body x)" -o /dev/null -w '%{http_code}')
check "... which stays for the next request" 'test "$st" = 502'
curl -s -d 'status=503' "$U/_relmock/faults/chat" >/dev/null
st=$(chat "$(body x)" -o /dev/null -w '%{http_code}')
curl -s -X POST "$U/_relmock/faults/chat" >/dev/null
check "the endpoint's default fault applies to chat" 'test "$st" = 503'

# --- counters, reset ------------------------------------------------------------------------
check "chat counters" 'jq -e '\''.completed >= 8 and .clientGone == 2 and .dropped == 2 and
	.faulted == 7 and .invalid == 3 and .inFlight == 0 and .streamsOpen == 0'\'' <<<"$(stats)"'
check "fault counters of the chat endpoint" 'jq -e '\''.endpoints.chat |
	.drop == 2 and .stall == 1 and .status == 7'\'' <<<"$(curl -s "$U/_relmock/stats")"'
curl -s -X POST "$U/_relmock/reset" >/dev/null
check "reset clears chat records and counters" 'test "$(records)$(stats | jq -c '\''[.requests, .completed]'\'')" = "[][0,0]"'

# --- bench/sseload against relmock: its reading of real streams ------------------------------
SSELOAD=$top_builddir/bench/sseload
sl() { "$SSELOAD" -t 10 --json "$@" "$U/v1/chat/completions" 2>&1 | tail -n1; }
out=$(sl -c 4 -n 20 -b "$(body 'relmock: tokens=30')")
check "sseload: 20 streams, each ended with [DONE]" 'jq -e '\''.requests == 20 and
	.completed == 20 and .status["200"] == 20 and .firstEventMs.n == 20 and
	.resets == 0'\'' <<<"$out"'
check "relmock saw the same 20 streams complete" 'jq -e '\''.completed == 20'\'' <<<"$(stats)"'
out=$(sl -c 4 -n 8 -b "$(body 'relmock: tokens=30')" -H 'x-relmock-fault: drop_after=500')
check "sseload: mid-stream drops are resets, not completions" 'jq -e '\''.resets == 8 and
	.completed == 0 and .status["200"] == 8'\'' <<<"$out"'
out=$(sl -c 2 -n 6 -b "$(body x)" -H 'x-relmock-fault: status=503')
check "sseload: 503 answers end without the marker" 'jq -e '\''.noMarker == 6 and
	.status["503"] == 6'\'' <<<"$out"'
out=$(sl --hold -c 10 -p 2 -b "$(body 'relmock: tokens=3 token_ms=300')")
check "sseload --hold -p 2: 10 streams open at once, summed" 'jq -e '\''.processes == 2 and
	.peakOpen == 10 and .completed == 10'\'' <<<"$out"'
"$SSELOAD" -c 1 -n 1 http://192.0.2.1:80/ >/dev/null 2>&1
rc=$?
check "sseload refuses a non-loopback address (rc $rc)" 'test "$rc" = 2'
stop_relmock
check "SIGTERM: exit 0 (got $RC)" 'test "$RC" = 0'

# --- a config file with a "chat" section ------------------------------------------------------
echo '{"chat": {"tokens": -1}}' >"$T/bad.json"
"$RELMOCK" -l "127.0.0.1:$PORT" -c "$T/bad.json" >>"$LOG" 2>&1
rc=$?
check "a bad chat section: exit 1 (got $rc)" 'test "$rc" = 1'

# --- --workers 2 --------------------------------------------------------------------------------
echo '{"chat": {"tokens": 3, "role_chunk": true}}' >"$T/relmock.json"
start_mock --workers 2 -c "$T/relmock.json"
check "relmock --workers 2 answers" 'test -n "$U"'
[ -n "$U" ] || { finish; exit 1; }
workers=$(ps --ppid "$SV_PID" -o pid= | tr -d ' ' | sort | tr '\n' ' ')
PIDS_SEEN="$PIDS_SEEN $workers"
check "two worker processes ($workers)" 'test "$(wc -w <<<"$workers")" = 2'
# new connections spread over the workers: the pid is in each id
seen=
for _ in $(seq 40); do
	seen="$seen $(events "$(chat "$(body x)")" | head -n1 | jq -r '.id' | cut -d- -f3)"
	[ "$(tr ' ' '\n' <<<"$seen" | sort -u | grep -c .)" -ge 2 ] && break
done
seen=$(tr ' ' '\n' <<<"$seen" | sort -u | grep . | tr '\n' ' ')
check "both workers answered chat requests ($seen)" 'test "$seen" = "$workers"'
chunks=$(events "$(chat "$(body x)")" | sed '$d')
check "the config's chat section: 3 tokens after a role chunk" 'jq -se '\''length == 5 and
	.[0].choices[0].delta == {role: "assistant", content: ""}'\'' <<<"$chunks"'
stop_relmock
check "--workers: SIGTERM, exit 0 (got $RC)" 'test "$RC" = 0'
alive=
for p in $workers; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
check "--workers: no worker left (alive:$alive)" 'test -z "$alive"'
finish
