"""The training dock in a real viewer: a real training process, real output layers."""

import numpy as np
import pytest

from napari_weakseg.demo import ANNOTATION_WIDGET, PLUGIN, build_demo_study
from napari_weakseg.training.events import Failed, Finished, Progress
from napari_weakseg.widgets.output_layers import HEALTHY, PROB, RESIDUAL, SEG, layer_name

OUTPUT_SUFFIXES = (HEALTHY, RESIDUAL, PROB, SEG)

TINY = {
    "input_size": 32,
    "batch_size": 2,
    "annotated_per_batch": 1,
    "disc_base": 4,
    "augment": False,
    "net": {"base": 4, "depth": 2, "max_channels": 8, "code_channels": 8, "unique_channels": 4},
}


@pytest.fixture
def docks(make_napari_viewer, tmp_path, monkeypatch):
    import napari_weakseg.widgets.model_panel as mp
    import napari_weakseg.widgets.retrain_panel as rp
    import napari_weakseg.widgets.run_events as re_
    import napari_weakseg.widgets.training_widget as tw

    errors = []
    for module in (tw, mp, rp, re_):  # the dock and its mixins
        monkeypatch.setattr(module, "show_error", errors.append)
    viewer = make_napari_viewer()
    _, ann = viewer.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
    _, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train and inspect")
    ann.open_study(build_demo_study(tmp_path / "study"))
    train.overrides = dict(TINY)
    train.settings.steps.setValue(4)
    yield viewer, ann, train, errors
    train.shutdown()


def _wait_finished(qtbot, train, timeout=120_000):
    with qtbot.waitSignal(train.finished, timeout=timeout) as blocker:
        pass
    return blocker.args[0]


def test_train_then_show_outputs_updated_in_place(qtbot, docks):
    viewer, ann, train, errors = docks
    train.settings.method.setCurrentText("genseg")
    assert train.train_config()["val_fraction"] == 0.0  # 3 masks: all train, none held out for validation
    assert train.settings.val_fraction.value() == 0.0  # and the greyed field says so
    import napari_weakseg.training.validation_default as vd

    vd.MIN_ANNOTATED_FOR_VALIDATION, saved = 3, vd.MIN_ANNOTATED_FOR_VALIDATION
    try:
        assert train.train_config()["val_fraction"] == 0.2  # enough masks: a fifth of them validate
    finally:
        vd.MIN_ANNOTATED_FOR_VALIDATION = saved
    assert train.start_training()
    assert not train.start_training()  # a second run while one is going is refused
    assert errors and "already" in errors[-1]
    event = _wait_finished(qtbot, train)
    assert isinstance(event, Finished) and event.step == 4, event
    assert train.progress.value() == 4 and train.plot.losses  # the loss plot got the terms
    assert set(train.plot.losses) >= {"adv", "rec", "lat", "cyc", "seg"}
    worker = train.run_model()
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: layer_name("phantom", SEG) in viewer.layers, timeout=10_000)
    source = ann.layers["phantom"][0][0]
    names = [layer_name("phantom", w) for w in OUTPUT_SUFFIXES]
    assert all(n.startswith(w) for n, w in zip(names, OUTPUT_SUFFIXES, strict=True))  # the output first: distinct when cut
    for name in names:
        layer = viewer.layers[name]
        assert layer.data.shape == source.data.shape and np.allclose(layer.scale, source.scale)
    # created hidden at the start; no preview in 4 steps: shown with the results, the anatomy kept visible:
    # the segmentation as a contour, the residual as an overlay transparent at 0, healthy and probability on demand
    seg_layer, residual = viewer.layers[layer_name("phantom", SEG)], viewer.layers[layer_name("phantom", RESIDUAL)]
    assert seg_layer.visible and seg_layer.contour == 1 and residual.visible
    assert not viewer.layers[layer_name("phantom", HEALTHY)].visible and not viewer.layers[layer_name("phantom", PROB)].visible
    assert residual.contrast_limits[0] == pytest.approx(-residual.contrast_limits[1])  # centred on 0
    alpha = residual.colormap.map(np.array([0.0, 0.5, 1.0]))[:, 3]
    assert alpha[1] == 0 and alpha[0] == alpha[2] == 1  # transparent where the residual is 0
    healthy = viewer.layers[layer_name("phantom", HEALTHY)]
    assert train.toggle_healthy() and healthy.visible and not train.toggle_healthy() and not healthy.visible
    source.contrast_limits = (0.1, 0.5)  # the healthy image's contrast follows the source's
    assert tuple(healthy.contrast_limits) == pytest.approx((0.1, 0.5))
    residual.visible = False  # the user's choice survives a second Run model
    n_layers = len(viewer.layers)
    worker = train.run_model()  # a second run updates the same layers
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.wait(100)
    assert len(viewer.layers) == n_layers and not residual.visible
    assert tuple(healthy.contrast_limits) == pytest.approx((0.1, 0.5))
    train.threshold.setValue(99)
    seg = viewer.layers[layer_name("phantom", SEG)].data
    prob = viewer.layers[layer_name("phantom", PROB)].data
    assert np.array_equal(seg, (prob >= 0.99).astype(np.uint8))


