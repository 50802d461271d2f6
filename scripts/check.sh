#!/usr/bin/env bash
# The one gate: formatting, lints, the dependency policy, the Go test tools, every test, and (when
# LINKMESH_FUZZ_SECONDS is set) a short fuzz run of every target. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/steps.sh

step "rustfmt"
cargo fmt --all -- --check

step "clippy (warnings are errors)"
cargo clippy --all-targets --locked -- -D warnings

step "no import cycles between source files (the detector first proves it finds a planted one)"
python3 scripts/import_cycles.py --self-test
python3 scripts/import_cycles.py src

# Licenses, banned crates and sources of every dependency, per deny.toml. Advisories are not checked
# here (the database cannot be fetched from CI): docs/supply-chain.md has the manual check.
step "cargo deny (licenses, bans, sources)"
command -v cargo-deny >/dev/null \
  || { echo "missing cargo-deny: cargo install --locked cargo-deny --version 0.20.2 (see .ci/run)" >&2; exit 1; }
cargo deny --locked --offline check licenses bans sources

# Independent tools built from upstream modules: Alloy's generated Connect client, an OpAMP agent
# built with opamp-go (the supervisor's library) for the WebSocket transport, Grafana's Alloy
# syntax parser, the OpenTelemetry Collector's own config validation (first build: ~15 min),
# porcupine's linearizability checker for the chaos run's recorded history, the OTTL and regex
# oracle (the filter and transform processors' own parsing) the Rust OTTL parser is compared with,
# and a real collector (otelcheck's factories plus the opamp extension; after otelcheck, so most of it
# comes from Go's build cache) for the published opampsupervisor to drive (tests/opamp_supervisor.rs).
mkdir -p target/tools
for tool in remotecfgclient opampwsclient alloycheck otelcheck linearcheck ottlcheck otelcol; do
  step "go vet, test and build tools/$tool"
  (cd "tools/$tool" && go vet ./... && go test ./... && go build -o "../../target/tools/$tool" .)
done

step "build the published opampsupervisor v0.149.0 (skipped when that version is built)"
scripts/build-opampsupervisor.sh

export LINKMESH_REMOTECFGCLIENT="$PWD/target/tools/remotecfgclient"
export LINKMESH_OPAMPWSCLIENT="$PWD/target/tools/opampwsclient"
export LINKMESH_ALLOYCHECK="$PWD/target/tools/alloycheck"
export LINKMESH_OTELCHECK="$PWD/target/tools/otelcheck"
export LINKMESH_LINEARCHECK="$PWD/target/tools/linearcheck"
export LINKMESH_OTTLCHECK="$PWD/target/tools/ottlcheck"
export LINKMESH_OTELCOL="$PWD/target/tools/otelcol"
export LINKMESH_OPAMPSUPERVISOR="$PWD/target/tools/opampsupervisor"

step "cargo test (unit, storage suite, integration against the real binary)"
cargo test --locked --all-targets

# Three nodes in network namespaces under injected faults (cluster-tests/chaos): needs root, `ip` and
# `nft`; a missing one fails here, never skips. Every fault kind once, about four minutes.
step "chaos run (partitions, loss, delay, pauses, kills, rolling restart, full disk; checks on the history)"
[ "$(id -u)" -eq 0 ] || { echo "the chaos run needs root (network namespaces, nftables)" >&2; exit 1; }
for tool in ip nft; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install iproute2 nftables (see .ci/run)" >&2; exit 1; }
done
# The nodes and the simulated fleet run the release build, what operators run: a debug build is ~10×
# slower, and three debug nodes plus 1000 simulated collectors saturate two cores, which times out
# Raft appends for reasons no deployment has. The harness itself stays a test build.
cargo build --locked --release --bin linkmesh
LINKMESH_BIN="$PWD/target/release/linkmesh" cargo test --locked --test chaos -- --ignored --nocapture

step "pytest (own_metrics pushed by the real OpenTelemetry SDK exporters; the Python OpAMP client)"
python3 -c "import pytest, opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http, opentelemetry.exporter.otlp.json.http, opentelemetry._opamp.client" \
  || { echo "missing Python packages: python3 -m pip install -r tests/python/requirements.txt" >&2; exit 1; }
PYTHONDONTWRITEBYTECODE=1 LINKMESH_BIN="$PWD/target/debug/linkmesh" python3 -m pytest -q -p no:cacheprovider tests/python

step "the Node OpAMP client (@elastic/opamp-client-node, plain HTTP; tests/node/)"
[ -d tests/node/node_modules/@elastic/opamp-client-node ] || (cd tests/node && npm ci --no-audit --no-fund)
(cd tests/node && LINKMESH_BIN="$PWD/../../target/debug/linkmesh" npm test --silent)

step "web UI end to end (Debian's headless Chromium driven by playwright-core; e2e/)"
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] \
  || { echo "missing Chromium: apt-get install chromium chromium-driver (see .ci/run)" >&2; exit 1; }
[ -d e2e/node_modules/playwright-core ] || (cd e2e && npm ci --no-audit --no-fund)
(cd e2e && LINKMESH_BIN="$PWD/../target/debug/linkmesh" npm test --silent)

# A short libFuzzer run of every target, from its committed seeds (fuzz/README.md). It needs a nightly
# toolchain and cargo-fuzz, so it runs when LINKMESH_FUZZ_SECONDS (per target) is set, as .ci/run does;
# the seeds themselves are replayed on stable by `cargo test` (tests/fuzz_corpora.rs) either way.
if [ "${LINKMESH_FUZZ_SECONDS:-0}" -gt 0 ]; then
  step "fuzz every target for ${LINKMESH_FUZZ_SECONDS}s (nightly, cargo-fuzz)"
  fuzz/run.sh "$LINKMESH_FUZZ_SECONDS"
else
  step "fuzz run skipped (LINKMESH_FUZZ_SECONDS=15 runs it; needs nightly and cargo-fuzz)"
fi

step "all checks passed"
