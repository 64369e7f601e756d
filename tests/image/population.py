#!/usr/bin/env python3
"""Holds a known socket population open in the current network namespace.

Creates, on loopback only:
  TCP ipv4: 1 listener, 4 ESTABLISHED pairs (8 sockets), 3 pairs whose client
            closed first (3 CLOSE_WAIT + 3 FIN_WAIT2)
  TCP ipv6: 1 listener, 2 ESTABLISHED pairs (4 sockets)
  UDP ipv4: 2 bound sockets
Prints "ready" once every socket is in its state, then holds them until
stdin closes (or the process is killed). Run it inside the namespace under
test (`ip netns exec NAME population.py`).
"""
import socket
import sys
import time


def pairs(family, host, count):
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    out = []
    for _ in range(count):
        client = socket.create_connection((host, port))
        server, _ = listener.accept()
        out.append((client, server))
    return listener, out


def main():
    keep = []
    l4, established4 = pairs(socket.AF_INET, "127.0.0.1", 4 + 3)
    keep.append(l4)
    # The last 3 pairs: the client closes, the server never does, so the
    # server side sits in CLOSE_WAIT and the client side in FIN_WAIT2.
    for client, server in established4[4:]:
        client.close()
        keep.append(server)
    for client, server in established4[:4]:
        keep += [client, server]
    l6, established6 = pairs(socket.AF_INET6, "::1", 2)
    keep.append(l6)
    for client, server in established6:
        keep += [client, server]
    for _ in range(2):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        keep.append(u)
    time.sleep(0.2)  # let the FINs of the closed clients be acknowledged
    print("ready", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
