"""What the training dock does with its training process's events: the live preview of the slice on screen,
progress, the loss plot, the status line (refreshed every DOCK_REFRESH_MS, not at every step: each repaint
costs the viewer), and the end of a run (its model shown at once, or the failure said). A mixin of
:class:`~napari_weakseg.widgets.training_widget.TrainingWidget`."""

from __future__ import annotations

from pathlib import Path

from napari.utils.notifications import show_error, show_info, show_warning

from ..training.events import Checkpointed, Failed, Finished, Preview, Progress, Started, Validated, kept_note
from ..training.pace import STARVED
from .output_layers import add_missing_outputs, reveal, update_slice


class RunEvents:
    """The training process's events in the dock (mixed into TrainingWidget)."""

    def _poll(self) -> None:
        job = self.job
        if job is None:
            return
        ann = self.annotation
        # the live preview follows the slice on screen; mapping the viewer's position to a slice goes
        # through napari's transforms (about 2 % of a core at this rate), so only when the position moved
        moved = (ann.current, tuple(self.viewer.dims.current_step)) if ann is not None else None
        if ann is not None and ann.image is not None and moved != self._position:
            self._position = moved
            where = (ann.current, ann.current_slice())
            if where != self._preview_at:
                job.set_preview(*where)
                self._preview_at = where
        for event in job.poll():
            self._handle(event)
            if isinstance(event, (Finished, Failed)):
                self._end(event)
                return
        if not job.alive and self.job is job:
            for event in job.poll():
                self._handle(event)
            self._end(Failed(f"the training process ended unexpectedly (exit code {job.process.exitcode})"))

    def _handle(self, event) -> None:
        if isinstance(event, Started):
            self._total = event.total_steps
            self.plot.total_steps = event.total_steps
            self.progress.setRange(0, event.total_steps)
            self.progress.setValue(event.resumed_from)
            self.last_step = event.resumed_from
            self.status.setText(f"training {event.method} on {event.device}: {event.train_slices} slices")
        elif isinstance(event, Progress):
            self.plot.add_losses(event.step, event.losses)
            self._latest = event
            self.last_step = event.step
        elif isinstance(event, Validated) and event.on == "validation":
            self.plot.add_validation(event.step, event.dice)
        elif isinstance(event, Preview):
            ann = self.annotation
            if ann is not None and event.image < len(ann.study.images):
                im = ann.study.images[event.image]
                self._hidden += self._preview_layers(event.image)  # none, unless the user deleted one or moved on
                update_slice(self.viewer, im.name, im.axis, event.slice, event.outputs, self.threshold.value() / 100)
                self._reveal()
        elif isinstance(event, Checkpointed):
            self.last_run = self.run_dir
            self.save_model_btn.setEnabled(True)

    def _refresh_dock(self) -> None:
        """Show the latest progress and the new loss points (every DOCK_REFRESH_MS while training)."""
        event, self._latest = self._latest, None
        if event is not None:
            self.progress.setValue(event.step)
            starved = event.cpu_share is not None and event.cpu_share < STARVED
            self.status.setText(
                f"step {event.step}/{event.total_steps} · {event.pairs_per_s:.1f} pairs/s · "
                f"ETA {event.eta_s:.0f} s · {self.settings.device.currentText()}"
                + (
                    f" · starved of CPU: it gets {event.cpu_share:.0%} of its threads' time (other programs are busy; "
                    "training runs at lower priority)"
                    if starved
                    else ""
                )
            )
        self.plot.redraw()

    def _preview_layers(self, index: int) -> list:
        """The output layers a live preview of study image ``index`` fills, those missing created
        empty and hidden; returns the created ones."""
        from ..methods import METHODS

        ann = self.annotation
        im = ann.study.images[index]
        outputs = METHODS[self._run_method].outputs  # the run's method, whatever the form shows now
        return add_missing_outputs(self.viewer, im.name, ann.layers[im.name][0][0], im.volume.shape, outputs)

    def _reveal(self) -> None:
        """Show the output layers created for this run, now that they hold something."""
        reveal(self._hidden)  # each as it is first shown: the segmentation's contour and the residual overlay
        self._hidden = []

    def _end(self, event) -> None:
        self._timer.stop()
        self._dock_timer.stop()
        self._refresh_dock()
        job, self.job = self.job, None
        self._exiting.append(job)
        self._reap()
        if isinstance(event, Failed):
            for layer in self._hidden:  # never filled: no empty layers left behind
                if layer in self.viewer.layers:
                    self.viewer.layers.remove(layer)
            self._hidden = []
            show_error(f"Training failed: {event.message}")
            self.status.setText(f"failed: {event.message}")
        else:
            self.last_run = Path(event.run_dir)
            self.load_model(self.last_run)
            best = f", best validation Dice {event.best_dice:.3f}" if event.best_dice is not None else ""
            kept = kept_note(event)
            self.status.setText(f"{event.reason} at step {event.step}{best}" + (f"; {kept}" if kept else ""))
            show_info(f"Training {event.reason}; run saved in {event.run_dir}")
            if kept:  # a retrain that made the model worse on the user's own masks does not replace it
                show_warning(kept[0].upper() + kept[1:])
            if event.note:  # e.g. the compiled step asked for in Advanced crashed its trial: trained eagerly
                show_warning(event.note[0].upper() + event.note[1:])
            self.run_model()  # the trained model's layers for the image on screen, without a click
        self._refresh()
        self.finished.emit(event)
