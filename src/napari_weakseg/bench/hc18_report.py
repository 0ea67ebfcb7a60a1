"""Markdown report and figures of the HC18 suite. Every number comes from results.json; the
qualitative panel (pictures, no numbers) is drawn once, by the run that has the images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .published import TABLE_I_III_FETAL, TABLE_IV_FETAL, WANG, fmt
from .report import machine_line, model_selection_line, run_lines

# the paper's Dice for each of our rows: G_A ablations (Tables I, III), final network (Table IV)
PAPER = {
    **{name: dice[0] for name, (dice, _) in TABLE_I_III_FETAL.items()},
    "noise-weighted Dice": TABLE_IV_FETAL["U-Net (LQSS+IT+wDice)"][0][0],
    "plain Dice": TABLE_IV_FETAL["U-Net (LQSS+IT)"][0][0],
}
PANEL = "hc18-qualitative.png"
BARS = "hc18-dice.png"
LOSSES = "hc18-losses.png"


def _fmt(x, spec: str = ".3f") -> str:
    return "—" if x is None else format(x, spec)


def write_hc18_report(results: dict, out: Path) -> Path:
    out = Path(out)
    s, st = results["summary"], results["settings"]
    _bar_chart(results, out)
    seeds = results["seeds"]
    spread = "std over seeds" if seeds > 1 else "std over images"
    lines = [
        f"## HC18 fetal head: pseudo labels without annotation ({results['profile']} profile)",
        "",
        "The pseudo-label method of Wang et al. and its ablations on HC18 fetal head ultrasound. **No annotation "
        "trains anything**: the shape prior is a range of ellipses, and the annotations (skull outlines, filled) only "
        "score. Like the paper's pseudo-label generation the CycleGAN stage is transductive: it runs on the training "
        "images and its pseudo labels for those images are scored; the final network is also scored on held-out "
        "test images it never saw.",
        "",
    ]
    if results["profile"] != "gpu":
        lines += [
            "**Reduced scale.** These numbers come from a 2-core CPU: small networks (preset "
            f"`{st['preset']}`), {st['size']}x{st['size']} images, {results['steps']} CycleGAN steps per run, "
            f"{st['pseudo_label']['rounds']} round(s) of {st['pseudo_label']['round_steps']} steps, "
            f"{st['n_train']} training images and {seeds} seed(s). The paper trains far larger networks for far "
            "longer on every image, so its numbers are a reference for the ordering, not a target at this scale.",
            "",
        ]
    px = st["pixel_mm"]
    prior = st["pseudo_label"]
    lines += [
        (
            f"Data: a random split (seeded) over every image of `{Path(st['data']).name}`, repeat scans of one fetus "
            f"kept together: {st['n_train']} train, {st['n_test']} test. "
            if st.get("split") == "random"
            else f"Data: the first {st['n_train']} images of `{Path(st['data']).name}` (sorted; repeat scans of one fetus "
            f"kept together) train, the next {st['n_test']} test. "
        )
        + "Each image is resized, aspect kept, to a long side of "
        f"{st['size']} px and padded to a square; pixel sizes come from the csv per image "
        f"({px['native_range'][0]:.3f}–{px['native_range'][1]:.3f} mm native, median {px['native_median']:.4f}). "
        f"The study holds one spacing, the median working pixel size **{px['study']:.3f} mm**, with which the prior's "
        "mm become pixels; ASSD uses each image's own pixel size. "
        f"{st['annotations_fitted']} annotation outline(s) cut by the image edge were filled by an ellipse fit.",
        "",
        _prior_text(st, prior),
        "",
        machine_line(results),
        "",
    ]
    lines += run_lines(results) + [model_selection_line(results), ""]
    lines += [
        "### Pseudo labels of G_A (Tables I and III)",
        "",
        f"Thresholded G_A output on the {st['n_train']} training images against their filled annotations; "
        f"Dice mean ({spread}), ASSD mean over images with a non-empty prediction.",
        "",
        "| run | D_VAE | DGCC | Dice | ASSD (mm) | empty predictions | paper Dice | paper ASSD (px) | train time (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in s["ablations"].items():
        first = next(r for r in results["ablations"] if r["name"] == name)
        std = row["dice_seed_std"] if seeds > 1 else row["dice_image_std"]
        paper_dice, paper_assd = TABLE_I_III_FETAL.get(name, (None, None))
        lines.append(
            f"| {name} | {'yes' if first['use_vae_disc'] else 'no'} | {'yes' if first['use_dgcc'] else 'no'} | "
            f"{row['dice_mean']:.3f} ({_fmt(std)}) | {_fmt(row['assd_mm_mean'], '.2f')} | {row['empty_predictions']} | "
            f"{fmt(paper_dice, 3)} | {fmt(paper_assd, 2)} | {row['train_seconds']:.0f} |"
        )
    keep = st.get("selection_keep", 25)  # suites run before it was recorded kept the best quarter
    lines += [
        "",
        "### Final network after selection and iterative training (Table IV)",
        "",
        f"From the + both run: selection by D_B's score (the best {keep:g} %), then "
        f"{prior['rounds']} round(s) of a fresh segmentation network on the kept pseudo labels, re-selecting each "
        "round; with the noise-weighted Dice or the plain soft Dice. No validation (nothing is annotated): every "
        "round runs.",
        "",
        "| loss | Dice, training images | ASSD (mm), training | Dice, test images | ASSD (mm), test | paper Dice | refine time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in s["final"].items():
        tr, te = row["train"], row["test"]
        paper = _fmt(PAPER.get(name))
        lines.append(
            f"| {name} | {tr['dice_mean']:.3f} ({_fmt(tr['dice_seed_std'] if seeds > 1 else tr['dice_image_std'])}) | "
            f"{_fmt(tr['assd_mm_mean'], '.2f')} | "
            f"{te['dice_mean']:.3f} ({_fmt(te['dice_seed_std'] if seeds > 1 else te['dice_image_std'])}) | "
            f"{_fmt(te['assd_mm_mean'], '.2f')} | {paper} | {row['refine_seconds']:.0f} |"
        )
    sel = [f["selection"] for f in results["final"] if f.get("selection") and f["seed"] == 0][:1]
    if sel:
        sel = sel[0]
        both = s["ablations"].get("+both", {}).get("dice_mean")
        lines += [
            "",
            f"Selection (seed 0) kept {sel['kept']} of {sel['of']} pseudo labels; their mean Dice "
            f"{sel['kept_dice_mean']:.3f} against {_fmt(both)} for all of them "
            "(the selection " + ("picks" if both is not None and sel["kept_dice_mean"] > both else "does not pick") + " better labels).",
        ]
    lines += ["", verdict(results), "", gap(results), "", f"![Dice per run]({BARS})", ""]
    if _loss_figure(results, out):
        lines += ["CycleGAN-stage loss terms of each run (seed 0, smoothed):", "", f"![Loss curves]({LOSSES})", ""]
    if (out / PANEL).is_file():
        lines += [
            "Qualitative (evenly spaced images, not picked): annotation (green), + both pseudo label (red), "
            "final network, noise-weighted Dice (yellow); top row training images, bottom row test images.",
            "",
            f"![Annotation, pseudo label and final prediction]({PANEL})",
            "",
        ]
    lines += [
        f"**Paper columns:** {WANG}, fetal head (HC18 at 256x256, 70 / 10 / 20 % split, the paper's networks "
        "and 150 epochs): Dice mean (std over test images) and ASSD in pixels of the pseudo-label generator G_A "
        "(Table I: baseline, DVAE; Table III: +DGCC, +DVAE+DGCC) and of the final U-Net (Table IV: LQSS+IT+wDice "
        "beside our noise-weighted Dice, LQSS+IT beside our plain Dice; U-Net trained on the manual annotations: "
        f"{fmt(TABLE_IV_FETAL['U-Net (manual)'][0], 3)}). Full numbers, per-image Dice included, in results.json.",
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _loss_figure(results: dict, out: Path) -> bool:
    """The seed-0 ablation runs' loss curves (from results.json, or the run's metrics file); False if none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import loss_curves

    runs = [r for r in results["ablations"] if r["seed"] == 0 and (r.get("curve") or r.get("metrics_file"))]
    if not runs:
        return False
    loss_curves(runs, out / LOSSES, plt, title=lambda r: r["name"], ncols=2)
    return (out / LOSSES).is_file()


