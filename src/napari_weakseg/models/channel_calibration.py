"""DGCC, discriminator-guided channel calibration (Wang et al.): the mask discriminator's feature map
gives, through one squeeze-and-excitation block per decoder scale, channel weights for G_A's decoder."""

from __future__ import annotations

import torch
from torch import nn


class ChannelCalibration(nn.Module):
    """D_B features (B, Cd, h, w) -> [beta_i (B, C_i, 1, 1) in (0, 1)], one per decoder width C_i.

    Each: global average pool, 1x1 conv to Cd / reduction, ReLU, 1x1 conv to C_i, sigmoid.
    """

    def __init__(self, feature_channels: int, decoder_widths: list[int], reduction: int = 4):
        super().__init__()
        mid = max(feature_channels // reduction, 1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(feature_channels, mid, 1), nn.ReLU(inplace=True), nn.Conv2d(mid, c, 1), nn.Sigmoid())
            for c in decoder_widths
        )

    def forward(self, features: torch.Tensor) -> list[torch.Tensor]:
        pooled = features.mean(dim=(2, 3), keepdim=True)
        return [block(pooled) for block in self.blocks]
