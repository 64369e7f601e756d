#!/usr/bin/env python3
"""End to end: does SockdiagEphemeralPortsExhaustionForecast fire before the
client's first `connect: cannot assign requested address`?

Real kernel, real exporter, real Prometheus (the Debian package) loading
dashboards/alerts.yaml unchanged, scraping and evaluating every 5 s. Must run
in a private network namespace (`unshare -n`, it refuses otherwise). Three
cases run at once, each in its own network namespace below the test's (veth
10.254.K.0/24), with its own exporter (--poll.interval=5s) and its own client
(tests/e2e/port_load.py, tcp_tw_reuse=0 so TIME_WAIT blocks its port):

  step    3,000 usable ports; 10 connections/s opened and closed for 30 s
          (steady state 20 %: nothing may fire), then a step to 60/s, whose
          TIME_WAIT exhausts the range about 80 s after the start.
  leak    3,000 usable ports; 7.2 connections/s opened and never closed
          (the issue's slow leak): exhausted after about 417 s.
  steady  1,000 usable ports; a pool of 300 held connections and 5
          connections/s of churn (300 TIME_WAIT): a steady 60 % that never
          grows. Nothing may fire.

The client records the wall-clock time of its first EADDRNOTAVAIL; the alert's
firing times come from Prometheus's ALERTS series (the evaluation
timestamps). Passes when the forecast alert fires for the step before the
failure, for the leak at least 120 s before it (warning), names the
destination, and stays quiet for the steady case and the step's first 30 s.
Prints the measured lead times. Takes about 8 minutes.

Options, for measuring rather than testing: --cases=step,leak (a subset),
--scrape=S --evaluation=E --poll=P (seconds; default 5 each), --report-only
(print the timings, assert nothing: at 15 s / 30 s the step cannot be caught,
see docs/monitoring.md).

usage: unshare -n forecast_e2e.py EXPORTER_BINARY REPO_DIR [options]
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_support import (  # noqa: E402
    NetnsLab, Processes, Prometheus, clean_up, die, http_get, log, require_private_netns,
    start_prometheus, wait_for)

PROM = "http://127.0.0.1:9090"
ALERT = "SockdiagEphemeralPortsExhaustionForecast"
BACKSTOP = "SockdiagEphemeralPortsExhausting"
OPTIONS = {"scrape": 5, "evaluation": 5, "poll": 5, "cases": "step,leak,steady", "report-only": False}
SERVER = "127.0.0.2"

# name -> (port range, port_load steps, destination port, expectation)
CASES = {
    "step": ((40000, 42999), ["churn,%s,3306,10,30" % SERVER, "churn,%s,3306,60,150" % SERVER],
             "3306", "before"),
    "leak": ((40000, 42999), ["leak,%s,8080,7.2,600" % SERVER], "8080", "early"),
    "steady": ((40000, 40999), ["pool,%s,5432,300" % SERVER, "churn,%s,5432,5,900" % SERVER],
               "5432", "quiet"),
}
STEP_AT = 30          # seconds after GO at which the step case steps up
EARLY_ENOUGH = 120    # the leak's warning must come at least this early
# The scenario's own shape (else the machine could not produce the load and
# the lead times would mean nothing): first EADDRNOTAVAIL after GO, seconds.
SHAPE = {"step": (60, 100), "leak": (380, 470)}

failures = []


def fail(msg):
    failures.append(msg)
    log("FAIL    " + msg)


class Client:
    """A port_load.py child and the events it printed (read by a thread)."""

    def __init__(self, name, proc):
        self.name, self.proc = name, proc
        self.events = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.events.append(ev)

    def event(self, name):
        with self.lock:
            return next((e for e in self.events if e["event"] == name), None)


def alert_times(prom, alertname, case, state, since):
    """{severity: first evaluation timestamp} of ALERTS{alertstate=state} for
    the case, and the labels of the first firing series per severity."""
    window = int(time.time() - since) + 2 * OPTIONS["evaluation"]
    result, err = prom.query('ALERTS{alertname="%s", alertstate="%s", case="%s"}[%ds]'
                             % (alertname, state, case, window))
    if err:
        die("ALERTS query: " + err)
    first, labels = {}, {}
    for series in result:
        sev = series["metric"].get("severity", "")
        ts = min(float(t) for t, _ in series["values"])
        if ts >= since and (sev not in first or ts < first[sev]):
            first[sev], labels[sev] = ts, series["metric"]
    return first, labels


def value_at(prom, expr, at):
    result, err = prom.query(expr, time="%.3f" % at)
    if err or not result:
        return None
    return float(result[0]["value"][1])


def parse_options(argv):
    for a in argv:
        key, eq, value = a.lstrip("-").partition("=")
        if key not in OPTIONS or not a.startswith("--") or (key == "report-only") == bool(eq):
            sys.exit("unknown option %s\n%s" % (a, __doc__.split("Options")[1]))
        OPTIONS[key] = True if key == "report-only" else value if key == "cases" else int(value)
    for name in list(CASES):
        if name not in OPTIONS["cases"].split(","):
            del CASES[name]
    if not CASES:
        sys.exit("--cases: none of step, leak, steady")


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: unshare -n forecast_e2e.py EXPORTER_BINARY REPO_DIR [options]")
    exporter, repo = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    parse_options(sys.argv[3:])
    require_private_netns(("prometheus", "promtool", "ip", "nsenter", "unshare"))
    here = os.path.dirname(os.path.abspath(__file__))
    rule_files = [os.path.join(repo, "dashboards", "alerts.yaml")]

    work = tempfile.mkdtemp(prefix="sockdiag-forecast-e2e-")
    procs = Processes()
    prom = Prometheus(PROM)
    ok = False
    try:
        lab = NetnsLab(procs, work)
        targets, clients, exporters = [], {}, []
        for name, (port_range, steps, _, _) in CASES.items():
            ns = lab.add(name)
            addr = "%s:10061" % ns.addr
            targets.append("{targets: ['%s'], labels: {case: %s}}" % (addr, name))
            p = procs.start("load-" + name, ns.cmd([
                sys.executable, os.path.join(here, "port_load.py"),
                "--range", "%d-%d" % port_range] + steps), work,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            clients[name] = Client(name, p)
            exporters.append((name, ns.cmd([exporter, "--web.listen-address=" + addr,
                                            "--poll.interval=%ds" % OPTIONS["poll"], "--log.level=warn"])))
        for c in clients.values():
            wait_for("%s client ready" % c.name, lambda: c.event("ready") or c.proc.poll() is not None, 60)
            if c.proc.poll() is not None:
                die("%s client exited with %s (see load-%s.log)" % (c.name, c.proc.returncode, c.name))
        # Exporters after the clients' pools: their first poll sees the pool
        # as it is (no growth), as on a node where the pool predates them.
        for name, argv in exporters:
            procs.start("exporter-" + name, argv, work)
        start_prometheus(procs, work, """global: {scrape_interval: %ds, scrape_timeout: 4s, evaluation_interval: %ds}
