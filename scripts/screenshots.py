"""Regenerate the screenshots in docs/images from the real GUI.

Run under Xvfb:  xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch  # noqa: F401  (before Qt)

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def main() -> int:
    os.environ.setdefault("WEAKSEG_HOME", tempfile.mkdtemp(prefix="weakseg-shots-"))
    import napari
    import numpy as np

    from napari_weakseg.demo import run_demo

    OUT.mkdir(parents=True, exist_ok=True)
    run_demo(headless=True, screenshot=OUT / "demo.png")

    # painting on an absence slice: the warning banner and its retag button
    from napari_weakseg.demo import ANNOTATION_WIDGET, PLUGIN, build_demo_study

    viewer = napari.Viewer(show=False)
    viewer.window._qt_window.resize(1400, 850)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
    widget.open_study(build_demo_study(Path(os.environ["WEAKSEG_HOME"]) / "shots"))
    im = widget.image
    absence = int(np.flatnonzero(im.tags == 2)[len(np.flatnonzero(im.tags == 2)) // 2])
    widget.go_to_slice(absence)
    layer = widget.mask_layer
    layer.brush_size = 8
    with layer.block_history():
        for y, x in [(40, 40), (42, 44), (44, 47)]:
            layer.paint((absence, y, x), 1)
    napari.qt.get_qapp().processEvents()
    viewer.screenshot(str(OUT / "absence-warning.png"), canvas_only=False)
    dock = widget.parentWidget()
    dock.grab().save(str(OUT / "dock.png"))
    viewer.close()
    print(f"screenshots written to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
