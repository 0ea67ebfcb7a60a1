"""Pseudo labels without pixel annotation (Wang et al., *Annotation-efficient learning for medical image
segmentation based on noisy pseudo labels and adversarial learning*): the Trainer-driven stage.

A CycleGAN between the study's presence slices x and auxiliary masks m (a shape prior, unpaired):
G_A: x -> pseudo label y (sigmoid), G_B: m -> image (tanh); PatchGANs D_A (images) and D_B (masks);
least-squares losses; cycle weight 10, adversarial 1. Plus a mask VAE, pre-trained on the auxiliary
masks in :meth:`prepare` and frozen, whose latent means feed D_VAE (real masks vs G_A's outputs), and
DGCC: D_B's features calibrate G_A's decoder channels for T turns. Selection of the pseudo labels and
the noise-robust iterative training run after this stage (``pseudo/``).
"""

from __future__ import annotations

import torch

from ..losses.adversarial import lsgan_d_loss, lsgan_g_loss
from ..models.channel_calibration import ChannelCalibration
from ..models.mask_vae import LatentDiscriminator, MaskVAE, freeze, pretrain_vae
from ..models.patchgan import PatchGAN
from ..models.res_unet import ResUNet
from ..pseudo.config import PAPER_PSEUDO_LABEL, PseudoLabelConfig
from .base import AdversarialMethod, l1
from .config import MethodConfig


