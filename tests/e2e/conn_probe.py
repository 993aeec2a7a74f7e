#!/usr/bin/env python3
"""conn_probe.py: idle, slowloris and keep-alive connections against a
running vecdb HTTP server, while a fresh client must still be answered.

    conn_probe.py --port P [--idle N] [--slow N] [--keepalive N]
                  [--search COLL --dim D] [--limit-s S]

Opens the idle connections (they send nothing), then the slowloris ones
(request headers trickled a byte every 0.5 s), then keep-alive clients
that each send one request and keep their socket open. After each wave a
fresh client asks GET /health (and POST /collections/COLL/search if
given) and must get its answer within --limit-s seconds. Exits 0 when
every probe was answered in time, 1 otherwise; prints one line a probe.
Bounded: at most a few seconds a wave, and every socket is closed at the
end.
"""
import argparse
import json
import resource
import socket
import sys
import threading
import time


def http(port, method, path, body=None, timeout=5.0):
    """One request on a new connection: (status, seconds)."""
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return 0, time.monotonic() - t0
    try:
        data = b"" if body is None else json.dumps(body).encode()
        req = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Content-Length: {len(data)}\r\n"
               "Connection: close\r\n\r\n").encode() + data
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        line = buf.split(b"\r\n", 1)[0].split()
        status = int(line[1]) if len(line) > 1 else 0
        return status, time.monotonic() - t0
    except OSError:
        return 0, time.monotonic() - t0
    finally:
        s.close()


def connect_many(port, n):
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(s)
        except OSError as e:
            print(f"  connect failed after {len(socks)}: {e}")
            break
    return socks


class Trickle(threading.Thread):
    """Sends each slow socket one more header byte every 0.5 s."""
    def __init__(self, socks, seconds):
        super().__init__(daemon=True)
        self.socks = socks
        self.seconds = seconds
        self.stop = threading.Event()
        self.text = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + \
            b"a" * 10000

    def run(self):
        i = 0
        end = time.monotonic() + self.seconds
        while not self.stop.is_set() and time.monotonic() < end:
            for s in self.socks:
                try:
                    s.send(self.text[i:i + 1])
                except OSError:
                    pass
            i = (i + 1) % len(self.text)
            self.stop.wait(0.5)


def probe(args, wave, results):
    st, t = http(args.port, "GET", "/health", timeout=args.limit_s + 5)
    ok = st == 200 and t <= args.limit_s
    print(f"{wave}: GET /health -> {st} in {t * 1000:.1f} ms"
          f"{'' if ok else '  FAIL'}")
    results.append(ok)
    if args.search:
        body = {"vector": [0.5] * args.dim, "limit": 3}
        st, t = http(args.port, "POST",
                     f"/collections/{args.search}/search", body,
                     timeout=args.limit_s + 5)
        ok = st == 200 and t <= args.limit_s
        print(f"{wave}: POST search -> {st} in {t * 1000:.1f} ms"
              f"{'' if ok else '  FAIL'}")
        results.append(ok)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--slow", type=int, default=1000)
    ap.add_argument("--keepalive", type=int, default=200)
    ap.add_argument("--search")
    ap.add_argument("--dim", type=int, default=4)
    ap.add_argument("--limit-s", type=float, default=1.0)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.idle + args.slow + args.keepalive + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))

    results = []
    all_socks = []
    trickle = None
    try:
        idle = connect_many(args.port, args.idle)
        all_socks += idle
        print(f"opened {len(idle)} idle connections")
        probe(args, "idle", results)

        slow = connect_many(args.port, args.slow)
        all_socks += slow
        trickle = Trickle(slow, 60)
        trickle.start()
        print(f"opened {len(slow)} slowloris connections")
        time.sleep(1.0)  # let a couple of bytes reach each one
        probe(args, "slowloris", results)

        keep = connect_many(args.port, args.keepalive)
        all_socks += keep
        for s in keep:
            try:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            except OSError:
                pass
        print(f"opened {len(keep)} keep-alive clients")
        probe(args, "keep-alive", results)
    finally:
        if trickle:
            trickle.stop.set()
        for s in all_socks:
            s.close()
    bad = results.count(False)
    print(f"{len(results) - bad} passed, {bad} failed")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
