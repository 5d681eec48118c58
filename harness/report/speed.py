"""The speed section: step times across sizes, speed-ups over the run's baseline (hand-written
NumPy unless its profile names another series; meta.json's settings), crossovers.

    from harness.report.speed import sec_speed

Every figure here carries its interval (harness/bench/rows.py computes them from the
rounds): a step time's interval over rounds, a speed-up's over the paired rounds, each
labelled with what it covers for its number of rounds (harness/report/coverage.py).
A speed-up whose interval holds 1 is "no clear difference", never a win or a loss; one from
too few rounds for a 90% interval carries no verdict at all.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.measure.stats import fmt_seconds as fmt_s
from harness.report import coverage, plots
from harness.report.crossovers import crossovers, device_crossover, fmt_ratio, pair_ratio
from harness.report.load import RunData
from harness.report.tables import (
    baseline,
    baseline_name,
    is_baseline,
    md_table,
    pivot,
    size_order,
    verdict,  # noqa: F401  (the report's rule, imported from here by harness/lessons and tests)
    with_interval,
    words,
)

NOT_JUDGED = "not judged (too few rounds)"


def _versus_baseline(ratios: pd.DataFrame, base, name: str) -> str:
    """One clause per series: at which sizes it is clearly faster, clearly slower, or neither."""
    sizes = size_order(ratios)
    said = []
    for label, g in ratios[~is_baseline(ratios, base)].groupby("label"):
        g = g.set_index("size").reindex([s for s in sizes if s in set(g["size"])])
        by = {}
        for size, row in g.iterrows():
            kind = coverage.judge(row["speedup_low"], row["speedup_high"], row.get("rounds"))
            by.setdefault(NOT_JUDGED if kind == coverage.TOO_FEW else kind, []).append(size)
        said_kinds = {k if k != "no clear difference" else "not clearly faster or slower": v
                      for k, v in by.items()}
        if len(said_kinds) == 1:
            (kind, _), = said_kinds.items()
            said.append(f"{label} is {kind} at every size where both ran")
        else:
            said.append(f"{label} is " + ", ".join(f"{k} at {words(v)}"
                                                   for k, v in said_kinds.items()))
    return (f"Against {name} (judged on the interval, not the median alone): "
            + "; ".join(said) + ".") if said else ""


def _fastest(at: pd.DataFrame, rounds) -> str:
    """'X (t)', and how far ahead of the runner-up, paired by round, with its interval."""
    at = at.sort_values("step_median_s")
    first = at.iloc[0]
    text = f"{first['label']} ({fmt_s(first['step_median_s'])}"
    if len(at) > 1:
        second = at.iloc[1]
        ratio = pair_ratio(rounds, second["label"], first["label"], first["size"])
        if ratio is None:
            text += f"; next, {second['label']}"
        else:
            text += f"; next, {second['label']} takes {fmt_ratio(ratio)} as long"
            if not coverage.judged(ratio.n):
                text += (f", from {ratio.n} paired round{'s' if ratio.n != 1 else ''} (an"
                         f" interval covering {coverage.label(ratio.n)}): too few to say which"
                         " is faster")
            elif ratio.low <= 1:
                text += ", no clear difference: a rerun could swap them"
    return text


def sec_speed(run: RunData) -> str:
    if why := run.needs("step_median_s", "step_low_s", "step_high_s", "flops_per_step"):
        return why
    ok = run.ok
    times = ok.assign(shown=[with_interval(t, lo, hi, fmt_s) for t, lo, hi in
                             zip(ok["step_median_s"], ok["step_low_s"], ok["step_high_s"],
                                 strict=True)])
    sizes = size_order(ok)
    counts = ok["rounds"] if "rounds" in ok else pd.Series(dtype=float)
    rounds = sorted({int(n) for n in counts.dropna()})
    text = (f"Steady step time per series: the median over"
            f" {' or '.join(map(str, rounds)) or 'its'} rounds, and in brackets"
            f" {coverage.said(rounds)} (distribution-free; each round times every cell of a"
            " size once, in a new random order, after the same warm-up). At the smallest size"
            f" ({sizes[0]}) the fastest is {_fastest(ok[ok['size'] == sizes[0]], run.rounds)});"
            f" at the largest ({sizes[-1]}) it is {_fastest(ok[ok['size'] == sizes[-1]], run.rounds)}).")
    gpu_from = None
    if cross := device_crossover(ok):
        kind, size = cross
        text += " " + {
            "always": "The fastest GPU series beats the fastest CPU series at every size.",
            "never": "The fastest CPU series beats every GPU series at every size measured.",
            "mixed": "The fastest GPU series and the fastest CPU series swap places more than"
                     " once as the size grows; see the table.",
            "from": f"Below size {size} a CPU series is fastest; from {size} on, a GPU series"
                    " is (the shaded part of the plot).",
        }[kind]
        if kind == "from":  # shade from halfway (on the log axis) between the two sizes
            flops = ok.groupby("size")["flops_per_step"].median()
            before = sizes[sizes.index(size) - 1]
            gpu_from = math.sqrt(flops[before] * flops[size])
    parts = [text, "", f"![step time]({plots.speed(ok, run.out, gpu_from=gpu_from)})", "",
             md_table(pivot(times, "shown", str))]
    ratios = ok[ok["speedup"].notna()] if "speedup" in ok else ok.iloc[0:0]
    base, name = baseline(run.meta), baseline_name(run.meta)
    whose = "NumPy's" if name == "hand-written NumPy" else f"{name}'s"
    if ratios.empty:
        parts += ["", f"_No {name} cell ran beside the others, so there is no"
                      " speed-up baseline._"]
    else:
        mine = is_baseline(ratios, base)
        n = ratios["rounds"] if "rounds" in ratios else pd.Series(None, index=ratios.index)
        marks = {"no clear difference": " ≈", coverage.TOO_FEW: " ?"}
        ratios = ratios.assign(shown=[
            with_interval(x, lo, hi, lambda v: f"{v:.3g}x")
            + ("" if own else marks.get(coverage.judge(lo, hi, k), ""))
            for x, lo, hi, own, k in zip(ratios["speedup"], ratios["speedup_low"],
                                         ratios["speedup_high"], mine, n, strict=True)])
        others = ratios[~mine]
        said = (f"Speed-up over {name} (above 1 = faster): in every round, {whose}"
                " step time divided by the series', then the median over rounds, with"
                f" {coverage.said(n)}. `≈` marks an interval that holds 1: no clear"
                " difference.")
        if (unjudged := sorted({int(k) for k in n.dropna() if not coverage.judged(k)})):
            said += (f" `?` marks an interval from {' or '.join(map(str, unjudged))} rounds,"
                     f" too few for a verdict (one needs {coverage.fewest()} rounds: 90%).")
        if len(others):
            top = others.loc[others["speedup"].idxmax()]
            said += (f" The largest is {top['speedup']:.3g}x [{top['speedup_low']:.3g},"
                     f" {top['speedup_high']:.3g}], by {top['label']} at size {top['size']}."
                     f" {_versus_baseline(ratios, base, name)}")
        parts += ["", said, "", f"![speed-up]({plots.speedup(ratios, run.out)})", "",
                  md_table(pivot(ratios, "shown", str))]
    cross = crossovers(ok, run.rounds)
    if cross.empty:
        parts += ["", "The order of the series is the same at every size measured."]
    else:
        shown = cross.rename(columns={"faster": "series", "than": "overtakes",
                                      "from_size": "at size", "before": "time ratio before",
                                      "at": "time ratio at", "upward": "stays ahead"})
        shown["stays ahead"] = shown["stays ahead"].map({True: "yes", False: "no"})
        shown["clear"] = shown["clear"].map({True: "yes", False: "no: within noise"})
        parts += ["", "Where the order changes as the size grows: each row's series was slower"
                      " than the one it overtakes at the size before and is faster at `at size`"
                      " (by median). The time ratios are the series' step time over the other's,"
                      " paired by round, with their intervals (above 1: slower). `clear`: both"
                      " intervals exclude 1, each from enough rounds for a verdict; otherwise a"
                      " rerun could put the crossing elsewhere."
                      " `stays ahead`: still faster at every larger size measured.", "",
                  md_table(shown, 25)]
    return "\n".join(parts)
