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
#   BENCH_ROWS                rows to run, comma-separated (default all): writes, poll, push, provision, mem,
#                             steady, opamp-push
#   BENCH_OPAMP_AGENTS        opamp-push row: OpAMP agents connected over WebSocket (10000)
#   BENCH_OPAMP_ROUNDS        opamp-push row: fleet-wide changes, each reaching every agent (5)
#   BENCH_MEM_COLLECTORS      collectors of the provisioning, memory, start-up and steady rows (100000; 1000000 for 1M)
#   BENCH_PROVISION_CONCURRENCY  REST calls in flight while provisioning them (16)
#   BENCH_PROVISION_BATCH     collectors per `POST /collectors:batch` call while provisioning (1000)
#   BENCH_PROVISION_SINGLE    collectors of the provision row's baseline: create + mint per collector (2000)
#   BENCH_CREATES_C1, BENCH_CREATES_C16  collectors created by the Raft write rows (300, 3000)
#   BENCH_STEADY_INTERVAL     steady row: every collector polls at this cadence (60s, Alloy's default)
#   BENCH_STEADY_RAMP_UP      steady row: the collectors' start-ups spread over this (default: 1 s per 2000
#                             collectors, at least the cadence)
#   BENCH_STEADY_WARM_UP      steady row: not measured, from the first start (default: ramp-up + 2 cadences)
#   BENCH_STEADY_MEASURE      steady row: the measured phase after the warm-up (10m)
#   BENCH_STEADY_CONNECTIONS  steady row: the generator's connections, shared by the collectors (64)
#   BENCH_SKIP_BUILD=1        use the binaries already in $CARGO_TARGET_DIR/release (default target/release)
#   BENCH_PERF=1              record a perf profile of the server during each load row
#   BENCH_SERVER_LOG          the servers' LINKMESH_LOG (warn); info shows each snapshot built and its lock time
# Each row's lines are appended to $BENCH_DIR/results.md as soon as the row completes; the total run
# time is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

: "${BENCH_DIR:=$ROOT/target/bench/$(date +%Y%m%d-%H%M%S)}"
: "${BENCH_POLL_COLLECTORS:=10000}"
: "${BENCH_CONNECTIONS:=16}"
: "${BENCH_DURATION:=15s}"
: "${BENCH_MEM_COLLECTORS:=100000}"
: "${BENCH_PROVISION_CONCURRENCY:=16}"
: "${BENCH_PROVISION_BATCH:=1000}"
: "${BENCH_PROVISION_SINGLE:=2000}"
: "${BENCH_ROWS:=writes,poll,push,provision,mem,steady,opamp-push}"
: "${BENCH_OPAMP_AGENTS:=10000}"
: "${BENCH_OPAMP_ROUNDS:=5}"
: "${BENCH_STEADY_INTERVAL:=60s}"
: "${BENCH_STEADY_MEASURE:=10m}"
: "${BENCH_STEADY_CONNECTIONS:=64}"
: "${BENCH_CREATES_C1:=300}"
: "${BENCH_CREATES_C16:=3000}"
: "${BENCH_SKIP_BUILD:=0}"
: "${BENCH_PERF:=0}"

BENCH_STARTED=$(date +%s)
for row in ${BENCH_ROWS//,/ }; do
  case $row in writes | poll | push | provision | mem | steady | opamp-push) ;; *) echo "unknown row in BENCH_ROWS: $row" >&2; exit 2 ;; esac
done
# Whether row $1 was asked for.
wants() { [[ ",$BENCH_ROWS," == *",$1,"* ]]; }

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LINKMESH=$TARGET_DIR/release/linkmesh
BASELINE=$TARGET_DIR/release/bench_baseline
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

