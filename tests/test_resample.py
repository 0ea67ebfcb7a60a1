"""Channels on different grids: refused with the way out, or resampled onto the first one's grid when asked
(linear or nearest), by world position; checked on a field that linear interpolation reproduces exactly."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_weakseg.cli import main
from napari_weakseg.errors import InputError
from napari_weakseg.io.case import load_case
from napari_weakseg.study import load_study


def field(world: np.ndarray) -> np.ndarray:
    """A linear function of the RAS position (mm): linear interpolation is exact on it."""
    return 0.5 * world[..., 0] + 0.2 * world[..., 1] - 0.1 * world[..., 2] + 3.0


def write(path, affine, shape):
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).astype(float)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    nib.save(nib.Nifti1Image(field(world).astype(np.float32), affine), path)
    return path


@pytest.fixture
def two_grids(tmp_path):
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    lps[:3, 3] = [10.0, 12.0, -8.0]
    ras = np.diag([2.0, 2.0, 2.0, 1.0])  # coarser, stored the other way round, larger field of view
    ras[:3, 3] = [-16.0, -14.0, -12.0]
    return write(tmp_path / "flair.nii.gz", lps, (20, 22, 18)), write(tmp_path / "t1c.nii.gz", ras, (16, 16, 14)), lps


def test_channels_on_different_grids_are_refused_with_the_way_out(two_grids):
    flair, t1c, _ = two_grids
    with pytest.raises(InputError, match=r"t1c.nii.gz: shape .* channels must share one grid; pass --resample linear"):
        load_case([flair, t1c])


@pytest.mark.parametrize("interpolation, tolerance", [("linear", 1e-4), ("nearest", 1.1)])
def test_resampling_puts_each_voxel_at_the_first_channels_world_position(two_grids, interpolation, tolerance):
    flair, t1c, lps = two_grids
    v = load_case([flair, t1c], resample=interpolation)
    assert v.data.shape == (2, 18, 22, 20) and np.array_equal(v.affine, lps) and v.channel_names == ["flair", "t1c"]
    assert np.allclose(v.data[1], v.data[0], atol=tolerance)  # same world position, same value
    assert np.array_equal(v.data[0], load_case([flair]).data[0])  # the first channel is untouched


def test_study_create_resamples_when_asked(two_grids, tmp_path):
    flair, t1c, lps = two_grids
    assert main(["study", "create", str(tmp_path / "refused"), "--image", f"{flair},{t1c}"]) == 1
    assert not (tmp_path / "refused").exists()
    assert main(["study", "create", str(tmp_path / "s"), "--image", f"{flair},{t1c}", "--resample", "linear"]) == 0
    im = load_study(tmp_path / "s").images[0]
    assert im.volume.data.shape[0] == 2 and np.allclose(im.volume.affine, lps)


@pytest.mark.parametrize("answer", ["yes", "no"])
def test_the_dock_asks_before_resampling_channels_of_different_grids(make_napari_viewer, two_grids, monkeypatch, answer):
    from qtpy.QtWidgets import QMessageBox

    from napari_weakseg.widgets import annotation_widget, study_files

    flair, t1c, lps = two_grids
    errors, asked = [], []
    for module in (annotation_widget, study_files):
        monkeypatch.setattr(module, "show_error", errors.append)

    def question(parent, title, text):
        asked.append(text)
        return QMessageBox.StandardButton.Yes if answer == "yes" else QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", question)
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-weakseg", "Tag slices and paint masks")
    layers = [viewer.open(p, plugin="napari-weakseg")[0] for p in (flair, t1c)]
    viewer.layers.selection.clear()
    viewer.layers.selection.update(layers)
    widget.new_btn.click()
    assert "t1c: shape (14, 16, 16) differs from flair (18, 22, 20)" in asked[0] and "linear interpolation" in asked[0]
    if answer == "yes":
        v = widget.image.volume
        assert v.data.shape == (2, 18, 22, 20) and np.allclose(v.affine, lps) and np.allclose(v.data[1], v.data[0], atol=1e-4)
    else:
        assert widget.study is None and "channels must share one grid" in errors[-1]
