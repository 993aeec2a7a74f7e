#!/usr/bin/env python3
"""etcd_failover_test.py BINDIR [ROUNDS]: automatic failover through etcd.

A real etcd on free loopback ports; one shard of three vecdb-node started
with --etcd and no --mode (the role is elected); a vecdb-router with only
--etcd. A client thread writes batches with write_concern 1 without a
pause and keeps the ids each acknowledged. ROUNDS times (10): kill -9 the
shard's leader; writes must succeed again within 5 s (the gap from the
last acknowledgement before the kill to the first after is printed); the
killed node is started again on its data and must rejoin as a replica.
Right after each kill a single write goes through a second router whose
deadline (8 s) outlasts the failover: one that router surely could not
send (the leader's connection is gone) must wait for the new leader and
be acknowledged, not refused with 503.
Then a partition, not a crash: each node reaches etcd through a relay of
this test, and the leader's is cut (its connections dropped, new ones
held unanswered). The leader must refuse writes on its own within the
lease's 2 s (a client writing to it directly is refused), another member
must take over, and once the relay heals the old leader must follow it
as a replica. Last, a replica promoted through the router (what
`vecdbctl promote` does) must become and stay the leader.
At the end every acknowledged point is there: the exact count through
the router with consistency primary, and each id. Everything started is
stopped on exit, also on failure. A round slower than 3 s (every round
with VERBOSE=1) prints the answers the client got from the kill to its
first acknowledgement, which shows what it waited on.
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
BATCH = 20
RESUME_S = 5.0

procs = []
tmp = tempfile.mkdtemp(prefix="vecdb-failover-")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(name, args):
    out = open(os.path.join(tmp, name + ".out"), "w")
    err = open(os.path.join(tmp, name + ".log"), "a")
    p = subprocess.Popen(args, stdout=out, stderr=err,
                         stdin=subprocess.DEVNULL)
    procs.append(p)
    return p


def first_line(name, timeout=30):
    path = os.path.join(tmp, name + ".out")
    end = time.time() + timeout
    while time.time() < end:
        with open(path) as f:
            line = f.readline()
        if line.endswith("\n"):
            return line
        time.sleep(0.05)
    raise RuntimeError(f"{name} printed nothing in {timeout} s: "
                       + tail(name))


def tail(name, n=15):
    try:
        with open(os.path.join(tmp, name + ".log")) as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def http(method, url, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


class Relay(threading.Thread):
    """127.0.0.1:port -> target, both ways; cut() drops every connection
    and holds new ones unanswered (a partition), heal() undoes it."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self.target = target
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.lock = threading.Lock()
        self.cut_now = False
        self.socks = []

    def run(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            with self.lock:
                self.socks.append(c)
                if self.cut_now:
                    continue  # held: never answered
            try:
                t = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            with self.lock:
                self.socks.append(t)
            for a, b in ((c, t), (t, c)):
                threading.Thread(target=self.pump, args=(a, b),
                                 daemon=True).start()

    def pump(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d or self.cut_now:
                    break
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            self.cut_now = True
            socks, self.socks = self.socks, []
        for x in socks:
            try:
                x.shutdown(socket.SHUT_RDWR)
                x.close()
            except OSError:
                pass

    def heal(self):
        with self.lock:
            self.cut_now = False
            socks, self.socks = self.socks, []
        for x in socks:  # the held ones end; new ones are carried
            try:
                x.close()
            except OSError:
                pass


def wait_for(what, cond, timeout):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if cond():
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


class Writer(threading.Thread):
    """Writes batches non-stop; keeps acknowledged ids and their times."""

    def __init__(self, router):
        super().__init__(daemon=True)
        self.router = router
        self.acked = set()
        self.ack_times = []
        self.next_id = 1
        self.stop = False
        self.pause = False
        self.idle = threading.Event()
        self.lock = threading.Lock()
        self.attempts = []  # (start, end, code, message) of each write

    def run(self):
        while not self.stop:
            if self.pause:
                self.idle.set()
                time.sleep(0.01)
                continue
            self.idle.clear()
            ids = list(range(self.next_id, self.next_id + BATCH))
            self.next_id += BATCH
            body = {"vectors": [{"id": i, "vector": [float(i % 97), 1.0]}
                                for i in ids], "write_concern": 1}
            t0 = time.time()
            try:
                code, ans = http("POST", self.router +
                                 "/collections/t/vectors/batch", body)
            except OSError as e:
                code, ans = 0, {"error": str(e)}
            with self.lock:
                self.attempts.append((t0, time.time(), code,
                                      "" if code == 200 else
                                      json.dumps(ans)))
            if code == 200:
                with self.lock:
                    self.acked.update(ids)
                    self.ack_times.append(time.time())
            else:
                time.sleep(0.02)

    def last_ack(self):
        with self.lock:
            return self.ack_times[-1] if self.ack_times else 0.0

    def story(self, t0, t1):
        """The attempts from t0 to the first success after t1, relative to
        t0 (a run of the same answer on one line): what a slow failover
        waited on."""
        with self.lock:
            seen = [a for a in self.attempts if a[1] >= t0 and a[0] <= t1]
        runs = []
        for a in seen:
            what = f"{a[2]} {a[3][:200]}"
            if runs and runs[-1][2] == what:
                runs[-1][1], runs[-1][3] = a[1], runs[-1][3] + 1
            else:
                runs.append([a[0], a[1], what, 1])
        return "\n".join(f"  {r[0] - t0:+.2f} .. {r[1] - t0:+.2f} s: "
                         f"{r[3]} x {r[2]}" for r in runs)

    def failed(self, t0, t1):
        """How many writes that started from t0 to t1 failed."""
        with self.lock:
            return sum(1 for a in self.attempts
                       if t0 <= a[0] <= t1 and a[2] != 200)

    def first_ack_after(self, t):
        with self.lock:
            later = [a for a in self.ack_times if a > t]
        return later[0] if later else None


def main():
    cport, pport = free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{cport}"
    start("etcd", ["etcd", "--name", "t", "--data-dir",
                   os.path.join(tmp, "etcd"),
                   "--listen-client-urls", etcd_url,
                   "--advertise-client-urls", etcd_url,
                   "--listen-peer-urls", f"http://127.0.0.1:{pport}",
                   "--initial-advertise-peer-urls",
                   f"http://127.0.0.1:{pport}",
                   "--initial-cluster", f"t=http://127.0.0.1:{pport}"])
    wait_for("etcd up", lambda: urllib.request.urlopen(
        etcd_url + "/health", timeout=1).status == 200, 20)

    nodes = {}

    def node_start(name):
        d = os.path.join(tmp, name)
        os.makedirs(d, exist_ok=True)
        # the same port and relay again on a restart
        if name in nodes:
            port, relay = nodes[name]["port"], nodes[name]["relay"]
        else:
            port, relay = free_port(), Relay(cport)
            relay.start()
        open(os.path.join(tmp, name + ".out"), "w").close()
        p = start(name, [os.path.join(BIN, "vecdb-node"), "--data", d,
                         "--rpc", f"tcp://127.0.0.1:{port}",
                         "--admin-port", "0", "--etcd",
                         f"http://127.0.0.1:{relay.port}",
                         "--shard", "0", "--node-id", name])
        first_line(name)
        nodes[name] = {"proc": p, "port": port, "relay": relay}

    for name in ("a", "b", "c"):
        node_start(name)
    start("router", [os.path.join(BIN, "vecdb-router"), "--etcd", etcd_url,
                     "--host", "127.0.0.1", "--port", "0",
                     "--qdrant-port", "0", "--timeout-ms", "2000"])
    line = first_line("router")
    router = line.split("serving ")[1].split()[0]
    start("patient", [os.path.join(BIN, "vecdb-router"), "--etcd",
                      etcd_url, "--host", "127.0.0.1", "--port", "0",
                      "--qdrant-port", "0", "--timeout-ms", "8000"])
    patient = first_line("patient").split("serving ")[1].split()[0]
    probes = {}  # id: acknowledged, of the writes through patient

    def probe_write(r):
        """A write through patient right after a kill; the seconds it
        took. One sent before the router saw the connection go may have
        been applied (504) and is not resent by design: then once more."""
        for k in range(2):
            pid = 10 ** 9 + 10 * r + k
            probes[pid] = False
            t0 = time.time()
            code, ans = http("POST", patient +
                             "/collections/t/vectors/batch",
                             {"vectors": [{"id": pid, "vector": [1.0, 2.0]}],
                              "write_concern": 1}, timeout=30)
            if code != 504 or "may have been applied" not in json.dumps(ans):
                break
        assert code == 200, (f"round {r + 1}: a write during the failover "
                             f"through a router with time to wait: {code} "
                             f"{ans}")
        probes[pid] = True
        return time.time() - t0

    def cluster():
        return http("GET", router + "/cluster")[1]["data"]["shards"][0]

    def leader():
        for m in cluster()["members"]:
            if m["role"] == "primary":
                return m["node_id"]
        return None

    wait_for("a leader and two replicas", lambda: sorted(
        m["role"] for m in cluster()["members"]) ==
        ["primary", "replica", "replica"], 30)
    code, body = http("POST", router + "/collections",
                      {"name": "t", "dimension": 2})
    assert code == 200, body
    w = Writer(router)
    w.start()
    gaps, fails = [], []
    for r in range(ROUNDS):
        wait_for("writes acknowledged", lambda: len(w.acked) > 200 *
                 (r + 1), 30)
        victim = leader()
        assert victim is not None, cluster()
        nodes[victim]["proc"].send_signal(signal.SIGKILL)
        nodes[victim]["proc"].wait()
        killed = time.time()
        before = w.last_ack()
        held = probe_write(r)
        wait_for(f"round {r + 1}: writes after killing {victim}",
                 lambda: w.first_ack_after(killed) is not None,
                 RESUME_S + 5)
        gap = w.first_ack_after(killed) - before
        gaps.append(gap)
        fails.append(w.failed(killed, w.first_ack_after(killed)))
        print(f"round {r + 1}: killed {victim}; writes again after "
              f"{gap:.2f} s ({w.first_ack_after(killed) - killed:.2f} s "
              f"after the kill, {fails[-1]} writes failed; new leader "
              f"{leader()}; a write through the patient router waited "
              f"{held:.2f} s)", flush=True)
        if gap > 3.0 or os.environ.get("VERBOSE"):
            print(w.story(killed, w.first_ack_after(killed)), flush=True)
        assert gap <= RESUME_S, f"writes resumed after {gap:.2f} s"
        node_start(victim)
        wait_for(f"{victim} back as a replica", lambda: any(
            m["node_id"] == victim and m["role"] == "replica" and
            m["reachable"] for m in cluster()["members"]), 30)
    # A partition: the leader cut off from etcd steps down on its own.
    victim = leader()
    direct = f"tcp://127.0.0.1:{nodes[victim]['port']}"

    def direct_write():
        r = subprocess.run([os.path.join(BIN, "client_example"), direct],
                           capture_output=True, text=True, timeout=30)
        return r.returncode, r.stderr

    code, err = direct_write()
    assert code == 0, f"a direct write to the leader {victim}: {err}"
    nodes[victim]["relay"].cut()
    cut = time.time()
    wait_for(f"{victim} refusing writes once cut off from etcd",
             lambda: direct_write()[0] != 0, 10)
    refused = time.time() - cut
    code, err = direct_write()
    assert code != 0 and "not sent" not in err and \
        "no answer" not in err, f"not a refusal: {err}"
    wait_for("another leader", lambda: leader() not in (None, victim), 15)
    new = leader()
    print(f"partition: {victim} refused writes {refused:.2f} s after it "
          f"was cut off ({err.strip()}); {new} took over", flush=True)
    assert refused <= 2.5, f"{victim} took {refused:.2f} s to fence"
    wait_for("writes through the router after the partition",
             lambda: w.first_ack_after(time.time() - 0.5) is not None, 15)
    nodes[victim]["relay"].heal()
    wait_for(f"{victim} back as a replica after healing", lambda: any(
        m["node_id"] == victim and m["role"] == "replica" and
        m["reachable"] for m in cluster()["members"]), 30)
    assert leader() == new, f"the leader is {leader()}, not {new}"
    print(f"partition healed: {victim} follows {new}", flush=True)

    # vecdbctl promote (POST /cluster/promote) moves the leadership: the
    # named replica leads, and keeps the key in etcd. Writes pause around
    # it: a promotion while the old primary still acknowledges writes can
    # lose those it acknowledged after the new one was chosen (the router
    # picks the most advanced replica, then tells the primary to follow).
    w.pause = True
    assert w.idle.wait(30), "the writer did not pause"
    # (the router promotes only the most advanced replica; under writes
    # which one that is moves, so try again on "is behind")
    for _ in range(50):
        target = max((m for m in cluster()["members"]
                      if m["role"] == "replica"),
                     key=lambda m: m.get("last_seq", 0))["node_id"]
        code, body = http("POST", router + "/cluster/promote",
                          {"node": target})
        if code == 200 or "is behind" not in json.dumps(body):
            break
        time.sleep(0.1)
    assert code == 200, body
    wait_for(f"{target} leading after promote", lambda: leader() == target,
             15)
    w.pause = False
    promoted = time.time()
    wait_for("writes after the promote",
             lambda: w.first_ack_after(promoted) is not None, 15)
    time.sleep(2)  # the electors had time to disagree, if they would
    assert leader() == target, f"the leader is {leader()}, not {target}"
    print(f"promote: {target} leads", flush=True)

    w.stop = True
    w.join()
    acked = sorted(w.acked)
    code, body = http("POST", router +
                      "/collections/t/points/count?consistency=primary", {})
    assert code == 200, body
    count = body["data"]["count"]
    # every acknowledged id is there (and nothing the client never sent)
    acked_probes = [i for i in probes if probes[i]]
    assert count >= len(acked) + len(acked_probes) and \
        count <= w.next_id - 1 + len(probes), (
            f"count {count}, acknowledged {len(acked)} + "
            f"{len(acked_probes)}")
    have, offset = set(), None
    while True:
        req = {"limit": 1000, "with_payload": False}
        if offset is not None:
            req["offset"] = offset
        code, body = http("POST", router + "/collections/t/points/scroll"
                          "?consistency=primary", req)
        assert code == 200, body
        have.update(p["id"] for p in body["data"]["points"])
        offset = body["data"]["next_offset"]
        if offset is None:
            break
    missing = [i for i in acked + acked_probes if i not in have]
    assert not missing, f"{len(missing)} acknowledged points lost: " \
        f"{missing[:20]}"
    print(f"failover x{ROUNDS}: writes resumed after median "
          f"{statistics.median(gaps):.2f} s, max {max(gaps):.2f} s, "
          f"failed writes a kill median {statistics.median(fails)}, max "
          f"{max(fails)}; "
          f"{len(acked)} acknowledged points all there "
          f"(count {count})", flush=True)


def cleanup():
    if os.environ.get("KEEP_LOGS"):  # the logs, to read after a run
        shutil.copytree(tmp, os.environ["KEEP_LOGS"], dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("etcd", "a", "b", "c"))
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        main()
    except Exception as e:  # report, with the logs, then clean up
        print(f"FAIL: {e}", flush=True)
        for name in ("a", "b", "c", "router", "patient"):
            print(f"--- {name}.log\n{tail(name)}", flush=True)
        cleanup()
        sys.exit(1)
    cleanup()
