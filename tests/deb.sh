#!/bin/bash
# deb.sh - the Debian package as an operator meets it.  Run by CI as root
# on its own machine (it installs packages system-wide and creates the
# system user relgate): builds relgate and relgate-mock from a clean
# export of the tree, runs lintian, installs relgate with apt-get, starts
# it with /etc/init.d/relgate, reads relstat -1 on the default segment,
# sees the children run as relgate, gets 200 from /api/chat/health on the
# default port, reloads, stops (no process left), purges (configuration,
# user and state gone).  Also: systemd-analyze verify accepts the unit,
# man -w finds every page, and relgated as root without a relgate user
# refuses in one line unless user is set.
#
#   tests/deb.sh            (from the top of the tree, as root)
#
# Needs the default ports 127.0.0.1:8080 and :9464 free.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/e2e/check.sh"
if [ "$(id -u)" != 0 ]; then
	echo "deb.sh: run as root (it installs the package)"
	exit 2
fi
export DEBIAN_FRONTEND=noninteractive
T=$(mktemp -d /tmp/rgdeb.XXXXXX)
INSTALLED=
cleanup() {
	local rc=$?
	if [ -n "$INSTALLED" ] && dpkg -s relgate >/dev/null 2>&1; then
		/etc/init.d/relgate stop >/dev/null 2>&1
		apt-get purge -y -q relgate relgate-mock >/dev/null 2>&1
	fi
	rm -rf "$T"
	exit "$rc"
}
trap cleanup EXIT

for p in 8080 9464; do
	if ss -Hltn "sport = :$p" | grep -q .; then
		echo "deb.sh: port $p is taken: the packaged relgate listens there"
		exit 2
	fi
done
if getent passwd relgate >/dev/null || dpkg -s relgate >/dev/null 2>&1; then
	echo "deb.sh: a relgate user or package is already here; this test makes its own"
	exit 2
fi

echo "== tools"
apt-get install -y -q --no-install-recommends build-essential debhelper \
	lintian fakeroot systemd man-db adduser sysvinit-utils curl jq procps \
	iproute2 >"$T/apt-tools.log" 2>&1 || { tail -n 20 "$T/apt-tools.log"; exit 2; }

echo "== build from a clean export"
mkdir -p "$T/src/relgate-0.1.0"
# tracked files and new ones not ignored: no build output
(cd "$top" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) |
	tar -xf - -C "$T/src/relgate-0.1.0"
(cd "$T/src/relgate-0.1.0" && apt-get build-dep -y -q . >"$T/build-dep.log" 2>&1)
bdrc=$?
check "apt-get build-dep . installs what Build-Depends names" '[ "$bdrc" = 0 ] || ! tail -n 20 "$T/build-dep.log" >&2'
(cd "$T/src/relgate-0.1.0" && dpkg-buildpackage -us -uc -b >"$T/build.log" 2>&1)
brc=$?
check "dpkg-buildpackage -us -uc -b builds (unit tests included)" '[ "$brc" = 0 ] || ! tail -n 40 "$T/build.log" >&2'
grep -E '^# (PASS|FAIL):' "$T/build.log" | sed 's/^/  unit tests: /'
check "the build ran the unit tests, all passed" 'grep -q "^# PASS: *[1-9]" "$T/build.log" && grep -q "^# FAIL: *0" "$T/build.log"'
DEB=$(ls "$T"/src/relgate_*_*.deb 2>/dev/null | head -n 1)
MOCK=$(ls "$T"/src/relgate-mock_*_*.deb 2>/dev/null | head -n 1)
check "two packages: relgate and relgate-mock" '[ -f "$DEB" ] && [ -f "$MOCK" ]'
[ -f "$DEB" ] || { finish; exit 1; }
dpkg -c "$DEB" >"$T/contents"
check "relgated in /usr/sbin, relstat and relctl in /usr/bin, roles in /usr/lib/relgate" 'grep -q " ./usr/sbin/relgated$" "$T/contents" && grep -q " ./usr/bin/relstat$" "$T/contents" && grep -q " ./usr/bin/relctl$" "$T/contents" && grep -q " ./usr/lib/relgate/ingress$" "$T/contents"'
dpkg -c "$MOCK" >"$T/mock-contents"
check "relmock only in relgate-mock" '! grep -q relmock "$T/contents" && grep -q " ./usr/bin/relmock$" "$T/mock-contents"'
check "conffiles: the configuration and the environment" 'dpkg-deb -f "$DEB" Package >/dev/null && dpkg-deb -e "$DEB" "$T/ctl" && grep -qx /etc/relgate/relgate.json "$T/ctl/conffiles" && grep -qx /etc/default/relgate "$T/ctl/conffiles" && grep -qx /etc/init.d/relgate "$T/ctl/conffiles"'

