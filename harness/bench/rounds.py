"""The round walker: every subject of a run times one block per round, in the order a schedule
gives, so drift and bursts on a shared machine hit every series alike. The one loop of every
kind of run (a size's cells, the scaling run's launches, the smoke's single round).

    records, failed, done = walk(subjects, Shuffled(rounds, random.Random(seed)), budget)

A subject is anything with `block(samples, seconds) -> Timed` (harness/measure/pool.py's
Worker: the samples and the canary timed beside them), `-> [Sample]`, or `-> {Key: [Sample]}`
(a data-parallel launch: one start, several sizes), and `wait_quiet() -> seconds`; tests pass
fakes and a fake clock. After each block the next one waits until the subject that ran is
quiet: its thread pools may spin for a while after a block, and a block started meanwhile
would share its cores with them (harness/measure/quiet.py).

A schedule says which subjects run in a round and in what order (a subject may come several
times in one round), and how many samples each block holds: `Shuffled` is a new random order
every round; harness/bench/schedules.py's `Paired` puts each series next to its baseline
(B S1 B S2 B ..., or A B / B A) and keeps sampling the series whose interval is still wide.
Each block is one `Block` record: its round, its place in the round, when it started and the
canary beside it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from harness.bench.budget import Budget
from harness.measure.records import Block, Key, Timed
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
         clock: Callable[[], float] = time.monotonic,
         seconds: float | None = None) -> tuple[list[Block], dict, int]:
    """Walk the schedule's rounds over `subjects` ({key: subject}); (records, failed, rounds
    done). A subject that fails or hangs is dropped from later rounds and reported in `failed`
    ({key: ChildError}). A round starts only if the wall budget can hold one more round as
    long as the last one, and (`seconds`: the rounds' own allowance) if the rounds so far and
    one more as long as the last fit in it; `on_round(done, records, failed)` after each (the
    adaptive schedule reads the precision reached there; a scaling run writes its tables).
    `limit`: seconds a block may take (capped by the budget; None: the subject's own)."""
    alive = dict(subjects)
    records: list[Block] = []
    failed: dict = {}
    done, last_round_s, start = 0, 0.0, clock()
    for order in schedule.rounds(lambda: list(alive)):
        if not alive or not budget.can_start() or budget.left() < last_round_s:
            break
        if seconds is not None and done and clock() - start + last_round_s > seconds:
            break
        t0 = clock()
        for position, key in enumerate(k for k in order if k in alive):
            subject = alive.get(key)
            if subject is None:  # failed earlier in this round
                continue
            allowed = None if limit is None else budget.timeout(limit)
            at = clock() - start
            try:
                got = subject.block(schedule.samples(key), allowed)
            except ChildError as exc:
                failed[key] = exc
                del alive[key]
                continue
            settle = subject.wait_quiet()
            canary = got.canary if isinstance(got, Timed) else ()
            got = got.samples if isinstance(got, Timed) else got
            for k, samples in (got.items() if isinstance(got, dict) else [(key, got)]):
                records.append(Block(k, done, position, tuple(samples), settle, canary, at))
        done, last_round_s = done + 1, clock() - t0
        on_round(done, records, failed)
    return records, failed, done


def round_values(records: list[Block]) -> dict[Key, dict[int, float]]:
    """{key: {round: median of that round's samples}} (a key timed several times in a round,
    as a baseline between series is: the median of all its samples there)."""
    import statistics

    by: dict = {}
    for rec in records:
        by.setdefault(rec.key, {}).setdefault(rec.round, []).extend(rec.seconds)
    return {k: {r: statistics.median(v) for r, v in rounds.items()} for k, rounds in by.items()}
