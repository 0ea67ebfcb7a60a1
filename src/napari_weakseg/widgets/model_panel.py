"""The training dock's models: the study's runs (listed on open, picked, deleted), Run model (outputs as
layers, the threshold), Save model as / Load model, and following the study when it moves. A mixin of
:class:`TrainingWidget`."""

from __future__ import annotations

from pathlib import Path

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info

from ..errors import WeaksegError
from ..study.runs import delete_run, study_runs
from ..training.dock_defaults import study_slice_side
from .output_layers import show_outputs, update_threshold


class ModelPanel:
    """Models and outputs of the training dock (mixed into TrainingWidget)."""

    def _study_opened(self) -> None:
        """A study was created or opened: its runs are listed and the newest is the model (runs survive a restart)."""
        ann = self.annotation
        folder = ann.study.folder if ann is not None and ann.study is not None else None
        runs = study_runs(folder) if folder else []
        if not self.running:
            self.settings.follow_study(study_slice_side(ann.study) if ann is not None and ann.study is not None else None)
            self.last_run = None
            self.model_label.setText("no model yet")
            if runs:
                self.load_model(runs[-1])
        self._refresh()

    def save_segmentation(self, path: str | Path | None = None) -> Path | None:
        """Save the current image's segmentation layer (as corrected) on the image's grid: NIfTI, or a DICOM SEG
        (``.dcm``) referring to the DICOM series the image came from. Without ``path`` a dialog asks (and asks
        before replacing a file). Returns the file written."""
        from qtpy.QtWidgets import QFileDialog

        from ..io.outputs import dicom_series_of, save_segmentation
        from .output_layers import SEG, layer_name

        ann = self.annotation
        im = ann.image if ann is not None else None
        name = layer_name(im.name, SEG) if im is not None else None
        if name is None or name not in self.viewer.layers:
            show_error("No segmentation to save: run the model on the image first")
            return None
        if path is None:
            filters = "NIfTI (*.nii.gz)" + (";;DICOM SEG (*.dcm)" if dicom_series_of(im.volume) else "")
            start = Path(ann.study.folder or Path.home()) / f"{im.name}_seg.nii.gz"
            path, chosen = QFileDialog.getSaveFileName(self, "Save segmentation", str(start), filters)
            if not path:
                return None
            if "dcm" in chosen and not path.lower().endswith(".dcm"):
                path += ".dcm"
        try:
            written = save_segmentation(path, self.viewer.layers[name].data, im.volume)
        except (WeaksegError, OSError) as exc:
            show_error(f"Segmentation not saved: {exc}")
            return None
        show_info(f"Segmentation saved in {written}")
        return written

    def delete_run(self, run: str | Path) -> bool:
        """Delete a run of the study (the run list asked the user first)."""
        ann = self.annotation
        if ann is None or ann.study is None or (self.running and Path(run) == self.run_dir):
            show_error("That run is training; stop it first")
            return False
        try:
            delete_run(run, ann.study.folder)
        except WeaksegError as exc:
            show_error(str(exc))
            return False
        if self.last_run is not None and Path(run) == self.last_run:
            self.last_run = None
            self.model_label.setText("no model yet")
        show_info(f"Deleted the run {Path(run).name}")
        self._refresh()
        return True

    def _follow_study(self, old: str, new: str) -> None:
        """The study was saved elsewhere and its runs moved along: the dock's run paths follow."""
        for name in ("last_run", "run_dir"):
            path = getattr(self, name)
            if path is not None and Path(path).is_relative_to(old):
                setattr(self, name, Path(new) / Path(path).relative_to(old))
        if self.last_run is not None and (self.last_run / "run.json").is_file():
            self.load_model(self.last_run)
        self._refresh()

    def toggle_healthy(self) -> bool | None:
        """Show the healthy image over the source, or hide it again (flick between them to compare; its contrast
        follows the source's). Returns whether it is shown now, None when there is none."""
        from .output_layers import HEALTHY, layer_name

        ann = self.annotation
        name = layer_name(ann.image.name, HEALTHY) if ann is not None and ann.image is not None else ""
        if name not in self.viewer.layers:
            show_error("No healthy image: Run model with a method that translates (genseg, genseg-sepdec)")
            return None
        layer = self.viewer.layers[name]
        layer.visible = not layer.visible
        return layer.visible

    def run_model(self, run_dir: str | Path | None = None, lesion_samples: bool = False):
        """Predict the current image with the last (or given) run and show the output layers.

        Runs in a worker thread; returns the worker (tests wait on it)."""
        from ..inference import TrainedModel
        from ..training.task_process import run_task, wants_separate_process
        from ..training.trainer import resolve_device

        ann = self.annotation
        run_dir = Path(run_dir) if run_dir else self.last_run
        if self._closed:
            return None
        if ann is None or ann.image is None or run_dir is None:
            show_error("Train a model (or load one) and open a study first")
            return None
        im = ann.image
        image_layers, _ = ann.layers[im.name]
        threshold = self.threshold.value() / 100
        try:  # the model's channels against the image's, before any work (a swap would predict without a word)
            from ..io.modality import check_channel_order
            from ..training.checkpoint import read_run_info

            trained = read_run_info(run_dir).get("study", {}).get("channels", [])
            if trained and len(trained) != len(im.volume.channel_names):
                raise WeaksegError(
                    f"the model was trained on {len(trained)} channel(s) ({', '.join(trained)}); "
                    f"{im.name} has {len(im.volume.channel_names)}"
                )
            check_channel_order(trained, im.volume.channel_names)
        except WeaksegError as exc:
            show_error(str(exc).replace(", or pass --channels-as-given if they are right", ""))
            return None

        device = str(resolve_device(self.settings.device.currentData()))  # read here: widgets belong to the GUI thread

        separate = getattr(self, "separate_process", None)
        separate = wants_separate_process(device) if separate is None else separate

        @thread_worker(ignore_errors=True)  # reported once, by failed() below (napari would show it a second time)
        def predict():
            if separate:  # where training runs: a GPU context leaves with the process (task_process)
                args = {"run_dir": str(run_dir), "volume": im.volume.data, "axis": im.axis, "split": None}
                return run_task("predict", {**args, "lesion_samples": lesion_samples, "device": device})
            model = TrainedModel.load(run_dir, device=device)
            return model.info, model.predict_image(im, lesion_samples=lesion_samples)

        def done(result):
            if self._closed:  # the viewer is going away: no new layers
                return
            info, outputs = result
            classes = info.get("study", {}).get("classes")
            show_outputs(self.viewer, im.name, image_layers[0], outputs, threshold, classes)
            self._reveal()
            self.model_label.setText(describe_model(info, Path(run_dir)))

        def failed(exc):
            show_error(str(exc) if isinstance(exc, WeaksegError) else f"Prediction failed: {exc}")

        worker = predict()
        worker.returned.connect(done)
        worker.errored.connect(failed)
        self._predictions.add(worker)
        worker.finished.connect(lambda: self._predictions.discard(worker))
        worker.start()
        return worker

    @property
    def prediction_pending(self) -> bool:
        """True while a Run model prediction is computing or its layers are not written yet."""
        return bool(self._predictions)

    def load_model(self, run_dir: str | Path) -> bool:
        """Use a saved run folder (from training or 'Save model as…') for Run model and Retrain."""
        from ..training.checkpoint import read_run_info

        try:
            info = read_run_info(run_dir)
        except WeaksegError as exc:
            show_error(str(exc))
            return False
        self.last_run = Path(run_dir)
        if not self.running:
            self.settings.follow_model(info.get("method"), info.get("train_config", {}).get("preset"))
        self.model_label.setText(describe_model(info, self.last_run))
        self._refresh()
        return True

    def save_model(self, folder: str | Path) -> bool:
        """Copy the last run's model (run.json, best.pt, last.pt) into a new or empty ``folder``."""
        import shutil

        folder = Path(folder)
        if self.last_run is None:
            show_error("No model to save: train or load one first")
            return False
        if folder.exists() and any(folder.iterdir()):
            show_error(f"{folder}: choose an empty or new folder")
            return False
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("run.json", "best.pt", "last.pt", "metrics.jsonl"):
            if (self.last_run / name).is_file():
                shutil.copy2(self.last_run / name, folder / name)
        show_info(f"Model saved to {folder}")
        return True

    def _load_dialog(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, "Open a model (run folder)")
        if folder:
            self.load_model(folder)

    def _save_dialog(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, "Save the model into an empty folder")
        if folder:
            self.save_model(folder)

    def _threshold_changed(self, value: int) -> None:
        self.threshold_label.setText(f"threshold {value / 100:.2f}")
        ann = self.annotation
        if ann is not None and ann.image is not None:
            update_threshold(self.viewer, ann.image.name, value / 100)


def describe_model(info: dict, run_dir: Path) -> str:
    """Where a model came from: method, preset, steps, study, best validation Dice."""
    tc, state = info.get("train_config", {}), info.get("state", {})
    study = (info.get("study") or {}).get("folder")
    best = state.get("best_dice")
    origin = info.get("started_from") or {}
    start = f"; {origin.get('how', 'started')} from {Path(origin['run']).name}" if origin.get("run") else ""
    return (
        f"model {run_dir.name}: {info.get('method')} ({tc.get('preset')} preset, step {state.get('step', '?')} of "
        f"{tc.get('steps')}, seed {tc.get('seed')})"
        + (f", best validation Dice {best:.3f}" if best is not None else "")
        + start
        + f"; trained on {study}"
    )
