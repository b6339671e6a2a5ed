#!/usr/bin/env bash
# Runs inside the VM lane's guest as root (scripts/vm-lane.sh starts it):
# make the guest a pure cgroup v2 host with every controller on, start udevd,
# then run pytest and leave its exit status in OUT/rc.
#   guest.sh OUT PYTHON [PYTEST ARGS...]
set -u
out=$1 py=$2; shift 2
REPO=$(cd "$(dirname "$0")/../.." && pwd)
say() { echo "guest: $*"; }

mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup
if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
    say "/sys/fs/cgroup is not cgroup2"; echo 2 > "$out/rc"; exit 2
fi
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || say "cannot enable $c"
done
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
for m in fuse loop dummy virtio_scsi sd_mod; do modprobe -q "$m" 2>/dev/null || true; done

# udevd (the plain init has none; systemd's own is running already)
if [ ! -S /run/udev/control ]; then
    for d in /lib/systemd/systemd-udevd /usr/lib/systemd/systemd-udevd /sbin/udevd; do
        if [ -x "$d" ]; then "$d" --daemon >/dev/null 2>&1; break; fi
    done
    udevadm trigger --action=add >/dev/null 2>&1 || true
    udevadm settle -t 60 >/dev/null 2>&1 || true
fi

udevadm settle -t 30 >/dev/null 2>&1 || sleep 2
disk=""
for b in /sys/block/sd*; do
    [ -e "$b" ] && disk=/dev/$(basename "$b") && break
done
nic=""
for n in /sys/class/net/*; do
    [ "$(cat "$n/address" 2>/dev/null)" = 52:54:00:5c:70:01 ] && nic=$(basename "$n")
done
export SYSCONTAINER_VM_GUEST=1 SYSCONTAINER_VM_DISK=$disk SYSCONTAINER_VM_NIC=$nic
export PYTHONDONTWRITEBYTECODE=1 TMPDIR=${TMPDIR:-/tmp}
say "kernel $(uname -r), python $("$py" -c 'import sys; print(sys.version.split()[0])'), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control), disk ${disk:-none}, nic ${nic:-none}"

if [ -d /run/systemd/system ]; then
    export SYSCONTAINER_VM_INIT=systemd
    say "systemd $(systemctl --version | head -1 | cut -d' ' -f2): $(systemctl is-system-running 2>&1), virt $(systemd-detect-virt 2>&1), failed units: $(systemctl list-units --failed --plain --no-legend 2>&1 | cut -d' ' -f1 | tr '\n' ' ')"
    say "systemd generators: $(ls /run/systemd/generator.early 2>&1 | tr '\n' ' ')"
fi
t0=$(date +%s)
cd "$REPO"
"$py" -m pytest -p no:cacheprovider "$@" </dev/null
rc=$?
say "pytest took $(( $(date +%s) - t0 ))s in the guest"
echo "$rc" > "$out/rc"
sync
exit "$rc"
