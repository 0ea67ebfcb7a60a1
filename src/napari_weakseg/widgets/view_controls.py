"""Dock controls for anatomical views: axial / coronal / sagittal upright in the radiological (or neurological)
convention, whatever the file's storage orientation, with R/L/A/P/S/I at the image's edges.

Thin over :mod:`napari_weakseg.io.orientation`: a view sets ``viewer.dims.order`` and
``viewer.camera.orientation2d``; the voxels are never moved. Tags and masks belong to the study's slicing
plane, so in the other planes the mask cannot be painted and slices cannot be tagged (one stroke there would
touch many of the study's slices).
"""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_info
from qtpy.QtWidgets import QComboBox, QGridLayout, QGroupBox, QLabel, QPushButton

from ..io.orientation import CONVENTIONS, PLANES, View, header_is_oriented, is_oriented, layer_translate, view_for
from .layer_frames import reference_affine, show_in_frame

LABEL_COLOUR = "#ffd54a"
INSET_PX = 16  # canvas pixels between an edge letter's centre and the edge of what the canvas shows


class ViewControls(QGroupBox):
    """Plane buttons, the convention and the study's slicing plane. ``owner`` is the tagging dock."""

    def __init__(self, owner):
        super().__init__("View")
        self.owner = owner
        self.view: View | None = None
        self.labels_layer = None
        self._label_geometry = None
        self._camera_connected = False
        g = QGridLayout(self)
        self.buttons = {p: QPushButton(p.capitalize()) for p in PLANES}
        for col, (plane, b) in enumerate(self.buttons.items()):
            b.setToolTip(f"Show {plane} slices upright (from the image's orientation)")
            b.clicked.connect(lambda _=False, plane=plane: self.show_plane(plane))
            g.addWidget(b, 0, col)
        self.convention = QComboBox()
        self.convention.addItems(CONVENTIONS)
        self.convention.setToolTip("radiological: the patient's right on the screen's left; neurological: on the right")
        self.convention.currentTextChanged.connect(lambda _: self.show_plane(self.view.plane if self.view else None))
        self.plane_label = QLabel("")
        self.plane_label.setWordWrap(True)
        g.addWidget(self.convention, 1, 0)
        g.addWidget(self.plane_label, 1, 1, 1, 2)
        owner.viewer.layers.events.inserted.connect(self._on_inserted)
        for layer in list(owner.viewer.layers):  # files opened before the dock
            self.overlay(layer)

    # ------------------------------------------------------------------ state
    def slicing_plane(self, im) -> str | None:
        """The anatomical plane of ``im``'s slices (None when the image has no orientation)."""
        if im is None or not is_oriented(im.volume):
            return None
        return next((p for p in PLANES if view_for(im.volume.affine, p).slice_axis == im.axis), None)

    def in_slicing_plane(self) -> bool:
        """Whether the canvas shows the study's own slices (tags and paint apply to what is seen)."""
        im = self.owner.image
        return self.view is None or im is None or self.view.slice_axis == im.axis

    def refresh(self, im) -> None:
        oriented = im is not None and is_oriented(im.volume)
        for b in self.buttons.values():
            b.setEnabled(oriented)
        self.convention.setEnabled(oriented)
        if im is None:
            self.plane_label.setText("")
        elif not oriented:
            self.plane_label.setText(f"Slices along axis {im.axis} (the image has no anatomical orientation)")
        else:
            plane = self.slicing_plane(im) or f"axis {im.axis}"
            shown = f"; showing {self.view.plane}: tags and painting are off here" if not self.in_slicing_plane() else ""
            self.plane_label.setText(f"Slices: {plane}{shown}")

    # ------------------------------------------------------------------ views
    def show_image(self, im) -> None:
        """Show study image ``im`` in its slicing plane (the plain display when it has no orientation); the dock
        is refreshed."""
        if im is not None and is_oriented(im.volume):
            self.show_plane(self.slicing_plane(im) or "axial")
        else:
            self.view = None
            self.remove_labels()
            self._apply_plain()
            self.refresh(im)
            self.owner._refresh()

    def show_plane(self, plane: str | None) -> None:
        im = self.owner.image
        if plane is None or im is None or not is_oriented(im.volume):
            return
        self.view = view_for(im.volume.affine, plane, self.convention.currentText())
        self._apply(self.view, im.volume.shape, im.volume.spacing, im.name, layer_translate(im.volume))
        mask = self.owner.mask_layer
        if mask is not None:
            mask.editable = self.in_slicing_plane()
            if not mask.editable:
                mask.mode = "pan_zoom"
        self.refresh(im)
        self.owner._refresh()

    def orient_layer(self, layer) -> None:
        """Show a volume opened outside a study (File > Open with this plugin's reader) axial and upright."""
        info = (layer.metadata or {}).get("weakseg") or {}
        if layer.ndim == 3 and header_is_oriented(info.get("header")):
            self.view = view_for(np.asarray(info["affine"]), "axial", self.convention.currentText())
            self._apply(self.view, layer.data.shape, tuple(layer.scale), layer.name, tuple(layer.translate))

    def _on_inserted(self, event) -> None:
        self.overlay(event.value)
        if self.owner.study is None and self.owner.isVisible():
            self.orient_layer(event.value)

    def overlay(self, layer) -> None:
        """Show a layer of a file stored in another orientation in the axes of the study image on screen (else
        of the first oriented layer), so that it overlays them (``layer_frames``)."""
        im = self.owner.image
        ref = im.volume.affine if im is not None and is_oriented(im.volume) else reference_affine(self.owner.viewer.layers, layer)
        note = show_in_frame(layer, ref) if ref is not None else None
        if note:
            show_info(note)

    def _apply(self, view: View, shape, spacing, name: str, translate) -> None:
        viewer = self.owner.viewer
        lead = viewer.dims.ndim - 3
        viewer.dims.order = (*range(lead), *(lead + a for a in view.order))
        camera_of(viewer).orientation2d = (view.vertical, view.horizontal)
        names = axis_planes(view)  # the slider says which plane it moves through
        viewer.dims.axis_labels = (*viewer.dims.axis_labels[:lead], *names)
        self._show_labels(view, shape, spacing, name, translate)
        viewer.reset_view()

    def _apply_plain(self) -> None:
        viewer = self.owner.viewer
        viewer.dims.order = tuple(range(viewer.dims.ndim))
        viewer.dims.axis_labels = tuple(str(a - viewer.dims.ndim) for a in range(viewer.dims.ndim))  # napari's own
        camera_of(viewer).orientation2d = ("down", "right")

    # ------------------------------------------------------------------ labels
    def _show_labels(self, view: View, shape, spacing, name: str, translate) -> None:
        """R/L/A/P/S/I just outside the image's four edges, on every slice of the plane (a Points layer that is
        not edited, hidden from the layer controls' paint tools)."""
        coords, letters = edge_label_points(view, shape)
        self.remove_labels()
        self._label_geometry = (view, shape, spacing, translate)
        self.labels_layer = self.owner.viewer.add_points(
            coords,
            name=f"orientation · {name}",
            scale=spacing,
            translate=translate,
            size=0,
            border_width=0,
            face_color="transparent",
            border_color="transparent",
            features={"letter": letters},
            text={"string": "{letter}", "color": LABEL_COLOUR, "size": 14, "anchor": "center"},
        )
        self.labels_layer.editable = False
        self._connect_camera()
        self.owner.viewer.layers.selection.active = self.owner.mask_layer or self.owner.viewer.layers.selection.active

    def _connect_camera(self) -> None:
        if self._camera_connected:
            return
        viewer = self.owner.viewer
        camera = camera_of(viewer)
        camera.events.zoom.connect(self.follow_camera)
        camera.events.center.connect(self.follow_camera)
        canvas = getattr(viewer, "canvas", None)
        if canvas is not None and hasattr(canvas, "events"):
            canvas.events.size.connect(self.follow_camera)
        self._camera_connected = True

    def follow_camera(self, event=None) -> None:
        """Keep the letters at the edges of what the canvas shows (zoom, pan, resize)."""
        layer, viewer = self.labels_layer, self.owner.viewer
        if layer is None or layer not in viewer.layers or viewer.dims.ndisplay != 2:
            return
        view, shape, spacing, translate = self._label_geometry
        size = getattr(getattr(viewer, "canvas", None), "size", None)
        if size is None or min(size) <= 0:
            return
        camera = camera_of(viewer)
        window = visible_window(tuple(camera.center), camera.zoom, size, spacing, translate, view)
        _, r, c = view.order
        inset = (INSET_PX / (camera.zoom * spacing[r]), INSET_PX / (camera.zoom * spacing[c]))  # a letter's room on screen
        coords, _ = edge_label_points(view, shape, window, inset)
        if not np.allclose(coords, layer.data):
            layer.data = coords

    def remove_labels(self) -> None:
        layer, self.labels_layer = self.labels_layer, None
        if layer is not None and layer in self.owner.viewer.layers:
            self.owner.viewer.layers.remove(layer)