class PseudoLabel(AdversarialMethod):
    name = "pseudo-label"
    description = "no pixel annotation: CycleGAN between slices and auxiliary masks, VAE discriminator, DGCC"
    sampling = "presence"  # presence slices only: every auxiliary mask holds a lesion
    needs_absence = False
    needs_annotations = False
    trains_on_crops = False  # the shape prior is drawn at the slice size
    outputs = ("prob", "score_disc", "score_vae")  # the scores are per slice, (B,)

    def __init__(self, cfg: MethodConfig):
        super().__init__(cfg)
        self.pl = pl = PseudoLabelConfig.from_dict(cfg.pseudo_label)
        net, ch = cfg.net, cfg.net.in_channels
        self._unet = unet = {"base": net.base, "depth": net.depth, "max_channels": net.max_channels, "res_blocks": pl.res_blocks}
        self.gen_mask = ResUNet(ch, 1, **unet)  # G_A: image -> mask logits
        self.gen_image = ResUNet(1, ch, **unet)  # G_B: mask -> image (tanh)
        self.disc_image = PatchGAN(ch, cfg.disc_base, pl.patch_layers)  # D_A
        self.disc_mask = PatchGAN(1, cfg.disc_base, pl.patch_layers)  # D_B
        self.dgcc = ChannelCalibration(self.disc_mask.feature_channels, self.gen_mask.decoder_widths) if pl.use_dgcc else None
        self.vae = MaskVAE(pl.vae_latent, pl.vae_size, pl.vae_base)
        freeze(self.vae)  # trained only by pretrain_vae, never by a phase's optimiser
        self.disc_latent = LatentDiscriminator(pl.vae_latent, pl.latent_hidden) if pl.use_vae_disc else None  # D_VAE
        self.segmenter = ResUNet(ch, 1, **unet)  # trained on the selected pseudo labels (pseudo/iterate.py)
        self.register_buffer("vae_ready", torch.zeros((), dtype=torch.bool))
        self.register_buffer("segmenter_ready", torch.zeros((), dtype=torch.bool))
        self.aux: torch.Tensor | None = None  # (N, 1, H, W) auxiliary masks, on the CPU
        self._fakes = None

    @classmethod
    def preset_options(cls, preset: str) -> dict:
        if preset != "paper":
            return {}
        # Sec. III-A: Adam (not AMSGrad), lr 5e-6 for 50 epochs then linear decay to 0 over 100 more (decay
        # from 1/3 of the run); U-Net generator with 64 channels doubling per down-sampling (four levels:
        # 64 ... 1024), 64-channel PatchGANs
        return {
            "amsgrad": False,
            "lr": 5e-6,
            "lr_decay_start": 1 / 3,
            "disc_base": 64,
            "net": {"base": 64, "depth": 4, "max_channels": 1024},
            "pseudo_label": dict(PAPER_PSEUDO_LABEL),
        }

    # --- set-up -------------------------------------------------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()  # frozen: always in eval mode
        return self

    def set_aux(self, aux: torch.Tensor) -> None:
        self.aux = aux

    def aux_spec(self, pixel_mm: float | None = None) -> dict:
        """The auxiliary masks to hand to ``prepare`` (made by ``data.shape_prior.prior_masks``): the files of
        ``aux_masks`` if set, else ``aux_count`` ellipses of the shape model at the configured pixel size, else
        ``pixel_mm``, else 1 mm."""
        pl = self.pl
        return {
            "files": pl.aux_masks,
            "count": pl.aux_count,
            "pixel_mm": pl.pixel_mm or pixel_mm or 1.0,
            "prior": pl.ellipse_prior(),
            "seed": pl.aux_seed,
        }

    def prepare(self, slices, pixel_mm: float | None = None, aux: torch.Tensor | None = None) -> None:
        """``aux`` (N, 1, H, W): the auxiliary masks of ``aux_spec`` at the slices' size; pre-trains (then freezes)
        the VAE unless a checkpoint already did."""
        if aux is None:
            raise ValueError("pseudo-label needs its auxiliary masks (aux_spec, made by data.shape_prior.prior_masks)")
        self.set_aux(aux)
        if self.pl.use_vae_disc and not bool(self.vae_ready):
            self.pretrain_vae()

    def pretrain_vae(self) -> list[float]:
        pl = self.pl
        losses = pretrain_vae(self.vae, self.aux, pl.vae_steps, pl.vae_batch, pl.vae_lr, torch.Generator().manual_seed(pl.aux_seed))
        self.vae_ready.fill_(True)
        return losses

    def new_segmenter(self) -> ResUNet:
        """A freshly initialised network shaped like ``segmenter`` (one per iterative round)."""
        return ResUNet(self.cfg.net.in_channels, 1, **self._unet)

    def aux_batch(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """``n`` random auxiliary masks (n, 1, H, W) on ``like``'s device and size (made now if need be)."""
        if self.aux is None:
            raise ValueError("pseudo-label: no auxiliary masks; prepare() hands them in")
        if self.aux.shape[-2:] != like.shape[-2:]:  # another size (e.g. native slices at scoring): nearest resize
            self.aux = (torch.nn.functional.interpolate(self.aux.float(), size=tuple(like.shape[-2:]), mode="nearest") > 0.5).float()
        return self.aux[torch.randint(len(self.aux), (n,))].to(like.device)

    # --- networks -----------------------------------------------------------------
    def mask_logits(self, x: torch.Tensor) -> torch.Tensor:
        """G_A with DGCC: x (B, C, H, W) -> logits (B, 1, H, W) of the last of T turns. Turn 1 is a plain
        pass; each later turn's decoder is calibrated by D_B's features of the previous turn's output."""
        logits = self.gen_mask(x)
        if self.dgcc is not None:
            for _ in range(self.pl.dgcc_turns - 1):
                betas = self.dgcc(self.disc_mask.features(torch.sigmoid(logits)))
                logits = self.gen_mask(x, betas)
        return logits

    def latent(self, masks: torch.Tensor) -> torch.Tensor:
        """VAE latent means (B, L) of masks (B, 1, H, W); gradients pass to the masks, not to the frozen VAE."""
        return self.vae.encode(masks)[0]

    def phase_parameters(self, phase: str):
        discs = [self.disc_image, self.disc_mask] + ([self.disc_latent] if self.disc_latent is not None else [])
        gens = [self.gen_mask, self.gen_image] + ([self.dgcc] if self.dgcc is not None else [])
        return [p for m in (discs if phase == "discriminator" else gens) for p in m.parameters()]

    # --- training -----------------------------------------------------------------
    def _generator_losses(self, batch: dict) -> dict:
        x = batch["P"]
        m = self.aux_batch(len(x), x)
        y = torch.sigmoid(self.mask_logits(x))  # pseudo label
        x_fake = torch.tanh(self.gen_image(m))
        x_cyc = torch.tanh(self.gen_image(y))
        m_cyc = torch.sigmoid(self.mask_logits(x_fake))
        adv = lsgan_g_loss(self.disc_mask(y)) + lsgan_g_loss(self.disc_image(x_fake))
        cyc = l1(x_cyc, x) + l1(m_cyc, m)
        loss = self.pl.w_adv * adv + self.pl.w_cycle * cyc
        out = {"adv": adv.detach(), "cyc": cyc.detach()}
        if self.disc_latent is not None:
            vae_adv = lsgan_g_loss(self.disc_latent(self.latent(y)))
            loss = loss + self.pl.w_vae * vae_adv
            out["vae_adv"] = vae_adv.detach()
        self._fakes = (x, m, y.detach(), x_fake.detach())
        return {"loss": loss, **out}

    def _discriminator_losses(self) -> dict:
        x, m, y, x_fake = self._fakes
        self._fakes = None
        d_image = lsgan_d_loss(self.disc_image(x), self.disc_image(x_fake))
        d_mask = lsgan_d_loss(self.disc_mask(m), self.disc_mask(y))
        loss, out = d_image + d_mask, {"d_image": d_image.detach(), "d_mask": d_mask.detach()}
        if self.disc_latent is not None:
            with torch.no_grad():
                z_real, z_fake = self.latent(m), self.latent(y)
            d_latent = lsgan_d_loss(self.disc_latent(z_real), self.disc_latent(z_fake))
            loss = loss + d_latent
            out["d_latent"] = d_latent.detach()
        return {"loss": loss, **out}

    # --- inference ----------------------------------------------------------------
    @torch.no_grad()
    def quality_scores(self, prob: torch.Tensor) -> dict[str, torch.Tensor]:
        """Masks (B, 1, H, W) -> per-slice scores (B,), higher = more like a real mask (LSGAN: real 1, fake 0):
        score_disc, the mean of D_B's patch map; score_vae, D_VAE on the VAE latent mean (NaN without D_VAE)."""
        disc = self.disc_mask(prob).mean(dim=(1, 2, 3))
        if self.disc_latent is None:
            return {"score_disc": disc, "score_vae": torch.full_like(disc, float("nan"))}
        return {"score_disc": disc, "score_vae": self.disc_latent(self.latent(prob))[:, 0]}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, C, H, W) -> prob (B, 1, H, W) (the segmenter's once iterative training has filled it, else
        G_A's pseudo label) and its quality scores score_disc, score_vae (B,)."""
        logits = self.segmenter(x) if bool(self.segmenter_ready) else self.mask_logits(x)
        prob = torch.sigmoid(logits)
        return {"prob": prob, **self.quality_scores(prob)}
