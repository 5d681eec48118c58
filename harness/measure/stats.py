"""Statistics over timing samples: median, IQR, the noisy flag, and the two-run test.

    from harness.measure.stats import mann_whitney_p, summarize
    s = summarize([1.02e-3, 0.98e-3, 1.01e-3])   # Summary(median=..., iqr=..., n=3, noisy=False)
    p = mann_whitney_p(samples_a, samples_b)      # two-sided p-value, 1.0 when untestable

Medians and IQRs instead of means and standard deviations: timing noise on a
shared machine is one-sided (a step can be slowed by a neighbour, never sped
up), so a few slow outliers move a mean but not a median. Pure functions over
sequences of floats (seconds per step); no clock is read here.
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


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann-Whitney U p-value for 'a and b come from the same distribution'.

    Rank-based, so it needs no normality and is robust to the one-sided outliers
    of timing noise. Its power is limited by the sample counts: with 3 samples
    a side the smallest possible p is 0.1, with 5 a side 0.008; a cell with
    fewer samples can never be called a significant change at p < 0.01.
    Returns 1.0 (no evidence) when either side is empty or all values are equal.
    """
    if len(a) == 0 or len(b) == 0:
        return 1.0
    if len(set(a) | set(b)) == 1:
        return 1.0
    from scipy.stats import mannwhitneyu  # lazily: only `compare` needs SciPy

    return float(mannwhitneyu(list(a), list(b), alternative="two-sided").pvalue)


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
