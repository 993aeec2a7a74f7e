#!/usr/bin/env bash
# prometheus_config_test.sh SRCDIR: `promtool check config` passes on
# deploy/prometheus/prometheus.yml, also with target files in the format
# scripts/cluster.sh writes, and its job names are the ones the Grafana
# dashboard selects by default.
set -euo pipefail
src=${1:?usage: prometheus_config_test.sh SRCDIR}
conf=$src/deploy/prometheus/prometheus.yml
for tool in promtool jq; do
	command -v "$tool" >/dev/null 2>&1 && continue
	echo "FAIL: '$tool' is missing: run scripts/install-deps.sh" >&2
	exit 1
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-prom-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

promtool check config "$conf" && ok || bad "promtool check config $conf"

# With targets, as cluster.sh writes them: promtool reads them too.
mkdir -p "$tmp/targets"
cp "$conf" "$tmp/prometheus.yml"
echo '[{"targets": ["127.0.0.1:8080"]}]' >"$tmp/targets/routers.json"
echo '[{"targets": ["127.0.0.1:9100"], "labels": {"shard": "0",
  "role": "primary"}}]' >"$tmp/targets/nodes.json"
out=$(promtool check config "$tmp/prometheus.yml" 2>&1) && ok ||
    bad "promtool check config with targets: $out"
if echo "$out" | grep -q WARNING; then
	bad "warnings with the targets present: $out"
else
	ok
fi

# The dashboard's job variables default to this file's job names.
for v in router_job node_job; do
	job=$(jq -r --arg v "$v" '.templating.list[] | select(.name == $v) |
	    .query' "$src/deploy/grafana/vecdb.json")
	grep -q "^- job_name: $job\$" "$conf" && ok ||
	    bad "dashboard variable $v=$job is no job of prometheus.yml"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
