"""Statistics over timing rounds: medians and their intervals, paired ratios, two-run shifts.

    from harness.measure.stats import median_interval, paired_ratios, shift_interval
    median_interval(per_round_times)                   # Interval(estimate, low, high, n, ...)
    median_interval(paired_ratios(numpy_t, torch_t))   # speed-up over NumPy, same rounds
    shift_interval(rounds_a, rounds_b)                 # B/A between two runs, with a 99% interval

The unit of evidence is the round: each round times every cell once, in a new
random order, so a round's values of two cells share that moment of the machine,
and the ratio of two cells is taken round by round (paired). Steps inside one
process are autocorrelated and are only summarised into their round's value.
Medians instead of means, and distribution-free intervals (order statistics, Moses)
instead of normal ones: timing noise on a shared machine is one-sided and heavy-
tailed. Pure functions; no clock is read here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# A cell is "noisy" when its IQR exceeds this fraction of its median: a ratio
# between two such cells is not worth quoting to two digits.
NOISY_SPREAD = 0.10


@dataclass(frozen=True)
class Summary:
    median: float  # seconds per step
    iqr: float  # 75th minus 25th percentile (linear interpolation), seconds per step
    n: int  # number of samples
    noisy: bool  # iqr / median > NOISY_SPREAD

    @property
    def spread(self) -> float:
        """IQR relative to the median (0 for a single sample)."""
        return self.iqr / self.median if self.median > 0 else math.inf


def median(samples: Sequence[float]) -> float:
    return float(np.median(np.asarray(samples, dtype=np.float64)))


def iqr(samples: Sequence[float]) -> float:
    q75, q25 = np.percentile(np.asarray(samples, dtype=np.float64), [75, 25])
    return float(q75 - q25)


def summarize(samples: Sequence[float], noisy_spread: float = NOISY_SPREAD) -> Summary:
    """Median, IQR, count and noisy flag of per-step times. Raises on an empty list."""
    if len(samples) == 0:
        raise ValueError("no samples to summarize")
    if not all(math.isfinite(s) and s >= 0 for s in samples):
        raise ValueError("samples must be finite, non-negative seconds")
    m, q = median(samples), iqr(samples)
    return Summary(median=m, iqr=q, n=len(samples), noisy=bool(m > 0 and q / m > noisy_spread))


@dataclass(frozen=True)
class Interval:
    """An estimate with a confidence interval: `low <= estimate <= high`."""

    estimate: float
    low: float
    high: float
    n: int  # the units it rests on (rounds)
    confidence: float  # the interval's actual coverage (at least the one asked for, if n allows)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def median_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The median, with a distribution-free confidence interval from order statistics.

    For n independent values the interval [x(k), x(n+1-k)] holds the true median with
    probability 1 - 2 P(Binomial(n, 1/2) <= k - 1), whatever the distribution: no
    normality, no symmetry, a few wild values move it by at most one rank. k is the
    largest with coverage >= `confidence`; with too few values for that (n < 6 at 95%)
    the interval is the whole range and `confidence` says what it really covers.
    """
    from scipy.stats import binom  # lazily: the parent process only

    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0:
        raise ValueError("no values for an interval")
    k, coverage = 1, 1 - 2 * binom.cdf(0, n, 0.5)
    while k < n // 2 and 1 - 2 * binom.cdf(k, n, 0.5) >= confidence:
        k += 1
        coverage = 1 - 2 * binom.cdf(k - 1, n, 0.5)
    return Interval(float(np.median(x)), float(x[k - 1]), float(x[n - k]), n, float(coverage))


def paired_ratios(numerator: dict, denominator: dict) -> list[float]:
    """numerator[r] / denominator[r] for every round r in both (values: seconds per step)."""
    return [numerator[r] / denominator[r] for r in sorted(set(numerator) & set(denominator))
            if denominator[r] > 0]


def shift_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.99) -> Interval:
    """B/A for two independent sets of positive values (say step times per round of two runs):
    the Hodges-Lehmann estimate exp(median of all log(b_j / a_i)) with the Moses
    distribution-free interval, the confidence interval that goes with the Mann-Whitney
    test: [d(C), d(mn + 1 - C)] of the sorted pairwise log ratios, C from the exact null
    distribution of U."""
    la, lb = np.log(np.asarray(a, np.float64)), np.log(np.asarray(b, np.float64))
    m, n = len(la), len(lb)
    if m == 0 or n == 0:
        raise ValueError("no values to compare")
    d = np.sort((lb[None, :] - la[:, None]).ravel())
    cdf = np.cumsum(_u_counts(m, n)) / math.comb(m + n, m)  # P(U <= u)
    alpha = 1 - confidence
    # The largest C with P(U <= C-1) <= alpha/2; with too few values even C = 1 (the whole
    # range) cannot reach the confidence asked for: the range, with what it really covers.
    c = max(int(np.searchsorted(cdf, alpha / 2, side="right")), 1)
    coverage = 1 - 2 * float(cdf[c - 1])  # P(true ratio outside) = 2 P(U <= C - 1)
    return Interval(float(np.exp(np.median(d))), float(np.exp(d[c - 1])),
                    float(np.exp(d[m * n - c])), min(m, n), float(coverage))


def verdict(ratio: Interval, min_effect: float, confidence: float) -> tuple[str, str]:
    """compare's verdict on a B/A interval (harness/report/compare.py; bench --against):
    "slower" only when the whole interval lies above 1 + min_effect, "faster" only when it
    lies below 1 / (1 + min_effect), else "same" (with a note when it is a clear change
    under the minimum, or when too few units could reach the confidence asked for)."""
    if ratio.confidence < confidence:
        return "same", f"too few rounds for a {confidence:.0%} interval"
    if ratio.low > 1 + min_effect:
        return "slower", ""
    if ratio.high < 1 / (1 + min_effect):
        return "faster", ""
    return "same", "" if ratio.contains(1) else "a clear change, but under the minimum"


def _u_counts(m: int, n: int) -> np.ndarray:
    """How many of the C(m+n, m) rank orders give each Mann-Whitney U = 0 .. mn."""
    # f(i, j, u) = f(i-1, j, u-j) + f(i, j-1, u): the largest value is from the first
    # sample (it beats all j of the second) or from the second.
    f = [[np.zeros(1, dtype=object) for _ in range(n + 1)] for _ in range(m + 1)]
    for i in range(m + 1):
        for j in range(n + 1):
            if i == 0 or j == 0:
                f[i][j] = np.ones(1, dtype=object)
                continue
            out = np.zeros(i * j + 1, dtype=object)
            a, b = f[i - 1][j], f[i][j - 1]
            out[j:j + len(a)] += a
            out[:len(b)] += b
            f[i][j] = out
    return f[m][n].astype(np.float64)


def fmt_seconds(x) -> str:
    """Seconds with a unit a reader can take in at a glance: 12.3 us, 4.56 ms, 7.8 s.
    None and NaN (a cell that did not run) print as '-'."""
    if x is None or (isinstance(x, (float, np.floating)) and math.isnan(x)):
        return "-"
    x = float(f"{float(x):.3g}")  # round first, so 0.99999 s prints as 1 s, not 1e+03 ms
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x * 1e9:.3g} ns"
