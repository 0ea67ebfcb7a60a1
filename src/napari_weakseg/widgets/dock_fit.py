"""Docks that fit a screen (issue #17): each dock's content scrolls instead of growing the window, and the
plugin's docks open as tabs of one dock area instead of stacking up past the screen's height."""

from __future__ import annotations

from qtpy.QtWidgets import QDockWidget, QFrame, QScrollArea, QVBoxLayout, QWidget

MIN_HEIGHT = 240  # the least a dock asks for: the rest scrolls


def scrolling_layout(widget: QWidget) -> QVBoxLayout:
    """Give ``widget`` a scroll area holding an inner widget; returns the inner widget's layout (build the dock
    into it). The dock's minimum height is then ``MIN_HEIGHT``, whatever its content."""
    inner = QWidget()
    root = QVBoxLayout(inner)
    area = QScrollArea()
    area.setWidget(inner)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setMinimumHeight(MIN_HEIGHT)
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    return root


def _dock_of(widget: QWidget) -> QDockWidget | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


def raise_dock(widget: QWidget) -> None:
    """Bring ``widget``'s dock to the front of its tabs."""
    dock = _dock_of(widget)
    if dock is not None:
        dock.raise_()


def tabify_with_siblings(widget: QWidget) -> None:
    """Put ``widget``'s dock in a tab beside the other docks of this plugin already in the window (once), and
    keep the window inside the screen."""
    dock = _dock_of(widget)
    if dock is None or dock.isFloating() or getattr(widget, "_tabified", False):
        return
    window = dock.parentWidget()
    while window is not None and not hasattr(window, "tabifyDockWidget"):
        window = window.parentWidget()
    if window is None:
        return
    widget._tabified = True
    ours = [
        d
        for d in window.findChildren(QDockWidget)
        if d is not dock
        and not d.isFloating()
        and d.isVisible()
        and getattr(d.widget(), "_weakseg_dock", False)
        and window.dockWidgetArea(d) == window.dockWidgetArea(dock)
    ]
    if ours:
        window.tabifyDockWidget(ours[0], dock)
        dock.raise_()
    screen = window.screen().availableGeometry() if window.screen() is not None else None
    if screen is not None and (window.height() > screen.height() or window.width() > screen.width()):
        window.resize(min(window.width(), screen.width()), min(window.height(), screen.height()))
