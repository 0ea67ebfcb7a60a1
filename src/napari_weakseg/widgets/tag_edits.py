"""The tagging dock's edits of tags and masks through :class:`~napari_weakseg.study.Study` (which keeps the undo
history): the current slice, a range, all; "annotated, no lesion"; accepting a model's masks; undo. A mixin of
:class:`~napari_weakseg.widgets.annotation_widget.AnnotationWidget`."""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning


class TagEdits:
    """Tag edits of the tagging dock (mixed into AnnotationWidget)."""

    def in_slicing_plane(self) -> bool:
        """True when the canvas shows the study's slices; else says why tags wait (a note, no change)."""
        if self.views.in_slicing_plane():
            return True
        show_info(f"Tags and masks are per {self.views.slicing_plane(self.image)} slice: go back to that view to tag")
        return False

    def tag_current(self, tag) -> None:
        self._process_paint()
        if self.image is not None and self.in_slicing_plane():
            self._guard(lambda: self.study.set_tags(self.current, self.current_slice(), tag))

    def tag_range(self, start: int, stop: int, tag, half: int | None = None) -> None:
        """Tag slices ``start``..``stop`` (both included); on a split image ``half`` 0 / 1 only that half."""
        self._process_paint()
        if self.image is not None:
            lo, hi = sorted((int(start), int(stop)))
            self._guard(lambda: self.study.set_tags(self.current, range(lo, hi + 1), tag, half))

    def clear_tags(self) -> None:
        self._process_paint()
        if self.image is not None:
            self._guard(lambda: self.study.clear_tags(self.current))

    def confirm_no_lesion(self) -> None:
        """Toggle "annotated, no lesion" on the current presence slice."""
        self._process_paint()
        im = self.image
        if im is not None and self.in_slicing_plane():
            s = self.current_slice()
            self._guard(lambda: self.study.confirm_empty(self.current, s, not im.confirmed_empty[s]))

    def accept_masks(self, slices, masks: np.ndarray) -> list[int]:
        """Take ``masks`` (len(slices), H, W; > 0 is lesion) as the annotation of ``slices`` of the current
        image (the docks' "accept as annotation"); Undo tag takes it back. A slice that already holds painted
        pixels keeps them (the user's mask is never replaced; erase it first): it is left out, with a warning.
        Returns the accepted slices."""
        self._process_paint()
        im = self.image
        if im is None:
            show_error("No study: create or open one first")
            return []
        slices = [int(s) for s in slices]
        masks = np.asarray(masks)
        painted = [s for s in slices if 0 <= s < im.n_slices and im.has_content()[s]]
        if painted:
            show_warning(f"Kept your mask on slice(s) {', '.join(map(str, sorted(painted)))}: erase it first to take the model's there")
            keep = [k for k, s in enumerate(slices) if s not in painted]
            slices, masks = [slices[k] for k in keep], masks[keep]
            if not slices:
                return []

        def accept() -> bool:
            self.study.accept_masks(self.current, slices, (np.asarray(masks) > 0).astype(im.mask.dtype))
            return True

        if not self._guard(accept):
            return []
        self.mask_layer.refresh()
        show_info(f"Accepted {len(slices)} slice(s) as annotation: {', '.join(map(str, sorted(slices)))}")
        return sorted(slices)

    def undo(self) -> None:
        self._process_paint()
        if self.study is not None and not self.study.undo():
            show_info("Nothing to undo")
        if self.mask_layer is not None:
            self.mask_layer.refresh()
