"""Spin boxes set up in one call (the docks' forms)."""

from __future__ import annotations

from qtpy.QtWidgets import QDoubleSpinBox, QSpinBox


def spin(lo: int, hi: int, value: int, special: str = "") -> QSpinBox:
    """An integer spin box; ``special``: the text shown at ``lo``."""
    w = QSpinBox()
    w.setRange(lo, hi)
    w.setValue(value)
    if special:
        w.setSpecialValueText(special)
    return w


def dspin(lo: float, hi: float, value: float, decimals: int, special: str = "") -> QDoubleSpinBox:
    """A floating-point spin box; ``special``: the text shown at ``lo``."""
    w = QDoubleSpinBox()
    w.setDecimals(decimals)
    w.setRange(lo, hi)
    w.setValue(value)
    if special:
        w.setSpecialValueText(special)
    return w
