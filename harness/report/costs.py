"""What a step costs beyond its arithmetic: compile time (and when it is repaid), and the
share of the machine's measured peak (per-call overhead at small sizes).

    from harness.report.costs import sec_compile, sec_peak
"""

from __future__ import annotations

import math

import pandas as pd

from harness.measure.peak import held_against, is_tf32
from harness.measure.stats import fmt_seconds as fmt_s
from harness.report.load import RunData
from harness.report.tables import dig, md_table, pivot, size_order

# The series a compiled mode must beat to repay its first call: the same framework run
# op by op. Anything else (and those op-by-op modes themselves) is measured against numpy.
_REFERENCE_MODE = {"torch": "eager", "jax": "nojit"}


def _repaid(steps, vs: str) -> str:
    if steps == 0:
        return f"no more than {vs}'s own first call, so nothing to repay"
    if pd.isna(steps):
        return f"never repaid: {vs} is as fast or faster per step"
    return f"repaid against {vs} after {steps:,.0f} step{'s' if steps != 1 else ''}"


def sec_compile(run: RunData) -> str:
    if why := run.needs("first_call_s", "step_median_s"):
        return why
    ok = run.ok.assign(overhead=run.ok["first_call_s"] - run.ok["step_median_s"])
    rows = []
    # numpy is the baseline; sklearn's fit() has no separate first call worth the name.
    for r in ok[~ok["impl"].isin(["numpy", "sklearn"])].itertuples():
        ref_mode = _REFERENCE_MODE.get(r.impl) if r.mode != _REFERENCE_MODE.get(r.impl) else None
        same = ok[(ok["dtype"] == r.dtype) & (ok["size"] == r.size)]
        ref = same[(same["impl"] == r.impl) & (same["mode"] == ref_mode)
                   & (same["device"] == r.device)]
        if ref.empty:  # no op-by-op cell at this size (or this is one): numpy instead
            ref = same[(same["impl"] == "numpy") & (same["device"] == "cpu")]
        if ref.empty:
            continue
        ref = ref.iloc[0]
        # Extra one-off cost over the reference's own first call, repaid by the per-step saving.
        extra = r.overhead - ref["overhead"]
        saving = ref["step_median_s"] - r.step_median_s
        steps = 0 if extra <= 0 else (math.ceil(extra / saving) if saving > 0 else float("nan"))
        repay = ("at once" if steps == 0 else "never" if pd.isna(steps)
                 else f"{steps:,.0f} step{'s' if steps != 1 else ''}")
        rows.append({"label": r.label, "vs": ref["label"], "size": r.size, "steps": steps,
                     "overhead": r.overhead, "shown": f"{fmt_s(r.overhead)} / {repay}"})
    if not rows:
        return "_No series has a reference cell (its op-by-op mode or numpy) at the same size._"
    df = pd.DataFrame(rows)
    order = size_order(run.ok)
    table = df.pivot_table(index=["label", "vs"], columns="size", values="shown", aggfunc="first")
    table = table[[s for s in order if s in table.columns]]
    said = []
    for label, g in sorted(df.groupby("label"), key=lambda kv: -kv[1]["overhead"].max()):
        if g["overhead"].max() <= 0.01:
            continue
        last = g.set_index("size").loc[[s for s in order if s in set(g["size"])][-1]]
        said.append(f"{label}, up to {fmt_s(g['overhead'].max())} (at {last.name}, the largest"
                    f" size it ran, {_repaid(last['steps'], last['vs'])})")
    return ("Each cell: the first call's extra time over a steady step (tracing, compiling,"
            " allocating), then after how many steps that time is made back against `vs` (the"
            " same framework op by op, or numpy): extra first-call time over `vs`'s, divided by"
            " the time saved per step. `at once`: its first call costs no more than `vs`'s;"
            " `never`: it is not faster per step than `vs`. First calls costing over 10 ms more"
            f" than a step: {'; '.join(said) or 'none'}.\n\n" + md_table(table.reset_index()))


def _held(run: RunData) -> tuple[pd.DataFrame, list[str]]:
    """The cells with a share of peak that means something, and the labels left out: a TF32
    cell (its read-back matmul_precision) counts only against a TF32 peak of its device
    measured in this run (harness/measure/peak.py, held_against); a run that divided one by
    the float32 peak (before issue 20) has its share dropped here, not shown."""
    ok = run.ok
    if "matmul_precision" not in ok:
        return ok, []
    peaks = run.meta.get("peak") if isinstance(run.meta.get("peak"), dict) else {}
    tf32 = ok["matmul_precision"].map(is_tf32)
    against = [held_against(d, t, peaks) for d, t in zip(ok["device"], tf32, strict=True)]
    keep = pd.Series([a is not None for a in against], index=ok.index)
    dropped = sorted(set(ok.loc[~keep & ok["peak_fraction"].notna(), "label"]))
    return ok.assign(peak_fraction=ok["peak_fraction"].where(keep)), dropped


