"""How fast a run goes: slice pairs/s, a steady ETA and whether the process gets the CPU it asks for."""

from __future__ import annotations

import time

STARVED = 0.6  # below this share of its threads' time on the CPU, a run is said to be starved


class Pace:
    """Call ``step(n)`` after each step. The ETA extrapolates the mean step time since the first step (the first
    one, with its allocations or compilation, would make it swing: 2 786 s, then 3 s); pairs/s is a moving
    average of the last steps; ``cpu_share`` the process's CPU time over wall time per thread, over the same
    window (well below 1 when other programs take the cores: the training process runs at lower priority)."""

    def __init__(self, total: int, pairs_per_step: int, threads: int):
        self.total, self.pairs, self.threads = total, pairs_per_step, max(threads, 1)
        self.t_start = self._last = time.perf_counter()
        self._cpu_last = time.process_time()
        self._first: tuple[int, float] | None = None  # (step, time) after the first step of this run
        self._ema = self._cpu_ema = None

    def step(self, n: int) -> tuple[float, float, float, float]:
        """(pairs/s, eta_s, elapsed_s, cpu_share) after step ``n``."""
        now, cpu = time.perf_counter(), time.process_time()
        dt, dcpu = now - self._last, cpu - self._cpu_last
        self._last, self._cpu_last = now, cpu
        self._ema = dt if self._ema is None else 0.9 * self._ema + 0.1 * dt
        share = dcpu / max(dt, 1e-9) / self.threads
        self._cpu_ema = share if self._cpu_ema is None else 0.9 * self._cpu_ema + 0.1 * share
        if self._first is None:
            self._first = (n, now)
            eta = self._ema * (self.total - n)
        else:
            s0, t0 = self._first
            eta = (now - t0) / max(n - s0, 1) * (self.total - n)
        return self.pairs / max(self._ema, 1e-9), eta, now - self.t_start, min(self._cpu_ema, 1.0)
