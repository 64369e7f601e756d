#!/usr/bin/env python3
"""A TCP client (and its servers) on loopback that uses ephemeral ports in a
known way, in the CURRENT network namespace: run it only inside a private
one (it changes the namespace's port range and tcp_tw_reuse).

usage: port_load.py --range LOW-HIGH STEP...

STEP is KIND,HOST,PORT,ARGS (a server listens on every HOST:PORT named):
  pool,HOST,PORT,N            N connections opened and held (ESTABLISHED)   } before
  timewait,HOST,PORT,N        N connections opened and closed by the client } READY
                              (each leaves a client TIME_WAIT for 60 s)
  churn,HOST,PORT,RATE,SECS   after GO: RATE connections/s opened and closed by the client
  leak,HOST,PORT,RATE,SECS    after GO: RATE connections/s opened and never closed

lo is brought up; tcp_tw_reuse is set to 0, so TIME_WAIT blocks its port even toward loopback
(the kernel's default 2 would let loopback reuse it). Prints JSON lines on
stdout: {"event": "ready", ...} once the steps before READY are done; then
waits for a line "GO" on stdin, runs the timed steps one after the other on a
fixed schedule (catching up when late) and prints {"event": "go"},
{"event": "step"} and, at the first connect() that fails with EADDRNOTAVAIL,
{"event": "eaddrnotavail", "t": <time.time()>} and stops the steps. It holds
every socket until stdin closes (or SIGTERM; at most 20 minutes).
Exits non-zero with a one-line reason on any other failure.
"""
import errno
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_support import hold_until_stdin_closes  # noqa: E402


def emit(event, **fields):
    print(json.dumps(dict(event=event, t=round(time.time(), 3), **fields)), flush=True)


def die(msg):
    print("port_load: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def write_sysctl(dotted, value):
    with open("/proc/sys/" + dotted.replace(".", "/"), "w") as f:
        f.write(value)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class Exhausted(Exception):
    pass


class Load:
    def __init__(self):
        self.listeners = {}
        self.held = []
        self.connects = 0

    def listener(self, host, port):
        key = (host, port)
        if key not in self.listeners:
            s = socket.socket(family_of(host), socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(key)
            s.listen(4096)
            s.settimeout(5)
            self.listeners[key] = s
        return self.listeners[key]

    def open(self, host, port):
        """One connection, both ends: (client, server)."""
        lst = self.listener(host, port)
        c = socket.socket(family_of(host), socket.SOCK_STREAM)
        c.settimeout(5)
        try:
            c.connect((host, port))
        except OSError as e:
            c.close()
            if e.errno == errno.EADDRNOTAVAIL:
                raise Exhausted() from e
            raise
        self.connects += 1
        s, _ = lst.accept()
        return c, s

    def hold(self, host, port):
        self.held += self.open(host, port)

    def close(self, host, port):
        """Client closes first, so the client end holds TIME_WAIT."""
        c, s = self.open(host, port)
        c.close()
        s.settimeout(5)
        if s.recv(1) != b"":
            die("expected EOF from the client")
        s.close()


def parse(args):
    if len(args) < 3 or args[0] != "--range":
        die("usage: port_load.py --range LOW-HIGH STEP...")
    low, high = (int(x) for x in args[1].split("-"))
    steps = []
    for spec in args[2:]:
        parts = spec.split(",")
        kind = parts[0]
        want = {"pool": 4, "timewait": 4, "churn": 5, "leak": 5}.get(kind)
        if want is None or len(parts) != want:
            die("bad step %r" % spec)
        host, port = parts[1], int(parts[2])
        nums = [float(x) for x in parts[3:]]
        steps.append((kind, host, port, nums))
    return (low, high), steps


def timed(load, kind, host, port, rate, seconds):
    action = load.close if kind == "churn" else load.hold
    start = time.monotonic()
    n = int(rate * seconds)
    for i in range(n):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        action(host, port)
    return n, time.monotonic() - start


def main():
    port_range, steps = parse(sys.argv[1:])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    write_sysctl("net.ipv4.ip_local_port_range", "%d %d" % port_range)
    write_sysctl("net.ipv4.tcp_tw_reuse", "0")
    if subprocess.run(["ip", "link", "set", "lo", "up"]).returncode != 0:
        die("ip link set lo up failed")
    load = Load()
    counts = {}
    try:
        for kind, host, port, nums in steps:
            load.listener(host, port)
            if kind in ("pool", "timewait"):
                for _ in range(int(nums[0])):
                    (load.hold if kind == "pool" else load.close)(host, port)
                counts["%s %s:%d" % (kind, host, port)] = int(nums[0])
    except (OSError, Exhausted) as e:
        die("before READY: %s" % e)
    emit("ready", usable=port_range[1] - port_range[0] + 1, counts=counts)

    line = sys.stdin.readline()
    if line.strip() != "GO":
        return
    emit("go")
    try:
        for kind, host, port, nums in steps:
            if kind in ("churn", "leak"):
                emit("step", kind=kind, destination="%s:%d" % (host, port), rate=nums[0], seconds=nums[1])
                n, took = timed(load, kind, host, port, nums[0], nums[1])
                emit("step_done", kind=kind, connections=n, seconds=round(took, 3))
    except Exhausted:
        emit("eaddrnotavail", connects=load.connects, held=len(load.held) // 2)
    except OSError as e:
        die("after GO: %s" % e)
    emit("done", connects=load.connects)
    hold_until_stdin_closes(1200)


if __name__ == "__main__":
    main()
