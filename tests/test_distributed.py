"""Data-parallel training with 2 CPU processes under torchrun (gloo): the CLI end to end, and one DDP step
checked against the same step taken in one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_weakseg.data import make_phantom
from napari_weakseg.inference import TrainedModel
from napari_weakseg.methods import build_method, merge, preset
from napari_weakseg.study import Study, save_study
from napari_weakseg.study.build import tags_from_masks
from napari_weakseg.training.checkpoint import load_tensors

BIN = Path(sys.executable).parent
TINY = {
    "net": {"base": 4, "depth": 2, "max_channels": 16, "code_channels": 8, "unique_channels": 4},
    "input_size": 32,
    "batch_size": 2,
    "disc_base": 4,
    "augment": False,
}

# shared by the torchrun script and the single-process reference: each rank's own fixed batch
BATCH_SRC = """
def rank_batch(rank):
    g = torch.Generator().manual_seed(100 + rank)
    m = torch.zeros(2, 1, 32, 32)
    m[:, :, 4 + 6 * rank : 16 + 6 * rank, 8:20] = 1.0
    p = torch.randn(2, 1, 32, 32, generator=g) + 2 * m
    return {"P": p, "A": torch.randn(2, 1, 32, 32, generator=g), "M": m, "L": torch.ones(2, dtype=torch.bool)}
