"""A U-Net with residual blocks at the bottleneck, whose decoder features can be re-weighted per
channel (the pseudo-label method's generators G_A, G_B and its segmentation network).

Shapes, with d = ``depth`` and widths w_k = min(base * 2^k, max_channels):
    x (B, in_channels, H, W), H and W divisible by 2^d  ->  logits (B, out_channels, H, W)
    decoder feature u_i after up-step i = 0 .. d-1 (coarse to fine): (B, w_{d-1-i}, H/2^(d-1-i), W/2^(d-1-i))
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """Two 3x3 convolutions, each with instance norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1),
        nn.InstanceNorm2d(out_ch, affine=True),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1),
        nn.InstanceNorm2d(out_ch, affine=True),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """x + conv-norm-ReLU-conv-norm(x); (B, C, h, w) -> same."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect"),
            nn.InstanceNorm2d(ch, affine=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect"),
            nn.InstanceNorm2d(ch, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResUNet(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, base: int = 16, depth: int = 3, max_channels: int = 128, res_blocks: int = 2):
        super().__init__()
        width = [min(base * 2**k, max_channels) for k in range(depth + 1)]
        self.depth = depth
        self.stem = conv_block(in_channels, width[0])
        self.down = nn.ModuleList(conv_block(width[k], width[k + 1]) for k in range(depth))
        self.bottleneck = nn.Sequential(*[ResidualBlock(width[depth]) for _ in range(res_blocks)])
        self.up = nn.ModuleList(nn.Conv2d(width[k + 1], width[k], 3, padding=1) for k in reversed(range(depth)))
        self.merge = nn.ModuleList(conv_block(2 * width[k], width[k]) for k in reversed(range(depth)))
        self.head = nn.Conv2d(width[0], out_channels, 1)
        self.decoder_widths = [width[k] for k in reversed(range(depth))]

    def forward(self, x: torch.Tensor, betas: list[torch.Tensor] | None = None) -> torch.Tensor:
        """x -> logits; ``betas[i]`` (B, decoder_widths[i], 1, 1) calibrates u_i as u_i * beta_i + u_i."""
        h = self.stem(x)
        skips = []
        for block in self.down:
            skips.append(h)
            h = block(F.max_pool2d(h, 2))
        h = self.bottleneck(h)
        for i, (up, merge) in enumerate(zip(self.up, self.merge, strict=True)):
            h = up(F.interpolate(h, scale_factor=2, mode="nearest"))
            h = merge(torch.cat([h, skips[-1 - i]], 1))
            if betas is not None:
                h = h * betas[i] + h
        return self.head(h)
