"""Knowing when a dock goes away: docked widgets get no close event of their own when napari's
main window closes, so an event filter on that window calls back first."""

from __future__ import annotations

import weakref

from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QWidget


class CloseWatcher(QObject):
    """Calls back before the main window closes (dock widgets get no close event of their own)."""

    def __init__(self, callback):
        super().__init__()
        self._callback = callback

    def eventFilter(self, obj, event):  # noqa: N802
        if event.type() == QEvent.Type.Close:
            self._callback()
        return False


def watch_window_close(widget: QWidget, watcher: CloseWatcher, watched):
    """Install ``watcher`` on the top-level window of a docked ``widget`` once; returns a weakref to it."""
    window = widget.window()
    current = watched() if watched is not None else None
    if window is not widget and window is not current:
        window.installEventFilter(watcher)
        return weakref.ref(window)
    return watched


class ShutsDownOnClose:
    """Mixin for docks (before QWidget in the bases): ``self.shutdown()`` runs when the dock or the main
    window closes."""

    _watched_window = None

    def closeEvent(self, event):  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

    def showEvent(self, event):  # noqa: N802
        super().showEvent(event)
        if "_close_watcher" not in self.__dict__:
            self._close_watcher = CloseWatcher(self.shutdown)
        self._watched_window = watch_window_close(self, self._close_watcher, self._watched_window)
