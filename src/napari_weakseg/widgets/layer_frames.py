"""Layers of files stored in different orientations, shown in one set of voxel axes so that they overlay
(thin over :mod:`napari_weakseg.io.shared_frame`; the tagging dock calls it when a layer is added).

The reference is the study image on screen, else the first oriented layer of this plugin's reader. A layer
shown in its axes holds a view of its own array; its metadata keeps the file's affine and header under
``stored``, so this plugin's writer puts it back on the file's own grid.
"""

from __future__ import annotations

import numpy as np

from ..io.layer_geometry import header_for
from ..io.nifti import spacing_from_header
from ..io.orientation import axis_letters, header_is_oriented, world_translate
from ..io.shared_frame import frame_transform, in_frame


def oriented_info(layer) -> dict | None:
    """The ``weakseg`` metadata of a 3-D layer of this plugin's reader that knows its anatomy, else None (also for
    the layers of a study image and its outputs: their data is the study's, in its storage order)."""
    info = (getattr(layer, "metadata", None) or {}).get("weakseg") or {}
    if getattr(layer, "ndim", 0) != 3 or "affine" not in info or info.get("study"):
        return None
    if not header_is_oriented(info.get("header")):
        return None
    return info


def reference_affine(layers, exclude=None) -> np.ndarray | None:
    """The affine of the first oriented layer of this plugin's reader in ``layers`` other than ``exclude``."""
    for layer in layers:
        info = oriented_info(layer) if layer is not exclude else None
        if info is not None:
            return np.asarray(info["affine"], float)
    return None


def show_in_frame(layer, ref_affine: np.ndarray) -> str | None:
    """Show ``layer`` in the voxel axes of a volume with ``ref_affine`` (its data becomes a view of its array;
    scale, translation and metadata follow). Returns what was done, for a note, or None when nothing was to do."""
    info = oriented_info(layer)
    if info is None:
        return None
    affine = np.asarray(info["affine"], float)
    transform = frame_transform(affine, ref_affine)
    if transform is None:
        return None
    shown, shown_affine = in_frame(layer.data, affine, transform)
    stored = info.get("stored") or {"affine": affine, "header": info.get("header")}
    header = header_for(shown_affine, shown.shape, like=stored["header"])  # the file's other header fields kept
    layer.metadata = {**layer.metadata, "weakseg": {**info, "affine": shown_affine, "header": header, "stored": stored}}
    layer.data = shown
    layer.scale = spacing_from_header(header)
    layer.translate = world_translate(shown_affine)
    was, now = "".join(axis_letters(affine)[::-1]), "".join(axis_letters(shown_affine)[::-1])
    return (
        f"{layer.name}: stored {was}, shown in the {now} axes of the other layers so that they overlay "
        "(the file is unchanged; saving writes it on its own grid)"
    )
