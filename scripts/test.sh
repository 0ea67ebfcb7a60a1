#!/usr/bin/env bash
# Set up (see setup.sh) and run the whole test suite; GUI tests run in a virtual X server (Xvfb).
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k study -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${WEAKSEG_VENV:-.venv}
export PYTHONUNBUFFERED=1
# lint and format first (the rules are in pyproject.toml; .pre-commit-config.yaml runs the same)
"$VENV/bin/ruff" check src tests scripts
"$VENV/bin/ruff" format --check src tests scripts
if command -v xvfb-run >/dev/null; then
  exec xvfb-run -a -s "-screen 0 1600x1000x24" "$VENV/bin/python" -m pytest "$@"
elif [ -n "${DISPLAY:-}" ]; then
  exec "$VENV/bin/python" -m pytest "$@"
else
  echo "no X server and no xvfb-run: install Xvfb (apt-get install xvfb) or run with a display" >&2
  exit 1
fi
