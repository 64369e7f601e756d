#!/usr/bin/env python3
"""Makes the pictures of the README's "What the operator sees" section.

Field case 1 at small scale, in a private network namespace: a client that
opens and closes ~8 connections/s to one backend (127.0.0.2:3306) with
ip_local_port_range narrowed to 500 ports and tcp_tw_reuse=0, next to a
healthy pooled client (20 long-lived connections to 127.0.0.3:5432). The real
exporter polls every second, Prometheus 2.42 scrapes it every second, and
after ~80 s (TIME_WAIT lasts 60 s, so the churn reaches its steady state):

  1. `sockdiag_exporter diagnose` is run and its text report written to
     OUT_DIR/diagnose-case1.txt;
  2. headless Chromium screenshots Prometheus's graph page for
     sockdiag_destination_ephemeral_port_utilization (per destination) into
     OUT_DIR/prometheus-destination-utilization.png.

Not part of the test suite (it needs `chromium`, installed by hand).

usage: unshare -n scripts/readme_screenshot.py EXPORTER_BINARY OUT_DIR
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True

PROM = "127.0.0.1:9090"
EXPORTER = "127.0.0.1:10061"
RATE = 7.8  # connections/s: 470 TIME_WAIT in steady state, 94% of 500 ports
RUN_SECONDS = 80


def write_sysctl(dotted, value):
    with open("/proc/sys/" + dotted.replace(".", "/"), "w") as f:
        f.write(value)


def listen(host, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(4096)
    return s


def server(lst, stop):
    """Accepts and echoes nothing: reads until the client closes, then closes."""
    lst.settimeout(0.5)
    while not stop.is_set():
        try:
            c, _ = lst.accept()
        except socket.timeout:
            continue
        threading.Thread(target=lambda s: (s.recv(1), s.close()), args=(c,), daemon=True).start()


def churning_client(stop):
    """Field case 1: a new connection per request, closed by the client."""
    next_at = time.monotonic()
    while not stop.is_set():
        c = socket.create_connection(("127.0.0.2", 3306), timeout=5)
        c.close()
        next_at += 1 / RATE
        time.sleep(max(0, next_at - time.monotonic()))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    exporter, out_dir = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    if [line.split(":")[1].strip() for line in links.splitlines()] != ["lo"]:
        sys.exit("run me under `unshare -n`")
    for tool in ("prometheus", "chromium"):
        if not shutil.which(tool):
            sys.exit(tool + " is missing")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    write_sysctl("net.ipv4.ip_local_port_range", "40000 40499")
    write_sysctl("net.ipv4.tcp_tw_reuse", "0")
    os.makedirs(out_dir, exist_ok=True)

    work = tempfile.mkdtemp(prefix="sockdiag-shot-")
    procs = []
    stop = threading.Event()
    try:
        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
                    "scrape_configs:\n"
                    "  - {job_name: sockdiag, static_configs: [{targets: ['%s']}]}\n" % EXPORTER)
        log = open(os.path.join(work, "log"), "w")
        procs.append(subprocess.Popen(
            ["prometheus", "--config.file=" + config, "--storage.tsdb.path=" + work + "/data",
             "--web.listen-address=" + PROM], stdout=log, stderr=log))
        procs.append(subprocess.Popen(
            [exporter, "--web.listen-address=" + EXPORTER, "--poll.interval=1s",
             "--no-collector.conntrack_table"], stdout=log, stderr=log))

        db, pool_server = listen("127.0.0.2", 3306), listen("127.0.0.3", 5432)
        for lst in (db, pool_server):
            threading.Thread(target=server, args=(lst, stop), daemon=True).start()
        pool = [socket.create_connection(("127.0.0.3", 5432)) for _ in range(20)]
        time.sleep(5)  # Prometheus's first scrapes: the graph starts before the churn.
        threading.Thread(target=churning_client, args=(stop,), daemon=True).start()
        print("churning for %d s" % RUN_SECONDS, flush=True)
        time.sleep(RUN_SECONDS)

        report = subprocess.run([exporter, "diagnose"], capture_output=True, text=True)
        with open(os.path.join(out_dir, "diagnose-case1.txt"), "w") as f:
            f.write(report.stdout)
        print("diagnose exit status %d" % report.returncode)

        expr = ("max by (local_address, remote_address, remote_port) "
                "(sockdiag_destination_ephemeral_port_utilization)")
        url = "http://%s/graph?%s" % (PROM, urllib.parse.urlencode({
            "g0.expr": expr, "g0.tab": "0", "g0.range_input": "2m", "g0.stacked": "0",
            "g0.show_exemplars": "0"}))
        png = os.path.join(out_dir, "prometheus-destination-utilization.png")
        subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--user-data-dir=" + work + "/chromium", "--hide-scrollbars",
             "--window-size=1100,880", "--virtual-time-budget=8000", "--screenshot=" + png, url],
            check=True, capture_output=True)
        print("wrote " + png)
        for c in pool:
            c.close()
    finally:
        stop.set()
        for p in procs:
            p.terminate()
            p.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
