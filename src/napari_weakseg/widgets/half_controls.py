"""Dock controls for half-slice tags (e.g. the hemispheres): split the image, tag either half or the half
under the cursor, and the cut drawn on the canvas. Thin over :class:`~napari_weakseg.study.Study`."""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_info
from qtpy.QtWidgets import QGridLayout, QGroupBox, QLabel, QPushButton, QSpinBox

from ..io.orientation import layer_translate
from ..study import Tag
from ..study.halves import half_names

# free of napari's bindings and menu mnemonics, next to the whole-slice Alt-1/2/3
HALF_SHORTCUTS = {"presence": "Alt-4", "absence": "Alt-5", "unknown": "Alt-6"}


class HalfControls(QGroupBox):
    """Split / join, the split position, and per half the three tags. ``owner`` is the annotation dock."""

    def __init__(self, owner):
        super().__init__("Half-slices (e.g. hemispheres)")
        self.owner = owner
        g = QGridLayout(self)
        self.split_btn = QPushButton("Split into halves")
        self.split_btn.setToolTip(
            "Cut every slice in two across the patient's left-right axis (from the image's "
            "orientation) at the position given; each half then has its own tag"
        )
        self.at_spin = QSpinBox()
        self.at_spin.setToolTip("Where half 1 begins along the cut axis (default: the middle of the image's foreground)")
        self.join_btn = QPushButton("Join halves")
        self.join_btn.setToolTip("Whole slices again: each slice keeps the summary of its halves' tags")
        g.addWidget(self.split_btn, 0, 0)
        g.addWidget(QLabel("at"), 0, 1)
        g.addWidget(self.at_spin, 0, 2)
        g.addWidget(self.join_btn, 0, 3)
        self.names = [QLabel("half 0"), QLabel("half 1")]
        self.buttons: dict[tuple[int, Tag], QPushButton] = {}
        for h in (0, 1):
            g.addWidget(self.names[h], 1 + h, 0)
            for col, tag in enumerate((Tag.PRESENCE, Tag.ABSENCE, Tag.UNKNOWN), start=1):
                b = QPushButton(tag.name.lower())
                b.clicked.connect(lambda _=False, h=h, tag=tag: owner.tag_half(h, tag))
                g.addWidget(b, 1 + h, col)
                self.buttons[(h, tag)] = b
        self.hint = QLabel(
            f"Half under the cursor: {HALF_SHORTCUTS['presence']} presence, "
            f"{HALF_SHORTCUTS['absence']} absence, {HALF_SHORTCUTS['unknown']} unknown"
        )
        self.hint.setWordWrap(True)
        g.addWidget(self.hint, 3, 0, 1, 4)
        self.split_btn.clicked.connect(lambda: owner.split_halves(self.at_spin.value() if self.at_spin.value() > 0 else None))
        self.join_btn.clicked.connect(lambda: owner.join_halves())

    def refresh(self, im, s: int) -> None:
        """Show ``im`` (a StudyImage or None) at slice ``s``."""
        split = im.split if im is not None else None
        self.split_btn.setEnabled(im is not None)
        self.split_btn.setText("Move the cut" if split is not None else "Split into halves")
        self.join_btn.setEnabled(split is not None)
        for b in self.buttons.values():
            b.setEnabled(split is not None)
        if im is None:
            return
        axis = split.axis if split is not None else self.owner.cut_axis(im)
        self.at_spin.setRange(0, im.volume.shape[axis] - 1)
        if split is not None and self.at_spin.value() != split.at:
            self.at_spin.setValue(split.at)
        names = half_names(im.volume.affine, im.axis, split, im.volume.header is not None)
        for h in (0, 1):
            state = Tag(int(im.half_tags[s, h])).name.lower() if split is not None else "-"
            if split is not None and im.half_annotated()[s, h]:
                state += ", annotated"
            self.names[h].setText(f"{names[h]}: {state}")