"""
ns: dict = {"torch": torch}
exec(BATCH_SRC, ns)
rank_batch = ns["rank_batch"]

STEP_SCRIPT = """
import json, sys
from pathlib import Path
import torch
from napari_weakseg.methods import build_method, merge, preset
from napari_weakseg.training.distributed import setup_distributed, teardown_distributed, wrap_ddp
{batch_src}
torch.set_num_threads(1)
out = Path(sys.argv[1])
info = setup_distributed()
assert info.world == 2, info
torch.manual_seed(0)
method = build_method("seg-only", merge(preset("quick", 1), json.loads(sys.argv[2])))
method.train()
opt = method.make_optimizers()["main"]
model = wrap_ddp(method, info)
assert model is not method
opt.zero_grad(set_to_none=True)
loss = model(rank_batch(info.rank), "main")["loss"]
loss.backward()
grads = {{n: p.grad.detach().clone() for n, p in method.named_parameters() if p.grad is not None}}
opt.step()
teardown_distributed(info)
(out / f"loss{{info.rank}}.json").write_text(json.dumps(float(loss.detach())))
if info.rank == 0:
    torch.save({{"model": method.state_dict(), "grads": grads}}, out / "rank0.pt")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WEAKSEG_DIST_DEVICE": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("WORLD_SIZE", None)
    cmd = [
        str(BIN / "torchrun"),
        "--nnodes=1",
        "--nproc_per_node=2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        *map(str, args),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_cli_training_with_two_processes(tmp_path):
    case = make_phantom(shape=(12, 32, 32), channels=1, seed=1)
    study = Study()
    tags_from_masks(study.add_image(case.volume, name="phantom", mask=case.mask))
    save_study(study, tmp_path / "study")
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    run = tmp_path / "run"
    res = torchrun(
        BIN / "weakseg",
        "train",
        tmp_path / "study",
        "--method",
        "seg-only",
        "--out",
        run,
        "--steps",
        "2",
        "--config",
        tmp_path / "tiny.json",
        "--val-fraction",
        "0.5",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "completed at step 2" in res.stderr
    # rank 0 alone wrote: one metrics file, one started event, each step once
    assert {p.name for p in run.iterdir()} == {"run.json", "metrics.jsonl", "last.pt", "best.pt", "train.log"}
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    started = [e for e in lines if e["event"] == "started"]
    assert len(started) == 1 and started[0]["world_size"] == 2 and started[0]["device"] == "cpu"
    assert [e["step"] for e in lines if e["event"] == "progress"] == [1, 2]
    assert [e["event"] for e in lines].count("finished") == 1 and lines[-1]["event"] == "finished"
    assert len([e for e in lines if e["event"] == "validated"]) == 1
    progress = [e for e in lines if e["event"] == "progress"]
    assert progress[0]["pairs_per_s"] > 0
    assert load_tensors(run / "last.pt")["step"] == 2
    info = json.loads((run / "run.json").read_text())
    assert info["state"]["step"] == 2
    model = TrainedModel.load(run)  # plain (non-DDP) parameter names
    assert not any(k.startswith("module.") for k in load_tensors(run / "last.pt")["model"])
    prob = model.predict_volume(case.volume.data)["prob"]
    assert prob.shape == case.mask.shape and np.isfinite(prob).all()


def test_ddp_step_equals_the_mean_loss_step(tmp_path):
    script = tmp_path / "ddp_step.py"
    script.write_text(STEP_SCRIPT.format(batch_src=textwrap.dedent(BATCH_SRC)))
    res = torchrun(script, tmp_path, json.dumps(TINY))
    assert res.returncode == 0, res.stderr[-3000:]
    ddp = torch.load(tmp_path / "rank0.pt", weights_only=True)
    losses = [json.loads((tmp_path / f"loss{r}.json").read_text()) for r in (0, 1)]
    assert abs(losses[0] - losses[1]) > 1e-4  # the ranks really saw different batches

    # the same step in one process: loss = mean of the two ranks' losses
    torch.manual_seed(0)
    method = build_method("seg-only", merge(preset("quick", 1), TINY))
    method.train()
    opt = method.make_optimizers()["main"]
    buffers = {k: b.clone() for k, b in method.named_buffers()}
    opt.zero_grad(set_to_none=True)
    l0 = method(rank_batch(0), "main")["loss"]
    with torch.no_grad():  # each rank starts its forward from the same spectral-norm power-iteration state
        for k, b in method.named_buffers():
            b.copy_(buffers[k])
    l1 = method(rank_batch(1), "main")["loss"]
    assert [l0.item(), l1.item()] == pytest.approx(losses, abs=1e-5)
    ((l0 + l1) / 2).backward()
    ref_grads = {n: p.grad for n, p in method.named_parameters() if p.grad is not None}
    for name, _ in method.named_parameters():
        g = ddp["grads"].get(name)
        if name in ref_grads:
            assert g is not None, name
            torch.testing.assert_close(g, ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)
        else:  # unused by the loss (the translation output conv): no gradient anywhere
            assert g is None or not g.any(), name
    assert len(ref_grads) > 10
    opt.step()
    state = method.state_dict()
    assert set(state) == set(ddp["model"])
    for k, v in state.items():
        torch.testing.assert_close(ddp["model"][k], v, rtol=0, atol=1e-5, msg=k)


@pytest.mark.parametrize("n_annotated", [1, 2, 5])
@pytest.mark.parametrize("mode", ["annotated", "pairs"])
def test_sampler_shards_for_every_rank(mode, n_annotated):
    """Each of 2 ranks gets batches (even from a single annotated slice), as many as the other rank,
    from its own shard of one shared permutation."""
    from napari_weakseg.data.slices import PairSampler, SliceSet

    n = 9
    presence = torch.tensor([True] * 6 + [False] * 3)
    annotated = torch.tensor([i < n_annotated for i in range(n)])
    slices = SliceSet(torch.zeros(n, 1, 4, 4), torch.zeros(n, 1, 4, 4), presence, annotated, [(0, i) for i in range(n)])
    samplers = [PairSampler(slices, 2, 1, mode, seed=3, rank=r, world=2) for r in (0, 1)]
    for _ in range(3):  # three epochs
        for s in samplers:
            s._epoch()
        queues = [list(s._queue) for s in samplers]
        assert len(queues[0]) == len(queues[1]) >= 1  # DDP collectives stay in step
        for s in samplers:
            s._queue.clear()
        for q in queues:
            for pb, ab in q:
                assert len(pb) == len(ab) == 2
                if mode == "annotated":
                    assert bool(annotated[pb].all())
                else:
                    assert bool(presence[pb].all()) and not bool(presence[ab].any())
                    assert int(annotated[pb].sum()) >= 1  # annotated_per_batch=1
    if mode == "annotated" and n_annotated == 5:  # enough rows: the ranks' shards of an epoch are disjoint
        s0, s1 = (PairSampler(slices, 2, 0, mode, seed=3, rank=r, world=2) for r in (0, 1))
        s0._epoch(), s1._epoch()
        rows = [{int(i) for pb, _ in s._queue for i in pb} for s in (s0, s1)]
        assert not rows[0] & rows[1]
