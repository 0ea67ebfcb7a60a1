"""Options of the ``pseudo-label`` method, stored as ``MethodConfig.pseudo_label`` (a plain dict, merged
into the preset like ``weights``) and read through :class:`PseudoLabelConfig`, which checks the keys."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import InputError


@dataclass
class EllipsePrior:
    """Ranges (low, high), each drawn uniformly.

    size_mm:   length of the major axis (the largest diameter), in mm; of the minor axis with ``size_axis`` "minor"
    aspect:    minor / major axis length, in (0, 1]
    angle_deg: angle of the major axis from the image x axis (columns) towards y (rows)
    centre:    centre as a fraction of the image height and width (the same range for both)
    count:     ellipses per mask (their union), inclusive range
    """

    size_mm: tuple[float, float] = (8.0, 40.0)
    aspect: tuple[float, float] = (0.5, 1.0)
    angle_deg: tuple[float, float] = (0.0, 180.0)
    centre: tuple[float, float] = (0.25, 0.75)
    count: tuple[int, int] = (1, 1)
    size_axis: str = "major"  # which axis size_mm measures (Wang et al. give the minor axis, Sec. IV-B)

    def check(self) -> None:
        for name in ("size_mm", "aspect", "angle_deg", "centre", "count"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise InputError(f"ellipse prior {name}: the low end {lo} is above the high end {hi}")
        if self.size_mm[0] <= 0 or not 0 < self.aspect[0] <= self.aspect[1] <= 1 or self.count[0] < 1:
            raise InputError("ellipse prior: sizes must be > 0, aspect ratios in (0, 1], count >= 1")
        if self.size_axis not in ("major", "minor"):
            raise InputError(f"ellipse prior size_axis must be major or minor, not {self.size_axis!r}")


SCORES = ("disc", "vae", "mean")


@dataclass
class PseudoLabelConfig:
    # auxiliary masks: a mask folder / NIfTI file, or None for the ellipse shape model
    aux_masks: str | None = None
    aux_count: int = 512
    aux_seed: int = 0
    ellipse_size_mm: tuple[float, float] = (8.0, 40.0)  # major axis length (phantom lesions: ~8-40 mm)
    ellipse_aspect: tuple[float, float] = (0.5, 1.0)
    ellipse_angle_deg: tuple[float, float] = (0.0, 180.0)
    ellipse_centre: tuple[float, float] = (0.25, 0.75)
    ellipse_count: tuple[int, int] = (1, 1)
    ellipse_size_axis: str = "major"  # the axis ellipse_size_mm measures: major, or minor (Wang et al. Sec. IV-B)
    pixel_mm: float | None = None  # pixel size of the (resized) slices; None = from the study
    # networks
    res_blocks: int = 2  # residual blocks at the bottleneck of G_A / G_B
    patch_layers: int = 2  # stride-2 layers of the PatchGANs (3 = the 70x70 PatchGAN)
    # loss weights
    w_adv: float = 1.0
    w_cycle: float = 10.0
    w_vae: float = 1.0
    # VAE-based discriminator
    use_vae_disc: bool = True
    vae_latent: int = 32
    vae_size: int = 32  # masks are resized to this square size for the VAE
    vae_base: int = 16
    vae_steps: int = 300  # pre-training steps (batch vae_batch, Adam vae_lr), before the GAN steps
    vae_batch: int = 32
    vae_lr: float = 1e-3
    latent_hidden: int = 64  # width of D_VAE's hidden layers
    # discriminator-guided channel calibration
    use_dgcc: bool = True
    dgcc_turns: int = 2  # T: turn 1 is a plain G_A pass
    # selection and iterative training (outside the Trainer, pseudo/iterate.py)
    selection: bool = True
    selection_score: str = "disc"  # disc (mean of D_B's patch map), vae (D_VAE on the latent code) or mean of both
    selection_keep: float = 75.0  # % of the pseudo labels kept, the best-scoring (Wang et al. Eq. (9): 75)
    rounds: int = 3  # K; 0 = no iterative training
    round_steps: int = 200
    weighted_dice: bool = True

    @classmethod
    def from_dict(cls, d: dict | None) -> PseudoLabelConfig:
        d = dict(d or {})
        if "selection_percentile" in d:  # saved before selection_keep: kept the scores >= that percentile
            d.setdefault("selection_keep", 100.0 - d.pop("selection_percentile"))
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown pseudo_label option(s): {', '.join(sorted(unknown))}")
        for name in ("ellipse_size_mm", "ellipse_aspect", "ellipse_angle_deg", "ellipse_centre", "ellipse_count"):
            if name in d:
                d[name] = tuple(d[name])
        cfg = cls(**d)
        if cfg.selection_score not in SCORES:
            raise InputError(f"pseudo_label selection_score must be one of {', '.join(SCORES)}")
        if cfg.selection_score in ("vae", "mean") and not cfg.use_vae_disc:
            raise InputError("pseudo_label selection_score vae/mean needs use_vae_disc")
        if not 0 < cfg.selection_keep <= 100:
            raise InputError("pseudo_label selection_keep (the % of pseudo labels kept) must be in (0, 100]")
        if cfg.dgcc_turns < 1 or cfg.rounds < 0 or cfg.vae_size % 8:
            raise InputError("pseudo_label: dgcc_turns >= 1, rounds >= 0, vae_size a multiple of 8")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)

    def ellipse_prior(self) -> EllipsePrior:
        ranges = (self.ellipse_size_mm, self.ellipse_aspect, self.ellipse_angle_deg, self.ellipse_centre, self.ellipse_count)
        return EllipsePrior(*ranges, self.ellipse_size_axis)


# the paper preset (Wang et al., Sec. III-A): six residual blocks at the U-Net's bottleneck, 70x70 PatchGANs
# (three stride-2 layers), VAE latent 32, lambda_cycle 10, lambda_adv 1, lambda_VAE 1 (the defaults above);
# the VAE's input size and pre-training length are not given in the paper (ours)
PAPER_PSEUDO_LABEL = {
    "res_blocks": 6,
    "patch_layers": 3,
    "vae_latent": 32,
    "w_cycle": 10.0,
    "w_adv": 1.0,
    "w_vae": 1.0,
    "vae_size": 64,
    "vae_base": 32,
    "vae_steps": 2000,
    "latent_hidden": 256,
    "round_steps": 2000,
}
