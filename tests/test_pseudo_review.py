"""Reviewing pseudo labels: the Qt-free core (pseudo/review.py, decisions in the rounds) and the
'Review pseudo labels' dock in a real viewer with a tiny pseudo-label run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_weakseg.data import make_phantom
from napari_weakseg.data.shape_prior import mask_grid, sample_ellipses
from napari_weakseg.data.slices import Normaliser, study_slices
from napari_weakseg.errors import InputError
from napari_weakseg.pseudo.iterate import constrain_kept, iterate_pseudo_labels
from napari_weakseg.pseudo.review import (
    ACCEPTED,
    DROPPED,
    EDITED,
    KEPT,
    REJECTED,
    REVIEW_FILE,
    Decisions,
    review_outputs,
    round_rows,
    score_names,
)
from napari_weakseg.pseudo.selection import select
from napari_weakseg.study import Study, Tag
from napari_weakseg.widgets.output_layers import PSEUDO, layer_name


def small_study() -> Study:
    case = make_phantom(shape=(12, 32, 32), channels=1, seed=1)
    study = Study()
    im = study.add_image(case.volume, name="phantom", mask=np.zeros_like(case.mask))
    im.tags[:] = Tag.ABSENCE
    im.tags[2:10] = Tag.PRESENCE
    return study


def fake_outputs(study: Study, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    im = study.images[0]
    return {
        im.name: {
            "prob": rng.random(im.mask.shape).astype(np.float32),
            "score_disc": rng.random(im.n_slices).astype(np.float32),
            "score_vae": rng.random(im.n_slices).astype(np.float32),
        }
    }


# --- the core ---------------------------------------------------------------------------
def test_review_selection_layer_and_order():
    study = small_study()
    out = fake_outputs(study)
    rev = review_outputs(study, out, "disc", 75.0, threshold=0.5)["phantom"]
    assert rev.slices.tolist() == list(range(2, 10))  # presence slices only
    expect = select({k: torch.from_numpy(out["phantom"][k][2:10]) for k in ("score_disc", "score_vae")}, "disc", 75.0).kept
    assert np.flatnonzero(rev.kept).tolist() == expect.tolist() and rev.kept.sum() == 6
    assert np.array_equal(rev.masks([4])[0], (out["phantom"]["prob"][4] >= 0.5).astype(np.uint8))
    layer = rev.layer_data()
    for row, s in enumerate(rev.slices):
        want = KEPT if rev.kept[row] else DROPPED
        assert set(np.unique(layer[s]).tolist()) == {0, want}
    assert not layer[:2].any() and not layer[10:].any()
    for which in ("disc", "vae", "mean"):
        score = {
            "disc": rev.scores["score_disc"],
            "vae": rev.scores["score_vae"],
            "mean": (rev.scores["score_disc"] + rev.scores["score_vae"]) / 2,
        }[which]
        assert np.all(np.diff(score[rev.order(which)]) >= 0)  # worst first
    with pytest.raises(InputError, match="presence"):
        rev.rows([0])
    assert score_names(("prob", "score_disc", "score_vae")) == ["disc", "vae"]
    with pytest.raises(InputError, match="scores"):
        review_outputs(study, {"phantom": {"prob": out["phantom"]["prob"]}})


def test_decisions_round_trip_and_rows_of_the_next_round(tmp_path):
    d = Decisions()
    d.set("phantom", [3, 4], REJECTED)
    d.set("phantom", 5, ACCEPTED)
    d.set("phantom", 6, EDITED)
    d.set("phantom", 4, None)
    d.save(tmp_path)
    back = Decisions.load(tmp_path)
    assert back.by_image == {"phantom": {3: REJECTED, 5: ACCEPTED, 6: EDITED}} and back.slices("phantom", REJECTED) == [3]
    assert Decisions.load(tmp_path / "none").by_image == {}
    with pytest.raises(InputError):
        d.set("phantom", 1, "maybe")
    (tmp_path / REVIEW_FILE).write_text(json.dumps({"nope": 1}))
    with pytest.raises(InputError):
        Decisions.load(tmp_path)

    study = small_study()
    im = study.images[0]
    mask = np.zeros((32, 32), np.uint8)
    mask[10:20, 10:20] = 1
    study.accept_masks(0, [5], mask[None])  # accepted: annotated now
    slices = study_slices(study, Normaliser.fit(study), 32, 4)
    presence = slices.subset(torch.nonzero(slices.presence).flatten())
    fixed, excluded = round_rows(presence, study, back)
    assert [presence.source[r][1] for r in fixed] == [5]  # 6 (edited) is not annotated in the study: not fixed
    assert [presence.source[r][1] for r in excluded] == [3]
    study.undo()  # undoing the acceptance takes it out of the next round
    slices = study_slices(study, Normaliser.fit(study), 32, 4)
    presence = slices.subset(torch.nonzero(slices.presence).flatten())
    assert not len(round_rows(presence, study, back)[0]) and im.tags[5] == Tag.PRESENCE


def test_rounds_train_on_fixed_rows_and_never_on_excluded_ones():
    assert constrain_kept(torch.tensor([1, 2]), torch.tensor([4]), torch.tensor([2])).tolist() == [1, 4]
    with pytest.raises(InputError, match="rejected"):
        constrain_kept(torch.tensor([1]), None, torch.tensor([1]))
    images = torch.randn(6, 1, 8, 8)
    labels = torch.zeros(6, 1, 8, 8)
    truth = torch.ones(1, 1, 8, 8)
    seen = []

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            seen.append(len(x))
            return self.w + torch.zeros(len(x), 1, 8, 8)

    res = iterate_pseudo_labels(
        Net,
        images,
        labels,
        rounds=2,
        steps=1,
        kept=torch.tensor([0, 1]),
        batch_size=32,
        augment=False,
        reselect=lambda new: torch.tensor([0, 1, 2]),
        fixed=(torch.tensor([5]), truth),
        excluded=torch.tensor([1]),
    )
    assert [r.trained_on for r in res.history] == [2, 3]  # {0, 5}, then {0, 2, 5}
    assert torch.equal(res.labels[5], truth[0])  # the annotation stays the label of its row


def test_mask_grid_lays_out_samples():
    masks = sample_ellipses(5, (8, 10), 1.0, seed=0)
    grid = mask_grid(masks, cols=3)
    assert grid.shape == (2 * 9 - 1, 3 * 11 - 1) and grid.dtype == np.uint8
    assert np.array_equal(grid[:8, :10] == 255, masks[0, 0].numpy() > 0)


# --- the dock in a real viewer ------------------------------------------------------------
TINY = {
    "input_size": 32,
    "batch_size": 2,
    "annotated_per_batch": 1,
    "disc_base": 4,
    "augment": False,
    "net": {"base": 4, "depth": 2, "max_channels": 8},
}
FAST = {"vae_steps": 10, "vae_base": 4, "vae_batch": 8, "aux_count": 32, "res_blocks": 1, "rounds": 1, "round_steps": 3}
REVIEW = "Review pseudo labels"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A demo study and a tiny pseudo-label run on it, trained once (headless) for the module."""
    from napari_weakseg.demo import build_demo_study
    from napari_weakseg.study import load_study
    from napari_weakseg.training.trainer import TrainConfig, Trainer

    base = tmp_path_factory.mktemp("trained")
    folder = build_demo_study(base / "study")
    cfg = TrainConfig(method="pseudo-label", steps=2, device="cpu", val_fraction=0.0, overrides={**TINY, "pseudo_label": FAST})
    Trainer(load_study(folder), base / "run", cfg).run()
    return folder, base / "run"


