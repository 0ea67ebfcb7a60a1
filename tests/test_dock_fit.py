"""Issue #17: the plugin's three docks, opened one after the other as from the Plugins menu, fit the screen
(1600x1000 under scripts/test.sh's Xvfb): they open as tabs of one dock area and their content scrolls."""

from __future__ import annotations

from qtpy.QtWidgets import QApplication, QScrollArea

from napari_weakseg.widgets.dock_fit import MIN_HEIGHT

DOCKS = ("Tag slices and paint masks", "Train and inspect", "Review pseudo labels")


def test_the_three_docks_fit_the_screen_as_tabs(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    docks = []
    for name in DOCKS:
        dock, widget = viewer.window.add_plugin_dock_widget("napari-weakseg", name)
        QApplication.processEvents()
        docks.append(dock)
        assert widget.findChild(QScrollArea) is not None and widget.minimumSizeHint().height() <= MIN_HEIGHT + 40
    QApplication.processEvents()
    screen = window.screen().availableGeometry()
    assert window.frameGeometry().height() <= screen.height() and window.frameGeometry().width() <= screen.width()
    for dock in docks:  # each is a tab beside the other two
        assert {d.objectName() for d in window.tabifiedDockWidgets(dock)} == {d.objectName() for d in docks if d is not dock}
