"""Fast training steps that compute the same thing: the graph-break-free segmentation loss, precision and
thread choices, and the numerics of bf16 autocast for every method (real training steps, tiny networks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_training import TINY, phantom_study

from napari_weakseg.errors import InputError
from napari_weakseg.losses.segmentation import dice_loss
from napari_weakseg.methods import METHODS, build_method, method_preset
from napari_weakseg.training import compile_trial as compile_trial_module
from napari_weakseg.training import step_speed
from napari_weakseg.training.compile_trial import run_child
from napari_weakseg.training.step_speed import choose_threads, decide_compile, has_bf16_units, resolve_precision
from napari_weakseg.training.trainer import TrainConfig, Trainer

CPU = torch.device("cpu")


def _indexed_segmentation_loss(logits, batch, absence_logits=None):
    """The loss as it was written before (boolean indexing, a host sync): the reference the new one must equal."""
    annotated = batch["L"]
    if not bool(annotated.any()):
        return logits.sum() * 0.0
    logits, target = logits[annotated], batch["M"][annotated]
    if absence_logits is not None:
        absence_logits = absence_logits[: len(logits)]
        logits, target = torch.cat([logits, absence_logits]), torch.cat([target, torch.zeros_like(absence_logits)])
    return dice_loss(torch.sigmoid(logits), target)


@pytest.mark.parametrize("annotated", [[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 1]])
@pytest.mark.parametrize("n_absence", [None, 2, 4, 6])
def test_the_weighted_segmentation_loss_equals_the_indexed_one(annotated, n_absence):
    method = build_method("seg-only", method_preset("seg-only", "quick"))
    g = torch.Generator().manual_seed(sum(annotated) + (n_absence or 0))
    logits = torch.randn(4, 1, 8, 8, generator=g, requires_grad=True)
    absence = None if n_absence is None else torch.randn(n_absence, 1, 8, 8, generator=g, requires_grad=True)
    batch = {"L": torch.tensor(annotated, dtype=torch.bool), "M": (torch.rand(4, 1, 8, 8, generator=g) > 0.6).float()}
    new = method.segmentation_loss(logits, batch, absence)
    old = _indexed_segmentation_loss(logits, batch, absence)
    assert float(new.detach()) == pytest.approx(float(old.detach()), abs=1e-6)
    inputs = [t for t in (logits, absence) if t is not None]
    grads = [torch.autograd.grad(loss, inputs, allow_unused=True) for loss in (new, old)]
    for a, b, x in zip(*grads, inputs, strict=True):
        a, b = (torch.zeros_like(x) if g is None else g for g in (a, b))  # unused: no gradient, i.e. zero
        assert torch.allclose(a, b, atol=1e-7)


def test_precision_choices(monkeypatch):
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("auto", CPU) == ("bf16" if has_bf16_units(CPU) else "fp32")  # bf16 where it has the units
    with pytest.raises(InputError, match="needs a CUDA device"):
        resolve_precision("fp16", CPU)
    with pytest.raises(InputError, match="use one of"):
        resolve_precision("half", CPU)
    monkeypatch.setattr(step_speed, "cpu_flags", lambda: {"avx512f"})  # a CPU without bf16 units
    assert not has_bf16_units(CPU) and resolve_precision("auto", CPU) == "fp32"
    with pytest.raises(InputError, match="no bf16 units"):
        resolve_precision("bf16", CPU)
    monkeypatch.setattr(step_speed, "cpu_flags", lambda: {"avx512f", "amx_bf16"})
    assert resolve_precision("bf16", CPU) == "bf16" and resolve_precision("auto", CPU) == "bf16"
    monkeypatch.setattr(step_speed, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert resolve_precision("auto", CPU) == "bf16"


def test_compile_decisions_and_thread_choice(monkeypatch):
    assert not decide_compile("auto", CPU).compile and not decide_compile("off", CPU).compile
    monkeypatch.setattr(step_speed, "compiler_available", lambda: False)
    refused = decide_compile("on", CPU)
    assert not refused.compile and "no C++ compiler" in refused.note
    assert "not supported on mps" in decide_compile("on", torch.device("mps")).note
    with pytest.raises(InputError, match="use one of"):
        decide_compile("yes", CPU)
    assert choose_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert choose_threads(0) == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(step_speed, "idle_cores", lambda: 0.1)  # every core busy: still one thread
    assert choose_threads(0) == 1
    monkeypatch.setattr(step_speed, "idle_cores", lambda: 1.9)
    assert choose_threads(0) == 2


BF16_STEPS = 4
BF16_TOLERANCE = 0.1  # relative, on every loss term of every step (bf16 keeps 8 bits of mantissa)


def _losses(tmp_path, method, precision, study, compile="auto"):
    """The progress events' losses and run.json's runtime of a BF16_STEPS run (one thread)."""
    cfg = TrainConfig(
        method=method, steps=BF16_STEPS, device="cpu", val_fraction=0.0, overrides=TINY, precision=precision, threads=1, compile=compile
    )
    run = tmp_path / f"{method}-{precision}-{compile}"
    Trainer(study, run, cfg).run()
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    info = json.loads((run / "run.json").read_text())
    return [e["losses"] for e in lines if e["event"] == "progress"], info["runtime"]


@pytest.mark.skipif(not has_bf16_units(CPU), reason="this CPU has no bf16 units (AVX512-BF16 / AMX): bf16 autocast is refused here")
@pytest.mark.parametrize("method", list(METHODS))
def test_bf16_autocast_gives_the_fp32_losses_on_the_same_batches(tmp_path, method):
    study, _ = phantom_study()
    ref, ref_runtime = _losses(tmp_path, method, "fp32", study)
    got, runtime = _losses(tmp_path, method, "bf16", study)
    assert ref_runtime["precision"] == "fp32" and runtime["precision"] == "bf16" and runtime["threads"] == 1
    assert len(ref) == len(got) == BF16_STEPS
    for a, b in zip(ref, got, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert np.isfinite(b[k]), (k, b[k])
            assert b[k] == pytest.approx(a[k], rel=BF16_TOLERANCE, abs=0.02), (method, k)


def test_a_step_that_fails_to_compile_trains_eagerly_with_a_note(tmp_path, monkeypatch):
    def broken_compile(model, **kw):
        def run(*a, **k):
            raise RuntimeError("inductor: no backend for this op\nmore detail")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setattr(step_speed, "compiler_available", lambda: True)
    monkeypatch.setattr(compile_trial_module, "run_child", lambda args, log, should_stop: "")  # the trial passed (also on a CPU
    # where the real one dies): this test is about an exception from the in-process compile
    study, _ = phantom_study()
    ref, _ = _losses(tmp_path, "seg-only", "fp32", study)
    got, runtime = _losses(tmp_path, "seg-only", "fp32", study, compile="on")
    assert runtime["note"] == "compile failed (RuntimeError: inductor: no backend for this op); training eagerly"
    assert got == ref  # the same steps, eagerly


def test_a_trial_process_reports_how_it_ended(tmp_path):
    log = tmp_path / "trial.log"
    assert run_child(["-c", "print('hello')"], log) == ""
    assert log.read_text() == "hello\n"  # the child's output goes to the log
    assert run_child(["-c", "import os; os.abort()"], log) == "died of SIGABRT"  # as inductor's kernel on an AMD EPYC
    assert run_child(["-c", "raise SystemExit(3)"], log) == "exited with code 3"
    assert run_child(["-c", "import time; time.sleep(60)"], log, should_stop=lambda: True) == "was stopped"

    # a trial whose parent dies (the dock killed its training process) ends too: here the parent is a Python
    # process that starts the trial-like child, passes on its pid and exits
    trial = f"import sys; sys.path[:0] = {sys.path!r}; from napari_weakseg.training.compile_trial import exit_with_parent; "
    trial += "import os, time; exit_with_parent(os.getppid(), 0.05); print(os.getpid(), flush=True); time.sleep(60)"
    parent = f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {trial!r}], stdout=subprocess.PIPE); "
    parent += "print(p.stdout.readline().decode().strip(), flush=True)"
    pid = int(subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=120).stdout.split()[0])

    def running() -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except OSError:
            return False

    deadline = time.time() + 20
    while running() and time.time() < deadline:
        time.sleep(0.1)
    assert not running()


def test_a_compiled_step_that_kills_its_trial_process_trains_eagerly_with_a_note(tmp_path, monkeypatch):
    """The trial's verdict decides: its job is written as for the real trial, and the child (a real process)
    aborts as the compiled kernel did on an AMD EPYC; the run must neither die nor compile in-process, and
    trains the eager steps."""
    real_run_child = compile_trial_module.run_child

    def aborting_child(args, log, should_stop):
        folder = Path(args[-2])
        assert (folder / "job.pt").is_file() and (folder / "job.json").is_file() and args[-1] == str(os.getpid())
        return real_run_child(["-c", "import os; os.abort()"], log, should_stop)

    monkeypatch.setattr(compile_trial_module, "run_child", aborting_child)
    monkeypatch.setattr(step_speed, "compiler_available", lambda: True)
    monkeypatch.setattr(torch, "compile", lambda *a, **k: pytest.fail("compiled in-process after a failed trial"))
    study, _ = phantom_study()
    ref, _ = _losses(tmp_path, "seg-only", "fp32", study)
    got, runtime = _losses(tmp_path, "seg-only", "fp32", study, compile="on")
    assert runtime["note"] == (
        "compile: a trial compiled step died of SIGABRT in a separate process (its output: compile-trial.log); training eagerly"
    )
    run = tmp_path / "seg-only-fp32-on"
    assert not runtime["compile"] and (run / "compile-trial.log").is_file()
    assert not (run / "compile-trial").exists()  # the job's files go; the log stays
    finished = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert finished["event"] == "finished" and finished["note"] == runtime["note"]  # the dock shows it at the end
    assert got == ref  # the same steps, eagerly


@pytest.mark.skipif(not step_speed.compiler_available(), reason="no C++ compiler: inductor cannot compile on this CPU")
def test_a_compiled_step_computes_what_the_eager_one_does(tmp_path):
    """Where the trial survives (Intel Xeon), the compiled steps match the eager ones; where the compiled kernel
    kills its process (AMD EPYC, torch 2.13), the run survives and trains the eager steps with the note."""
    study, _ = phantom_study()
    ref, _ = _losses(tmp_path, "seg-only", "fp32", study)
    got, runtime = _losses(tmp_path, "seg-only", "fp32", study, compile="on")
    if not runtime["compile"]:
        assert runtime["note"].startswith("compile: a trial compiled step died of SIG"), runtime["note"]
        assert got == ref
        return
    assert runtime["note"] == "" and not (tmp_path / "seg-only-fp32-on" / "compile-trial.log").exists()
    assert got[0] == pytest.approx(ref[0], rel=1e-5, abs=1e-6)  # the same first step (fused kernels round a little apart)
    for a, b in zip(ref[1:], got[1:], strict=True):  # Adam's updates carry those roundings into later steps
        assert b == pytest.approx(a, rel=2e-2, abs=1e-3)


def test_the_eta_leaves_out_the_first_step_and_the_cpu_share_is_measured(monkeypatch):
    """A slow first step (allocations, a compiler) must not make the ETA swing; a process that waits for the
    CPU shows a low share."""
    from napari_weakseg.training import pace as pace_module

    clock = {"wall": 0.0, "cpu": 0.0}
    monkeypatch.setattr(pace_module.time, "perf_counter", lambda: clock["wall"])
    monkeypatch.setattr(pace_module.time, "process_time", lambda: clock["cpu"])
    pace = pace_module.Pace(total=101, pairs_per_step=8, threads=2)
    clock["wall"], clock["cpu"] = 30.0, 60.0  # the first step: 30 s, both threads busy
    assert pace.step(1)[3] == pytest.approx(1.0)
    for n in range(2, 12):  # then 1 s a step, with a quarter of the threads' time
        clock["wall"] += 1.0
        clock["cpu"] += 0.5
        pairs, eta, elapsed, share = pace.step(n)
    assert eta == pytest.approx(90.0) and elapsed == pytest.approx(40.0)  # 90 steps left at 1 s, not at 30 s
    assert pairs < 8.0 and share < 0.6


def test_cudnn_chooses_its_fastest_algorithms_unless_the_run_is_deterministic():
    from napari_weakseg.training.run_setup import seed_everything

    try:
        seed_everything(0, deterministic=False)
        assert torch.backends.cudnn.benchmark  # the shapes repeat every step: cuDNN's timed choice pays on a GPU
        seed_everything(0, deterministic=True)
        assert not torch.backends.cudnn.benchmark and torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = False
