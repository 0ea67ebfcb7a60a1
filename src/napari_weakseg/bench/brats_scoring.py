"""Scoring of the BraTS suite (``bench/brats.py``): full-resolution Dice, the translation check, the
summary over folds and seeds with issue #14's targets."""

from __future__ import annotations

import numpy as np

SEMI = ("ae", "mean-teacher", "genseg", "genseg-sepdec", "cyclegan-ssl")


def full_resolution_prob(prob: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(Z, S, S) probability at the working size -> (Z, H, W) at the source's in-plane size (bilinear)."""
    import torch
    from torch.nn import functional as F

    if prob.shape[1:] == tuple(shape):
        return prob
    t = torch.from_numpy(np.ascontiguousarray(prob, np.float32))[:, None]
    return F.interpolate(t, size=tuple(shape), mode="bilinear", align_corners=False)[:, 0].numpy()


def residual_ratio(residual: np.ndarray, case, prof, healthy: np.ndarray | None = None) -> dict:
    """The convergence check on the held-out ``case`` (a BratsCase) under ``prof`` (a BratsProfile).
    ``residual``, ``healthy`` (C, Z, S, S) in raw units.

    - absence / presence / ratio: mean |residual| (all channels, per half-slice, then averaged) on the absence
      and the presence halves (whole slices without halves); target: a ratio of at most 1/3.
    - in_tumour / outside_tumour: mean |residual| per pixel on the presence halves, inside the tumour and
      outside it (where the residual should vanish).
    - change_*: the same for the healthy translation's change |input − healthy|. Unlike the residual (the
      residual decoder applied to an image's own unique code, which Vorontsov et al. never apply to absence
      images, Eq. 2–5, so nothing trains it to vanish there), absence images are autoencoded through the
      common decoder (Eq. 2): this is the change the translation makes, per domain.
    """
    out = {}
    for key, arr in (("", residual), ("change_", None if healthy is None else case.images - healthy)):
        if arr is None:
            continue
        r = np.abs(arr).mean(axis=0)  # (Z, S, S)
        if prof.halves:
            ht, at = case.half_tags(prof.roi_min, prof.lesion_min), case.split().at
            means = np.stack([r[:, :, :at].mean(axis=(1, 2)), r[:, :, at:].mean(axis=(1, 2))], axis=1)  # (Z, 2)
            a, p = means[ht == 2], means[ht == 1]
            cols = np.zeros(r.shape, bool)  # pixels of the presence halves
            for h, sl in ((0, np.s_[:, :, :at]), (1, np.s_[:, :, at:])):
                cols[sl] |= (ht[:, h] == 1)[:, None, None]
        else:
            means = r.mean(axis=(1, 2))
            a, p = means[case.tags == 2], means[case.tags == 1]
            cols = np.broadcast_to((case.tags == 1)[:, None, None], r.shape)
        ma, mp = (float(a.mean()) if len(a) else None), (float(p.mean()) if len(p) else None)
        tumour = case.tumour.astype(bool) & cols
        outside = ~case.tumour.astype(bool) & cols & case.brain
        out.update(
            {
                f"{key}absence": ma,
                f"{key}presence": mp,
                f"{key}ratio": ma / mp if ma is not None and mp else None,
                f"{key}in_tumour": float(r[tumour].mean()) if tumour.any() else None,
                f"{key}outside_tumour": float(r[outside].mean()) if outside.any() else None,
            }
        )
    return out


def score_test(model, test, prof) -> dict:
    """Score ``model`` on the held-out ``test`` case as the product predicts: whole slices (measured better than
    stitched halves for models trained on halves, see the report), the probability upsampled to the source's
    240x240. Also the translation check, and for a model of halves the Dice of its stitched halves."""
    from ..training.metrics import pooled_dice

    out = model.predict_volume(test.images)
    prob = full_resolution_prob(out["prob"], test.tumour_full.shape[1:])
    pred, truth = prob >= model.config.threshold, test.tumour_full
    presence = truth.any(axis=(1, 2))
    row = {
        "dice": pooled_dice([(pred, truth)]),
        "dice_working_size": pooled_dice([(out["prob"] >= model.config.threshold, test.tumour)]),
        "dice_presence_slices": pooled_dice([(pred[presence], truth[presence])]),
        "false_positive_pixels_tumour_free": int(pred[~presence].sum()),
        "test_slices": int(len(pred)),
        "test_presence_slices": int(presence.sum()),
        "prediction": "whole slices",
    }
    if "residual" in out:
        row["residual"] = residual_ratio(out["residual"], test, prof, out.get("healthy"))
    if prof.halves:
        row["dice_stitched"] = stitched_dice(model, test)
    return row


def stitched_dice(model, test) -> float:
    """Full-resolution 3-D Dice of ``model`` predicting ``test``'s two hemispheres apart, put back side by side."""
    from ..training.metrics import pooled_dice

    out = model.predict_volume(test.images, split=test.split())
    prob = full_resolution_prob(out["prob"], test.tumour_full.shape[1:])
    return pooled_dice([(prob >= model.config.threshold, test.tumour_full)])


def summarise_brats(results: dict) -> dict:
    """Mean (std over folds x seeds) per (method, setting); gap shares (Fig. 7 with whole-volume masks); the
    targets of issue #14 (genseg − seg-only, genseg's Dice, genseg's residual ratio)."""
    groups: dict[tuple, list] = {}
    for r in results["runs"]:
        groups.setdefault((r["method"], r["setting"]), []).append(r)
    table = {}
    for (m, st), rows in groups.items():
        d = [r["dice"] for r in rows]
        ratios = [r["residual"]["ratio"] for r in rows if r.get("residual", {}).get("ratio") is not None]
        check = {
            k: float(np.mean(v))
            for k in (
                "absence",
                "presence",
                "ratio",
                "in_tumour",
                "outside_tumour",
                "change_absence",
                "change_presence",
                "change_ratio",
                "change_in_tumour",
                "change_outside_tumour",
            )
            if (v := [r["residual"][k] for r in rows if r.get("residual", {}).get(k) is not None])
        }
        per_fold = {}
        for r in rows:
            per_fold.setdefault(str(r["fold"]), []).append(r["dice"])
        table[f"{m}|{st}"] = {
            "method": m,
            "setting": st,
            "n": len(rows),
            "dice_mean": float(np.mean(d)),
            "dice_std": float(np.std(d, ddof=1)) if len(d) > 1 else None,
            "dice_per_fold": {f: float(np.mean(v)) for f, v in per_fold.items()},
            "dice_presence_mean": float(np.mean([r["dice_presence_slices"] for r in rows])),
            "dice_working_size_mean": float(np.mean([r["dice_working_size"] for r in rows])),
            "fp_tumour_free_mean": float(np.mean([r["false_positive_pixels_tumour_free"] for r in rows])),
            "residual_ratio_mean": float(np.mean(ratios)) if ratios else None,
            "translation_check": check or None,
            "dice_stitched_mean": float(np.mean(w)) if (w := [r["dice_stitched"] for r in rows if "dice_stitched" in r]) else None,
            "n_annotated": sorted({r["n_annotated"] for r in rows}),
            "n_train_presence": sorted({r["n_train_presence"] for r in rows}),
            "train_seconds": float(np.mean([r["train_seconds"] for r in rows])),
        }

    def dice(m, st):
        return table.get(f"{m}|{st}", {}).get("dice_mean")

    low, full = dice("seg-only", "volumes"), dice("seg-only", "all")
    gap = {}
    if low is not None and full is not None:
        for m in SEMI:
            if dice(m, "volumes") is not None:
                gap[m] = {
                    "dice": dice(m, "volumes"),
                    "share": (dice(m, "volumes") - low) / (full - low) if abs(full - low) > 1e-9 else None,
                }
    # the paired difference genseg − seg-only on the runs both have (same fold, seed, masks)
    paired = {}
    for st in ("volumes", "slices"):
        by = {(r["fold"], r["seed"]): r["dice"] for r in groups.get(("seg-only", st), [])}
        diffs = [r["dice"] - by[(r["fold"], r["seed"])] for r in groups.get(("genseg", st), []) if (r["fold"], r["seed"]) in by]
        if diffs:
            paired[st] = {
                "mean": float(np.mean(diffs)),
                "std": float(np.std(diffs, ddof=1)) if len(diffs) > 1 else None,
                "n": len(diffs),
                "wins": int(sum(d > 0 for d in diffs)),
            }
    g = table.get("genseg|volumes", {})
    targets = {
        "genseg_minus_seg_only": {"value": paired.get("volumes", {}).get("mean"), "target": 0.05},
        "genseg_dice": {"value": g.get("dice_mean"), "target": 0.75},
        "genseg_residual_ratio": {"value": g.get("residual_ratio_mean"), "target": 1 / 3},
    }
    for k, t in targets.items():
        v = t["value"]
        t["met"] = None if v is None else (v <= t["target"] if k == "genseg_residual_ratio" else v >= t["target"])
    return {"table": table, "gap": {"seg_only_low": low, "seg_only_full": full, "methods": gap}, "paired": paired, "targets": targets}
