"""The training dock's correct-and-retrain loop: the slices the user corrected in the segmentation layer
become annotations, a short warm-started retrain, and suggestions of slices to annotate next. A mixin of
:class:`TrainingWidget`."""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_error, show_info

from .output_layers import PROB, SEG, layer_name


class RetrainPanel:
    """Correct and retrain (mixed into TrainingWidget)."""

    def corrected_slices(self) -> list[int]:
        """Slices where the segmentation layer differs from the thresholded probability (the user's edits)."""
        ann = self.annotation
        im = ann.image if ann is not None else None
        prob_name, seg_name = layer_name(im.name, PROB) if im else "", layer_name(im.name, SEG) if im else ""
        if im is None or prob_name not in self.viewer.layers or seg_name not in self.viewer.layers:
            return []
        model_seg = np.asarray(self.viewer.layers[prob_name].data) >= self.threshold.value() / 100
        edited = np.asarray(self.viewer.layers[seg_name].data) > 0
        other = tuple(a for a in range(3) if a != im.axis)
        return [int(s) for s in np.flatnonzero((model_seg != edited).any(axis=other))]

    def accept_corrections(self, slices: list[int] | None = None) -> list[int]:
        """Copy the segmentation layer's ``slices`` (default: the corrected ones, else the current slice)
        into the study's masks as annotations. Undo with the tagging dock's Undo tag (Alt-Z)."""
        ann = self.annotation
        im = ann.image if ann is not None else None
        seg_name = layer_name(im.name, SEG) if im else ""
        if im is None or seg_name not in self.viewer.layers:
            show_error("Run the model first: there is no segmentation layer to accept")
            return []
        slices = slices if slices is not None else (self.corrected_slices() or [ann.current_slice()])
        seg = np.moveaxis(np.asarray(self.viewer.layers[seg_name].data), im.axis, 0)
        return ann.accept_masks(slices, seg[slices])

    def retrain(self) -> bool:
        """Warm-start from the last run's best weights; a short fine-tune (``retrain_steps``)."""
        if self.last_run is None:
            show_error("Nothing to retrain: train a model first")
            return False
        weights = self.last_run / "best.pt"
        steps = self.settings.steps.value()
        self.settings.steps.setValue(self.retrain_steps.value())
        try:
            return self.start_training(init_weights=str(weights if weights.is_file() else self.last_run / "last.pt"))
        finally:
            self.settings.steps.setValue(steps)

    def suggest(self, limit: int = 10) -> list:
        """Rank the image's unannotated slices by how many pixels the model likely has wrong there
        (``suggest.suggestions``: expected wrong pixels, and what the tags say), each listed with its reason."""
        from ..suggest import suggestions

        ann = self.annotation
        im = ann.image if ann is not None else None
        prob_name = layer_name(im.name, PROB) if im else ""
        if im is None or prob_name not in self.viewer.layers:
            show_error("Run the model first: suggestions come from its probabilities")
            return []
        ranked = suggestions(im, np.asarray(self.viewer.layers[prob_name].data), limit, self.threshold.value() / 100)
        self.suggestions.clear()
        for rank, x in enumerate(ranked, 1):  # the reason gives the pixels; the ranking's weighed score is not shown
            self.suggestions.addItem(f"{rank}. slice {x.slice}: {x.reason}")
        if not ranked:
            show_info("No unannotated slice left to suggest")
        self._suggested = [x.slice for x in ranked]
        return ranked

    def _go_to_suggestion(self, row: int) -> None:
        if 0 <= row < len(getattr(self, "_suggested", [])) and self.annotation is not None:
            self.annotation.go_to_slice(self._suggested[row])

    def _next_suggestion(self) -> None:
        if self.suggestions.count():
            self.suggestions.setCurrentRow((self.suggestions.currentRow() + 1) % self.suggestions.count())
