"""Dock widget: tag slices as presence / absence, paint masks, keep the study saved.

Thin over the core: every edit goes through :class:`~napari_weakseg.study.Study`
(which keeps the undo history); this widget maps napari's current slice to a
slice index, shows the state, and autosaves.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QApplication,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..errors import WeaksegError
from ..study import Study, Tag
from .close_watch import CloseWatcher, watch_window_close
from .dock_fit import scrolling_layout, tabify_with_siblings
from .half_controls import HALF_SHORTCUTS, HalfControls, HalfTagging
from .paint_watch import PaintWatch
from .session import session_for
from .slice_overview import SliceOverview
from .study_files import StudyFiles, default_study_home
from .study_layers import add_layers
from .tag_edits import TagEdits
from .view_controls import ViewControls

__all__ = ["SHORTCUTS", "AnnotationWidget", "default_study_home"]

# napari binds plain letters, Shift+letters and many Ctrl combos; Alt+digits/N/Z are free
# (napari's menu mnemonics are Alt+F/V/L/P/W/H).
SHORTCUTS = {
    "presence": "Alt-1",
    "absence": "Alt-2",
    "unknown": "Alt-3",
    "no_lesion": "Alt-N",
    "undo": "Alt-Z",
}
AUTOSAVE_DELAY_MS = 1500


class AnnotationWidget(StudyFiles, PaintWatch, HalfTagging, TagEdits, QWidget):
    """The tagging dock: its UI, slice mapping and state; study files, paint reactions, half-slices and the edits
    of tags live in the mixins (``study_files``, ``paint_watch``, ``half_controls``, ``tag_edits``)."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.study: Study | None = None
        self.current = 0  # index of the study image being annotated
        self.layers: dict[str, tuple[list[Image], Labels]] = {}
        self.read_only = False  # opened read-only: never written (Save as… writes elsewhere)
        self.cut_layers: dict[str, object] = {}  # image name -> the Shapes layer drawing its cut
        self._painted_absence: list[int] = []
        self._last_error = ""
        from ..io.napari_io import prefer_our_reader

        prefer_our_reader()  # File > Open on a .nii.gz then reads it without napari's failing default
        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.setInterval(AUTOSAVE_DELAY_MS)
        self._autosave.timeout.connect(self.save_now)
        # napari emits a Labels layer's paint event before it writes the pixels when the
        # edit is not grouped (polygon tool, scripted layer.paint): read the mask once
        # control is back in the event loop, when every edit is in the array.
        self._pending_paint: set[int] = set()
        self._paint_timer = QTimer(self)
        self._paint_timer.setSingleShot(True)
        self._paint_timer.setInterval(0)
        self._paint_timer.timeout.connect(self._process_paint)
        self._close_watcher = CloseWatcher(self.leave_study)
        self._watched_window = None  # weakref: a strong one would keep the closed window alive
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.leave_study)

        self._build_ui()
        self._bind_keys()
        session_for(self.viewer).annotation = self
        self.viewer.dims.events.current_step.connect(self._refresh_position)
        self._refresh()

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        self._weakseg_dock = True  # dock_fit: this plugin's docks tab together
        root = scrolling_layout(self)

        box = QGroupBox("Study")
        g = QGridLayout(box)
        self.new_btn = QPushButton("New from selected layers")
        self.new_btn.setToolTip("Selected image layers become the channels of one image; a selected labels layer becomes its mask")
        self.open_btn = QPushButton("Open…")
        self.open_ro_btn = QPushButton("Open read-only…")
        self.open_ro_btn.setToolTip(
            "Open a study without ever writing to it (e.g. one open in another viewer); Save as… keeps your edits elsewhere"
        )
        self.save_btn = QPushButton("Save")
        self.save_as_btn = QPushButton("Save as…")
        self.image_combo = QComboBox()
        self.image_combo.setToolTip("The study image you are annotating")
        self.folder_label = QLabel("No study. Select image layers and click 'New from selected layers', or open one.")
        self.folder_label.setWordWrap(True)
        g.addWidget(self.new_btn, 0, 0, 1, 3)  # three columns: the dock stays narrow
        g.addWidget(self.open_btn, 1, 0)
        g.addWidget(self.open_ro_btn, 1, 1)
        g.addWidget(self.save_btn, 1, 2)
        g.addWidget(self.save_as_btn, 2, 0)
        g.addWidget(self.image_combo, 2, 1, 1, 2)
        g.addWidget(self.folder_label, 3, 0, 1, 3)
        root.addWidget(box)
        self.views = ViewControls(self)
        root.addWidget(self.views)

        box = QGroupBox("Current slice")
        g = QGridLayout(box)
        self.slice_label = QLabel("-")
        self.presence_btn = QPushButton(f"Presence ({SHORTCUTS['presence']})")
        self.absence_btn = QPushButton(f"Absence ({SHORTCUTS['absence']})")
        self.unknown_btn = QPushButton(f"Unknown ({SHORTCUTS['unknown']})")
        self.no_lesion_btn = QPushButton(f"Annotated, no lesion ({SHORTCUTS['no_lesion']})")
        self.no_lesion_btn.setToolTip("Confirm that this presence slice's mask is complete although nothing is painted")
        self.undo_btn = QPushButton(f"Undo tag ({SHORTCUTS['undo']})")
        g.addWidget(self.slice_label, 0, 0, 1, 3)
        g.addWidget(self.presence_btn, 1, 0)
        g.addWidget(self.absence_btn, 1, 1)
        g.addWidget(self.unknown_btn, 1, 2)
        g.addWidget(self.no_lesion_btn, 2, 0, 1, 2)
        g.addWidget(self.undo_btn, 2, 2)
        root.addWidget(box)
        self.halves = HalfControls(self)
        root.addWidget(self.halves)

        self.banner = QWidget()
        hb = QHBoxLayout(self.banner)
        hb.setContentsMargins(0, 0, 0, 0)
        self.banner_label = QLabel()
        self.banner_label.setWordWrap(True)
        self.banner_label.setStyleSheet("color: #ffb347")
        self.retag_btn = QPushButton("Retag as presence")
        hb.addWidget(self.banner_label, 1)
        hb.addWidget(self.retag_btn)
        self.banner.setVisible(False)
        root.addWidget(self.banner)

        box = QGroupBox("Range of slices")
        g = QGridLayout(box)
        self.range_from = QSpinBox()
        self.range_to = QSpinBox()
        self.range_tag = QComboBox()
        self.range_tag.addItems(["presence", "absence", "unknown"])
        self.range_half = QComboBox()  # on a split image: both halves, or one
        self.range_half.addItems(["both halves", "half 0", "half 1"])
        self.range_btn = QPushButton("Tag")
        self.clear_btn = QPushButton("Clear all tags")
        for col, w in enumerate((QLabel("from"), self.range_from, QLabel("to"), self.range_to)):
            g.addWidget(w, 0, col)
        for col, w in enumerate((self.range_tag, self.range_half, self.range_btn, self.clear_btn)):  # a second row
            g.addWidget(w, 1, col)
        root.addWidget(box)

        box = QGroupBox("Overview")
        v = QVBoxLayout(box)
        self.overview = SliceOverview()
        self.counts_label = QLabel("-")
        self.counts_label.setWordWrap(True)  # long channel names wrap instead of running off the dock
        # its height follows its wrapped text, never squeezed under a two-row (half-slice) strip in a short dock
        self.counts_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        v.addWidget(self.overview)
        v.addWidget(self.counts_label)
        root.addWidget(box)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        root.addWidget(self.status_label)
        root.addStretch(1)

        self.new_btn.clicked.connect(lambda: self.new_study_from_layers())
        self.open_btn.clicked.connect(self._open_dialog)
        self.open_ro_btn.clicked.connect(lambda: self._open_dialog(read_only=True))
        self.save_btn.clicked.connect(lambda: self.save_now())
        self.save_as_btn.clicked.connect(self._save_as_dialog)
        self.image_combo.currentIndexChanged.connect(self._select_image)
        self.presence_btn.clicked.connect(lambda: self.tag_current(Tag.PRESENCE))
        self.absence_btn.clicked.connect(lambda: self.tag_current(Tag.ABSENCE))
        self.unknown_btn.clicked.connect(lambda: self.tag_current(Tag.UNKNOWN))
        self.no_lesion_btn.clicked.connect(lambda: self.confirm_no_lesion())
        self.undo_btn.clicked.connect(lambda: self.undo())
        self.retag_btn.clicked.connect(self.retag_painted_absence)
        self.range_btn.clicked.connect(
            lambda: self.tag_range(self.range_from.value(), self.range_to.value(), self.range_tag.currentText(), self._range_half())
        )
        self.clear_btn.clicked.connect(lambda: self.clear_tags())
        self.overview.slice_clicked.connect(self.go_to_slice)

    def _bind_keys(self) -> None:
        actions = {
            "presence": lambda v: self.tag_current(Tag.PRESENCE),
            "absence": lambda v: self.tag_current(Tag.ABSENCE),
            "unknown": lambda v: self.tag_current(Tag.UNKNOWN),
            "no_lesion": lambda v: self.confirm_no_lesion(),
            "undo": lambda v: self.undo(),
        }
        for name, fn in actions.items():
            self.viewer.bind_key(SHORTCUTS[name], fn, overwrite=True)
        for name, tag in (("presence", Tag.PRESENCE), ("absence", Tag.ABSENCE), ("unknown", Tag.UNKNOWN)):
            self.viewer.bind_key(HALF_SHORTCUTS[name], lambda v, tag=tag: self.tag_half_under_cursor(tag), overwrite=True)

    # ------------------------------------------------------------ study life
    def _set_study(self, study: Study, reuse_images=None) -> None:
        if self.study is not None:
            self.study.changed.disconnect(self._on_study_changed)
        self.study, self.layers = None, {}  # nothing to show while layers are added
        layers = {}
        for i, im in enumerate(study.images):
            if i == 0 and reuse_images:
                from ..io.napari_io import study_metadata

                first = reuse_images[0]
                scale = first.scale[-3:] if first.ndim >= 3 else (1.0, *first.scale)
                translate = first.translate[-3:] if first.ndim >= 3 else (0.0, *first.translate)
                for layer in reuse_images:  # the open layers become the study image's own
                    layer.metadata = study_metadata(layer.metadata)
                meta = study_metadata(first.metadata)
                mask_layer = self.viewer.add_labels(
                    im.mask, name=f"{im.name} mask", scale=scale, translate=translate, metadata=meta, opacity=0.6
                )
                layers[im.name] = (list(reuse_images), mask_layer)
            else:
                layers[im.name] = add_layers(self.viewer, im)
            mask_layer = layers[im.name][1]
            mask_layer.events.paint.connect(lambda e, i=i: self._queue_paint(i))
            mask_layer.bind_key("Control-Z", lambda layer, i=i: self._labels_history(i, "undo"), overwrite=True)
            mask_layer.bind_key("Control-Shift-Z", lambda layer, i=i: self._labels_history(i, "redo"), overwrite=True)
        self.study, self.layers = study, layers
        for im in study.images:
            if im.split is not None:
                self._show_cut(im)
        session = session_for(self.viewer)
        session.annotation = self
        session.study_changed.emit()
        study.changed.connect(self._on_study_changed)
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        self.image_combo.addItems([im.name for im in study.images])
        self.image_combo.blockSignals(False)
        self._select_image(0)

    def _remove_layers(self, keep=()) -> None:
        for image_layers, mask_layer in self.layers.values():
            for layer in [*image_layers, mask_layer]:
                if layer not in keep and layer in self.viewer.layers:
                    self.viewer.layers.remove(layer)
        for layer in self.cut_layers.values():
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.views.remove_labels()
        self.layers, self.cut_layers = {}, {}

    def _select_image(self, index: int) -> None:
        if self.study is None or not self.study.images:
            return
        self.current = int(index)
        im = self.study.images[self.current]
        for name, (image_layers, mask_layer) in self.layers.items():
            mine = name == im.name
            mask_layer.visible = mine
            image_layers[0].visible = mine
            for layer in image_layers[1:]:
                layer.visible = layer.visible and mine
            if name in self.cut_layers:
                self.cut_layers[name].visible = mine
        mask_layer = self.mask_layer
        self.viewer.layers.selection.active = mask_layer
        mask_layer.mode = "paint"
        mask_layer.selected_label = 1
        for spin, value in ((self.range_from, 0), (self.range_to, im.n_slices - 1)):
            spin.setRange(0, im.n_slices - 1)
            spin.setValue(value)
            spin.lineEdit().setText(spin.textFromValue(value))  # Qt leaves an unchanged 0 blank
        self.views.show_image(im)  # its slicing plane upright, labelled; refreshes the dock

    # ------------------------------------------------------------------ edits
    @property
    def image(self):
        return self.study.images[self.current] if self.study is not None and self.study.images else None

    @property
    def mask_layer(self) -> Labels | None:
        im = self.image
        return self.layers[im.name][1] if im is not None else None

    def current_slice(self) -> int:
        """Index of the slice shown in the viewer, along the study image's slicing axis."""
        im = self.image
        if im is None:
            return -1
        layer = self.mask_layer
        pos = layer.world_to_data(self.viewer.dims.point[-layer.ndim :])
        return int(np.clip(round(pos[im.axis]), 0, im.n_slices - 1))

    def go_to_slice(self, index: int) -> None:
        im = self.image
        if im is None:
            return
        layer = self.mask_layer
        pos = np.array(layer.world_to_data(self.viewer.dims.point[-layer.ndim :]), float)
        pos[im.axis] = index
        world = layer.data_to_world(pos)
        axis = self.viewer.dims.ndim - layer.ndim + im.axis
        self.viewer.dims.set_point(axis, world[im.axis])

    # ------------------------------------------------------------- reactions
    def _on_study_changed(self, index: int) -> None:
        if self.study is not None and self.study.modified and not self.read_only:
            self._autosave.start()
        if index == self.current:
            self._refresh()

    def _refresh_position(self, event=None) -> None:
        if self.image is not None:
            self._refresh()

    def _refresh(self) -> None:
        im = self.image
        enabled = im is not None
        for w in (
            self.presence_btn,
            self.absence_btn,
            self.unknown_btn,
            self.no_lesion_btn,
            self.undo_btn,
            self.range_btn,
            self.clear_btn,
            self.save_btn,
            self.save_as_btn,
        ):
            w.setEnabled(enabled)
        self.views.refresh(im)
        if im is None:
            self.halves.refresh(None, 0)
            return
        here = self.views.in_slicing_plane()
        for w in (self.presence_btn, self.absence_btn, self.unknown_btn):
            w.setEnabled(here)
        s = self.current_slice()
        annotated = im.annotated()
        state = Tag(int(im.tags[s])).name.lower()
        if annotated[s]:
            state += ", annotated" + (" (no lesion)" if im.confirmed_empty[s] else "")
        self.slice_label.setText(f"Slice {s} of {im.n_slices - 1} ({self.views.slicing_plane(im) or f'axis {im.axis}'}): {state}")
        self.no_lesion_btn.setEnabled(here and int(im.tags[s]) == Tag.PRESENCE)
        self.undo_btn.setEnabled(self.study.can_undo)
        split = im.split is not None
        self.overview.set_state(im.tags, annotated, s, im.half_tags if split else None, im.half_annotated() if split else None)
        self.halves.refresh(im, s)
        self.range_half.setVisible(split)
        if split:
            from ..study.halves import half_names

            for h, name in enumerate(half_names(im.volume.affine, im.axis, im.split, im.volume.header is not None)):
                self.range_half.setItemText(h + 1, name)
        c = im.counts()
        names = im.volume.channel_names  # said, so that a study that took one channel of several is seen at once
        self.counts_label.setText(
            f"presence {c['presence']} · absence {c['absence']} · unknown {c['unknown']} · annotated {c['annotated']}\n"
            f"{len(names)} channel{'s' if len(names) != 1 else ''}: {', '.join(names)}"
        )
        self._refresh_status()

    def _guard(self, fn):
        """Run ``fn``; a user-facing error becomes a notification (returns None)."""
        try:
            return fn()
        except WeaksegError as exc:
            self._last_error = str(exc)
            show_error(str(exc))
        except OSError as exc:
            self._last_error = f"could not write the study: {exc}"
            show_error(self._last_error)
        return None

    # ------------------------------------------------------------- lifecycle
    def showEvent(self, event):  # noqa: N802
        super().showEvent(event)
        self._watched_window = watch_window_close(self, self._close_watcher, self._watched_window)
        tabify_with_siblings(self)
