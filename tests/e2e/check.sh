# check.sh - the pass/fail bookkeeping of the end-to-end scripts (sourced
# by lib.sh and by the scripts that do not start relgated through it).
FAILS=0
PASSES=0
ok() { PASSES=$((PASSES + 1)); echo "ok: $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL: $*"; }
check() { # check DESCRIPTION command...: one whole condition
	local what=$1; shift
	if "$@" >/dev/null; then ok "$what"; else fail "$what"; fi
}
finish() {
	echo "$PASSES passed, $FAILS failed"
	[ "$FAILS" -eq 0 ]
}
