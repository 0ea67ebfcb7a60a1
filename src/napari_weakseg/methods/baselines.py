"""Baselines with the same encoder and decoders: segmentation only, autoencoding, mean teacher."""

from __future__ import annotations

import copy

import torch
from torch.nn import functional as F

from ..models.translation import Decoder, Encoder
from .base import Method, l1
from .config import MethodConfig


class SegOnly(Method):
    """Encoder + one decoder trained with soft Dice on the annotated slices only."""

    name = "seg-only"
    description = "supervised baseline: annotated slices only"
    sampling = "annotated"
    needs_absence = False

    def __init__(self, cfg: MethodConfig):
        super().__init__(cfg)
        net = cfg.net
        self.encoder = Encoder(net)
        self.dec_segment = Decoder(net, net.code_channels, net.in_channels, norm="layer", short_skips=False, n_classes=net.n_classes)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        code, skips = self.encoder(x)
        return self.dec_segment(code, skips, "segment")

    def forward(self, batch: dict, phase: str) -> dict:
        seg = self.segmentation_loss(self.logits(batch["P"]), batch)
        return {"loss": seg, "seg": seg.detach()}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"prob": torch.sigmoid(self.logits(x))}


class _PairedBaseline(SegOnly):
    """A seg-only network that also learns from the unannotated presence and absence slices."""

    sampling = "pairs"
    needs_absence = True  # pairs sampling draws absence slices


class AutoEncoding(_PairedBaseline):
    """Plus a reconstruction decoder without long skips: L1 on presence and absence slices."""

    name = "ae"
    description = "segmentation + autoencoding of all tagged slices"

    def __init__(self, cfg: MethodConfig):
        super().__init__(cfg)
        self.dec_reconstruct = Decoder(cfg.net, cfg.net.code_channels, cfg.net.in_channels, norm="layer", long_skips=False)

    def forward(self, batch: dict, phase: str) -> dict:
        x = torch.cat([batch["P"], batch["A"]])
        code, skips = self.encoder(x)
        n = len(batch["P"])
        if self.cfg.absence_as_empty:
            logits = self.dec_segment(code, skips, "segment")
            seg = self.segmentation_loss(logits[:n], batch, logits[n:])
        else:
            seg = self.segmentation_loss(self.dec_segment(code[:n], [s[:n] for s in skips], "segment"), batch)
        rec = l1(self.dec_reconstruct(code), x)
        loss = self.w["seg"] * seg + self.w["rec"] * rec
        return {"loss": loss, "seg": seg.detach(), "rec": rec.detach()}


class MeanTeacher(_PairedBaseline):
    """Student trained with Dice + consistency to an EMA teacher on unlabelled slices."""

    name = "mean-teacher"
    description = "Dice + consistency with an exponential-moving-average teacher"

    def __init__(self, cfg: MethodConfig):
        super().__init__(cfg)
        self.teacher = copy.deepcopy(torch.nn.ModuleDict({"encoder": self.encoder, "dec_segment": self.dec_segment}))
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        code, skips = self.teacher["encoder"](x)
        return self.teacher["dec_segment"](code, skips, "segment")

    def forward(self, batch: dict, phase: str) -> dict:
        absence = self.logits(batch["A"]) if self.cfg.absence_as_empty else None
        seg = self.segmentation_loss(self.logits(batch["P"]), batch, absence)
        unlabelled = torch.cat([batch["P"][~batch["L"]], batch["A"]])
        noise = self.cfg.input_noise
        student = torch.sigmoid(self.logits(unlabelled + noise * torch.randn_like(unlabelled)))
        with torch.no_grad():
            teacher = torch.sigmoid(self.teacher_logits(unlabelled + noise * torch.randn_like(unlabelled)))
        cons = F.mse_loss(student, teacher)
        loss = self.w["seg"] * seg + self.cfg.consistency * cons
        return {"loss": loss, "seg": seg.detach(), "cons": cons.detach()}

    @torch.no_grad()
    def after_step(self) -> None:
        decay = self.cfg.ema_decay
        student = {"encoder": self.encoder, "dec_segment": self.dec_segment}
        for name, module in student.items():
            for t, s in zip(self.teacher[name].parameters(), module.parameters()):
                t.mul_(decay).add_(s.detach(), alpha=1 - decay)
            for t, s in zip(self.teacher[name].buffers(), module.buffers()):
                t.copy_(s)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"prob": torch.sigmoid(self.teacher_logits(x))}
