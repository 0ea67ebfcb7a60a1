"""The pseudo-label method (Wang et al.): shape prior, networks, frozen VAE, D_VAE, DGCC, selection,
iterative rounds, and a tiny end-to-end run; real training steps on tiny networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from napari_weakseg.data import make_phantom
from napari_weakseg.data.shape_prior import EllipsePrior, load_masks, sample_ellipses
from napari_weakseg.errors import InputError
from napari_weakseg.inference import TrainedModel
from napari_weakseg.methods import build_method, merge, method_preset, preset
from napari_weakseg.models.channel_calibration import ChannelCalibration
from napari_weakseg.models.mask_vae import LatentDiscriminator, MaskVAE, pretrain_vae
from napari_weakseg.models.patchgan import PatchGAN
from napari_weakseg.models.res_unet import ResUNet
from napari_weakseg.pseudo.config import PseudoLabelConfig
from napari_weakseg.pseudo.iterate import iterate_pseudo_labels, pooled_dice
from napari_weakseg.pseudo.refine import refine, refine_run
from napari_weakseg.pseudo.selection import keep_top, score_pseudo_labels, select
from napari_weakseg.study import Study
from napari_weakseg.study.build import tags_from_masks
from napari_weakseg.training.checkpoint import load_tensors
from napari_weakseg.training.events import Finished
from napari_weakseg.training.trainer import TrainConfig, Trainer

TINY = {"net": {"base": 4, "depth": 2, "max_channels": 16}, "input_size": 32, "batch_size": 4, "disc_base": 4, "augment": False}
FAST = {"vae_steps": 20, "vae_base": 4, "vae_batch": 8, "aux_count": 32, "res_blocks": 1, "round_steps": 5}


def tiny(channels: int = 1, **pseudo) -> object:
    """A small pseudo-label method with its auxiliary masks handed in, as the Trainer's prepare() does (no VAE
    pre-training)."""
    from napari_weakseg.data.shape_prior import provide_aux

    m = build_method("pseudo-label", merge(preset("quick", channels), {**TINY, "pseudo_label": {**FAST, **pseudo}}))
    provide_aux(m, (32, 32))
    return m


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def moments(mask: np.ndarray) -> tuple[float, float, float, float]:
    """(area, major axis length, minor / major, angle of the major axis from x towards y in degrees [0, 180))."""
    ys, xs = np.nonzero(mask)
    cov = np.cov(np.stack([xs, ys]).astype(float))
    evals, evecs = np.linalg.eigh(cov)
    major, minor = 4 * math.sqrt(evals[1]), 4 * math.sqrt(evals[0])  # a filled ellipse: variance = (semi-axis)^2 / 4
    vx, vy = evecs[:, 1]
    return float(len(xs)), major, minor / major, math.degrees(math.atan2(vy, vx)) % 180


# --- the shape prior ------------------------------------------------------------------
def test_ellipse_sizes_convert_mm_to_pixels():
    circle = EllipsePrior(size_mm=(20, 20), aspect=(1, 1), centre=(0.5, 0.5))
    for pixel_mm, diameter_px in ((0.5, 40), (1.0, 20), (2.0, 10)):
        m = sample_ellipses(3, (64, 64), pixel_mm, circle, seed=1)
        assert m.shape == (3, 1, 64, 64) and m.dtype == torch.float32 and set(m.unique().tolist()) == {0.0, 1.0}
        area = m.sum(dim=(1, 2, 3))
        assert torch.allclose(area, torch.full((3,), math.pi * (diameter_px / 2) ** 2), rtol=0.1)


def test_ellipse_ranges_are_respected():
    prior = EllipsePrior(size_mm=(20, 30), aspect=(0.4, 0.6), angle_deg=(20, 60), centre=(0.4, 0.6))
    masks = sample_ellipses(40, (80, 96), 0.5, prior, seed=3)  # major axis 40..60 px
    for m in masks[:, 0].numpy():
        _, major, aspect, angle = moments(m)
        ys, xs = np.nonzero(m)
        assert 0.4 * 80 - 1 <= ys.mean() <= 0.6 * 80 + 1 and 0.4 * 96 - 1 <= xs.mean() <= 0.6 * 96 + 1
        assert 40 * 0.95 <= major <= 60 * 1.05
        assert 0.4 * 0.9 <= aspect <= 0.6 * 1.1
        assert 20 - 4 <= angle <= 60 + 4
    # horizontal vs vertical major axes; seeds reproduce
    flat = sample_ellipses(1, (64, 64), 1.0, EllipsePrior((30, 30), (0.5, 0.5), (0, 0), (0.5, 0.5)))[0, 0]
    tall = sample_ellipses(1, (64, 64), 1.0, EllipsePrior((30, 30), (0.5, 0.5), (90, 90), (0.5, 0.5)))[0, 0]
    assert int(flat.any(0).sum()) > int(flat.any(1).sum()) and int(tall.any(1).sum()) > int(tall.any(0).sum())
    assert torch.equal(sample_ellipses(4, (32, 32), 1.0, seed=7), sample_ellipses(4, (32, 32), 1.0, seed=7))
    assert not torch.equal(sample_ellipses(4, (32, 32), 1.0, seed=7), sample_ellipses(4, (32, 32), 1.0, seed=8))
    with pytest.raises(InputError):
        sample_ellipses(1, (32, 32), 1.0, EllipsePrior(aspect=(0.5, 1.5)))
    with pytest.raises(InputError):
        sample_ellipses(1, (32, 32), 0.0)


def test_masks_from_a_folder_and_a_nifti_file(tmp_path):
    from skimage import io as skio
    from skimage.draw import ellipse_perimeter

    from napari_weakseg.io.nifti import write_nifti

    folder = tmp_path / "masks"
    folder.mkdir()
    outline = np.zeros((60, 80), np.uint8)
    rr, cc = ellipse_perimeter(30, 40, 20, 30)
    outline[rr, cc] = 255
    skio.imsave(str(folder / "a_Annotation.png"), outline, check_contrast=False)
    skio.imsave(str(folder / "b_Annotation.png"), np.zeros((40, 40), np.uint8), check_contrast=False)  # empty: skipped
    m = load_masks(folder, (30, 40))
    assert m.shape == (1, 1, 30, 40)
    assert abs(float(m.sum()) - math.pi * 10 * 15) < 0.15 * math.pi * 10 * 15  # the outline was filled
    vol = np.zeros((3, 16, 16), np.uint8)
    vol[1, 4:12, 4:12] = 1
    path = write_nifti(tmp_path / "masks.nii.gz", vol)
    m = load_masks(path, (32, 32))
    assert m.shape == (1, 1, 32, 32) and float(m.sum()) == 16 * 16
    with pytest.raises(InputError):
        load_masks(tmp_path / "missing.txt", (8, 8))


def test_config_defaults_presets_and_errors():
    cfg = PseudoLabelConfig.from_dict({})
    assert (cfg.w_cycle, cfg.w_adv, cfg.w_vae, cfg.vae_latent, cfg.dgcc_turns, cfg.selection_keep) == (10, 1, 1, 32, 2, 75)
    paper = PseudoLabelConfig.from_dict(method_preset("pseudo-label", "paper").pseudo_label)
    assert paper.patch_layers == 3 and paper.res_blocks == 6
    assert preset("quick").pseudo_label == {}
    with pytest.raises(InputError, match="vae_stpes"):
        PseudoLabelConfig.from_dict({"vae_stpes": 3})
    with pytest.raises(InputError, match="use_vae_disc"):
        PseudoLabelConfig.from_dict({"use_vae_disc": False, "selection_score": "vae"})
    with pytest.raises(InputError):
        PseudoLabelConfig.from_dict({"selection_score": "best"})


# --- networks -------------------------------------------------------------------------
def test_network_shapes():
    x = torch.randn(2, 3, 32, 32)
    unet = ResUNet(3, 1, base=4, depth=3, max_channels=16, res_blocks=2)
    assert unet(x).shape == (2, 1, 32, 32) and unet.decoder_widths == [16, 8, 4]
    patch = PatchGAN(1, base=8, n_layers=3)  # the 70x70 PatchGAN
    assert patch(torch.rand(2, 1, 64, 64)).shape == (2, 1, 6, 6)
    assert patch.features(torch.rand(2, 1, 64, 64)).shape == (2, patch.feature_channels, 7, 7)
    dgcc = ChannelCalibration(patch.feature_channels, unet.decoder_widths)
    betas = dgcc(patch.features(torch.rand(2, 1, 32, 32)))
    assert [tuple(b.shape) for b in betas] == [(2, 16, 1, 1), (2, 8, 1, 1), (2, 4, 1, 1)]
    assert all(float(b.detach().min()) > 0 and float(b.detach().max()) < 1 for b in betas)
    vae = MaskVAE(latent=32, size=32, base=4)
    mean, logvar = vae.encode(torch.rand(3, 1, 48, 48))  # any size: resized to 32
    assert mean.shape == logvar.shape == (3, 32) and vae.decode(mean).shape == (3, 1, 32, 32)
    assert LatentDiscriminator(32, 16)(mean).shape == (3, 1)
    assert sum(isinstance(m, nn.Linear) for m in LatentDiscriminator(32, 16).modules()) == 3


def test_vae_reconstructs_ellipses_after_pretraining():
    masks = sample_ellipses(128, (32, 32), 1.0, EllipsePrior((10, 24), (0.5, 1.0), (0, 180), (0.35, 0.65)), seed=2)
    vae = MaskVAE(latent=32, size=32, base=8)
    losses = pretrain_vae(vae, masks, steps=150, batch=32, lr=3e-3, generator=torch.Generator().manual_seed(0))
    assert losses[-1] < losses[0] / 2
    assert not vae.training and not any(p.requires_grad for p in vae.parameters())
    test = sample_ellipses(32, (32, 32), 1.0, EllipsePrior((10, 24), (0.5, 1.0), (0, 180), (0.35, 0.65)), seed=99)
    with torch.no_grad():
        rec = (vae.decode(vae.encode(test)[0]) >= 0.5).float()
    dice = np.mean([pooled_dice(r, t) for r, t in zip(rec, test, strict=False)])
    mean_mask = (masks.mean(0, keepdim=True) >= 0.5).float()  # the best input-independent guess
    baseline = np.mean([pooled_dice(mean_mask[0], t) for t in test])
    assert dice > 0.6 and dice > baseline + 0.2, (dice, baseline)


# --- the method -------------------------------------------------------------------------
def test_frozen_vae_and_phase_parameters():
    m = tiny()
    m.aux = sample_ellipses(16, (32, 32), 1.0, seed=0)
    m.pretrain_vae()
    assert bool(m.vae_ready)
    vae_ids = {id(p) for p in m.vae.parameters()}
    seg_ids = {id(p) for p in m.segmenter.parameters()}
    gen = {id(p) for p in m.phase_parameters("generator")}
    disc = {id(p) for p in m.phase_parameters("discriminator")}
    assert gen and disc and not gen & disc and not (gen | disc) & (vae_ids | seg_ids)
    assert disc == {id(p) for mod in (m.disc_image, m.disc_mask, m.disc_latent) for p in mod.parameters()}
    assert {id(p) for p in m.dgcc.parameters()} <= gen
    m.train()
    assert m.training and not m.vae.training
    before = {k: v.clone() for k, v in m.vae.state_dict().items()}
    opts = m.make_optimizers()
    x = torch.randn(4, 1, 32, 32)
    for _ in range(2):
        for phase in m.phases:
            opts[phase].zero_grad(set_to_none=True)
            out = m({"P": x}, phase)
            out["loss"].backward()
            assert all(p.grad is None for p in m.vae.parameters())
            opts[phase].step()
    assert all(torch.equal(before[k], v) for k, v in m.vae.state_dict().items())
    assert {"adv", "cyc", "vae_adv"} <= set(m({"P": x}, "generator")) and "d_latent" in m({}, "discriminator")


def test_vae_discriminator_gradients_reach_the_generator_through_the_frozen_vae():
    m = tiny(use_dgcc=False)
    x = torch.randn(2, 1, 32, 32)
    y = torch.sigmoid(m.mask_logits(x))
    from napari_weakseg.losses import lsgan_g_loss

    lsgan_g_loss(m.disc_latent(m.latent(y))).backward()
    assert all(p.grad is None for p in m.vae.parameters())
    assert sum(float(p.grad.abs().sum()) for p in m.gen_mask.parameters() if p.grad is not None) > 0
    # the generator loss with D_VAE differs from the one without (same weights, same batch)
    off = tiny(use_dgcc=False, use_vae_disc=False)
    off.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("disc_latent")})
    assert off.disc_latent is None and "vae_adv" not in off({"P": x}, "generator")
    torch.manual_seed(1)
    with_vae = m({"P": x}, "generator")
    torch.manual_seed(1)
    without = off({"P": x}, "generator")
    assert torch.isclose(with_vae["loss"], without["loss"] + with_vae["vae_adv"])


def test_dgcc_calibrates_the_generator():
    m = tiny(dgcc_turns=3)
    x = torch.randn(2, 1, 32, 32)
    plain = m.gen_mask(x)
    calibrated = m.mask_logits(x)
    assert calibrated.shape == plain.shape and not torch.allclose(plain, calibrated)
    calibrated.sum().backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in m.dgcc.parameters())
    off = tiny(use_dgcc=False)
    off.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("dgcc")})
    assert off.dgcc is None and torch.equal(off.mask_logits(x), off.gen_mask(x))
    one_turn = tiny(dgcc_turns=1)
    one_turn.load_state_dict(m.state_dict())
    assert torch.equal(one_turn.mask_logits(x), one_turn.gen_mask(x))


def test_predict_returns_probabilities_and_per_slice_scores():
    m = tiny().eval()
    out = m.predict(torch.randn(3, 1, 32, 32))
    assert set(out) == set(m.outputs) == {"prob", "score_disc", "score_vae"}
    assert out["prob"].shape == (3, 1, 32, 32) and out["score_disc"].shape == out["score_vae"].shape == (3,)
    assert torch.isfinite(out["score_vae"]).all()
    assert torch.isnan(tiny(use_vae_disc=False).eval().predict(torch.randn(2, 1, 32, 32))["score_vae"]).all()


# --- selection --------------------------------------------------------------------------
def test_selection_keeps_the_best_three_quarters():
    """Wang et al. Eq. (9): the worst-scoring quarter is rejected, the rest kept."""
    scores = torch.randperm(100).float()
    kept, threshold = keep_top(scores, 75)
    assert len(kept) == 75 and bool((scores[kept] >= threshold).all())
    rejected = torch.ones(100, dtype=torch.bool)
    rejected[kept] = False
    assert bool((scores[rejected] < threshold).all()) and set(scores[kept].tolist()) == set(range(25, 100))
    assert len(keep_top(scores, 100)[0]) == 100 and len(keep_top(scores, 0.1)[0]) == 1
    assert len(select({"score_disc": scores, "score_vae": scores}).kept) == 75  # the default is the paper's
    both = {"score_disc": torch.tensor([0.1, 0.9, 0.5, 0.2]), "score_vae": torch.tensor([0.9, 0.0, 0.1, 0.8])}
    assert select(both, "disc", 50).kept.tolist() == [1, 2]
    assert select(both, "vae", 50).kept.tolist() == [0, 3]
    assert select(both, "mean", 50).kept.tolist() == [0, 3]  # means 0.5, 0.45, 0.3, 0.5
    with pytest.raises(InputError):
        select({"score_disc": torch.zeros(2), "score_vae": torch.full((2,), float("nan"))}, "vae")


# --- iterative training ---------------------------------------------------------------------
class Fixed(nn.Module):
    """A 'network' whose logits are fixed per instance (the i-th made gives outputs[i])."""

    made = 0

    def __init__(self, outputs):
        super().__init__()
        self.logits = outputs[Fixed.made]
        Fixed.made += 1
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.logits[: len(x)] + self.w * 0


def test_rounds_stop_when_validation_dice_stops_improving():
    truth = torch.zeros(4, 1, 8, 8)
    truth[:, :, 2:6, 2:6] = 1
    good, better, worse = (torch.where(truth > 0, 5.0, -5.0) for _ in range(3))
    good[:, :, 2] = -5  # three of four rows right
    worse[:, :, 2:4] = -5
    Fixed.made = 0
    outputs = [good, better, worse, better]
    x = torch.zeros(4, 1, 8, 8)
    res = iterate_pseudo_labels(lambda: Fixed(outputs), x, truth, rounds=4, steps=1, val=(x, truth), augment=False)
    assert [r.round for r in res.history] == [1, 2, 3] and res.best_round == 2
    assert res.history[1].val_dice == 1.0 and res.history[2].val_dice < 1.0
    assert torch.equal(res.labels, truth)
    Fixed.made = 0
    res = iterate_pseudo_labels(lambda: Fixed(outputs), x, truth, rounds=3, steps=1, augment=False)  # no validation: K rounds
    assert len(res.history) == 3 and res.best_round == 3 and all(r.val_dice is None for r in res.history)
    assert iterate_pseudo_labels(lambda: Fixed(outputs), x, truth, rounds=0, steps=1).network is None


def ellipse_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bright ellipses on a noisy background: images (n, 1, 32, 32) in [-1, 1] and their masks."""
    truth = sample_ellipses(n, (32, 32), 1.0, EllipsePrior((10, 20), (0.5, 1.0), (0, 180), (0.3, 0.7)), seed=seed)
    noise = 0.25 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(seed))
    return (truth * 1.2 - 0.6 + noise).clamp(-1, 1), truth


