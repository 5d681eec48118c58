"""Interleaved rounds: every ready worker times one short block per round, in a new random order
each round, so drift and bursts on a shared machine hit every series alike.

    records, failed, done = walk_rounds(workers, policy, random.Random(seed), budget, limit)

A worker is anything with `block(samples, timeout) -> [seconds per step]` and
`wait_quiet() -> seconds` (harness/measure/pool.py's Worker; tests pass fakes and a
fake clock). After each block the next one waits until the worker that ran is quiet:
its thread pools spin for a while after a block, and a block started meanwhile would
share its cores with them (harness/measure/pool.py says what was measured).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.bench.budget import Budget
from harness.measure.pool import WorkerError
from harness.measure.timing import Policy


@dataclass(frozen=True)
class Record:
    """One block of one worker: its samples, in seconds per step."""

    key: object  # whose block: a CellKey, or ("peak", device)
    round: int
    position: int  # its place in the round's order (0 = first)
    samples: tuple[float, ...]
    settle_s: float  # how long the worker's threads kept a core busy after the block


def walk_rounds(workers: dict, policy: Policy, rng: random.Random, budget: Budget,
                limit: float, samples_of: Callable[[object], int] | None = None,
                on_round: Callable[[int, float], None] = lambda r, s: None,
                clock: Callable[[], float] = time.monotonic):
    """Walk policy.rounds rounds over `workers` ({key: worker}); returns (records, failed,
    rounds done). A worker that fails or hangs is dropped from later rounds and reported in
    `failed` ({key: WorkerError}). A round starts only if the wall budget can hold one more
    round as long as the last one. `samples_of(key)` overrides policy.samples_per_block
    (the matmul peak: one sample a round)."""
    alive = dict(workers)
    records: list[Record] = []
    failed: dict = {}
    done, last_round_s = 0, 0.0
    for r in range(policy.rounds):
        if not alive or not budget.can_start() or budget.left() < last_round_s:
            break
        t0 = clock()
        order = list(alive)
        rng.shuffle(order)
        for position, key in enumerate(order):
            worker = alive[key]
            n = (samples_of(key) if samples_of else None) or policy.samples_per_block
            try:
                samples = worker.block(n, budget.timeout(limit))
            except WorkerError as exc:
                failed[key] = exc
                del alive[key]
                continue
            records.append(Record(key, r, position, tuple(samples), worker.wait_quiet()))
        done, last_round_s = r + 1, clock() - t0
        on_round(done, last_round_s)
    return records, failed, done


def round_values(records: list[Record]) -> dict:
    """{key: {round: median of that round's samples}}: the unit every statistic rests on."""
    import statistics

    out: dict = {}
    for rec in records:
        out.setdefault(rec.key, {})[rec.round] = statistics.median(rec.samples)
    return out
