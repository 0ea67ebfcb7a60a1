"""Dock widget: review a model's pseudo labels slice by slice, accept / reject / edit them, refine.

For any model whose method has per-slice quality outputs (``score_*``; no method is named). Thin over
the core: the review, its order and the decisions are :mod:`napari_weakseg.pseudo.review`; accepting
goes through the tagging dock (undoable); refining is :func:`~napari_weakseg.pseudo.refine.refine_run`
in a worker thread on a saved copy of the study. Also holds the shape-prior form, whose ranges feed
training through the session.
"""

from __future__ import annotations

from pathlib import Path

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..errors import WeaksegError
from ..pseudo.review import REJECTED, Decisions, score_names
from .close_watch import ShutsDownOnClose
from .dock_fit import scrolling_layout, tabify_with_siblings
from .output_layers import show_pseudo_labels
from .refine_panel import RefinePanel
from .review_decisions import ReviewDecisions
from .session import session_for
from .shape_prior_form import PREVIEW_SIZE, ShapePriorForm

COLUMNS = ("slice", "selection", "decision")  # then one column per score


class PseudoReviewWidget(ShutsDownOnClose, ReviewDecisions, RefinePanel, QWidget):
    finished = Signal(str)  # "review" or "refine" when that background work ended (ok or not)
    _log = Signal(str)  # refine's messages, from its worker thread
    _progress = Signal(int, int)  # refine's rounds done, of how many

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.run_dir: Path | None = None
        self.which = "best"  # the checkpoint reviewed: best (G_A's pseudo labels), refined after Refine
        self.review = None  # image name -> ImageReview
        self.scores: list[str] = []  # e.g. ["disc", "vae"]
        self.decisions = Decisions()
        self.device = "auto"
        self._rows: list[int] = []  # slice of each table row, in the order shown
        self._worker = None
        self._next = None  # what to start once the worker has ended
        self._table_image = None  # the image whose slices the table lists
        self._closed = False
        self._build_ui()
        self._log.connect(self.status.setText)
        self._progress.connect(self._show_progress)
        self._stop_refine = False
        self.separate_process: bool | None = None  # Refine in a spawned process; None: on a GPU (task_process)
        self.session.study_changed.connect(self._forget)
        self._refresh()

    # ------------------------------------------------------------------ UI
    def showEvent(self, event):  # noqa: N802
        super().showEvent(event)
        tabify_with_siblings(self)

    def _build_ui(self) -> None:
        self._weakseg_dock = True  # dock_fit: this plugin's docks tab together
        root = scrolling_layout(self)
        box = QGroupBox("Review pseudo labels")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.review_btn = QPushButton("Review last run")
        self.review_btn.setToolTip("Predict the study's presence slices with the training dock's last run (or the loaded one)")
        self.load_btn = QPushButton("Load run…")
        row.addWidget(self.review_btn)
        row.addWidget(self.load_btn)
        v.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("worst first by"))
        self.sort_by = QComboBox()
        row.addWidget(self.sort_by, 1)
        v.addLayout(row)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        v.addWidget(self.table)
        row = QHBoxLayout()
        self.accept_btn = QPushButton("Accept")
        self.accept_btn.setToolTip("Copy the selected slices' pseudo labels into the study's masks (Undo tag takes it back)")
        self.reject_btn = QPushButton("Reject")
        self.reject_btn.setToolTip("The next refine round does not train on the selected slices")
        self.edit_btn = QPushButton("Edit")
        self.edit_btn.setToolTip("Copy the pseudo label into the mask layer and paint on it: it becomes the annotation")
        self.clear_btn = QPushButton("Clear")
        self.clear_btn.setToolTip("Forget the decision (use Undo tag to take back an accepted mask)")
        for b in (self.accept_btn, self.reject_btn, self.edit_btn, self.clear_btn):
            row.addWidget(b)
        v.addLayout(row)
        self.refine_btn = QPushButton("Refine (selection + rounds)")
        self.refine_btn.setToolTip("Train the segmenter on the kept and accepted pseudo labels in rounds, in the background")
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("Stop refining: the run keeps what it had (nothing of the refinement is written)")
        self.progress = QProgressBar()
        self.progress.setFormat("round %v of %m")
        self.progress.setVisible(False)
        row = QHBoxLayout()
        row.addWidget(self.refine_btn, 2)
        row.addWidget(self.stop_btn, 1)
        v.addLayout(row)
        v.addWidget(self.progress)
        self.status = QLabel("no review yet")
        self.status.setWordWrap(True)
        v.addWidget(self.status)
        root.addWidget(box)
        self.shape_form = ShapePriorForm()
        root.addWidget(self.shape_form)
        root.addStretch(1)

        self.review_btn.clicked.connect(lambda: self.start_review())
        self.load_btn.clicked.connect(self._load_dialog)
        self.sort_by.currentTextChanged.connect(lambda _: self._fill_table())
        self.table.itemSelectionChanged.connect(self._go_to_row)
        self.accept_btn.clicked.connect(lambda: self.accept())
        self.reject_btn.clicked.connect(lambda: self.decide(REJECTED))
        self.edit_btn.clicked.connect(lambda: self.edit())
        self.clear_btn.clicked.connect(lambda: self.decide(None))
        self.refine_btn.clicked.connect(lambda: self.start_refine())
        self.stop_btn.clicked.connect(self.stop_refine)
        self.shape_form.changed.connect(self._shape_changed)
        self.shape_form.preview_btn.clicked.connect(lambda: self.preview_shapes())
        self._shape_changed(self.shape_form.options())

    @property
    def annotation(self):
        return self.session.annotation

    @property
    def busy(self) -> bool:
        return self._worker is not None

    # -------------------------------------------------------------- review
    def start_review(self, run_dir: str | Path | None = None, which: str | None = None):
        """Predict every image's presence slices with ``run_dir`` (default: the training dock's last run,
        else the loaded one) in a worker thread; then show the layer and the list. Returns the worker."""
        from ..inference import TrainedModel
        from ..pseudo.config import PseudoLabelConfig
        from ..pseudo.review import review_outputs
        from ..study import Tag
        from ..training.trainer import resolve_device

        training = self.session.training
        run_dir = Path(run_dir) if run_dir else (training.last_run if training is not None and training.last_run else self.run_dir)
        ann = self.annotation
        if ann is None or ann.study is None or run_dir is None:
            show_error("Open a study and train (or load) a model first")
            return None
        if self.busy:
            show_error("The review is busy; wait for it to finish")
            return None
        if run_dir != self.run_dir:
            self.which = "best"
        which = which or self.which
        study, device = ann.study, str(resolve_device(self.device))

        @thread_worker(ignore_errors=True)  # reported by _start's errored handler
        def work():
            model = TrainedModel.load(run_dir, which=which, device=device)
            names = score_names(model.method.outputs)
            if not names:
                raise WeaksegError(f"a {model.info.get('method')} model gives no per-slice quality scores: nothing to review")
            outputs = {im.name: model.predict_image(im) for im in study.images if (im.tags == Tag.PRESENCE).any()}
            pl = PseudoLabelConfig.from_dict(model.config.pseudo_label)
            return names, pl.selection_score, review_outputs(study, outputs, pl.selection_score, pl.selection_keep, model.config.threshold)

        def done(result):
            names, score, review = result
            self.run_dir, self.which, self.review = Path(run_dir), which, review
            self.decisions = Decisions.load(run_dir)
            self.sort_by.blockSignals(True)
            self.sort_by.clear()
            self.sort_by.addItems(names + (["mean"] if len(names) > 1 else []))
            self.sort_by.setCurrentText(score)
            self.sort_by.blockSignals(False)
            self.show_layer()
            self._fill_table()
            kept = sum(int(r.kept.sum()) for r in review.values())
            total = sum(len(r.slices) for r in review.values())
            self.status.setText(f"{Path(run_dir).name} ({which}): the selection keeps {kept} of {total} pseudo labels")

        return self._start(work(), done, "review")

    def _image_review(self):
        """The review of the tagging dock's current image, or None."""
        ann = self.annotation
        return self.review.get(ann.image.name) if self.review and ann is not None and ann.image is not None else None

    def show_layer(self):
        """The pseudo labels layer of the tagging dock's current image (None when it was not reviewed)."""
        rev = self._image_review()
        if rev is None:
            return None
        meta = {"slices": rev.slices.tolist(), "kept": rev.kept.tolist(), **{k: v.tolist() for k, v in rev.scores.items()}}
        return show_pseudo_labels(self.viewer, rev.name, self.annotation.layers[rev.name][0][0], rev.layer_data(), meta)

    def current_review(self):
        """The current image's review; None (and a notification) when there is none."""
        rev = self._image_review()
        if rev is None:
            show_error("No pseudo labels for this image: click 'Review last run' first")
        elif rev.name != self._table_image:  # another image was chosen in the tagging dock: list its slices
            self.show_layer()
            self._fill_table()
        return rev

    def ordered_slices(self) -> list[int]:
        """The current image's reviewed slices in the list's order (worst first by the chosen score)."""
        rev = self.current_review()
        return [] if rev is None else [int(rev.slices[r]) for r in rev.order(self.sort_by.currentText())]

    def _fill_table(self) -> None:
        rev = self._image_review()
        self._table_image = rev.name if rev is not None else None
        self.table.blockSignals(True)
        self.table.clearContents()
        self.table.setRowCount(0)
        if rev is None or not self.sort_by.currentText():
            self._rows = []
            self.table.blockSignals(False)
            return
        names = list(rev.scores)
        self.table.setColumnCount(len(COLUMNS) + len(names))
        self.table.setHorizontalHeaderLabels([*COLUMNS, *(n[len("score_") :] for n in names)])
        order = rev.order(self.sort_by.currentText())
        self._rows = [int(rev.slices[r]) for r in order]
        self.table.setRowCount(len(order))
        for i, r in enumerate(order):
            s = int(rev.slices[r])
            cells = [
                str(s),
                "kept" if rev.kept[r] else "dropped",
                self.decisions.get(rev.name, s) or "",
                *(f"{rev.scores[n][r]:.3f}" for n in names),
            ]
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.table.blockSignals(False)
        self.table.resizeColumnsToContents()

    def select_slices(self, slices) -> None:
        """Select the rows of ``slices`` in the list (scripts, tests)."""
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for s in slices:
            self.table.selectRow(self._rows.index(int(s)))
        self.table.setSelectionMode(mode)

    def selected_slices(self) -> list[int]:
        return sorted({self._rows[i.row()] for i in self.table.selectionModel().selectedRows()})

    def _go_to_row(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows and self.annotation is not None:
            self.annotation.go_to_slice(self._rows[rows[-1].row()])

    # --------------------------------------------------------------- shared
    def _start(self, worker, done, what: str):
        def returned(result):
            if not self._closed:
                done(result)

        def failed(exc):
            show_error(str(exc) if isinstance(exc, WeaksegError) else f"{what.capitalize()} failed: {exc}")
            self.status.setText(f"{what} failed")

        def ended():
            self._worker, follow, self._next = None, self._next, None
            self._refresh()
            if follow is not None and not self._closed:
                follow()
            self.finished.emit(what)

        worker.returned.connect(returned)
        worker.errored.connect(failed)
        worker.finished.connect(ended)
        self._worker = worker
        self._refresh()
        worker.start()
        return worker

    def _forget(self) -> None:
        """Another study: its slices have no review yet."""
        self.review = None
        self._fill_table()
        self._refresh()

    def _shape_changed(self, options: dict) -> None:
        if options:
            self.session.method_options["pseudo_label"] = options
        else:
            self.session.method_options.pop("pseudo_label", None)

    def preview_shapes(self):
        """Sample masks (n, 1, S, S) from the form at the study's pixel size (slices resized to the preview
        size S) and show them; None (and a notification) when the ranges are invalid."""
        from ..data.slices import slice_pixel_mm

        ann = self.annotation
        pixel_mm = slice_pixel_mm(ann.study, PREVIEW_SIZE) if ann is not None and ann.study is not None else 1.0
        try:
            return self.shape_form.preview_masks(pixel_mm)
        except WeaksegError as exc:
            show_error(str(exc))
            return None

    def _load_dialog(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, "Open a model (run folder)")
        if folder:
            self.run_dir = Path(folder)
            self.start_review(folder)

    def _refresh(self) -> None:
        idle = not self.busy
        self.stop_btn.setEnabled(not idle)
        ann = self.annotation
        has_study = ann is not None and ann.study is not None  # nothing to review or refine before a study exists
        for b in (self.review_btn, self.load_btn, self.refine_btn):
            b.setEnabled(idle and has_study)
        for b in (self.accept_btn, self.reject_btn, self.edit_btn, self.clear_btn):
            b.setEnabled(idle and self.review is not None)

    def shutdown(self) -> None:
        """The viewer is closing: no new layers from a worker still going."""
        self._closed = True