def test_progress_is_shown_at_the_dock_refresh_not_at_every_step(docks):
    _, _, train, _ = docks
    train.progress.setRange(0, 10)
    train.progress.setValue(0)
    for step in (1, 2, 3):  # what the training process reports, step by step
        train._handle(Progress(step=step, total_steps=10, epoch=0, losses={"seg": 1.0 / step}, pairs_per_s=8.0, eta_s=7.0))
    assert train.last_step == 3 and train.plot.steps == [1, 2, 3]  # recorded at once...
    assert train.progress.value() == 0 and "step 3" not in train.status.text()  # ...but nothing repainted yet
    train._refresh_dock()  # every DOCK_REFRESH_MS while training, and once at the end
    assert train.progress.value() == 3 and "step 3/10" in train.status.text() and "8.0 pairs/s" in train.status.text()
    assert "starved" not in train.status.text()
    train._handle(Progress(step=4, total_steps=10, epoch=0, losses={}, pairs_per_s=1.0, eta_s=60.0, cpu_share=0.3))
    train._refresh_dock()  # other programs take the cores: the status line says so
    assert "starved of CPU: it gets 30% of its threads' time" in train.status.text()


def test_stop_keeps_a_loadable_checkpoint(qtbot, docks):
    from napari_weakseg.inference import TrainedModel

    viewer, ann, train, errors = docks
    train.settings.method.setCurrentText("seg-only")
    train.settings.steps.setValue(100_000)
    assert train.start_training()
    qtbot.waitUntil(lambda: train.progress.value() >= 2, timeout=120_000)
    train.stop_training()
    event = _wait_finished(qtbot, train)
    assert isinstance(event, Finished) and event.reason == "stopped"
    assert TrainedModel.load(event.run_dir, which="last").method is not None
    assert train.train_btn.isEnabled() and not train.running


def test_a_failing_run_reports_and_the_dock_recovers(qtbot, docks):
    viewer, ann, train, errors = docks
    ann.tag_range(0, ann.image.n_slices - 1, "presence")  # no absence slice left
    train.settings.method.setCurrentText("genseg")
    assert train.start_training()
    assert layer_name("phantom", PROB) in viewer.layers  # empty, hidden, for the live preview
    event = _wait_finished(qtbot, train)
    assert isinstance(event, Failed) and "absence" in event.message
    assert any("absence" in e for e in errors)
    assert not [layer.name for layer in viewer.layers if "phantom " in layer.name and layer.name.endswith(OUTPUT_SUFFIXES)]
    assert train.train_btn.isEnabled() and not train.running
    train.settings.method.setCurrentText("seg-only")  # the widget is ready for another run
    assert train.start_training()
    assert isinstance(_wait_finished(qtbot, train), Finished)


