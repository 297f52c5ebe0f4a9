# check.sh - the pass/fail bookkeeping of the end-to-end scripts (sourced
# by lib.sh and by the scripts that do not start relgated through it).
# Checks made in a subshell are reported through the file CHECKS_LOST
# ($T/checks.lost when the script has a temp dir T).
FAILS=0
PASSES=0
: "${CHECKS_LOST:=${T:-/tmp}/checks.lost.$$}"
ok() { PASSES=$((PASSES + 1)); echo "ok: $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL: $*"; }

# check DESCRIPTION 'CONDITION' - one assertion.  CONDITION is one string
# of shell, run whole by eval in the script's variables (quote it in
# single quotes; it must not use positional parameters), so that
# '[ a ] && [ b ]' is one condition.  A call that would leave part of a
# condition unchecked is an error, never a silent half: an unquoted
# condition (bash reads "check D [ a ] && [ b ]" as "(check D [ a ]) &&
# [ b ]", which arrives here as more than two arguments), a check in a
# pipeline or subshell (its count would be lost), and, found by
# lint_checks before the script runs, anything after the condition.
check() {
	if [ "$#" -ne 2 ]; then
		fail "${1-} (check takes DESCRIPTION and ONE quoted CONDITION, got $# arguments)"
		return 1
	fi
	if [ "$BASHPID" != "$$" ]; then
		echo "FAIL: $1 (check in a pipeline or subshell: its result would be lost)"
		echo "$1" >>"$CHECKS_LOST"
		return 1
	fi
	if eval "$2" >/dev/null; then ok "$1"; else fail "$1"; fi
}

# lint_checks FILE - every "check" that starts a line is followed by
# exactly a description and one condition, then the end of the line (or
# a comment): no &&, ||, |, ;, & or redirection after it.  Quotes, $( )
# and backquotes are followed as bash does.  Prints each bad call.
lint_checks() {
	awk '
	{ text = text $0 "\n" }
	function pop(st) { return substr(st, 1, length(st) - 1) }
	# parse - from the "check" at i to the end of its command: the
	# number of words, or -1 (and why) for anything else after them
	function parse(i,    n, st, top, c, two, j, nw, inword) {
		n = length(text); st = "T"; nw = 0; inword = 0
		while (i <= n) {
			c = substr(text, i, 1); two = substr(text, i, 2)
			top = substr(st, length(st))
			if (top == "B") {
				if (c == "\\") { i += 2; continue }
				if (c == "`") st = pop(st)
				i++; continue
			}
			if (top == "D") {
				if (c == "\\") { i += 2; continue }
				if (c == "\"") st = pop(st)
				else if (two == "$(") { st = st "C"; i++ }
				else if (c == "`") st = st "B"
				i++; continue
			}
			if (two == "\\\n") { i += 2; continue }
			if (top == "T" && (c == " " || c == "\t")) {
				inword = 0; i++; continue
			}
			if (top == "T" && (c == "\n" || (c == "#" && !inword))) {
				end = i; return nw
			}
			if (top == "T" && index(";&|<>()", c)) {
				if (two == "&&" || two == "||" || two == ">>") c = two
				end = i; why = "\"" c "\" after the condition"
				return -1
			}
			if (top == "T" && !inword) { inword = 1; nw++ }
			if (c == "\\") { i += 2; continue }
			if (c == "\047") {
				j = index(substr(text, i + 1), "\047")
				if (j == 0) { end = n; why = "unclosed quote"; return -1 }
				i += j + 1; continue
			}
			if (c == "\"") st = st "D"
			else if (two == "$(") { st = st "C"; i++ }
			else if (c == "`") st = st "B"
			else if (top != "T" && c == "(") st = st "P"
			else if (top != "T" && c == ")") st = pop(st)
			i++
		}
		end = n; return nw
	}
	END {
		n = split(text, lines, "\n"); pos = 1; skip = 0; bad = 0
		for (l = 1; l <= n; l++) {
			if (pos > skip && match(lines[l], /^[ \t]*check[ \t]/)) {
				why = "check takes DESCRIPTION and ONE quoted CONDITION"
				w = parse(pos + RLENGTH - 6)
				if (w != 3) {
					printf "%s:%d: %s\n", FILENAME, l, why
					bad = 1
				}
				skip = end
			}
			pos += length(lines[l]) + 1
		}
		exit bad
	}' "$1"
}
if ! lint_checks "$0"; then
	echo "$0: a check above is not one whole condition"
	exit 99
fi

finish() {
	if [ -s "$CHECKS_LOST" ]; then
		fail "checks made in a subshell: $(tr '\n' ';' <"$CHECKS_LOST")"
	fi
	echo "$PASSES passed, $FAILS failed"
	[ "$FAILS" -eq 0 ]
}
