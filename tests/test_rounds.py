"""The round walker (harness/bench/rounds.py) and the rows built from its records
(harness/bench/rows.py), driven by fake subjects and a fake clock: no real time anywhere."""

from __future__ import annotations

import random

import pytest

from harness.bench.budget import Budget
from harness.bench.rounds import Shuffled, round_values, walk
from harness.bench.rows import cell_row, speedups
from harness.measure.records import Block, Final, Key, Outcome, Ready, Sample
from harness.measure.spec import Cell, RunSettings, Series, Size
from harness.measure.timing import Policy
from harness.process import ChildError
from harness.store import CellRow

TINY = Size("tiny", 64, 2, 8)


def key(name: str) -> Key:
    return Key(name, "m", "cpu", "float32", "tiny")


class FakeWorker:
    """Times a block by moving the shared fake clock; can fail at a given round."""

    def __init__(self, name, clock, step_s, log, fail_at=None):
        self.name, self.clock, self.step_s, self.log = name, clock, step_s, log
        self.fail_at, self.blocks = fail_at, 0

    def block(self, samples, seconds):
        if self.fail_at is not None and self.blocks == self.fail_at:
            raise ChildError("timeout", "killed after 1 s of work (one block)")
        self.blocks += 1
        self.clock.now += samples * self.step_s
        self.log.append(self.name)
        return [Sample(self.step_s)] * samples

    def wait_quiet(self):
        return 0.01


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_every_worker_once_per_round_in_a_new_order_each_round():
    clock, log = Clock(), []
    workers = {key(n): FakeWorker(n, clock, 0.01, log) for n in "abcd"}
    records, failed, done = walk(workers, Shuffled(6, random.Random(0), 3), Budget(None), 60,
                                 clock=clock)
    assert done == 6 and failed == {} and len(records) == 24
    orders = [tuple(log[i:i + 4]) for i in range(0, 24, 4)]
    assert all(sorted(o) == list("abcd") for o in orders)
    assert len(set(orders)) > 1  # not the same order every round
    assert all(len(r.samples) == 3 and r.settle_s == 0.01 for r in records)
    assert [r.position for r in records[:4]] == [0, 1, 2, 3]
    assert [r.round for r in records[::4]] == list(range(6))


def test_a_failing_worker_is_dropped_and_the_rounds_go_on():
    clock, log = Clock(), []
    workers = {key("ok"): FakeWorker("ok", clock, 0.01, log),
               key("bad"): FakeWorker("bad", clock, 0.01, log, fail_at=2)}
    records, failed, done = walk(workers, Shuffled(5, random.Random(1)), Budget(None), 60,
                                 clock=clock)
    assert done == 5 and set(failed) == {key("bad")} and failed[key("bad")].status == "timeout"
    assert sum(r.key == key("bad") for r in records) == 2
    assert sum(r.key == key("ok") for r in records) == 5


def test_a_round_starts_only_if_the_wall_budget_holds_one_more(monkeypatch):
    clock, log = Clock(), []
    budget = Budget(100.0, start=0.0)
    monkeypatch.setattr(budget, "left", lambda: 100.0 - clock.now)
    workers = {key("slow"): FakeWorker("slow", clock, 10.0, log)}  # a round: 3 x 10 s
    _, _, done = walk(workers, Shuffled(10, random.Random(2), 3), budget, 60, clock=clock)
    assert done == 3  # after 3 rounds 10 s are left, fewer than the 30 s a round takes


def test_the_peak_gets_one_sample_per_round():
    clock, log = Clock(), []
    workers = {Key.peak("cpu"): FakeWorker("p", clock, 0.1, log),
               key("c"): FakeWorker("c", clock, 0.01, log)}
    records, _, _ = walk(workers, Shuffled(2, random.Random(3), 3), Budget(None), 60,
                         clock=clock)
    assert {len(r.samples) for r in records if r.key.is_peak} == {1}
    assert {len(r.samples) for r in records if r.key == key("c")} == {3}


class AbbaSchedule:
    """A schedule the walker has never seen: the baseline and one series in adjacent blocks,
    A B B A (issue 18's pairing); the walker follows whatever order a schedule gives."""

    def __init__(self, a: Key, b: Key, pairs: int):
        self.a, self.b, self.pairs = a, b, pairs

    def rounds(self, alive):
        for _ in range(self.pairs):
            yield [self.a, self.b]
            yield [self.b, self.a]

    def samples(self, k):
        return 1


