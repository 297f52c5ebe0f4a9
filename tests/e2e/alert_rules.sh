#!/bin/bash
# alert_rules.sh - the alert rules beside the rate-limit one, in one
# relgated whose admission binary exits at once, whose backend (relmock)
# answers slowly, one delivery at a time, and whose LMDB map is 1 MiB:
# - queue health (TOOL_QUEUE_ALERT_*): more deliveries waiting than
#   allowed, the oldest waiting and the oldest running too old, then
#   dead letters of the window over the limit -> queue:deliveries:*;
#   a key is raised again only after TOOL_QUEUE_ALERT_COOLDOWN_MS;
# - bulkhead saturation: the tool-worker that finds bulkhead backend full
#   warns the monitor -> bulkhead:backend, once for many refusals;
# - crash loop: admission restarted monitor.crashloop_restarts times in
#   monitor.alert_window_ms -> crashloop:admission.0, once per
#   monitor.alert_cooldown_ms, and no other process;
# - LMDB map usage: the gauge monitor.storeMapUsagePct (relstat,
#   /metrics), and store:map_usage once it reaches store.map_alert_pct.
# Each alert is a row of relctl alerts list (kind, value, threshold, an
# operator's message) and an envelope at relmock's Sentry receiver: queue
# alerts with TOOL_QUEUE_SENTRY_DSN, the others with SENTRY_DSN; relstat
# -j toolQueueAlerts holds the queue alerts, rateLimitPressure.recentAlerts
# none of them.
. "$(dirname "$0")/lib.sh"
RGTOOL=$top_builddir/tests/rgtool
command -v curl >/dev/null || { echo "curl is required"; exit 99; }

echo '{ "sentry_key": "rules-key" }' >"$T/mock.json"
start_relmock -c "$T/mock.json" --backend-secret backend-secret
# every delivery: 503 after 15 s (one at a time: bulkhead backend is 1)
curl -s -o /dev/null -X POST --data-binary "status=503;latency_ms=15000" "$M/_relmock/faults/backend"

# libexec dir: the real role binaries, but an admission that exits at once
mkdir -p "$T/libexec"
for b in ingress provider tool-worker monitor; do
	ln -s "$top_builddir/daemons/$b" "$T/libexec/$b"
done
printf '#!/bin/sh\nexit 3\n' >"$T/libexec/admission"
chmod +x "$T/libexec/admission"

QCOOL=5000
write_config "$T/relgate.json" "\"libexec_dir\": \"$T/libexec\",
  \"backend\": { \"url\": \"$M/backend\", \"secret\": \"backend-secret\",
    \"timeout_ms\": 20000, \"max_attempts\": 1, \"poll_ms\": 200,
    \"bulkhead\": { \"max_concurrent\": 1, \"lease_ttl_ms\": 60000 } },
  \"GMAIL_PUBSUB_VERIFY_TOKEN\": \"tok\", \"RATE_LIMIT_GMAIL_PUSH_MAX\": 100000,
  \"WHATSAPP_APP_SECRET\": \"s3\", \"RATE_LIMIT_WHATSAPP_MAX\": 1000000,
  \"TOOL_QUEUE_ALERT_MAX_QUEUED\": 1, \"TOOL_QUEUE_ALERT_MAX_DLQ\": 1,
  \"TOOL_QUEUE_ALERT_MAX_QUEUED_AGE_MS\": 2000,
  \"TOOL_QUEUE_ALERT_MAX_RUNNING_AGE_MS\": 2000,
  \"TOOL_QUEUE_ALERT_COOLDOWN_MS\": $QCOOL,
  \"TOOL_QUEUE_SENTRY_DSN\": \"http://rules-key@127.0.0.1:$MOCK/77\",
  \"SENTRY_DSN\": \"http://rules-key@127.0.0.1:$MOCK/42\",
  \"BULKHEAD_SENTRY_COOLDOWN_MS\": 600000,
  \"monitor\": { \"alert_interval_ms\": 1000, \"alert_window_ms\": 60000,
    \"alert_cooldown_ms\": 600000, \"crashloop_restarts\": 3 }"