def _above_peak(ok: pd.DataFrame, peaks: dict) -> str:
    """A share above 100% is flagged, each with the run's own numbers: the cell's achieved rate,
    the peak it was held against, how that peak was measured and the run's best of it."""
    over = ok[ok["peak_fraction"] > 1]
    if over.empty:
        return ""
    said = []
    for r in over.itertuples():
        peak = peaks.get(r.device) if isinstance(peaks.get(r.device), dict) else {}
        best = peak.get("gflops")
        shape = " x ".join(str(int(getattr(r, c))) for c in ("n_samples", "n_features",
                                                             "n_hidden", "n_outputs")
                           if pd.notna(getattr(r, c, None)))
        said.append(f"{r.label} at size {r.size} ({shape}): {r.gflops:.4g} GFLOP/s against a"
                    f" peak of {r.peak_gflops:.4g} GFLOP/s in its rounds"
                    + (f" (the run's best: {best:.4g})" if isinstance(best, (int, float)) else "")
                    + f", {r.peak_fraction:.0%}")
    return ("**Above 100% of peak** (more than the measured peak allows): " + "; ".join(said)
            + ". The peak is one measurement (the method above: one kernel at one size), not a"
            " bound: these cells' steps ran their arithmetic faster than that kernel did, at"
            " their own shapes and in their own processes. Read their shares as relative to"
            " that measurement, not as a share of what the machine can do.")


def sec_peak(run: RunData) -> str:
    if why := run.needs("peak_fraction", "step_median_s", "flops_per_step", "peak_gflops"):
        return why
    ok, dropped = _held(run)
    if ok["peak_fraction"].notna().sum() == 0:
        return "_No cell has a share of a peak measured for its own matmul precision._"
    top = ok.loc[ok["peak_fraction"].idxmax()]
    sizes = size_order(ok)
    small = ok[(ok["size"] == sizes[0]) & ok["peak_fraction"].notna()].assign(
        at_peak=lambda d: d["flops_per_step"] / (d["peak_gflops"] * 1e9))
    small = small.assign(factor=small["step_median_s"] / small["at_peak"])
    at_peak = ", ".join(f"{fmt_s(g['at_peak'].min())} at the {dev} peak"
                        for dev, g in small.groupby("device"))
    peaks = run.meta.get("peak") if isinstance(run.meta.get("peak"), dict) else {}
    how = "; ".join(f"{k}: {dig(run.meta, f'peak.{k}.method', default='not recorded')}"
                    for k in sorted(peaks)) or "not recorded"
    text = (f"Achieved FLOP/s as a share of the machine's own matmul peak, measured in the same"
            f" run, each cell against the peak of its own matmul precision ({how}). The best is"
            f" {top['label']} at size {top['size']}: {top['peak_fraction']:.1%} of"
            f" {top['peak_gflops']:.4g} GFLOP/s.")
    if not small.empty:
        text += (f" At the smallest size ({sizes[0]}) no series passes"
                 f" {small['peak_fraction'].max():.2%}: its {small['flops_per_step'].iloc[0]:,.0f}"
                 f" FLOPs would take {at_peak}, but steps take"
                 f" {fmt_s(small['step_median_s'].min())} to {fmt_s(small['step_median_s'].max())}.")
        if small["factor"].min() > 10:
            text += (" So at that size nearly all of a step is per-call overhead (Python,"
                     " dispatch, kernel launches), not arithmetic: the lower that overhead, the"
                     " faster.")
    if dropped:
        text += (f" Left out: {', '.join(dropped)}, whose matmuls ran in TF32, for which this run"
                 " measured no TF32 peak; held against the float32 peak, TF32 would pass 100% by"
                 " design.")
    if over := _above_peak(ok, peaks):
        text += " " + over
    overhead = small[["label", "step_median_s", "at_peak", "factor"]].sort_values("step_median_s")
    overhead = overhead.assign(step_median_s=overhead["step_median_s"].map(fmt_s),
                               at_peak=overhead["at_peak"].map(fmt_s))
    shown = ok[ok["peak_fraction"].notna()]
    return (text + "\n\n" + md_table(pivot(shown, "peak_fraction",
                                     lambda x: f"{100 * x:.3g}%" + (" (!)" if x > 1 else "")))
            + f"\n\nPer-call overhead at size {sizes[0]} (`factor` = step time / time the"
            " arithmetic needs at peak):\n\n"
            + md_table(overhead.rename(columns={"label": "series", "step_median_s": "step time",
                                                "at_peak": "arithmetic at peak"})))