# Starts `linkmesh serve` on data dir $1 and address $2, with config file $3 if given (the cluster port
# on any free port: a one-node cluster needs no fixed one, and 8081 may be taken); sets SERVER_PID,
# SERVER_URL and STARTUP_S (process start to the first 200 from /readyz).
start_server() {
  local dir=$1 addr=$2 out="$1.stdout" config=()
  [ -n "${3:-}" ] && config=(--config "$3")
  : >"$out"
  local started
  started=$(date +%s%N)
  LINKMESH_ADMIN_PASSWORD=$PASSWORD LINKMESH_LOG="${BENCH_SERVER_LOG:-warn}" \
    "$LINKMESH" serve "${config[@]}" --data-dir "$dir" --http-addr "$addr" --rpc-addr 127.0.0.1:0 \
    >"$out" 2>>"$dir.stderr" &
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

# With BENCH_PERF=1: profiles pid $1 for $2 seconds after a warm-up of $4 seconds (default 3), into
# $BENCH_DIR/<name>.perf.txt.
profile() {
  [ "$BENCH_PERF" = 1 ] && command -v perf >/dev/null || return 0
  local pid=$1 seconds=$2 name=$3 delay=${4:-3}
  (
    sleep "$delay"
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
[ -x "$LINKMESH" ] || die "release binary missing: $LINKMESH"
if wants writes || wants poll || wants push; then
  [ -x "$BASELINE" ] || die "release binary missing: $BASELINE"
fi

NPROC=$(nproc)
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM_GIB=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
log "machine: $NPROC CPUs ($CPU_MODEL), $MEM_GIB GiB; results in $BENCH_DIR"
LOAD_BEFORE=$(loadavg)

RESULTS=$BENCH_DIR/results.md
# Appends table lines to results.md (and shows them) as soon as a row has them.
emit() { printf '%s\n' "$@" | tee -a "$RESULTS"; }
us_per_call() { calc "$(val "$1" RUN_SERVER_CPU_S) * 1e6 / ($(val "$1" "$2") + 1e-9)" 0; }
lat() { echo "p50 $(val "$1" "$2_P50_MS") ms, p99 $(val "$1" "$2_P99_MS") ms"; }
# CPU-seconds of the server and of the load generator, and the machine's idle share, during a row.
cpu_note() {
  echo "server $(val "$1" RUN_SERVER_CPU_S) CPU-s, load generator $(val "$1" CLIENT_CPU_S) CPU-s, machine $(val "$1" MACHINE_IDLE_PCT)% idle"
}

: >"$RESULTS"
emit "# linkmesh benchmarks" "" \
  "- machine: $NPROC CPUs, $CPU_MODEL, $MEM_GIB GiB RAM; load average $LOAD_BEFORE before" \
  "- load generator: \`linkmesh simulate --closed-loop\`, $BENCH_CONNECTIONS connections, $BENCH_DURATION per row, on the same machine" \
  "- run: $(date -u +%Y-%m-%dT%H:%M:%SZ), rows $BENCH_ROWS, results in $BENCH_DIR" "" \
  "| measurement | linkmesh | baseline (same run) | ratio | notes |" "|---|---|---|---|---|"

# The password reaches `simulate` through the environment, never a command line or a log.
export LINKMESH_ADMIN_PASSWORD=$PASSWORD

# ---- Server P: Raft writes, then poll and push rows with BENCH_POLL_COLLECTORS tokens ------------
# The closed loop calls each of its BENCH_POLL_COLLECTORS tokens back to back: at ~26k calls/s over 10000
# tokens that is ~2.6 calls/s per token, beyond the default poll bucket (burst 10, 2/s), and no collector
# calls that often. The bucket is raised so every call is served; its check stays on the measured path.
if wants writes || wants poll || wants push; then
  cat >"$BENCH_DIR/server-p.toml" <<'TOML'
[collectors]
poll_burst = 1000000
polls_per_second = 1000000.0
TOML
  start_server "$BENCH_DIR/server-p" 127.0.0.1:0 "$BENCH_DIR/server-p.toml"
  P_URL=$SERVER_URL
  admin=(--url "$P_URL")
fi

if wants writes; then
  # ---- Durable-write baseline, then one Raft write per call (no batch) -------------------------
  "$BASELINE" fsync --dir "$BENCH_DIR/fsync" --duration 3s >"$BENCH_DIR/fsync.env"
  FSYNC_PER_S=$(sed -n 's/^FSYNC_PER_S=//p' "$BENCH_DIR/fsync.env")
  simulate creates-c1 "${admin[@]}" --create-only --collectors "$BENCH_CREATES_C1" --name-prefix w1- \
    --provision-concurrency 1 --provision-batch 1
  simulate creates-c16 "${admin[@]}" --create-only --collectors "$BENCH_CREATES_C16" --name-prefix w16- \
    --provision-concurrency 16 --provision-batch 1
  emit "| Raft writes: collectors created, 1 call at a time | $(val creates-c1 PROVISION_CREATE_COLLECTOR_OK_PER_S) creates/s; $(lat creates-c1 PROVISION_CREATE_COLLECTOR) | fsync loop: $(thousands "$FSYNC_PER_S") writes/s | $(ratio "$(val creates-c1 PROVISION_CREATE_COLLECTOR_OK_PER_S)" "$FSYNC_PER_S") | $BENCH_CREATES_C1 collectors, one entry each |" \
    "| Raft writes: collectors created, 16 calls at a time | $(val creates-c16 PROVISION_CREATE_COLLECTOR_OK_PER_S) creates/s; $(lat creates-c16 PROVISION_CREATE_COLLECTOR) | fsync loop: $(thousands "$FSYNC_PER_S") writes/s | $(ratio "$(val creates-c16 PROVISION_CREATE_COLLECTOR_OK_PER_S)" "$FSYNC_PER_S") | $BENCH_CREATES_C16 collectors, one entry each (see the provisioning row for batches) |"
fi

if wants poll || wants push; then
  POLL_TOKENS=$BENCH_DIR/poll-tokens.tsv
  simulate provision-poll "${admin[@]}" --provision-only --collectors "$BENCH_POLL_COLLECTORS" \
    --name-prefix sim- --tokens-file "$POLL_TOKENS" --provision-concurrency "$BENCH_PROVISION_CONCURRENCY"
  load=(--closed-loop --connections "$BENCH_CONNECTIONS" --duration "$BENCH_DURATION" --collectors "$BENCH_POLL_COLLECTORS")
  poll=(--url "$P_URL" --tokens-file "$POLL_TOKENS" "${load[@]}" --server-pid "$SERVER_PID")
fi

if wants poll; then
  # Baseline: the bare handler, the same load generator and flags, tokens that exist nowhere.
  awk -v n="$BENCH_POLL_COLLECTORS" 'BEGIN { for (i = 1; i <= n; i++) printf "sim-%d\tcol_none%d\tlmct_none%d\n", i, i, i }' \
    >"$BENCH_DIR/baseline-tokens.tsv"
  : >"$BENCH_DIR/baseline.stdout"
  "$BASELINE" serve --addr 127.0.0.1:0 >"$BENCH_DIR/baseline.stdout" 2>"$BENCH_DIR/baseline.stderr" &
  BASELINE_PID=$!
  until grep -q '^listening on ' "$BENCH_DIR/baseline.stdout"; do sleep 0.01; done
  BASELINE_URL="http://$(sed -n 's/^listening on \([^,]*\).*/\1/p' "$BENCH_DIR/baseline.stdout" | head -n1)"
  profile "$BASELINE_PID" 5 baseline
  simulate baseline --url "$BASELINE_URL" --tokens-file "$BENCH_DIR/baseline-tokens.tsv" "${load[@]}" \
    --skip-startup --server-pid "$BASELINE_PID"
  { kill "$BASELINE_PID" && wait "$BASELINE_PID"; } 2>/dev/null || true
  BASELINE_PID=""

  profile "$SERVER_PID" 5 not-modified
  simulate not-modified "${poll[@]}"
  HALF_RATE=$(calc "$(val not-modified RUN_GET_CONFIG_OK_PER_S) / 2" 0)
  simulate half-rate "${poll[@]}" --rate "$HALF_RATE"
  profile "$SERVER_PID" 5 changed
  simulate changed "${poll[@]}" --workload get-config-changed --skip-startup

  BASE_RPS=$(val baseline RUN_GET_CONFIG_OK_PER_S)
  NM_RPS=$(val not-modified RUN_GET_CONFIG_OK_PER_S)
  CH_RPS=$(val changed RUN_GET_CONFIG_OK_PER_S)
  BASE_US=$(us_per_call baseline RUN_GET_CONFIG_OK)
  emit "| GetConfig, bare actix-web handler (the baseline) | $(thousands "$BASE_RPS") req/s; $(lat baseline RUN_GET_CONFIG); $BASE_US µs server CPU/req | — | 1.00 | $(cpu_note baseline) |" \
    "| GetConfig \`not_modified\`, $BENCH_POLL_COLLECTORS distinct tokens | $(thousands "$NM_RPS") req/s; $(lat not-modified RUN_GET_CONFIG); $(us_per_call not-modified RUN_GET_CONFIG_OK) µs server CPU/req | $(thousands "$BASE_RPS") req/s | $(ratio "$NM_RPS" "$BASE_RPS") | goal ≥ 0.60; CPU/req ratio $(ratio "$BASE_US" "$(us_per_call not-modified RUN_GET_CONFIG_OK)"); $(cpu_note not-modified) |" \
    "| GetConfig \`not_modified\` at half the peak rate ($HALF_RATE req/s offered) | $(thousands "$(val half-rate RUN_GET_CONFIG_OK_PER_S)") req/s; $(lat half-rate RUN_GET_CONFIG) | — | — | goal p99 ≤ 5 ms; $(cpu_note half-rate) |" \
    "| GetConfig returning the config (empty hash) | $(thousands "$CH_RPS") req/s; $(lat changed RUN_GET_CONFIG); $(us_per_call changed RUN_GET_CONFIG_OK) µs server CPU/req | $(thousands "$BASE_RPS") req/s | $(ratio "$CH_RPS" "$BASE_RPS") | CPU/req ratio $(ratio "$BASE_US" "$(us_per_call changed RUN_GET_CONFIG_OK)"); $(cpu_note changed) |"
fi

if wants push; then
  profile "$SERVER_PID" 5 push
  simulate push "${poll[@]}" --workload own-metrics --skip-startup
  simulate decode-only --decode-only --duration "$BENCH_DURATION"
  DEC_PPS=$(val decode-only RUN_DECODE_OK_PER_S)
  DECODE_US=$(calc "$(val decode-only CLIENT_CPU_S) * 1e6 / ($(val decode-only RUN_DECODE_OK) + 1e-9)" 0)
  POINTS=$(calc "$(val decode-only RUN_DECODE_POINTS) / ($(val decode-only RUN_DECODE_OK) + 1e-9)" 0)
  if [ "$(val push RUN_OWN_METRICS_OK)" = 0 ] && [ "$(val push RUN_ERROR_OWN_METRICS_HTTP_404)" != 0 ]; then
    emit "| own_metrics pushes (Alloy payload, $POINTS points, gzip) | n/a (endpoint missing) | decode-only $(thousands "$DEC_PPS") pushes/s | - | |"
  else
    PUSH_PPS=$(val push RUN_OWN_METRICS_OK_PER_S)
    emit "| own_metrics pushes (Alloy payload, $POINTS points, gzip) | $(thousands "$PUSH_PPS") pushes/s = $(thousands "$(val push RUN_OWN_METRICS_POINTS_PER_S)") points/s; $(lat push RUN_OWN_METRICS); $(us_per_call push RUN_OWN_METRICS_OK) µs server CPU/push | decode-only in-process: $(thousands "$DEC_PPS") pushes/s ($NPROC threads) | $(ratio "$PUSH_PPS" "$DEC_PPS") | goal ≥ 0.70; CPU/push ratio $(ratio "$DECODE_US" "$(us_per_call push RUN_OWN_METRICS_OK)") (decode $DECODE_US µs); errors $(val push RUN_ERRORS); $(cpu_note push) |"
  fi
fi
[ -n "$SERVER_PID" ] && stop_server

# ---- Server M: provisioning BENCH_MEM_COLLECTORS with tokens, then memory and start-up ---------
# The provision row and the mem row share server M and its tokens: asked for together, the
# collectors are provisioned once.
MEM_TOKENS=$BENCH_DIR/mem-tokens.tsv
MEM_PROVISIONED=0
provision_mem() {
  start_server "$BENCH_DIR/server-m" 127.0.0.1:0
  M_ADDR=${SERVER_URL#http://}
  sleep 1
  RSS_EMPTY=$(rss_kib "$SERVER_PID")
  simulate provision-mem --url "$SERVER_URL" --provision-only \
    --collectors "$BENCH_MEM_COLLECTORS" --name-prefix m- --tokens-file "$MEM_TOKENS" \
    --provision-concurrency "$BENCH_PROVISION_CONCURRENCY" --provision-batch "$BENCH_PROVISION_BATCH"
  MEM_N=$(val provision-mem COLLECTORS)
  sleep 2
  RSS_CREATED=$(rss_kib "$SERVER_PID")
  DISK_MIB=$(du -sm "$BENCH_DIR/server-m" | cut -f1)
  stop_server
  MEM_PROVISIONED=1
}

if wants provision; then
  # Baseline in the same run: the per-collector path (create, then mint: two calls and two Raft
  # writes each) on a server of its own, BENCH_PROVISION_SINGLE collectors.
  start_server "$BENCH_DIR/server-s" 127.0.0.1:0
  simulate provision-single --url "$SERVER_URL" --provision-only --collectors "$BENCH_PROVISION_SINGLE" \
    --name-prefix s- --tokens-file "$BENCH_DIR/single-tokens.tsv" \
    --provision-concurrency "$BENCH_PROVISION_CONCURRENCY" --provision-batch 1
  stop_server
  SINGLE_RATE=$(calc "$(val provision-single COLLECTORS) / ($(val provision-single PROVISION_ELAPSED_S) + 1e-9)" 0)
  provision_mem
  BATCH_RATE=$(calc "$MEM_N / ($(val provision-mem PROVISION_ELAPSED_S) + 1e-9)" 0)
  emit "| Provisioning $MEM_N collectors with tokens (\`POST /collectors:batch\`, $BENCH_PROVISION_BATCH per call = 1 Raft entry, $BENCH_PROVISION_CONCURRENCY calls at a time) | $BATCH_RATE collectors/s over $(val provision-mem PROVISION_ELAPSED_S) s | create + mint per collector (2 writes each), $BENCH_PROVISION_SINGLE collectors: $SINGLE_RATE collectors/s | $(ratio "$BATCH_RATE" "$SINGLE_RATE") | $(val provision-mem PROVISION_ERRORS) errors; RSS after $(calc "$RSS_CREATED / 1024" 0) MiB; data dir $DISK_MIB MiB; machine $(val provision-mem MACHINE_IDLE_PCT)% idle |"
fi

if wants mem; then
  [ "$MEM_PROVISIONED" = 1 ] || provision_mem
  per_collector() { calc "($1 - $RSS_EMPTY) * 1024 / $MEM_N" 0; }
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
  emit "| RSS, empty server | $(calc "$RSS_EMPTY / 1024" 1) MiB | — | — | |" \
    "| RSS per collector, $MEM_N created (same process) | $(per_collector "$RSS_CREATED") B | — | — | $(calc "$RSS_CREATED / 1024" 0) MiB total |" \
    "| RSS per collector, $MEM_N idle after restart | $(per_collector "$RSS_IDLE") B | goal 1024 B | $(ratio "$(per_collector "$RSS_IDLE")" 1024) | $(calc "$RSS_IDLE / 1024" 0) MiB total |" \
    "| RSS per collector, $MEM_N after each polled once | $(per_collector "$RSS_POLLED") B | — | — | $(calc "$RSS_POLLED / 1024" 0) MiB total; $(val poll-once RUN_GET_CONFIG_OK_PER_S) polls/s |" \
    "| RSS per collector, $MEM_N connected, after restart | $(per_collector "$RSS_RESTARTED") B | — | — | $(calc "$RSS_RESTARTED / 1024" 0) MiB total |" \
    "| Start-up to /readyz 200, $MEM_N collectors (never polled) | $STARTUP_AWAITING_S s | goal 10 s at 1M | — | |" \
    "| Start-up to /readyz 200, $MEM_N connected collectors (actors re-activated) | $STARTUP_CONNECTED_S s | goal 10 s at 1M | — | |"
fi

# ---- The fleet in its steady state: every collector polls at BENCH_STEADY_INTERVAL ---------------
# The open loop (one task per collector, shared connections) on server M's collectors: start-ups
# spread over the ramp-up (each runs Alloy's start sequence), then a measured phase after the
# warm-up: round trips from the generator, the server's own handling times, and the status changes
# it counted (read from its /metrics, open to loopback for this run). A steady fleet changes none.
seconds_of() { # 90s, 10m, 1h -> seconds
  case $1 in *h) echo $((${1%h} * 3600)) ;; *m) echo $((${1%m} * 60)) ;; *s) echo "${1%s}" ;; *) echo "$1" ;; esac
}
if wants steady; then
  [ "$MEM_PROVISIONED" = 1 ] || provision_mem
  interval_s=$(seconds_of "$BENCH_STEADY_INTERVAL")
  ramp_s=$(seconds_of "${BENCH_STEADY_RAMP_UP:-$((MEM_N / 2000 > interval_s ? MEM_N / 2000 : interval_s))s}")
  warm_s=$(seconds_of "${BENCH_STEADY_WARM_UP:-$((ramp_s + 2 * interval_s))s}")
  measure_s=$(seconds_of "$BENCH_STEADY_MEASURE")
  cat >"$BENCH_DIR/server-m.toml" <<'TOML'
