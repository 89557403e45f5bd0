#!/usr/bin/env bash
# What `nft monitor` holds (it is the nftables drift gate's child, drift-watch.ts), by what it is asked
# to watch and when it starts: in a network namespace of its own (root), a table with one verdict map
# of N elements; each monitor's VmRSS once its start settled. Prints a markdown table.
#   bash bench/nftables/monitor-rss.sh [elements=120000]
# Rows: started on the loaded table with each object filter (nft 1.0.6 has no way to watch without
# its cache), and started on an empty namespace before the same load (it caches what it reports).
set -euo pipefail
n=${1:-120000}
ns=kpt-bench-monitor-$$
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
script=$(mktemp)
trap 'ip netns del "$ns" 2>/dev/null || true; rm -f "$script"' EXIT
{
  echo "add table ip t"
  echo "add chain ip t c"
  echo "add map ip t m { type ipv4_addr . inet_proto . inet_service : verdict ; }"
  for ((i = 0; i < n; i += 500)); do
    line=""
    for ((j = i; j < i + 500 && j < n; j++)); do
      line+="${line:+, }10.$((j >> 16 & 255)).$((j >> 8 & 255)).$((j & 255)) . tcp . 80 : goto c"
    done
    echo "add element ip t m { $line }"
  done
} >"$script"
rss() { awk '/VmRSS/ {printf "%.0f MB", $2 / 1024}' "/proc/$1/status"; }
settled() { # waits until the monitor's CPU time stops growing (its cache is loaded)
  local p=$1 last=-1 now
  for _ in $(seq 1 60); do
    now=$(awk '{print $14 + $15}' "/proc/$p/stat")
    [[ $now == "$last" ]] && return
    last=$now
    sleep 0.5
  done
}
echo "$(nft --version), a map of $n elements:"
echo
echo "| monitor | started | VmRSS |"
echo "|---|---|---:|"
ip netns exec "$ns" nft -f "$script"
for what in "" tables chains sets rules elements ruleset "new tables"; do
  # shellcheck disable=SC2086
  ip netns exec "$ns" nft monitor $what >/dev/null 2>&1 &
  p=$!
  sleep 0.5
  settled "$p"
  echo "| \`nft monitor $what\` | on the loaded table | $(rss "$p") |"
  kill "$p"
  wait "$p" 2>/dev/null || true
done
ip netns exec "$ns" nft delete table ip t
for what in "" "sets"; do
  # shellcheck disable=SC2086
  ip netns exec "$ns" nft monitor $what >/dev/null 2>&1 &
  p=$!
  sleep 0.5
  before=$(rss "$p")
  ip netns exec "$ns" nft -f "$script"
  sleep 1
  settled "$p"
  echo "| \`nft monitor $what\` | before the load (empty: $before) | $(rss "$p") |"
  kill "$p"
  wait "$p" 2>/dev/null || true
  ip netns exec "$ns" nft delete table ip t
done
