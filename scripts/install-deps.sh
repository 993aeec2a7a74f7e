#!/usr/bin/env bash
# Installs the Debian packages that vecdb's build, tests and tools need,
# and only those that are missing. Safe to run again and again: it does
# nothing (not even `apt-get update`) when everything is already there.
#
#   install-deps.sh             build, tests, fuzzing and tools (a developer,
#                               CI)
#   install-deps.sh --build     only what building needs (deploy/Dockerfile)
#   install-deps.sh --runtime   only the shared libraries and tools the
#                               installed binaries use (the image's last stage)
set -euo pipefail

# What building needs.
build=(
	build-essential cmake pkg-config
	liblmdb-dev          # storage
	libjansson-dev       # JSON payloads, filters, REST
	libssl-dev           # SHA-256 for snapshots, TLS later
	uuid-dev             # v4 UUID point ids
	check                # unit tests
	libnng-dev           # node/router messaging
	libprotobuf-c-dev protobuf-c-compiler  # wire format
	libmicrohttpd-dev    # HTTP servers (api/api_httpd.c)
	libcivetweb-dev      # HTTP client of the tests and vecdb-bench
	libyaml-dev          # config files
	libcurl4-openssl-dev # vecdbctl speaks REST, nodes and routers etcd's
	                     # gateway, through libcurl
	libhnswlib-dev       # the peer vecdb-bench ann --compare measures
	libxxhash-dev        # XXH64 of the index checkpoints
)

# What the binaries load at run time: the libraries of the -dev packages
# above (Debian 12 names). No tools: deploy/k8s probes the nodes' admin
# HTTP over the network (httpGet), not with curl in the container.
runtime=(
	liblmdb0 libjansson4 libssl3 libuuid1 libnng1 libprotobuf-c1
	libmicrohttpd12 libcivetweb1 libyaml-0-2 libcurl4 ca-certificates
	libxxhash0
)

# What the tests and tools add.
tools=(
	openssl curl         # test certificates, end-to-end tests
	prometheus           # promtool checks /metrics and deploy/prometheus
	jq                   # tests/deploy and the vecdbctl test read JSON
	python3              # tests pick free ports with it
	etcd-server          # the coordinator the cluster tests start
	gdb                  # a test shows where a process that hangs is
)
# What `make fuzz` adds (fuzz/, docs/FUZZING.md): clang with its libFuzzer
# and sanitizer runtimes (clang-14 only recommends the runtimes, and we
# install without recommends).
fuzz=(
	clang libclang-rt-14-dev
)
# node and npm validate deploy/k8s (tests/deploy), kubectl renders it
# (`kubectl kustomize`). A node or kubectl already on the PATH (another
# packaging, a newer version) is kept: Debian's would conflict with it.
command -v node >/dev/null 2>&1 || tools+=(nodejs npm)
command -v kubectl >/dev/null 2>&1 || tools+=(kubernetes-client)

case "${1:-}" in
--build) packages=("${build[@]}") ;;
--runtime) packages=("${runtime[@]}") ;;
"") packages=("${build[@]}" "${tools[@]}" "${fuzz[@]}") ;;
*) echo "usage: install-deps.sh [--build|--runtime]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}" >&2
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		sudo="sudo"
	fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The npm packages of the tests, each pinned by its package-lock.json:
# the schema validator of tests/deploy, the official Qdrant client and
# ajv (Qdrant's response schemas) of tests/qdrant.
if [ -z "${1:-}" ]; then
	root="$(cd "$(dirname "$0")/.." && pwd)"
	for t in deploy:kubernetes-models qdrant:@qdrant/js-client-rest,ajv; do
		dir="$root/tests/${t%%:*}"
		stale=0
		IFS=, read -r -a mods <<<"${t#*:}"
		for m in "${mods[@]}"; do
			[ -d "$dir/node_modules/$m" ] || stale=1
		done
		if [ "$stale" -eq 1 ]; then
			echo "install-deps: npm ci in tests/${t%%:*}" >&2
			(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
		fi
	done
fi
