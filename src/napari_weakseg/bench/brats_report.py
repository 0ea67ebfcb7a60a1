"""Markdown report and figures of the BraTS suite. Every number comes from results.json; the
qualitative panel (pictures, no numbers) is drawn once, by the run that has the images."""

from __future__ import annotations

from pathlib import Path

from .published import FIG_7_BRAIN_GAP, VORONTSOV, fmt, table_ii
from .report import loss_curves, machine_line, model_selection_line, ordering_verdict, run_lines

BARS = "brats-dice.png"
LOSSES = "brats-losses.png"
PANEL = "brats-qualitative.png"
SETTINGS = {
    "volumes": "masks on one training volume",
    "all": "masks on every training volume",
    "slices": "masks on a share of the presence half-slices",
}
PAPER_NOTE = (
    f"**Paper columns:** {VORONTSOV}, Table II (brain, Dice at 1 % annotations, mean (std) over three runs) "
    "and Sec. IV-D / Fig. 7 (share of the gap covered, mean (std)): BraTS 2017, 285 volumes (80 % training, "
    "masks on the volumes of 1 % of the training data), hemisphere half-slices of 240x120 with all four "
    "sequences, the paper's networks and 500 epochs, model selection and early stopping on a validation "
    "subset. Our setting follows the paper's protocol (hemispheres, whole-volume masks, a validation volume, "
    "the best-validation checkpoint) on four volumes, two sequences and a CPU's budget: the columns show the "
    "paper's level and ordering, not a matched comparison."
)


def _fmt(x, spec: str = ".3f") -> str:
    return "—" if x is None else format(x, spec)


def _gap_text(value) -> str:
    return "—" if value is None else f"{value[0]:.0%} ± {value[1]:.0%}"


def _counts(row: dict) -> str:
    """Annotated of the training presence units, e.g. ``61 / 120`` (per fold when they differ)."""
    return ", ".join(str(a) for a in row["n_annotated"]) + " / " + ", ".join(str(n) for n in row["n_train_presence"])


