"""Anatomical views in a real viewer (under Xvfb): files stored RAS and LPS open upright in every plane, in
both conventions, with their edge letters; the screenshot shows the anatomy where the convention puts it.
Outside the study's slicing plane nothing can be tagged or painted."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from test_orientation import stored_as

from napari_weakseg.io.nifti import to_napari_order
from napari_weakseg.widgets import annotation_widget as aw
from napari_weakseg.widgets import tag_edits
from napari_weakseg.widgets.view_controls import camera_of

PLUGIN, WIDGET = "napari-weakseg", "Tag slices and paint masks"


def head(shape=(24, 28, 20)) -> np.ndarray:
    """A (X, Y, Z) RAS volume: grey, with a white block in its right-anterior-superior corner."""
    data = np.full(shape, 0.3, np.float32)
    x, y, z = shape
    data[x * 5 // 8 :, y * 5 // 8 :, z * 5 // 8 :] = 1.0
    data[0, 0, 0] = 0.0  # contrast limits from 0
    return data


def write(tmp_path, code):
    stored, affine = stored_as(code, head())
    path = tmp_path / f"head-{code}.nii.gz"
    nib.save(nib.Nifti1Image(stored, affine), path)
    return path, to_napari_order(stored) > 0.9


def white_quadrant(viewer) -> tuple[str, str]:
    """Where the white block is on the canvas: ("top" or "bottom", "left" or "right")."""
    shot = viewer.screenshot(canvas_only=True, flash=False)
    white = (shot[..., 0] > 230) & (shot[..., 1] > 230) & (shot[..., 2] > 230)  # the edge letters are yellow
    rows, cols = np.nonzero(white)
    assert len(rows) > 50, "the white block is not on the canvas"
    h, w = white.shape
    return ("top" if rows.mean() < h / 2 else "bottom"), ("left" if cols.mean() < w / 2 else "right")


def show_marker_slice(viewer, widget, marker):
    """Move the slider of the plane on screen into the white block."""
    s = widget.views.view.slice_axis
    inside = np.flatnonzero(marker.any(axis=tuple(a for a in range(3) if a != s)))
    viewer.dims.set_current_step(s, int(inside[len(inside) // 2]))


@pytest.mark.parametrize("code", ["RAS", "LPS", "PSR"])
def test_every_plane_is_upright_and_labelled_in_the_viewer(make_napari_viewer, tmp_path, code, monkeypatch):
    notes = []
    monkeypatch.setattr(tag_edits, "show_info", notes.append)
    path, marker = write(tmp_path, code)
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(900, 700)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    layers = viewer.open(path, plugin=PLUGIN)
    viewer.layers.selection.active = layers[0]
    widget.new_btn.click()
    im = widget.image
    assert im is not None, widget._last_error
    assert widget.views.slicing_plane(im) == "axial" and im.axis == {"RAS": 0, "LPS": 0, "PSR": 1}[code]
    assert "Slices: axial" in widget.views.plane_label.text() and "(axial)" in widget.slice_label.text()
    # where the right-anterior-superior block must appear: axial A up, R left; coronal S up, R left; sagittal S up, A left
    for plane, convention, where in [
        ("axial", "radiological", ("top", "left")),
        ("axial", "neurological", ("top", "right")),
        ("coronal", "radiological", ("top", "left")),
        ("coronal", "neurological", ("top", "right")),
        ("sagittal", "radiological", ("top", "left")),
    ]:
        widget.views.convention.setCurrentText(convention)
        widget.views.buttons[plane].click()
        show_marker_slice(viewer, widget, marker)
        assert white_quadrant(viewer) == where, (plane, convention)
        assert viewer.dims.axis_labels[widget.views.view.slice_axis] == plane  # the slider names its plane
        letters = widget.views.labels_layer.features["letter"].tolist()[:4]
        want = {"axial": ["A", "P"], "coronal": ["S", "I"], "sagittal": ["S", "I"]}[plane]
        side = {"radiological": ["R", "L"], "neurological": ["L", "R"]}[convention] if plane != "sagittal" else ["A", "P"]
        assert letters == want + side  # top, bottom, left, right
        editable = plane == "axial"
        assert widget.mask_layer.editable is editable and widget.presence_btn.isEnabled() is editable
    # in the sagittal view nothing is tagged (the study slices axially), and the user is told why
    tags = im.tags.copy()
    widget.tag_current(aw.Tag.PRESENCE)
    assert np.array_equal(im.tags, tags) and "per axial slice" in notes[-1]
    widget.views.buttons["axial"].click()
    widget.tag_current(aw.Tag.PRESENCE)
    assert int(im.tags[widget.current_slice()]) == aw.Tag.PRESENCE


def yellow_edges(viewer) -> set[str]:
    """The canvas edges (a band of a sixth of the canvas) where edge letters (yellow) are drawn."""
    shot = viewer.screenshot(canvas_only=True, flash=False).astype(int)
    yellow = (shot[..., 0] > 200) & (shot[..., 1] > 150) & (shot[..., 2] < 140)
    rows, cols = np.nonzero(yellow)
    h, w = yellow.shape
    bands = {"top": rows < h / 6, "bottom": rows > h * 5 / 6, "left": cols < w / 6, "right": cols > w * 5 / 6}
    return {edge for edge, inside in bands.items() if inside.sum() > 5}


def test_the_edge_letters_stay_on_the_canvas_when_zoomed_in_and_panned(make_napari_viewer, tmp_path):
    """A radiologist zooms into the lesion: R/L/A/P follow the edges of what is seen instead of leaving the canvas."""
    path, _ = write(tmp_path, "LPS")
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1500, 900)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    viewer.layers.selection.active = viewer.open(path, plugin=PLUGIN)[0]
    widget.new_btn.click()
    camera = camera_of(viewer)
    h, w = viewer.canvas.size
    (_, rows, cols), (_, dr, dc) = widget.image.volume.shape, widget.image.volume.spacing
    camera.zoom = 2 * max(h / (rows * dr), w / (cols * dc))  # half the image's rows and columns on the canvas
    camera.center = (*tuple(camera.center)[:-2], camera.center[-2] + 3, camera.center[-1] - 2)  # panned too
    assert yellow_edges(viewer) == {"top", "bottom", "left", "right"}
    letters = widget.views.labels_layer.features["letter"].tolist()[:4]
    assert letters == ["A", "P", "R", "L"]  # still top, bottom, left, right
    viewer.reset_view()  # the whole image again: the letters back just inside its edges
    data = widget.views.labels_layer.data
    assert data[:, 1:].min() >= 0 and data[:, 1].max() <= widget.image.volume.shape[1] - 1


def test_a_file_opened_without_a_study_opens_axial_and_upright(make_napari_viewer, tmp_path):
    path, marker = write(tmp_path, "RAS")
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(900, 700)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    viewer.open(path, plugin=PLUGIN)
    assert widget.study is None and widget.views.view is not None and widget.views.view.plane == "axial"
    show_marker_slice(viewer, widget, marker)
    assert white_quadrant(viewer) == ("top", "left")
    assert camera_of(viewer).orientation2d == ("up", "left")  # RAS: rows grow anterior, columns to the right: both flipped


def test_images_without_an_orientation_keep_the_plain_display(make_napari_viewer, phantom):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    viewer.add_image(phantom.volume.data[0], name="p")
    widget.new_btn.click()
    assert widget.views.view is None and not widget.views.buttons["axial"].isEnabled()
    assert tuple(viewer.dims.order) == (0, 1, 2) and camera_of(viewer).orientation2d == ("down", "right")
    assert tuple(viewer.dims.axis_labels) == ("-3", "-2", "-1")  # napari's own
    assert "no anatomical orientation" in widget.views.plane_label.text()


def test_a_dicom_series_acquired_sagittally_opens_axial_and_upright(make_napari_viewer, tmp_path):
    """A DICOM series whose slices are sagittal (rows inferior, columns posterior) becomes a study of axial slices,
    shown with anterior up and the patient's right on the left."""
    from test_dicom import write_series

    ras = head()  # (X, Y, Z) RAS, white block right-anterior-superior
    # sagittal images: one per x (LPS x grows to the left, so the patient's right comes first), rows from superior
    # to inferior, columns from anterior to posterior
    frames = np.stack([ras[x, ::-1, ::-1].T for x in range(ras.shape[0])[::-1]])
    frames = np.round(frames * 1000).astype(np.uint16)
    n, rows, cols = frames.shape
    top = np.array([ras.shape[0] - 1, ras.shape[1] - 1, ras.shape[2] - 1]) * 1.0  # RAS of the first voxel of slice 0
    ipp = [LPS @ (top - [k, 0, 0]) for k in range(n)]  # one image per mm towards the left
    write_series(tmp_path / "sag", frames, [0, 1, 0, 0, 0, -1], ipp, spacing=(1.0, 1.0), slope=0.001, intercept=0.0)
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(900, 700)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    layers = viewer.open(tmp_path / "sag", plugin=PLUGIN)
    viewer.layers.selection.active = layers[0]
    widget.new_btn.click()
    assert widget.image is not None, widget._last_error
    assert widget.views.slicing_plane(widget.image) == "axial" and widget.image.axis != 0
    marker = widget.image.volume.data[0] > 0.9
    show_marker_slice(viewer, widget, marker)
    assert white_quadrant(viewer) == ("top", "left")


LPS = np.diag([-1.0, -1.0, 1.0])


def test_a_layer_of_another_reader_becomes_a_study_shown_upright(make_napari_viewer):
    """A layer as MIC-DKFZ's napari-nifti builds it (a full affine, LPS): the study shows its own layers instead
    (the other reader's is closed: the study holds a copy, the file is untouched), upright and labelled."""
    from test_other_readers import napari_nifti_layer

    ras = head()
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(900, 700)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    stored, affine = stored_as("LPS", ras)
    theirs = viewer.add_layer(napari_nifti_layer(stored, affine))
    viewer.layers.selection.active = theirs
    widget.new_btn.click()
    assert widget.image is not None, widget._last_error
    assert theirs not in viewer.layers and np.array_equal(widget.image.volume.data[0], theirs.data)
    assert widget.views.slicing_plane(widget.image) == "axial"
    show_marker_slice(viewer, widget, widget.image.volume.data[0] > 0.9)
    assert white_quadrant(viewer) == ("top", "left")
