"""The one interface every method implements; the Trainer, GUI, CLI and benchmarks use only this.

A training step is, for each phase in ``method.phases``::

    optimizers[phase].zero_grad(); out = method(batch, phase); out["loss"].backward(); optimizers[phase].step()

then ``method.after_step()``. ``batch`` is a dict of tensors:
    "P": (B, C, H, W) presence slices      "A": (B, C, H, W) absence slices
    "M": (B, 1, H, W) masks of the P slices (0/1)   "L": (B,) bool, which P slices are annotated
Methods with ``sampling = "annotated"`` get batches of annotated slices only (all of "L" true);
with ``sampling = "presence"`` presence slices only ("A" then repeats "P").
Before the first step the Trainer calls ``method.prepare(train_slices, pixel_mm)`` once.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import torch
from torch import nn

from ..losses.segmentation import dice_loss
from .config import MethodConfig


class Method(nn.Module, metaclass=ABCMeta):
    name = "method"
    description = ""
    phases: tuple[str, ...] = ("main",)
    sampling = "pairs"  # or "annotated", "presence"
    needs_absence = True  # the study must have absence slices
    needs_annotations = True  # the study must have annotated slices
    outputs: tuple[str, ...] = ("prob",)  # what predict() returns

    def __init__(self, cfg: MethodConfig):
        super().__init__()
        self.cfg = cfg
        self.w = cfg.loss_weights()

    # --- training -------------------------------------------------------------
    @abstractmethod
    def forward(self, batch: dict, phase: str) -> dict:
        """Losses of one phase: a dict with the scalar "loss" to minimise and its terms."""

    def phase_parameters(self, phase: str) -> list[nn.Parameter]:
        """Parameters the optimiser of ``phase`` updates (default: all)."""
        return [p for p in self.parameters() if p.requires_grad]

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            phase: torch.optim.Adam(self.phase_parameters(phase), lr=self.cfg.lr, betas=tuple(self.cfg.betas), amsgrad=self.cfg.amsgrad)
            for phase in self.phases
        }

    def prepare(self, slices, pixel_mm: float | None = None) -> None:
        """Set-up from the training slices (a ``SliceSet``) before the first step, e.g. pre-training a part
        that is then frozen. Called on every start, also on resume after the checkpoint is loaded.
        ``pixel_mm``: in-plane pixel size of the (resized) slices in mm. Default: nothing."""

    def after_step(self) -> None:
        """Called once after all phases of a step (e.g. the mean teacher's EMA update)."""

    def segmentation_loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """Soft Dice on the annotated slices of the batch; logits (B, 1, H, W) for the P slices."""
        annotated = batch["L"]
        if not bool(annotated.any()):
            return logits.sum() * 0.0  # keeps the graph (and DDP) consistent
        return dice_loss(torch.sigmoid(logits[annotated]), batch["M"][annotated])

    # --- inference ------------------------------------------------------------
    @abstractmethod
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, C, H, W) -> {"prob": (B, 1, H, W), ...} in eval mode, no gradients."""

    def sample_lesions(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Absence slices x (B, C, H, W) with synthetic lesions, or None if the method cannot."""
        return None


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().mean()
