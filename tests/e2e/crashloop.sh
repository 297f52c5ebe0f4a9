#!/bin/bash
# crashloop.sh - a role binary that exits at once is throttled: restart
# delays double from 100 ms (log and relstat show it), the rest of the
# graph stays up, and SIGTERM still stops everything cleanly.
. "$(dirname "$0")/lib.sh"

# libexec dir: the real role binaries, except a monitor that exits at once
mkdir -p "$T/libexec"
for b in ingress admission provider tool-worker; do
	ln -s "$top_builddir/daemons/$b" "$T/libexec/$b"
done
printf '#!/bin/sh\nexit 3\n' >"$T/libexec/monitor"
chmod +x "$T/libexec/monitor"
write_config "$T/relgate.json" "\"libexec_dir\": \"$T/libexec\""
start_relgated "$T/relgate.json"

mon='.processes[] | select(.role == "monitor")'
check "monitor restarted at least 4 times" 'wait_for 10 "$mon | .restarts >= 4"'
snap >"$T/snap.json"
jq -c "$mon | {state, restarts, lastExit, backoffMs, everReady}" "$T/snap.json"
check "relstat: lastExit is exit 3" 'jq -e "$mon | .lastExit == \"exit 3\"" "$T/snap.json"'
check "relstat: backoff grew to >= 800 ms" 'jq -e "$mon | .backoffMs >= 800" "$T/snap.json"'
check "relstat: never ready" 'jq -e "$mon | .everReady == 0 and .state != \"ready\"" "$T/snap.json"'
check "relstat: supervisor counted throttled deaths" 'jq -e ".processes[] | select(.role == \"supervisor\") | .counters[\"supervisor.throttled\"] >= 4" "$T/snap.json"'
check "other roles stay ready" 'jq -e "[.processes[] | select(.role != \"supervisor\" and .role != \"monitor\") | .state] | all(. == \"ready\")" "$T/snap.json"'
grep 'obituary: monitor' "$LOG" | head -n 5 | sed 's/^/  log: /'
for d in 100 200 400 800; do
	check "log: throttled, restart in $d ms" 'grep -q "obituary: monitor.0 .*exit 3.*never ready: throttled; restart in $d ms" "$LOG"'
done
check "no tight loop: at most 8 monitor deaths logged" '[ "$(grep -c "obituary: monitor" "$LOG")" -le 8 ]'

stop_relgated
check "SIGTERM during backoff: exit 0" '[ "$SV_RC" = 0 ]'
check "shm segment removed" '[ ! -e "/dev/shm$SHM" ]'
finish
