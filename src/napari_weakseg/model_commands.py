"""``weakseg train`` and ``weakseg predict``: the Trainer and inference from a terminal."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .errors import InputError, WeaksegError
from .log import LOGGER
from .training.dock_defaults import WARM_LR
from .training.step_options import COMPILE_MODES, PRECISIONS
from .training.validation_default import MIN_ANNOTATED_FOR_VALIDATION, default_val_fraction


def read_config(path: Path | None) -> dict:
    """Method-config overrides from ``--config FILE.json`` ({} without one)."""
    if not path:
        return {}
    try:
        overrides = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable JSON config ({exc})") from None
    if not isinstance(overrides, dict):
        raise InputError(f"{path}: a JSON config is an object of method-config options")
    return overrides


def run_train(args) -> int:
    from .study import load_study
    from .training.events import Failed, kept_note
    from .training.run_setup import per_class_overrides
    from .training.trainer import TrainConfig, Trainer

    overrides = read_config(args.config)
    from .training.checkpoint import has_checkpoint

    if (args.out / "run.json").is_file() and has_checkpoint(args.out) and not args.resume:
        raise InputError(f"{args.out} already holds a run; use --resume to continue it or choose another --out")
    study = load_study(args.study)
    if args.per_class:
        overrides = per_class_overrides(study, args.method, overrides)
    overrides = _working_size(study, args.method, args.preset, overrides)
    val_fraction = default_val_fraction(study.counts()["annotated"]) if args.val_fraction is None else args.val_fraction
    config = TrainConfig(
        method=args.method,
        preset=args.preset,
        steps=args.steps,
        epochs=args.epochs,
        device=args.device,
        seed=args.seed,
        deterministic=args.deterministic,
        val_fraction=val_fraction,
        patience=args.patience,
        overrides=overrides,
        precision=args.precision,
        compile=args.compile,
        threads=args.threads,
        warm_lr=args.warm_lr,
    )
    bar = _ProgressPrinter(quiet=args.quiet)
    trainer = Trainer(study, args.out, config, on_event=bar, resume=args.resume, init_weights=args.init)
    result = trainer.run()
    bar.close()
    if isinstance(result, Failed):
        raise WeaksegError(result.message)
    if trainer.dist.is_main:
        best = f", best validation Dice {result.best_dice:.3f}" if result.best_dice is not None else ""
        kept = f"; {kept_note(result)}" if kept_note(result) else ""
        LOGGER.info(f"{result.reason} at step {result.step}{best}{kept}; run in {result.run_dir}")
    return 0


def _working_size(study, method: str, preset: str, overrides: dict) -> dict:
    """``overrides`` with the working size the dock's form picks for the study's slices (``dock_input_size``:
    ``quick`` on 240x240 slices trains at 96, not 64) unless they set one, so that the CLI and the dock train the
    same model by default; a resume continues its run's own size (``continued_architecture``)."""
    from .methods import method_preset
    from .training.dock_defaults import study_slice_side, study_working_size

    if "input_size" in overrides:
        return overrides
    size = study_working_size(study, method, preset)
    if size == method_preset(method, preset).input_size:
        return overrides
    LOGGER.info(f"working size {size}x{size} for slices of side {study_slice_side(study)} (as the dock; --config input_size to change)")
    return {**overrides, "input_size": size}


