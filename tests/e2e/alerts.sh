#!/bin/bash
# alerts.sh - the rate-limit alert rule (RATE_LIMIT_ALERT_MIN_BLOCKED
# blocked events of a bucket in monitor.alert_window_ms) checked every
# monitor.alert_interval_ms: the first check after a flood creates one
# alert, the next ones none while its key is in its cooldown, one again
# after it; each alert is stored (relctl alerts list, relstat -j
# recentAlerts) and sent to Sentry as an envelope (relmock's receiver:
# path /api/PROJECT/envelope/, X-Sentry-Auth with the DSN's key, level,
# message and tags); with Sentry down the alert is stored all the same,
# marked pending, and sent once Sentry answers again.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "curl is required"; exit 99; }

echo '{ "sentry_key": "alert-public-key" }' >"$T/mock.json"
start_relmock -c "$T/mock.json"
COOL=6000
write_config "$T/relgate.json" "\"app_url\": \"https://app.example\",
  \"RATE_LIMIT_GMAIL_OAUTH_MAX\": 1, \"RATE_LIMIT_GMAIL_OAUTH_WINDOW_MS\": 3600000,
  \"RATE_LIMIT_ALERT_MIN_BLOCKED\": 10, \"RATE_LIMIT_ALERT_COOLDOWN_MS\": $COOL,
  \"SENTRY_DSN\": \"http://alert-public-key@127.0.0.1:$MOCK/4242\",
  \"monitor\": { \"alert_interval_ms\": 1000, \"alert_window_ms\": 600000 }"
start_relgated "$T/relgate.json"
check "all roles ready" 'wait_for 15 "$all_ready"'
CB="http://127.0.0.1:$PORT/api/gmail/auth/callback?code=x"
flood() { local a=() i; for i in $(seq "$1"); do a+=(-o /dev/null "$CB"); done; curl -s "${a[@]}"; }
alerts() { "$RELCTL" -n "$SHM" --json alerts list --limit 100; }
nalerts() { alerts | jq length; }
envelopes() { curl -s "$M/_relmock/sentry/envelopes"; }
# wait_until SECONDS 'CONDITION'
wait_until() { local i; for i in $(seq $(($1 * 10))); do eval "$2" && return 0; sleep 0.1; done; return 1; }

check "no alert before the flood" '[ "$(nalerts)" -eq 0 ]'
flood 30
check "a flood of 29 refusals (threshold 10): one alert" 'wait_until 15 "[ \"\$(nalerts)\" -ge 1 ]" && [ "$(nalerts)" -eq 1 ]'
alerts >"$T/a1.json"
jq -c '.[0] | {alertKey, occurrences, sentry, message}' "$T/a1.json" | sed 's/^/  /'
check "the alert: key, occurrences, threshold, window" 'jq -e ".[0] | .alertKey == \"ratelimit:http:gmail_oauth_callback\" and .occurrences == 29 and .threshold == 10 and .windowMs == 600000 and .level == \"warning\" and .kind == \"ratelimit\"" "$T/a1.json"'
check "Sentry took it: one envelope at relmock, the alert marked sent" 'wait_until 10 "[ \"\$(envelopes | jq length)\" -eq 1 ] && [ \"\$(alerts | jq -r \".[0].sentry\")\" = sent ]"'
envelopes >"$T/env.json"
jq -c '.[0] | {project, sentryKey, level, message, tags}' "$T/env.json" | sed 's/^/  /'
check "the envelope: project 4242, the DSN's key, level warning" 'jq -e ".[0] | .project == \"4242\" and .sentryKey == \"alert-public-key\" and .level == \"warning\"" "$T/env.json"'
check "the envelope: message with the alert key, tags alert_key and source" 'jq -e ".[0] | (.message | startswith(\"ratelimit:http:gmail_oauth_callback: 29 blocked\")) and .tags.alert_key == \"ratelimit:http:gmail_oauth_callback\" and .tags.source == \"http\"" "$T/env.json"'
check "relmock saw no envelope it refused" 'curl -s "$M/_relmock/sentry/stats" | jq -e ".unauthorized == 0 and .malformed == 0"'

# --- cooldown: more checks, more refusals, no second alert ----------------
flood 5
sleep 2.5
check "checks in the cooldown: still one alert" '[ "$(nalerts)" -eq 1 ] && [ "$(envelopes | jq length)" -eq 1 ]'
check "monitor.alertsInCooldown counts the checks that held back" 'snap | jq -e ".totals[\"monitor.alertsInCooldown\"] >= 1 and .totals[\"monitor.alertsRaised\"] == 1 and .totals[\"monitor.alertsSent\"] == 1"'
check "after the cooldown: one alert again" 'wait_until 15 "[ \"\$(nalerts)\" -eq 2 ]"'
check "relstat -j rateLimitPressure.recentAlerts: both, the newest first" 'snap | jq -e ".rateLimitPressure.recentAlerts | length == 2 and .[0].createdAt > .[1].createdAt"'

# --- Sentry down: stored, pending, sent later ---------------------------------
wait_until 10 '[ "$(envelopes | jq length)" -eq 2 ]'
curl -s -o /dev/null -X POST --data-binary "status=503" "$M/_relmock/faults/sentry"
check "after the next cooldown, with Sentry answering 503: a third alert, stored" 'wait_until 20 "[ \"\$(nalerts)\" -eq 3 ]"'
check "it is pending, with the reason" 'wait_until 5 "alerts | jq -e \".[0] | .sentry == \\\"pending\\\" and .sentryError == \\\"HTTP 503\\\"\" >/dev/null"'
check "relmock answered that envelope 503" 'curl -s "$M/_relmock/stats" | jq -e ".endpoints.sentry.faulted == 1"'
curl -s -o /dev/null -X POST --data-binary "none" "$M/_relmock/faults/sentry"
check "Sentry back: the pending alert is sent at a later check" 'wait_until 10 "[ \"\$(alerts | jq -r \".[0].sentry\")\" = sent ]" && [ "$(envelopes | jq length)" -eq 4 ] && alerts | jq -e ".[0].sentryAttempts == 2" >/dev/null'
check "monitor.alertSendFailures counted the refusals" 'snap | jq -e ".totals[\"monitor.alertSendFailures\"] >= 1"'
check "the sentry circuit and bulkhead are the ones used" 'snap | jq -e ".bulkheads.sentry.counters.acquired >= 4 and .circuits.sentry.counters.failures >= 1"'

remember_pids
stop_relgated
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'
finish
