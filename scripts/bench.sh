#!/usr/bin/env bash
# Benchmarks (issue #6): builds the release binaries, measures linkmesh on this machine against
# baselines measured in the same run, and prints one table (also written to $BENCH_DIR/results.md).
# Needs only cargo and a Linux base system (bash, awk, sed, grep); perf is used when BENCH_PERF=1.
# Not run by CI. BENCHMARKS.md explains each row and what limits it.
#
# Knobs (environment):
#   BENCH_DIR                 where data dirs, logs and summaries go (default target/bench/<time>)
#   BENCH_POLL_COLLECTORS     distinct collector tokens of the poll and push rows (10000)
#   BENCH_CONNECTIONS         closed-loop connections of the load generator (16)
#   BENCH_DURATION            length of each closed-loop measurement (15s)
#   BENCH_MEM_COLLECTORS      collectors of the memory and start-up rows (100000; 1000000 for the 1M row)
#   BENCH_PROVISION_CONCURRENCY  REST calls in flight while provisioning them (16)
#   BENCH_CREATES_C1, BENCH_CREATES_C16  collectors created by the Raft write rows (300, 3000)
#   BENCH_SKIP_BUILD=1        use the binaries already in target/release
#   BENCH_PERF=1              record a perf profile of the server during each load row
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

: "${BENCH_DIR:=$ROOT/target/bench/$(date +%Y%m%d-%H%M%S)}"
: "${BENCH_POLL_COLLECTORS:=10000}"
: "${BENCH_CONNECTIONS:=16}"
: "${BENCH_DURATION:=15s}"
: "${BENCH_MEM_COLLECTORS:=100000}"
: "${BENCH_PROVISION_CONCURRENCY:=16}"
: "${BENCH_CREATES_C1:=300}"
: "${BENCH_CREATES_C16:=3000}"
: "${BENCH_SKIP_BUILD:=0}"
: "${BENCH_PERF:=0}"

LINKMESH=$ROOT/target/release/linkmesh
BASELINE=$ROOT/target/release/bench_baseline
PASSWORD="bench-$$-$RANDOM$RANDOM"
mkdir -p "$BENCH_DIR"
SERVER_PID=""
BASELINE_PID=""

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -n "$BASELINE_PID" ] && kill "$BASELINE_PID" 2>/dev/null || true
}
trap cleanup EXIT

# The HTTP status of GET path on host:port, with bash's /dev/tcp (no curl needed); 000 if unreachable.
http_status() {
  local status=000
  if exec 9<>"/dev/tcp/$1/$2"; then
    printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&9
    read -r _ status _ <&9 || status=000
    exec 9>&- 9<&-
  fi
  echo "${status:-000}"
} 2>/dev/null