def test_the_schedule_is_pluggable():
    clock, log = Clock(), []
    workers = {key("a"): FakeWorker("a", clock, 0.01, log),
               key("b"): FakeWorker("b", clock, 0.02, log)}
    records, _, done = walk(workers, AbbaSchedule(key("a"), key("b"), 2), Budget(None), 60,
                            clock=clock)
    assert "".join(log) == "abbaabba" and done == 4
    assert [len(r.samples) for r in records] == [1] * 8


def test_a_subject_may_time_several_keys_in_one_block():
    """A data-parallel launch: one start, every size in it; one Block record per key."""
    class Launch:
        def block(self, samples, seconds):
            return {key("tiny"): [Sample(1e-3, cpu_per_wall=1.0, comm_s=1e-4)] * samples,
                    key("large"): [Sample(0.2)] * samples}

        def wait_quiet(self):
            return 0.0

    launch = Key("numpy", "m", "cpu", "float32", "", "mpiexec", 2)
    records, _, _ = walk({launch: Launch()}, Shuffled(2, random.Random(4), 3), Budget(None))
    assert sorted({r.key for r in records}, key=str) == [key("large"), key("tiny")]
    assert all(len(r.samples) == 3 for r in records) and len(records) == 4
    assert records[0].samples[0].comm_s in (1e-4, None)


SETTINGS = RunSettings(threads=2, cpus=(0, 1), loss="bce", lr=0.01, seed=0,
                       activation="sigmoid", policy=Policy(), time_limit_s=60, peak_n=64,
                       peak_n_cpu=64, check=False, check_timeout_s=60, wall_budget_s=None)


def _records(k, values):
    return [Block(k, r, 0, (Sample(v), Sample(v), Sample(v)), 0.0) for r, v in enumerate(values)]


NUMPY = Cell("numpy", "default", "cpu", "float32", TINY)
TORCH = Cell("torch", "eager", "cpu", "float32", TINY)
BURST = [1, 1, 1, 3, 1, 1, 1, 1, 1, 1]  # round 3: the machine was 3x slower for both


def _values():
    kn, kt = Key.of(NUMPY), Key.of(TORCH)
    records = (_records(kn, [1e-3 * b for b in BURST]) + _records(kt, [4e-3 * b for b in BURST]))
    return records, round_values(records)


def test_speedups_are_paired_by_round_and_rows_carry_their_intervals():
    records, values = _values()
    kt = Key.of(TORCH)
    ratios = speedups([NUMPY, TORCH], records, Series("numpy", "default", "cpu"))
    assert ratios[kt].estimate == pytest.approx(0.25) and ratios[kt].high == pytest.approx(0.25)
    outcome = Outcome("ok", ready=Ready(first_call_s=0.1),
                      final=Final("ok", 0.5, info={"matmul_precision": "highest"}))
    row = cell_row(TORCH, SETTINGS, outcome, values[kt], {r: 100.0 for r in range(10)},
                   ratios[kt], [r for r in records if r.key == kt])
    assert isinstance(row, CellRow)
    assert row.status == "ok" and row.rounds == 10 and row.repeats == 30
    assert row.step_median_s == pytest.approx(4e-3) and row.final_loss == 0.5
    assert row.step_low_s <= row.step_median_s <= row.step_high_s
    assert row.speedup == pytest.approx(0.25) and row.speedup_low == pytest.approx(0.25)
    assert row.peak_fraction == pytest.approx(TINY.flops / 4e-3 / 1e9 / 100.0)
    assert row.matmul_precision == "highest" and row.first_call_s == 0.1
    failed = cell_row(TORCH, SETTINGS, Outcome("timeout", "killed after 9 s of work"))
    assert failed.status == "timeout" and failed.step_median_s is None


def test_the_baseline_is_the_runs_setting_not_numpy():
    """With torch eager as the baseline, numpy's speed-up is t_torch / t_numpy = 4."""
    records, _ = _values()
    ratios = speedups([NUMPY, TORCH], records, Series("torch", "eager", "cpu"))
    assert ratios[Key.of(NUMPY)].estimate == pytest.approx(4.0)
    assert ratios[Key.of(TORCH)].estimate == pytest.approx(1.0)
    none = speedups([NUMPY, TORCH], records, Series("jax", "jit", "cpu"))
    assert none == {}  # no baseline cell beside them: no speed-up, never a guess
