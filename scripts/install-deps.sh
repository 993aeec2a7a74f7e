#!/usr/bin/env bash
# Installs the Debian packages that vecdb's build, tests and tools need,
# and only those that are missing. Safe to run again and again: it does
# nothing (not even `apt-get update`) when everything is already there.
set -euo pipefail

packages=(
	build-essential cmake pkg-config
	liblmdb-dev          # storage
	libjansson-dev       # JSON payloads, filters, REST
	libssl-dev           # SHA-256 for snapshots, TLS later
	uuid-dev             # v4 UUID point ids
	check                # unit tests
	libnng-dev           # node/router messaging
	libprotobuf-c-dev protobuf-c-compiler  # wire format
	libcivetweb-dev      # HTTP
	libyaml-dev          # config files
	libcurl4-openssl-dev # vecdbctl speaks REST through libcurl
	openssl curl         # test certificates, end-to-end tests
	jq                   # the vecdbctl test reads its --json output
	prometheus           # promtool checks the /metrics output
	libhnswlib-dev       # the peer vecdb-bench ann --compare measures
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
