"""The speed section: step times across sizes, speed-ups over hand-written NumPy, crossovers.

    from harness.report.speed import crossovers, sec_speed
"""

from __future__ import annotations

import math

import pandas as pd

from harness.measure.stats import fmt_seconds as fmt_s
from harness.report import plots
from harness.report.load import RunData
from harness.report.tables import md_table, numpy_baseline, pivot, size_order, words


def crossovers(ok: pd.DataFrame) -> pd.DataFrame:
    """Where one series becomes faster than another as size grows (same dtype only).

    `upward` is True when the overtaking series stays faster at every larger common size.
    `within_noise` marks crossings where the two medians are closer than either IQR.
    """
    found = []
    for _, part in ok.groupby("dtype"):
        t = part.pivot_table(index="size", columns="label", values="step_median_s")
        iqr = part.pivot_table(index="size", columns="label", values="step_iqr_s")
        t, iqr = t.reindex(size_order(part)), iqr.reindex(size_order(part))
        for a in t.columns:
            for b in t.columns.drop(a):
                both = t[[a, b]].dropna()
                faster = (both[a] < both[b]).tolist()
                for i in range(1, len(faster)):
                    if faster[i] and not faster[i - 1]:
                        size = both.index[i]
                        gap = abs(both[a].iloc[i] - both[b].iloc[i])
                        found.append({"faster": a, "than": b, "from_size": size,
                                      "upward": all(faster[i:]),
                                      "within_noise": bool(gap < iqr.loc[size, [a, b]].max())})
    return pd.DataFrame(found, columns=["faster", "than", "from_size", "upward", "within_noise"])


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


def _versus_numpy(ratios: pd.DataFrame) -> str:
    """One clause per series: at which sizes it is faster than hand-written NumPy."""
    sizes = size_order(ratios)
    always_slower, always_faster, mixed = [], [], []
    for label, g in ratios[ratios["impl"] != "numpy"].groupby("label"):
        g = g.set_index("size").reindex([s for s in sizes if s in set(g["size"])])
        faster = list(g.index[g["speedup"] > 1])
        if not faster:
            always_slower.append(label)
        elif len(faster) == len(g):
            always_faster.append(label)
        else:
            slower = [s for s in g.index if s not in faster]
            mixed.append(f"{label} is faster at {words(faster)} and slower at {words(slower)}")
    said = mixed
    if always_faster:
        said.append(f"{words(always_faster)} {'is' if len(always_faster) == 1 else 'are'}"
                    " faster at every size where both ran")
    if always_slower:
        said.append(f"{words(always_slower)} {'is' if len(always_slower) == 1 else 'are'}"
                    " slower at every size where both ran")
    return "Against hand-written NumPy: " + "; ".join(said) + "." if said else ""


def _fastest(at: pd.DataFrame) -> str:
    """'X (t)', with how far ahead of the runner-up, and whether that is within noise."""
    at = at.sort_values("step_median_s")
    first = at.iloc[0]
    text = f"{first['label']} ({fmt_s(first['step_median_s'])}"
    if len(at) > 1:
        second = at.iloc[1]
        times = second["step_median_s"] / first["step_median_s"]
        noise = abs(second["step_median_s"] - first["step_median_s"]) < max(
            first.get("step_iqr_s", 0), second.get("step_iqr_s", 0))
        text += (f"; next, {second['label']} takes {times:.3g}x as long"
                 + (", within noise: a rerun could swap them" if noise else ""))
    return text


def sec_speed(run: RunData) -> str:
    if why := run.needs("step_median_s", "step_iqr_s", "flops_per_step"):
        return why
    ok = run.ok
    noisy = ok["noisy"].astype(bool) if "noisy" in ok else pd.Series(False, index=ok.index)
    times = ok.assign(shown=[fmt_s(t) + ("~" if n else "")
                             for t, n in zip(ok["step_median_s"], noisy, strict=True)])
    sizes = size_order(ok)
    text = (f"Steady step time per series: the median over repeated samples (`~` marks a noisy"
            f" cell, IQR above 10% of the median: {int(noisy.sum())} of {len(ok)}). At the"
            f" smallest size ({sizes[0]}) the fastest is {_fastest(ok[ok['size'] == sizes[0]])});"
            f" at the largest ({sizes[-1]}) it is {_fastest(ok[ok['size'] == sizes[-1]])}).")
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
    parts = [text, "", f"![step time]({plots.speed(ok, run.path, gpu_from=gpu_from)})", "",
             md_table(pivot(times, "shown", str))]
    ratios = numpy_baseline(ok, "step_median_s")
    if ratios.empty:
        parts += ["", "_No hand-written NumPy cell ran, so there is no speed-up baseline._"]
    else:
        ratios["speedup"] = ratios["step_median_s_numpy"] / ratios["step_median_s"]
        others = ratios[ratios["impl"] != "numpy"]
        said = "Speed-up over hand-written NumPy: its step time divided by each series' (above 1 = faster)."
        if len(others):
            top = others.loc[others["speedup"].idxmax()]
            said += (f" The largest is {top['speedup']:.3g}x, by {top['label']} at size"
                     f" {top['size']}. {_versus_numpy(ratios)}")
        parts += ["", said, "", f"![speed-up]({plots.speedup(ratios, run.path)})", "",
                  md_table(pivot(ratios, "speedup", lambda x: f"{x:.3g}x"))]
    cross = crossovers(ok)
    if cross.empty:
        parts += ["", "The order of the series is the same at every size measured."]
    else:
        shown = cross.rename(columns={"faster": "series", "than": "overtakes",
                                      "from_size": "at size", "upward": "stays ahead",
                                      "within_noise": "within noise"})
        for col in ("stays ahead", "within noise"):
            shown[col] = shown[col].map({True: "yes", False: "no"})
        parts += ["", "Where the order changes as the size grows: each row's series was slower"
                      " than the one it overtakes at the size before and is faster at `at size`."
                      " `stays ahead`: still faster at every larger size measured. `within noise`:"
                      " the two medians differ by less than the larger IQR, so a rerun could put"
                      " that crossing one size earlier or later.", "", md_table(shown, 25)]
    return "\n".join(parts)
