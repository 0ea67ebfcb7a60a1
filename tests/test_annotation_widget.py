"""GUI tests of the annotation dock widget, in real napari viewers (run under Xvfb).

Edits go through the widget's buttons, napari's key bindings (key presses sent to
the canvas), napari's own Labels paint paths (mouse strokes on the canvas, the
brush, the polygon tool) and clicks on the slice overview. Nothing of napari is
mocked: only the widget's notification functions are replaced (to record what the
user is told), the folder dialogs answered, and in one test the clock stopped.
"""

from __future__ import annotations

import gc
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from napari.layers import Image, Labels
from qtpy.QtCore import QPoint, Qt
from qtpy.QtTest import QTest

from napari_weakseg.study import SCHEMA_VERSION, Study, Tag, load_study, save_study
from napari_weakseg.widgets import annotation_widget as aw
from napari_weakseg.widgets import half_controls, paint_watch, study_files, tag_edits
from napari_weakseg.widgets.annotation_widget import SHORTCUTS, AnnotationWidget, default_study_home

PLUGIN = "napari-weakseg"
WIDGET = "Tag slices and paint masks"
P, A, U = Tag.PRESENCE, Tag.ABSENCE, Tag.UNKNOWN
ALT = Qt.KeyboardModifier.AltModifier
CTRL = Qt.KeyboardModifier.ControlModifier
AUTOSAVE_WAIT_MS = 6000


# ----------------------------------------------------------------- helpers
@pytest.fixture
def notes(monkeypatch):
    """What the widget tells the user: {'error': [...], 'warning': [...], 'info': [...]}."""
    got = {"error": [], "warning": [], "info": []}
    for module in (aw, study_files, paint_watch, half_controls, tag_edits):  # the dock and its mixins
        for kind in got:
            if hasattr(module, f"show_{kind}"):
                monkeypatch.setattr(module, f"show_{kind}", got[kind].append)
    return got


def unwrap(obj):
    """napari hands plugin widgets a public-only proxy of the viewer; layers they add come back proxied."""
    return getattr(obj, "__wrapped__", obj)


def mask_of(widget):
    """The study's mask layer, as the viewer holds it."""
    return unwrap(widget.mask_layer)


def dock(viewer) -> AnnotationWidget:
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    return widget


def add_case(viewer, phantom, name="case"):
    v = phantom.volume
    flair = viewer.add_image(v.data[0], name=f"{name} flair", scale=v.spacing)
    t1c = viewer.add_image(v.data[1], name=f"{name} t1c", scale=v.spacing)
    return flair, t1c


def select(viewer, *layers):
    viewer.layers.selection.clear()
    for layer in layers:
        viewer.layers.selection.add(layer)


def start(make_napari_viewer, phantom, show=False):
    """A viewer with the widget docked and a new study from the phantom's two channels."""
    viewer = make_napari_viewer(show=show)
    widget = dock(viewer)
    if show:
        viewer.window._qt_window.resize(1400, 900)
    select(viewer, *add_case(viewer, phantom))
    widget.new_btn.click()
    assert widget.study is not None, widget._last_error
    if show:
        QTest.qWait(50)
        viewer.reset_view()
    return viewer, widget


def go(viewer, k):
    viewer.dims.set_current_step(0, k)


def key(viewer, qtbot, k, modifier):
    """A key press on the canvas: napari's keymap handler dispatches it to the bindings."""
    qtbot.keyPress(viewer.window._qt_viewer.canvas.native, k, modifier)


def brush(layer, z, yx, label=1):
    """One brush dab as napari's paint tool makes it: edits grouped in one history item."""
    with layer.block_history():
        layer.paint((z, *yx), label)


def canvas_pos(viewer, layer, yx) -> QPoint:
    z = viewer.dims.current_step[0]
    world = layer.data_to_world((z, *yx))
    p = viewer.window._qt_viewer.canvas.view.scene.transform.map([world[2], world[1], 0, 1])
    return QPoint(int(round(p[0] / p[3])), int(round(p[1] / p[3])))


def stroke(viewer, layer, points):
    """A left-button drag on the canvas through data points (y, x) of the current slice."""
    native = viewer.window._qt_viewer.canvas.native
    pos = [canvas_pos(viewer, layer, yx) for yx in points]
    for p in pos:
        assert native.rect().contains(p), (p, native.size())
    QTest.mousePress(native, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos[0])
    for p in pos[1:]:
        QTest.mouseMove(native, p)
        QTest.qWait(10)
    QTest.mouseRelease(native, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos[-1])


def reloaded(widget):
    return load_study(widget.study.folder).images[0]


