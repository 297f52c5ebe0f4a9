#!/bin/bash
# relstat_live.sh - relstat as an operator meets it: the live view run in
# a real terminal (tmux) at 80x24 and at 160x50 fits the window (a header
# line, the process table, a key line at the bottom, no line wider than
# the window), a counter and its rate change on screen while requests
# come in, the window is redrawn when resized, the section keys and the
# filter work, and q quits with exit 0; relstat -1 on the default
# configuration fits in 60 lines, and the configuration is only in -c.
. "$(dirname "$0")/lib.sh"
command -v tmux >/dev/null || { fail "tmux is required (apt-get install tmux)"; finish; exit 1; }
command -v curl >/dev/null || { echo "curl is required"; exit 99; }

TS=$T/tmux.sock
tmx() { tmux -S "$TS" -f /dev/null "$@"; }
CLEANUP_HOOK='tmx kill-server 2>/dev/null'
screen() { tmx capture-pane -p -t live >"$T/screen"; }
# screen_has SECONDS REGEX: the screen shows REGEX within SECONDS
screen_has() {
	local i
	for i in $(seq $(($1 * 10))); do
		screen
		grep -Eq "$2" "$T/screen" && return 0
		sleep 0.1
	done
	return 1
}
header_requests() { head -n 1 "$T/screen" | sed -n 's/.* requests \([0-9]*\) .*/\1/p'; }
# live_start COLS ROWS: relstat in a new tmux window of that size; its
# exit status goes to $T/live.rc.  live_quit: press q, wait for the exit.
live_start() {
	rm -f "$T/live.rc"
	tmx new-session -d -s live -x "$1" -y "$2" "$RELSTAT -n $SHM; echo \"exit=\$?\" >$T/live.rc; sleep 30"
}
live_quit() {
	tmx send-keys -t live q
	for _ in $(seq 50); do [ -s "$T/live.rc" ] && break; sleep 0.1; done
}
fits() { # fits COLS ROWS: the screen has ROWS lines, none wider than COLS
	[ "$(wc -l <"$T/screen")" -eq "$2" ] && ! awk -v c="$1" 'length($0) > c { bad = 1 } END { exit !bad }' "$T/screen"
}

# the default configuration: ingress.count 0 = one per CPU
cat >"$T/relgate.json" <<JSON
{ "http": { "listen": "127.0.0.1:$PORT" }, "admin": { "listen": "127.0.0.1:$ADMIN" },
  "state_dir": "$T/state", "run_dir": "$T/run", "shm": { "name": "$SHM" },
  "store": { "map_size_mb": 64 } }
JSON
start_relgated "$T/relgate.json"
check "all roles ready" 'wait_for 15 "$all_ready"'
nproc_table=$(snap | jq '.processes | length')

# --- relstat -1 and -c --------------------------------------------------------
"$RELSTAT" -n "$SHM" -1 >"$T/one.txt"
echo "  relstat -1: $(wc -l <"$T/one.txt") lines, widest $(awk '{ if (length($0) > m) m = length($0) } END { print m }' "$T/one.txt")"
check "relstat -1 on the default config fits in 60 lines" '[ "$(wc -l <"$T/one.txt")" -le 60 ]'
check "relstat -1: a header line, then every section" 'head -n 1 "$T/one.txt" | grep -q "^relgate $SHM  up " && grep -q "^PROCESS " "$T/one.txt" && grep -q "^ROUTE " "$T/one.txt" && grep -q "^PROVIDER CALLS " "$T/one.txt" && grep -q "^RATE LIMIT " "$T/one.txt" && grep -q "^CIRCUIT " "$T/one.txt" && grep -q "^BULKHEAD " "$T/one.txt" && grep -q "^ADMISSION " "$T/one.txt" && grep -q "^QUEUE " "$T/one.txt" && grep -q "^CACHE " "$T/one.txt" && grep -q "^ALERTS " "$T/one.txt"'
check "relstat -1: every process, one line each" '[ "$(grep -Ec "^(supervisor|ingress|admission|provider|tool-worker|monitor) +[0-9]+ +[0-9]+ +ready " "$T/one.txt")" -eq "$nproc_table" ]'
check "relstat -1: no configuration in it" '! grep -q "state_dir" "$T/one.txt"'
"$RELSTAT" -n "$SHM" -c >"$T/config.json"
check "relstat -c: the configuration in force, as JSON" 'jq -e --arg s "$SHM" '\''.shm.name == $s and (.state_dir | length) > 0'\'' "$T/config.json"'

