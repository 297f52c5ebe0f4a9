#!/bin/bash
# dev.sh - the two set-up commands of the README, for a fresh Debian 12.
#   tools/dev.sh run    install what is missing, build, start relmock (the
#                       local application backend and OAuth token endpoint,
#                       127.0.0.1:8090) and relgated in the foreground,
#                       wired together: state and sockets under ./var,
#                       loopback ports 8080 (public) and 9464 (admin), shm
#                       /relgate.dev, tokens and secrets generated once
#                       into var/dev.env.  Ctrl-C (or SIGTERM) stops both.
#   tools/dev.sh test   install what is missing, build, run every test:
#                       make check (unit + end-to-end), then the unit tests
#                       again under AddressSanitizer + UBSan; promtool for
#                       the metrics test is taken out of Debian's
#                       prometheus package into build/.tools
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

PKGS="build-essential autoconf automake pkg-config libevent-dev libnng-dev
liblmdb-dev lmdb-utils libjansson-dev libmbedtls-dev check jq curl clang
iproute2 procps util-linux tmux"

deps() {
	local missing=
	for p in $PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
	done
	# the end-to-end tests run npm clients (the AI SDK, jose) with Node.js:
	# the machine's own when it has one, else Debian's
	if [ "${1-}" = test ] && ! { command -v node && command -v npm; } >/dev/null; then
		missing="$missing nodejs npm"
	fi
	[ -z "$missing" ] && return 0
	echo "dev.sh: installing:$missing"
	local sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
}

# fetch_promtool - promtool (Debian's prometheus package) on PATH for the
# metrics test: the machine's own, else the one of the package, taken out
# of it into build/.tools without installing the Prometheus server
fetch_promtool() {
	local d=$top/build/.tools sudo=
	command -v promtool >/dev/null && return 0
	if [ ! -x "$d/usr/bin/promtool" ]; then
		[ "$(id -u)" -eq 0 ] || sudo=sudo
		rm -rf "$d" && mkdir -p "$d/deb"
		echo "dev.sh: fetching promtool (Debian package prometheus, not installed)"
		if ! (cd "$d/deb" && apt-get download -q prometheus >/dev/null 2>&1); then
			$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
			(cd "$d/deb" && apt-get download -q prometheus)
		fi
		dpkg-deb -x "$d"/deb/prometheus_*.deb "$d/x"
		mkdir -p "$d/usr/bin"
		mv "$d/x/usr/bin/promtool" "$d/usr/bin/"
		rm -rf "$d/deb" "$d/x"
	fi
	export PATH="$d/usr/bin:$PATH"
}

