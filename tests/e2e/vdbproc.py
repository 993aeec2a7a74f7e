"""vdbproc.py: our servers as child processes, for the Python tests.

Servers bind 127.0.0.1 on free ports and never see the caller's VECDB_*
settings. Procs.stop_all() ends whatever is still running (the tests call
it from `finally`).
"""
import json
import os
import signal
import socket
import subprocess
import threading
import time


class Procs:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def start(self, args, marker, env=None, timeout=20):
        """Start args; wait for the stdout line holding marker; return
        (proc, line)."""
        log = open(os.path.join(self.tmp, f"p{len(self.procs)}.log"), "w+")
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("VECDB_")}
        e["VECDB_LOG"] = "warn"
        e.update(env or {})
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log,
                             env=e, text=True)
        p.log = log
        self.procs.append(p)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            line = p.stdout.readline()
            if not line:
                break
            if marker in line:
                threading.Thread(target=p.stdout.read, daemon=True).start()
                return p, line
        log.seek(0)
        raise RuntimeError(f"{args[0]} did not start: {log.read()[-2000:]}")

    def serve(self, bindir, data, *extra, env=None):
        """`vecdb serve` on data; returns (proc, port)."""
        p, line = self.start([f"{bindir}/vecdb", "serve", "--data", data,
                              "--host", "127.0.0.1", "--port", "0",
                              *extra], "serving", env=env)
        return p, port_after(line, "127.0.0.1:")

    def stop(self, p, sig=signal.SIGTERM, timeout=120):
        """Signal p and wait: its exit status."""
        if p.poll() is None:
            p.send_signal(sig)
        return p.wait(timeout)

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


class Checks:
    """Named checks of a test; report() prints 'N passed, N failed' and
    gives the exit status (1 also when nothing was checked)."""
    def __init__(self, quiet=False):
        self.results = []
        self.quiet = quiet

    def __call__(self, ok, what):
        self.results.append(bool(ok))
        if not ok or not self.quiet:
            print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
        return ok

    def failed(self):
        return self.results.count(False)

    def report(self):
        bad = self.failed()
        print(f"{len(self.results) - bad} passed, {bad} failed")
        return 0 if bad == 0 and self.results else 1


def port_after(line, prefix):
    """The decimal number that follows prefix in line."""
    i = line.index(prefix) + len(prefix)
    j = i
    while j < len(line) and line[j].isdigit():
        j += 1
    return int(line[i:j])


def call(port, method, path, body=None, timeout=30):
    """One request on a new connection: (status, parsed JSON or None).
    status 0: no answer (connection refused or reset)."""
    data = b"" if body is None else json.dumps(body).encode()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return 0, None
    try:
        s.sendall((f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Content-Length: {len(data)}\r\nConnection: close\r\n"
                   "\r\n").encode() + data)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError:
        return 0, None
    finally:
        s.close()
    head, _, rest = buf.partition(b"\r\n\r\n")
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) < 2:
        return 0, None
    try:
        return int(parts[1]), json.loads(rest) if rest else None
    except ValueError:
        return int(parts[1]), None
