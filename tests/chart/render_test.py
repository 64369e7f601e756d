#!/usr/bin/env python3
"""Renders the Helm chart and validates what comes out, without helm.

tools/chart-render (Go, built from Debian's packages of Helm's own
libraries; it stands in for `helm template`) renders helm/sockdiag-exporter
in every scenario below. Then:

* each scenario's own assertions run on the parsed objects (a scenario may
  instead expect the render to fail, with a given message);
* every rendered manifest goes through tools/check-k8s-manifests.mjs
  --strict: the Kubernetes and Prometheus Operator schemas with unknown
  fields rejected, integers written as integers, unique names, and the
  privilege policy of docs/kubernetes.md;
* every rendered PrometheusRule's groups pass `promtool check rules`;
* every rendered dashboard ConfigMap holds each dashboards/*.json exactly
  once, JSON-equal to the source; with the rule defaults the rendered groups
  equal the groups of every rules file in dashboards/ (*.yaml).

Scenarios: every ci/*-values.yaml; the install commands of README.md, the
chart README and docs/kubernetes.md; a 53-character release name; null for
every list and map default of values.yaml; the largest integer the schema
allows for every integer value; and one per defect or feature.

usage: render_test.py REPO_DIR WORK_DIR
Prints one line per check and "N passed, N failed"; exit 1 on a failure.
"""
import copy
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import yaml

sys.dont_write_bytecode = True

REPO = os.path.abspath(sys.argv[1])
WORK = os.path.abspath(sys.argv[2])
CHART = os.path.join(REPO, "helm", "sockdiag-exporter")
TOOLS = os.path.join(REPO, "tools")
RENDERER = os.path.join(WORK, "bin", "chart-render")
OUT = os.path.join(WORK, "out")
DEFAULTS = yaml.safe_load(open(os.path.join(CHART, "values.yaml")))
SCHEMA = json.load(open(os.path.join(CHART, "values.schema.json")))
DASHBOARD_LABEL = DEFAULTS["dashboards"]["label"]
RELEASE, NAMESPACE = "sockdiag-exporter", "monitoring"

passed, failed = 0, 0


