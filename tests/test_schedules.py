"""Paired, adaptive rounds (harness/bench/schedules.py, engine.py, pairs.py) and the canary's
verdicts (harness/measure/weather.py), driven by fake workers on a fake clock: the machine's
slow episodes are planted, and nothing here reads real time."""

from __future__ import annotations

import math
import random

import pytest

from harness.bench.budget import Budget
from harness.bench.engine import time_rounds
from harness.bench.pairs import Pair, half_width, pairs, precision
from harness.bench.rounds import walk
from harness.bench.schedules import Paired
from harness.measure import stats, weather
from harness.measure.records import Block, Key, Sample, Timed
from harness.measure.timing import Policy


def key(name: str, side: str = "") -> Key:
    return Key(name, "m", "cpu", "float32", "tiny", side=side)


B, S1, S2, S3 = key("base"), key("s1"), key("s2"), key("s3")


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


class Machine:
    """A fake machine: slow episodes at planted times make every block and canary read
    `factor` x slower while they last."""

    def __init__(self, clock, episodes=(), factor=1.6):
        self.clock, self.episodes, self.factor = clock, episodes, factor

    def speed(self) -> float:
        return self.factor if any(a <= self.clock.now < b for a, b in self.episodes) else 1.0


class Fake:
    """A worker: `step_s` a step (times the machine's slowness), a canary beside each block."""

    def __init__(self, name, machine, step_s, log, noise=None):
        self.name, self.machine, self.step_s, self.log = name, machine, step_s, log
        self.noise = noise or (lambda: 1.0)

    def block(self, samples, seconds):
        canary0 = 50e-6 * self.machine.speed()
        t = self.step_s * self.machine.speed() * self.noise()
        self.machine.clock.now += 0.002 + samples * t
        self.log.append(self.name)
        return Timed(tuple(Sample(t) for _ in range(samples)),
                     (canary0, 50e-6 * self.machine.speed()))

    def wait_quiet(self):
        self.machine.clock.now += 0.001
        return 0.001


def subjects(machine, log, **steps):
    return {key(n): Fake(n, machine, s, log) for n, s in steps.items()}


def test_between_puts_the_baseline_next_to_every_member_in_a_new_order_each_round():
    log, clock = [], Clock()
    subj = subjects(Machine(clock), log, base=1e-3, s1=2e-3, s2=3e-3, s3=4e-3)
    sched = Paired({B: [S1, S2, S3]}, 4, 4, random.Random(0))
    records, _, done = walk(subj, sched, Budget(None), clock=clock)
    assert done == 4
    rounds = [log[i:i + 7] for i in range(0, 28, 7)]
    for r in rounds:
        assert r[0::2] == ["base"] * 4 and sorted(r[1::2]) == ["s1", "s2", "s3"]
    assert len({tuple(r) for r in rounds}) > 1
    for b in records:
        if b.key != B:  # a baseline block right before and right after it
            beside = {(x.round, x.position) for x in records if x.key == B}
            assert {(b.round, b.position - 1), (b.round, b.position + 1)} <= beside


def test_alternate_is_a_b_then_b_a():
    log, clock = [], Clock()
    a, b = key("x", "A"), key("x", "B")
    subj = {a: Fake("A", Machine(clock), 1e-3, log), b: Fake("B", Machine(clock), 1e-3, log)}
    walk(subj, Paired({a: [b]}, 4, 4, random.Random(1), between=False), Budget(None),
         clock=clock)
    assert "".join(log) == "ABBAABBA"


def test_the_peak_runs_first_once_a_round_and_a_lone_baseline_still_gets_its_rounds():
    log, clock = [], Clock()
    subj = subjects(Machine(clock), log, base=1e-3)
    subj[Key.peak("cpu")] = Fake("peak", Machine(clock), 1e-2, log)
    walk(subj, Paired({B: []}, 3, 10, random.Random(2), extras=(Key.peak("cpu"),)),
         Budget(None), clock=clock)
    assert log == ["peak", "base"] * 3