@pytest.fixture
def docks(make_napari_viewer, trained, tmp_path, monkeypatch):
    """Tagging, training and review docks on a copy of the trained study and run."""
    import shutil

    import napari_weakseg.widgets.pseudo_review_widget as rw
    import napari_weakseg.widgets.refine_panel as rf
    import napari_weakseg.widgets.review_decisions as rd
    from napari_weakseg.demo import ANNOTATION_WIDGET, PLUGIN

    errors = []
    for module in (rw, rd, rf):  # the dock and its mixins
        monkeypatch.setattr(module, "show_error", errors.append)
    folder, run = shutil.copytree(trained[0], tmp_path / "study"), shutil.copytree(trained[1], tmp_path / "run")
    viewer = make_napari_viewer()
    _, ann = viewer.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
    _, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train and inspect")
    _, review = viewer.window.add_plugin_dock_widget(PLUGIN, REVIEW)
    ann.open_study(folder)
    review.device = "cpu"
    train.load_model(run)
    yield viewer, ann, train, review, errors
    train.shutdown()


def _wait(qtbot, review, what: str, timeout: int = 60_000) -> None:
    with qtbot.waitSignal(review.finished, timeout=timeout, check_params_cb=lambda w: w == what):
        pass


def _reviewed(qtbot, docks):
    viewer, ann, train, review, errors = docks
    assert review.start_review() is not None
    _wait(qtbot, review, "review")
    assert not errors, errors
    return review.review["phantom"]