# ----------------------------------------------------- manifest and sample
def test_manifest_docks_the_widget_and_opens_the_sample(make_napari_viewer):
    viewer = make_napari_viewer()
    dock_widget, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    assert isinstance(widget, AnnotationWidget)
    assert unwrap(widget.viewer) is viewer
    assert widget in dock_widget.findChildren(AnnotationWidget) or dock_widget.widget() is widget
    assert widget.study is None and widget.image is None
    # nothing to edit yet
    for button in (
        widget.presence_btn,
        widget.absence_btn,
        widget.unknown_btn,
        widget.no_lesion_btn,
        widget.undo_btn,
        widget.range_btn,
        widget.clear_btn,
        widget.save_btn,
        widget.save_as_btn,
    ):
        assert not button.isEnabled()
    assert widget.new_btn.isEnabled() and widget.open_btn.isEnabled()
    # the viewer shortcuts are bound
    assert {"Alt+1", "Alt+2", "Alt+3", "Alt+N", "Alt+Z"} <= {str(k) for k in viewer.keymap}

    viewer.open_sample(PLUGIN, "phantom")
    images = [layer for layer in viewer.layers if isinstance(layer, Image)]
    labels = [layer for layer in viewer.layers if isinstance(layer, Labels)]
    assert [layer.name for layer in images] == ["phantom flair", "phantom t1c"]
    assert [layer.name for layer in labels] == ["phantom truth"]
    assert images[0].visible and not images[1].visible
    for layer in viewer.layers:
        assert layer.ndim == 3
        np.testing.assert_allclose(layer.scale, (3.0, 1.5, 1.5))
    assert images[0].data.shape == images[1].data.shape == labels[0].data.shape
    assert labels[0].data.max() == 1


# --------------------------------------------------------------- new study
def test_new_study_from_selected_layers(make_napari_viewer, phantom, notes):
    viewer = make_napari_viewer()
    widget = dock(viewer)
    flair, t1c = add_case(viewer, phantom)
    truth = viewer.add_labels(phantom.mask.copy(), name="case truth", scale=phantom.volume.spacing)
    select(viewer, t1c, truth, flair)  # channels follow the layer list, not the click order
    widget.new_btn.click()

    assert notes["error"] == []
    study, im = widget.study, widget.image
    assert len(study.images) == 1 and im.name == "case"
    assert im.volume.data.shape == (2, *phantom.mask.shape)
    assert list(im.volume.channel_names) == ["case flair", "case t1c"]
    np.testing.assert_array_equal(im.volume.data[1], phantom.volume.data[1])
    # the initial mask: painted slices are presence + annotated, the rest unknown
    lesion = phantom.mask.any(axis=(1, 2))
    np.testing.assert_array_equal(im.mask, phantom.mask)
    np.testing.assert_array_equal(im.tags, np.where(lesion, P, U))
    np.testing.assert_array_equal(im.annotated(), lesion)

    # the channel layers are reused, the mask layer added; its data IS the study mask
    mask_layer = mask_of(widget)
    assert mask_layer.name == "case mask" and mask_layer in viewer.layers
    assert flair in viewer.layers and t1c in viewer.layers and truth in viewer.layers
    assert mask_layer.data is im.mask
    assert not np.shares_memory(im.mask, truth.data)  # the user's labels layer stays theirs
    np.testing.assert_allclose(mask_layer.scale, phantom.volume.spacing)
    assert viewer.layers.selection.active is mask_layer and mask_layer.mode == "paint"
    assert widget.presence_btn.isEnabled() and widget.image_combo.currentText() == "case"
    np.testing.assert_array_equal(widget.overview.tags, im.tags)

    # autosaved under $WEAKSEG_HOME/unsaved/
    assert study.folder.parent == default_study_home()
    assert "weakseg-home" in str(study.folder) and not study.modified
    assert "autosave" in widget.folder_label.text() and "autosaved" in notes["info"][0]
    again = load_study(study.folder).images[0]
    np.testing.assert_array_equal(again.tags, im.tags)
    np.testing.assert_array_equal(again.mask, im.mask)
    assert list(again.volume.channel_names) == ["case flair", "case t1c"]
    np.testing.assert_allclose(again.volume.spacing, phantom.volume.spacing)


