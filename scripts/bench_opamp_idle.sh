#!/usr/bin/env bash
# Idle OpAMP WebSocket connections on one node (BENCHMARKS.md, "Idle OpAMP WebSocket connections"):
# for each N in BENCH_IDLE_COUNTS, a fresh release server; N opamp-go agents (tools/opampwsclient -idle,
# each its own instance uid and WebSocket, enrolled with one enrollment token, offered the fleet config
# its labels select, APPLIED, then idle: the server offers a 1 h heartbeat, so they send nothing more).
# Measured, all in the same run:
#   - the server's RSS (/proc/<pid>/status VmRSS) before the agents, with the N agents connected and
#     idle, after they dropped their connections (the collectors stay enrolled), and with the same N
#     agents (same instance uids) connected again: bytes per enrolled connected agent, and per
#     connection alone (reconnected − dropped);
#   - REST latency (GET /api/v1/cluster and GET /api/v1/collectors?limit=20, BENCH_IDLE_REQUESTS each,
#     over one keep-alive connection) before the agents and while they are connected, as a ratio to the
#     baseline measured in the same run (never a fixed threshold);
#   - the open-file limits that bound the number of connections.
#
#   scripts/bench_opamp_idle.sh
#
# Knobs: BENCH_IDLE_COUNTS ("1000 5000"), BENCH_IDLE_REQUESTS (200), BENCH_IDLE_SETTLE_S (5: seconds
# after the agents are ready before measuring), BENCH_IDLE_BIN (default: a copy of
# target/release/linkmesh in the work dir, so a concurrent cargo build cannot change it mid-run),
# BENCH_IDLE_TIMEOUT_S (300 per phase). Needs go (builds tools/opampwsclient), curl, python3, Linux /proc.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
COUNTS=${BENCH_IDLE_COUNTS:-"1000 5000"}
REQUESTS=${BENCH_IDLE_REQUESTS:-200}
SETTLE=${BENCH_IDLE_SETTLE_S:-5}
TIMEOUT=${BENCH_IDLE_TIMEOUT_S:-300}
PASSWORD=bench-idle-admin-password

work=$(mktemp -d /tmp/bench_opamp_idle.XXXXXX)
server=""
agents=""
cleanup() {
  [ -n "$agents" ] && kill "$agents" 2>/dev/null || true
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

bin=${BENCH_IDLE_BIN:-}
if [ -z "$bin" ]; then
  [ -x target/release/linkmesh ] || { echo "no target/release/linkmesh: cargo build --release first, or set BENCH_IDLE_BIN" >&2; exit 1; }
  cp target/release/linkmesh "$work/linkmesh"
  bin=$work/linkmesh
fi
(cd tools/opampwsclient && go build -o "$work/opampwsclient" .)

echo "# idle OpAMP WebSocket connections, $(date -u +%FT%TZ), $(nproc) cpus, build $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
echo "ulimit_n_soft=$(ulimit -Sn) ulimit_n_hard=$(ulimit -Hn)"

rss_kib() { awk '$1 == "VmRSS:" {print $2}' "/proc/$server/status"; }
fds() { ls "/proc/$server/fd" | wc -l; }

# The median and 95th percentile (ms) of BENCH_IDLE_REQUESTS GETs of $1, over one keep-alive connection.
latency() {
  python3 - "$url" "$1" "$REQUESTS" "$work/cookies" <<'EOF'
import http.cookiejar, statistics, sys, time, urllib.request
url, path, count, cookies = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
import http.client
host = url[len("http://"):]
jar = http.cookiejar.MozillaCookieJar(cookies); jar.load(ignore_discard=True, ignore_expires=True)
cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
conn = http.client.HTTPConnection(host, timeout=30)
samples = []
for _ in range(count):
    start = time.perf_counter()
    conn.request("GET", path, headers={"Cookie": cookie})
    response = conn.getresponse(); response.read()
    samples.append((time.perf_counter() - start) * 1000)
    assert response.status == 200, response.status
samples.sort()
print(f"{statistics.median(samples):.3f} {samples[int(len(samples) * 0.95) - 1]:.3f}")
EOF
}

api() { curl -sf -b "$work/cookies" -H 'content-type: application/json' "$@"; }

# Starts agents ($1 of them, seed $2) in the background (their stdin held open on fd 8); waits for
# their idle_ready line, kept in $ready_line. Not in a subshell: the agents exit when fd 8 closes.
start_agents() {
  local count=$1 seed=$2 log=$work/agents-$1-$2-$RANDOM.log
  mkfifo "$work/agents.stdin"
  "$work/opampwsclient" -idle "$count" -idle-seed "$seed" -idle-wait-configs -idle-concurrency 200 \
    -url "$ws_url" -token "$token" -name idle -timeout "${TIMEOUT}s" <"$work/agents.stdin" >"$log" 2>&1 &
  agents=$!
  exec 8>"$work/agents.stdin"
  rm "$work/agents.stdin"
  local deadline=$((SECONDS + TIMEOUT + 5))
  until grep -q '"event":"idle_ready"' "$log"; do
    if ! kill -0 "$agents" 2>/dev/null || ((SECONDS > deadline)); then
      echo "agents never ready:" >&2; tail -5 "$log" >&2; exit 1
    fi
    sleep 0.5
  done
  ready_line=$(grep '"event":"idle_ready"' "$log" | tail -1)
  agents_log=$log
}

# Closes the agents' stdin (they exit, dropping their connections without a goodbye).
stop_agents() {
  exec 8>&-
  wait "$agents" || true
  agents=""
  if grep -q '"event":"idle_disconnected"' "$agents_log"; then
    echo "warning: the server closed idle connections:" >&2
    grep '"event":"idle_disconnected"' "$agents_log" >&2
  fi
}

connected_count() {
  api "$url/api/v1/collectors?mode=opamp&limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status_counts"]["connected"])'
}