def test_layer_and_list_show_the_selection_worst_first(qtbot, docks):
    viewer, ann, train, review, errors = docks
    rev = _reviewed(qtbot, docks)
    layer = viewer.layers[layer_name("phantom", PSEUDO)]
    assert layer.data.shape == ann.image.mask.shape and np.array_equal(layer.data, rev.layer_data())
    for row, s in enumerate(rev.slices):  # 1 = kept by the selection, 2 = dropped
        values = set(np.unique(layer.data[s]).tolist()) - {0}
        assert values <= {KEPT if rev.kept[row] else DROPPED}
    assert 0 < rev.kept.sum() < len(rev.slices)
    assert layer.metadata["pseudo_label_review"]["score_disc"] == pytest.approx(rev.scores["score_disc"].tolist())
    assert [review.sort_by.itemText(i) for i in range(review.sort_by.count())] == ["disc", "vae", "mean"]
    for which in ("disc", "vae", "mean"):
        review.sort_by.setCurrentText(which)
        slices = review.ordered_slices()
        rows = rev.rows(slices)
        score = {
            "disc": rev.scores["score_disc"],
            "vae": rev.scores["score_vae"],
            "mean": (rev.scores["score_disc"] + rev.scores["score_vae"]) / 2,
        }[which][rows]
        assert np.all(np.diff(score) >= 0) and len(slices) == len(rev.slices)  # worst first
        assert [int(review.table.item(i, 0).text()) for i in range(review.table.rowCount())] == slices
    review.table.selectRow(2)
    assert ann.current_slice() == review.ordered_slices()[2]


def test_accept_reject_and_edit_change_the_study_and_the_next_round(qtbot, docks):
    from napari_weakseg.study import load_study

    viewer, ann, train, review, errors = docks
    rev = _reviewed(qtbot, docks)
    im = ann.image
    ordered = review.ordered_slices()
    worst, second = [s for s in ordered if not im.has_content()[s]][:2]
    third = [s for s in ordered if not im.has_content()[s]][2]
    painted = [s for s in ordered if im.has_content()[s]][0]  # a slice with the user's own mask
    before = im.mask[worst].copy()
    review.select_slices([worst])
    assert review.accept() == [worst]  # accept: the pseudo label becomes the annotation
    assert np.array_equal(im.mask[worst] > 0, rev.masks([worst])[0] > 0)
    assert review.decisions.get("phantom", worst) == ACCEPTED
    assert review.table.item(ordered.index(worst), 2).text() == ACCEPTED
    ann.undo()  # the tagging dock's undo takes it back
    assert np.array_equal(im.mask[worst], before)
    assert review.accept([worst]) == [worst]

    review.select_slices([second])
    assert review.decide(REJECTED) == [second]  # reject: out of the next round
    assert Decisions.load(review.run_dir).slices("phantom", REJECTED) == [second]

    mine = im.mask[painted].copy()
    assert review.edit(painted)  # the user's mask stays: the brush starts from it
    assert np.array_equal(im.mask[painted], mine) and review.decisions.get("phantom", painted) == EDITED
    assert review.edit(third)  # edit: pre-filled with the pseudo label, brush on the mask layer at that slice
    assert ann.current_slice() == third and viewer.layers.selection.active.name == ann.mask_layer.name  # (a proxy in the dock)
    assert ann.mask_layer.mode == "paint"
    assert np.array_equal(im.mask[third] > 0, rev.masks([third])[0] > 0)
    with ann.mask_layer.block_history():  # the user's correction
        ann.mask_layer.paint((third, 40, 40), 1)
    qtbot.wait(50)
    edited = im.mask[third].copy()
    assert edited[40, 40] and im.annotated()[third] and review.decisions.get("phantom", third) == EDITED

    assert ann.save_now()
    study = load_study(ann.study.folder)
    assert np.array_equal(study.images[0].mask[third], edited)
    normaliser = Normaliser.fit(study)
    slices = study_slices(study, normaliser, 32, 4)
    presence = slices.subset(torch.nonzero(slices.presence).flatten())
    fixed, excluded = round_rows(presence, study, Decisions.load(review.run_dir))
    assert sorted(presence.source[r][1] for r in fixed) == sorted(s for s in (worst, third, painted) if im.annotated()[s])
    assert [presence.source[r][1] for r in excluded] == [second]


