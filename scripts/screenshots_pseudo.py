"""Screenshot of the pseudo-label review from the real GUI: train pseudo-label on the demo phantom (no
masks used), review its pseudo labels, refine with the decisions.

Run under Xvfb:  xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots_pseudo.py [STEPS]
Prints the timings, how many pseudo labels the selection keeps, and Dice against the phantom's truth.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch  # noqa: F401  (before Qt)

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
REVIEW_WIDGET = "Review pseudo labels"


def _wait(app, signal) -> None:
    """Process events until ``signal`` is emitted once."""
    done = []
    signal.connect(done.append)
    while not done:
        app.processEvents()
        time.sleep(0.05)


def main(steps: int = 300) -> int:
    import numpy as np
    from demo_viewer import open_demo

    from napari_weakseg.data.phantom import make_phantom
    from napari_weakseg.demo import ANNOTATION_WIDGET, TRAINING_WIDGET
    from napari_weakseg.training.metrics import dice

    app, viewer, (ann, train, review) = open_demo("shots-pseudo", (ANNOTATION_WIDGET, TRAINING_WIDGET, REVIEW_WIDGET))
    truth = make_phantom(channels=2, seed=0).mask
    lesion_slices = np.flatnonzero(ann.image.tags == 1)
    ann.go_to_slice(int(lesion_slices[len(lesion_slices) // 2]))
    train.settings.method.setCurrentText("pseudo-label")
    train.settings.steps.setValue(steps)
    t0 = time.perf_counter()
    train.start_training()
    _wait(app, train.finished)
    while train.prediction_pending:
        app.processEvents()
        time.sleep(0.05)
    from napari_weakseg.widgets.output_layers import PROB, SEG, layer_name

    seg = viewer.layers[layer_name("phantom", SEG)].data
    print(f"trained {steps} steps in {time.perf_counter() - t0:.0f} s; G_A's pseudo labels: Dice {dice(seg, truth):.3f}", file=sys.stderr)
    review.start_review()
    _wait(app, review.finished)
    print(f"review: {review.status.text()}", file=sys.stderr)
    worst = review.ordered_slices()[:2]
    review.decide("rejected", worst)  # the two worst-scored slices stay out of the rounds
    for name in (layer_name("phantom", PROB), layer_name("phantom", SEG), "phantom mask"):
        if name in viewer.layers:
            viewer.layers[name].visible = False
    from napari_weakseg.widgets.dock_fit import raise_dock

    raise_dock(review)  # the docks are tabs: show the review one
    app.processEvents()
    viewer.screenshot(str(OUT / "pseudo-review.png"), canvas_only=False)
    t1 = time.perf_counter()
    review.start_refine()
    _wait(app, review.finished)
    while review.busy:
        _wait(app, review.finished)
    print(f"refine in {time.perf_counter() - t1:.0f} s: {review.status.text()}", file=sys.stderr)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
