#!/usr/bin/env bash
# A chaos soak: the chaos run of scripts/check.sh (cluster-tests/chaos), repeated rounds of every fault
# kind in random order for --duration, against a larger simulated fleet. Needs root, iproute2 and
# nftables. The report: target/chaos/<time>/report.md (faults, operations, checks, convergence).
#
#   scripts/chaos.sh --duration 30m [--collectors 1000] [--debug]
# (the nodes run the release build by default, as in CI; --debug runs the test build instead)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=30m
collectors=1000
debug=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --collectors) collectors="$2"; shift 2 ;;
    --debug) debug=1; shift ;;
    *) echo "usage: scripts/chaos.sh [--duration 30m] [--collectors 1000] [--debug]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "the chaos run needs root (network namespaces, nftables)" >&2; exit 1; }
for tool in ip nft go; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install iproute2 nftables; Go for tools/linearcheck)" >&2; exit 1; }
done
mkdir -p target/tools
(cd tools/linearcheck && go build -o ../../target/tools/linearcheck .)
export LINKMESH_LINEARCHECK="$PWD/target/tools/linearcheck"
export LINKMESH_CHAOS_DURATION="$duration" LINKMESH_CHAOS_COLLECTORS="$collectors"
export LINKMESH_CHAOS_DIR="${LINKMESH_CHAOS_DIR:-$PWD/target/chaos/$(date -u +%Y%m%dT%H%M%SZ)}"
echo "chaos soak for $duration, $collectors simulated collectors; report: $LINKMESH_CHAOS_DIR/report.md"
if [ "$debug" -eq 0 ]; then
  cargo build --locked --release --bin linkmesh
  export LINKMESH_BIN="$PWD/target/release/linkmesh"
fi
cargo test --locked --test chaos -- --ignored --nocapture
