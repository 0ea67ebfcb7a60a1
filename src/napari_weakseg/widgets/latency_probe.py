"""A Qt timer that measures its own lateness: how long the event loop keeps the user waiting."""

from __future__ import annotations

import time

import numpy as np
from qtpy.QtCore import QObject, Qt, QTimer


class EventLoopProbe(QObject):
    """Fires every ``interval_ms``; each firing records how late it came (ms).

    A late firing means the event loop was busy (drawing, handling events, Python
    work) for that long: a click or a brush stroke in that window would have waited
    as long. Use :meth:`start`, let the loop run, then :meth:`stop` and :meth:`summary`.
    Each sample carries the current :attr:`label` (e.g. "user active"), for summaries per condition.
    """

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None):
        super().__init__(parent)
        self.interval_ms = interval_ms
        self.lateness_ms: list[float] = []
        self.labels: list[str] = []
        self.label = ""
        self._last = None
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.lateness_ms, self.labels = [], []
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.lateness_ms.append(max(0.0, (now - self._last) * 1000 - self.interval_ms))
        self.labels.append(self.label)
        self._last = now

    def summary(self, label: str | None = None) -> dict:
        """Lateness statistics of all samples, or of those taken under ``label``."""
        values = self.lateness_ms if label is None else [v for v, k in zip(self.lateness_ms, self.labels, strict=True) if k == label]
        return latency_summary(values)


def latency_summary(lateness_ms: list[float]) -> dict:
    """p50 / p95 / p99 / max lateness (ms) and the number of samples."""
    if not lateness_ms:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    a = np.asarray(lateness_ms)
    return {
        "n": int(a.size),
        "p50_ms": float(np.percentile(a, 50)),
        "p95_ms": float(np.percentile(a, 95)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
    }
