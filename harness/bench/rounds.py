"""The round walker: every subject of a run times one block per round, in the order a schedule
gives, so drift and bursts on a shared machine hit every series alike. The one loop of every
kind of run (a size's cells, the scaling run's launches, the smoke's single round).

    records, failed, done = walk(subjects, Shuffled(rounds, random.Random(seed)), budget)

A subject is anything with `block(samples, seconds) -> [Sample]` (harness/measure/pool.py's
Worker) or `-> {Key: [Sample]}` (a data-parallel launch: one start, several sizes), and
`wait_quiet() -> seconds`; tests pass fakes and a fake clock. After each block the next one
waits until the subject that ran is quiet: its thread pools spin for a while after a block, and
a block started meanwhile would share its cores with them (process.Child.wait_quiet).

A schedule says which subjects run in a round and in what order, and how many samples each
block holds: `Shuffled` is a new random order every round. Finer schedules (the baseline and
each series in adjacent blocks, A B B A; adaptive rounds that keep sampling the cells whose
interval is still wide) are other schedules: the walker, the records and the rows stay.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from harness.bench.budget import Budget
from harness.measure.records import Block, Key
from harness.process import ChildError


class Schedule(Protocol):
    def rounds(self, alive: Callable[[], list[Key]]) -> Iterator[list[Key]]:
        """Each round's order of the keys still alive (asked afresh every round)."""

    def samples(self, key: Key) -> int:
        """Samples in one block of `key`."""


@dataclass
class Shuffled:
    """`count` rounds, each in a new random order of the live subjects."""

    count: int
    rng: random.Random
    samples_per_block: int = 1
    peak_samples: int = 1  # the matmul peak: one sample a round (its best is the round's peak)

    def rounds(self, alive):
        for _ in range(self.count):
            order = list(alive())
            self.rng.shuffle(order)
            yield order

    def samples(self, key: Key) -> int:
        return self.peak_samples if key.is_peak else self.samples_per_block


def walk(subjects: dict, schedule: Schedule, budget: Budget, limit: float | None = None,
         on_round: Callable[[int, list[Block], dict], None] = lambda done, records, failed: None,
         clock: Callable[[], float] = time.monotonic) -> tuple[list[Block], dict, int]:
    """Walk the schedule's rounds over `subjects` ({key: subject}); (records, failed, rounds
    done). A subject that fails or hangs is dropped from later rounds and reported in `failed`
    ({key: ChildError}). A round starts only if the wall budget can hold one more round as
    long as the last one; `on_round(done, records, failed)` after each (a scaling run writes
    its tables there). `limit`: seconds a block may take (capped by the budget; None: the subject's own)."""
    alive = dict(subjects)
    records: list[Block] = []
    failed: dict = {}
    done, last_round_s = 0, 0.0
    for order in schedule.rounds(lambda: list(alive)):
        if not alive or not budget.can_start() or budget.left() < last_round_s:
            break
        t0 = clock()
        for position, key in enumerate(k for k in order if k in alive):
            subject = alive[key]
            seconds = None if limit is None else budget.timeout(limit)
            try:
                got = subject.block(schedule.samples(key), seconds)
            except ChildError as exc:
                failed[key] = exc
                del alive[key]
                continue
            settle = subject.wait_quiet()
            for k, samples in (got.items() if isinstance(got, dict) else [(key, got)]):
                records.append(Block(k, done, position, tuple(samples), settle))
        done, last_round_s = done + 1, clock() - t0
        on_round(done, records, failed)
    return records, failed, done


def round_values(records: list[Block]) -> dict[Key, dict[int, float]]:
    """{key: {round: median of that round's samples}}: the unit every statistic rests on."""
    import statistics

    out: dict = {}
    for rec in records:
        out.setdefault(rec.key, {})[rec.round] = statistics.median(rec.seconds)
    return out
