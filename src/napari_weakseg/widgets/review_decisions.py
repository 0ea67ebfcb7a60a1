"""The review dock's decisions on pseudo labels: accept (into the study's masks, never over the user's), reject,
edit with the brush, forget; saved with the run. A mixin of
:class:`~napari_weakseg.widgets.pseudo_review_widget.PseudoReviewWidget`."""

from __future__ import annotations

from napari.utils.notifications import show_error

from ..errors import WeaksegError
from ..pseudo.review import ACCEPTED, EDITED


class ReviewDecisions:
    """Decisions of the review dock (mixed into PseudoReviewWidget)."""

    def accept(self, slices=None, decision: str = ACCEPTED) -> list[int]:
        """Copy the pseudo labels of ``slices`` (default: the selected rows) into the study's masks."""
        rev = self.current_review()
        slices = self.selected_slices() if slices is None else [int(s) for s in slices]
        if rev is None or not slices:
            return []
        try:
            masks = rev.masks(slices)
        except WeaksegError as exc:
            show_error(str(exc))
            return []
        accepted = self.annotation.accept_masks(slices, masks)
        if accepted:
            self._record(rev.name, accepted, decision)
        return accepted

    def decide(self, decision: str | None, slices=None) -> list[int]:
        """Mark ``slices`` (default: the selected rows) rejected, or forget their decision (None)."""
        rev = self.current_review()
        slices = self.selected_slices() if slices is None else [int(s) for s in slices]
        if rev is None or not slices:
            return []
        self._record(rev.name, slices, decision)
        return slices

    def edit(self, s: int | None = None) -> bool:
        """Put slice ``s``'s (default: the selected one) pseudo label into the mask layer, go there and
        activate the brush: what the user paints is the annotation. A slice that already holds the user's
        mask keeps it (``AnnotationWidget.accept_masks``): the brush starts from the user's mask."""
        chosen = self.selected_slices() if s is None else [int(s)]
        if not chosen or self.annotation is None or self.annotation.image is None:
            return False
        ann = self.annotation
        painted = 0 <= chosen[0] < ann.image.n_slices and bool(ann.image.has_content()[chosen[0]])
        if painted:
            self._record(ann.image.name, chosen[:1], EDITED)
        elif not self.accept(chosen[:1], EDITED):
            return False
        ann.go_to_slice(chosen[0])
        self.viewer.layers.selection.active = ann.mask_layer
        ann.mask_layer.visible = True
        ann.mask_layer.mode = "paint"
        return True

    def _record(self, image: str, slices, decision: str | None) -> None:
        self.decisions.set(image, slices, decision)
        try:
            self.decisions.save(self.run_dir)
        except OSError as exc:
            show_error(f"could not save the review decisions: {exc}")
        selected = self.selected_slices()
        self._fill_table()
        self.select_slices(selected)
