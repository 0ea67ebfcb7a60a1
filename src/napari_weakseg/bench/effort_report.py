"""Markdown report and curves of the annotation-effort benchmark. Every number comes from results.json."""

from __future__ import annotations

from pathlib import Path

from ..annotator import SPREADS, TOP
from .published import VORONTSOV, fmt, table_ii
from .report import machine_line

CURVES = "effort-curves.png"
STRATEGY_TEXT = {
    "suggest": "**suggest** (the top of *Suggest slices to annotate*)",
    "suggest-plain": "**suggest-plain** (the same list without weighing it away from the painted slices: the dock's before)",
    "suggest-spread": "**suggest-spread** (the same, weighed away from the painted slices: a candidate)",
    "suggest-wide": f"**suggest-wide** (the same list weighed away from the painted slices over {SPREADS['suggest-wide']:g} slices "
    f"instead of {SPREADS['suggest']:g}: a candidate)",
    "random": "**random** (a random unannotated presence slice)",
    "oracle": "**oracle** (the unannotated presence slice with the worst Dice, as issue #21 defines it: the ceiling of a "
    "per-slice view; the volume's Dice weighs slices by their size, so it is not the volume's ceiling)",
}
TARGET_DICE, TARGET_PAINTED, TARGET_GAIN = 0.90, 5, 0.02


def _key(method: str, strategy: str) -> str:
    return f"{method} / {strategy}"


def _mean_at(row: dict | None, painted: int) -> float | None:
    return None if row is None else row["mean"].get(str(painted))


def _f(x, spec: str = ".3f") -> str:
    return "—" if x is None else format(x, spec)


def _mean_sd(row: dict, painted: int) -> str:
    """The mean at ``painted`` and, with several seeds, its spread over them: "0.871 (0.012)"."""
    mean, sd = _mean_at(row, painted), (row.get("seed_sd") or {}).get(str(painted))
    return _f(mean) + (f" ({sd:.3f})" if sd is not None else "")


def _rate(warm_lr: float) -> str:
    """How the retrains' learning rate compares with the dock's (``TrainConfig.warm_lr``)."""
    from ..training.dock_defaults import WARM_LR

    if warm_lr == WARM_LR:
        return f" at the dock's {WARM_LR:g}x the learning rate" if WARM_LR != 1 else ""
    return f" at {warm_lr:g}x the learning rate, where the dock's default is {WARM_LR:g}x"


def _overrides(overrides: dict | None) -> str:
    """The profile's method-config overrides, as the report names them (none: the dock's own)."""
    if not overrides:
        return ""
    return " with " + ", ".join(f"`{k}` {v}" for k, v in overrides.items()) + " (every method, in place of the dock's)"


def _pooled(results: dict) -> str:
    """Where a pooled report's runs came from (``weakseg bench effort --pool``)."""
    parts = results.get("pooled_from")
    if not parts:
        return ""
    runs = "; ".join(f"{p['profile']}, seeds {', '.join(map(str, p['seeds']))}" for p in parts)
    return f" Pooled from {len(parts)} runs of these settings ({runs})."


def _threads(threads: int | None) -> str:
    """The training processes' thread count, where the suite fixed it (older results: the dock's choice)."""
    if not threads:
        return "; "
    return f" on {threads} thread(s), fixed so that a rerun gives the same numbers (the dock takes the cores free at its start); "


def _working_size(curves: list[dict]) -> str:
    """The working sizes the curves trained at (recorded since the dock's follows the slices; none in older results)."""
    sizes = sorted({c["input_size"] for c in curves if "input_size" in c}, key=lambda s: s or 0)
    return ", working size " + " / ".join("native" if s is None else f"{s}x{s}" for s in sizes) if sizes else ""


