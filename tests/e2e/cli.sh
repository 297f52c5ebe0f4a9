#!/bin/bash
# cli.sh - every program answers --help (usage on stdout, exit 0) and
# --version ("<prog> <version>", exit 0), and refuses an unknown option
# with exit 2.
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"/\1/p' "$top_builddir/config.h")
T=$(mktemp -d /tmp/rgcli.XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/check.sh"
for p in daemons/relgated tools/relstat tools/relctl tools/relmock/relmock \
    daemons/ingress daemons/admission daemons/provider daemons/tool-worker \
    daemons/monitor; do
	bin=$top_builddir/$p name=${p##*/}
	"$bin" --help >"$T/out" 2>"$T/err"; rc=$?
	check "$name --help: exit 0" '[ "$rc" -eq 0 ]'
	check "$name --help: usage on stdout" 'grep -q "^usage: $name " "$T/out"'
	check "$name --help: nothing on stderr" 'test ! -s "$T/err"'
	"$bin" --version >"$T/out" 2>&1; rc=$?
	check "$name --version: exit 0" '[ "$rc" -eq 0 ]'
	check "$name --version: \"$name $version\"" 'grep -qx "$name $version" "$T/out"'
	"$bin" --no-such-option >/dev/null 2>&1; rc=$?
	check "$name --no-such-option: exit 2" '[ "$rc" -eq 2 ]'
done
finish
