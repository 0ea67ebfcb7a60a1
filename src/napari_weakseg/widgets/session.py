"""What the plugin's docks of one viewer share: the tagging dock (and through it the study)."""

from __future__ import annotations

import weakref

from psygnal import Signal


class Session:
    """Per-viewer shared state. ``study_changed`` fires when a study is created or opened; ``study_moved(old,
    new)`` when it was saved into another folder and its runs came along (paths under ``old`` now lie under ``new``).

    method_options: method-config overrides other docks contribute to training (e.g. the shape prior's
    ranges as {"pseudo_label": {...}}); methods that do not read an option ignore it."""

    study_changed = Signal()
    study_moved = Signal(str, str)

    def __init__(self):
        self._annotation = None
        self._training = None
        self.method_options: dict = {}

    @property
    def annotation(self):
        """The tagging dock (an AnnotationWidget), or None."""
        return self._annotation() if self._annotation is not None else None

    @annotation.setter
    def annotation(self, widget) -> None:
        self._annotation = weakref.ref(widget) if widget is not None else None

    @property
    def training(self):
        """The training dock (a TrainingWidget), or None."""
        return self._training() if self._training is not None else None

    @training.setter
    def training(self, widget) -> None:
        self._training = weakref.ref(widget) if widget is not None else None


_sessions: weakref.WeakKeyDictionary[object, Session] = weakref.WeakKeyDictionary()


def session_for(viewer) -> Session:
    """The session of ``viewer`` (napari hands plugins a proxy; the real viewer is the key)."""
    real = getattr(viewer, "__wrapped__", viewer)
    if real not in _sessions:
        _sessions[real] = Session()
    return _sessions[real]
