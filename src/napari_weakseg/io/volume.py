"""``Volume``: an image in napari order with the geometry needed to write results back."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError


@dataclass
class Volume:
    """An image in napari order with the geometry needed to write results back.

    data:    (C, Z, Y, X) float32; C channels (modalities), Z slices.
    affine:  (4, 4) voxel -> world affine of the source, NIfTI (i, j, k) order.
    header:  the source NIfTI header, or None (image folders, synthetic data).
    spacing: (sz, sy, sx) voxel size, in mm for NIfTI.
    channel_names: one name per channel.
    sources: the files the channels came from.
    oriented: whether the affine gives the anatomy (``io.orientation.is_oriented``); None: decided from the
    header (its qform or sform code), as for a file just read.
    """

    data: np.ndarray
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    header: object | None = None
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channel_names: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    oriented: bool | None = None

    def __post_init__(self):
        if self.data.ndim != 4:
            raise InputError(f"an image must be (C, Z, Y, X); got shape {self.data.shape}")
        if not self.channel_names:
            self.channel_names = [f"channel{c}" for c in range(self.data.shape[0])]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape (Z, Y, X)."""
        return tuple(self.data.shape[1:])
