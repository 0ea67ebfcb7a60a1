"""Inference: a trained method on whole volumes, slice by slice, mapped back to the input grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.nn.utils import parametrize

from .data.slices import Normaliser, cut_half, put_half, resize_slices
from .errors import InputError
from .io.case import Volume
from .methods import Method, MethodConfig, build_method
from .study.halves import HalfSplit, foreground, left_right_axis, middle_of
from .training.checkpoint import load_tensors, read_run_info


class TrainedModel:
    """A method with its weights, normalisation and config, loaded from a run folder."""

    def __init__(self, method: Method, normaliser: Normaliser, config: MethodConfig, info: dict, device: torch.device):
        self.method, self.normaliser, self.config, self.info, self.device = method, normaliser, config, info, device

    @classmethod
    def load(cls, run_dir: str | Path, which: str = "best", device: str = "cpu") -> TrainedModel:
        run_dir = Path(run_dir)
        info = read_run_info(run_dir)
        try:
            config = MethodConfig.from_dict(info["method_config"])
            normaliser = Normaliser.from_dict(info["normaliser"])
            method = build_method(info["method"], config)
        except (KeyError, TypeError) as exc:
            raise InputError(f"{run_dir}/run.json: incomplete ({exc})") from None
        path = run_dir / f"{which}.pt"
        if not path.is_file():
            path = run_dir / "last.pt"
        state = load_tensors(path)
        try:
            method.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise InputError(f"{path.name}: the weights do not fit method {info['method']} ({str(exc).splitlines()[0][:120]})") from None
        dev = torch.device(device)
        method.to(dev).eval()
        return cls(method, normaliser, config, info, dev)

    @property
    def channels(self) -> int:
        return self.config.net.in_channels

    @property
    def on_halves(self) -> bool:
        """Trained on half-slices: predict each half apart and stitch them (``predict_volume(split=...)``)."""
        return bool(self.info.get("halves"))

    def split_for(self, volume: Volume, axis: int = 0, roi: np.ndarray | None = None) -> HalfSplit | None:
        """The split to predict ``volume`` with: None for a model of whole slices; else across the patient's
        left-right axis (from the affine) at the middle of ``roi``'s extent, or of the foreground (voxels that
        differ from the corner voxel in some channel: the head of a skull-stripped scan)."""
        if not self.on_halves:
            return None
        lr = left_right_axis(volume.affine, axis)
        return HalfSplit(lr, middle_of(foreground(volume.data) if roi is None else roi, lr, volume.shape))

    def predict_image(self, im, stitch_halves: bool = False, **kw) -> dict[str, np.ndarray]:
        """``predict_volume`` on a study image (:class:`StudyImage`): whole slices, also for a model trained on
        half-slices (on BraTS they scored better than stitched halves in every setting measured, docs/benchmarks.md);
        ``stitch_halves``: predict such a model's halves apart, cut at the image's own split (else ``split_for``)."""
        split = (im.split or self.split_for(im.volume, im.axis)) if stitch_halves and self.on_halves else None
        return self.predict_volume(im.volume.data, axis=im.axis, split=split, **kw)

    def predict_volume(
        self, volume: np.ndarray, axis: int = 0, batch: int = 16, lesion_samples: bool = False, split: HalfSplit | None = None
    ) -> dict[str, np.ndarray]:
        """volume (C, Z, Y, X) -> outputs on the same grid, slices along ``axis``:
        healthy (C, Z, Y, X), residual (C, Z, Y, X) where the method has them; prob (Z, Y, X) float32;
        per-slice scores (e.g. pseudo-label's score_disc) (n_slices,). ``split``: each slice is predicted as
        its two half-slices, put back side by side (per-slice scores: the mean of the halves')."""
        if volume.shape[0] != self.channels:
            raise InputError(f"the model was trained on {self.channels} channel(s); this image has {volume.shape[0]}")
        cut = None if split is None else (split.check(volume.shape[1:], axis).plane_axis(axis), split.at)
        slices = np.moveaxis(volume, axis + 1, 1)  # (C, n, H, W)
        n = slices.shape[1]
        collected: dict[str, list[np.ndarray]] = {}
        for start in range(0, n, batch):
            chunk = np.ascontiguousarray(slices[:, start : start + batch].transpose(1, 0, 2, 3))
            out = predict_slices(self.method, self.normaliser, self.config, chunk, self.device, lesion_samples, cut)
            for k, v in out.items():
                collected.setdefault(k, []).append(v)
        result = {}
        for k, parts in collected.items():
            arr = np.concatenate(parts)  # (n, K, H, W)
            if arr.ndim == 1:  # one value per slice
                result[k] = arr
            elif k == "prob":
                result[k] = np.moveaxis(arr[:, 0], 0, axis)
            else:
                result[k] = np.moveaxis(arr.transpose(1, 0, 2, 3), 1, axis + 1)
        return result


def predict_slices(
    method: Method,
    normaliser: Normaliser,
    config: MethodConfig,
    slices: np.ndarray,
    device,
    lesion_samples: bool = False,
    halves: tuple[int, int] | None = None,
) -> dict[str, np.ndarray]:
    """slices (B, C, H, W) raw intensities -> outputs (B, K, H, W) on the same grid.

    healthy and lesion samples come back in raw intensities; residual in raw units
    (a difference); prob in [0, 1]; per-slice outputs (B,) as they are.
    ``halves`` = (plane axis, at): each slice's two half-slices are predicted apart (cut and mirrored as in
    training, ``data.slices.study_slices``) and put back in place; per-slice outputs are the halves' mean.
    """
    if halves is None:
        return _predict(method, normaliser, config, slices, device, lesion_samples)
    plane, at = halves
    x = slices.swapaxes(-1, -2) if plane == 0 else slices  # the cut along the last axis, as in training
    flip, n = config.flip_halves, x.shape[-1]
    parts = [_predict(method, normaliser, config, np.ascontiguousarray(cut_half(x, h, at, flip)), device, lesion_samples) for h in (0, 1)]
    result = {}
    for k in parts[0]:
        a, b = parts[0][k], parts[1][k]
        if a.ndim == 1:
            result[k] = (a + b) / 2
            continue
        whole = np.concatenate([put_half(a, 0, at, n, flip), put_half(b, 1, at, n, flip)], axis=-1)
        result[k] = np.ascontiguousarray(whole.swapaxes(-1, -2) if plane == 0 else whole)
    return result


@torch.no_grad()
def _predict(
    method: Method, normaliser: Normaliser, config: MethodConfig, slices: np.ndarray, device, lesion_samples: bool = False
) -> dict[str, np.ndarray]:
    was_training = method.training
    method.eval()
    b, c, h, w = slices.shape
    x = torch.from_numpy(np.ascontiguousarray(normaliser.apply(slices, channel_axis=1), dtype=np.float32))
    x = resize_slices(x, config.input_size, 2**config.net.depth).to(device)
    with parametrize.cached():  # each spectrally normalised weight computed once, not once per call
        out = method.predict(x)
        if lesion_samples:
            sample = method.sample_lesions(x)
            if sample is not None:
                out["lesion_sample"] = sample
    method.train(was_training)
    scale = torch.tensor([(hi - lo) / 2 for lo, hi in zip(normaliser.low, normaliser.high, strict=True)]).view(1, -1, 1, 1)
    offset = torch.tensor([(hi + lo) / 2 for lo, hi in zip(normaliser.low, normaliser.high, strict=True)]).view(1, -1, 1, 1)
    result = {}
    for k, v in out.items():
        v = v.float().cpu()
        if v.dim() == 1:
            result[k] = v.numpy()
            continue
        v = F.interpolate(v, size=(h, w), mode="bilinear", align_corners=False) if config.input_size is not None else v[..., :h, :w]
        if k in ("healthy", "lesion_sample"):
            v = v * scale + offset
        elif k == "residual":
            v = v * scale
        result[k] = v.numpy()
    return result
