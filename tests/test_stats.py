"""The statistics every timing figure rests on (harness/measure/stats.py): medians with
distribution-free intervals, paired ratios, and the two-run shift. No clock is read."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.measure import stats


def test_summarize_known_values():
    s = stats.summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (s.median, s.iqr, s.n) == (3.0, 2.0, 5)  # percentiles 2 and 4
    assert s.noisy
    quiet = stats.summarize([1.00, 1.01, 0.99, 1.02, 1.00])
    assert not quiet.noisy and quiet.spread < 0.1
    with pytest.raises(ValueError):
        stats.summarize([])
    with pytest.raises(ValueError):
        stats.summarize([1.0, math.nan])


def test_median_interval_uses_order_statistics():
    i = stats.median_interval(list(range(1, 11)))  # n = 10: [x(2), x(9)] covers 97.9%
    assert (i.estimate, i.low, i.high, i.n) == (5.5, 2.0, 9.0, 10)
    assert i.confidence == pytest.approx(1 - 2 * 11 / 1024)
    small = stats.median_interval([3.0, 1.0, 2.0])  # too few for 95%: the range, and says so
    assert (small.low, small.high) == (1.0, 3.0) and small.confidence == pytest.approx(0.75)
    with pytest.raises(ValueError):
        stats.median_interval([])


def test_median_interval_covers_the_median_as_claimed():
    rng = np.random.default_rng(0)
    hits = sum(stats.median_interval(rng.lognormal(0.0, 0.3, 10)).contains(1.0)
               for _ in range(2000))  # the true median of lognormal(0, s) is 1
    assert 0.96 <= hits / 2000 <= 0.995  # claimed 97.9%; one wild value moves it one rank


def test_paired_ratios_take_the_same_rounds_only():
    numpy = {0: 2.0, 1: 4.0, 2: 3.0}
    other = {1: 2.0, 2: 1.5, 3: 9.0}
    assert stats.paired_ratios(numpy, other) == [2.0, 2.0]


def test_pairing_cancels_a_burst_that_hits_both_cells():
    # Round 3 is twice as slow for everything (a neighbour's burst): the paired ratio holds.
    a = {r: 1.0 * (2 if r == 3 else 1) for r in range(10)}
    b = {r: 0.5 * (2 if r == 3 else 1) for r in range(10)}
    i = stats.median_interval(stats.paired_ratios(a, b))
    assert (i.estimate, i.low, i.high) == (2.0, 2.0, 2.0)


def test_shift_interval_finds_a_30_percent_slowdown_and_no_change():
    rng = np.random.default_rng(1)
    a = list(rng.lognormal(0, 0.05, 10))
    same = stats.shift_interval(a, list(rng.lognormal(0, 0.05, 10)))
    assert same.contains(1.0)
    slow = stats.shift_interval(a, list(1.3 * rng.lognormal(0, 0.05, 10)))
    assert 1.1 < slow.low <= slow.estimate <= slow.high < 1.45  # beyond a 10% minimum effect
    assert slow.confidence >= 0.99


def test_shift_interval_coverage_matches_the_mann_whitney_null():
    rng = np.random.default_rng(2)
    hits = sum(stats.shift_interval(list(rng.exponential(1, 8)), list(rng.exponential(1, 8)),
                                    0.95).contains(1.0) for _ in range(1000))
    assert 0.93 <= hits / 1000 <= 0.99  # exact Moses interval: at least 95%
    with pytest.raises(ValueError):
        stats.shift_interval([], [1.0])
