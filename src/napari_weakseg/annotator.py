"""A simulated annotator: the dock's annotate-train-correct loop with the ground truth in place of a person.

Each round it trains (the first time from scratch with the dock's defaults, then the dock's *Retrain*: warm
start from the last run's best weights, ``RETRAIN_STEPS``), predicts the whole image as *Run model* does,
scores it against the truth, picks the next slice to paint and "corrects" it to the truth, which is then
accepted as an annotation (``Study.accept_masks``, what *Accept as annotation* calls). Training runs in the
dock's background process (:class:`~napari_weakseg.training.worker.TrainingProcess`); nothing here is special
to the benchmark (``weakseg bench effort``), so the same loop can drive a user study.

Strategies for the next slice: ``suggest`` (the top of *Suggest slices to annotate*, which weighs the expected wrong
pixels away from the painted slices, ``SUGGEST_SPREAD``), ``suggest-plain`` (the same unweighed: the dock's list
before that was measured better), ``suggest-spread`` (earlier runs' name for the weighed list, now ``suggest``),
``suggest-wide`` (the list weighed over ``WIDE_SPREAD`` slices instead: a candidate), ``random`` (an
unannotated presence slice drawn at random), ``oracle`` (the unannotated presence slice whose Dice is worst:
the ceiling of any suggestion), ``replay`` (a given order: another run's slices, e.g. for seg-only).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError, WeaksegError
from .study.model import Study, StudyImage, Tag
from .training.dock_defaults import (
    DEFAULT_METHOD,
    DEFAULT_STEPS,
    DEFAULT_THRESHOLD,
    RETRAIN_STEPS,
    SUGGEST_SPREAD,
    WARM_LR,
    dock_train_config,
    study_working_size,
)

STRATEGIES = ("suggest", "suggest-plain", "suggest-spread", "suggest-wide", "random", "oracle", "replay")
WIDE_SPREAD = 8.0  # suggest-wide's: a candidate that weighs the list further from the painted slices (bench effort cpu-wide)
SPREADS = {"suggest": SUGGEST_SPREAD, "suggest-plain": 0.0, "suggest-spread": SUGGEST_SPREAD, "suggest-wide": WIDE_SPREAD}
TOP = 10  # the suggestions' check: the worst-Dice slices among the top TOP suggestions, against chance


@dataclass
class LoopSettings:
    """What the simulated user set in the dock (the defaults: what they get without touching it)."""

    method: str = DEFAULT_METHOD
    steps: int = DEFAULT_STEPS
    retrain_steps: int = RETRAIN_STEPS
    warm_lr: float = WARM_LR  # the retrains' learning-rate factor
    threshold: float = DEFAULT_THRESHOLD
    device: str = "auto"
    seed: int = 0
    overrides: dict = field(default_factory=dict)  # the form's method-config overrides (none by default)
    threads: int = 0  # torch threads of each training process; 0: the dock's choice, the cores free at its start


@dataclass
class Round:
    """One round: the slices painted when it trained, its run, and the model's result on the whole image."""

    painted: list[int]
    run_dir: str
    dice: float  # 3-D Dice of the thresholded probability against the truth, every slice
    dice_unpainted: float  # the same over the slices not painted (what the model adds)
    train_s: float  # wall time of the training process (start to exit)
    predict_s: float
    next_slice: int | None = None  # what the strategy chose to paint after it
    worst_in_top: int = 0  # of the TOP unannotated presence slices with the worst Dice, how many the top TOP suggestions hold
    worst_by_chance: float = 0.0  # how many TOP slices drawn at random would hold
    errors_in_top: int = 0  # of the TOP unannotated presence slices with the most wrong pixels, how many the suggestions hold
    fit_step: int | None = None  # the step best.pt holds (0: a retrain kept its starting weights; TrainConfig.keep_best_fit)

    def to_dict(self) -> dict:
        return asdict(self)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean arrays; 1.0 when both are empty."""
    inter, total = np.logical_and(pred, truth).sum(), pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * inter / total)


def slice_dice(pred: np.ndarray, truth: np.ndarray, axis: int = 0) -> np.ndarray:
    """(n_slices,) Dice per slice along ``axis`` of (Z, Y, X) boolean arrays (1.0 where both are empty)."""
    other = tuple(a for a in range(3) if a != axis)
    inter = np.logical_and(pred, truth).sum(axis=other)
    total = pred.sum(axis=other) + truth.sum(axis=other)
    return np.where(total == 0, 1.0, 2 * inter / np.maximum(total, 1))


def spread_slices(candidates: np.ndarray, k: int) -> list[int]:
    """``k`` of the sorted slice indices ``candidates``, evenly spread (the middle ones of k equal parts):
    where a user starts, one slice per stretch of the lesion."""
    candidates = np.asarray(candidates)
    if k > len(candidates):
        raise InputError(f"{k} slices to paint asked, but only {len(candidates)} presence slice(s)")
    return [int(candidates[int((i + 0.5) * len(candidates) / k)]) for i in range(k)]


def candidates(im: StudyImage) -> np.ndarray:
    """Slices a user could paint next: presence, not yet annotated (what the suggestions rank)."""
    return np.flatnonzero((im.tags == Tag.PRESENCE) & ~im.annotated())


def choose_next(
    strategy: str, im: StudyImage, prob: np.ndarray, truth: np.ndarray, threshold: float, rng: np.random.Generator, order=()
) -> int | None:
    """The next slice to paint (None when no presence slice is left unannotated). prob, truth (Z, Y, X)."""
    from .suggest import suggest_slices

    left = candidates(im)
    if not len(left):
        return None
    if strategy in SPREADS:  # the top presence slice of the dock's list (it paints lesions)
        return suggest_slices(im, prob, limit=1, threshold=threshold, spread=SPREADS[strategy])[0][0]
    if strategy == "random":
        return int(rng.choice(left))
    if strategy == "oracle":
        scores = slice_dice(prob >= threshold, truth, im.axis)[left]
        return int(left[np.argmin(scores)])
    if strategy == "replay":
        nxt = [s for s in order if s in set(left.tolist())]
        return int(nxt[0]) if nxt else None
    raise InputError(f"unknown strategy {strategy!r}; use {', '.join(STRATEGIES)}")


def suggestion_check(im: StudyImage, prob: np.ndarray, truth: np.ndarray, threshold: float) -> tuple[int, float, int]:
    """(of the TOP worst-Dice unannotated presence slices, how many the top TOP suggestions hold; how many TOP
    random ones would; of the TOP with the most wrong pixels, how many the suggestions hold). prob, truth (Z, Y, X)."""
    from .suggest import suggest_slices

    left = candidates(im)
    if not len(left):
        return 0, 0.0, 0
    k = min(TOP, len(left))
    pred = prob >= threshold
    other = tuple(a for a in range(3) if a != im.axis)
    scores = slice_dice(pred, truth, im.axis)[left]
    errors = (pred != truth).sum(axis=other)[left]
    worst = set(left[np.argsort(scores, kind="stable")[:k]].tolist())
    most = set(left[np.argsort(-errors, kind="stable")[:k]].tolist())
    top = {s for s, _ in suggest_slices(im, prob, k, threshold)}
    return len(worst & top), k * k / len(left), len(most & top)


def train_like_the_dock(study_folder: Path, run_dir: Path, config: dict, init_weights: Path | None = None) -> float:
    """One training run in the dock's background process; waits for it. Returns its wall time (s)."""
    from .training.events import Failed, Finished
    from .training.worker import JobSpec, TrainingProcess

    spec = JobSpec(str(study_folder), str(run_dir), config, init_weights=str(init_weights) if init_weights else None)
    spec.started_from = str(init_weights.parent) if init_weights else None
    job = TrainingProcess(spec)
    t0 = time.perf_counter()
    job.start()
    try:
        while True:
            for event in job.poll():
                if isinstance(event, Failed):
                    raise WeaksegError(f"training failed: {event.message}")
                if isinstance(event, Finished):
                    job.join(30)
                    return time.perf_counter() - t0
            if not job.alive and not job.events.qsize():
                raise WeaksegError(f"the training process ended unexpectedly (exit code {job.process.exitcode})")
            time.sleep(0.2)
    finally:
        job.kill()


