"""napari dock widgets (the only place that imports Qt)."""
