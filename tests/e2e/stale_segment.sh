#!/bin/bash
# stale_segment.sh - a segment left behind by a relgated that was killed
# (SIGKILL: it could not remove it) names a supervisor pid that is gone,
# or that may belong to another process by now: relctl reload and drain
# signal nothing then, say why in one line and exit 2; the other process
# lives on.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "python3 is required"; exit 99; }
write_config "$T/relgate.json"
start_relgated "$T/relgate.json"
check "all roles ready" 'wait_for 15 "$all_ready"'
remember_pids
kill -KILL "$SV_PID"; wait "$SV_PID" 2>/dev/null
dead=$SV_PID; SV_PID=
check "relgated killed: its segment is left" 'for _ in $(seq 50); do ! kill -0 "$dead" 2>/dev/null && break; sleep 0.1; done; [ -e "/dev/shm$SHM" ]'
check "reload: the supervisor is not running, nothing signalled (exit 2)" '"$RELCTL" -n "$SHM" reload 2>"$T/e"; [ $? -eq 2 ] && grep -q "relctl: relgated (pid $dead, from segment $SHM) is not running" "$T/e"'
# another process takes the place: the segment now names it
sleep 60 &
other=$!
CLEANUP_HOOK="kill $other 2>/dev/null"
python3 - "/dev/shm$SHM" "$other" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(24)  # struct shm_header: magic[8], u32, u32, u64, then the pid
    f.write(struct.pack("<i", int(sys.argv[2])))
PY
check "the segment names the other process" '[ "$("$RELSTAT" -n "$SHM" -j | jq .header.supervisorPid)" = "$other" ]'
for cmd in drain reload; do
	check "$cmd: pid $other is sleep, not relgated: nothing signalled (exit 2)" '"$RELCTL" -n "$SHM" $cmd 2>"$T/e"; [ $? -eq 2 ] && grep -q "relctl: pid $other named by segment $SHM is sleep, not relgated" "$T/e" && kill -0 "$other"'
done
finish