def test_new_study_refuses_unusable_layers(make_napari_viewer, phantom, notes, monkeypatch):
    # every study below starts within the same second
    monkeypatch.setattr(study_files, "time", SimpleNamespace(strftime=lambda fmt: "20260101-120000"))
    viewer = make_napari_viewer()
    widget = dock(viewer)
    only_labels = viewer.add_labels(phantom.mask.copy(), name="only labels")
    select(viewer, only_labels)
    widget.new_btn.click()
    assert len(notes["error"]) == 1 and "image layer" in notes["error"][0]
    assert widget.study is None and [layer.name for layer in viewer.layers] == ["only labels"]
    assert not default_study_home().exists()

    select(viewer, *add_case(viewer, phantom))
    widget.new_btn.click()
    study, mask_layer = widget.study, mask_of(widget)
    assert study is not None and len(notes["error"]) == 1
    names = [layer.name for layer in viewer.layers]
    saved = sorted(p.name for p in default_study_home().iterdir())
    assert len(saved) == 1

    # a labels layer whose shape does not match the images: refused, nothing changes
    flair, t1c = add_case(viewer, phantom, name="other")
    bad = viewer.add_labels(np.zeros((16, 48, 40), np.uint8), name="bad mask")
    names += ["other flair", "other t1c", "bad mask"]
    select(viewer, flair, t1c, bad)
    widget.new_btn.click()
    assert len(notes["error"]) == 2
    assert "bad mask" in notes["error"][1] and "does not match" in notes["error"][1]
    assert widget.study is study and mask_of(widget) is mask_layer
    assert [layer.name for layer in viewer.layers] == names
    assert sorted(p.name for p in default_study_home().iterdir()) == saved

    # a new study from the same layers replaces the current one and gets its own autosave folder (the first,
    # with a tag of the user's, is kept; an empty one would be removed)
    go(viewer, 3)
    widget.presence_btn.click()
    case_flair, case_t1c = viewer.layers["case flair"], viewer.layers["case t1c"]
    select(viewer, case_flair, case_t1c)
    widget.new_btn.click()
    assert len(notes["error"]) == 2
    assert widget.study is not study and widget.image.name == "case"
    assert mask_layer not in viewer.layers and mask_of(widget) in viewer.layers
    assert case_flair in viewer.layers and case_t1c in viewer.layers
    assert sorted(p.name for p in default_study_home().iterdir()) == ["case-20260101-120000", "case-20260101-120000-2"]
    assert widget.study.folder.name == "case-20260101-120000-2"


# ----------------------------------------------------------------- tagging
def test_tag_buttons_and_the_no_lesion_toggle(make_napari_viewer, phantom):
    viewer, widget = start(make_napari_viewer, phantom)
    im = widget.image
    go(viewer, 3)
    assert widget.current_slice() == 3
    assert not widget.no_lesion_btn.isEnabled()  # unknown
    widget.presence_btn.click()
    go(viewer, 7)
    widget.absence_btn.click()
    assert not widget.no_lesion_btn.isEnabled()
    go(viewer, 9)
    widget.presence_btn.click()
    widget.unknown_btn.click()
    expected = np.full(im.n_slices, U)
    expected[3], expected[7] = P, A
    np.testing.assert_array_equal(im.tags, expected)
    go(viewer, 7)
    assert widget.slice_label.text().startswith("Slice 7 of 15") and "absence" in widget.slice_label.text()
    assert "presence 1 · absence 1 · unknown 14 · annotated 0" in widget.counts_label.text()
    names = im.volume.channel_names
    assert len(names) == 2 and f"2 channels: {', '.join(names)}" in widget.counts_label.text()  # the channels are said
    assert widget.study.modified and widget.status_label.text() == "Unsaved changes…"

    # 'annotated, no lesion': only on presence slices, a toggle
    go(viewer, 3)
    assert widget.no_lesion_btn.isEnabled() and not im.annotated()[3]
    widget.no_lesion_btn.click()
    assert im.confirmed_empty[3] and im.annotated()[3] and widget.overview.annotated[3]
    assert "annotated (no lesion)" in widget.slice_label.text()
    widget.no_lesion_btn.click()
    assert not im.confirmed_empty[3] and not im.annotated()[3]
    widget.no_lesion_btn.click()
    go(viewer, 4)
    assert not widget.no_lesion_btn.isEnabled()
    go(viewer, 3)
    assert widget.no_lesion_btn.isEnabled()
    widget.unknown_btn.click()  # retagging drops the confirmation
    assert not widget.no_lesion_btn.isEnabled() and not im.confirmed_empty[3]


