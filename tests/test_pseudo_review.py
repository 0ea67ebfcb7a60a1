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
from napari_weakseg.pseudo.review import (ACCEPTED, DROPPED, EDITED, KEPT, REJECTED, REVIEW_FILE, Decisions, review_outputs,
                                          round_rows, score_names)
from napari_weakseg.pseudo.selection import select
from napari_weakseg.study import Study, Tag


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
    return {im.name: {"prob": rng.random(im.mask.shape).astype(np.float32),
                      "score_disc": rng.random(im.n_slices).astype(np.float32),
                      "score_vae": rng.random(im.n_slices).astype(np.float32)}}


# --- the core ---------------------------------------------------------------------------
def test_review_selection_layer_and_order():
    study = small_study()
    out = fake_outputs(study)
    rev = review_outputs(study, out, "disc", 75.0, threshold=0.5)["phantom"]
    assert rev.slices.tolist() == list(range(2, 10))  # presence slices only
    expect = select({k: torch.from_numpy(out["phantom"][k][2:10]) for k in ("score_disc", "score_vae")}, "disc", 75.0).kept
    assert np.flatnonzero(rev.kept).tolist() == expect.tolist() and rev.kept.sum() == 2
    assert np.array_equal(rev.masks([4])[0], (out["phantom"]["prob"][4] >= 0.5).astype(np.uint8))
    layer = rev.layer_data()
    for row, s in enumerate(rev.slices):
        want = KEPT if rev.kept[row] else DROPPED
        assert set(np.unique(layer[s]).tolist()) == {0, want}
    assert not layer[:2].any() and not layer[10:].any()
    for which in ("disc", "vae", "mean"):
        score = {"disc": rev.scores["score_disc"], "vae": rev.scores["score_vae"],
                 "mean": (rev.scores["score_disc"] + rev.scores["score_vae"]) / 2}[which]
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

    res = iterate_pseudo_labels(Net, images, labels, rounds=2, steps=1, kept=torch.tensor([0, 1]), batch_size=32, augment=False,
                                reselect=lambda new: torch.tensor([0, 1, 2]), fixed=(torch.tensor([5]), truth),
                                excluded=torch.tensor([1]))
    assert [r.trained_on for r in res.history] == [2, 3]  # {0, 5}, then {0, 2, 5}
    assert torch.equal(res.labels[5], truth[0])  # the annotation stays the label of its row


def test_mask_grid_lays_out_samples():
    masks = sample_ellipses(5, (8, 10), 1.0, seed=0)
    grid = mask_grid(masks, cols=3)
    assert grid.shape == (2 * 9 - 1, 3 * 11 - 1) and grid.dtype == np.uint8
    assert np.array_equal(grid[:8, :10] == 255, masks[0, 0].numpy() > 0)