build() { # build DIR [configure args]
	local dir=$1; shift
	if [ -f config.status ]; then
		# an in-place ./configure makes every build directory refuse
		# to configure (and its objects would shadow theirs)
		echo "dev.sh: the source tree is configured in place; 'make distclean' there so that $dir/ can build"
		make -s distclean >/dev/null 2>&1 || rm -f config.status config.h config.log stamp-h1 Makefile
	fi
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

# dev_env - var/dev.env: the local tokens and secrets, generated once
dev_env() {
	local f=var/dev.env n
	if [ -f "$f" ]; then
		# a file of an earlier run: its names exported when sourced
		sed -i 's/^\([A-Z_]*=\)/export \1/' "$f"
		return 0
	fi
	(
		umask 077 # the file holds secrets
		exec >"$f.tmp"
		echo "# tools/dev.sh run: local tokens and secrets (delete this file to renew them)"
		for n in GMAIL_PUBSUB_VERIFY_TOKEN WHATSAPP_VERIFY_TOKEN WHATSAPP_APP_SECRET \
		    OAUTH_STATE_SECRET RELGATE_OAUTH_CLIENT_SECRET RELGATE_BACKEND_SECRET \
		    RELGATE_AUTH_JWT_SECRET; do
			echo "export $n=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
		done
	)
	mv "$f.tmp" "$f"
}

case "${1:-}" in
run)
	deps
	build build
	mkdir -p var
	dev_env
	set -a
	. var/dev.env
	set +a
	echo "dev.sh: local tokens and secrets (var/dev.env, kept across runs):"
	grep -v '^#' var/dev.env | sed 's/^export /  /'
	mock=127.0.0.1:8090
	# the secret goes in a file: a command line is visible to every user
	(umask 077 && printf '{"listen": "%s", "backend_secret": "%s"}\n' \
		"$mock" "$RELGATE_BACKEND_SECRET" >var/relmock.json)
	build/tools/relmock/relmock -c var/relmock.json >var/relmock.log 2>&1 &
	mock_pid=$!
	rg_pid=
	# Ctrl-C reaches every process of the terminal; SIGTERM only this
	# script: pass it on, then wait for both below
	trap 'kill -TERM $rg_pid $mock_pid 2>/dev/null || true' INT TERM
	for _ in $(seq 100); do
		curl -sf "http://$mock/_relmock/health" >/dev/null && break
		kill -0 "$mock_pid" 2>/dev/null || { cat var/relmock.log; exit 1; }
		sleep 0.05
	done
	echo "dev.sh: relmock (chat provider, tools' search APIs, application backend, OAuth token endpoint) on $mock, log var/relmock.log"
	echo "dev.sh: relgated in the foreground on 127.0.0.1:8080, admin 127.0.0.1:9464, shm /relgate.dev (Ctrl-C stops both)"
	echo "dev.sh: in another terminal: build/tools/relstat -n /relgate.dev"
	# a local run stays the user that starts it (root included); the
	# default tools call relmock's Serper and eBay stand-ins, with
	# relmock's keys
	RELGATE_USER=$(id -un) \
	RELGATE_TOOLS="$(sed "s|@BASE@|http://$mock|g" tools/relmock/tools.json)" \
	RELGATE_STATE_DIR=var/state RELGATE_RUN_DIR=var/run RELGATE_SHM_NAME=/relgate.dev \
	RELGATE_BACKEND_URL="http://$mock/backend" RELGATE_APP_URL=http://127.0.0.1:3000 \
	RELGATE_OAUTH_TOKEN_URL="http://$mock/oauth/token" RELGATE_OAUTH_CLIENT_ID=relgate-dev \
	RELGATE_OAUTH_REDIRECT_URI=http://127.0.0.1:8080/api/gmail/auth/callback \
	RELGATE_PROVIDER_PRIMARY_BASE_URL="http://$mock/v1" \
	RELGATE_PROVIDER_SECONDARY_BASE_URL="http://$mock/secondary/v1" \
	SERPER_API_KEY=relmock-serper-key EBAY_OAUTH_TOKEN="Bearer relmock-ebay-token" \
		build/daemons/relgated -f -c etc/relgate.json &
	rg_pid=$!
	rc=0
	# wait returns early when a trapped signal arrives: wait again
	# until relgated has really gone, then stop relmock
	while kill -0 "$rg_pid" 2>/dev/null; do
		wait "$rg_pid" && rc=0 || rc=$?
	done
	kill -TERM "$mock_pid" 2>/dev/null || true
	wait "$mock_pid" || true
	exit "$rc"
	;;
test)
	deps test
	build build
	fetch_promtool
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
	# a leak does not change a daemon's exit status: the reports are
	# judged below (tests/sanitizer-reports.sh)
	ASAN_OPTIONS="log_path=$san/asan:detect_leaks=1" \
	LSAN_OPTIONS="exitcode=0" \
	UBSAN_OPTIONS="log_path=$san/ubsan:print_stacktrace=1" \
		make -C build-san check-e2e -j1 >build-san/check-e2e.out 2>&1 || rc=$?
	grep -E '^(PASS|FAIL|ERROR):' build-san/check-e2e.out || true
	if [ -n "$(ls -A "$san")" ]; then
		echo "dev.sh: sanitizer reports from the daemons:"
		tests/sanitizer-reports.sh "$san" "$top" || rc=1
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
