#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for tests: etcd, kube-apiserver
# (with the aggregation layer's front-proxy set up) and kube-controller-manager.
#
# Usage:
#   scripts/control-plane.sh start DIR   start (fresh etcd data), wait until ready,
#                                        print `export ...` lines on stdout
#   scripts/control-plane.sh stop DIR    stop everything started in DIR
#   scripts/control-plane.sh env DIR     print the `export ...` lines again
#   scripts/control-plane.sh status DIR  exit 0 if all processes run and /readyz is ok
#
#   eval "$(scripts/control-plane.sh start /tmp/cp)"; kubectl get ns; ...
#   scripts/control-plane.sh stop /tmp/cp
#
# Exports printed by start/env (also written to DIR/env):
#   KUBECONFIG                      DIR/kubeconfig (admin: CN=admin, O=system:masters)
#   WASMGATE_APISERVER_URL          https://127.0.0.1:PORT
#   WASMGATE_CP_DIR                 DIR
#   WASMGATE_CP_BIN                 dir with kubectl, kube-apiserver, ... (put on PATH)
#   WASMGATE_CA_CERT                DIR/pki/ca.crt (cluster CA: serving + client certs)
#   WASMGATE_CA_KEY                 DIR/pki/ca.key (to sign certs for test servers)
#   WASMGATE_FRONT_PROXY_CA_CERT    DIR/pki/front-proxy-ca.crt (verify aggregator client certs)
#   WASMGATE_FRONT_PROXY_CA_KEY     DIR/pki/front-proxy-ca.key
#   WASMGATE_FRONT_PROXY_CLIENT_CERT/KEY  DIR/pki/front-proxy-client.{crt,key} (CN=front-proxy-client)
#   WASMGATE_ADMIN_CERT/KEY         DIR/pki/admin.{crt,key}
#   WASMGATE_SA_KEY/WASMGATE_SA_PUB DIR/pki/sa.{key,pub}
#   WASMGATE_ETCD_URL               http://127.0.0.1:PORT
#
# Environment:
#   WASMGATE_CP_BIN      use binaries from here instead of running build-control-plane.sh
#   WASMGATE_CP_TIMEOUT  seconds to wait for readiness (default 90)
#   WASMGATE_CP_VERBOSE  kube-apiserver/controller-manager -v level (default 1)
#
# Logs: DIR/logs/{etcd,kube-apiserver,kube-controller-manager}.log. PIDs: DIR/pids/*.pid.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TIMEOUT=${WASMGATE_CP_TIMEOUT:-90}
VERBOSE=${WASMGATE_CP_VERBOSE:-1}
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1