sed -i 's/"map_size_mb": 64/"map_size_mb": 1, "map_alert_pct": 50/' "$T/relgate.json"
start_relgated "$T/relgate.json"
up='[.processes[] | select(.role != "supervisor" and .role != "admission") | .state] | length > 0 and all(. == "ready")'
check "every role but admission ready" 'wait_for 15 "$up"'

alerts() { "$RELCTL" -c "$T/relgate.json" --json alerts list --limit 1000; }
# nkey KEY: rows of that alert key
nkey() { alerts | jq --arg k "$1" '[.[] | select(.alertKey == $k)] | length'; }
envelopes() { curl -s "$M/_relmock/sentry/envelopes"; }
# wait_until SECONDS 'CONDITION'
wait_until() { local i; for i in $(seq $(($1 * 10))); do eval "$2" && return 0; sleep 0.1; done; return 1; }
push() { # push HISTORY -> HTTP status of a Gmail push (one delivery)
	local data
	data=$(printf '{"emailAddress":"q@example.com","historyId":"%s"}' "$1" | base64 -w0)
	curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
		-d "{\"message\":{\"data\":\"$data\"}}" "http://127.0.0.1:$PORT/api/gmail/push?token=tok"
}

# --- crash loop --------------------------------------------------------------
check "admission restarted 3 times: crashloop:admission.0" 'wait_until 20 "[ \"\$(nkey crashloop:admission.0)\" -eq 1 ]"'
alerts >"$T/a0.json"
jq -c '.[] | select(.kind == "crashloop") | {alertKey, value, threshold, message}' "$T/a0.json" | sed 's/^/  /'
check "the row: kind, source, threshold 3, window, last exit in the message" 'jq -e "[.[] | select(.alertKey == \"crashloop:admission.0\")][0] | .kind == \"crashloop\" and .source == \"admission\" and .value >= 3 and .threshold == 3 and .windowMs == 60000 and .level == \"warning\" and (.message | test(\"^crashloop:admission.0: restarted [0-9]+ times in the last 60 s .*last exit: exit 3\"))" "$T/a0.json"'
check "no crash-loop alert for the processes that run" 'jq -e "[.[] | select(.kind == \"crashloop\" and .alertKey != \"crashloop:admission.0\")] | length == 0" "$T/a0.json"'

# --- map usage: the gauge, below the threshold: no alert ------------------------
mon='.processes[] | select(.role == "monitor") | .counters'
check "relstat: monitor.storeMapUsagePct and the map's bytes" 'wait_for 10 "$mon | .[\"monitor.storeMapBytes\"] == 1048576 and .[\"monitor.storeUsedBytes\"] > 0 and .[\"monitor.storeMapUsagePct\"] < 50"'
check "/metrics: the map usage gauge" 'curl -s "http://127.0.0.1:$ADMIN/metrics" | grep -q "^relgate_monitor_store_map_usage_pct.* [0-9]"'
check "below store.map_alert_pct: no store alert" '[ "$(nkey store:map_usage)" -eq 0 ]'

