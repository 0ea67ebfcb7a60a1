"""Multi-scale patch discriminators with spectral norm (hinge loss lives in losses/)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .layers import conv, make_norm


class PatchDiscriminator(nn.Module):
    """x (B, C, H, W) -> patch scores (B, 1, ~H/2^n, ~W/2^n); leaky ReLU 0.2, spectral norm when ``sn``.

    ``stem=False`` (ours, ``quick``): n x [conv k (stride 2) -> leaky ReLU], then a k x k conv to one channel.
    ``stem=True`` (Vorontsov et al. Table I, with k = 4, ``norm``, base 64, 512 at most): a stride-1 conv C(base),
    n x [norm -> leaky ReLU -> conv k (stride 2)] with base * 2^i channels, then a 1x1 conv to one channel.
    """

    def __init__(
        self,
        in_channels: int,
        base: int = 32,
        n_layers: int = 3,
        max_channels: int = 256,
        sn: bool = True,
        kernel: int = 3,
        norm: str = "none",
        stem: bool = False,
    ):
        super().__init__()
        if stem:
            layers, ch = [conv(in_channels, base, kernel, 1, sn)], base
            for i in range(n_layers):
                out = min(base * 2**i, max_channels)
                layers += [make_norm(norm, ch), nn.LeakyReLU(0.2), conv(ch, out, kernel, 2, sn)]
                ch = out
            layers.append(conv(ch, 1, 1, 1, sn))
        else:
            layers, ch = [], in_channels
            for i in range(n_layers):
                out = min(base * 2**i, max_channels)
                layers += [conv(ch, out, kernel, 2, sn), nn.LeakyReLU(0.2)]
                ch = out
            layers.append(conv(ch, 1, kernel, 1, sn))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiScaleDiscriminator(nn.Module):
    """``scales`` patch discriminators on x, x/2, x/4 (average pooling between them); keyword arguments go
    to each :class:`PatchDiscriminator`.

    Returns a list of score maps, one per scale (the losses average over each map, then over scales).
    """

    def __init__(self, in_channels: int, scales: int = 3, **patch):
        super().__init__()
        self.nets = nn.ModuleList(PatchDiscriminator(in_channels, **patch) for _ in range(scales))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, net in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(net(x))
        return outs
