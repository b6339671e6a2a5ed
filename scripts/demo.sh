#!/usr/bin/env bash
# Set this machine up (packages, ./.venv) and run the narrated demo on a real
# runc system container.  --yes: no pauses between steps.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
