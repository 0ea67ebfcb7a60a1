"""Anatomical views whatever the storage orientation: every plane upright, in both conventions, from the
affine alone (``io.orientation``); the voxels are never moved, so a round trip stays exact."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_weakseg.io.nifti import read_nifti, to_napari_order, write_nifti
from napari_weakseg.io.orientation import axis_letters, plane_axis, screen_image, view_for

STORAGE = ["RAS", "LPS", "LAS", "RPI", "PSR", "SLA", "IAL"]  # canonical, DICOM-like, flipped, permuted


def ras_volume() -> np.ndarray:
    """A (X, Y, Z) RAS volume (x grows to the patient's right, y to anterior, z to superior) that differs
    from every flip and transpose of itself."""
    return np.random.default_rng(0).random((5, 6, 7)).astype(np.float32)


def stored_as(code: str, data: np.ndarray):
    """The same anatomy stored in orientation ``code``: (voxels in NIfTI order, affine)."""
    ras = nib.orientations.axcodes2ornt("RAS")
    t = nib.orientations.ornt_transform(ras, nib.orientations.axcodes2ornt(tuple(code)))
    stored = nib.orientations.apply_orientation(data, t)
    affine = np.diag([2.0, 1.5, 3.0, 1.0]) @ nib.orientations.inv_ornt_aff(t, data.shape)
    return stored, affine


def expected(data: np.ndarray, plane: str, convention: str) -> list[np.ndarray]:
    """The screens of every slice, rows top to bottom and columns left to right, from the RAS volume."""
    radio = convention == "radiological"
    if plane == "axial":  # rows: anterior to posterior; columns: right to left (radiological)
        return [data[:: -1 if radio else 1, ::-1, z].T for z in range(data.shape[2])]
    if plane == "coronal":  # rows: superior to inferior
        return [data[:: -1 if radio else 1, y, ::-1].T for y in range(data.shape[1])]
    return [data[x, ::-1, ::-1].T for x in range(data.shape[0])]  # sagittal: anterior on the left


@pytest.mark.parametrize("code", STORAGE)
@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
@pytest.mark.parametrize("convention", ["radiological", "neurological"])
def test_every_plane_opens_upright_whatever_the_storage(code, plane, convention):
    data = ras_volume()
    stored, affine = stored_as(code, data)
    assert "".join(axis_letters(affine)) == code[::-1]  # napari order: the NIfTI axes reversed
    vol = to_napari_order(stored)
    view = view_for(affine, plane, convention)
    screens = [screen_image(vol, view, i) for i in range(vol.shape[view.slice_axis])]
    want = expected(data, plane, convention)
    assert len(screens) == len(want)
    same = all(np.array_equal(a, b) for a, b in zip(screens, want, strict=True))
    reversed_ = all(np.array_equal(a, b) for a, b in zip(screens, want[::-1], strict=True))
    assert same or reversed_  # the slider may run either way; every picture is upright
    top, left = {"axial": ("A", "R"), "coronal": ("S", "R"), "sagittal": ("S", "A")}[plane]
    if convention == "neurological" and plane != "sagittal":
        left = "L"
    assert (view.edges["top"], view.edges["left"]) == (top, left)
    assert {view.edges["bottom"], view.edges["right"]} == {{"A": "P", "S": "I"}[top], {"R": "L", "L": "R", "A": "P"}[left]}


def test_an_oblique_volume_takes_the_view_of_its_closest_axes():
    _, affine = stored_as("LPS", ras_volume())
    angle = np.deg2rad(20)
    tilt = np.eye(4)
    tilt[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]  # about the x axis
    assert view_for(tilt @ affine, "axial") == view_for(affine, "axial")
    assert view_for(tilt @ affine, "sagittal") == view_for(affine, "sagittal")


def test_the_axial_slicing_axis_is_chosen_by_anatomy():
    data = ras_volume()
    assert plane_axis(stored_as("LPS", data)[1]) == 0  # BraTS: axial slices along k, napari axis 0
    assert plane_axis(stored_as("PSR", data)[1]) == 1  # S-I stored as j
    assert plane_axis(stored_as("SLA", data)[1]) == 2  # S-I stored as i
    assert plane_axis(stored_as("SLA", data)[1], "sagittal") == 1


def test_the_voxels_and_header_round_trip_exactly_in_any_orientation(tmp_path):
    for code in STORAGE:
        stored, affine = stored_as(code, ras_volume())
        src = tmp_path / f"{code}.nii.gz"
        nib.save(nib.Nifti1Image(stored, affine), src)
        data, aff, header = read_nifti(src)
        assert np.array_equal(aff, affine)
        write_nifti(tmp_path / "back.nii.gz", data, header=header)
        back = nib.load(tmp_path / "back.nii.gz")
        assert np.array_equal(back.get_fdata(dtype=np.float32), stored) and np.array_equal(back.affine, affine)
