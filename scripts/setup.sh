#!/usr/bin/env bash
# Set up napari-weakseg on a Debian/Ubuntu machine with Python >= 3.11.
#  - system libraries for Qt/OpenGL and Xvfb (only if missing, and only as root or with sudo)
#  - a virtual environment in .venv (override with WEAKSEG_VENV)
#  - the CPU build of torch when no NVIDIA GPU is present
#  - the plugin itself, editable, with its test extra
# Safe to run again: every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${WEAKSEG_VENV:-.venv}
PY=${PYTHON:-python3}
TORCH_VERSION=${WEAKSEG_TORCH_VERSION:-2.13.0}

say() { printf '[setup] %s\n' "$*"; }

# --- system packages --------------------------------------------------------
SYS_PKGS="xvfb xauth libgl1 libegl1 libgl1-mesa-dri libglib2.0-0 libfontconfig1 libdbus-1-3 \
libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 \
libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xinerama0 libxcb-xfixes0 libxcb-xkb1"
missing=""
if command -v dpkg-query >/dev/null; then
  for p in $SYS_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=sudo; else SUDO=none; fi
  if [ "$SUDO" = none ]; then
    say "missing system packages (install them yourself):$missing"
  else
    say "installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi

# --- virtual environment -----------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
"$VPY" - <<'PYEOF' || { echo "Python >= 3.11 is required" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PYEOF

# --- torch: the CPU build unless a GPU is present ------------------------------
if ! "$VPY" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    say "GPU found: installing torch with CUDA"
    "$VPY" -m pip install -q "torch>=2.2"
  else
    say "no GPU found: installing the CPU build of torch"
    "$VPY" -m pip install -q --retries 1 --timeout 20 "torch==$TORCH_VERSION" \
        --index-url https://download.pytorch.org/whl/cpu 2>/dev/null \
      || "$VPY" -m pip install -q "torch==$TORCH_VERSION"
  fi
fi

# --- the plugin ---------------------------------------------------------------
stamp="$VENV/.weakseg-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing napari-weakseg with its test extra"
  "$VPY" -m pip install -q -e ".[testing]"
  touch "$stamp"
fi
say "ready: $VENV"
