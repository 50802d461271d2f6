#!/usr/bin/env bash
# Resource figures of issue 10's findings 3 and 10 for one linkmesh binary (BENCHMARKS.md,
# "Hardening"): RSS around 64 concurrent bad logins from one address, and the server's CPU over 10 s
# with 40 live collector-list streams (one principal) on 504 collectors.
#
#   scripts/bench_hardening.sh <linkmesh binary> [extra TOML for the node config]
#
# Needs curl and a Linux /proc. Prints key=value lines.
set -euo pipefail
bin=${1:?usage: scripts/bench_hardening.sh <linkmesh binary> [extra toml]}
extra=${2:-}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
printf '%s\n' "$extra" >"$work/linkmesh.toml"
LINKMESH_ADMIN_PASSWORD=bench-admin-password LINKMESH_LOG=warn "$bin" serve --config "$work/linkmesh.toml" \
  --data-dir "$work/data" --http-addr 127.0.0.1:0 --rpc-addr 127.0.0.1:0 >"$work/stdout" 2>"$work/stderr" &
server=$!
until grep -q '^listening on' "$work/stdout" 2>/dev/null; do sleep 0.2; done
url=http://$(sed -n 's/^listening on //p' "$work/stdout" | cut -d, -f1)
field() { awk -v key="$1:" '$1 == key {print $2}' "/proc/$server/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }

# ---- finding 3: 64 concurrent bad logins
echo "login_rss_before_kib=$(field VmRSS)"
for _ in $(seq 64); do
  curl -s -o /dev/null -w '%{http_code}\n' -H 'content-type: application/json' \
    -d '{"username":"admin","password":"wrong-guess"}' "$url/api/v1/auth/login" >>"$work/codes" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()
echo "login_statuses=$(sort "$work/codes" | uniq -c | awk '{printf "%s×%s ", $1, $2}')"
echo "login_rss_peak_kib=$(field VmHWM)"
echo "login_rss_after_kib=$(field VmRSS)"

# ---- finding 10: 40 streams of the collectors list, 504 collectors
curl -s -c "$work/cookies" -o /dev/null -H 'content-type: application/json' \
  -d '{"username":"admin","password":"bench-admin-password"}' "$url/api/v1/auth/login" \
  -H 'x-forwarded-for: 192.0.2.1'
account=$(curl -s -b "$work/cookies" -H 'content-type: application/json' -d '{"name":"bench","role":"viewer"}' \
  "$url/api/v1/service-accounts" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
token=$(curl -s -b "$work/cookies" -H 'content-type: application/json' -d '{"label":"bench"}' \
  "$url/api/v1/service-accounts/$account/tokens" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
for i in $(seq 504); do
  curl -s -o /dev/null -b "$work/cookies" -H 'content-type: application/json' \
    -d "{\"name\":\"bench-$i\",\"mode\":\"alloy-remotecfg\"}" "$url/api/v1/collectors"
done
for _ in $(seq 40); do
  curl -sN -o /dev/null -H "authorization: Bearer $token" "$url/api/v1/stream/collectors" &
  pids+=($!)
done
sleep 5
start=$(cpu_ticks)
sleep 10
end=$(cpu_ticks)
ticks=$(getconf CLK_TCK)
echo "streams_open=$(ls /proc/$server/fd | wc -l) fds"
echo "streams_cpu_seconds_per_10s=$(awk -v a="$start" -v b="$end" -v t="$ticks" 'BEGIN {printf "%.2f", (b - a) / t}')"