class _ProgressPrinter:
    """A tqdm bar on a terminal; one line per 10 % otherwise (logs, CI); nothing with ``quiet``. The run's other
    lines (its start, validations) come from the logger (``log.log_event``)."""

    def __init__(self, quiet: bool = False):
        self.bar = None
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last_decile = -1

    def __call__(self, event) -> None:
        from .training.events import Progress, Started

        if self.quiet:
            return
        if isinstance(event, Started) and self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=event.total_steps, initial=event.resumed_from, unit="step", file=sys.stderr)
        elif isinstance(event, Progress):
            main = {k: v for k, v in event.losses.items() if k.endswith("loss")}
            if self.bar is not None:
                self.bar.update(event.step - self.bar.n)
                self.bar.set_postfix({k: f"{v:.3f}" for k, v in main.items()} | {"pairs/s": f"{event.pairs_per_s:.1f}"})
            elif event.step * 10 // event.total_steps > self.last_decile:
                self.last_decile = event.step * 10 // event.total_steps
                losses = " ".join(f"{k}={v:.3f}" for k, v in main.items())
                print(
                    f"step {event.step}/{event.total_steps} {losses} {event.pairs_per_s:.1f} pairs/s eta {event.eta_s:.0f}s",
                    file=sys.stderr,
                )

    def close(self):
        if self.bar is not None:
            self.bar.close()


