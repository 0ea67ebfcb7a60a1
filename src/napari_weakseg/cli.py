"""The ``weakseg`` command: studies (and, later, training and evaluation) without the GUI.

Errors are one line on stderr and a non-zero exit; warnings are one line each.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from . import __version__
from .errors import WeaksegError
from .log import LOGGER


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _one_line_warning
    from .log import configure_cli

    configure_cli(args.verbose, args.quiet)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except WeaksegError as exc:
        print(f"weakseg: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the output folder cannot be created, disk full
        print(f"weakseg: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("weakseg: interrupted", file=sys.stderr)
        return 130


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line too (sub-commands inherit this class)."""

    def error(self, message):
        self.exit(2, f"weakseg: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="weakseg", description="Annotation-efficient lesion segmentation (napari-weakseg).")
    parser.add_argument("--version", action="version", version=f"napari-weakseg {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more detail on stderr (debug messages)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr (no progress)")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    study = sub.add_parser("study", help="create or inspect a study folder").add_subparsers(title="study commands", metavar="ACTION")
    create = study.add_parser(
        "create",
        help="build a study from images (and masks)",
        description="Build a study folder. Per-image options (--mask, --roi-mask, --name) apply to the --image before them.",
    )
    create.add_argument("out", type=Path, help="new study folder (must not exist or be empty)")
    create.add_argument(
        "--image",
        action=_CaseOption,
        required=True,
        metavar="PATH[,PATH...]",
        help="a NIfTI file, a DICOM series' folder (FOLDER#N: series N of several) or a folder of 2D images; "
        "comma-joined paths are channels of one case; repeat for more cases",
    )
    create.add_argument("--mask", action=_CaseOption, metavar="PATH", help="full or partial lesion mask of the preceding image")
    create.add_argument("--roi-mask", action=_CaseOption, metavar="PATH", help="region (e.g. brain mask) outside which slices stay unknown")
    create.add_argument("--name", action=_CaseOption, metavar="NAME", help="name of the preceding image in the study")
    create.add_argument(
        "--plane",
        choices=("axial", "coronal", "sagittal"),
        default="axial",
        help="the anatomical plane of the slices to tag, found from each image's affine (default axial); images "
        "without an orientation (image folders) slice along axis 0",
    )
    create.add_argument("--axis", type=int, choices=(0, 1, 2), help="slicing axis in napari order instead of --plane (0 = NIfTI k)")
    create.add_argument(
        "--resample",
        choices=("linear", "nearest"),
        help="channels of a case on different grids: resample them onto the first channel's grid with this interpolation (default: refuse)",
    )
    create.add_argument(
        "--classes",
        metavar="LABEL=NAME,...",
        help="name the masks' labels as lesion classes (e.g. 1=necrosis,2=oedema,3=non-enhancing,4=enhancing): "
        "a method that segments classes can then be trained per class (weakseg train --per-class)",
    )
    create.add_argument("--tags-from-masks", action="store_true", help="tag every slice presence/absence from its mask")
    create.add_argument(
        "--halves",
        choices=("left-right",),
        help="split every slice in two halves across the patient's "
        "left-right axis (found from the affine), each half with its own tag (the brain's hemispheres)",
    )
    create.add_argument(
        "--halves-at",
        type=int,
        metavar="INDEX",
        help="split position along that axis (default: the middle of the --roi-mask's extent, else of the image)",
    )
    create.add_argument(
        "--roi-min",
        type=float,
        default=0.25,
        metavar="FRACTION",
        help="with --halves and --tags-from-masks: "
        "tag a half only when the ROI covers this share of it (default 0.25, as Vorontsov et al.)",
    )
    create.add_argument("--keep-masks", metavar="FRACTION|N", help="keep masks only on a random subset (0.1 or 10%% = fraction, 3 = count)")
    create.add_argument("--per", choices=("slice", "half", "volume"), default="slice", help="unit drawn by --keep-masks (default: slice)")
    create.add_argument("--seed", type=int, default=0, help="random seed for --keep-masks")
    create.set_defaults(run=_study_create)

    show = study.add_parser("show", help="print tag and annotation counts per image")
    show.add_argument("study", type=Path)
    show.set_defaults(run=_study_show)

    digits = sub.add_parser(
        "digits",
        help="build a study of the cluttered-digits synthetic task from MNIST",
        description="Build a study of the cluttered-digits task (Vorontsov et al.): one image whose slices are "
        "digit images over clutter (presence) or clutter alone (absence), with masks kept on a few.",
    )
    digits.add_argument("out", type=Path, help="new study folder (must not exist or be empty)")
    digits.add_argument("--mnist", type=Path, required=True, metavar="PATH", help="MNIST .npz with x_train, y_train, x_test, y_test")
    digits.add_argument(
        "--task", default="48-simple", metavar="NAME", help="48-simple (48x48, 8 clutter crops; default), 48-hard (24) or 128 (128x128, 80)"
    )
    digits.add_argument(
        "--split", choices=("train", "test"), default="train", help="MNIST split the digits and the clutter come from (default: train)"
    )
    digits.add_argument("--presence", type=int, default=1000, metavar="N", help="images with a digit (default: 1000)")
    digits.add_argument("--absence", type=int, default=1000, metavar="N", help="images of clutter alone (default: 1000)")
    digits.add_argument(
        "--label-fraction",
        type=float,
        default=0.01,
        metavar="F",
        help="fraction of the presence images that keep their mask (default: 0.01; at least one when > 0)",
    )
    digits.add_argument("--label-digit", type=int, metavar="D", help="draw the masked images only among those showing digit D")
    digits.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    digits.add_argument("--truth", type=Path, metavar="PATH", help="also write every image's ground-truth mask to this .nii.gz")
    digits.set_defaults(run=_digits)

    evaluate = sub.add_parser(
        "evaluate",
        help="score predicted masks against ground truth (Dice, ASSD)",
        description="Score predictions against ground truth. PRED and TRUTH are each a NIfTI file, "
        "a folder of NIfTI files (paired by name) or a folder of 2D images.",
    )
    evaluate.add_argument("pred", type=Path, help="predicted mask(s); any value > 0 is lesion")
    evaluate.add_argument("truth", type=Path, help="ground-truth mask(s)")
    evaluate.add_argument("--labels", metavar="L[,L...]", help="truth labels that count as lesion (default: any label > 0), e.g. 1,2,4")
    evaluate.add_argument(
        "--per-slice", action="store_true", help="slices along axis 0 are separate 2D images (default for folders of 2D images)"
    )
    evaluate.add_argument("--json", action="store_true", help="print the scores as JSON")
    evaluate.set_defaults(run=_evaluate)

    from .bench_commands import add_bench_parser
    from .model_commands import add_parsers

    add_parsers(sub)
    add_bench_parser(sub)

    demo = sub.add_parser("demo", help="open napari with the synthetic phantom and the plugin's widgets")
    demo.add_argument("--headless", action="store_true", help="do the same work without showing a window (needs an X server or Xvfb)")
    demo.add_argument("--screenshot", type=Path, help="save a screenshot of the window to this PNG")
    demo.set_defaults(run=_demo)
    return parser


class _CaseOption(argparse.Action):
    """--image starts a case; --mask/--roi-mask/--name attach to the last one."""

    def __call__(self, parser, namespace, value, option_string=None):
        cases = getattr(namespace, "cases", None) or []
        if self.dest == "image":
            cases.append({"paths": [p for p in value.split(",") if p], "mask": None, "roi_mask": None, "name": None})
        elif not cases:
            parser.error(f"{option_string} must come after the --image it belongs to")
        elif cases[-1][self.dest] is not None:
            parser.error(f"{option_string} given twice for the same --image")
        else:
            cases[-1][self.dest] = value
        namespace.cases = cases
        setattr(namespace, self.dest, value)


def _study_create(args) -> int:
    from .io.case import load_case, load_mask
    from .io.nifti import nifti_stem
    from .io.orientation import study_axis
    from .study import Study, save_study
    from .study.build import keep_masks, parse_amount, split_in_halves, tags_from_masks
    from .study.folder import check_new_folder

    check_new_folder(args.out)
    if args.halves_at is not None and not args.halves:
        raise WeaksegError("--halves-at needs --halves")
    if not 0 <= args.roi_min <= 1:
        raise WeaksegError(f"--roi-min {args.roi_min}: a fraction between 0 and 1")
    amount = parse_amount(args.keep_masks) if args.keep_masks is not None else None
    stems = [nifti_stem(c["paths"][0]) for c in args.cases]
    study = Study()
    for case, stem in zip(args.cases, stems, strict=True):
        volume = load_case(case["paths"], resample=args.resample)
        mask = load_mask(case["mask"], volume) if case["mask"] else None
        roi = load_mask(case["roi_mask"], volume) if case["roi_mask"] else None
        name = case["name"] or (stem if stems.count(stem) == 1 else Path(case["paths"][0]).resolve().parent.name)
        axis = study_axis(volume, args.plane) if args.axis is None else args.axis
        im = study.add_image(volume, name=name, mask=mask, axis=axis)
        if args.halves:
            split = split_in_halves(study, im, roi, args.halves_at)
            LOGGER.info(f"{im.name}: halves across axis {split.axis} at {split.at}")
        if args.tags_from_masks:
            if mask is None:
                raise WeaksegError(f"--tags-from-masks: image {name} has no --mask")
            tags_from_masks(im, roi, args.roi_min)
        elif mask is not None:
            study.mask_painted(im)  # slices with lesion pixels become presence
        LOGGER.info(f"added {im.name}: {len(volume.channel_names)} channel(s), shape {volume.shape}")
    if amount is not None:
        keep_masks(study, amount, args.per, args.seed)
    if args.classes:
        study.set_classes(parse_classes(args.classes))
    save_study(study, args.out)  # a failed first save removes what it wrote
    _print_counts(study)
    LOGGER.info(f"study written to {args.out}")
    return 0


def parse_classes(text: str) -> dict[int, str]:
    """``1=necrosis,2=oedema`` -> {1: "necrosis", 2: "oedema"} (checked by ``study.model.check_classes``)."""
    names = {}
    for part in (p for p in text.split(",") if p.strip()):
        label, sep, name = part.partition("=")
        if not sep or not label.strip().isdigit():
            raise WeaksegError(f"--classes: {part!r} is not LABEL=NAME (e.g. 1=necrosis)")
        names[int(label)] = name
    from .study.model import check_classes

    return check_classes(names)


def _study_show(args) -> int:
    from .study import load_study

    study = load_study(args.study)
    _print_counts(study)
    if study.classes:
        print("lesion classes: " + ", ".join(f"{k} {v}" for k, v in study.classes.items()))
    return 0


def _print_counts(study) -> None:
    cols = ["slices", "presence", "absence", "unknown", "annotated"]
    if any(im.split is not None for im in study.images):  # then one column per half-slice count too
        cols += ["presence halves", "absence halves", "unknown halves", "annotated halves"]
    width = max([5] + [len(im.name) for im in study.images])
    heads = [c.replace("presence ", "p-").replace("absence ", "a-").replace("unknown ", "u-").replace("annotated ", "ann-") for c in cols]
    print(f"{'image':<{width}}  " + "  ".join(f"{h:>10}" for h in heads))
    rows = [(im.name, im.counts()) for im in study.images]
    if len(study.images) > 1:
        rows.append(("total", study.counts()))
    for name, c in rows:
        print(f"{name:<{width}}  " + "  ".join(f"{c[k]:>10}" if k in c else f"{'-':>10}" for k in cols))


def _digits(args) -> int:
    from .data.digits import build_digits_study

    study = build_digits_study(
        args.out,
        args.mnist,
        args.task,
        args.split,
        args.presence,
        args.absence,
        args.label_fraction,
        args.label_digit,
        args.seed,
        args.truth,
    )
    _print_counts(study)
    LOGGER.info(f"study written to {args.out}")
    if args.truth is not None:
        LOGGER.info(f"ground truth written to {args.truth}")
    return 0


def _evaluate(args) -> int:
    import json

    from .training.metrics import evaluate_files, format_table, pair_inputs, to_json_ready

    labels = None
    if args.labels is not None:
        try:
            labels = [int(v) for v in args.labels.split(",") if v.strip()]
        except ValueError:
            raise WeaksegError(f"--labels {args.labels!r}: give whole numbers separated by commas, e.g. 1,2,4") from None
        if not labels:
            raise WeaksegError("--labels: give at least one label")
    cases = pair_inputs(args.pred, args.truth)
    result = evaluate_files(
        [c[1] for c in cases], [c[2] for c in cases], labels, per_slice=True if args.per_slice else None, names=[c[0] for c in cases]
    )
    print(json.dumps(to_json_ready(result), indent=1) if args.json else format_table(result))
    return 0


def _demo(args) -> int:
    from .demo import run_demo

    return run_demo(headless=args.headless, screenshot=args.screenshot)


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"weakseg: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
