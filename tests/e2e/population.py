#!/usr/bin/env python3
"""Creates a known TCP/UDP population in the CURRENT network namespace and
holds it until stdin closes (or SIGTERM).

Run it only inside a private namespace (unshare -n): it changes per-namespace
sysctls and, in the "node" profile, adds nftables rules. Everything lives on
127.0.0.0/8 and ::1.

Profiles:
  node  the shape of field cases 1-4 at small scale, sized so that one
        destination crosses the port-exhaustion alert thresholds:
        ip_local_port_range narrowed to 500 ports, tcp_tw_reuse=0 (so the
        TIME_WAIT sockets block their ports even on loopback), and 470 client
        TIME_WAIT sockets toward 127.0.0.2:3306 (utilization 0.94); plus
        inbound/outbound CLOSE_WAIT, server-side TIME_WAIT on :8080, a
        listener whose accept queue overflows, IPv6 pairs, UDP sockets, and
        conntrack tracking with one SNAT rule (127.0.0.4:5432 via 127.0.0.5).
  pod   a small population for a "pod" namespace with its own port range.

Prints one line "READY <json counts>" on stdout once everything is in place.
Exits non-zero with a one-line reason when the population cannot be made.
"""
import errno
import json
import os
import signal
import socket
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_support import hold_until_stdin_closes  # noqa: E402

NODE_PORT_RANGE = (40000, 40499)  # 500 usable ports
POD_PORT_RANGE = (45000, 45999)

NFT_RULES = """
table ip sockdiag_e2e {
  chain out {
    type filter hook output priority 0;
    ct state new counter
  }
  chain post {
    type nat hook postrouting priority srcnat;
    ip daddr 127.0.0.4 tcp dport 5432 snat to 127.0.0.5
  }
}
"""