# A value from a `linkmesh simulate --summary-shell` file (0 when absent).
val() { local v; v=$(sed -n "s/^$2=//p" "$BENCH_DIR/$1.env" | head -n1); echo "${v:-0}"; }
# Arithmetic with floats: calc 'a / b' (prints with the given precision, default 2).
calc() { awk "BEGIN { v = $1; printf \"%.${2:-2}f\", v }"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
thousands() { printf "%'.0f" "$1" 2>/dev/null || printf "%.0f" "$1"; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }

# Starts `linkmesh serve` on data dir $1 and address $2, with config file $3 if given; sets SERVER_PID,
# SERVER_URL and STARTUP_S (process start to the first 200 from /readyz).
start_server() {
  local dir=$1 addr=$2 out="$1.stdout" config=()
  [ -n "${3:-}" ] && config=(--config "$3")
  : >"$out"
  local started
  started=$(date +%s%N)
  LINKMESH_ADMIN_PASSWORD=$PASSWORD LINKMESH_LOG=warn \
    "$LINKMESH" serve "${config[@]}" --data-dir "$dir" --http-addr "$addr" >"$out" 2>>"$dir.stderr" &
  SERVER_PID=$!
  until grep -q '^listening on ' "$out"; do
    kill -0 "$SERVER_PID" 2>/dev/null || die "server exited; see $dir.stderr"
    sleep 0.01
  done
  local bound
  bound=$(sed -n 's/^listening on \([^,]*\).*/\1/p' "$out" | head -n1)
  SERVER_URL="http://$bound"
  until [ "$(http_status "${bound%:*}" "${bound##*:}" /readyz)" = 200 ]; do
    kill -0 "$SERVER_PID" 2>/dev/null || die "server exited; see $dir.stderr"
    sleep 0.01
  done
  STARTUP_S=$(calc "($(date +%s%N) - $started) / 1e9")
}

stop_server() {
  { kill -TERM "$SERVER_PID" && wait "$SERVER_PID"; } 2>/dev/null || true
  SERVER_PID=""
}

# Jiffies the whole machine spent idle (incl. iowait) and in total so far, from /proc/stat.
cpu_jiffies() { awk '/^cpu / { total = 0; for (i = 2; i <= NF; i++) total += $i; print $5 + $6, total }' /proc/stat; }

# `linkmesh simulate` with a summary in $BENCH_DIR/<name>.{env,json} and progress in <name>.log;
# MACHINE_IDLE_PCT in the summary is the share of the machine left idle meanwhile (a row that leaves
# much idle is bound by latency or serialisation, not by CPU).
simulate() {
  local name=$1
  shift
  log "simulate $name: $*"
  local before after
  before=$(cpu_jiffies)
  "$LINKMESH" simulate --no-stdout-summary --summary-shell "$BENCH_DIR/$name.env" \
    --summary-json "$BENCH_DIR/$name.json" --progress-interval 5s "$@" 2>"$BENCH_DIR/$name.log" ||
    die "simulate $name failed; see $BENCH_DIR/$name.log"
  after=$(cpu_jiffies)
  echo "MACHINE_IDLE_PCT=$(echo "$before $after" | awk '{ printf "%.0f", 100 * ($3 - $1) / ($4 - $2 + 1e-9) }')" \
    >>"$BENCH_DIR/$name.env"
  if [ "$(val "$name" RUN_ERRORS)" != 0 ]; then
    log "simulate $name: $(val "$name" RUN_ERRORS) errors (see $BENCH_DIR/$name.json)"
  fi
}

# With BENCH_PERF=1: profiles pid $1 for $2 seconds after a 3 s warm-up, into $BENCH_DIR/<name>.perf.txt.
profile() {
  [ "$BENCH_PERF" = 1 ] && command -v perf >/dev/null || return 0
  local pid=$1 seconds=$2 name=$3
  (
    sleep 3
    perf record -F 499 -e cpu-clock --call-graph dwarf,16384 -p "$pid" -o "$BENCH_DIR/$name.perf" \
      -- sleep "$seconds" >/dev/null 2>&1 &&
      perf report -i "$BENCH_DIR/$name.perf" --no-children --sort symbol --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -n 40 >"$BENCH_DIR/$name.perf.txt"
  ) &
}

if [ "$BENCH_SKIP_BUILD" != 1 ]; then
  log "building release binaries"
  cargo build --release --locked --bin linkmesh --bin bench_baseline >&2
fi
[ -x "$LINKMESH" ] && [ -x "$BASELINE" ] || die "release binaries missing"

NPROC=$(nproc)
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM_GIB=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
log "machine: $NPROC CPUs ($CPU_MODEL), $MEM_GIB GiB; results in $BENCH_DIR"
LOAD_BEFORE=$(loadavg)

# ---- Durable-write baseline --------------------------------------------------------------------
"$BASELINE" fsync --dir "$BENCH_DIR/fsync" --duration 3s >"$BENCH_DIR/fsync.env"
FSYNC_PER_S=$(sed -n 's/^FSYNC_PER_S=//p' "$BENCH_DIR/fsync.env")

# ---- Server P: Raft writes, then poll and push rows with BENCH_POLL_COLLECTORS tokens ------------
# The closed loop calls each of its BENCH_POLL_COLLECTORS tokens back to back: at ~26k calls/s over 10000
# tokens that is ~2.6 calls/s per token, beyond the default poll bucket (burst 10, 2/s), and no collector
# calls that often. The bucket is raised so every call is served; its check stays on the measured path.
cat >"$BENCH_DIR/server-p.toml" <<'TOML'
[collectors]
poll_burst = 1000000
polls_per_second = 1000000.0
TOML
start_server "$BENCH_DIR/server-p" 127.0.0.1:0 "$BENCH_DIR/server-p.toml"
P_URL=$SERVER_URL
# The password reaches `simulate` through the environment, never a command line or a log.
export LINKMESH_ADMIN_PASSWORD=$PASSWORD
admin=(--url "$P_URL")
simulate creates-c1 "${admin[@]}" --create-only --collectors "$BENCH_CREATES_C1" --name-prefix w1- \
  --provision-concurrency 1
simulate creates-c16 "${admin[@]}" --create-only --collectors "$BENCH_CREATES_C16" --name-prefix w16- \
  --provision-concurrency 16
POLL_TOKENS=$BENCH_DIR/poll-tokens.tsv
simulate provision-poll "${admin[@]}" --provision-only --collectors "$BENCH_POLL_COLLECTORS" \
  --name-prefix sim- --tokens-file "$POLL_TOKENS" --provision-concurrency "$BENCH_PROVISION_CONCURRENCY"

# Baseline: the bare handler, the same load generator and flags, tokens that exist nowhere.
awk -v n="$BENCH_POLL_COLLECTORS" 'BEGIN { for (i = 1; i <= n; i++) printf "sim-%d\tcol_none%d\tlmct_none%d\n", i, i, i }' \
  >"$BENCH_DIR/baseline-tokens.tsv"
: >"$BENCH_DIR/baseline.stdout"
"$BASELINE" serve --addr 127.0.0.1:0 >"$BENCH_DIR/baseline.stdout" 2>"$BENCH_DIR/baseline.stderr" &
BASELINE_PID=$!
until grep -q '^listening on ' "$BENCH_DIR/baseline.stdout"; do sleep 0.01; done
BASELINE_URL="http://$(sed -n 's/^listening on \([^,]*\).*/\1/p' "$BENCH_DIR/baseline.stdout" | head -n1)"
load=(--closed-loop --connections "$BENCH_CONNECTIONS" --duration "$BENCH_DURATION" --collectors "$BENCH_POLL_COLLECTORS")
profile "$BASELINE_PID" 5 baseline
simulate baseline --url "$BASELINE_URL" --tokens-file "$BENCH_DIR/baseline-tokens.tsv" "${load[@]}" \
  --skip-startup --server-pid "$BASELINE_PID"
{ kill "$BASELINE_PID" && wait "$BASELINE_PID"; } 2>/dev/null || true
BASELINE_PID=""

poll=(--url "$P_URL" --tokens-file "$POLL_TOKENS" "${load[@]}" --server-pid "$SERVER_PID")
profile "$SERVER_PID" 5 not-modified
simulate not-modified "${poll[@]}"
HALF_RATE=$(calc "$(val not-modified RUN_GET_CONFIG_OK_PER_S) / 2" 0)
simulate half-rate "${poll[@]}" --rate "$HALF_RATE"
profile "$SERVER_PID" 5 changed
simulate changed "${poll[@]}" --workload get-config-changed --skip-startup
profile "$SERVER_PID" 5 push
simulate push "${poll[@]}" --workload own-metrics --skip-startup
simulate decode-only --decode-only --duration "$BENCH_DURATION"
stop_server

# ---- Server M: memory per collector and start-up time with BENCH_MEM_COLLECTORS ----------------
start_server "$BENCH_DIR/server-m" 127.0.0.1:0
M_ADDR=${SERVER_URL#http://}
sleep 1
RSS_EMPTY=$(rss_kib "$SERVER_PID")
MEM_TOKENS=$BENCH_DIR/mem-tokens.tsv
simulate provision-mem --url "$SERVER_URL" --provision-only \
  --collectors "$BENCH_MEM_COLLECTORS" --name-prefix m- --tokens-file "$MEM_TOKENS" \
  --provision-concurrency "$BENCH_PROVISION_CONCURRENCY"
MEM_N=$(val provision-mem COLLECTORS)
sleep 2
RSS_CREATED=$(rss_kib "$SERVER_PID")
stop_server
start_server "$BENCH_DIR/server-m" "$M_ADDR"
STARTUP_AWAITING_S=$STARTUP_S
sleep 2
RSS_IDLE=$(rss_kib "$SERVER_PID")
simulate poll-once --url "$SERVER_URL" --tokens-file "$MEM_TOKENS" --name-prefix m- --collectors "$MEM_N" --closed-loop \
  --connections "$BENCH_CONNECTIONS" --rounds 1 --skip-startup --duration 1h --server-pid "$SERVER_PID"
sleep 2
RSS_POLLED=$(rss_kib "$SERVER_PID")
stop_server
start_server "$BENCH_DIR/server-m" "$M_ADDR"
STARTUP_CONNECTED_S=$STARTUP_S
sleep 2
RSS_RESTARTED=$(rss_kib "$SERVER_PID")
stop_server
LOAD_AFTER=$(loadavg)

# ---- Table --------------------------------------------------------------------------------------
BASE_RPS=$(val baseline RUN_GET_CONFIG_OK_PER_S)
NM_RPS=$(val not-modified RUN_GET_CONFIG_OK_PER_S)
CH_RPS=$(val changed RUN_GET_CONFIG_OK_PER_S)
DEC_PPS=$(val decode-only RUN_DECODE_OK_PER_S)
us_per_call() { calc "$(val "$1" RUN_SERVER_CPU_S) * 1e6 / ($(val "$1" "$2") + 1e-9)" 0; }
lat() { echo "p50 $(val "$1" "$2_P50_MS") ms, p99 $(val "$1" "$2_P99_MS") ms"; }
BASE_US=$(us_per_call baseline RUN_GET_CONFIG_OK)
DECODE_US=$(calc "$(val decode-only CLIENT_CPU_S) * 1e6 / ($(val decode-only RUN_DECODE_OK) + 1e-9)" 0)
# CPU-seconds of the server and of the load generator, and the machine's idle share, during a row.
cpu_note() {
  echo "server $(val "$1" RUN_SERVER_CPU_S) CPU-s, load generator $(val "$1" CLIENT_CPU_S) CPU-s, machine $(val "$1" MACHINE_IDLE_PCT)% idle"
}
per_collector() { calc "($1 - $RSS_EMPTY) * 1024 / $MEM_N" 0; }
POINTS=$(calc "$(val decode-only RUN_DECODE_POINTS) / ($(val decode-only RUN_DECODE_OK) + 1e-9)" 0)
if [ "$(val push RUN_OWN_METRICS_OK)" = 0 ] && [ "$(val push RUN_ERROR_OWN_METRICS_HTTP_404)" != 0 ]; then
  PUSH_ROW="| own_metrics pushes (Alloy payload, $POINTS points, gzip) | n/a (endpoint missing) | decode-only $(thousands "$DEC_PPS") pushes/s | - | |"
else
  PUSH_PPS=$(val push RUN_OWN_METRICS_OK_PER_S)
  PUSH_ROW="| own_metrics pushes (Alloy payload, $POINTS points, gzip) | $(thousands "$PUSH_PPS") pushes/s = $(thousands "$(val push RUN_OWN_METRICS_POINTS_PER_S)") points/s; $(lat push RUN_OWN_METRICS); $(us_per_call push RUN_OWN_METRICS_OK) µs server CPU/push | decode-only in-process: $(thousands "$DEC_PPS") pushes/s ($NPROC threads) | $(ratio "$PUSH_PPS" "$DEC_PPS") | goal ≥ 0.70; CPU/push ratio $(ratio "$DECODE_US" "$(us_per_call push RUN_OWN_METRICS_OK)") (decode $DECODE_US µs); errors $(val push RUN_ERRORS); $(cpu_note push) |"
fi

{
  echo "# linkmesh benchmarks"
  echo
  echo "- machine: $NPROC CPUs, $CPU_MODEL, $MEM_GIB GiB RAM; load average $LOAD_BEFORE before, $LOAD_AFTER after"
  echo "- load generator: \`linkmesh simulate --closed-loop\`, $BENCH_CONNECTIONS connections, $BENCH_DURATION per row, on the same machine"
  echo "- run: $(date -u +%Y-%m-%dT%H:%M:%SZ), results in $BENCH_DIR"
  echo
  echo "| measurement | linkmesh | baseline (same run) | ratio | notes |"
  echo "|---|---|---|---|---|"
  echo "| GetConfig, bare actix-web handler (the baseline) | $(thousands "$BASE_RPS") req/s; $(lat baseline RUN_GET_CONFIG); $(us_per_call baseline RUN_GET_CONFIG_OK) µs server CPU/req | — | 1.00 | $(cpu_note baseline) |"
  echo "| GetConfig \`not_modified\`, $BENCH_POLL_COLLECTORS distinct tokens | $(thousands "$NM_RPS") req/s; $(lat not-modified RUN_GET_CONFIG); $(us_per_call not-modified RUN_GET_CONFIG_OK) µs server CPU/req | $(thousands "$BASE_RPS") req/s | $(ratio "$NM_RPS" "$BASE_RPS") | goal ≥ 0.60; CPU/req ratio $(ratio "$BASE_US" "$(us_per_call not-modified RUN_GET_CONFIG_OK)"); $(cpu_note not-modified) |"
  echo "| GetConfig \`not_modified\` at half the peak rate ($HALF_RATE req/s offered) | $(thousands "$(val half-rate RUN_GET_CONFIG_OK_PER_S)") req/s; $(lat half-rate RUN_GET_CONFIG) | — | — | goal p99 ≤ 5 ms; $(cpu_note half-rate) |"
  echo "| GetConfig returning the config (empty hash) | $(thousands "$CH_RPS") req/s; $(lat changed RUN_GET_CONFIG); $(us_per_call changed RUN_GET_CONFIG_OK) µs server CPU/req | $(thousands "$BASE_RPS") req/s | $(ratio "$CH_RPS" "$BASE_RPS") | CPU/req ratio $(ratio "$BASE_US" "$(us_per_call changed RUN_GET_CONFIG_OK)"); $(cpu_note changed) |"
  echo "$PUSH_ROW"
  echo "| Raft writes: collectors created, 1 call at a time | $(val creates-c1 PROVISION_CREATE_COLLECTOR_OK_PER_S) creates/s; $(lat creates-c1 PROVISION_CREATE_COLLECTOR) | fsync loop: $(thousands "$FSYNC_PER_S") writes/s | $(ratio "$(val creates-c1 PROVISION_CREATE_COLLECTOR_OK_PER_S)" "$FSYNC_PER_S") | $BENCH_CREATES_C1 collectors |"
  echo "| Raft writes: collectors created, 16 calls at a time | $(val creates-c16 PROVISION_CREATE_COLLECTOR_OK_PER_S) creates/s; $(lat creates-c16 PROVISION_CREATE_COLLECTOR) | fsync loop: $(thousands "$FSYNC_PER_S") writes/s | $(ratio "$(val creates-c16 PROVISION_CREATE_COLLECTOR_OK_PER_S)" "$FSYNC_PER_S") | $BENCH_CREATES_C16 collectors; no batch API |"
  echo "| Provisioning $MEM_N collectors (create + mint token = 2 writes each, $BENCH_PROVISION_CONCURRENCY at a time) | $(calc "$MEM_N / $(val provision-mem PROVISION_ELAPSED_S)" 0) collectors/s over $(val provision-mem PROVISION_ELAPSED_S) s | — | — | $(val provision-mem PROVISION_ERRORS) errors |"
  echo "| RSS, empty server | $(calc "$RSS_EMPTY / 1024" 1) MiB | — | — | |"
  echo "| RSS per collector, $MEM_N created (same process) | $(per_collector "$RSS_CREATED") B | — | — | $(calc "$RSS_CREATED / 1024" 0) MiB total |"
  echo "| RSS per collector, $MEM_N idle after restart | $(per_collector "$RSS_IDLE") B | goal 1024 B | $(ratio "$(per_collector "$RSS_IDLE")" 1024) | $(calc "$RSS_IDLE / 1024" 0) MiB total |"
  echo "| RSS per collector, $MEM_N after each polled once | $(per_collector "$RSS_POLLED") B | — | — | $(calc "$RSS_POLLED / 1024" 0) MiB total; $(val poll-once RUN_GET_CONFIG_OK_PER_S) polls/s |"
  echo "| RSS per collector, $MEM_N connected, after restart | $(per_collector "$RSS_RESTARTED") B | — | — | $(calc "$RSS_RESTARTED / 1024" 0) MiB total |"
  echo "| Start-up to /readyz 200, $MEM_N collectors (never polled) | $STARTUP_AWAITING_S s | goal 10 s at 1M | — | |"
  echo "| Start-up to /readyz 200, $MEM_N connected collectors (actors re-activated) | $STARTUP_CONNECTED_S s | goal 10 s at 1M | — | |"
} | tee "$BENCH_DIR/results.md"
