#!/bin/bash
# admission.sh - the admission role end to end, driven the way an
# authoritative ingress drives it (rgtool sends the messages): chats
# admitted up to the per-user limit and refused past it, a shadow
# evaluation, a stale release, the tickets of a provider and of an ingress
# killed with -9 reclaimed, an admission process killed with -9 that
# resumes its tickets, soft allows and shadow mode after reloads, and a
# provider that cannot be reached; relstat's chatAdmission shows every
# step.
. "$(dirname "$0")/lib.sh"
RGTOOL=$top_builddir/tests/rgtool

# the provider runs the admitted chats against relmock, which stalls
# them: their tickets stay held until a test step ends them
start_relmock
curl -s -o /dev/null -X POST --data-binary stall "$M/_relmock/faults/chat"
UP="\"provider\": { \"primary\": { \"base_url\": \"$M/v1\" }, \"secondary\": { \"base_url\": \"$M/v1\" } }"
write_config "$T/relgate.json" "$UP, \"ADMISSION_USER_MAX_INFLIGHT\": 2"
start_relgated "$T/relgate.json"
check "all roles ready" 'wait_for 15 "$all_ready"'
ca='.chatAdmission'
check "chatAdmission: authoritative, every dimension enforced, limits in force" ' wait_for 5 "$ca.gatewayMode == \"authoritative\" and $ca.shadow == false and ($ca.enforce | to_entries | length == 4 and all(.value)) and $ca.dimensions.user_inflight.limit == 2 and $ca.dimensions.global_msg_rate.limit == 50"'
pid_of() { snap | jq -r ".processes[] | select(.role == \"$1\" and .instance == 0) | .pid"; }
ING=$(pid_of ingress)

"$RGTOOL" chat-start "$T/run" 0 "$ING" alice 101 102 103
check "alice: 2 admitted, the 3rd refused by user_inflight" ' wait_for 5 "$ca.counters.allowed == 2 and $ca.counters.blocked == 1 and $ca.dimensions.user_inflight.blocked == 1 and $ca.inflight.global == 2 and $ca.inflight.ticketsInUse == 2"'
check "topUsers: alice holds 2; topReasons: blocked:user_inflight" ' jq -e "$ca.topUsers[0] == {\"user\": \"alice\", \"inflight\": 2} and $ca.topReasons[0].reason == \"blocked:user_inflight\"" <<<"$(snap)"'

"$RGTOOL" admit-shadow "$T/run" alice 104
check "shadow evaluation: would block, nothing taken" ' wait_for 5 "$ca.counters.shadowEvaluations == 1 and $ca.dimensions.user_inflight.wouldBlock == 1 and $ca.inflight.global == 2"'
"$RGTOOL" chat-release "$T/run" 101 12345
check "release of an unknown ticket: counted stale, ignored" ' wait_for 5 "$ca.counters.staleReleases == 1 and $ca.inflight.global == 2"'

PROV=$(pid_of provider)
t0=$(date +%s%N)
kill -KILL "$PROV"
if wait_for 10 "$ca.counters.reclaimedDeadProvider == 2 and $ca.inflight.global == 0 and $ca.inflight.ticketsInUse == 0 and $ca.inflight.users == 0"; then
	ok "provider killed: its 2 tickets reclaimed, in relstat after $((($(date +%s%N) - t0) / 1000000)) ms"
else
	fail "provider killed: tickets not reclaimed"; snap | jq -c "$ca.inflight, $ca.counters"
fi
check "log: the reclaim, by cause" 'grep -q '\''tickets reclaimed: 0 of a dead ingress, 2 of a dead provider'\'' "$LOG"'
check "provider back" 'wait_for 10 "$all_ready and (.processes[] | select(.role == \"provider\") | .pid != $PROV)"'

"$RGTOOL" chat-start "$T/run" 0 "$ING" bob 201 202
check "bob: 2 admitted" 'wait_for 5 "$ca.counters.allowed == 4 and $ca.inflight.global == 2"'
ADM=$(pid_of admission)
kill -KILL "$ADM"
check "admission killed: restarted, resumed its 2 tickets and its counters" ' wait_for 10 "(.processes[] | select(.role == \"admission\") | .pid != $ADM and .state == \"ready\") and $ca.counters.resumes >= 1 and $ca.gauges.resumedTickets == 2 and $ca.inflight.global == 2 and $ca.counters.allowed == 4 and $ca.writerAlive"'
"$RGTOOL" chat-start "$T/run" 0 "$ING" bob 203
check "after the restart bob is still at his limit" ' wait_for 5 "$ca.counters.blocked == 2 and $ca.dimensions.user_inflight.blocked == 2 and $ca.inflight.global == 2"'