# --- the live view at 80x24 ---------------------------------------------------
live_start 80 24
check "80x24: the live view shows the process table" 'screen_has 5 "^PROCESS +INST +PID"'
sed 's/^/  | /' "$T/screen"
check "80x24: it fits the window (24 lines, none wider than 80)" 'fits 80 24'
check "80x24: the header line first, the keys on the last line" 'head -n 1 "$T/screen" | grep -q "^relgate $SHM  up .* ready  requests [0-9]* " && tail -n 1 "$T/screen" | grep -q "^q quit "'
check "80x24: every process of the table on screen" '[ "$(grep -Ec "^(supervisor|ingress|admission|provider|tool-worker|monitor) +[0-9]+ +[0-9]+ +ready " "$T/screen")" -eq "$nproc_table" ]'
before=$(header_requests)
for _ in $(seq 25); do curl -s -o /dev/null "http://127.0.0.1:$PORT/api/chat"; done
check "80x24: the request counter on screen grows by the 25 requests" 'screen_has 5 "requests $((before + 25)) "'
check "80x24: the route's line shows them and a rate" 'screen_has 5 "^/api/chat +$((before + 25)) +[0-9]+\.[0-9] "'
grep "^/api/chat " "$T/screen" | sed 's/^/  | /'
check "80x24: the circuits are below the window" '! grep -q "^CIRCUIT " "$T/screen"'
tmx send-keys -t live 5
check "key 5: the circuits section at the top" 'screen_has 3 "^CIRCUIT "' 
check "key 5: right under the header" '[ "$(sed -n 2p "$T/screen" | cut -c1-7)" = CIRCUIT ]'
tmx send-keys -t live Tab
check "tab: the next section, bulkheads, at the top" 'screen_has 3 "^BULKHEAD " && [ "$(sed -n 2p "$T/screen" | cut -c1-8)" = BULKHEAD ]'
tmx send-keys -t live Tab
check "tab again: admission at the top" 'screen_has 3 "^ADMISSION " && [ "$(sed -n 2p "$T/screen" | cut -c1-9)" = ADMISSION ]'
tmx send-keys -t live Tab
check "tab again: the queues, deliveries and tool jobs, from the store" 'screen_has 3 "^QUEUE " && [ "$(sed -n 2p "$T/screen" | cut -c1-5)" = QUEUE ] && grep -Eq "^deliveries +0 +0 +0 " "$T/screen" && grep -Eq "^tool jobs +0 +0 +0 " "$T/screen"'
tmx send-keys -t live 9
check "key 9: the cache at the top" 'screen_has 3 "^CACHE " && [ "$(sed -n 2p "$T/screen" | cut -c1-5)" = CACHE ]'
tmx send-keys -t live 0
check "key 0: alerts, the tenth and last, at the top though the window is not full" 'screen_has 3 "^ALERTS " && [ "$(sed -n 2p "$T/screen" | cut -c1-6)" = ALERTS ]'
tmx send-keys -t live Tab
check "tab again: back to the processes" 'screen_has 3 "^PROCESS " && [ "$(sed -n 2p "$T/screen" | cut -c1-7)" = PROCESS ]'
tmx send-keys -t live C-Up
sleep 0.3
screen
check "an unknown key sequence (Ctrl-Up) does not move the view" '[ "$(sed -n 2p "$T/screen" | cut -c1-7)" = PROCESS ]'
tmx send-keys -t live g / i n g r e s s Enter
check "filter ingress: only ingress lines and section titles" 'screen_has 3 "filter: ingress" && [ "$(grep -Ec "^ingress +[0-9]" "$T/screen")" -ge 1 ] && ! grep -Eq "^(monitor|admission|supervisor) +[0-9]" "$T/screen"'
tmx send-keys -t live Escape
check "Esc clears the filter" 'screen_has 3 "^monitor +0 "'

# --- resized to 160x50, then q ------------------------------------------------
tmx resize-window -t live -x 160 -y 50
check "resized to 160x50: redrawn to fit" 'screen_has 5 "^BULKHEAD " && fits 160 50'
check "160x50: the key line moved to the bottom" 'tail -n 1 "$T/screen" | grep -q "^q quit "'
live_quit
check "q quits with exit 0" 'grep -qx "exit=0" "$T/live.rc"'
tmx kill-session -t live 2>/dev/null

# --- started at 160x50 --------------------------------------------------------
live_start 160 50
check "160x50: the process table and the bulkheads at once" 'screen_has 5 "^BULKHEAD " && grep -q "^PROCESS " "$T/screen"'
check "160x50: it fits the window" 'fits 160 50'
before=$(header_requests)
for _ in $(seq 10); do curl -s -o /dev/null "http://127.0.0.1:$PORT/nothing"; done
check "160x50: the counter grows by the 10 requests" 'screen_has 5 "requests $((before + 10)) "'
check "160x50: unmatched shows them with the top error" 'screen_has 3 "^unmatched +[0-9]+ .* not_found [0-9]+"'
live_quit
check "q quits with exit 0" 'grep -qx "exit=0" "$T/live.rc"'
tmx kill-server 2>/dev/null

# --- not a terminal: once as text ---------------------------------------------
timeout 5 "$RELSTAT" -n "$SHM" </dev/null >"$T/piped.txt"; prc=$?
check "without a terminal: prints once and exits 0" '[ "$prc" -eq 0 ] && grep -q "^PROCESS " "$T/piped.txt"'

remember_pids
stop_relgated
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'
finish
