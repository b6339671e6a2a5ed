#!/usr/bin/env bash
# Every VM lane, one after the other (SYSCONTAINER_VM_LANE=full scripts/test.sh
# runs this after the native lane):
#   1. Debian 12's stock kernel on pure cgroup v2 (the host's root): tests/vm,
#      and booted with systemd as init: tests/vm/systemd
#   2. Debian 11 bullseye (Python 3.9, kernel 5.10) and
#   3. Debian 13 trixie (Python 3.13, kernel 6.12), roots made by
#      tests/vm/mkroot.sh under .vm/roots.  In each: the whole suite with the
#      root's python3 and user space (runc, iproute2, util-linux of that
#      release) on this host's kernel at native speed (tests/vm/inroot.sh:
#      the root pivoted to in a mount and PID namespace of its own), then the
#      tests that depend on the kernel booted with the root's own kernel, on
#      the native host's cgroup layout (v1 controllers, as openEuler 22.03)
#      and on pure v2 (one root per suite, booted twice).
#
#   scripts/vm-lanes.sh             every lane, the distribution guests with
#                                   the CI subset (SUBSET below)
#   scripts/vm-lanes.sh --distros   only the distribution lanes, CI subset, both
#                                   layouts for each root
#                                   (SYSCONTAINER_VM_LANE=distros scripts/test.sh)
#   scripts/vm-lanes.sh --ci        what CI runs after the smoke guest (scripts/
#                                   test.sh's default): both roots' whole suite by
#                                   inroot.sh, bullseye's 5.10 booted on the hybrid
#                                   layout (openEuler 22.03's), trixie's 6.12 on
#                                   pure v2 (about 20 minutes on a quiet machine)
#   scripts/vm-lanes.sh --full      every lane, the whole suite in the
#                                   distribution guests (hours under emulation)
# Exit status: the first failing lane's; every lane runs, and each prints the
# names of its failed tests (pytest -rfE) and how long it took.
# (in braces: bash reads it all before running it, so an edit during a run is harmless)
{
set -uo pipefail
cd "$(dirname "$0")/.."
full=0 distros_only=0 ci=0
case "${1:-}" in
    --full) full=1 ;;
    --distros) distros_only=1 ;;
    --ci) distros_only=1 ci=1 ;;
    "") ;;
    *) echo "vm-lanes.sh: unknown argument $1 (--full, --distros, --ci or nothing)" >&2; exit 2 ;;
esac
# what the distribution guests boot their own kernel for: system tests that
# use its mount API (5.10 has no mount_setattr: the fallback runs), devices,
# lookup and the guest's layout.  The whole suite runs in the root first
# (tests/vm/inroot.sh), in minutes rather than hours under emulation.
SUBSET=(tests/vm/test_guest.py
        tests/system/test_paths.py::test_add_directory_live
        tests/system/test_paths.py::test_add_read_only
        tests/system/test_paths.py::test_read_only_rootfs
        tests/system/test_device.py::test_add_device_live
        tests/system/test_device.py::test_qos_and_update)
# on pure v2: the guest's layout and the v2 device and module tests that pass
# in the Debian 12 guest (scripts/test.sh's smoke selection)
SUBSET_V2=(tests/vm/test_guest.py
           tests/vm/test_v2_devices.py::test_follow_partition_on_virtio_disk
           tests/vm/test_v2_devices.py::test_blkio_weight_reaches_bfq
           tests/vm/test_v2_nic_modules.py::test_kernel_modules_at_prestart
           tests/vm/test_v2_nic_modules.py::test_missing_kernel_module_fails_start)
if [ "$full" = 1 ]; then
    SUBSET=(tests)
    # (test_lxcfs_hook's containers have memory and cpuset limits: on trixie's
    # hybrid layout they skip, so its lxcfs-hook tests boot on 6.12 here)
    SUBSET_V2=(tests/vm tests/system/test_device_v2.py tests/system/test_lxcfs_hook.py)
fi

rc=0
t_all=$(date +%s)
lane() {
    local t0 s
    t0=$(date +%s)
    scripts/vm-lane.sh "$@"
    s=$?
    echo "== VM lane $2 ... finished with status $s in $(( $(date +%s) - t0 ))s"
    [ "$s" -eq 0 ] || [ "$rc" -ne 0 ] || rc=$s
}

SUITES=(bullseye trixie)
# the roots are made one after the other in the background, from the start:
# the next one's debootstrap (network, dpkg) overlaps this one's guests (CPU)
mkdir -p .vm/roots
rm -f .vm/roots/*.mk.rc
(
    for suite in "${SUITES[@]}"; do
        t0=$(date +%s)
        tests/vm/mkroot.sh "$suite" ".vm/roots/$suite" >".vm/roots/$suite.mk.log" 2>&1
        s=$?
        echo "$s $(( $(date +%s) - t0 ))" >".vm/roots/$suite.mk.rc"
    done
) </dev/null &
mk_pid=$!
trap 'kill "$mk_pid" 2>/dev/null' EXIT

if [ "$distros_only" = 0 ]; then
    echo "== VM lane: Debian 12 stock kernel, pure cgroup v2"
    lane --name debian12-v2 -- tests/vm -q -rfE
    echo "== VM lane: Debian 12 stock kernel, systemd 252 as init, pure cgroup v2"
    lane --name debian12-systemd --init systemd -- tests/vm/systemd -q -rfE
fi

for suite in "${SUITES[@]}"; do
    dir=.vm/roots/$suite
    echo "== VM lane: Debian $suite root ($dir)"
    while [ ! -s "$dir.mk.rc" ] && kill -0 "$mk_pid" 2>/dev/null; do sleep 2; done
    read -r s dt < "$dir.mk.rc" 2>/dev/null || s=2 dt=?
    cat "$dir.mk.log" 2>/dev/null
    if [ "$s" != 0 ]; then
        echo "== VM lane $suite: could not make the root (tests/vm/mkroot.sh exited $s)"
        [ "$rc" -ne 0 ] || rc=2
        continue
    fi
    echo "== VM lane $suite: root ready in ${dt}s"
    t0=$(date +%s)
    tests/vm/inroot.sh "$dir" python -m pytest -p no:cacheprovider tests -q -rfE
    s=$?
    echo "== VM lane $suite-inroot (the whole suite, its python3 and user space, this kernel) ... finished with status $s in $(( $(date +%s) - t0 ))s"
    [ "$s" -eq 0 ] || [ "$rc" -ne 0 ] || rc=$s
    # --ci boots each root once: bullseye on the hybrid layout (openEuler
    # 22.03's: v1 controllers, kernel 5.10), trixie on pure v2
    if [ "$ci" = 0 ] || [ "$suite" = bullseye ]; then
        lane --name "$suite-hybrid" --root "$dir" --cgroup hybrid -- "${SUBSET[@]}" -q -rfE
    fi
    # pure v2 there too (the root has no podman, crun or C lxcfs to compare with)
    if [ "$ci" = 0 ] || [ "$suite" = trixie ]; then
        lane --name "$suite-v2" --root "$dir" --cgroup v2 -- "${SUBSET_V2[@]}" -q -rfE
    fi
done
echo "== VM lanes: $(( $(date +%s) - t_all ))s in all, status $rc"
exit "$rc"
exit
}
