#!/usr/bin/env bash
# Three linkmesh nodes on one machine: node 1 bootstraps a cluster, nodes 2 and 3 join it with join
# tokens minted by `linkmesh cluster join-token`. A demo and a lab, not a deployment (see
# docs/operations.md): every node listens on CLUSTER_HOST only, loopback by default, because the
# cluster ports carry no TLS here.
#
#   scripts/cluster.sh [start] [DIR]   start the three nodes (data dirs, logs and pids under DIR)
#   scripts/cluster.sh stop [DIR]      stop them (SIGTERM, then wait)
#   scripts/cluster.sh status [DIR]    `linkmesh cluster status` through node 1
#
# DIR defaults to ./linkmesh-cluster. Started again over existing data dirs, the nodes resume: nothing
# bootstraps or joins twice.
#
# Knobs (environment):
#   LINKMESH          the binary (default target/release/linkmesh, built with cargo if missing)
#   CLUSTER_HOST      the address every port binds to (127.0.0.1)
#   CLUSTER_PORT      node 1's HTTP port (8080); node n uses HTTP CLUSTER_PORT+2(n-1), cluster port +1:
#                     8080/8081, 8082/8083, 8084/8085
#   LINKMESH_ADMIN_PASSWORD  node 1's admin password at its first start (else generated and written to
#                     DIR/node1/initial-admin-password, as in the README's quick start)
#   CLUSTER_WAIT_S    how long to wait for a node to be ready (120)
set -euo pipefail
umask 077
cd "$(dirname "$0")/.."
ROOT=$PWD

command=start
case "${1:-}" in
  start | stop | status) command=$1; shift ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
DIR=${1:-$ROOT/linkmesh-cluster}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

: "${LINKMESH:=$ROOT/target/release/linkmesh}"
: "${CLUSTER_HOST:=127.0.0.1}"
: "${CLUSTER_PORT:=8080}"
: "${CLUSTER_WAIT_S:=120}"
NODES=(1 2 3)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

http_port() { echo $((CLUSTER_PORT + 2 * ($1 - 1))); }
rpc_port() { echo $((CLUSTER_PORT + 2 * ($1 - 1) + 1)); }
url() { echo "http://$CLUSTER_HOST:$(http_port "$1")"; }
pid_file() { echo "$DIR/node$1.pid"; }

