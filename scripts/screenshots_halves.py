"""Screenshot of half-slice tagging (docs/images/halves.png) from the real GUI, on a BraTS case.

Run under Xvfb:  xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots_halves.py ../shared/data/brats2015
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch  # noqa: F401  (before Qt)

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def main(data: str) -> int:
    os.environ.setdefault("WEAKSEG_HOME", tempfile.mkdtemp(prefix="weakseg-shots-"))
    import napari
    import numpy as np

    from napari_weakseg.demo import ANNOTATION_WIDGET, PLUGIN

    case = Path(data) / "brats_2013_pat0005_1"
    study = Path(os.environ["WEAKSEG_HOME"]) / "halves"
    weakseg = Path(sys.executable).parent / "weakseg"
    subprocess.run(
        [
            str(weakseg),
            "study",
            "create",
            str(study),
            "--image",
            f"{case / 'Flair_subtrMeanDivStd.nii.gz'},{case / 'T1c_subtrMeanDivStd.nii.gz'}",
            "--mask",
            str(case / "OTMultiClass.nii.gz"),
            "--roi-mask",
            str(case / "brainmask.nii.gz"),
            "--tags-from-masks",
            "--halves",
            "left-right",
            "--keep-masks",
            "3",
            "--per",
            "half",
        ],
        check=True,
    )
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 950)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
    widget.open_study(study)
    im = widget.image
    rows = np.flatnonzero((im.half_tags[:, 0] != im.half_tags[:, 1]) & (im.half_tags == 2).any(1))  # one half healthy
    widget.go_to_slice(int(rows[len(rows) // 2]))
    viewer.reset_view()
    napari.qt.get_qapp().processEvents()
    OUT.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(OUT / "halves.png"), canvas_only=False)
    viewer.close()
    print(f"screenshot written to {OUT / 'halves.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
