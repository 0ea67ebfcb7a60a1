"""Screenshot of files stored in different orientations overlaid (docs/images/overlay-orientations.png) from the
real GUI: a BraTS FLAIR stored LPS and its tumour mask rewritten RAS (nibabel's canonical form) and T1c
rewritten with its axes permuted (as a sagittal acquisition would store it). With the tagging dock open, the
later files are shown in the FLAIR's axes; the script checks that the voxels agree and prints the notes.

Run under Xvfb:  xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots_overlay.py ../shared/data/brats2015
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch  # noqa: F401  (before Qt)

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def rewritten(src: Path, code: str, folder: Path) -> Path:
    """``src`` stored in orientation ``code`` (the same anatomy, other voxel axes)."""
    import nibabel as nib

    img = nib.load(src)
    t = nib.orientations.ornt_transform(nib.io_orientation(img.affine), nib.orientations.axcodes2ornt(tuple(code)))
    out = folder / src.name.replace(".nii.gz", f"-{code}.nii.gz")
    nib.save(img.as_reoriented(t), out)
    return out


def main(data: str) -> int:
    os.environ.setdefault("WEAKSEG_HOME", tempfile.mkdtemp(prefix="weakseg-shots-"))
    import napari
    import nibabel as nib
    import numpy as np
    from napari.utils import notifications

    from napari_weakseg.demo import ANNOTATION_WIDGET, PLUGIN
    from napari_weakseg.widgets import view_controls

    notes = []
    view_controls.show_info = notes.append
    case = Path(data) / "brats_2013_pat0005_1"
    home = Path(os.environ["WEAKSEG_HOME"])
    flair = case / "Flair_subtrMeanDivStd.nii.gz"
    mask = rewritten(case / "OTMultiClass.nii.gz", "RAS", home)
    t1c = rewritten(case / "T1c_subtrMeanDivStd.nii.gz", "SAL", home)
    for p in (flair, mask, t1c):
        print(f"{p.name}: stored {''.join(nib.aff2axcodes(nib.load(p).affine))}", file=sys.stderr)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    viewer.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
    (f,) = viewer.open(flair, plugin=PLUGIN)
    (t,) = viewer.open(t1c, plugin=PLUGIN)
    (m,) = viewer.open(mask, plugin=PLUGIN)
    truth = np.asanyarray(nib.load(case / "OTMultiClass.nii.gz").dataobj).T  # napari order, the FLAIR's axes
    ok = np.array_equal(np.asarray(m.data) > 0, truth > 0) and t.data.shape == f.data.shape
    print("\n".join(notes), file=sys.stderr)
    print(f"mask voxels equal the FLAIR-axes truth: {ok}; T1c shape {t.data.shape} = FLAIR {f.data.shape}", file=sys.stderr)
    t.colormap, t.blending, t.opacity, t.contrast_limits = "magenta", "additive", 0.6, (0, 4)
    f.contrast_limits = (0, 4)
    m.opacity = 0.45
    z = int(np.argwhere(truth > 0).mean(axis=0)[0])
    viewer.dims.set_current_step(0, z)
    notifications.notification_manager.records.clear()
    OUT.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(OUT / "overlay-orientations.png"), canvas_only=False, flash=False)
    viewer.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/brats2015"))
