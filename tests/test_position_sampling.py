"""Absence slices drawn by the presence slices' positions (Vorontsov et al., Sec. IV-E, liver)."""

from __future__ import annotations

import torch
from test_training import config, phantom_study, train

from napari_weakseg.data.slices import PairSampler, SliceSet, position_matched_weights, relative_positions
from napari_weakseg.study import Tag
from napari_weakseg.training.events import Started


def two_images(presence_slices: range) -> SliceSet:
    """Image 0: 100 slices, presence at ``presence_slices`` (annotated), absence elsewhere; image 1: 100 absence."""
    source = [(0, s) for s in range(100)] + [(1, s) for s in range(100)]
    presence = torch.tensor([i == 0 and s in presence_slices for i, s in source])
    n = len(source)
    return SliceSet(torch.zeros(n, 1, 4, 4), torch.zeros(n, 1, 4, 4), presence, presence.clone(), source)


def test_positions_are_relative_to_each_images_tagged_extent():
    slices = SliceSet(
        torch.zeros(4, 1, 2, 2),
        torch.zeros(4, 1, 2, 2),
        torch.tensor([True, False, True, False]),
        torch.zeros(4, dtype=torch.bool),
        [(0, 10), (0, 30), (1, 5), (0, 20)],
    )
    assert relative_positions(slices).tolist() == [0.0, 1.0, 0.5, 0.5]


def test_the_presence_histogram_comes_out_of_the_absence_draws():
    """Presence: 10 slices in bin 0 and 5 in bin 1 of 10 (2 : 1). The absence slices cover every bin, so the
    drawn ones must fall 2 : 1 into bins 0 and 1, and never elsewhere."""
    slices = two_images(range(15))
    pos_bin = (relative_positions(slices) * 10).long().clamp(max=9)
    assert torch.bincount(pos_bin[slices.presence], minlength=10)[:3].tolist() == [10, 5, 0]
    weights = position_matched_weights(slices, 10)
    assert weights is not None and len(weights) == int((~slices.presence).sum())
    sampler = PairSampler(slices, 5, 0, "pairs", seed=0, absence_bins=10)
    assert sampler.position_matched
    drawn = torch.cat([sampler.next()[1] for _ in range(600)])
    bins = torch.bincount(pos_bin[drawn], minlength=10)
    assert int(bins[2:].sum()) == 0
    assert abs(float(bins[0]) / len(drawn) - 2 / 3) < 0.04
    p_rows = torch.cat([PairSampler(slices, 5, 0, "pairs", seed=1, absence_bins=10).next()[0] for _ in range(3)])
    assert bool(slices.presence[p_rows].all())
    uniform = torch.cat([PairSampler(slices, 5, 0, "pairs", seed=0).next()[1] for _ in range(1)])
    assert not PairSampler(slices, 5, 0, "pairs").position_matched and len(uniform) == 5


def test_nothing_to_match_falls_back_to_uniform_and_says_so(tmp_path):
    """The whole-slice BraTS case: no absence slice at the presence slices' positions."""
    only = SliceSet(
        torch.zeros(6, 1, 2, 2),
        torch.zeros(6, 1, 2, 2),
        torch.tensor([False, False, True, True, False, False]),
        torch.zeros(6, dtype=torch.bool),
        [(0, s) for s in range(6)],
    )
    assert position_matched_weights(only, 3) is None
    assert not PairSampler(only, 2, 0, "pairs", absence_bins=3).position_matched
    cfg = config("genseg", steps=1, overrides={"absence_by_position": 4})
    study, _ = phantom_study()  # lesions on slices 4, 5, 6 and 9 of 12: slices 7 and 8 are absence among them
    _, rec = train(study, tmp_path / "run", cfg)
    assert "drawn uniformly" not in rec.of(Started)[0].note
    study.set_tags(0, [3, 7, 8, 10, 11], Tag.UNKNOWN)  # now every absence slice lies below the lesions
    _, rec = train(study, tmp_path / "run2", cfg)
    assert "no absence slice lies at the presence slices' positions" in rec.of(Started)[0].note
