#!/bin/bash
# fuzz.sh - build every tests/fuzz_*.c with libFuzzer + ASan + UBSan and
# run each for FUZZ_SECONDS (default 20); fails on a crash, a leak, an
# invariant abort or a build error.
#
# Convention for a target tests/fuzz_NAME.c (first lines of the file):
#   /* fuzz-sources: dir/a.c dir/b.c */      sources it needs (required)
#   /* fuzz-cflags: -DFOO */                 extra compiler flags (optional)
#   /* fuzz-libs: -lm pkg:foo */             extra link flags; pkg:NAME
#                                            expands through pkg-config
# jansson, libevent, lmdb and mbedTLS are linked by default
# (FUZZ_DEFAULT_LIBS overrides).
# Optional seeds: tests/fuzz/NAME/ (corpus files), tests/fuzz/NAME.dict.
#
# Environment: FUZZ_SECONDS, FUZZ_TARGETS (space-separated names, default
# all), FUZZ_OUT (work directory, kept; default a fresh one in /tmp,
# removed on exit), CC (clang).
# Needs clang with libFuzzer: on Debian 12 libclang_rt.fuzzer is in
# libclang-rt-14-dev (a dependency of the clang-14 package).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${FUZZ_SECONDS:-20}
cc=${CC:-clang}
if [ -n "${FUZZ_OUT:-}" ]; then
	out=$FUZZ_OUT
	mkdir -p "$out"
else
	out=$(mktemp -d /tmp/rgfuzz.XXXXXX)
	trap 'rm -rf "$out"' EXIT
	trap 'exit 1' INT TERM
fi
san="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
# the project's external libraries are always offered to the linker
# (--as-needed keeps only those a target uses)
default_libs=${FUZZ_DEFAULT_LIBS-"-Wl,--as-needed $(pkg-config --libs \
    jansson libevent 2>/dev/null) -llmdb -lmbedtls -lmbedx509 -lmbedcrypto \
    -lpthread"}
base_cflags="-g -O1 -std=gnu11 -D_GNU_SOURCE -I$top -DRG_VERSION=\"fuzz\"
 -DRG_PKGLIBEXECDIR=\"/nonexistent\" -DRG_SYSCONFDIR=\"/nonexistent\""

# directive FILE KEY - the text of "/* KEY: ... */" in FILE's first lines
directive() {
	head -n 20 "$1" | sed -n "s|^/\* *$2: *\(.*[^ ]\) *\*/ *\$|\1|p" |
	    head -n 1
}

# expand_pkgs WORDS - pkg:NAME -> pkg-config --cflags --libs NAME
expand_pkgs() {
	local w
	for w in $1; do
		case $w in
		pkg:*) pkg-config --cflags --libs "${w#pkg:}" || return 1 ;;
		*) printf '%s\n' "$w" ;;
		esac
	done
}

targets=()
if [ -n "${FUZZ_TARGETS:-}" ]; then
	for t in $FUZZ_TARGETS; do targets+=("$top/tests/fuzz_${t#fuzz_}.c"); done
else
	for f in "$top"/tests/fuzz_*.c; do [ -e "$f" ] && targets+=("$f"); done
fi
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz.sh: no tests/fuzz_*.c" >&2
	exit 1
fi

failed=0
for f in "${targets[@]}"; do
	name=$(basename "$f" .c)
	short=${name#fuzz_}
	srcs=$(directive "$f" fuzz-sources)
	if [ -z "$srcs" ]; then
		echo "FAIL $name: no /* fuzz-sources: ... */ line" >&2
		failed=1
		continue
	fi
	src_paths=()
	for s in $srcs; do src_paths+=("$top/$s"); done
	cflags=$(directive "$f" fuzz-cflags)
	if ! libs=$(expand_pkgs "$(directive "$f" fuzz-libs)"); then
		echo "FAIL $name: pkg-config" >&2
		failed=1
		continue
	fi
	# shellcheck disable=SC2086
	if ! $cc $san $base_cflags $cflags "$f" "${src_paths[@]}" $libs $default_libs \
	    -o "$out/$name" >"$out/$name.build.log" 2>&1; then
		echo "FAIL $name: build" >&2
		cat "$out/$name.build.log" >&2
		failed=1
		continue
	fi
	corpus="$out/$name.corpus"
	mkdir -p "$corpus"
	args=(-max_total_time="$secs" -artifact_prefix="$out/$name-"
	    -print_final_stats=1)
	[ -f "$top/tests/fuzz/$short.dict" ] &&
	    args+=(-dict="$top/tests/fuzz/$short.dict")
	seeds=()
	[ -d "$top/tests/fuzz/$short" ] && seeds+=("$top/tests/fuzz/$short")
	if "$out/$name" "${args[@]}" "$corpus" "${seeds[@]}" \
	    >"$out/$name.log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
		    "$out/$name.log")
		cov=$(grep -o 'cov: [0-9]*' "$out/$name.log" | tail -n 1)
		echo "ok   $name: ${runs:-?} runs in ${secs}s, $cov"
	else
		echo "FAIL $name: see $out/$name.log" >&2
		tail -n 40 "$out/$name.log" >&2
		failed=1
	fi
done
if [ "$failed" -ne 0 ] && [ -z "${FUZZ_OUT:-}" ]; then
	echo "fuzz.sh: FUZZ_OUT=DIR keeps the work directory (crash inputs)" >&2
fi
exit $failed
