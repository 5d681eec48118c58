"""The interleaved scheduler (harness/bench/rounds.py) and the rows built from it
(harness/bench/rows.py), driven by fake workers and a fake clock: no real time anywhere."""

from __future__ import annotations

import random

import pytest

from harness.bench.budget import Budget
from harness.bench.rounds import Record, round_values, walk_rounds
from harness.bench.rows import cell_row, speedups
from harness.measure.pool import WorkerError
from harness.measure.spec import Cell, RunSettings, Size
from harness.measure.timing import Policy
from harness.store import CellKey

TINY = Size("tiny", 64, 2, 8)


class FakeWorker:
    """Times a block by moving the shared fake clock; can fail at a given round."""

    def __init__(self, name, clock, step_s, log, fail_at=None):
        self.name, self.clock, self.step_s, self.log = name, clock, step_s, log
        self.fail_at, self.blocks = fail_at, 0

    def block(self, samples, timeout):
        if self.fail_at is not None and self.blocks == self.fail_at:
            raise WorkerError("timeout", "killed after 1 s")
        self.blocks += 1
        self.clock.now += samples * self.step_s
        self.log.append(self.name)
        return [self.step_s] * samples

    def wait_quiet(self):
        return 0.01


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_every_worker_once_per_round_in_a_new_order_each_round():
    clock, log = Clock(), []
    workers = {n: FakeWorker(n, clock, 0.01, log) for n in "abcd"}
    records, failed, done = walk_rounds(workers, Policy(rounds=6, samples_per_block=3),
                                        random.Random(0), Budget(None), 60, clock=clock)
    assert done == 6 and failed == {} and len(records) == 24
    orders = [tuple(log[i:i + 4]) for i in range(0, 24, 4)]
    assert all(sorted(o) == list("abcd") for o in orders)
    assert len(set(orders)) > 1  # not the same order every round
    assert all(len(r.samples) == 3 and r.settle_s == 0.01 for r in records)
    assert [r.position for r in records[:4]] == [0, 1, 2, 3]


def test_a_failing_worker_is_dropped_and_the_rounds_go_on():
    clock, log = Clock(), []
    workers = {"ok": FakeWorker("ok", clock, 0.01, log),
               "bad": FakeWorker("bad", clock, 0.01, log, fail_at=2)}
    records, failed, done = walk_rounds(workers, Policy(rounds=5), random.Random(1),
                                        Budget(None), 60, clock=clock)
    assert done == 5 and set(failed) == {"bad"} and failed["bad"].status == "timeout"
    assert sum(r.key == "bad" for r in records) == 2 and sum(r.key == "ok" for r in records) == 5


def test_a_round_starts_only_if_the_wall_budget_holds_one_more(monkeypatch):
    clock, log = Clock(), []
    budget = Budget(100.0, start=0.0)
    monkeypatch.setattr(budget, "left", lambda: 100.0 - clock.now)
    workers = {"slow": FakeWorker("slow", clock, 10.0, log)}  # a round: 3 samples x 10 s
    _, _, done = walk_rounds(workers, Policy(rounds=10), random.Random(2), budget, 60,
                             clock=clock)
    assert done == 3  # after 3 rounds 10 s are left, fewer than the 30 s a round takes


def test_the_peak_gets_one_sample_per_round():
    clock, log = Clock(), []
    workers = {("peak", "cpu"): FakeWorker("p", clock, 0.1, log),
               "c": FakeWorker("c", clock, 0.01, log)}
    records, _, _ = walk_rounds(workers, Policy(rounds=2, samples_per_block=3),
                                random.Random(3), Budget(None), 60,
                                samples_of=lambda k: 1 if k == ("peak", "cpu") else None,
                                clock=clock)
    assert {len(r.samples) for r in records if r.key == ("peak", "cpu")} == {1}
    assert {len(r.samples) for r in records if r.key == "c"} == {3}


SETTINGS = RunSettings(threads=2, cpus=(0, 1), loss="bce", lr=0.01, seed=0,
                       activation="sigmoid", policy=Policy(), time_limit_s=60, peak_n=64,
                       peak_n_cpu=64, check=False, check_timeout_s=60, wall_budget_s=None)


def _records(key, values):
    return [Record(key, r, 0, (v, v, v), 0.0) for r, v in enumerate(values)]


def test_speedups_are_paired_by_round_and_rows_carry_their_intervals():
    numpy, torch = (Cell("numpy", "default", "cpu", "float32", TINY),
                    Cell("torch", "eager", "cpu", "float32", TINY))
    kn, kt = CellKey.of(numpy), CellKey.of(torch)
    burst = [1, 1, 1, 3, 1, 1, 1, 1, 1, 1]  # round 3: the machine was 3x slower for both
    records = (_records(kn, [1e-3 * b for b in burst])
               + _records(kt, [4e-3 * b for b in burst]))
    values = round_values(records)
    ratios = speedups([numpy, torch], values)
    assert ratios[kt].estimate == pytest.approx(0.25) and ratios[kt].high == pytest.approx(0.25)
    row = cell_row(torch, SETTINGS, {"status": "ready", "first_call_s": 0.1}, values[kt],
                   {r: 100.0 for r in range(10)}, ratios[kt], [r for r in records if r.key == kt])
    assert row["status"] == "ok" and row["rounds"] == 10 and row["repeats"] == 30
    assert row["step_median_s"] == pytest.approx(4e-3)
    assert row["step_low_s"] <= row["step_median_s"] <= row["step_high_s"]
    assert row["speedup"] == pytest.approx(0.25) and row["speedup_low"] == pytest.approx(0.25)
    assert row["peak_fraction"] == pytest.approx(TINY.flops / 4e-3 / 1e9 / 100.0)
    failed = cell_row(torch, SETTINGS, {"status": "timeout", "reason": "killed after 9 s"})
    assert failed["status"] == "timeout" and "step_median_s" not in failed
