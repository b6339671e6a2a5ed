#!/usr/bin/env bash
# Every VM lane, one after the other (scripts/test.sh runs this after the
# native lane; SYSCONTAINER_VM_LANE=0 skips it):
#   1. Debian 12's stock kernel on pure cgroup v2 (the host's root): tests/vm,
#      and booted with systemd as init: tests/vm/systemd
#   2. Debian 11 bullseye (Python 3.9, kernel 5.10) and
#   3. Debian 13 trixie (Python 3.13, kernel 6.12), roots made by
#      tests/vm/mkroot.sh under .vm/roots, each with its own kernel and python3,
#      on the native host's cgroup layout (v1 controllers, as openEuler 22.03)
#      and on pure v2.
# In CI the distribution guests run a subset that fits the time budget;
#   scripts/vm-lanes.sh --full
# runs the whole suite in them (hours under emulation).
# Exit status: the first failing lane's; every lane runs.
# (in braces: bash reads it all before running it, so an edit during a run is harmless)
{
set -uo pipefail
cd "$(dirname "$0")/.."
full=0
[ "${1:-}" = --full ] && full=1
# what the distribution guests run in CI: the unit tests (the whole package on
# that Python) and system tests that use its kernel's mount API (5.10 has no
# mount_setattr: the fallback runs), devices and the hooks
SUBSET=(tests/unit tests/system/test_paths.py tests/system/test_core.py
        tests/system/test_device.py tests/vm/test_guest.py)
[ "$full" = 1 ] && SUBSET=(tests)

rc=0
t_all=$(date +%s)
lane() {
    local t0 s
    t0=$(date +%s)
    scripts/vm-lane.sh "$@"
    s=$?
    echo "== VM lane $1 $2 ... finished with status $s in $(( $(date +%s) - t0 ))s"
    [ "$s" -eq 0 ] || [ "$rc" -ne 0 ] || rc=$s
}

echo "== VM lane: Debian 12 stock kernel, pure cgroup v2"
lane --name debian12-v2 -- tests/vm -q -rfE

echo "== VM lane: Debian 12 stock kernel, systemd 252 as init, pure cgroup v2"
lane --name debian12-systemd --init systemd -- tests/vm/systemd -q -rfE

for suite in bullseye trixie; do
    dir=.vm/roots/$suite
    echo "== VM lane: Debian $suite root ($dir)"
    if ! tests/vm/mkroot.sh "$suite" "$dir"; then
        echo "== VM lane $suite: could not make the root"
        [ "$rc" -ne 0 ] || rc=2
        continue
    fi
    lane --name "$suite-hybrid" --root "$dir" --cgroup hybrid -- "${SUBSET[@]}" -q -rfE
    # pure v2 there too (the root has no podman, crun or C lxcfs to compare with)
    lane --name "$suite-v2" --root "$dir" --cgroup v2 -- tests/vm/test_guest.py \
        tests/vm/test_v2_devices.py tests/vm/test_v2_nic_modules.py -q -rfE
done
echo "== VM lanes: $(( $(date +%s) - t_all ))s in all, status $rc"
exit "$rc"
exit
}