def test_live_preview_fills_the_slice_on_screen_and_follows_it(qtbot, docks):
    viewer, ann, train, errors = docks
    train.settings.method.setCurrentText("genseg")
    train.settings.steps.setValue(100_000)  # stopped below
    train.preview_every = 2
    ann.go_to_slice(15)
    assert train.start_training()
    name = layer_name("phantom", PROB)  # created when the run starts, hidden until the first preview fills it
    outputs = {w: viewer.layers[layer_name("phantom", w)] for w in OUTPUT_SUFFIXES}
    assert not any(layer.visible for layer in outputs.values()) and not any(layer.data.any() for layer in outputs.values())
    qtbot.waitUntil(lambda: np.abs(viewer.layers[name].data[15]).sum() > 0, timeout=120_000)
    assert {w: layer.visible for w, layer in outputs.items()} == {HEALTHY: False, RESIDUAL: True, PROB: False, SEG: True}
    ann.go_to_slice(10)  # the user moves on: later previews are of slice 10
    qtbot.waitUntil(lambda: np.abs(viewer.layers[name].data[10]).sum() > 0, timeout=120_000)
    prob = np.array(viewer.layers[name].data)  # before the end of the run fills every slice
    train.stop_training()
    assert isinstance(_wait_finished(qtbot, train), Finished)
    residual = viewer.layers[layer_name("phantom", RESIDUAL)]
    assert prob.shape == ann.image.volume.shape
    assert np.abs(np.delete(prob, [10, 15], axis=0)).sum() == 0  # only the slices shown were predicted
    assert residual.contrast_limits[0] == pytest.approx(-residual.contrast_limits[1])


def test_accept_corrections_suggest_and_retrain(qtbot, docks):
    viewer, ann, train, errors = docks
    train.settings.method.setCurrentText("seg-only")
    assert train.start_training()
    assert isinstance(_wait_finished(qtbot, train), Finished)
    worker = train.run_model()
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: layer_name("phantom", SEG) in viewer.layers, timeout=10_000)
    im = ann.image
    seg = viewer.layers[layer_name("phantom", SEG)]
    target = int(np.flatnonzero((im.tags == 1) & ~im.annotated())[0])
    corrected = np.zeros(seg.data.shape[1:], np.uint8)
    corrected[20:30, 40:50] = 1
    seg.data[target] = corrected  # the user's correction of one slice
    assert train.corrected_slices() == [target]
    assert train.accept_corrections() == [target]
    assert np.array_equal(im.mask[target] > 0, corrected > 0) and im.annotated()[target]
    ann.undo()  # the tagging dock's undo takes the acceptance back
    assert not im.annotated()[target] and not im.mask[target].any()

    ranked = train.suggest()
    scores = [x.score for x in ranked if "likely failing" not in x.reason]  # the rank of expected wrong pixels...
    assert scores == sorted(scores, reverse=True) and ranked  # ... interleaved with the likely failing slices
    assert all(not im.annotated()[x.slice] and x.reason for x in ranked)
    assert train.suggestions.item(0).text() == f"1. slice {ranked[0].slice}: {ranked[0].reason}"
    train.suggestions.setCurrentRow(0)
    assert ann.current_slice() == ranked[0].slice
    train.next_btn.click()
    assert ann.current_slice() == ranked[1].slice if len(ranked) > 1 else True

    first_run = train.last_run
    train.retrain_steps.setValue(2)
    assert train.retrain()
    assert train.job.spec.init_weights.endswith("best.pt") and train.job.spec.config["steps"] == 2
    assert isinstance(_wait_finished(qtbot, train), Finished)
    assert train.last_run != first_run and train.settings.steps.value() == 4  # the main step count is kept


def test_save_and_load_a_model_with_its_provenance(qtbot, docks, tmp_path):
    viewer, ann, train, errors = docks
    train.settings.method.setCurrentText("seg-only")
    assert train.start_training()
    assert isinstance(_wait_finished(qtbot, train), Finished)
    assert "seg-only" in train.model_label.text() and str(ann.study.folder) in train.model_label.text()
    assert train.save_model(tmp_path / "kept")
    assert {p.name for p in (tmp_path / "kept").iterdir()} >= {"run.json", "best.pt", "last.pt"}
    assert not train.save_model(tmp_path / "kept")  # not into a folder that holds something
    train.last_run = None
    train.settings.method.setCurrentText("genseg")
    assert not train.load_model(tmp_path / "nothing-here")
    assert errors and "run.json" in errors[-1]
    assert train.load_model(tmp_path / "kept")
    assert "step 4 of 4" in train.model_label.text()
    assert train.settings.method.currentText() == "seg-only"  # Retrain continues the loaded model's method
    worker = train.run_model()  # the loaded model predicts
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: layer_name("phantom", SEG) in viewer.layers, timeout=10_000)


