#!/usr/bin/env bash
# Idempotent CI setup for the executors sandboxes: apt packages, then dockerd (no iptables, no bridge).
set -euo pipefail

need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v dockerd >/dev/null || need+=(docker.io)
command -v busybox >/dev/null || need+=(busybox-static)
/usr/bin/python3 -c 'import seccomp' 2>/dev/null || need+=(python3-seccomp)
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

if ! docker info >/dev/null 2>&1; then
  if ! pgrep -x dockerd >/dev/null; then
    setsid dockerd --iptables=false --bridge=none >/tmp/dockerd.log 2>&1 < /dev/null &
  fi
  for _ in $(seq 1 120); do
    [ -S /var/run/docker.sock ] && docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not come up" >&2; tail -20 /tmp/dockerd.log >&2; exit 1; }
fi
echo "executors deps ready: bwrap $(bwrap --version | awk '{print $2}'), docker $(docker version --format '{{.Server.Version}}')"
