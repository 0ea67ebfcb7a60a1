"""The demo study in a shown napari viewer with the plugin's docks (for the screenshot scripts)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch  # noqa: F401  (before Qt)


def open_demo(name: str, docks: tuple[str, ...]):
    """-> (app, viewer, [dock widgets]); the first dock must be the tagging dock (it opens the study)."""
    os.environ.setdefault("WEAKSEG_HOME", tempfile.mkdtemp(prefix="weakseg-shots-"))
    import napari

    from napari_weakseg.demo import PLUGIN, build_demo_study

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    widgets = [viewer.window.add_plugin_dock_widget(PLUGIN, dock, tabify=i > 0)[1] for i, dock in enumerate(docks)]
    widgets[0].open_study(build_demo_study(Path(os.environ["WEAKSEG_HOME"]) / name))
    return napari.qt.get_qapp(), viewer, widgets
