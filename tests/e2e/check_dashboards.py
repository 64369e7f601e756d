#!/usr/bin/env python3
"""Static checks of dashboards/*.json (no Prometheus needed):

1. JSON schema: a schema generated from @grafana/schema's Dashboard type
   (ts-json-schema-generator, strict: unknown keys are errors) validates every
   dashboard with ajv. A deliberately broken copy must be rejected, so the
   check itself is proven to bite.
2. Conventions: fixed unique uids; a `datasource` variable of type prometheus
   and no hard-coded datasource uid anywhere; `job`/`instance` (and `pod` on
   the pods dashboard) query variables from label_values(); every panel has a
   description, a unit and targets; every range is [$__rate_interval]; every
   sockdiag_* selector carries the job and instance matchers (recorded
   series of the `remote` levels, which have no instance, the job matcher);
   every recorded series used is defined in dashboards/recording-rules.yaml,
   and the Fleet dashboard reads recorded series only; no undefined
   variables.
3. PromQL: every panel and variable query, variables substituted, becomes a
   recording rule; `promtool check rules` must accept the file (and must
   reject a broken expression).

usage: check_dashboards.py REPO_DIR WORK_DIR
"""
import copy
import json
import os
import re
import subprocess
import sys

import yaml

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import monitoring_lib as ml  # noqa: E402

EXPECTED = {"overview.json": "sockdiag-overview",
            "destinations.json": "sockdiag-destinations",
            "pods.json": "sockdiag-pods",
            "fleet.json": "sockdiag-fleet"}
# Recording-rule levels whose series carry no instance label (summed across
# nodes): their selectors need the job matcher only.
FLEET_WIDE_LEVELS = ("remote", "remote_protocol")
DS_REF = {"type": "prometheus", "uid": "${datasource}"}
BUILTIN_ANNOTATION_DS = {"type": "grafana", "uid": "-- Grafana --"}

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg)


def run(cmd, cwd=None):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


