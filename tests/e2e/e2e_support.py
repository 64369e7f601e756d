"""Shared by the end-to-end tests in tests/e2e: the children a test starts
(stopped by handle at exit), a small client for Prometheus's HTTP API,
waiting with a deadline, network namespaces joined by veth pairs, and fake
Kubernetes pods (a kubepods cgroup and a network namespace of their own).

Failure behaviour: die() ends the test with a one-line reason; API errors
that Prometheus reports as JSON (400/422) come back as its JSON.
"""
import json
import os
import random
import select
import shutil
import subprocess
import sys
import time
import uuid
import urllib.error
import urllib.parse
import urllib.request


def log(msg):
    print(msg, flush=True)


def die(msg):
    log("FATAL   " + msg)
    raise SystemExit(1)


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, pred, timeout, every=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except (OSError, ValueError):
            pass
        time.sleep(every)
    die("timed out after %ds waiting for %s" % (timeout, what))


class Prometheus:
    """The HTTP API of a Prometheus at base_url (e.g. http://127.0.0.1:9090)."""

    def __init__(self, base_url):
        self.base = base_url

    def api(self, path, **params):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            return json.loads(http_get(url, timeout=10))
        except urllib.error.HTTPError as e:  # 400/422 carry a JSON error body
            return json.loads(e.read().decode())

    def query(self, expr, **params):
        """(result, None) or (None, error text)."""
        r = self.api("/api/v1/query", query=expr, **params)
        if r.get("status") != "success":
            return None, r.get("error", "no error text")
        return r["data"]["result"], None


class Processes:
    """Children started by the test, stopped (by handle) at exit: stdin
    closed, SIGTERM, SIGKILL after 5 s."""

    def __init__(self):
        self.procs = []

    def start(self, name, cmd, log_dir, stdin=None, stdout=None):
        """stderr (and stdout unless given) go to LOG_DIR/NAME.log, or are
        inherited when log_dir is None."""
        err = open(os.path.join(log_dir, name + ".log"), "w") if log_dir else None
        p = subprocess.Popen(cmd, stdin=stdin, stdout=stdout or err, stderr=err, text=True)
        self.procs.append((name, p, err))
        return p

    def stop_all(self):
        for name, p, err in reversed(self.procs):
            if p.poll() is None:
                if p.stdin:
                    p.stdin.close()
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if err:
                err.close()


def clean_up(procs, work, ok):
    """Stops the children; removes WORK after a pass, keeps it (and says
    where) after a failure."""
    procs.stop_all()
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        log("logs kept in " + work)


def require_private_netns(tools):
    """Refuses to run in a namespace with interfaces other than lo (the
    tests change sysctls and add links), checks the tools, brings lo up."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    if [line.split(":")[1].strip() for line in links.splitlines()] != ["lo"]:
        die("refusing to run in a namespace with interfaces other than lo: run under `unshare -n`")
    for tool in tools:
        if not shutil.which(tool):
            die("%s is missing (scripts/install-deps.sh installs it)" % tool)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def start_prometheus(procs, work, config_text, listen="127.0.0.1:9090"):
    """Writes WORK/prometheus.yml, has promtool check it, starts Prometheus
    (data in WORK/data, log WORK/prometheus.log) and returns its process."""
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as f:
        f.write(config_text)
    r = subprocess.run(["promtool", "check", "config", config], capture_output=True, text=True)
    if r.returncode != 0:
        die("promtool check config: " + r.stdout + r.stderr)
    return procs.start("prometheus", ["prometheus", "--config.file=" + config,
                                      "--storage.tsdb.path=" + os.path.join(work, "data"),
                                      "--web.listen-address=" + listen], work)


def serve_kube_pod_info(procs, work, pods, addr):
    """A kube-state-metrics stand-in on ADDR serving kube_pod_info for PODS,
    [(uid, namespace, name, node)]; scrape it with honor_labels."""
    directory = os.path.join(work, "ksm")
    os.mkdir(directory)
    with open(os.path.join(directory, "metrics"), "w") as f:
        f.write("# HELP kube_pod_info Information about pod.\n# TYPE kube_pod_info gauge\n")
        for uid, namespace, name, node in pods:
            f.write('kube_pod_info{namespace="%s",pod="%s",uid="%s",node="%s",created_by_kind="ReplicaSet",'
                    'priority_class="",host_network="false"} 1\n' % (namespace, name, uid, node))
    host, port = addr.rsplit(":", 1)
    return procs.start("ksm", [sys.executable, "-m", "http.server", "--bind", host, "--directory", directory,
                               port], work)


def hold_until_stdin_closes(seconds):
    """For the population scripts: returns when the driver closes our stdin,
    or after SECONDS at most."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r, _, _ = select.select([sys.stdin], [], [], 1.0)
        if r and sys.stdin.read(1) == "":
            return


