#!/usr/bin/env bash
# Build Jaeger (v2: an OpenTelemetry Collector with an OTLP receiver, in-memory trace storage and
# the query API) from its Go module and cache the binary outside the repo, like
# scripts/build-helm.sh does for Helm. The trace export test (tests/tracing.rs) sends wasmgate's
# spans to it and reads them back through its query API.
#
# Usage: scripts/build-jaeger.sh
#   Prints the bin directory on its last line of stdout.
#
# Environment:
#   WASMGATE_CACHE   cache root (default: $HOME/.cache/wasmgate)
#   GO               go binary (default: go on PATH, else /usr/local/go/bin/go)
#   NICE             niceness for the build (default: 10)
#
# Idempotent: when the binary exists and the stamp matches the pinned version, it exits 0 at
# once. The build goes to a temp dir and is moved into place, so an interrupted build never
# leaves a half-written binary.
set -euo pipefail

# github.com/jaegertracing/jaeger v1.75.0 is the Jaeger v2 line's module version (the v2
# binary, cmd/jaeger).
JAEGER_MODULE_VERSION=1.75.0

CACHE_ROOT=${WASMGATE_CACHE:-$HOME/.cache/wasmgate}
OUT_ROOT="$CACHE_ROOT/jaeger-v${JAEGER_MODULE_VERSION}"
BIN_DIR="$OUT_ROOT/bin"
STAMP="$BIN_DIR/.stamp"
NICE=${NICE:-10}

if [[ -z "${GO:-}" ]]; then
  if command -v go >/dev/null 2>&1; then GO=$(command -v go); else GO=/usr/local/go/bin/go; fi
fi

log() { printf '[build-jaeger %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

stamp_text() {
  printf 'jaeger=v%s go=%s\n' "$JAEGER_MODULE_VERSION" "$("$GO" env GOVERSION)"
}

is_cached() {
  [[ -x "$BIN_DIR/jaeger" ]] && [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$(stamp_text)" ]]
}

command -v "$GO" >/dev/null 2>&1 || die "go not found (set GO=/path/to/go)"

if is_cached; then
  log "cached: $BIN_DIR"
  echo "$BIN_DIR"
  exit 0
fi

mkdir -p "$OUT_ROOT"
# Serialize concurrent builders (e.g. two test runs starting at once).
exec 9>"$OUT_ROOT/.lock"
if ! flock -n 9; then
  log "another build holds $OUT_ROOT/.lock; waiting (up to 30 min)"
  flock -w 1800 9 || die "timed out waiting for the build lock"
  if is_cached; then log "cached (built by the other process): $BIN_DIR"; echo "$BIN_DIR"; exit 0; fi
fi

STAGE="$OUT_ROOT/.stage.$$"
cleanup() { rm -rf "$STAGE"; }
trap cleanup EXIT
mkdir -p "$STAGE"

# Jaeger's go.mod has replace directives, so `go install pkg@version` refuses it: build it as a
# tool of a throwaway module instead (its requirements are Jaeger's, resolved by `go get`).
GOFLAGS=$(printf '%s\n' "${GOFLAGS:-}" | sed 's/-mod=[a-z]*//g')
export GOFLAGS
export GOTOOLCHAIN=local
export CGO_ENABLED=${CGO_ENABLED:-0}

t=$(date +%s)
log "go: $("$GO" env GOVERSION); jaeger v$JAEGER_MODULE_VERSION (github.com/jaegertracing/jaeger/cmd/jaeger)"
(
  cd "$STAGE"
  "$GO" mod init wasmgate.local/jaeger-build >/dev/null 2>&1
  nice -n "$NICE" "$GO" get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@v${JAEGER_MODULE_VERSION}" >&2
  nice -n "$NICE" "$GO" build -trimpath -ldflags "-s -w" -o "$STAGE/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger
) || die "building jaeger v$JAEGER_MODULE_VERSION failed"

"$STAGE/jaeger" --help >/dev/null 2>&1 || die "the built jaeger does not run"

mkdir -p "$BIN_DIR"
rm -f "$STAMP"
chmod 0755 "$STAGE/jaeger"
mv -f "$STAGE/jaeger" "$BIN_DIR/jaeger"
stamp_text >"$STAMP.tmp.$$"
mv -f "$STAMP.tmp.$$" "$STAMP"

log "done in $(($(date +%s) - t))s: $(du -sh "$BIN_DIR/jaeger" | cut -f1)"
echo "$BIN_DIR"
