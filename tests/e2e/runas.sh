#!/bin/bash
# runas.sh - the user relgated runs as (setting user, group):
#  - started as root with no user relgate on the machine and user unset,
#    it refuses in one line and starts nothing;
#  - started as an ordinary user (nobody, through setpriv, when the tests
#    run as root), the supervisor and every child run as that user, and
#    the segment and state are that user's;
#  - an ordinary user naming somebody else in user is refused in one
#    line, at start and by -t;
#  - root switching to another user opens the listeners first: a port
#    below 1024 serves, an ingress restarted gets its listener back.
. "$(dirname "$0")/lib.sh"

write_config "$T/relgate.json"

# --- root, no relgate user, user unset ---------------------------------------
if [ "$(id -u)" = 0 ] && ! getent passwd relgate >/dev/null; then
	out=$(env -u RELGATE_USER timeout 10 "$RELGATED" -f -c "$T/relgate.json" 2>&1)
	rc=$?
	echo "root without a relgate user: $out"
	check "root, no relgate user, user unset: refused at once, exit 1" '[ "$rc" = 1 ]'
	check "... in one line that says what to do" '[ "$(printf "%s\n" "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "no user relgate" && echo "$out" | grep -q "set user"'
	check "... and nothing was started (no child, no segment, no pidfile)" '! echo "$out" | grep -q "started ingress" && [ ! -e "/dev/shm$SHM" ] && [ ! -e "$T/run/relgated.pid" ]'
	out=$(env -u RELGATE_USER RELGATE_USER=no-such-user-here "$RELGATED" -t -c "$T/relgate.json" 2>&1)
	rc=$?
	check "-t: a user that does not exist is a config error naming user" '[ "$rc" != 0 ] && echo "$out" | grep -q "user: no such user"'
else
	echo "skipped: the root cases (not root, or a relgate user exists)"
fi

# --- an ordinary user ---------------------------------------------------------
if [ "$(id -u)" = 0 ]; then
	command -v setpriv >/dev/null || { echo "setpriv is required (util-linux)"; exit 99; }
	RUSER=nobody
	RGROUP=$(id -gn nobody)
	chmod 0711 "$T"
	mkdir -p "$T/n"
	chown "$RUSER:$RGROUP" "$T/n"
	sed -i -e "s|\"$T/state\"|\"$T/n/state\"|" -e "s|\"$T/run\"|\"$T/n/run\"|" "$T/relgate.json"
	chmod 0644 "$T/relgate.json"
	# a build tree nobody cannot reach (a checkout under a 0700 dir):
	# relgated and the role binaries copied where nobody can run them
	if ! setpriv --reuid=$RUSER --regid=$RGROUP --clear-groups test -x "$RELGATED"; then
		mkdir -p "$T/bin"
		for b in relgated ingress admission provider tool-worker monitor; do
			cp "$top_builddir/daemons/$b" "$T/bin/$b"
		done
		chmod 0755 "$T/bin" "$T"/bin/*
		RELGATED=$T/bin/relgated
		echo "the build tree is out of $RUSER's reach: running copies in $T/bin"
	fi
	cat >"$T/as-nobody" <<EOF
#!/bin/sh
exec setpriv --reuid=$RUSER --regid=$RGROUP --clear-groups env -u RELGATE_USER \${AS_USER:+RELGATE_USER=\$AS_USER} "$RELGATED" "\$@"
EOF
	chmod 0755 "$T/as-nobody"
	REAL_RELGATED=$RELGATED
	RELGATED=$T/as-nobody
else
	RUSER=$(id -un)
fi
start_relgated "$T/relgate.json"
check "relgated up, started by $RUSER" 'wait_for 15 "$all_ready"'
pids=$(snap | jq -r '.processes[].pid')
users=$(for p in $pids; do ps -o user= -p "$p"; done | sort -u | tr '\n' ' ')
echo "processes run as: $users"
check "the supervisor and every child run as $RUSER" '[ "$users" = "$RUSER " ] && [ "$(echo "$pids" | wc -w)" -ge 7 ]'
check "the segment is $RUSER's, group-readable" '[ "$(stat -c %U:%a "/dev/shm$SHM")" = "$RUSER:640" ]'
check "the state directory is $RUSER's" '[ "$(stat -c %U "$(jq -r .state_dir "$T/relgate.json")")" = "$RUSER" ]'
stop_relgated
# (AS_USER: the setting, past the wrapper that clears the tests' own)
out=$(AS_USER=root RELGATE_USER=root timeout 10 "$RELGATED" -f -c "$T/relgate.json" 2>&1)
rc=$?
echo "$RUSER asking for root: $out"
if [ "$RUSER" != root ]; then
	check "an ordinary user naming root: refused in one line naming user" '[ "$rc" != 0 ] && [ "$(printf "%s\n" "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "user: \"root\": only root can switch users"'
	out=$(AS_USER=root RELGATE_USER=root "$RELGATED" -t -c "$T/relgate.json" 2>&1)
	rc=$?
	check "... and by -t" '[ "$rc" != 0 ] && echo "$out" | grep -q "only root can switch users"'
fi

# --- root switching to a user: listeners opened before the switch -------------
# a port below 1024 works, although every process then runs as nobody
if [ "$(id -u)" = 0 ]; then
	RELGATED=$REAL_RELGATED
	LOW=
	for p in $(seq 990 999); do
		ss -Hltn "sport = :$p" | grep -q . || { LOW=$p; break; }
	done
	sed -e "s|127.0.0.1:$PORT\"|127.0.0.1:$LOW\"|" "$T/relgate.json" >"$T/low.json"
	OLD_PORT=$PORT
	PORT=$LOW
	RELGATE_USER=$RUSER start_relgated "$T/low.json"
	check "root with user $RUSER on port $LOW: up" 'wait_for 15 "$all_ready"'
	pids=$(snap | jq -r '.processes[].pid')
	users=$(for p in $pids; do ps -o user= -p "$p"; done | sort -u | tr '\n' ' ')
	echo "processes run as: $users"
	check "... every process runs as $RUSER" '[ "$users" = "$RUSER " ] && [ "$(echo "$pids" | wc -w)" -ge 7 ]'
	code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$LOW/api/chat/health")
	check "... and serves on port $LOW, opened while root" '[ "$code" = 200 ]'
	ING=$(snap | jq -r '[.processes[] | select(.role == "ingress") | .pid][0]')
	kill -KILL "$ING"
	check "... a restarted ingress gets its listener back" 'wait_for 15 "$all_ready and ([.processes[] | select(.role == \"ingress\") | .pid] | index($ING) == null)"'
	code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$LOW/api/chat/health")
	check "... and serves on it" '[ "$code" = 200 ]'
	stop_relgated
	check "after the stop nothing listens on port $LOW" '! ss -Hltn "sport = :$LOW" | grep -q .'
	PORT=$OLD_PORT
fi
finish
