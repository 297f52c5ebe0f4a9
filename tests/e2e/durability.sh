#!/bin/bash
# durability.sh - nothing acknowledged is lost: under a bounded concurrent
# load of distinct Gmail pushes, kill -9 the whole process tree; after a
# restart every push that got a 200 has its delivery row in LMDB.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "curl is required"; exit 99; }

write_config "$T/relgate.json" '"GMAIL_PUBSUB_VERIFY_TOKEN": "tok",
  "RATE_LIMIT_GMAIL_PUSH_MAX": 1000000'
start_relgated "$T/relgate.json"
check "relgated up" 'wait_for 15 "$all_ready"'
URL="http://127.0.0.1:$PORT/api/gmail/push?token=tok"

worker() { # worker ID: at most 400 pushes, each logged "key status"
	local id=$1 i data
	for i in $(seq 400); do
		data=$(printf '{"emailAddress":"w%s@example.com","historyId":"%s"}' "$id" "$i" | base64 -w0)
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'content-type: application/json' \
			-d "{\"message\":{\"data\":\"$data\"}}" "$URL")
		echo "w$id@example.com:$i $code"
		[ "$code" = 000 ] && break   # the server is gone: stop
	done >"$T/w.$id"
}
for w in $(seq 8); do worker "$w" & done
# let the load run, then kill -9 every process of the tree at once
for _ in $(seq 100); do
	[ "$(cat "$T"/w.* 2>/dev/null | grep -c ' 200$')" -ge 300 ] && break
	sleep 0.05
done
remember_pids
tree="$SV_PID $(snap | jq -r '.processes[] | select(.role != "supervisor") | .pid' | tr '\n' ' ')"
kill -KILL $tree
SV_PID=
wait $(jobs -p) 2>/dev/null
acked=$(cat "$T"/w.* | awk '$2 == 200' | wc -l)
failed=$(cat "$T"/w.* | awk '$2 != 200' | wc -l)
echo "load: $acked pushes acknowledged before the kill, $failed without an answer"
check "the kill happened under load (acks before, failures after)" '[ "$acked" -gt 0 ] && [ "$failed" -gt 0 ]'

# restart on the same state (stale shm, sockets and lock are recovered)
start_relgated "$T/relgate.json"
check "restarted after kill -9" 'wait_for 15 "$all_ready"'
"$RELCTL" -c "$T/relgate.json" --json deliveries list --limit 1000000 | jq -r '.[].idemKey' | sort >"$T/stored"
cat "$T"/w.* | awk '$2 == 200 {print $1}' | sort >"$T/acked"
missing=$(comm -23 "$T/acked" "$T/stored" | wc -l)
extra=$(comm -13 "$T/acked" "$T/stored" | wc -l)
echo "store: $(wc -l <"$T/stored") delivery rows; acknowledged but missing: $missing; stored but not acknowledged (allowed): $extra"
check "every acknowledged push has its delivery row" '[ "$missing" -eq 0 ] && [ "$acked" -gt 0 ]'
check "no delivery row twice" '[ -z "$(uniq -d "$T/stored")" ]'

stop_relgated
check "SIGTERM after restart: exit 0" '[ "$SV_RC" = 0 ]'
finish
