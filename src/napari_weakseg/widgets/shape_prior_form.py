"""A small form for the ellipse shape prior (``pseudo_label`` options) with a preview of sampled masks.

Thin over the core: the ranges are checked by :class:`~napari_weakseg.pseudo.config.PseudoLabelConfig`,
the masks come from :func:`~napari_weakseg.data.shape_prior.sample_ellipses`.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QWidget

from ..pseudo.config import PseudoLabelConfig
from .spin_boxes import dspin, spin

# option, label, lowest, highest, decimals
RANGES = (
    ("ellipse_size_mm", "size (mm, major axis)", 0.1, 10_000.0, 1),
    ("ellipse_aspect", "aspect (minor / major)", 0.01, 1.0, 2),
    ("ellipse_angle_deg", "angle (degrees)", -360.0, 360.0, 0),
    ("ellipse_centre", "centre (fraction of the slice)", 0.0, 1.0, 2),
)
PREVIEW_COUNT, PREVIEW_SIZE = 16, 64


class ShapePriorForm(QGroupBox):
    """Checkable: when checked, :meth:`options` feed training (``changed`` fires with them, or {} unchecked)."""

    changed = Signal(dict)

    def __init__(self, title: str = "Shape prior (ellipses) for training"):
        super().__init__(title)
        self.setCheckable(True)
        self.setChecked(True)
        self.setToolTip("The auxiliary masks of methods with a shape prior; each range is sampled uniformly")
        defaults = PseudoLabelConfig()
        form = QFormLayout(self)
        self.ranges: dict[str, tuple[QDoubleSpinBox, QDoubleSpinBox]] = {}
        for key, label, lo, hi, decimals in RANGES:
            pair = tuple(dspin(lo, hi, v, decimals) for v in getattr(defaults, key))
            row = QHBoxLayout()
            for box in pair:
                row.addWidget(box)
                box.valueChanged.connect(self._emit)
            form.addRow(label, _wrap(row))
            self.ranges[key] = pair
        self.pixel_mm = dspin(0.0, 100.0, 0.0, 3, "from the study")
        self.pixel_mm.valueChanged.connect(self._emit)
        self.count = spin(1, 100_000, defaults.aux_count)
        self.count.valueChanged.connect(self._emit)
        form.addRow("pixel size (mm)", self.pixel_mm)
        form.addRow("masks", self.count)
        self.preview_btn = QPushButton("Preview samples")
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        form.addRow(self.preview_btn)
        form.addRow(self.preview)
        self.toggled.connect(self._emit)

    def options(self) -> dict:
        """The ``pseudo_label`` options of the form (pixel_mm only when set)."""
        out = {key: [lo.value(), hi.value()] for key, (lo, hi) in self.ranges.items()}
        out["aux_count"] = self.count.value()
        if self.pixel_mm.value() > 0:
            out["pixel_mm"] = self.pixel_mm.value()
        return out

    def preview_masks(self, pixel_mm: float, n: int = PREVIEW_COUNT, size: int = PREVIEW_SIZE):
        """(n, 1, size, size) masks sampled from the form's ranges (the form's pixel size wins over ``pixel_mm``),
        shown as a grid. Invalid ranges raise InputError."""
        from ..data.shape_prior import mask_grid, sample_ellipses

        cfg = PseudoLabelConfig.from_dict(self.options())
        masks = sample_ellipses(n, (size, size), cfg.pixel_mm or pixel_mm, cfg.ellipse_prior(), cfg.aux_seed)
        grid = np.ascontiguousarray(mask_grid(masks, cols=4))
        image = QImage(grid.data, grid.shape[1], grid.shape[0], grid.strides[0], QImage.Format.Format_Grayscale8).copy()
        self.preview.setPixmap(QPixmap.fromImage(image).scaled(grid.shape[1] * 2, grid.shape[0] * 2))
        return masks

    def _emit(self, *_) -> None:
        self.changed.emit(self.options() if self.isChecked() else {})


def _wrap(layout) -> QWidget:
    w = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    w.setLayout(layout)
    return w
