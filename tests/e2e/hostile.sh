#!/bin/bash
# hostile.sh - hostile and malformed HTTP, byte for byte, against a real
# relgated on loopback (docs/http.md):
#  - open files: started under a soft limit of 1024, the supervisor
#    raises it for the children, 3,000 idle connections are held while a
#    valid request is still answered, and one over http.max_connections
#    is answered 503 overloaded; under a hard limit too low, relgated -t
#    and the start say so in one line, each ingress lowers its connection
#    limit to fit (relstat shows it) and answers the excess 503;
#  - a client that half-closes after 20 pipelined requests gets all 20
#    answers (synchronous ones and ones answered after a store commit);
#  - HEAD answered like GET without the body; an absolute-form target;
#    X-Content-Type-Options: nosniff on answers and errors; 20,000 empty
#    lines before the request line are a 400.
. "$(dirname "$0")/lib.sh"
RAW=$top_builddir/tests/rawconn
command -v curl >/dev/null || { echo "curl is required"; exit 99; }
URL=http://127.0.0.1:$PORT
HEALTH=/api/chat/health

# start_limited ULIMIT_ARGS [VAR=VALUE...]: relgated with one ingress under
# the given open-files limits (its pid stays SV_PID through the execs)
start_limited() {
	local lim=$1; shift
	env RELGATE_INGRESS_COUNT=1 RELGATE_HTTP_HEADER_TIMEOUT_MS=60000 "$@" \
		bash -c "ulimit $lim && exec \"\$0\" -f -c \"\$1\"" \
		"$RELGATED" "$T/relgate.json" >>"$LOG" 2>&1 &
	SV_PID=$!
	# the port is ours (claimed): make sure our relgated serves it
	wait_listening 20 "$SV_PID" "$PORT" || fail "relgated on port $PORT: $WAIT_STATE"
}
ingress() { # ingress JQ: the JQ expression of the ingress process
	snap | jq -r ".processes[] | select(.role == \"ingress\") | $1"
}
open_is() { # open_is N: the ingress holds N client connections
	wait_for 30 "[.processes[] | select(.role == \"ingress\") | .counters[\"http.open\"]] | add == $1"
}
HOLDERS=
hold() { # hold N: N more idle connections, kept until drop_all
	local out=$T/hold.$RANDOM pid
	"$RAW" hold "$PORT" "$1" 120 >"$out" 2>&1 &
	pid=$!
	HOLDERS="$HOLDERS $pid"
	PIDS_SEEN="$PIDS_SEEN $pid"
	for _ in $(seq 600); do
		grep -q "^held $1\$" "$out" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$out"
	return 1
}
drop_all() {
	local p
	for p in $HOLDERS; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	HOLDERS=
}
raw() { # raw NAME [rawconn send args]: stdin byte for byte; NAME.out, NAME.head
	local name=$1; shift
	"$RAW" send "$PORT" "$@" >"$T/$name.out" 2>"$T/$name.err"
	sed -n '1,/^\r$/p' "$T/$name.out" | tr -d '\r' >"$T/$name.head"
}
raw_status() { head -n 1 "$T/$1.head" | awk '{print $2}'; }
raw_header() { grep -i "^$2:" "$T/$1.head" | head -n 1 | cut -d' ' -f2-; }
raw_body() { awk 'body { print } /^\r$/ { body = 1 }' "$T/$1.out"; }
# expect_raw_error NAME STATUS CODE: status, code header, JSON body, nosniff
expect_raw_error() {
	local name=$1 st=$2 code=$3
	if [ "$(raw_status "$name")" = "$st" ] &&
		[ "$(raw_header "$name" x-sendcat-error-code)" = "$code" ] &&
		[ "$(raw_header "$name" x-content-type-options)" = nosniff ] &&
		raw_body "$name" | jq -e --arg c "$code" '.error.code == $c' >/dev/null 2>&1; then
		ok "$name: $st $code"
	else
		fail "$name: want $st $code, got: $(head -c 300 "$T/$name.out")"
	fi
}
get_req() { printf 'GET %s HTTP/1.1\r\nHost: t\r\n\r\n' "$1"; }
pubsub() { # pubsub EMAIL HISTORY -> Pub/Sub push envelope
	local data
	data=$(printf '{"emailAddress":"%s","historyId":"%s"}' "$1" "$2" | base64 -w0 | tr -d '=')
	printf '{"message":{"data":"%s","messageId":"m-%s"},"subscription":"projects/p/subscriptions/s"}' "$data" "$2"
}
push_req() { # push_req HISTORY: a pipelinable Gmail push
	local body
	body=$(pubsub halfclose@example.com "$1")
	printf 'POST /api/gmail/push?token=push-token HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' "${#body}" "$body"
}

write_config "$T/relgate.json"

# --- a soft limit of 1024, raised by the supervisor ---------------------------
start_limited "-Sn 1024" RELGATE_HTTP_MAX_CONNECTIONS=3001 GMAIL_PUBSUB_VERIFY_TOKEN=push-token
check "relgated up under ulimit -Sn 1024" 'wait_for 15 "$all_ready"'
ING=$(ingress .pid)
nofile=$(awk '/^Max open files/ { print $4 }' "/proc/$ING/limits" 2>/dev/null)
if [ "${nofile:-0}" -ge 3257 ]; then ok "ingress open files limit raised to $nofile"; else fail "ingress open files limit is '$nofile', want >= 3257"; fi
check "relstat: ingress http.max_connections 3001" '[ "$(ingress ".counters[\"http.max_connections\"]")" = 3001 ]'

