#!/usr/bin/env python3
"""What the fleet recording rules (dashboards/recording-rules.yaml) cost a
real Prometheus, and what they save the Fleet dashboard.

A synthetic fleet is served from one HTTP target with honor_labels (each
series carries its own instance and node), with the series the rules read,
shaped like the exporter's: per network namespace the three worst-of-all
gauges, sockdiag_tcp_sockets (2 families x 11 states), the active-opens
counter and --ports.top-destinations + 1 destinations (the five
per-destination families) toward a shared pool of remote services; per node
the conntrack and SNAT gauges and 10 SNAT tuples. Pods mode adds P pod
namespaces per node. Counters grow every scrape.

Prometheus (the Debian package, in a private network namespace) scrapes it
and evaluates the rules every --interval. Reported: input series, recorded
series, each rule group's evaluation time (median and max over the
evaluations), and for two Fleet panels the samples one evaluation of the
panel's query touches (Prometheus's own query stats) and its time, on the raw
series and on the recorded ones.

usage: unshare -n bench/fleet_rules_bench.py REPO_DIR [--nodes=N] [--pods=P]
           [--destinations=11] [--remotes=50] [--interval=15] [--evaluations=8]
"""
import http.server
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

STATES = ["established", "syn_sent", "syn_recv", "fin_wait1", "fin_wait2", "time_wait", "close",
          "close_wait", "last_ack", "listen", "closing"]
PORT = 19090
TARGET = 19091


def args():
    opts = {"nodes": 100, "pods": 0, "destinations": 11, "remotes": 50, "interval": 15, "evaluations": 8}
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for a in sys.argv[2:]:
        k, _, v = a.lstrip("-").partition("=")
        if k not in opts:
            sys.exit("unknown option " + a)
        opts[k] = int(v)
    return os.path.abspath(sys.argv[1]), opts


