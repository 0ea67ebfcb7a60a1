#!/usr/bin/env bash
# Set up (see setup.sh) and launch napari with the plugin's demo: the synthetic phantom,
# a pre-tagged study and the plugin's widgets docked.
#   bash scripts/demo.sh              open the napari window
#   bash scripts/demo.sh --headless   no window (servers): build the same, save demo.png, exit
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${WEAKSEG_VENV:-.venv}
if [ "${1:-}" = "--headless" ] || [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  [ "${1:-}" = "--headless" ] || echo "[demo] no display found: running headless" >&2
  exec xvfb-run -a -s "-screen 0 1600x1000x24" "$VENV/bin/weakseg" demo --headless --screenshot demo.png
fi
exec "$VENV/bin/weakseg" demo