def test_run_model_in_a_separate_process_shows_the_same_outputs(qtbot, docks):
    """Run model in a spawned process, where training runs (the default on a GPU, forced here on the CPU): the same
    layers as from the viewer's own worker thread."""
    viewer, ann, train, errors = docks
    train.settings.method.setCurrentText("genseg")
    assert train.start_training()
    assert isinstance(_wait_finished(qtbot, train), Finished)
    qtbot.waitUntil(lambda: not train._predictions, timeout=60_000)  # the Run model that follows training
    here = {what: viewer.layers[layer_name("phantom", what)].data.copy() for what in (PROB, SEG)}
    train.separate_process = True
    worker = train.run_model()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: not train._predictions, timeout=10_000)
    assert not errors, errors
    for what, data in here.items():
        assert np.allclose(viewer.layers[layer_name("phantom", what)].data, data, atol=1e-5), what
    assert "genseg" in train.model_label.text()


def test_a_failing_run_model_says_so_once(qtbot, docks):
    """One notification for one failure: napari's own report of the worker's exception is not added to the dock's."""
    from napari.utils.notifications import notification_manager

    viewer, ann, train, errors = docks
    train.settings.method.setCurrentText("seg-only")
    assert train.start_training()
    assert isinstance(_wait_finished(qtbot, train), Finished)
    qtbot.waitUntil(lambda: not train._predictions, timeout=60_000)
    (train.last_run / "best.pt").write_bytes(b"not a checkpoint")  # damaged after training
    before = len(notification_manager.records)
    worker = train.run_model()
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.wait(200)
    assert len(errors) == 1 and "best.pt" in errors[0], errors
    assert len(notification_manager.records) == before  # nothing more from napari's worker handling


def test_closing_the_viewer_stops_the_run_and_keeps_its_checkpoint(qtbot, make_napari_viewer, tmp_path):
    from napari_weakseg.inference import TrainedModel

    viewer = make_napari_viewer(show=True)
    _, ann = viewer.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
    _, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train and inspect")
    ann.open_study(build_demo_study(tmp_path / "study"))
    train.overrides = dict(TINY)
    train.settings.method.setCurrentText("seg-only")
    train.settings.steps.setValue(100_000)
    assert train.start_training()
    job = train.job
    qtbot.waitUntil(lambda: train.progress.value() >= 2, timeout=120_000)
    run_dir = train.run_dir
    viewer.close()
    assert not job.alive  # no training process outlives the viewer
    ckpt = TrainedModel.load(run_dir, which="last")
    assert ckpt.info["state"]["step"] >= 2


