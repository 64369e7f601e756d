#!/usr/bin/env bash
# The container image test: builds the Dockerfile for real with podman and
# runs the image under the privilege profiles the Helm chart and the sidecar
# example use, each in a network namespace with a known socket population.
#
#   1. Base images: no registry is reachable, so debian:bookworm and
#      debian:bookworm-slim are made from Debian's packages (debootstrap
#      --variant=minbase + podman import). Kept in podman's storage and reused
#      by later runs on the same machine.
#   2. podman build of the Dockerfile (runc, 1024 ulimits: see
#      containers.conf below); checks USER, ENTRYPOINT, EXPOSE, OCI labels,
#      no build tools in the runtime image, and that the binary carries no
#      file capabilities.
#   3. The capability model the chart relies on, on the real kernel: file
#      capabilities are not granted under no_new_privs
#      (allowPrivilegeEscalation: false) and make exec fail when the bounding
#      set lacks them. That is why the chart runs as uid 0 with every
#      capability but the needed ones dropped, instead of setcap in the image.
#   4. Profiles, each with --read-only --security-opt no-new-privileges
#      (podman's default seccomp profile, like RuntimeDefault), scraped over
#      HTTP inside the namespace:
#        sidecar   image user 65534, --cap-drop ALL: no capability at all;
#        daemonset uid 0, --cap-drop ALL --cap-add NET_ADMIN;
#        pods      uid 0, + SYS_ADMIN SYS_PTRACE, --pid host, --netns.mode=pods.
#      Asserted: the exporter is PID 1 of its container (exec-form
#      ENTRYPOINT), its uid, its exact CapEff/CapPrm/CapBnd and no ambient
#      capability (its /proc/PID/status read inside the container),
#      sockdiag_collector_success{collector="sockets"} 1, the exact socket
#      counts of the population, and the conntrack collector's success (0
#      without NET_ADMIN, 1 with it) where that collector exists.
#
# Usage: image_test.sh SOURCE_DIR     (root; podman, buildah, runc, debootstrap)
# Env:   SOCKDIAG_IMAGE_REBUILD_BASE=1 makes the base images again.
set -euo pipefail

src=$(cd "${1:?usage: image_test.sh SOURCE_DIR}" && pwd)
image=localhost/sockdiag-exporter:ctest
here=$(cd "$(dirname "$0")" && pwd)

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
for tool in podman debootstrap ip nft curl python3 setcap setpriv getcap; do
  command -v "$tool" >/dev/null || fail "$tool missing (scripts/install-deps.sh installs it)"
done
[ "$(id -u)" -eq 0 ] || fail "must run as root (network namespaces, podman storage)"

