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
.venv/bin/mypy --strict syscontainer_tools lxcfs_toolkit
echo "== pytest"
exec .venv/bin/python -m pytest tests "$@"
