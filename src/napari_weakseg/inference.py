"""Inference: a trained method on whole volumes, slice by slice, mapped back to the input grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn.utils import parametrize
from torch.nn import functional as F

from .data.slices import Normaliser, resize_slices
from .errors import InputError
from .methods import Method, MethodConfig, build_method
from .training.checkpoint import load_tensors, read_run_info


class TrainedModel:
    """A method with its weights, normalisation and config, loaded from a run folder."""

    def __init__(self, method: Method, normaliser: Normaliser, config: MethodConfig, info: dict, device: torch.device):
        self.method, self.normaliser, self.config, self.info, self.device = method, normaliser, config, info, device

    @classmethod
    def load(cls, run_dir: str | Path, which: str = "best", device: str = "cpu") -> "TrainedModel":
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

    def predict_volume(self, volume: np.ndarray, axis: int = 0, batch: int = 16, lesion_samples: bool = False) -> dict[str, np.ndarray]:
        """volume (C, Z, Y, X) -> outputs on the same grid, slices along ``axis``:
        healthy (C, Z, Y, X), residual (C, Z, Y, X) where the method has them; prob (Z, Y, X) float32;
        per-slice scores (e.g. pseudo-label's score_disc) (n_slices,)."""
        if volume.shape[0] != self.channels:
            raise InputError(f"the model was trained on {self.channels} channel(s); this image has {volume.shape[0]}")
        slices = np.moveaxis(volume, axis + 1, 1)  # (C, n, H, W)
        n = slices.shape[1]
        collected: dict[str, list[np.ndarray]] = {}
        for start in range(0, n, batch):
            chunk = np.ascontiguousarray(slices[:, start : start + batch].transpose(1, 0, 2, 3))
            out = predict_slices(self.method, self.normaliser, self.config, chunk, self.device, lesion_samples)
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


@torch.no_grad()
def predict_slices(method: Method, normaliser: Normaliser, config: MethodConfig, slices: np.ndarray, device,
                   lesion_samples: bool = False) -> dict[str, np.ndarray]:
    """slices (B, C, H, W) raw intensities -> outputs (B, K, H, W) on the same grid.

    healthy and lesion samples come back in raw intensities; residual in raw units
    (a difference); prob in [0, 1]; per-slice outputs (B,) as they are.
    """
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
    scale = torch.tensor([(hi - lo) / 2 for lo, hi in zip(normaliser.low, normaliser.high)]).view(1, -1, 1, 1)
    offset = torch.tensor([(hi + lo) / 2 for lo, hi in zip(normaliser.low, normaliser.high)]).view(1, -1, 1, 1)
    result = {}
    for k, v in out.items():
        v = v.float().cpu()
        if v.dim() == 1:
            result[k] = v.numpy()
            continue
        if config.input_size is not None:
            v = F.interpolate(v, size=(h, w), mode="bilinear", align_corners=False)
        else:
            v = v[..., :h, :w]
        if k in ("healthy", "lesion_sample"):
            v = v * scale + offset
        elif k == "residual":
            v = v * scale
        result[k] = v.numpy()
    return result