class HalfTagging:
    """Half-slice edits of the tagging dock (mixed into AnnotationWidget; the controls above call them)."""

    def _range_half(self) -> int | None:
        im = self.image
        return self.range_half.currentIndex() - 1 if im is not None and im.split is not None and self.range_half.currentIndex() else None

    def cut_axis(self, im) -> int:
        """The in-plane axis a new split cuts across: the patient's left-right (from the affine)."""
        from ..study.halves import left_right_axis

        return left_right_axis(im.volume.affine, im.axis)

    def split_halves(self, at: int | None = None) -> None:
        """Split the current image into halves across left-right, at ``at`` (default: the middle of the
        image's foreground); on a split image, move the cut."""
        from ..study.build import split_in_halves
        from ..study.halves import foreground

        im = self.image
        if im is None:
            return
        self._process_paint()
        axis = im.split.axis if im.split is not None else self.cut_axis(im)
        roi = None if at is not None else foreground(im.volume.data)
        if self._guard(lambda: split_in_halves(self.study, im, roi, at, axis)) is not None:
            self._show_cut(im)

    def join_halves(self) -> None:
        im = self.image
        if im is not None and im.split is not None:
            self._guard(lambda: self.study.set_split(self.current, None))
            self._show_cut(im)

    def tag_half(self, half: int, tag, slices=None) -> None:
        """Tag ``half`` (0 or 1) of the current slice (or of ``slices``)."""
        self._process_paint()
        if self.image is not None and (slices is not None or self.in_slicing_plane()):
            target = self.current_slice() if slices is None else slices
            self._guard(lambda: self.study.set_tags(self.current, target, tag, half))

    def half_under_cursor(self) -> int | None:
        """0 or 1: the half of the current slice under the mouse cursor (None: not split)."""
        im = self.image
        if im is None or im.split is None:
            return None
        layer = self.mask_layer
        pos = layer.world_to_data(self.viewer.cursor.position[-layer.ndim :])
        return 0 if pos[im.split.axis] < im.split.at - 0.5 else 1

    def tag_half_under_cursor(self, tag) -> None:
        half = self.half_under_cursor()
        if half is None:
            show_info("Split the image into halves first (Half-slices: Split into halves)")
            return
        self.tag_half(half, tag)

    def _show_cut(self, im) -> None:
        layer = show_split_line(self.viewer, im, self.cut_layers.get(im.name))
        if layer is None:
            self.cut_layers.pop(im.name, None)
        else:
            self.cut_layers[im.name] = layer
            self.viewer.layers.selection.active = self.mask_layer  # painting stays on


def split_line_data(im) -> list[np.ndarray]:
    """One line per slice in data coordinates (Z, Y, X): across the slice at the cut (between pixels)."""
    sp = im.split
    other = [a for a in range(3) if a not in (im.axis, sp.axis)][0]
    lines = []
    for s in range(im.n_slices):
        p = np.zeros((2, 3))
        p[:, im.axis] = s
        p[:, sp.axis] = sp.at - 0.5
        p[:, other] = (-0.5, im.volume.shape[other] - 0.5)
        lines.append(p)
    return lines


def show_split_line(viewer, im, layer=None):
    """Add (or update, or remove when ``im`` is not split) the non-editable Shapes layer drawing the cut.
    Returns the layer, or None."""
    if im.split is None:
        if layer is not None and layer in viewer.layers:
            viewer.layers.remove(layer)
        return None
    data = split_line_data(im)
    if layer is not None and layer in viewer.layers:
        layer.data = data
        layer.shape_type = ["line"] * len(data)
        return layer
    layer = viewer.add_shapes(
        data,
        shape_type="line",
        edge_color="#ffd23f",
        edge_width=0.6,
        name=f"{im.name} cut",
        scale=im.volume.spacing,
        translate=layer_translate(im.volume),
        opacity=0.8,
    )
    layer.editable = False
    return layer
