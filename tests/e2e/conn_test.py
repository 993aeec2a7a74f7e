#!/usr/bin/env python3
"""conn_test.py BINDIR: no idle, slow or numerous connections take our
HTTP servers off the air (vecdb serve, vecdb-router, vecdb-node's admin
HTTP). Real processes on 127.0.0.1, free ports, real sockets.

For each server, while 1,000 idle connections, then 1,000 slowloris
connections (headers trickled a byte every 0.5 s), then 200 keep-alive
clients are held open (conn_probe.py), a fresh client's GET /health and
search answer within 1 s each, and the server's resident memory grows by
less than 64 MiB. Then, on vecdb serve and the router with
short deadlines and small limits:
- an idle connection is closed once the header deadline passes, and so
  is a slowloris one, however steadily it trickles;
- a keep-alive connection that waits holds no worker: with 2 workers,
  10 idle keep-alive clients and a fresh client are all answered;
- over --max-connections, and over --max-connections-per-ip, a request
  is answered 503 at once;
- 24 busy keep-alive clients on 2 workers are each served (none starves)
  and a fresh /health answers within 1 s meanwhile.
Each check waits on conditions with bounded timeouts; every process and
temp dir is removed at the end, also on failure. Prints 'N passed,
N failed'.
"""
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import conn_probe  # noqa: E402
from vdbproc import Checks, Procs, port_after  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else "build/bin"
TMP = tempfile.mkdtemp(prefix="vecdb-conn-")
P = Procs(TMP)
PROCS = P.procs
check = Checks()
DIM = 4
# measured: about 18 MiB for 2,200; ThreadSanitizer's shadow memory
# multiplies it (http_concurrency sets CONN_TEST_RSS_MIB)
RSS_GROWTH_KIB = int(os.environ.get("CONN_TEST_RSS_MIB", "64")) * 1024



def start(args, marker, env=None):
    return P.start(args, marker, env)


def req(port, method, path, body=None):
    return conn_probe.http(port, method, path, body, timeout=10)


def setup_collection(port):
    st, _ = req(port, "POST", "/collections", {"name": "c", "dimension": DIM})
    assert st == 200, f"create: {st}"
    st, _ = req(port, "POST", "/collections/c/vectors/batch",
                {"vectors": [{"id": i, "data": [i, 1, 2, 3]}
                            for i in range(1, 21)]})
    assert st == 200, f"batch: {st}"


def closed_within(sock, seconds):
    """Does the server close sock (EOF or reset) within seconds?"""
    sock.settimeout(seconds)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class Args:
    def __init__(self, port, search):
        self.port = port
        self.search = search
        self.dim = DIM
        self.limit_s = 1.0
        self.idle = 1000
        self.slow = 1000
        self.keepalive = 200


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def waves(name, port, search, pid):
    """1,000 idle, 1,000 slowloris, 200 keep-alive; a fresh client must be
    answered within 1 s after each wave (conn_probe.py's probe), and the
    server's resident memory grows by less than RSS_GROWTH_KIB."""
    a = Args(port, search)
    socks, trickle = [], None
    results = []
    rss0, rss_max = rss_kib(pid), 0
    try:
        socks += conn_probe.connect_many(port, a.idle)
        conn_probe.probe(a, f"{name} idle x{a.idle}", results)
        slow = conn_probe.connect_many(port, a.slow)
        socks += slow
        trickle = conn_probe.Trickle(slow, 30)
        trickle.start()
        time.sleep(1.0)
        conn_probe.probe(a, f"{name} slowloris x{a.slow}", results)
        keep = conn_probe.connect_many(port, a.keepalive)
        socks += keep
        for s in keep:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answered = 0
        for s in keep:
            s.settimeout(10)
            try:
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    answered += 1
            except OSError:
                pass
        check(answered == len(keep),
              f"{name}: {answered} of {len(keep)} keep-alive clients "
              "answered")
        conn_probe.probe(a, f"{name} keep-alive x{a.keepalive}", results)
        rss_max = rss_kib(pid)
    finally:
        if trickle:
            trickle.stop.set()
        for s in socks:
            s.close()
    for ok in results:
        check(ok, f"{name}: a fresh client answered within 1 s")
    check(rss_max - rss0 < RSS_GROWTH_KIB,
          f"{name}: resident memory {rss0 // 1024} MiB before, "
          f"{rss_max // 1024} MiB with 2,200 connections open")


