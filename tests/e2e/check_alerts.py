#!/usr/bin/env python3
"""Checks dashboards/alerts.yaml and dashboards/recording-rules.yaml without a
server:

1. `promtool check rules` accepts it.
2. Every alert has `for:`, a severity (warning|critical), summary,
   description and runbook_url = docs/runbooks/<alert>.md, which exists;
   every runbook belongs to an alert.
3. `promtool test rules` passes on every alert test file
   (tests/rules/*_test.yaml whose rule_files load alerts.yaml).
4. Coverage of those files together: every (alert, severity) fires in some
   test case, and for the earliest firing of each alert identity there is an
   evaluation one interval earlier where that identity does not fire yet
   (the `for:` boundary). Threshold-boundary inputs are reviewed by hand
   (the test files comment them).
5. Recording rules: `promtool check rules` accepts them; every record name
   follows level:metric:operation with a sockdiag_ metric; no alert lives
   there and no record in alerts.yaml; `promtool test rules` passes on every
   test file that loads them, and every record name is tested (a
   promql_expr_test whose expression mentions it).

usage: check_alerts.py REPO_DIR
"""
import os
import re
import subprocess
import sys

import yaml

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import monitoring_lib as ml  # noqa: E402

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg)


def duration_seconds(s):
    """Prometheus durations as promtool test files write them: 90s, 5m, 1m30s, 1h."""
    parts = re.findall(r"(\d+)([smh])", str(s))
    if not parts or "".join(n + u for n, u in parts) != str(s):
        raise ValueError("unsupported duration %r" % s)
    return sum(int(n) * {"s": 1, "m": 60, "h": 3600}[u] for n, u in parts)


