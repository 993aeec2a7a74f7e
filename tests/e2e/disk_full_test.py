#!/usr/bin/env python3
"""disk_full_test.py BINDIR: `vecdb serve` on a full disk.

A 32 MiB tmpfs holds the data dir and a 6 MiB filler file. Batches are
written over REST until one is refused: it must be 507
RESOURCE_EXHAUSTED saying the disk is full, and change nothing. Reads
(get, search, count) go on. Once the filler is removed, writes succeed
again; after a restart every acknowledged point is there and no refused
one is. Mounting needs root: without it the test says so and exits 77
(ctest: skipped).
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vdbproc import Checks, Procs, call  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else "build/bin"
DIM = 64
BATCH = 400
check = Checks()



def batch(port, b):
    pts = [{"id": b * BATCH + i,
            "data": [random.random() for _ in range(DIM)],
            "metadata": {"pad": "p" * 200}} for i in range(BATCH)]
    return call(port, "POST", "/collections/c/vectors/batch",
                {"vectors": pts})


def fill(port, first, acked, limit=400):
    """Write batches from first until one is refused: (batch, status,
    body) of the refusal, or None."""
    for b in range(first, first + limit):
        st, body = batch(port, b)
        if st == 200:
            acked.add(b)
            continue
        return b, st, body
    return None


def count(port):
    st, body = call(port, "POST", "/collections/c/points/count", {})
    return body["data"]["count"] if st == 200 else None


def main():
    tmp = tempfile.mkdtemp(prefix="vecdb-full-")
    mnt = os.path.join(tmp, "disk")
    os.mkdir(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs",
                       mnt], capture_output=True).returncode != 0:
        print("SKIPPED: cannot mount a tmpfs here (needs root)")
        shutil.rmtree(tmp, ignore_errors=True)
        return 77
    P = Procs(tmp)
    try:
        with open(os.path.join(mnt, "filler"), "wb") as f:
            f.write(b"\0" * (6 << 20))
        data = os.path.join(mnt, "data")
        p, port = P.serve(BIN, data)
        st, _ = call(port, "POST", "/collections",
                     {"name": "c", "dimension": DIM})
        check(st == 200, "collection created")
        acked = set()
        refused = fill(port, 0, acked)
        check(refused is not None and acked,
              f"{len(acked)} batches written, then one refused")
        b, st, body = refused
        msg = (body or {}).get("error", {}).get("message", "")
        code = (body or {}).get("error", {}).get("code", "")
        check(st == 507 and code == "RESOURCE_EXHAUSTED" and
              "full" in msg, f"the refusal is 507 {code}: {msg}")
        check(count(port) == len(acked) * BATCH,
              "the refused batch wrote nothing")
        # reads go on
        st, _ = call(port, "GET", "/collections/c/vectors/1")
        check(st == 200, f"get on a full disk: {st}")
        st, _ = call(port, "POST", "/collections/c/search",
                     {"vector": [0.5] * DIM, "limit": 3})
        check(st == 200, f"search on a full disk: {st}")
        # while full, a write either fits in pages LMDB freed inside its
        # file (WAL trimmed, checkpoint temp files removed) or is refused
        # the same clean way: never a 500, never half applied
        st, body = batch(port, 10000)
        check(st in (200, 507) and (st == 200 or "full" in
              (body or {}).get("error", {}).get("message", "")),
              f"a second write while full: {st}")
        if st == 200:
            acked.add(10000)
        # space freed: writes work again
        os.unlink(os.path.join(mnt, "filler"))
        # a checkpoint being written may hold the freed room a moment
        for _ in range(50):
            st, _ = batch(port, 20000)
            if st != 507:
                break
            time.sleep(0.2)
        check(st == 200, f"a write once space is freed: {st}")
        if st == 200:
            acked.add(20000)
        check(P.stop(p) == 0, "stopped cleanly")
        p, port = P.serve(BIN, data)
        n = count(port)
        check(n == len(acked) * BATCH,
              f"after a restart: {n} points, {len(acked) * BATCH} "
              "acknowledged")
        missing = [b for b in sorted(acked)
                   if call(port, "GET",
                           f"/collections/c/vectors/{b * BATCH}")[0] != 200]
        check(not missing, f"every acknowledged batch is there {missing}")
        st, _ = call(port, "GET", f"/collections/c/vectors/{b * BATCH}")
        check(st == 404, f"the refused batch is not ({st})")
        check(P.stop(p) == 0, "stopped cleanly")
    except Exception as e:
        check(False, f"harness: {e!r}")
    finally:
        if check.failed():
            for q in P.procs:
                q.log.seek(0)
                print(f"--- {q.args[0]} stderr:\n{q.log.read()[-3000:]}")
        P.stop_all()
        subprocess.run(["umount", "-l", mnt])
        shutil.rmtree(tmp, ignore_errors=True)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())