def test_keyboard_shortcuts_trigger_the_bindings(make_napari_viewer, phantom, qtbot, notes):
    viewer, widget = start(make_napari_viewer, phantom)
    im = widget.image
    assert SHORTCUTS == {"presence": "Alt-1", "absence": "Alt-2", "unknown": "Alt-3", "no_lesion": "Alt-N", "undo": "Alt-Z"}
    # the mask layer is active: its keymap is searched first, the viewer's bindings still apply
    assert viewer.layers.selection.active is mask_of(widget)

    go(viewer, 3)
    key(viewer, qtbot, Qt.Key.Key_1, ALT)
    assert im.tags[3] == P
    go(viewer, 4)
    key(viewer, qtbot, Qt.Key.Key_2, ALT)
    assert im.tags[4] == A
    key(viewer, qtbot, Qt.Key.Key_3, ALT)
    assert im.tags[4] == U
    key(viewer, qtbot, Qt.Key.Key_Z, ALT)  # undo: back to absence
    assert im.tags[4] == A
    assert "absence" in widget.slice_label.text()

    go(viewer, 3)
    key(viewer, qtbot, Qt.Key.Key_N, ALT)  # annotated, no lesion
    assert im.confirmed_empty[3] and im.annotated()[3]
    key(viewer, qtbot, Qt.Key.Key_N, ALT)  # a toggle
    assert not im.confirmed_empty[3] and not im.annotated()[3]
    key(viewer, qtbot, Qt.Key.Key_Z, ALT)
    assert im.confirmed_empty[3]

    go(viewer, 5)  # unknown: 'no lesion' is refused with a message, nothing changes
    key(viewer, qtbot, Qt.Key.Key_N, ALT)
    assert im.tags[5] == U and not im.confirmed_empty[5]
    assert len(notes["error"]) == 1 and "only presence slices" in notes["error"][0]


def test_range_tagging_clear_and_undo(make_napari_viewer, phantom, notes):
    viewer, widget = start(make_napari_viewer, phantom)
    im, layer = widget.image, mask_of(widget)
    assert (widget.range_from.minimum(), widget.range_from.maximum()) == (0, 15)
    assert widget.range_to.value() == 15

    widget.range_from.setValue(2)
    widget.range_to.setValue(6)
    widget.range_tag.setCurrentText("absence")
    widget.range_btn.click()
    np.testing.assert_array_equal(np.flatnonzero(im.tags == A), [2, 3, 4, 5, 6])
    widget.range_from.setValue(12)  # a reversed range works too
    widget.range_to.setValue(9)
    widget.range_tag.setCurrentText("presence")
    widget.range_btn.click()
    np.testing.assert_array_equal(np.flatnonzero(im.tags == P), [9, 10, 11, 12])
    before_clear = im.tags.copy()

    widget.clear_btn.click()
    assert (im.tags == U).all() and (widget.overview.tags == U).all()
    widget.undo_btn.click()
    np.testing.assert_array_equal(im.tags, before_clear)
    widget.undo_btn.click()
    widget.undo_btn.click()
    assert (im.tags == U).all()
    assert not widget.undo_btn.isEnabled()
    widget.undo()
    assert notes["info"][-1] == "Nothing to undo"

    # tagging absence erases paint on those slices; undo brings it back. The range is
    # tagged at once after painting, before the event loop runs: the paint counts first.
    go(viewer, 8)
    layer.brush_size = 5
    brush(layer, 8, (20, 20))
    painted = im.mask[8].copy()
    assert painted.any()
    widget.range_from.setValue(7)
    widget.range_to.setValue(9)
    widget.range_tag.setCurrentText("absence")
    widget.range_btn.click()
    assert (im.tags[7:10] == A).all() and not im.mask.any()
    assert not layer.data[8].any()  # the layer shows the study mask
    widget.undo_btn.click()
    np.testing.assert_array_equal(im.mask[8], painted)
    assert im.tags[8] == P and im.annotated()[8]


# ---------------------------------------------------------------- painting
def test_painting_unknown_slices_with_the_mouse_and_the_polygon_tool(make_napari_viewer, phantom, qtbot):
    viewer, widget = start(make_napari_viewer, phantom, show=True)
    im, layer = widget.image, mask_of(widget)
    paints = []
    layer.events.paint.connect(lambda e: paints.append(e))
    layer.brush_size = 3
    go(viewer, 5)
    assert im.tags[5] == U
    stroke(viewer, layer, [(20, 14), (20, 18), (21, 22), (22, 26)])
    assert len(paints) == 1  # one stroke, one history item
    qtbot.waitUntil(lambda: im.tags[5] == P, timeout=2000)
    assert im.annotated()[5]
    np.testing.assert_array_equal(np.flatnonzero(im.mask.any(axis=(1, 2))), [5])
    assert im.mask[5, 20, 14] == 1 and im.mask[5, 22, 26] == 1 and im.mask[5, 40, 40] == 0
    assert widget.overview.tags[5] == P and widget.overview.annotated[5]
    assert "presence, annotated" in widget.slice_label.text()

    # napari's polygon tool emits the paint event *before* it writes the pixels
    go(viewer, 9)
    layer.mode = "polygon"
    overlay = layer._overlays["polygon"]
    overlay.points = [[9, 10, 10], [9, 10, 20], [9, 20, 20], [9, 20, 10]]
    overlay.add_polygon_to_labels(layer)
    assert len(paints) == 2 and im.mask[9, 15, 15] == 1
    qtbot.waitUntil(lambda: im.tags[9] == P, timeout=2000)
    assert im.annotated()[9] and widget.overview.annotated[9]
    assert im.counts()["annotated"] == 2


