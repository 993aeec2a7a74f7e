#!/usr/bin/env bash
# tls-ca.sh: a throwaway certificate authority and certificates for the
# mutual TLS between vecdb processes (tls+tcp://, docs/OPERATIONS.md).
#
#   scripts/tls-ca.sh DIR NAME...
#
# Makes DIR/ca.pem and DIR/ca.key (the CA, made once and kept), then for
# each NAME DIR/NAME.pem and DIR/NAME.key: a certificate the CA signs, for
# both ends of a connection, valid for NAME, localhost and 127.0.0.1.
# Give each process its own: --tls-ca DIR/ca.pem --tls-cert DIR/NAME.pem
# --tls-key DIR/NAME.key. For tests and local clusters; production keys
# come from your own CA (in Kubernetes, a Secret, deploy/README.md).
set -euo pipefail

[ $# -ge 2 ] || { sed -n '5p' "$0" | sed 's/^# *//' >&2; exit 2; }
command -v openssl >/dev/null ||
    { echo "tls-ca.sh: openssl is missing (apt-get install openssl)" >&2
      exit 1; }
dir=$1
shift
mkdir -p "$dir"
umask 077
log=$dir/openssl.log
: >"$log"

if [ ! -f "$dir/ca.pem" ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -subj "/CN=vecdb test CA" -days 30 \
	    -addext basicConstraints=critical,CA:TRUE \
	    -addext keyUsage=critical,keyCertSign,cRLSign \
	    -keyout "$dir/ca.key" -out "$dir/ca.pem" >>"$log" 2>&1 ||
	    { echo "tls-ca.sh: cannot make the CA: see $log" >&2; exit 1; }
fi

for name in "$@"; do
	case "$name" in
	'' | */* | .*) echo "tls-ca.sh: bad name '$name'" >&2; exit 2 ;;
	esac
	ext=$dir/$name.ext
	printf '%s\n' "basicConstraints=CA:FALSE" \
	    "keyUsage=critical,digitalSignature,keyEncipherment" \
	    "extendedKeyUsage=serverAuth,clientAuth" \
	    "subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1" >"$ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -subj "/CN=$name" -keyout "$dir/$name.key" \
	    -out "$dir/$name.csr" >>"$log" 2>&1 &&
	openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" \
	    -CAkey "$dir/ca.key" -CAcreateserial -days 30 -extfile "$ext" \
	    -out "$dir/$name.pem" >>"$log" 2>&1 ||
	    { echo "tls-ca.sh: cannot make $name's certificate: see $log" >&2
	      exit 1; }
	rm -f "$dir/$name.csr" "$ext"
done
