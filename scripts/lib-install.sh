# shellcheck shell=bash
# Helpers to install the system packages the tests need. Source this file:
#   . scripts/lib-install.sh && install_system_packages
#
# Debian (bookworm) packages and the binaries they provide:
#   nats-server      -> /usr/sbin/nats-server     (NATS 2.9.10; note: sbin)
#   docker-registry  -> /usr/bin/docker-registry  (CNCF distribution 2.8.x;
#                       run as `docker-registry serve CONFIG.yml`; the
#                       shipped /etc/docker/registry/config.yml listens on
#                       :5000 with htpasswd auth, so tests write their own)
#   openssl          -> /usr/bin/openssl
#   curl             -> /usr/bin/curl
# Services shipped by these packages are never started by the install
# (a temporary policy-rc.d denies it); tests start their own instances.

_wasmgate_apt_updated=${_wasmgate_apt_updated:-0}

_wasmgate_log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Runs `apt-get update` at most once per shell.
apt_update_once() {
  if [[ "$_wasmgate_apt_updated" != 1 ]]; then
    _wasmgate_log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
    _wasmgate_apt_updated=1
  fi
}

# install_system_packages [extra "binary:package" pairs...]
# Installs each package whose binary is not on PATH; no-op when all are there.
install_system_packages() {
  local -a wanted=(
    nats-server:nats-server
    docker-registry:docker-registry
    openssl:openssl
    curl:curl
    "$@"
  )
  local -a missing=()
  local pair bin pkg
  # nats-server lives in /usr/sbin, which a non-login PATH may lack.
  case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac
  for pair in "${wanted[@]}"; do
    bin=${pair%%:*}
    pkg=${pair#*:}
    command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  local sudo=()
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { _wasmgate_log "need root to install: ${missing[*]}"; return 1; }
    sudo=(sudo -n)
  fi
  _wasmgate_log "installing: ${missing[*]}"
  if [[ ${#sudo[@]} -gt 0 ]]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
  else
    apt_update_once || return 1
  fi
  # Keep package maintainer scripts from starting daemons (docker-registry ships one).
  local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null && "${sudo[@]}" chmod 0755 "$policy" && made_policy=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" >&2 || rc=$?
  if [[ $made_policy == 1 ]]; then "${sudo[@]}" rm -f "$policy"; fi
  if [[ $rc != 0 ]]; then
    _wasmgate_log "apt-get install failed ($rc)"
    return "$rc"
  fi
  for pair in "${wanted[@]}"; do
    bin=${pair%%:*}
    command -v "$bin" >/dev/null 2>&1 || { _wasmgate_log "still missing after install: $bin"; return 1; }
  done
}