# The pid of node $1 when it is running (a pid file naming a live linkmesh process).
running_pid() {
  local pid
  pid=$(cat "$(pid_file "$1")" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'linkmesh serve'
}

# The HTTP status of GET path on host:port, with bash's /dev/tcp; 000 if unreachable.
http_status() {
  local status=000
  if exec 9<>"/dev/tcp/$1/$2"; then
    printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&9
    # A bound port whose server does not answer yet (a node still joining) must not hang the wait.
    read -r -t 2 _ status _ <&9 || status=000
    exec 9>&- 9<&-
  fi
  echo "${status:-000}"
} 2>/dev/null

wait_ready() {
  local node=$1 pid=$2 deadline=$((SECONDS + CLUSTER_WAIT_S))
  until [ "$(http_status "$CLUSTER_HOST" "$(http_port "$node")" /readyz)" = 200 ]; do
    kill -0 "$pid" 2>/dev/null || die "node $node exited; see $DIR/node$node.log"
    ((SECONDS < deadline)) || die "node $node not ready after ${CLUSTER_WAIT_S}s; see $DIR/node$node.log"
    sleep 0.2
  done
}

# Starts node $1 with extra serve flags $2…; the join token, if any, comes in LINKMESH_JOIN_TOKEN (an
# environment variable, not a flag: flags show in every process listing).
start_node() {
  local node=$1
  shift
  if running_pid "$node"; then
    log "node $node already running (pid $(cat "$(pid_file "$node")"))"
    return
  fi
  log "starting node $node on $(url "$node") (cluster port $CLUSTER_HOST:$(rpc_port "$node"))"
  nohup "$LINKMESH" serve --data-dir "$DIR/node$node" --node-name "node-$node" \
    --http-addr "$CLUSTER_HOST:$(http_port "$node")" --rpc-addr "$CLUSTER_HOST:$(rpc_port "$node")" \
    "$@" >>"$DIR/node$node.log" 2>&1 &
  echo $! >"$(pid_file "$node")"
  wait_ready "$node" $!
}

# A JSON string's contents: backslashes and quotes escaped.
json_escape() { local s=${1//\\/\\\\}; printf '%s' "${s//\"/\\\"}"; }

# A service-account token (admin role) for the CLI, made the way the README's onboarding does: sign in
# as admin on node 1 with the password the quick start gives, create an account, mint its token.
# Kept in DIR/cli-token (0600) for later `linkmesh cluster …` calls.
cli_token() {
  local token_file=$DIR/cli-token password account token cookies=$DIR/.cookies
  if [ -s "$token_file" ]; then
    cat "$token_file"
    return
  fi
  command -v curl >/dev/null || die "curl is needed to sign in once and create the CLI's service account"
  password=${LINKMESH_ADMIN_PASSWORD:-$(cat "$DIR/node1/initial-admin-password" 2>/dev/null || true)}
  [ -n "$password" ] || die "no admin password: set LINKMESH_ADMIN_PASSWORD or keep $DIR/node1/initial-admin-password"
  # The password goes through standard input, never a command line.
  printf '{"username":"admin","password":"%s"}' "$(json_escape "$password")" |
    curl -sf -c "$cookies" -H 'content-type: application/json' --data-binary @- \
      "$(url 1)/api/v1/auth/login" >/dev/null || die "cannot sign in as admin on node 1"
  account=$(curl -sf -b "$cookies" -H 'content-type: application/json' \
    -d "{\"name\":\"cluster-script-$(date +%s)\",\"role\":\"admin\"}" "$(url 1)/api/v1/service-accounts" |
    sed -n 's/.*"id":"\(sa_[^"]*\)".*/\1/p')
  [ -n "$account" ] || die "cannot create a service account on node 1"
  token=$(curl -sf -b "$cookies" -H 'content-type: application/json' -d '{"label":"scripts/cluster.sh"}' \
    "$(url 1)/api/v1/service-accounts/$account/tokens" | sed -n 's/.*"token":"\(lmsat_[^"]*\)".*/\1/p')
  curl -sf -b "$cookies" -X POST "$(url 1)/api/v1/auth/logout" >/dev/null || true
  rm -f "$cookies"
  [ -n "$token" ] || die "cannot mint a service-account token on node 1"
  printf '%s\n' "$token" >"$token_file"
  echo "$token"
}

# A join token from `linkmesh cluster join-token`, shown once: only the token is kept.
join_token() {
  LINKMESH_TOKEN=$1 "$LINKMESH" cluster join-token --url "$(url 1)" --ttl 10m --uses 1 --output json |
    sed -n 's/^ *"token": *"\(lmjt_[^"]*\)".*/\1/p'
}

cluster_status() {
  local token
  token=$(cat "$DIR/cli-token" 2>/dev/null) || die "no $DIR/cli-token: start the cluster with this script first"
  LINKMESH_TOKEN=$token "$LINKMESH" cluster status --url "$(url 1)"
}

start() {
  if [ ! -x "$LINKMESH" ]; then
    [ "$LINKMESH" = "$ROOT/target/release/linkmesh" ] || die "no executable $LINKMESH"
    log "building $LINKMESH"
    cargo build --release --locked --bin linkmesh
  fi
  # Node 1 bootstraps when its data dir is new; afterwards every node resumes from its own data dir.
  start_node 1
  local token node
  token=$(cli_token)
  for node in 2 3; do
    if [ -n "$(ls -A "$DIR/node$node" 2>/dev/null)" ]; then
      start_node "$node"
    else
      local join
      join=$(join_token "$token")
      [ -n "$join" ] || die "node 1 minted no join token (does this linkmesh support clustering?)"
      LINKMESH_JOIN_TOKEN=$join start_node "$node" --join "$(url 1)"
    fi
  done
  cluster_status || true
  cat <<EOF

Three nodes are running:
  node 1  $(url 1)  (cluster port $CLUSTER_HOST:$(rpc_port 1))
  node 2  $(url 2)  (cluster port $CLUSTER_HOST:$(rpc_port 2))
  node 3  $(url 3)  (cluster port $CLUSTER_HOST:$(rpc_port 3))
Sign in as admin on any of them; the password is in $DIR/node1/initial-admin-password (unless you set
LINKMESH_ADMIN_PASSWORD). Logs: $DIR/node<n>.log.
CLI: export LINKMESH_TOKEN=\$(cat $DIR/cli-token) LINKMESH_URL=$(url 2); $LINKMESH cluster status
Load: $LINKMESH simulate --url $(url 1) --url $(url 2) --url $(url 3) --admin-token \$(cat $DIR/cli-token)
Stop: $0 stop $DIR
EOF
}

stop() {
  local node pid stopped=0
  for node in "${NODES[@]}"; do
    if running_pid "$node"; then
      pid=$(cat "$(pid_file "$node")")
      log "stopping node $node (pid $pid)"
      kill -TERM "$pid"
      local deadline=$((SECONDS + 60))
      while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || die "node $node (pid $pid) still running 60s after SIGTERM"
        sleep 0.2
      done
      stopped=$((stopped + 1))
    fi
    rm -f "$(pid_file "$node")"
  done
  log "$stopped node(s) stopped; data dirs kept in $DIR (start again: $0 start $DIR)"
}

case $command in
  start) start ;;
  stop) stop ;;
  status) cluster_status ;;
esac