def die(msg):
    print("population: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def write_sysctl(dotted, value):
    path = "/proc/sys/" + dotted.replace(".", "/")
    with open(path, "w") as f:
        f.write(value)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listen(host, port, backlog=4096):
    s = socket.socket(family_of(host), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(backlog)
    return s


def connect(host, port):
    c = socket.socket(family_of(host), socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect((host, port))
    return c


def accept(listener):
    listener.settimeout(5)
    s, _ = listener.accept()
    return s


def wait_eof(sock):
    """Blocks (5 s at most) until the peer's FIN arrives."""
    sock.settimeout(5)
    if sock.recv(1) != b"":
        die("expected EOF from peer")


def established(listener, host, port, n, keep):
    for _ in range(n):
        c = connect(host, port)
        keep += [c, accept(listener)]


def client_time_wait(listener, host, port, n):
    """Client closes first: the client end holds TIME_WAIT for 60 s."""
    for _ in range(n):
        c = connect(host, port)
        s = accept(listener)
        c.close()
        wait_eof(s)
        s.close()


def server_time_wait(listener, host, port, n):
    """Server closes first: the server end (the listening port) holds TIME_WAIT."""
    for _ in range(n):
        c = connect(host, port)
        s = accept(listener)
        s.close()
        wait_eof(c)
        c.close()


def server_close_wait(listener, host, port, n, keep):
    """Client closes, the server never does: server end in CLOSE_WAIT (inbound)."""
    for _ in range(n):
        c = connect(host, port)
        s = accept(listener)
        c.close()
        keep.append(s)


def client_close_wait(listener, host, port, n, keep):
    """Server closes, the client never does: client end in CLOSE_WAIT (outbound)."""
    for _ in range(n):
        c = connect(host, port)
        s = accept(listener)
        s.close()
        keep.append(c)


def overflow_listener(host, port, backlog, n, keep):
    """A listener nobody accepts from, and n non-blocking connects: the accept
    queue fills to backlog + 1 and further SYNs are dropped (ListenOverflows)."""
    lst = listen(host, port, backlog)
    keep.append(lst)
    for _ in range(n):
        c = socket.socket(family_of(host), socket.SOCK_STREAM)
        c.setblocking(False)
        err = c.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            die("connect to overflow listener: " + errno.errorcode.get(err, str(err)))
        keep.append(c)


def node_profile(keep):
    write_sysctl("net.ipv4.ip_local_port_range", "%d %d" % NODE_PORT_RANGE)
    write_sysctl("net.ipv4.tcp_tw_reuse", "0")
    nft = subprocess.run(["nft", "-f", "-"], input=NFT_RULES, text=True,
                         capture_output=True)
    if nft.returncode != 0:
        die("nft: " + nft.stderr.strip().replace("\n", " "))

    counts = {}
    # Case 1/3: one client churning connections to one backend (MySQL-like).
    mysql = listen("127.0.0.2", 3306)
    keep.append(mysql)
    counts["client_time_wait_127.0.0.2:3306"] = 470
    client_time_wait(mysql, "127.0.0.2", 3306, 470)

    # Case 2/4: a service of our own on :8080 (inbound) with its clients.
    web = listen("127.0.0.1", 8080)
    keep.append(web)
    established(web, "127.0.0.1", 8080, 30, keep)
    server_time_wait(web, "127.0.0.1", 8080, 20)
    server_close_wait(web, "127.0.0.1", 8080, 20, keep)
    counts.update({"established_pairs_8080": 30, "server_time_wait_8080": 20,
                   "server_close_wait_8080": 20})

    # An outbound leak: a backend closed idle connections the client never closes.
    redis = listen("127.0.0.3", 6379)
    keep.append(redis)
    client_close_wait(redis, "127.0.0.3", 6379, 15, keep)
    counts["client_close_wait_127.0.0.3:6379"] = 15

    # SNAT: tracked connections rewritten to 127.0.0.5 by the nft rule.
    pg = listen("127.0.0.4", 5432)
    keep.append(pg)
    established(pg, "127.0.0.4", 5432, 10, keep)
    counts["snat_established_127.0.0.4:5432"] = 10

    # IPv6 over ::1.
    v6 = listen("::1", 8443)
    keep.append(v6)
    established(v6, "::1", 8443, 5, keep)
    client_time_wait(v6, "::1", 8443, 5)
    counts.update({"ipv6_established_pairs": 5, "ipv6_client_time_wait": 5})

    # A listener whose accept queue overflows.
    overflow_listener("127.0.0.1", 9000, 4, 8, keep)
    counts["overflow_listener_connects"] = 8

    for host in ("127.0.0.1", "::1"):
        u = socket.socket(family_of(host), socket.SOCK_DGRAM)
        u.bind((host, 5353))
        keep.append(u)
    return counts


def pod_profile(keep):
    write_sysctl("net.ipv4.ip_local_port_range", "%d %d" % POD_PORT_RANGE)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    mysql = listen("127.0.0.2", 3306)
    keep.append(mysql)
    client_time_wait(mysql, "127.0.0.2", 3306, 40)
    web = listen("127.0.0.1", 8080)
    keep.append(web)
    established(web, "127.0.0.1", 8080, 10, keep)
    server_close_wait(web, "127.0.0.1", 8080, 5, keep)
    overflow_listener("127.0.0.1", 9000, 2, 4, keep)
    return {"client_time_wait_127.0.0.2:3306": 40, "established_pairs_8080": 10,
            "server_close_wait_8080": 5}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("node", "pod"):
        die("usage: population.py node|pod")
    keep = []
    try:
        counts = (node_profile if sys.argv[1] == "node" else pod_profile)(keep)
    except OSError as e:
        die("%s: %s" % (sys.argv[1], e))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("READY " + json.dumps(counts), flush=True)
    # Hold every socket until the driver closes our stdin (bounded: 10 min).
    hold_until_stdin_closes(600)


if __name__ == "__main__":
    main()
