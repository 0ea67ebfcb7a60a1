"""A clickable strip showing every slice's tag and annotation state at a glance."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QRectF, Qt, Signal
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

from ..study.model import Tag

TAG_COLORS = {Tag.UNKNOWN: QColor("#5a5f66"), Tag.PRESENCE: QColor("#e0564f"), Tag.ABSENCE: QColor("#43a860")}
ANNOTATED_COLOR = QColor("#ffd23f")
CURRENT_COLOR = QColor("#ffffff")


class SliceOverview(QWidget):
    """One cell per slice: colour = tag (red presence, green absence, grey unknown),
    a yellow bar on top = annotated, a white frame = the current slice; on an image split into halves
    each cell has two rows, half 0 above half 1 (each with its own tag and annotated mark).
    Click (or drag) to jump to a slice."""

    slice_clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tags = np.zeros(0, np.uint8)
        self.annotated = np.zeros(0, bool)
        self.half_tags: np.ndarray | None = None  # (n, 2) on a split image
        self.half_annotated: np.ndarray | None = None
        self.current = -1
        self.setMinimumHeight(26)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Slices: red presence, green absence, grey unknown; yellow bar = annotated. Click to jump.")

    def set_state(
        self,
        tags: np.ndarray,
        annotated: np.ndarray,
        current: int,
        half_tags: np.ndarray | None = None,
        half_annotated: np.ndarray | None = None,
    ) -> None:
        """tags, annotated (n,); with ``half_tags`` / ``half_annotated`` (n, 2) the halves are drawn instead."""
        self.tags, self.annotated, self.current = np.asarray(tags), np.asarray(annotated), int(current)
        self.half_tags = None if half_tags is None else np.asarray(half_tags)
        self.half_annotated = None if half_annotated is None else np.asarray(half_annotated)
        self.update()

    def slice_at(self, x: float) -> int:
        n = len(self.tags)
        return int(np.clip(x / max(self.width(), 1) * n, 0, n - 1)) if n else -1

    def paintEvent(self, event):  # noqa: N802 (Qt name)
        n = len(self.tags)
        if not n:
            return
        p = QPainter(self)
        w, h = self.width() / n, float(self.height())
        if self.half_tags is None:
            for i, (t, a) in enumerate(zip(self.tags, self.annotated, strict=True)):
                p.fillRect(QRectF(i * w, 4, w, h - 4), TAG_COLORS[Tag(int(t))])
                if a:
                    p.fillRect(QRectF(i * w, 0, w, 4), ANNOTATED_COLOR)
        else:  # two rows: half 0 on top, half 1 below, 1 px apart
            row = (h - 1) / 2
            for i in range(n):
                for k in (0, 1):
                    top = k * (row + 1)
                    p.fillRect(QRectF(i * w, top + 3, w, row - 3), TAG_COLORS[Tag(int(self.half_tags[i, k]))])
                    if self.half_annotated[i, k]:
                        p.fillRect(QRectF(i * w, top, w, 3), ANNOTATED_COLOR)
        if 0 <= self.current < n:
            p.setPen(QPen(CURRENT_COLOR, 2))
            p.drawRect(QRectF(self.current * w, 1, max(w, 2), h - 2))
        p.end()

    def mousePressEvent(self, event):  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and len(self.tags):
            self.slice_clicked.emit(self.slice_at(event.position().x()))

    def mouseMoveEvent(self, event):  # noqa: N802
        if event.buttons() & Qt.MouseButton.LeftButton and len(self.tags):
            self.slice_clicked.emit(self.slice_at(event.position().x()))
