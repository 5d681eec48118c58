"""Pairs read back from the blocks' places: each block of a series with the block(s) of its
baseline right next to it in the same round, the unit every ratio of a run rests on.

    found = pairs(records, base_of, flags)       # {key: [Pair(round, base_s, own_s), ...]}
    speed = speedup_interval(found[key])         # t_base / t_key: median with its 95% interval

A member's block at place p of round r is paired with its baseline's blocks at p - 1 and
p + 1 of that round (harness/bench/schedules.py puts them there): the baseline's value is the
geometric mean of the neighbours found (two cancel a drift that is linear over the three
blocks). A block the canary marked disturbed (harness/measure/weather.py) pairs with nothing
and is paired with by nothing. A round whose order put no baseline beside a member (a plain
shuffled round) pairs that member with the nearest baseline block of the round, so a run
measured with the old schedule reads the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from harness.measure import stats
from harness.measure.records import Block, Key


@dataclass(frozen=True)
class Pair:
    round: int
    base_s: float  # the baseline's seconds per step next to it
    own_s: float  # this key's

    @property
    def speedup(self) -> float:
        return self.base_s / self.own_s

    @property
    def ratio(self) -> float:
        """own / base: B/A where the baseline is A (the duet's REV)."""
        return self.own_s / self.base_s


def pairs(records: list[Block], base_of: Callable[[Key], Key | None],
          flags: dict[int, bool] | None = None) -> dict[Key, list[Pair]]:
    flags = flags or {}
    kept = [b for b in records if not flags.get(id(b))]
    by_round: dict[int, dict[Key, list[Block]]] = {}
    for b in kept:
        by_round.setdefault(b.round, {}).setdefault(b.key, []).append(b)
    out: dict[Key, list[Pair]] = {}
    for b in kept:
        base = base_of(b.key)
        if base is None or base == b.key:
            continue
        mine = by_round[b.round].get(base, [])
        if not mine:
            continue
        beside = [x for x in mine if abs(x.position - b.position) == 1]
        if not beside:  # not placed next to it: the nearest in the round
            gap = min(abs(x.position - b.position) for x in mine)
            beside = [x for x in mine if abs(x.position - b.position) == gap]
        values = [x.value for x in beside if x.value > 0]
        own = b.value
        if values and own > 0:
            base_s = math.exp(sum(math.log(v) for v in values) / len(values))
            out.setdefault(b.key, []).append(Pair(b.round, base_s, own))
    return out


def speedup_interval(found: list[Pair], confidence: float = 0.95) -> stats.Interval | None:
    """t_base / t_own: the median over pairs, with its distribution-free interval."""
    return stats.median_interval([p.speedup for p in found], confidence) if found else None


def ratio_interval(found: list[Pair], confidence: float = 0.99) -> stats.Interval | None:
    """t_own / t_base (B/A): the median over pairs, with its distribution-free interval."""
    return stats.median_interval([p.ratio for p in found], confidence) if found else None


def half_width(interval: stats.Interval | None) -> float:
    """Half the interval's width relative to its estimate (inf when there is none)."""
    if interval is None or not interval.estimate > 0:
        return math.inf
    return (interval.high - interval.low) / 2 / interval.estimate


def precision(records: list[Block], keys, base_of: Callable[[Key], Key | None],
              flags: dict[int, bool] | None = None, confidence: float = 0.95,
              paired: bool = True) -> dict[Key, float]:
    """{key: the relative half-width its interval has reached}: of its paired ratio where a
    baseline block was beside it, else of its step time (a series with no baseline in the
    run, or `paired=False`). Inf with too few blocks for the `confidence` asked."""
    found = pairs(records, base_of, flags) if paired else {}
    flags = flags or {}
    out = {}
    for key in keys:
        if found.get(key):
            interval = stats.median_interval([p.speedup for p in found[key]], confidence)
        else:
            own = [b.value for b in records if b.key == key and not flags.get(id(b))]
            interval = stats.median_interval(own, confidence) if own else None
        enough = interval is not None and interval.confidence >= confidence
        out[key] = half_width(interval) if enough else math.inf
    return out
