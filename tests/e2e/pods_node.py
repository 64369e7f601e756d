#!/usr/bin/env python3
"""A Kubernetes node in miniature, for an exporter in --netns.mode=pods:
run as PID 1 of a new PID namespace with its own /proc
(`unshare -p -f --kill-child=SIGTERM --mount-proc pods_node.py SPEC`), so that
the exporter discovers exactly the pods started here and no namespace of
anything else running on the machine.

SPEC is JSON: {"pods": [{"uid": UID, "load": [ARGV...]}, ...],
               "exporter": [ARGV...]}
Each pod is a FakePod (a kubepods cgroup and a new network namespace) running
its load (port_load.py, whose "ready" line is awaited); then the exporter is
started in the current network namespace (the node's). Prints one line
"READY" once both are up, and stops everything (and removes the cgroups) when
stdin closes or on SIGTERM. Exits non-zero with a one-line reason when a pod
or the exporter cannot start.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_support import FakePod, Processes, hold_until_stdin_closes  # noqa: E402


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: pods_node.py SPEC_JSON")
    spec = json.loads(sys.argv[1])
    procs, pods = Processes(), []
    # PID 1 ignores signals it has no handler for.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        for p in spec["pods"]:
            pod = FakePod(p["uid"])
            pods.append(pod)
            proc = procs.start("pod " + p["uid"], pod.command(p["load"]), None,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            if '"ready"' not in proc.stdout.readline():
                sys.exit("pods_node: pod %s load did not get ready (exit %s)" % (p["uid"], proc.poll()))
        exporter = procs.start("exporter", spec["exporter"], None)
        time.sleep(0.5)
        if exporter.poll() is not None:
            sys.exit("pods_node: exporter exited with %s" % exporter.returncode)
        print("READY", flush=True)
        hold_until_stdin_closes(1200)
    finally:
        procs.stop_all()
        for pod in pods:
            pod.cleanup()


if __name__ == "__main__":
    main()
