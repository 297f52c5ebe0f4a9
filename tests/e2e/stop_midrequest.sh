#!/bin/bash
# stop_midrequest.sh - an ingress told to stop (SIGTERM) while a chat
# request is still arriving: a head that completes after the stop, and a
# body that completes after it, are both answered 503 overloaded with
# Retry-After while the ingress flushes its answers; the ingress exits 0
# (it does not crash), and the supervisor starts it again.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "python3 is required"; exit 99; }
SECRET=stop-midrequest-secret-of-32-bytes-at-least
write_config "$T/relgate.json" "\"auth\": { \"jwt\": { \"secret\": \"$SECRET\" } }, \"FF_ADMISSION_ENFORCE\": false"
sed -i 's/"ingress": { "count": 2 }/"ingress": { "count": 1 }/' "$T/relgate.json"
start_relgated "$T/relgate.json"
check "all roles ready" 'wait_for 15 "$all_ready"'
TOK=$("$RELCTL" -c "$T/relgate.json" -n "$SHM" jwt mint --sub stop-user)

# send PART: "head" stops before the head's blank line, "body" before the
# body's last byte; then SIGTERM to the ingress, then the rest
send_split() {
	python3 - "$PORT" "$TOK" "$1" "$2" <<'PY'
import os, signal, socket, sys, time
port, tok, part, ing = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
body = b'{"threadId":"t","messages":[{"role":"user","content":"hi"}]}'
head = ("POST /api/chat HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n"
        "Content-Type: application/json\r\nContent-Length: %d\r\n" % (tok, len(body))).encode()
whole = head + b"\r\n" + body
cut = len(head) if part == "head" else len(whole) - 1
s = socket.create_connection(("127.0.0.1", port))
s.sendall(whole[:cut])
time.sleep(0.3)
os.kill(ing, signal.SIGTERM)
time.sleep(0.2)
s.sendall(whole[cut:])
s.settimeout(5)
data = b""
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
except Exception:
    pass
print(data.decode("latin-1").split("\r\n\r\n")[0].replace("\r\n", " | "))
print(data.decode("latin-1").split("\r\n\r\n", 1)[-1])
PY
}
ingress_pid() { snap | jq -r '.processes[] | select(.role == "ingress") | .pid'; }

for part in head body; do
	pid=$(ingress_pid)
	send_split "$part" "$pid" >"$T/ans.$part"
	sed 's/^/  | /' "$T/ans.$part"
	check "the $part completed after the stop: 503 overloaded with Retry-After" 'head -n 1 "$T/ans.$part" | grep -q "^HTTP/1.1 503 .*| Retry-After: [0-9]" && grep -q "\"code\":\"overloaded\"" "$T/ans.$part"'
	check "the $part: the ingress (pid $pid) exited 0, not by a signal" 'for _ in $(seq 50); do grep -q "ingress.0 (pid $pid) .*exit 0" "$LOG" && break; sleep 0.1; done; grep -q "ingress.0 (pid $pid) .*exit 0" "$LOG" && ! grep -q "ingress.0 (pid $pid) .*signal" "$LOG"'
	check "the $part: the ingress started again and serves" 'wait_for 15 "$all_ready" && [ "$(ingress_pid)" != "$pid" ]'
done
finish
