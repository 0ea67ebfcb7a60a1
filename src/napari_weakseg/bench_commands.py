"""The ``weakseg bench`` command: run a benchmark suite (or report again from its results.json) and put the
report into the docs. Each suite has a run and a report function here; the suites live in ``bench/``."""

from __future__ import annotations

from pathlib import Path

from .errors import InputError
from .log import LOGGER
from .model_commands import read_config


def _profile(args, profiles: dict):
    """The ``--profile`` by name, or, with ``--config``, a copy whose method-config overrides take the file's
    on top (nested options such as ``net`` merged): an experiment on the suite's data and protocol."""
    extra = read_config(args.config)
    if not extra:
        return args.profile
    import dataclasses

    from .bench.common import resolve_profile
    from .methods.config import merge_options

    prof = resolve_profile(args.profile, profiles)[0]  # a name: the CLI gives no profile objects
    return dataclasses.replace(prof, overrides=merge_options(prof.overrides, extra))


def run_bench(args) -> int:
    """``weakseg bench SUITE``: run it (or, with --report-only, report again from OUT/results.json), then
    put the report into --docs."""
    from .bench.report import update_docs_section

    run, report = {
        "digits": (_run_digits, _report_digits),
        "speed": (_run_speed, _report_speed),
        "hc18": (_run_hc18, _report_hc18),
        "brats": (_run_brats, _report_brats),
        "effort": (_run_effort, _report_effort),
    }[args.suite]
    if args.pool and (args.suite != "effort" or args.report_only or args.config or args.seeds or args.seed_list or args.steps):
        raise InputError("--pool applies to the effort suite alone, without --report-only or run options: it reports runs made")
    if args.config and (args.suite == "speed" or args.report_only):
        raise InputError("--config applies to a run of the digits, hc18, brats or effort suite")
    results = report(args.out) if args.report_only else run(args)
    if args.docs:
        update_docs_section(args.docs, args.docs_key or f"{args.suite}-{results['profile']}", args.out)
    runs = f" ({len(results['runs'])} runs)" if "runs" in results else ""
    LOGGER.info(f"report: {args.out / 'report.md'}{runs}")
    return 0


def _log(msg: str) -> None:
    LOGGER.info(msg)


def _methods(args) -> tuple[str, ...] | None:
    return tuple(m for m in args.methods.split(",") if m) if args.methods else None


def _run_digits(args) -> dict:
    from .bench.digits import PROFILES, run_digits_suite

    if args.data is None:
        raise InputError("--data is required (the folder holding mnist/mnist_15k.npz)")
    mnist = args.data / "mnist" / "mnist_15k.npz" if args.data.is_dir() else args.data
    return run_digits_suite(
        mnist,
        args.out,
        _profile(args, PROFILES),
        args.seeds or 3,
        args.steps,
        _methods(args),
        args.device,
        log=_log,
        work=args.work,
    )


def _report_digits(out: Path) -> dict:
    from .bench.common import load_results, save_results
    from .bench.digits import summarise
    from .bench.report import read_curve, write_digits_report

    results = load_results(out)
    for run in results["runs"]:  # keep the curves inside results.json once read
        run.setdefault("curve", read_curve(run["metrics_file"]))
    results["summary"] = summarise(results)
    save_results(results, out)
    write_digits_report(results, out)
    return results


def _run_speed(args) -> dict:
    from .bench.speed import run_speed_suite

    return run_speed_suite(
        args.out, args.profile, _methods(args), args.device, gui=not args.no_gui, steps=args.steps, log=_log, work=args.work
    )


def _report_speed(out: Path) -> dict:
    from .bench.common import load_results
    from .bench.speed_report import write_speed_report

    results = load_results(out)
    write_speed_report(results, out)
    return results


def _run_hc18(args) -> dict:
    from .bench.hc18 import PROFILES, run_hc18_suite

    if args.data is None:
        raise InputError("--data is required (the folder holding hc18/images and hc18/training_set_pixel_size_and_HC.csv)")
    return run_hc18_suite(args.data, args.out, _profile(args, PROFILES), args.seeds or 1, args.steps, args.device, log=_log, work=args.work)


def _report_hc18(out: Path) -> dict:
    from .bench.hc18 import load_and_report

    return load_and_report(out)


def _run_brats(args) -> dict:
    from .bench.brats import ALL_METHODS, PROFILES, run_brats_suite

    if args.data is None:
        raise InputError("--data is required (the folder holding brats2015/CASE/ with FLAIR, T1c, OTMultiClass and brainmask)")
    return run_brats_suite(
        args.data,
        args.out,
        _profile(args, PROFILES),
        args.seeds,
        args.steps,
        _methods(args) or ALL_METHODS,
        args.device,
        log=_log,
        work=args.work,
    )


def _report_brats(out: Path) -> dict:
    from .bench.brats import load_and_report

    return load_and_report(out)


