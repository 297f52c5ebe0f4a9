#!/bin/bash
# config.sh - configuration contracts: relgated -t names the broken key in
# one line (a bulkhead cap above the lease slots of a bulkhead, a Sentry
# DSN without its key or project too), environment names of SPEC section 2
# override the file, secrets never leave redacted, SIGHUP applies a good
# file and keeps the running config when the new file is broken.
. "$(dirname "$0")/lib.sh"

# --- relgated -t ---------------------------------------------------------
t_line() { # t_line FILE -> runs relgated -t; stores rc and stderr
	"$RELGATED" -t -c "$1" >"$T/t.out" 2>"$T/t.err"; TRC=$?
}
write_config "$T/good.json"
t_line "$T/good.json"
check "-t on a good file: exit 0" '[ "$TRC" -eq 0 ]'
check "-t prints that it is ok" 'grep -q "is ok" "$T/t.out"'

bad() { # bad DESCRIPTION EXTRA_JSON EXPECTED_KEY
	write_config "$T/bad.json" "$2"
	t_line "$T/bad.json"
	if [ "$TRC" -ne 0 ] && [ "$(wc -l <"$T/t.err")" -eq 1 ] && grep -q -- "$3" "$T/t.err"; then
		ok "-t $1: exit $TRC, one line: $(cat "$T/t.err")"
	else
		fail "-t $1 (rc $TRC): $(cat "$T/t.err")"
	fi
}
bad "out of range" '"RATE_LIMIT_GMAIL_PUSH_MAX": 0' RATE_LIMIT_GMAIL_PUSH_MAX
bad "wrong type" '"RATE_LIMIT_CHAT_STREAM_MAX": "many"' RATE_LIMIT_CHAT_STREAM_MAX
bad "unknown key" '"http2": {"listen": "x"}' http2
bad "unknown nested key" '"auth": {"jwt": {"alg": "HS256", "algo": "x"}}' auth.jwt.algo
bad "bad enum" '"auth": {"jwt": {"alg": "none"}}' auth.jwt.alg
bad "Sentry DSN without a key" '"SENTRY_DSN": "https://sentry.example/42"' 'SENTRY_DSN: value \*\*\* is not a Sentry DSN'
bad "queue Sentry DSN without a project" '"TOOL_QUEUE_SENTRY_DSN": "https://dsnkey7781@sentry.example"' 'TOOL_QUEUE_SENTRY_DSN: value \*\*\* is not a Sentry DSN'
check "-t bad Sentry DSN: its key is not printed" '! grep -q dsnkey7781 "$T/t.err"'
sed "s/127.0.0.1:$ADMIN/127.0.0.1/" "$T/good.json" >"$T/bad.json"
t_line "$T/bad.json"
check "-t bad listen address: one line naming admin.listen" '[ "$TRC" -ne 0 ] && [ "$(wc -l <"$T/t.err")" -eq 1 ] && grep -q admin.listen "$T/t.err"'

RATE_LIMIT_GMAIL_PUSH_MAX=2000000 "$RELGATED" -t -c "$T/good.json" >/dev/null 2>"$T/t.err"; TRC=$?
check "-t env out of range: non-zero, names the variable" '[ "$TRC" -ne 0 ] && grep -q RATE_LIMIT_GMAIL_PUSH_MAX "$T/t.err"'
BULKHEAD_OR_PRI_MAX_CONCURRENT=32769 "$RELGATED" -t -c "$T/good.json" >/dev/null 2>"$T/t.err"; TRC=$?
check "-t bulkhead cap above the 32768 lease slots: one line naming the knob and the capacity" '[ "$TRC" -ne 0 ] && [ "$(wc -l <"$T/t.err")" -eq 1 ] && grep -q "BULKHEAD_OR_PRI_MAX_CONCURRENT.*allowed 1..32768" "$T/t.err"'
RELGATE_HTTP_LISTEN=nonsense "$RELGATED" -t -c "$T/good.json" >/dev/null 2>"$T/t.err"; TRC=$?
check "-t RELGATE_HTTP_LISTEN=nonsense: non-zero, names http.listen" '[ "$TRC" -ne 0 ] && grep -q "http.listen" "$T/t.err"'

"$RELGATED" --help-config >"$T/help.txt"
for name in RELGATE_HTTP_LISTEN RELGATE_ADMIN_LISTEN RELGATE_STATE_DIR RELGATE_RUN_DIR RELGATE_SHM_NAME RELGATE_STORE_MAP_SIZE_MB RELGATE_INGRESS_COUNT RELGATE_TOOL_WORKER_COUNT RELGATE_HTTP_TRUSTED_PROXIES RELGATE_HTTP_ALLOWED_ORIGINS RELGATE_BACKEND_URL RELGATE_BACKEND_SECRET RELGATE_APP_URL RELGATE_OAUTH_TOKEN_URL RELGATE_AUTH_JWT_ALG RELGATE_AUTH_JWT_LEEWAY_S RELGATE_PROVIDER_PRIMARY_BASE_URL RELGATE_TLS_CA_FILE RATE_LIMIT_WA_LINK_CODE_MAX ADMISSION_TICKET_TTL_MS FF_CHAT_GATEWAY_ENABLED TOOL_QUEUE_ALERT_MAX_DLQ; do
	grep -qw "$name" "$T/help.txt" || fail "--help-config lacks $name"
