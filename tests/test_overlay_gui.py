"""Files of one head stored in different orientations (RAS, LPS, a sagittal PSR acquisition) opened with the
plugin's reader in a real viewer (under Xvfb) overlay: each later one is shown in the first one's voxel axes,
as a view of its own array; painting reaches it; saving writes it back on its own grid; a study can take
the layers as channels without resampling."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from test_views_gui import PLUGIN, WIDGET, head, white_quadrant, write

from napari_weakseg.io.napari_io import write_single_layer


def open_heads(make_napari_viewer, tmp_path, codes, monkeypatch):
    notes = []
    monkeypatch.setattr("napari_weakseg.widgets.view_controls.show_info", notes.append)
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(900, 700)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    paths = [write(tmp_path, code)[0] for code in codes]
    layers = [viewer.open(p, plugin=PLUGIN)[0] for p in paths]
    return viewer, widget, paths, layers, notes


def test_files_stored_in_other_orientations_overlay_where_the_anatomy_is(make_napari_viewer, tmp_path, monkeypatch):
    viewer, widget, paths, (first, ras, psr), notes = open_heads(make_napari_viewer, tmp_path, ["LPS", "RAS", "PSR"], monkeypatch)
    for layer in (ras, psr):  # the same voxels at the same world positions as the first file's
        assert np.array_equal(layer.data, first.data)
        assert np.allclose(layer.scale, first.scale) and np.allclose(layer.translate, first.translate)
    assert len(notes) == 2 and "stored RAS, shown in the LPS axes" in notes[0] and "stored PSR" in notes[1]
    block = np.argwhere(first.data > 0.9).mean(axis=0)  # the white right-anterior-superior block
    assert np.allclose(ras.data_to_world(block), first.data_to_world(block))
    for shown in (first, ras, psr):  # each alone on screen: the block in the same place, the view upright
        for layer in (first, ras, psr):
            layer.visible = layer is shown
        viewer.dims.set_current_step(widget.views.view.slice_axis, int(block[widget.views.view.slice_axis]))
        assert white_quadrant(viewer) == ("top", "left")
    # the file on disk is untouched; the layer written back lands on its own grid, voxel for voxel
    img = nib.load(paths[2])
    out = write_single_layer(str(tmp_path / "psr-out.nii.gz"), psr.data, {"metadata": psr.metadata})
    back = nib.load(out[0])
    assert np.array_equal(np.asanyarray(back.dataobj), np.asanyarray(img.dataobj)) and np.allclose(back.affine, img.affine)


def test_a_mask_file_of_another_orientation_is_painted_in_the_shared_axes_and_saved_on_its_grid(make_napari_viewer, tmp_path, monkeypatch):
    viewer, widget, paths, (first,), _ = open_heads(make_napari_viewer, tmp_path, ["LPS"], monkeypatch)
    from test_orientation import stored_as

    stored, affine = stored_as("PSR", np.zeros(head().shape, np.uint8))
    mask_path = tmp_path / "head-PSR_mask.nii.gz"
    nib.save(nib.Nifti1Image(stored, affine), mask_path)
    (mask,) = viewer.open(mask_path, plugin=PLUGIN)
    assert mask.data.shape == first.data.shape
    block = tuple(int(v) for v in np.argwhere(first.data > 0.9).mean(axis=0))
    mask.brush_size = 1
    mask.paint(block, 1)  # napari's paint path, one voxel, in the shared axes
    out = write_single_layer(str(tmp_path / "mask-out.nii.gz"), mask.data, {"metadata": mask.metadata})
    saved = nib.load(out[0])
    voxels = np.argwhere(np.asanyarray(saved.dataobj) > 0)
    assert saved.shape == stored.shape and np.allclose(saved.affine, affine) and len(voxels) == 1
    painted_at = saved.affine @ [*voxels[0], 1]  # RAS mm of the painted voxel in the PSR file...
    meant = first.metadata["weakseg"]["affine"] @ [*block[::-1], 1]  # ... and of the voxel clicked in the LPS layer
    assert np.allclose(painted_at, meant)


def test_layers_of_two_orientations_become_channels_of_one_study(make_napari_viewer, tmp_path, monkeypatch):
    viewer, widget, _, (first, ras), _ = open_heads(make_napari_viewer, tmp_path, ["LPS", "RAS"], monkeypatch)
    viewer.layers.selection.clear()
    for layer in (first, ras):
        viewer.layers.selection.add(layer)
    widget.new_btn.click()
    im = widget.image
    assert im is not None, widget._last_error
    assert im.volume.data.shape[0] == 2 and np.array_equal(im.volume.data[0], im.volume.data[1])
    images, mask = widget.layers[im.name]
    assert images == [first, ras]  # the open layers became the study image's, marked so (never re-expressed)
    assert all(layer.metadata["weakseg"].get("study") for layer in (*images, mask))
    assert "stored" in ras.metadata["weakseg"]  # the way back to its file's grid is kept


def test_a_study_image_keeps_its_own_axes_beside_a_file_of_another_orientation(make_napari_viewer, tmp_path, monkeypatch):
    """The study's own layers hold its arrays in storage order (painting edits the study): they are never shown
    in another file's axes; files opened afterwards are shown in the study image's."""
    from napari_weakseg.io.case import read_volume
    from napari_weakseg.study import Study
    from napari_weakseg.study.folder import save_study

    viewer, widget, _, (lps,), notes = open_heads(make_napari_viewer, tmp_path, ["LPS"], monkeypatch)
    (tmp_path / "other").mkdir()
    ras_path, _ = write(tmp_path / "other", "RAS")
    study = Study()
    study.add_image(read_volume(ras_path), name="ras")
    save_study(study, tmp_path / "study")
    assert widget.open_study(tmp_path / "study"), widget._last_error
    im = widget.image
    assert widget.mask_layer.data is im.mask and widget.layers[im.name][0][0].data.shape == im.volume.shape
    assert notes == []
    (psr,) = viewer.open(write(tmp_path / "other", "PSR")[0], plugin=PLUGIN)
    assert psr.data.shape == im.volume.shape and np.array_equal(psr.data, im.volume.data[0])


def test_a_layer_shown_in_other_axes_keeps_its_files_other_header_fields(make_napari_viewer, tmp_path, monkeypatch):
    from test_orientation import stored_as

    viewer, widget, _, (first,), _ = open_heads(make_napari_viewer, tmp_path, ["LPS"], monkeypatch)
    stored, affine = stored_as("PSR", head())
    img = nib.Nifti1Image(stored, affine)
    img.header["descrip"] = b"scanner 7"
    img.set_sform(affine, 2)  # aligned to another scan
    img.header.set_xyzt_units("mm", "msec")
    nib.save(img, tmp_path / "head-PSR-aligned.nii.gz")
    (psr,) = viewer.open(tmp_path / "head-PSR-aligned.nii.gz", plugin=PLUGIN)
    info = psr.metadata["weakseg"]
    hdr = info["header"]
    assert "stored" in info and np.array_equal(psr.data, first.data)  # shown in the LPS axes
    assert hdr["descrip"].tobytes().rstrip(b"\0") == b"scanner 7" and int(hdr["sform_code"]) == 2
    assert hdr.get_xyzt_units() == ("mm", "msec")
    assert np.allclose(hdr.get_best_affine(), info["affine"]) and tuple(hdr.get_data_shape()) == psr.data.shape[::-1]
    assert np.allclose(psr.scale, first.scale)
