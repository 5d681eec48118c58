"""The timing engine every kind of run shares: subjects walked in paired, adaptive rounds, the
canary's verdict on every block, the weather of the walk and the precision each key reached.

    done = time_rounds(subjects, groups, policy, budget, limit, seed, extras=peaks,
                       base_of=base_of(settings.baseline))
    done.records, done.flags, done.weather, done.precision, done.failed, done.rounds

`groups` is {baseline key: [the keys timed next to it]} (a size's cells around the run's
baseline; the W = 1 launch of each engine; in a duet, each series of REV with the same series
of the working tree). The schedule follows `policy.pairing` (harness/bench/schedules.py); after
`policy.rounds` rounds only the keys whose interval's half-width is still over `policy.target`
are timed, up to `policy.at_most` rounds or `policy.rounds_s` seconds of rounds. Whatever the
walk ends with, `precision` says how far each key got, and `below_target` which did not reach
the target (reported, never hidden). Used by harness/bench/cells.py (cells runs, the gpu
profile), harness/bench/duet.py (`bench --against`) and harness/bench/scaling.py.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.bench.budget import Budget
from harness.bench.pairs import precision
from harness.bench.rounds import Shuffled, walk
from harness.bench.schedules import Paired
from harness.measure import weather as sky
from harness.measure.records import Block, Key
from harness.measure.timing import Policy


@dataclass
class Walked:
    records: list[Block]
    failed: dict  # {key: ChildError}
    rounds: int
    flags: dict[int, bool]  # {id(block): disturbed}
    precision: dict[Key, float]  # {member: relative half-width reached}
    weather: dict = field(default_factory=dict)

    @property
    def kept(self) -> list[Block]:
        return [b for b in self.records if not self.flags.get(id(b))]

    def below_target(self, target: float) -> list[Key]:
        return [k for k, h in self.precision.items() if not h <= target]


def time_rounds(subjects: dict, groups: dict[Key, list[Key]], policy: Policy, budget: Budget,
                limit: float | None, seed: int, extras: tuple[Key, ...] = (),
                base_of: Callable[[Key], Key | None] | None = None, confidence: float = 0.95,
                clock: Callable[[], float] = time.monotonic,
                on_round: Callable[[int, list[Block], dict], None] | None = None) -> Walked:
    """Walk `subjects` ({key: subject}) in the policy's rounds; see the module's docstring."""
    members = [m for ms in groups.values() for m in ms]
    owner = {m: b for b, ms in groups.items() for m in ms}
    base = base_of or owner.get
    seen: list[Block] = []

    def reached() -> dict[Key, float]:
        flags = sky.disturbed(seen, policy.canary_limit)
        return precision(seen, members, base, flags, confidence)

    def wanted() -> set[Key]:
        return {k for k, h in reached().items() if not h <= policy.target}

    rng = random.Random(seed)
    if policy.pairing == "shuffled":
        schedule = Shuffled(policy.rounds, rng, policy.samples_per_block)
    else:
        schedule = Paired(groups, policy.rounds, policy.at_most, rng, wanted,
                          between=policy.pairing == "between", extras=extras,
                          samples_per_block=policy.samples_per_block)

    def hook(done: int, records: list[Block], failed: dict) -> None:
        seen[:] = records
        if on_round is not None:
            on_round(done, records, failed)

    pids = [os.getpid(), *(c.pid for s in subjects.values()
                           if (c := getattr(s, "child", None)) is not None)]
    jiffies, t0 = sky.cpu_jiffies(pids), clock()
    records, failed, done = walk(subjects, schedule, budget, limit, hook, clock,
                                 policy.rounds_s)
    seen[:] = records
    flags = sky.disturbed(records, policy.canary_limit)  # discarded (None: none is)
    slow = sky.disturbed(records, policy.canary_limit or sky.SLOW)  # the weather's episodes
    weather = {**sky.weather(records, flags, slow=slow),
               **sky.shares(jiffies, sky.cpu_jiffies(pids))}
    weather.update(rounds=done, seconds=round(clock() - t0, 3), pairing=policy.pairing,
                   target=policy.target, canary_limit=policy.canary_limit,
                   confidence=confidence)
    return Walked(records, failed, done, flags, reached(), weather)
