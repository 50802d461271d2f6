#!/usr/bin/env bash
# Three-node benchmarks (issue 12, item 8): three `linkmesh serve` processes on loopback (node 1
# bootstraps, nodes 2 and 3 join with join tokens), measured against a bare-handler baseline in the
# same run, on the same cores. Prints one table (also written to $BENCH_DIR/results.md); BENCHMARKS.md,
# section "Three nodes", explains the rows. Not run by CI.
#
# Rows: the bare handler; `not_modified` polls of the collectors one node owns, sent to that node
# (owner-local) and to another node (forwarded once); the same tokens spread over all nodes; creates
# through a follower and through the leader; leader failover (SIGKILL the leader → first acknowledged
# write through a survivor); owner failover (SIGKILL an owner that is not the leader → its collectors'
# polls through a survivor succeed again); read-your-writes on another node (create on one node, read it
# on another until it is there); polls failed after one retry outside the failover windows; status changes through the one Raft group
# (`simulate --workload flap` through all three nodes: every call changes a collector's status, which
# the owner's activity writer writes through Raft): how many per second the replicated record takes
# and whether it keeps up (its queues empty within moments of the run's end).
# Three nodes and the load generator share the machine: every row prints the CPU-seconds each process
# used during it (utime + stime from /proc/<pid>/stat) and the load average.
#
# Needs cargo, curl and jq (set-up calls: sign-in, join tokens, collector lists) and bash ≥ 5 (the timed
# loops use bash's /dev/tcp and $EPOCHREALTIME, so no process is forked between a request and its
# timestamp; the failover loops pause 10 ms between rounds of attempts).
#
# Knobs (environment):
#   BENCH_DIR                 where data dirs, logs and summaries go (default target/bench/cluster-<time>)
#   BENCH_POLL_COLLECTORS     collectors provisioned for the poll rows (3000; about a third per node)
#   BENCH_CONNECTIONS         closed-loop connections of the load generator (16)
#   BENCH_DURATION            length of each closed-loop poll row (15s)
#   BENCH_CREATES_C1, BENCH_CREATES_C16  creates per write row, 1 and 16 calls at a time (200, 1500)
#   BENCH_FAILOVER_REPEATS    SIGKILLs per failover row (5)
#   BENCH_FAILOVER_DEADLINE   seconds one failover may take before it counts as not recovered (60)
#   BENCH_FAILOVER_SAMPLE     collectors of the killed owner whose polls are watched (5)
#   BENCH_RYW_CREATES         creates of the read-your-writes row (200)
#   BENCH_NODE_DOWN_AFTER     cluster.node_down_after of the nodes (unset: the product default, 10s)
#   BENCH_FLAP_DURATION       length of the status-change row (60s)
#   BENCH_FLAP_CONNECTIONS    closed-loop connections of the status-change row (64)
#   BENCH_FLEET_COLLECTORS    fleet row (10): collectors provisioned and each polled once (1000000)
#   BENCH_ROWS                rows to run, comma-separated, of polls (rows 1-3), writes (4), ryw (7),
#                             failover (5, 6), spread (8), flap (9); default all. The fleet row (10:
#                             BENCH_FLEET_COLLECTORS on all three nodes, memory, replication, a
#                             restart; ~15 min and ~12 GiB at 1M) runs only when named, e.g.
#                             BENCH_ROWS=fleet
#   BENCH_SKIP_BUILD=1        use the binaries already in BENCH_BIN_DIR
#   BENCH_BIN_DIR             where linkmesh and bench_baseline are (target/release; a debug build
#                             directory for a quick check of the script itself, with BENCH_SKIP_BUILD=1)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
umask 077

: "${BENCH_DIR:=$ROOT/target/bench/cluster-$(date +%Y%m%d-%H%M%S)}"
: "${BENCH_POLL_COLLECTORS:=3000}"
: "${BENCH_CONNECTIONS:=16}"
: "${BENCH_DURATION:=15s}"
: "${BENCH_CREATES_C1:=200}"
: "${BENCH_CREATES_C16:=1500}"
: "${BENCH_FAILOVER_REPEATS:=5}"
: "${BENCH_FAILOVER_DEADLINE:=60}"
: "${BENCH_FAILOVER_SAMPLE:=5}"
: "${BENCH_RYW_CREATES:=200}"
: "${BENCH_NODE_DOWN_AFTER:=}"
: "${BENCH_FLAP_DURATION:=60s}"
: "${BENCH_FLAP_CONNECTIONS:=64}"
: "${BENCH_FLEET_COLLECTORS:=1000000}"
: "${BENCH_ROWS:=all}"
: "${BENCH_SKIP_BUILD:=0}"
: "${BENCH_BIN_DIR:=$ROOT/target/release}"

LINKMESH=$BENCH_BIN_DIR/linkmesh
BASELINE=$BENCH_BIN_DIR/bench_baseline
PASSWORD="bench-$$-$RANDOM$RANDOM"
mkdir -p "$BENCH_DIR"
NODES=(1 2 3)
declare -A PID=() HTTP=() RPC=() CPU_ACC=() NODE_ID=()
BASELINE_PID=""
WATCHER_PID=""
CLK_TCK=$(getconf CLK_TCK)

for row in ${BENCH_ROWS//,/ }; do
  case $row in all | polls | writes | ryw | failover | spread | flap | fleet) ;; *) echo "unknown row in BENCH_ROWS: $row" >&2; exit 2 ;; esac
