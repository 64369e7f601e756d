#!/usr/bin/env bash
# Conntrack benchmark, in a private network namespace (needs root, nft, conntrack):
#   bench/conntrack_bench.sh [EXPORTER_BINARY] [--entries=100000] [--repeat=10]
# Fills the namespace's conntrack table with real UDP flows, then compares
#   - the stats poll (GET_STATS + GET_STATS_CPU): plain libmnl vs the
#     exporter's conntrack collector;
#   - a full table dump: a plain libmnl dump that only counts messages (the
#     floor), the exporter's conntrack_table collector (its code, linked into
#     the bench tool and interleaved with the floor so machine noise hits
#     both alike), and `conntrack -L > /dev/null`;
#   - the real exporter process dumping the table: reported dump duration
#     and peak RSS.
# Prints markdown. The host's tables are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--inside" ]; then
  bin=build/release/src/sockdiag_exporter
  if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then bin=$1; shift; fi
  [ -x "$bin" ] || { echo "build first: make release (or pass the exporter binary)" >&2; exit 1; }
  build=$(dirname "$(dirname "$bin")")
  tool=$build/bench/conntrack_bench_tool
  [ -x "$tool" ] || { echo "$tool missing: make release" >&2; exit 1; }
  exec unshare -n "$0" --inside "$bin" "$tool" "$@"
fi

shift
bin=$1 tool=$2
shift 2
entries=100000 repeat=10
for arg in "$@"; do
  case $arg in
    --entries=*) entries=${arg#*=} ;;
    --repeat=*) repeat=${arg#*=} ;;
    *) echo "unknown argument $arg" >&2; exit 2 ;;
  esac
done

ip link set lo up
nft -f - <<'EOF'
table inet bench {
  chain raw_out { type filter hook output priority raw; tcp dport 10071 notrack; tcp sport 10071 notrack; }
  chain raw_pre { type filter hook prerouting priority raw; tcp dport 10071 notrack; tcp sport 10071 notrack; }
  chain out { type filter hook output priority filter; ct state new counter; }
}
EOF
sysctl -qw net.netfilter.nf_conntrack_udp_timeout=600
for ((i = 0; i <= entries / 50000; i++)); do ip addr add "127.1.$i.1/32" dev lo; done

t0=$(date +%s.%N)
"$tool" fill "$entries"
t1=$(date +%s.%N)
count=$(conntrack -C)

read -r stats_cpus stats_us < <("$tool" stats 1000)
compare=$("$tool" compare "$repeat")
field() { awk -v k="$1" -v n="$2" '$1 == k {print $n}' <<<"$compare"; }

tool_min=""
for ((i = 0; i < repeat; i++)); do
  s=$( { TIMEFORMAT=%R; time conntrack -L >/dev/null 2>&1; } 2>&1 )
  if [ -z "$tool_min" ] || awk "BEGIN{exit !($s < $tool_min)}"; then tool_min=$s; fi
done

# The real exporter, only conntrack_table, dumping at every poll.
metric() { curl -sf http://127.0.0.1:10071/metrics | awk -v m="$1" 'index($0, m " ") == 1 {print $2}'; }
"$bin" --web.listen-address=127.0.0.1:10071 --collector.disable-defaults \
  --collector.conntrack_table --poll.interval=500ms --conntrack.dump-interval=500ms 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
durations=()
for ((i = 0; i < 6; i++)); do
  sleep 0.6
  d=$(metric sockdiag_conntrack_table_dump_duration_seconds)
  [ -n "$d" ] && durations+=("$d")
done
rss_kb=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
kill $pid
exp_median=$(printf '%s\n' "${durations[@]}" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')

ratio() { awk "BEGIN{printf \"%.2f\", $1 / $2}"; }
echo "# conntrack bench $(date -u +%F), $(uname -r), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), $count entries (UDP), filled in $(awk "BEGIN{printf \"%.1f\", $t1-$t0}") s"
echo
echo "| measurement | wall min | wall median | CPU median |"
echo "| --- | --- | --- | --- |"
echo "| stats poll, plain libmnl ($stats_cpus CPUs) | | ${stats_us} µs | |"
echo "| stats poll, \`conntrack\` collector | $(awk "BEGIN{printf \"%.1f µs | %.1f µs |\", $(field stats 2)*1e6, $(field stats 3)*1e6}") |"
echo "| table dump, plain libmnl ($(field entries 2) entries) | $(field raw 2) s | $(field raw 3) s | $(field raw 4) s |"
echo "| table dump, \`conntrack_table\` collector | $(field collector 2) s | $(field collector 3) s | $(field collector 4) s |"
echo "| collector / plain dump | $(ratio "$(field collector 2)" "$(field raw 2)")× | $(ratio "$(field collector 3)" "$(field raw 3)")× | $(ratio "$(field collector 4)" "$(field raw 4)")× |"
echo "| table dump, \`conntrack -L > /dev/null\` | ${tool_min} s | | |"
echo "| exporter process: reported dump duration | | ${exp_median} s | |"
echo
echo "Exporter peak RSS (VmHWM) while dumping: $((rss_kb / 1024)) MiB. $repeat interleaved rounds."
