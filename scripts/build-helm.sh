#!/usr/bin/env bash
# Build Helm (v3) from its Go module and cache the binary outside the repo, like
# scripts/build-control-plane.sh does for the control plane. The chart tests
# (tests/helm_chart.rs) use it.
#
# Usage: scripts/build-helm.sh
#   Prints the bin directory on its last line of stdout.
#
# Environment:
#   WASMGATE_CACHE   cache root (default: $HOME/.cache/wasmgate)
#   GO               go binary (default: go on PATH, else /usr/local/go/bin/go)
#   NICE             niceness for the build (default: 10)
#
# Idempotent: when the binary exists and the stamp matches the pinned version
# and build flags, it exits 0 at once. The build goes to a temp dir and is moved
# into place, so an interrupted build never leaves a half-written binary.
set -euo pipefail

HELM_VERSION=3.21.4
# Helm's Makefile stamps the Kubernetes version its client-go modules speak
# (client-go v0.36.x -> 1.36) into the default capabilities of `helm template`
# and `helm lint`; without it they default to 1.20.
HELM_K8S_MAJOR=1
HELM_K8S_MINOR=36

CACHE_ROOT=${WASMGATE_CACHE:-$HOME/.cache/wasmgate}
OUT_ROOT="$CACHE_ROOT/helm-v${HELM_VERSION}"
BIN_DIR="$OUT_ROOT/bin"
STAMP="$BIN_DIR/.stamp"
NICE=${NICE:-10}

if [[ -z "${GO:-}" ]]; then
  if command -v go >/dev/null 2>&1; then GO=$(command -v go); else GO=/usr/local/go/bin/go; fi
fi

LDFLAGS="-s -w"
LDFLAGS+=" -X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION}"
LDFLAGS+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  LDFLAGS+=" -X ${pkg}.k8sVersionMajor=${HELM_K8S_MAJOR}"
  LDFLAGS+=" -X ${pkg}.k8sVersionMinor=${HELM_K8S_MINOR}"
done

log() { printf '[build-helm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

stamp_text() {
  local gov
  gov=$("$GO" env GOVERSION)
  printf 'helm=v%s go=%s\nldflags=%s\n' "$HELM_VERSION" "$gov" "$LDFLAGS"
}

is_cached() {
  [[ -x "$BIN_DIR/helm" ]] && [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$(stamp_text)" ]]
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

# `go install pkg@version` builds with Helm's own go.mod (its pinned dependencies), outside any
# module of ours. -mod is not allowed there: drop a -mod flag inherited from GOFLAGS.
GOFLAGS=$(printf '%s\n' "${GOFLAGS:-}" | sed 's/-mod=[a-z]*//g')
export GOFLAGS
export GOTOOLCHAIN=local
export CGO_ENABLED=${CGO_ENABLED:-0}

t=$(date +%s)
log "go: $("$GO" env GOVERSION); helm v$HELM_VERSION (helm.sh/helm/v3/cmd/helm)"
(cd "$STAGE" && GOBIN="$STAGE" nice -n "$NICE" "$GO" install -trimpath -ldflags "$LDFLAGS" \
  "helm.sh/helm/v3/cmd/helm@v${HELM_VERSION}") || die "go install of helm v$HELM_VERSION failed"

# Capture the output before matching: `cmd | grep -q` under pipefail fails when grep exits at the
# first match and the command then dies of SIGPIPE writing its next line.
HELM_VERSION_OUT=$("$STAGE/helm" version --short 2>&1) || die "helm version failed: $HELM_VERSION_OUT"
[[ "$HELM_VERSION_OUT" == "v${HELM_VERSION}"* ]] || die "helm does not report v${HELM_VERSION}: $HELM_VERSION_OUT"

mkdir -p "$BIN_DIR"
rm -f "$STAMP"
chmod 0755 "$STAGE/helm"
mv -f "$STAGE/helm" "$BIN_DIR/helm"
stamp_text >"$STAMP.tmp.$$"
mv -f "$STAMP.tmp.$$" "$STAMP"

log "done in $(($(date +%s) - t))s: $(du -sh "$BIN_DIR/helm" | cut -f1)"
echo "$BIN_DIR"