# --- queue health and bulkhead saturation -------------------------------------
check "an empty queue: no queue alert" '[ "$(alerts | jq "[.[] | select(.kind == \"queue\")] | length")" -eq 0 ]'
for i in 1 2 3 4; do [ "$(push "$i")" = 200 ] || fail "push $i"; done
check "4 deliveries, 1 running, 3 waiting (max 1): queue:deliveries:queued" 'wait_until 10 "[ \"\$(nkey queue:deliveries:queued)\" -eq 1 ]"'
check "the oldest waiting over 2 s: queue:deliveries:oldest_queued_age" 'wait_until 10 "[ \"\$(nkey queue:deliveries:oldest_queued_age)\" -ge 1 ]"'
check "the running attempt over 2 s: queue:deliveries:oldest_running_age" 'wait_until 10 "[ \"\$(nkey queue:deliveries:oldest_running_age)\" -ge 1 ]"'
check "bulkhead backend full for the other tool-worker: bulkhead:backend" 'wait_until 10 "[ \"\$(nkey bulkhead:backend)\" -eq 1 ]"'
alerts >"$T/a1.json"
jq -c '.[] | select(.kind == "queue" or .kind == "bulkhead") | {alertKey, value, threshold, message}' "$T/a1.json" | sed 's/^/  /'
# (the rule may look between two pushes, or before a worker took the
# first: 2, 3 or 4 waiting, all over 1)
check "queued row: value 2 to 4, threshold 1, an operator's message" 'jq -e "[.[] | select(.alertKey == \"queue:deliveries:queued\")][0] | .kind == \"queue\" and .source == \"deliveries\" and .value >= 2 and .value <= 4 and .threshold == 1 and .message == \"queue:deliveries:queued: \\(.value) deliveries waiting for the backend (more than 1)\"" "$T/a1.json"'
check "age rows: threshold 2000 ms, value above it" 'jq -e "[.[] | select(.alertKey | test(\"oldest_(queued|running)_age\"))] | all(.threshold == 2000 and .value > 2000)" "$T/a1.json"'
check "bulkhead row: the provider, who saw it, the cap" 'jq -e "[.[] | select(.alertKey == \"bulkhead:backend\")][0] | .kind == \"bulkhead\" and .provider == \"backend\" and (.source | startswith(\"tool-worker.\")) and .value == 1 and (.message | startswith(\"bulkhead:backend: saturated, all 1 of its places were taken\"))" "$T/a1.json"'
check "no dead letter yet: no dead-letter alert" '[ "$(nkey queue:deliveries:dead_letters)" -eq 0 ]'

# --- cooldowns -------------------------------------------------------------------
# (checks every second; the queue's state stays over its limits until the
# backend's answer, 15 s after the first delivery started)
check "after TOOL_QUEUE_ALERT_COOLDOWN_MS, still 3 waiting: a second queued alert" 'wait_until 12 "[ \"\$(nkey queue:deliveries:queued)\" -eq 2 ]"'
alerts | jq '[.[] | select(.alertKey == "queue:deliveries:queued") | .createdAt] | sort' >"$T/q.json"
echo "  queued alerts $(jq '.[1] - .[0]' "$T/q.json") ms apart (cooldown $QCOOL ms)"
check "the two at least the cooldown apart, and at most a few checks more" 'jq -e ".[1] - .[0] >= $QCOOL and .[1] - .[0] < $QCOOL + 4000" "$T/q.json"'
snap >"$T/s1.json"
check "many refusals by bulkhead backend, one bulkhead alert" 'jq -e ".bulkheads.backend.counters.saturated >= 2" "$T/s1.json" && [ "$(nkey bulkhead:backend)" -eq 1 ]'
check "admission still restarting, one crash-loop alert (monitor.alert_cooldown_ms)" 'jq -e ".processes[] | select(.role == \"admission\") | .restarts >= 5" "$T/s1.json" && [ "$(nkey crashloop:admission.0)" -eq 1 ]'
check "monitor.alertsInCooldown counted the held-back checks" 'jq -e ".totals[\"monitor.alertsInCooldown\"] >= 3" "$T/s1.json"'

# --- dead letters ------------------------------------------------------------------
curl -s -o /dev/null -X POST --data-binary "status=503" "$M/_relmock/faults/backend"
check "the 4 deliveries dead (1 attempt each, 503): queue:deliveries:dead_letters" 'wait_until 25 "[ \"\$(nkey queue:deliveries:dead_letters)\" -eq 1 ]"'
alerts >"$T/a2.json"
# (the rule may look while the last ones are still being tried: 2 to 4)
check "dead-letter row: 2 to 4 in the window, more than 1" 'jq -e "[.[] | select(.alertKey == \"queue:deliveries:dead_letters\")][0] | .value >= 2 and .value <= 4 and .threshold == 1 and .windowMs == 900000 and (.value as \$v | .message | test(\"\\(\$v) deliveries went to the dead letters in the last 15 min\"))" "$T/a2.json"'
check "all 4 deliveries in the dead letters" 'wait_until 10 "snap | jq -e \".deliveryQueue.dead == 4\" >/dev/null"'

