#!/usr/bin/env bash
# Prepare a fresh Debian/openEuler-like machine (as root): the system packages
# the tools, tests and demo use, and the Python package in ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(runc crun podman busybox-static libfuse2 fuse3 lxcfs iproute2 bridge-utils
      openvswitch-switch kmod udev fdisk util-linux rpm python3-venv procps)

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root (it installs packages and the tools need root)" >&2
    exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Docker and containerd for tests/system/test_docker.py and test_containerd.py,
# which start private daemons of their own: the packages' own services must
# not start (a host dockerd would add a bridge and iptables rules), so they
# are installed under a policy-rc.d that forbids starting services.
ENGINE_PKGS=(docker.io containerd)
missing=()
for p in "${ENGINE_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    echo "setup.sh: installing ${missing[*]} (services not started)"
    export DEBIAN_FRONTEND=noninteractive
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
elif [ ${#missing[@]} -gt 0 ]; then
    echo "setup.sh: not installing ${missing[*]}: /usr/sbin/policy-rc.d exists (its tests skip)" >&2
fi
# The Debian lxcfs package may start its own daemon at /var/lib/lxcfs; the
# tests never touch it, but nothing here needs it either.

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[test]'
# bytecode ahead of time: hooks and the CLI start faster, also where
# PYTHONDONTWRITEBYTECODE keeps Python from caching it on first use
.venv/bin/python -m compileall -q syscontainer_tools lxcfs_toolkit
echo "setup.sh: ready (.venv/bin/syscontainer-tools, syscontainer-hooks, lxcfs-toolkit, lxcfs-hook)"