def verdict(results: dict) -> str:
    """Do the paper's orderings hold here: + both > baseline, and final (weighted) > + both pseudo labels?"""
    ab, fin = results["summary"]["ablations"], results["summary"]["final"]
    parts = []
    if "baseline" in ab and "+both" in ab:
        b, both = ab["baseline"]["dice_mean"], ab["+both"]["dice_mean"]
        parts.append(
            f"+ both over the baseline CycleGAN (paper +0.033): **{both - b:+.3f}** ({'holds' if both > b else 'does not hold'} here)"
        )
    if "+both" in ab and "noise-weighted Dice" in fin:
        both, f = ab["+both"]["dice_mean"], fin["noise-weighted Dice"]["train"]["dice_mean"]
        parts.append(f"final network over the + both pseudo labels on the same images (paper +0.025): **{f - both:+.3f}**")
    if "noise-weighted Dice" in fin and "plain Dice" in fin:
        w, p = fin["noise-weighted Dice"]["test"]["dice_mean"], fin["plain Dice"]["test"]["dice_mean"]
        parts.append(f"noise-weighted over plain Dice on the test images: **{w - p:+.3f}**")
    return "Orderings: " + "; ".join(parts) + "." if parts else ""


def gap(results: dict) -> str:
    """How far our best pseudo labels and final network are from the paper's, said plainly."""
    ab, fin, paper = results["summary"]["ablations"], results["summary"]["final"], PAPER
    if not ab:
        return ""
    best_name, best = max(((k, v["dice_mean"]) for k, v in ab.items()), key=lambda kv: kv[1])
    text = f"Best pseudo labels here: {best_name}, Dice {best:.3f}, against the paper's {paper['baseline']:.3f}–{paper['+both']:.3f}"
    if "noise-weighted Dice" in fin:
        final = fin["noise-weighted Dice"]["test"]["dice_mean"]
        text += f"; final network {final:.3f} on the test images against {paper['noise-weighted Dice']:.3f}"
    far = best < paper["baseline"] - 0.05
    return text + (
        ". **These results are poor: far below the paper's.** At this scale (small networks, few steps, "
        "low resolution) the CycleGAN's masks often cover tissue beside the head (see the panel); they do not "
        "show what the method reaches at the paper's scale."
        if far
        else ": close to the paper's."
    )


