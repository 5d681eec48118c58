"""Timer logic under a fake clock (no real time is asserted anywhere), and the statistics."""

from __future__ import annotations

import math

import pytest

from harness.measure import stats
from harness.measure.timing import Policy, Timer, timed


class FakeClock:
    """A clock that only moves when a fake step runs: step i takes durations[i] seconds."""

    def __init__(self, durations):
        self.now, self.durations, self.steps, self.syncs = 0.0, durations, 0, 0

    def __call__(self) -> float:
        return self.now

    def step(self):
        d = self.durations(self.steps) if callable(self.durations) else self.durations
        self.now += d
        self.steps += 1
        return self.steps  # stands for a device-resident loss

    def sync(self):
        self.syncs += 1


def make(durations):
    c = FakeClock(durations)
    return c, Timer(step=c.step, sync=c.sync, clock=c, resolution=1e-9)


def test_calibration_makes_each_sample_long_enough_but_not_much_longer():
    clock, timer = make(1e-4)
    policy = Policy(min_sample_s=0.010, budget_s=0.3, max_samples=15)
    target = policy.target_sample_s()
    assert target == pytest.approx(0.010)  # budget / (2 * max_samples) = 0.01
    k, t = timer.calibrate(target)
    assert k * 1e-4 >= target and t >= target
    assert k * 1e-4 <= 1.3 * target  # grown by the measured ratio, not by blind doubling


def test_calibration_with_a_step_slower_than_the_target_uses_one_step():
    clock, timer = make(0.5)
    assert timer.calibrate(0.01) == (1, 0.5)


def test_one_slow_block_does_not_fix_the_block_length_too_small():
    clock, timer = make(lambda i: 0.5 if i == 0 else 1e-4)  # a page fault on the first step
    k, t = timer.calibrate(0.01)
    assert k * 1e-4 >= 0.01 and t >= 0.01


def test_warmup_runs_the_fixed_count_then_samples_fill_to_max():
    clock, timer = make(1e-4)
    m = timer.measure(Policy(warmup_steps=10, min_sample_s=0.01, min_samples=5, max_samples=9,
                             budget_s=10.0))
    assert m.warmup_steps == 10
    assert len(m.samples) == 9  # fast steps, large budget: max_samples
    assert all(s == pytest.approx(1e-4) for s in m.samples)  # seconds per *step*
    assert m.steps_per_sample * 1e-4 >= Policy(budget_s=10.0, max_samples=9).min_sample_s
    # one sync per block, never per step: warm-up blocks + calibration blocks + samples
    assert clock.syncs < clock.steps / 10
    assert timer.last == clock.steps  # the last step's return value, unconverted


def test_budget_limits_samples_and_a_slow_cell_still_gets_the_floor():
    clock, timer = make(0.4)  # every step 0.4 s, budget 1 s
    m = timer.measure(Policy(warmup_steps=10, min_samples=5, max_samples=15, budget_s=1.0,
                             floor_samples=3))
    assert m.warmup_steps == 1  # warm-up stops once a quarter of the budget is gone
    assert m.steps_per_sample == 1
    assert len(m.samples) == 3
    assert m.elapsed_s <= 2 * 1.0 + 0.4  # never past twice the budget by more than a sample


def test_moderate_cell_stops_at_min_samples_once_over_budget():
    clock, timer = make(0.05)
    m = timer.measure(Policy(warmup_steps=2, min_sample_s=0.01, min_samples=5, max_samples=15,
                             budget_s=0.3))
    assert len(m.samples) == 5  # 5 x 0.05 s already passes the 0.3 s budget
    assert m.elapsed_s >= 0.3


def test_samples_summary_median_iqr_and_noisy():
    times = [1.0, 1.0, 1.0, 2.0] * 100  # step i takes times[i] s; one block per step
    clock, timer = make(lambda i: times[i])
    m = timer.measure(Policy(warmup_steps=0, min_sample_s=0.5, min_samples=8, max_samples=8,
                             budget_s=8.0))  # target sample 0.5 s: one step per block
    assert m.steps_per_sample == 1 and len(m.samples) == 8
    s = m.summary
    assert s.n == 8 and s.median == pytest.approx(stats.median(m.samples))
    assert s.iqr == pytest.approx(stats.iqr(m.samples))
    assert s.noisy == (s.iqr / s.median > stats.NOISY_SPREAD)


def test_summarize_known_values():
    s = stats.summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (s.median, s.iqr, s.n) == (3.0, 2.0, 5)  # percentiles 2 and 4
    assert s.noisy
    quiet = stats.summarize([1.00, 1.01, 0.99, 1.02, 1.00])
    assert not quiet.noisy and quiet.spread < 0.1
    with pytest.raises(ValueError):
        stats.summarize([])
    with pytest.raises(ValueError):
        stats.summarize([1.0, math.nan])


def test_mann_whitney_p():
    assert stats.mann_whitney_p([1.0] * 5, [1.0] * 5) == 1.0
    assert stats.mann_whitney_p([], [1.0]) == 1.0
    assert stats.mann_whitney_p([1, 2, 3, 4, 5], [10, 11, 12, 13, 14]) < 0.01
    assert stats.mann_whitney_p([1, 2, 3], [10, 11, 12]) > 0.01  # 3 a side cannot reach it


def test_policy_validation_and_timed():
    with pytest.raises(ValueError):
        Policy(min_samples=20, max_samples=10)
    with pytest.raises(ValueError):
        Policy(budget_s=0)
    clock = FakeClock(0.25)
    out, seconds = timed(clock.step, clock=clock)
    assert (out, seconds) == (1, 0.25)
