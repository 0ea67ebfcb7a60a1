"""Anatomical views of a volume whatever its storage orientation, without touching its voxels.

Volumes stay in storage order (napari order: the NIfTI (i, j, k) reversed), so that everything written back
lands on the file's own grid exactly. A view is chosen by the display alone: which data axis is on the slider
and which two are shown as rows and columns (``viewer.dims.order``), and whether rows grow downwards or
upwards and columns to the right or to the left (``viewer.camera.orientation2d``). The axes' anatomical
directions come from the affine through nibabel (``io_orientation``: the closest axes of an oblique one).

Conventions (MR-TIP's standard display; "radiological" as read in radiology):
- axial: anterior at the top; radiological: the patient's right on the screen's left (neurological: on the
  right);
- coronal: superior at the top; the patient's right as for axial;
- sagittal: superior at the top, anterior on the left (either convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLANES = ("axial", "coronal", "sagittal")
CONVENTIONS = ("radiological", "neurological")
# per plane: the anatomical axis on the slider, then the rows' and the columns' (each as its two letters: the
# negative and positive RAS ends), and the letters at the screen's top and left
_LAYOUT = {
    "axial": ("IS", "PA", "LR", "A", "R"),
    "coronal": ("PA", "IS", "LR", "S", "R"),
    "sagittal": ("LR", "IS", "PA", "S", "A"),
}
_OPPOSITE = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}


@dataclass(frozen=True)
class View:
    """How napari shows one anatomical plane of a volume (``apply`` in the widgets).

    order:  ``viewer.dims.order`` for the volume's 3 spatial axes: (slider axis, rows axis, columns axis).
    vertical, horizontal: ``viewer.camera.orientation2d``: "down"/"up", "right"/"left" (where rows and
    columns grow on the screen).
    edges: the anatomical letter at each edge of the canvas: {"top", "bottom", "left", "right"}.
    """

    plane: str
    order: tuple[int, int, int]
    vertical: str
    horizontal: str
    edges: dict

    @property
    def slice_axis(self) -> int:
        return self.order[0]


def axis_letters(affine: np.ndarray) -> tuple[str, str, str]:
    """For each axis of a volume in napari order (Z, Y, X), the anatomical direction its index grows
    towards (RAS letters: "R", "A", "S" or their opposites "L", "P", "I"). affine: (4, 4), NIfTI (i, j, k)."""
    import nibabel as nib

    ornt = nib.orientations.io_orientation(np.asarray(affine, float))  # (3, 2): RAS axis, direction, per i, j, k
    letters = []
    for axis, direction in ornt[::-1]:  # napari axis a is NIfTI axis 2 - a
        positive = "RAS"[int(axis)]
        letters.append(positive if direction > 0 else _OPPOSITE[positive])
    return tuple(letters)


def plane_axis(affine: np.ndarray, plane: str = "axial") -> int:
    """The napari-order axis a study slices along to show ``plane`` slices (axial: the one closest to S-I)."""
    return view_for(affine, plane).slice_axis


def world_translate(affine: np.ndarray) -> tuple[float, float, float]:
    """napari ``translate`` (Z, Y, X) that puts a volume's voxels at their positions along its own axes (the
    origin projected on each axis' direction), so that files on different grids of one orientation overlay
    where the anatomy is. affine: (4, 4), NIfTI (i, j, k)."""
    a = np.asarray(affine, float)
    units = a[:3, :3] / np.linalg.norm(a[:3, :3], axis=0)
    return tuple(float(a[:3, 3] @ units[:, 2 - k]) for k in range(3))


def layer_translate(volume) -> tuple[float, float, float]:
    """``world_translate`` of a :class:`~napari_weakseg.io.case.Volume` that knows its anatomy, else 0."""
    return world_translate(volume.affine) if is_oriented(volume) else (0.0, 0.0, 0.0)


def study_axis(volume, plane: str = "axial") -> int:
    """The slicing axis a new study gives a :class:`~napari_weakseg.io.case.Volume`: ``plane``'s axis when
    the volume knows its anatomy (``is_oriented``), else axis 0 (the stack of an image folder)."""
    return plane_axis(volume.affine, plane) if is_oriented(volume) else 0


def view_for(affine: np.ndarray, plane: str = "axial", convention: str = "radiological") -> View:
    """The display that shows ``plane`` slices of a volume with this affine upright, in ``convention``."""
    if plane not in PLANES:
        raise ValueError(f"plane must be one of {PLANES}; got {plane!r}")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}; got {convention!r}")
    letters = axis_letters(affine)
    slider, rows, cols, top, left = _LAYOUT[plane]
    if convention == "neurological" and plane != "sagittal":
        left = _OPPOSITE[left]

    def axis_of(pair: str) -> int:
        return next(a for a in range(3) if letters[a] in pair)

    r, c = axis_of(rows), axis_of(cols)
    vertical = "down" if letters[r] == _OPPOSITE[top] else "up"  # rows grow towards the bottom's letter
    horizontal = "right" if letters[c] == _OPPOSITE[left] else "left"
    edges = {"top": top, "bottom": _OPPOSITE[top], "left": left, "right": _OPPOSITE[left]}
    return View(plane, (axis_of(slider), r, c), vertical, horizontal, edges)


def screen_image(volume: np.ndarray, view: View, index: int) -> np.ndarray:
    """The 2-D picture napari draws for slice ``index`` of a (Z, Y, X) ``volume`` under ``view``: rows top
    to bottom, columns left to right (what tests compare with the anatomy)."""
    sl = np.moveaxis(volume, view.order, (0, 1, 2))[index]
    if view.vertical == "up":
        sl = sl[::-1]
    if view.horizontal == "left":
        sl = sl[:, ::-1]
    return sl


def is_oriented(volume) -> bool:
    """Whether a :class:`~napari_weakseg.io.case.Volume` knows its anatomy: what it says (``oriented``, e.g.
    from a study's manifest), else a NIfTI header whose qform or sform code is set (image folders and synthetic
    data have none: they keep napari's plain display)."""
    if getattr(volume, "oriented", None) is not None:
        return bool(volume.oriented)
    return header_is_oriented(getattr(volume, "header", None))


def header_is_oriented(header) -> bool:
    """A NIfTI header whose qform or sform code is set (False for None)."""
    if header is None:
        return False
    try:
        return int(header["qform_code"]) > 0 or int(header["sform_code"]) > 0
    except (KeyError, TypeError, ValueError):
        return False
