#!/usr/bin/env python3
"""End to end: the fleet view (dashboards/recording-rules.yaml and
dashboards/fleet.json) over five real exporters.

Must run in a private network namespace (`unshare -n`, it refuses otherwise).
Five "nodes", each a network namespace below the test's (veth
10.254.K.0/24) with its own exporter (--poll.interval=1s) and a different load
(tests/e2e/port_load.py, 1,000 usable ports each); "db" is 127.0.0.10:3306,
"api" 127.0.0.11:443 and "queue" 127.0.0.12:5432 in every namespace, so the
same remote service shows up on several nodes:

  node-1  150 connections held to db, and a leak to queue (2/s): heading for
          exhaustion, the nearest although not the fullest.
  node-2  700 TIME_WAIT toward db: 70 %, steady.
  node-3  400 TIME_WAIT toward db, 100 held to api; conntrack on, with the SNAT
          rule of tests/e2e/population.py and 20 masqueraded connections.
  node-4  pods mode, in its own PID namespace (tests/e2e/pods_node.py): pod A
          with 250 TIME_WAIT toward db, pod B with 50 held to api.
  node-5  10 held to api.

Prometheus (the Debian package; scrape and evaluation every 1 s) loads
dashboards/alerts.yaml and dashboards/recording-rules.yaml and scrapes the
five exporters and a kube-state-metrics stand-in serving kube_pod_info for
the two pods. Checks, on the recorded series: the nodes ranked by nearness to
exhaustion are node-1..node-5 in that order (by the recording rules and by the
Fleet dashboard's own ranking query); exact worst utilization per node; db
summed across nodes (1,500 ports from 4 clients) and api (160 from 3); the
pods ranked and named namespace/name; SNAT and conntrack fill highest on
node-3; every Fleet dashboard query returns series; every rule is healthy.
Prints the series each node contributes and what the recording rules cost.
Takes about 40 s.

usage: unshare -n fleet_e2e.py EXPORTER_BINARY REPO_DIR
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import monitoring_lib as ml  # noqa: E402
from e2e_support import (  # noqa: E402
    NetnsLab, Processes, Prometheus, clean_up, die, http_get, log, require_private_netns,
    serve_kube_pod_info, start_prometheus, wait_for)
from population import NFT_RULES  # noqa: E402  conntrack on, SNAT 127.0.0.4:5432 via 127.0.0.5

PROM = "http://127.0.0.1:9090"
KSM_ADDR = "127.0.0.1:10063"
RANGE = "40000-40999"
USABLE = 1000
DB, API, QUEUE = ("127.0.0.10", "3306"), ("127.0.0.11", "443"), ("127.0.0.12", "5432")
POD_A = ("0b7f3c52-9a1e-4d2b-8c3f-5e6a7b8c9d01", "shop", "checkout-7d9f8b-q2w4e")
POD_B = ("0b7f3c52-9a1e-4d2b-8c3f-5e6a7b8c9d02", "shop", "cart-5c6d7e-r5t6y")


def step(kind, dest, *args):
    return ",".join([kind, dest[0], dest[1]] + [str(a) for a in args])


# node -> port_load steps (None for the pods-mode node)
NODES = {
    "node-1": [step("pool", DB, 150), step("leak", QUEUE, 2, 120)],
    "node-2": [step("timewait", DB, 700)],
    "node-3": [step("timewait", DB, 400), step("pool", API, 100), step("pool", ("127.0.0.4", "5432"), 20)],
    "node-4": None,
    "node-5": [step("pool", API, 10)],
}
PODS = [(POD_A, [step("timewait", DB, 250)]), (POD_B, [step("pool", API, 50)])]
EXPECTED_RANKING = ["node-1", "node-2", "node-3", "node-4", "node-5"]
EXPECTED_UTILIZATION = {"node-2": 0.70, "node-3": 0.40, "node-4": 0.25, "node-5": 0.01}
EXPECTED_REMOTES = {DB: (1500, 4), API: (160, 3)}  # ports held, clients
EXPECTED_PODS = [(POD_A, 0.25), (POD_B, 0.05)]

failures = []
prom = Prometheus(PROM)


def fail(msg):
    failures.append(msg)
    log("FAIL    " + msg)


def check(ok, what, detail=""):
    if ok:
        log("ok      " + what)
    else:
        fail(what + (": " + detail if detail else ""))


def query(expr):
    result, err = prom.query(expr)
    if err is not None:
        fail("query failed: %s\n        %s" % (err, expr))
        return []
    return result


def by_node(result):
    return {s["metric"].get("node"): float(s["value"][1]) for s in result}


def ranking(tte, util):
    """Nodes by time to exhaustion, then by worst utilization (descending)."""
    return sorted(tte, key=lambda n: (tte[n], -util.get(n, 0)))


def fleet_query(dashboard, title, ref):
    for p in ml.iter_panels(dashboard["panels"]):
        if p.get("title") == title:
            for t in p.get("targets", []):
                if t.get("refId") == ref:
                    return ml.substitute(t["expr"], ml.variable_names(dashboard))
    die("fleet.json has no panel %r with target %s" % (title, ref))


def check_ranking(fleet):
    tte = by_node(query("instance:sockdiag_ephemeral_port_exhaustion_seconds:min"))
    util = by_node(query("instance:sockdiag_ephemeral_port_utilization:max"))
    got = ranking(tte, util)
    check(got == EXPECTED_RANKING, "recording rules rank the nodes %s" % got,
          "expected %s (time to exhaustion %s, utilization %s)" % (EXPECTED_RANKING, tte, util))
    check(tte.get("node-1", 3600) < 3600 and all(tte.get(n) == 3600 for n in EXPECTED_RANKING[1:]),
          "only node-1 heads for exhaustion (%.0f s)" % tte.get("node-1", -1), "time to exhaustion %s" % tte)
    for node, want in EXPECTED_UTILIZATION.items():
        check(abs(util.get(node, -1) - want) < 1e-9, "%s worst utilization %.2f" % (node, want),
              "got %s" % util.get(node))
    # The dashboard's own ranking (the table's hidden sort key).
    rank = query(fleet_query(fleet, "Nodes nearest exhaustion", "R"))
    got = [s["metric"].get("node") for s in sorted(rank, key=lambda s: float(s["value"][1]))]
    check(got == EXPECTED_RANKING, "Fleet dashboard ranks the nodes %s" % got, "expected %s" % EXPECTED_RANKING)


def check_remotes():
    ports = query("remote:sockdiag_destination_ephemeral_ports:sum")
    clients = query("remote:sockdiag_destination_ephemeral_ports:count")

    def value(result, dest):
        return next((float(s["value"][1]) for s in result if s["metric"].get("remote_address") == dest[0]
                     and s["metric"].get("remote_port") == dest[1]), None)
    for dest, (want_ports, want_clients) in EXPECTED_REMOTES.items():
        got = (value(ports, dest), value(clients, dest))
        check(got == (want_ports, want_clients), "%s:%s across the fleet: %d ports from %d clients"
              % (dest[0], dest[1], want_ports, want_clients), "got %s" % (got,))
    top = max(ports, key=lambda s: float(s["value"][1])) if ports else None
    check(top is not None and (top["metric"]["remote_address"], top["metric"]["remote_port"]) == DB,
          "the remote everyone hammers is %s:%s" % DB, "got %s" % (top and top["metric"]))


def check_pods(fleet):
    util = {s["metric"].get("pod_uid"): float(s["value"][1])
            for s in query("pod:sockdiag_ephemeral_port_utilization:max")}
    for (uid, _, _), want in EXPECTED_PODS:
        check(abs(util.get(uid, -1) - want) < 1e-9, "pod %s worst utilization %.2f" % (uid, want), "got %s" % util)
    check(len(util) == len(EXPECTED_PODS), "pods recorded: exactly the %d pods" % len(EXPECTED_PODS), "got %s" % util)
    rank = query(fleet_query(fleet, "Pods nearest exhaustion", "R"))
    got = [s["metric"].get("pod_name") for s in sorted(rank, key=lambda s: float(s["value"][1]))]
    want = ["%s/%s" % (ns, name) for (_, ns, name), _ in EXPECTED_PODS]
    check(got == want, "Fleet dashboard ranks and names the pods %s" % got, "expected %s" % want)


def check_conntrack():
    snat = by_node(query("instance:sockdiag_conntrack_snat_port_utilization:max"))
    fill = by_node(query("instance:sockdiag_conntrack_entries:ratio"))
    check(snat and max(snat, key=snat.get) == "node-3" and snat["node-3"] > 0,
          "SNAT highest on node-3 (%.6f)" % snat.get("node-3", -1), "got %s" % snat)
    check(fill and max(fill, key=fill.get) == "node-3" and fill["node-3"] > 0,
          "conntrack fill highest on node-3 (%.6f)" % fill.get("node-3", -1), "got %s" % fill)


def check_dashboard_queries(repo):
    queries = [q for q in ml.all_dashboard_queries(os.path.join(repo, "dashboards")) if q.dashboard == "fleet.json"]
    for q in queries:
        result, err = prom.query(q.expr)
        where = "fleet.json %s" % q.where
        if err is not None:
            fail("%s: query failed: %s\n        %s" % (where, err, q.expr))
        elif not result:
            fail("%s: no series\n        %s" % (where, q.expr))
        else:
            log("ok      %s: %d series" % (where, len(result)))
    return len(queries)


def check_rules():
    groups = prom.api("/api/v1/rules")["data"]["groups"]
    cost = {}
    for g in groups:
        for r in g["rules"]:
            if r.get("health") != "ok":
                fail("rule %s in group %s: health %s: %s" % (r.get("name"), g["name"], r.get("health"),
                                                             r.get("lastError", "")))
        if g["name"].startswith("sockdiag-fleet"):
            cost[g["name"]] = (len(g["rules"]), g.get("evaluationTime", 0))
    check(len(cost) == 3, "the 3 recording-rule groups are loaded and healthy", "got %s" % cost)
    return cost


def report(cost):
    log("\nseries per node (scrape samples, job sockdiag):")
    for s in sorted(query('count by (node) ({job="sockdiag", __name__=~"sockdiag_.+"})'),
                    key=lambda s: s["metric"].get("node", "")):
        log("        %s: %s" % (s["metric"].get("node"), s["value"][1]))
    log("series per namespace of the pods-mode node (node-4):")
    for s in sorted(query('count by (netns, pod_uid) ({job="sockdiag", node="node-4", __name__=~"sockdiag_.+"})'),
                    key=lambda s: s["metric"].get("pod_uid", "")):
        log("        %s: %s" % (s["metric"].get("pod_uid") or s["metric"].get("netns") or "(no netns label)",
                                s["value"][1]))
    recorded = query('count by (__name__) ({__name__=~"[a-z_]+:sockdiag_.+"})')
    log("recorded series: %d in %d names" % (sum(int(s["value"][1]) for s in recorded), len(recorded)))
    for name, (n, seconds) in sorted(cost.items()):
        log("        group %s: %d rules, last evaluation %.3f ms" % (name, n, seconds * 1000))


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: unshare -n fleet_e2e.py EXPORTER_BINARY REPO_DIR")
    exporter, repo = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    require_private_netns(("prometheus", "promtool", "ip", "nft", "nsenter", "unshare"))
    here = os.path.dirname(os.path.abspath(__file__))
    port_load = [sys.executable, os.path.join(here, "port_load.py"), "--range", RANGE]
    with open(os.path.join(repo, "dashboards", "fleet.json")) as f:
        fleet = json.load(f)

    work = tempfile.mkdtemp(prefix="sockdiag-fleet-e2e-")
    procs = Processes()
    ok = False
    try:
        lab = NetnsLab(procs, work)
        common = ["--poll.interval=1s", "--conntrack.dump-interval=1s", "--log.level=warn"]
        targets, loads, pending_exporters = [], {}, []
        for node, steps in NODES.items():
            ns = lab.add(node)
            addr = "%s:10061" % ns.addr
            targets.append("{targets: ['%s'], labels: {node: %s}}" % (addr, node))
            argv = [exporter, "--web.listen-address=" + addr] + common
            if steps is None:
                empty = os.path.join(work, "no-named-netns")
                os.makedirs(empty, exist_ok=True)
                spec = {"pods": [{"uid": uid, "load": port_load + s} for (uid, _, _), s in PODS],
                        "exporter": argv + ["--netns.mode=pods", "--netns.run-dir=" + empty]}
                loads[node] = procs.start("node-" + node, ns.cmd(
                    ["unshare", "-p", "-f", "--kill-child=SIGTERM", "--mount-proc", sys.executable,
                     os.path.join(here, "pods_node.py"), json.dumps(spec)]), work,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
                continue
            if node == "node-3":
                nft = subprocess.run(ns.cmd(["nft", "-f", "-"]), input=NFT_RULES, text=True, capture_output=True)
                if nft.returncode != 0:
                    die("nft in %s: %s" % (node, nft.stderr.strip()))
            loads[node] = procs.start("load-" + node, ns.cmd(port_load + steps), work,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            pending_exporters.append((node, ns, argv))
        for node, p in loads.items():
            line = p.stdout.readline()
            if not ('"ready"' in line or line.startswith("READY")):
                die("%s: load not ready (exit %s; see its log)" % (node, p.poll()))
        populated = time.monotonic()
        log("ok      populations ready")
        # Exporters after the populations: their first poll sees the pools as
        # they are (no growth), as on a node where the pools predate them.
        for node, ns, argv in pending_exporters:
            procs.start("exporter-" + node, ns.cmd(argv), work)

        serve_kube_pod_info(procs, work, [(uid, namespace, name, "node-4") for (uid, namespace, name), _ in PODS],
                            KSM_ADDR)
        start_prometheus(procs, work, """global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: %s
