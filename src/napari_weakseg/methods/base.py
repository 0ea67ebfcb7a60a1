"""The one interface every method implements; the Trainer, GUI, CLI and benchmarks use only this.

A training step is, for each phase in ``method.phases``::

    optimizers[phase].zero_grad(); out = method(batch, phase); out["loss"].backward(); optimizers[phase].step()

then ``method.after_step()``. The call runs inside ``torch.nn.utils.parametrize.cached()``: a
spectrally normalised weight is computed (one power iteration) once per phase, however many
times the phase calls its network. ``batch`` is a dict of tensors:
    "P": (B, C, H, W) presence slices      "A": (B, C, H, W) absence slices
    "M": (B, 1, H, W) masks of the P slices (0/1)   "L": (B,) bool, which P slices are annotated
    "Y": (B, 1, H, W) long integer labels 0..K of the P slices, only for methods with ``label_masks``
Sampling (what ``PairSampler`` draws): ``"pairs"``: B presence slices (``annotated_per_batch`` of
them annotated) and B absence slices; ``"annotated"``: annotated slices only (all of "L" true), "A"
is "P"; ``"semi"``: as ``"pairs"``, but "A" is empty, (0, C, H, W), when the study has no absence slices.
``"presence"``: presence slices only ("A" then repeats "P").
Before the first step the Trainer calls ``method.prepare(train_slices, pixel_mm, aux)`` once, ``aux`` being
the masks of ``method.aux_spec(pixel_mm)`` (None for methods that need none): a method never reads data sources.
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
    sampling = "pairs"  # or "annotated", "semi", "presence"
    needs_absence = True  # the study must have absence slices
    needs_annotations = True  # the study must have annotated slices
    trains_on_crops = True  # train_crop may cut the batches (False: the method draws something at the slice size)
    label_masks = False  # batches also carry the integer labels "Y" (masks resized nearest-neighbour)
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

    def lr_factor(self, step: int, total: int) -> float:
        """Learning-rate multiplier for ``step`` (0-based) of ``total``; the Trainer applies it to every
        optimiser before the step. Constant 1, or with ``cfg.lr_decay_start`` = f: 1 until step f * total,
        then linear decay to 0 at ``total``."""
        if self.cfg.lr_decay_start is None:
            return 1.0
        start = self.cfg.lr_decay_start * total
        return min(1.0, max(0.0, (total - step) / max(total - start, 1e-9)))

    @classmethod
    def preset_options(cls, preset: str) -> dict:
        """The method's own settings on top of the ``quick``/``paper`` preset (see ``with_options``)."""
        return {}

    def aux_spec(self, pixel_mm: float | None = None) -> dict | None:
        """Auxiliary masks the method needs besides the study (e.g. pseudo-label's unpaired shape prior), as a
        spec for ``data.shape_prior.prior_masks``; the Trainer makes them and hands them to ``prepare`` (a
        method never reads data sources itself). Default: None, nothing needed."""
        return None

    def set_aux(self, aux: torch.Tensor) -> None:
        """Take the auxiliary masks of ``aux_spec`` (N, 1, H, W). Default: nothing (no method needs them)."""

    def prepare(self, slices, pixel_mm: float | None = None, aux: torch.Tensor | None = None) -> None:
        """Set-up from the training slices (a ``SliceSet``) before the first step, e.g. pre-training a part
        that is then frozen. Called on every start, also on resume after the checkpoint is loaded.
        ``pixel_mm``: in-plane pixel size of the (resized) slices in mm; ``aux``: the masks of ``aux_spec``
        (N, 1, H, W) at the slices' size, or None. Default: nothing."""

    def after_step(self) -> None:
        """Called once after all phases of a step (e.g. the mean teacher's EMA update)."""

    def segmentation_loss(self, logits: torch.Tensor, batch: dict, absence_logits: torch.Tensor | None = None) -> torch.Tensor:
        """Soft Dice (pooled) on the annotated slices of the batch; logits (B, 1, H, W) for the P slices.

        With ``cfg.absence_as_empty`` and ``absence_logits`` (B', 1, H, W) of absence slices, those
        slices join the Dice as annotated with an empty mask: the user's absence tags are known
        negatives, so anything predicted there counts as a false positive.
        """
        # as pixel weights (1 on the annotated slices, 0 elsewhere), not by indexing: no data-dependent shapes and
        # no host sync, so the step compiles as one graph (``--compile``); with nothing annotated the loss is 0
        annotated = batch["L"].to(logits.dtype).view(-1, 1, 1, 1)
        prob, target, weight = torch.sigmoid(logits), batch["M"], annotated.expand_as(logits)
        if absence_logits is not None and self.cfg.absence_as_empty:
            # as many negatives as masks (the first of the absence slices): they must not swamp them
            first = (torch.arange(len(absence_logits), device=logits.device) < batch["L"].sum()).to(logits.dtype).view(-1, 1, 1, 1)
            prob = torch.cat([prob, torch.sigmoid(absence_logits)])
            target = torch.cat([target, torch.zeros_like(absence_logits)])
            weight = torch.cat([weight, first.expand_as(absence_logits)])
        return dice_loss(prob, target, weight)

    # --- inference ------------------------------------------------------------
    @abstractmethod
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, C, H, W) -> {"prob": (B, 1, H, W), ...} in eval mode, no gradients."""

    def sample_lesions(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Absence slices x (B, C, H, W) with synthetic lesions, or None if the method cannot."""
        return None


class AdversarialMethod(Method):
    """A method trained as a GAN: a generator phase, then a discriminator phase on the generator's
    (detached) outputs of the same step. Subclasses define ``_generator_losses(batch)``, which keeps
    what the discriminators need, and ``_discriminator_losses()``."""

    phases = ("generator", "discriminator")

    def forward(self, batch: dict, phase: str) -> dict:
        if phase == "discriminator":
            return self._discriminator_losses()
        return self._generator_losses(batch)

    @abstractmethod
    def _generator_losses(self, batch: dict) -> dict: ...

    @abstractmethod
    def _discriminator_losses(self) -> dict: ...


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().mean()
