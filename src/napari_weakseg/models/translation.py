"""Encoder and decoders of the presence-to-absence translation network (Vorontsov et al.).

One encoder f splits its code into a common part c (shared by healthy and lesion
images) and a unique part u (lesion only). Decoders take a code and, through
compressed long skips, the encoder's feature maps.

Shapes, with d = ``depth`` downsamplings and widths w_k = min(base * 2^k, max_channels):
    image x:     (B, C, H, W), H and W divisible by 2^d
    skips[k]:    (B, w_k, H / 2^k, W / 2^k) for k = 0 .. d-1
    code:        (B, N, H / 2^d, W / 2^d);  c = code[:, :N-n],  u = code[:, N-n:]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .layers import CompressedSkip, PreActBlock, conv, make_norm, set_mode

LESION_PRIOR = 0.01  # initial lesion probability of every pixel (Lin et al., focal loss: prior initialisation)


@dataclass
class NetConfig:
    """Architecture; ``quick`` and ``paper`` presets live in methods/config.py."""

    in_channels: int = 1
    base: int = 16
    depth: int = 3
    max_channels: int = 128
    code_channels: int = 64  # N (paper: 512)
    unique_channels: int = 16  # n (paper: 128)
    decoder_kernel: int = 3  # common decoder (and the autoencoding baseline's reconstruction decoder); Table I: 3x3
    residual_kernel: int = 5  # residual decoder, the one that also segments; Table I: 5x5
    seg_head_kernel: int = 0  # a k x k conv of the segmentation output before its 1x1 classifier; 0 = none
    # (the authors' code: 7, no spectral norm), so segmentation has a spatial filter of its own
    block_convs: int = 2  # convolutions per encoder / decoder level: 2 (pre-activation pairs) or 1 (Table I: one NRC)
    baseline_decoder: str = "residual"  # the baselines' segmentation decoder: "common" or "residual" layout
    image_tanh: bool = False  # tanh on every decoder's image output (healthy, residual, reconstruction): the authors' code
    spectral_norm: bool = True
    n_classes: int = 1  # lesion classes K (labels 1..K); only cyclegan-ssl takes K > 1
    dropout: float = 0.0
    res_blocks: int = 6  # residual blocks of the CycleGAN generators (cyclegan-ssl)

    def width(self, k: int) -> int:
        return min(self.base * 2**k, self.max_channels)

    def to_dict(self) -> dict:
        return asdict(self)


class Encoder(nn.Module):
    """f: x (B, C, H, W) -> (code (B, N, H/2^d, W/2^d), skips)."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.stem = conv(cfg.in_channels, cfg.width(0), 3, 1, cfg.spectral_norm)
        self.down = nn.ModuleList(
            PreActBlock(cfg.width(k), cfg.width(k + 1), "instance", 3, "down", True, cfg.spectral_norm, cfg.dropout, cfg.block_convs)
            for k in range(cfg.depth)
        )
        self.out = nn.Sequential(
            make_norm("instance", cfg.width(cfg.depth)), nn.ReLU(), conv(cfg.width(cfg.depth), cfg.code_channels, 1, 1, cfg.spectral_norm)
        )

    def forward(self, x: torch.Tensor):
        h = self.stem(x)
        skips = []
        for block in self.down:
            skips.append(h)
            h = block(h)
        return self.out(h), skips


class Decoder(nn.Module):
    """code (B, code_in, h, w) [+ skips] -> (B, out_channels, H, W).

    ``norm="dual_layer"`` gives every normalisation two parameter sets; with
    ``n_classes`` the decoder also segments: in ``mode="segment"`` all but the
    last convolution run, then a 1x1 classifier gives logits (B, n_classes, H, W).
    ``short_skips=False`` (the residual decoder) has no residual connections;
    ``long_skips=False`` (the autoencoding baseline) ignores the encoder features. ``kernel``: the
    convolutions' size (default ``cfg.decoder_kernel``; the residual decoder passes ``cfg.residual_kernel``).
    ``tanh``: the image output goes through tanh, into the (-1, 1) of clipped inputs (``clip_inputs``).
    """

    def __init__(
        self,
        cfg: NetConfig,
        code_in: int,
        out_channels: int,
        norm: str = "layer",
        long_skips: bool = True,
        short_skips: bool = True,
        n_classes: int = 0,
        kernel: int | None = None,
        tanh: bool = False,
    ):
        super().__init__()
        d, k = cfg.depth, kernel or cfg.decoder_kernel
        self.tanh = tanh
        self.long_skips = long_skips
        self.inp = conv(code_in, cfg.width(d), 3, 1, cfg.spectral_norm)
        extra = 1 if long_skips else 0
        self.up = nn.ModuleList(
            PreActBlock(cfg.width(i + 1) + extra, cfg.width(i), norm, k, None, short_skips, cfg.spectral_norm, convs=cfg.block_convs)
            for i in reversed(range(d))
        )
        if long_skips:
            self.skips = nn.ModuleList(CompressedSkip(cfg.width(i), cfg.spectral_norm) for i in reversed(range(d)))
        self.head_norm = make_norm(norm, cfg.width(0))
        self.last = conv(cfg.width(0), out_channels, k, 1, cfg.spectral_norm)
        # segmentation: (mode-specific) norm -> ReLU [-> k x k conv to out_channels] -> 1x1 classifier, neither
        # spectrally normalised (the authors' code: a 7x7 conv per mode to the image's channels, then the classifier)
        head_k = cfg.seg_head_kernel if n_classes else 0
        self.seg_conv = conv(cfg.width(0), out_channels, head_k, 1, sn=False) if head_k else None
        self.classifier = nn.Conv2d(out_channels if head_k else cfg.width(0), n_classes, 1) if n_classes else None
        if self.classifier is not None:  # start from "lesions are rare" (p = 0.01), not from p = 0.5 everywhere
            nn.init.constant_(self.classifier.bias, math.log(LESION_PRIOR / (1 - LESION_PRIOR)))

    def forward(self, code: torch.Tensor, skips: list[torch.Tensor] | None = None, mode: str = "translate") -> torch.Tensor:
        set_mode(self, mode)
        h = self.inp(code)
        for i, block in enumerate(self.up):
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            if self.long_skips:
                h = torch.cat([h, self.skips[i](skips[len(self.up) - 1 - i])], dim=1)
            h = block(h)
        h = F.relu(self.head_norm(h))
        if mode == "segment":
            if self.classifier is None:
                raise ValueError("this decoder has no segmentation head")
            return self.classifier(self.seg_conv(h) if self.seg_conv is not None else h)
        out = self.last(h)
        return torch.tanh(out) if self.tanh else out


def split_code(code: torch.Tensor, unique_channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, h, w) -> common (B, N-n, h, w), unique (B, n, h, w)."""
    return code[:, : code.shape[1] - unique_channels], code[:, code.shape[1] - unique_channels :]