def report(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL %s: %s" % (name, detail))


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------- rendering
class Render:
    def __init__(self, name, rc, out, err, path):
        self.name, self.rc, self.out, self.err, self.path = name, rc, out, err, path
        self.objs = [o for o in yaml.safe_load_all(out) if o] if rc == 0 else []

    def of(self, kind):
        return [o for o in self.objs if o.get("kind") == kind]

    def one(self, kind):
        found = self.of(kind)
        if len(found) != 1:
            raise AssertionError("want one %s, got %d" % (kind, len(found)))
        return found[0]

    def container(self):
        return self.one("DaemonSet")["spec"]["template"]["spec"]["containers"][0]

    def pod(self):
        return self.one("DaemonSet")["spec"]["template"]["spec"]


def render(name, args=(), values=None, release=RELEASE, namespace=NAMESPACE, chart=CHART):
    os.makedirs(OUT, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", name)
    argv = [RENDERER, release, chart, "-n", namespace, "--strict-yaml",
            "--notes", os.path.join(OUT, slug + ".notes.txt")]
    if values is not None:
        vpath = os.path.join(OUT, slug + ".values.yaml")
        with open(vpath, "w") as f:
            yaml.safe_dump(values, f)
        argv += ["-f", vpath]
    argv += list(args)
    r = run(argv)
    path = os.path.join(OUT, slug + ".yaml")
    with open(path, "w") as f:
        f.write(r.stdout)
    return Render(name, r.returncode, r.stdout, r.stderr.strip(), path)


RENDERED = []  # successful renders, validated together at the end


def scenario(name, args=(), values=None, check=None, fails_with=None, **kw):
    """Renders; checks the objects (check returns nothing or raises), or
    that the render fails with a message containing fails_with."""
    r = render(name, args, values, **kw)
    if fails_with is not None:
        ok = r.rc != 0 and fails_with in r.err
        report(ok, name, "want a failure containing %r, got rc=%d: %s" % (fails_with, r.rc, r.err[:800]))
        return r
    if r.rc != 0:
        report(False, name, r.err[:1500])
        return r
    RENDERED.append(r)
    try:
        if check:
            check(r)
        report(True, name)
    except (AssertionError, KeyError, IndexError, TypeError) as e:
        report(False, name, "%s: %s" % (type(e).__name__, e))
    return r


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


# ------------------------------------------------------ values enumeration
def walk_values(node, path=()):
    """(path, value) of every key of values.yaml, not descending into lists."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield path + (k,), v
            yield from walk_values(v, path + (k,))


def nested(path, value):
    out = value
    for k in reversed(path):
        out = {k: out}
    return out


def schema_at(path):
    s = SCHEMA
    for k in path:
        s = (s.get("properties") or {}).get(k) or {}
    return s


def required_at(path):
    parent = SCHEMA
    for k in path[:-1]:
        parent = (parent.get("properties") or {}).get(k) or {}
    return path[-1] in parent.get("required", [])


FLOAT_NOTATION = re.compile(r"^[-+]?\d+(\.\d+)?[eE][-+]?\d+$")


def no_float_numbers(r):
    def walk(n, where):
        if isinstance(n, dict):
            for k, v in n.items():
                walk(v, where + "/" + str(k))
        elif isinstance(n, list):
            for i, v in enumerate(n):
                walk(v, "%s/%d" % (where, i))
        elif isinstance(n, float) or (isinstance(n, str) and FLOAT_NOTATION.match(n)):
            raise AssertionError("%s is %r, not an integer" % (where, n))
    for o in r.objs:
        walk(o, "%s/%s" % (o["kind"], o["metadata"]["name"]))


# ------------------------------------------------------- generic checks
def source_dashboards():
    return {os.path.basename(p): json.load(open(p))
            for p in sorted(glob.glob(os.path.join(REPO, "dashboards", "*.json")))}


def source_rule_groups():
    groups = []
    for p in sorted(glob.glob(os.path.join(REPO, "dashboards", "*.yaml"))):
        groups += (yaml.safe_load(open(p)) or {}).get("groups") or []
    return groups


def dashboards_of(r):
    """{source file name: JSON} from the dashboard ConfigMaps of a render."""
    out = {}
    for cm in r.of("ConfigMap"):
        if cm["metadata"].get("labels", {}).get(DASHBOARD_LABEL) is None:
            continue
        for key, text in (cm.get("data") or {}).items():
            src = key[len("sockdiag-"):] if key.startswith("sockdiag-") else key
            if src in out:
                raise AssertionError("dashboard %s is in two ConfigMaps" % src)
            out[src] = json.loads(text)
    return out


def check_dashboards_equal_sources(r):
    got, want = dashboards_of(r), source_dashboards()
    expect(sorted(got) == sorted(want), "dashboards %s, want every dashboards/*.json: %s" % (sorted(got), sorted(want)))
    for name in want:
        expect(got[name] == want[name], "dashboard %s differs from dashboards/%s" % (name, name))


def check_rules_equal_sources(r):
    rule = r.one("PrometheusRule")
    want = source_rule_groups()
    expect(rule["spec"]["groups"] == want,
           "PrometheusRule groups differ from dashboards/*.yaml (first group names: %s vs %s)"
           % ([g["name"] for g in rule["spec"]["groups"]][:5], [g["name"] for g in want][:5]))


def promtool_rules(r):
    problems = []
    for rule in r.of("PrometheusRule"):
        path = r.path[:-len(".yaml")] + ".%s.rules.yaml" % rule["metadata"]["name"]
        with open(path, "w") as f:
            yaml.safe_dump(rule["spec"], f)
        p = run(["promtool", "check", "rules", path])
        if p.returncode != 0:
            problems.append("promtool check rules: " + (p.stdout + p.stderr).strip()[:800])
    return problems


# ---------------------------------------------------------------- scenarios
def ci_scenarios():
    files = sorted(glob.glob(os.path.join(CHART, "ci", "*-values.yaml")))
    expect(files, "no ci/*-values.yaml")
    for path in files:
        name = "ci/" + os.path.basename(path)
        scenario(name, ["-f", path])


def readme_install_commands():
    """Every `helm install` command in the READMEs and docs/kubernetes.md."""
    cmds = {}
    for doc in ("README.md", "helm/sockdiag-exporter/README.md", "docs/kubernetes.md"):
        text = open(os.path.join(REPO, doc)).read()
        for block in re.findall(r"```(?:sh|bash|shell)?\n(.*?)```", text, re.S):
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                line = line.split(" #", 1)[0].strip()
                if line.startswith("helm install") or line.startswith("helm upgrade --install"):
                    cmds.setdefault(line, []).append(doc)
    return cmds


def parse_install(cmd):
    words = shlex.split(cmd)
    words = words[2:] if words[1] == "install" else words[3:]
    positional, args, namespace = [], [], "default"
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("-n", "--namespace"):
            namespace = words[i + 1]
            i += 2
            continue
        if w in ("--set", "--set-string", "-f", "--values"):
            args += [w, words[i + 1]]
            i += 2
            continue
        if w.startswith("--set=") or w.startswith("--set-string="):
            args.append(w)
        elif w in ("--create-namespace", "--wait", "--atomic"):
            pass
        elif w.startswith("-"):
            raise AssertionError("install command uses %s, which the test does not know" % w)
        else:
            positional.append(w)
        i += 1
    release, chart = positional
    expect(os.path.normpath(os.path.join(REPO, chart)) == CHART, "install command installs %s" % chart)
    return release, namespace, args


# What a kube-prometheus-stack installed with its defaults selects (its
# values.yaml: prometheus.prometheusSpec.{serviceMonitor,podMonitor,rule}
# SelectorNilUsesHelmValues: true, which templates/prometheus/prometheus.yaml
# turns into matchLabels {release: <its release name>} with an empty
# namespace selector; grafana.sidecar.dashboards: label grafana_dashboard,
# labelValue "1", searchNamespace ALL). "kube-prometheus-stack" is the
# release name its README installs it as.
KPS_RELEASE = "kube-prometheus-stack"


def check_kps_discovery(r):
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        for o in r.of(kind):
            expect(o["metadata"].get("labels", {}).get("release") == KPS_RELEASE,
                   "%s has no label release=%s: a default kube-prometheus-stack ignores it" % (kind, KPS_RELEASE))
    expect(r.of("ServiceMonitor") or r.of("PodMonitor"), "no ServiceMonitor or PodMonitor")
    expect(r.of("PrometheusRule"), "no PrometheusRule")
    for cm in r.of("ConfigMap"):
        if "dashboards" in cm["metadata"]["name"] or DASHBOARD_LABEL in cm["metadata"].get("labels", {}):
            expect(cm["metadata"]["labels"].get("grafana_dashboard") == "1",
                   "dashboard ConfigMap %s lacks grafana_dashboard: \"1\"" % cm["metadata"]["name"])


def install_command_scenarios():
    cmds = readme_install_commands()
    expect(cmds, "no helm install command in the docs")
    for i, (cmd, docs) in enumerate(sorted(cmds.items())):
        release, namespace, args = parse_install(cmd)
        scenario("install command %d (%s)" % (i + 1, ", ".join(docs)), args, release=release,
                 namespace=namespace)


def main():
    build = run([os.path.join(TOOLS, "chart-render", "build.sh"), RENDERER])
    if build.returncode != 0:
        print("FAIL building chart-render: " + (build.stdout + build.stderr).strip())
        return 1
    shutil.rmtree(OUT, ignore_errors=True)

    ci_scenarios()
    install_command_scenarios()
    scenario("rules and dashboards equal their sources",
             values={"prometheusRule": {"enabled": True}, "dashboards": {"enabled": True}},
             check=lambda r: (check_rules_equal_sources(r), check_dashboards_equal_sources(r)))

    # Everything rendered, validated together (one schema generation).
    files = [r.path for r in RENDERED if r.objs]
    p = run(["node", os.path.join(TOOLS, "check-k8s-manifests.mjs"), "--strict"] + files)
    problems = [line for line in p.stdout.splitlines() if line.startswith("/")]
    for r in RENDERED:
        mine = [x for x in problems if x.startswith(r.path + ":")] + promtool_rules(r)
        if r.of(("ConfigMap")) and any(DASHBOARD_LABEL in (c["metadata"].get("labels") or {}) for c in r.of("ConfigMap")):
            try:
                got = dashboards_of(r)
                for name, d in got.items():
                    src = os.path.join(REPO, "dashboards", name)
                    expect(os.path.exists(src), "dashboard %s has no source" % name)
                    expect(d == json.load(open(src)), "dashboard %s differs from its source" % name)
            except AssertionError as e:
                mine.append(str(e))
        report(not mine, "validated: " + r.name, "; ".join(m.replace(r.path + ": ", "") for m in mine)[:3000])
    if p.returncode != 0 and not problems:
        report(False, "check-k8s-manifests.mjs --strict", (p.stdout + p.stderr).strip()[-2000:])

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
