"""The new-user trial of issue #17, in the real GUI, on a BraTS volume: open the FLAIR and T1c files, make a
study, tag the slices, paint three, train with the dock's defaults, run the model, look at the suggestions,
correct one slice, accept it, retrain, save the study as a folder of one's own, close napari, open the study in
a new viewer and resume training. At each step it checks that nothing made so far is lost, prints what it saw
(Dice against the truth, times) and takes the screenshots of the docs (suggestions, the tagging dock on BraTS).

Run under Xvfb:  xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/new_user_trial.py ../shared/data/brats2015 [CASE]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import torch  # noqa: F401  (before Qt)

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def say(msg: str) -> None:
    print(f"[trial {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait(app, done, what: str, timeout: float = 1800) -> None:
    t0 = time.perf_counter()
    while not done():
        app.processEvents()
        time.sleep(0.05)
        if time.perf_counter() - t0 > timeout:
            raise SystemExit(f"timed out waiting for {what}")


def runs(ann) -> list[str]:
    folder = Path(ann.study.folder) / "runs"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def main(data: str, case_name: str = "brats_2013_pat0005_1") -> int:
    home = Path(os.environ.setdefault("WEAKSEG_HOME", tempfile.mkdtemp(prefix="weakseg-trial-")))
    import napari
    import numpy as np

    from napari_weakseg.demo import ANNOTATION_WIDGET, PLUGIN, TRAINING_WIDGET
    from napari_weakseg.io.case import load_case, load_mask
    from napari_weakseg.study import Tag, load_study
    from napari_weakseg.training.metrics import dice
    from napari_weakseg.widgets.dock_fit import raise_dock
    from napari_weakseg.widgets.output_layers import SEG, layer_name

    case = Path(data) / case_name
    files = [case / "Flair_subtrMeanDivStd.nii.gz", case / "T1c_subtrMeanDivStd.nii.gz"]
    volume = load_case(files)
    brain = load_mask(case / "brainmask.nii.gz", volume) > 0
    truth = (load_mask(case / "OTMultiClass.nii.gz", volume) > 0) & brain  # what the user sees as tumour
    app = napari.qt.get_qapp()
    t_start = time.perf_counter()

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 950)
    _, ann = viewer.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
    _, train = viewer.window.add_plugin_dock_widget(PLUGIN, TRAINING_WIDGET, tabify=True)
    layers = [viewer.open(f, plugin=PLUGIN)[0] for f in files]
    viewer.layers.selection.clear()
    viewer.layers.selection.update(layers)
    assert ann.new_study_from_layers(), ann._last_error
    im = ann.image
    say(f"study {ann.study.folder}: {im.volume.data.shape[0]} channels, {im.n_slices} slices, {ann.views.plane_label.text()}")
    say(f"the training dock's input size for these slices: {train.settings.input_size.value()}")

    # tags as a user gives them, by runs of slices: tumour visible, brain without tumour
    has_tumour, has_brain = truth.any(axis=(1, 2)), brain.any(axis=(1, 2))
    lo, hi = np.flatnonzero(has_tumour)[[0, -1]]
    ann.tag_range(int(np.flatnonzero(has_brain)[0]), int(lo) - 1, "absence")
    ann.tag_range(int(lo), int(hi), "presence")
    ann.tag_range(int(hi) + 1, int(np.flatnonzero(has_brain)[-1]), "absence")
    # three painted slices, spread over the tumour, through napari's own paint path (what the brush does)
    painted = [int(s) for s in np.linspace(lo, hi, 5)[1:4].round()]
    mask_layer = ann.mask_layer
    for s in painted:
        zz, yy, xx = np.nonzero(truth[s : s + 1])
        mask_layer.data_setitem((zz + s, yy, xx), 1)
    ann._process_paint()
    counts = im.counts()
    say(f"tagged {counts['presence']} presence / {counts['absence']} absence slices, painted {painted}: {counts['annotated']} annotated")
    assert counts["annotated"] == 3, counts
    ann.go_to_slice(painted[1])
    app.processEvents()
    viewer.screenshot(str(OUT / "dock-brats.png"), canvas_only=False)  # the tagging dock on BraTS

    # train with the dock's defaults (TRIAL_STEPS: fewer, for a quick check of this script); Run model follows
    if os.environ.get("TRIAL_STEPS"):
        train.settings.steps.setValue(int(os.environ["TRIAL_STEPS"]))
        train.retrain_steps.setValue(int(os.environ["TRIAL_STEPS"]))
    ended = []
    train.finished.connect(ended.append)
    t0 = time.perf_counter()
    assert train.start_training()
    wait(app, lambda: ended, "training")
    wait(app, lambda: not train.prediction_pending and layer_name(im.name, SEG) in viewer.layers, "Run model")
    seg = viewer.layers[layer_name(im.name, SEG)].data > 0
    say(f"{ended[-1].reason} in {time.perf_counter() - t0:.0f} s; volume Dice {dice(seg, truth):.3f}; {train.status.text()}")

    # suggestions, then one corrected slice, accepted, and a retrain
    suggestions = train.suggest()
    raise_dock(train)
    from qtpy.QtWidgets import QScrollArea

    scroll = train.suggestions.parent()
    while scroll is not None and not isinstance(scroll, QScrollArea):
        scroll = scroll.parent()
    if scroll is not None:  # the dock scrolls: show its Correct and retrain box with the list
        scroll.ensureWidgetVisible(train.suggestions, 0, 0)
    ann.go_to_slice(suggestions[0].slice)
    app.processEvents()
    viewer.screenshot(str(OUT / "suggestions.png"), canvas_only=False)
    presence_first = [x for x in suggestions if int(im.tags[x.slice]) == Tag.PRESENCE]
    s = presence_first[0].slice
    say(f"top suggestion: slice {s} ({presence_first[0].reason}); correcting it to the truth")
    seg_layer = viewer.layers[layer_name(im.name, SEG)]
    seg_layer.data[s] = truth[s]
    seg_layer.refresh()
    accepted = train.accept_corrections([s])
    assert accepted == [s] and im.counts()["annotated"] == 4, (accepted, im.counts())
    ended.clear()
    t0 = time.perf_counter()
    assert train.retrain()
    wait(app, lambda: ended, "retraining")
    wait(app, lambda: not train.prediction_pending, "Run model after retraining")
    seg = viewer.layers[layer_name(im.name, SEG)].data > 0
    say(f"retrained in {time.perf_counter() - t0:.0f} s; volume Dice {dice(seg, truth):.3f}; {train.status.text()}")
    say(f"model: {train.model_label.text()}")

    # Save as… a folder of one's own: the runs come along
    mine = home / "my BraTS study"
    assert ann.save_now(mine), ann._last_error
    before = {"tags": im.tags.copy(), "mask": im.mask.copy(), "runs": runs(ann), "folder": str(ann.study.folder)}
    say(f"saved as {mine}: runs {before['runs']}; the training dock follows: {train.study_label.text()}")
    assert Path(before["folder"]) == mine and len(before["runs"]) == 2
    viewer.close()
    app.processEvents()

    # a new napari: open the study, everything is there, resume training
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 950)
    _, ann = viewer.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
    _, train = viewer.window.add_plugin_dock_widget(PLUGIN, TRAINING_WIDGET, tabify=True)
    assert ann.open_study(mine)
    im = ann.image
    assert np.array_equal(im.tags, before["tags"]) and np.array_equal(im.mask, before["mask"]) and runs(ann) == before["runs"]
    assert train.last_run is not None and train.last_run.name == before["runs"][-1]
    say(f"reopened: tags, masks and runs as saved; the model is {train.last_run.name}")
    ended = []
    train.finished.connect(ended.append)
    if os.environ.get("TRIAL_STEPS"):
        train.settings.steps.setValue(2 * int(os.environ["TRIAL_STEPS"]))
    assert train.start_training(resume=True)
    wait(app, lambda: ended, "resumed training")
    wait(app, lambda: not train.prediction_pending, "Run model after resuming")
    after = runs(ann)
    say(f"resumed: {ended[-1].reason}; runs now {after}; {train.model_label.text()}")
    assert after[: len(before["runs"])] == before["runs"] and len(after) == 3  # a new run; the earlier ones untouched
    study = load_study(mine)
    assert study.counts()["annotated"] == 4
    viewer.close()
    say(f"trial done in {(time.perf_counter() - t_start) / 60:.1f} min: nothing lost")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
