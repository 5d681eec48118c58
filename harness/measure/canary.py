"""The canary: a fixed reference kernel timed in every worker just before and just after each
block, so the parent can tell a block that ran inside one of the machine's slow episodes.

    canary = Canary()                  # in the worker, after its framework is set up
    canary.calibrate(0.0005)           # calls per reading: ~0.5 ms
    before = canary.time()             # seconds per call
    ... the block ...
    after = canary.time()

The kernel is the same in every worker of every run (a tiny NumPy training step of fixed
shape, the probe that found this machine's episodes: ../shared/tools/noise_probe.py), so its
readings are comparable across the workers of a run and across runs. Its reading is never
used to rescale a block: harness/measure/weather.py only says whether a block was disturbed,
and the parent discards that block's pairs and samples another (what it discarded is
recorded). Numbers here are NumPy's alone; the framework the worker times is never called.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


class Canary:
    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        rng = np.random.default_rng(12345)
        self.X = rng.standard_normal((64, 2)).astype(np.float32)
        self.T = (rng.random((64, 1)) > 0.5).astype(np.float32)
        self.W1 = rng.standard_normal((2, 8)).astype(np.float32)
        self.W2 = rng.standard_normal((8, 1)).astype(np.float32)
        self.clock, self.calls = clock, 8

    def kernel(self) -> None:
        """One tiny forward and backward pass; the weights are not updated (a fixed amount
        of the same work every call, whatever ran before)."""
        A1 = 1 / (1 + np.exp(-(self.X @ self.W1)))
        Y = 1 / (1 + np.exp(-(A1 @ self.W2)))
        dZ2 = (Y - self.T) / 64
        dZ1 = (dZ2 @ self.W2.T) * A1 * (1 - A1)
        (self.X.T @ dZ1).sum()
        (A1.T @ dZ2).sum()

    def time(self) -> float:
        """Seconds per kernel call, over `calls` calls."""
        t0 = self.clock()
        for _ in range(self.calls):
            self.kernel()
        return (self.clock() - t0) / self.calls

    def calibrate(self, target_s: float) -> float:
        """Fix the calls per reading so that a reading lasts about `target_s`; the median of
        five readings at that length (the worker's canary level when it got ready)."""
        for _ in range(20):  # warm: NumPy's first calls allocate
            self.kernel()
        per_call = min(self.time() for _ in range(3))
        self.calls = max(1, round(target_s / max(per_call, 1e-9)))
        return float(np.median([self.time() for _ in range(5)]))
