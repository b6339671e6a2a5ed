#!/usr/bin/env bash
# Prepare this machine (as root): the system packages, then the Python
# package in ./.venv (editable, with the test tools).
#
#   scripts/setup.sh         what the tools need at run time, plus runc and
#                            busybox for the demo (scripts/demo.sh)
#   scripts/setup.sh --test  also what the test suite needs (scripts/test.sh):
#                            crun, podman, the C lxcfs (to compare with),
#                            Open vSwitch, rpm, sfdisk, bridge-utils, docker.io
#                            and containerd
#   scripts/setup.sh --vm    also what the VM lanes need (scripts/vm-lanes.sh):
#                            qemu, debootstrap, file
#
# apt (Debian, Ubuntu) or dnf (openEuler, Fedora).  setup.sh starts no
# service: services the packages it installs would start or enable (the C
# lxcfs, the OVS daemons, podman.socket, ...) are kept from starting
# (policy-rc.d) and left disabled; the tests start the daemons they need
# privately and stop them.  SETUP_KEEP_SERVICES=1 leaves them as the packages
# set them up.
#
#   PYTHON  interpreter for ./.venv (default /usr/bin/python3, the
#           distribution's own; an existing .venv made by another one is
#           made again)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=run
vm=0
for arg in "$@"; do
    case $arg in
        --test) profile=test ;;
        --vm) vm=1 ;;
        -h|--help) sed -n '2,23s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument $arg (--test, --vm or nothing)" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root (it installs packages and the tools need root)" >&2
    exit 1
fi

if command -v apt-get >/dev/null; then
    pm=apt
    # run time: /dev/fuse and its tools (fuse3; the daemon speaks FUSE itself);
    # ip, modprobe, udevadm, nsenter/losetup, ps
    RUN_PKGS=(fuse3 iproute2 kmod udev util-linux procps python3-venv)
    DEMO_PKGS=(runc busybox-static)
    # docker.io, containerd: tests/system/test_docker.py, test_containerd.py start
    # private daemons of their own
    TEST_PKGS=(crun podman lxcfs openvswitch-switch bridge-utils fdisk rpm docker.io containerd)
    VM_PKGS=(qemu-system-x86 debootstrap file)
    # the installed ones among the names given, one query
    installed() { dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null |
                  awk '$2 == "installed" { sub(/:.*/, "", $1); print $1 }'; }
elif command -v dnf >/dev/null; then
    pm=dnf
    # Names checked against Fedora's and openEuler's spec files.  A path where
    # the two name the package differently (dnf installs what provides it):
    # runc is docker-runc on openEuler, qemu-system-x86_64 is in Fedora's
    # qemu-system-x86-core.  python3 has venv there; sfdisk is in util-linux;
    # "docker" is what openEuler's docker-engine and Fedora's moby-engine
    # provide.  (No libfuse 2 "fuse": the daemon speaks FUSE itself.)
    RUN_PKGS=(fuse3 iproute kmod systemd-udev util-linux procps-ng python3)
    DEMO_PKGS=(/usr/bin/runc busybox)
    TEST_PKGS=(crun podman lxcfs openvswitch bridge-utils rpm-build docker containerd)
    VM_PKGS=(/usr/bin/qemu-system-x86_64 debootstrap file)
    installed() { for p in "$@"; do rpm -q --whatprovides "$p" >/dev/null 2>&1 && echo "$p"; done; }
else
    echo "setup.sh: neither apt-get nor dnf found; install by hand what docs/install.md lists" >&2
    exit 1
fi

# the services each optional package brings (names on Debian and openEuler)
units_of() {
    case $1 in
        lxcfs) echo lxcfs.service ;;
        openvswitch-switch|openvswitch)
            echo openvswitch-switch.service openvswitch.service ovsdb-server.service ovs-vswitchd.service ;;
        podman) echo podman.socket podman.service podman-restart.service podman-auto-update.timer ;;
        docker.io|docker) echo docker.socket docker.service ;;
        containerd) echo containerd.service ;;
    esac
}

pkgs=("${RUN_PKGS[@]}" "${DEMO_PKGS[@]}")
[ "$profile" = test ] && pkgs+=("${TEST_PKGS[@]}")
[ "$vm" = 1 ] && pkgs+=("${VM_PKGS[@]}")

# (Debian 13 renamed libfuse2 to libfuse2t64)
have=" $(installed "${pkgs[@]}" "${pkgs[@]/%/t64}" | tr '\n' ' ' || true) "
missing=()
for p in "${pkgs[@]}"; do
    case $have in *" $p "*|*" ${p}t64 "*) ;; *) missing+=("$p") ;; esac
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    if [ "$pm" = apt ]; then
        policy=/usr/sbin/policy-rc.d
        if [ -z "${SETUP_KEEP_SERVICES:-}" ] && [ ! -e "$policy" ]; then
            # invoke-rc.d asks this before starting anything: 101 = not now
            printf '#!/bin/sh\nexit 101\n' > "$policy"
            chmod 0755 "$policy"
            trap 'rm -f "$policy"' EXIT
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        dnf install -y -q "${missing[@]}"
    fi
    if [ -z "${SETUP_KEEP_SERVICES:-}" ]; then
        units=()
        for p in "${missing[@]}"; do
            read -r -a u <<< "$(units_of "$p")"
            units+=("${u[@]}")
        done
        if [ ${#units[@]} -gt 0 ] && [ -d /run/systemd/system ]; then
            for u in "${units[@]}"; do
                if systemctl cat "$u" >/dev/null 2>&1; then
                    systemctl disable --now "$u" >/dev/null 2>&1 || true
                fi
            done
            echo "setup.sh: left disabled and stopped: ${units[*]} (SETUP_KEEP_SERVICES=1 keeps them)"
        fi
    fi
fi

PY=${PYTHON:-/usr/bin/python3}
if [ -z "${PYTHON:-}" ] && [ ! -x "$PY" ]; then
    PY=python3
fi
PY=$(command -v "$PY") || { echo "setup.sh: no interpreter ${PYTHON:-/usr/bin/python3}" >&2; exit 1; }
want=$("$PY" -c 'import sys; print(sys.base_prefix, "%d.%d.%d" % sys.version_info[:3])')
# .venv from another interpreter (an older setup, another PYTHON): make it again
if [ -x .venv/bin/python ] && [ "$(.venv/bin/python -c 'import sys; print(sys.base_prefix, "%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)" != "$want" ]; then
    echo "setup.sh: .venv was made by another Python; making it again with $PY"
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
fi
# reinstall only when what the install depends on changed (the code itself is
# editable, so edits need no reinstall)
stamp=.venv/.syscontainer-tools-setup
sum=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ] || [ ! -x .venv/bin/syscontainer-tools ]; then
    .venv/bin/python -m pip install -q -e '.[test]'
    # bytecode ahead of time: hooks and the CLI start faster, also where
    # PYTHONDONTWRITEBYTECODE keeps Python from caching it on first use
    .venv/bin/python -m compileall -q syscontainer_tools lxcfs_toolkit
    echo "$sum" > "$stamp"
fi
echo "setup.sh: ready, $("$PY" -V) in .venv; the programs (syscontainer-tools, syscontainer-hooks,"
echo "  syscontainer-runc, lxcfs-toolkit, lxcfs-hook) are in $PWD/.venv/bin: put them on PATH with"
echo "  export PATH=$PWD/.venv/bin:\$PATH"