def test_pairs_take_the_neighbours_geometric_mean_and_skip_discarded_blocks():
    recs = [Block(B, 0, 0, (Sample(1.0),)), Block(S1, 0, 1, (Sample(2.0),)),
            Block(B, 0, 2, (Sample(4.0),)), Block(S2, 0, 3, (Sample(8.0),)),
            Block(B, 0, 4, (Sample(16.0),))]
    found = pairs(recs, lambda k: None if k == B else B)
    assert found[S1] == [Pair(0, pytest.approx(2.0), 2.0)]
    assert found[S2] == [Pair(0, pytest.approx(8.0), 8.0)]
    flags = {id(recs[2]): True}  # the middle baseline block ran in an episode
    found = pairs(recs, lambda k: None if k == B else B, flags)
    assert found[S1] == [Pair(0, pytest.approx(1.0), 2.0)]
    assert found[S2] == [Pair(0, pytest.approx(16.0), 8.0)]
    flags = {id(recs[1]): True}  # the member's own block: no pair at all
    assert S1 not in pairs(recs, lambda k: None if k == B else B, flags)


def test_a_shuffled_round_pairs_with_the_nearest_baseline_block():
    recs = [Block(S1, 0, 0, (Sample(2.0),)), Block(S2, 0, 1, (Sample(3.0),)),
            Block(B, 0, 2, (Sample(1.0),))]
    found = pairs(recs, lambda k: None if k == B else B)
    assert found[S1] == [Pair(0, 1.0, 2.0)] and found[S2] == [Pair(0, 1.0, 3.0)]


def test_the_canary_marks_blocks_of_a_planted_episode_and_the_weather_counts_it():
    clock = Clock()
    machine = Machine(clock, episodes=[(0.10, 0.25)])
    log: list = []
    subj = subjects(machine, log, base=1e-3, s1=2e-3)
    w = time_rounds(subj, {B: [S1]}, Policy(rounds=12, samples_per_block=2, canary_limit=1.3),
                    Budget(None), None, 0, clock=clock)
    slow = [b for b in w.records if b.seconds[0] > 1.5 * (1e-3 if b.key == B else 2e-3)]
    assert slow and all(w.flags[id(b)] for b in slow)  # every block of the episode caught
    # ... and no other, but the one the episode began right after (its canary after it)
    assert all(b.canary[1] > 60e-6 for b in w.records if w.flags[id(b)] and b not in slow)
    assert w.weather["episodes"] == 1
    assert w.weather["discarded"] == sum(w.flags.values()) <= len(slow) + 1
    assert 0.10 <= w.weather["episode_longest_s"] <= 0.25 + 0.05
    assert w.weather["discarded_share"] == pytest.approx(sum(w.flags.values()) / len(w.records))
    # The speed-up rests on the kept pairs only: exactly 2 (base 1 ms / s1 2 ms is 0.5).
    assert all(b.seconds[0] == pytest.approx(1e-3 if b.key == B else 2e-3) for b in w.kept)


def test_without_a_canary_limit_the_episode_is_weather_and_nothing_is_discarded():
    clock = Clock()
    subj = subjects(Machine(clock, episodes=[(0.10, 0.25)]), [], base=1e-3, s1=2e-3)
    w = time_rounds(subj, {B: [S1]}, Policy(rounds=12, samples_per_block=2), Budget(None),
                    None, 0, clock=clock)
    assert Policy().canary_limit is None and not any(w.flags.values())
    assert len(w.kept) == len(w.records) and w.weather["discarded"] == 0
    assert w.weather["slow"] > 0 and w.weather["episodes"] == 1  # seen, said, not dropped


def test_no_canary_limit_discards_nothing():
    clock = Clock()
    subj = subjects(Machine(clock, episodes=[(0.0, 1e9)]), [], base=1e-3, s1=2e-3)
    w = time_rounds(subj, {B: [S1]}, Policy(rounds=6, canary_limit=None), Budget(None), None,
                    0, clock=clock)
    assert not any(w.flags.values()) and w.weather["discarded"] == 0


def test_adaptive_rounds_spend_the_budget_where_the_variance_is():
    """s1 is steady, s2 is noisy: after the first rounds only s2 keeps being timed, until its
    interval is narrow enough or the round limit; the report names who missed the target."""
    clock, log = Clock(), []
    machine = Machine(clock)
    rng = random.Random(3)
    subj = {B: Fake("base", machine, 1e-3, log), S1: Fake("s1", machine, 2e-3, log),
            S2: Fake("s2", machine, 3e-3, log, noise=lambda: rng.choice([0.7, 1.0, 1.4]))}
    policy = Policy(rounds=8, max_rounds=30, target=0.05, samples_per_block=1)
    w = time_rounds(subj, {B: [S1, S2]}, policy, Budget(None), None, 0, clock=clock)
    assert log.count("s1") == 8  # precise after the first rounds: left alone
    assert log.count("s2") == w.rounds == 30  # never precise enough: every round
    assert w.precision[S1] == 0.0 and w.precision[S2] > 0.05
    assert w.below_target(0.05) == [S2]


