"""Training on random crops (``train_crop``, issue #14 item 5): windows that keep image and mask together,
a real run that trains on crops and predicts whole slices, and clear refusals."""

from __future__ import annotations

import pytest
import torch
from test_training import config, phantom_study, train

from napari_weakseg.data import make_phantom
from napari_weakseg.data.augment import random_crop
from napari_weakseg.data.slices import Normaliser, PairSampler, study_slices
from napari_weakseg.errors import InputError
from napari_weakseg.inference import TrainedModel
from napari_weakseg.methods import MethodConfig
from napari_weakseg.study import Study
from napari_weakseg.study.build import tags_from_masks
from napari_weakseg.training.events import Finished
from napari_weakseg.training.trainer import Trainer


def test_a_crop_cuts_image_and_mask_at_the_same_window():
    gen = torch.Generator().manual_seed(0)
    images = torch.arange(4 * 2 * 20 * 24, dtype=torch.float32).reshape(4, 2, 20, 24)
    masks = (images[:, :1] % 7 == 0).float()  # a pattern tied to each pixel's value
    x, m = random_crop(images, masks, 8, gen)
    assert x.shape == (4, 2, 8, 8) and m.shape == (4, 1, 8, 8)
    assert torch.equal(m, (x[:, :1] % 7 == 0).float())
    offsets = {float(r[0, 0, 0]) for r in x}
    assert len(offsets) > 1  # the rows get their own windows
    for r in x:  # each crop is a contiguous window of its row: steps of 1 along x and 24 along y
        assert torch.equal(r[0, 0, 1:] - r[0, 0, :-1], torch.ones(7)) and torch.equal(r[0, 1:, 0] - r[0, :-1, 0], torch.full((7,), 24.0))


def test_batches_are_crops_and_the_model_predicts_whole_slices(tmp_path):
    study, case = phantom_study()
    cfg = config("genseg", steps=2, overrides={"train_crop": 16})
    t = Trainer(study, tmp_path / "probe", cfg)
    batch = t.sample_batch(PairSampler(t.train_set, 2, 1, t.method_cls.sampling), torch.Generator().manual_seed(0))
    assert batch["P"].shape[-2:] == (16, 16) and batch["A"].shape[-2:] == (16, 16) and batch["M"].shape[-2:] == (16, 16)
    result, _ = train(study, tmp_path / "run", cfg)
    assert isinstance(result, Finished) and result.step == 2, result
    prob = TrainedModel.load(tmp_path / "run").predict_volume(case.volume.data)["prob"]
    assert prob.shape == case.volume.data.shape[1:]


def test_crops_that_do_not_fit_are_refused_by_name(tmp_path):
    study, _ = phantom_study()
    with pytest.raises(InputError, match="train_crop = 48 does not fit the training slices \\(32x32\\)"):
        Trainer(study, tmp_path / "run", config(overrides={"train_crop": 48}))
    with pytest.raises(InputError, match="train_crop = 10 must be a multiple of 2\\^net.depth = 4"):
        MethodConfig.from_dict({"net": {"depth": 2}, "train_crop": 10})
    with pytest.raises(InputError, match="train_crop must be a whole number"):
        MethodConfig.from_dict({"train_crop": 16.5})


def test_the_pseudo_label_method_refuses_crops_before_training(tmp_path):
    study, _ = phantom_study()
    with pytest.raises(InputError, match="does not train on crops \\(train_crop\\)"):  # at construction, not as a Failed run
        Trainer(study, tmp_path / "run", config("pseudo-label", steps=1, overrides={"train_crop": 16}))
    assert not (tmp_path / "run").exists()


def test_native_rows_of_different_sizes_are_refused_with_a_way_out():
    study = Study()
    for k, shape in enumerate(((12, 32, 32), (12, 32, 40))):
        case = make_phantom(shape=shape, seed=1)
        tags_from_masks(study.add_image(case.volume, name=f"p{k}", mask=case.mask))
    with pytest.raises(InputError, match="different sizes \\(32x32, 32x40\\); set input_size"):
        study_slices(study, Normaliser.fit(study), None, 4)
    assert study_slices(study, Normaliser.fit(study), 32, 4).images.shape[-2:] == (32, 32)
