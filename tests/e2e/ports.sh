# ports.sh - loopback TCP ports for relgate's tests and benchmarks
# (sourced by tests/e2e/lib.sh and bench/run.sh; bash, safe under set -eu).
#
# Ports come from below the kernel's ephemeral range (read from
# /proc/sys/net/ipv4/ip_local_port_range), so no outgoing connection of
# any program is ever given one of them; none is listening when picked;
# and each is claimed in a per-user directory, so tests running at the
# same time never pick the same port.  A claim is a symlink naming the
# claiming shell's pid; the claim of a pid that is gone is taken over.
# port_owner_check tells whether a port is served by the process a test
# started (or its children) and by nothing else: with SO_REUSEPORT a
# second server on the same port would otherwise share its connections.
# Needs ss (iproute2).

PORTS_DIR=${TMPDIR:-/tmp}/relgate-ports.$(id -u)
PORTS_CLAIMED=

# ports_pool - prints "LOW HIGH": the range ports are picked from.
ports_pool() {
	local lo=32768 hi=60999
	if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
		read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
	fi
	if [ "$lo" -gt 11000 ]; then
		echo "10000 $((lo - 1))"
	elif [ "$hi" -lt 64000 ]; then
		echo "$((hi + 1)) 65000"
	else
		echo "ports: no room outside the ephemeral range $lo-$hi" >&2
		return 1
	fi
}

# port_claim_one PORT - claim PORT for this shell; false if a live
# process (this shell too: it has a use for it already) holds it.
port_claim_one() {
	local owner
	if ln -s "$$" "$PORTS_DIR/$1" 2>/dev/null; then
		PORTS_CLAIMED="$PORTS_CLAIMED $1"
		return 0
	fi
	owner=$(readlink "$PORTS_DIR/$1" 2>/dev/null) || owner=
	if [ -z "$owner" ] || kill -0 "$owner" 2>/dev/null; then
		return 1
	fi
	rm -f "$PORTS_DIR/$1"
	if ln -s "$$" "$PORTS_DIR/$1" 2>/dev/null; then
		PORTS_CLAIMED="$PORTS_CLAIMED $1"
		return 0
	fi
	return 1
}

# ports_release [PORT...] - give back the given claims (default: all of
# this shell's).
ports_release() {
	local p rest=
	for p in $PORTS_CLAIMED; do
		if [ $# -gt 0 ] && [[ " $* " != *" $p "* ]]; then
			rest="$rest $p"
		elif [ "$(readlink "$PORTS_DIR/$p" 2>/dev/null)" = "$$" ]; then
			rm -f "$PORTS_DIR/$p"
		fi
	done
	PORTS_CLAIMED=$rest
}

# ports_claim N VAR - claim N consecutive ports, none listening now, and
# set VAR to the first.  Taken or listening ports are skipped: another
# block is tried.
ports_claim() {
	local n=$1 var=$2 low high base p try ok listening
	read -r low high < <(ports_pool) || return 1
	mkdir -p "$PORTS_DIR"
	for try in $(seq 100); do
		base=$((low + (RANDOM * 32768 + RANDOM) % (high - low - n + 2)))
		listening=" $(ss -Hltn | awk '{ k = split($4, a, ":"); printf "%s ", a[k] }')"
		ok=1
		for ((p = base; p < base + n; p++)); do
			case $listening in *" $p "*) ok= ;; esac
		done
		if [ -n "$ok" ]; then
			for ((p = base; p < base + n; p++)); do
				if ! port_claim_one "$p"; then
					ok=
					if [ "$p" -gt "$base" ]; then
						ports_release $(seq "$base" $((p - 1)))
					fi
					break
				fi
			done
		fi
		if [ -n "$ok" ]; then
			printf -v "$var" '%s' "$base"
			return 0
		fi
	done
	echo "ports: no $n free consecutive ports in $low-$high" >&2
	return 1
}

# port_owner_check PORT PID - prints "ours" when every socket listening
# on PORT belongs to PID, a child or a grandchild of PID (and there is
# one), "foreign" when any belongs to another process (or to one ss may
# not name), "none" when nothing listens.
port_owner_check() {
	local port=$1 pid=$2 line p ppid any=
	while read -r line; do
		any=1
		case $line in *pid=*) ;; *) echo foreign; return ;; esac
		for p in $(grep -o 'pid=[0-9]*' <<<"$line" | cut -d= -f2); do
			[ "$p" = "$pid" ] && continue
			# a child, or a grandchild (a helper a child forked)
			ppid=$(awk '$1 == "PPid:" { print $2 }' "/proc/$p/status" 2>/dev/null) || ppid=
			[ "$ppid" = "$pid" ] && continue
			ppid=$(awk '$1 == "PPid:" { print $2 }' "/proc/$ppid/status" 2>/dev/null) || ppid=
			if [ "$ppid" != "$pid" ]; then
				echo foreign
				return
			fi
		done
	done < <(ss -Hltnp "sport = $port")
	if [ -n "$any" ]; then echo ours; else echo none; fi
}

# wait_listening SECONDS PID PORT... - wait until PID (or its children),
# and no other process, listens on every PORT.  Sets WAIT_STATE: "ours"
# (true), or (false) "foreign" at once when another process listens on
# one of them, "gone" when PID ended, "timeout" after SECONDS.
wait_listening() {
	local secs=$1 pid=$2 i port all
	shift 2
	for i in $(seq $((secs * 20))); do
		if ! kill -0 "$pid" 2>/dev/null; then
			WAIT_STATE=gone
			return 1
		fi
		all=1
		for port in "$@"; do
			case $(port_owner_check "$port" "$pid") in
			foreign)
				# twice, 0.1 s apart: a process that only passes
				# through (one that just forked) is not a rival
				sleep 0.1
				if [ "$(port_owner_check "$port" "$pid")" = foreign ]; then
					WAIT_STATE=foreign
					return 1
				fi
				all= ;;
			none) all= ;;
			esac
		done
		if [ -n "$all" ]; then
			WAIT_STATE=ours
			return 0
		fi
		sleep 0.05
	done
	WAIT_STATE=timeout
	return 1
}
