"""Timing one training step: fixed warm-up, calibrated blocks of steps, and the timing policy.

    from harness.measure.timing import Timer
    timer = Timer(step=lambda: session.step(batch), sync=session.sync)
    timer.warmup(10, max_s=2.0)
    k, _ = timer.calibrate(target_s=0.010)     # steps per sample
    per_step = timer.block(k) / k              # one sample: k steps and one sync

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

PAIRINGS = ("between", "alternate", "shuffled")


@dataclass(frozen=True)
class Policy:
    """How every cell of a run is timed: warmed up once, then one block per round.

    A block is `samples_per_block` samples; a sample is `steps_per_sample` steps (calibrated
    per cell so that it lasts at least `sample_s`) followed by one sync. In each round every
    series is timed next to its baseline (`pairing`, harness/bench/schedules.py: "between",
    the baseline between every two series; "alternate", A B then B A; "shuffled", the rounds
    of issue 17, a random order and no adjacency), the canary beside every block
    (`canary_limit`: a block whose canary reads over this times its worker's level is
    discarded; None: none is, the canary is weather only). After `rounds` rounds only the
    series whose interval is still wider than `target` (relative half-width) keep going, up
    to `max_rounds` or `rounds_s` seconds of rounds per size, whichever comes first. docs/timing.md says why.
    """

    warmup_steps: int = 10  # same fixed count for every framework (caches, allocator, JIT paths)
    sample_s: float = 0.010  # a sample lasts at least this: far above the timer's resolution
    samples_per_block: int = 3  # a block's value for a cell is the median of its samples
    rounds: int = 10  # at least; 9 or more: a distribution-free 95% interval of a median
    warmup_max_s: float = 2.0  # a very slow step ends the warm-up early
    # Data-parallel launches time a fixed number of steps per sample, by size name (their
    # workers are not calibrated); empty: calibrated to sample_s, as every cell is.
    block_steps: tuple[tuple[str, int], ...] = ()
    max_rounds: int | None = None  # adaptive rounds up to this (None: exactly `rounds`)
    target: float = 0.05  # a series stops once its 95% interval's half-width is under this
    rounds_s: float | None = None  # seconds of rounds per size at most (None: no limit)
    # Discard a block whose canary read over this x its level; None (the default): discard
    # none, the canary is recorded as weather only (docs/timing.md: it flagged most pairs
    # here, and the pairs it flagged were no noisier than the rest).
    canary_limit: float | None = None
    pairing: str = "between"  # one of PAIRINGS
    idle_threads: str = "passive"  # harness/measure/launch.py's IDLE: passive or default

    def __post_init__(self):
        if not (self.warmup_steps >= 0 and self.sample_s > 0 and self.warmup_max_s > 0):
            raise ValueError("warmup_steps >= 0, sample_s > 0 and warmup_max_s > 0 required")
        if self.samples_per_block < 1 or self.rounds < 1:
            raise ValueError("samples_per_block and rounds must be at least 1")
        if any(steps < 1 for _, steps in self.block_steps):
            raise ValueError("block_steps must be at least 1 per size")
        if self.max_rounds is not None and self.max_rounds < self.rounds:
            raise ValueError(f"max_rounds ({self.max_rounds}) must be at least rounds"
                             f" ({self.rounds})")
        if not (self.target > 0 and (self.rounds_s is None or self.rounds_s > 0)):
            raise ValueError("target > 0 and rounds_s > 0 (or None) required")
        if self.canary_limit is not None and not self.canary_limit > 1:
            raise ValueError(f"canary_limit must be over 1 (or None), got {self.canary_limit}")
        if self.idle_threads not in ("passive", "default"):
            raise ValueError(f"idle_threads {self.idle_threads!r}: passive or default")
        if self.pairing not in PAIRINGS:
            raise ValueError(f"pairing {self.pairing!r} is not one of {', '.join(PAIRINGS)}")

    @property
    def at_most(self) -> int:
        return self.max_rounds or self.rounds

    def target_sample_s(self, resolution: float = 1e-9) -> float:
        """Sample length: at least sample_s and 1000x the clock resolution."""
        return max(self.sample_s, 1000 * resolution)


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


def timed(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter):
    """(fn(), seconds it took). For one-off phases: setup, first call."""
    t0 = clock()
    out = fn()
    return out, clock() - t0
