"""How far has genseg's translation got on cluttered digits? (the investigation in docs/benchmarks.md)

usage: python scripts/analyse_digits_translation.py MNIST.npz GENSEG_RUN SEG_ONLY_RUN

Reports, on 500 presence + 500 absence test images: the segmentation Dice; how much
of the residual's magnitude lies on digit pixels (no labels used) and its Dice when
thresholded; the residual's mean magnitude on absence vs presence images (a perfect
translation leaves absence images unchanged); Dice per digit class for both runs
(labels came from digit 9 only); false-positive pixels on absence images.
"""

import sys

import numpy as np

from napari_weakseg.data.digits import make_cluttered_digits
from napari_weakseg.inference import TrainedModel
from napari_weakseg.training.metrics import pooled_dice


def main(mnist: str, genseg_run: str, seg_only_run: str) -> None:
    test = make_cluttered_digits(mnist, "test", 500, 500, 48, 8, seed=10_000)
    x = test.images[None].astype(np.float32)
    pres, truth = test.presence, test.masks
    out = TrainedModel.load(genseg_run, "last").predict_volume(x)
    base = TrainedModel.load(seg_only_run, "last").predict_volume(x)["prob"]
    res, prob = np.abs(out["residual"][0]), out["prob"]
    g, so = pooled_dice(zip(prob >= 0.5, truth, strict=True)), pooled_dice(zip(base >= 0.5, truth, strict=True))
    print(f"segmentation Dice: genseg {g:.3f}, seg-only {so:.3f}")
    share = float((res[pres] * truth[pres]).sum() / res[pres].sum())
    print(f"share of |residual| on digit pixels: {share:.3f} (digit pixels are {truth[pres].mean():.3f} of presence images)")
    best = max((pooled_dice(zip(res[pres] > t, truth[pres], strict=False)), t) for t in (0.05, 0.1, 0.2, 0.3))
    print(f"thresholded |residual| Dice on presence images: {best[0]:.3f} (|residual| > {best[1]})")
    print(f"mean |residual|: absence images {res[~pres].mean():.4f}, presence images {res[pres].mean():.4f}")
    for name, p in (("genseg", prob), ("seg-only", base)):
        per = [pooled_dice(zip(p[pres & (test.labels == d)] >= 0.5, truth[pres & (test.labels == d)], strict=False)) for d in range(10)]
        print(f"Dice per digit, {name}: " + " ".join(f"{d}:{v:.2f}" for d, v in enumerate(per)))
        print(f"false-positive pixels on the 500 absence images, {name}: {int((p[~pres] >= 0.5).sum())}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
