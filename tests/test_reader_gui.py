"""Bad files opened through a real napari viewer: one clear notification, no traceback, viewer usable."""

import nibabel as nib
import numpy as np
import pytest
from napari.utils.notifications import notification_manager


@pytest.fixture
def notifications():
    seen = []
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)


def _write(path, arr, affine=None):
    nib.save(nib.Nifti1Image(arr, np.eye(4) if affine is None else affine), str(path))
    return path


def test_bad_files_notify_and_leave_the_viewer_usable(make_napari_viewer, tmp_path, notifications):
    viewer = make_napari_viewer()
    good = _write(tmp_path / "good.nii.gz", np.random.rand(8, 9, 5).astype(np.float32))
    truncated = tmp_path / "cut.nii.gz"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    text = tmp_path / "text.nii.gz"
    text.write_text("not an image")
    flat = _write(tmp_path / "flat.nii", np.zeros((8, 9), np.float32))
    five = _write(tmp_path / "five.nii.gz", np.zeros((4, 4, 4, 2, 2), np.float32))
    expected = {truncated: "truncated", text: "not a readable NIfTI", flat: "2D NIfTI", five: "5D NIfTI"}
    for path, words in expected.items():
        notifications.clear()
        viewer.open(str(path), plugin="napari-weakseg")  # must not raise
        assert len(viewer.layers) == 0
        messages = [str(n.message) for n in notifications]
        assert any(words in m and path.name in m for m in messages), (path.name, messages)
    (tmp_path / "empty").mkdir()
    notifications.clear()
    viewer.open(str(tmp_path / "empty"), plugin="napari-weakseg")
    assert any("holds no" in str(n.message) for n in notifications)
    # the viewer still works: a good file opens with its physical scale
    layers = viewer.open(str(good), plugin="napari-weakseg")
    assert [layer.data.shape for layer in layers] == [(5, 9, 8)]


def test_nan_voxels_open_with_a_warning(make_napari_viewer, tmp_path, notifications):
    viewer = make_napari_viewer()
    arr = np.ones((6, 6, 4), np.float32)
    arr[0, 0, 0] = np.nan
    arr[1, 1, 1] = np.inf
    layers = viewer.open(str(_write(tmp_path / "nan.nii.gz", arr)), plugin="napari-weakseg")
    assert np.isfinite(layers[0].data).all()
    assert any("2 NaN/Inf voxel(s) replaced by 0" in str(n.message) for n in notifications)


def test_the_tagging_dock_makes_our_reader_napari_s_choice_for_nifti_unless_the_user_chose(make_napari_viewer, tmp_path):
    """napari's reader dialog pre-selects "napari builtins" for .nii.gz, which fails; after the dock is opened
    napari opens NIfTI files with ours, and a choice the user made is kept."""
    from napari.settings import get_settings

    from napari_weakseg.demo import ANNOTATION_WIDGET, PLUGIN
    from napari_weakseg.io.napari_io import prefer_our_reader

    settings = get_settings()
    settings.plugins.extension2reader = {"*.nii": "someone-else"}
    viewer = make_napari_viewer()
    viewer.window.add_plugin_dock_widget(PLUGIN, ANNOTATION_WIDGET)
    assert settings.plugins.extension2reader == {"*.nii": "someone-else", "*.nii.gz": "napari-weakseg"}
    assert prefer_our_reader() == []  # set once
    from napari_weakseg.data import make_phantom
    from napari_weakseg.io.nifti import write_nifti

    path = write_nifti(tmp_path / "case.nii.gz", make_phantom(shape=(8, 32, 32), seed=0).volume.data[0])
    layers = viewer.open(str(path), plugin=None)  # as File > Open does: the preferred reader, no dialog, no error
    assert layers and layers[0].data.shape[-2:] == (32, 32)
