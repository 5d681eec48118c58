"""The agreement sections: gradients (the check's rows) and training trajectories (its curves).

    from harness.report.agreement import sec_gradients, sec_training
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.report import plots
from harness.report.load import RunData
from harness.report.tables import md_table


def sec_gradients(run: RunData) -> str:
    rows = pd.DataFrame((run.check or {}).get("rows") or [])
    if rows.empty or run.check is None:
        return "_Not shown: this run has no `check.json`, or it holds no check rows._"
    rows["ratio"] = rows["worst_error"] / rows["tolerance"]
    rows["ok"] = rows["ok"].astype(bool)
    # One row per (kind, impl, mode, device, dtype): losses, activations, problems and
    # tensors fold into it, so thousands of comparisons fit on a screen.
    keys = [k for k in ("kind", "impl", "mode", "device", "dtype") if k in rows]
    worst = rows.sort_values("ratio", ascending=False)
    table = worst.groupby(keys, sort=True).agg(
        checks=("ok", "size"), failing=("ok", lambda s: int((~s).sum())),
        worst_error=("worst_error", "first"), tolerance=("tolerance", "first"),
        tensor=("tensor", "first"), loss=("loss", "first"),
        error_over_tolerance=("ratio", "first")).reset_index()
    top = worst.iloc[0]
    failing = rows[~rows["ok"]]
    text = (f"Before any timing, each implementation's gradients were checked."
            f" {len(rows) - len(failing)} of {len(rows)} comparisons are within tolerance, grouped"
            f" below into {len(table)} rows (worst entry per group). The closest to its tolerance"
            f" is {top.get('impl')} {top.get('mode')} {top.get('dtype')} {top.get('loss')},"
            f" tensor {top.get('tensor')}: error {top['worst_error']:.2g} against tolerance"
            f" {top['tolerance']:.2g} ({top['ratio']:.2g} of it). Kinds: `fd` = hand-written"
            " NumPy vs finite differences (float64 only); `grad` = each implementation vs that"
            " reference at the same parameters; `trajectory` = parameters after training.")
    if len(failing):
        cols = [c for c in keys + ["loss", "activation", "tensor", "worst_error", "tolerance",
                                   "diagnosis"] if c in rows]
        text += (f"\n\n**{len(failing)} comparisons fail:**\n\n"
                 + md_table(failing.sort_values("ratio", ascending=False)[cols], 15))
    return text + "\n\n" + md_table(table)


def sec_training(run: RunData) -> str:
    curves = pd.DataFrame((run.check or {}).get("curves") or [])
    if curves.empty:
        return "_Not shown: `check.json` holds no training curves._"
    ref = curves[curves["impl"] == "numpy"][["dtype", "loss", "epoch", "value"]]
    gaps = curves.merge(ref.drop_duplicates(["dtype", "loss", "epoch"]),
                        on=["dtype", "loss", "epoch"], suffixes=("", "_numpy"))
    gaps["gap"] = (gaps["value"] - gaps["value_numpy"]).abs()
    figure = plots.curves(curves, gaps, run.out)
    summary = curves.sort_values("epoch").groupby(["impl", "mode", "dtype", "loss"]).agg(
        epochs=("epoch", "size"), final_loss=("value", "last")).reset_index()
    worst = gaps.groupby(["impl", "mode", "dtype", "loss"])["gap"].max().rename("max_gap_vs_numpy")
    summary = summary.merge(worst.reset_index(), how="left")
    others = gaps[gaps["impl"] != "numpy"]
    if others.empty:
        verdict = "There is no NumPy curve, or no other curve, to compare with."
    elif others["gap"].max() == 0:
        verdict = "Every curve equals NumPy's exactly, at every epoch."
    else:
        top = others.loc[others["gap"].idxmax()]
        # One rounding step of the loss: the dtype's epsilon times the loss's size.
        ulp = np.finfo(str(top["dtype"])).eps * max(abs(top["value_numpy"]), 1e-300)
        verdict = (f"The largest difference from NumPy's loss is {top['gap']:.2g} ({top['impl']}"
                   f" {top['mode']}, {top['dtype']} {top['loss']}, epoch {top['epoch']}), about"
                   f" {top['gap'] / ulp:.2g} rounding steps of a {top['dtype']} number that size.")
        if top["gap"] < 1e-3 * abs(top["value_numpy"]):
            verdict += (" Overlaid lines (left) cannot show differences that small, so the"
                        " right-hand panels plot them.")
    return (f"Every implementation trained from the same parameters on the same batches, and its"
            f" loss per epoch is compared with NumPy's. {verdict}\n\n![loss curves]({figure})"
            f"\n\n{md_table(summary)}")
