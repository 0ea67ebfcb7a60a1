"""The tagging dock's reactions to painting: the study learns which slices were painted (unknown ones become
presence), and painting on an absence slice raises a warning with a *Retag as presence* answer. A mixin of
:class:`AnnotationWidget`. napari emits a Labels paint event before it writes the pixels for ungrouped edits,
so the mask is read once control is back in the event loop."""

from __future__ import annotations

from napari.utils.notifications import show_warning

from ..study import Tag


class PaintWatch:
    """Painting reactions of the tagging dock (mixed into AnnotationWidget)."""

    def retag_painted_absence(self) -> None:
        """Answer to the warning after painting on absence slices: tag them presence."""
        self._process_paint()
        if self._painted_absence and self.image is not None:
            slices = list(self._painted_absence)
            mask = self.image.mask.copy()  # retagging must not erase the paint that prompted it
            self.study.set_tags(self.current, slices, Tag.PRESENCE)
            self.image.mask[...] = mask
            self.study.mask_painted(self.current)
        self._painted_absence = []
        self.banner.setVisible(False)

    def _queue_paint(self, index: int) -> None:
        self._pending_paint.add(index)
        self._paint_timer.start()

    def _process_paint(self) -> None:
        self._paint_timer.stop()
        pending, self._pending_paint = sorted(self._pending_paint), set()
        for index in pending:
            if self.study is not None and index < len(self.study.images):
                self._on_paint(index)

    def _on_paint(self, index: int) -> None:
        absent = self._guard(lambda: self.study.mask_painted(index))
        if index != self.current:
            return
        if absent:
            new = absent != self._painted_absence
            self._painted_absence = absent
            which = ", ".join(map(str, absent))
            text = f"You painted on slice {which}, tagged absence (no lesion). Retag as presence, or erase the paint."
            self.banner_label.setText(text)
            self.banner.setVisible(True)
            if new:
                show_warning(text)
        elif absent is not None:  # the paint on absence slices was erased or undone
            self._painted_absence = []
            self.banner.setVisible(False)

    def _labels_history(self, index: int, which: str) -> None:
        layer = self.layers[self.study.images[index].name][1]
        getattr(layer, which)()
        self._on_paint(index)
