"""Where the order of two series changes as the size grows, judged on paired rounds.

    from harness.report.crossovers import crossovers, device_crossover
    crossovers(ok, rounds)     # one row per crossing, with the ratio's interval on each side

At one size, every cell was timed in the same rounds, so the ratio of two series is
taken round by round (harness/measure/stats.py: paired_ratios, median_interval). A
crossing is *clear* when series a was clearly slower than b at the size before (the
whole interval of t_a / t_b above 1) and is clearly faster at the crossing size (the
whole interval below 1); otherwise a rerun could put the crossing elsewhere, and the
table says so. Neither is a crossing clear from too few rounds for a 90% interval
(harness/report/coverage.py).
"""

from __future__ import annotations

import pandas as pd

from harness.measure import stats
from harness.report.coverage import judged
from harness.report.tables import size_order

COLUMNS = ["faster", "than", "from_size", "before", "at", "upward", "clear"]


def pair_ratio(rounds: pd.DataFrame | None, a: str, b: str, size: str) -> stats.Interval | None:
    """t_a / t_b at `size`, paired by round, with its interval (None without round data)."""
    if rounds is None:
        return None
    at = rounds[rounds["size"] == str(size)]
    ta = dict(zip(at[at["label"] == a]["round"], at[at["label"] == a]["value"], strict=True))
    tb = dict(zip(at[at["label"] == b]["round"], at[at["label"] == b]["value"], strict=True))
    ratios = stats.paired_ratios(ta, tb)
    return stats.median_interval(ratios) if ratios else None


def fmt_ratio(i: stats.Interval | None) -> str:
    return "-" if i is None else f"{i.estimate:.3g}x [{i.low:.3g}, {i.high:.3g}]"


def crossovers(ok: pd.DataFrame, rounds: pd.DataFrame | None = None) -> pd.DataFrame:
    """Where one series becomes faster than another as size grows (same dtype only).

    `before`/`at`: t_faster / t_than at the size before and at `from_size` (above 1: slower).
    `upward`: the overtaking series stays faster (by median) at every larger common size.
    `clear`: both intervals exclude 1, on opposite sides.
    """
    found = []
    for _, part in ok.groupby("dtype"):
        t = part.pivot_table(index="size", columns="label", values="step_median_s")
        t = t.reindex(size_order(part))
        for a in t.columns:
            for b in t.columns.drop(a):
                both = t[[a, b]].dropna()
                faster = (both[a] < both[b]).tolist()
                for i in range(1, len(faster)):
                    if faster[i] and not faster[i - 1]:
                        before = pair_ratio(rounds, a, b, both.index[i - 1])
                        at = pair_ratio(rounds, a, b, both.index[i])
                        clear = (before is not None and at is not None
                                 and judged(before.n) and judged(at.n)
                                 and before.low > 1 and at.high < 1)
                        found.append({"faster": a, "than": b, "from_size": both.index[i],
                                      "before": fmt_ratio(before), "at": fmt_ratio(at),
                                      "upward": all(faster[i:]), "clear": clear})
    return pd.DataFrame(found, columns=COLUMNS)


def device_crossover(ok: pd.DataFrame) -> tuple[str, object] | None:
    """GPU vs CPU, comparing the fastest series of each at every size: ('from', size) when the
    GPU is slower below `size` and faster from it on; ('always' | 'never' | 'mixed', None)
    otherwise; None when the run has one device. The first dtype stands for the rest."""
    part = ok[ok["dtype"] == ok["dtype"].iloc[0]]
    if part["device"].nunique() < 2 or "cpu" not in set(part["device"]):
        return None
    best = part.assign(on_cpu=part["device"] == "cpu").pivot_table(
        index="size", columns="on_cpu", values="step_median_s", aggfunc="min")
    best = best.reindex([s for s in size_order(part) if s in best.index]).dropna()
    if best.empty:
        return None
    wins = (best[False] < best[True]).tolist()
    if all(wins):
        return "always", None
    if not any(wins):
        return "never", None
    first = wins.index(True)
    return ("from", best.index[first]) if all(wins[first:]) else ("mixed", None)
