#!/usr/bin/env bash
# A time-boxed libFuzzer run of every target, starting from its committed seeds (fuzz/corpus/<target>).
# Usage: fuzz/run.sh [seconds per target, default 30]. Needs a nightly toolchain and cargo-fuzz.
#
# Built with debug assertions and overflow checks, as `cargo test` builds the stable replay of the seeds
# (tests/fuzz_corpora.rs), so an input that fails here fails there too once it is added to the seeds.
# Inputs libFuzzer finds go to fuzz/target/corpus/<target>, never into the committed seeds. A failure
# stops the run and leaves the input in fuzz/artifacts/<target>/; reproduce it with
# `cargo +nightly fuzz run -a <target> fuzz/artifacts/<target>/<file>`.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
rustc +nightly --version >/dev/null 2>&1 \
  || { echo "missing nightly toolchain: rustup toolchain install nightly --profile minimal" >&2; exit 1; }
command -v cargo-fuzz >/dev/null \
  || { echo "missing cargo-fuzz: cargo install --locked cargo-fuzz --version 0.13.2 (see .ci/run)" >&2; exit 1; }
rustc +nightly --version

# One build for every target (they share the whole dependency graph); `fuzz run` then finds it fresh.
# LINKMESH_FUZZ_TARGET_DIR keeps that build outside the checkout (.ci/run: across CI runs on one machine).
target_dir="${LINKMESH_FUZZ_TARGET_DIR:-fuzz/target}"
# Each target links the whole server with AddressSanitizer (~170 MB apiece): say how much disk there is,
# and again if the build fails (a full disk shows up as the linker dying with SIGBUS).
mkdir -p "$target_dir"
df -h "$target_dir" | tail -1 | awk '{ print "disk for " t ": " $4 " free of " $2 }' t="$target_dir"
cargo +nightly fuzz build -a --target-dir "$target_dir" \
  || { df -h "$target_dir" | tail -1 | awk '{ print "fuzz build failed; disk: " $4 " free of " $2 }' >&2; exit 1; }
for target in $(cargo +nightly fuzz list); do
  [ -n "$(ls -A "fuzz/corpus/$target" 2>/dev/null)" ] || { echo "fuzz/corpus/$target is empty or missing" >&2; exit 1; }
  mkdir -p "fuzz/target/corpus/$target"
  echo "--- $target: ${seconds}s from $(ls "fuzz/corpus/$target" | wc -l) seeds"
  # libFuzzer prints a line per new input and function and a dictionary at the end; keep its start,
  # its end and anything it reports.
  cargo +nightly fuzz run -a --target-dir "$target_dir" "$target" "fuzz/target/corpus/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | awk '/^###### Recommended dictionary/ { dictionary = 1 }
           dictionary { if (/^###### End of recommended dictionary/) dictionary = 0; next }
           /^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)[[:space:]]/ || /^[[:space:]]+NEW_FUNC/ { next }
           { print; fflush() }'
done
