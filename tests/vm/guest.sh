#!/usr/bin/env bash
# Runs inside the VM lane's guest as root (scripts/vm-lane.sh starts it):
# make the guest a pure cgroup v2 host with every controller on, start udevd,
# then run pytest and leave its exit status in OUT/rc.
#   guest.sh OUT PYTHON [PYTEST ARGS...]
# (in braces: bash reads it all before running it, so an edit during a run is harmless)
{
set -u
out=$1 py=$2; shift 2
REPO=$(cd "$(dirname "$0")/../.." && pwd)
say() { echo "guest: $*"; }

mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup
if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
    say "/sys/fs/cgroup is not cgroup2"; echo 2 > "$out/rc"; exit 2
fi
if [ "${SYSCONTAINER_VM_CGROUP:-v2}" = hybrid ]; then
    # the native host's layout (and openEuler 22.03's): v1 controllers, an
    # empty v2 mount at unified -- controllers not enabled in v2 can move to v1
    umount /sys/fs/cgroup
    mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
    for c in cpuset cpu,cpuacct blkio memory devices freezer net_cls,net_prio perf_event hugetlb pids rdma misc; do
        mkdir -p "/sys/fs/cgroup/$c"
        mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" 2>/dev/null || rmdir "/sys/fs/cgroup/$c"
    done
    [ -d /sys/fs/cgroup/cpu,cpuacct ] && ln -s cpu,cpuacct /sys/fs/cgroup/cpu && ln -s cpu,cpuacct /sys/fs/cgroup/cpuacct
    [ -d /sys/fs/cgroup/net_cls,net_prio ] && ln -s net_cls,net_prio /sys/fs/cgroup/net_cls && ln -s net_cls,net_prio /sys/fs/cgroup/net_prio
    mkdir -p /sys/fs/cgroup/unified
    mount -t cgroup2 none /sys/fs/cgroup/unified
    layout="hybrid: $(ls /sys/fs/cgroup | tr '\n' ' ')"
else
    for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
        echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || say "cannot enable $c"
    done
    layout="cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
fi
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
for m in fuse loop dummy virtio_blk; do modprobe -q "$m" 2>/dev/null || true; done

# udevd (the plain init has none; systemd's own is running already)
if [ ! -S /run/udev/control ]; then
    for d in /lib/systemd/systemd-udevd /usr/lib/systemd/systemd-udevd /sbin/udevd; do
        if [ -x "$d" ]; then "$d" --daemon >/dev/null 2>&1; break; fi
    done
    udevadm trigger --action=add >/dev/null 2>&1 || true
    udevadm settle -t 60 >/dev/null 2>&1 || true
fi

udevadm settle -t 30 >/dev/null 2>&1 || sleep 2
# overlay storage (podman's, containerd's snapshotter, dockerd's overlay2)
# refuses a backing overlayfs, which the guest's /tmp and /var are: a tmpfs of
# its own for podman's storage and for the tests' files (TMPDIR), as on a real
# root file system
if [ -d /var/lib/containers ] && [ "$(stat -fc %T /var/lib/containers)" = overlayfs ]; then
    mount -t tmpfs -o mode=700 sctvm-containers /var/lib/containers || say "no tmpfs for podman"
fi
if [ -z "${TMPDIR:-}" ] && [ "$(stat -fc %T /tmp)" = overlayfs ]; then
    mkdir -p /tmp/sctvm && mount -t tmpfs -o mode=1777 sctvm-tmp /tmp/sctvm && export TMPDIR=/tmp/sctvm
fi
disk=""
for b in /sys/block/vd* /sys/block/sd*; do
    [ -e "$b" ] && disk=/dev/$(basename "$b") && break
done
nic=""
for n in /sys/class/net/*; do
    [ "$(cat "$n/address" 2>/dev/null)" = 52:54:00:5c:70:01 ] && nic=$(basename "$n")
done
export SYSCONTAINER_VM_GUEST=1 SYSCONTAINER_VM_DISK=$disk SYSCONTAINER_VM_NIC=$nic
export PYTHONDONTWRITEBYTECODE=1 TMPDIR=${TMPDIR:-/tmp}
say "kernel $(uname -r), python $("$py" -c 'import sys; print(sys.version.split()[0])'), $layout, disk ${disk:-none}, nic ${nic:-none}"

if [ -d /run/systemd/system ]; then
    export SYSCONTAINER_VM_INIT=systemd
    say "systemd $(systemctl --version | head -1 | cut -d' ' -f2): $(systemctl is-system-running 2>&1), virt $(systemd-detect-virt 2>&1), failed units: $(systemctl list-units --failed --plain --no-legend 2>&1 | cut -d' ' -f1 | tr '\n' ' ')"
    say "writable: $(findmnt -rno TARGET,FSTYPE | grep -E '^/(etc|var|tmp|root|home)[/ ]' | tr ' \n' ': ')"
fi
t0=$(date +%s)
cd "$REPO"
"$py" -m pytest -p no:cacheprovider "$@" </dev/null
rc=$?
say "pytest took $(( $(date +%s) - t0 ))s in the guest"
echo "$rc" > "$out/rc"
sync
exit "$rc"
exit
}
