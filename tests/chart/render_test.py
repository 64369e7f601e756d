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
            src = key
            if not os.path.exists(os.path.join(REPO, "dashboards", key)) and key.startswith("sockdiag-"):
                src = key[len("sockdiag-"):]
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
                 namespace=namespace, check=check_kps_discovery)


# ------------------------------------------------------------ defects
def deep_merge(a, b):
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def null_overrides():
    """Defect 1: null for a list or map default is Helm's way to drop it. It
    must render (and validate), or be refused by the schema because the key
    is required; never crash a template."""
    for path, value in walk_values(DEFAULTS):
        if not isinstance(value, (list, dict)):
            continue
        dotted = ".".join(path)
        monitor = "podMonitor" if dotted.startswith("prometheus.podMonitor") else "monitor"
        base = {"prometheus": {monitor: {"enabled": True}}, "prometheusRule": {"enabled": True},
                "dashboards": {"enabled": True}}
        values = deep_merge(base, nested(path, None))
        name = "null overrides " + dotted
        if required_at(path):
            scenario(name, values=values, fails_with="%s is required" % path[-1])
        else:
            scenario(name, values=values)


def check_names_fit(r):
    names = [(o["kind"], o["metadata"]["name"]) for o in r.objs]
    expect(len(set(names)) == len(names), "duplicate names: %s" % names)
    for kind, name in names:
        expect(len(name) <= 63 and re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name),
               "%s name %r is not a DNS label of at most 63 characters" % (kind, name))


def long_release_names():
    """Defect 2: Helm allows 53-character release names; every object name
    must stay unique and a DNS label (the dashboard ConfigMaps collided)."""
    everything = {"prometheus": {"monitor": {"enabled": True}}, "prometheusRule": {"enabled": True},
                  "dashboards": {"enabled": True}}
    for release in ("platform-observability-prod-eu-west-1-sockdiag",
                    "a" * 53, "x" * 40 + "-sockdiag-exporter"[:13]):
        scenario("%d-character release name %s" % (len(release), release), values=everything,
                 release=release, check=check_names_fit)


def large_integers():
    """Defect 3: values files give float64; every integer must render as an
    integer (1000000 printed as 1e+06 is refused by the API server)."""
    values = {}
    for path, value in walk_values(DEFAULTS):
        if isinstance(value, int) and not isinstance(value, bool):
            big = min(schema_at(path).get("maximum", 2000000000), 2000000000)
            values = deep_merge(values, nested(path, big))
    values = deep_merge(values, {"netns": {"mode": "pods"}})
    for monitor in ("monitor", "podMonitor"):
        v = deep_merge(values, {"prometheus": {monitor: {"enabled": True}}})

        def check(r, monitor=monitor):
            no_float_numbers(r)
            kind = "ServiceMonitor" if monitor == "monitor" else "PodMonitor"
            expect(r.one(kind)["spec"]["sampleLimit"] == 2000000000, "sampleLimit lost")
            expect(r.one("DaemonSet")["spec"]["revisionHistoryLimit"] == 2000000000, "revisionHistoryLimit lost")
            notes = open(r.path[:-len(".yaml")] + ".notes.txt").read()
            expect(not re.search(r"\de\+\d", notes), "NOTES.txt prints a number as a float: " + notes)
        scenario("largest integers (%s)" % monitor, values=v, check=check)


def check_dashboard_keys(r):
    """Defect 4: Grafana's sidecar writes every key of every labelled
    ConfigMap into one folder: keys must not be generic."""
    for cm in r.of("ConfigMap"):
        if DASHBOARD_LABEL in (cm["metadata"].get("labels") or {}):
            for key in cm["data"]:
                expect(key.startswith("sockdiag-"), "dashboard key %s is generic (another chart's "
                       "%s overwrites it in Grafana's sidecar folder)" % (key, key))
    check_dashboards_equal_sources(r)