echo "== lintian"
lintian --tag-display-limit 0 "$T"/src/relgate_*.changes >"$T/lintian.txt" 2>&1
sed 's/^/  /' "$T/lintian.txt"
check "lintian: no errors" '! grep -q "^E: " "$T/lintian.txt"'


echo "== install"
apt-get install -y -q "$DEB" "$MOCK" >"$T/install.log" 2>&1
irc=$?
INSTALLED=1
check "apt-get install ./relgate_*.deb" '[ "$irc" = 0 ] || ! tail -n 20 "$T/install.log" >&2'
check "the system user and group relgate exist" 'getent passwd relgate >/dev/null && getent group relgate >/dev/null'
check "state directory owned by relgate, configuration readable by its group only" '[ "$(stat -c %U:%a /var/lib/relgate)" = relgate:750 ] && [ "$(stat -c %G:%a /etc/relgate/relgate.json)" = relgate:640 ]'
check "systemd-analyze verify accepts the installed relgate.service" 'systemd-analyze verify /lib/systemd/system/relgate.service >"$T/verify.txt" 2>&1 || ! cat "$T/verify.txt" >&2'
for page in relgated.8 relstat.1 relctl.1 relmock.1 relgate.json.5; do
	n=${page%.*} s=${page##*.}
	check "man -w finds $n($s)" 'man -w "$s" "$n" >/dev/null 2>&1'
done

echo "== the default tools' keys"
check "/etc/default/relgate carries placeholders for SERPER_API_KEY and EBAY_OAUTH_TOKEN" 'grep -q "^SERPER_API_KEY=replace-with-" /etc/default/relgate && grep -q "^EBAY_OAUTH_TOKEN=\"Bearer replace-with-" /etc/default/relgate'
out=$(env -u SERPER_API_KEY relgated -t -c /etc/relgate/relgate.json 2>&1)
trc=$?
echo "  $out"
check "without SERPER_API_KEY, relgated -t refuses in one line naming the tool and the variable" '[ "$trc" != 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "tools\[0\] (search_web).upstream.headers.X-API-KEY: \$SERPER_API_KEY is not set in the environment"'
# an operator's keys: the service reads them from /etc/default/relgate
sed -i -e 's/^SERPER_API_KEY=.*/SERPER_API_KEY=deb-test-serper-key/' \
	-e 's/^EBAY_OAUTH_TOKEN=.*/EBAY_OAUTH_TOKEN="Bearer deb-test-ebay-token"/' /etc/default/relgate

echo "== start"
/etc/init.d/relgate stop >/dev/null 2>&1 # the package may have started it
/etc/init.d/relgate start >"$T/start.txt" 2>&1
src=$?
check "/etc/init.d/relgate start" '[ "$src" = 0 ] || ! cat "$T/start.txt" >&2'
ready() {
	relstat -j 2>/dev/null | jq -e '[.processes[] | select(.role != "supervisor") | .state] | length > 0 and all(. == "ready")' >/dev/null
}
for _ in $(seq 150); do ready && break; sleep 0.1; done
check "relstat -1 on the default segment: every role ready" 'ready && relstat -1 >"$T/relstat.txt" && grep -q ingress "$T/relstat.txt"'
PID=$(cat /run/relgate/relgated.pid 2>/dev/null)
check "the pidfile names a running relgated" '[ -n "$PID" ] && [ "$(cat /proc/$PID/comm)" = relgated ]'
ps -o user=,comm= --ppid "$PID" >"$T/children.txt"
check "relgated runs as relgate" '[ "$(ps -o user= -p "$PID")" = relgate ]'
check "every child runs as relgate" '[ -s "$T/children.txt" ] && ! grep -qv "^relgate " "$T/children.txt"'
check "the segment is owned by relgate, readable by its group" '[ "$(stat -c %U:%G:%a /dev/shm/relgate)" = relgate:relgate:640 ]'
code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/api/chat/health)
check "GET /api/chat/health on the default port: 200" '[ "$code" = 200 ]'
check "/etc/init.d/relgate status: running" '/etc/init.d/relgate status >/dev/null'

