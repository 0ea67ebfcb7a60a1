"""What the annotation-effort benchmark runs (``EffortProfile``, the named profiles, the curves' plan): read by
the suite (``effort.py``) and its report (``effort_report.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..training.dock_defaults import DEFAULT_METHOD, DEFAULT_STEPS, RETRAIN_STEPS, WARM_LR


@dataclass
class EffortProfile:
    cases: int = 4  # the first N volumes (by name)
    start: int = 1  # painted slices before the first training
    rounds: int = 4  # correct-and-retrain rounds after it (one more painted slice each)
    method: str = DEFAULT_METHOD  # the dock's default
    baseline: str = "seg-only"
    alternative: str | None = "ae"  # the best-scoring alternative of the BraTS suite (docs/bench/brats-cpu: ae 0.683)
    strategies: tuple[str, ...] = ("suggest", "random", "oracle")
    halves: bool = False  # tag hemispheres (``study create --halves``) instead of whole slices
    seeds: tuple[int, ...] = (0,)  # every curve once per seed (training and the random slices)
    steps: int = DEFAULT_STEPS  # the dock's Train and Retrain steps (other values: experiments, tests)
    retrain_steps: int = RETRAIN_STEPS
    warm_lr: float = WARM_LR  # the retrains' learning-rate factor (``TrainConfig.warm_lr``)
    overrides: dict = field(default_factory=dict)  # method-config overrides for every method (the dock's form; none by default)


PROFILES = {
    # 4 volumes, 1 to 5 painted slices: 13 default-method rounds and 5 each for seg-only and ae per volume
    "cpu": EffortProfile(),
    # the two targets' curves (and seg-only's, the gap) over seeds: 3 volumes x 2 seeds, about 70 min
    "cpu-seeds": EffortProfile(cases=3, alternative=None, strategies=("suggest", "random"), seeds=(0, 1)),
    # the dock's suggestions (weighed away from painted slices) against the plain ones and random
    "cpu-spread": EffortProfile(cases=3, alternative=None, strategies=("suggest", "suggest-plain", "random"), seeds=(0, 1)),
    # the same in one seed (about 60 min), the retrains at 0.3x the learning rate: read beside cpu-seeds' seed 0 (1x)
    "cpu-warm": EffortProfile(cases=3, alternative=None, strategies=("suggest", "suggest-plain", "random"), warm_lr=0.3),
    # the dock's loop at a 96x96 working size (quick: 64x64, which caps pat0005's Dice at 0.946): 3 volumes x 2 seeds
    "cpu-96": EffortProfile(cases=3, alternative=None, strategies=("suggest", "random"), seeds=(0, 1), overrides={"input_size": 96}),
    # a wider weighing of the suggestions (WIDE_SPREAD 8 slices against 3), beside the dock's list and random, at the
    # dock's working size: 3 volumes x 2 seeds, about 100 min
    "cpu-wide": EffortProfile(cases=3, alternative=None, strategies=("suggest", "suggest-wide", "random"), seeds=(0, 1)),
    # the same loop on hemispheres (issue #21 via #14: each half-slice tagged on its own, as ``study create --halves``;
    # the annotator still paints whole slices, training draws half-slices): 3 volumes x 2 seeds, read beside cpu-wide's
    "cpu-halves": EffortProfile(cases=3, alternative=None, strategies=("suggest", "random"), seeds=(0, 1), halves=True),
    "gpu": EffortProfile(cases=6, rounds=9, seeds=(0, 1, 2)),
}
THRESHOLDS = (0.85, 0.90)


def plan(prof: EffortProfile) -> list[tuple[str, str]]:
    """(method, strategy) curves per volume, in the order they run (the product's comparison first)."""
    first = [(prof.method, "suggest"), (prof.baseline, "replay")] + ([(prof.alternative, "replay")] if prof.alternative else [])
    return first + [(prof.method, s) for s in prof.strategies if s != "suggest"]


def settings_profile(settings: dict) -> EffortProfile:
    """The profile a results.json was run with (one written before ``seeds`` has ``seed``; one written before
    ``warm_lr`` retrained at the full learning rate)."""
    st = {"warm_lr": 1.0} | {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    if "seed" in st:
        st["seeds"] = (st.pop("seed"),)
    return EffortProfile(**st)
