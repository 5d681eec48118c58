"""What an interval from n rounds really covers, and whether it may carry a verdict.

    from harness.report.coverage import coverage, label, judge
    coverage(6)      # 0.969: the distribution-free interval of a median from 6 rounds
    label(2)         # '50%': two rounds give the min-max, which holds the median half the time
    judge(1.2, 1.5, rounds=10)   # 'faster'; judge(1.2, 1.5, rounds=4) -> 'too few rounds'

A run's intervals (harness/bench/rows.py, scaling_rows.py) are harness/measure/stats.py's
median_interval asked for 95%: with n rounds its order statistics reach a coverage that
depends on n alone, at least 95% from 6 rounds on, less below (5 rounds: 93.75%; 2: 50%).
That coverage is computed here by the same function, so the label cannot drift from the rule.
A verdict (faster, slower, no clear difference) is drawn only from an interval covering at
least 90% (5 rounds or more); from fewer rounds the report says so instead.
"""

from __future__ import annotations

import math
from functools import cache

from harness.measure.stats import median_interval

ASKED = 0.95  # what the bench asks of median_interval
JUDGED = 0.90  # the least coverage a verdict is drawn from
TOO_FEW = "too few rounds"


@cache
def coverage(n) -> float:
    """The coverage of the interval of a median from `n` rounds (0 for none or unknown)."""
    try:
        n = int(n)
    except (TypeError, ValueError):
        return 0.0
    if n < 1:
        return 0.0
    return median_interval([float(i) for i in range(n)], ASKED).confidence


def label(n) -> str:
    """'96.9%', '93.8%', '50%': the coverage as a reader can take it in."""
    c = 100 * coverage(n)
    return f"{c:.3g}%" if c < 99.95 else f"{c:.4g}%"


def judged(n) -> bool:
    return coverage(n) >= JUDGED


def fewest() -> int:
    """The fewest rounds a verdict is drawn from."""
    return next(n for n in range(1, 100) if judged(n))


def judge(low, high, rounds) -> str:
    """faster / slower (than 1), no clear difference, or TOO_FEW when the interval rests on too
    few rounds to carry a verdict."""
    if not judged(rounds) or any(x is None or (isinstance(x, float) and math.isnan(x))
                                 for x in (low, high)):
        return TOO_FEW
    return "faster" if low > 1 else "slower" if high < 1 else "no clear difference"


def said(rounds) -> str:
    """'an interval covering 96.9% (6 rounds)', for each distinct count of rounds given."""
    counts = sorted({int(r) for r in rounds if r is not None and not (
        isinstance(r, float) and math.isnan(r))})
    if not counts:
        return "an interval"
    parts = [f"{label(n)} from {n} round{'s' if n != 1 else ''}" for n in counts]
    return "an interval covering " + (parts[0] if len(parts) == 1 else
                                      ", ".join(parts[:-1]) + " and " + parts[-1])
