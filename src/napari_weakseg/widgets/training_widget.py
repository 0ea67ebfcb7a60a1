"""Dock widget: train any method in a background process, watch its losses, show its outputs.

Thin over the core: the study comes from the tagging dock, training is
:class:`~napari_weakseg.training.worker.TrainingProcess`, outputs come from
:class:`~napari_weakseg.inference.TrainedModel`. No method is special-cased.
"""

from __future__ import annotations

import time
from pathlib import Path

from napari.utils.notifications import show_error
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ..errors import WeaksegError
from ..training.dock_defaults import DEFAULT_THRESHOLD, RETRAIN_STEPS
from ..training.events import Progress
from .close_watch import ShutsDownOnClose
from .dock_fit import scrolling_layout, tabify_with_siblings
from .loss_plot import LossPlot
from .model_panel import ModelPanel
from .retrain_panel import RetrainPanel
from .run_events import RunEvents
from .run_list import RunList
from .session import session_for
from .spin_boxes import spin
from .training_settings import TrainingSettings

POLL_MS = 100
# Progress bar, status line and loss plot repaint together, at most this often. Any repaint of a
# dock widget makes Qt recompose the window, napari's OpenGL canvas included; without a GPU
# (software OpenGL) that costs about 0.1 s of CPU, taken from training. Repainting at every
# step cost 0.11 cores and about 10 % of the training throughput on the 2-core benchmark machine.
DOCK_REFRESH_MS = 2000
REAP_MS = 10_000  # a finished training process gets this long to exit by itself