def test_end_to_end_pseudo_labels_beat_chance():
    images, truth = ellipse_images(32, seed=5)
    prior = {
        "ellipse_size_mm": [10, 20],
        "ellipse_centre": [0.3, 0.7],
        "pixel_mm": 1.0,
        "aux_count": 128,
        "vae_steps": 20,
        "vae_base": 4,
        "vae_batch": 16,
        "res_blocks": 1,
        "rounds": 1,
        "round_steps": 10,
    }
    cfg = merge(
        preset("quick"),
        {
            "net": {"base": 8, "depth": 2, "max_channels": 32},
            "input_size": 32,
            "batch_size": 8,
            "disc_base": 8,
            "augment": False,
            "pseudo_label": prior,
        },
    )
    m = build_method("pseudo-label", cfg)
    from napari_weakseg.data.shape_prior import prior_masks

    assert m.aux_spec(3.0)["pixel_mm"] == 1.0  # the configured pixel_mm wins
    m.prepare(type("Slices", (), {"images": images})(), 3.0, prior_masks(m.aux_spec(3.0), (32, 32)))
    assert m.aux.shape == (128, 1, 32, 32) and 0.05 < float(m.aux.mean()) < 0.35
    opts = m.make_optimizers()
    gen = torch.Generator().manual_seed(0)
    m.train()
    for _ in range(30):
        batch = {"P": images[torch.randint(len(images), (8,), generator=gen)]}
        for phase in m.phases:
            opts[phase].zero_grad(set_to_none=True)
            m(batch, phase)["loss"].backward()
            opts[phase].step()
    scores = score_pseudo_labels(m, images)
    labels = (scores["prob"] >= 0.5).float()
    dice = np.mean([pooled_dice(lab, t) for lab, t in zip(labels, truth, strict=False)])
    chance = np.mean([pooled_dice(a, t) for a, t in zip(m.aux[: len(truth)], truth, strict=False)])  # a random prior mask
    assert dice > chance + 0.2, (dice, chance)
    selection, result = refine(m, images)
    assert len(selection.kept) == 24 and len(result.history) == 1 and bool(m.segmenter_ready)  # 75 % of 32
    assert torch.equal(m.eval().predict(images[:2])["prob"], torch.sigmoid(m.segmenter(images[:2])))


