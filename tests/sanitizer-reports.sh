#!/bin/bash
# tests/sanitizer-reports.sh DIR TOP - judge the reports the daemons built
# with ASan + UBSan wrote into DIR (log_path) during the end-to-end tests.
#
# Any UBSan report, and any ASan error other than a leak, fails.  A leak
# fails when one of the frames that allocated it is relgate's (one of
# its sources, or a path under TOP).  A leak allocated only inside
# libnng (nng 1.5 can leave a listener and the pipe it was accepting as a
# cycle of its own objects when a socket closes while a peer connects),
# or by nng_listen or nng_dial for the listener or dialer nng keeps, is
# listed and passes; so does a report that only says LeakSanitizer could
# not stop some thread of an exiting process; nothing else does.  Prints one line per report and
# a closing count; exit 0 when nothing failed, 1 otherwise.
set -euo pipefail
dir=${1:?usage: tests/sanitizer-reports.sh DIR TOP}
top=${2:?usage: tests/sanitizer-reports.sh DIR TOP}
fail=0 nng=0
# relgate's sources, as paths from the top of the tree
srcs=$(cd "$top" && find . -path ./.git -prune -o \( -name '*.c' -o -name '*.h' \) -print | sed 's#^\./##' | grep -v '^build')
shopt -s nullglob
for f in "$dir"/*; do
	case ${f##*/} in
	ubsan.*)
		echo "sanitizer: UBSan report ${f##*/}:"
		head -n 40 "$f"
		fail=$((fail + 1))
		continue
		;;
	esac
	if grep -q 'ERROR: AddressSanitizer' "$f"; then
		echo "sanitizer: ASan error ${f##*/}:"
		head -n 60 "$f"
		fail=$((fail + 1))
		continue
	fi
	# leak blocks: "Direct|Indirect leak of ..." up to the blank line;
	# ours when a frame is in one of relgate's sources or under TOP,
	# nng's when no frame is and one is libnng's (or nng_listen or
	# nng_dial's), anything else unknown (fails too)
	out=$(awk -v top="$top" -v srcs="$srcs" '
		function judge(   i, n, l) {
			if (blk == "") return
			kind = setup ? "nng" : ours ? "ours" : innng ? "nng" : "unknown"
			n = split(blk, l, "\n")
			for (i = 1; i <= n; i++) printf "%s\t%s\n", kind, l[i]
			blk = ""
		}
		BEGIN { n = split(srcs, l, "\n"); for (i = 1; i <= n; i++) src[l[i]] = 1 }
		/^(Direct|Indirect) leak of / { judge(); blk = $0; ours = innng = setup = nf = 0; next }
		blk != "" && /^ *#[0-9]+ / {
			# "#2 0x… in encode ../proto/link.c:458": the file, from
			# the build directory, one of relgate'"'"'s sources
			if ($3 == "in" && NF >= 5) {
				f = $5
				sub(/:[0-9]+(:[0-9]+)?$/, "", f)
				if (index(f, top "/") == 1) f = substr(f, length(top) + 2)
				while (f ~ /^\.\.?\//) sub(/^\.\.?\//, "", f)
				if (f in src) ours = 1
			}
			if (index($0, top "/") > 0) ours = 1
			if ($0 ~ /libnng\.so/) innng = 1
			# a listener or dialer nng keeps (and its cycle) is
			# nng'"'"'s even when relgate asked for it
			if ($0 ~ / in nng_(listen|listener_create|listener_start|dial|dialer_create|dialer_start) .*libnng\.so/) setup = 1
			if (nf++ < 12) blk = blk "\n" $0
			next
		}
		blk != "" && /^ *$/ { judge() }
		END { judge() }' "$f")
	if [ -z "$out" ] && ! grep -Evq '^(==[0-9]+==Running thread [0-9]+ was not suspended\. False leaks are possible\.)?$' "$f"; then
		# LeakSanitizer could not stop every thread of a process that
		# was exiting: a warning, not a leak
		echo "sanitizer: ${f##*/}: LeakSanitizer could not stop $(grep -c 'was not suspended' "$f") thread(s) at exit; no leak"
		continue
	fi
	if [ -z "$out" ]; then
		echo "sanitizer: ${f##*/} holds no leak block:"
		head -n 40 "$f"
		fail=$((fail + 1))
		continue
	fi
	n_ours=$(grep -cE '^ours.(Direct|Indirect)' <<<"$out" || true)
	n_unknown=$(grep -cE '^unknown.(Direct|Indirect)' <<<"$out" || true)
	n_nng=$(grep -cE '^nng.(Direct|Indirect)' <<<"$out" || true)
	if [ "$n_ours" -gt 0 ] || [ "$n_unknown" -gt 0 ]; then
		echo "sanitizer: ${f##*/}: $n_ours leak(s) allocated by relgate, $n_unknown outside relgate and nng:"
		awk -F'\t' '$1 != "nng" { print "  " $2 }' <<<"$out" | head -n 80
		fail=$((fail + 1))
	else
		echo "sanitizer: ${f##*/}: $n_nng leak(s) inside libnng only (not relgate's)"
		nng=$((nng + n_nng))
	fi
done
echo "sanitizer reports: $fail failing, $nng leak(s) inside libnng only"
[ "$fail" -eq 0 ]