# the provider stops the streams of a dead ingress and gives their
# tickets back; admission reclaims any it has not given back by then
R0=$(snap | jq "$ca.counters.released + $ca.counters.reclaimedDeadIngress")
kill -KILL "$ING"
check "ingress killed: the tickets it owned are gone (released by the provider or reclaimed)" ' wait_for 10 "($ca.counters.released + $ca.counters.reclaimedDeadIngress) == $R0 + 2 and $ca.inflight.global == 0"'
check "ingress back" 'wait_for 10 "$all_ready and (.processes[] | select(.role == \"ingress\" and .instance == 0) | .pid != $ING)"'
ING=$(pid_of ingress)

# --- reloads: an unenforced dimension only records; shadow never blocks
write_config "$T/relgate.json" "$UP, \"ADMISSION_USER_MAX_INFLIGHT\": 2, \"ADMISSION_ENFORCE_USER_INFLIGHT\": false"
kill -HUP "$SV_PID"
check "reload: user_inflight recorded, not enforced" ' wait_for 5 "$ca.enforce.user_inflight == false and $ca.enforce.global_inflight == true"'
"$RGTOOL" chat-start "$T/run" 0 "$ING" carol 301 302 303
check "carol: the 3rd, over user_inflight, is a soft allow" ' wait_for 5 "$ca.counters.allowed == 7 and $ca.counters.softAllowed == 1 and $ca.dimensions.user_inflight.softAllowed == 1 and $ca.inflight.global == 3 and $ca.topUsers[0].inflight == 3"'
write_config "$T/relgate.json" "$UP, \"ADMISSION_USER_MAX_INFLIGHT\": 2, \"ADMISSION_REDIS_SHADOW_MODE\": true"
kill -HUP "$SV_PID"
check "reload: shadow mode" 'wait_for 5 "$ca.shadow == true and $ca.enforce.user_inflight == true"'
"$RGTOOL" chat-start "$T/run" 0 "$ING" carol 304
check "shadow mode: carol over her limit would block, passes without a ticket" ' wait_for 5 "$ca.counters.shadowEvaluations == 2 and $ca.dimensions.user_inflight.wouldBlock == 2 and $ca.counters.blocked == 2 and $ca.counters.allowed == 7 and $ca.inflight.global == 3"'
"$RELSTAT" -n "$SHM" -1 | sed -n '/^ADMISSION/,/top users/p' | sed 's/^/  relstat: /'
remember_pids
stop_relgated
check "SIGTERM: relgated exits 0" '[ "$SV_RC" = 0 ]'
check "shm segment removed" '[ ! -e "/dev/shm$SHM" ]'

# --- a provider that never comes up: admitted chats are refused as overloaded
mkdir -p "$T/libexec"
for b in ingress admission tool-worker monitor; do
	ln -s "$top_builddir/daemons/$b" "$T/libexec/$b"
done
printf '#!/bin/sh\nexit 3\n' >"$T/libexec/provider"
chmod +x "$T/libexec/provider"
rm -rf "$T/run" "$T/state"
write_config "$T/relgate.json" "\"libexec_dir\": \"$T/libexec\""
start_relgated "$T/relgate.json"
check "provider in backoff, the rest ready" ' wait_for 15 '\''(.processes[] | select(.role == "provider") | .backoffMs >= 800) and ([.processes[] | select(.role == "admission" or .role == "ingress") | .state] | all(. == "ready"))'\'''
"$RGTOOL" chat-start "$T/run" 0 "$(pid_of ingress)" dave 401
check "provider unreachable: refused, counted, no ticket held" ' wait_for 5 "$ca.counters.forwardFailures == 1 and $ca.counters.allowed == 0 and $ca.inflight.global == 0"'
remember_pids
stop_relgated
check "SIGTERM during the provider's backoff: exit 0" '[ "$SV_RC" = 0 ]'
finish
