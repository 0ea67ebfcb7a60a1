"""Markdown report and figures of the BraTS suite. Every number comes from results.json; the
qualitative panel (pictures, no numbers) is drawn once, by the run that has the images."""

from __future__ import annotations

from pathlib import Path

from .published import FIG_7_BRAIN_GAP, MONDAL, TABLE_1_ACDC, VORONTSOV, fmt, table_ii
from .report import loss_curves, machine_line, model_selection_line, ordering_verdict, run_lines

BARS = "brats-dice.png"
CURVE = "brats-curve.png"
LOSSES = "brats-losses.png"
PANEL = "brats-qualitative.png"
PAPER_NOTE = (f"**Paper columns:** {VORONTSOV}, Table II (brain, Dice at 1 % annotations, mean (std) over three runs) "
              "and Sec. IV-D / Fig. 7 (share of the gap covered, mean (std)): BraTS 2017, 285 volumes (80 % training), "
              "hemisphere half-slices of 240x120 with all four sequences, the paper's networks and 500 epochs, model "
              "selection and early stopping on a validation subset. Our setting differs in data (a few volumes, whole "
              "axial slices, FLAIR + T1c), scale and schedule: the columns show the paper's level and ordering, not a "
              "matched comparison. The paper reports its Fig. 8 curve only as a plot (no numbers in the text).")


def _fmt(x, spec: str = ".3f") -> str:
    return "—" if x is None else format(x, spec)


def _gap_text(value) -> str:
    return "—" if value is None else f"{value[0]:.0%} ± {value[1]:.0%}"


def _pct(f: float) -> str:
    return f"{f * 100:g} %"


def _counts(row: dict) -> str:
    """Annotated slices of the training presence slices, e.g. ``2 / 152`` (per seed when they differ)."""
    pairs = sorted({(a, n) for a, n in zip(row["n_annotated"], row["n_train_presence"])})
    return ", ".join(f"{a} / {n}" for a, n in pairs)


