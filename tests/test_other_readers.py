"""Layers opened by other napari readers keep their geometry in a study: built exactly as napari-itk-io
(itk-napari-conversion), MIC-DKFZ's napari-nifti (MedVol) and napari-nibabel build them (read from their code),
from a NIfTI file with a permuted, oblique affine; every voxel of the study lands where it is in the file."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from napari.layers import Image

from napari_weakseg.io.nifti import to_napari_order
from napari_weakseg.io.orientation import is_oriented
from napari_weakseg.study import Study, save_study
from napari_weakseg.widgets.study_layers import volume_from_layers

F = np.diag([-1.0, -1.0, 1.0])  # RAS <-> ITK's LPS


def source() -> tuple[np.ndarray, np.ndarray]:
    """(data (i, j, k), affine): stored P-S-R, tilted 12 degrees, off-centre."""
    data = np.random.default_rng(0).random((7, 8, 9)).astype(np.float32)
    perm = np.array([[0, 0, 1.0], [-1.0, 0, 0], [0, 1.0, 0]])  # i: P, j: S, k: R
    t = np.deg2rad(12)
    tilt = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    affine = np.eye(4)
    affine[:3, :3] = tilt @ perm @ np.diag([1.2, 0.9, 2.5])
    affine[:3, 3] = [-40.0, 12.5, 33.0]
    return data, affine


def itk_geometry(affine):
    """What ITK reads from that file, in NumPy order (ITK's pythonic image['origin'] etc., MedVol's
    geometry_for_sitk_array): (origin, spacing, direction), LPS."""
    m = F @ affine[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    return (F @ affine[:3, 3])[::-1], spacing[::-1], (m / spacing)[::-1, ::-1]


def itk_io_layer(data, affine, nested=False):  # napari-itk-io: itk_napari_conversion.image_layer_from_image
    origin, spacing, direction = itk_geometry(affine)
    md = {"origin": origin, "spacing": spacing, "direction": direction}
    return Image(
        to_napari_order(data), metadata={"itk_metadata": md} if nested else md, scale=spacing, translate=origin, rotate=direction.T
    )


def napari_nifti_layer(data, affine):  # MIC-DKFZ napari-nifti: MedVol's array, affine and metadata
    origin, spacing, direction = itk_geometry(affine)
    aff = np.eye(4)
    aff[:3, :3], aff[:3, 3] = direction @ np.diag(spacing), origin
    return Image(to_napari_order(data), affine=aff, metadata={"spacing": spacing, "origin": origin, "direction": direction, "header": {}})


def napari_nibabel_layer(data, affine):  # napari-nibabel: reoriented to RAS, (S, A, R) order, negative scales
    ornt = nib.orientations.io_orientation(affine)
    affine_ras = affine @ nib.orientations.inv_ornt_aff(ornt, data.shape)
    data_ras = nib.orientations.apply_orientation(data, ornt)
    plumb = np.diag(np.diag(affine_ras))
    scale = [plumb[2, 2], -plumb[1, 1], -plumb[0, 0]]
    header = nib.Nifti1Image(data, affine).header
    return Image(data_ras.transpose(2, 1, 0), metadata={"affine": affine_ras, "header": header}, scale=scale)


@pytest.mark.parametrize("build", [itk_io_layer, lambda d, a: itk_io_layer(d, a, nested=True), napari_nifti_layer, napari_nibabel_layer])
def test_a_study_from_another_readers_layer_lies_where_the_file_does(build, tmp_path):
    data, affine = source()
    layer = build(data, affine)
    volume, _ = volume_from_layers([layer])
    assert is_oriented(volume)
    inverse = np.linalg.inv(affine)
    rng = np.random.default_rng(1)
    for _ in range(20):  # any voxel of the study: its world position is where the file holds the same value
        k, j, i = (int(rng.integers(0, n)) for n in volume.shape)
        world = volume.affine @ [i, j, k, 1]
        idx = inverse @ world
        assert np.allclose(idx, np.round(idx), atol=1e-6)
        assert volume.data[0, k, j, i] == data[tuple(int(v) for v in np.round(idx[:3]))]
    assert volume.spacing == pytest.approx(tuple(np.linalg.norm(volume.affine[:3, :3], axis=0)[::-1]))  # (Z, Y, X), > 0
    # the mask the study writes overlays the source (ITK-SNAP / Slicer read it on the same world grid)
    study = Study()
    study.add_image(volume, name="case", mask=np.zeros(volume.shape, np.uint8))
    folder = save_study(study, tmp_path / "s")
    mask = nib.load(next((folder / "masks").glob("*.nii.gz")))
    assert np.allclose(mask.affine, volume.affine, atol=1e-5)


def test_layers_without_geometry_keep_their_scale():
    layer = Image(np.zeros((4, 5, 6), np.float32), scale=(2.0, 0.5, 0.5), metadata={"something": 1})
    volume, _ = volume_from_layers([layer])
    assert not is_oriented(volume) and volume.spacing == (2.0, 0.5, 0.5)


def test_files_of_one_orientation_on_different_grids_overlay_where_the_anatomy_is(tmp_path):
    """This plugin's reader puts each file's voxels at their positions (scale and translate from the affine):
    a cropped, coarser copy on its own grid lands on the same world points as the full scan."""
    from napari_weakseg.io.napari_io import layer_data_for

    full = np.diag([-1.0, -1.0, 1.2, 1.0])  # LPS, as DICOM converters write
    full[:3, 3] = [60.0, 70.0, -20.0]
    crop = np.diag([-2.0, -2.0, 2.4, 1.0])  # every second voxel of a box inside it
    crop[:3, 3] = full[:3, :3] @ [10, 12, 4] + full[:3, 3]
    nib.save(nib.Nifti1Image(np.zeros((40, 44, 30), np.float32), full), tmp_path / "full.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((10, 10, 8), np.float32), crop), tmp_path / "crop.nii.gz")
    a, b = (
        Image(d, **{k: v for k, v in m.items() if k != "name"})
        for d, m, _ in (layer_data_for(tmp_path / f)[0] for f in ("full.nii.gz", "crop.nii.gz"))
    )
    for ijk in ([0, 0, 0], [3, 5, 7], [9, 9, 7]):  # a voxel of the crop (NIfTI order) ...
        world = b.data_to_world(ijk[::-1])
        assert np.allclose(
            a.world_to_data(world)[::-1], [10 + 2 * ijk[0], 12 + 2 * ijk[1], 4 + 2 * ijk[2]]
        )  # ... is there in the full scan