class SimulatedAnnotator:
    """The loop on image ``image`` of the study saved in ``folder``; ``truth`` (Z, Y, X) its full lesion mask
    (on the image's grid, slices along its axis). The study's tags are the user's; its masks grow by a slice
    per round. ``rounds`` holds every round so far; ``last_run`` the model the next round starts from."""

    def __init__(self, folder: str | Path, truth: np.ndarray, settings: LoopSettings | None = None, image: int = 0):
        from .study.folder import load_study

        self.folder = Path(folder)
        self.study: Study = load_study(self.folder)
        self.index = image
        self.truth = np.asarray(truth) > 0
        if self.truth.shape != self.image.volume.shape:
            raise InputError(f"the truth's shape {self.truth.shape} differs from the image's {self.image.volume.shape}")
        self.settings = settings or LoopSettings()
        self.rounds: list[Round] = []
        self.last_run: Path | None = None

    @property
    def image(self) -> StudyImage:
        return self.study.images[self.index]

    def painted(self) -> list[int]:
        return [int(s) for s in np.flatnonzero(self.image.annotated())]

    def paint(self, slices) -> None:
        """Correct ``slices`` to the truth and accept them as annotations; the study is saved."""
        from .study.folder import save_study

        im = self.image
        slices = [int(s) for s in slices]
        self.study.accept_masks(self.index, slices, np.moveaxis(self.truth, im.axis, 0)[slices].astype(im.mask.dtype))
        save_study(self.study, self.folder)

    def round_config(self) -> dict:
        """The next round's train config, as the dock's form gives it: the input size follows the study's slices
        (``dock_input_size``, what the form shows when the study opens) unless the overrides set one."""
        s = self.settings
        steps = s.steps if self.last_run is None else s.retrain_steps
        overrides = {"input_size": study_working_size(self.study, s.method), **s.overrides}
        n = self.study.counts()["annotated"]
        config = dock_train_config(n, s.method, steps, device=s.device, seed=s.seed, overrides=overrides, warm_lr=s.warm_lr)
        return {**config, "threads": s.threads} if s.threads else config

    def train_round(self) -> Round:
        """Train (Train at first, then Retrain), predict the image, score it."""
        from .inference import TrainedModel
        from .training.checkpoint import read_run_info
        from .training.trainer import resolve_device

        config = self.round_config()
        s = self.settings
        run_dir = self.folder / "runs" / f"{s.method}-round{len(self.rounds):02d}"
        init = None
        if self.last_run is not None:
            init = self.last_run / "best.pt" if (self.last_run / "best.pt").is_file() else self.last_run / "last.pt"
        train_s = train_like_the_dock(self.folder, run_dir, config, init)
        self.last_run = run_dir
        fit_step = read_run_info(run_dir).get("state", {}).get("fit_step")
        t0 = time.perf_counter()
        model = TrainedModel.load(run_dir, device=str(resolve_device(s.device)))
        prob = model.predict_image(self.image)["prob"]
        predict_s = time.perf_counter() - t0
        pred = prob >= s.threshold
        painted = self.painted()
        unpainted = np.ones(self.image.n_slices, bool)
        unpainted[painted] = False
        moved_pred, moved_truth = np.moveaxis(pred, self.image.axis, 0), np.moveaxis(self.truth, self.image.axis, 0)
        rnd = Round(
            painted,
            str(run_dir),
            dice(pred, self.truth),
            dice(moved_pred[unpainted], moved_truth[unpainted]),
            train_s,
            predict_s,
            fit_step=fit_step,
        )
        rnd.worst_in_top, rnd.worst_by_chance, rnd.errors_in_top = self.suggestion_check(prob)
        self.rounds.append(rnd)
        self._prob = prob
        return rnd

    def suggestion_check(self, prob: np.ndarray) -> tuple[int, float, int]:
        """Do the suggestions find the failures (issue #17 item 5)? Of the TOP unannotated presence slices with the
        worst Dice, and of the TOP with the most wrong pixels, how many the top TOP suggestions hold; and the number
        expected by chance: (worst-Dice hits, chance, most-errors hits)."""
        return suggestion_check(self.image, prob, self.truth, self.settings.threshold)

    def run(self, strategy: str, rounds: int, order=(), on_round=None) -> list[Round]:
        """Train, then ``rounds`` times: paint the slice ``strategy`` picks and retrain. ``order``: the
        slices of ``replay``. ``on_round(round)`` is called after each round. Returns the rounds."""
        if strategy not in STRATEGIES:
            raise InputError(f"unknown strategy {strategy!r}; use {', '.join(STRATEGIES)}")
        rng = np.random.default_rng(self.settings.seed)
        if not self.rounds:
            self.train_round()
            if on_round:
                on_round(self.rounds[-1])
        for _ in range(rounds):
            nxt = choose_next(strategy, self.image, self._prob, self.truth, self.settings.threshold, rng, order)
            self.rounds[-1].next_slice = nxt
            if nxt is None:
                break
            self.paint([nxt])
            self.train_round()
            if on_round:
                on_round(self.rounds[-1])
        return self.rounds

    def branch(self, folder: str | Path) -> SimulatedAnnotator:
        """A copy of this annotator in a new study folder (its runs along): strategies that share their first
        rounds are trained once. ``folder`` must not exist."""
        import copy
        import shutil

        folder = Path(folder)
        if folder.exists():
            raise InputError(f"{folder} exists; a branch goes to a new folder")
        shutil.copytree(self.folder, folder, ignore=shutil.ignore_patterns(".weakseg-lock*"))
        other = SimulatedAnnotator(folder, self.truth, copy.deepcopy(self.settings), self.index)
        other.rounds = [Round(**r.to_dict()) for r in self.rounds]
        for r in other.rounds:
            r.run_dir = str(folder / Path(r.run_dir).relative_to(self.folder))
        other.last_run = None if self.last_run is None else folder / self.last_run.relative_to(self.folder)
        other._prob = getattr(self, "_prob", None)
        return other
