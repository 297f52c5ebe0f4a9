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
