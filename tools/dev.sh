#!/bin/bash
# dev.sh - the two set-up commands of the README, for a fresh Debian 12.
#   tools/dev.sh run    install what is missing, build, start relgate in the
#                       foreground on its embedded defaults (state and
#                       sockets under ./var, loopback ports)
#   tools/dev.sh test   install what is missing, build, run every test:
#                       make check (unit + end-to-end), then the unit tests
#                       again under AddressSanitizer + UBSan
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

PKGS="build-essential autoconf automake pkg-config libevent-dev libnng-dev
liblmdb-dev lmdb-utils libjansson-dev libmbedtls-dev check jq curl clang"

deps() {
	local missing=
	for p in $PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "dev.sh: installing:$missing"
	local sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
}

build() { # build DIR [configure args]
	local dir=$1; shift
	[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] || autoreconf -fi
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ]; then
		(cd "$dir" && "$top/configure" -q "$@")
	fi
	make -s -C "$dir" -j"$(nproc)"
}

summaries() { # print every Check summary and e2e closing line
	local f
	for f in "$1"/tests/*.log "$1"/tests/e2e/*.log; do
		[ -f "$f" ] || continue
		grep -H -E '^[0-9]+%: Checks:|^[0-9]+ passed, [0-9]+ failed' "$f" | sed "s|^$1/||"
	done
}

case "${1:-}" in
run)
	deps
	build build
	mkdir -p var
	echo "dev.sh: relgated in the foreground (Ctrl-C stops it); in another terminal: build/tools/relstat -n /relgate.dev"
	exec env RELGATE_STATE_DIR="$top/var/state" RELGATE_RUN_DIR="$top/var/run" \
		RELGATE_SHM_NAME=/relgate.dev build/daemons/relgated -f -c "$top/etc/relgate.json"
	;;
test)
	deps
	build build
	rc=0
	make -C build check -j1 VERBOSE=1 >build/check.out 2>&1 || rc=$?
	grep -E '^(PASS|FAIL|ERROR|XFAIL|XPASS|SKIP):' build/check.out || true
	summaries build
	if [ $rc -ne 0 ]; then
		echo "dev.sh: make check failed; failing logs:"
		for f in build/tests/*.log build/tests/e2e/*.log; do
			grep -q -E '^FAIL|^ERROR' "${f%.log}.trs" 2>/dev/null && { echo "=== $f"; tail -n 60 "$f"; }
		done
		exit $rc
	fi
	echo "dev.sh: unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
	build build-san --enable-sanitizers
	make -C build-san check-unit -j1 >build-san/check.out 2>&1 || rc=$?
	grep -E '^(PASS|FAIL|ERROR):' build-san/check.out || true
	summaries build-san | sed 's/^/asan+ubsan: /'
	if [ $rc -ne 0 ]; then
		for f in build-san/tests/*.log; do echo "=== $f"; tail -n 60 "$f"; done
		exit $rc
	fi
	echo "dev.sh: end-to-end tests against the daemons built with ASan + UBSan"
	san=$top/build-san/sanitizer-reports
	rm -rf "$san"; mkdir -p "$san"
	ASAN_OPTIONS="log_path=$san/asan:detect_leaks=1" \
	UBSAN_OPTIONS="log_path=$san/ubsan:print_stacktrace=1" \
		make -C build-san check-e2e -j1 >build-san/check-e2e.out 2>&1 || rc=$?
	grep -E '^(PASS|FAIL|ERROR):' build-san/check-e2e.out || true
	if [ -n "$(ls -A "$san")" ]; then
		echo "dev.sh: sanitizer reports from the daemons:"
		head -n 40 "$san"/*
		rc=1
	fi
	if [ $rc -ne 0 ]; then
		for f in build-san/tests/e2e/*.log; do
			grep -q -E '^FAIL|^ERROR' "${f%.log}.trs" 2>/dev/null && { echo "=== $f"; tail -n 60 "$f"; }
		done
		exit $rc
	fi
	echo "dev.sh: fuzz targets (libFuzzer + ASan + UBSan, ${FUZZ_SECONDS:-20} s each)"
	tests/fuzz.sh || exit 1
	# one closing line over every Check and end-to-end count above
	{ summaries build; summaries build-san; } | awk '
		/Checks:/ { for (i = 1; i <= NF; i++) {
			if ($i == "Checks:") c += $(i + 1)
			if ($i == "Failures:" || $i == "Errors:") f += $(i + 1) } }
		/ passed, / { sub(/^.*:/, "", $1); for (i = 1; i <= NF; i++) {
			if ($(i + 1) ~ /^passed/) c += $i
			if ($(i + 1) ~ /^failed/) f += $i } }
		END { printf "total: %d passed, %d failed\n", c - f, f }'
	echo "dev.sh: all tests passed"
	;;
*)
	echo "usage: tools/dev.sh run|test" >&2
	exit 2
	;;
esac
