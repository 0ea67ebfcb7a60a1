"""The papers' published figures that the benchmark reports put beside ours, cited by table.

Copied from the papers' text in ``shared/papers/`` (numbers only). Values are (mean, std); None = not reported.
"""

from __future__ import annotations

VORONTSOV = "Vorontsov et al., *Towards annotation-efficient segmentation via image-to-image translation* (journal)"
MONDAL = "Mondal et al., *Revisiting CycleGAN for semi-supervised segmentation*"
WANG = "Wang et al., *Annotation-efficient learning for medical image segmentation based on noisy pseudo labels and adversarial learning*"

# Vorontsov et al. Table II: Dice at 1 % annotations, mean (std) over three runs. Brain: BraTS 2017 half-slices
# 240x120, four sequences; synthetic: cluttered MNIST (digit 9 annotated only).
TABLE_II_COLUMNS = ("brain", "liver", "48-simple", "48-hard", "128")
TABLE_II = {
    "seg-only": ((0.69, 0.04), (0.66, 0.01), (0.61, 0.01), (0.36, 0.01), (0.15, 0.01)),
    "ae": ((0.73, 0.04), (0.66, 0.02), (0.75, 0.01), (0.49, 0.02), (0.57, 0.02)),
    "mean-teacher": ((0.75, 0.01), (0.69, 0.02), (0.83, 0.02), (0.56, 0.01), (0.70, 0.01)),
    "genseg": ((0.83, 0.01), (0.74, 0.01), (0.84, 0.00), (0.60, 0.01), (0.74, 0.02)),
    "genseg-sepdec": ((0.79, 0.00), (0.69, 0.02), (0.83, 0.01), (0.62, 0.01), (0.73, 0.02)),
}
# Vorontsov et al. Sec. IV-D / Fig. 7 (text): share of the gap between seg-only at 1 % and at 100 % that each
# method covers on brain, mean +- std over three runs
FIG_7_BRAIN_GAP = {"genseg": (0.64, 0.07), "mean-teacher": (0.28, 0.05), "ae": (0.18, 0.18)}

# Mondal et al. Table 1, ACDC (cardiac MRI, three structures): mean IoU over the validation set, not Dice
TABLE_1_ACDC = {
    "partial": {0.1: 0.8418, 0.2: 0.8642, 0.3: 0.8785, 0.5: 0.8863},
    "cyclegan-ssl": {0.1: 0.8463, 0.2: 0.8688, 0.3: 0.8804, 0.5: 0.8890},
    "full": 0.8982,
}

# Wang et al., fetal head (HC18, 256x256): Dice and ASSD (pixels) mean +- std over the test images.
# Tables I and III: the pseudo-label generator G_A; Table IV: the final U-Net.
TABLE_I_III_FETAL = {
    "baseline": ((0.904, 0.078), (9.130, 5.977)),  # Tables I and III
    "+D_VAE": ((0.918, 0.085), (6.890, 5.497)),  # Table I, "DVAE"
    "+DGCC": ((0.921, 0.093), (6.800, 7.061)),  # Table III
    "+both": ((0.937, 0.086), (5.331, 6.985)),
}  # Table III, "+DVAE+DGCC"
TABLE_IV_FETAL = {
    "U-Net (baseline)": ((0.945, 0.061), (4.238, 3.604)),
    "U-Net (LQSS)": ((0.951, 0.041), (4.137, 3.487)),
    "U-Net (LQSS+IT)": ((0.958, 0.034), (3.530, 2.561)),
    "U-Net (LQSS+IT+wDice)": ((0.962, 0.026), (3.155, 2.153)),
    "U-Net (manual)": ((0.973, 0.018), (2.352, 1.635)),
}


def table_ii(method: str, column: str) -> tuple[float, float] | None:
    """(mean, std) of ``method`` in Table II's ``column`` (brain, liver, 48-simple, 48-hard, 128), or None."""
    row = TABLE_II.get(method)
    return row[TABLE_II_COLUMNS.index(column)] if row and column in TABLE_II_COLUMNS else None


def fmt(value: tuple[float, float] | None, digits: int = 2) -> str:
    """``0.83 (0.01)``, or a dash for a figure the paper does not report."""
    return "—" if value is None else f"{value[0]:.{digits}f} ({value[1]:.{digits}f})"
