"""Readers and writers: NIfTI volumes, 2D image folders, multi-channel cases."""

from .case import Volume, load_case, load_mask
from .image_folder import read_image_folder
from .nifti import read_nifti, write_nifti

__all__ = ["Volume", "load_case", "load_mask", "read_image_folder", "read_nifti", "write_nifti"]