log() { printf '[control-plane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

abspath() { mkdir -p "$1" && (cd "$1" && pwd); }

# --- processes -----------------------------------------------------------------

pid_of() { # component -> pid on stdout if alive and really that binary
  local f="$DIR/pids/$1.pid" pid exe
  [[ -f "$f" ]] || return 1
  pid=$(<"$f")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -d /proc/$pid ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  [[ "${exe##*/}" == "$1" || "${exe##*/}" == "$1 (deleted)" ]] || return 1
  echo "$pid"
}

# exited PID: true when PID is gone or a zombie. The processes were started by an
# earlier `start` and are reparented to init, which may take a second or two to
# reap them; an exited process waiting for that counts as stopped.
exited() {
  local state
  state=$(sed -n 's/^.*) \([A-Za-z]\) .*$/\1/p' "/proc/$1/stat" 2>/dev/null || true)
  [[ -z "$state" || "$state" == Z || "$state" == X ]]
}

# wait_gone PID TENTHS: wait up to TENTHS/10 s for PID to exit.
wait_gone() {
  local i
  for ((i = 0; i < $2; i++)); do
    exited "$1" && return 0
    sleep 0.1
  done
  exited "$1"
}

# Stop the controller-manager and apiserver, then etcd (so the apiserver never
# waits on a dead etcd). TERM, then KILL after a short grace: the cluster is
# throwaway (etcd data is wiped on every start).
stop_all() {
  local t c running=0
  for c in kube-controller-manager kube-apiserver etcd; do
    pid_of "$c" >/dev/null && running=1
  done
  if ((running)); then
    t=$(date +%s.%N)
    stop_group kube-controller-manager kube-apiserver
    stop_group etcd
    log "stopped processes in $(elapsed "$t")"
  fi
  rm -f "$DIR"/pids/*.pid
}

stop_group() {
  local c pid
  local -a pids=()
  for c in "$@"; do
    if pid=$(pid_of "$c"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$c:$pid")
    fi
  done
  for c in "${pids[@]}"; do
    pid=${c#*:}
    if ! wait_gone "$pid" 50; then
      log "${c%%:*} (pid $pid) did not exit within 5s of TERM; killing"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 50 || log "${c%%:*} (pid $pid) still present after KILL"
    fi
  done
}

# spawn NAME ARGS...: run the binary in the background, output to its log.
spawn() {
  local name=$1
  shift
  "$BIN/$name" "$@" </dev/null >>"$DIR/logs/$name.log" 2>&1 &
  echo $! >"$DIR/pids/$name.pid"
}

fail() {
  log "ERROR: $*"
  local c
  for c in etcd kube-apiserver kube-controller-manager; do
    if [[ -s "$DIR/logs/$c.log" ]]; then
      printf '\n===== tail of %s =====\n' "$DIR/logs/$c.log" >&2
      tail -n 40 "$DIR/logs/$c.log" >&2
    fi
  done
  stop_all
  exit 1
}

# --- ports -----------------------------------------------------------------------

declare -A TAKEN=()
# A free TCP port on loopback, below the kernel's ephemeral range so that
# outgoing connections will not grab it between choosing and binding.
# pick_port VAR: set VAR (not in a subshell, so TAKEN is kept between calls).
pick_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    [[ -n "${TAKEN[$p]:-}" ]] && continue
    if [[ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]]; then
      TAKEN[$p]=1
      printf -v "$1" '%s' "$p"
      return 0
    fi
  done
  fail "no free port on 127.0.0.1"
}

# --- certificates ------------------------------------------------------------------

ossl() { openssl "$@" 2>>"$DIR/logs/openssl.log"; }

new_key() { ossl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; chmod 600 "$1"; }

new_ca() { # file-prefix CN
  new_key "$1.key"
  ossl req -x509 -new -key "$1.key" -sha256 -days 3650 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$1.crt"
}

# new_cert prefix ca-prefix subject extendedKeyUsage [subjectAltName]
new_cert() {
  local out=$1 ca=$2 subj=$3 eku=$4 san=${5:-}
  new_key "$out.key"
  ossl req -new -key "$out.key" -subj "$subj" -out "$out.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [[ -n "$san" ]] && echo "subjectAltName=$san"
  } >"$out.ext"
  ossl x509 -req -in "$out.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial \
    -sha256 -days 3650 -extfile "$out.ext" -out "$out.crt"
  rm -f "$out.csr" "$out.ext"
}

make_pki() {
  local pki="$DIR/pki"
  rm -rf "$pki"
  mkdir -p "$pki"
  new_ca "$pki/ca" wasmgate-test-ca
  new_cert "$pki/apiserver" "$pki/ca" "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  new_cert "$pki/admin" "$pki/ca" "/O=system:masters/CN=admin" clientAuth
  new_ca "$pki/front-proxy-ca" wasmgate-test-front-proxy-ca
  new_cert "$pki/front-proxy-client" "$pki/front-proxy-ca" "/CN=front-proxy-client" clientAuth
  # Service-account token signing key (RSA: the common case for JWT verifiers).
  ossl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key"
  chmod 600 "$pki/sa.key"
  ossl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
}

write_kubeconfig() {
  local pki="$DIR/pki"
  cat >"$DIR/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: wasmgate-test
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(base64 -w0 <"$pki/admin.crt")
    client-key-data: $(base64 -w0 <"$pki/admin.key")
contexts:
- name: wasmgate-test
  context:
    cluster: wasmgate-test
    user: admin
    namespace: default
current-context: wasmgate-test
EOF
  chmod 600 "$DIR/kubeconfig.tmp"
  mv -f "$DIR/kubeconfig.tmp" "$DIR/kubeconfig"
}

write_env() {
  local pki="$DIR/pki"
  cat >"$DIR/env.tmp" <<EOF
export KUBECONFIG=$DIR/kubeconfig
export WASMGATE_APISERVER_URL=$APISERVER_URL
export WASMGATE_CP_DIR=$DIR
export WASMGATE_CP_BIN=$BIN
export WASMGATE_CA_CERT=$pki/ca.crt
export WASMGATE_CA_KEY=$pki/ca.key
export WASMGATE_FRONT_PROXY_CA_CERT=$pki/front-proxy-ca.crt
export WASMGATE_FRONT_PROXY_CA_KEY=$pki/front-proxy-ca.key
export WASMGATE_FRONT_PROXY_CLIENT_CERT=$pki/front-proxy-client.crt
export WASMGATE_FRONT_PROXY_CLIENT_KEY=$pki/front-proxy-client.key
export WASMGATE_ADMIN_CERT=$pki/admin.crt
export WASMGATE_ADMIN_KEY=$pki/admin.key
export WASMGATE_SA_KEY=$pki/sa.key
export WASMGATE_SA_PUB=$pki/sa.pub
export WASMGATE_ETCD_URL=$ETCD_URL
EOF
  mv -f "$DIR/env.tmp" "$DIR/env"
}

admin_curl() {
  curl -fsS --max-time 3 --cacert "$DIR/pki/ca.crt" \
    --cert "$DIR/pki/admin.crt" --key "$DIR/pki/admin.key" "$APISERVER_URL$1" 2>/dev/null
}

# During startup: is the process we spawned still running (not exited or a zombie)?
check_alive() {
  local c pid state
  for c in "$@"; do
    pid=$(<"$DIR/pids/$c.pid")
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    [[ -n "$state" && "$state" != Z && "$state" != X ]] || fail "$c exited during startup"
  done
}

# --- commands ----------------------------------------------------------------------

cmd_start() {
  local t0 deadline
  t0=$(date +%s.%N)
  deadline=$(($(date +%s) + TIMEOUT))

  command -v openssl >/dev/null || { log "openssl is required"; exit 1; }
  command -v curl >/dev/null || { log "curl is required"; exit 1; }

  if [[ -n "${WASMGATE_CP_BIN:-}" ]]; then
    BIN=$WASMGATE_CP_BIN
  else
    BIN=$("$SCRIPT_DIR/build-control-plane.sh" | tail -n 1)
  fi
  local b
  for b in etcd kube-apiserver kube-controller-manager kubectl; do
    [[ -x "$BIN/$b" ]] || { log "missing $BIN/$b (run scripts/build-control-plane.sh)"; exit 1; }
  done

  mkdir -p "$DIR/pids" "$DIR/logs"
  stop_all # leftovers from an earlier run in the same DIR
  rm -rf "$DIR/etcd" "$DIR/kcm-certs" "$DIR/apiserver-certs" "$DIR/flexvolume"
  : >"$DIR/logs/openssl.log"
  for b in etcd kube-apiserver kube-controller-manager; do : >"$DIR/logs/$b.log"; done

  local etcd_port etcd_peer_port api_port kcm_port
  pick_port etcd_port
  pick_port etcd_peer_port
  pick_port api_port
  pick_port kcm_port
  ETCD_URL="http://127.0.0.1:$etcd_port"
  APISERVER_URL="https://127.0.0.1:$api_port"

  spawn etcd \
    --name=wasmgate-test \
    --data-dir="$DIR/etcd" \
    --listen-client-urls="$ETCD_URL" \
    --advertise-client-urls="$ETCD_URL" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster="wasmgate-test=http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster-state=new \
    --unsafe-no-fsync=true \
    --log-level=warn

  # Certificates are made while etcd starts.
  make_pki || fail "certificate generation failed (see $DIR/logs/openssl.log)"
  write_kubeconfig
  write_env
  local pki="$DIR/pki"

  # Capture, then match: `curl | grep -q` under pipefail can fail when grep exits first.
  until [[ "$(curl -fsS --max-time 2 "$ETCD_URL/health" 2>/dev/null || true)" == *'"health":"true"'* ]]; do
    check_alive etcd
    (($(date +%s) < deadline)) || fail "etcd not healthy within ${TIMEOUT}s"
    sleep 0.1
  done

  # --endpoint-reconciler-type=none: Endpoints may not hold a loopback address, so
  # with --advertise-address=127.0.0.1 the default reconciler would log an error
  # every 10 s; the default/kubernetes Service is still created, without endpoints.
  spawn kube-apiserver \
    --etcd-servers="$ETCD_URL" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --secure-port="$api_port" \
    --cert-dir="$DIR/apiserver-certs" \
    --tls-cert-file="$pki/apiserver.crt" \
    --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --authorization-mode=Node,RBAC \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --requestheader-client-ca-file="$pki/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --requestheader-group-headers=X-Remote-Group \
    --requestheader-username-headers=X-Remote-User \
    --proxy-client-cert-file="$pki/front-proxy-client.crt" \
    --proxy-client-key-file="$pki/front-proxy-client.key" \
    --enable-aggregator-routing=false \
    --allow-privileged=true \
    --profiling=false \
    --v="$VERBOSE"

  until [[ "$(admin_curl /readyz)" == ok ]]; do
    check_alive etcd kube-apiserver
    (($(date +%s) < deadline)) || fail "kube-apiserver /readyz not ok within ${TIMEOUT}s"
    sleep 0.2
  done
  log "kube-apiserver ready at $APISERVER_URL after $(elapsed "$t0")"

  spawn kube-controller-manager \
    --kubeconfig="$DIR/kubeconfig" \
    --authentication-kubeconfig="$DIR/kubeconfig" \
    --authorization-kubeconfig="$DIR/kubeconfig" \
    --bind-address=127.0.0.1 \
    --secure-port="$kcm_port" \
    --cert-dir="$DIR/kcm-certs" \
    --flex-volume-plugin-dir="$DIR/flexvolume" \
    --service-account-private-key-file="$pki/sa.key" \
    --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" \
    --cluster-signing-key-file="$pki/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --use-service-account-credentials=true \
    --leader-elect=false \
    --controllers='*' \
    --profiling=false \
    --v="$VERBOSE"

  # The default namespace exists once the apiserver is ready; the default
  # service account appears when the controller-manager's serviceaccount
  # controller has run.
  until admin_curl /api/v1/namespaces/default/serviceaccounts/default >/dev/null; do
    check_alive etcd kube-apiserver kube-controller-manager
    (($(date +%s) < deadline)) || fail "default service account not created within ${TIMEOUT}s"
    sleep 0.2
  done
  admin_curl /api/v1/namespaces/default >/dev/null || fail "default namespace missing"

  log "control plane ready in $(elapsed "$t0") (logs: $DIR/logs)"
  cat "$DIR/env"
}

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'; }

cmd_stop() {
  [[ -d "$DIR/pids" ]] || { log "nothing to stop in $DIR"; return 0; }
  stop_all
  log "stopped ($DIR)"
}

cmd_env() {
  [[ -f "$DIR/env" ]] || { log "no $DIR/env: run start first"; exit 1; }
  cat "$DIR/env"
}

cmd_status() {
  [[ -f "$DIR/env" ]] || exit 1
  # shellcheck disable=SC1091
  APISERVER_URL=$(. "$DIR/env" && echo "$WASMGATE_APISERVER_URL")
  local c
  for c in etcd kube-apiserver kube-controller-manager; do
    pid_of "$c" >/dev/null || { log "$c not running"; exit 1; }
  done
  [[ "$(admin_curl /readyz)" == ok ]] || { log "/readyz not ok"; exit 1; }
  log "running: $APISERVER_URL"
}

[[ $# -eq 2 ]] || usage
if [[ "$1" == start ]]; then DIR=$(abspath "$2"); else DIR=$(realpath -m "$2"); fi
case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
env) cmd_env ;;
status) cmd_status ;;
*) usage ;;
esac