class NetnsLab:
    """Network namespaces below the test's own private one, each joined to it
    by a veth pair: the parent side gets 10.254.K.1/24, the child side (eth0)
    10.254.K.2/24, K = 1, 2, ... in order of add(). A namespace lives as long
    as its holder process (`unshare -n sleep`), which Processes stops; its
    veth goes with it. Nothing is named in /var/run/netns, so exporters of
    other tests on the machine never see these namespaces.

    Only for a test that already runs in a private namespace (`unshare -n`):
    it adds links to the current one."""

    def __init__(self, procs, log_dir):
        self.procs, self.log_dir = procs, log_dir
        self.children = []

    def add(self, name):
        k = len(self.children) + 1
        holder = self.procs.start("netns-" + name, ["unshare", "-n", "sleep", "3600"], self.log_dir)
        own = os.readlink("/proc/self/ns/net")
        path = "/proc/%d/ns/net" % holder.pid
        wait_for("namespace of " + name, lambda: os.readlink(path) != own, 10, every=0.02)
        child = Netns(name, holder.pid, "10.254.%d.1" % k, "10.254.%d.2" % k)
        parent_if = "sdv%d" % k
        run(["ip", "link", "add", parent_if, "type", "veth", "peer", "name", "eth0", "netns", str(holder.pid)])
        run(["ip", "addr", "add", child.parent_addr + "/24", "dev", parent_if])
        run(["ip", "link", "set", parent_if, "up"])
        run(child.cmd(["ip", "addr", "add", child.addr + "/24", "dev", "eth0"]))
        run(child.cmd(["ip", "link", "set", "eth0", "up"]))
        run(child.cmd(["ip", "link", "set", "lo", "up"]))
        self.children.append(child)
        return child


class Netns:
    def __init__(self, name, pid, parent_addr, addr):
        self.name, self.pid, self.parent_addr, self.addr = name, pid, parent_addr, addr

    def cmd(self, argv):
        """argv run inside this namespace (nsenter execs it: same pid)."""
        return ["nsenter", "--net=/proc/%d/ns/net" % self.pid] + list(argv)


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        die("%s: %s" % (" ".join(argv), (r.stderr or r.stdout).strip()))
    return r.stdout


class FakePod:
    """A process in a kubepods cgroup (systemd driver, containerd layout) in
    its own network namespace: what pods mode discovers on a real node.
    cleanup() removes the cgroup directories it made (once empty)."""

    def __init__(self, uid=None):
        self.uid = uid or str(uuid.uuid4())
        container = "%064x" % random.getrandbits(256)
        rel = ["kubepods.slice", "kubepods-besteffort.slice",
               "kubepods-besteffort-pod%s.slice" % self.uid.replace("-", "_"),
               "cri-containerd-%s.scope" % container]
        self.roots = []
        with open("/proc/self/mounts") as f:
            for line in f:
                dev, mnt, fstype, opts = line.split()[:4]
                if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in opts.split(",")):
                    self.roots.append(mnt)
        if not self.roots:
            die("no cgroup2 or name=systemd hierarchy mounted")
        self.dirs = []
        for root in self.roots:
            path = root
            for part in rel:
                path = os.path.join(path, part)
                if not os.path.isdir(path):
                    os.mkdir(path)
                    self.dirs.append(path)
        self.leaves = [os.path.join(root, *rel) for root in self.roots]

    def command(self, argv):
        """argv run in the pod's cgroup, in a new network namespace."""
        joins = "; ".join("echo $$ > %s/cgroup.procs" % leaf for leaf in self.leaves)
        return ["sh", "-c", joins + '; exec unshare -n "$@"', "sh"] + list(argv)

    def cleanup(self):
        for path in reversed(self.dirs):
            try:
                os.rmdir(path)
            except OSError:
                pass  # shared parent still in use, or a process not yet gone
