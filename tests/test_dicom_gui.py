"""A DICOM series in the real viewer (under Xvfb): it opens through the plugin's reader, becomes a study, and
the training dock's *Save segmentation…* writes the segmentation layer (as the user corrected it) as a DICOM SEG
over the series' images, or as NIfTI on its grid."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from qtpy.QtWidgets import QFileDialog
from test_dicom import frames, write_series

from napari_weakseg.io.dicom_seg import read_dicom_seg
from napari_weakseg.widgets import model_panel
from napari_weakseg.widgets.output_layers import SEG, layer_name, show_outputs

PLUGIN = "napari-weakseg"


def test_save_segmentation_writes_dicom_seg_for_a_series_and_nifti_otherwise(make_napari_viewer, tmp_path, monkeypatch, phantom):
    notes = {"error": [], "info": []}
    for kind in notes:
        monkeypatch.setattr(model_panel, f"show_{kind}", notes[kind].append)
    series = tmp_path / "mr"
    write_series(series, frames(n=6, rows=16, cols=16), [1, 0, 0, 0, 1, 0], [[-5.0, -5.0, 2.0 * k] for k in range(6)])
    viewer = make_napari_viewer()
    _, ann = viewer.window.add_plugin_dock_widget(PLUGIN, "Tag slices and paint masks")
    _, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train and inspect")
    assert train.save_segmentation(tmp_path / "x.nii.gz") is None and "run the model" in notes["error"][-1]
    layers = viewer.open(series, plugin=PLUGIN)
    viewer.layers.selection.active = layers[0]
    ann.new_btn.click()
    im = ann.image
    assert im is not None and im.volume.shape == (6, 16, 16)
    prob = np.zeros(im.volume.shape, np.float32)
    prob[2, 4:9, 5:11] = 0.9
    show_outputs(viewer, im.name, ann.layers[im.name][0][0], {"prob": prob}, 0.5)  # what Run model shows
    seg_layer = viewer.layers[layer_name(im.name, SEG)]
    seg_layer.data[4, 1:3, 1:3] = 1  # the user corrects the segmentation: a lesion the model missed
    want = (prob >= 0.5).astype(np.uint8)
    want[4, 1:3, 1:3] = 1
    # the dialog offers DICOM SEG for a DICOM image; the suffix follows the filter chosen
    offered = []

    def dialog(parent, title, start, filters):
        offered.append(filters)
        return str(tmp_path / "lesion"), "DICOM SEG (*.dcm)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", dialog)
    written = train.save_segmentation()
    assert "DICOM SEG (*.dcm)" in offered[0] and written == tmp_path / "lesion.dcm"
    assert np.array_equal(read_dicom_seg(written, series), want)
    nifti = train.save_segmentation(tmp_path / "lesion.nii.gz")
    img = nib.load(nifti)
    assert np.allclose(img.affine, im.volume.affine) and np.array_equal(np.transpose(np.asarray(img.dataobj), (2, 1, 0)), want)
    assert "saved" in notes["info"][-1]

    # an image that is not a DICOM series: no DICOM SEG offered, and a .dcm path is refused with the reason
    viewer.layers.selection.active = viewer.add_image(phantom.volume.data[0], name="p")
    ann.new_btn.click()
    show_outputs(viewer, ann.image.name, ann.layers[ann.image.name][0][0], {"prob": np.ones(phantom.volume.shape, np.float32)}, 0.5)
    assert train.save_segmentation(tmp_path / "p.dcm") is None and "not read from one" in notes["error"][-1]
    assert not (tmp_path / "p.dcm").exists()