# --- through the shared Trainer -------------------------------------------------------------
def phantom_study() -> Study:
    case = make_phantom(shape=(12, 32, 32), channels=1, seed=1)
    study = Study()
    im = study.add_image(case.volume, name="phantom", mask=case.mask)
    tags_from_masks(im)
    return study


def test_trains_through_the_trainer_predicts_and_refines(tmp_path):
    study = phantom_study()
    cfg = TrainConfig(method="pseudo-label", steps=3, device="cpu", val_fraction=0.5, val_every=3, overrides={**TINY, "pseudo_label": FAST})
    result = Trainer(study, tmp_path / "run", cfg).run()
    assert isinstance(result, Finished) and result.reason == "completed", result
    assert bool(load_tensors(tmp_path / "run" / "last.pt")["model"]["vae_ready"])
    model = TrainedModel.load(tmp_path / "run", which="last")
    out = model.predict_volume(study.images[0].volume.data)
    assert out["prob"].shape == (12, 32, 32) and out["score_disc"].shape == out["score_vae"].shape == (12,)
    path, res = refine_run(tmp_path / "run", study, which="last")
    assert path.name == "refined.pt" and len(res.history) >= 1 and res.history[0].val_dice is not None
    refined = TrainedModel.load(tmp_path / "run", which="refined")
    assert bool(refined.method.segmenter_ready)
    assert not np.array_equal(refined.predict_volume(study.images[0].volume.data)["prob"], out["prob"])


