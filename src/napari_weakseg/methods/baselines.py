"""Baselines with the same encoder and decoders: segmentation only, autoencoding, mean teacher.

The segmentation decoder's layout is ``net.baseline_decoder``: "common" (short skips, ``decoder_kernel``) is
Vorontsov et al.'s Table I caption ("the decoder refers to the common decoder in the proposed method and
all decoders in the baseline methods") and the authors' code (veugene/genseg, e.g.
model/configs/brats_2017/ae_seg/ae_004_sc.py), the ``paper`` setting; "residual" (no short skips,
``residual_kernel``) is Sec. IV-A's "the proposed method with only the segmentation loss, using only the
residual decoder", the ``quick`` setting (with short skips seg-only no longer fits the phantom in 120 steps
at lr 1e-2: tests/test_training.py). Each baseline carries its own published
loss weights (Sec. IV-B) in both presets, and in ``paper`` no spectral norm (the authors' baseline
configurations do not use it; the paper applies it to the proposed model).
"""

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
        layout = {"common": {}, "residual": {"short_skips": False, "kernel": net.residual_kernel}}[net.baseline_decoder]
        self.dec_segment = Decoder(net, net.code_channels, net.in_channels, norm="layer", n_classes=net.n_classes, **layout)

    weights = {"seg": 1.0}  # Sec. IV-B: segmentation weight 1

    @classmethod
    def preset_options(cls, preset: str) -> dict:
        options = {"weights": dict(cls.weights), "normalise_weights": False}  # genseg's normalisation is its own
        if preset == "paper":
            options["net"] = {"spectral_norm": False}
        return options

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
    weights = {"seg": 1.0, "rec": 1.0}  # Sec. IV-B: "AE: λrec = λseg = 1"

    def __init__(self, cfg: MethodConfig):
        super().__init__(cfg)
        self.dec_reconstruct = Decoder(
            cfg.net, cfg.net.code_channels, cfg.net.in_channels, norm="layer", long_skips=False, tanh=cfg.net.image_tanh
        )

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

    @classmethod
    def preset_options(cls, preset: str) -> dict:
        # Sec. IV-B: EMA 0.99 (constant), consistency weight 0.01 against a segmentation weight of 1
        return {**super().preset_options(preset), "ema_decay": 0.99, "consistency": 0.01}

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
            for t, s in zip(self.teacher[name].parameters(), module.parameters(), strict=True):
                t.mul_(decay).add_(s.detach(), alpha=1 - decay)
            for t, s in zip(self.teacher[name].buffers(), module.buffers(), strict=True):
                t.copy_(s)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"prob": torch.sigmoid(self.teacher_logits(x))}