echo "== reload"
/etc/init.d/relgate reload >"$T/reload.txt" 2>&1
rrc=$?
check "/etc/init.d/relgate reload" '[ "$rrc" = 0 ] || ! cat "$T/reload.txt" >&2'
gen() { relstat -j 2>/dev/null | jq -r '.processes[] | select(.role == "supervisor") | .configGen'; }
for _ in $(seq 50); do [ "$(gen)" = 2 ] && break; sleep 0.1; done
check "the reload published generation 2, same pid" '[ "$(gen)" = 2 ] && [ "$(cat /run/relgate/relgated.pid)" = "$PID" ]'

echo "== stop"
PIDS="$PID $(ps -o pid= --ppid "$PID" | tr '\n' ' ')"
/etc/init.d/relgate stop >"$T/stop.txt" 2>&1
strc=$?
check "/etc/init.d/relgate stop" '[ "$strc" = 0 ] || ! cat "$T/stop.txt" >&2'
left=
# a zombie is not running: this machine's pid 1 may not reap orphans
for p in $PIDS; do
	st=$(ps -o stat= -p "$p" 2>/dev/null)
	[ -n "$st" ] && [ "${st#Z}" = "$st" ] && left="$left $p"
done
[ -z "$left" ] || ps -o pid,ppid,stat,user,comm -p "${left# }" | sed 's/^/  left: /'
check "no process left (of $PIDS)" '[ -z "$left" ]'
check "segment and pidfile removed" '[ ! -e /dev/shm/relgate ] && [ ! -e /run/relgate/relgated.pid ]'

echo "== root without a relgate user"
# the package's user exists now: a private copy of the check, with a name
# no user has
out=$(RELGATE_USER=relgate-nobody-here RELGATE_RUN_DIR="$T/run" RELGATE_STATE_DIR="$T/state" \
	RELGATE_SHM_NAME=/rgdeb.$$ SERPER_API_KEY=deb-test-serper-key \
	EBAY_OAUTH_TOKEN="Bearer deb-test-ebay-token" relgated -f 2>&1)
nrc=$?
echo "  $out"
check "a user that does not exist: one line naming the setting, exit non-zero" '[ "$nrc" != 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "user"'

echo "== purge"
apt-get purge -y -q relgate relgate-mock >"$T/purge.log" 2>&1
prc=$?
check "apt-get purge relgate relgate-mock" '[ "$prc" = 0 ] || ! tail -n 20 "$T/purge.log" >&2'
INSTALLED=
check "configuration gone" '[ ! -e /etc/relgate ] && [ ! -e /etc/default/relgate ]'
check "user and group gone" '! getent passwd relgate >/dev/null && ! getent group relgate >/dev/null'
check "state gone" '[ ! -e /var/lib/relgate ]'
finish