for count in $COUNTS; do
  rm -rf "$work/data" "$work/stdout" "$work/stderr" "$work/cookies"
  cat >"$work/linkmesh.toml" <<EOF
[collectors]
opamp_heartbeat_interval = "1h"
EOF
  LINKMESH_ADMIN_PASSWORD=$PASSWORD LINKMESH_LOG=warn "$bin" serve --config "$work/linkmesh.toml" \
    --data-dir "$work/data" --http-addr 127.0.0.1:0 --rpc-addr 127.0.0.1:0 >"$work/stdout" 2>"$work/stderr" &
  server=$!
  until grep -q '^listening on' "$work/stdout" 2>/dev/null; do
    kill -0 "$server" 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
    sleep 0.2
  done
  url=http://$(sed -n 's/^listening on //p' "$work/stdout" | cut -d, -f1)
  ws_url=${url/http:/ws:}/v1/opamp
  curl -sf -c "$work/cookies" -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" "$url/api/v1/auth/login" >/dev/null
  until api "$url/api/v1/cluster" | grep -q '"feature_level":4'; do sleep 0.2; done
  selector=fleet=idle
  api -d "{\"selector\":\"$selector\",\"name\":\"apps\",\"type\":\"otlp\",\"settings\":{}}" "$url/api/v1/sources" >/dev/null
  destination=$(api -d "{\"selector\":\"$selector\",\"name\":\"vendor\",\"type\":\"otlp_http\",\"settings\":{\"endpoint\":\"https://otlp.example\"}}" \
    "$url/api/v1/destinations" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  api -d "{\"selector\":\"$selector\",\"name\":\"all\",\"destination_ids\":[\"$destination\"]}" "$url/api/v1/routes" >/dev/null
  token=$(api -d '{"labels":{"fleet":"idle"}}' "$url/api/v1/enrollment-tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

  sleep "$SETTLE"
  rss_base=$(rss_kib) fds_base=$(fds)
  read -r cluster_base cluster_base_p95 <<<"$(latency /api/v1/cluster)"
  read -r list_base list_base_p95 <<<"$(latency '/api/v1/collectors?limit=20')"

  start_agents "$count" "bench-$count"
  ready=$ready_line
  sleep "$SETTLE"
  rss_connected=$(rss_kib) fds_connected=$(fds)
  shown=$(connected_count)
  read -r cluster_idle cluster_idle_p95 <<<"$(latency /api/v1/cluster)"
  read -r list_idle list_idle_p95 <<<"$(latency '/api/v1/collectors?limit=20')"
  cpu_ticks_before=$(awk '{print $14 + $15}' "/proc/$server/stat")
  sleep 10
  cpu_ticks_after=$(awk '{print $14 + $15}' "/proc/$server/stat")
  stop_agents

  # The server closes the dropped connections (its open files back to the baseline). The collectors
  # stay enrolled, and `connected` until their missed heartbeats make them stale (src/http/opamp_ws.rs).
  deadline=$((SECONDS + TIMEOUT))
  until (($(fds) <= fds_base + 10)); do ((SECONDS < deadline)) || { echo "connections never closed: $(fds) fds" >&2; exit 1; }; sleep 0.5; done
  sleep "$SETTLE"
  rss_dropped=$(rss_kib)

  # The same agents (same instance uids: the same collectors) connect again.
  start_agents "$count" "bench-$count"
  again=$ready_line
  sleep "$SETTLE"
  rss_again=$(rss_kib) fds_again=$(fds)
  stop_agents
  kill "$server"; wait "$server" 2>/dev/null || true; server=""

  python3 - <<EOF
import json
n = $count
ready = json.loads('''$ready'''); again = json.loads('''$again''')
base, conn, dropped, re = $rss_base, $rss_connected, $rss_dropped, $rss_again
print(f"agents={n} ready_in_s={ready['elapsed_ms']/1000:.1f} connects={ready['connects']} configs={ready['configs']} "
      f"connect_failures={ready['connect_failures']} shown_connected={$shown} reconnect_ready_in_s={again['elapsed_ms']/1000:.1f}")
print(f"  rss_kib base={base} connected={conn} dropped={dropped} reconnected={re}")
print(f"  bytes_per_enrolled_connected_agent={(conn - base) * 1024 / n:.0f} "
      f"bytes_per_connection={(re - dropped) * 1024 / n:.0f}")
print(f"  fds base={$fds_base} connected={$fds_connected} reconnected={$fds_again}")
print(f"  server_cpu_while_idle={($cpu_ticks_after - $cpu_ticks_before) / 10:.2f} ticks/s (of {100 * $(nproc)})")
print(f"  GET /api/v1/cluster ms median base={$cluster_base} idle={$cluster_idle} ratio={$cluster_idle / $cluster_base:.2f}"
      f" (p95 {$cluster_base_p95} -> {$cluster_idle_p95})")
print(f"  GET /api/v1/collectors?limit=20 ms median base={$list_base} idle={$list_idle} ratio={$list_idle / $list_base:.2f}"
      f" (p95 {$list_base_p95} -> {$list_idle_p95})")
EOF
done