class TrainingWidget(ShutsDownOnClose, RunEvents, ModelPanel, RetrainPanel, QWidget):
    finished = Signal(object)  # the Finished or Failed event of a run

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.session.training = self
        self.job = None
        self.run_dir: Path | None = None
        self.last_run: Path | None = None
        self.overrides: dict = {}  # extra method-config overrides (advanced use, tests)
        self.preview_every = 25  # steps between live previews of the slice on screen
        self._started_at = 0.0
        self._total = 0
        self._preview_at = None
        self._hidden: list = []  # output layers created for the live preview, hidden until it fills them
        self._run_method = ""  # the method of the current (or last) run
        self._position = None  # (image, viewer dims step) when the preview slice was last looked up
        self._predictions: set = set()  # Run model workers still going
        self._exiting: list = []  # finished training processes not yet gone
        self._closed = False  # set by shutdown(): the viewer is closing
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._latest: Progress | None = None  # the last progress event, shown at the next dock refresh
        self.last_step = 0  # the run's last step, as reported (the progress bar shows it later)
        self._dock_timer = QTimer(self)
        self._dock_timer.setInterval(DOCK_REFRESH_MS)
        self._dock_timer.timeout.connect(self._refresh_dock)
        self._build_ui()
        self.session.study_changed.connect(self._study_opened)
        self.session.study_moved.connect(self._follow_study)
        self._refresh()

    # ------------------------------------------------------------------ UI
    def showEvent(self, event):  # noqa: N802
        super().showEvent(event)
        tabify_with_siblings(self)

    def _build_ui(self) -> None:
        self._weakseg_dock = True  # dock_fit: this plugin's docks tab together
        root = scrolling_layout(self)
        self.study_label = QLabel()
        self.study_label.setWordWrap(True)
        root.addWidget(self.study_label)

        self.settings = TrainingSettings()
        self.settings.advanced.toggled.connect(lambda _: self._refresh())
        root.addWidget(self.settings)

        row = QHBoxLayout()
        self.train_btn = QPushButton("Train")
        self.stop_btn = QPushButton("Stop")
        self.resume_btn = QPushButton("Resume")
        for b in (self.train_btn, self.stop_btn, self.resume_btn):
            row.addWidget(b)
        root.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m steps")
        self.status = QLabel("idle")
        self.status.setWordWrap(True)
        root.addWidget(self.progress)
        root.addWidget(self.status)
        self.plot = LossPlot()
        root.addWidget(self.plot)

        box = QGroupBox("Outputs")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.run_btn = QPushButton("Run model")
        self.lesion_btn = QPushButton("Synthetic lesions")
        self.lesion_btn.setToolTip("absence -> presence with a random lesion code (genseg methods)")
        self.healthy_btn = QPushButton("Healthy ⇄ image")
        self.healthy_btn.setToolTip("show the translated healthy image over the image, or hide it (contrast linked)")
        row.addWidget(self.run_btn)
        row.addWidget(self.lesion_btn)
        row.addWidget(self.healthy_btn)
        v.addLayout(row)
        row = QHBoxLayout()
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(1, 99)
        self.threshold.setValue(round(DEFAULT_THRESHOLD * 100))
        self.threshold_label = QLabel(f"threshold {DEFAULT_THRESHOLD:.2f}")
        row.addWidget(self.threshold_label)
        row.addWidget(self.threshold)
        v.addLayout(row)
        row = QHBoxLayout()
        self.load_btn = QPushButton("Load model…")
        self.save_model_btn = QPushButton("Save model as…")
        self.save_seg_btn = QPushButton("Save segmentation…")
        self.save_seg_btn.setToolTip("The segmentation layer (with your corrections) as NIfTI, or as DICOM SEG for a DICOM series")
        for b in (self.load_btn, self.save_model_btn, self.save_seg_btn):
            row.addWidget(b)
        v.addLayout(row)
        self.model_label = QLabel("no model yet")
        self.model_label.setWordWrap(True)
        v.addWidget(self.model_label)
        self.run_list = RunList()
        v.addWidget(self.run_list)
        self.run_list.chosen.connect(self.load_model)
        self.run_list.delete_requested.connect(self.delete_run)
        root.addWidget(box)
        self.load_btn.clicked.connect(self._load_dialog)
        self.save_model_btn.clicked.connect(self._save_dialog)
        self.save_seg_btn.clicked.connect(lambda: self.save_segmentation())

        box = QGroupBox("Correct and retrain")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.accept_btn = QPushButton("Accept as annotation")
        self.accept_btn.setToolTip(
            "Copy the slices you corrected in the segmentation layer (or the current slice) into the study's masks; "
            "Undo tag (Alt-Z) takes it back"
        )
        self.retrain_btn = QPushButton("Retrain")
        self.retrain_btn.setToolTip("Fine-tune the last model on the enlarged annotated set")
        self.retrain_steps = spin(1, 1_000_000, RETRAIN_STEPS)
        row.addWidget(self.accept_btn)
        row.addWidget(self.retrain_btn)
        row.addWidget(QLabel("steps"))
        row.addWidget(self.retrain_steps)
        v.addLayout(row)
        row = QHBoxLayout()
        self.suggest_btn = QPushButton("Suggest slices to annotate")
        self.next_btn = QPushButton("Next")
        row.addWidget(self.suggest_btn)
        row.addWidget(self.next_btn)
        v.addLayout(row)
        self.suggestions = QListWidget()
        self.suggestions.setMaximumHeight(110)
        v.addWidget(self.suggestions)
        root.addWidget(box)
        root.addStretch(1)
        self.accept_btn.clicked.connect(lambda: self.accept_corrections())
        self.retrain_btn.clicked.connect(lambda: self.retrain())
        self.suggest_btn.clicked.connect(lambda: self.suggest())
        self.next_btn.clicked.connect(self._next_suggestion)
        self.suggestions.currentRowChanged.connect(self._go_to_suggestion)

        self.train_btn.clicked.connect(lambda: self.start_training())
        self.stop_btn.clicked.connect(self.stop_training)
        self.resume_btn.clicked.connect(lambda: self.start_training(resume=True))
        self.run_btn.clicked.connect(lambda: self.run_model())
        self.lesion_btn.clicked.connect(lambda: self.run_model(lesion_samples=True))
        self.healthy_btn.clicked.connect(lambda: self.toggle_healthy())
        self.threshold.valueChanged.connect(self._threshold_changed)

    # -------------------------------------------------------------- training
    @property
    def annotation(self):
        return self.session.annotation

    @property
    def running(self) -> bool:
        return self.job is not None

    def train_config(self) -> dict:
        """The next run's config: the form, then other docks' method options, then ``self.overrides``; with
        *per lesion class* (Advanced), net.n_classes from the study's labels (``run_setup.per_class_overrides``)."""
        config = self.settings.train_config(self.n_annotated(), [*self.session.method_options.items(), *self.overrides.items()])
        ann = self.annotation
        if self.settings.advanced.isChecked() and self.settings.per_class.isChecked() and ann is not None and ann.study is not None:
            from ..training.run_setup import per_class_overrides

            config["overrides"] = per_class_overrides(ann.study, config["method"], config["overrides"])
        return config

    @staticmethod
    def _guard_fork(src: Path, dst: Path):
        from ..training.checkpoint import fork_run

        try:
            return fork_run(src, dst)
        except WeaksegError as exc:
            show_error(str(exc))
            return None

    @staticmethod
    def _steps_done(run_dir: Path) -> int:
        """The step the run's last checkpoint holds (run.json's state)."""
        from ..training.checkpoint import read_run_info

        try:
            return int(read_run_info(run_dir).get("state", {}).get("step") or 0)
        except (WeaksegError, TypeError, ValueError):
            return 0

    def n_annotated(self) -> int:
        ann = self.annotation
        return ann.study.counts()["annotated"] if ann is not None and ann.study is not None else 0

    def start_training(self, resume: bool = False, init_weights: str | None = None) -> bool:
        """Save the study, then train in a background process. Refused while a run is going."""
        from ..training.worker import JobSpec, TrainingProcess

        if self.running:
            show_error("A training run is already going; stop it first")
            return False
        ann = self.annotation
        if ann is None or ann.study is None:
            show_error("No study: create or open one in the 'Tag slices and paint masks' dock first")
            return False
        if not ann.save_now():
            return False
        started_from = None
        run_dir = Path(ann.study.folder) / "runs" / f"{self.settings.method.currentText()}-{time.strftime('%Y%m%d-%H%M%S')}"
        if resume:  # always into a new run folder under the study: the earlier run (or a saved model) stays as it is
            if self.last_run is None:
                show_error("Nothing to resume: no earlier run in this session")
                return False
            started_from = str(self.last_run)
            if self._guard_fork(self.last_run, run_dir) is None:
                return False
        elif init_weights is not None:
            started_from = str(Path(init_weights).parent)
        try:
            config = self.train_config()
        except WeaksegError as exc:  # e.g. per lesion class with a method that segments the whole lesion
            show_error(str(exc))
            return False
        done = self._steps_done(run_dir) if resume else 0
        if done >= config["steps"]:  # a finished run (or one past the field): Resume trains `steps` more
            config["steps"] = done + config["steps"]
        spec = JobSpec(
            str(ann.study.folder),
            str(run_dir),
            config,
            resume=resume,
            init_weights=init_weights,
            started_from=started_from,
            preview=(ann.current, ann.current_slice()),
            preview_every=self.preview_every,
        )
        self._preview_at = spec.preview
        self._position = None
        self.job = TrainingProcess(spec)
        self.job.start()
        self._run_method = config["method"]
        self._hidden = self._preview_layers(ann.current)  # while the process starts
        self.run_dir = run_dir
        self._started_at = time.perf_counter()
        self.plot.clear(config["steps"])
        self.progress.setRange(0, config["steps"])
        self.progress.setValue(0)
        self.last_step, self._latest = 0, None
        self.status.setText("starting the training process (the study is copied: later edits apply to the next run)…")
        self._timer.start()
        self._dock_timer.start()
        self._refresh()
        return True

    def stop_training(self) -> None:
        """Stop within one step; the last good checkpoint is kept."""
        if self.job is not None:
            self.job.stop()
            self.status.setText("stopping after the current step…")

    # --------------------------------------------------------------- outputs
    # ------------------------------------------------------------- models
    # ------------------------------------------------------- correct, retrain
    # --------------------------------------------------------------- state
    def _refresh(self) -> None:
        ann = self.annotation
        has_study = ann is not None and ann.study is not None
        self.study_label.setText(
            f"Study: {ann.study.folder}" if has_study else "No study: create or open one in the 'Tag slices and paint masks' dock."
        )
        self.train_btn.setEnabled(has_study and not self.running)
        self.resume_btn.setEnabled(has_study and not self.running and self.last_run is not None)
        self.stop_btn.setEnabled(self.running)
        for b in (self.run_btn, self.lesion_btn, self.healthy_btn, self.accept_btn, self.suggest_btn, self.next_btn, self.save_model_btn):
            b.setEnabled(has_study and self.last_run is not None)
        self.retrain_btn.setEnabled(has_study and not self.running and self.last_run is not None)
        self.settings.show_val_fraction(self.n_annotated())
        self.run_list.refresh(ann.study.folder if has_study else None, self.last_run)

    def _reap(self, waited_ms: int = 0) -> None:
        """Let finished training processes exit without blocking the viewer; kill any still there after 10 s.
        Never leaves a process behind; GPU memory goes back with it."""
        for job in list(self._exiting):
            if not job.alive or waited_ms >= REAP_MS:
                job.kill()
                self._exiting.remove(job)
        if self._exiting:
            QTimer.singleShot(100, lambda: self._reap(waited_ms + 100))

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop a running job cleanly (it checkpoints), waiting up to ``timeout`` s."""
        self._closed = True
        if self._predictions:  # a Run model thread must not outlive the viewer
            from napari.qt.threading import WorkerBase

            WorkerBase.await_workers(msecs=30_000)
        for job in self._exiting:
            job.join(5)
            job.kill()
        self._exiting.clear()
        if self.job is not None:
            self.job.stop()
            self.job.join(timeout)
            for event in self.job.poll():
                self._handle(event)
            self.job.kill()
            self.job = None
            self._timer.stop()
            self._dock_timer.stop()
