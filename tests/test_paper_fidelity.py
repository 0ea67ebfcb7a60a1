"""The presets against the papers, line by line (docs/methods.md has the same table in prose).

Vorontsov et al., *Towards annotation-efficient segmentation via image-to-image translation* (journal),
Sec. IV-B and Table I; Mondal et al., *Revisiting CycleGAN for semi-supervised segmentation*, Eq. (8) and
Sec. 3.3; Wang et al., *Annotation-efficient learning ... noisy pseudo labels*, Sec. III-A and Eq. (9).
"""

from __future__ import annotations

import pytest
import torch

from napari_weakseg.bench.digits import PROFILES as DIGITS_PROFILES
from napari_weakseg.methods import MethodConfig, build_method, merge, method_preset
from napari_weakseg.methods.base import Method
from napari_weakseg.pseudo.config import PseudoLabelConfig

SMALL = {
    "net": {"base": 4, "depth": 2, "max_channels": 16, "code_channels": 8, "unique_channels": 4, "res_blocks": 1},
    "input_size": 32,
    "batch_size": 2,
    "disc_base": 4,
}


def small(method: str, preset: str) -> Method:
    """The preset's architecture rules (kernels, skips, norms) at a tiny width."""
    return build_method(method, merge(method_preset(method, preset), SMALL))


def kernel_sizes(module: torch.nn.Module) -> set[int]:
    return {m.kernel_size[0] for m in module.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size[0] > 1}


def has_spectral_norm(module: torch.nn.Module) -> bool:
    return any(hasattr(m, "parametrizations") for m in module.modules())


# --- genseg and its baselines (Vorontsov et al.) -------------------------------------------------
def test_genseg_paper_weights_optimiser_and_normalisation():
    cfg = method_preset("genseg", "paper")
    assert cfg.weights == {"adv": 3.0, "rec": 50.0, "lat": 1.0, "cyc": 50.0, "seg": 0.01}
    assert cfg.normalise_weights and abs(sum(cfg.loss_weights().values()) - 1.0) < 1e-12  # "normalized so that they sum to 1"
    assert (cfg.lr, cfg.betas, cfg.amsgrad, cfg.batch_size, cfg.annotated_per_batch) == (1e-4, (0.5, 0.999), True, 20, 0)
    assert (cfg.net.code_channels, cfg.net.unique_channels) == (512, 128)


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_each_baseline_has_its_own_published_weights(preset):
    """Sec. IV-B: "AE: λrec = λseg = 1"; mean teacher: consistency 0.01 against segmentation 1, EMA 0.99."""
    assert method_preset("seg-only", preset).loss_weights() == {"seg": 1.0}
    assert method_preset("ae", preset).loss_weights() == {"seg": 1.0, "rec": 1.0}
    mt = method_preset("mean-teacher", preset)
    assert mt.loss_weights() == {"seg": 1.0} and (mt.consistency, mt.ema_decay) == (0.01, 0.99)


def test_autoencoding_loss_is_dice_plus_reconstruction_at_equal_weights():
    ae = small("ae", "paper")
    g = torch.Generator().manual_seed(0)
    batch = {
        "P": torch.randn(2, 1, 32, 32, generator=g),
        "A": torch.randn(2, 1, 32, 32, generator=g),
        "M": (torch.rand(2, 1, 32, 32, generator=g) > 0.7).float(),
        "L": torch.tensor([True, False]),
    }
    out = ae(batch, "main")
    torch.testing.assert_close(out["loss"].detach(), out["seg"] + out["rec"])


def test_paper_kernels_and_skips_follow_table_1():
    """Common decoder 3x3 with short skips; residual decoder (which also segments) 5x5 without."""
    g = small("genseg", "paper")
    assert kernel_sizes(g.dec_common.up) == {3} and kernel_sizes(g.dec_residual.up) == {5}
    assert all(b.short_skip for b in g.dec_common.up) and not any(b.short_skip for b in g.dec_residual.up)
    sep = small("genseg-sepdec", "paper")
    assert kernel_sizes(sep.dec_segment.up) == {5} and kernel_sizes(sep.dec_residual.up) == {5}
    for name in ("seg-only", "mean-teacher", "ae"):  # Table I's caption and the authors' code: the common decoder
        dec = small(name, "paper").dec_segment
        assert kernel_sizes(dec.up) == {3} and all(b.short_skip for b in dec.up)
        assert not any(b.short_skip for b in small(name, "quick").dec_segment.up)  # quick: Sec. IV-A's reading
    assert kernel_sizes(small("ae", "paper").dec_reconstruct.up) == {3}