[metrics]
allow_anonymous_from = ["127.0.0.0/8"]
TOML
  start_server "$BENCH_DIR/server-m" "$M_ADDR" "$BENCH_DIR/server-m.toml"
  profile "$SERVER_PID" "$((measure_s < 60 ? measure_s : 60))" steady "$((warm_s + 5))"
  simulate steady --url "$SERVER_URL" --tokens-file "$MEM_TOKENS" --name-prefix m- --collectors "$MEM_N" \
    --poll-interval "${interval_s}s" --ramp-up "${ramp_s}s" --warm-up "${warm_s}s" \
    --duration "$((warm_s + measure_s))s" --metrics-interval 0s --connections "$BENCH_STEADY_CONNECTIONS" \
    --server-pid "$SERVER_PID"
  RSS_STEADY=$(rss_kib "$SERVER_PID")
  stop_server
  STEADY_RATE=$(val steady RUN_GET_CONFIG_OK_PER_S)
  emit "| $MEM_N connected collectors polling every ${interval_s} s (open loop: start-ups over ${ramp_s} s, measured for ${measure_s} s after a ${warm_s} s warm-up) | $STEADY_RATE polls/s; round trip $(lat steady RUN_GET_CONFIG); server handling p50 ≤ $(val steady RUN_SERVER_GET_CONFIG_P50_LE_MS) ms, p99 ≤ $(val steady RUN_SERVER_GET_CONFIG_P99_LE_MS) ms | offered: $(calc "$MEM_N / $interval_s" 0) polls/s | $(ratio "$STEADY_RATE" "$(calc "$MEM_N / $interval_s" 0)") | goal p99 ≤ 5 ms, no status change: $(val steady RUN_SERVER_STATUS_CHANGES) status changes in the measured phase ($(val steady RUN_SERVER_STATUS_CHANGES_TO_STALE) to stale); $(val steady RUN_ERRORS) errors; generator's wait for one of its $BENCH_STEADY_CONNECTIONS connections p99 $(val steady RUN_GET_CONFIG_QUEUE_WAIT_P99_MS) ms (not in the round trip); RSS $(calc "$RSS_STEADY / 1024" 0) MiB; $(cpu_note steady) |"