def test_resume_writes_a_new_run_and_save_as_brings_the_runs_along(qtbot, docks, tmp_path):
    """Issue #17: Resume never writes into the loaded model's folder; Save as… keeps every run and the dock follows."""
    import json

    viewer, ann, train, errors = docks
    train.settings.method.setCurrentText("seg-only")
    assert train.start_training()
    assert isinstance(_wait_finished(qtbot, train), Finished)
    assert train.save_model(tmp_path / "kept")
    kept = {p.name: p.read_bytes() for p in (tmp_path / "kept").iterdir()}
    assert train.load_model(tmp_path / "kept")
    train.settings.steps.setValue(8)  # resume: on to step 8
    assert train.start_training(resume=True)
    assert isinstance(_wait_finished(qtbot, train), Finished)
    assert {p.name: p.read_bytes() for p in (tmp_path / "kept").iterdir()} == kept  # untouched
    resumed = train.last_run
    assert resumed.parent == ann.study.folder / "runs"
    info = json.loads((resumed / "run.json").read_text())
    assert info["started_from"] == {"run": str(tmp_path / "kept"), "how": "resumed"} and info["state"]["step"] == 8
    assert "resumed from kept" in train.model_label.text()
    train.retrain_steps.setValue(2)
    assert train.retrain()
    assert isinstance(_wait_finished(qtbot, train), Finished)
    assert json.loads((train.last_run / "run.json").read_text())["started_from"]["how"] == "warm-started"
    runs = sorted(p.name for p in (ann.study.folder / "runs").iterdir())
    assert len(runs) == 3

    old = ann.study.folder
    assert ann.save_now(tmp_path / "elsewhere")
    assert sorted(p.name for p in (tmp_path / "elsewhere" / "runs").iterdir()) == runs  # copied along
    assert sorted(p.name for p in (old / "runs").iterdir()) == runs  # the user's old folder keeps its own
    assert train.last_run.parent == tmp_path / "elsewhere" / "runs"
    worker = train.run_model()
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: layer_name("phantom", SEG) in viewer.layers, timeout=10_000)
    assert not errors, errors


def test_resume_on_a_finished_run_trains_the_steps_field_more(qtbot, docks):
    """Issue #17: Resume after a run completed adds the steps field's count (a stopped run goes on to the field)."""
    import json

    viewer, ann, train, errors = docks
    train.settings.method.setCurrentText("seg-only")
    train.settings.steps.setValue(3)
    assert train.start_training()
    assert isinstance(_wait_finished(qtbot, train), Finished)
    first = train.last_run
    assert train.start_training(resume=True)
    assert train.progress.maximum() == 6
    result = _wait_finished(qtbot, train)
    assert isinstance(result, Finished) and result.step == 6 and train.last_run != first
    assert json.loads((train.last_run / "run.json").read_text())["state"]["step"] == 6
    assert json.loads((first / "run.json").read_text())["state"]["step"] == 3  # the finished run stays as it was
    assert not errors, errors


def test_the_studys_runs_survive_a_reopen_and_can_be_chosen_or_deleted(qtbot, docks, make_napari_viewer, monkeypatch):
    import napari_weakseg.widgets.run_list as rl

    viewer, ann, train, errors = docks
    train.settings.method.setCurrentText("seg-only")
    for _ in range(2):
        assert train.start_training()
        assert isinstance(_wait_finished(qtbot, train), Finished)
        qtbot.wait(1100)  # run folders are named by the second
    folder = ann.study.folder
    runs = sorted((folder / "runs").iterdir())
    assert len(runs) == 2
    # a new viewer opens the study: the dock lists both runs, newest first, and uses the newest
    viewer2 = make_napari_viewer()
    _, ann2 = viewer2.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
    _, train2 = viewer2.window.add_plugin_dock_widget(PLUGIN, "Train and inspect")
    assert ann2.open_study(folder)
    assert train2.last_run == runs[-1] and train2.run_list.runs == runs[::-1]
    texts = [train2.run_list.combo.itemText(i) for i in range(2)]
    assert all("seg-only, quick preset, step 4 of 4, finished" in t for t in texts)
    assert train2.resume_btn.isEnabled() and train2.run_btn.isEnabled()
    train2.run_list.combo.setCurrentIndex(1)
    train2.run_list.combo.activated.emit(1)  # the user picks the older run
    assert train2.last_run == runs[0] and runs[0].name in train2.model_label.text()
    # deleting asks first: "no" keeps it, "yes" deletes it
    monkeypatch.setattr(rl, "confirm", lambda *a: False)
    train2.run_list.delete_btn.click()
    assert runs[0].exists()
    monkeypatch.setattr(rl, "confirm", lambda *a: True)
    train2.run_list.delete_btn.click()
    assert not runs[0].exists() and runs[1].exists() and train2.last_run is None
    assert train2.run_list.runs == [runs[1]]
    train2.shutdown()
    assert not errors, errors


