"""Reads the monitoring artefacts (dashboards/*.json, dashboards/alerts.yaml)
for the checks in tests/e2e: panel and variable queries with Grafana's
variables substituted, alert rules, and the allowlist of names not served yet.

Pure functions on files; no validation of its own beyond what it needs to
extract (promtool, Prometheus and the JSON schema do the validating).
"""
import json
import os
import re
from dataclasses import dataclass

import yaml

# Values substituted for Grafana's variables when a query leaves Grafana.
# Dashboard variables match everything; time variables get fixed durations.
GRAFANA_BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}
DASHBOARD_VARIABLE_VALUE = ".+"

VARIABLE_RE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
LABEL_VALUES_RE = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)


@dataclass
class Query:
    dashboard: str  # file name, e.g. "overview.json"
    where: str      # "panel 3 \"TCP sockets by state\" A" or "variable instance"
    raw: str        # as written in the dashboard
    expr: str       # PromQL, variables substituted


def load_dashboards(directory):
    """[(file name, parsed JSON)] for every dashboards/*.json, sorted."""
    out = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            with open(os.path.join(directory, name)) as f:
                out.append((name, json.load(f)))
    return out


def iter_panels(panels):
    """Every panel, rows' nested panels included (rows themselves too)."""
    for p in panels or []:
        yield p
        yield from iter_panels(p.get("panels"))


def substitute(expr, variables):
    """Replaces $var / ${var}. Raises ValueError on a variable that is neither
    a dashboard variable nor a Grafana built-in. "$1" (label_replace) is kept."""
    def repl(m):
        name = m.group(1) or m.group(2)
        if name.isdigit():
            return m.group(0)
        if name in GRAFANA_BUILTINS:
            return GRAFANA_BUILTINS[name]
        if name in variables:
            return DASHBOARD_VARIABLE_VALUE
        raise ValueError("undefined variable $" + name)
    return VARIABLE_RE.sub(repl, expr)


def variable_names(dash):
    return {v["name"] for v in dash.get("templating", {}).get("list", [])}


def dashboard_queries(name, dash):
    """Every panel target's expr and every query variable, as PromQL."""
    names = variable_names(dash)
    out = []
    for p in iter_panels(dash.get("panels")):
        for t in p.get("targets", []):
            if "expr" not in t:
                continue
            where = 'panel %s "%s" %s' % (p.get("id"), p.get("title", ""), t.get("refId", "?"))
            out.append(Query(name, where, t["expr"], substitute(t["expr"], names)))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query", "")
        m = LABEL_VALUES_RE.match(q or "")
        if not m:
            raise ValueError("%s: variable %s: expected label_values(selector, label), got %r"
                             % (name, v["name"], q))
        expr = "count by (%s) (%s)" % (m.group(2), m.group(1))
        out.append(Query(name, "variable " + v["name"], q, substitute(expr, names)))
    return out


def all_dashboard_queries(directory):
    out = []
    for name, dash in load_dashboards(directory):
        out += dashboard_queries(name, dash)
    return out


@dataclass
class Alert:
    name: str
    severity: str
    expr: str
    rule: dict
    group: str


def load_alerts(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    out = []
    for g in doc.get("groups", []):
        for r in g.get("rules", []):
            if "alert" in r:
                out.append(Alert(r["alert"], r.get("labels", {}).get("severity", ""),
                                 r["expr"], r, g["name"]))
    return out


def load_pending(path):
    """Names in the allowlist file: one per line, '#' starts a comment."""
    names = []
    if not os.path.exists(path):
        return names
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line)
    return names


def pending_names_in(expr, pending):
    """The allowlisted names an expression mentions (whole words)."""
    return [n for n in pending if re.search(r"(?<![\w:])" + re.escape(n) + r"(?![\w:])", expr)]
