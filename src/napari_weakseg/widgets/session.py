"""What the plugin's docks of one viewer share: the tagging dock (and through it the study)."""

from __future__ import annotations

import weakref

from psygnal import Signal


class Session:
    """Per-viewer shared state. ``study_changed`` fires when a study is created or opened."""

    study_changed = Signal()

    def __init__(self):
        self._annotation = None

    @property
    def annotation(self):
        """The tagging dock (an AnnotationWidget), or None."""
        return self._annotation() if self._annotation is not None else None

    @annotation.setter
    def annotation(self, widget) -> None:
        self._annotation = weakref.ref(widget) if widget is not None else None


_sessions: "weakref.WeakKeyDictionary[object, Session]" = weakref.WeakKeyDictionary()


def session_for(viewer) -> Session:
    """The session of ``viewer`` (napari hands plugins a proxy; the real viewer is the key)."""
    real = getattr(viewer, "__wrapped__", viewer)
    if real not in _sessions:
        _sessions[real] = Session()
    return _sessions[real]