def write_brats_report(results: dict, out: Path) -> Path:
    out = Path(out)
    s, st = results["summary"], results["settings"]
    table = s["table"]
    _figures(results, out)
    unit = "half-slices" if st["halves"] else "slices"
    lines = [
        f"## BraTS: whole tumour, tags against masks alone ({results['profile']} profile)",
        "",
        "Every method on brain tumour MRI (BraTS 2015 cases from BraTS 2013), FLAIR + T1c as channels, whole "
        "tumour (labels 1–4) inside the brain mask, set up as Vorontsov et al. (Sec. IV-D): "
        + (
            "every axial slice split into its hemispheres, each tagged on its own (kept when the brain covers at "
            f"least {st['roi_min']:.0%} of it; presence from {st['lesion_min']:.0%} of its brain, absence without a "
            "tumour voxel, unknown in between), "
            if st["halves"]
            else "whole axial slices, "
        )
        + "masks on whole volumes, a validation volume for the checkpoint.",
        "",
    ]
    if results["profile"] != "gpu":
        lines += [
            f"**Reduced scale.** A 2-core CPU: slices reduced from 240x240 to {st['size']}x{st['size']} (area "
            f"averaging), small networks (preset `{st['preset']}`), {results['steps']} training steps per run, "
            f"{len(results['folds'])} fold(s), {results['seeds']} seed(s) for {', '.join(st['seed_methods'])} "
            "(one for the others). The paper trains far larger networks for far longer on hundreds of volumes at "
            "full resolution.",
            "",
        ]
    cases = "; ".join(_case_text(c, st["halves"]) for c in st["cases"])
    folds = "; ".join(
        f"fold {f['fold']}: train {', '.join(f['train'])}, validate {f['validation']}, test {f['test']}" for f in results["folds"]
    )
    lines += [
        f"Data: `{Path(st['data']).name}`: {cases}.",
        "",
        f"Folds (no volume in two roles): {folds}. Masks: **volumes** keeps the masks of {_volumes_kept(st)} (which "
        "rotates with the seed) and the tags of all; **all** keeps every training volume's "
        f"masks (the fully supervised reference); **slices** keeps {st['slice_fraction']:.0%} of the training "
        f"volumes' presence {unit}. The validation volume is fully annotated and only selects the checkpoint "
        f"(validation every {st['val_every']} steps; the best one is scored).",
        "",
        "Dice: 3-D Dice of the whole held-out volume at the source resolution (240x240: the probability upsampled "
        "bilinearly from the working size, thresholded), over every brain slice; false positives count.",
        "",
        machine_line(results),
        "",
    ]
    lines += run_lines(results) + [model_selection_line(results), ""]

    lines += [
        "### Every method, masks on one training volume (Table II / Fig. 7 setting)",
        "",
        "Dice mean (std over folds x seeds); gap share = (Dice − seg-only) / (seg-only with every training volume's "
        "masks − seg-only): the share of the gap to full supervision a method covers.",
        "",
        "| method | runs | Dice | per fold | Dice, presence slices | FP pixels, tumour-free slices | annotated / presence "
        f"{unit} | gap share | paper Dice (Table II) | paper gap share (Fig. 7) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    gap = s["gap"]["methods"]
    for m in results["methods"]:
        r = table.get(f"{m}|volumes")
        if r:
            lines.append(_row(m, r, _fmt(gap.get(m, {}).get("share"), ".0%"), fmt(table_ii(m, "brain")), _gap_text(FIG_7_BRAIN_GAP.get(m))))
    for key, label in (("all", "masks on every training volume"), ("slices", f"{st['slice_fraction']:.0%} of the presence {unit}")):
        for m in results["methods"]:
            r = table.get(f"{m}|{key}")
            if r:
                lines.append(_row(f"{m}, {label}", r, "100%" if key == "all" else "—", "—", "—"))
    lines += ["", f"![Dice per method and setting]({BARS})", ""]
    lines += targets(results) + translation_lines(results) + stitching_lines(results) + verdicts(results)
    lines += [f"![Loss curves, fold {results['folds'][0]['fold']}, seed 0, masks on one volume]({LOSSES})", ""]
    if (out / PANEL).is_file():
        lines += [
            "Qualitative (Fig. 6 shape): genseg with masks on one volume, the first fold, on held-out tumour slices "
            "(the largest tumour, and the median tumour area): FLAIR input, the healthy translation, the residual, the "
            "thresholded segmentation and the ground truth (working size).",
            "",
            f"![genseg on held-out slices]({PANEL})",
            "",
        ]
    lines += [PAPER_NOTE, ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _case_text(c: dict, halves: bool) -> str:
    text = f"{c['name']} ({c['slices']} brain slices: {c['presence']} P / {c['absence']} A"
    if halves:
        text += (
            f"; halves {c['presence_halves']} P / {c['absence_halves']} A / {c['unknown_halves']} unknown, "
            f"{c['absence_halves_in_tumour_range']} absence halves inside the tumour's axial range against "
            f"{c['absence_slices_in_tumour_range']} whole absence slices"
        )
    return text + ")"


def _row(name: str, r: dict, share: str, paper: str, paper_gap: str) -> str:
    per_fold = ", ".join(f"{v:.2f}" for _, v in sorted(r["dice_per_fold"].items(), key=lambda kv: int(kv[0])))
    return (
        f"| {name} | {r['n']} | {r['dice_mean']:.3f} ({_fmt(r['dice_std'])}) | {per_fold} | {r['dice_presence_mean']:.3f} | "
        f"{r['fp_tumour_free_mean']:.0f} | {_counts(r)} | {share} | {paper} | {paper_gap} |"
    )


def targets(results: dict) -> list[str]:
    """Issue #14's targets, each with its measured value and by how much it is met or missed."""
    t = results["summary"]["targets"]
    paired = results["summary"]["paired"].get("volumes", {})
    lines = ["### Targets", "", "| target | measured | met |", "|---|---|---|"]
    names = {
        "genseg_minus_seg_only": "genseg − seg-only, masks on one volume (paired by fold and seed) ≥ +0.05",
        "genseg_dice": "genseg Dice, masks on one volume ≥ 0.75",
        "genseg_residual_ratio": "genseg mean |residual|: held-out absence halves / presence halves ≤ 1/3",
    }
    for k, label in names.items():
        v = t[k]["value"]
        met = "—" if t[k]["met"] is None else ("yes" if t[k]["met"] else f"**no** (by {abs(v - t[k]['target']):.3f})")
        extra = f" ({paired['wins']} of {paired['n']} pairs won)" if k == "genseg_minus_seg_only" and paired else ""
        lines.append(f"| {label} | {_fmt(v, '+.3f' if k == 'genseg_minus_seg_only' else '.3f')}{extra} | {met} |")
    return lines + [""]


def translation_lines(results: dict) -> list[str]:
    """The convergence check in full, for every translation method with masks on one volume."""
    rows = [
        (m, r["translation_check"])
        for m in results["methods"]
        if (r := results["summary"]["table"].get(f"{m}|volumes")) and r.get("translation_check")
    ]
    if not rows:
        return []
    lines = [
        "### What the translation changes (held-out volume, masks on one volume)",
        "",
        "Mean |residual| (the residual decoder's output) and mean |input − healthy| (the change the healthy "
        "translation makes), raw intensity units, per half-slice on absence and presence halves (their ratio is "
        "the target's), and per pixel on the presence halves inside the tumour and in the brain outside it. "
        "Vorontsov et al. never apply the residual decoder to an absence image's own code (Eq. 2–5): absence images "
        "are autoencoded by the common decoder, so the change is the domain-by-domain measure of what the "
        "translation does; the residual is the one the target names.",
        "",
        "| method | residual: absence / presence halves | ratio | in tumour / outside | change: absence / presence halves "
        "| ratio | in tumour / outside |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, c in rows:

        def pair(a, b, c=c):
            return f"{_fmt(c.get(a))} / {_fmt(c.get(b))}"

        lines.append(
            f"| {m} | {pair('absence', 'presence')} | {_fmt(c.get('ratio'), '.2f')} | {pair('in_tumour', 'outside_tumour')} | "
            f"{pair('change_absence', 'change_presence')} | {_fmt(c.get('change_ratio'), '.2f')} | "
            f"{pair('change_in_tumour', 'change_outside_tumour')} |"
        )
    return lines + [""]


def stitching_lines(results: dict) -> list[str]:
    """Whole slices against halves stitched, with the same models (issue #14: measure and say)."""
    rows = [(key, r) for key, r in results["summary"]["table"].items() if r.get("dice_stitched_mean") is not None]
    if not rows:
        return []
    lines = [
        "### Prediction: whole slices, or halves stitched",
        "",
        "The same best checkpoints (trained on half-slices) predicting the held-out volume as whole slices (what the "
        "tables above score, and the default of `Run model` and `weakseg predict`) and as its two half-slices put back "
        "side by side (`weakseg predict --stitch-halves`):",
        "",
        "| method, masks | whole slices | halves stitched |",
        "|---|---|---|",
    ]
    for key, r in rows:
        m, st = key.split("|")
        lines.append(f"| {m}, {st} | {r['dice_mean']:.3f} | {r['dice_stitched_mean']:.3f} |")
    better = sum(r["dice_mean"] >= r["dice_stitched_mean"] for _, r in rows)
    return [*lines, "", f"Whole slices score at least as well in {better} of {len(rows)} rows.", ""]


def verdicts(results: dict) -> list[str]:
    """The expected ordering with masks on one volume, said plainly (holds / does not hold)."""
    s = results["summary"]
    rows = {m: r for m in results["methods"] if (r := s["table"].get(f"{m}|volumes"))}
    lines = ordering_verdict({f"volumes|{m}": r for m, r in rows.items()}, "volumes")
    low, full = s["gap"]["seg_only_low"], s["gap"]["seg_only_full"]
    if low is not None and full is not None and full - low < 0.05:
        lines += [
            f"seg-only with every training volume's masks ({full:.3f}) is not clearly above seg-only with one volume's "
            f"({low:.3f}; less than 0.05 apart): the gap shares divide by that small gap and are not meaningful in this run.",
            "",
        ]
    return lines


def _figures(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = results["summary"]["table"]
    rows = [r for key in ("volumes", "all", "slices") for m in results["methods"] if (r := table.get(f"{m}|{key}"))]
    if rows:
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows)), 3.8))
        colours = {"volumes": "#4c72b0", "all": "#55a868", "slices": "#dd8452"}
        names = [f"{r['method']}\n{r['setting']}" for r in rows]
        ax.bar(
            names,
            [r["dice_mean"] for r in rows],
            yerr=[r["dice_std"] or 0.0 for r in rows],
            color=[colours[r["setting"]] for r in rows],
            capsize=4,
        )
        for m, v in ((m, table_ii(m, "brain")) for m in results["methods"]):
            if v and f"{m}|volumes" in table:
                i = names.index(f"{m}\nvolumes")
                ax.plot([i - 0.4, i + 0.4], [v[0], v[0]], color="k", lw=1.2, ls=":")
        ax.set_ylim(0, 1)
        ax.set_ylabel("held-out 3-D Dice (whole tumour)")
        ax.set_title("BraTS: blue masks on one volume, green on all, orange on a share of slices; dotted: paper (Table II)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        fig.tight_layout()
        fig.savefig(out / BARS, dpi=110)
        plt.close(fig)
    first = results["folds"][0]["fold"] if results["folds"] else None
    runs = [r for r in results["runs"] if r["seed"] == 0 and r["setting"] == "volumes" and r["fold"] == first]
    if runs:
        loss_curves(runs, out / LOSSES, plt, ncols=3)


def _volumes_kept(st: dict) -> str:
    fraction = st.get("volume_fraction")
    return "one of the training volumes" if fraction is None else f"{fraction:.0%} of the training volumes (at least one)"