def effort_profile(args):
    """The effort suite's profile from the command line: ``--profile`` by name, or a copy (profile ``custom``)
    with ``--steps`` (Train and Retrain), ``--seeds N`` (0..N-1) or ``--seed-list`` (e.g. ``2,3``: held-out
    seeds), and ``--config``'s method-config overrides merged on top of the profile's (every method)."""
    from dataclasses import replace

    from .bench.common import resolve_profile
    from .bench.effort import PROFILES, EffortProfile

    if args.methods:
        raise InputError("effort: --methods does not apply (the suite runs the dock's default, seg-only and the alternative)")
    if args.seeds and args.seed_list:
        raise InputError("effort: give --seeds or --seed-list, not both")
    prof = resolve_profile(_profile(args, PROFILES), PROFILES, EffortProfile)[0]  # --config merged as every suite's
    if args.steps:
        prof = replace(prof, steps=args.steps, retrain_steps=args.steps)
    if args.seeds:
        prof = replace(prof, seeds=tuple(range(args.seeds)))
    if args.seed_list:
        try:
            seeds = tuple(int(s) for s in args.seed_list.split(","))
        except ValueError:
            raise InputError(f"--seed-list {args.seed_list!r}: give whole numbers separated by commas, e.g. 2,3") from None
        prof = replace(prof, seeds=seeds)
    return prof if (args.steps or args.seeds or args.seed_list or args.config) else args.profile


def _run_effort(args) -> dict:
    from .bench.effort import run_effort_suite

    if args.pool:
        return _pool_effort(args)
    if args.data is None:
        raise InputError("--data is required (the folder holding brats2015/CASE/ with FLAIR, T1c, OTMultiClass and brainmask)")
    return run_effort_suite(args.data, args.out, effort_profile(args), args.device, log=_log, work=args.work)


def _pool_effort(args) -> dict:
    """``--pool A,B``: the results of runs A and B (one profile, other seeds) as one report in OUT (not A or B)."""
    from .bench.common import load_suite_results, save_results
    from .bench.effort import pool_results
    from .bench.effort_report import write_effort_report

    dirs = [Path(d) for d in args.pool.split(",") if d]
    if any(d.resolve() == args.out.resolve() for d in dirs):
        raise InputError("--pool: --out must be a new folder, not one of the pooled runs (its results.json would be replaced)")
    results = pool_results([load_suite_results(d, "effort") for d in dirs])
    args.out.mkdir(parents=True, exist_ok=True)
    save_results(results, args.out)
    write_effort_report(results, args.out)
    return results


def _report_effort(out: Path) -> dict:
    from .bench.common import load_suite_results
    from .bench.effort import summarise
    from .bench.effort_report import write_effort_report

    results = load_suite_results(out, "effort")
    results["summary"] = summarise(results)
    write_effort_report(results, out)
    return results


def add_bench_parser(sub) -> None:
    bench = sub.add_parser("bench", help="run a benchmark suite and write results.json, report.md and figures")
    bench.add_argument(
        "suite",
        choices=("digits", "speed", "hc18", "brats", "effort"),
        help="digits: cluttered MNIST, all methods; speed: throughput, FLOP/s, memory, inference time and "
        "the viewer's responsiveness while training (needs a display, e.g. xvfb-run, unless --no-gui); "
        "hc18: the pseudo-label method and its ablations on HC18 fetal head ultrasound; "
        "brats: every method on BraTS whole tumour, hemispheres, leave-one-volume-out with a validation volume; "
        "effort: a simulated annotator runs the dock's loop on BraTS volumes (Dice against painted slices)",
    )
    bench.add_argument(
        "--data",
        type=Path,
        help="data folder (holding mnist/mnist_15k.npz, hc18/ or brats2015/), or the .npz / hc18 / brats2015 folder itself",
    )
    bench.add_argument("--out", type=Path, required=True, help="output folder")
    bench.add_argument(
        "--profile",
        default="cpu",
        help="cpu: reduced scale for a small CPU; gpu: the paper's scale; effort also has cpu-seeds, cpu-spread, cpu-warm, "
        "cpu-96, cpu-wide and cpu-halves (docs/cli.md)",
    )
    bench.add_argument(
        "--seeds",
        type=int,
        help="seeds per run (default: digits 3, hc18 1, brats the profile's: 2 on cpu; effort: seeds 0..N-1, default the profile's)",
    )
    bench.add_argument("--seed-list", help="effort: these seeds, comma-separated (e.g. 2,3: seeds held out from a choice)")
    bench.add_argument(
        "--pool", help="effort: report these results folders together (one profile run on other seeds), comma-separated, into --out"
    )
    bench.add_argument("--steps", type=int, help="override the profile's training steps")
    bench.add_argument("--methods", help="comma-separated subset of methods")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--work", type=Path, help="folder for the studies and run folders (default OUT/work)")
    bench.add_argument("--docs", type=Path, help="also put the report into this Markdown file (e.g. docs/benchmarks.md)")
    bench.add_argument("--report-only", action="store_true", help="only regenerate the report from OUT/results.json")
    bench.add_argument("--no-gui", action="store_true", help="speed: leave out the measurements in a napari viewer")
    bench.add_argument("--docs-key", help="name of the section in --docs (default SUITE-PROFILE)")
    bench.add_argument(
        "--config",
        type=Path,
        help="digits, hc18, brats, effort: JSON with method-config overrides on top of the "
        'profile\'s, e.g. {"net": {"seg_head_kernel": 7}} (the results then say profile "custom"; effort: every method)',
    )
    bench.set_defaults(run=run_bench)
