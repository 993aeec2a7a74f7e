#!/usr/bin/env bash
# k8s_test.sh SRCDIR BINDIR: renders deploy/k8s/base and the overlays
# with `kubectl kustomize` (offline) and runs check_k8s.js on them:
# Kubernetes schemas, topology against Services and StatefulSets, shard and
# replica counts; validates base/servicemonitor.yaml; and has the real
# vecdb-router load each topology file (names need not resolve: it dials in
# the background). A missing tool fails the test: scripts/install-deps.sh
# provides kubectl, node and node_modules.
set -euo pipefail
src=${1:?usage: k8s_test.sh SRCDIR BINDIR}
bindir=${2:?usage: k8s_test.sh SRCDIR BINDIR}
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
router=
cleanup() {
	if [ -n "$router" ]; then
		kill -KILL "$router" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

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
render overlays/dev-tls dev-tls
render overlays/dev-etcd dev-etcd

# vecdb-router accepts each topology: it prints its serving line, and
# stops with status 0 on SIGTERM.
# Each router writes its own files: the shell truncates an output file in
# the child after fork, so a reused one could still show the previous
# router's line.
for t in base overlays/dev overlays/prod overlays/dev-tls; do
	out=$tmp/router-${t##*/}.out
	err=$tmp/router-${t##*/}.err
	: >"$out"
	# a TLS topology needs the router's certificate, as the Secret gives
	tls=()
	if [ "$t" = overlays/dev-tls ]; then
		"$src/scripts/tls-ca.sh" "$tmp/tls" member >/dev/null
		tls=(VECDB_TLS_CA="$tmp/tls/ca.pem"
		    VECDB_TLS_CERT="$tmp/tls/member.pem"
		    VECDB_TLS_KEY="$tmp/tls/member.key")
	fi
	# the topology as the Deployment gives it: VECDB_TOPOLOGY
	env -u VECDB_API_KEY VECDB_TOPOLOGY="$k8s/$t/topology.json" \
	    "${tls[@]}" "$bindir/vecdb-router" --host 127.0.0.1 --port 0 \
	    --qdrant-port 0 >"$out" 2>"$err" &
	router=$!
	for _ in $(seq 100); do
		grep -q 'serving http' "$out" && break
		kill -0 "$router" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q 'serving http' "$out"; then
		cat "$err" >&2
		echo "FAIL: vecdb-router does not load $t/topology.json" >&2
		exit 1
	fi
	kill -TERM "$router"
	rc=0
	wait "$router" || rc=$?
	router=
	[ "$rc" = 0 ] || { echo "FAIL: vecdb-router exited $rc" >&2; exit 1; }
done

node "$here/check_k8s.js" "base=$tmp/base.yaml:1:2" \
    "dev=$tmp/dev.yaml:1:1" "prod=$tmp/prod.yaml:3:2" \
    "dev-tls=$tmp/dev-tls.yaml:1:1" "dev-etcd=$tmp/dev-etcd.yaml:1:1" \
    --monitor "$k8s/base/servicemonitor.yaml"
