#!/usr/bin/env bash
# The project's test command (README and CI): set up, lint, type-check, and run
# the unit and system tests (system tests need root: real containers, FUSE,
# network namespaces, loop devices).  The venv is made with the distribution's
# own /usr/bin/python3 unless PYTHON names another interpreter, so this proves
# the Python users have (Debian 12: 3.11.2), not whichever is first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
# SYSCONTAINER_VM_LANE: ci (default: a run in a Debian 12 guest on pure
# cgroup v2, then the Debian 11 and 13 roots: the whole suite with their own
# python3 by inroot.sh, bullseye's kernel booted on the hybrid layout and
# trixie's on pure v2: scripts/vm-lanes.sh --ci), smoke (the Debian 12 guest
# only), distros (smoke, then both roots on both layouts:
# scripts/vm-lanes.sh --distros), full (every VM lane: scripts/vm-lanes.sh),
# 0 (none). SYSCONTAINER_VM_SYSTEMD=1 adds a guest booted with systemd as
# init running tests/vm/systemd (13 of 13 passed; about an hour under TCG, so
# not in CI by default);
# SYSCONTAINER_VM_ENGINES=1 adds docker and containerd to the smoke guest
vm=${SYSCONTAINER_VM_LANE:-ci}
case "$vm" in
    0|ci|smoke|distros|full|1) ;;
    *) echo "test.sh: SYSCONTAINER_VM_LANE must be ci, smoke, distros, full or 0, not '$vm'" >&2; exit 2 ;;
esac
if [ "$vm" != 0 ]; then bash scripts/setup.sh --test --vm; else bash scripts/setup.sh --test; fi
echo "== $(.venv/bin/python -V) ($(readlink -f .venv/bin/python))"
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy --strict syscontainer_tools lxcfs_toolkit
echo "== pytest"
rc=0
.venv/bin/python -m pytest tests "$@" || rc=$?
# the VM lanes: Debian's stock kernel on pure cgroup v2 (the smoke run: the
# guest tests that fit CI's time), then the Debian 11/13 roots (CI's
# selection), or every lane (scripts/vm-lanes.sh; docs/support.md says what
# each has passed)
SMOKE=(tests/vm/test_guest.py
       tests/vm/test_v2_devices.py
       tests/vm/test_v2_lxcfs.py
       tests/vm/test_v2_nic_modules.py::test_kernel_modules_at_prestart
       tests/vm/test_v2_nic_modules.py::test_missing_kernel_module_fails_start
       # --type eth on 6.1: add, update-nic, remove (no EBUSY), poststop hand-back
       tests/vm/test_v2_nic_modules.py::test_eth_dummy_link_cycle_and_poststop
       tests/vm/test_v2_nic_modules.py::test_virtual_link_moved_in_live_is_never_lost
       tests/vm/test_v2_nic_modules.py::test_eth_virtio_pci_nic
       # crun on v2 (the hybrid host refuses it); podman with its default crun
       tests/vm/test_v2_engines.py)
# SYSCONTAINER_VM_ENGINES=1 adds Docker and containerd on v2 to the smoke guest
# (private dockerd/containerd; both pass there, but they take about as long as
# the rest of the smoke run: not in CI by default; docs/support.md)
smoke_timeout=2400
if [ "${SYSCONTAINER_VM_ENGINES:-0}" != 0 ]; then
    SMOKE+=(tests/system/test_docker.py tests/system/test_containerd.py)
    smoke_timeout=4800
fi
case "$vm" in
    0) echo "== VM lanes not run (SYSCONTAINER_VM_LANE=0)" ;;
    full|1)
        echo "== VM lanes (all)"
        bash scripts/vm-lanes.sh || { s=$?; [ "$rc" -ne 0 ] || rc=$s; } ;;
    *)
        echo "== VM lane (smoke): Debian 12 stock kernel, pure cgroup v2"
        t0=$(date +%s)
        scripts/vm-lane.sh --timeout "$smoke_timeout" --name debian12-v2-smoke -- "${SMOKE[@]}" -q -rfE ||
            { s=$?; [ "$rc" -ne 0 ] || rc=$s; }
        echo "== VM lane (smoke) took $(( $(date +%s) - t0 ))s"
        # Debian 11 (Python 3.9, kernel 5.10) and 13 (Python 3.13, kernel 6.12)
        # roots: CI's selection, or each on the hybrid layout and on pure v2
        case "$vm" in
            ci) bash scripts/vm-lanes.sh --ci || { s=$?; [ "$rc" -ne 0 ] || rc=$s; } ;;
            distros) bash scripts/vm-lanes.sh --distros || { s=$?; [ "$rc" -ne 0 ] || rc=$s; } ;;
        esac
        # systemd as PID 1 (one boot, every systemd test: the systemd cgroup
        # driver, podman's defaults, the lxcfs unit, udevd; docs/support.md)
        # (opt-in with SYSCONTAINER_VM_SYSTEMD=1 until it is green)
        if [ "${SYSCONTAINER_VM_SYSTEMD:-0}" != 0 ]; then
            echo "== VM lane (systemd): Debian 12 stock kernel, systemd 252 as init, pure cgroup v2"
            t0=$(date +%s)
            scripts/vm-lane.sh --init systemd --timeout 1800 --name debian12-systemd -- \
                tests/vm/systemd -v -rfE --durations=20 ||
                { s=$?; [ "$rc" -ne 0 ] || rc=$s; }
            echo "== VM lane (systemd) took $(( $(date +%s) - t0 ))s"
        fi ;;
esac
exit "$rc"
