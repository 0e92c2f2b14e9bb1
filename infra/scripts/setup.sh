#!/usr/bin/env bash
# setup.sh installs and starts what roomstream's test suite needs, or says
# exactly what is missing. Usage: infra/scripts/setup.sh redis node docker chromium prometheus
set -euo pipefail

say() { printf '[setup] %s\n' "$*" >&2; }

# as_root runs a command as root: directly, or with passwordless sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else
    say "need root to run: $*"
    say "run it yourself (e.g. with sudo), then run the tests again"
    exit 1
  fi
}

apt_updated=
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing: $* (no apt-get here: install these packages with your package manager)"
    exit 1
  fi
  if [ -z "$apt_updated" ]; then
    say "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  say "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

need_redis() {
  if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then return; fi
  apt_install redis-server redis-tools
  # The tests start private servers; the packaged service is not needed.
  if command -v systemctl >/dev/null 2>&1; then as_root systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
}

need_prometheus() {
  if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then return; fi
  # Without the node exporter it recommends: nothing here scrapes it.
  apt_install --no-install-recommends prometheus
  # The tests start private servers; the packaged service is not needed.
  if command -v systemctl >/dev/null 2>&1; then as_root systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
  if command -v service >/dev/null 2>&1; then as_root service prometheus stop >/dev/null 2>&1 || true; fi
}

need_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 18 ]; then
    say "node $(node --version) is too old: socket.io-client 4.8 needs node 18 or newer"
    exit 1
  fi
  for dir in "$@"; do
    if [ -f "$dir/package-lock.json" ]; then
      say "npm ci in $dir"
      npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null
    fi
  done
}

need_docker() {
  if ! command -v dockerd >/dev/null 2>&1; then
    apt_install docker.io
  fi
  if docker info >/dev/null 2>&1; then return; fi
  say "starting dockerd (host networking only, vfs storage; it keeps running after the tests: pkill dockerd stops it)"
  as_root sh -c 'nohup dockerd --bridge=none --iptables=false --storage-driver=vfs >/tmp/roomstream-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then return; fi
    sleep 0.5
  done
  say "dockerd did not come up; its log:"
  tail -20 /tmp/roomstream-dockerd.log >&2 || true
  exit 1
}

need_chromium() {
  if command -v chromium >/dev/null 2>&1; then return; fi
  apt_install chromium
}

for need in "$@"; do
  case "$need" in
    redis) need_redis ;;
    prometheus) need_prometheus ;;
    node)
      # Every Node test client of the repository (e2e/*/package-lock.json).
      mapfile -t dirs < <(find e2e -name package-lock.json -not -path '*/node_modules/*' -exec dirname {} \; | sort)
      need_node "${dirs[@]}" ;;
    node:*) need_node "${need#node:}" ;;
    docker) need_docker ;;
    chromium) need_chromium ;;
    *) say "unknown requirement: $need"; exit 2 ;;
  esac
done