class Fleet:
    def __init__(self, o):
        rnd = random.Random(42)
        self.lines, self.counters = [], []
        remotes = ["10.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(1, 255))
                   for _ in range(o["remotes"])]
        for n in range(o["nodes"]):
            node = 'job="sockdiag",instance="10.0.%d.%d:10061",node="node-%d"' % (n // 250, n % 250, n)
            namespaces = [""] if o["pods"] == 0 else ['netns="host",'] + [
                'netns="40265%05d",pod_uid="%08x-0000-4000-8000-%012x",' % (p, n, p) for p in range(o["pods"])]
            for ns in namespaces:
                lab = ns + node
                worst = rnd.random()
                self.gauge("sockdiag_ephemeral_port_utilization_max", lab, worst)
                self.gauge("sockdiag_ephemeral_port_exhaustion_seconds_min", lab,
                           3600 if rnd.random() > 0.05 else rnd.uniform(0, 3600))
                self.gauge("sockdiag_ephemeral_port_steady_utilization_max", lab, worst * 1.1)
                for fam in ("ipv4", "ipv6"):
                    for st in STATES:
                        self.gauge("sockdiag_tcp_sockets", '%s,family="%s",state="%s"' % (lab, fam, st),
                                   rnd.randrange(1000))
                self.counters.append(("sockdiag_tcp_active_opens_total", lab, rnd.uniform(1, 50)))
                for d in range(o["destinations"]):
                    r = remotes[rnd.randrange(len(remotes))]
                    dl = '%s,family="ipv4",local_address="10.1.%d.%d",remote_address="%s",remote_port="%d"' % (
                        lab, n % 256, d, r, 3306 + d % 3)
                    self.gauge("sockdiag_destination_ephemeral_ports", dl, rnd.randrange(28232))
                    self.gauge("sockdiag_destination_ephemeral_port_utilization", dl, rnd.random())
                    self.gauge("sockdiag_destination_ephemeral_port_exhaustion_seconds", dl, 3600)
                    self.gauge("sockdiag_destination_closes_per_second", dl, rnd.uniform(0, 50))
                    self.gauge("sockdiag_destination_connection_growth_per_second", dl, rnd.uniform(-1, 1))
                if not ns or ns.startswith('netns="host"'):
                    self.gauge("sockdiag_conntrack_entries", lab, rnd.randrange(262144))
            self.gauge("sockdiag_conntrack_entries_limit", node, 262144)
            self.gauge("sockdiag_conntrack_snat_port_utilization_max", node, rnd.random())
            for t in range(10):
                self.gauge("sockdiag_conntrack_snat_ports",
                           '%s,nat_address="192.0.2.%d",remote_address="%s",remote_port="443",protocol="tcp"' % (
                               node, n % 250, remotes[t % len(remotes)]), rnd.randrange(28232))
        self.static = ("\n".join(self.lines) + "\n").encode()
        self.started = time.time()

    def gauge(self, name, labels, value):
        self.lines.append("%s{%s} %g" % (name, labels, value))

    def series(self):
        return len(self.lines) + len(self.counters)

    def render(self):
        t = time.time() - self.started
        dyn = "".join("%s{%s} %d\n" % (n, lab, rate * t) for n, lab, rate in self.counters)
        return self.static + dyn.encode()


def serve(fleet):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = fleet.render()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", TARGET), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def api(path, **params):
    url = "http://127.0.0.1:%d%s?%s" % (PORT, path, urllib.parse.urlencode(params))
    with urllib.request.urlopen(url, timeout=120) as r:
        return json.loads(r.read().decode())


def cost(expr, runs=5):
    """Samples an instant query touches (Prometheus's query stats) and its
    median wall time over runs."""
    stats = api("/api/v1/query", query=expr, stats="all")["data"].get("stats", {})
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        api("/api/v1/query", query=expr)
        times.append(time.monotonic() - t0)
    return stats.get("samples", {}).get("totalQueryableSamples"), statistics.median(times)


def main():
    repo, o = args()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    fleet = Fleet(o)
    srv = serve(fleet)
    work = tempfile.mkdtemp(prefix="sockdiag-fleet-bench-")
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as f:
        f.write("""global: {scrape_interval: %ds, scrape_timeout: %ds, evaluation_interval: %ds}
rule_files: [%s]
scrape_configs:
  - {job_name: fleet, honor_labels: true, static_configs: [{targets: ['127.0.0.1:%d']}]}
""" % (o["interval"], o["interval"] - 1, o["interval"],
       json.dumps(os.path.join(repo, "dashboards", "recording-rules.yaml")), TARGET))
    prom = subprocess.Popen(["prometheus", "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(work, "d"),
                             "--web.listen-address=127.0.0.1:%d" % PORT, "--log.level=warn"])
    durations = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if api("/api/v1/query", query="up")["data"]["result"]:
                    break
            except OSError:
                pass
            time.sleep(1)
        last = {}
        while min((len(v) for v in durations.values()), default=0) < o["evaluations"]:
            time.sleep(1)
            for g in api("/api/v1/rules")["data"]["groups"]:
                if g.get("lastEvaluation") and last.get(g["name"]) != g["lastEvaluation"]:
                    last[g["name"]] = g["lastEvaluation"]
                    durations.setdefault(g["name"], []).append(g["evaluationTime"])
        inputs = fleet.series()
        counts = api("/api/v1/query", query='count by (__name__) ({__name__=~"[a-z_]+:sockdiag_.+"})')
        recorded = sum(int(s["value"][1]) for s in counts["data"]["result"])
        print("nodes %d, pods per node %d, destinations per namespace %d, remote services %d; load average %s" % (
            o["nodes"], o["pods"], o["destinations"], o["remotes"], open("/proc/loadavg").read().split()[0]))
        print("input series %d (%.0f per node), recorded series %d (%.1f per node)" % (
            inputs, inputs / o["nodes"], recorded, recorded / o["nodes"]))
        for name, ds in sorted(durations.items()):
            ds = ds[1:]  # the first evaluation may see half a scrape
            print("group %-24s evaluation median %.1f ms, max %.1f ms over %d" % (
                name, statistics.median(ds) * 1000, max(ds) * 1000, len(ds)))
        pairs = [
            ("nodes nearest exhaustion",
             "bottomk(50, min by (job, instance, node) (sockdiag_ephemeral_port_exhaustion_seconds_min))",
             "bottomk(50, instance:sockdiag_ephemeral_port_exhaustion_seconds:min)"),
            ("remote services by ports held",
             "topk(10, sum by (job, family, remote_address, remote_port) (sockdiag_destination_ephemeral_ports))",
             "topk(10, remote:sockdiag_destination_ephemeral_ports:sum)"),
        ]
        for what, raw, rec in pairs:
            s_raw, t_raw = cost(raw)
            s_rec, t_rec = cost(rec)
            print("panel %-30s raw: %s samples, %.1f ms; recorded: %s samples, %.1f ms (per instant query; "
                  "a 1 h panel at this step makes %d)" % (what, s_raw, t_raw * 1000, s_rec, t_rec * 1000,
                                                         3600 // o["interval"]))
    finally:
        prom.terminate()
        prom.wait()
        srv.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
