"""Segmentation through presence-to-absence translation (Vorontsov et al.), and its
``genseg-sepdec`` ablation with a separate segmentation decoder."""

from __future__ import annotations

import torch

from ..losses.adversarial import hinge_d_loss, hinge_g_loss
from ..models.discriminator import MultiScaleDiscriminator
from ..models.translation import Decoder, Encoder, split_code
from .base import AdversarialMethod, l1
from .config import MethodConfig


class GenSeg(AdversarialMethod):
    name = "genseg"
    description = "translation presence -> absence; the residual decoder also segments"
    outputs = ("healthy", "residual", "prob")
    separate_decoder = False

    @classmethod
    def preset_options(cls, preset: str) -> dict:
        # quick: a 3x3 conv of the segmentation path's own before its 1x1 classifier (the authors' code: 7x7; Table I
        # has none). With the 1x1 alone the dock's first training segmented nothing at 2 of 6 seeds, even after 300
        # steps: the shared residual decoder learns the translation and the output stays at the classifier's prior
        # (docs/benchmarks.md, "The demo's first training"); 7x7 was too much to fit from two slices on BraTS at 1 %
        return {"net": {"seg_head_kernel": 3}} if preset == "quick" else {}

    def __init__(self, cfg: MethodConfig):
        super().__init__(cfg)
        net, ch = cfg.net, cfg.net.in_channels
        self.n_unique = net.unique_channels
        self.encoder = Encoder(net)
        # Table I: the common decoder has short skips and 3x3 kernels, the residual decoder neither skips nor 3x3 (5x5)
        # net.image_tanh: tanh on the healthy image and on the residual (each in (-1, 1)), as the authors' decoders
        self.dec_common = Decoder(net, net.code_channels - net.unique_channels, ch, norm="layer", tanh=net.image_tanh)
        residual = {"short_skips": False, "kernel": net.residual_kernel, "tanh": net.image_tanh}
        if self.separate_decoder:
            self.dec_residual = Decoder(net, net.code_channels, ch, norm="layer", **residual)
            self.dec_segment = Decoder(net, net.code_channels, ch, norm="layer", n_classes=net.n_classes, **residual)
        else:
            self.dec_residual = Decoder(net, net.code_channels, ch, norm="dual_layer", n_classes=net.n_classes, **residual)
            self.dec_segment = self.dec_residual
        disc = {
            "scales": cfg.disc_scales,
            "base": cfg.disc_base,
            "n_layers": cfg.disc_layers,
            "sn": net.spectral_norm,
            "kernel": cfg.disc_kernel,
            "norm": cfg.disc_norm,
            "stem": cfg.disc_stem,
            "max_channels": cfg.disc_max_channels,
        }
        self.disc_A = MultiScaleDiscriminator(ch, **disc)  # real absence vs x_PA
        self.disc_P = MultiScaleDiscriminator(ch, **disc)  # real presence vs x_AP
        self._fakes = None

    def encode(self, x: torch.Tensor):
        """x (B, C, H, W) -> common c (B, N-n, h, w), unique u (B, n, h, w), skips."""
        code, skips = self.encoder(x)
        c, u = split_code(code, self.n_unique)
        return c, u, skips

    def residual(self, c, u, skips):
        return self.dec_residual(torch.cat([c, u], 1), skips, "translate")

    def segment_logits(self, c, u, skips):
        return self.dec_segment(torch.cat([c, u], 1), skips, "segment")

    def phase_parameters(self, phase: str):
        disc = [*self.disc_A.parameters(), *self.disc_P.parameters()]
        if phase == "discriminator":
            return disc
        ids = {id(p) for p in disc}
        return [p for p in self.parameters() if id(p) not in ids]

    def _generator_losses(self, batch: dict) -> dict:
        xP, xA = batch["P"], batch["A"]
        cP, uP, sP = self.encode(xP)
        cA, uA, sA = self.encode(xA)
        xPA = self.dec_common(cP, sP)  # presence -> absence (healthy)
        xPP = xPA + self.residual(cP, uP, sP)  # reconstruction of x_P
        xAA = self.dec_common(cA, sA)  # reconstruction of x_A
        u = torch.randn_like(uA)
        xAP = xAA + self.residual(cA, u, sA)  # absence -> presence with a random lesion code
        cAP, uAP, sAP = self.encode(xAP)
        xAPA = self.dec_common(cAP, sAP)
        cPA, _, _ = self.encode(xPA)
        cAA, _, _ = self.encode(xAA)
        cPP, uPP, _ = self.encode(xPP)

        adv = hinge_g_loss(self.disc_A(xPA)) + hinge_g_loss(self.disc_P(xAP))
        rec = l1(xPP, xP) + l1(xAA, xA)
        lat = l1(cAP, cA) + l1(cPA, cP) + l1(cAA, cA) + l1(cPP, cP) + l1(uPP, uP) + l1(uAP, u)
        cyc = l1(xAPA, xA)
        absence = self.segment_logits(cA, uA, sA) if self.cfg.absence_as_empty else None
        seg = self.segmentation_loss(self.segment_logits(cP, uP, sP), batch, absence)
        w = self.w
        loss = w["adv"] * adv + w["rec"] * rec + w["lat"] * lat + w["cyc"] * cyc + w["seg"] * seg
        self._fakes = (xA, xP, xPA.detach(), xAP.detach())
        return {"loss": loss, "adv": adv.detach(), "rec": rec.detach(), "lat": lat.detach(), "cyc": cyc.detach(), "seg": seg.detach()}

    def _discriminator_losses(self) -> dict:
        xA, xP, xPA, xAP = self._fakes
        d_a = hinge_d_loss(self.disc_A(xA), self.disc_A(xPA))
        d_p = hinge_d_loss(self.disc_P(xP), self.disc_P(xAP))
        self._fakes = None
        return {"loss": d_a + d_p, "disc": (d_a + d_p).detach()}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, C, H, W) -> healthy (B, C, H, W), residual (B, C, H, W), prob (B, 1, H, W)."""
        c, u, s = self.encode(x)
        healthy = self.dec_common(c, s)
        return {"healthy": healthy, "residual": self.residual(c, u, s), "prob": torch.sigmoid(self.segment_logits(c, u, s))}

    @torch.no_grad()
    def sample_lesions(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Absence slices x (B, C, H, W) -> the same with a lesion drawn from u ~ N(0, I)."""
        c, u, s = self.encode(x)
        u = torch.randn(u.shape, generator=generator, device=u.device, dtype=u.dtype) if generator else torch.randn_like(u)
        return self.dec_common(c, s) + self.residual(c, u, s)


class GenSegSepDec(GenSeg):
    name = "genseg-sepdec"
    description = "genseg with a separate segmentation decoder (ablation)"
    separate_decoder = True
