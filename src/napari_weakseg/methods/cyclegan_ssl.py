"""Semi-supervised segmentation with a CycleGAN between images and masks (Mondal et al.,
*Revisiting CycleGAN for semi-supervised segmentation*).

G_IS: image (C channels) -> class logits (K + 1: background and K lesion classes), softmax.
G_SI: mask (K + 1 channels: one-hot, or G_IS's probabilities) -> image, tanh.
D_S, D_I: pixel discriminators on masks and on images; least-squares losses.

Labelled = annotated presence slices (with their masks, the "real masks"); unlabelled = the
other presence slices and the absence slices, used as plain images.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ..losses.adversarial import lsgan_d_loss, lsgan_g_loss
from ..losses.segmentation import dice_loss
from ..models.cyclegan import PixelDiscriminator, ResnetGenerator
from .base import AdversarialMethod, l1
from .config import MethodConfig

# loss weights, Mondal et al. Eq. (8) and Sec. 3.3: seg = L_gen^S, CE of G_IS on labelled slices (weight 1);
# img = L_gen^I, L2 of G_SI(y) vs the labelled image (lambda_1 = 1); cyc_mask = L_cycle^S, CE y -> G_SI -> G_IS
# (lambda_2 = 0.05); cyc_img = L_cycle^I, L1 x -> G_IS -> G_SI (lambda_3 = 1); adv = both least-squares
# generator terms (lambda_4 = lambda_5 = 1)
PAPER_WEIGHTS = {"seg": 1.0, "img": 1.0, "adv": 1.0, "cyc_img": 1.0, "cyc_mask": 0.05}
# Not in the paper, and off in `paper`: "seg_dice", a soft Dice of G_IS's lesion classes on the
# labelled slices beside the cross-entropy. Cross-entropy weighs every pixel alike, so with small
# lesions the background dominates it; the Dice weighs the lesion as much as the background.
QUICK_SEG_DICE = 1.0


class CycleGanSSL(AdversarialMethod):
    name = "cyclegan-ssl"
    description = "CycleGAN between images and masks: supervised on annotated slices, cycle-consistent on the others"
    sampling = "semi"
    needs_absence = False  # absence slices are welcome (as unlabelled images), not required
    label_masks = True
    outputs = ("prob", "class_prob")  # class_prob only with K > 1 lesion classes (see __init__)

    def __init__(self, cfg: MethodConfig):
        super().__init__(cfg)
        net, ch = cfg.net, cfg.net.in_channels
        self.n_classes = net.n_classes + 1  # background + K lesion classes
        if net.n_classes == 1:
            self.outputs = ("prob",)
        self.g_is = ResnetGenerator(ch, self.n_classes, net)
        self.g_si = ResnetGenerator(self.n_classes, ch, net)
        self.d_s = PixelDiscriminator(self.n_classes, cfg.disc_base)
        self.d_i = PixelDiscriminator(ch, cfg.disc_base)
        self._fakes = None

    @classmethod
    def preset_options(cls, preset: str) -> dict:
        # Mondal et al. weigh their terms as they are (genseg's normalisation to a sum of 1 is not theirs)
        common = {"weights": dict(PAPER_WEIGHTS), "normalise_weights": False, "betas": [0.5, 0.999], "amsgrad": False}
        if preset == "quick":  # ~30 MFLOP per slice and generator pass at 64x64
            return {
                **common,
                "weights": {**PAPER_WEIGHTS, "seg_dice": QUICK_SEG_DICE},
                "net": {"base": 8, "max_channels": 64, "res_blocks": 4},
                "lr": 1e-3,
                "lr_decay_start": 0.0,
                "disc_base": 16,
            }
        # ngf 64, 9 residual blocks (CycleGAN's 256x256 generator), ndf 64, 5 labelled + 5 unlabelled presence;
        # no augmentation (Sec. 4.1: "no data augmentation was performed")
        return {
            **common,
            "net": {"base": 64, "max_channels": 256, "res_blocks": 9},
            "lr": 2e-4,
            "lr_decay_start": 0.5,
            "disc_base": 64,
            "batch_size": 10,
            "annotated_per_batch": 5,
            "augment": False,
        }

    # --- networks -------------------------------------------------------------
    def image_to_logits(self, x: torch.Tensor) -> torch.Tensor:
        """G_IS: x (B, C, H, W) -> logits (B, K+1, H, W)."""
        return self.g_is(x)

    def mask_to_image(self, y: torch.Tensor) -> torch.Tensor:
        """G_SI: one-hot or soft mask (B, K+1, H, W) -> image (B, C, H, W) in (-1, 1)."""
        return torch.tanh(self.g_si(y))

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        """labels (B, H, W) long -> (B, K+1, H, W) float."""
        return F.one_hot(labels, self.n_classes).permute(0, 3, 1, 2).float()

    def phase_parameters(self, phase: str):
        discs = [*self.d_s.parameters(), *self.d_i.parameters()]
        if phase == "discriminator":
            return discs
        return [*self.g_is.parameters(), *self.g_si.parameters()]

    # --- training -------------------------------------------------------------
    def _generator_losses(self, batch: dict) -> dict:
        lab = batch["L"]
        labels = batch["Y"] if "Y" in batch and self.n_classes > 2 else batch["M"].long()  # K = 1: any label > 0
        x_l, y_l = batch["P"][lab], labels[lab, 0]  # (b_l, C, H, W), (b_l, H, W)
        x_u = torch.cat([batch["P"][~lab], batch["A"]])  # (b_u, C, H, W)
        b_l, b_u = len(x_l), len(x_u)
        for p in [*self.d_s.parameters(), *self.d_i.parameters()]:
            p.requires_grad_(False)  # the discriminators only score here: no gradients into them
        try:
            real_s = self.one_hot(y_l)
            x_from_y = self.mask_to_image(real_s) if b_l else x_l  # (b_l, C, H, W); no network call on empty batches
            logits = self.image_to_logits(torch.cat([x_l, x_u, x_from_y]))  # one pass: instance norm is per sample
            logits_l, logits_u, logits_cyc = logits.split([b_l, b_u, b_l])
            s_u = logits_u.softmax(1)  # soft probabilities: what D_S and G_SI see
            zero = logits.sum() * 0.0  # a term missing from this batch; keeps the graph
            terms = {
                "seg": F.cross_entropy(logits_l, y_l) if b_l else zero,
                "img": F.mse_loss(x_from_y, x_l) if b_l else zero,
                "adv": (lsgan_g_loss(self.d_s(s_u)) if b_u else zero) + (lsgan_g_loss(self.d_i(x_from_y)) if b_l else zero),
                "cyc_img": l1(self.mask_to_image(s_u), x_u) if b_u else zero,
                "cyc_mask": F.cross_entropy(logits_cyc, y_l) if b_l else zero,
            }
            if self.w.get("seg_dice", 0.0) > 0:
                terms["seg_dice"] = self._seg_dice(logits_l, real_s, logits_u[b_u - len(batch["A"]) :]) if b_l else zero
        finally:
            for p in [*self.d_s.parameters(), *self.d_i.parameters()]:
                p.requires_grad_(True)
        loss = sum(self.w[k] * v for k, v in terms.items())
        self._fakes = (real_s, s_u.detach(), x_u, x_from_y.detach())
        return {"loss": loss, **{k: v.detach() for k, v in terms.items()}}

    def _seg_dice(self, logits_l: torch.Tensor, real_s: torch.Tensor, logits_a: torch.Tensor) -> torch.Tensor:
        """Soft Dice of the lesion classes (channels 1..K: background would dominate a Dice as it does
        the cross-entropy). logits_l, real_s (b_l, K+1, H, W); logits_a (b_a, K+1, H, W) of absence
        slices, which join as empty masks with ``cfg.absence_as_empty`` (as many as labelled slices)."""
        prob, target = logits_l.softmax(1)[:, 1:], real_s[:, 1:]
        if self.cfg.absence_as_empty and len(logits_a):
            absent = logits_a[: len(prob)].softmax(1)[:, 1:]
            prob, target = torch.cat([prob, absent]), torch.cat([target, torch.zeros_like(absent)])
        return dice_loss(prob, target)

    def _discriminator_losses(self) -> dict:
        real_s, fake_s, real_x, fake_x = self._fakes
        self._fakes = None
        d_s, d_i = self._d_loss(self.d_s, real_s, fake_s), self._d_loss(self.d_i, real_x, fake_x)
        return {"loss": d_s + d_i, "disc_s": d_s.detach(), "disc_i": d_i.detach()}

    @staticmethod
    def _d_loss(disc, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Least squares on real (1) vs fake (0); a batch without one of them teaches nothing (zero)."""
        if len(real) and len(fake):
            return lsgan_d_loss(disc(real), disc(fake))
        return disc(real if len(real) else fake).sum() * 0.0

    # --- inference ------------------------------------------------------------
    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, C, H, W) -> prob (B, 1, H, W) of any lesion (1 - p(background)); with K > 1 lesion
        classes also class_prob (B, K, H, W), channel k - 1 = label k."""
        p = self.image_to_logits(x).softmax(1)
        out = {"prob": 1 - p[:, :1]}
        if self.n_classes > 2:
            out["class_prob"] = p[:, 1:]
        return out
