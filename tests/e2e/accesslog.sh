#!/bin/bash
# accesslog.sh - log.access file: one logfmt line per request with its
# time, client address, method, path without the query, status, error
# code, bytes, duration and request id (the client's X-Request-Id when
# sane, else one made for it, distinct per request); nothing else of the
# request (no query, no header values); the counters agree with the
# file; after a rotation (rename, then reload as logrotate does) the lines
# go to the new file; log.access off by reload stops the lines.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "curl is required"; exit 99; }
L=$T/access.log
U=http://127.0.0.1

conf() { # conf MODE
	write_config "$T/relgate.json" "\"log\": { \"access\": \"$1\", \"access_file\": \"$L\" },
  \"auth\": { \"jwt\": { \"secret\": \"access-log-test-secret-0123456789abcdef\" } }"
}
# lines_at_least N [FILE]: the file has N lines within 5 s
lines_at_least() {
	local i f=${2:-$L}
	for i in $(seq 50); do
		[ -f "$f" ] && [ "$(wc -l <"$f")" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
field() { sed -n "$1p" "$L" | tr ' ' '\n' | sed -n "s/^$2=//p"; } # field LINE NAME

conf file
start_relgated "$T/relgate.json"
check "all roles ready" 'wait_for 15 "$all_ready"'
check "the access log file exists, mode 0640" '[ "$(stat -c %a "$L")" = 640 ]'

# Each ingress process writes its own lines; a request may land on either,
# so each line is awaited before the next request to keep the file's order.
curl -s -o /dev/null "$U:$PORT/api/chat"                                      # 1: 405
lines_at_least 1
curl -s -o /dev/null -H 'X-Request-Id: req-abc.1_X' "$U:$PORT/nothing?token=s3cr3t-query"   # 2: 404
lines_at_least 2
curl -s -o /dev/null -H 'Authorization: Bearer s3cr3t-bearer' -H 'Content-Type: application/json' \
	-d '{}' "$U:$PORT/api/chat"                                              # 3: 401
lines_at_least 3
curl -s -o /dev/null -H 'X-Request-Id: not ok!' "$U:$PORT/api/chat/health"    # 4: 200
check "four requests, four lines" 'lines_at_least 4 && [ "$(wc -l <"$L")" -eq 4 ]'
sed 's/^/  | /' "$L"
check "every line: the fields in order" '[ "$(grep -cE "^time=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z ip=127\.0\.0\.1 method=[A-Z]+ path=/[^ ]* status=[0-9]+ code=[a-z_-]+ bytes=[0-9]+ ms=[0-9]+\.[0-9]{3} rid=[A-Za-z0-9._-]+$" "$L")" -eq 4 ]'
check "line 1: GET /api/chat 405 method_not_allowed" '[ "$(field 1 method) $(field 1 path) $(field 1 status) $(field 1 code)" = "GET /api/chat 405 method_not_allowed" ]'
check "line 2: the path without its query, 404 not_found" '[ "$(field 2 path) $(field 2 status) $(field 2 code)" = "/nothing 404 not_found" ]'
check "line 2: the client's X-Request-Id" '[ "$(field 2 rid)" = "req-abc.1_X" ]'
check "line 3: POST 401 unauthorized" '[ "$(field 3 method) $(field 3 status) $(field 3 code)" = "POST 401 unauthorized" ]'
check "line 4: 200, no code, a made id in place of the bad one" '[ "$(field 4 status) $(field 4 code)" = "200 -" ] && field 4 rid | grep -qxE "[0-9a-f]{16}"'
check "made ids differ per request" '[ "$(field 1 rid)" != "$(field 3 rid)" ] && [ "$(field 3 rid)" != "$(field 4 rid)" ]'
# a fifth request, as curl received it
check "bytes: the answer's head and body as sent" '[ "$(field 1 bytes)" -eq "$(curl -s -i "$U:$PORT/api/chat" | wc -c)" ]'
check "no query and no header value in the log" '! grep -q "s3cr3t" "$L"'
check "ingress.access_lines: 5 in all, as in the file" 'lines_at_least 5 && wait_for 5 ".totals[\"ingress.access_lines\"] == 5 and .totals[\"ingress.access_dropped\"] == 0"'


# --- a long method and a long path: the line is cut, nothing else -----------
pids=$(snap | jq -c '[.processes[] | select(.role == "ingress") | .pid]')
long_method=$(head -c 900 /dev/zero | tr '\0' M)
long_path=/$(head -c 700 /dev/zero | tr '\0' p)
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf '%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' "$long_method" "$long_path" >&3
timeout 5 cat <&3 >/dev/null
exec 3<&-
sed -n 6p "$L" | cut -c1-200 | sed 's/^/  | /'
check "a long method and path: one more line, at most 1023 bytes" 'lines_at_least 6 && [ "$(sed -n 6p "$L" | wc -c)" -le 1024 ]'
check "its method cut to 24 bytes, its path to 512" 'sed -n 6p "$L" | grep -q " method=$(head -c 24 /dev/zero | tr "\0" M) path=/p\{511\} status="'
check "the ingress processes are the same" '[ "$(snap | jq -c "[.processes[] | select(.role == \"ingress\") | .pid]")" = "$pids" ]'

# --- rotation: rename, reload, new lines in a new file --------------------
mv "$L" "$L.1"
curl -s -o /dev/null "$U:$PORT/api/chat" # still to the renamed file
check "before the reload: the renamed file gets the line" 'lines_at_least 7 "$L.1"'
gen=$(snap | jq .header.configGeneration)
kill -HUP "$SV_PID"
check "reload applied" 'wait_for 10 "[.processes[] | select(.role == \"ingress\") | .configGen == $((gen + 1))] | all"'
curl -s -o /dev/null "$U:$PORT/nothing-after-rotation"
check "after the reload: a new file with the new line" 'lines_at_least 1 && grep -q "path=/nothing-after-rotation " "$L" && [ "$(wc -l <"$L")" -eq 1 ]'
check "the old file kept its seven lines" '[ "$(wc -l <"$L.1")" -eq 7 ]'

# --- off by reload ------------------------------------------------------------
conf off
kill -HUP "$SV_PID"
check "reload applied" 'wait_for 10 "[.processes[] | select(.role == \"ingress\") | .configGen == $((gen + 2))] | all"'
for _ in 1 2 3; do curl -s -o /dev/null "$U:$PORT/api/chat"; done
sleep 0.5
check "log.access off: no more lines" '[ "$(wc -l <"$L")" -eq 1 ]'

remember_pids
stop_relgated
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'
finish
