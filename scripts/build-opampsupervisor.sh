#!/usr/bin/env bash
# Builds the published OpAMP supervisor, collector-contrib's cmd/opampsupervisor, into
# target/tools/opampsupervisor for tests/opamp_supervisor.rs. Skipped when that version is already built.
#
# `go install …/cmd/opampsupervisor@VERSION` is refused: its go.mod carries `replace … => ../…`
# directives that point into the contrib monorepo. So: the module as the proxy serves it, copied out of
# the read-only module cache, those replace lines dropped (every module they name is published at the
# same version), and `go build -mod=mod`. Never `go mod tidy` there: it also resolves test-only modules,
# and the proxy refuses one of them (exporter/stefexporter@v0.149.0).
set -euo pipefail
cd "$(dirname "$0")/.."

readonly module=github.com/open-telemetry/opentelemetry-collector-contrib/cmd/opampsupervisor
readonly version=v0.149.0
readonly output="${1:-$PWD/target/tools/opampsupervisor}"
readonly stamp="$output.version"

if [ -x "$output" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module@$version" ]; then
  echo "opampsupervisor $version already built: $output"
  exit 0
fi

command -v go >/dev/null || { echo "Go >= 1.26 is required to build opampsupervisor" >&2; exit 1; }

module_dir="$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[ -d "$module_dir" ] || { echo "go mod download gave no directory for $module@$version" >&2; exit 1; }

# Outside the repository, so Go does not try to stamp linkmesh's git state into the binary.
work="$(mktemp -d "${TMPDIR:-/tmp}/opampsupervisor-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -R "$module_dir/." "$work/src"
chmod -R u+w "$work/src"
sed -i '/^replace .* => \.\.\//d' "$work/src/go.mod"
if grep -q '=> \.\./' "$work/src/go.mod"; then
  echo "go.mod of $module@$version still has a relative replace (a block form?)" >&2
  exit 1
fi

mkdir -p "$(dirname "$output")"
(cd "$work/src" && go build -mod=mod -buildvcs=false -o "$work/opampsupervisor" .)
mv "$work/opampsupervisor" "$output"
echo "$module@$version" >"$stamp"
echo "built opampsupervisor $version: $output"
