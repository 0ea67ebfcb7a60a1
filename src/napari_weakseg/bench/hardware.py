"""Measured hardware figures: the machine's own dense matmul FLOP/s and a training step's FLOPs."""

from __future__ import annotations

import os
import platform
import statistics
import time

import torch
from torch.nn.utils import parametrize
from torch.utils.flop_counter import FlopCounterMode


def matmul_flops_per_s(device: torch.device, n: int = 1024, repeats: int = 15) -> float:
    """Median FLOP/s of an (n x n) @ (n x n) float32 matmul on ``device`` (2 n^3 FLOPs each)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    times = []
    for i in range(repeats + 3):
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        if i >= 3:  # warm-up
            times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times)


def training_step_flops(method, batch: dict) -> int:
    """FLOPs of one training step (forward and backward of every phase), counted by torch."""
    counter = FlopCounterMode(display=False)
    with counter:
        for phase in method.phases:
            method.zero_grad(set_to_none=True)
            with parametrize.cached():  # as the Trainer does
                out = method(batch, phase)
            out["loss"].backward()
    method.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def machine_description(device: torch.device) -> dict:
    desc = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        desc["gpu"] = torch.cuda.get_device_name(device)
    else:
        desc["cpu"] = platform.processor() or _cpu_model()
    return desc


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