done
ok "--help-config lists the SPEC names"
check "docs/config.md matches the knob table (make docs)" '"$RELGATED" --help-config=markdown | cmp -s - "$top_srcdir/docs/config.md"'

# --- run with environment overrides and a secret ------------------------
cat >"$T/run.json" <<JSON
{ "store": { "map_size_mb": 64 }, "ingress": { "count": 1 },
  "tool_worker": { "count": 1 }, "RATE_LIMIT_GMAIL_PUSH_MAX": 50 }
JSON
SECRET=s3cr3t-$RANDOM-value
export RELGATE_STATE_DIR=$T/state RELGATE_RUN_DIR=$T/run RELGATE_SHM_NAME=$SHM
export RELGATE_HTTP_LISTEN=127.0.0.1:$PORT RELGATE_ADMIN_LISTEN=127.0.0.1:$ADMIN
export WHATSAPP_APP_SECRET=$SECRET RELGATE_BACKEND_SECRET=$SECRET RATE_LIMIT_WHATSAPP_MAX=77
export BULKHEAD_OR_PRI_MAX_CONCURRENT=20000 # 20,000 chat streams
start_relgated "$T/run.json"
check "started from environment names" 'wait_for 15 "$all_ready"'
snap >"$T/snap.json"
check "env RELGATE_HTTP_LISTEN is in effect" 'jq -e --arg l "127.0.0.1:$PORT" ".config.http.listen == \$l" "$T/snap.json"'
check "env RATE_LIMIT_WHATSAPP_MAX=77 is in effect" 'jq -e ".config.RATE_LIMIT_WHATSAPP_MAX == 77" "$T/snap.json"'
check "file value RATE_LIMIT_GMAIL_PUSH_MAX=50 is in effect" 'jq -e ".config.RATE_LIMIT_GMAIL_PUSH_MAX == 50" "$T/snap.json"'
check "env BULKHEAD_OR_PRI_MAX_CONCURRENT=20000: bulkhead of 20000 places in 32768 slots" 'jq -e ".bulkheads.openrouter_chat_primary | .maxConcurrent == 20000 and .capacity == 32768 and .held == 0" "$T/snap.json"'
check "secrets redacted in relstat" 'jq -e ".config.WHATSAPP_APP_SECRET == \"***\" and .config.backend.secret == \"***\"" "$T/snap.json"'
"$RELSTAT" -n "$SHM" -1 >"$T/snap.txt"
check "no secret in relstat -j, relstat -1 or the log" '[ -z "$(grep -l -- "$SECRET" "$T/snap.json" "$T/snap.txt" "$LOG")" ]'
check "effective config for children is mode 0600" '[ "$(stat -c %a "$T/run/effective.json")" = 600 ]'
check "shm segment is mode 0640" '[ "$(stat -c %a "/dev/shm$SHM")" = 640 ]'

# --- SIGHUP with a good file, then with a broken one ----------------------
pids_before=$(snap | jq -c '[.processes[].pid]')
sed -i 's/"RATE_LIMIT_GMAIL_PUSH_MAX": 50/"RATE_LIMIT_GMAIL_PUSH_MAX": 99/' "$T/run.json"
kill -HUP "$SV_PID"
check "good reload: generation 2 published" 'wait_for 5 ".header.configGeneration == 2 and .config.RATE_LIMIT_GMAIL_PUSH_MAX == 99"'
check "good reload: every child runs generation 2" 'wait_for 5 "[.processes[].configGen] | all(. == 2)"'
check "good reload: counted" 'wait_for 2 ".processes[] | select(.role == \"supervisor\") | .counters[\"reloads.ok\"] == 1"'

sed -i 's/"RATE_LIMIT_GMAIL_PUSH_MAX": 99/"RATE_LIMIT_GMAIL_PUSH_MAX": -5/' "$T/run.json"
kill -HUP "$SV_PID"
for _ in $(seq 100); do grep -q 'reload refused' "$LOG" && break; sleep 0.05; done
check "broken reload: log names the key" 'grep -q "reload refused.*RATE_LIMIT_GMAIL_PUSH_MAX" "$LOG"'
check "broken reload: counted in relstat" 'wait_for 2 ".processes[] | select(.role == \"supervisor\") | .counters[\"reloads.failed\"] == 1"'
snap >"$T/snap2.json"
check "broken reload: old config kept (generation 2, value 99)" 'jq -e ".header.configGeneration == 2 and .config.RATE_LIMIT_GMAIL_PUSH_MAX == 99" "$T/snap2.json"'
check "broken reload: relgated and every child still running" '[ "$(jq -c "[.processes[].pid]" "$T/snap2.json")" = "$pids_before" ] && kill -0 "$SV_PID"'
check "broken reload: all still ready" 'jq -e "$all_ready" "$T/snap2.json"'

stop_relgated
check "SIGTERM: exit 0" '[ "$SV_RC" = 0 ]'
finish
