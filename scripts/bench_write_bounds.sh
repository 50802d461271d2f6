#!/usr/bin/env bash
# Issue 10, finding 8: how much one collector token makes linkmesh write. Starts `linkmesh serve` on a
# fresh data dir, onboards one collector, then sends POLLS GetConfig calls spread over SECONDS_TOTAL,
# each reporting a new EFFECTIVE_KIB effective config and a new error (Connect JSON over curl), and
# prints the raft dir's disk usage before, after the polls and after a clean shutdown, the answers'
# statuses, and the events written (read back after a restart, so what the shutdown flushed counts).
# BENCHMARKS.md ("Writes per collector") has the figures. Not run by CI.
#
# Usage: scripts/bench_write_bounds.sh [path/to/linkmesh]   (default: target/release/linkmesh)
# Knobs (environment): POLLS (60), SECONDS_TOTAL (15), EFFECTIVE_KIB (256), LINKMESH_LOG (warn),
#   KEEP_WORK=1 (keep the data dir and server log)
# Needs bash, curl, jq, base64, du.
set -euo pipefail
cd "$(dirname "$0")/.."
LINKMESH=${1:-target/release/linkmesh}
: "${POLLS:=60}"
: "${SECONDS_TOTAL:=15}"
: "${EFFECTIVE_KIB:=256}"

WORK=$(mktemp -d)
PASSWORD="bench-$$-$RANDOM$RANDOM"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf '[write-bounds] %s\n' "$*" >&2; }
mib() { du -sB1 "$WORK/data/raft" | awk '{ printf "%.1f", $1 / 1048576 }'; }

# Starts the server on $WORK/data (sets SERVER_PID and URL) and signs in (cookie jar $jar).
jar=$WORK/cookies
start_server() {
  : >"$WORK/stdout"
  LINKMESH_ADMIN_PASSWORD=$PASSWORD LINKMESH_LOG=${LINKMESH_LOG:-warn} \
    "$LINKMESH" serve --data-dir "$WORK/data" --http-addr 127.0.0.1:0 --rpc-addr 127.0.0.1:0 >"$WORK/stdout" 2>>"$WORK/stderr" &
  SERVER_PID=$!
  until grep -q '^listening on ' "$WORK/stdout"; do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/stderr" >&2; exit 1; }
    sleep 0.05
  done
  URL="http://$(sed -n 's/^listening on \([^,]*\).*/\1/p' "$WORK/stdout" | head -n1)"
  curl -sf -c "$jar" -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" "$URL/api/v1/auth/login" >/dev/null
}
stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=""
}

start_server
COLLECTOR=$(curl -sf -b "$jar" -H 'content-type: application/json' \
  -d '{"name":"write-bounds","mode":"alloy-remotecfg"}' "$URL/api/v1/collectors" | jq -r .id)
TOKEN=$(curl -sf -b "$jar" -X POST "$URL/api/v1/collectors/$COLLECTOR/token" | jq -r .token)
sleep 1
BEFORE=$(mib)

declare -A answers=()
pause=$(awk -v s="$SECONDS_TOTAL" -v n="$POLLS" 'BEGIN { printf "%.3f", s / n }')
last_error=""
started=$(date +%s%N)
for i in $(seq 1 "$POLLS"); do
  # A new effective config (EFFECTIVE_KIB of text) and a new error every time.
  text=$(head -c $((EFFECTIVE_KIB * 768)) /dev/urandom | base64 -w0)
  last_error="component \"x$i\" failed: $(head -c 12 /dev/urandom | base64 -w0)"
  printf '{"id":"bench-host","remoteConfigStatus":{"status":3,"errorMessage":"%s"},"effectiveConfig":{"configMap":{"configMap":{"":{"body":"%s","contentType":"text/plain"}}}}}' \
    "${last_error//\"/\\\"}" "$(printf '%s' "$text" | base64 -w0)" >"$WORK/poll.json"
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' --data-binary @"$WORK/poll.json" \
    "$URL/collector.v1.CollectorService/GetConfig")
  answers[$status]=$((${answers[$status]:-0} + 1))
  [ "$status" = 200 ] && accepted_error=$last_error
  sleep "$pause"
done
took=$(awk -v a="$started" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
sleep 1
AFTER=$(mib)
live_error=$(curl -sf -b "$jar" "$URL/api/v1/collectors/$COLLECTOR" | jq -r .config.remote_error)
stop_server
STOPPED=$(mib)
# What was written, including what the shutdown flushed, read back after a restart.
start_server
collector=$(curl -sf -b "$jar" "$URL/api/v1/collectors/$COLLECTOR")
events=$(curl -sf -b "$jar" "$URL/api/v1/collectors/$COLLECTOR/events?limit=1000")
stop_server

echo "binary: $LINKMESH"
echo "polls: $POLLS over ${SECONDS_TOTAL}s (took ${took}s), ${EFFECTIVE_KIB} KiB effective config each"
for status in "${!answers[@]}"; do echo "answered $status: ${answers[$status]}"; done
echo "raft dir: ${BEFORE} MiB before, ${AFTER} MiB after the polls, ${STOPPED} MiB after shutdown"
echo "config_failed events: $(jq '[.events[] | select(.type == "config_failed")] | length' <<<"$events")"
echo "config_failed reports they stand for: $(jq '[.events[] | select(.type == "config_failed") | (.data.count // 1)] | add // 0' <<<"$events")"
echo "events in all: $(jq '.events | length' <<<"$events")"
same() { [ "$1" = "${accepted_error:-}" ] && echo yes || echo no; }
echo "remote_error is the last accepted one: live $(same "$live_error"), after a restart $(same "$(jq -r .config.remote_error <<<"$collector")")"