rule_files: %s
scrape_configs:
  - job_name: sockdiag
    static_configs: [%s]
""" % (OPTIONS["scrape"], OPTIONS["evaluation"], json.dumps(rule_files), ", ".join(targets)))

        wait_for("Prometheus ready", lambda: http_get(PROM + "/-/ready") != "", 30)

        def scraped_twice():
            active = prom.api("/api/v1/targets")["data"]["activeTargets"]
            result, _ = prom.query('count_over_time(up{job="sockdiag"}[1m]) >= 2 and up == 1')
            return len(active) == len(CASES) and result is not None and len(result) == len(CASES)
        wait_for("every target up and scraped twice", scraped_twice, 60)

        go = time.time()
        for c in clients.values():
            c.proc.stdin.write("GO\n")
            c.proc.stdin.flush()
        log("ok      GO at %.3f (poll %d s, scrape %d s, evaluation %d s); cases %s"
            % (go, OPTIONS["poll"], OPTIONS["scrape"], OPTIONS["evaluation"], ", ".join(CASES)))

        def exhausted(name):
            return clients[name].event("eaddrnotavail") or clients[name].event("done")
        timed = [n for n in CASES if n in SHAPE]  # the steady case has no end
        deadline = time.monotonic() + (max(SHAPE[n][1] for n in timed) + 60 if timed else SHAPE["leak"][1])
        while time.monotonic() < deadline and not (timed and all(exhausted(n) for n in timed)):
            for c in clients.values():
                if c.proc.poll() is not None:
                    die("%s client exited with %s (see load-%s.log)" % (c.name, c.proc.returncode, c.name))
            time.sleep(1)
        # One more evaluation, so that a firing at the last evaluation before
        # the failure is stored.
        time.sleep(2 * OPTIONS["evaluation"])
        ok = report(prom, clients, go)
    finally:
        clean_up(procs, work, ok)
    if OPTIONS["report-only"]:
        log("report only: %d check(s) would have failed" % len(failures))
        sys.exit(0)
    log("%d failed" % len(failures) if failures else "forecast e2e: all checks passed")
    sys.exit(1 if failures else 0)


def report(prom, clients, go):
    rows = []
    for name, (_, _, port, expect) in CASES.items():
        failed = clients[name].event("eaddrnotavail")
        fail_at = failed["t"] - go if failed else None
        fired, labels = alert_times(prom, ALERT, name, "firing", go)
        pending, _ = alert_times(prom, ALERT, name, "pending", go)
        backstop, _ = alert_times(prom, BACKSTOP, name, "firing", go)
        rel = {k: v - go for k, v in fired.items()}
        row = {"case": name, "eaddrnotavail": fail_at, "fired": rel,
               "pending": {k: v - go for k, v in pending.items()},
               "backstop": {k: v - go for k, v in backstop.items()}}
        rows.append(row)
        for sev, lab in labels.items():
            if lab.get("remote_address") != SERVER or lab.get("remote_port") != port:
                fail("%s: %s alert does not name %s:%s: %s" % (name, sev, SERVER, port, lab))
        if expect == "quiet":
            if rel:
                fail("%s: the forecast alert fired for a steady 60 %%: %s" % (name, rel))
            if backstop:
                fail("%s: the threshold alert fired for a steady 60 %%: %s" % (name, row["backstop"]))
            continue
        low, high = SHAPE[name]
        if fail_at is None:
            fail("%s: the client never got EADDRNOTAVAIL" % name)
            continue
        if not low <= fail_at <= high:
            fail("%s: first EADDRNOTAVAIL at +%.1f s, outside the scenario's %d-%d s: the machine did not "
                 "produce the load (see load-%s.log)" % (name, fail_at, low, high, name))
        first = min(rel.values()) if rel else None
        if first is None or first >= fail_at:
            fail("%s: the forecast alert did not fire before EADDRNOTAVAIL at +%.1f s (fired: %s)"
                 % (name, fail_at, rel))
        if name == "step" and first is not None and first < STEP_AT:
            fail("step: the forecast alert fired at +%.1f s, before the step (steady 20 %%)" % first)
        if expect == "early":
            w = rel.get("warning")
            if w is None or fail_at - w < EARLY_ENOUGH:
                fail("%s: the warning fired %s, not at least %d s before EADDRNOTAVAIL at +%.1f s"
                     % (name, "at +%.1f s" % w if w is not None else "never", EARLY_ENOUGH, fail_at))
    # What the exporter saw, for the record.
    step_fail = next((r["eaddrnotavail"] for r in rows if r["case"] == "step"), None)
    seen = {
        "step closes/s at +%d s (client: 60/s)" % (STEP_AT + 15): value_at(
            prom, 'max(sockdiag_destination_closes_per_second{case="step", remote_port="3306"})', go + STEP_AT + 15),
        "step forecast at +%d s, s" % (STEP_AT + 15): value_at(
            prom, 'min(sockdiag_destination_ephemeral_port_exhaustion_seconds{case="step", remote_port="3306"})',
            go + STEP_AT + 15),
        "step failure at +%s s" % ("%.1f" % step_fail if step_fail else "?"): None,
        "leak growth/s at +200 s (client: 7.2/s)": value_at(
            prom, 'max(sockdiag_destination_connection_growth_per_second{case="leak", remote_port="8080"})', go + 200),
        "leak forecast at +200 s, s": value_at(
            prom, 'min(sockdiag_destination_ephemeral_port_exhaustion_seconds{case="leak", remote_port="8080"})',
            go + 200),
        "steady forecast min over the run, s": value_at(
            prom, 'min(min_over_time(sockdiag_destination_ephemeral_port_exhaustion_seconds{case="steady", '
                  'remote_port="5432"}[%ds]))' % int(time.time() - go), time.time()),
        "steady steady-state utilization at the end": value_at(
            prom, 'max(sockdiag_destination_ephemeral_port_steady_utilization{case="steady"})', time.time()),
    }

    def fmt(d):
        return ", ".join("%s +%.1f s" % (k, v) for k, v in sorted(d.items())) or "-"
    log("\ncase    EADDRNOTAVAIL  forecast alert firing (lead)                 pending              threshold alert")
    for row in rows:
        f = row["eaddrnotavail"]
        fired = ", ".join("%s +%.1f s (%s)" % (k, v, "%.1f s early" % (f - v) if f else "-")
                          for k, v in sorted(row["fired"].items())) or "-"
        log("%-7s %-14s %-44s %-20s %s" % (row["case"], "+%.1f s" % f if f else "-", fired,
                                          fmt(row["pending"]), fmt(row["backstop"])))
    log("")
    for k, v in seen.items():
        log("        %s: %s" % (k, "%.2f" % v if v is not None else ("-" if "failure" not in k else "")))
    return not failures


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