def write_brats_report(results: dict, out: Path) -> Path:
    out = Path(out)
    s, st = results["summary"], results["settings"]
    table, base, seeds = s["table"], st["base_fraction"], results["seeds"]
    _figures(results, out)
    spread = "std over seeds" if seeds > 1 else "one seed: no spread, —"
    lines = [f"## BraTS: whole tumour with scarce annotation ({results['profile']} profile)", "",
             "Every method on brain tumour MRI (BraTS 2015 cases from BraTS 2013), FLAIR + T1c as channels, whole "
             "tumour (labels 1–4) inside the brain mask. Slices are tagged presence / absence from the tumour masks; "
             "masks are kept on a fraction of the training presence slices only (all tags stay).", ""]
    if results["profile"] != "gpu":
        lines += [f"**Reduced scale.** A 2-core CPU: slices reduced from 240x240 to {st['size']}x{st['size']} (area "
                  f"averaging), small networks (preset `{st['preset']}`), {results['steps']} training steps per run, "
                  f"{seeds} seed(s), {len(st['cases'])} volumes. The paper trains far larger networks for far longer on "
                  "hundreds of volumes at full resolution: these numbers show orderings at this scale, not what the "
                  "methods reach at the paper's.", ""]
    cases = ", ".join(f"{c['name']} ({c['slices']} slices: {c['presence']} P / {c['absence']} A / {c['unknown']} unknown)" for c in st["cases"])
    splits = "; ".join(f"seed {sp['seed']}: test {', '.join(sp['test'])}" for sp in results["splits"])
    lines += [f"Data: `{Path(st['data']).name}`, {cases}. Axial slices whose brain mask covers at least "
              f"{st['min_brain']:.0%} of the slice are kept. Presence: tumour pixels at the working size; absence: no "
              "tumour voxel inside the brain at full size; the few slices in between stay unknown (not trained on; "
              "scored). "
              f"Split by volume (no volume in two splits), {st['n_test']} held out per seed, rotating with the seed: {splits}. "
              "Annotated slices are drawn once per seed in a random order; a fraction keeps the first "
              "round(fraction × presence slices), at least one, so smaller fractions' slices are subsets of larger ones'.", "",
              "Dice: pooled over every kept slice of the held-out volume (presence and absence slices; false positives "
              "count), i.e. its 3-D Dice at the working resolution.", "", machine_line(results), ""]
    lines += run_lines(results) + [model_selection_line(results), ""]

    lines += [f"### Every method at {_pct(base)} annotated (Fig. 7 setting)", "",
              f"Dice mean ({spread}); gap share = (Dice − seg-only at {_pct(base)}) / (seg-only at 100 % − seg-only at "
              f"{_pct(base)}): the share of the gap between {_pct(base)}-supervised and fully supervised training a method covers.", "",
              "| method | Dice | Dice on presence slices | FP pixels on absence slices | annotated / presence slices | gap share | "
              "paper Dice (Table II) | paper gap share (Fig. 7) |", "|---|---|---|---|---|---|---|---|"]
    gap = s["gap"]["methods"]
    for m in results["methods"]:
        r = table.get(f"{m}|{base:g}")
        if r:
            share = gap.get(m, {}).get("share")
            lines.append(f"| {m} | {r['dice_mean']:.3f} ({_fmt(r['dice_std'])}) | {r['dice_presence_mean']:.3f} | "
                         f"{r['fp_absence_mean']:.0f} | {_counts(r)} | {_fmt(share, '.0%')} | {fmt(table_ii(m, 'brain'))} | "
                         f"{_gap_text(FIG_7_BRAIN_GAP.get(m))} |")
    full = table.get("seg-only|1")
    if full:
        lines.append(f"| seg-only, fully supervised | {full['dice_mean']:.3f} ({_fmt(full['dice_std'])}) | "
                     f"{full['dice_presence_mean']:.3f} | {full['fp_absence_mean']:.0f} | {_counts(full)} | 100% | — | — |")
    lines += ["", f"![Dice at {_pct(base)} and gap shares]({BARS})", ""]
    lines += verdicts(results)

    lines += ["### Annotation efficiency (Fig. 8)", "", "| annotated | slices | " + " | ".join(st["curve_methods"]) + " |",
              "|---|---|" + "---|" * len(st["curve_methods"])]
    for f in st["curve_fractions"]:
        rows = [table.get(f"{m}|{f:g}") for m in st["curve_methods"]]
        known = [r for r in rows if r]
        if known:
            lines.append(f"| {_pct(f)} | {_counts(known[0])} | " + " | ".join(_fmt(r and r["dice_mean"]) for r in rows) + " |")
    lines += ["", f"![Dice against the annotated fraction]({CURVE})", ""]

    versus = s["cyclegan_vs_seg_only"]
    if versus:
        lines += ["### cyclegan-ssl against seg-only", "",
                  "| annotated | slices | seg-only | cyclegan-ssl | difference | paper: partial / ours, ACDC mIoU (Table 1) |",
                  "|---|---|---|---|---|---|"]
        for f, v in versus.items():
            acdc = [TABLE_1_ACDC[k].get(float(f)) for k in ("partial", "cyclegan-ssl")]
            paper = "—" if None in acdc else f"{acdc[0]:.4f} / {acdc[1]:.4f} ({acdc[1] - acdc[0]:+.4f})"
            lines.append(f"| {_pct(float(f))} | {_counts(table[f'seg-only|{f}'])} | {v['seg-only']:.3f} | {v['cyclegan-ssl']:.3f} | "
                         f"{v['cyclegan-ssl'] - v['seg-only']:+.3f} | {paper} |")
        lines += ["", f"Paper column: {MONDAL}, Table 1, ACDC (cardiac cine MRI, three structures): mean IoU of the "
                  "segmentation network trained on the labelled subset only (*partial*, our seg-only's role) and of the "
                  "semi-supervised CycleGAN. A different organ, modality and metric (IoU, not Dice): the paper's size of "
                  "gain at these fractions, not a matched figure.", ""]
    lines += [f"![Loss curves at {_pct(base)}, seed 0]({LOSSES})", ""]
    if (out / PANEL).is_file():
        lines += [f"Qualitative (Fig. 6 shape): genseg at {_pct(base)}, seed 0, on held-out tumour slices (the largest "
                  "tumour, and the median tumour area): FLAIR input, the healthy translation, the residual, the "
                  "thresholded segmentation and the ground truth.", "", f"![genseg on held-out slices]({PANEL})", ""]
    lines += [PAPER_NOTE, ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def verdicts(results: dict) -> list[str]:
    """The expected orderings at the base fraction, each said plainly (holds / does not hold)."""
    s, st = results["summary"], results["settings"]
    base = st["base_fraction"]
    rows = {m: r for m in results["methods"] if (r := s["table"].get(f"{m}|{base:g}"))}
    lines = []
    if "genseg" in rows and "seg-only" in rows:
        g, so = rows["genseg"]["dice_mean"], rows["seg-only"]["dice_mean"]
        lines += [f"genseg beats seg-only at {_pct(base)}: **{'holds' if g > so else 'does not hold'}** "
                  f"(genseg {g:.3f}, seg-only {so:.3f}, {g - so:+.3f}).", ""]
    lines += ordering_verdict({f"base|{m}": r for m, r in rows.items()}, "base")
    low, full = s["gap"]["seg_only_low"], s["gap"]["seg_only_full"]
    if low is not None and full is not None and full <= low:
        lines += [f"Fully supervised seg-only ({full:.3f}) is not above seg-only at {_pct(base)} ({low:.3f}): the gap "
                  "shares are not meaningful in this run.", ""]
    return lines


def _figures(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s, st = results["summary"], results["settings"]
    base, table = st["base_fraction"], s["table"]
    rows = [table[f"{m}|{base:g}"] for m in results["methods"] if f"{m}|{base:g}" in table]
    if rows:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
        names = [r["method"] for r in rows]
        ax1.bar(names, [r["dice_mean"] for r in rows], yerr=[r["dice_std"] or 0.0 for r in rows], color="#4c72b0", capsize=4)
        full = table.get("seg-only|1")
        if full:
            ax1.axhline(full["dice_mean"], color="k", ls="--", lw=1, label="seg-only, 100 %")
            ax1.legend(fontsize=8)
        ax1.set_ylim(0, 1)
        ax1.set_ylabel("held-out Dice (whole tumour)")
        ax1.set_title(f"BraTS, {_pct(base)} annotated, {rows[0]['n']} seed(s)", fontsize=9)
        gap = s["gap"]["methods"]
        semi = [m for m in names if gap.get(m, {}).get("share") is not None]
        shares = [gap[m]["share"] for m in semi]
        ax2.bar(semi, shares, color=["#55a868" if v >= 0 else "#c44e52" for v in shares])
        ax2.axhline(0, color="k", lw=0.8)
        ax2.set_ylabel(f"share of the seg-only {_pct(base)} → 100 % gap")
        ax2.set_title("gap covered (Fig. 7)", fontsize=9)
        for ax in (ax1, ax2):
            ax.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        fig.savefig(out / BARS, dpi=110)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for m, points in s["curve"].items():
        if points:
            xs, ys = zip(*points)
            ax.plot([100 * x for x in xs], ys, marker="o", label=m)
    for m, colour in (("cyclegan-ssl", "#8172b2"),):
        pts = sorted((r["fraction"], r["dice_mean"]) for r in table.values() if r["method"] == m)
        if pts:
            ax.plot([100 * x for x, _ in pts], [y for _, y in pts], marker="s", ls=":", color=colour, label=m)
    ax.set_xscale("log")
    ax.set_xlabel("annotated training presence slices (%)")
    ax.set_ylabel("held-out Dice (whole tumour)")
    ax.set_ylim(0, 1)
    ax.set_title(f"BraTS annotation efficiency, {results['profile']} profile", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / CURVE, dpi=110)
    plt.close(fig)
    runs = [r for r in results["runs"] if r["seed"] == 0 and r["fraction"] == base]
    if runs:
        loss_curves(runs, out / LOSSES, plt, ncols=3)
