"""What the training dock does when the user changes nothing: one source for the dock and for the simulated
annotator (``napari_weakseg.annotator``), so that the effort benchmark measures the loop users get.

No torch here: the dock builds its form from it.
"""

from __future__ import annotations

import math

from .validation_default import default_val_fraction

DEFAULT_METHOD = "genseg"  # the first method of the dock's list
DEFAULT_PRESET = "quick"
DEFAULT_STEPS = 100  # quick preset: a short first run; retrain or raise it for more
RETRAIN_STEPS = 100  # Correct and retrain: a warm-started fine-tune of this many steps
WARM_LR = 1.0  # ... at this factor of the learning rate (``TrainConfig.warm_lr``); 0.3 measured no better (bench effort cpu-warm)
# Suggest slices: expected wrong pixels weighed away from the painted slices, by 1 - exp(-d / this) (d in slices);
# bench effort cpu-spread, 3 volumes x 3 seeds: 0.877 against 0.860 unweighed at 5 painted slices (ahead on each seed)
SUGGEST_SPREAD = 3.0
DEFAULT_THRESHOLD = 0.5  # the Outputs box's threshold slider (50 %)
# The quick preset's working size follows the study's slices: at most this downsampling, between the preset's
# size (64) and MAX_WORKING_SIZE. BraTS 240x240: 96, not 64 (bench effort cpu-96: 0.900 against 0.881 at five
# painted slices, 1.65x the time a round); the demo's 96x96 phantom stays at 64. The cap bounds a round's cost
# (a 512x512 CT slice would be 4x the pixels of 64x64 per step) and is not measured on accuracy.
MAX_DOWNSAMPLE = 2.5
MAX_WORKING_SIZE = 128


def study_slice_side(study) -> int | None:
    """The longest in-plane side of the study's slices (pixels), over its images; None without images."""
    sides = [max(n for a, n in enumerate(im.volume.shape) if a != im.axis) for im in study.images]
    return max(sides) if sides else None


def dock_input_size(cfg, slice_side: int | None) -> int | None:
    """The dock's working size for a method config ``cfg`` (its preset's): ``cfg.input_size`` (None: native, e.g. the
    paper preset) raised so that slices of side ``slice_side`` are downsampled at most ``MAX_DOWNSAMPLE`` times, to
    ``MAX_WORKING_SIZE`` at most; a multiple of 2^net.depth. Without a study (``slice_side`` None): the preset's size."""
    preset_size, multiple = cfg.input_size, 2**cfg.net.depth
    if preset_size is None or slice_side is None:
        return preset_size
    needed = math.ceil(slice_side / MAX_DOWNSAMPLE / multiple) * multiple
    cap = MAX_WORKING_SIZE // multiple * multiple
    return max(preset_size, min(needed, cap))


def study_working_size(study, method: str, preset: str | None = None) -> int | None:
    """The working size the dock's form picks for ``method``'s ``preset`` (default: the dock's) on ``study``'s
    slices (``dock_input_size``)."""
    from ..methods import method_preset

    return dock_input_size(method_preset(method, preset or DEFAULT_PRESET), study_slice_side(study))


def dock_train_config(
    n_annotated: int,
    method: str = DEFAULT_METHOD,
    steps: int = DEFAULT_STEPS,
    preset: str = DEFAULT_PRESET,
    device: str = "auto",
    seed: int = 0,
    val_fraction: float | None = None,
    overrides: dict | None = None,
    precision: str = "auto",
    compile: str = "auto",
    warm_lr: float = WARM_LR,
) -> dict:
    """The TrainConfig fields of a dock run: ``val_fraction`` None is the dock's default for ``n_annotated``
    annotated slices (``default_val_fraction``); ``overrides``: method-config overrides (the form's fields);
    ``precision``, ``compile``: the Advanced box's (``training.step_speed``); ``warm_lr``: a retrain's learning-rate factor."""
    return {
        "method": method,
        "preset": preset,
        "steps": steps,
        "device": device,
        "seed": seed,
        "val_fraction": default_val_fraction(n_annotated) if val_fraction is None else val_fraction,
        "overrides": dict(overrides or {}),
        "precision": precision,
        "compile": compile,
        "warm_lr": warm_lr,
    }
