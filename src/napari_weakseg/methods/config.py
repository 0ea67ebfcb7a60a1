"""Method configuration and the ``quick`` / ``paper`` presets."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields

from ..errors import InputError
from ..models.translation import NetConfig
from .validate import check_method_config

# genseg's loss weights, Vorontsov et al. (journal), Sec. IV-B: brain and synthetic data at 1 % annotations,
# relative weights (normalised to sum to 1). The baselines carry their own (methods/baselines.py).
PAPER_WEIGHTS = {"adv": 3.0, "rec": 50.0, "lat": 1.0, "cyc": 50.0, "seg": 0.01}


@dataclass
class MethodConfig:
    """Everything a method needs besides data. JSON-serialisable through :meth:`to_dict`."""

    net: NetConfig = field(default_factory=NetConfig)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    amsgrad: bool = True
    lr_decay_start: float | None = None  # fraction of the run after which the lr decays linearly to 0; None = constant
    weights: dict = field(default_factory=lambda: dict(PAPER_WEIGHTS))
    normalise_weights: bool = False  # divide the loss weights by their sum
    disc_base: int = 32
    disc_scales: int = 3
    disc_layers: int = 3  # stride-2 layers of each scale's patch discriminator
    disc_kernel: int = 3  # Table I: 4
    disc_norm: str = "none"  # Table I: "normalised" (the norm is not named; we use layer norm)
    disc_stem: bool = False  # Table I: a stride-1 conv first, a 1x1 conv last (models/discriminator.py)
    disc_max_channels: int = 256  # Table I: 512
    ema_decay: float = 0.99  # mean teacher
    consistency: float = 0.01  # mean teacher
    input_noise: float = 0.1  # mean teacher: noise so student and teacher differ
    batch_size: int = 8
    annotated_per_batch: int = 2  # annotated presence slices forced into each batch (0 = natural mix)
    input_size: int | None = 64  # slices resized to this square size; None = native (padded)
    augment: bool = True
    threshold: float = 0.5
    clip_inputs: bool = False  # normalised intensities clipped to [-1, 1], the range of tanh image outputs
    normalisation: str = "percentile"  # per channel, 1st / 99th percentile -> -1 / 1; "none": as stored
    absence_as_empty: bool = False  # absence slices join the Dice as annotated empty masks (known negatives)
    absence_by_position: int = 0  # > 0: draw absence slices by a histogram of this many bins of the presence
    # slices' positions along the slicing axis (Vorontsov et al. Sec. IV-E, liver: 20); 0 = uniformly
    flip_halves: bool = False  # split images: mirror half 1 across the cut, so every half-slice has it on one side
    train_crop: int = 0  # > 0: train on random square crops of this size of each (resized or native) row; validation
    # and prediction see whole slices (the networks are fully convolutional). Issue #14 item 5: crops at native
    # resolution (input_size None) against resizing, at the same pixels per step
    pseudo_label: dict = field(default_factory=dict)  # pseudo-label options (pseudo/config.py)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MethodConfig:
        if not isinstance(d, dict) or not isinstance(d.get("net", {}), dict):
            raise InputError(f'a method config is an object of options (with "net" an object), not {type(d).__name__}')
        d = copy.deepcopy(d)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown option(s) in the method config: {', '.join(sorted(unknown))}")
        net = d.pop("net", {})
        net_known = {f.name for f in fields(NetConfig)}
        if set(net) - net_known:
            raise InputError(f"unknown network option(s): {', '.join(sorted(set(net) - net_known))}")
        if isinstance(d.get("betas"), list):
            d["betas"] = tuple(d["betas"])
        if "decoder_kernel" in net and "residual_kernel" not in net:  # saved before the two kernels were separate
            net["residual_kernel"] = net["decoder_kernel"]
        try:
            cfg = cls(net=NetConfig(**net), **d)
        except TypeError as exc:  # e.g. "net": 5
            raise InputError(f"the method config is malformed ({exc})") from None
        check_method_config(cfg)
        return cfg

    def loss_weights(self) -> dict:
        if not self.normalise_weights:
            return dict(self.weights)
        total = sum(self.weights.values())
        return {k: v / total for k, v in self.weights.items()}


def preset(name: str, in_channels: int = 1) -> MethodConfig:
    """``quick``: a small network that trains usefully on a 2-core CPU in minutes.
    ``paper``: the published architecture and loss weights of genseg (Vorontsov et al., journal, Sec. IV-B and
    Table I), for GPUs. Each method adds its own settings on top (``Method.preset_options``)."""
    if name == "quick":
        # 3x3 decoder kernels (paper: 5x5) and narrow layers: ~1 GFLOP per slice pair and step
        net = NetConfig(
            in_channels=in_channels,
            base=8,
            depth=3,
            max_channels=64,
            code_channels=32,
            unique_channels=8,
            decoder_kernel=3,
            residual_kernel=3,
        )
        weights = {"adv": 1.0, "rec": 10.0, "lat": 1.0, "cyc": 10.0, "seg": 10.0}
        # the absence tags are known negatives: no lesions predicted on slices the user called healthy
        return MethodConfig(net=net, weights=weights, lr=1e-3, disc_base=16, batch_size=8, input_size=64, absence_as_empty=True)
    if name == "paper":
        # Table I: one NRC block (norm, ReLU, conv) per level; common decoder 3x3 with short skips, residual decoder
        # 5x5 without; 512-channel code, 128 of it unique. The authors' code: a 7x7 conv before the classifier.
        net = NetConfig(
            in_channels=in_channels,
            base=32,
            depth=4,
            max_channels=512,
            code_channels=512,
            unique_channels=128,
            decoder_kernel=3,
            residual_kernel=5,
            block_convs=1,
            seg_head_kernel=7,
            image_tanh=True,
            baseline_decoder="common",
        )
        # Sec. IV-B: AMSGrad, lr 0.0001, betas (0.5, 0.999), batch 20, weights normalised to sum to 1,
        # annotated slices mixed into batches as they come (no fixed number per batch)
        # Table I discriminator at each of 3 scales: C 64 (4x4), NRC 64 / 128 / 256 / 512 (4x4, stride 2), C 1 (1x1)
        disc = {"disc_base": 64, "disc_layers": 4, "disc_kernel": 4, "disc_norm": "layer", "disc_stem": True, "disc_max_channels": 512}
        # the authors' code: tanh on the image outputs, inputs in [-1, 1]
        return MethodConfig(
            net=net,
            weights=dict(PAPER_WEIGHTS),
            normalise_weights=True,
            lr=1e-4,
            amsgrad=True,
            batch_size=20,
            annotated_per_batch=0,
            input_size=None,
            clip_inputs=True,
            **disc,
        )
    raise InputError(f"unknown preset {name!r}; use quick or paper")


def with_options(base: MethodConfig, options: dict) -> MethodConfig:
    """A preset with a method's own settings: top-level options replace the preset's (a
    ``weights`` dict replaces all weights), ``net`` options are merged into its ``net``."""
    d = base.to_dict()
    d.update({k: v for k, v in options.items() if k != "net"})
    d["net"].update(options.get("net", {}))
    return MethodConfig.from_dict(d)


def merge_options(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` on top; an option that is an object in both (``net``, ``weights``,
    ``pseudo_label``) is merged one level deep instead of replaced."""
    d = dict(base)
    for key, value in overrides.items():
        d[key] = {**d[key], **value} if isinstance(value, dict) and isinstance(d.get(key), dict) else value
    return d


def merge(base: MethodConfig, overrides: dict) -> MethodConfig:
    """Apply nested overrides (e.g. from ``--config FILE.json``) to a preset."""
    return MethodConfig.from_dict(merge_options(base.to_dict(), overrides))