def deadlines(name, port):
    """Header deadline 1 s: an idle and a trickling connection are closed
    in about that, however steadily the trickle goes."""
    idle = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    ok = closed_within(idle, 6)
    check(ok, f"{name}: an idle connection is closed by the header "
          f"deadline ({time.monotonic() - t0:.1f} s)")
    idle.close()

    slow = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    text = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    closed = False
    for i in range(len(text)):
        try:
            slow.send(text[i:i + 1])
        except OSError:
            closed = True
            break
        if closed_within(slow, 0.2):
            closed = True
            break
        if time.monotonic() - t0 > 8:
            break
    check(closed and time.monotonic() - t0 < 6,
          f"{name}: a slowloris connection is closed by the header "
          f"deadline ({time.monotonic() - t0:.1f} s)")
    slow.close()

    # a request that arrives whole in time is served on a kept connection
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    ok = True
    for _ in range(3):
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        ok = ok and s.recv(4096).startswith(b"HTTP/1.1 200")
    check(ok, f"{name}: three requests on one keep-alive connection")
    s.close()


def keepalive_holds_no_worker(name, port):
    """2 workers, 10 keep-alive clients that each sent a request and wait:
    every one of them, and a fresh client, gets answers."""
    socks = []
    try:
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        got = sum(1 for s in socks
                  if s.recv(4096).startswith(b"HTTP/1.1 200"))
        st, t = req(port, "GET", "/health")
        check(got == 10 and st == 200 and t < 1.0,
              f"{name}: 10 keep-alive clients on 2 workers answered "
              f"({got}), a fresh one in {t * 1000:.0f} ms")
        # and each can ask again
        for s in socks:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        got = sum(1 for s in socks
                  if s.recv(4096).startswith(b"HTTP/1.1 200"))
        check(got == 10, f"{name}: their second requests answered ({got})")
    finally:
        for s in socks:
            s.close()


def limits(name, port, max_conns):
    """The connection past --max-connections is answered 503 at once."""
    socks = conn_probe.connect_many(port, max_conns)
    try:
        t0 = time.monotonic()
        st, t = req(port, "GET", "/health")
        check(st == 503 and t < 1.0,
              f"{name}: past {max_conns} connections, 503 in "
              f"{t * 1000:.0f} ms (got {st})")
    finally:
        for s in socks:
            s.close()
    # once they are gone, served again
    end = time.monotonic() + 5
    st = 0
    while time.monotonic() < end:
        st, _ = req(port, "GET", "/health")
        if st == 200:
            break
        time.sleep(0.05)
    check(st == 200, f"{name}: served again once the connections closed")