def test_brush_on_a_presence_slice_and_ctrl_z(make_napari_viewer, phantom, qtbot):
    viewer, widget = start(make_napari_viewer, phantom)
    im, layer = widget.image, mask_of(widget)
    assert {"Ctrl+Z", "Ctrl+Shift+Z"} <= {str(k) for k in layer.keymap}
    go(viewer, 4)
    widget.presence_btn.click()
    assert not im.annotated()[4]
    paints = []
    layer.events.paint.connect(lambda e: paints.append(e))
    layer.brush_size = 4
    brush(layer, 4, (24, 24))
    assert len(paints) == 1
    qtbot.waitUntil(lambda: bool(im.annotated()[4]), timeout=2000)
    assert im.tags[4] == P and im.mask[4, 24, 24] == 1
    assert widget.study.modified and widget.overview.annotated[4]

    # Ctrl+Z on the canvas: the mask layer's undo, bound by the widget, updates the study at once
    key(viewer, qtbot, Qt.Key.Key_Z, CTRL)
    assert not im.mask[4].any() and not layer.data[4].any()
    assert not im.annotated()[4] and not widget.overview.annotated[4]
    assert im.tags[4] == P
    key(viewer, qtbot, Qt.Key.Key_Z, CTRL | Qt.KeyboardModifier.ShiftModifier)
    assert im.mask[4, 24, 24] == 1 and im.annotated()[4] and widget.overview.annotated[4]


def test_painting_on_an_absence_slice_warns_and_retag_keeps_the_paint(make_napari_viewer, phantom, qtbot, notes):
    viewer, widget = start(make_napari_viewer, phantom)
    im, layer = widget.image, mask_of(widget)
    go(viewer, 6)
    widget.absence_btn.click()
    assert not widget.banner.isVisibleTo(widget)
    layer.brush_size = 3
    brush(layer, 6, (30, 30))
    qtbot.waitUntil(lambda: widget.banner.isVisibleTo(widget), timeout=2000)
    assert "slice 6" in widget.banner_label.text()
    assert len(notes["warning"]) == 1 and "slice 6" in notes["warning"][0]
    assert im.tags[6] == A and im.mask[6, 30, 30] == 1  # nothing is decided for the user
    assert not im.annotated()[6]

    # undoing the paint (Ctrl+Z) answers the warning too
    key(viewer, qtbot, Qt.Key.Key_Z, CTRL)
    assert not im.mask.any()
    assert not widget.banner.isVisibleTo(widget) and im.tags[6] == A
    widget.retag_btn.click()  # nothing pending: no retag
    assert im.tags[6] == A

    brush(layer, 6, (30, 30))
    qtbot.waitUntil(lambda: widget.banner.isVisibleTo(widget), timeout=2000)
    painted = im.mask[6].copy()
    widget.retag_btn.click()
    assert not widget.banner.isVisibleTo(widget)
    assert im.tags[6] == P and im.annotated()[6]
    np.testing.assert_array_equal(im.mask[6], painted)
    np.testing.assert_array_equal(layer.data[6], painted)
    assert widget.overview.tags[6] == P and widget.overview.annotated[6]
    widget.undo_btn.click()  # undo of the retag: absence again
    assert im.tags[6] == A


