#!/usr/bin/env bash
# Records what the kernel answers the conntrack and conntrack_table
# collectors in one poll (--debug.dump-netlink), in a private network
# namespace holding a known conntrack population:
#   TCP  127.0.0.1:8080  3 ESTABLISHED, 2 TIME_WAIT (client closed first)
#   TCP  [::1]:8081      2 ESTABLISHED
#   TCP  10.213.1.1 -> 10.213.0.2:8080 (a second namespace behind a veth),
#        masqueraded to 10.213.0.1: 3 ESTABLISHED with SNAT
#   UDP  127.0.0.1:5353  2 flows
#   ICMP 127.0.0.1       1 echo
# plus 5 TCP packets with SYN and FIN set, which conntrack counts as invalid.
# and writes tests/data/netlink/ctnetlink_stats_recording.bin (GET_STATS and
# GET_STATS_CPU, the conntrack collector's socket) and
# ctnetlink_table_recording.bin (the table dump, conntrack_table's socket).
#
#   tests/golden/record_ctnetlink.sh build/dev/src/sockdiag_exporter
#
# Needs root, nft and python3. Everything lives in two namespaces named
# sdrec-*-PID that are deleted on exit. See tests/golden/README.md.
set -euo pipefail
exporter=$(realpath "$1")
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$repo/tests/data/netlink
local_ns=sdrec-local-$$
remote_ns=sdrec-remote-$$
work=$(mktemp -d /tmp/sdrec-XXXXXX)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$local_ns" 2>/dev/null || true
  ip netns del "$remote_ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

in_local() { ip netns exec "$local_ns" "$@"; }
in_remote() { ip netns exec "$remote_ns" "$@"; }

ip netns add "$local_ns"
ip netns add "$remote_ns"
in_local ip link set lo up
in_remote ip link set lo up
ip link add sdrec0 netns "$local_ns" type veth peer name sdrec1 netns "$remote_ns"
in_local ip addr add 10.213.0.1/24 dev sdrec0
in_local ip link set sdrec0 up
in_local ip addr add 10.213.1.1/32 dev lo
in_remote ip addr add 10.213.0.2/24 dev sdrec1
in_remote ip link set sdrec1 up
in_remote ip route add 10.213.1.0/24 via 10.213.0.1

# Track every new flow but the exporter's own port; masquerade the "pod"
# address out of the veth, as a node does for pod egress.
in_local nft -f - <<'NFT'
table inet sdrec {
  chain raw_out {
    type filter hook output priority raw;
    tcp dport 10061 notrack
    tcp sport 10061 notrack
  }
  chain raw_pre {
    type filter hook prerouting priority raw;
    tcp dport 10061 notrack
    tcp sport 10061 notrack
  }
  chain out {
    type filter hook output priority filter;
    ct state new counter
  }
}
table ip sdrec_nat {
  chain post {
    type nat hook postrouting priority srcnat;
    ip saddr 10.213.1.1 oifname "sdrec0" masquerade
  }
}
NFT

# Started with `ip netns exec` itself (not a function): $! is then the
# process, which ip execs.
ip netns exec "$remote_ns" python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.213.0.2", 8080)); s.listen(64)
print("ready", flush=True); time.sleep(120)' > "$work/remote.out" &
pids+=($!)
for _ in $(seq 50); do grep -q ready "$work/remote.out" 2>/dev/null && break; sleep 0.1; done

ip netns exec "$local_ns" python3 -c '
import socket, struct, time
keep = []
def listener(family, addr):
    s = socket.socket(family); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr); s.listen(64); keep.append(s); return s
def connect(family, to, src=None):
    c = socket.socket(family)
    if src: c.bind((src, 0))
    c.connect(to); return c
l4 = listener(socket.AF_INET, ("127.0.0.1", 8080))
l6 = listener(socket.AF_INET6, ("::1", 8081))
for _ in range(3):
    keep.append(connect(socket.AF_INET, ("127.0.0.1", 8080))); keep.append(l4.accept()[0])
for _ in range(2):
    keep.append(connect(socket.AF_INET6, ("::1", 8081))); keep.append(l6.accept()[0])
for _ in range(2):  # Client closes first: its end, and the entry, go TIME_WAIT.
    c = connect(socket.AF_INET, ("127.0.0.1", 8080)); a = l4.accept()[0]
    c.close(); time.sleep(0.05); a.close()
for _ in range(3):
    keep.append(connect(socket.AF_INET, ("10.213.0.2", 8080), "10.213.1.1"))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 5353)); keep.append(u)
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"x", ("127.0.0.1", 5353)); keep.append(s)
icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
body = struct.pack("!BBHHH", 8, 0, 0, 0x5344, 1)
csum = sum(struct.unpack("!4H", body)); csum = (csum & 0xffff) + (csum >> 16); csum = ~csum & 0xffff
icmp.sendto(struct.pack("!BBHHH", 8, 0, csum, 0x5344, 1), ("127.0.0.1", 0)); keep.append(icmp)
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
for _ in range(5):  # SYN and FIN together: conntrack counts each as invalid.
    raw.sendto(struct.pack("!HHIIBBHHH", 4000, 4001, 0, 0, 5 << 4, 0x03, 0, 0, 0), ("127.0.0.1", 0))
time.sleep(0.2)
print("ready", flush=True); time.sleep(120)' > "$work/local.out" &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$work/local.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/local.out" || { echo "population not ready" >&2; exit 1; }

echo "conntrack table of the recording namespace:" >&2
in_local conntrack -L 2>/dev/null | sed 's/^/  /' >&2

mkdir "$work/dump"
ip netns exec "$local_ns" "$exporter" --web.listen-address=127.0.0.1:10061 --poll.interval=1h \
  --collector.disable-defaults --collector.conntrack --collector.conntrack_table \
  --debug.dump-netlink="$work/dump" 2> "$work/exporter.log" &
exporter_pid=$!
pids+=($exporter_pid)
ready=0
for _ in $(seq 100); do
  if in_local curl -sf http://127.0.0.1:10061/-/ready >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.1
done
[ "$ready" = 1 ] || { cat "$work/exporter.log" >&2; echo "exporter not ready" >&2; exit 1; }
kill "$exporter_pid"
wait "$exporter_pid" 2>/dev/null || true

# netlink-<bus>-<n>.bin, n in open order: the conntrack collector opens
# first (registry order), conntrack_table second.
files=$(cd "$work/dump" && ls netlink-12-*.bin | sort -t- -k3 -n)
[ "$(echo "$files" | wc -l)" = 2 ] || { echo "expected two NETLINK_NETFILTER recordings: $files" >&2; exit 1; }
cp "$work/dump/$(echo "$files" | sed -n 1p)" "$out/ctnetlink_stats_recording.bin"
cp "$work/dump/$(echo "$files" | sed -n 2p)" "$out/ctnetlink_table_recording.bin"
ls -l "$out"/ctnetlink_*_recording.bin >&2
