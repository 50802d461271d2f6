#!/usr/bin/env bash
# The one gate: formatting, lints, the Go test tools, and every test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "rustfmt"
cargo fmt --all -- --check

step "clippy (warnings are errors)"
cargo clippy --all-targets --locked -- -D warnings

# Independent tools built from upstream modules: Alloy's generated Connect client, Grafana's Alloy
# syntax parser, and the OpenTelemetry Collector's own config validation (first build: ~15 min).
mkdir -p target/tools
for tool in remotecfgclient alloycheck otelcheck; do
  step "go vet, test and build tools/$tool"
  (cd "tools/$tool" && go vet ./... && go test ./... && go build -o "../../target/tools/$tool" .)
done
export LINKMESH_REMOTECFGCLIENT="$PWD/target/tools/remotecfgclient"
export LINKMESH_ALLOYCHECK="$PWD/target/tools/alloycheck"
export LINKMESH_OTELCHECK="$PWD/target/tools/otelcheck"

step "cargo test (unit, storage suite, integration against the real binary)"
cargo test --locked --all-targets

step "all checks passed"
