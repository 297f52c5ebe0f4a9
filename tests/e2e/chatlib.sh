# chatlib.sh - what the chat end-to-end scripts share (sourced after
# lib.sh): the npm clients, relmock as the upstream (started here), the
# JWT secret and the config fragment that wires relgated to relmock, and
# helpers to read answers, SSE events and relmock's counters.

command -v curl >/dev/null || { echo "curl is required"; exit 99; }
node_clients
start_relmock
export RELGATE_TOOLS=$(tools_at "$M") # relmock's Serper and eBay
SECRET=e2e-secret-of-at-least-32-bytes-long
# CHAT_CONF: auth.jwt with SECRET, both routes to relmock
CHAT_CONF="\"auth\": { \"jwt\": { \"secret\": \"$SECRET\" } },
  \"provider\": { \"primary\": { \"base_url\": \"$M/v1\" }, \"secondary\": { \"base_url\": \"$M/secondary/v1\" } }"

url() { echo "http://127.0.0.1:$PORT/api/chat"; } # PORT may move
# body OPTIONS: a chat whose message is relmock's directive
body() { printf '{"threadId":"t","messages":[{"role":"user","content":"relmock: %s"}]}' "$1"; }
# status NAME / header NAME FIELD: of the answer saved in $T/h.NAME
status() { head -n 1 "$T/h.$1" | awk '{print $2}'; }
header() { grep -i "^$2:" "$T/h.$1" | head -n 1 | cut -d' ' -f2-; }
# want_text N: relmock's answer of N tokens ("w0 w1 ... ")
want_text() { jq -rn "[range($1)] | map(\"w\\(.) \") | add // \"\""; }
mock_stats() { curl -s "$M/_relmock/chat/stats"; }
# settle SECONDS JQ: relmock's chat counters satisfy JQ (bounded)
settle() {
	local i
	for i in $(seq $(($1 * 20))); do mock_stats | jq -e "$2" >/dev/null 2>&1 && return 0; sleep 0.05; done
	return 1
}
