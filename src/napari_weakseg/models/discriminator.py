"""Multi-scale patch discriminators with spectral norm (hinge loss lives in losses/)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .layers import conv


class PatchDiscriminator(nn.Module):
    """x (B, C, H, W) -> patch scores (B, 1, H/2^n, W/2^n); leaky ReLU 0.2, spectral norm."""

    def __init__(self, in_channels: int, base: int = 32, n_layers: int = 3, max_channels: int = 256, sn: bool = True):
        super().__init__()
        layers, ch = [], in_channels
        for i in range(n_layers):
            out = min(base * 2**i, max_channels)
            layers += [conv(ch, out, 3, 2, sn), nn.LeakyReLU(0.2)]
            ch = out
        layers.append(conv(ch, 1, 3, 1, sn))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiScaleDiscriminator(nn.Module):
    """``scales`` patch discriminators on x, x/2, x/4 (average pooling between them).

    Returns a list of score maps, one per scale.
    """

    def __init__(self, in_channels: int, scales: int = 3, base: int = 32, n_layers: int = 3, max_channels: int = 256, sn: bool = True):
        super().__init__()
        self.nets = nn.ModuleList(PatchDiscriminator(in_channels, base, n_layers, max_channels, sn) for _ in range(scales))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, net in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(net(x))
        return outs
