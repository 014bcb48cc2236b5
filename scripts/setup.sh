#!/usr/bin/env bash
# Installs what mha's sandbox and tests need on a fresh Debian machine (as root). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || missing+=(mariadb-client)
command -v mariadb-backup >/dev/null 2>&1 || missing+=(mariadb-backup)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
# The partition test cuts one path with nftables inside a network namespace it creates.
[ -x /usr/sbin/nft ] || missing+=(nftables)
[ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing+=(iproute2)
# The watch --listen integration test scrapes mha with a real Prometheus server; promtool lints the metrics.
[ -x /usr/bin/prometheus ] || missing+=(prometheus)
# mha sandbox etcd starts a local etcd cluster for the multi-manager mode. Debian's etcd-server may start a system
# etcd on 127.0.0.1:2379; the sandbox never uses it, its members listen on other loopback addresses.
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
# mha sandbox up --haproxy and the routing tests start their own haproxy (Debian's default configuration binds no port).
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# The durability unit tests watch the fsync calls of a real process.
command -v strace >/dev/null 2>&1 || missing+=(strace)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: ${missing[*]} missing; run as root or: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  # The packages' own services are not wanted: the sandbox starts its own servers.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
