# shellcheck shell=bash
# Shared by scripts/bench-admission and scripts/bench-faults (sourced, not run): the load tool,
# the release builds, the inputs and the server helpers. Expects log/die, CACHE, TARGET and OUT.

OHA_VERSION=1.16.0

# Sets OHA: oha from PATH, else installed into $CACHE/oha once.
bench_find_oha() {
  OHA=$(command -v oha || true)
  if [[ -z $OHA ]]; then
    OHA=$CACHE/oha/bin/oha
    if [[ ! -x $OHA ]]; then
      log "installing oha $OHA_VERSION into $CACHE/oha (once)"
      cargo install oha --locked --version "$OHA_VERSION" --root "$CACHE/oha" >&2
    fi
  fi
  command -v openssl >/dev/null || die "openssl is needed (apt-get install openssl)"
  command -v python3 >/dev/null || die "python3 is needed for the report"
}

# Sets WASMGATE (WASMGATE_BIN, or a release build) and HELPERS (BENCH_HELPERS_DIR, or a release
# build of benches/admission: admission-floor, admission-fixtures, faults).
bench_build() {
  if [[ -n ${WASMGATE_BIN:-} ]]; then
    WASMGATE=$WASMGATE_BIN
    log "wasmgate: $WASMGATE (WASMGATE_BIN, not rebuilt)"
  else
    log "release build: wasmgate"
    cargo build --release --bin wasmgate >&2
    WASMGATE=$TARGET/release/wasmgate
  fi
  HELPERS=${BENCH_HELPERS_DIR:-$TARGET/release}
  if [[ -z ${BENCH_HELPERS_DIR:-} ]]; then
    log "release build: the bench helpers (benches/admission)"
    cargo build --release -p wasmgate-bench-admission >&2
  fi
}

# Writes the inventories, reviews and component binaries, and a self-signed serving
# certificate for 127.0.0.1 (tls.crt, tls.key), into $OUT.
bench_inputs() {
  mkdir -p "$OUT"
  log "inputs and reports in $OUT"
  "$HELPERS/admission-fixtures" "$OUT" 1000 10000
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$OUT/tls.key" -out "$OUT/tls.crt" 2>/dev/null
}

pick_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_ready URL: until it answers at all (any status), at most 30 s.
wait_ready() {
  for _ in $(seq 1 300); do
    curl -sk -o /dev/null "$1" && return 0
    sleep 0.1
  done
  die "no answer from $1"
}