def test_spectral_norm_on_the_proposed_model_only_in_paper():
    assert has_spectral_norm(small("genseg", "paper").encoder)
    for name in ("seg-only", "ae", "mean-teacher"):
        assert not has_spectral_norm(small(name, "paper"))


def test_a_config_saved_with_one_decoder_kernel_loads_with_it_for_both():
    """Runs saved before the two kernels were separate keep their architecture (and their weights load)."""
    d = method_preset("genseg", "quick").to_dict()
    del d["net"]["residual_kernel"]
    d["net"]["decoder_kernel"] = 5
    cfg = MethodConfig.from_dict(d)
    assert (cfg.net.decoder_kernel, cfg.net.residual_kernel) == (5, 5)


def test_digits_are_not_augmented():
    """Sec. IV-B: augmentation for brain and liver, "but not for synthetic tasks"."""
    for name, prof in DIGITS_PROFILES.items():
        assert prof.overrides.get("augment") is False, name


# --- cyclegan-ssl (Mondal et al.) ------------------------------------------------------------------
def test_cyclegan_weights_are_eq_8():
    """λ1 = 1 for L_gen^I (img), λ2 = 0.05 for L_cycle^S (cyc_mask), λ3 = λ4 = λ5 = 1."""
    for preset in ("quick", "paper"):
        w = method_preset("cyclegan-ssl", preset).weights
        assert (w["seg"], w["img"], w["cyc_mask"], w["cyc_img"], w["adv"]) == (1.0, 1.0, 0.05, 1.0, 1.0)
    assert method_preset("cyclegan-ssl", "paper").augment is False  # Sec. 4.1: no augmentation
    assert method_preset("cyclegan-ssl", "paper").loss_weights()["cyc_mask"] == 0.05  # not normalised as genseg's


# --- pseudo-label (Wang et al.) --------------------------------------------------------------------
def test_pseudo_label_paper_optimiser_and_schedule():
    """Adam (not AMSGrad), lr 5e-6 for 50 epochs, then linear decay to 0 over 100 more."""
    cfg = method_preset("pseudo-label", "paper")
    assert (cfg.amsgrad, cfg.lr) == (False, 5e-6)
    method = small("pseudo-label", "paper")
    assert method.lr_factor(49, 150) == 1.0 and abs(method.lr_factor(100, 150) - 0.5) < 1e-9
    assert method.lr_factor(150, 150) == 0.0


def test_pseudo_label_paper_networks():
    cfg = method_preset("pseudo-label", "paper")
    pl = PseudoLabelConfig.from_dict(cfg.pseudo_label)
    assert (cfg.net.base, cfg.net.depth, cfg.net.max_channels) == (64, 4, 1024)  # 64 channels, doubled per level
    assert (pl.res_blocks, pl.vae_latent, pl.patch_layers) == (6, 32, 3)  # six residual blocks; 70x70 PatchGAN
    assert (pl.w_cycle, pl.w_adv, pl.w_vae) == (10.0, 1.0, 1.0)
    assert len(small("pseudo-label", "paper").gen_mask.bottleneck) == 6


def test_pseudo_label_selection_keeps_three_quarters_by_default_and_old_runs_keep_theirs():
    assert PseudoLabelConfig().selection_keep == 75.0
    assert PseudoLabelConfig.from_dict({"selection_percentile": 75.0}).selection_keep == 25.0  # what that run kept


# --- architecture (paper preset) -------------------------------------------------------------------
def test_paper_blocks_are_one_nrc_per_level_and_quick_keeps_pairs():
    paper, quick = small("genseg", "paper"), small("genseg", "quick")
    assert not any(b.second for b in paper.encoder.down) and not any(b.second for b in paper.dec_common.up)
    assert all(b.second for b in quick.encoder.down)


