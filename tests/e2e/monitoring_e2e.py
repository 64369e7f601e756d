#!/usr/bin/env python3
"""End-to-end check of dashboards/ and dashboards/alerts.yaml against a real
Prometheus scraping the real exporter.

Must run in a private network namespace (`unshare -n`, it refuses otherwise):
1. population.py "node" makes the field cases' shape on loopback, with one
   destination (127.0.0.1 -> 127.0.0.2:3306) holding 94% of a narrowed port
   range in TIME_WAIT; a "pod" (a process in a kubepods cgroup, in its own
   network namespace) gets a small population of its own.
2. Two exporters: `sockdiag` (self mode) and `sockdiag-pods`
   (--netns.mode=pods); a static kube-state-metrics stand-in serving
   kube_pod_info for the pod's UID, so the pods dashboard's join is exercised.
3. Prometheus 2.42 on 127.0.0.1:9090 (scrape and evaluation every 1 s) loads
   dashboards/alerts.yaml and dashboards/recording-rules.yaml (the Fleet
   dashboard reads the recorded series) and scrapes the three targets.
4. Once every target is up and has >= 3 samples: every dashboard panel and
   variable query must return success and >= 1 series; every alert expression
   must return success and every rule must evaluate without error; the
   port-exhaustion alert's expression must return the culprit destination and
   the alert must be pending or firing for it; the pods dashboard's join must
   name the pod namespace/name.

Queries that mention a name listed in tests/e2e/pending_metrics.txt may return
nothing (reported as PENDING); a listed name that Prometheus does see fails
the test, so the list cannot go stale.

usage: unshare -n monitoring_e2e.py EXPORTER_BINARY REPO_DIR
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
    FakePod, Processes, Prometheus, clean_up, die, http_get, log, require_private_netns,
    serve_kube_pod_info, start_prometheus, wait_for)

PROM = "http://127.0.0.1:9090"
SELF_ADDR, PODS_ADDR, KSM_ADDR = "127.0.0.1:10061", "127.0.0.1:10062", "127.0.0.1:10063"
CULPRIT = {"local_address": "127.0.0.1", "remote_address": "127.0.0.2", "remote_port": "3306"}
POD_NAMESPACE, POD_NAME = "shop", "checkout-6b7f9c-x2x8q"

failures = []
pendings = []


def fail(msg):
    failures.append(msg)
    log("FAIL    " + msg)


prom = Prometheus(PROM)
api = prom.api


def read_ready(p, name, timeout=30):
    """Waits for population.py's READY line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if line.startswith("READY "):
            log("ok      %s population: %s" % (name, line[6:].strip()))
            return
        if not line and p.poll() is not None:
            die("%s population exited with %s (see its log)" % (name, p.returncode))
    die("%s population not ready" % name)


# --------------------------------------------------------------- checks
query = prom.query


def check_queries(queries, pending, require_series):
    for q in queries:
        result, err = query(q.expr)
        where = "%s %s" % (q.dashboard, q.where)
        mentions = ml.pending_names_in(q.expr, pending)
        if err is not None:
            fail("%s: query failed: %s\n        %s" % (where, err, q.expr))
        elif result or not require_series:
            log("ok      %s: %d series" % (where, len(result)))
        elif mentions:
            pendings.append(where)
            log("PENDING %s: no series (not served yet: %s)" % (where, ", ".join(mentions)))
        else:
            fail("%s: no series\n        %s" % (where, q.expr))


def check_culprit(alerts, pending):
    rules = [a for a in alerts if a.name == "SockdiagEphemeralPortsExhausting"]
    if not rules:
        fail("alerts.yaml has no SockdiagEphemeralPortsExhausting")
        return
    mentions = ml.pending_names_in(rules[0].expr, pending)
    for a in rules:
        result, err = query(a.expr)
        where = "alert %s (%s)" % (a.name, a.severity)
        if err is not None:
            fail("%s: %s" % (where, err))
            continue
        hits = [s for s in result if s["metric"].get("job") == "sockdiag"
                and all(s["metric"].get(k) == v for k, v in CULPRIT.items())]
        if hits:
            log("ok      %s expression names the culprit %s -> %s:%s at %.2f" % (
                where, CULPRIT["local_address"], CULPRIT["remote_address"], CULPRIT["remote_port"],
                float(hits[0]["value"][1])))
        elif mentions:
            pendings.append(where + " culprit")
            log("PENDING %s: culprit not returned (not served yet: %s)" % (where, ", ".join(mentions)))
            continue
        else:
            fail("%s: expression does not return %s; got %s" % (where, CULPRIT, [s["metric"] for s in result]))
            continue
        firing = [x for x in api("/api/v1/alerts")["data"]["alerts"]
                  if x["labels"].get("alertname") == a.name and x["labels"].get("severity") == a.severity
                  and x["labels"].get("job") == "sockdiag"
                  and all(x["labels"].get(k) == v for k, v in CULPRIT.items())]
        if firing and firing[0]["state"] in ("pending", "firing"):
            log("ok      %s is %s for the culprit: %s" % (where, firing[0]["state"],
                                                        firing[0]["annotations"].get("summary", "")))
        else:
            fail("%s: not pending/firing for the culprit in /api/v1/alerts" % where)