def test_run_model_refuses_a_model_of_other_channels(qtbot, docks):
    """Issue #19: the dock checks the model's channels against the image's, as `weakseg predict` does."""
    import json

    viewer, ann, train, errors = docks
    train.settings.method.setCurrentText("seg-only")
    assert train.start_training()
    assert isinstance(_wait_finished(qtbot, train), Finished)
    info_path = train.last_run / "run.json"
    info = json.loads(info_path.read_text())
    assert info["study"]["channels"] == ["flair", "t1c"]
    info["study"]["channels"] = ["t1c", "flair"]  # as if trained with the channels swapped
    info_path.write_text(json.dumps(info))
    assert train.run_model() is None
    assert "the model was trained on T1c, FLAIR; these channels are FLAIR, T1c (in another order)" in errors[-1]
    info["study"]["channels"] = ["flair"]
    info_path.write_text(json.dumps(info))
    assert train.run_model() is None and "trained on 1 channel(s)" in errors[-1]


def test_the_docks_defaults_are_what_the_simulated_annotator_runs(make_napari_viewer):
    """The effort benchmark's annotator (core, no Qt) trains with ``dock_train_config``: the dock untouched
    must produce the same run (resolved method config included), retrain steps and threshold."""
    from napari_weakseg.methods import merge, method_preset
    from napari_weakseg.training.dock_defaults import DEFAULT_THRESHOLD, RETRAIN_STEPS, WARM_LR, dock_train_config

    viewer = make_napari_viewer()
    _, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train and inspect")
    form, core = train.train_config(), dock_train_config(0)
    assert {k: v for k, v in form.items() if k != "overrides"} == {k: v for k, v in core.items() if k != "overrides"}

    def resolved(c):
        return merge(method_preset(c["method"], c["preset"], 2), c["overrides"])

    assert resolved(form) == resolved(core)
    assert train.retrain_steps.value() == RETRAIN_STEPS and train.threshold.value() / 100 == DEFAULT_THRESHOLD
    assert form["warm_lr"] == WARM_LR == train.settings.warm_lr.value()  # the retrains' learning-rate factor
    train.settings.advanced.setChecked(True)
    train.settings.warm_lr.setValue(0.5)
    assert train.train_config()["warm_lr"] == 0.5
    train.settings.advanced.setChecked(False)  # Advanced off: the default again
    assert train.train_config()["warm_lr"] == WARM_LR


def test_the_docks_input_size_follows_the_studys_slices_as_the_annotators_does(make_napari_viewer, tmp_path):
    """Opening a study sets the quick preset's input size for its slices (``dock_input_size``): 240x240 slices
    train at 96, the demo's 96x96 at 64; the effort benchmark's annotator runs the same config as the form."""
    from napari_weakseg.annotator import SimulatedAnnotator
    from napari_weakseg.data import make_phantom
    from napari_weakseg.methods import merge, method_preset
    from napari_weakseg.study import Study, save_study

    case = make_phantom(shape=(4, 240, 240), channels=2, n_lesions=1, seed=0)
    st = Study()
    st.add_image(case.volume, name="big", mask=case.mask.copy())
    save_study(st, tmp_path / "big")
    viewer = make_napari_viewer()
    _, ann = viewer.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
    _, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train and inspect")
    assert train.settings.input_size.value() == 64  # no study: the preset's
    train.settings.width.setValue(12)  # the user's edit outlives opening a study
    ann.open_study(tmp_path / "big")
    assert train.settings.input_size.value() == 96 and train.settings.width.value() == 12
    train.settings.width.setValue(8)
    form = train.train_config()
    core = SimulatedAnnotator(tmp_path / "big", case.mask).round_config()

    def resolved(c):
        return merge(method_preset(c["method"], c["preset"], 2), c["overrides"])

    assert resolved(form) == resolved(core) and resolved(core).input_size == 96
    train.settings.preset.setCurrentText("paper")
    assert train.settings.input_size.value() == 0  # the paper preset: native size
    train.settings.preset.setCurrentText("quick")
    assert train.settings.input_size.value() == 96
    ann.open_study(build_demo_study(tmp_path / "demo"))
    assert train.settings.input_size.value() == 64
