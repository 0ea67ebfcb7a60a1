"""The qualitative panel of the papers' Fig. 6: per row one held-out slice; columns input,
healthy (translated), residual, segmentation, ground truth. Pictures only: numbers live in results.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def panel_arrays(model, x: np.ndarray, truth: np.ndarray, row_labels: list[str]) -> dict:
    """Predict the panel's rows (whole slices, as the product does). x (C, R, H, W) raw intensities, truth
    (R, H, W) -> each output (R, H, W) (healthy and residual of the first channel; None for a method without them)."""
    out = model.predict_volume(x)
    return {
        "rows": list(row_labels),
        "input": x[0],
        "healthy": out["healthy"][0] if "healthy" in out else None,
        "residual": out["residual"][0] if "residual" in out else None,
        "prediction": out["prob"] >= model.config.threshold,
        "truth": truth.astype(bool),
    }


def write_panel(path: Path, panel: dict, input_title: str = "input") -> Path:
    """Draw ``panel`` (from :func:`panel_arrays`) to the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [
        (input_title, panel["input"], "gray"),
        ("healthy", panel["healthy"], "gray"),
        ("residual", panel["residual"], "RdBu_r"),
        ("segmentation", panel["prediction"], "gray"),
        ("ground truth", panel["truth"], "gray"),
    ]
    cols = [c for c in cols if c[1] is not None]
    n = len(panel["rows"])
    fig, axes = plt.subplots(n, len(cols), figsize=(2.0 * len(cols), 2.1 * n), squeeze=False)
    lo, hi = np.percentile(panel["input"], [1, 99])
    for r in range(n):
        for c, (title, arr, cmap) in enumerate(cols):
            ax = axes[r][c]
            if title == "residual":  # diverging, centred on 0
                v = float(np.abs(arr).max()) or 1.0
                ax.imshow(arr[r], cmap=cmap, vmin=-v, vmax=v)
            elif arr.dtype == bool:
                ax.imshow(arr[r], cmap=cmap, vmin=0, vmax=1)
            else:
                ax.imshow(arr[r], cmap=cmap, vmin=lo, vmax=hi)
            ax.set_title(title if r == 0 else "", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(panel["rows"][r], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
