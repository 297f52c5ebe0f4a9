#!/bin/bash
# newuser.sh - the README, followed by a new user: from a fresh copy of
# the source (a git clone of the committed tree when this is a git
# checkout, else a copy of the unpacked release tarball), the README's run
# command exactly as README.md states it (it installs what is missing and
# builds), then every command of its "Try it" block verbatim from the top
# of the copy, each of which must exit 0 and show what the README says;
# then SIGTERM, a second start (tokens kept) and Ctrl-C, each stopping
# relgated and relmock.
#
# The README uses fixed ports (8080, 8090, 9464) and the shm name
# /relgate.dev, so everything runs in private namespaces (network, mount
# with its own /dev/shm, pid: whatever is left dies with the namespace).
# Without them the test is skipped (77).
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
WAIT_READY_S=600 # the first start builds the whole tree

if [ "${1:-}" != --inner ]; then
	for c in unshare ip curl jq; do
		command -v "$c" >/dev/null || { echo "SKIP: $c is missing"; exit 77; }
	done
	if ! unshare -rnmpf --mount-proc true 2>/dev/null; then
		echo "SKIP: cannot create network, mount and pid namespaces (unshare -rnmpf)"
		exit 77
	fi
	T=$(mktemp -d /tmp/rgnew.XXXXXX)
	trap 'rm -rf "$T"' EXIT
	trap 'exit 1' INT TERM
	src=$(cd "$top_srcdir" && pwd -P)
	if [ "$(git -C "$src" rev-parse --show-toplevel 2>/dev/null)" = "$src" ]; then
		git clone -q "$src" "$T/relgate" || exit 1
		echo "fresh clone of $src at $(git -C "$T/relgate" log -1 --format='%h %s')"
	else
		# an unpacked tarball: the source as shipped, without the
		# build trees (a config.status), install tree (make
		# distcheck's _inst) and local state that may sit inside it
		mkdir "$T/relgate"
		for f in "$src"/* "$src"/.[!.]*; do
			[ -e "$f" ] || continue
			[ -e "$f/config.status" ] && continue
			case ${f##*/} in
			_build | _inst | var | .output) continue ;;
			esac
			cp -pR "$f" "$T/relgate/" || exit 1
		done
		chmod -R u+w "$T/relgate"
		echo "fresh copy of the source tree $src"
	fi
	unshare -rnmpf --mount-proc bash "$0" --inner "$T"
	exit $?
fi

# --- inside the namespaces: pid 1, own loopback, own /dev/shm -------------
T=$2
R=$T/relgate
. "$(dirname "$0")/check.sh"
ip link set lo up || exit 1
mount -t tmpfs -o mode=1777 tmpfs /dev/shm || exit 1
cd "$R" || exit 1

# block NAME - the commands of the fenced block after <!-- newuser:NAME -->
# in README.md, one per line: continuation lines joined, blank and comment
# lines dropped
block() {
	awk -v mark="<!-- newuser:$1 -->" '
		$0 == mark { found = 1; next }
		found == 1 && /^```/ { found = 2; next }
		found == 2 && /^```/ { exit }
		found == 2 { print }' README.md |
	    sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | grep -v -e '^[[:space:]]*$' -e '^[[:space:]]*#'
}
mapfile -t RUN < <(block run)
mapfile -t TRY < <(block try)
check "README: one run command" '[ "${#RUN[@]}" -eq 1 ]'
check "README: a try block" '[ "${#TRY[@]}" -ge 1 ]'
[ "${#RUN[@]}" -eq 1 ] && [ "${#TRY[@]}" -ge 1 ] || { finish; exit 1; }
echo "run command: ${RUN[0]}"

