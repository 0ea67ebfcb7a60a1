"""Screenshots of the training dock from the real GUI: train genseg on the demo phantom, run the model.

Run under Xvfb:  xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots_training.py [STEPS]
Prints the time from Train to the end of Run model and the Dice of the segmentation against the phantom's truth.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch  # noqa: F401  (before Qt)

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def main(steps: int = 200) -> int:
    import numpy as np
    from demo_viewer import open_demo

    from napari_weakseg.data.phantom import make_phantom
    from napari_weakseg.demo import ANNOTATION_WIDGET, TRAINING_WIDGET
    from napari_weakseg.training.metrics import dice

    app, viewer, (ann, train) = open_demo("shots-training", (ANNOTATION_WIDGET, TRAINING_WIDGET))
    lesion_slices = np.flatnonzero(ann.image.tags == 1)
    ann.go_to_slice(int(lesion_slices[len(lesion_slices) // 2]))
    train.settings.steps.setValue(steps)
    done = []
    train.finished.connect(done.append)
    t0 = time.perf_counter()
    train.start_training()
    while not done:
        app.processEvents()
        time.sleep(0.05)
    t_train = time.perf_counter() - t0
    worker = train.run_model()
    finished = []
    worker.finished.connect(lambda: finished.append(1))
    while not finished:
        app.processEvents()
        time.sleep(0.05)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    t_all = time.perf_counter() - t0
    from napari_weakseg.widgets.output_layers import SEG, layer_name

    seg = viewer.layers[layer_name("phantom", SEG)].data
    truth = make_phantom(channels=2, seed=0).mask
    print(f"{done[0]}; train {t_train:.0f} s, train + run model {t_all:.0f} s; Dice vs truth {dice(seg, truth):.3f}", file=sys.stderr)
    viewer.layers["phantom mask"].visible = False  # the outputs as the dock shows them: contour and residual overlay
    viewer.layers.selection.active = viewer.layers[layer_name("phantom", SEG)]
    from napari_weakseg.widgets.dock_fit import raise_dock

    raise_dock(train)  # the docks are tabs: show the training one
    app.processEvents()
    viewer.screenshot(str(OUT / "training.png"), canvas_only=False)
    train.toggle_healthy()  # Healthy <-> image: the translated image over the source, the contour on it
    app.processEvents()
    viewer.screenshot(str(OUT / "healthy-and-segmentation.png"), canvas_only=False)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