def fairness(name, port):
    """24 busy keep-alive clients, 2 workers: each is served many times
    in 3 s, and a fresh /health answers within 1 s meanwhile."""
    counts = [0] * 24
    stop = threading.Event()

    def client(i):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        body = json.dumps({"vector": [1, 1, 1, 1], "limit": 3}).encode()
        r = (f"POST /collections/c/search HTTP/1.1\r\nHost: x\r\n"
             f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        try:
            while not stop.is_set():
                s.sendall(r)
                buf = b""
                while True:
                    buf += s.recv(65536)
                    head, sep, rest = buf.partition(b"\r\n\r\n")
                    if not sep:
                        continue
                    n = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            n = int(line.split(b":")[1])
                    if len(rest) >= n:
                        break
                if head.startswith(b"HTTP/1.1 200"):
                    counts[i] += 1
        except OSError:
            pass
        finally:
            s.close()

    ts = [threading.Thread(target=client, args=(i,)) for i in range(24)]
    for t in ts:
        t.start()
    time.sleep(1.5)
    st, t_health = req(port, "GET", "/health")
    time.sleep(1.5)
    stop.set()
    for t in ts:
        t.join(15)
    lo, total = min(counts), sum(counts)
    check(lo > 0 and lo * 24 >= total * 0.25,
          f"{name}: 24 busy clients all served (min {lo}, mean "
          f"{total / 24:.0f})")
    check(st == 200 and t_health < 1.0,
          f"{name}: a fresh /health under that load in "
          f"{t_health * 1000:.0f} ms")


def main():
    try:
        fast = ["--threads", "2", "--header-timeout-ms", "1000",
                "--idle-timeout-ms", "3000", "--body-timeout-ms", "3000"]
        # vecdb serve
        p, line = start([f"{BIN}/vecdb", "serve", "--data",
                         os.path.join(TMP, "serve"), "--host", "127.0.0.1",
                         "--port", "0"], "serving")
        port = port_after(line, "127.0.0.1:")
        setup_collection(port)
        waves("serve", port, "c", p.pid)

        p2, line = start([f"{BIN}/vecdb", "serve", "--data",
                          os.path.join(TMP, "serve2"), "--host",
                          "127.0.0.1", "--port", "0",
                          "--max-connections", "40"] + fast, "serving")
        port2 = port_after(line, "127.0.0.1:")
        setup_collection(port2)
        deadlines("serve", port2)
        keepalive_holds_no_worker("serve", port2)
        limits("serve", port2, 40)
        fairness("serve", port2)

        p3, line = start([f"{BIN}/vecdb", "serve", "--data",
                          os.path.join(TMP, "serve3"), "--host",
                          "127.0.0.1", "--port", "0",
                          "--max-connections-per-ip", "8"], "serving")
        limits("serve per address", port_after(line, "127.0.0.1:"), 8)

        # a vecdb-node (its admin HTTP) and a router over it
        node, line = start([f"{BIN}/vecdb-node", "--data",
                            os.path.join(TMP, "node"), "--rpc",
                            "tcp://127.0.0.1:0", "--admin-port", "0"],
                           "admin http")
        rpc = port_after(line, "rpc tcp://127.0.0.1:")
        admin = port_after(line, "admin http://127.0.0.1:")
        waves("node admin", admin, None, node.pid)
        topo = os.path.join(TMP, "topology.json")
        with open(topo, "w") as f:
            json.dump({"shards": [{"id": 0, "primary":
                                   f"tcp://127.0.0.1:{rpc}",
                                   "replicas": []}]}, f)
        r, line = start([f"{BIN}/vecdb-router", "--topology", topo,
                         "--host", "127.0.0.1", "--port", "0"], "serving")
        rport = port_after(line, "127.0.0.1:")
        end = time.monotonic() + 10
        while time.monotonic() < end and \
                req(rport, "GET", "/ready")[0] != 200:
            time.sleep(0.05)
        setup_collection(rport)
        waves("router", rport, "c", r.pid)
        # the limits and deadlines as variables, as a pod sets them
        r2, line = start([f"{BIN}/vecdb-router", "--topology", topo,
                          "--host", "127.0.0.1", "--port", "0"],
                         "serving", env={"VECDB_MAX_CONNECTIONS": "40",
                                         "VECDB_THREADS": "2",
                                         "VECDB_HEADER_TIMEOUT_MS": "1000",
                                         "VECDB_IDLE_TIMEOUT_MS": "3000"})
        rport = port_after(line, "127.0.0.1:")
        end = time.monotonic() + 10
        while time.monotonic() < end and \
                req(rport, "GET", "/ready")[0] != 200:
            time.sleep(0.05)
        deadlines("router", rport)
        keepalive_holds_no_worker("router", rport)
        limits("router", rport, 40)
        fairness("router", rport)
        for proc in reversed(PROCS):
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(20)
            check(rc == 0, f"{proc.args[0]} stopped cleanly ({rc})")
    except Exception as e:  # a harness failure is a failed check
        check(False, f"harness: {e!r}")
    finally:
        if check.failed():
            for q in P.procs:
                q.log.seek(0)
                print(f"--- {q.args[0]} stderr:\n{q.log.read()[-3000:]}")
        P.stop_all()
        shutil.rmtree(TMP, ignore_errors=True)
    return check.report()


if __name__ == "__main__":
    sys.exit(main())
