# host.sh - the machine under a benchmark (sourced by bench/run.sh and
# bench/chat.sh; bash).  On a virtual machine the host can take CPU time
# from it (steal); a run's p99 moves with that time, so every figure that
# is a tail latency is printed beside the steal of its run.

# steal_ticks - the machine's steal time so far, in clock ticks
steal_ticks() { awk '$1 == "cpu" { print $9 }' /proc/stat; }

# steal_ms_since TICKS - the steal time since steal_ticks said TICKS, in ms
steal_ms_since() {
	echo $((($(steal_ticks) - $1) * 1000 / $(getconf CLK_TCK)))
}

# steal_watch FILE SECONDS - the machine's steal ticks into FILE, a line
# every 100 ms, for at most SECONDS (run it in the background and stop it
# by pid when the measurement ends)
steal_watch() {
	local end=$((SECONDS + $2)) cpu user nice sys idle iow irq sirq st rest
	while [ "$SECONDS" -lt "$end" ]; do
		read -r cpu user nice sys idle iow irq sirq st rest </proc/stat
		echo "$st"
		sleep 0.1
	done >"$1"
}

# steal_peak FILE - the most steal between two lines of steal_watch's
# FILE, in ms: a host that stopped the machine for 50 ms at once moves a
# p99 more than one that took 200 ms in slices of 10 ms
steal_peak() {
	awk -v hz="$(getconf CLK_TCK)" 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 }
		END { printf "%d\n", m * 1000 / hz }' "$1"
}
