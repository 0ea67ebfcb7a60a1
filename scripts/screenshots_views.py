"""Screenshots of the anatomical views (docs/images/views-*.png) from the real GUI, on a BraTS case stored LPS
and on the same scan rewritten RAS (nibabel's canonical form): both must look the same.

Run under Xvfb:  xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots_views.py ../shared/data/brats2015
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch  # noqa: F401  (before Qt)

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def main(data: str) -> int:
    os.environ.setdefault("WEAKSEG_HOME", tempfile.mkdtemp(prefix="weakseg-shots-"))
    import napari
    import nibabel as nib

    from napari_weakseg.demo import ANNOTATION_WIDGET, PLUGIN

    flair = Path(data) / "brats_2013_pat0005_1" / "Flair_subtrMeanDivStd.nii.gz"
    ras = Path(os.environ["WEAKSEG_HOME"]) / "flair-RAS.nii.gz"
    nib.save(nib.as_closest_canonical(nib.load(flair)), ras)
    OUT.mkdir(parents=True, exist_ok=True)
    for path, tag in ((flair, "lps"), (ras, "ras")):
        viewer = napari.Viewer(show=True)
        viewer.window._qt_window.resize(1500, 950)
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
        layers = viewer.open(path, plugin=PLUGIN)
        viewer.layers.selection.active = layers[0]
        widget.new_btn.click()
        print(f"{path.name}: axes {nib.aff2axcodes(nib.load(path).affine)}, slicing axis {widget.image.axis}", file=sys.stderr)
        for plane in ("axial", "coronal", "sagittal") if tag == "lps" else ("axial",):
            widget.views.buttons[plane].click()
            s = widget.views.view.slice_axis
            viewer.dims.set_current_step(s, widget.image.volume.shape[s] // 2 + (8 if plane == "axial" else 0))
            napari.qt.get_qapp().processEvents()
            name = f"views-{plane}.png" if tag == "lps" else "views-axial-ras.png"
            viewer.screenshot(str(OUT / name), canvas_only=not (plane == "axial" and tag == "lps"))
            print(f"screenshot written to {OUT / name}", file=sys.stderr)
        viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