# --- relstat / snapshot sections ----------------------------------------------------
snap >"$T/s2.json"
check "relstat -j toolQueueAlerts: the queue alerts only, the newest first" 'jq -e ".toolQueueAlerts | (.recent | length) >= 5 and all(.recent[]; .kind == \"queue\") and .recent[0].createdAt >= .recent[1].createdAt and .alertsInWindow >= 5" "$T/s2.json"'
check "/snapshot toolQueueAlerts: the same" 'curl -s "http://127.0.0.1:$ADMIN/snapshot" | jq -e ".toolQueueAlerts.recent | length >= 5 and all(.[]; .kind == \"queue\")"'
check "rateLimitPressure.recentAlerts: none of these" 'jq -e ".rateLimitPressure.recentAlerts == []" "$T/s2.json"'
check "relctl ratelimit alerts: none of these" '[ "$("$RELCTL" -c "$T/relgate.json" --json ratelimit alerts | jq length)" -eq 0 ]'
check "relctl alerts list --kind queue: the queue alerts" '"$RELCTL" -c "$T/relgate.json" --json alerts list --kind queue | jq -e "length >= 5 and all(.[]; .kind == \"queue\")"'

# --- map usage over the threshold ---------------------------------------------------
payload() { # payload N: a WhatsApp webhook with 200 messages
	local msgs= i
	for i in $(seq 0 199); do
		msgs="$msgs${msgs:+,}{\"id\":\"fill.$1.$i\",\"from\":\"15550001\",\"type\":\"text\",\"text\":{\"body\":\"$(printf 'x%.0s' $(seq 40))\"}}"
	done
	printf '{"object":"whatsapp_business_account","entry":[{"id":"waba","changes":[{"field":"messages","value":{"messages":[%s]}}]}]}' "$msgs"
}
pct() { snap | jq "$mon | .[\"monitor.storeMapUsagePct\"]"; }
for n in $(seq 20); do
	[ "$(pct)" -ge 50 ] && break
	payload "$n" >"$T/body"
	sig=$("$RGTOOL" wa-sign s3 <"$T/body")
	st=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -H "X-Hub-Signature-256: $sig" \
		--data-binary @"$T/body" "http://127.0.0.1:$PORT/api/whatsapp/webhook")
	[ "$st" = 200 ] || { echo "  webhook $n: $st"; break; }
	wait_until 3 '[ "$(pct)" -ge 50 ]'
done
echo "  map usage now $(pct) %"
check "the map 50 % used (store.map_alert_pct): store:map_usage" 'wait_until 10 "[ \"\$(nkey store:map_usage)\" -eq 1 ]"'
check "store row: percent used, threshold, what to do" 'alerts | jq -e "[.[] | select(.alertKey == \"store:map_usage\")][0] | .kind == \"store\" and .value >= 50 and .threshold == 50 and .mapBytes == 1048576 and (.message | test(\"raise store.map_size_mb\"))"'

# --- Sentry ------------------------------------------------------------------------------
check "every alert sent: as many envelopes as rows, all rows sent" 'wait_until 15 "[ \"\$(envelopes | jq length)\" -eq \"\$(alerts | jq length)\" ] && alerts | jq -e \"all(.[]; .sentry == \\\"sent\\\")\" >/dev/null"'
envelopes >"$T/env.json"
jq -c '.[] | {project, level, tags}' "$T/env.json" | sort -u | sed 's/^/  /'
check "queue alerts to TOOL_QUEUE_SENTRY_DSN's project 77, the others to SENTRY_DSN's 42" 'jq -e "all(.[]; (.tags.kind == \"queue\") == (.project == \"77\")) and all(.[]; .project == \"77\" or .project == \"42\")" "$T/env.json"'
check "an envelope per kind, with the DSN's key, tags alert_key and kind" 'jq -e "([.[].tags.kind] | unique) == [\"bulkhead\",\"crashloop\",\"queue\",\"store\"] and all(.[]; .sentryKey == \"rules-key\" and .level == \"warning\" and .message[0:(.tags.alert_key | length) + 2] == .tags.alert_key + \": \")" "$T/env.json"'
check "relmock refused no envelope" 'curl -s "$M/_relmock/sentry/stats" | jq -e ".unauthorized == 0 and .malformed == 0"'
check "the Sentry messages carry no secret" '! jq -r ".[] | .message, (.tags | tostring)" "$T/env.json" | grep -q -w -e backend-secret -e s3 -e tok'

remember_pids
stop_relgated
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'
finish