def test_adaptive_rounds_stop_when_every_member_is_precise():
    clock, log = Clock(), []
    subj = subjects(Machine(clock), log, base=1e-3, s1=2e-3)
    w = time_rounds(subj, {B: [S1]}, Policy(rounds=8, max_rounds=50), Budget(None), None, 0,
                    clock=clock)
    assert w.rounds == 8 and w.below_target(0.05) == []


def test_the_rounds_stop_at_their_time_allowance():
    clock, log = Clock(), []
    subj = subjects(Machine(clock), log, base=0.1, s1=0.1)  # a round: 3 blocks, ~0.31 s
    rng = random.Random(4)
    subj[S1].noise = lambda: rng.choice([0.5, 1.0, 2.0])
    w = time_rounds(subj, {B: [S1]}, Policy(rounds=6, max_rounds=100, rounds_s=8.0),
                    Budget(None), None, 0, clock=clock)
    assert 6 <= w.rounds < 100 and clock.now < 8.0 + 0.5
    assert w.below_target(0.05) == [S1]  # said, not hidden


def test_precision_without_a_baseline_is_the_step_times():
    recs = [Block(S1, r, 0, (Sample(1.0 + 0.01 * (r % 3)),)) for r in range(12)]
    got = precision(recs, [S1], lambda k: B)
    assert 0 < got[S1] < 0.02
    assert precision(recs[:3], [S1], lambda k: B)[S1] == math.inf  # too few for 95%


def test_half_width_and_the_verdict_compare_uses():
    iv = stats.Interval(1.2, 1.15, 1.25, 30, 0.99)
    assert half_width(iv) == pytest.approx(0.05 / 1.2) and half_width(None) == math.inf
    assert stats.verdict(iv, 0.10, 0.99) == ("slower", "")
    assert stats.verdict(stats.Interval(0.8, 0.75, 0.85, 30, 0.99), 0.10, 0.99)[0] == "faster"
    assert stats.verdict(stats.Interval(1.05, 1.02, 1.08, 30, 0.99), 0.10, 0.99) == (
        "same", "a clear change, but under the minimum")
    assert stats.verdict(stats.Interval(1.5, 1.2, 2.0, 5, 0.9), 0.10, 0.99)[0] == "same"


def test_weather_levels_are_per_worker_and_episodes_end_at_the_next_kept_block():
    a, b = key("a"), key("b")
    recs = [Block(a, 0, 0, (Sample(1.0),), canary=(1.0, 1.0), at=0.0),
            Block(b, 0, 1, (Sample(1.0),), canary=(2.0, 2.0), at=0.1),  # b's level is 2
            Block(a, 1, 0, (Sample(1.0),), canary=(1.0, 1.5), at=0.2),  # over 1.3 x 1
            Block(b, 1, 1, (Sample(1.0),), canary=(3.0, 2.0), at=0.3),  # over 1.3 x 2
            Block(a, 2, 0, (Sample(1.0),), canary=(1.0, 1.0), at=0.5),
            Block(b, 2, 1, (Sample(1.0),), canary=(2.0, 2.0), at=0.6),
            Block(a, 3, 0, (Sample(1.0),), canary=(1.0, 1.0), at=0.7)]
    flags = weather.disturbed(recs, 1.3)
    assert [flags[id(r)] for r in recs] == [False, False, True, True, False, False, False]
    assert weather.episodes(recs, flags) == [pytest.approx(0.3)]
    assert weather.shares({"steal": 0, "busy": 0, "total": 0, "own": 0},
                          {"steal": 5, "busy": 60, "total": 100, "own": 40}) == {
        "steal_share": 0.05, "others_share": 0.15}


def test_quiet_waits_until_no_thread_runs_for_the_window():
    from harness.measure import quiet

    clock = Clock()

    def sleep(s):
        clock.now += s

    class Child:
        pid = 1

        def wait_quiet(self):
            return 0.25

    spinning_until = 0.1  # its threads spin for 0.1 s after the block
    waited = quiet.wait(Child(), read=lambda pid: 2 if clock.now < spinning_until else 0,
                        sleep=sleep, clock=clock)
    assert 0.1 + quiet.WINDOW_S <= waited <= 0.1 + quiet.WINDOW_S + 2 * quiet.TICK_S
    clock.now = 0.0
    assert quiet.wait(Child(), read=lambda pid: 1, sleep=sleep, clock=clock) >= quiet.MAX_S
    assert quiet.wait(Child(), read=lambda pid: None, sleep=sleep, clock=clock) == 0.25
