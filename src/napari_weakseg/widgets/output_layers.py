"""The model's output layers: created once per image, updated in place, on the source image's grid.

They keep the anatomy visible: the segmentation is drawn as a contour over the image, the residual as an
overlay that is transparent where it is near 0 (its colour's alpha ramps with |value|), the healthy image and
the probability are there on demand (hidden at first; the healthy image's contrast follows the source's).
Names put the output first, so that a long image name cut in the layer list still leaves them distinct."""

from __future__ import annotations

import numpy as np

HEALTHY, RESIDUAL, PROB, SEG, LESION = "healthy", "residual", "probability", "segmentation", "synthetic lesion"
CLASSES = "lesion classes"  # a per-class model's likeliest class where the lesion probability reaches the threshold
VISIBLE = {HEALTHY: False, RESIDUAL: True, PROB: False, SEG: True, LESION: True, CLASSES: True}  # when first shown
PSEUDO = "pseudo labels"
PSEUDO_COLOURS = {None: "transparent", 0: "transparent", 1: "limegreen", 2: "orangered"}  # 1 kept, 2 dropped (pseudo/review.py)


def layer_name(image_name: str, what: str) -> str:
    return f"{what} · {image_name}"


def output_kind(layer_name_: str) -> str | None:
    """The output a layer name stands for (``HEALTHY``, ...), or None for other layers."""
    what = layer_name_.split(" · ", 1)[0]
    return what if what in VISIBLE or what == PSEUDO else None


def residual_colormap():
    """Diverging pink (removes signal) - transparent at 0 - green (adds signal): an overlay that leaves the
    anatomy visible wherever the model changes nothing."""
    from napari.utils.colormaps import Colormap

    return Colormap(
        colors=[[0.77, 0.11, 0.49, 1.0], [1.0, 1.0, 1.0, 0.0], [0.30, 0.67, 0.13, 1.0]],
        controls=[0.0, 0.5, 1.0],
        name="residual (0 transparent)",
    )


def _styles(source_layer) -> dict:
    """How each output layer looks: {what: napari layer keyword arguments}."""
    return {
        HEALTHY: {"colormap": "gray", "contrast_limits": source_layer.contrast_limits},
        RESIDUAL: {"colormap": residual_colormap(), "contrast_limits": (-1.0, 1.0), "blending": "translucent"},  # rescaled to the data
        LESION: {"colormap": "gray", "contrast_limits": source_layer.contrast_limits},
        PROB: {"colormap": "magma", "contrast_limits": (0.0, 1.0), "blending": "additive", "opacity": 0.6},
        SEG: {"opacity": 0.9},
    }


def reveal(layers) -> None:
    """Show output layers that were created hidden (for a live preview) as each is first shown."""
    for layer in layers:
        layer.visible = VISIBLE.get(output_kind(layer.name), True)


def _new_labels(viewer, data, name: str, meta: dict, style: dict):
    layer = viewer.add_labels(data, name=name, **meta, **style)
    layer.contour = 1  # an outline over the image, not a filled area hiding it
    return layer


def _link_contrast(source_layer, layer) -> None:
    """The healthy image keeps the source's contrast limits (compare them like with like)."""

    def follow(event=None):
        layer.contrast_limits = source_layer.contrast_limits

    source_layer.events.contrast_limits.connect(follow)


def _meta(source_layer, **extra) -> dict:
    return dict(scale=source_layer.scale, translate=source_layer.translate, metadata=source_layer.metadata, **extra)


def show_outputs(
    viewer, image_name: str, source_layer, outputs: dict[str, np.ndarray], threshold: float, class_names: list[str] | None = None
) -> dict:
    """Create or update the output layers of one study image.

    outputs: prob (Z, Y, X); healthy / residual / lesion_sample (C, Z, Y, X) -- the first
    channel is shown (the one the source layer shows); class_prob (K, Z, Y, X) of a per-class model, shown as
    lesion classes named by ``class_names``. Returns {what: layer}.
    """
    meta, style = _meta(source_layer), _styles(source_layer)
    layers = {}
    for key, what in (("healthy", HEALTHY), ("residual", RESIDUAL), ("lesion_sample", LESION)):
        if key in outputs:
            kwargs = dict(style[what])
            if what == RESIDUAL:
                top = float(np.percentile(np.abs(outputs[key][0]), 99.5)) or 1e-6
                kwargs["contrast_limits"] = (-top, top)
            new = layer_name(image_name, what) not in viewer.layers
            layers[what] = _image(viewer, layer_name(image_name, what), outputs[key][0], meta, **kwargs)
            if what == HEALTHY and new:
                _link_contrast(source_layer, layers[what])
    prob = outputs["prob"].astype(np.float32)
    layers[PROB] = _image(viewer, layer_name(image_name, PROB), prob, meta, **style[PROB])
    seg = (prob >= threshold).astype(np.uint8)
    name = layer_name(image_name, SEG)
    if name in viewer.layers:
        viewer.layers[name].data = seg
        layers[SEG] = viewer.layers[name]
    else:
        layers[SEG] = _new_labels(viewer, seg, name, {**meta, "visible": VISIBLE[SEG]}, style[SEG])
    if "class_prob" in outputs:
        from ..io.outputs import class_labels

        layers[CLASSES] = _class_layer(viewer, layer_name(image_name, CLASSES), class_labels(outputs, threshold), meta, class_names)
    return layers


def _class_layer(viewer, name: str, labels: np.ndarray, meta: dict, class_names) -> object:
    """The lesion classes as a Labels layer whose features name each label (napari shows the name under the cursor)."""
    given = list(class_names or [])
    k = max(int(labels.max(initial=0)), len(given))
    names = ["background", *given, *(f"label {i + 1}" for i in range(len(given), k))]
    features = {"index": list(range(k + 1)), "class": names}
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data, layer.features = labels, features
        return layer
    return viewer.add_labels(labels, name=name, features=features, opacity=0.5, **meta)


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
            if what == HEALTHY:
                _link_contrast(source_layer, created[-1])
    if layer_name(image_name, SEG) not in viewer.layers:
        created.append(_new_labels(viewer, np.zeros(shape, np.uint8), layer_name(image_name, SEG), meta, style[SEG]))
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
    """Update the layer ``name`` in place (the user's visibility kept), or create it with its first visibility."""
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data = data
        for k, v in kwargs.items():
            if k != "contrast_limits" or output_kind(name) != HEALTHY:  # the healthy image's follow the source's
                setattr(layer, k, v)
        return layer
    return viewer.add_image(data, name=name, **meta, visible=VISIBLE.get(output_kind(name), True), **kwargs)