def test_segmentation_head_has_a_spatial_filter_of_its_own_in_paper():
    """The authors' residual decoder segments through norm -> ReLU -> 7x7 conv -> 1x1 classifier (no spectral norm);
    the 7x7 conv belongs to segmentation: translation never runs it."""
    g = small("genseg", "paper")
    assert g.dec_residual.seg_conv is not None and kernel_sizes(g.dec_residual.seg_conv) == {7}
    assert g.dec_residual.classifier.in_channels == 1  # the 7x7 conv maps to the image's channels
    assert not has_spectral_norm(g.dec_residual.seg_conv) and not has_spectral_norm(g.dec_residual.classifier)
    x = torch.randn(2, 1, 32, 32)
    c, u, s = g.encode(x)
    g.residual(c, u, s).sum().backward()
    assert all(p.grad is None for p in g.dec_residual.seg_conv.parameters())
    g.zero_grad()
    g.segment_logits(*g.encode(x)).sum().backward()
    assert all(p.grad is not None for p in g.dec_residual.seg_conv.parameters())
    # quick: genseg keeps a 3x3 one (with the 1x1 alone its first training could segment nothing); seg-only has none
    assert kernel_sizes(small("genseg", "quick").dec_residual.seg_conv) == {3}
    assert small("seg-only", "quick").dec_segment.seg_conv is None


def test_paper_discriminator_follows_table_1():
    """Per scale: C 64 4x4 stride 1, NRC 64 / 128 / 256 / 512 4x4 stride 2 (normalised), C 1 1x1; three scales."""
    cfg = method_preset("genseg", "paper")
    g = build_method("genseg", merge(cfg, {"net": {"base": 4, "depth": 2, "max_channels": 16, "code_channels": 8, "unique_channels": 4}}))
    assert len(g.disc_A.nets) == 3
    convs = [m for m in g.disc_A.nets[0].modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (64, 4, 1),
        (64, 4, 2),
        (128, 4, 2),
        (256, 4, 2),
        (512, 4, 2),
        (1, 1, 1),
    ]
    assert sum(isinstance(m, torch.nn.Module) and type(m).__name__ == "LayerNorm2d" for m in g.disc_A.nets[0].modules()) == 4
    scores = g.disc_A(torch.randn(1, 1, 64, 64))
    assert len(scores) == 3 and all(s.shape[1] == 1 for s in scores)


@pytest.mark.parametrize("name", ["genseg", "genseg-sepdec", "seg-only", "ae", "mean-teacher", "cyclegan-ssl"])
def test_a_paper_preset_network_trains(name):
    """One real optimiser step per phase with the paper's architecture rules at a tiny width: finite losses."""
    torch.manual_seed(0)
    method = small(name, "paper")
    g = torch.Generator().manual_seed(1)
    m = torch.zeros(2, 1, 32, 32)
    m[:, :, 8:20, 10:22] = 1.0
    batch = {
        "P": torch.randn(2, 1, 32, 32, generator=g) + 2 * m,
        "A": torch.randn(2, 1, 32, 32, generator=g),
        "M": m,
        "Y": m.long(),
        "L": torch.tensor([True, False]),
    }
    optimizers = method.make_optimizers()
    for phase in method.phases:
        optimizers[phase].zero_grad()
        out = method(batch, phase)
        out["loss"].backward()
        optimizers[phase].step()
        assert all(torch.isfinite(v).all() for v in out.values()), (phase, out)


def test_paper_images_are_tanh_and_inputs_clipped_to_its_range():
    """The authors' code: tanh on the image outputs, inputs normalised into [-1, 1]."""
    import numpy as np

    from napari_weakseg.data.slices import Normaliser

    g = small("genseg", "paper").eval()
    out = g.predict(torch.randn(2, 1, 32, 32) * 5)
    assert float(out["healthy"].abs().max()) < 1.0 and float(out["residual"].abs().max()) < 1.0
    assert method_preset("genseg", "paper").clip_inputs and not method_preset("genseg", "quick").clip_inputs
    norm = Normaliser([0.0], [1.0], clip=True)
    assert norm.apply(np.array([[-5.0, 0.5, 9.0]])).tolist() == [[-1.0, 0.0, 1.0]]
    assert Normaliser.from_dict(norm.to_dict()).clip and not Normaliser.from_dict({"low": [0], "high": [1]}).clip
    assert float(Normaliser([0.0], [1.0]).apply(np.array([[9.0]]))[0, 0]) == 17.0  # quick: not clipped