# ------------------------------------------------------------------ schema
def check_schema(repo, work, dashboards):
    tools = os.path.join(repo, "tools")
    r = run([os.path.join(tools, "npm-ci.sh")])
    if r.returncode != 0:
        fail("npm ci in tools/: " + (r.stderr or r.stdout).strip())
        return
    schema = os.path.join(work, "dashboard.schema.json")
    types = os.path.join(tools, "node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts")
    r = run([os.path.join(tools, "node_modules/.bin/ts-json-schema-generator"), "--path", types,
             "--type", "Dashboard", "--no-type-check", "-o", schema], cwd=tools)
    if r.returncode != 0:
        fail("ts-json-schema-generator: " + (r.stderr or r.stdout).strip())
        return
    ajv = os.path.join(tools, "node_modules/.bin/ajv")

    def validate(path):
        return run([ajv, "validate", "--spec=draft7", "-c", "ajv-formats", "-s", schema, "-d", path,
                    "--all-errors", "--errors=text"], cwd=tools)

    for name, _ in dashboards:
        r = validate(os.path.join(repo, "dashboards", name))
        if r.returncode != 0:
            fail("schema: %s: %s" % (name, (r.stderr or r.stdout).strip()[:2000]))
        else:
            print("ok   schema: " + name)

    # The validator must bite: a misspelled panel key, a string width and a
    # missing threshold value are each errors.
    broken = copy.deepcopy(dashboards[0][1])
    panel = next(p for p in ml.iter_panels(broken["panels"]) if p.get("type") != "row")
    panel["titel"] = panel.pop("title")
    panel["gridPos"]["w"] = "12"
    del panel["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["value"]
    path = os.path.join(work, "broken-dashboard.json")
    with open(path, "w") as f:
        json.dump(broken, f)
    r = validate(path)
    out = r.stdout + r.stderr
    expected = ("must NOT have additional properties", "gridPos/w must be number",
                "must have required property 'value'")
    if r.returncode == 0 or not all(e in out for e in expected):
        fail("schema: a broken dashboard was not rejected as expected: " + out.strip()[:1000])
    else:
        print("ok   schema rejects a broken dashboard")


# ------------------------------------------------------------- conventions
def walk(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield path + "/" + k, k, v
            yield from walk(v, path + "/" + k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, "%s/%d" % (path, i))


SELECTOR_RE = re.compile(r"(?<![\w:])((?:[a-z_]+:)?sockdiag_\w+(?::\w+)?)\s*(\{[^}]*\})?")


def recorded_names(repo):
    path = os.path.join(repo, "dashboards", "recording-rules.yaml")
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        doc = yaml.safe_load(f)
    return {r["record"] for g in doc.get("groups", []) for r in g.get("rules", []) if "record" in r}


def check_selector(pw, dashboard, metric, sel, recorded):
    level = metric.split(":")[0] if ":" in metric else None
    if level is not None and metric not in recorded:
        fail("%s: %s is not recorded by dashboards/recording-rules.yaml" % (pw, metric))
    if dashboard == "fleet.json" and level is None:
        fail("%s: %s: the Fleet dashboard reads recorded series only" % (pw, metric))
    if 'job=~"$job"' not in sel:
        fail("%s: %s needs job=~\"$job\"" % (pw, metric))
    if level not in FLEET_WIDE_LEVELS and 'instance=~"$instance"' not in sel:
        fail("%s: %s needs instance=~\"$instance\"" % (pw, metric))
    if (dashboard == "pods.json" and not metric.startswith("sockdiag_netns_")
            and 'pod_uid=~"$pod"' not in sel):
        fail("%s: %s needs pod_uid=~\"$pod\"" % (pw, metric))


def check_conventions(dashboards, recorded):
    seen_uids = {}
    names = [n for n, _ in dashboards]
    for name in EXPECTED:
        if name not in names:
            fail("conventions: dashboards/%s is missing" % name)
    for name, d in dashboards:
        where = "conventions: " + name
        uid = d.get("uid")
        if not uid or not re.fullmatch(r"[a-z0-9-]{1,40}", uid):
            fail("%s: uid %r must be fixed, short, lowercase" % (where, uid))
        if name in EXPECTED and uid != EXPECTED[name]:
            fail("%s: uid %r, expected %r" % (where, uid, EXPECTED[name]))
        if uid in seen_uids:
            fail("%s: uid %r also used by %s" % (where, uid, seen_uids[uid]))
        seen_uids[uid] = name
        if d.get("id") is not None:
            fail("%s: id must be null (Grafana assigns it)" % where)

        variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
        ds = variables.get("datasource")
        if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            fail("%s: needs a variable `datasource` of type datasource, query prometheus" % where)
        wanted = ["job", "instance"] + (["pod"] if name == "pods.json" else [])
        for v in wanted:
            var = variables.get(v)
            if (not var or var.get("type") != "query" or
                    not str(var.get("query", "")).startswith("label_values(") or
                    var.get("datasource") != DS_REF):
                fail("%s: needs a query variable `%s` from label_values() on ${datasource}" % (where, v))

        for path, key, value in walk(d):
            if key != "datasource":
                continue
            if isinstance(value, dict):
                if value not in (DS_REF, BUILTIN_ANNOTATION_DS) and path != "/templating/list/0/datasource":
                    fail("%s: %s: hard-coded datasource %s" % (where, path, json.dumps(value)))
            elif isinstance(value, str) and value not in ("${datasource}", "$datasource"):
                fail("%s: %s: hard-coded datasource %r" % (where, path, value))

        ids = set()
        for p in ml.iter_panels(d.get("panels")):
            pid = p.get("id")
            pw = "%s: panel %s %r" % (where, pid, p.get("title"))
            if pid in ids:
                fail(pw + ": duplicate id")
            ids.add(pid)
            g = p.get("gridPos", {})
            if g.get("x", 0) + g.get("w", 0) > 24:
                fail(pw + ": wider than the 24-column grid")
            if p.get("type") == "row":
                continue
            if len(p.get("description", "")) < 40:
                fail(pw + ": needs a description that says what to do")
            if not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
                fail(pw + ": needs a unit")
            if p.get("datasource") != DS_REF:
                fail(pw + ": datasource must be ${datasource}")
            targets = p.get("targets") or []
            if not targets:
                fail(pw + ": no targets")
            refs = [t.get("refId") for t in targets]
            if len(set(refs)) != len(refs):
                fail(pw + ": duplicate refId")
            for t in targets:
                expr = t.get("expr", "")
                if not expr.strip():
                    fail(pw + ": empty expr")
                for rng in re.findall(r"\[([^\]]*)\]", expr):
                    if rng != "$__rate_interval":
                        fail("%s: range [%s], use [$__rate_interval]" % (pw, rng))
                for metric, sel in SELECTOR_RE.findall(expr):
                    check_selector(pw, name, metric, sel, recorded)
        try:
            ml.dashboard_queries(name, d)
        except ValueError as e:
            fail("%s: %s" % (where, e))
    if not any(f.startswith("conventions") for f in failures):
        print("ok   conventions: %d dashboards" % len(dashboards))


# ------------------------------------------------------------------ PromQL
def record_name(dashboard, i):
    return "dashboard:%s:query%d" % (re.sub(r"\W", "_", dashboard.replace(".json", "")), i)


def check_promql(repo, work):
    try:
        queries = ml.all_dashboard_queries(os.path.join(repo, "dashboards"))
    except ValueError as e:
        fail("promql: %s" % e)
        return
    groups = {}
    for i, q in enumerate(queries):
        groups.setdefault(q.dashboard, []).append({"record": record_name(q.dashboard, i), "expr": q.expr})
    doc = {"groups": [{"name": "dashboard_" + k.replace(".json", ""), "rules": v}
                      for k, v in groups.items()]}
    path = os.path.join(work, "dashboard_queries.rules.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False, width=1000)
    r = run(["promtool", "check", "rules", path])
    if r.returncode != 0:
        fail("promtool check rules (dashboard queries, %s): %s" % (path, (r.stdout + r.stderr).strip()))
    else:
        print("ok   promtool check rules: %d dashboard queries" % len(queries))
    # promtool must reject a broken query written the same way.
    bad = {"groups": [{"name": "broken", "rules": [{"record": "dashboard:broken:query0",
                                                     "expr": "sum by (state (sockdiag_tcp_sockets)"}]}]}
    bad_path = os.path.join(work, "broken.rules.yaml")
    with open(bad_path, "w") as f:
        yaml.safe_dump(bad, f)
    if run(["promtool", "check", "rules", bad_path]).returncode == 0:
        fail("promtool accepted a broken query")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_dashboards.py REPO_DIR WORK_DIR")
    repo, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    os.makedirs(work, exist_ok=True)
    dashboards = ml.load_dashboards(os.path.join(repo, "dashboards"))
    if not dashboards:
        sys.exit("no dashboards in %s/dashboards" % repo)
    check_schema(repo, work, dashboards)
    check_conventions(dashboards, recorded_names(repo))
    check_promql(repo, work)
    print("%d failed" % len(failures) if failures else "dashboards: all checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