def rule_group_keys():
    """Defect 5: group-level keys of the rules files (limit, interval, ...)
    must reach the PrometheusRule, not be dropped."""
    chart = os.path.join(WORK, "chart-group-keys")
    shutil.rmtree(chart, ignore_errors=True)
    shutil.copytree(CHART, chart)
    sources = []
    for p in sorted(glob.glob(os.path.join(chart, "files", "**", "*.yaml"), recursive=True)):
        doc = yaml.safe_load(open(p))
        if isinstance(doc, dict) and "groups" in doc:
            for g in doc["groups"]:
                g["limit"] = 100
                g["interval"] = "30s"
            with open(p, "w") as f:
                yaml.safe_dump(doc, f, sort_keys=False)
            sources += doc["groups"]

    def check(r):
        got = r.one("PrometheusRule")["spec"]["groups"]
        for g in got:
            expect(g.get("limit") == 100 and g.get("interval") == "30s",
                   "group %s lost its group-level keys: %s" % (g["name"], sorted(g)))
        expect(got == sources, "rendered groups differ from the rules files")
    scenario("rule group keys kept", values={"prometheusRule": {"enabled": True}}, chart=chart, check=check)


def rules_options():
    """Every rules file of files/rules is picked up; disabled, labels and
    runbook links apply as documented."""
    chart = os.path.join(WORK, "chart-extra-rules")
    shutil.rmtree(chart, ignore_errors=True)
    shutil.copytree(CHART, chart)
    extra = {"groups": [{"name": "fixture-recording", "interval": "1m", "rules": [
        {"record": "fixture:sockdiag_tcp_sockets:sum", "expr": "sum by (state) (sockdiag_tcp_sockets)"}]}]}
    with open(os.path.join(chart, "files", "rules", "zz-recording.yaml"), "w") as f:
        yaml.safe_dump(extra, f)
    some_alert = next(r["alert"] for g in source_rule_groups() for r in g["rules"] if "alert" in r)
    values = {"prometheusRule": {"enabled": True, "disabled": [some_alert], "additionalRuleLabels": {"team": "platform"},
                                 "runbookBaseURL": "https://git.example.com/sockdiag/raw/v0.1.0/"}}

    def check(r):
        groups = r.one("PrometheusRule")["spec"]["groups"]
        rules = [x for g in groups for x in g["rules"]]
        expect(groups[-1] == extra["groups"][0], "the extra rules file's group is missing or changed: %s" % groups[-1])
        expect(all(x.get("alert") != some_alert for x in rules), "disabled alert %s still there" % some_alert)
        for x in rules:
            if "alert" in x:
                expect(x["labels"].get("team") == "platform", "alert %s lacks the added label" % x["alert"])
                url = x.get("annotations", {}).get("runbook_url", "")
                expect(not url or url.startswith("https://git.example.com/sockdiag/raw/v0.1.0/docs/"),
                       "runbook_url %s not prefixed" % url)
    scenario("rules: extra file, disabled, labels, runbook links", values=values, chart=chart, check=check)
    scenario("rules: a disabled name that is no rule is refused",
             values={"prometheusRule": {"enabled": True, "disabled": ["SockdiagNoSuchAlert"]}},
             fails_with="SockdiagNoSuchAlert is no alert or recording rule")
    dup = {"groups": [{"name": source_rule_groups()[0]["name"], "rules": extra["groups"][0]["rules"]}]}
    with open(os.path.join(chart, "files", "rules", "zz-recording.yaml"), "w") as f:
        yaml.safe_dump(dup, f)
    scenario("rules: one group name in two files is refused", values={"prometheusRule": {"enabled": True}},
             chart=chart, fails_with="is in two rules files")


EXCLUSIONS = DEFAULTS["nodeAffinityExclusions"]