@pytest.mark.parametrize("separate", [False, True], ids=["viewer's process", "separate process"])
def test_refine_in_the_background_updates_the_layer(qtbot, docks, separate):
    """Refine in a worker thread or (as on a GPU) in a spawned process: the same result, its rounds on the bar."""
    viewer, ann, train, review, errors = docks
    review.separate_process = separate
    rev = _reviewed(qtbot, docks)
    review.decide(REJECTED, [review.ordered_slices()[0]])
    with qtbot.waitSignals(
        [(review.finished, "refine"), (review.finished, "review")],
        timeout=120_000,
        check_params_cbs=[lambda w: w == "refine", lambda w: w == "review"],
    ):
        assert review.start_refine() is not None
        assert review.busy and not review.refine_btn.isEnabled()
    assert not errors, errors
    assert (review.run_dir / "refined.pt").is_file() and review.which == "refined"
    assert "round" in review.status.text() or "keeps" in review.status.text()
    assert (review.progress.value(), review.progress.maximum()) == (1, 1) and not review.progress.isVisible()
    new = review.review["phantom"]
    assert new is not rev and np.array_equal(viewer.layers[layer_name("phantom", PSEUDO)].data, new.layer_data())
    assert not (np.array_equal(new.labels, rev.labels) and np.array_equal(new.scores["score_disc"], rev.scores["score_disc"]))


def test_refine_stops_between_rounds_and_writes_nothing(qtbot, docks, monkeypatch):
    import napari_weakseg.widgets.refine_panel as rf

    viewer, ann, train, review, errors = docks
    infos = []
    monkeypatch.setattr(rf, "show_info", infos.append)
    _reviewed(qtbot, docks)
    with qtbot.waitSignal(review.finished, timeout=120_000, check_params_cb=lambda w: w == "refine"):
        review.start_refine()
        assert review.stop_btn.isEnabled()
        review.stop_btn.click()  # during the first round (loading the run and training it take seconds)
    assert not errors, errors
    assert not (review.run_dir / "refined.pt").exists() and review.which == "best"
    assert "stopped" in review.status.text() and "nothing was written" in infos[-1] and not review.stop_btn.isEnabled()


def test_shape_form_previews_its_ranges_and_feeds_training(qtbot, docks):
    viewer, ann, train, review, errors = docks
    form = review.shape_form
    form.ranges["ellipse_size_mm"][0].setValue(10)
    form.ranges["ellipse_size_mm"][1].setValue(20)
    small = review.preview_shapes()
    form.ranges["ellipse_size_mm"][1].setValue(80)
    form.ranges["ellipse_size_mm"][0].setValue(60)
    large = review.preview_shapes()
    assert small.shape == large.shape == (16, 1, 64, 64) and form.preview.pixmap() is not None
    assert float(large.sum(dim=(1, 2, 3)).mean()) > 3 * float(small.sum(dim=(1, 2, 3)).mean())
    options = train.train_config()["overrides"]["pseudo_label"]
    assert options["ellipse_size_mm"] == [60, 80] and options["ellipse_aspect"] == [0.5, 1.0]
    form.ranges["ellipse_aspect"][0].setValue(0.9)
    form.ranges["ellipse_aspect"][1].setValue(0.1)  # low above high: refused, nothing sampled
    assert review.preview_shapes() is None and errors and "aspect" in errors[-1]
    form.setChecked(False)  # unchecked: training uses the method's own options
    assert "pseudo_label" not in train.train_config()["overrides"]


def test_a_model_without_scores_is_refused(qtbot, docks, tmp_path):
    from napari_weakseg.study import load_study
    from napari_weakseg.training.trainer import TrainConfig, Trainer

    viewer, ann, train, review, errors = docks
    cfg = TrainConfig(method="seg-only", steps=1, device="cpu", val_fraction=0.0, overrides=TINY)
    Trainer(load_study(ann.study.folder), tmp_path / "seg", cfg).run()
    assert review.start_review(tmp_path / "seg") is not None
    _wait(qtbot, review, "review")
    assert errors and "quality scores" in errors[-1] and review.review is None


def test_review_and_refine_wait_for_a_study(make_napari_viewer, tmp_path):
    from napari_weakseg.demo import ANNOTATION_WIDGET, PLUGIN, build_demo_study

    viewer = make_napari_viewer()
    _, review = viewer.window.add_plugin_dock_widget(PLUGIN, REVIEW)
    assert not review.review_btn.isEnabled() and not review.refine_btn.isEnabled()  # no study yet
    _, ann = viewer.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
    ann.open_study(build_demo_study(tmp_path / "study"))
    assert review.review_btn.isEnabled() and review.refine_btn.isEnabled()
