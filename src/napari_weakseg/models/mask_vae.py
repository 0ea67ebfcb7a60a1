"""A VAE of binary masks (the pseudo-label method's shape model) and D_VAE, the discriminator of its
latent codes.

The VAE works at a fixed square size S (a multiple of 8): masks of any size are resized
(bilinearly, so gradients pass) to S. encode: (B, 1, H, W) -> mean, log-variance (B, L);
decode: (B, L) -> probabilities (B, 1, S, S).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MaskVAE(nn.Module):
    def __init__(self, latent: int = 32, size: int = 32, base: int = 16):
        super().__init__()
        self.size, self.latent = size, latent
        c, s = 4 * base, size // 8
        self.encoder = nn.Sequential(
            nn.Conv2d(1, base, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(base, 2 * base, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * base, c, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.to_stats = nn.Linear(c * s * s, 2 * latent)
        self.from_latent = nn.Sequential(nn.Linear(latent, c * s * s), nn.Unflatten(1, (c, s, s)), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(c, 2 * base, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * base, base, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(base, 1, 4, 2, 1),
        )

    def resize(self, masks: torch.Tensor) -> torch.Tensor:
        if masks.shape[-2:] == (self.size, self.size):
            return masks
        return F.interpolate(masks, size=(self.size, self.size), mode="bilinear", align_corners=False)

    def encode(self, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.to_stats(self.encoder(self.resize(masks) * 2 - 1)).chunk(2, dim=1)
        return mean, logvar.clamp(-10, 10)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(self.from_latent(z)))

    def loss(self, masks: torch.Tensor) -> torch.Tensor:
        """KL(q(z|m) || N(0, I)) + squared reconstruction error, both summed per mask, averaged over the batch."""
        target = self.resize(masks)
        mean, logvar = self.encode(target)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        l2 = ((self.decode(z) - target) ** 2).sum(dim=(1, 2, 3))
        kl = -0.5 * (1 + logvar - mean**2 - logvar.exp()).sum(dim=1)
        return (l2 + kl).mean()


class LatentDiscriminator(nn.Module):
    """D_VAE: three linear layers with leaky ReLU; latent codes (B, L) -> scores (B, 1)."""

    def __init__(self, latent: int = 32, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def pretrain_vae(
    vae: MaskVAE, masks: torch.Tensor, steps: int, batch: int = 32, lr: float = 1e-3, generator: torch.Generator | None = None
) -> list[float]:
    """Train ``vae`` on ``masks`` (N, 1, H, W) for ``steps`` Adam steps, then freeze it (eval mode,
    requires_grad False). Returns the losses."""
    params = list(vae.parameters())
    for p in params:
        p.requires_grad_(True)
    vae.train()
    opt = torch.optim.Adam(params, lr=lr)
    losses = []
    for _ in range(steps):
        rows = torch.randint(len(masks), (min(batch, len(masks)),), generator=generator)
        loss = vae.loss(masks[rows].to(params[0].device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    freeze(vae)
    return losses


def freeze(module: nn.Module) -> None:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
        p.grad = None