def _bar_chart(results: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ab, fin, paper = results["summary"]["ablations"], results["summary"]["final"], PAPER
    labels, values, errors, colours, refs = [], [], [], [], []
    for name, row in ab.items():
        labels.append(f"G_A {name}")
        values.append(row["dice_mean"])
        errors.append(row["dice_image_std"])
        colours.append("#4c72b0")
        refs.append(paper.get(name))
    for name, row in fin.items():
        for split, colour in (("train", "#55a868"), ("test", "#c44e52")):
            labels.append(f"final, {name.split()[0]}\n({split})")
            values.append(row[split]["dice_mean"])
            errors.append(row[split]["dice_image_std"])
            colours.append(colour)
            refs.append(paper.get(name))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(labels)), 3.8))
    x = np.arange(len(labels))
    ax.bar(x, values, yerr=errors, color=colours, capsize=3)
    ref_x = [i for i, r in enumerate(refs) if r is not None]
    ax.scatter(ref_x, [refs[i] for i in ref_x], marker="_", s=600, color="k", zorder=3, label="paper")
    ax.set_xticks(x, labels, fontsize=7, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("Dice (mean ± std over images)")
    ax.set_title(f"HC18, {results['profile']} profile: pseudo labels (blue), final network (green train, red test)", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = out / BARS
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_panel(out: Path, train, test, panel: dict, n: int) -> Path:
    """Evenly spaced training images (annotation, + both pseudo label, final prediction) over evenly
    spaced test images (annotation, final prediction)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        (train, np.linspace(0, len(train.names) - 1, n).round().astype(int), True),
        (test, np.linspace(0, len(test.names) - 1, n).round().astype(int), False),
    ]
    fig, axes = plt.subplots(2, n, figsize=(2.4 * n, 5.0), squeeze=False)
    for r, (data, idx, is_train) in enumerate(rows):
        final = panel["train" if is_train else "test"]
        for c, i in enumerate(idx):
            ax = axes[r][c]
            ax.imshow(data.images[i], cmap="gray")
            layers = [(data.masks[i], "#2ca02c")] + ([(panel["pseudo"][i], "#d62728")] if is_train else []) + [(final[i], "#ffd700")]
            for mask, colour in layers:
                if mask.any():
                    ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=1.2)
            ax.set_title(f"{'train' if is_train else 'test'} {data.names[i]}", fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    path = Path(out) / PANEL
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _prior_text(st: dict, prior: dict) -> str:
    lo, hi = prior["ellipse_size_mm"]
    if st.get("prior") == "paper":
        return (
            f"Shape prior (ellipses, uniform draws), Wang et al.'s (Sec. IV-B): minor axis **{lo:g}–{hi:g} mm**, major / "
            f"minor ratio {1 / prior['ellipse_aspect'][1]:.1f}–{1 / prior['ellipse_aspect'][0]:.1f}, any angle, centre within "
            f"{prior['ellipse_centre'][0]:.0%}–{prior['ellipse_centre'][1]:.0%} of the frame."
        )
    return (
        f"Shape prior (ellipses, uniform draws): major axis **{lo}–{hi} mm**, "
        f"from the csv's head circumferences of the training images ({st['hc_mm_range_train'][0]:.0f}–"
        f"{st['hc_mm_range_train'][1]:.0f} mm; the smallest HC at the roundest aspect to the largest at the flattest, "
        f"Ramanujan's perimeter); aspect {prior['ellipse_aspect'][0]}–{prior['ellipse_aspect'][1]}, any angle, centre "
        f"within {prior['ellipse_centre'][0]:.0%}–{prior['ellipse_centre'][1]:.0%} of the frame. The HC range is "
        "population knowledge (what a sonographer knows of the gestational ages scanned); no image is paired with "
        "its own size."
    )
