#!/usr/bin/env bash
# The project's test command (README and CI): set up, lint, type-check, and run
# the unit and system tests (system tests need root: real containers, FUSE,
# network namespaces, loop devices).  The venv is made with the distribution's
# own /usr/bin/python3 unless PYTHON names another interpreter, so this proves
# the Python users have (Debian 12: 3.11.2), not whichever is first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
echo "== $(.venv/bin/python -V) ($(readlink -f .venv/bin/python))"
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy --strict syscontainer_tools lxcfs_toolkit
echo "== pytest"
exec .venv/bin/python -m pytest tests "$@"
