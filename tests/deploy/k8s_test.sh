#!/usr/bin/env bash
# k8s_test.sh SRCDIR: renders deploy/k8s/base and both overlays with
# `kubectl kustomize` (offline) and runs check_k8s.js on them: Kubernetes
# schemas, topology against Services and StatefulSets, shard and replica
# counts; and validates base/servicemonitor.yaml. A missing tool fails the
# test: scripts/install-deps.sh provides kubectl, node and node_modules.
set -euo pipefail
src=${1:?usage: k8s_test.sh SRCDIR}
here=$src/tests/deploy
k8s=$src/deploy/k8s

need() {
	command -v "$1" >/dev/null 2>&1 && return
	echo "FAIL: '$1' is missing: run scripts/install-deps.sh" \
	    "(it installs Debian's $2)" >&2
	exit 1
}
need kubectl kubernetes-client
need node nodejs
if [ ! -d "$here/node_modules/kubernetes-models" ]; then
	echo "FAIL: $here/node_modules is missing: run" \
	    "scripts/install-deps.sh (npm ci there)" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-k8s-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# kustomize 5 warns that bases and commonLabels are deprecated; we keep
# them for Debian's kubectl 1.20 (deploy/README.md). Other output on
# stderr is shown.
render() {
	if ! kubectl kustomize "$k8s/$1" >"$tmp/$2.yaml" 2>"$tmp/$2.err"; then
		cat "$tmp/$2.err" >&2
		echo "FAIL: kubectl kustomize $1" >&2
		exit 1
	fi
	grep -v "is deprecated. Please use" "$tmp/$2.err" >&2 || true
}
render base base
render overlays/dev dev
render overlays/prod prod

node "$here/check_k8s.js" "base=$tmp/base.yaml:1:2" \
    "dev=$tmp/dev.yaml:1:1" "prod=$tmp/prod.yaml:3:2" \
    --monitor "$k8s/base/servicemonitor.yaml"
