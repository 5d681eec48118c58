"""Paired, adaptive rounds: each series timed right next to its baseline, and more rounds only
for the series whose interval is still wider than the target (Kalibera & Jones).

    schedule = Paired({numpy: [torch, jax, sklearn]}, 8, 40, random.Random(0),
                      wanted=lambda: {torch})          # who still needs rounds, asked each round
    records, failed, done = walk(subjects, schedule, budget)       # harness/bench/rounds.py

A round of a group {B: [S1, S2, S3]} is `B S2 B S3 B S1 B` (the members in a new random order,
the baseline between every two: each member's block has a baseline block right before and
right after it, so a ratio never spans more than one block of anything else); with
`between=False` it is `B S1 S2 S3` and `S3 S2 S1 B` in turn (A B, B A: the duet and the
scaling run, whose blocks are processes or whole launches). Groups come in a new random order,
`extras` (the matmul peak) once at the start of each round; a group with no members (a
baseline alone) is timed once a round for `at_least` rounds. A member that is `wanted()` no
longer (its interval is narrow enough) leaves the rounds once `at_least` have run; the walk
ends when none is wanted or after `at_most`. The walker's wall budget ends it earlier.

On this machine the noise comes in episodes of 120-420 ms (docs/timing.md): the baseline and a
series timed a second apart are in different episodes, a few milliseconds apart mostly in the
same one. Pairing is what harness/bench/pairs.py reads back from the blocks' places.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from harness.measure.records import Key


@dataclass
class Paired:
    groups: dict[Key, list[Key]]  # baseline -> the members timed next to it
    at_least: int
    at_most: int
    rng: random.Random
    wanted: Callable[[], set[Key]] = lambda: set()  # members whose interval is still too wide
    between: bool = True  # the baseline between every two members; else A B / B A
    extras: tuple[Key, ...] = ()  # once a round, first (the matmul peak)
    samples_per_block: int = 1
    extra_samples: int = 1
    taken: dict[Key, int] = field(default_factory=dict)  # rounds each member was in

    def __post_init__(self):
        if not 1 <= self.at_least <= self.at_most:
            raise ValueError(f"rounds: need 1 <= at least ({self.at_least}) <= at most"
                             f" ({self.at_most})")

    def rounds(self, alive: Callable[[], list[Key]]) -> Iterator[list[Key]]:
        for r in range(self.at_most):
            live = set(alive())
            need = self.wanted() if r >= self.at_least else None
            order = [k for k in self.extras if k in live]
            groups = list(self.groups.items())
            self.rng.shuffle(groups)
            for base, members in groups:
                if not members and base in live and need is None:
                    order.append(base)  # a baseline with nobody to pair: its own rounds
                    continue
                chosen = [m for m in members if m in live and (need is None or m in need)]
                if not chosen:
                    continue
                self.rng.shuffle(chosen)
                for m in chosen:
                    self.taken[m] = self.taken.get(m, 0) + 1
                if base not in live:  # no baseline to pair with: the members alone
                    order += chosen
                elif self.between:
                    order += [base] + [x for m in chosen for x in (m, base)]
                else:
                    order += [base, *chosen] if r % 2 == 0 else [*chosen[::-1], base]
            if len(order) == len([k for k in self.extras if k in live]):
                return  # nobody is wanted any more
            yield order

    def samples(self, key: Key) -> int:
        return self.extra_samples if key in self.extras else self.samples_per_block

