"""Timing one training step: fixed warm-up, calibrated blocks of steps, several samples.

    from harness.measure.timing import Policy, Timer
    timer = Timer(step=lambda: session.step(batch), sync=session.sync)
    m = timer.measure(Policy(budget_s=1.5))   # Measurement: raw samples + summary
    m.summary.median                           # seconds per step

The clock is injectable (`Timer(..., clock=fake)`) so tests drive the logic
with a fake clock and assert nothing about real time. The harness never calls
a framework: it waits for the device only through the `sync` it is given, once
per block of steps (never per step), so asynchronous frameworks (JAX, CUDA)
are measured honestly without a sync dominating small steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.measure import stats


@dataclass(frozen=True)
class Policy:
    """How one cell is timed. Defaults suit a ~1-2 s budget on a CPU."""

    warmup_steps: int = 10  # same fixed count for every framework (caches, allocator, JIT paths)
    min_sample_s: float = 0.010  # a sample is at least this long: far above timer resolution
    min_samples: int = 5  # 5 a side is the least for Mann-Whitney to reach p < 0.01 in `compare`
    max_samples: int = 15  # enough for a stable median and IQR; more buys little
    budget_s: float = 1.5  # warm-up + calibration + samples aim to fit in this
    floor_samples: int = 3  # even a very slow cell gets 3 samples (median, IQR defined)

    def __post_init__(self):
        if not (self.warmup_steps >= 0 and self.min_sample_s > 0 and self.budget_s > 0):
            raise ValueError("warmup_steps >= 0, min_sample_s > 0 and budget_s > 0 required")
        if not 1 <= self.floor_samples <= self.min_samples <= self.max_samples:
            raise ValueError("need 1 <= floor_samples <= min_samples <= max_samples")

    def target_sample_s(self, resolution: float = 1e-9) -> float:
        """Sample length: >= min_sample_s and 1000x the clock resolution; longer when the
        budget allows (half the budget over max_samples), since longer blocks average
        out scheduler noise within a sample."""
        return max(self.min_sample_s, 1000 * resolution, self.budget_s / (2 * self.max_samples))


@dataclass(frozen=True)
class Measurement:
    warmup_steps: int  # steps actually run as warm-up (fewer than asked if a step is very slow)
    steps_per_sample: int  # calibrated block length
    samples: tuple[float, ...]  # seconds per step, one value per block, in order
    elapsed_s: float  # warm-up + calibration + samples, by the same clock

    @property
    def summary(self) -> stats.Summary:
        return stats.summarize(self.samples)


class Timer:
    """Times `step()` in blocks of k calls followed by one `sync()`.

    `step` does one update and returns whatever the framework returns (kept in
    `last`, not converted, so no hidden sync). `sync` blocks until queued
    device work is done.
    """

    def __init__(self, step: Callable[[], object], sync: Callable[[], None],
                 clock: Callable[[], float] = time.perf_counter, resolution: float | None = None):
        self.step, self.sync, self.clock = step, sync, clock
        if resolution is None:  # a fake clock is exact
            real = clock is time.perf_counter
            resolution = time.get_clock_info("perf_counter").resolution if real else 1e-9
        self.resolution = resolution
        self.last: object = None
        self.steps_run = 0

    def block(self, k: int) -> float:
        """Seconds for k steps, ending with a sync (the previous block already synced)."""
        t0 = self.clock()
        for _ in range(k):
            self.last = self.step()
        self.sync()
        self.steps_run += k
        return self.clock() - t0

    def warmup(self, n: int, max_s: float) -> int:
        """Run up to n steps (stopping early once max_s has passed); return how many ran."""
        done, spent = 0, 0.0
        while done < n and (done == 0 or spent < max_s):
            spent += self.block(1)
            done += 1
        return done

    def calibrate(self, target_s: float, max_steps: int = 1 << 24) -> tuple[int, float]:
        """Smallest block length k (grown at most 10x per try) whose block lasts >= target_s.

        A block that reaches the target is timed once more before k is accepted: one
        slow block (a page fault, a neighbour's burst) must not fix k too small, which
        would leave every sample shorter than the target. Returns (k, seconds of the
        last block). The calibration blocks double as warm-up.
        """
        k, t = 1, self.block(1)
        while k < max_steps:
            if t >= target_s:
                t = self.block(k)  # confirm
                if t >= target_s / 2:
                    break
            grow = 10.0 if t <= 0 else min(10.0, 1.2 * target_s / t)
            k = min(max_steps, max(k + 1, math.ceil(k * grow)))
            t = self.block(k)
        return k, t

    def measure(self, policy: Policy = Policy()) -> Measurement:
        """Warm up, calibrate, then sample until max_samples or the budget is spent."""
        start = self.clock()
        warm = self.warmup(policy.warmup_steps, max_s=policy.budget_s / 4)
        k, t = self.calibrate(policy.target_sample_s(self.resolution))
        samples: list[float] = []
        per_sample = t  # estimate of one sample's length, refreshed as we go
        while len(samples) < policy.max_samples:
            n = len(samples)
            projected = (self.clock() - start) + per_sample
            if n >= policy.min_samples and projected > policy.budget_s:
                break
            # A slow cell (one sample ~ the budget) stops at floor_samples, and may run
            # to twice its budget rather than report a median of one.
            if n >= policy.floor_samples and projected > 2 * policy.budget_s:
                break
            per_sample = self.block(k)
            samples.append(per_sample / k)
        return Measurement(warmup_steps=warm, steps_per_sample=k, samples=tuple(samples),
                           elapsed_s=self.clock() - start)


def timed(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter):
    """(fn(), seconds it took). For one-off phases: setup, first call."""
    t0 = clock()
    out = fn()
    return out, clock() - t0
