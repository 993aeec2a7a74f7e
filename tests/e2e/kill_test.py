#!/usr/bin/env python3
"""kill_test.py BINDIR [ROUNDS]: kill -9 `vecdb serve` during REST ingest.

Three clients write batches of points over HTTP (each point's vector and
payload derived from its id) while, at a random instant, the server gets
SIGKILL. It then starts again on the same data dir, 20 rounds (ROUNDS).
After each restart:
- every point of every acknowledged batch is there, with its own vector
  and payload;
- every batch is there whole or not at all (the ones in flight too);
- nothing else is there;
- each point's sparse vector is there, and the posting lists agree with
  the points: a sparse search for a batch's own index finds exactly the
  points of that batch that are there;
- each point's named dense vector ("image") is there, and a search using
  it finds a point at distance 0 for a point's own image.
As users see it: over HTTP, with the default durability (sync).
"""
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vdbproc import Checks, Procs, call  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else "build/bin"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
DIM = 8
BATCH = 50
CLIENTS = 3
check = Checks(quiet=True)



def vec(pid):
    return [float((pid * 7 + k) % 101) / 10.0 for k in range(DIM)]


def image(pid):
    """Point pid's named vector: spread out, one a point (a graph walks
    thousands of exact duplicates badly, and this checks recovery)."""
    return [round((pid * a) % 1.0 * 100, 4)
            for a in (0.6180339887, 0.7548776662, 0.5698402910)]


def sparse(pid):
    """Point pid's sparse vector: an index of its own batch's, and one
    shared at random."""
    return {"indices": [pid % 97, 1000 + pid // BATCH],
            "values": [1.0, 0.5]}


class Writer(threading.Thread):
    """Writes batches with ids from its own range until the server dies."""
    def __init__(self, port, next_batch, lock, sent, acked):
        super().__init__(daemon=True)
        self.port = port
        self.next_batch = next_batch
        self.lock = lock
        self.sent = sent
        self.acked = acked

    def run(self):
        while True:
            with self.lock:
                b = self.next_batch[0]
                self.next_batch[0] += 1
                self.sent.add(b)
            pts = [{"id": b * BATCH + i, "data": vec(b * BATCH + i),
                    "metadata": {"batch": b, "i": i},
                    "vectors": {"text": sparse(b * BATCH + i),
                                "image": image(b * BATCH + i)}}
                   for i in range(BATCH)]
            st, _ = call(self.port, "POST", "/collections/c/vectors/batch",
                         {"vectors": pts}, timeout=10)
            if st == 200:
                with self.lock:
                    self.acked.add(b)
            elif st == 0:
                return  # the server is gone
            else:
                print(f"unexpected status {st} for batch {b}")
                return


def all_points(port):
    """Every point as {id: (vector, payload)}, by scroll."""
    out, offset = {}, None
    while True:
        body = {"limit": 1000, "with_vectors": True}
        if offset is not None:
            body["offset"] = offset
        st, r = call(port, "POST", "/collections/c/points/scroll", body)
        if st != 200:
            raise RuntimeError(f"scroll: {st} {r}")
        for p in r["data"]["points"]:
            out[p["id"]] = (p.get("vector"), p.get("payload"),
                            p.get("vectors", {}).get("text"),
                            p.get("vectors", {}).get("image"))
        offset = r["data"]["next_offset"]
        if offset is None:
            return out


def verify(port, sent, acked, rnd):
    pts = all_points(port)
    present, wrong = {}, []
    for pid, (v, pay, sp, img) in pts.items():
        b = pid // BATCH
        present[b] = present.get(b, 0) + 1
        want = sparse(pid)
        if v is None or any(abs(a - e) > 1e-5 for a, e in
                            zip(v, vec(pid))) or \
                pay != {"batch": b, "i": pid % BATCH} or sp is None or \
                sorted(zip(sp["indices"], sp["values"])) != \
                sorted(zip(want["indices"], want["values"])) or \
                img is None or any(abs(a - e) > 1e-3 for a, e in
                                   zip(img, image(pid))):
            wrong.append(pid)
    check(not wrong, f"round {rnd}: points with another vector or payload: "
          f"{wrong[:10]}")
    lost = sorted(b for b in acked if present.get(b, 0) != BATCH)
    check(not lost, f"round {rnd}: acknowledged batches lost or partial: "
          f"{lost[:10]}")
    half = sorted(b for b, n in present.items() if n != BATCH)
    check(not half, f"round {rnd}: batches half applied: {half[:10]}")
    stray = sorted(b for b in present if b not in sent)
    check(not stray, f"round {rnd}: batches never sent: {stray[:10]}")
    # the postings: a batch's own index finds what is there of it
    for b in sorted(sent)[-6:] + [max(sent) + 1]:
        st, r = call(port, "POST", "/collections/c/search",
                     {"sparse_vector": {"using": "text",
                                        "indices": [1000 + b],
                                        "values": [1.0]},
                      "limit": 2 * BATCH, "with_payload": False})
        got = sorted(h["id"] for h in r["data"]) if st == 200 else None
        check(got == sorted(pid for pid in pts if pid // BATCH == b),
              f"round {rnd}: sparse search of batch {b}: {st}, "
              f"{None if got is None else len(got)} hits")
    # the named vector's graph (or its WAL tail) finds what is there
    for pid in sorted(pts)[::max(1, len(pts) // 3)][:3]:
        st, r = call(port, "POST", "/collections/c/search",
                     {"vector": image(pid), "using": "image", "limit": 1,
                      "params": {"hnsw_ef": 256}, "with_payload": False})
        check(st == 200 and len(r["data"]) == 1 and
              r["data"][0]["distance"] < 1e-6,
              f"round {rnd}: search using image for point {pid}: {st} "
              f"{r if st != 200 else r['data']}")
    return len(pts)


def main():
    tmp = tempfile.mkdtemp(prefix="vecdb-kill-")
    P = Procs(tmp)
    data = os.path.join(tmp, "data")
    rng = random.Random(int(os.environ.get("SEED", "1")))
    sent, acked = set(), set()
    next_batch = [0]
    lock = threading.Lock()
    try:
        p, port = P.serve(BIN, data)
        st, _ = call(port, "POST", "/collections",
                     {"name": "c", "dimension": DIM,
                      "distance_metric": "euclidean",
                      "sparse_vectors": {"text": {}},
                      "vectors": {"image": {"dimension": 3,
                                            "distance_metric": "euclidean"}}})
        check(st == 200, "collection created")
        for rnd in range(1, ROUNDS + 1):
            ws = [Writer(port, next_batch, lock, sent, acked)
                  for _ in range(CLIENTS)]
            for w in ws:
                w.start()
            time.sleep(rng.uniform(0.05, 0.6))
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            for w in ws:
                w.join(15)
            p, port = P.serve(BIN, data)
            n = verify(port, sent, acked, rnd)
            print(f"round {rnd}: killed after {len(acked)} acknowledged "
                  f"batches of {len(sent)} sent; {n} points after restart",
                  flush=True)
            # the search path agrees with the stored points
            st, r = call(port, "POST", "/collections/c/search",
                         {"vector": vec(0), "limit": 1})
            check(st == 200, f"round {rnd}: search after restart: {st}")
        check(P.stop(p) == 0, "stopped cleanly at the end")
    except Exception as e:
        check(False, f"harness: {e!r}")
    finally:
        P.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())
