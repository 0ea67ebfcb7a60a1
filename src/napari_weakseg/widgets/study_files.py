"""The tagging dock's study files: a new study from layers (autosaved), open (or read-only), save, save as
(the study's runs come along), and saving pending edits on close. A mixin of :class:`AnnotationWidget`
(it uses the dock's study, layers and notifications)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QFileDialog

from ..io.orientation import study_axis
from ..study import Study, Tag, load_study, save_study
from ..study.runs import carry_runs, check_runs_idle, study_runs
from .session import session_for
from .study_layers import GridMismatch, plain_transform, volume_from_layers


def default_study_home() -> Path:
    """Where studies that were never saved are autosaved (``$WEAKSEG_HOME`` overrides)."""
    return Path(os.environ.get("WEAKSEG_HOME", Path.home() / ".napari-weakseg")) / "unsaved"


class StudyFiles:
    """Study life of the tagging dock (mixed into AnnotationWidget)."""

    def new_study_from_layers(self, layers=None) -> bool:
        """Start a study from image layers (channels) and an optional labels layer (mask).

        ``layers`` defaults to the viewer's selection (or the active layer). The study
        is autosaved under :func:`default_study_home` until saved elsewhere.
        """
        self.flush()
        old = self.study
        if layers is None:  # in layer-list order: the selection is an unordered set
            layers = [layer for layer in self.viewer.layers if layer in self.viewer.layers.selection]
        layers = list(layers)
        if not layers and self.viewer.layers:
            layers = [self.viewer.layers[-1]]
        images = [layer for layer in layers if isinstance(layer, Image)]
        labels = [layer for layer in layers if isinstance(layer, Labels)]

        def build():
            label = labels[0] if labels else None
            try:
                volume, mask = volume_from_layers(images, label)
            except GridMismatch as exc:  # ask before resampling: it changes the voxels of every channel after the first
                if not (exc.can_resample and self._ask_resample(str(exc), images[0].name)):
                    raise
                volume, mask = volume_from_layers(images, label, resample="linear")
            study = Study()
            name = images[0].name.split(" ")[0] if len(images) > 1 else images[0].name
            im = study.add_image(volume, name=name, mask=mask, axis=study_axis(volume))  # axial, from the affine
            if mask is not None:
                study.mask_painted(im)  # painted slices become presence + annotated
            stamp = time.strftime("%Y%m%d-%H%M%S")
            folder, k = default_study_home() / f"{im.name}-{stamp}", 2
            while folder.exists():  # another study of that name started within the same second
                folder, k = default_study_home() / f"{im.name}-{stamp}-{k}", k + 1
            save_study(study, folder)
            return study

        study = self._guard(build)
        if study is None:
            return False
        self._remove_layers(keep=images)
        reuse = images if all(plain_transform(layer) for layer in images) else None
        if reuse is None:  # another reader's rotations or flips: the study's own layers show it upright instead
            for layer in [*images, *labels]:  # (copied into the study; their files are untouched)
                if layer in self.viewer.layers:
                    self.viewer.layers.remove(layer)
            show_info(
                f"{', '.join(layer.name for layer in images)}: shown by the study's own layers (upright, labelled); "
                "the other reader's layers were closed, their files are untouched"
            )
        self._set_study(study, reuse_images=reuse)
        self._discard_if_empty(old)
        show_info(f"New study autosaved in {study.folder}; use 'Save as…' to choose its folder")
        return True

    def _ask_resample(self, problem: str, first: str) -> bool:
        from qtpy.QtWidgets import QMessageBox

        answer = QMessageBox.question(
            self,
            "Channels on different grids",
            f"{problem}.\n\nResample the other channels onto {first}'s grid (linear interpolation, by world position)?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def open_study(self, folder, read_only: bool = False) -> bool:
        """Open a study folder, replacing the current study (which is saved first). ``read_only``: look and
        edit without ever writing there (e.g. a colleague's study, or one open in another viewer); Save as…
        keeps the edits in a new folder."""
        self.flush()
        old = self.study
        study = self._guard(lambda: load_study(folder))
        if study is None:
            return False
        self._remove_layers()
        read_only_before, self.read_only = self.read_only, read_only
        self._set_study(study)
        if not read_only_before:
            self._discard_if_empty(old)
        return True

    def save_now(self, folder=None) -> bool:
        """Save the study (to ``folder`` for 'Save as'). Returns False and notifies on failure."""
        self._process_paint()
        self._autosave.stop()
        if self.study is None:
            return False
        old = self.study.folder
        if folder is None and not self.study.modified and old is not None and (old / "study.json").is_file():
            return True
        if folder is None and self.read_only:
            self._last_error = f"{old} was opened read-only: use Save as… to keep your changes in another folder"
            show_error(self._last_error)
            return False
        moving = folder is not None and old is not None and Path(folder).resolve() != old.resolve()
        if moving and self._guard(lambda: check_runs_idle(old) or True) is None:
            return False  # a run is being written there: it cannot move now
        if self._guard(lambda: save_study(self.study, folder)) is None:
            return False
        self.read_only = False  # saved into a folder of its own: writable from now on
        if moving:
            autosave = old.is_relative_to(default_study_home())
            moved = self._guard(lambda: carry_runs(old, self.study.folder, move=autosave))
            if moved is None:  # kept where they are, and so is the old folder
                show_warning(f"The study is saved in {self.study.folder}; its trained models stay in {old / 'runs'}")
            else:
                if autosave:
                    shutil.rmtree(old, ignore_errors=True)  # the autosave copy is no longer needed: its runs moved
                session_for(self.viewer).study_moved.emit(str(old), str(self.study.folder))
        self._refresh_status()
        return True

    def leave_study(self) -> None:
        """The viewer closes: save the study, or remove it if it is an autosave with nothing the user made."""
        self.flush()
        if not self.read_only:
            self._discard_if_empty(self.study)

    def _discard_if_empty(self, study) -> None:
        """Remove ``study`` (one just replaced, or left) if it is an autosave that holds nothing the user made (no
        tag, no mask, no run): e.g. a study started from the wrong layers."""
        if study is None or study.folder is None or not Path(study.folder).is_relative_to(default_study_home()):
            return
        made = any((im.tags != Tag.UNKNOWN).any() or im.mask.any() or im.confirmed_empty.any() for im in study.images)
        if not made and not study_runs(study.folder) and not (Path(study.folder) / "runs").exists():
            shutil.rmtree(study.folder, ignore_errors=True)
            show_info(f"Removed the empty autosave {study.folder} (no tag, mask or model in it)")

    def flush(self) -> None:
        """Save pending changes now (on close / quit); a read-only study is never written."""
        self._process_paint()
        if self.study is not None and self.study.modified and not self.read_only:
            self.save_now()

    def _refresh_status(self) -> None:
        if self.study is None:
            return
        folder = self.study.folder
        where = f"Study folder: {folder}" + (
            " (autosave; use 'Save as…' to keep it elsewhere)" if folder and folder.is_relative_to(default_study_home()) else ""
        )
        if self.read_only:
            where += " (read-only: nothing is written there; 'Save as…' keeps your changes elsewhere)"
        self.folder_label.setText(where)
        if self.read_only:
            self.status_label.setText("Read-only" + (": unsaved changes" if self.study.modified else ""))
        else:
            self.status_label.setText("Unsaved changes…" if self.study.modified else f"Saved {time.strftime('%H:%M:%S')}")

    def _open_dialog(self, read_only: bool = False) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open study folder" + (" (read-only)" if read_only else ""))
        if folder:
            self.open_study(folder, read_only)

    def _save_as_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save study into an empty folder")
        if folder:
            self.save_now(Path(folder))
