"""python -m harness report RUN_DIR  -- write RUN_DIR/report.md and its PNG plots.

A view over stored results, never a re-run: it reads only the run folder's
meta.json, cells.csv, tta.csv and check.json (schema in docs/architecture.md)
and never imports a framework. `render(run_dir)` is what `bench --report`
calls. Every table is a pandas pivot of one of those files, and every
paragraph under a heading is generated from the numbers it sits above, so it
cannot drift from them. A missing file, a failed cell or an older schema
shortens a section with an explanation; it never stops the report.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness import plots
from harness.cli import UsageError
from harness.storage import SCHEMA_VERSION  # the run-folder schema this report reads

KEY = ["impl", "mode", "device", "dtype", "size"]


@dataclass
class Run:
    """A loaded run folder. Missing or unreadable files are None, with a note saying why."""

    path: Path
    meta: dict
    cells: pd.DataFrame | None
    tta: pd.DataFrame | None
    check: dict | None
    notes: list[str] = field(default_factory=list)

    def lacks(self, *columns: str) -> list[str]:
        return [c for c in columns if self.cells is None or c not in self.cells.columns]

    @property
    def ok(self) -> pd.DataFrame:
        """The cells that ran, with a finite step time."""
        c = self.cells
        return c[(c["status"] == "ok") & c["step_median_s"].notna()] if "step_median_s" in c else c


def _read(path: Path, notes: list[str], reader):
    if not path.exists():
        notes.append(f"`{path.name}` is missing from this run folder.")
        return None
    try:
        return reader(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        notes.append(f"`{path.name}` could not be read ({type(exc).__name__}: {exc}).")
        return None


def label_series(df: pd.DataFrame, dtypes: int) -> pd.DataFrame:
    """Add `label`: 'impl mode', plus ' gpu' off the CPU and the dtype when a run mixes dtypes."""
    df = df.copy()
    df["label"] = df["impl"].astype(str) + " " + df["mode"].astype(str)
    if "device" in df:
        df["label"] += df["device"].map(lambda d: "" if d == "cpu" else f" {d}")
    if dtypes > 1 and "dtype" in df:
        df["label"] += " " + df["dtype"].astype(str)
    return df


def load(run_dir: Path) -> Run:
    """Read a run folder; UsageError when `run_dir` is not one (no meta.json and no cells.csv)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a directory (expected a run folder under results/)")
    if not (run_dir / "meta.json").exists() and not (run_dir / "cells.csv").exists():
        raise UsageError(f"{run_dir} is not a run folder: it has neither meta.json nor cells.csv")
    notes: list[str] = []
    meta = _read(run_dir / "meta.json", notes, lambda p: json.loads(p.read_text()))
    if not isinstance(meta, dict):
        meta = {}
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        notes.append(
            f"This run folder has schema version {version if version is not None else 'unknown'};"
            f" this report reads version {SCHEMA_VERSION}. Sections whose columns are missing"
            " say so below; columns it does not know are ignored.")
    cells = _read(run_dir / "cells.csv", notes, pd.read_csv)
    if cells is not None and cells.empty:
        notes.append("`cells.csv` has no rows.")
        cells = None
    if cells is not None:
        if missing := [c for c in ("impl", "mode") if c not in cells]:
            notes.append(f"`cells.csv` has no {', '.join(missing)} column: no cell can be named.")
            cells = None
        else:
            # Older folders may lack some key columns; assume what the report can safely assume.
            defaults = {"device": "cpu", "dtype": "float32", "size": "?", "status": "ok",
                        "reason": ""}
            for col, value in defaults.items():
                if col not in cells:
                    notes.append(f"`cells.csv` has no `{col}` column; assumed {value or 'none'!r}.")
                    cells[col] = value
            cells["reason"] = cells["reason"].astype(object).fillna("")  # all-empty reads as NaN
            cells = label_series(cells, cells["dtype"].nunique())
    tta = _read(run_dir / "tta.csv", [], pd.read_csv)  # the tta section explains its absence
    check = _read(run_dir / "check.json", [], lambda p: json.loads(p.read_text()))
    return Run(run_dir, meta, cells, tta, check if isinstance(check, dict) else None, notes)


