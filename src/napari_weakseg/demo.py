"""The demo: napari with the synthetic phantom, a pre-tagged study and the plugin's widgets docked."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

PLUGIN = "napari-weakseg"
ANNOTATION_WIDGET = "Tag slices and paint masks"
TRAINING_WIDGET = "Train and inspect"


def build_demo_study(folder: Path, seed: int = 0) -> Path:
    """A study of the 2-channel phantom: tags from its ground truth, masks kept on 3 slices."""
    from .data.phantom import make_phantom
    from .study import Study, save_study
    from .study.build import keep_masks, tags_from_masks

    case = make_phantom(channels=2, seed=seed)
    study = Study()
    im = study.add_image(case.volume, name="phantom", mask=case.mask.copy())
    tags_from_masks(im, roi=case.head)
    keep_masks(study, 3, per="slice", seed=seed)
    return save_study(study, folder)


def run_demo(headless: bool = False, screenshot: Path | None = None) -> int:
    """Open the demo (both docks, tabbed). ``headless``: build everything, report, close (for servers and CI)."""
    import napari

    from .data.phantom import make_phantom
    from .widgets.annotation_widget import default_study_home

    viewer = napari.Viewer(title="napari-weakseg demo", show=not headless)
    tag_dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
    viewer.window.add_plugin_dock_widget(PLUGIN, TRAINING_WIDGET, tabify=True)
    tag_dock.raise_()  # start on the tagging tab
    folder = build_demo_study(default_study_home() / f"demo-{time.strftime('%Y%m%d-%H%M%S')}")
    widget.open_study(folder)
    truth = make_phantom(channels=2, seed=0).mask
    viewer.add_labels(truth, name="phantom truth (reference)", scale=widget.image.volume.spacing, visible=False)
    viewer.layers.selection.active = widget.mask_layer
    annotated = np.flatnonzero(widget.image.annotated())
    widget.go_to_slice(int(annotated[0]) if len(annotated) else 0)
    counts = widget.image.counts()
    print(f"demo study in {folder}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr)
    if screenshot is not None:
        viewer.window._qt_window.resize(1400, 850)
        napari.qt.get_qapp().processEvents()
        viewer.screenshot(str(screenshot), canvas_only=False)
        print(f"screenshot saved to {screenshot}", file=sys.stderr)
    if headless:
        viewer.close()
        return 0
    napari.run()
    return 0