# ---------------------------------------------------------------- overview
def test_overview_shows_the_study_and_clicks_jump_to_a_slice(make_napari_viewer, phantom, qtbot):
    viewer, widget = start(make_napari_viewer, phantom, show=True)
    im, overview = widget.image, widget.overview
    widget.tag_range(1, 3, "absence")
    go(viewer, 10)
    widget.presence_btn.click()
    widget.no_lesion_btn.click()
    go(viewer, 12)
    widget.presence_btn.click()
    np.testing.assert_array_equal(overview.tags, im.tags)
    np.testing.assert_array_equal(overview.annotated, im.annotated())
    assert overview.current == 12 and overview.annotated.sum() == 1

    assert overview.isVisible() and overview.width() > 3 * im.n_slices
    cell = overview.width() / im.n_slices
    for k in (2, 14, 0):
        qtbot.mouseClick(overview, Qt.MouseButton.LeftButton, pos=QPoint(int((k + 0.5) * cell), overview.height() // 2))
        assert viewer.dims.current_step[0] == k
        assert widget.current_slice() == k and overview.current == k
        assert widget.slice_label.text().startswith(f"Slice {k} of")
    # the jump lands on the right world position: tagging now tags that slice
    widget.presence_btn.click()
    assert im.tags[0] == P and overview.tags[0] == P


# ---------------------------------------------------------------- autosave
def test_autosave_after_an_edit(make_napari_viewer, phantom, qtbot):
    viewer, widget = start(make_napari_viewer, phantom)
    study, im, layer = widget.study, widget.image, mask_of(widget)
    go(viewer, 2)
    widget.absence_btn.click()
    go(viewer, 8)
    widget.presence_btn.click()
    brush(layer, 8, (25, 25))
    assert study.modified and widget.status_label.text() == "Unsaved changes…"
    qtbot.waitUntil(lambda: not study.modified, timeout=AUTOSAVE_WAIT_MS)
    assert widget.status_label.text().startswith("Saved")
    again = reloaded(widget)
    np.testing.assert_array_equal(again.tags, im.tags)
    assert again.tags[2] == A and again.tags[8] == P and again.annotated()[8]
    np.testing.assert_array_equal(again.mask, im.mask)


def test_closing_the_viewer_saves_pending_changes(make_napari_viewer, phantom):
    viewer, widget = start(make_napari_viewer, phantom, show=True)
    folder, layer = widget.study.folder, mask_of(widget)
    go(viewer, 3)
    widget.absence_btn.click()
    assert widget.study.modified and widget._autosave.isActive()
    viewer.close()  # at once, before the autosave
    assert not widget.study.modified
    assert load_study(folder).images[0].tags[3] == A

    viewer, widget = start(make_napari_viewer, phantom, show=True)
    folder, layer = widget.study.folder, mask_of(widget)
    go(viewer, 3)
    widget.absence_btn.click()
    widget.save_btn.click()
    go(viewer, 7)
    brush(layer, 7, (22, 22))  # only paint on an unknown slice, then close at once
    viewer.close()
    assert not widget.study.modified
    again = load_study(folder).images[0]
    assert again.tags[3] == A
    assert again.tags[7] == P and again.annotated()[7] and again.mask[7, 22, 22] == 1


# -------------------------------------------------------- open and save as
def test_save_as_moves_the_autosaved_study(make_napari_viewer, phantom, tmp_path, monkeypatch, notes):
    viewer, widget = start(make_napari_viewer, phantom)
    autosaved = widget.study.folder
    go(viewer, 5)
    widget.presence_btn.click()

    # not into a folder that holds another study
    other = tmp_path / "other"
    shutil.copytree(autosaved, other)
    assert not widget.save_now(other)
    assert len(notes["error"]) == 1 and "already holds another study" in notes["error"][0]
    assert widget.study.folder == autosaved and autosaved.exists() and widget.study.modified
    shutil.rmtree(other)

    # a run of the autosaved study: it moves with the study (issue #17), but not while it is being written
    from napari_weakseg.locks import folder_lock

    run = autosaved / "runs" / "seg-only-1"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "last.pt").write_bytes(b"weights")
    chosen = tmp_path / "my study"
    with folder_lock(run, "training seg-only"):
        assert not widget.save_now(chosen)
    assert "in use by training seg-only" in notes["error"][-1] and not chosen.exists() and widget.study.folder == autosaved
    monkeypatch.setattr(study_files.QFileDialog, "getExistingDirectory", lambda *a, **k: str(chosen))
    widget.save_as_btn.click()
    assert widget.study.folder == chosen and not widget.study.modified
    assert not autosaved.exists() and list(default_study_home().iterdir()) == []
    assert (chosen / "runs" / "seg-only-1" / "last.pt").read_bytes() == b"weights"
    assert "autosave" not in widget.folder_label.text() and str(chosen) in widget.folder_label.text()
    assert reloaded(widget).tags[5] == P
    # later edits are saved in the chosen folder
    go(viewer, 6)
    widget.absence_btn.click()
    widget.save_btn.click()
    assert not widget.study.modified
    assert load_study(chosen).images[0].tags[6] == A
    assert list(default_study_home().iterdir()) == []


def test_open_study(make_napari_viewer, phantom, tmp_path, monkeypatch, notes):
    from napari_weakseg.data import make_phantom

    viewer, widget = start(make_napari_viewer, phantom)
    first, layers = widget.study, list(viewer.layers)

    # a study written by a newer napari-weakseg: refused, the current study and layers stay
    newer = tmp_path / "newer"
    shutil.copytree(first.folder, newer)
    manifest = json.loads((newer / "study.json").read_text())
    manifest["schema_version"] = SCHEMA_VERSION + 1
    (newer / "study.json").write_text(json.dumps(manifest))
    assert not widget.open_study(newer)
    assert len(notes["error"]) == 1
    assert "newer napari-weakseg" in notes["error"][0] and f"schema {SCHEMA_VERSION + 1}" in notes["error"][0]
    assert widget.study is first and list(viewer.layers) == layers
    assert mask_of(widget).data is first.images[0].mask
    go(viewer, 4)
    widget.presence_btn.click()  # still editing the same study; pending when the next one opens
    assert first.images[0].tags[4] == P and first.modified

    # a good study folder (through the Open… dialog) replaces the current one, which is saved first
    other = make_phantom(shape=(12, 40, 40), channels=2, seed=3)
    study = Study()
    im = study.add_image(other.volume, name="second", mask=other.mask.copy())
    im.tags[:] = other.tags
    folder = save_study(study, tmp_path / "second study")
    monkeypatch.setattr(study_files.QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    widget.open_btn.click()

    assert len(notes["error"]) == 1
    assert load_study(first.folder).images[0].tags[4] == P
    assert widget.study.folder == folder and widget.image.name == "second"
    assert [layer.name for layer in viewer.layers] == ["second flair", "second t1c", "second mask"]
    assert mask_of(widget).data is widget.image.mask
    np.testing.assert_allclose(mask_of(widget).scale, other.volume.spacing)
    np.testing.assert_array_equal(widget.overview.tags, other.tags)
    assert widget.range_to.maximum() == 11 and not widget.study.modified
    go(viewer, 11)
    widget.absence_btn.click()
    assert widget.study.images[0].tags[11] == A and first.images[0].tags[11] == U


# -------------------------------------------------------------------- demo
def test_demo_runs_headless_and_writes_a_screenshot(tmp_path, qtbot, monkeypatch, capsys):
    from napari._qt.qt_main_window import _QtMainWindow
    from napari._qt.qt_viewer import QtViewer

    from napari_weakseg.demo import run_demo

    # keep the user's napari settings (window geometry) untouched, as napari's own fixture does
    monkeypatch.setattr(_QtMainWindow, "_save_current_window_settings", lambda *a, **k: None)
    shot = tmp_path / "s.png"
    assert run_demo(headless=True, screenshot=shot) == 0
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    err = capsys.readouterr().err
    assert "demo study in" in err and "annotated 3" in err
    demo_folders = list(default_study_home().glob("demo-*"))
    assert len(demo_folders) == 1 and load_study(demo_folders[0]).images[0].counts()["annotated"] == 3
    # the demo closed its viewer: nothing is left for the next test
    gc.collect()
    assert len(QtViewer._instances) == 0


def test_half_slices_split_tag_under_the_cursor_ranges_and_undo(make_napari_viewer, phantom, qtbot, notes):
    from napari_weakseg.widgets.half_controls import HALF_SHORTCUTS

    viewer, widget = start(make_napari_viewer, phantom)
    im = widget.image
    assert HALF_SHORTCUTS == {"presence": "Alt-4", "absence": "Alt-5", "unknown": "Alt-6"}
    assert not set(SHORTCUTS.values()) & set(HALF_SHORTCUTS.values())
    go(viewer, 2)
    key(viewer, qtbot, Qt.Key.Key_4, ALT)  # not split yet: says so, changes nothing
    assert im.split is None and "Split the image into halves first" in notes["info"][-1]
    widget.halves.at_spin.setValue(0)
    widget.halves.split_btn.click()  # across X (the phantom's affine is diagonal), at the foreground's middle
    assert im.split is not None and im.split.axis == 2 and 0 < im.split.at < im.volume.shape[2]
    cut = unwrap(widget.cut_layers[im.name])
    assert cut in viewer.layers and len(cut.data) == im.n_slices and not cut.editable
    assert np.allclose(cut.data[2][:, 2], im.split.at - 0.5) and np.allclose(cut.data[2][:, 0], 2)
    assert viewer.layers.selection.active is mask_of(widget)  # painting stays on the mask
    # the half under the cursor, through the shortcut on the canvas
    layer = mask_of(widget)
    for x, half in ((1, 0), (im.volume.shape[2] - 2, 1)):
        viewer.cursor.position = tuple(layer.data_to_world((2, 5, x)))
        assert widget.half_under_cursor() == half
    viewer.cursor.position = tuple(layer.data_to_world((2, 5, 1)))
    key(viewer, qtbot, Qt.Key.Key_5, ALT)
    viewer.cursor.position = tuple(layer.data_to_world((2, 5, im.volume.shape[2] - 2)))
    key(viewer, qtbot, Qt.Key.Key_4, ALT)
    assert im.half_tags[2].tolist() == [A, P] and im.tags[2] == P
    assert "presence" in widget.halves.names[1].text()
    assert widget.overview.half_tags is not None and widget.overview.half_tags[2].tolist() == [A, P]
    # the buttons, a range on one half, undo
    widget.halves.buttons[(0, Tag.PRESENCE)].click()
    assert im.half_tags[2].tolist() == [P, P]
    widget.range_from.setValue(5)
    widget.range_to.setValue(7)
    widget.range_tag.setCurrentText("absence")
    widget.range_half.setCurrentIndex(2)  # half 1 only
    widget.range_btn.click()
    assert im.half_tags[5:8, 1].tolist() == [A, A, A] and (im.half_tags[5:8, 0] == U).all()
    widget.undo_btn.click()
    assert (im.half_tags[5:8] == U).all()
    widget.undo_btn.click()
    assert im.half_tags[2].tolist() == [A, P]
    # saved with the study; joined again
    widget.save_now()
    back = reloaded(widget)
    assert back.split == im.split and np.array_equal(back.half_tags, im.half_tags)
    widget.halves.join_btn.click()
    assert im.split is None and im.tags[2] == P and widget.cut_layers == {} and cut not in viewer.layers
    assert not notes["error"]


def test_accepting_a_models_mask_never_replaces_the_users_paint(make_napari_viewer, phantom, notes):
    viewer, widget = start(make_napari_viewer, phantom)
    im = widget.image
    brush(mask_of(widget), 4, (20, 20))
    widget._process_paint()
    mine = im.mask[4].copy()
    assert mine.sum() > 0
    big = np.zeros((2, *im.mask.shape[1:]), np.uint8)
    big[:, 5:40, 5:40] = 1  # the model's (larger) masks for slices 4 and 7
    assert widget.accept_masks([4, 7], big) == [7]
    assert np.array_equal(im.mask[4], mine) and im.mask[7].sum() == big[1].sum()
    assert "Kept your mask on slice(s) 4" in notes["warning"][-1]
    assert widget.accept_masks([4], big[:1]) == [] and np.array_equal(im.mask[4], mine)
    widget.undo()  # the accepted slice 7 goes back; the user's paint stays
    assert im.mask[7].sum() == 0 and np.array_equal(im.mask[4], mine)


def test_open_read_only_never_writes_and_save_as_keeps_the_edits(make_napari_viewer, phantom, tmp_path, notes):
    viewer, widget = start(make_napari_viewer, phantom)
    src = tmp_path / "colleague"
    assert widget.save_now(src)
    before = {p.relative_to(src): p.read_bytes() for p in src.rglob("*") if p.is_file()}
    assert widget.open_study(src, read_only=True)
    assert widget.read_only and "read-only" in widget.folder_label.text()
    go(viewer, 6)
    widget.presence_btn.click()
    assert widget.study.modified and not widget._autosave.isActive()
    assert not widget.save_now() and "opened read-only" in notes["error"][-1]
    widget.flush()  # closing: nothing written either
    assert {p.relative_to(src): p.read_bytes() for p in src.rglob("*") if p.is_file()} == before
    assert widget.save_now(tmp_path / "mine")  # Save as: the edits go to a folder of the user's
    assert not widget.read_only and load_study(tmp_path / "mine").images[0].tags[6] == P
    assert {p.relative_to(src): p.read_bytes() for p in src.rglob("*") if p.is_file()} == before


def test_an_autosave_with_nothing_the_user_made_is_removed_when_left(make_napari_viewer, phantom, tmp_path):
    from napari_weakseg.demo import build_demo_study

    viewer, widget = start(make_napari_viewer, phantom)
    empty = widget.study.folder  # started from the wrong layers: no tag, no mask, no model
    assert empty.is_dir()
    assert widget.open_study(build_demo_study(tmp_path / "demo"))
    assert not empty.exists()  # nothing of the user's was in it
    select(viewer, *add_case(viewer, phantom, "again"))
    widget.new_btn.click()
    kept = widget.study.folder
    go(viewer, 3)
    widget.presence_btn.click()  # one tag is the user's work: the autosave stays
    assert widget.open_study(tmp_path / "demo")
    assert (kept / "study.json").is_file() and load_study(kept).images[0].tags[3] == Tag.PRESENCE


def test_the_overview_counts_stay_whole_under_a_two_row_half_slice_bar(make_napari_viewer, phantom):
    """Split, the overview strip has two rows; the counts below it keep both their lines in a short dock."""
    viewer, widget = start(make_napari_viewer, phantom, show=True)
    viewer.window._qt_window.resize(1400, 600)
    widget.halves.split_btn.click()
    QTest.qWait(100)
    label = widget.counts_label
    lines = label.text().count("\n") + 1
    assert lines == 2 and label.wordWrap()
    needed = label.heightForWidth(label.width())
    assert needed >= lines * label.fontMetrics().lineSpacing()
    assert label.height() >= needed, (label.height(), needed)  # nothing cut at the bottom
    assert label.width() <= label.parentWidget().width()  # nor at the right: long channel names wrap
