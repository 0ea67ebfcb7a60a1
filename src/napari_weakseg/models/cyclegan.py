"""CycleGAN networks (Zhu et al.) for the image <-> mask translation of ``cyclegan-ssl``.

Widths come from :class:`NetConfig`: w_k = min(base * 2^k, max_channels), k = 0, 1, 2.

    ResnetGenerator:    (B, in, H, W) -> (B, out, H, W) unbounded; H and W divisible by 4
    PixelDiscriminator: (B, in, H, W) -> (B, 1, H, W) scores, one per pixel
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import PreActBlock, conv, make_norm
from .translation import NetConfig


class ResnetGenerator(nn.Module):
    """7x7 conv, two stride-2 3x3 convs, ``cfg.res_blocks`` residual blocks at H/4, two
    transposed 3x3 convs back to H, 7x7 conv to ``out_channels``. Instance norm, ReLU,
    reflection padding, no spectral norm. Returns raw outputs: apply softmax or tanh."""

    def __init__(self, in_channels: int, out_channels: int, cfg: NetConfig):
        super().__init__()
        w0, w1, w2 = (cfg.width(k) for k in range(3))
        layers = [conv(in_channels, w0, 7, 1, sn=False), make_norm("instance", w0), nn.ReLU()]
        for a, b in ((w0, w1), (w1, w2)):
            layers += [conv(a, b, 3, 2, sn=False), make_norm("instance", b), nn.ReLU()]
        layers += [PreActBlock(w2, w2, "instance", 3, sn=False) for _ in range(cfg.res_blocks)]
        for a, b in ((w2, w1), (w1, w0)):
            layers += [nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1), make_norm("instance", b), nn.ReLU()]
        layers.append(conv(w0, out_channels, 7, 1, sn=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PixelDiscriminator(nn.Module):
    """1x1 convolutions only (pix2pix's "pixel GAN"): each pixel is judged on its own channels.
    (B, in, H, W) -> (B, 1, H, W); widths ``base`` and 2 * ``base``, leaky ReLU 0.2, instance norm."""

    def __init__(self, in_channels: int, base: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, base, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(base, 2 * base, 1, bias=False),
            make_norm("instance", 2 * base),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * base, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
