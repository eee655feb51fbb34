#!/usr/bin/env bash
# Build a real Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kubectl) and etcd from their Go modules, and cache the binaries outside the repo.
#
# Usage: scripts/build-control-plane.sh
#   Prints the bin directory on its last line of stdout.
#
# Environment:
#   WASMGATE_CACHE   cache root (default: $HOME/.cache/wasmgate)
#   GO               go binary (default: go on PATH, else /usr/local/go/bin/go)
#   NICE             niceness for the build (default: 10)
#
# Idempotent: when all four binaries exist and the stamp matches the pinned
# versions and build flags, it exits 0 at once. Builds go to a temp dir and are
# moved into place, so an interrupted build never leaves a half-written binary.
# The Go build and module caches stay at Go's defaults (outside the repo).
set -euo pipefail

K8S_VERSION=1.36.3
ETCD_VERSION=3.6.8

K8S_MAJOR=${K8S_VERSION%%.*}
K8S_MINOR_PATCH=${K8S_VERSION#*.}
K8S_MINOR=${K8S_MINOR_PATCH%%.*}
K8S_PATCH=${K8S_MINOR_PATCH#*.}
# Staging modules are published as v0.<minor>.<patch>.
STAGING_VERSION="v0.${K8S_MINOR}.${K8S_PATCH}"

CACHE_ROOT=${WASMGATE_CACHE:-$HOME/.cache/wasmgate}
OUT_ROOT="$CACHE_ROOT/k8s-v${K8S_VERSION}"
BIN_DIR="$OUT_ROOT/bin"
STAMP="$BIN_DIR/.stamp"
NICE=${NICE:-10}

if [[ -z "${GO:-}" ]]; then
  if command -v go >/dev/null 2>&1; then GO=$(command -v go); else GO=/usr/local/go/bin/go; fi
fi

# Fixed build date so the ldflags (and so the stamp) are stable between runs.
BUILD_DATE=1970-01-01T00:00:00Z
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X ${pkg}.gitVersion=v${K8S_VERSION}"
  LDFLAGS+=" -X ${pkg}.gitMajor=${K8S_MAJOR}"
  LDFLAGS+=" -X ${pkg}.gitMinor=${K8S_MINOR}"
  LDFLAGS+=" -X ${pkg}.gitTreeState=clean"
  LDFLAGS+=" -X ${pkg}.buildDate=${BUILD_DATE}"
done
ETCD_LDFLAGS="-s -w"
BINARIES=(kube-apiserver kube-controller-manager kubectl etcd)

log() { printf '[build-control-plane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

stamp_text() {
  local gov
  gov=$("$GO" env GOVERSION)
  printf 'k8s=v%s etcd=v%s go=%s\nldflags=%s\netcd_ldflags=%s\n' \
    "$K8S_VERSION" "$ETCD_VERSION" "$gov" "$LDFLAGS" "$ETCD_LDFLAGS"
}

is_cached() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
  [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$(stamp_text)" ]]
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

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wasmgate-cp-build.XXXXXX")
STAGE="$OUT_ROOT/.stage.$$"
cleanup() { rm -rf "$WORK" "$STAGE"; }
trap cleanup EXIT
mkdir -p "$STAGE"

export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
export GOTOOLCHAIN=local
export CGO_ENABLED=${CGO_ENABLED:-0}
RUN=(nice -n "$NICE")

T_ALL=$(date +%s)
elapsed() { echo $(( $(date +%s) - $1 ))s; }

# --- kubernetes -------------------------------------------------------------
log "go: $("$GO" env GOVERSION); k8s v$K8S_VERSION (staging $STAGING_VERSION); etcd v$ETCD_VERSION"
t=$(date +%s)
K8S_MOD_JSON=$(cd "$WORK" && "${RUN[@]}" "$GO" mod download -json "k8s.io/kubernetes@v${K8S_VERSION}")
K8S_GOMOD=$(printf '%s\n' "$K8S_MOD_JSON" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
[[ -f "$K8S_GOMOD" ]] || die "could not find the go.mod of k8s.io/kubernetes@v$K8S_VERSION"
log "downloaded k8s.io/kubernetes go.mod in $(elapsed "$t")"

# Staging modules: lines like "k8s.io/api => ./staging/src/k8s.io/api".
mapfile -t STAGING < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/src/.*$#\1#p' "$K8S_GOMOD" | sort -u)
(( ${#STAGING[@]} > 0 )) || die "no staging replaces found in $K8S_GOMOD"
log "${#STAGING[@]} staging modules"

# The etcd version this release pins (k8s requires etcd client/server modules).
PINNED_ETCD=$(sed -n 's#^[[:space:]]*go\.etcd\.io/etcd/\(server\|client\)/v3[[:space:]]\{1,\}v\([0-9.]*\).*#\2#p' "$K8S_GOMOD" | head -n1)
if [[ -n "$PINNED_ETCD" && "$PINNED_ETCD" != "$ETCD_VERSION" ]]; then
  die "k8s v$K8S_VERSION pins etcd v$PINNED_ETCD but ETCD_VERSION=$ETCD_VERSION; update the pin"
fi
log "k8s go.mod pins etcd v${PINNED_ETCD:-?}"

K8S_DIR="$WORK/k8s"
mkdir -p "$K8S_DIR"
{
  echo "module wasmgate.local/controlplane"
  echo
  echo "go $(sed -n 's/^go[[:space:]]\{1,\}\([0-9.]*\).*/\1/p' "$K8S_GOMOD" | head -n1)"
  echo
  echo "require k8s.io/kubernetes v${K8S_VERSION}"
  echo
  echo "replace ("
  for m in "${STAGING[@]}"; do echo "	$m => $m $STAGING_VERSION"; done
  echo ")"
} >"$K8S_DIR/go.mod"
cat >"$K8S_DIR/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF

t=$(date +%s)
(cd "$K8S_DIR" && "${RUN[@]}" "$GO" mod tidy) || die "go mod tidy failed for kubernetes"
log "kubernetes go mod tidy: $(elapsed "$t")"

t=$(date +%s)
(cd "$K8S_DIR" && "${RUN[@]}" "$GO" build -trimpath -ldflags "$LDFLAGS" -o "$STAGE/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl) || die "go build of kubernetes commands failed"
log "kubernetes build: $(elapsed "$t")"

# --- etcd -------------------------------------------------------------------
ETCD_DIR="$WORK/etcd"
mkdir -p "$ETCD_DIR"
cat >"$ETCD_DIR/go.mod" <<EOF
module wasmgate.local/etcd

go $(sed -n 's/^go[[:space:]]\{1,\}\([0-9.]*\).*/\1/p' "$K8S_GOMOD" | head -n1)

require go.etcd.io/etcd/server/v3 v${ETCD_VERSION}
EOF
cat >"$ETCD_DIR/tools.go" <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
t=$(date +%s)
(cd "$ETCD_DIR" && "${RUN[@]}" "$GO" mod tidy) || die "go mod tidy failed for etcd"
(cd "$ETCD_DIR" && "${RUN[@]}" "$GO" build -trimpath -ldflags "$ETCD_LDFLAGS" -o "$STAGE/etcd" go.etcd.io/etcd/server/v3) \
  || die "go build of etcd failed"
log "etcd build: $(elapsed "$t")"

# --- sanity + install -------------------------------------------------------
# Capture the output before matching: `cmd | grep -q` under pipefail fails when grep exits at the
# first match and the command then dies of SIGPIPE writing its next line.
KUBECTL_VERSION_OUT=$("$STAGE/kubectl" version --client 2>&1) || die "kubectl version failed: $KUBECTL_VERSION_OUT"
[[ "$KUBECTL_VERSION_OUT" == *"v${K8S_VERSION}"* ]] \
  || die "kubectl does not report v${K8S_VERSION}: $KUBECTL_VERSION_OUT"
ETCD_VERSION_OUT=$("$STAGE/etcd" --version 2>&1) || die "etcd --version failed: $ETCD_VERSION_OUT"
[[ "$ETCD_VERSION_OUT" == *"${ETCD_VERSION}"* ]] || die "etcd does not report ${ETCD_VERSION}: $ETCD_VERSION_OUT"

mkdir -p "$BIN_DIR"
rm -f "$STAMP"
for b in "${BINARIES[@]}"; do
  chmod 0755 "$STAGE/$b"
  mv -f "$STAGE/$b" "$BIN_DIR/$b"
done
stamp_text >"$STAMP.tmp.$$"
mv -f "$STAMP.tmp.$$" "$STAMP"

log "done in $(elapsed "$T_ALL"): $(cd "$BIN_DIR" && du -sh "${BINARIES[@]}" | awk '{printf "%s=%s ", $2, $1}')"
echo "$BIN_DIR"