DEV_PID=
# start N - the run command in a process group of its own (job control:
# a Ctrl-C goes to that group), from the top of the copy; log in
# $T/runN.log; waits until /readyz answers 200
start() {
	set -m
	"${CLEAN[@]}" bash -c "${RUN[0]}" >"$T/run$1.log" 2>&1 &
	DEV_PID=$!
	set +m
	local i
	for i in $(seq $((WAIT_READY_S * 5))); do
		curl -sf -o /dev/null http://127.0.0.1:9464/readyz && return 0
		kill -0 "$DEV_PID" 2>/dev/null || break
		sleep 0.2
	done
	echo "--- run command log (last 40 lines)"; tail -n 40 "$T/run$1.log"
	return 1
}
# stop_check HOW PIDS - the run command exits 0 after HOW, and the
# processes it started are gone
stop_check() {
	local how=$1 rc= i p left=
	shift
	for i in $(seq 300); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$DEV_PID" 2>/dev/null; then
		fail "$how: the run command did not exit within 30 s"
		return
	fi
	wait "$DEV_PID"; rc=$?
	check "$how: the run command exits 0" '[ "$rc" -eq 0 ]'
	for p in "$@"; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
	check "$how: relgated and relmock are gone (pids $*)" '[ -z "$left" ]'
	check "$how: shm segment /relgate.dev removed" '[ ! -e /dev/shm/relgate.dev ]'
	check "$how: nothing listens on 8080, 8090, 9464" 'ports_closed'
}
ports_closed() {
	local p
	for p in 8080 8090 9464; do
		curl -s -o /dev/null "http://127.0.0.1:$p/" && return 1
	done
	return 0
}
not_grep() { ! grep -q "$@"; }
# the environment of a new user's shell, not that of make check
CLEAN=(env -i HOME="$HOME" PATH="$PATH" LANG=C.UTF-8 USER="$(id -un)")
# children PID - pids of the processes PID started (relgated, relmock)
children() { ps -o pid= --ppid "$1" | tr -d ' '; }

# --- first start ------------------------------------------------------------
if ! start 1; then
	fail "the run command brings relgate up (/readyz 200 within $WAIT_READY_S s)"
	finish; exit 1
fi
ok "the run command brings relgate up (/readyz 200)"
check "var/dev.env generated" 'test -s var/dev.env'
token=$(sed -n 's/^export GMAIL_PUBSUB_VERIFY_TOKEN=//p' var/dev.env)
check "the tokens are printed at start" 'grep -q "GMAIL_PUBSUB_VERIFY_TOKEN=$token" "$T/run1.log"'
secret_hidden() { # no generated secret in relstat -j
	local v
	build/tools/relstat -n /relgate.dev -j >"$T/snap.json" || return 1
	for v in $(sed -n 's/^export [A-Z_]*=//p' var/dev.env); do
		grep -qF "$v" "$T/snap.json" && return 1
	done
	return 0
}
check "relstat shows none of the generated tokens and secrets" 'secret_hidden'
KIDS=$(children "$DEV_PID")
check "relgated and relmock run under the run command" '[ "$(echo "$KIDS" | wc -w)" -eq 2 ]'

# --- the try block, verbatim, in one shell at the top of the copy ----------
: >"$T/try.sh"
for i in "${!TRY[@]}"; do
	printf '{ %s\n} >%q 2>&1; echo $? >%q\n' "${TRY[$i]}" "$T/out.$i" "$T/rc.$i" >>"$T/try.sh"
