"""The study's runs in the training dock: every run folder under STUDY/runs/, newest first, to pick for
Run model / Retrain / Resume / Save model as…, or to delete (after a confirmation)."""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QMessageBox, QPushButton, QWidget

from ..study.runs import run_summary, study_runs


def confirm(parent, title: str, text: str) -> bool:
    """Ask; True when the user says yes (tests replace this function)."""
    return QMessageBox.question(parent, title, text) == QMessageBox.StandardButton.Yes


class RunList(QWidget):
    """A combo of the study's runs; ``chosen(path)`` when the user picks one, ``delete_requested(path)``
    after the user confirmed deleting the selected one."""

    chosen = Signal(str)
    delete_requested = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        h = QHBoxLayout(self)
        h.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        self.combo.setToolTip("The runs saved in this study (STUDY/runs/), newest first")
        self.delete_btn = QPushButton("Delete run…")
        h.addWidget(self.combo, 1)
        h.addWidget(self.delete_btn)
        self.runs: list[Path] = []
        self.combo.activated.connect(lambda i: self.chosen.emit(str(self.runs[i])) if 0 <= i < len(self.runs) else None)
        self.delete_btn.clicked.connect(self._delete)

    def refresh(self, study_folder: str | Path | None, current: Path | None = None) -> None:
        """List the runs of ``study_folder``; show ``current`` selected (default: the newest)."""
        self.runs = list(reversed(study_runs(study_folder))) if study_folder else []
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems([run_summary(r) for r in self.runs] or ["no runs in this study yet"])
        if current is not None and Path(current) in self.runs:
            self.combo.setCurrentIndex(self.runs.index(Path(current)))
        self.combo.blockSignals(False)
        self.combo.setEnabled(bool(self.runs))
        self.delete_btn.setEnabled(bool(self.runs))

    @property
    def selected(self) -> Path | None:
        i = self.combo.currentIndex()
        return self.runs[i] if 0 <= i < len(self.runs) else None

    def _delete(self) -> None:
        run = self.selected
        if run is not None and confirm(self, "Delete run", f"Delete the run {run.name} and its model files?\n{run}"):
            self.delete_requested.emit(str(run))