def show(seconds):
    return "%dm%02ds" % divmod(seconds, 60) if seconds % 60 else "%dm" % (seconds // 60)


def check_lint(repo, alerts):
    runbooks = os.path.join(repo, "docs", "runbooks")
    names = set()
    for a in alerts:
        w = "%s (%s)" % (a.name, a.severity or "no severity")
        names.add(a.name)
        if "for" not in a.rule:
            fail(w + ": needs for:")
        if a.severity not in ("warning", "critical"):
            fail(w + ": severity must be warning or critical")
        ann = a.rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not str(ann.get(key, "")).strip():
                fail("%s: needs annotation %s" % (w, key))
        want = "docs/runbooks/%s.md" % a.name
        if ann.get("runbook_url") != want:
            fail("%s: runbook_url must be %s" % (w, want))
        elif not os.path.isfile(os.path.join(repo, want)):
            fail("%s: %s does not exist" % (w, want))
    if os.path.isdir(runbooks):
        for f in sorted(os.listdir(runbooks)):
            if f.endswith(".md") and f[:-3] not in names:
                fail("docs/runbooks/%s belongs to no alert" % f)
    print("ok   lint: %d alerting rules, %d alerts" % (len(alerts), len(names))
          if not failures else "lint done")


def identity(labels):
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def check_coverage(test_paths, alerts):
    fired = set()  # (alertname, severity)
    names_tested = set()
    for test_path in test_paths:
        with open(test_path) as f:
            doc = yaml.safe_load(f)
        eval_seconds = duration_seconds(doc.get("evaluation_interval", "1m"))
        for group in doc.get("tests", []):
            # alertname -> {eval second -> set of identities firing}
            timeline = {}
            for t in group.get("alert_rule_test", []):
                names_tested.add(t["alertname"])
                at = duration_seconds(t["eval_time"])
                ids = set()
                for e in t.get("exp_alerts") or []:
                    labels = e.get("exp_labels", {})
                    fired.add((t["alertname"], labels.get("severity", "")))
                    ids.add(identity(labels))
                timeline.setdefault(t["alertname"], {})[at] = ids
            for name, by_time in timeline.items():
                first = {}
                for at in sorted(by_time):
                    for i in by_time[at]:
                        first.setdefault(i, at)
                for i, at in first.items():
                    before = at - eval_seconds
                    if before not in by_time or i in by_time[before]:
                        fail("%s: %s: test %r: %s first fires at %s; add an evaluation at %s where it "
                             "does not fire yet (the for: boundary)"
                             % (os.path.basename(test_path), name, group.get("name"), dict(i),
                                show(at), show(before)))
    for a in alerts:
        if (a.name, a.severity) not in fired:
            fail("%s (%s): no test case where it fires" % (a.name, a.severity))
    for a in alerts:
        if a.name not in names_tested:
            fail("%s: not tested" % a.name)
    print("ok   coverage: every alert and severity fires, with its for: boundary"
          if not any("boundary" in f or "fires" in f or "tested" in f for f in failures) else "coverage done")


def test_files(repo, rules_name):
    """tests/rules/*_test.yaml that load dashboards/<rules_name>."""
    out = []
    tests = os.path.join(repo, "tests", "rules")
    for name in sorted(os.listdir(tests)):
        if not name.endswith("_test.yaml"):
            continue
        path = os.path.join(tests, name)
        with open(path) as f:
            doc = yaml.safe_load(f)
        if any(os.path.basename(r) == rules_name for r in doc.get("rule_files", [])):
            out.append(path)
    return out


def promtool_test(paths):
    for path in paths:
        r = subprocess.run(["promtool", "test", "rules", path], capture_output=True, text=True)
        if r.returncode != 0:
            fail("promtool test rules %s:\n%s" % (os.path.basename(path), (r.stdout + r.stderr).strip()))
        else:
            print("ok   promtool test rules " + os.path.basename(path))


RECORD_NAME_RE = re.compile(r"[a-z][a-z_]*:sockdiag_[a-z0-9_]+:[a-z0-9_]+")


def check_recording_rules(repo, alerts_path):
    path = os.path.join(repo, "dashboards", "recording-rules.yaml")
    r = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
    if r.returncode != 0:
        fail("promtool check rules recording-rules.yaml: " + (r.stdout + r.stderr).strip())
        return
    print("ok   promtool check rules recording-rules.yaml: " + r.stdout.strip().splitlines()[-1].strip())
    with open(path) as f:
        doc = yaml.safe_load(f)
    records = []
    for g in doc.get("groups", []):
        for rule in g.get("rules", []):
            if "alert" in rule:
                fail("recording-rules.yaml: alert %s belongs in alerts.yaml" % rule["alert"])
            elif not RECORD_NAME_RE.fullmatch(rule.get("record", "")):
                fail("recording-rules.yaml: %r is not level:sockdiag_metric:operation" % rule.get("record"))
            else:
                records.append(rule["record"])
    with open(alerts_path) as f:
        for g in yaml.safe_load(f).get("groups", []):
            for rule in g.get("rules", []):
                if "record" in rule:
                    fail("alerts.yaml: record %s belongs in recording-rules.yaml" % rule["record"])
    tests = test_files(repo, "recording-rules.yaml")
    if not tests:
        fail("no tests/rules/*_test.yaml loads dashboards/recording-rules.yaml")
    promtool_test(tests)
    tested = ""
    for t in tests:
        with open(t) as f:
            for group in yaml.safe_load(f).get("tests", []):
                tested += " ".join(e["expr"] for e in group.get("promql_expr_test", [])) + " "
    untested = [n for n in records if not re.search(r"(?<![\w:])" + re.escape(n) + r"(?![\w:])", tested)]
    for n in untested:
        fail("recording rule %s: no promql_expr_test evaluates it" % n)
    if not untested:
        print("ok   recording rules: %d, every one tested" % len(records))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_alerts.py REPO_DIR")
    repo = os.path.abspath(sys.argv[1])
    rules = os.path.join(repo, "dashboards", "alerts.yaml")
    r = subprocess.run(["promtool", "check", "rules", rules], capture_output=True, text=True)
    if r.returncode != 0:
        fail("promtool check rules: " + (r.stdout + r.stderr).strip())
    else:
        print("ok   promtool check rules: " + r.stdout.strip().splitlines()[-1].strip())
    alerts = ml.load_alerts(rules)
    check_lint(repo, alerts)
    tests = test_files(repo, "alerts.yaml")
    if not tests:
        fail("no tests/rules/*_test.yaml loads dashboards/alerts.yaml")
    promtool_test(tests)
    check_coverage(tests, alerts)
    check_recording_rules(repo, rules)
    print("%d failed" % len(failures) if failures else "alerts and recording rules: all checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
