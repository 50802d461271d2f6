#!/usr/bin/env bash
# The one gate: formatting, lints, the Go test tools, and every test. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "rustfmt"
cargo fmt --all -- --check

step "clippy (warnings are errors)"
cargo clippy --all-targets --locked -- -D warnings

step "go test tools (Alloy's generated Connect client)"
(cd tools/remotecfgclient && go vet ./... && go test ./... && go build -o "$PWD/../../target/remotecfgclient" .)
export LINKMESH_REMOTECFGCLIENT="$PWD/target/remotecfgclient"

step "cargo test (unit, storage suite, integration against the real binary)"
cargo test --locked --all-targets

step "all checks passed"