def test_resume_keeps_the_pretrained_vae(tmp_path, monkeypatch):
    study = phantom_study()
    cfg = TrainConfig(method="pseudo-label", steps=2, device="cpu", val_fraction=0.0, overrides={**TINY, "pseudo_label": FAST})
    Trainer(study, tmp_path / "run", cfg).run()
    vae = {k: v for k, v in load_tensors(tmp_path / "run" / "last.pt")["model"].items() if k.startswith("vae.")}
    from napari_weakseg.methods.pseudo_label import PseudoLabel

    calls = []
    monkeypatch.setattr(PseudoLabel, "pretrain_vae", lambda self: calls.append(1))
    cfg.steps = 4
    assert isinstance(Trainer(study, tmp_path / "run", cfg, resume=True).run(), Finished)
    assert not calls  # the checkpoint's VAE is used, not trained again
    after = load_tensors(tmp_path / "run" / "last.pt")["model"]
    assert all(torch.equal(v, after[k]) for k, v in vae.items())


def test_a_study_without_absence_slices_or_annotations_is_enough(tmp_path):
    study = phantom_study()
    im = study.images[0]
    im.mask[:] = 0
    from napari_weakseg.study import Tag

    im.tags[im.tags == Tag.ABSENCE] = Tag.UNKNOWN  # presence slices only, none annotated
    cfg = TrainConfig(method="pseudo-label", steps=1, device="cpu", val_fraction=0.2, overrides={**TINY, "pseudo_label": FAST})
    assert isinstance(Trainer(study, tmp_path / "run", cfg).run(), Finished)