done
# True when row group $1 is to run (BENCH_ROWS); the fleet row only when named.
row_on() { [[ ( ",$BENCH_ROWS," == *",all,"* && $1 != fleet ) || ",$BENCH_ROWS," == *",$1,"* ]]; }
log() { printf '[bench-cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Every process this script started, and only those, by pid: SIGTERM, then SIGKILL what is left.
cleanup() {
  local pids=() pid
  for pid in "${PID[@]}" "$BASELINE_PID" "$WATCHER_PID"; do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && pids+=("$pid")
  done
  [ ${#pids[@]} = 0 ] && return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local deadline=$((SECONDS + 20))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- Small helpers -------------------------------------------------------------------------------
# A value from a `linkmesh simulate --summary-shell` file (0 when absent).
val() { local v; v=$(sed -n "s/^$2=//p" "$BENCH_DIR/$1.env" 2>/dev/null | head -n1); echo "${v:-0}"; }
calc() { awk "BEGIN { v = $1; printf \"%.${2:-2}f\", v }"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
thousands() { printf "%'.0f" "$1" 2>/dev/null || printf "%.0f" "$1"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# Median, p99 and max of the numbers in file $1 (one a line), with unit $2.
distribution() {
  sort -n "$1" | awk -v unit="$2" '{ v[NR] = $1 } END {
    if (NR == 0) { printf "no samples"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    p = int(NR * 0.99 + 0.999999); if (p > NR) p = NR
    printf "median %.3f %s, p99 %.3f %s, max %.3f %s (n=%d)", m, unit, v[p], unit, v[NR], unit, NR }'
}
# Median and worst of the numbers in file $1 (seconds); "n/a" lines (not recovered in time) are
# counted apart.
median_worst() {
  local bad
  bad=$(grep -c '^n/a' "$1" || true)
  grep -v '^n/a' "$1" | sort -n | awk -v bad="$bad" '{ v[++n] = $1 } END {
    if (n == 0) { printf "never recovered (%d attempts)", bad; exit }
    m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    printf "median %.2f s, worst %.2f s", m, v[n]
    if (bad) printf "; %d of %d not recovered within the deadline", bad, n + bad }'
}

# CPU-seconds (utime + stime) of pid $1 so far; 0 when it is gone.
cpu_of() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  echo "${stat##*) }" | awk -v hz="$CLK_TCK" '{ printf "%.2f", ($12 + $13) / hz }'
}
# CPU-seconds of node $1 over all its processes in this run (the killed ones included).
node_cpu() { calc "${CPU_ACC[$1]:-0} + $(cpu_of "${PID[$1]:-0}")"; }
cpu_snapshot() { local n; for n in "${NODES[@]}"; do printf '%s ' "$(node_cpu "$n")"; done; cpu_of "${BASELINE_PID:-0}"; }
# "CPU-s: node1 x, node2 y, node3 z, …" between two snapshots (before and after also go to
# cpu.tsv), with the load generator's CPU-s ($4, when given) and the load average.
cpu_note() {
  local row=$1 before=($2) after=($3) client=${4:-} text="CPU-s: " n
  for n in "${NODES[@]}"; do
    printf '%s\tnode%s\t%s\t%s\n' "$row" "$n" "${before[$((n - 1))]}" "${after[$((n - 1))]}" >>"$BENCH_DIR/cpu.tsv"
    text+="node$n"
    [ "$n" = "${NODE_A:-}" ] && text+=" (A)"
    [ "$n" = "${NODE_B:-}" ] && text+=" (B)"
    text+=" $(calc "${after[$((n - 1))]} - ${before[$((n - 1))]}"), "
  done
  if [ "${after[3]}" != 0 ]; then
    printf '%s\tbaseline\t%s\t%s\n' "$row" "${before[3]}" "${after[3]}" >>"$BENCH_DIR/cpu.tsv"
    text+="baseline $(calc "${after[3]} - ${before[3]}"), "
  fi
  [ -n "$client" ] && text+="load generator $client, "
  echo "${text%, }; load avg $(loadavg | cut -d' ' -f1)"
}

# One HTTP/1.1 request over bash's /dev/tcp (no fork): req HOST:PORT METHOD PATH [BEARER] [JSON BODY]
# [TIMEOUT_S]. Sets STATUS (000: unreachable or no answer in time) and BODY.
req() {
  local addr=$1 method=$2 path=$3 bearer=${4:-} body=${5:-} timeout=${6:-10} raw="" head rc=0
  STATUS=000 BODY=""
  # A peer that closes mid-request must fail the write, not kill the script.
  trap '' PIPE
  if { exec 9<>"/dev/tcp/${addr%:*}/${addr##*:}"; } 2>/dev/null; then
    head="$method $path HTTP/1.1\r\nHost: $addr\r\nConnection: close\r\n"
    [ -n "$bearer" ] && head+="Authorization: Bearer $bearer\r\n"
    [ -n "$body" ] && head+="Content-Type: application/json\r\nContent-Length: ${#body}\r\n"
    if { printf "$head\r\n%s" "$body" >&9; } 2>/dev/null; then
      IFS= read -r -d '' -t "$timeout" -u 9 raw || rc=$?
      # rc > 128: no complete answer in time.
      if ((rc <= 128)) && [[ $raw =~ ^HTTP/1\.[01]\ ([0-9]{3}) ]]; then
        STATUS=${BASH_REMATCH[1]}
        BODY=${raw#*$'\r\n\r\n'}
      fi
    fi
    exec 9>&-
  fi
  trap - PIPE
}

# `curl` against node $1's REST API with the admin service-account token (set-up calls only).
api() {
  local node=$1 method=$2 path=$3
  shift 3
  # The token goes in a header file (mode 0600), never on curl's command line.
  curl -sf --max-time 30 -X "$method" -H "@$BENCH_DIR/.auth-header" -H 'content-type: application/json' \
    "$@" "http://${HTTP[$node]}$path"
}

# ---- Nodes ---------------------------------------------------------------------------------------
write_config() {
  # The closed loops call each token far faster than a collector would: the poll bucket is raised so
  # every call is served (its check stays on the measured path), as in scripts/bench.sh.
  {
    echo "[collectors]"
    echo "poll_burst = 1000000"
    echo "polls_per_second = 1000000.0"
    # The simulator reads every node's /metrics (status changes, live updates written) from loopback.
    echo "[metrics]"
    echo "allow_anonymous_from = [\"127.0.0.0/8\"]"
    if [ -n "$BENCH_NODE_DOWN_AFTER" ]; then
      echo "[cluster]"
      echo "node_down_after = \"$BENCH_NODE_DOWN_AFTER\""
    fi
  } >"$BENCH_DIR/node.toml"
}

# Starts node $1 (bootstrap, join with LINKMESH_JOIN_TOKEN set by the caller, or resume) and waits
# for its addresses; ports are 0 at the first start and the same ones on a restart.
start_node() {
  local n=$1 out=$BENCH_DIR/node$1.stdout
  shift
  : >"$out"
  LINKMESH_ADMIN_PASSWORD=$PASSWORD LINKMESH_LOG=warn \
    "$LINKMESH" serve --config "$BENCH_DIR/node.toml" --data-dir "$BENCH_DIR/node$n" --node-name "node-$n" \
    --http-addr "${HTTP[$n]:-127.0.0.1:0}" --rpc-addr "${RPC[$n]:-127.0.0.1:0}" "$@" \
    >"$out" 2>>"$BENCH_DIR/node$n.stderr" &
  PID[$n]=$!
  local deadline=$((SECONDS + 120))
  until grep -q '^listening on ' "$out"; do
    kill -0 "${PID[$n]}" 2>/dev/null || die "node $n exited; see $BENCH_DIR/node$n.stderr"
    ((SECONDS < deadline)) || die "node $n printed no address in 120 s; see $BENCH_DIR/node$n.stderr"
    sleep 0.02
  done
  HTTP[$n]=$(sed -n 's/^listening on \([^,]*\).*/\1/p' "$out" | head -n1)
  RPC[$n]=$(sed -n 's/^cluster port listening on \(.*\)$/\1/p' "$out" | head -n1)
}

# Waits until node $1 answers /readyz with 200 (caught up and allowed to serve).
wait_ready() {
  local n=$1 deadline=$((SECONDS + ${2:-120}))
  while true; do
    req "${HTTP[$n]}" GET /readyz "" "" 2
    [ "$STATUS" = 200 ] && return 0
    kill -0 "${PID[$n]}" 2>/dev/null || die "node $n exited; see $BENCH_DIR/node$n.stderr"
    ((SECONDS < deadline)) || { log "node $n not ready after ${2:-120} s"; return 1; }
    sleep 0.05
  done
}

kill_node() {
  local n=$1
  CPU_ACC[$n]=$(calc "${CPU_ACC[$n]:-0} + $(cpu_of "${PID[$n]}")")
  kill -KILL "${PID[$n]}"
  wait "${PID[$n]}" 2>/dev/null || true
  PID[$n]=""
}

# The cluster as node $1 sees it (GET /api/v1/cluster), compact JSON; empty when it does not answer.
cluster_view() { api "$1" GET /api/v1/cluster 2>/dev/null | jq -c . 2>/dev/null || true; }
# Our node number of the node with id $1.
node_of_id() { local n; for n in "${NODES[@]}"; do [ "${NODE_ID[$n]}" = "$1" ] && echo "$n" && return; done; return 0; }
leader_node() {
  local n view
  for n in "${NODES[@]}"; do
    [ -n "${PID[$n]}" ] || continue
    view=$(cluster_view "$n")
    [ -n "$view" ] || continue
    node_of_id "$(jq -r '.leader_id // empty' <<<"$view")"
    return 0
  done
  return 0
}

# Waits until every running node reports the same view: a leader, all three members and none of them
# unreachable, and the same slot counts per member for three looks a second apart (no slot move in
# flight).
# Returns 1 at the deadline (the run goes on; the log says so).
wait_settled() {
  local deadline=$((SECONDS + ${1:-90})) previous="" current="" n running same=0
  while ((SECONDS < deadline)); do
    current="" running=0
    for n in "${NODES[@]}"; do
      [ -n "${PID[$n]}" ] || continue
      running=$((running + 1))
      current+="$(cluster_view "$n" | jq -r '"\(.leader_id // 0) \([.members[] | select(.state == "unreachable")] | length) \(.members | length) \([.members[] | "\(.id):\(.slots)"] | sort | join(","))"' 2>/dev/null || echo down)"$'\n'
    done
    if [ "$current" = "$previous" ] && [ "$(sort -u <<<"$current" | grep -c .)" = 1 ] &&
      [ "$(grep -c . <<<"$current")" = "$running" ] && [[ $current =~ ^[1-9][0-9]*\ 0\ 3\  ]]; then
      same=$((same + 1))
      ((same >= 2)) && return 0
    else
      same=0
    fi
    previous=$current
    sleep 1
  done
  log "cluster not settled after ${1:-90} s: ${current//$'\n'/; }"
  return 1
}

# Collector id → owner node id for every collector (the complete list), as "id<TAB>owner" lines.
owners() { api "$1" GET /api/v1/collectors | jq -r '.collectors[] | "\(.id)\t\(.owner_node // "none")"'; }

# ---- Start ---------------------------------------------------------------------------------------
if [ "$BENCH_SKIP_BUILD" != 1 ]; then
  log "building release binaries"
  cargo build --release --locked --bin linkmesh --bin bench_baseline >&2
fi
[ -x "$LINKMESH" ] && [ -x "$BASELINE" ] || die "no linkmesh and bench_baseline in $BENCH_BIN_DIR"
command -v curl >/dev/null && command -v jq >/dev/null || die "curl and jq are needed"

NPROC=$(nproc)
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM_GIB=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
log "machine: $NPROC CPUs ($CPU_MODEL), $MEM_GIB GiB; results in $BENCH_DIR"
LOAD_BEFORE=$(loadavg)
STARTED_AT=$SECONDS
write_config

start_node 1
wait_ready 1 || die "node 1 not ready"
# An admin service-account token for the set-up calls and the timed loops, made as the README's
# onboarding does (the password goes through standard input, never a command line).
printf '{"username":"admin","password":"%s"}' "$PASSWORD" |
  curl -sf -c "$BENCH_DIR/.cookies" -H 'content-type: application/json' --data-binary @- \
    "http://${HTTP[1]}/api/v1/auth/login" >/dev/null || die "cannot sign in on node 1"
ACCOUNT=$(curl -sf -b "$BENCH_DIR/.cookies" -H 'content-type: application/json' \
  -d '{"name":"bench-cluster","role":"admin"}' "http://${HTTP[1]}/api/v1/service-accounts" | jq -r .id)
ADMIN_TOKEN=$(curl -sf -b "$BENCH_DIR/.cookies" -H 'content-type: application/json' -d '{"label":"bench"}' \
  "http://${HTTP[1]}/api/v1/service-accounts/$ACCOUNT/tokens" | jq -r .token)
rm -f "$BENCH_DIR/.cookies"
[[ $ADMIN_TOKEN == lmsat_* ]] || die "no service-account token"
printf 'authorization: Bearer %s\n' "$ADMIN_TOKEN" >"$BENCH_DIR/.auth-header"
for n in 2 3; do
  join=$(api 1 POST /api/v1/cluster/join-tokens -d '{"ttl_seconds":600,"uses":1}' | jq -r .token)
  [[ $join == lmjt_* ]] || die "node 1 minted no join token"
  LINKMESH_JOIN_TOKEN=$join start_node "$n" --join "http://${HTTP[1]}"
  wait_ready "$n" || die "node $n not ready"
done
VIEW=$(cluster_view 1)
for n in "${NODES[@]}"; do
  NODE_ID[$n]=$(jq -r --arg addr "${HTTP[$n]}" '.members[] | select(.http_addr == $addr) | .id' <<<"$VIEW")
  [ -n "${NODE_ID[$n]}" ] || die "node $n (${HTTP[$n]}) not in the member list: $VIEW"
done
wait_settled 120 || true
DOWN_AFTER=${BENCH_NODE_DOWN_AFTER:-10s}
log "nodes: $(for n in "${NODES[@]}"; do printf 'node%s id %s http %s; ' "$n" "${NODE_ID[$n]}" "${HTTP[$n]}"; done)"

# ---- Provisioning and the owner partition ---------------------------------------------------------
# The password reaches `simulate` through the environment, never a command line or a log.
export LINKMESH_ADMIN_PASSWORD=$PASSWORD
simulate() {
  local name=$1
  shift
  log "simulate $name: $*"
  "$LINKMESH" simulate --no-stdout-summary --summary-shell "$BENCH_DIR/$name.env" \
    --summary-json "$BENCH_DIR/$name.json" --progress-interval 5s "$@" 2>"$BENCH_DIR/$name.log" ||
    log "simulate $name failed; see $BENCH_DIR/$name.log"
  [ "$(val "$name" RUN_ERRORS)" = 0 ] || log "simulate $name: $(val "$name" RUN_ERRORS) errors"
}
LEADER=$(leader_node)
[ -n "$LEADER" ] || die "no leader"
ALL_TOKENS=$BENCH_DIR/poll-tokens.tsv
simulate provision --url "http://${HTTP[$LEADER]}" --provision-only --collectors "$BENCH_POLL_COLLECTORS" \
  --name-prefix sim- --tokens-file "$ALL_TOKENS" --provision-concurrency 16
wait_settled 60 || true
owners "$LEADER" >"$BENCH_DIR/owners.tsv"
# A: the node owning most of the collectors; B: another node (not the leader when possible).
NODE_A=$(for n in "${NODES[@]}"; do
  printf '%s %s\n' "$(awk -F'\t' -v id="${NODE_ID[$n]}" '$2 == id' "$BENCH_DIR/owners.tsv" | wc -l)" "$n"
done | sort -rn | head -n1 | cut -d' ' -f2)
NODE_B=""
for n in "${NODES[@]}"; do [ "$n" != "$NODE_A" ] && [ "$n" != "$LEADER" ] && NODE_B=$n && break; done
[ -n "$NODE_B" ] || for n in "${NODES[@]}"; do [ "$n" != "$NODE_A" ] && NODE_B=$n && break; done
A_TOKENS=$BENCH_DIR/tokens-A.tsv
# Renamed a-1 … a-N: simulate reads the names <prefix>1 … <prefix>N from a tokens file and would create
# (or, for an existing name, mint a new token for) every one missing from it.
awk -F'\t' -v id="${NODE_ID[$NODE_A]}" 'NR == FNR { if ($2 == id) mine[$1] = 1; next }
  ($2 in mine) { printf "a-%d\t%s\t%s\n", ++n, $2, $3 }' "$BENCH_DIR/owners.tsv" "$ALL_TOKENS" >"$A_TOKENS"
A_COUNT=$(wc -l <"$A_TOKENS")
SLOT_SPREAD=$(jq -r '[.members[] | "\(.name): \(.slots)"] | join(", ")' <<<"$(cluster_view "$LEADER")")
log "leader node$LEADER; A = node$NODE_A owns $A_COUNT of $BENCH_POLL_COLLECTORS collectors; B = node$NODE_B; slots: $SLOT_SPREAD"
((A_COUNT > 0)) || die "node $NODE_A owns none of the collectors"
# The same tokens for the baseline, with ids that exist nowhere (the bare handler checks nothing).
awk -F'\t' '{ printf "%s\tcol_none%d\tlmct_none%d\n", $1, NR, NR }' "$A_TOKENS" >"$BENCH_DIR/baseline-tokens.tsv"

# Polls_total{path=local|forwarded} on node $1, as "local forwarded".
polls_metric() {
  api "$1" GET /metrics 2>/dev/null | awk '/^linkmesh_polls_total\{/ {
    if ($0 ~ /path="local"/) l += $NF; else if ($0 ~ /path="forwarded"/) f += $NF } END { printf "%d %d", l, f }'
}

load=(--closed-loop --connections "$BENCH_CONNECTIONS" --duration "$BENCH_DURATION" --collectors "$A_COUNT" --name-prefix a-)
declare -A ROWCPU=() SERVERCPU=()
# Runs a simulate row with CPU snapshots around it; the note lands in ROWCPU[name], the CPU-seconds of
# all servers together (the nodes and the baseline) in SERVERCPU[name].
measured() {
  local name=$1 before after
  shift
  before=$(cpu_snapshot)
  simulate "$name" "$@"
  after=$(cpu_snapshot)
  ROWCPU[$name]=$(cpu_note "$name" "$before" "$after" "$(val "$name" CLIENT_CPU_S)")
  SERVERCPU[$name]=$(echo "$before $after" | awk '{ print ($5 + $6 + $7 + $8) - ($1 + $2 + $3 + $4) }')
}
# µs of server CPU (all nodes together) per poll answered in row $1.
us_per_poll() { calc "${SERVERCPU[$1]} * 1e6 / ($(val "$1" RUN_GET_CONFIG_OK) + 1e-9)" 0; }

if row_on polls; then
  # ---- Row 1: the bare handler ----------------------------------------------------------------------
  : >"$BENCH_DIR/baseline.stdout"
  "$BASELINE" serve --addr 127.0.0.1:0 >"$BENCH_DIR/baseline.stdout" 2>"$BENCH_DIR/baseline.stderr" &
  BASELINE_PID=$!
  until grep -q '^listening on ' "$BENCH_DIR/baseline.stdout"; do sleep 0.01; done
  BASELINE_URL="http://$(sed -n 's/^listening on \([^,]*\).*/\1/p' "$BENCH_DIR/baseline.stdout" | head -n1)"
  measured baseline --url "$BASELINE_URL" --tokens-file "$BENCH_DIR/baseline-tokens.tsv" "${load[@]}" --skip-startup
  BASELINE_CPU=$(cpu_of "$BASELINE_PID")
  { kill "$BASELINE_PID" && wait "$BASELINE_PID"; } 2>/dev/null || true
  BASELINE_PID=""

  # ---- Rows 2 and 3: owner-local and forwarded not_modified polls -----------------------------------
  METRIC_A0=$(polls_metric "$NODE_A")
  measured local --url "http://${HTTP[$NODE_A]}" --tokens-file "$A_TOKENS" "${load[@]}"
  METRIC_A1=$(polls_metric "$NODE_A")
  METRIC_B1=$(polls_metric "$NODE_B")
  measured forwarded --url "http://${HTTP[$NODE_B]}" --tokens-file "$A_TOKENS" "${load[@]}" --skip-startup
  METRIC_A2=$(polls_metric "$NODE_A")
  METRIC_B2=$(polls_metric "$NODE_B")
  delta() { awk -v a="$1" -v b="$2" -v i="$3" 'BEGIN { split(a, x, " "); split(b, y, " "); print y[i] - x[i] }'; }
  LOCAL_METRIC="A served $(delta "$METRIC_A0" "$METRIC_A1" 1) polls locally"
  FORWARD_METRIC="B forwarded $(delta "$METRIC_B1" "$METRIC_B2" 2), A served $(delta "$METRIC_A1" "$METRIC_A2" 1) locally"
fi

# ---- Row 4: writes through a follower and through the leader --------------------------------------
wait_settled 60 || true
LEADER=$(leader_node)
FOLLOWER=""
for n in "${NODES[@]}"; do [ "$n" != "$LEADER" ] && FOLLOWER=$n && break; done
if row_on writes; then
  measured creates-leader-c1 --url "http://${HTTP[$LEADER]}" --create-only --collectors "$BENCH_CREATES_C1" \
    --name-prefix wl1- --provision-concurrency 1 --provision-batch 1
  measured creates-follower-c1 --url "http://${HTTP[$FOLLOWER]}" --create-only --collectors "$BENCH_CREATES_C1" \
    --name-prefix wf1- --provision-concurrency 1 --provision-batch 1
  measured creates-leader-c16 --url "http://${HTTP[$LEADER]}" --create-only --collectors "$BENCH_CREATES_C16" \
    --name-prefix wl16- --provision-concurrency 16 --provision-batch 1
  measured creates-follower-c16 --url "http://${HTTP[$FOLLOWER]}" --create-only --collectors "$BENCH_CREATES_C16" \
    --name-prefix wf16- --provision-concurrency 16 --provision-batch 1
fi

if row_on ryw; then
  # ---- Row 7: read-your-writes on another node ------------------------------------------------------
  # Create on W (a follower), then read GET /api/v1/collectors/{id} on R (the other follower) in a tight
  # loop until it answers 200: the time from the create's answer to the first 200 on R.
  RYW_W=$FOLLOWER
  RYW_R=""
  for n in "${NODES[@]}"; do [ "$n" != "$LEADER" ] && [ "$n" != "$RYW_W" ] && RYW_R=$n && break; done
  log "read-your-writes: $BENCH_RYW_CREATES creates on node$RYW_W, read on node$RYW_R"
  : >"$BENCH_DIR/ryw-ms.txt"
  RYW_FIRST=0 RYW_FAILED=0
  before=$(cpu_snapshot)
  for ((i = 1; i <= BENCH_RYW_CREATES; i++)); do
    req "${HTTP[$RYW_W]}" POST /api/v1/collectors "$ADMIN_TOKEN" "{\"name\":\"ryw-$i\",\"mode\":\"alloy-remotecfg\"}"
    if [ "$STATUS" != 201 ] || ! [[ $BODY =~ \"id\":\"([^\"]+)\" ]]; then
      RYW_FAILED=$((RYW_FAILED + 1))
      continue
    fi
    id=${BASH_REMATCH[1]} t0=${EPOCHREALTIME/./} reads=0
    while true; do
      req "${HTTP[$RYW_R]}" GET "/api/v1/collectors/$id" "$ADMIN_TOKEN" "" 5
      reads=$((reads + 1))
      [ "$STATUS" = 200 ] && break
      if ((${EPOCHREALTIME/./} - t0 > 10000000)); then reads=-1 && break; fi
    done
    if ((reads < 0)); then
      RYW_FAILED=$((RYW_FAILED + 1))
      continue
    fi
    t1=${EPOCHREALTIME/./}
    ((reads == 1)) && RYW_FIRST=$((RYW_FIRST + 1))
    echo "$(calc "($t1 - $t0) / 1000" 3)" >>"$BENCH_DIR/ryw-ms.txt"
  done
  RYW_CPU=$(cpu_note read-your-writes "$before" "$(cpu_snapshot)")
fi

if row_on failover; then
  # ---- Row 5: leader failover -----------------------------------------------------------------------
  # SIGKILL the leader; from that moment, create collectors through the survivors (alternating) until
  # one is acknowledged (201). Then restart the killed node and wait until it is ready and the cluster
  # settled before the next round.
  : >"$BENCH_DIR/leader-failover-s.txt"
  before=$(cpu_snapshot)
  for ((round = 1; round <= BENCH_FAILOVER_REPEATS; round++)); do
    wait_settled 90 || true
    LEADER=$(leader_node)
    [ -n "$LEADER" ] || die "no leader before leader failover round $round"
    survivors=()
    for n in "${NODES[@]}"; do [ "$n" != "$LEADER" ] && survivors+=("$n"); done
    log "leader failover $round: SIGKILL node$LEADER (leader)"
    t0=${EPOCHREALTIME/./}
    kill_node "$LEADER"
    attempt=0 took=n/a
    while ((${EPOCHREALTIME/./} - t0 < BENCH_FAILOVER_DEADLINE * 1000000)); do
      n=${survivors[$((attempt % 2))]}
      attempt=$((attempt + 1))
      req "${HTTP[$n]}" POST /api/v1/collectors "$ADMIN_TOKEN" \
        "{\"name\":\"lf-$round-$attempt\",\"mode\":\"alloy-remotecfg\"}" 15
      if [ "$STATUS" = 201 ]; then
        t1=${EPOCHREALTIME/./}
        took=$(calc "($t1 - $t0) / 1e6" 3)
        break
      fi
      [ "$STATUS" = 000 ] || sleep 0.01 # an answer that refused: don't spin on it
    done
    echo "$took" >>"$BENCH_DIR/leader-failover-s.txt"
    log "leader failover $round: first acknowledged write after $took s ($attempt attempts)"
    start_node "$LEADER"
    wait_ready "$LEADER" 120 || true
  done
  wait_settled 90 || true
  LEADER_FO_CPU=$(cpu_note leader-failover "$before" "$(cpu_snapshot)")

  # ---- Row 6: owner failover ------------------------------------------------------------------------
  # SIGKILL a node that owns collectors and is not the leader; from that moment poll a sample of its
  # collectors (Connect JSON GetConfig, their own tokens) through the survivors until every one of them
  # has been answered 200 once. Then restart it and wait until the cluster settled again.
  : >"$BENCH_DIR/owner-failover-s.txt"
  : >"$BENCH_DIR/owner-unreachable-s.txt"
  : >"$BENCH_DIR/owner-moved-s.txt"
  OWNER_FO_NOTE=""
  before=$(cpu_snapshot)
  for ((round = 1; round <= BENCH_FAILOVER_REPEATS; round++)); do
    wait_settled 90 || true
    LEADER=$(leader_node)
    owners "$LEADER" >"$BENCH_DIR/owners-$round.tsv" || true
    OWNER=""
    for n in "${NODES[@]}"; do
      [ "$n" = "$LEADER" ] && continue
      if awk -F'\t' -v id="${NODE_ID[$n]}" '$2 == id { found = 1 } END { exit !found }' "$BENCH_DIR/owners-$round.tsv"; then
        OWNER=$n && break
      fi
    done
    if [ -z "$OWNER" ]; then
      OWNER_FO_NOTE="no node other than the leader owns a collector (slots: $(jq -r '[.members[] | "\(.name): \(.slots)"] | join(", ")' <<<"$(cluster_view "$LEADER")"))"
      log "owner failover: $OWNER_FO_NOTE; row skipped"
      break
    fi
    # A sample of its collectors' tokens (those in the poll tokens file).
    mapfile -t sample < <(awk -F'\t' -v id="${NODE_ID[$OWNER]}" 'NR == FNR { if ($2 == id) mine[$1] = 1; next }
      ($2 in mine) { print $3 }' "$BENCH_DIR/owners-$round.tsv" "$ALL_TOKENS" | shuf -n "$BENCH_FAILOVER_SAMPLE")
    if [ ${#sample[@]} = 0 ]; then
      OWNER_FO_NOTE="node$OWNER owns none of the poll row's collectors"
      log "owner failover: $OWNER_FO_NOTE; row skipped"
      break
    fi
    survivors=()
    for n in "${NODES[@]}"; do [ "$n" != "$OWNER" ] && survivors+=("$n"); done
    # Before the kill every watched collector must be served (else the row would time something else).
    for token in "${sample[@]}"; do
      req "${HTTP[${survivors[0]}]}" POST /collector.v1.CollectorService/GetConfig "$token" '{"id":"bench-host"}' 15
      [ "$STATUS" = 200 ] || log "owner failover $round: a watched collector's poll got $STATUS before the kill"
    done
    log "owner failover $round: SIGKILL node$OWNER (owner, not leader), watching ${#sample[@]} of its collectors"
    declare -A served=()
    t0=${EPOCHREALTIME/./}
    kill_node "$OWNER"
    # Beside the polls, a watcher reads the cluster view on a survivor every 100 ms: when it first shows
    # the killed node unreachable, and when none of the slots is left on it (the seconds since the kill).
    (
      seen=""
      while true; do
        view=$(cluster_view "${survivors[1]}")
        state=$(jq -r --argjson id "${NODE_ID[$OWNER]}" '.members[] | select(.id == $id) | "\(.state) \(.slots)"' \
          <<<"${view:-null}" 2>/dev/null || true)
        t=${EPOCHREALTIME/./}
        if [ -z "$seen" ] && [[ $state == unreachable* ]]; then
          echo "unreachable $(calc "($t - $t0) / 1e6" 3)"
          seen=1
        fi
        if [[ $state == *" 0" ]]; then
          echo "moved $(calc "($t - $t0) / 1e6" 3)"
          exit 0
        fi
        sleep 0.1
      done
    ) >"$BENCH_DIR/owner-failover-$round.watch" 2>/dev/null &
    WATCHER_PID=$!
    attempt=0 took=n/a
    while ((${EPOCHREALTIME/./} - t0 < BENCH_FAILOVER_DEADLINE * 1000000)); do
      for token in "${sample[@]}"; do
        [ -n "${served[$token]:-}" ] && continue
        n=${survivors[$((attempt % 2))]}
        attempt=$((attempt + 1))
        req "${HTTP[$n]}" POST /collector.v1.CollectorService/GetConfig "$token" '{"id":"bench-host"}' 15
        [ "$STATUS" = 200 ] && served[$token]=1
      done
      if [ "${#served[@]}" = "${#sample[@]}" ]; then
        t1=${EPOCHREALTIME/./}
        took=$(calc "($t1 - $t0) / 1e6" 3)
        break
      fi
      sleep 0.01
    done
    echo "$took" >>"$BENCH_DIR/owner-failover-s.txt"
    # The slots may still be moving when the watched collectors are served: give the watcher the rest of
    # the deadline.
    for ((wait_s = 0; wait_s < BENCH_FAILOVER_DEADLINE * 10; wait_s++)); do
      kill -0 "$WATCHER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$WATCHER_PID" 2>/dev/null || true
    wait "$WATCHER_PID" 2>/dev/null || true
    WATCHER_PID=""
    sed -n 's/^unreachable //p' "$BENCH_DIR/owner-failover-$round.watch" >>"$BENCH_DIR/owner-unreachable-s.txt"
    sed -n 's/^moved //p' "$BENCH_DIR/owner-failover-$round.watch" >>"$BENCH_DIR/owner-moved-s.txt"
    if [ "$took" = n/a ]; then
      log "owner failover $round: ${#served[@]} of ${#sample[@]} watched collectors served within $BENCH_FAILOVER_DEADLINE s ($attempt polls)"
    else
      log "owner failover $round: every watched collector served after $took s ($attempt polls)"
    fi
    unset served
    start_node "$OWNER"
    wait_ready "$OWNER" 120 || true
  done
  wait_settled 90 || true
  OWNER_FO_CPU=$(cpu_note owner-failover "$before" "$(cpu_snapshot)")
fi

# ---- Row 8: polls over all three nodes, after the failovers settled -------------------------------
if row_on spread; then
  measured spread --url "http://${HTTP[1]}" --url "http://${HTTP[2]}" --url "http://${HTTP[3]}" \
    --tokens-file "$ALL_TOKENS" --closed-loop --connections "$BENCH_CONNECTIONS" --duration "$BENCH_DURATION" \
    --collectors "$BENCH_POLL_COLLECTORS"
fi

# ---- Row 9: status changes through the one Raft group ---------------------------------------------
# Every call changes a collector's status (UnregisterCollector: offline; GetConfig: connected; in
# turn), sent to a node picked at random; each owner's activity writer folds its collectors' changes
# into one Raft write per flush interval. The simulator reads every node's /metrics around the run
# and, after it, waits until no node has an update left to write.
if row_on flap; then
  wait_settled 60 || true
  FLAP_LEADER=$(leader_node)
  measured flap --url "http://${HTTP[1]}" --url "http://${HTTP[2]}" --url "http://${HTTP[3]}" \
    --tokens-file "$ALL_TOKENS" --closed-loop --workload flap --connections "$BENCH_FLAP_CONNECTIONS" \
    --duration "$BENCH_FLAP_DURATION" --collectors "$BENCH_POLL_COLLECTORS"
  [ "$(leader_node)" = "$FLAP_LEADER" ] || log "flap: the leader changed during the row"
fi
# ---- Row 10: the whole fleet model on every node -------------------------------------------------
# BENCH_FLEET_COLLECTORS more collectors, provisioned through the leader with the batch API (1,000 per
# call = one Raft entry), replicated to every node: how long until every node applied the last of
# them, what each node's RSS grew by (each node holds every record; only a slot's owner holds the
# actors of its collectors), the same once every collector polled once through a node picked at random
# (its owner then holds a connected actor), and a follower's restart to /readyz (snapshot and log
# replayed, its connected collectors' actors activated again).
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
applied_index() { curl -s --max-time 10 "http://${HTTP[$1]}/metrics" | awk '/^linkmesh_raft_applied_index[{ ]/ { print $NF }'; }
# "nodeN a MiB (b B per collector), …" for the RSS values in $1 (one per node) over $2 in RSS_BASE.
rss_note() {
  local values=($1) text="" n
  for n in "${NODES[@]}"; do
    text+="node$n $(calc "${values[$((n - 1))]} / 1024" 0) MiB ($(calc "(${values[$((n - 1))]} - ${RSS_BASE[$((n - 1))]}) * 1024 / $BENCH_FLEET_COLLECTORS" 0) B/collector), "
  done
  echo "${text%, }"
}
rss_all() { local n; for n in "${NODES[@]}"; do printf '%s ' "$(rss_kib "${PID[$n]}")"; done; }
mem_available_mib() { awk '/^MemAvailable:/ { printf "%.0f", $2 / 1024 }' /proc/meminfo; }
if row_on fleet; then
  wait_settled 60 || true
  FLEET_LEADER=$(leader_node)
  RSS_BASE=($(rss_all))
  FLEET_MEM_BEFORE=$(mem_available_mib)
  before=$(cpu_snapshot)
  simulate fleet-provision --url "http://${HTTP[$FLEET_LEADER]}" --provision-only --collectors "$BENCH_FLEET_COLLECTORS" \
    --name-prefix f- --tokens-file "$BENCH_DIR/fleet-tokens.tsv" --provision-concurrency 16 --provision-batch 1000
  provisioned_at=$(date +%s%N)
  target=$(applied_index "$FLEET_LEADER")
  for n in "${NODES[@]}"; do
    until [ "$(applied_index "$n")" -ge "$target" ] 2>/dev/null; do sleep 0.05; done
  done
  FLEET_REPLICATED_S=$(calc "($(date +%s%N) - $provisioned_at) / 1e9")
  FLEET_PROVISION_CPU=$(cpu_note fleet-provision "$before" "$(cpu_snapshot)" "$(val fleet-provision CLIENT_CPU_S)")
  sleep 2
  RSS_FLEET_IDLE=$(rss_all)
  before=$(cpu_snapshot)
  simulate fleet-poll-once --url "http://${HTTP[1]}" --url "http://${HTTP[2]}" --url "http://${HTTP[3]}" \
    --tokens-file "$BENCH_DIR/fleet-tokens.tsv" --name-prefix f- --collectors "$BENCH_FLEET_COLLECTORS" --closed-loop \
    --connections "$BENCH_CONNECTIONS" --rounds 1 --skip-startup --duration 2h
  FLEET_POLL_CPU=$(cpu_note fleet-poll-once "$before" "$(cpu_snapshot)" "$(val fleet-poll-once CLIENT_CPU_S)")
  sleep 5
  RSS_FLEET_POLLED=$(rss_all)
  FLEET_MEM_MIN=$(mem_available_mib)
  # A follower's restart: SIGTERM (graceful), then the same data dir and ports.
  FLEET_RESTARTED=""
  for n in "${NODES[@]}"; do [ "$n" != "$(leader_node)" ] && FLEET_RESTARTED=$n && break; done
  CPU_ACC[$FLEET_RESTARTED]=$(calc "${CPU_ACC[$FLEET_RESTARTED]:-0} + $(cpu_of "${PID[$FLEET_RESTARTED]}")")
  stop_started=$(date +%s%N)
  { kill -TERM "${PID[$FLEET_RESTARTED]}" && wait "${PID[$FLEET_RESTARTED]}"; } 2>/dev/null || true
  FLEET_STOP_S=$(calc "($(date +%s%N) - $stop_started) / 1e9")
  restart_started=$(date +%s%N)
  start_node "$FLEET_RESTARTED"
  wait_ready "$FLEET_RESTARTED" 600 || log "fleet: node $FLEET_RESTARTED not ready after 600 s"
  FLEET_RESTART_S=$(calc "($(date +%s%N) - $restart_started) / 1e9")
  sleep 5
  RSS_FLEET_RESTARTED=$(rss_kib "${PID[$FLEET_RESTARTED]}")
  FLEET_DISK_MIB=$(du -sm "$BENCH_DIR/node1" | cut -f1)
  FLEET_MEM_AFTER=$(mem_available_mib)
fi
LOAD_AFTER=$(loadavg)
ELAPSED=$((SECONDS - STARTED_AT))

# ---- Table ----------------------------------------------------------------------------------------
BASE_RPS=$(val baseline RUN_GET_CONFIG_OK_PER_S)
LOCAL_RPS=$(val local RUN_GET_CONFIG_OK_PER_S)
FWD_RPS=$(val forwarded RUN_GET_CONFIG_OK_PER_S)
SPREAD_RPS=$(val spread RUN_GET_CONFIG_OK_PER_S)
lat() { echo "p50 $(val "$1" "$2_P50_MS") ms, p99 $(val "$1" "$2_P99_MS") ms"; }
errors() { echo "$(val "$1" RUN_GET_CONFIG_ERRORS) failed, $(val "$1" RUN_GET_CONFIG_RETRIED) retried"; }
creates() { echo "$(val "$1" PROVISION_CREATE_COLLECTOR_OK_PER_S) creates/s; $(lat "$1" PROVISION_CREATE_COLLECTOR)"; }
create_errors() { echo "$(val "$1" PROVISION_CREATE_COLLECTOR_ERRORS) errors"; }
FAILED_OUTSIDE=$(($(val local RUN_GET_CONFIG_ERRORS) + $(val local STARTUP_GET_CONFIG_ERRORS) + \
  $(val forwarded RUN_GET_CONFIG_ERRORS) + $(val spread RUN_GET_CONFIG_ERRORS) + $(val spread STARTUP_GET_CONFIG_ERRORS)))
POLLS_OUTSIDE=$(($(val local RUN_GET_CONFIG_REQUESTS) + $(val local STARTUP_GET_CONFIG_REQUESTS) + \
  $(val forwarded RUN_GET_CONFIG_REQUESTS) + $(val spread RUN_GET_CONFIG_REQUESTS) + $(val spread STARTUP_GET_CONFIG_REQUESTS)))
RYW_N=$(grep -c . "$BENCH_DIR/ryw-ms.txt" 2>/dev/null || true)
# Row 9: per second of the measured phase, and the leader's CPU per update written.
per_s() { calc "$(val flap "$1") / ($(val flap RUN_ELAPSED_S) + 1e-9)" 0; }
FLAP_CHANGES_PER_S=$(per_s RUN_SERVER_STATUS_CHANGES)
FLAP_WRITTEN_PER_S=$(per_s RUN_SERVER_ACTIVITY_UPDATES_WRITTEN)
# All nodes' CPU per call of the row; beside the spread row's per not_modified poll (same cluster, no
# status change), the difference is what a status change costs the three nodes together.
FLAP_CALLS=$(($(val flap RUN_UNREGISTER_OK) + $(val flap RUN_GET_CONFIG_OK)))
FLAP_US_PER_CALL=$(calc "${SERVERCPU[flap]:-0} * 1e6 / ($FLAP_CALLS + 1e-9)" 0)
FLAP_MARGINAL="no spread row in this run to compare with"
if row_on spread; then
  SPREAD_US=$(us_per_poll spread)
  FLAP_MARGINAL="a not_modified poll costs $SPREAD_US µs (spread row), so a status change adds about $(calc "$FLAP_US_PER_CALL - $SPREAD_US" 0) µs over the three nodes: $(calc "($FLAP_US_PER_CALL - $SPREAD_US) * $FLAP_CHANGES_PER_S / 1e6" 2) cores at this rate"
fi
FLAP_LEADER_CPU=$(awk -F'\t' -v node="node${FLAP_LEADER:-0}" '$1 == "flap" && $2 == node { print $4 - $3 }' \
  "$BENCH_DIR/cpu.tsv" 2>/dev/null || true)

{
  echo "# linkmesh benchmarks: three nodes"
  echo
  echo "- machine: $NPROC CPUs, $CPU_MODEL, $MEM_GIB GiB RAM; load average $LOAD_BEFORE before, $LOAD_AFTER after; three nodes, the load generator and the baseline all on these $NPROC CPUs"
  echo "- nodes: \`$LINKMESH\`, loopback, \`cluster.node_down_after\` = $DOWN_AFTER; slots after start: $SLOT_SPREAD"
  echo "- load generator: \`linkmesh simulate --closed-loop\`, $BENCH_CONNECTIONS connections, $BENCH_DURATION per poll row"
  echo "- run: $(date -u +%Y-%m-%dT%H:%M:%SZ), ${ELAPSED} s, results in $BENCH_DIR"
  echo
  echo "| measurement | result | baseline (same run) | ratio | goal | CPU during the row, notes |"
  echo "|---|---|---|---|---|---|"
if row_on polls; then
    echo "| 1. GetConfig, bare actix-web handler (the baseline), $A_COUNT tokens | $(thousands "$BASE_RPS") req/s; $(lat baseline RUN_GET_CONFIG) | — | 1.00 | — | $(us_per_poll baseline) µs server CPU/poll; ${ROWCPU[baseline]} |"
    echo "| 2. GetConfig \`not_modified\`, owner-local: node A's $A_COUNT collectors sent to A | $(thousands "$LOCAL_RPS") req/s; $(lat local RUN_GET_CONFIG) | $(thousands "$BASE_RPS") req/s | $(ratio "$LOCAL_RPS" "$BASE_RPS") | — | $(us_per_poll local) µs server CPU/poll (all nodes); ${ROWCPU[local]}; $LOCAL_METRIC; $(errors local) |"
    echo "| 3. GetConfig \`not_modified\`, forwarded: the same tokens sent to B (one hop to A) | $(thousands "$FWD_RPS") req/s; $(lat forwarded RUN_GET_CONFIG) | $(thousands "$BASE_RPS") req/s | $(ratio "$FWD_RPS" "$BASE_RPS") | ≥ 0.35 | $(us_per_poll forwarded) µs server CPU/poll (all nodes); ${ROWCPU[forwarded]}; $FORWARD_METRIC; $(errors forwarded); forwarded/local $(ratio "$FWD_RPS" "$LOCAL_RPS") |"
fi
if row_on writes; then
    echo "| 4a. creates through the leader, 1 call at a time ($BENCH_CREATES_C1) | $(creates creates-leader-c1) | — | — | — | ${ROWCPU[creates-leader-c1]}; $(create_errors creates-leader-c1) |"
    echo "| 4b. creates through a follower, 1 call at a time ($BENCH_CREATES_C1) | $(creates creates-follower-c1) | leader: $(val creates-leader-c1 PROVISION_CREATE_COLLECTOR_OK_PER_S)/s | $(ratio "$(val creates-follower-c1 PROVISION_CREATE_COLLECTOR_OK_PER_S)" "$(val creates-leader-c1 PROVISION_CREATE_COLLECTOR_OK_PER_S)") | — | ${ROWCPU[creates-follower-c1]}; $(create_errors creates-follower-c1) |"
    echo "| 4c. creates through the leader, 16 at a time ($BENCH_CREATES_C16) | $(creates creates-leader-c16) | — | — | — | ${ROWCPU[creates-leader-c16]}; $(create_errors creates-leader-c16) |"
    echo "| 4d. creates through a follower, 16 at a time ($BENCH_CREATES_C16) | $(creates creates-follower-c16) | leader: $(val creates-leader-c16 PROVISION_CREATE_COLLECTOR_OK_PER_S)/s | $(ratio "$(val creates-follower-c16 PROVISION_CREATE_COLLECTOR_OK_PER_S)" "$(val creates-leader-c16 PROVISION_CREATE_COLLECTOR_OK_PER_S)") | — | ${ROWCPU[creates-follower-c16]}; $(create_errors creates-follower-c16) |"
fi
if row_on failover; then
    echo "| 5. leader failover: SIGKILL the leader → first acknowledged create through a survivor, $BENCH_FAILOVER_REPEATS times | $(median_worst "$BENCH_DIR/leader-failover-s.txt") | — | — | < 2 s | $LEADER_FO_CPU (all rounds, restarts included); each: $(paste -sd' ' "$BENCH_DIR/leader-failover-s.txt") s |"
    if [ -n "$OWNER_FO_NOTE" ]; then
      echo "| 6. owner failover: SIGKILL an owner (not the leader) → its collectors' polls through a survivor succeed | not measured: $OWNER_FO_NOTE | — | — | < node_down_after + 2 s = $(calc "${DOWN_AFTER%s} + 2" 0) s | node_down_after $DOWN_AFTER |"
    else
      echo "| 6. owner failover: SIGKILL an owner (not the leader) → $BENCH_FAILOVER_SAMPLE of its collectors' polls through a survivor all succeeded once, $BENCH_FAILOVER_REPEATS times | $(median_worst "$BENCH_DIR/owner-failover-s.txt") | — | — | < node_down_after + 2 s = $(calc "${DOWN_AFTER%s} + 2" 0) s | node_down_after $DOWN_AFTER; shown unreachable after: $(median_worst "$BENCH_DIR/owner-unreachable-s.txt"); all its slots moved after: $(median_worst "$BENCH_DIR/owner-moved-s.txt") (a survivor's view, read every 100 ms); $OWNER_FO_CPU (all rounds, restarts included); each: $(paste -sd' ' "$BENCH_DIR/owner-failover-s.txt") s |"
    fi
fi
if row_on ryw; then
    echo "| 7. read-your-writes on another node: create on a follower → first 200 of GET /api/v1/collectors/{id} on the other follower, $BENCH_RYW_CREATES creates | $(distribution "$BENCH_DIR/ryw-ms.txt" ms) | — | — | one replication round trip | $RYW_CPU; visible at the first read: $RYW_FIRST of $RYW_N; $RYW_FAILED failed; bash /dev/tcp client, new connection per read |"
fi
if row_on spread; then
    echo "| 8. polls failed after one retry, outside the failover windows (rows 2, 3 and a spread row) | $FAILED_OUTSIDE of $POLLS_OUTSIDE | — | — | 0 | failed: row 2 $(($(val local RUN_GET_CONFIG_ERRORS) + $(val local STARTUP_GET_CONFIG_ERRORS))), row 3 $(val forwarded RUN_GET_CONFIG_ERRORS) (one node, nowhere to retry), spread $(($(val spread RUN_GET_CONFIG_ERRORS) + $(val spread STARTUP_GET_CONFIG_ERRORS))); spread row: $(val spread RUN_GET_CONFIG_REQUESTS) polls of $BENCH_POLL_COLLECTORS collectors to a random node, $(thousands "$SPREAD_RPS") req/s (ratio $(ratio "$SPREAD_RPS" "$BASE_RPS")), $(lat spread RUN_GET_CONFIG), $(errors spread), $(us_per_poll spread) µs server CPU/poll (all nodes); ${ROWCPU[spread]} |"
fi
  if row_on flap; then
    echo "| 9. status changes through the one Raft group: \`simulate --workload flap\` over $BENCH_POLL_COLLECTORS collectors through all three nodes, $BENCH_FLAP_CONNECTIONS connections, $BENCH_FLAP_DURATION | $(thousands "$FLAP_CHANGES_PER_S") status changes/s (the servers' count), $(thousands "$FLAP_WRITTEN_PER_S") per-collector updates written/s; a write's p99 ≤ $(val flap RUN_SERVER_ACTIVITY_WRITE_P99_LE_MS) ms; queues empty $(val flap RUN_SERVER_ACTIVITY_DRAINED_AFTER_MS) ms after the run | — | — | measured ceiling; at one change per collector per 10 min: $(thousands "$(calc "$FLAP_CHANGES_PER_S * 600" 0)") collectors | $(val flap RUN_SERVER_ACTIVITY_WRITES) writes, $(val flap RUN_SERVER_RAFT_ENTRIES_COMMITTED) log entries committed; calls $(thousands "$(per_s RUN_UNREGISTER_OK)") unregisters/s + $(thousands "$(per_s RUN_GET_CONFIG_OK)") polls/s, $(val flap RUN_ERRORS) errors, GetConfig $(lat flap RUN_GET_CONFIG); all nodes $FLAP_US_PER_CALL µs CPU per call; $FLAP_MARGINAL; leader node${FLAP_LEADER:-?} $(calc "${FLAP_LEADER_CPU:-0} * 1e6 / ($(val flap RUN_SERVER_ACTIVITY_UPDATES_WRITTEN) + 1e-9)" 0) µs CPU per update written (its share of the calls included); ${ROWCPU[flap]} |"
  fi
  if row_on fleet; then
    FLEET_N=$BENCH_FLEET_COLLECTORS
    echo "| 10a. provisioning $FLEET_N collectors with tokens through the leader (node$FLEET_LEADER), \`POST /collectors:batch\`, 1,000 per call, 16 calls at a time | $(thousands "$(calc "$FLEET_N / ($(val fleet-provision PROVISION_ELAPSED_S) + 1e-9)" 0)") collectors/s over $(val fleet-provision PROVISION_ELAPSED_S) s; every node had applied the last batch $FLEET_REPLICATED_S s after it was acknowledged | — | — | — | $(val fleet-provision PROVISION_ERRORS) errors; $FLEET_PROVISION_CPU |"
    echo "| 10b. RSS of each node holding the $FLEET_N records (never polled) | $(rss_note "$RSS_FLEET_IDLE") | — | — | — | per collector = growth over the node's RSS before the row / $FLEET_N; MemAvailable $(thousands "$FLEET_MEM_BEFORE") MiB before the row |"
    echo "| 10c. every collector polled once through a node picked at random (its owner holds a connected actor) | $(rss_note "$RSS_FLEET_POLLED") | — | — | — | $(val fleet-poll-once RUN_GET_CONFIG_OK) polls answered, $(thousands "$(val fleet-poll-once RUN_GET_CONFIG_OK_PER_S)") polls/s, $(val fleet-poll-once RUN_GET_CONFIG_ERRORS) failed after a retry on another node; status changes $(val fleet-poll-once RUN_SERVER_STATUS_CHANGES) (collectors polled once turn stale three intervals later); MemAvailable $(thousands "$FLEET_MEM_MIN") MiB after; $FLEET_POLL_CPU |"
    echo "| 10d. a follower (node$FLEET_RESTARTED) stopped (SIGTERM) and started again: /readyz 200 | $FLEET_RESTART_S s after its start (its stop took $FLEET_STOP_S s) | — | — | 10 s (issue 17, one node) | RSS after $(calc "$RSS_FLEET_RESTARTED / 1024" 0) MiB; data dir of node1 $FLEET_DISK_MIB MiB; MemAvailable $(thousands "$FLEET_MEM_AFTER") MiB |"
  fi
} | tee "$BENCH_DIR/results.md"
