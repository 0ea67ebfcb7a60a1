"""Data-parallel training under ``torchrun``: gloo on CPU, NCCL on GPU; rank 0 writes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> DistInfo:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and os.environ.get("WEAKSEG_DIST_DEVICE", "auto") != "cpu"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    device = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    return DistInfo(rank, world, device)


def wrap_ddp(module: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """DistributedDataParallel around the method (parameters of an unused phase are allowed)."""
    if info.world <= 1:
        return module
    ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)


def all_reduce_mean(value: float, info: DistInfo) -> float:
    if info.world <= 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return float(t.item()) / info.world


def teardown_distributed(info: DistInfo, in_step: bool = True) -> None:
    """Leave the process group: a barrier first when every rank got here together (``in_step``), so no
    rank closes its connections while a peer still talks to it, then an orderly shutdown. Without it the
    gloo threads can outlive the interpreter and abort the process at exit."""
    if info.world <= 1 or not dist.is_initialized():
        return
    if in_step:
        dist.barrier()
    dist.destroy_process_group()
