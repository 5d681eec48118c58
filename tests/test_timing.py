"""Timer logic under a fake clock (no real time is asserted anywhere), and the policy."""

from __future__ import annotations

import pytest

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
    target = Policy(sample_s=0.010).target_sample_s()
    assert target == pytest.approx(0.010)
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


def test_warmup_runs_the_fixed_count_and_blocks_sync_once():
    clock, timer = make(1e-4)
    assert timer.warmup(10, max_s=2.0) == 10
    k, _ = timer.calibrate(0.01)
    before = clock.syncs
    per_step = timer.block(k) / k
    assert per_step == pytest.approx(1e-4)  # seconds per *step*
    assert clock.syncs == before + 1  # one sync per block, never per step
    assert timer.last == clock.steps  # the last step's return value, unconverted


def test_warmup_stops_early_on_a_very_slow_step():
    clock, timer = make(1.5)
    assert timer.warmup(10, max_s=2.0) == 2  # 1.5 s, then 3 s > 2 s: stop


def test_policy_validation_and_timed():
    with pytest.raises(ValueError):
        Policy(rounds=0)
    with pytest.raises(ValueError):
        Policy(sample_s=0)
    assert Policy(sample_s=1e-9).target_sample_s(resolution=1e-6) == pytest.approx(1e-3)
    clock = FakeClock(0.25)
    out, seconds = timed(clock.step, clock=clock)
    assert (out, seconds) == (1, 0.25)
