"""PatchGAN discriminator (pix2pix / CycleGAN): ``n_layers`` 4x4 stride-2 convolutions, then two 4x4
stride-1 ones; ``n_layers=3`` is the 70x70 PatchGAN. Instance norm, leaky ReLU 0.2, no output activation."""

from __future__ import annotations

import torch
from torch import nn


class PatchGAN(nn.Module):
    """x (B, C, H, W) -> patch scores (B, 1, h, w); :meth:`features` gives the map before the output layer."""

    def __init__(self, in_channels: int, base: int = 64, n_layers: int = 3, max_channels: int = 512):
        super().__init__()
        layers, ch = [nn.Conv2d(in_channels, base, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)], base
        for i in range(1, n_layers + 1):
            out = min(base * 2**i, max_channels)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride, 1), nn.InstanceNorm2d(out, affine=True), nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(ch, 1, 4, 1, 1)
        self.feature_channels = ch

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, feature_channels, h', w')."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))