scrape_configs:
  - job_name: sockdiag
    static_configs: [%s]
  - {job_name: kube-state-metrics, honor_labels: true, static_configs: [{targets: ['%s']}]}
""" % (json.dumps([os.path.join(repo, "dashboards", f) for f in ("alerts.yaml", "recording-rules.yaml")]),
                ", ".join(targets), KSM_ADDR))
        wait_for("Prometheus ready", lambda: http_get(PROM + "/-/ready") != "", 30)

        def all_up():
            result, _ = prom.query("count_over_time(up[1m]) >= 3 and up == 1")
            return result is not None and len(result) == len(NODES) + 1
        wait_for("every target up and scraped 3 times", all_up, 40)
        go = time.monotonic()
        loads["node-1"].stdin.write("GO\n")
        loads["node-1"].stdin.flush()
        # The populations' TIME_WAIT look like a close rate for the rate
        # window (10 s) after they were made; the leak needs a few polls.
        settle = max(populated + 14, go + 10) - time.monotonic()
        if settle > 0:
            time.sleep(settle)
        wait_for("node-1's leak forecast recorded",
                 lambda: by_node(query("instance:sockdiag_ephemeral_port_exhaustion_seconds:min")).get("node-1", 3600)
                 < 3600, 20)
        log("ok      targets up, checks start %.1f s after the populations" % (time.monotonic() - populated))

        check_ranking(fleet)
        check_remotes()
        check_pods(fleet)
        check_conntrack()
        n = check_dashboard_queries(repo)
        cost = check_rules()
        elapsed = time.monotonic() - populated
        if elapsed > 55:
            fail("checks ended %.0f s after the populations were made: TIME_WAIT (60 s) may have expired" % elapsed)
        report(cost)
        log("%d Fleet dashboard queries evaluated" % n)
        ok = not failures
    finally:
        clean_up(procs, work, ok)
    log("%d failed" % len(failures) if failures else "fleet e2e: all checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
