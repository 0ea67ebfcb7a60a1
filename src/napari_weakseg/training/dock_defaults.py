"""What the training dock does when the user changes nothing: one source for the dock and for the simulated
annotator (``napari_weakseg.annotator``), so that the effort benchmark measures the loop users get.

No torch here: the dock builds its form from it.
"""

from __future__ import annotations

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