def write_effort_report(results: dict, out: Path) -> Path:
    from dataclasses import asdict

    from .effort_profile import settings_profile

    out = Path(out)
    st, rows = asdict(settings_profile(results["settings"])), results["summary"]["rows"]
    seeds = list(st["seeds"])
    painted = sorted({int(k) for row in rows.values() for k in row["mean"]})
    last = max(painted) if painted else 0
    _figure(results, out, painted)
    default = rows.get(_key(st["method"], "suggest"))
    base = rows.get(_key(st["baseline"], "replay"))
    rand = rows.get(_key(st["method"], "random"))
    oracle = rows.get(_key(st["method"], "oracle"))
    unit = "hemisphere" if st["halves"] else "slice"
    cases = results["summary"].get("cases", results["cases"])
    left_out = [c for c in results["cases"] if c not in cases]
    size = _working_size(results["curves"])
    lines = [
        f"## Annotation effort: painted slices against Dice on the volume being annotated ({results['profile']} profile)",
        "",
        f"A simulated annotator runs the dock's loop on each of {len(cases)} BraTS 2015 volumes "
        f"({', '.join(cases)}"
        + (f"; {', '.join(left_out)} left out: the suite was stopped before its curves were complete" if left_out else "")
        + f"): FLAIR + T1c at the stored 240x240, all axial slices, {unit} tags from "
        "the whole-tumour mask inside the brain mask (slices without brain unknown), no mask but "
        f"{st['start']} painted slice(s) (evenly spread over the presence slices). It trains with the dock's "
        f"defaults (Train: {st['method']}, quick preset{_overrides(st.get('overrides'))}{size}, {st['steps']} steps, "
        "validation as the dock decides), predicts "
        "the whole volume as Run model does (threshold 0.5), then paints one more slice from the ground truth, "
        f"accepts it and retrains (the dock's Retrain: warm start, {st['retrain_steps']} steps{_rate(st.get('warm_lr', 1.0))}), "
        f"{st['rounds']} rounds. "
        "Training runs in the dock's background process"
        + _threads(results.get("threads"))
        + (f"seed {seeds[0]}, one run per curve." if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}: each curve once per seed.")
        + _pooled(results),
        "",
        "The next slice: " + ", ".join(STRATEGY_TEXT[k] for k in dict.fromkeys(("suggest", *st["strategies"])) if k in STRATEGY_TEXT) + ". "
        f"{st['method']} (the dock's default) runs each from one shared first round; "
        f"{' and '.join(m for m in (st['baseline'], st['alternative']) if m)} "
        f"{'are' if st['alternative'] else 'is'} trained on the slices {st['method']}'s suggestions chose "
        "(**replay**: the methods compared at equal annotation). Dice is 3-D over the whole volume (every slice, "
        "painted ones included; the per-round files also hold it over the unpainted slices).",
        "",
        machine_line(results),
        "",
    ]
    if results.get("command"):
        lines += [f"Command: `{results['command']}`", ""]
    if results.get("wall_s") is not None:
        lines += [f"Wall time of the suite: {results['wall_s'] / 60:.0f} min.", ""]
    lines += [
        f"![Dice against painted slices]({CURVES})",
        "",
        "Mean Dice over the volumes by the number of painted slices"
        + (" (in brackets: the standard deviation over the seeds of their means over the volumes)" if len(seeds) > 1 else "")
        + ":",
        "",
        "| method / next slice | " + " | ".join(str(p) for p in painted) + " | reaches 0.85 at | reaches 0.90 at | s per round |",
        "|---|" + "---:|" * (len(painted) + 3),
    ]
    for key, row in rows.items():
        reach = [_reach_text(row["reach"][t]) for t in ("0.85", "0.90")]
        cells = [_mean_sd(row, p) for p in painted]
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {reach[0]} | {reach[1]} | {_f(row['mean_round_s'], '.0f')} |")
    lines += [
        "",
        "*reaches … at*: the painted slices each volume needed (in volume order"
        + (", the seeds of a volume together" if len(seeds) > 1 else "")
        + "; — = not within the rounds run).",
        "",
        "### Targets",
        "",
    ]
    d5, b5 = _mean_at(default, TARGET_PAINTED), _mean_at(base, TARGET_PAINTED)
    if d5 is not None:
        verdict = "met" if d5 >= TARGET_DICE else f"missed by {TARGET_DICE - d5:.3f}"
        lines.append(
            f"- {st['method']} with suggestions, {TARGET_PAINTED} painted slices: mean Dice **{d5:.3f}** "
            f"(target >= {TARGET_DICE}: {verdict}); {st['baseline']} on the same slices **{_f(b5)}** "
            f"(gap {_f(None if b5 is None else d5 - b5, '+.3f')})."
        )
    ds, dr, do = _mean_at(default, last), _mean_at(rand, last), _mean_at(oracle, last)
    if ds is not None and dr is not None:
        gain = ds - dr
        verdict = "met" if gain >= TARGET_GAIN else f"missed by {TARGET_GAIN - gain:.3f}"
        lines.append(
            f"- Suggested against random slices at the last round ({last} painted): {ds:.3f} against {dr:.3f}, "
            f"**{gain:+.3f}** (target >= +{TARGET_GAIN}: {verdict})" + (f"; the oracle {_f(do)}." if oracle is not None else ".")
        )
    if default is not None and default.get("retrains"):
        lines.append(
            f"- Retrains of {st['method']} / suggest that fitted the painted slices worse than their starting model and so "
            f"kept its weights (`keep_best_fit`, the dock's guard against a collapsing retrain): "
            f"**{default['kept_start']} of {default['retrains']}**."
        )
    if default is not None and default.get("worst_in_top") is not None:
        lines.append(
            f"- Suggestions find the failures (issue #17 item 5), averaged over the rounds of {st['method']} / suggest: "
            f"of the {TOP} unannotated presence slices with the most wrong pixels the top {TOP} suggestions held "
            f"**{_f(default.get('errors_in_top'), '.1f')}**, of the {TOP} with the worst Dice **{default['worst_in_top']:.1f}**; "
            f"{TOP} slices drawn at random hold {default['worst_by_chance']:.1f} of either."
        )
    lines += ["", _paper_note(st), ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _reach_text(values: list) -> str:
    return ", ".join("—" if v is None else str(v) for v in values)


def _paper_note(st: dict) -> str:
    return (
        f"**Papers:** none of the three reports Dice against painted slices of one volume. For scale, {VORONTSOV}, "
        f"Table II (brain, BraTS 2017 hemispheres, masks on 1 % of the training volumes, scored on held-out "
        f"volumes): " + ", ".join(f"{m} {fmt(table_ii(m, 'brain'))}" for m in (st["method"], st["baseline"], st["alternative"]) if m) + ". "
        "Here the model is scored on the volume it is trained on (what an annotator sees), so the numbers are "
        "not comparable, only the gap between the methods is."
    )


def _figure(results: dict, out: Path, painted: list[int]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = results["summary"].get("cases", results["cases"])
    keys = list(results["summary"]["rows"])
    n = len(cases) + 1
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), sharey=True, squeeze=False)
    colours = {k: f"C{i}" for i, k in enumerate(keys)}
    for ax, case in zip(axes[0], [*cases, "mean"], strict=True):
        for key in keys:
            if case == "mean":
                mean = results["summary"]["rows"][key]["mean"]
                xs = sorted(int(p) for p in mean)
                ax.plot(xs, [mean[str(p)] for p in xs], "o-", ms=3, color=colours[key], label=key)
                continue
            curves = [c for c in results["curves"] if c["case"] == case and _key(c["method"], c["strategy"]) == key]
            for i, curve in enumerate(curves):  # one per seed, the first drawn solid
                xs = [len(r["painted"]) for r in curve["rounds"]]
                ys = [r["dice"] for r in curve["rounds"]]
                ax.plot(xs, ys, "o-" if not i else "o--", ms=3, color=colours[key], alpha=1.0 if not i else 0.5)
        ax.axhline(TARGET_DICE, color="grey", lw=0.6, ls=":")
        ax.set_title(case.replace("brats_2013_", ""), fontsize=9)
        ax.set_xlabel("painted slices")
        if painted:
            ax.set_xticks(painted)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("Dice, whole volume")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = out / CURVES
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
