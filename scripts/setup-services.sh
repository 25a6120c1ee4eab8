#!/usr/bin/env bash
# Install and start the system services the test suite needs (idempotent; needs root for apt).
#   redis-server          limits, cache
#   docker.io + dockerd   the container sandbox driver
#   bubblewrap            the namespace sandbox driver
#   python3-seccomp       seccomp filters for bubblewrap (built with the system python3)
#   busybox-static        the shell of the locally built sandbox image
set -euo pipefail

PACKAGES=(redis-server docker.io bubblewrap python3-seccomp busybox-static)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup-services: missing ${missing[*]} and not root; install them, or the tests that need them skip (fail under CI=true)" >&2
    exit 0
  fi
  echo "setup-services: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The distribution's redis service is not needed: tests start their own servers.
if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
  systemctl stop redis-server || true
fi

if command -v dockerd >/dev/null && [[ $(id -u) -eq 0 ]] && ! docker info >/dev/null 2>&1; then
  echo "setup-services: starting dockerd" >&2
  if ! pgrep -x dockerd >/dev/null; then
    setsid dockerd --iptables=false --bridge=none >/var/log/llmops-dockerd.log 2>&1 < /dev/null &
  fi
  for _ in $(seq 1 120); do
    [[ -S /var/run/docker.sock ]] && docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "setup-services: dockerd did not start" >&2; tail -20 /var/log/llmops-dockerd.log >&2; exit 1; }
fi
echo "setup-services: ready" >&2