def run_predict(args) -> int:
    from .inference import TrainedModel
    from .io.case import load_case
    from .io.dicom import is_dicom_folder, split_series_path
    from .io.image_folder import read_image_folder
    from .io.nifti import is_nifti_path, nifti_stem
    from .io.outputs import class_labels, dicom_series_of, save_segmentation, write_folder_outputs, write_volume_outputs

    model = TrainedModel.load(args.run_dir, which=args.which, device=_device(args.device))
    paths = [p for p in args.image.split(",") if p]
    volume = load_case(paths)
    from .io.modality import check_channel_order

    check_channel_order(model.info.get("study", {}).get("channels", []), volume.channel_names, args.channels_as_given)
    from .io.modality import looks_like_mask

    if looks_like_mask(volume.data):
        print(f"weakseg: warning: {paths[0]} holds only a few whole-number values, like a label mask: is it the image?", file=sys.stderr)
    name = args.name or (nifti_stem(paths[0]) if is_nifti_path(paths[0]) else split_series_path(paths[0])[0].name)
    outputs = model.predict_volume(
        volume.data,
        axis=args.axis,
        lesion_samples=args.lesion_samples,
        split=model.split_for(volume, args.axis) if args.stitch_halves else None,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    threshold = args.threshold if args.threshold is not None else model.config.threshold
    if Path(paths[0]).is_dir() and not is_dicom_folder(paths[0]):
        _, info = read_image_folder(paths[0])
        written = write_folder_outputs(args.out, name, info, outputs, threshold)
    else:
        written = write_volume_outputs(args.out, name, volume, outputs, threshold)
        if dicom_series_of(volume) is not None:  # and a DICOM SEG referring to the series' images
            seg = outputs["prob"] >= threshold
            if seg.any() and "class_prob" in outputs:  # one segment per lesion class, named as the study names them
                names = dict(enumerate(model.info.get("study", {}).get("classes", []), start=1))
                written.append(save_segmentation(args.out / f"{name}_seg.dcm", class_labels(outputs, threshold), volume, names))
            elif seg.any():
                written.append(save_segmentation(args.out / f"{name}_seg.dcm", seg.astype("uint8"), volume))
            else:
                LOGGER.warning("nothing segmented: no DICOM SEG written (a SEG needs at least one labelled pixel)")
    LOGGER.info(f"wrote {len(written)} file(s) to {args.out}")
    return 0


def run_refine(args) -> int:
    from .pseudo.refine import refine_run
    from .study import load_study

    log = LOGGER.info
    path, result = refine_run(args.run_dir, load_study(args.study), which=args.which, device=_device(args.device), seed=args.seed, log=log)
    if result.network is None:
        LOGGER.info("no iterative round ran (rounds = 0); nothing refined")
    else:
        LOGGER.info(f"best round {result.best_round}; weights in {path} (predict with --which refined)")
    return 0


def _device(name: str) -> str:
    from .training.trainer import resolve_device

    return str(resolve_device(name))


def add_parsers(sub) -> None:
    """The train and predict sub-commands (called by cli.build_parser)."""
    train = sub.add_parser("train", help="train a method on a study")
    train.add_argument("study", type=Path, help="study folder")
    train.add_argument("--method", required=True, help="genseg, genseg-sepdec, seg-only, ae, mean-teacher or pseudo-label")
    train.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, metrics.jsonl)")
    train.add_argument(
        "--preset", choices=("quick", "paper"), default="quick", help="quick: small, CPU-friendly; paper: published architecture"
    )
    group = train.add_mutually_exclusive_group()
    group.add_argument("--steps", type=int, help="optimisation steps (default 300)")
    group.add_argument("--epochs", type=int, help="passes over the presence/absence slices")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--deterministic", action="store_true", help="deterministic algorithms (slower)")
    train.add_argument(
        "--val-fraction",
        type=float,
        help="annotated slices held out per image for validation "
        f"(default: 0.2, or 0 with fewer than {MIN_ANNOTATED_FOR_VALIDATION} annotated slices, so that all of them train)",
    )
    train.add_argument("--patience", type=int, default=0, help="stop after this many validations without improvement (0: never)")
    train.add_argument("--config", type=Path, help='JSON with method-config overrides, e.g. {"lr": 5e-4, "net": {"base": 16}}')
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument(
        "--per-class",
        action="store_true",
        help="segment each lesion class of the masks' labels (methods that segment classes: cyclegan-ssl); default: the whole lesion",
    )
    train.add_argument("--init", type=Path, metavar="CHECKPOINT", help="warm start from these weights (e.g. RUN/best.pt)")
    train.add_argument(
        "--warm-lr",
        type=float,
        default=WARM_LR,
        metavar="F",
        help=f"with --init: train at F times the method's learning rate (default {WARM_LR:g}, the dock's Retrain)",
    )
    train.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="arithmetic of the training step: bf16 autocast needs bf16 units (detected), fp16 a CUDA device; "
        "auto: bf16 where the device has bf16 units (measured faster, same Dice), else fp32 on a CPU, fp16 on CUDA "
        "(docs/training.md)",
    )
    train.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        default="auto",
        help="torch.compile the training step (needs a C++ compiler on CPU; falls back to eager with a note)",
    )
    train.add_argument("--threads", type=int, default=0, help="intra-op threads (default 0: OMP_NUM_THREADS, else the cores free at start)")
    train.set_defaults(run=run_train)

    predict = sub.add_parser("predict", help="segment an image with a trained run")
    predict.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="run folder written by weakseg train")
    predict.add_argument("image", help="NIfTI file or folder of 2D images; comma-joined paths = channels")
    predict.add_argument("--out", type=Path, required=True, help="output folder")
    predict.add_argument("--name", help="output name prefix (default: the image's name)")
    predict.add_argument("--threshold", type=float, help="probability threshold for the labels output (default 0.5)")
    predict.add_argument("--axis", type=int, default=0, choices=(0, 1, 2), help="slicing axis (napari order)")
    predict.add_argument(
        "--which", choices=("best", "last", "refined"), default="best", help="checkpoint to use (refined: written by weakseg refine)"
    )
    predict.add_argument("--device", default="auto")
    predict.add_argument("--lesion-samples", action="store_true", help="also write absence->presence samples (genseg)")
    predict.add_argument(
        "--channels-as-given",
        action="store_true",
        help="use the channels in the order given even if their names say other modalities than the model's",
    )
    predict.add_argument(
        "--stitch-halves",
        action="store_true",
        help="a model trained on half-slices: predict each half apart (cut across the left-right axis at the middle of "
        "the foreground) and put them side by side; default: whole slices, which scored better on BraTS",
    )
    predict.set_defaults(run=run_predict)

    refine = sub.add_parser("refine", help="pseudo-label runs: select the best pseudo labels, train the segmenter in rounds")
    refine.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="run folder of weakseg train --method pseudo-label")
    refine.add_argument("study", type=Path, help="the study it was trained on (annotated slices, if any, validate the rounds)")
    refine.add_argument("--which", choices=("best", "last"), default="best", help="checkpoint to start from")
    refine.add_argument("--device", default="auto")
    refine.add_argument("--seed", type=int, default=0)
    refine.set_defaults(run=run_refine)