check "3,000 idle connections held" 'hold 3000'
check "the ingress accepted all 3,000" 'open_is 3000'
code=$(curl -s -m 10 -o "$T/health.body" -D "$T/health.head" -w '%{http_code}' "$URL$HEALTH")
if [ "$code" = 200 ] && jq -e '.status | type == "string"' "$T/health.body" >/dev/null 2>&1; then
	ok "3,000 idle connections open: GET $HEALTH answered 200"
else
	fail "3,000 idle connections open: GET $HEALTH: '$code'"
fi
check "nosniff on a 200" 'grep -qi "^x-content-type-options: nosniff" "$T/health.head"'
check "one more idle connection held" 'hold 1'
check "the ingress is at http.max_connections" 'open_is 3001'
get_req "$HEALTH" | raw excess
expect_raw_error excess 503 overloaded
check "the excess counted in relstat" '[ "$(ingress ".counters[\"http.over_max_connections\"]")" -ge 1 ]'
drop_all
check "the held connections are gone" 'open_is 0'

# --- half-close after pipelined requests --------------------------------------
for _ in $(seq 20); do get_req "$HEALTH"; done | raw halfclose_health -s
n=$(grep -ao 'HTTP/1.1 200 OK' "$T/halfclose_health.out" | wc -l)
if [ "$n" = 20 ]; then ok "half-close: 20 pipelined GETs, 20 answers"; else fail "half-close: 20 pipelined GETs, $n answers"; fi
for i in $(seq 20); do push_req "$((7000 + i))"; done | raw halfclose_push -s
n=$(grep -ao 'HTTP/1.1 200 OK' "$T/halfclose_push.out" | wc -l)
if [ "$n" = 20 ]; then ok "half-close: 20 pipelined Gmail pushes, 20 answers"; else fail "half-close: 20 pipelined Gmail pushes, $n answers"; fi

# --- HEAD, absolute form, errors ----------------------------------------------
printf 'HEAD %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' "$HEALTH" | raw head
printf 'GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' "$HEALTH" | raw get
hlen=$(raw_header head content-length)
glen=$(raw_header get content-length)
if [ "$(raw_status head)" = 200 ] && [ -n "$hlen" ] && [ "$hlen" = "$glen" ] && [ "$glen" -gt 0 ]; then
	ok "HEAD $HEALTH: 200, Content-Length $hlen as for GET"
else
	fail "HEAD $HEALTH: status '$(raw_status head)', Content-Length '$hlen' (GET: '$glen')"
fi
# the answer ends with its head: no body byte after the empty line
if [ -z "$(raw_body head)" ] && [ "$(tail -c 4 "$T/head.out" | od -An -c | tr -d ' ')" = '\r\n\r\n' ]; then
	ok "HEAD: no body after the head"
else
	fail "HEAD: a body follows the head: $(tail -c 100 "$T/head.out")"
fi
check "HEAD: nosniff" '[ "$(raw_header head x-content-type-options)" = nosniff ]'
printf 'GET http://127.0.0.1:%s%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$PORT" "$HEALTH" | raw absolute
if [ "$(raw_status absolute)" = 200 ] && raw_body absolute | jq -e '.status | type == "string"' >/dev/null 2>&1; then
	ok "absolute-form GET http://127.0.0.1:$PORT$HEALTH: 200 health"
else
	fail "absolute-form target: $(head -c 300 "$T/absolute.out")"
fi
printf 'GET /no/such/route HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' | raw notfound
expect_raw_error notfound 404 not_found
{ yes $'\r' | head -n 20000; get_req "$HEALTH"; } | raw crlf -s
expect_raw_error crlf 400 bad_request
check "relgated still serves" '[ "$(curl -s -m 5 -o /dev/null -w "%{http_code}" "$URL$HEALTH")" = 200 ]'
check "relgated stops" 'stop_relgated'

# --- a hard limit too low: said once, the limit fitted ----------------------
out=$( (ulimit -n 512 && "$RELGATED" -t -c "$T/relgate.json") 2>&1)
case $out in
*"warning: http.max_connections 16384 needs 16640 open files per ingress process, but the hard limit is 512 (ulimit -Hn): each ingress process will take at most 256 connections"*"is ok"*)
	ok "relgated -t under ulimit -Hn 512: one warning line, config ok" ;;
*) fail "relgated -t under ulimit -Hn 512: $out" ;;
esac
if [ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge 16640 ]; then
	check "relgated -t under ulimit -Hn $(ulimit -Hn): no warning" '[ -z "$("$RELGATED" -t -c "$T/relgate.json" 2>&1 >/dev/null)" ]'
fi
start_limited "-n 1024"
check "relgated up under ulimit -n 1024" 'wait_for 15 "$all_ready"'
check "the start says the limit is too low" 'grep -q "but the hard limit is 1024 (ulimit -Hn): each ingress process will take at most 768 connections" "$LOG"'
check "relstat: ingress http.max_connections lowered to 768" '[ "$(ingress ".counters[\"http.max_connections\"]")" = 768 ]'
check "768 idle connections held" 'hold 768'
check "the ingress accepted all 768" 'open_is 768'
get_req "$HEALTH" | raw excess2
expect_raw_error excess2 503 overloaded
drop_all
check "relgated stops" 'stop_relgated'
finish
