"""A scaling run's figures outside what W workers can do alone: an efficiency above 100%.

    from harness.report.superlinear import flagged
    flagged(ok)   # markdown: each configuration above ideal, and what the run's phases say

W workers each doing 1/W of the work can at best be W times faster, if each does its share as
fast per sample as the one process of the baseline. A speed-up above W (an efficiency above
100%) means they did not: the baseline is slower per sample than its workers. The run's own
phase medians (compute, measured apart from the all-reduce) show by how much: one process
computing the full batch in t1, each of W workers its share in tW, is t1 / (W tW) times slower
per sample. Why (a smaller working set in cache, threads, dispatch) the run cannot say, and the
report says that too; the speed-up then measures that difference as well as parallelism.
"""

from __future__ import annotations

import pandas as pd

from harness.measure.stats import fmt_seconds


def _ratio(x) -> str:
    return f"{x:.2f}x" if x >= 0.1 else f"{x:.2g}x"


def _why(r, base: pd.Series | None, others: pd.DataFrame) -> str:
    """What the phases say about one configuration above ideal."""
    if base is None:
        return "its W = 1 baseline has no row, so its phases cannot be set side by side."
    t1, tw = base.get("compute_s"), r.get("compute_s")
    if pd.isna(t1) or pd.isna(tw) or tw <= 0:
        return (f"its baseline's step is {fmt_seconds(base['step_median_s'])}; the run did not"
                " time compute apart, so its numbers cannot say why.")
    per_sample = t1 / (r["workers"] * tw)
    text = (f"one process computes the full batch in {fmt_seconds(t1)} (W = 1, "
            f"{base['launch']}), each of its {int(r['workers'])} workers its share in"
            f" {fmt_seconds(tw)}: per sample, the one process is {_ratio(per_sample)} slower"
            " than its workers")
    faster = others[others["compute_s"].notna() & (others["compute_s"] < t1)]
    if not faster.empty:
        best = faster.loc[faster["compute_s"].idxmin()]
        text += (f" (at W = 1, {best['impl']} computes the same batch in"
                 f" {fmt_seconds(best['compute_s'])})")
    text += (". So this speed-up measures that difference as well as parallelism; the run"
             " does not say what makes the one process slower (cache, threads, dispatch).")
    if per_sample <= 1:
        text = (f"its compute does not explain it (one process {fmt_seconds(t1)}, each worker"
                f" {fmt_seconds(tw)}): the rest of the step (all-reduce, update, wait) differs"
                " between the launches.")
    return text


def above_ideal(ok: pd.DataFrame) -> pd.DataFrame:
    """The configurations with W > 1 whose median speed-up exceeds W."""
    if "speedup" not in ok:
        return ok.iloc[0:0]
    return ok[(ok["workers"] > 1) & ok["speedup"].notna() & (ok["speedup"] > ok["workers"])]


def flagged(ok: pd.DataFrame) -> str:
    """Markdown: one item per configuration above 100% efficiency ('' when none is)."""
    over = above_ideal(ok)
    if over.empty:
        return ""
    items = []
    for _, r in over.iterrows():
        same = ok[(ok["size"] == r["size"]) & (ok["workers"] == 1)]
        mine = same[same["impl"] == r["impl"]]
        base = mine.iloc[0] if not mine.empty else None
        others = same[same["impl"] != r["impl"]] if "compute_s" in same else same.iloc[0:0]
        low = r.get("speedup_low")
        sure = ("its whole interval lies above ideal" if pd.notna(low) and low > r["workers"]
                else "its interval reaches down to ideal or below")
        items.append(f"- **{r['engine']} at {r['size']}, W = {int(r['workers'])}:"
                     f" {_ratio(r['speedup'])}, {r['speedup'] / r['workers']:.0%} efficiency**"
                     f" ({sure}): {_why(r, base, others)}")
    return "\n".join(["**Above 100% efficiency**: more than W workers can give by dividing the"
                      " work alone.", "", *items])