def camera_of(viewer):
    """The viewer's camera: ``viewer.scene.camera`` from napari 0.9 (``viewer.camera`` is deprecated there)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def axis_planes(view: View) -> tuple[str, str, str]:
    """For each volume axis (napari order), the plane it moves through as the slider: "axial" for the one
    along S-I, and so on (from ``view``: its slider is its plane's axis, its rows and columns the others')."""
    other = {"axial": ("coronal", "sagittal"), "coronal": ("axial", "sagittal"), "sagittal": ("axial", "coronal")}[view.plane]
    names = [""] * 3
    names[view.order[0]] = view.plane
    names[view.order[1]], names[view.order[2]] = other
    return tuple(names)


def edge_label_points(view: View, shape, window=None, inset=None) -> tuple[np.ndarray, list[str]]:
    """(points (4 * n, 3) in data coordinates, their letters): the middle of each edge of every slice of the
    plane, just inside the image (so the layer adds nothing to the sliders' ranges), on the edge where the
    letter's anatomy lies on screen. ``window`` (row_lo, row_hi, col_lo, col_hi), in data indices: the part of
    the plane the canvas shows (``visible_window``); the letters then sit at the edges of what is seen, so a
    zoomed-in view keeps all four. None: the whole image. ``inset`` (rows, columns): how far inside the edges
    the letters sit, in data indices (default: 4 % of the span, at least 2)."""
    s, r, c = view.order
    n_rows, n_cols = shape[r], shape[c]
    r_lo, r_hi, c_lo, c_hi = 0.0, n_rows - 1.0, 0.0, n_cols - 1.0
    if window is not None:  # the image and the window overlap (where they do not, the image's own edges)
        lo_r, hi_r, lo_c, hi_c = window
        if max(lo_r, r_lo) < min(hi_r, r_hi):
            r_lo, r_hi = max(lo_r, r_lo), min(hi_r, r_hi)
        if max(lo_c, c_lo) < min(hi_c, c_hi):
            c_lo, c_hi = max(lo_c, c_lo), min(hi_c, c_hi)
    span_r, span_c = r_hi - r_lo, c_hi - c_lo
    inset_r, inset_c = (max(2.0, 0.04 * span_r), max(2.0, 0.04 * span_c)) if inset is None else inset
    inset_r, inset_c = min(inset_r, span_r / 2), min(inset_c, span_c / 2)
    near_r, far_r, near_c, far_c = r_lo + inset_r, r_hi - inset_r, c_lo + inset_c, c_hi - inset_c
    top, bottom = (near_r, far_r) if view.vertical == "down" else (far_r, near_r)  # the row indices drawn at the top, bottom
    left, right = (near_c, far_c) if view.horizontal == "right" else (far_c, near_c)
    mid_r, mid_c = (r_lo + r_hi) / 2, (c_lo + c_hi) / 2
    spots = [("top", top, mid_c), ("bottom", bottom, mid_c), ("left", mid_r, left), ("right", mid_r, right)]
    n = shape[s]  # vectorised: this runs on every zoom and pan
    coords = np.zeros((4 * n, 3))
    coords[:, s] = np.repeat(np.arange(n), 4)
    coords[:, r] = np.tile([row for _, row, _ in spots], n)
    coords[:, c] = np.tile([col for _, _, col in spots], n)
    return coords, [view.edges[edge] for edge, _, _ in spots] * n


def visible_window(center, zoom: float, canvas_hw, spacing, translate, view: View) -> tuple[float, float, float, float]:
    """The part of the plane a 2-D canvas shows, (row_lo, row_hi, col_lo, col_hi) in data indices of the view's
    row and column axes: camera ``center`` (world, its last two values the displayed rows and columns), ``zoom``
    (canvas pixels per world unit), ``canvas_hw`` (height, width in pixels); ``spacing``, ``translate`` the
    layer's, per volume axis."""
    _, r, c = view.order
    half_h, half_w = canvas_hw[0] / 2 / zoom, canvas_hw[1] / 2 / zoom
    cy, cx = center[-2], center[-1]
    rows = sorted(((cy - half_h - translate[r]) / spacing[r], (cy + half_h - translate[r]) / spacing[r]))
    cols = sorted(((cx - half_w - translate[c]) / spacing[c], (cx + half_w - translate[c]) / spacing[c]))
    return rows[0], rows[1], cols[0], cols[1]
