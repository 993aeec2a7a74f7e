#!/usr/bin/env bash
# datasets.sh: benchmark datasets from Debian packages, as fvecs/ivecs.
#
#   scripts/datasets.sh
#
# Writes data/datasets/fashion-mnist-784-euclidean/:
#   base.fvecs   the 60000 training images, 784 float32 pixels (0..255)
#   query.fvecs  the 10000 test images
#   gt.ivecs     exact euclidean top-100 of each query (vecdb-bench gt)
# the same split and values as ann-benchmarks' fashion-mnist-784-euclidean.
#
# Installs what it needs when missing: dataset-fashion-mnist (the original
# gzipped idx files, not HDF5) and python3 for the conversion. Steps whose
# output exists are skipped. VECDB_BENCH names the vecdb-bench binary
# (default build/bin/vecdb-bench; build it first).
set -euo pipefail

cd "$(dirname "$0")/.."
BENCH=${VECDB_BENCH:-build/bin/vecdb-bench}
OUT=data/datasets/fashion-mnist-784-euclidean
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# Install a Debian package unless it is there already.
need_pkg() {
	if ! dpkg -s "$1" >/dev/null 2>&1; then
		echo "datasets.sh: installing $1"
		$SUDO apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$1"
	fi
}

# idx3-ubyte.gz (magic 2051, n, rows, cols, then n*rows*cols bytes) to fvecs.
idx_to_fvecs() {
	python3 - "$1" "$2" <<'EOF'
import array, gzip, os, struct, sys

src, dst = sys.argv[1], sys.argv[2]
with gzip.open(src, "rb") as f:
    data = f.read()
magic, n, rows, cols = struct.unpack(">IIII", data[:16])
if magic != 2051 or len(data) != 16 + n * rows * cols:
    sys.exit("%s: not an idx3-ubyte image file" % src)
d = rows * cols
pixels = memoryview(data)[16:]
head = struct.pack("<i", d)
with open(dst + ".tmp", "wb") as o:
    for i in range(n):
        o.write(head)
        array.array("f", pixels[i * d:(i + 1) * d].tolist()).tofile(o)
os.replace(dst + ".tmp", dst)
print("datasets.sh: %s: %d vectors of %d" % (dst, n, d))
EOF
}

need_pkg dataset-fashion-mnist
command -v python3 >/dev/null || need_pkg python3
src=$(dirname "$(dpkg -L dataset-fashion-mnist |
	grep 'train-images-idx3-ubyte.gz$')")
mkdir -p "$OUT"
[ -s "$OUT/base.fvecs" ] ||
	idx_to_fvecs "$src/train-images-idx3-ubyte.gz" "$OUT/base.fvecs"
[ -s "$OUT/query.fvecs" ] ||
	idx_to_fvecs "$src/t10k-images-idx3-ubyte.gz" "$OUT/query.fvecs"
if [ ! -s "$OUT/gt.ivecs" ]; then
	if [ ! -x "$BENCH" ]; then
		echo "datasets.sh: $BENCH not built (set VECDB_BENCH)" >&2
		exit 1
	fi
	"$BENCH" gt --base "$OUT/base.fvecs" --query "$OUT/query.fvecs" \
		--k 100 --metric l2 --out "$OUT/gt.ivecs.tmp"
	mv "$OUT/gt.ivecs.tmp" "$OUT/gt.ivecs"
fi
ls -l "$OUT"