# ---- formatting helpers -------------------------------------------------------------


def fmt_s(x) -> str:
    """Seconds with a unit a reader can take in at a glance: 12.3 us, 4.56 ms, 7.8 s."""
    if x is None or pd.isna(x):
        return "-"
    x = float(f"{x:.3g}")  # round first, so 0.99999 s prints as 1 s, not 1e+03 ms
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x * 1e9:.3g} ns"


def fmt_steps(x) -> str:
    if pd.isna(x):
        return "never"
    return f"{x:,.0f}" if x < 1e6 else f"{x:.2g}"


def md_table(df: pd.DataFrame, max_rows: int = 40) -> str:
    """A GitHub markdown table (pandas' to_markdown needs tabulate, which we do not require)."""
    def text(v):
        if isinstance(v, float):
            return "-" if pd.isna(v) else f"{v:.3g}"
        return str(v).replace("|", "/").replace("\n", " ")

    cols = [str(c) for c in df.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    out += ["| " + " | ".join(text(v) for v in row) + " |"
            for row in df.head(max_rows).itertuples(index=False)]
    if len(df) > max_rows:
        out.append(f"\n_... and {len(df) - max_rows} more rows._")
    return "\n".join(out)


def size_order(df: pd.DataFrame) -> list:
    """Sizes from least to most work per step (sizes are labels; FLOPs give their order)."""
    if "flops_per_step" in df:
        return list(df.groupby("size")["flops_per_step"].median().sort_values().index)
    return list(pd.unique(df["size"]))


def pivot(df: pd.DataFrame, values: str, fmt) -> pd.DataFrame:
    """Rows = size (ascending work), columns = series, cells formatted by `fmt`."""
    table = df.pivot_table(index="size", columns="label", values=values, aggfunc="first")
    table = table.reindex([s for s in size_order(df) if s in table.index])
    table = table.map(lambda v: "-" if pd.isna(v) else fmt(v))
    return table.rename_axis(columns=None).reset_index()


def _needs(run: Run, *columns: str) -> str | None:
    """None when cells.csv has `columns`; otherwise the sentence that replaces the section."""
    if run.cells is None:
        return "_Not shown: this run has no readable `cells.csv`._"
    if missing := run.lacks(*columns):
        return (f"_Not shown: this run's `cells.csv` has no {', '.join(f'`{c}`' for c in missing)}"
                f" column (schema version {run.meta.get('schema_version', 'unknown')})._")
    if run.ok.empty:
        return "_Not shown: no cell of this run finished._"
    return None


def _numpy_baseline(ok: pd.DataFrame, column: str) -> pd.DataFrame:
    """Each cell joined with hand-written NumPy's value of `column` at its dtype and size."""
    base = ok[(ok["impl"] == "numpy") & (ok["device"] == "cpu")][["dtype", "size", column]]
    return ok.merge(base.drop_duplicates(["dtype", "size"]), on=["dtype", "size"],
                    suffixes=("", "_numpy"))


# ---- sections: each returns markdown; the paragraph reads the numbers under it -----


# meta.json fields the setup table leaves out: the plan and the options repeat what the
# paragraph above the table says, and raw samples belong in the files, not in prose.
_META_SKIP = ("profile.", "options.", "plan.", "runs", "settings.policy.")


def sec_setup(run: Run) -> str:
    flat = pd.json_normalize(run.meta, sep=".").to_dict("records")[0] if run.meta else {}
    facts = pd.DataFrame(
        [(k, str(v) if len(str(v)) <= 100 else str(v)[:97] + "...") for k, v in flat.items()
         if not k.startswith(_META_SKIP) and not k.endswith("samples")],
        columns=["field", "value"])
    facts = (md_table(facts, 80) if len(facts)
             else "_No metadata: `meta.json` is missing or unreadable._")
    if run.cells is None:
        return facts
    c = run.cells

    def listed(col):
        return ", ".join(map(str, pd.unique(c[col]))) if col in c else "not recorded"

    sizes = size_order(c)
    text = (f"This run holds {len(c)} cells: {c['label'].nunique()} implementation/mode series"
            f" on {listed('device')}, in {listed('dtype')}, at {len(sizes)} sizes"
            f" ({sizes[0]} to {sizes[-1]}), loss {listed('loss')}, hidden activation"
            f" {listed('activation')}; {int((c['status'] == 'ok').sum())} ran. Thread budget:"
            f" {listed('threads')}. Each cell is timed in a fresh process; medians and IQRs are"
            " over repeated samples of many steps (see `samples.csv`).")
    if "matmul_precision" in c and c["matmul_precision"].nunique() == 1:
        text += f" Every series ran with matmul precision `{c['matmul_precision'].iloc[0]}`."
    elif "matmul_precision" in c:
        prec = c.groupby("label")["matmul_precision"].first().reset_index()
        text += "\n\nMatmul precision as each series recorded it (TF32 rows are timing-only):\n\n"
        text += md_table(prec.rename(columns={"label": "series"}))
    return text + "\n\n" + facts


def sec_not_run(run: Run) -> str:
    parts = []
    if run.cells is not None:
        bad = run.cells[run.cells["status"] != "ok"]
        if bad.empty:
            parts.append(f"All {len(run.cells)} cells ran.")
        else:
            counts = ", ".join(f"{n} {s}" for s, n in bad["status"].value_counts().items())
            parts += [f"{len(bad)} of {len(run.cells)} cells did not produce a time ({counts}); "
                      "they are left out of every table and plot below.", "",
                      md_table(bad.groupby(KEY[:-1] + ["status", "reason"], sort=False)["size"]
                               .agg(lambda s: ", ".join(map(str, s))).reset_index()
                               .rename(columns={"size": "sizes"}))]
    unavailable = (run.check or {}).get("unavailable") or []
    if unavailable:
        parts += ["", "Not checked, because unavailable where the check ran:", "",
                  md_table(pd.DataFrame(unavailable))]
    return "\n".join(parts) or "_Nothing to list: no cells.csv and no check.json._"


def sec_gradients(run: Run) -> str:
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
    text = (f"{len(rows) - len(failing)} of {len(rows)} comparisons are within tolerance, grouped"
            f" below into {len(table)} rows (worst entry per group). The closest to its tolerance"
            f" is {top.get('impl')} {top.get('mode')} {top.get('dtype')} {top.get('loss')},"
            f" tensor {top.get('tensor')}: error {top['worst_error']:.2g} against tolerance"
            f" {top['tolerance']:.2g} ({top['ratio']:.2g} of it). Kinds: `fd` = hand-written"
            " NumPy vs finite differences (float64 only); `grad` = another implementation vs that"
            " reference at the same parameters; `trajectory` = parameters after training.")
    if len(failing):
        cols = [c for c in keys + ["loss", "activation", "tensor", "worst_error", "tolerance",
                                   "diagnosis"] if c in rows]
        text += (f"\n\n**{len(failing)} comparisons fail:**\n\n"
                 + md_table(failing.sort_values("ratio", ascending=False)[cols], 15))
    return text + "\n\n" + md_table(table)


def sec_training(run: Run) -> str:
    curves = pd.DataFrame((run.check or {}).get("curves") or [])
    if curves.empty:
        return "_Not shown: `check.json` holds no training curves._"
    ref = curves[curves["impl"] == "numpy"][["dtype", "loss", "epoch", "value"]]
    gaps = curves.merge(ref.drop_duplicates(["dtype", "loss", "epoch"]),
                        on=["dtype", "loss", "epoch"], suffixes=("", "_numpy"))
    gaps["gap"] = (gaps["value"] - gaps["value_numpy"]).abs()
    figure = plots.curves(curves, gaps, run.path)
    summary = curves.sort_values("epoch").groupby(["impl", "mode", "dtype", "loss"]).agg(
        epochs=("epoch", "size"), final_loss=("value", "last")).reset_index()
    worst = gaps.groupby(["impl", "mode", "dtype", "loss"])["gap"].max().rename("max_gap_vs_numpy")
    summary = summary.merge(worst.reset_index(), how="left")
    others = gaps[gaps["impl"] != "numpy"]
    if others.empty:
        verdict = "There is no NumPy curve, or no other curve, to compare with."
    else:
        top = others.loc[others["gap"].idxmax()]
        verdict = (f"The largest difference from NumPy's loss is {top['gap']:.2g} ({top['impl']}"
                   f" {top['mode']}, {top['dtype']} {top['loss']}, epoch {top['epoch']}); overlaid"
                   " lines hide anything that small, so the right-hand panel plots it.")
    return (f"Every implementation trained from the same parameters on the same batches."
            f" {verdict}\n\n![loss curves]({figure})\n\n{md_table(summary)}")


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


def sec_speed(run: Run) -> str:
    if why := _needs(run, "step_median_s", "step_iqr_s", "flops_per_step"):
        return why
    ok = run.ok
    noisy = ok["noisy"].astype(bool) if "noisy" in ok else pd.Series(False, index=ok.index)
    times = ok.assign(shown=[fmt_s(t) + ("~" if n else "")
                             for t, n in zip(ok["step_median_s"], noisy, strict=True)])
    sizes = size_order(ok)
    small, large = ok[ok["size"] == sizes[0]], ok[ok["size"] == sizes[-1]]
    text = (f"Steady step time per series (median; `~` marks a noisy cell, IQR above 10% of the"
            f" median: {int(noisy.sum())} of {len(ok)}). At the smallest size ({sizes[0]}) the"
            f" fastest is {small.loc[small['step_median_s'].idxmin(), 'label']}; at the largest"
            f" ({sizes[-1]}) it is {large.loc[large['step_median_s'].idxmin(), 'label']}.")
    parts = [text, "", f"![step time]({plots.speed(ok, run.path)})", "",
             md_table(pivot(times, "shown", str))]
    ratios = _numpy_baseline(ok, "step_median_s")
    if ratios.empty:
        parts += ["", "_No hand-written NumPy cell ran, so there is no speed-up baseline._"]
    else:
        ratios["speedup"] = ratios["step_median_s_numpy"] / ratios["step_median_s"]
        best = ratios[ratios["impl"] != "numpy"]
        if len(best):
            top = best.loc[best["speedup"].idxmax()]
            parts += ["", f"Speed-up over hand-written NumPy (its time divided by each series';"
                      f" above 1 = faster). The largest is {top['speedup']:.3g}x, by"
                      f" {top['label']} at size {top['size']}."]
        parts += ["", f"![speed-up]({plots.speedup(ratios, run.path)})", "",
                  md_table(pivot(ratios, "speedup", lambda x: f"{x:.3g}x"))]
    cross = crossovers(ok)
    if cross.empty:
        parts += ["", "No series overtakes another as size grows: the order is the same at"
                      " every size measured."]
    else:
        vs_numpy = cross[(cross["than"].str.startswith("numpy ")) & cross["upward"]]
        said = "; ".join(f"{r.faster} overtakes {r.than} from size {r.from_size} upward"
                         + (" (within noise)" if r.within_noise else "")
                         for r in vs_numpy.itertuples())
        parts += ["", f"Crossovers (where one series becomes faster than another as size"
                      f" grows). {said + '.' if said else 'No series overtakes numpy for good.'}",
                  "", md_table(cross, 25)]
    return "\n".join(parts)


# The series a compiled mode must beat to repay its first call: the same framework run
# op by op. Anything else (and those op-by-op modes themselves) is measured against numpy.
_REFERENCE_MODE = {"torch": "eager", "jax": "nojit"}


def sec_compile(run: Run) -> str:
    if why := _needs(run, "first_call_s", "step_median_s"):
        return why
    ok = run.ok.assign(overhead=run.ok["first_call_s"] - run.ok["step_median_s"])
    rows = []
    # numpy is the baseline; sklearn's fit() has no separate first call worth the name.
    for r in ok[~ok["impl"].isin(["numpy", "sklearn"])].itertuples():
        ref_mode = _REFERENCE_MODE.get(r.impl) if r.mode != _REFERENCE_MODE.get(r.impl) else None
        ref = ok[(ok["impl"] == r.impl) & (ok["mode"] == ref_mode) & (ok["device"] == r.device)]
        if ref_mode is None or ref.empty:
            ref = ok[(ok["impl"] == "numpy") & (ok["device"] == "cpu")]
        ref = ref[(ref["dtype"] == r.dtype) & (ref["size"] == r.size)]
        if ref.empty:
            continue
        ref = ref.iloc[0]
        # Extra one-off cost over the reference's own first call, repaid by the per-step saving.
        extra = r.overhead - ref["overhead"]
        saving = ref["step_median_s"] - r.step_median_s
        steps = 0 if extra <= 0 else (math.ceil(extra / saving) if saving > 0 else float("nan"))
        rows.append({"label": r.label, "vs": ref["label"], "size": r.size, "steps": steps,
                     "overhead": r.overhead, "shown": f"{fmt_s(r.overhead)} / {fmt_steps(steps)}"})
    if not rows:
        return "_No series has a reference cell (its op-by-op mode or numpy) at the same size._"
    df = pd.DataFrame(rows)
    table = df.pivot_table(index=["label", "vs"], columns="size", values="shown", aggfunc="first")
    table = table[[s for s in size_order(run.ok) if s in table.columns]]
    largest = size_order(run.ok)[-1]
    costly = df.groupby("label")["overhead"].max().sort_values(ascending=False)
    said = "; ".join(
        f"{label} up to {fmt_s(v)}" + "".join(
            f" (repaid after {fmt_steps(r.steps)} steps at size {largest} against {r.vs})"
            for r in df[(df["label"] == label) & (df["size"] == largest)].itertuples())
        for label, v in costly.items() if v > 0.01)
    return ("First call (tracing, compiling, allocating) minus one steady step, then the number"
            " of steps after which the series has made that time back against `vs` (the same"
            " framework op by op, or numpy): extra first-call time divided by time saved per"
            " step; `never` where it is not faster. First calls costing over 10 ms more than a"
            f" step: {said or 'none'}.\n\n" + md_table(table.reset_index()))


def sec_peak(run: Run) -> str:
    if why := _needs(run, "peak_fraction", "step_median_s", "flops_per_step", "peak_gflops"):
        return why
    ok = run.ok
    top = ok.loc[ok["peak_fraction"].idxmax()]
    sizes = size_order(ok)
    small = ok[ok["size"] == sizes[0]].assign(
        at_peak=lambda d: d["flops_per_step"] / (d["peak_gflops"] * 1e9))
    small = small.assign(factor=small["step_median_s"] / small["at_peak"])
    at_peak = ", ".join(f"{fmt_s(g['at_peak'].min())} at the {dev} peak"
                        for dev, g in small.groupby("device"))
    how = "; ".join(f"{d}: {(run.meta.get('peak') or {}).get(d, {}).get('method', 'not recorded')}"
                    for d in ok["device"].unique())
    text = (f"Achieved FLOP/s as a share of the machine's own matmul peak, measured in the same"
            f" run ({how}). The best is {top['label']} at size {top['size']}:"
            f" {top['peak_fraction']:.1%} of {top['peak_gflops']:.4g} GFLOP/s. At the smallest"
            f" size ({sizes[0]}) no series passes {small['peak_fraction'].max():.2%}: its"
            f" {small['flops_per_step'].iloc[0]:,.0f} FLOPs would take {at_peak}, but steps take"
            f" {fmt_s(small['step_median_s'].min())} to {fmt_s(small['step_median_s'].max())}."
            " That time is per-call overhead (Python, dispatch, kernel launches), not arithmetic.")
    if (ok["peak_fraction"] > 1).any():
        text += (" Shares above 100% mean that peak measurement underestimates this machine:"
                 " read them as relative, not absolute.")
    overhead = small[["label", "step_median_s", "at_peak", "factor"]].sort_values("step_median_s")
    overhead = overhead.assign(step_median_s=overhead["step_median_s"].map(fmt_s),
                               at_peak=overhead["at_peak"].map(fmt_s))
    return (text + "\n\n" + md_table(pivot(ok, "peak_fraction", lambda x: f"{100 * x:.3g}%"))
            + f"\n\nPer-call overhead at size {sizes[0]} (`factor` = step time / time the"
            " arithmetic needs at peak):\n\n"
            + md_table(overhead.rename(columns={"at_peak": "arithmetic at peak"})))


def sec_tta(run: Run) -> str:
    t = run.tta
    if t is None:
        return "_Not measured in this run: there is no `tta.csv`._"
    needed = ["impl", "mode", "dataset", "target", "reached", "seconds"]
    if missing := [c for c in needed if c not in t]:
        return f"_Not shown: `tta.csv` has no {', '.join(missing)} column._"
    t = label_series(t.assign(device=t.get("device", "cpu")), t["dtype"].nunique()
                     if "dtype" in t else 1)
    status = t["status"] if "status" in t else pd.Series("ok", index=t.index)
    t["reached_ok"] = t["reached"].astype(str).str.lower().isin(["true", "1"]) & (status == "ok")
    why = t.get("reason", pd.Series("", index=t.index)).astype(object).fillna("")
    epochs = t.get("epochs", pd.Series(float("nan"), index=t.index))
    t["shown"] = [f"{s:.3g} s" + (f" ({e:.0f} epochs)" if pd.notna(e) else "") if ok
                  else f"not reached ({st}{': ' + w if w else ''})"
                  for ok, s, e, st, w in zip(t["reached_ok"], t["seconds"], epochs, status, why,
                                             strict=True)]
    lines = []
    for dataset, g in t.groupby("dataset"):
        done = g[g["reached_ok"]]
        if done.empty:
            lines.append(f"On {dataset} no series reached the target {g['target'].iloc[0]}.")
            continue
        fast, slow = done.loc[done["seconds"].idxmin()], done.loc[done["seconds"].idxmax()]
        line = (f"On {dataset} (target {g['target'].iloc[0]}), {fast['label']} gets there"
                f" {'first, ' if len(done) > 1 else ''}in {fast['seconds']:.3g} s")
        if len(done) > 1:
            line += f"; {slow['label']} takes {slow['seconds'] / fast['seconds']:.3g}x as long"
        missed = len(g) - len(done)
        lines.append(line + (f"; {missed} did not reach it." if missed else "."))
    table = t.pivot_table(index="label", columns="dataset", values="shown", aggfunc="first")
    return (" ".join(lines) + " Wall-clock time includes each framework's first-call cost,"
            f" which is what a user waits for.\n\n![time to accuracy]({plots.tta(t, run.path)})"
            "\n\n" + md_table(table.rename_axis(columns=None).reset_index()))


def sec_memory(run: Run) -> str:
    if why := _needs(run, "peak_mem_bytes", "flops_per_step"):
        return why
    ok = run.ok[run.ok["peak_mem_bytes"].notna()]
    if ok.empty:
        return "_Not measured: no cell recorded `peak_mem_bytes`._"
    said = []
    for device, g in ok.groupby("device"):  # CPU and GPU numbers measure different things
        g = g[g["size"] == size_order(g)[-1]]
        hi, lo = g.loc[g["peak_mem_bytes"].idxmax()], g.loc[g["peak_mem_bytes"].idxmin()]
        said.append(f"on the {device} at its largest size ({hi['size']}), {hi['label']} peaks"
                    f" highest, at {hi['peak_mem_bytes'] / 2**20:,.1f} MiB, and"
                    f" {lo['label']} lowest, at {lo['peak_mem_bytes'] / 2**20:,.1f} MiB")
    how = (", ".join(f"`{m}`" for m in ok["peak_mem_method"].dropna().unique())
           if "peak_mem_method" in ok else "not recorded")
    return (f"Peak memory, measured in runs separate from timing: {'; '.join(said)}."
            f" How it was measured: {how}.\n\n"
            f"![memory]({plots.memory(ok, run.path)})\n\n"
            + md_table(pivot(ok, "peak_mem_bytes", lambda b: f"{b / 2**20:,.1f} MiB")))


def sec_peer(run: Run) -> str:
    if why := _needs(run, "step_median_s"):
        return why
    peer = _numpy_baseline(run.ok, "step_median_s")
    peer = peer[peer["impl"] == "sklearn"]
    if peer.empty:
        return "_No scikit-learn cell ran alongside a numpy cell in this run._"
    ratio = peer["step_median_s"] / peer["step_median_s_numpy"]
    table = pd.DataFrame({"size": peer["size"], "sklearn step": peer["step_median_s"].map(fmt_s),
                          "numpy step": peer["step_median_s_numpy"].map(fmt_s),
                          "sklearn / numpy": ratio.map(lambda x: f"{x:.3g}x")})
    return ("scikit-learn's MLPClassifier is the field's standard NumPy backprop. It is not held"
            " to this project's contract (its own initialisation, loss and solver code), so only"
            f" its step time is compared: {ratio.min():.3g}x to {ratio.max():.3g}x the"
            " hand-written NumPy step at the same sizes (above 1 = slower).\n\n"
            + md_table(table))


SECTIONS = [
    ("Setup", sec_setup),
    ("Cells that did not run", sec_not_run),
    ("Gradient agreement", sec_gradients),
    ("Training agreement", sec_training),
    ("Speed", sec_speed),
    ("Compile cost", sec_compile),
    ("Share of the machine's peak, and per-call overhead", sec_peak),
    ("Time to accuracy", sec_tta),
    ("Memory", sec_memory),
    ("scikit-learn, the peer", sec_peer),
]


def render(run_dir: Path) -> Path:
    """Write report.md (atomically) and the PNGs into `run_dir`; return report.md's path."""
    run = load(run_dir)
    parts = [f"# Benchmark report: `{run.path.name}`", ""]
    if run.notes:
        parts += ["> **What this report cannot show.**", *[f"> - {n}" for n in run.notes], ""]
    for title, section in SECTIONS:
        parts += [f"## {title}", ""]
        try:
            parts += [section(run), ""]
        except Exception as exc:  # noqa: BLE001  one bad section must not lose the others
            parts += [f"_This section could not be rendered from this run: "
                      f"{type(exc).__name__}: {exc}_", ""]
    plots.plt.close("all")
    out = run.path / "report.md"
    tmp = run.path / ".report.md.tmp"
    tmp.write_text("\n".join(parts).rstrip() + "\n", encoding="utf-8")
    os.replace(tmp, out)  # a reader sees the old report or the new one, never half of one
    return out


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path,
                        help="a run folder, e.g. results/20250101-120000-default")


def run(args) -> int:
    out = render(args.run_dir)
    print(f"wrote {out}")
    return 0