fi

# ---- OpAMP push: a fleet-wide change reaching agents connected over WebSocket (issue 18) --------
# BENCH_OPAMP_AGENTS opamp collectors with a label of their own, an agent on each (one WebSocket each,
# first config applied), then BENCH_OPAMP_ROUNDS fleet-wide writes (a source for the label), each
# changing every agent's config: the time from just before the write to each agent's receipt.
if wants opamp-push; then
  start_server "$BENCH_DIR/server-o" 127.0.0.1:0
  simulate opamp-push --url "$SERVER_URL" --opamp-push --collectors "$BENCH_OPAMP_AGENTS" \
    --rounds "$BENCH_OPAMP_ROUNDS" --metrics-interval 0s
  RSS_OPAMP=$(rss_kib "$SERVER_PID")
  stop_server
  emit "| A fleet-wide change reaching $BENCH_OPAMP_AGENTS OpAMP agents over WebSocket ($(val opamp-push ROUNDS) rounds) | received $(val opamp-push RECEIVED) of $(val opamp-push EXPECTED); p50 $(val opamp-push P50_MS) ms, p99 $(val opamp-push P99_MS) ms, max $(val opamp-push MAX_MS) ms after the REST write began (the write itself: $(val opamp-push WRITE_MS) ms on average) | — | — | goal p99 ≤ 1 s; server RSS $(calc "$RSS_OPAMP / 1024" 0) MiB with the agents connected; load generator $(val opamp-push CLIENT_CPU_S) CPU-s; machine $(val opamp-push MACHINE_IDLE_PCT)% idle |"
fi

TOTAL_S=$(($(date +%s) - BENCH_STARTED))
emit "" "- load average after: $(loadavg); total run time $((TOTAL_S / 60)) min $((TOTAL_S % 60)) s (rows $BENCH_ROWS)"
log "total run time: $((TOTAL_S / 60)) min $((TOTAL_S % 60)) s; results in $RESULTS"
