"""napari-weakseg: annotation-efficient lesion segmentation in napari."""

__version__ = "0.1.0"
