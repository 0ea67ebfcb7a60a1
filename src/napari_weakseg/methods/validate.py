"""Types and ranges of every method option, checked before any work starts: a bad value is one
InputError that names the option (from ``--config``, the dock, or a saved run.json), never a traceback
from deep inside a network or a silent nonsense run."""

from __future__ import annotations

import math

from ..errors import InputError

NORMS = ("none", "layer", "instance")
BASELINE_DECODERS = ("common", "residual")


def check_number(
    key: str, value, low: float, high: float, *, integer: bool = False, low_open: bool = False, high_open: bool = False
) -> None:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise InputError(f"option {key} must be {'a whole number' if integer else 'a number'}, not {value!r}")
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low) or (high_open and value == high):
        lo, hi = ("(" if low_open else "[") + f"{low:g}", f"{high:g}" + (")" if high_open else "]")
        raise InputError(f"option {key} = {value!r} is out of range {lo}, {hi}")


def _choice(key: str, value, choices: tuple) -> None:
    if value not in choices:
        raise InputError(f"option {key} = {value!r}: choose one of {', '.join(map(str, choices))}")


def check_method_config(cfg) -> None:
    """InputError naming the first option of ``cfg`` (a MethodConfig) with a wrong type or range."""
    net = cfg.net
    for key, value, low, high in (
        ("net.in_channels", net.in_channels, 1, 64),
        ("net.base", net.base, 1, 1024),
        ("net.depth", net.depth, 1, 8),
        ("net.max_channels", net.max_channels, 1, 4096),
        ("net.code_channels", net.code_channels, 1, 4096),
        ("net.unique_channels", net.unique_channels, 0, 4096),
        ("net.n_classes", net.n_classes, 1, 255),
        ("net.res_blocks", net.res_blocks, 0, 32),
        ("net.block_convs", net.block_convs, 1, 2),
        ("net.seg_head_kernel", net.seg_head_kernel, 0, 15),
        ("batch_size", cfg.batch_size, 1, 4096),
        ("annotated_per_batch", cfg.annotated_per_batch, 0, 4096),
        ("disc_base", cfg.disc_base, 1, 1024),
        ("disc_scales", cfg.disc_scales, 1, 6),
        ("disc_layers", cfg.disc_layers, 1, 8),
        ("disc_kernel", cfg.disc_kernel, 1, 15),
        ("disc_max_channels", cfg.disc_max_channels, 1, 4096),
        ("absence_by_position", cfg.absence_by_position, 0, 1000),
    ):
        check_number(key, value, low, high, integer=True)
    for key in ("decoder_kernel", "residual_kernel"):
        value = getattr(net, key)
        check_number(f"net.{key}", value, 1, 15, integer=True)
        if value % 2 == 0:
            raise InputError(f"option net.{key} = {value} must be odd (a centred convolution)")
    if net.seg_head_kernel % 2 == 0 and net.seg_head_kernel:
        raise InputError(f"option net.seg_head_kernel = {net.seg_head_kernel} must be 0 or odd")
    if net.unique_channels >= net.code_channels:
        raise InputError(f"option net.unique_channels ({net.unique_channels}) must be below net.code_channels ({net.code_channels})")
    check_number("net.dropout", net.dropout, 0, 1, high_open=True)
    _choice("net.baseline_decoder", net.baseline_decoder, BASELINE_DECODERS)
    _choice("disc_norm", cfg.disc_norm, NORMS)
    _choice("normalisation", cfg.normalisation, ("percentile", "none"))
    check_number("lr", cfg.lr, 0, 10)  # 0 freezes the weights (tests use it)
    if not isinstance(cfg.betas, (tuple, list)) or len(cfg.betas) != 2:
        raise InputError(f"option betas must be two numbers, e.g. [0.5, 0.999], not {cfg.betas!r}")
    for i, b in enumerate(cfg.betas):
        check_number(f"betas[{i}]", b, 0, 1, high_open=True)
    if cfg.lr_decay_start is not None:
        check_number("lr_decay_start", cfg.lr_decay_start, 0, 1)
    if not isinstance(cfg.weights, dict) or not cfg.weights:
        raise InputError(f"option weights must be an object of loss weights, not {cfg.weights!r}")
    for k, w in cfg.weights.items():
        check_number(f"weights.{k}", w, 0, 1e9)
    if cfg.normalise_weights and sum(cfg.weights.values()) <= 0:
        raise InputError("option weights: with normalise_weights their sum must be above 0")
    for key in ("ema_decay", "input_noise", "consistency"):
        check_number(key, getattr(cfg, key), 0, 1 if key == "ema_decay" else 1e6)
    check_number("threshold", cfg.threshold, 0, 1, low_open=True, high_open=True)
    if cfg.input_size is not None:
        check_number("input_size", cfg.input_size, 8, 4096, integer=True)
        if cfg.input_size % 2**net.depth:
            raise InputError(f"option input_size = {cfg.input_size} must be a multiple of 2^net.depth = {2**net.depth}")
    check_number("train_crop", cfg.train_crop, 0, 4096, integer=True)
    if cfg.train_crop % 2**net.depth:
        raise InputError(f"option train_crop = {cfg.train_crop} must be a multiple of 2^net.depth = {2**net.depth}")
    for key in ("amsgrad", "normalise_weights", "augment", "absence_as_empty", "clip_inputs", "flip_halves"):
        if not isinstance(getattr(cfg, key), bool):
            raise InputError(f"option {key} must be true or false, not {getattr(cfg, key)!r}")
    for key in ("spectral_norm", "image_tanh"):
        if not isinstance(getattr(net, key), bool):
            raise InputError(f"option net.{key} must be true or false, not {getattr(net, key)!r}")
    if not isinstance(cfg.pseudo_label, dict):
        raise InputError(f"option pseudo_label must be an object, not {cfg.pseudo_label!r}")
