"""The review dock's *Refine*: selection and iterative rounds of the reviewed pseudo-label run, in the background
(in a separate process on a GPU, ``training.task_process``), with a progress bar of its rounds and *Stop*. A mixin
of :class:`~napari_weakseg.widgets.pseudo_review_widget.PseudoReviewWidget`."""

from __future__ import annotations

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info


class RefineStopped(Exception):
    """The user stopped a refinement (raised between its rounds)."""


class RefinePanel:
    """Refine of the review dock (mixed into PseudoReviewWidget)."""

    def start_refine(self):
        """Selection + iterative rounds of the reviewed run on a saved copy of the study, in a worker
        thread, with the decisions; then review the refined model. Returns the worker."""
        from ..pseudo.refine import refine_run
        from ..study import load_study
        from ..training.task_process import run_task, wants_separate_process
        from ..training.trainer import resolve_device

        ann = self.annotation
        if self.run_dir is None or ann is None or ann.study is None:
            show_error("Review a run first")
            return None
        if self.busy:
            show_error("The review is busy; wait for it to finish")
            return None
        if not ann.save_now():
            return None
        run_dir, folder, device = self.run_dir, ann.study.folder, str(resolve_device(self.device))
        separate = wants_separate_process(device) if self.separate_process is None else self.separate_process
        self._stop_refine = False

        def on_round(k: int, n: int) -> None:
            self._progress.emit(k, n)
            if self._stop_refine:  # between rounds: nothing of the refinement is written
                raise RefineStopped

        @thread_worker(ignore_errors=True)  # reported by _start's errored handler
        def work():
            try:
                if separate:  # where training runs: a GPU context leaves with the process
                    args = {"run_dir": str(run_dir), "study_folder": str(folder), "device": device}
                    return run_task("refine", args, self._log.emit, self._progress.emit, lambda: self._stop_refine)
                result = refine_run(run_dir, load_study(folder), which="best", device=device, log=self._log.emit, on_round=on_round)[1]
            except RefineStopped:
                return None
            return {"best_round": result.best_round, "rounds": len(result.history)}

        def done(result):
            self.progress.setVisible(False)
            if result is None:
                self.status.setText("refine stopped: the run is as it was")
                show_info(f"Refine of {run_dir.name} stopped; nothing was written")
                return
            self.status.setText(f"refined: best round {result['best_round']} of {result['rounds']}")
            show_info(f"Refined {run_dir.name}: best round {result['best_round']}")
            self._next = lambda: self.start_review(run_dir, "refined")  # once this worker has ended

        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.status.setText("refining in the background…")
        return self._start(work(), done, "refine")

    def stop_refine(self) -> None:
        """Stop a refinement: between rounds in the viewer's process, at once in a separate one."""
        if self._worker is not None:
            self._stop_refine = True
            self.status.setText("stopping the refinement…")

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
