#!/bin/bash
# metrics-doc.sh - rewrite the table "## Families" of docs/metrics.md from
# a scrape of a running relgate:
#   tools/metrics-doc.sh [ADMIN_URL]     (default http://127.0.0.1:9464)
# One row per family, in the order of /metrics: name, type, the labels
# its samples carry, its HELP.  tests/e2e/metrics.sh fails when a family
# is missing from the table.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
url=${1:-http://127.0.0.1:9464}
doc=$top/docs/metrics.md
scrape=$(mktemp)
trap 'rm -f "$scrape" "$doc.tmp"' EXIT
curl -sf "$url/metrics" >"$scrape" || { echo "metrics-doc.sh: no /metrics at $url" >&2; exit 1; }
{
	sed '/^## Families$/q' "$doc"
	echo
	echo '| family | type | labels | help |'
	echo '|---|---|---|---|'
	awk '
	/^# HELP/ { name = $3; $1 = $2 = $3 = ""; help[name] = substr($0, 4); next }
	/^# TYPE/ { order[++n] = $3; type[$3] = $4; next }
	{
		i = index($0, "{"); m = i ? substr($0, 1, i - 1) : $1
		base = m; sub(/_(bucket|sum|count)$/, "", base); if (!(base in type)) base = m
		if (!i) next
		ls = substr($0, i + 1); sub(/}.*/, "", ls)
		k = split(ls, parts, ",")
		for (j = 1; j <= k; j++) {
			split(parts[j], kv, "=")
			if ((base SUBSEP kv[1]) in seen) continue
			seen[base SUBSEP kv[1]] = 1
			labels[base] = labels[base] (labels[base] ? ", " : "") kv[1]
		}
	}
	END { for (j = 1; j <= n; j++) { f = order[j]
		printf "| `%s` | %s | %s | %s |\n", f, type[f], (labels[f] ? labels[f] : "-"), help[f] } }' "$scrape"
} >"$doc.tmp"
mv "$doc.tmp" "$doc"
echo "metrics-doc.sh: $(grep -c '^| `relgate_' "$doc") families in docs/metrics.md"
