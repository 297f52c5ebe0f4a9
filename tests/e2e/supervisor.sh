#!/bin/bash
# supervisor.sh - the process graph end to end: all roles ready, a ping
# through every nng link, the loop's lag of a process stopped for a while
# (relstat -j, relstat -1, /metrics), kill -9 of one child of each role
# (restarted with a new pid and restart count +1), then SIGTERM: exit 0
# and nothing left.
. "$(dirname "$0")/lib.sh"

write_config "$T/relgate.json"
"$top_builddir/tests/notify_recv" "$T/notify" 20 READY=1 >"$T/notify.out" &
NR_PID=$!
for _ in $(seq 100); do [ -S "$T/notify" ] && break; sleep 0.02; done
NOTIFY_SOCKET=$T/notify start_relgated "$T/relgate.json"

check "all roles ready" 'wait_for 15 "$all_ready and (.processes | length == 8)"'
snap >"$T/snap.json"
wait "$NR_PID"
check "systemd notify: READY=1 sent once all children are up" 'grep -qx READY=1 "$T/notify.out"'
check "processes carry the SPEC fields" 'jq -e ".processes | all(has(\"role\") and has(\"instance\") and has(\"pid\") and has(\"state\") and has(\"restarts\") and has(\"startedAt\") and has(\"heartbeatAt\") and has(\"lastExit\"))" "$T/snap.json"'
check "roles as named in SPEC" 'jq -e "[.processes[].role] | sort | unique == [\"admission\",\"ingress\",\"monitor\",\"provider\",\"supervisor\",\"tool-worker\"]" "$T/snap.json"'
check "config section present, shm name as configured" 'jq -e --arg s "$SHM" ".config.shm.name == \$s" "$T/snap.json"'

# ingress x2 -> admission, provider, tool-worker x2, monitor = 10;
# admission -> ingress x2, provider, monitor = 4; provider -> ingress x2,
# admission, tool-worker x2, monitor = 6; tool-worker x2 -> provider,
# monitor = 4.  24 links.
"$RELCTL" -c "$T/relgate.json" --json ping >"$T/ping.json"; prc=$?
check "relctl ping exits 0" '[ "$prc" -eq 0 ]'
check "ping: 24 links answered, none failed, 7 processes" 'jq -e ".linksOk == 24 and .linksFailed == 0 and .processesAnswered == 7" "$T/ping.json"'
"$RELCTL" -c "$T/relgate.json" ping | tail -n 1

# the loop's lag: every role has the probe's gauge and counter; a
# process stopped for 400 ms finds its next probe at least 300 ms late
check "every role reports loop.lagMaxMs and loop.late" 'snap | jq -e "[.processes[] | select(.role != \"supervisor\") | .counters | has(\"loop.lagMaxMs\") and has(\"loop.late\")] | length == 7 and all"'
sel='.processes[] | select(.role == "admission" and .instance == 0)'
apid=$(snap | jq -r "$sel | .pid")
late0=$(snap | jq -r "$sel | .counters[\"loop.late\"]")
kill -STOP "$apid"; sleep 0.4; kill -CONT "$apid"
check "admission.0 stopped for 400 ms: loop.lagMaxMs 250 to 5000 (its next probe at least 300 ms late), loop.late up" 'wait_for 3 "$sel | .counters[\"loop.lagMaxMs\"] >= 250 and .counters[\"loop.lagMaxMs\"] < 5000 and .counters[\"loop.late\"] > $late0"'
snap | jq -c "$sel | .counters | {\"loop.lagMaxMs\", \"loop.late\"}" | sed 's/^/  /'
lag=$("$RELSTAT" -n "$SHM" -1 | awk '$1 == "admission" && $2 == 0 { print $8 }')
check "relstat -1: admission.0's LAG column shows it ($lag)" '[[ "$lag" =~ ^[0-9]+ms$ ]] && [ "${lag%ms}" -ge 250 ]'
mv=$(curl -sf "http://127.0.0.1:$ADMIN/metrics" | grep '^relgate_loop_lag_max_seconds{' | grep 'role="admission"' | grep 'instance="0"' | awk '{ print $2 }')
check "/metrics: relgate_loop_lag_max_seconds of admission.0 at least 0.25 ($mv)" '[ -n "$mv" ] && awk -v v="$mv" "BEGIN { exit !(v >= 0.25) }"'

for role in ingress admission provider tool-worker monitor; do
	sel=".processes[] | select(.role == \"$role\" and .instance == 0)"
	old=$(snap | jq -r "$sel | .pid")
	restarts=$(snap | jq -r "$sel | .restarts")
	t0=$(date +%s%N)
	kill -KILL "$old"
	if wait_for 5 "$sel | .pid != $old and .pid > 0 and .restarts == $((restarts + 1)) and .state == \"ready\""; then
		t1=$(date +%s%N)
		new=$(snap | jq -r "$sel | .pid")
		ok "$role.0 killed (pid $old), restarted as pid $new, restarts $restarts -> $((restarts + 1)), ready after $(((t1 - t0) / 1000000)) ms"
	else
		fail "$role.0 not restarted after kill -9"; snap | jq -c "$sel"
	fi
	check "$role.0 lastExit records the kill" 'wait_for 2 "$sel | .lastExit == \"signal 9 (KILL)\""'
done
check "obituary lines logged for the 5 kills" '[ "$(grep -c "obituary:.*signal 9" "$LOG")" -eq 5 ]'
check "supervisor counted 5 deaths" 'wait_for 2 ".processes[] | select(.role == \"supervisor\") | .counters[\"supervisor.childDeaths\"] == 5"'
# a restarted process's peers dial it again on their own (backoff up to
# 250 ms), so a ping right after the last restart may still find a link
# coming back: up to 3 pings, each link's silence printed
for try in 1 2 3; do
	"$RELCTL" -c "$T/relgate.json" --json ping >"$T/ping2.json"
	jq -e ".linksOk == 24 and .linksFailed == 0" "$T/ping2.json" >/dev/null && break
	echo "ping $try after restarts: $(jq -r "\"\\(.linksOk) links ok, \\(.processesAnswered) processes answered\"" "$T/ping2.json"), silent: $(jq -c '[.links[] | select(.ok | not) | "\(.from)->\(.to)"]' "$T/ping2.json")"
	sleep 1
done
check "ping after restarts: all 24 links answer" 'jq -e ".linksOk == 24 and .linksFailed == 0" "$T/ping2.json"'

remember_pids
run=$T/run
stop_relgated
check "SIGTERM: relgated exits 0" '[ "$SV_RC" = 0 ]'
check "shm segment removed" '[ ! -e "/dev/shm$SHM" ]'
check "no ipc sockets left" '[ -z "$(ls "$run" 2>/dev/null | grep "\\.ipc\$")" ]'
check "pidfile removed" '[ ! -e "$run/relgated.pid" ]'
stray=
for p in $PIDS_SEEN; do kill -0 "$p" 2>/dev/null && stray="$stray $p"; done
check "no stray processes (checked: $(echo $PIDS_SEEN | wc -w) pids)" '[ -z "$stray" ]'
"$RELSTAT" -n "$SHM" -j >/dev/null 2>"$T/relstat.err"; src=$?
check "relstat on a missing segment: one line, exit 2" '[ "$src" -eq 2 ] && [ "$(wc -l <"$T/relstat.err")" -eq 1 ]'
finish