def check_rule_health():
    groups = api("/api/v1/rules")["data"]["groups"]
    n = 0
    for g in groups:
        for r in g["rules"]:
            n += 1
            if r.get("health") != "ok":
                fail("rule %s in group %s: health %s: %s" % (r.get("name"), g["name"], r.get("health"),
                                                             r.get("lastError", "")))
    log("ok      %d rules loaded and evaluated" % n if n else "FAIL    no rules loaded")
    if n == 0:
        failures.append("no rules loaded")


def check_pod_join(queries, pending):
    if "pod_uid" in pending:
        pendings.append("pods dashboard kube_pod_info join")
        log("PENDING pods dashboard join with kube_pod_info (pod_uid not served yet)")
        return
    want = "%s/%s" % (POD_NAMESPACE, POD_NAME)
    for q in queries:
        if q.dashboard != "pods.json" or "kube_pod_info" not in q.expr:
            continue
        result, err = query(q.expr)
        names = {s["metric"].get("pod_name") for s in result or []}
        if want not in names:
            fail("pods.json %s: pod_name %r missing (got %s)" % (q.where, want, sorted(n for n in names if n)))
    log("ok      pods dashboard joins kube_pod_info: %s" % want)


def check_pending_not_served(pending):
    served = set(api("/api/v1/label/__name__/values")["data"]) | set(api("/api/v1/labels")["data"])
    for name in pending:
        if name in served:
            fail("%s is served now: remove it from tests/e2e/pending_metrics.txt" % name)


# ------------------------------------------------------------------ main
def main():
    if len(sys.argv) != 3:
        sys.exit("usage: unshare -n monitoring_e2e.py EXPORTER_BINARY REPO_DIR")
    exporter, repo = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    require_private_netns(("prometheus", "promtool", "nft", "ip"))

    here = os.path.dirname(os.path.abspath(__file__))
    population = os.path.join(here, "population.py")
    pending = ml.load_pending(os.path.join(here, "pending_metrics.txt"))
    alerts = ml.load_alerts(os.path.join(repo, "dashboards", "alerts.yaml"))
    queries = ml.all_dashboard_queries(os.path.join(repo, "dashboards"))

    work = tempfile.mkdtemp(prefix="sockdiag-e2e-")
    procs = Processes()
    pod = None
    ok = False
    try:
        pod = FakePod()
        serve_kube_pod_info(procs, work, [(pod.uid, POD_NAMESPACE, POD_NAME, "e2e-node")], KSM_ADDR)
        # Prometheus first: its first scrape comes ~5.5 s after start.
        start_prometheus(procs, work, """global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: %s
scrape_configs:
  - {job_name: sockdiag, static_configs: [{targets: ['%s']}]}
  - {job_name: sockdiag-pods, static_configs: [{targets: ['%s']}]}
  - {job_name: kube-state-metrics, honor_labels: true, static_configs: [{targets: ['%s']}]}
""" % (json.dumps([os.path.join(repo, "dashboards", f) for f in ("alerts.yaml", "recording-rules.yaml")]),
                SELF_ADDR, PODS_ADDR, KSM_ADDR))
        common = ["--poll.interval=1s", "--conntrack.dump-interval=1s", "--log.level=warn"]
        procs.start("exporter-self", [exporter, "--web.listen-address=" + SELF_ADDR] + common, work)
        procs.start("exporter-pods", [exporter, "--web.listen-address=" + PODS_ADDR,
                                      "--netns.mode=pods"] + common, work)
        node = procs.start("population-node", [sys.executable, population, "node"], work,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        read_ready(node, "node")
        pod_proc = procs.start("population-pod", pod.command([sys.executable, population, "pod"]), work,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        read_ready(pod_proc, "pod %s" % pod.uid)
        populated = time.monotonic()

        wait_for("Prometheus ready", lambda: http_get(PROM + "/-/ready") != "", 15)

        def targets_up():
            active = api("/api/v1/targets")["data"]["activeTargets"]
            return len(active) == 3 and all(t["health"] == "up" for t in active)
        wait_for("all 3 targets up", targets_up, 30)
        log("ok      targets up after %.1f s" % (time.monotonic() - populated))

        def enough_samples():
            result, _ = query("min(count_over_time(up[1m]))")
            return result and float(result[0]["value"][1]) >= 3
        wait_for(">= 3 scrapes of every target", enough_samples, 20)
        # Scrapes after the population exists, for rate() and every collector.
        time.sleep(1.5)

        check_queries(queries, pending, require_series=True)
        alert_queries = [ml.Query("alerts.yaml", "alert %s (%s)" % (a.name, a.severity), a.expr, a.expr)
                         for a in alerts]
        check_queries(alert_queries, pending, require_series=False)
        check_rule_health()
        check_culprit(alerts, pending)
        check_pod_join(queries, pending)
        check_pending_not_served(pending)
        elapsed = time.monotonic() - populated
        if elapsed > 55:
            fail("checks ended %.0f s after the population was made: TIME_WAIT (60 s) may have expired" % elapsed)
        ok = not failures
    finally:
        clean_up(procs, work, ok)
        if pod:
            pod.cleanup()

    log("\n%d dashboard queries, %d alert expressions; %d checks PENDING on names listed in "
        "tests/e2e/pending_metrics.txt%s" % (len(queries), len(alerts), len(pendings),
                                             " (see the PENDING lines above)" if pendings else ""))
    log("%d failed" % len(failures) if failures else "monitoring e2e: all checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
