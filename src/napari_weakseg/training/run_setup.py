"""What a training run is given and the machine it runs on: ``TrainConfig``, the device, seeding, the learning
rate factor and memory accounting (torch, no Qt; used by the Trainer, the CLI, the dock and the benchmarks)."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..errors import InputError
from ..methods.validate import check_number
from .dock_defaults import WARM_LR
from .step_options import COMPILE_MODES, PRECISIONS


@dataclass
class TrainConfig:
    method: str = "genseg"
    preset: str = "quick"
    steps: int | None = None  # total optimisation steps (default: 300, or from epochs)
    epochs: int | None = None
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    val_fraction: float = 0.2
    val_images: list[str] = field(default_factory=list)  # images held out whole for validation (then val_fraction is unused)
    val_every: int = 50
    patience: int = 0  # validations without improvement before stopping; 0 = never
    checkpoint_every: int = 50
    overrides: dict = field(default_factory=dict)  # method-config overrides (e.g. from --config)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (``step_speed.resolve_precision``)
    compile: str = "auto"  # auto | on | off (``step_speed.decide_compile``)
    threads: int = 0  # intra-op threads; 0: the cores free when the run starts (``step_speed.choose_threads``)
    # without a validation split, best.pt is the checkpoint that fits the annotated training slices best (checked
    # every val_every steps and, for a warm start, before the first step): a retrain never ends worse on the
    # user's own masks than where it started (``Trainer._check_fit``). False: best.pt is the last step.
    keep_best_fit: bool = True
    # a warm start (Retrain, ``--init``) trains at this factor of the method's learning rate (a gentler fine-tune
    # below 1; the effort benchmark's cpu-warm profile measured 0.3 against 1: no gain, docs/benchmarks.md)
    warm_lr: float = WARM_LR

    def to_dict(self) -> dict:
        return asdict(self)


def peak_memory_mb(device: torch.device) -> float | None:
    """Peak memory of this process so far: CUDA allocations on a GPU; on a CPU the peak resident set
    (Linux ``VmHWM``, which starts afresh with each program, unlike ``ru_maxrss``, which a child
    process inherits from its parent). None where unknown."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an unavailable device is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda requested, but no CUDA GPU is available")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("device mps requested, but MPS is not available")
    return dev


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    # cuDNN picks the fastest convolution algorithm for each shape it meets (the shapes repeat every step);
    # a deterministic run keeps the default ones
    torch.backends.cudnn.benchmark = not deterministic


def set_lr_factor(optimizers: dict[str, torch.optim.Optimizer], factor: float) -> None:
    """Set every parameter group's learning rate to ``factor`` times its initial one."""
    for opt in optimizers.values():
        for group in opt.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor


def check_train_config(cfg) -> None:
    """InputError naming the first run setting of ``cfg`` (a TrainConfig) with a wrong type or range."""
    for key in ("steps", "epochs"):
        if getattr(cfg, key) is not None:
            check_number(key, getattr(cfg, key), 1, 10**9, integer=True)
    check_number("val_fraction", cfg.val_fraction, 0, 1, high_open=True)
    check_number("warm_lr", cfg.warm_lr, 0, 1, low_open=True)
    if not isinstance(cfg.val_images, list) or not all(isinstance(n, str) for n in cfg.val_images):
        raise InputError(f"val_images: a list of image names, not {cfg.val_images!r}")
    for key, low in (("val_every", 1), ("patience", 0), ("checkpoint_every", 1), ("seed", 0), ("threads", 0)):
        check_number(key, getattr(cfg, key), low, 2**31, integer=True)
    for key, choices in (("precision", PRECISIONS), ("compile", COMPILE_MODES)):
        if getattr(cfg, key) not in choices:
            raise InputError(f"{key} {getattr(cfg, key)!r}: use one of {', '.join(choices)}")
    if not isinstance(cfg.overrides, dict):
        raise InputError(f"the method-config overrides must be an object, not {type(cfg.overrides).__name__}")


def per_class_overrides(study, method: str, overrides: dict | None = None) -> dict:
    """Method-config overrides that train ``method`` per lesion class of ``study`` (net.n_classes = the highest
    mask label, or of the study's named classes); an InputError for a method that segments the whole lesion only,
    or masks of one label."""
    import numpy as np

    from ..methods import METHODS
    from ..methods.config import merge_options

    if method not in METHODS or not METHODS[method].label_masks:
        able = ", ".join(m for m, cls in METHODS.items() if cls.label_masks)
        raise InputError(f"method {method} segments the whole lesion; per lesion class: {able}")
    top = max([int(np.max(im.mask, initial=0)) for im in study.images] + list(study.classes))
    if top < 2:
        raise InputError("the masks hold one lesion label: there is nothing to train per class")
    return merge_options(dict(overrides or {}), {"net": {"n_classes": top}})


def continued_architecture(method_config, run_dir, method: str):
    """``method_config`` with the network (``net``) and working size (``input_size``) of the run in ``run_dir`` when
    that run trained ``method``: a resume or a warm start continues that run's weights, whose shapes are those of
    the network it was built with, not of the preset as it is now (e.g. a run saved before ``quick`` gained its
    3x3 segmentation conv), and whose filters learnt the scale it trained at (e.g. a run at the dock's former
    fixed 64 retrains at 64, not at the 96 the dock now picks for 240x240 slices).
    Unchanged when ``run_dir`` is None or holds no readable run.json of ``method``."""
    from dataclasses import replace

    from ..models.translation import NetConfig
    from .checkpoint import read_run_info

    if run_dir is None:
        return method_config
    try:
        info = read_run_info(run_dir)
    except InputError:
        return method_config
    net = (info.get("method_config") or {}).get("net")
    if info.get("method") != method or not isinstance(net, dict):
        return method_config
    known = NetConfig.__dataclass_fields__
    size = info["method_config"].get("input_size", method_config.input_size)
    net = NetConfig(**{**method_config.net.to_dict(), **{k: v for k, v in net.items() if k in known}})
    return replace(method_config, net=net, input_size=size)