done
"${CLEAN[@]}" bash "$T/try.sh"
hid=
seen=
for i in "${!TRY[@]}"; do
	cmd=${TRY[$i]} out=$T/out.$i
	echo "\$ $cmd"; awk '{ print "  " $0 }' "$out" | head -n 12
	check "exit 0: $cmd" '[ "$(cat "$T/rc.$i")" = 0 ]'
	case $cmd in
	". var/dev.env" | data=*)
		seen="$seen setup" ;;
	*"/api/gmail/push"*)
		seen="$seen push"
		check "the push is accepted: {\"ok\":true}" 'jq -e '\''. == {"ok": true}'\'' "$out"'
		;;
	*"relctl"*"idempotency recent"*)
		seen="$seen idempotency"
		hid=$(sed -n 's/^key=me@example\.com:\([0-9]*\) .*deliveryId=[0-9a-f]\{32\}$/\1/p' "$out" | head -n 1)
		check "relctl lists the push's key with its delivery id" '[ -n "$hid" ]'
		;;
	*"relctl"*"deliveries list"*)
		seen="$seen queue"
		check "relctl deliveries list prints the queue" 'grep -Eq '\''^[0-9]+ of [0-9]+ rows$'\'' "$out"'
		;;
	*"_relmock/backend/deliveries"*)
		seen="$seen delivered"
		# the delivery reaches the backend a moment after the 200:
		# the same command again until it shows (bounded)
		for _ in $(seq 100); do
			jq -e --arg h "$hid" '.topic == "gmail.history" and .signatureValid == true and .body.emailAddress == "me@example.com" and .body.historyId == $h' "$out" >/dev/null 2>&1 && break
			sleep 0.1
			"${CLEAN[@]}" bash -c "$cmd" >"$out" 2>&1
		done
		check "relmock shows the push delivered, signed, decoded (historyId ${hid:-?})" 'jq -e --arg h "$hid" '\''.topic == "gmail.history" and .signatureValid == true and .body.emailAddress == "me@example.com" and .body.historyId == $h'\'' "$out"'
		;;
	*"relstat"*)
		seen="$seen relstat"
		for role in supervisor ingress admission provider tool-worker monitor; do
			check "relstat -1: $role ready" 'grep -Eq "^$role +[0-9]+ +[0-9]+ +ready " "$out"'
		done
		check "relstat -1: no process that is not ready" 'not_grep -E "^[a-z-]+ +[0-9]+ +[0-9]+ +(starting|backoff|stopping|dead) " "$out"'
		;;
	TOKEN=*"relctl"*"jwt mint"*)
		seen="$seen token"
		check "relctl jwt mint prints nothing (the token is in TOKEN)" '[ ! -s "$out" ]'
		;;
	*"relmock-tool"*"/api/chat"*)
		seen="$seen tools"
		check "the tool chat: the call, relmock's search results, the answer that echoes them" 'grep -q "^data: {\"type\":\"tool-input-available\",.*\"toolName\":\"search_web\",\"input\":{\"query\":\"lmdb\"}" "$out" && grep -q "^data: {\"type\":\"tool-output-available\",.*Result 1 for lmdb" "$out" && grep -q "\"delta\":\"tool result: " "$out" && grep -q "^data: \[DONE\]$" "$out"'
		;;
	*"/api/chat"*)
		seen="$seen chat"
		check "the chat streams the UI message stream to its end" 'grep -q "^data: {\"type\":\"text-delta\"" "$out" && grep -q "^data: \[DONE\]$" "$out"'
		check "the chat's text is relmock's answer" 'grep -q "\"delta\":\"w0 \"" "$out"'
		;;
	*"/readyz"*)
		seen="$seen readyz"
		check "/readyz: ready" 'jq -e '\''.ready == true'\'' "$out"'
		;;
	*)
		fail "a README command without a check in newuser.sh: $cmd" ;;
	esac
done
for what in setup push idempotency queue delivered token chat tools relstat readyz; do
	check "the try block has the $what step" 'grep -qw "$what" <<<"$seen"'
done

# --- SIGTERM to the run command stops everything ----------------------------
kill -TERM "$DEV_PID"
stop_check "SIGTERM" $KIDS

# --- a second start keeps the tokens; Ctrl-C stops everything ---------------
sum=$(md5sum <var/dev.env)
if start 2; then
	ok "second start: up again"
	check "second start: var/dev.env unchanged" '[ "$(md5sum <var/dev.env)" = "$sum" ]'
	check "second start: the same token printed" 'grep -q "GMAIL_PUBSUB_VERIFY_TOKEN=$token" "$T/run2.log"'
	KIDS=$(children "$DEV_PID")
	kill -INT -- "-$DEV_PID" # what Ctrl-C in its terminal sends
	stop_check "Ctrl-C" $KIDS
else
	fail "second start: up again"
fi
finish
