"""How a training step runs fast without changing what it computes: mixed precision, compilation, threads.

``--precision {auto,fp32,bf16,fp16}``: bf16 autocast where the hardware has bf16 units (CPUs with AVX512-BF16 or
AMX, detected from the CPU's flags, never assumed; CUDA devices that support it), fp16 with a gradient scaler on
CUDA devices without bf16. ``--compile {auto,on,off}``: ``torch.compile`` (inductor) of the method's training
step; where it cannot compile (no C compiler, an unsupported device) the run goes on eagerly with a one-line note.
``auto`` is what the speed suite measured to be faster and numerically safe (``weakseg bench speed``,
docs/benchmarks.md); run.json records what a run used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..log import LOGGER
from .step_options import COMPILE_MODES, PRECISIONS

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def has_bf16_units(device: torch.device) -> bool:
    """Native bf16 arithmetic: AVX512-BF16 or AMX-BF16 on a CPU, ``is_bf16_supported`` on CUDA."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    return False


def resolve_precision(name: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for ``name`` on ``device``; a precision the device cannot run is an InputError.
    ``auto``: bf16 where the device has bf16 units (on a 2-core AMD EPYC with AVX512-BF16: 1.13-1.31x the
    slice pairs/s of fp32 for genseg, seg-only, cyclegan-ssl and pseudo-label, genseg's Dice on the phantom the
    same per seed within 0.016; an Intel CPU with AMX: +16 % for genseg; docs/benchmarks.md), else fp32 on a CPU
    and fp16 on CUDA."""
    if name not in PRECISIONS:
        raise InputError(f"--precision {name!r}: use one of {', '.join(PRECISIONS)}")
    if name == "auto":
        if has_bf16_units(device):
            return "bf16"
        return "fp16" if device.type == "cuda" else "fp32"
    if name == "bf16" and not has_bf16_units(device):
        raise InputError(f"--precision bf16: {device.type} here has no bf16 units; use fp32 (or auto)")
    if name == "fp16" and device.type != "cuda":
        raise InputError("--precision fp16 needs a CUDA device (on a CPU use bf16 where it has bf16 units, or fp32)")
    return name


def autocast(precision: str, device: torch.device):
    """The autocast context of a forward pass (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


class Scalers:
    """Gradient scaling per optimiser for fp16 (one scaler per phase); plain backward and step otherwise."""

    def __init__(self, precision: str, phases):
        self.enabled = precision == "fp16"
        self._scalers = {p: torch.amp.GradScaler("cuda") for p in phases} if self.enabled else {}

    def backward_and_step(self, phase: str, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        if not self.enabled:
            loss.backward()
            optimizer.step()
            return
        scaler = self._scalers[phase]
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()


@dataclass
class CompileDecision:
    compile: bool
    note: str = ""  # why not, when asked for and refused


def compiler_available() -> bool:
    """Inductor's CPU code needs a C++ compiler."""
    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "c++", "clang++") if c)


def decide_compile(mode: str, device: torch.device) -> CompileDecision:
    """Whether to compile the step. ``auto``: off (the speed suite measures when compiling pays: its compile
    time against the step time saved, docs/benchmarks.md); ``on``: compile where possible, else eager with a note."""
    if mode not in COMPILE_MODES:
        raise InputError(f"--compile {mode!r}: use one of {', '.join(COMPILE_MODES)}")
    if mode in ("off", "auto"):
        return CompileDecision(False)
    if device.type not in ("cpu", "cuda"):
        return CompileDecision(False, f"compile: not supported on {device.type}; training eagerly")
    if device.type == "cpu" and not compiler_available():
        return CompileDecision(False, "compile: no C++ compiler found (install g++); training eagerly")
    return CompileDecision(True)


def compile_cache_dir(root: str | None = None) -> str:
    """Where inductor keeps its compiled kernels between runs: ``$WEAKSEG_HOME/compile-cache`` (default
    ``~/.napari-weakseg``, beside the autosaved studies), so a second run of the same network starts warm."""
    base = root or os.environ.get("WEAKSEG_HOME") or os.path.join(os.path.expanduser("~"), ".napari-weakseg")
    path = os.path.join(base, "compile-cache")
    os.makedirs(path, exist_ok=True)
    return path


def idle_cores(sample_s: float = 0.25) -> float:
    """Cores idle right now, from two readings of ``/proc/stat`` ``sample_s`` apart (the CPUs this process may
    use; where unknown: all of them)."""
    import time

    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def read():
        with open("/proc/stat") as fh:
            fields = [float(v) for v in fh.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    try:
        idle0, total0 = read()
        time.sleep(sample_s)
        idle1, total1 = read()
    except (OSError, ValueError, IndexError):
        return float(n)
    share = (idle1 - idle0) / max(total1 - total0, 1e-9)  # of every CPU of the machine
    return min(float(n), share * (os.cpu_count() or n))


def choose_threads(requested: int = 0) -> int:
    """Intra-op threads: ``requested`` when > 0, else ``OMP_NUM_THREADS`` when set, else the cores really free
    now (at least 1). More threads than
    free cores oversubscribe them: on the 2-core machine with another process busy, 20 steps took 23-59 s on 2
    threads against 0.6-0.9 s on 1."""
    if requested > 0:
        return requested
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]) > 0:
        return int(os.environ["OMP_NUM_THREADS"])  # the user's (or a scheduler's) choice
    return max(1, int(idle_cores() + 0.25))


class StepRunner:
    """One phase of a training step: forward (autocast, compiled or eager) inside ``parametrize.cached()``,
    backward and the optimiser step (gradient-scaled for fp16). ``model`` is the method (or its DDP wrapper)."""

    def __init__(self, model, phases, precision: str, device: torch.device, compile_model: bool, trial=None):
        """``trial(batch) -> note``: tried before compiling, on the first batch ('' to compile;
        ``compile_trial``): a compiled step that kills its process cannot be caught in this one."""
        self.model, self.precision, self.device = model, precision, device
        self.scalers = Scalers(precision, phases)
        self.compiled = None
        self._to_compile, self._trial = compile_model, trial
        self.note = ""  # set when compilation failed (or its trial did) and the run went on eagerly

    @property
    def compiling(self) -> bool:
        """Compiled, or still to be (not fallen back to eager)."""
        return self.compiled is not None or self._to_compile

    def _forward(self, batch: dict, phase: str) -> dict:
        if self._to_compile:
            self._to_compile = False
            self.note = self._trial(batch) if self._trial is not None else ""
            self.compiled = None if self.note else torch.compile(self.model)
            if self.note:
                LOGGER.warning(self.note)
        if self.compiled is None:
            return self.model(batch, phase)
        try:
            return self.compiled(batch, phase)
        except Exception as exc:  # the compiler failed (not the model: eager runs it below, and raises if it is the model)
            self.compiled = None
            self.note = f"compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}); training eagerly"
            LOGGER.warning(self.note)
            return self.model(batch, phase)

    def phase(self, phase: str, batch: dict, optimizer: torch.optim.Optimizer) -> dict:
        from torch.nn.utils import parametrize

        optimizer.zero_grad(set_to_none=True)
        with parametrize.cached(), autocast(self.precision, self.device):  # each spectral norm once per phase
            out = self._forward(batch, phase)
        self.scalers.backward_and_step(phase, out["loss"].float(), optimizer)
        return out
