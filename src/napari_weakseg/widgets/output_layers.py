"""The model's output layers: created once per image, updated in place, on the source image's grid."""

from __future__ import annotations

import numpy as np

HEALTHY, RESIDUAL, PROB, SEG, LESION = "healthy", "residual", "segmentation probability", "segmentation", "synthetic lesion"
PSEUDO = "pseudo labels"
PSEUDO_COLOURS = {None: "transparent", 0: "transparent", 1: "limegreen", 2: "orangered"}  # 1 kept, 2 dropped (pseudo/review.py)


def layer_name(image_name: str, what: str) -> str:
    return f"{image_name} {what}"


def _styles(source_layer) -> dict:
    """How each output layer looks: {what: napari layer keyword arguments}."""
    return {
        HEALTHY: {"colormap": "gray", "contrast_limits": source_layer.contrast_limits},
        RESIDUAL: {"colormap": "PiYG", "contrast_limits": (-1.0, 1.0)},  # diverging, centred on 0; rescaled to the data
        LESION: {"colormap": "gray", "contrast_limits": source_layer.contrast_limits},
        PROB: {"colormap": "magma", "contrast_limits": (0.0, 1.0), "blending": "additive", "opacity": 0.6},
        SEG: {"opacity": 0.5},
    }


def _meta(source_layer, **extra) -> dict:
    return dict(scale=source_layer.scale, translate=source_layer.translate, metadata=source_layer.metadata, **extra)


def show_outputs(viewer, image_name: str, source_layer, outputs: dict[str, np.ndarray], threshold: float) -> dict:
    """Create or update the output layers of one study image.

    outputs: prob (Z, Y, X); healthy / residual / lesion_sample (C, Z, Y, X) -- the first
    channel is shown (the one the source layer shows). Returns {what: layer}.
    """
    meta, style = _meta(source_layer), _styles(source_layer)
    layers = {}
    for key, what in (("healthy", HEALTHY), ("residual", RESIDUAL), ("lesion_sample", LESION)):
        if key in outputs:
            kwargs = dict(style[what])
            if what == RESIDUAL:
                top = float(np.percentile(np.abs(outputs[key][0]), 99.5)) or 1e-6
                kwargs["contrast_limits"] = (-top, top)
            layers[what] = _image(viewer, layer_name(image_name, what), outputs[key][0], meta, **kwargs)
    prob = outputs["prob"].astype(np.float32)
    layers[PROB] = _image(viewer, layer_name(image_name, PROB), prob, meta, **style[PROB])
    seg = (prob >= threshold).astype(np.uint8)
    name = layer_name(image_name, SEG)
    if name in viewer.layers:
        viewer.layers[name].data = seg
        layers[SEG] = viewer.layers[name]
    else:
        layers[SEG] = viewer.add_labels(seg, name=name, **meta, **style[SEG])
    return layers


def add_missing_outputs(viewer, image_name: str, source_layer, shape: tuple, outputs: tuple[str, ...]) -> list:
    """Empty, hidden output layers (``outputs``: method output names) for live previews to fill,
    only those missing; existing layers keep their data. shape: the image's (Z, Y, X).
    Returns the layers created. Creating layers costs the viewer about a second: doing it before
    training starts keeps that out of the run."""
    meta, style = _meta(source_layer, visible=False), _styles(source_layer)
    wanted = [what for key, what in (("healthy", HEALTHY), ("residual", RESIDUAL)) if key in outputs] + [PROB]
    created = []
    for what in wanted:
        if layer_name(image_name, what) not in viewer.layers:
            created.append(viewer.add_image(np.zeros(shape, np.float32), name=layer_name(image_name, what), **meta, **style[what]))
    if layer_name(image_name, SEG) not in viewer.layers:
        created.append(viewer.add_labels(np.zeros(shape, np.uint8), name=layer_name(image_name, SEG), **meta, **style[SEG]))
    return created


def show_pseudo_labels(viewer, image_name: str, source_layer, data: np.ndarray, review: dict):
    """Create or update the pseudo labels layer of one image: data (Z, Y, X) with 1 = a pseudo label the
    selection kept (green), 2 = dropped (red); ``review`` (per-slice scores) goes to its metadata."""
    from napari.utils.colormaps import DirectLabelColormap

    name = layer_name(image_name, PSEUDO)
    metadata = {**source_layer.metadata, "pseudo_label_review": review}
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data, layer.metadata = data, metadata
        return layer
    return viewer.add_labels(
        data,
        name=name,
        opacity=0.5,
        scale=source_layer.scale,
        translate=source_layer.translate,
        metadata=metadata,
        colormap=DirectLabelColormap(color_dict=PSEUDO_COLOURS),
    )


def update_threshold(viewer, image_name: str, threshold: float) -> None:
    """Re-threshold the segmentation layer from the probability layer, in place."""
    prob, seg = layer_name(image_name, PROB), layer_name(image_name, SEG)
    if prob in viewer.layers and seg in viewer.layers:
        viewer.layers[seg].data = (np.asarray(viewer.layers[prob].data) >= threshold).astype(np.uint8)


def update_slice(viewer, image_name: str, axis: int, index: int, outputs: dict[str, np.ndarray], threshold: float) -> None:
    """Write one slice's outputs (a live preview) into existing output layers."""
    pieces = {PROB: outputs.get("prob"), HEALTHY: outputs.get("healthy"), RESIDUAL: outputs.get("residual")}
    for what, arr in pieces.items():
        name = layer_name(image_name, what)
        if arr is None or name not in viewer.layers:
            continue
        layer = viewer.layers[name]
        np.moveaxis(layer.data, axis, 0)[index] = arr[0]
        if what == RESIDUAL:  # keep the diverging colormap centred on 0 and scaled to what is shown
            top = float(np.percentile(np.abs(arr[0]), 99.5)) or 1e-6
            layer.contrast_limits = (-top, top)
        layer.refresh()
    if PROB in pieces and pieces[PROB] is not None and layer_name(image_name, SEG) in viewer.layers:
        seg = viewer.layers[layer_name(image_name, SEG)]
        np.moveaxis(seg.data, axis, 0)[index] = pieces[PROB][0] >= threshold
        seg.refresh()


def _image(viewer, name: str, data: np.ndarray, meta: dict, **kwargs):
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data = data
        for k, v in kwargs.items():
            setattr(layer, k, v)
        return layer
    return viewer.add_image(data, name=name, **meta, **kwargs)