work=$(mktemp -d /tmp/sockdiag-image.XXXXXX)
chmod 755 "$work"
ns=sockdiag-image-$$
containers=()
pop_pid=
cleanup() {
  for c in "${containers[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  if [ -n "$pop_pid" ]; then kill "$pop_pid" 2>/dev/null || true; fi
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# crun fails here on hybrid cgroups, and the default rlimits cannot be raised
# without CAP_SYS_RESOURCE; runc with 1024 nofile/nproc works in both places.
cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$work/containers.conf
SECONDS=0

# --- 1. Base images --------------------------------------------------------
# The Debian mirror apt is configured with on this machine (first "main" URI).
debian_mirror() {
  local uri
  uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ && u {print u; exit}' \
          /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' \
                           /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  [ -n "$uri" ] || fail "no Debian bookworm mirror found in the apt configuration"
  echo "$uri"
}
base=docker.io/library/debian
if [ "${SOCKDIAG_IMAGE_REBUILD_BASE:-0}" != 1 ] &&
   podman image exists $base:bookworm && podman image exists $base:bookworm-slim; then
  step "base images: reusing $base:bookworm and :bookworm-slim"
else
  mirror=$(debian_mirror)
  step "base images: debootstrap --variant=minbase bookworm from the apt mirror"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; fail "debootstrap failed"; }
  rm -f "$work"/rootfs/var/cache/apt/archives/*.deb
  rm -rf "$work"/rootfs/var/lib/apt/lists/*
  tar -C "$work/rootfs" -c . |
    podman import -q --change 'CMD ["bash"]' \
      --change 'LABEL org.opencontainers.image.description="debootstrap minbase, made by tests/image/image_test.sh"' \
      - $base:bookworm >/dev/null
  podman tag $base:bookworm $base:bookworm-slim
  rm -rf "$work/rootfs"
  echo "   made in ${SECONDS}s"
fi

# --- 2. Build ------------------------------------------------------------
step "podman build $image"
t0=$SECONDS
revision=$(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# The build stage is tagged too, so that the prune below keeps it as the next
# run's layer cache while dropping the stages of earlier sources.
for target in build ""; do
  podman build --pull=never --network=host --build-arg "REVISION=$revision" \
    ${target:+--target "$target"} -t "$image${target:+-$target}" -f "$src/Dockerfile" "$src" \
    >>"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; fail "podman build failed"; }
done
podman image prune -f >/dev/null
echo "   built in $((SECONDS - t0))s, $(podman image inspect -f '{{.Size}}' "$image" |
  awk '{printf "%.0f MB", $1 / 1e6}')"

inspect() { podman image inspect -f "$1" "$image"; }
[ "$(inspect '{{.Config.User}}')" = "65534:65534" ] || fail "image USER is not 65534:65534"
[ "$(inspect '{{json .Config.Entrypoint}}')" = '["/usr/bin/sockdiag_exporter"]' ] ||
  fail "ENTRYPOINT is not the exec form [\"/usr/bin/sockdiag_exporter\"]"
inspect '{{json .Config.ExposedPorts}}' | grep -q '"10061/tcp"' || fail "image does not EXPOSE 10061"
for label in title description version revision; do
  [ -n "$(inspect "{{index .Config.Labels \"org.opencontainers.image.$label\"}}")" ] ||
    fail "OCI label org.opencontainers.image.$label missing"
done
[ "$(inspect '{{index .Config.Labels "org.opencontainers.image.revision"}}')" = "$revision" ] ||
  fail "OCI revision label is not $revision"
mnt=$(podman image mount "$image")
[ -z "$(getcap "$mnt/usr/bin/sockdiag_exporter")" ] || fail "the binary carries file capabilities"
if [ -e "$mnt/usr/bin/g++" ] || [ -e "$mnt/usr/include/prometheus" ]; then
  fail "the runtime image contains build tools or headers"
fi
cp "$mnt/usr/bin/sockdiag_exporter" "$work/exporter"
podman image unmount "$image" >/dev/null
# The build context carries no .git: the revision comes in as a build arg.
podman run --rm "$image" --version | grep -q "^sockdiag_exporter version .*(revision $revision)" ||
  fail "the image's --version does not name revision $revision"

# --- 3. Why not file capabilities -----------------------------------------
# Kubernetes gives a non-root container no usable added capability (only the
# bounding set), so a non-root exporter would need file capabilities; check on
# the real kernel that they do not survive allowPrivilegeEscalation: false.
step "capability model: file capabilities vs no_new_privs"
setcap cap_net_admin+ep "$work/exporter"
# shellcheck disable=SC2016 # $0 and $p expand in the inner shell.
capeff_of() {  # runs the file-capability binary as 65534 with extra setpriv args
  unshare -n setpriv "$@" --reuid 65534 --regid 65534 --clear-groups bash -c '
    "$0" --web.listen-address=127.0.0.1:10061 --log.level=error & p=$!
    for _ in $(seq 50); do grep -q "^CapEff" /proc/$p/status 2>/dev/null &&
      [ "$(readlink /proc/$p/exe)" = "$0" ] && break; sleep 0.05; done
    awk "/^CapEff/ {print \$2}" /proc/$p/status; kill $p' "$work/exporter"
}
[ "$(capeff_of)" = 0000000000001000 ] || fail "file capability not granted without no_new_privs"
[ "$(capeff_of --no-new-privs)" = 0000000000000000 ] ||
  fail "file capability granted under no_new_privs: the chart's uid-0 profile may be unneeded"
if unshare -n setpriv --bounding-set=-net_admin --reuid 65534 --regid 65534 --clear-groups \
     "$work/exporter" --version >/dev/null 2>&1; then
  fail "a file-capability binary started without the capability in its bounding set"
fi
echo "   +ep file caps: granted (0x1000) without no_new_privs, 0 with it, exec EPERM when" \
     "the bounding set lacks them"

# --- 4. Run the image under each profile ----------------------------------
ip netns add "$ns"
ip -n "$ns" link set lo up
# Conntrack tracks loopback only when a rule asks for it: the population's
# 9 connections become conntrack entries for the conntrack collector to read.
ip netns exec "$ns" nft -f - <<'EOF'
table inet sockdiag_image_test {
  chain output { type filter hook output priority 0; ct state new counter; }
}
EOF
mkfifo "$work/pop.in"
ip netns exec "$ns" python3 "$here/population.py" <"$work/pop.in" >"$work/pop.out" &
pop_pid=$!
exec 7>"$work/pop.in"  # the helper holds its sockets until this closes
for _ in $(seq 100); do grep -q ready "$work/pop.out" && break; sleep 0.1; done
grep -q ready "$work/pop.out" || fail "population helper did not start"

# The population (see population.py) plus the exporter's own 127.0.0.1 listener.
expected_sockets=(
  'sockdiag_tcp_sockets{family="ipv4",state="established"} 8'
  'sockdiag_tcp_sockets{family="ipv4",state="close_wait"} 3'
  'sockdiag_tcp_sockets{family="ipv4",state="fin_wait2"} 3'
  'sockdiag_tcp_sockets{family="ipv4",state="listen"} 2'
  'sockdiag_tcp_sockets{family="ipv6",state="established"} 4'
  'sockdiag_tcp_sockets{family="ipv6",state="listen"} 1'
  'sockdiag_udp_sockets{family="ipv4"} 2'
  'sockdiag_collector_success{collector="sockets"} 1'
)

scrape() { ip netns exec "$ns" curl -sf --max-time 2 http://127.0.0.1:10061/metrics; }
# value NAME{LABELS}: the sample's value in $work/metrics, empty if absent.
value() { awk -v s="$1" '$1 == s {print $2}' "$work/metrics"; }

# run_profile NAME UID CAPS_HEX [podman args...] -- [exporter args...]
run_profile() {
  local name=$1 want_uid=$2 want_caps=$3
  shift 3
  local podman_args=() exporter_args=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do podman_args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  exporter_args=("$@")
  step "profile $name: podman run ${podman_args[*]}"
  local cid
  cid=$(podman run -d --name "sockdiag-image-$name-$$" --network "ns:/run/netns/$ns" \
          --read-only --security-opt no-new-privileges "${podman_args[@]}" "$image" \
          --web.listen-address=127.0.0.1:10061 --poll.interval=300ms "${exporter_args[@]}")
  containers+=("$cid")
  local ok=0
  for _ in $(seq 100); do
    if ip netns exec "$ns" curl -sf -o /dev/null --max-time 1 http://127.0.0.1:10061/-/ready; then
      ok=1; break
    fi
    sleep 0.1
  done
  [ $ok = 1 ] || { podman logs "$cid" | tail -20; fail "$name: exporter not ready in 10 s"; }

  # The exporter itself is PID 1 (exec-form ENTRYPOINT) and holds exactly
  # the capabilities of its profile, no more, no less. With --pid host its
  # PID inside the container is the host's.
  local pid=1
  [[ " ${podman_args[*]} " == *" --pid host "* ]] && pid=$(podman inspect -f '{{.State.Pid}}' "$cid")
  podman exec "$cid" cat "/proc/$pid/status" >"$work/status"
  grep -q "^Name:[[:space:]]*sockdiag_export" "$work/status" ||
    fail "$name: PID $pid in the container is not the exporter"
  field() { awk -v k="$1:" '$1 == k {print $2}' "$work/status"; }
  [ "$(field Uid)" = "$want_uid" ] || fail "$name: uid $(field Uid), want $want_uid"
  for set in CapEff CapPrm CapBnd; do
    [ "$(field $set)" = "$want_caps" ] || fail "$name: $set $(field $set), want $want_caps"
  done
  [ "$(field CapAmb)" = 0000000000000000 ] || fail "$name: ambient capabilities $(field CapAmb)"
  [ "$(field NoNewPrivs)" = 1 ] || fail "$name: no_new_privs not set"

  # Exact counts; polls run every 300 ms and a scrape's own connection can be
  # in a poll, so scrape until every expected sample matches (10 s at most).
  local missing=
  for _ in $(seq 50); do
    scrape >"$work/metrics" || true
    missing=
    for want in "${expected_sockets[@]}"; do
      [ "$(value "${want% *}")" = "${want##* }" ] || missing+="  want $want, got '$(value "${want% *}")'"$'\n'
    done
    [ -z "$missing" ] && break
    sleep 0.2
  done
  [ -z "$missing" ] || { printf '%s' "$missing"; fail "$name: socket counts differ"; }
  echo "   uid $want_uid, CapEff $want_caps${expected_sockets[0]:+, ${#expected_sockets[@]} socket samples exact}"
}

# Stops the profile's container so that the next one can bind the port.
stop_profile() {
  podman rm -f -t 0 "${containers[-1]}" >/dev/null
  for _ in $(seq 50); do
    ip netns exec "$ns" curl -s -o /dev/null --max-time 1 http://127.0.0.1:10061/ || return 0
    sleep 0.1
  done
  fail "the exporter still answers after its container was removed"
}

# The conntrack collector needs CAP_NET_ADMIN: success 0 without the
# capability, 1 with it, and then it reads the population's 9 tracked
# connections (plus the scrape connections, which conntrack tracks too).
conntrack_success() {
  local want=$1 got entries
  got=$(value 'sockdiag_collector_success{collector="conntrack"}')
  [ -n "$got" ] || fail "no sockdiag_collector_success{collector=\"conntrack\"} series"
  [ "$got" = "$want" ] || fail "conntrack collector success $got, want $want"
  echo "   conntrack collector success $got"
  if [ "$want" = 1 ]; then
    entries=$(value 'sockdiag_conntrack_entries')
    [ -n "$entries" ] && [ "$entries" -ge 9 ] || fail "sockdiag_conntrack_entries $entries, want >= 9"
    echo "   conntrack entries $entries"
  fi
}

run_profile sidecar 65534 0000000000000000 --cap-drop ALL --
conntrack_success 0
stop_profile

run_profile daemonset 0 0000000000001000 --user 0:0 --cap-drop ALL --cap-add NET_ADMIN --
conntrack_success 1
stop_profile

# Pods mode polls every namespace of the machine, so only the privilege
# profile and the exporter's own namespace series are checked here; the
# per-namespace counts are the pods-mode kernel tests' job.
if podman run --rm "$image" --help | grep -q -- '--netns.mode'; then
  # NET_ADMIN bit 12, SYS_PTRACE bit 19, SYS_ADMIN bit 21.
  expected_sockets=()
  run_profile pods 0 0000000000281000 --user 0:0 --pid host --cap-drop ALL \
    --cap-add NET_ADMIN --cap-add SYS_ADMIN --cap-add SYS_PTRACE -- --netns.mode=pods
  sleep 0.5
  scrape >"$work/metrics"
  grep -Eq '^sockdiag_collector_success\{([^}]*,)?collector="sockets"(,[^}]*)?\} 1$' "$work/metrics" ||
    fail "pods: no sockdiag_collector_success{collector=\"sockets\"} 1 series"
  echo "   sockets collector succeeded"
  stop_profile
fi

echo "image test passed in ${SECONDS}s"
