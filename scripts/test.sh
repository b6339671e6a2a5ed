#!/usr/bin/env bash
# The project's test command (README and CI): set up, lint, type-check, and run
# the unit and system tests (system tests need root: real containers, FUSE,
# network namespaces, loop devices).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy syscontainer_tools lxcfs_toolkit
echo "== pytest"
rc=0
.venv/bin/python -m pytest tests "$@" || rc=$?
# the VM lanes: stock distribution kernels on pure cgroup v2 and Debian 11/13
# roots (scripts/vm-lanes.sh); SYSCONTAINER_VM_LANE=0 skips them
if [ "${SYSCONTAINER_VM_LANE:-1}" != 0 ]; then
    echo "== VM lanes"
    bash scripts/vm-lanes.sh || { s=$?; [ "$rc" -ne 0 ] || rc=$s; }
else
    echo "== VM lanes skipped (SYSCONTAINER_VM_LANE=0)"
fi
exit "$rc"
