"""Networks: shapes, decoder modes, what the common decoder can see, which parameters which loss moves,
spectral norm placement, layer norm."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrize import is_parametrized

from napari_weakseg.methods import GenSeg, SegOnly, merge, preset
from napari_weakseg.methods.base import l1
from napari_weakseg.models.discriminator import MultiScaleDiscriminator, PatchDiscriminator
from napari_weakseg.models.layers import DualLayerNorm2d, LayerNorm2d, set_mode
from napari_weakseg.models.translation import Decoder, Encoder, NetConfig, split_code

TINY_NET = {"base": 4, "depth": 2, "max_channels": 16, "code_channels": 8, "unique_channels": 4}


def tiny_cfg(channels: int = 1):
    return merge(preset("quick", channels), {"net": TINY_NET, "input_size": 32, "batch_size": 2, "disc_base": 4})


def net_cfg(channels: int) -> NetConfig:
    return NetConfig(in_channels=channels, base=4, depth=2, max_channels=16, code_channels=8, unique_channels=4, decoder_kernel=3)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("size", [32, 48])
def test_encoder_decoder_shapes(channels, size):
    cfg = net_cfg(channels)
    enc = Encoder(cfg)
    x = torch.randn(2, channels, size, size)
    code, skips = enc(x)
    assert code.shape == (2, 8, size // 4, size // 4)
    assert [tuple(s.shape) for s in skips] == [(2, 4, size, size), (2, 8, size // 2, size // 2)]

    dec = Decoder(cfg, 8, channels, norm="dual_layer", short_skips=False, n_classes=1)
    assert dec(code, skips, "translate").shape == (2, channels, size, size)
    assert dec(code, skips, "segment").shape == (2, 1, size, size)

    dec3 = Decoder(cfg, 8, channels, norm="layer", n_classes=3)
    assert dec3(code, skips, "segment").shape == (2, 3, size, size)

    no_long = Decoder(cfg, 8, channels, norm="layer", long_skips=False)
    assert no_long(code).shape == (2, channels, size, size)

    c, u = split_code(code, cfg.unique_channels)
    assert c.shape == (2, 4, size // 4, size // 4) and u.shape == (2, 4, size // 4, size // 4)
    assert torch.equal(torch.cat([c, u], 1), code)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("size", [32, 48])
def test_discriminator_shapes(channels, size):
    disc = MultiScaleDiscriminator(channels, scales=3, base=4, n_layers=3, max_channels=16)
    outs = disc(torch.randn(2, channels, size, size))
    assert isinstance(outs, list) and len(outs) == 3
    for scale, o in enumerate(outs):
        side = math.ceil(size / 2 ** (3 + scale))  # 3 stride-2 convs per net, one pooling per scale
        assert o.shape == (2, 1, side, side)
    single = PatchDiscriminator(channels, base=4, n_layers=2)
    assert single(torch.randn(1, channels, size, size)).shape == (1, 1, size // 4, size // 4)


def test_segment_mode_needs_a_classifier():
    cfg = net_cfg(1)
    code, skips = Encoder(cfg)(torch.randn(1, 1, 32, 32))
    dec = Decoder(cfg, 8, 1, norm="layer")
    assert dec(code, skips).shape == (1, 1, 32, 32)  # translate is the default
    with pytest.raises(ValueError, match="no segmentation head"):
        dec(code, skips, "segment")
    with pytest.raises(ValueError, match="mode"):
        set_mode(dec, "bogus")


def test_common_decoder_cannot_see_u():
    m = GenSeg(tiny_cfg(1)).eval()
    n_common = m.cfg.net.code_channels - m.cfg.net.unique_channels
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        c, u, skips = m.encode(x)
        assert c.shape[1] == n_common == 4 and u.shape[1] == 4
        # the common decoder takes the common part only: the whole code does not fit it
        assert m.dec_common.inp[1].in_channels == n_common
        with pytest.raises(RuntimeError):
            m.dec_common(torch.cat([c, u], 1), skips)
        u2 = u + 3.0 * torch.randn_like(u)
        healthy = m.dec_common(c, skips)
        assert torch.equal(healthy, m.dec_common(c, skips))
        r1, r2 = m.residual(c, u, skips), m.residual(c, u2, skips)
        assert (r1 - r2).abs().max() > 1e-4  # the residual decoder does see u

    # predict(): change only the unique part of the encoder's code -> healthy is unchanged
    base = m.predict(x)
    encoder = m.encoder

    class PerturbU(nn.Module):
        def forward(self, inp):
            code, s = encoder(inp)
            code = code.clone()
            code[:, n_common:] += 3.0
            return code, s

    m.encoder = PerturbU()
    perturbed = m.predict(x)
    m.encoder = encoder
    assert torch.equal(base["healthy"], perturbed["healthy"])
    assert (base["residual"] - perturbed["residual"]).abs().max() > 1e-4
    assert (base["prob"] - perturbed["prob"]).abs().max() > 0


def _dual_norms(dec):
    norms = [mod for mod in dec.modules() if isinstance(mod, DualLayerNorm2d)]
    assert norms
    return norms


def _grad_norm(p) -> float:
    return 0.0 if p.grad is None else float(p.grad.abs().sum())


def _conv_weights(dec):
    # the (spectrally normalised) convolution weights of the decoder's blocks, shared by both modes
    return [mod.parametrizations.weight.original for mod in dec.up.modules() if isinstance(mod, nn.Conv2d)]


def test_segmentation_loss_moves_shared_convs_not_translation_norms():
    m = GenSeg(tiny_cfg(1))
    dec = m.dec_residual
    assert m.dec_segment is dec  # genseg: one decoder, two modes
    x = torch.randn(2, 1, 32, 32)
    batch = {"P": x, "M": (torch.rand(2, 1, 32, 32) > 0.7).float(), "L": torch.tensor([True, True])}
    c, u, skips = m.encode(x)
    m.segmentation_loss(m.segment_logits(c, u, skips), batch).backward()
    for norm in _dual_norms(dec):
        assert _grad_norm(norm.weight) == 0.0 and _grad_norm(norm.bias) == 0.0
        assert _grad_norm(norm.weight_segment) > 0 and _grad_norm(norm.bias_segment) > 0
    assert all(_grad_norm(w) > 0 for w in _conv_weights(dec))
    assert _grad_norm(dec.classifier.weight) > 0
    assert _grad_norm(dec.last[1].parametrizations.weight.original) == 0.0  # the translation output conv
    assert all(_grad_norm(p) == 0.0 for p in m.dec_common.parameters())


def test_translation_loss_does_not_touch_segmentation_parameters():
    m = GenSeg(tiny_cfg(1))
    dec = m.dec_residual
    x = torch.randn(2, 1, 32, 32)
    c, u, skips = m.encode(x)
    l1(m.dec_common(c, skips) + m.residual(c, u, skips), x).backward()
    for norm in _dual_norms(dec):
        assert _grad_norm(norm.weight_segment) == 0.0 and _grad_norm(norm.bias_segment) == 0.0
        assert _grad_norm(norm.weight) > 0 and _grad_norm(norm.bias) > 0
    assert all(_grad_norm(w) > 0 for w in _conv_weights(dec))
    assert _grad_norm(dec.classifier.weight) == 0.0 and _grad_norm(dec.classifier.bias) == 0.0


def test_mode_switch_changes_only_the_affine():
    norm = DualLayerNorm2d(3)
    with torch.no_grad():
        norm.weight_segment.fill_(2.0)
        norm.bias_segment.fill_(-1.0)
    x = torch.randn(2, 3, 4, 4)
    norm.mode = "translate"
    t = norm(x)
    norm.mode = "segment"
    s = norm(x)
    torch.testing.assert_close(s, 2.0 * t - 1.0)


@pytest.mark.parametrize("channels", [1, 2])
def test_spectral_norm_everywhere_but_the_classifier(channels):
    cfg = tiny_cfg(channels)
    for method in (GenSeg(cfg), SegOnly(cfg)):
        convs = [(name, mod) for name, mod in method.named_modules() if isinstance(mod, nn.Conv2d)]
        classifiers = [name for name, _ in convs if name.endswith("classifier")]
        assert classifiers
        for name, mod in convs:
            if name.endswith("classifier"):
                assert not is_parametrized(mod), name
            else:
                assert is_parametrized(mod, "weight"), name
    m = GenSeg(cfg)
    for part in (m.encoder, m.dec_common, m.dec_residual, m.disc_A, m.disc_P):
        assert any(isinstance(mod, nn.Conv2d) for mod in part.modules())
        assert all(
            is_parametrized(mod, "weight")
            for mod in part.modules()
            if isinstance(mod, nn.Conv2d) and mod is not getattr(part, "classifier", None)
        )


def test_spectral_norm_can_be_turned_off():
    cfg = net_cfg(1)
    cfg.spectral_norm = False
    assert not any(is_parametrized(mod) for mod in Encoder(cfg).modules() if isinstance(mod, nn.Conv2d))


def test_layer_norm_per_sample_over_chw():
    norm = LayerNorm2d(3)
    x = torch.randn(2, 3, 5, 6) * torch.tensor([1.0, 10.0]).view(2, 1, 1, 1) + torch.tensor([0.0, 5.0]).view(2, 1, 1, 1)
    y = norm(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(dim=(1, 2, 3), unbiased=False), torch.ones(2), atol=1e-3, rtol=0)
    torch.testing.assert_close(y, torch.nn.functional.layer_norm(x, x.shape[1:]), atol=1e-5, rtol=1e-5)
    # not per channel: channel means are not forced to 0
    assert y.mean(dim=(2, 3)).abs().max() > 1e-2
    # samples are independent
    x2 = x.clone()
    x2[1] = x2[1] * 7 + 3 + torch.randn_like(x2[1])
    torch.testing.assert_close(norm(x2)[0], y[0])
    # per-channel affine
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0, 3.0]))
        norm.bias.copy_(torch.tensor([0.0, -1.0, 1.0]))
    z = norm(x)
    torch.testing.assert_close(z, y * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1) + torch.tensor([0.0, -1.0, 1.0]).view(1, 3, 1, 1))


def test_padding_reflects_and_survives_tiny_maps():
    from napari_weakseg.models.layers import conv

    layer = conv(2, 3, 3, 1, sn=False)
    x = torch.randn(1, 2, 5, 6)
    torch.testing.assert_close(layer[0](x), nn.ReflectionPad2d(1)(x))
    assert layer(torch.randn(1, 2, 1, 1)).shape == (1, 3, 1, 1)  # too small to reflect: replicated