def scheduling():
    """Fargate and virtual-kubelet nodes excluded by default, in every node
    selector term of a user affinity too; no maxSurge with hostNetwork."""
    def terms(r):
        return r.pod()["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    scenario("scheduling: Fargate and virtual-kubelet excluded by default",
             check=lambda r: expect(terms(r) == [{"matchExpressions": EXCLUSIONS}], "terms %s" % terms(r)))
    user = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["a"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [{"key": "x", "operator": "Exists"}]}}]}}

    def check_merged(r):
        t = terms(r)
        expect(t[0]["matchExpressions"] == user["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
               ["nodeSelectorTerms"][0]["matchExpressions"] + EXCLUSIONS, "term 0: %s" % t[0])
        expect(t[1]["matchExpressions"] == EXCLUSIONS and "matchFields" in t[1], "term 1: %s" % t[1])
        expect(r.pod()["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] ==
               user["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"], "preferred terms lost")
    scenario("scheduling: exclusions ANDed into every user node selector term",
             values={"affinity": user, "priorityClassName": "system-node-critical"},
             check=lambda r: (check_merged(r), expect(r.pod()["priorityClassName"] == "system-node-critical", "priority")))
    scenario("scheduling: exclusions dropped", values={"nodeAffinityExclusions": []},
             check=lambda r: expect("affinity" not in r.pod(), "affinity %s" % r.pod().get("affinity")))
    scenario("scheduling: maxUnavailable as a percentage",
             values={"updateStrategy": {"rollingUpdate": {"maxUnavailable": "20%"}}},
             check=lambda r: expect(r.one("DaemonSet")["spec"]["updateStrategy"]["rollingUpdate"] ==
                                    {"maxUnavailable": "20%"}, "updateStrategy"))
    scenario("scheduling: maxSurge with hostNetwork refused",
             values={"updateStrategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}},
             fails_with="stays Pending")
    scenario("scheduling: OnDelete", values={"updateStrategy": {"type": "OnDelete", "rollingUpdate": None}},
             check=lambda r: expect(r.one("DaemonSet")["spec"]["updateStrategy"] == {"type": "OnDelete"}, "strategy"))


def deploy_matches_chart():
    """deploy/*.yaml is what the chart renders by default (release
    sockdiag-exporter in monitoring), labels aside."""
    def strip_labels(o):
        tpl = o.get("spec", {}).get("template", {}).get("metadata")
        if tpl:
            tpl.pop("labels", None)
        return o

    def compare(r, deploy_file):
        for plain in yaml.safe_load_all(open(os.path.join(REPO, "deploy", deploy_file))):
            if not plain:
                continue
            plain = strip_labels(plain)
            mine = [o for o in r.objs if o["kind"] == plain["kind"]]
            expect(len(mine) == 1, "the chart renders no single %s" % plain["kind"])
            for key in set(plain) | set(mine[0]):
                if key in ("metadata",):
                    continue
                expect(plain.get(key) == mine[0].get(key), "deploy/%s %s: %s differs from the chart's" %
                       (deploy_file, plain["kind"], key))
            for meta in ("name", "namespace", "annotations"):
                expect(plain["metadata"].get(meta) == mine[0]["metadata"].get(meta),
                       "deploy/%s %s: metadata.%s differs" % (deploy_file, plain["kind"], meta))

    def check_ds(r):
        r.objs = [strip_labels(o) for o in r.objs]
        compare(r, "daemonset.yaml")
    scenario("deploy/daemonset.yaml is the chart's default", check=check_ds)
    scenario("deploy/servicemonitor.yaml is the chart's ServiceMonitor",
             values={"prometheus": {"monitor": {"enabled": True}}},
             check=lambda r: compare(type("R", (), {"objs": r.of("ServiceMonitor")})(), "servicemonitor.yaml"))


BCRYPT = "$2y$10$" + "a" * 53
TLS_CONFIG = {"tls_server_config": {"cert_file": "/etc/sockdiag/tls/tls.crt", "key_file": "/etc/sockdiag/tls/tls.key"}}


def probes(r):
    c = r.container()
    return c["livenessProbe"], c["readinessProbe"]


def check_web_mounts(r, secret_name, items=None):
    c, pod = r.container(), r.pod()
    expect("--web.config.file=/etc/sockdiag/web/web-config.yml" in c["args"], "no --web.config.file: %s" % c["args"])
    vols = {v["name"]: v for v in pod["volumes"]}
    want = {"secretName": secret_name, "defaultMode": 0o440}
    if items:
        want["items"] = items
    expect(vols["web-config"]["secret"] == want, "web-config volume %s" % vols["web-config"])
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    expect(mounts["web-config"] == {"name": "web-config", "mountPath": "/etc/sockdiag/web", "readOnly": True},
           "web-config mount %s" % mounts["web-config"])


def secured_scrapes():
    """The web config reaches the exporter; probes, monitors follow it."""
    fullname = RELEASE

    def check_tls(r):
        secret = r.one("Secret")
        expect(secret["metadata"]["name"] == fullname + "-web-config", "secret name")
        import base64
        expect(yaml.safe_load(base64.b64decode(secret["data"]["web-config.yml"])) == TLS_CONFIG, "secret content")
        check_web_mounts(r, fullname + "-web-config")
        vols = {v["name"]: v for v in r.pod()["volumes"]}
        expect(vols["tls"]["secret"] == {"secretName": "sockdiag-tls", "defaultMode": 0o440}, "tls volume")
        live, ready = probes(r)
        expect(live["httpGet"] == {"path": "/-/healthy", "port": "metrics", "scheme": "HTTPS"}, "liveness %s" % live)
        expect(ready["httpGet"] == {"path": "/-/ready", "port": "metrics", "scheme": "HTTPS"}, "readiness %s" % ready)
        ep = r.one("ServiceMonitor")["spec"]["endpoints"][0]
        expect(ep["scheme"] == "https", "scheme %s" % ep["scheme"])
        expect(ep["tlsConfig"] == {"ca": {"secret": {"name": "sockdiag-tls", "key": "ca.crt"}},
                                   "serverName": "%s.%s.svc" % (fullname, NAMESPACE)}, "tlsConfig %s" % ep["tlsConfig"])
        expect("checksum/web-config" in r.one("DaemonSet")["spec"]["template"]["metadata"]["annotations"],
               "no checksum annotation: a new web config would not restart the exporter")
    tls = {"web": {"config": TLS_CONFIG, "tlsSecret": "sockdiag-tls"}, "prometheus": {"monitor": {"enabled": True}}}
    scenario("web: TLS from a cert-manager Secret, probes and ServiceMonitor on HTTPS", values=tls, check=check_tls)

    def check_nonroot(r):
        expect(r.pod()["securityContext"].get("fsGroup") == 65534 and r.pod()["securityContext"]["runAsUser"] == 65534,
               "non-root with Secrets needs fsGroup to read 0440 files: %s" % r.pod()["securityContext"])
    scenario("web: TLS without any capability runs non-root with fsGroup",
             values=deep_merge(tls, {"conntrack": {"enabled": False}}), check=check_nonroot)

    basic = deep_merge(tls, {"web": {"config": {"basic_auth_users": {"prometheus": BCRYPT}}}})
    scenario("web: basic auth without monitor credentials refused", values=basic,
             fails_with="prometheus.monitor.basicAuth: the exporter asks for a password")
    creds = {"username": {"name": "sockdiag-scrape", "key": "username"},
             "password": {"name": "sockdiag-scrape", "key": "password"}}
    basic = deep_merge(basic, {"prometheus": {"monitor": {"basicAuth": creds}}})

    def check_basic(r):
        live, ready = probes(r)
        expect(ready["httpGet"]["path"] == "/-/healthy" and ready["httpGet"]["scheme"] == "HTTPS",
               "readiness under basic auth must use the open /-/healthy: %s" % ready)
        expect(r.one("ServiceMonitor")["spec"]["endpoints"][0]["basicAuth"] == creds, "basicAuth")
    scenario("web: basic auth, readiness on /-/healthy, ServiceMonitor basicAuth", values=basic, check=check_basic)
    headers = [{"name": "Authorization", "value": "Basic cHJvbWV0aGV1czpzZWNyZXQ="}]
    scenario("web: basic auth with probe headers keeps /-/ready",
             values=deep_merge(basic, {"readinessProbe": {"httpHeaders": headers}}),
             check=lambda r: expect(probes(r)[1]["httpGet"]["path"] == "/-/ready" and
                                    probes(r)[1]["httpGet"]["httpHeaders"] == headers and
                                    "httpHeaders" not in probes(r)[1], "readiness %s" % probes(r)[1]))

    mtls = deep_merge(tls, {"web": {"config": {"tls_server_config": {
        "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": "/etc/sockdiag/client-ca/ca.crt"}},
        "extraSecretMounts": [{"name": "client-ca", "secretName": "prometheus-client-ca",
                               "mountPath": "/etc/sockdiag/client-ca"}]}})
    scenario("web: mTLS without a client certificate for Prometheus refused", values=mtls,
             fails_with="requires client certificates")
    client = {"ca": {"secret": {"name": "sockdiag-tls", "key": "ca.crt"}}, "serverName": "sockdiag.example",
              "cert": {"secret": {"name": "prometheus-client", "key": "tls.crt"}},
              "keySecret": {"name": "prometheus-client", "key": "tls.key"}}
    mtls = deep_merge(mtls, {"prometheus": {"monitor": {"tlsConfig": client}}})

    def check_mtls(r):
        live, ready = probes(r)
        expect(live.get("tcpSocket") == {"port": "metrics"} and ready.get("tcpSocket") == {"port": "metrics"},
               "kubelet has no client certificate: probes must be TCP: %s %s" % (live, ready))
        expect(r.one("ServiceMonitor")["spec"]["endpoints"][0]["tlsConfig"] == client, "tlsConfig")
        mounts = {m["name"]: m for m in r.container()["volumeMounts"]}
        expect(mounts["client-ca"]["mountPath"] == "/etc/sockdiag/client-ca" and mounts["client-ca"]["readOnly"],
               "client CA mount")
    scenario("web: mTLS, TCP probes, ServiceMonitor with a client certificate", values=mtls, check=check_mtls)

    existing = {"web": {"existingSecret": "my-web-config", "existingSecretKey": "web.yml", "tls": True,
                        "tlsSecret": "sockdiag-tls"},
                "prometheus": {"podMonitor": {"enabled": True}}}

    def check_existing(r):
        expect(not r.of("Secret"), "the chart must not create the Secret with existingSecret")
        check_web_mounts(r, "my-web-config", [{"key": "web.yml", "path": "web-config.yml"}])
        ep = r.one("PodMonitor")["spec"]["podMetricsEndpoints"][0]
        expect(ep["scheme"] == "https" and ep["tlsConfig"]["ca"]["secret"]["name"] == "sockdiag-tls", "endpoint %s" % ep)
        expect(probes(r)[0]["httpGet"]["scheme"] == "HTTPS", "probe scheme")
    scenario("web: existing Secret, PodMonitor on HTTPS", values=existing, check=check_existing)

    scenario("web: scheme http against a TLS exporter refused",
             values=deep_merge(tls, {"prometheus": {"monitor": {"scheme": "http"}}}), fails_with="use https")
    scenario("web: scheme https against plain HTTP refused",
             values={"prometheus": {"monitor": {"enabled": True, "scheme": "https"}}}, fails_with="serves plain HTTP")
    scenario("web: TLS monitor in another namespace needs its own tlsConfig",
             values=deep_merge(tls, {"prometheus": {"monitor": {"namespace": "prometheus"}}}),
             fails_with="prometheus.monitor.tlsConfig: the exporter serves TLS")
    scenario("web: a web config key exporter-toolkit does not know refused",
             values={"web": {"config": {"tls_config": {}}}}, fails_with="Additional property tls_config")


def ipv6():
    """:PORT serves IPv4 and IPv6; node-IP listening brackets an IPv6
    primary; the Service takes the cluster's families."""
    def check_dual(r):
        svc = r.one("Service")["spec"]
        expect(svc["ipFamilyPolicy"] == "PreferDualStack" and svc["ipFamilies"] == ["IPv6", "IPv4"], "service %s" % svc)
        expect("--web.listen-address=:10061" in r.container()["args"], "args %s" % r.container()["args"])
    scenario("IPv6: dual-stack Service, IPv6 first; every address", values={
        "service": {"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv6", "IPv4"]}}, check=check_dual)
    scenario("IPv6: node IP only, IPv6 primary, in brackets", values={
        "service": {"listenOnAllInterfaces": False, "ipFamilies": ["IPv6"]}},
        check=lambda r: expect("--web.listen-address=[$(HOST_IP)]:10061" in r.container()["args"],
                               "args %s" % r.container()["args"]))
    scenario("IPv6: node IP only, IPv4 primary", values={"service": {"listenOnAllInterfaces": False}},
             check=lambda r: expect("--web.listen-address=$(HOST_IP):10061" in r.container()["args"],
                                    "args %s" % r.container()["args"]))


def caps_of(r):
    return r.container()["securityContext"]["capabilities"].get("add", [])


def main():
    build = run([os.path.join(TOOLS, "chart-render", "build.sh"), RENDERER])
    if build.returncode != 0:
        print("FAIL building chart-render: " + (build.stdout + build.stderr).strip())
        return 1
    npm = run([os.path.join(TOOLS, "npm-ci.sh")])
    if npm.returncode != 0:
        print("FAIL npm ci in tools/: " + (npm.stdout + npm.stderr).strip())
        return 1
    shutil.rmtree(OUT, ignore_errors=True)

    ci_scenarios()
    install_command_scenarios()
    scenario("rules and dashboards equal their sources",
             values={"prometheusRule": {"enabled": True}, "dashboards": {"enabled": True}},
             check=lambda r: (check_rules_equal_sources(r), check_dashboards_equal_sources(r)))

    null_overrides()
    long_release_names()
    large_integers()
    scenario("dashboard keys prefixed", values={"dashboards": {"enabled": True}}, check=check_dashboard_keys)
    rule_group_keys()
    rules_options()
    scheduling()
    deploy_matches_chart()
    secured_scrapes()
    ipv6()
    # Defect 6: a ServiceMonitor and a PodMonitor scrape every exporter twice
    # into one job (sums double): refused.
    scenario("ServiceMonitor and PodMonitor together refused",
             values={"prometheus": {"monitor": {"enabled": True}, "podMonitor": {"enabled": True}}},
             fails_with="scrape every exporter twice")
    # Defect 7: no feature needs NET_RAW (the exporter itself reports it as
    # unneeded): the chart must not produce it; a privileged port needs
    # NET_BIND_SERVICE, which the chart derives like the other capabilities.
    scenario("extraCapabilities NET_RAW refused", values={"extraCapabilities": ["NET_RAW"]},
             fails_with="extraCapabilities")
    scenario("privileged port gets NET_BIND_SERVICE", values={"service": {"port": 80, "targetPort": 80}},
             check=lambda r: expect(caps_of(r) == ["NET_ADMIN", "NET_BIND_SERVICE"], "caps %s" % caps_of(r)))
    scenario("privileged port, conntrack off: uid 0 with NET_BIND_SERVICE only",
             values={"service": {"targetPort": 443}, "conntrack": {"enabled": False}},
             check=lambda r: expect(caps_of(r) == ["NET_BIND_SERVICE"] and
                                    r.pod()["securityContext"]["runAsUser"] == 0, "caps %s" % caps_of(r)))

    # Defect 11: CNI-pinned namespaces in /run/netns are seen only if the
    # host directory is mounted (HostToContainer: later bind mounts appear).
    def check_run_dir(r):
        c, pod = r.container(), r.pod()
        mounts = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/run/netns"]
        expect(len(mounts) == 1, "no /run/netns mount: --netns.run-dir finds nothing")
        m = mounts[0]
        expect(m.get("readOnly") is True and m.get("mountPropagation") == "HostToContainer",
               "the /run/netns mount must be read-only with HostToContainer propagation: %s" % m)
        vol = [v for v in pod["volumes"] if v["name"] == m["name"]][0]
        expect(vol.get("hostPath", {}).get("path") == "/run/netns", "volume %s" % vol)
        expect("--netns.run-dir=/run/netns" in c["args"], "args %s" % c["args"])
    scenario("pods mode mounts the host's /run/netns", values={"netns": {"mode": "pods"}}, check=check_run_dir)
    scenario("self mode mounts nothing", check=lambda r: expect(
        not r.pod().get("volumes") and not any(a.startswith("--netns.run-dir") for a in r.container()["args"]),
        "self mode must mount no host path"))

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
