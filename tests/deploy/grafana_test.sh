#!/usr/bin/env bash
# grafana_test.sh SRCDIR: deploy/grafana/vecdb.json is valid JSON with
# panels that each have a query, and every metric family its queries name
# is one our C sources serve (a typo in a name gives an empty panel, not an
# error, in Grafana).
set -euo pipefail
src=${1:?usage: grafana_test.sh SRCDIR}
dash=$src/deploy/grafana/vecdb.json
command -v jq >/dev/null 2>&1 || {
	echo "FAIL: jq is missing (Debian package jq)" >&2; exit 1; }


passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

jq -e . "$dash" >/dev/null && ok || { bad "$dash is not valid JSON"; exit 1; }

# Every non-row panel has a datasource and at least one non-empty expr.
n=$(jq '[.panels[] | select(.type != "row") |
    select((.targets // []) | length == 0 or any(.expr == "" or .expr == null))]
    | length' "$dash")
[ "$n" = 0 ] && ok || bad "$n panels without a query"
n=$(jq '[.panels[].id] | (length - (unique | length))' "$dash")
[ "$n" = 0 ] && ok || bad "panel ids are not unique"

# In the C sources: as a whole word, or a histogram's _bucket/_sum/_count.
in_sources() {
	grep -rqwF --include='*.c' "$1" "$src"/api "$src"/node "$src"/router \
	    "$src"/storage "$src"/common "$src"/replication 2>/dev/null
}
names=$(jq -r '.. | .expr? // empty' "$dash" |
    grep -oE '\b(vecdb|process)_[a-z0-9_]+' | sort -u)
[ -n "$names" ] && ok || bad "no metric names in the queries"
for name in $names; do
	base=$(echo "$name" | sed -E 's/_(bucket|sum|count)$//')
	if in_sources "$name" || in_sources "$base"; then
		ok
	else
		bad "$name: no such metric in the sources"
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
