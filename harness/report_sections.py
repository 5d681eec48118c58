"""The sections of report.md, one function each: `sec_*(run) -> markdown`.

Called by harness/report.py, which loads the run folder into a `Run` (meta,
cells, tta, check) and puts the sections in the order of `SECTIONS`. Every
table is a pandas pivot of one stored file, and every paragraph is generated
from the numbers it sits above, so it cannot drift from them: a sentence that
could be false for some run is only written when the numbers make it true.
The formatting helpers come first, then the sections in page order.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from harness import plots
from harness.stats import fmt_seconds as fmt_s

if TYPE_CHECKING:
    from harness.report import Run

KEY = ["impl", "mode", "device", "dtype", "size"]


# ---- helpers ------------------------------------------------------------------------


def label_series(df: pd.DataFrame, dtypes: int, devices=None) -> pd.DataFrame:
    """Add `label`: 'impl mode', plus the device when the run is not CPU-only, plus the dtype
    when the run mixes dtypes. `devices`: the run's devices (default: this table's)."""
    df = df.copy()
    df["label"] = df["impl"].astype(str) + " " + df["mode"].astype(str)
    if "device" in df:
        devices = set(df["device"]) if devices is None else set(devices)
        if devices - {"cpu"}:
            df["label"] += " " + df["device"].astype(str)
    if dtypes > 1 and "dtype" in df:
        df["label"] += " " + df["dtype"].astype(str)
    return df


def fmt_mib(b) -> str:
    return f"{b / 2**20:,.1f} MiB"


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


def words(items) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


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


def needs(run: Run, *columns: str) -> str | None:
    """None when cells.csv has `columns`; otherwise the sentence that replaces the section."""
    if run.cells is None:
        return "_Not shown: this run has no readable `cells.csv`._"
    if missing := run.lacks(*columns):
        return (f"_Not shown: this run's `cells.csv` has no {', '.join(f'`{c}`' for c in missing)}"
                f" column (schema version {run.meta.get('schema_version', 'unknown')})._")
    if run.ok.empty:
        return "_Not shown: no cell of this run finished._"
    return None


def numpy_baseline(ok: pd.DataFrame, column: str) -> pd.DataFrame:
    """Each cell joined with hand-written NumPy's value of `column` at its dtype and size."""
    base = ok[(ok["impl"] == "numpy") & (ok["device"] == "cpu")][["dtype", "size", column]]
    return ok.merge(base.drop_duplicates(["dtype", "size"]), on=["dtype", "size"],
                    suffixes=("", "_numpy"))


def dig(d, *paths: str, default=None):
    """The first of the dotted `paths` present (not None) in nested dict `d`, else `default`.
    Several paths: meta.json's layout changed over schema versions."""
    for path in paths:
        v = d
        for key in path.split("."):
            v = v.get(key) if isinstance(v, dict) else None
        if v is not None:
            return v
    return default


# ---- Setup --------------------------------------------------------------------------


# Which implementation a library's version matters to (None: the harness itself uses it).
_LIBRARY_IMPL = {"numpy": None, "torch": "torch", "jax": "jax", "jaxlib": "jax",
                 "cupy": "cupy", "scikit-learn": "sklearn"}


def _blas(meta: dict) -> str | None:
    blas = meta.get("blas") or dig(meta, "peak.cpu.blas")
    if isinstance(blas, str):
        return blas
    said = []
    for p in blas or []:
        if isinstance(p, dict) and p.get("user_api", "blas") == "blas":
            extra = ", ".join(str(p[k]) for k in ("threading_layer", "architecture") if p.get(k))
            said.append(f"{p.get('internal_api', '?')} {p.get('version', '')},"
                        f" {p.get('num_threads', '?')} threads" + (f" ({extra})" if extra else ""))
    return "; ".join(said) or None


def _thread_budget(meta: dict) -> str | None:
    threads = dig(meta, "thread_budget.threads", "settings.threads", "threads")
    if threads is None:
        return None
    text = f"{threads} threads"
    if cpus := dig(meta, "thread_budget.cpus", "settings.cpus"):
        text += f", pinned to CPUs {', '.join(map(str, cpus))}"
    env = dig(meta, "thread_budget.env", default={})
    by_value: dict[str, list[str]] = {}
    for name, value in env.items():
        if value not in (None, ""):
            value = "a fresh folder per cell" if "<fresh dir per cell>" in str(value) else value
            by_value.setdefault(str(value), []).append(name)
    if by_value:
        text += "; environment set: " + "; ".join(f"{', '.join(names)} = {value}"
                                                  for value, names in by_value.items())
    return text


def _peaks(meta: dict) -> str | None:
    said = []
    for device, p in (meta.get("peak") or {}).items():
        if isinstance(p, dict) and p.get("gflops") and p.get("status", "ok") == "ok":
            said.append(f"{device}: {p['gflops']:,.1f} GFLOP/s ({p.get('method', 'method not recorded')})")
        elif isinstance(p, dict):
            said.append(f"{device}: not measured ({p.get('reason') or p.get('status', '?')})")
    if not said and isinstance(meta.get("peak_gflops"), dict):  # an older layout
        said = [f"{d}: {g:,.1f} GFLOP/s" for d, g in meta["peak_gflops"].items()]
    return "; ".join(said) or None


def setup_facts(run: Run) -> pd.DataFrame:
    """The machine and the run's settings, one line each; a fact meta.json lacks is left out."""
    meta, rows = run.meta, []
    model = dig(meta, "machine.cpu_model", "cpu.model")
    cpus = dig(meta, "machine.cpus", default={})
    usable = cpus.get("usable") if isinstance(cpus, dict) else None
    usable = usable if usable is not None else dig(meta, "cpu.cores")
    if model or usable:
        text = model or "CPU model not recorded"
        if usable:
            more = ", ".join(f"{cpus[k]} {k}" for k in ("logical", "physical")
                             if isinstance(cpus, dict) and cpus.get(k))
            text += f"; {usable} cores usable" + (f" ({more})" if more else "")
        if mem := dig(meta, "machine.memory_bytes"):
            text += f"; {mem / 2**30:.1f} GiB memory"
        rows.append(("machine", text))
    gpus = dig(meta, "machine.gpus", "gpus", "gpu")
    if isinstance(gpus, dict):
        gpus = [gpus]
    if isinstance(gpus, list):
        rows.append(("GPU", "; ".join(
            ", ".join([g.get("name", "?")] + [f"{k} {g[k]}" for k in ("driver", "memory")
                                               if g.get(k)]) for g in gpus) or "none found"))
    if platform := dig(meta, "machine.platform", "platform"):
        host = dig(meta, "machine.host", "host")
        rows.append(("OS", platform + (f" (host `{host}`)" if host else "")))
    if python := dig(meta, "machine.python", "python"):
        rows.append(("Python", python))
    versions = dig(meta, "machine.versions", "versions", default={})
    used = set(run.cells["impl"]) if run.cells is not None else None
    libs = [f"{lib} {versions[lib]}" for lib, impl in _LIBRARY_IMPL.items()
            if versions.get(lib) and (impl is None or used is None or impl in used)]
    if libs:
        rows.append(("libraries", ", ".join(libs)))
    if blas := _blas(meta):
        rows.append(("BLAS (NumPy's)", blas))
    machine = meta.get("machine")
    if isinstance(machine, dict) and "OPENBLAS_CORETYPE" in machine:
        rows.append(("OPENBLAS_CORETYPE", machine["OPENBLAS_CORETYPE"] or "not set"))
    if budget := _thread_budget(meta):
        rows.append(("thread budget", budget))
    if peaks := _peaks(meta):
        rows.append(("measured matmul peak", peaks))
    git = dig(meta, "machine.git", "git", default={})
    if isinstance(git, dict) and git.get("commit"):
        dirty = {True: "uncommitted changes", False: "clean"}.get(git.get("dirty"), "dirty unknown")
        rows.append(("git commit", f"`{git['commit'][:12]}` ({dirty})"))
    if utc := dig(meta, "machine.utc", "utc"):
        rows.append(("started (UTC)", utc))
    training = [f"{name} {v}" for name, v in (
        ("loss", dig(meta, "settings.loss", "profile.loss")),
        ("hidden activation", dig(meta, "settings.activation")),
        ("learning rate", dig(meta, "settings.lr", "profile.lr")),
        ("dtypes", ", ".join(dig(meta, "profile.dtypes", default=[])) or None)) if v is not None]
    if training:
        rows.append(("training", ", ".join(training)))
    return pd.DataFrame(rows, columns=["", "value"])


def sec_setup(run: Run) -> str:
    parts = []
    c = run.cells
    if c is not None:
        def listed(col):
            return ", ".join(map(str, pd.unique(c[col]))) if col in c else "not recorded"

        sizes = size_order(c)
        parts.append(
            f"This run holds {len(c)} cells: {c['label'].nunique()} implementation/mode series"
            f" on {listed('device')}, in {listed('dtype')}, at {len(sizes)} sizes"
            f" ({sizes[0]} to {sizes[-1]}), loss {listed('loss')}, hidden activation"
            f" {listed('activation')}; {int((c['status'] == 'ok').sum())} ran. Each cell is timed"
            " in a fresh process; a median and an IQR are over repeated samples, each of many"
            " steps (raw samples in `samples.csv`).")
    facts = setup_facts(run)
    parts.append(md_table(facts) if len(facts)
                 else "_No metadata: `meta.json` is missing, unreadable or empty._")
    if c is not None and "matmul_precision" in c:
        if c["matmul_precision"].nunique() == 1:
            parts.append(f"Every series ran with matmul precision `{c['matmul_precision'].iloc[0]}`.")
        else:
            prec = c.groupby("label")["matmul_precision"].first().reset_index()
            parts += ["Matmul precision as each series recorded it (TF32 rows are timing-only):",
                      md_table(prec.rename(columns={"label": "series"}))]
    parts.append("Everything else (the profile, the command-line options, each implementation's"
                  " own settings): `meta.json`.")
    return "\n\n".join(parts)


# ---- Cells that did not run, gradient and training agreement -------------------------


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
        parts += ["", "Not correctness-checked, because unavailable where the check ran:", "",
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


# ---- Speed --------------------------------------------------------------------------


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


def sec_speed(run: Run) -> str:
    if why := needs(run, "step_median_s", "step_iqr_s", "flops_per_step"):
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


# ---- Compile cost -------------------------------------------------------------------


# The series a compiled mode must beat to repay its first call: the same framework run
# op by op. Anything else (and those op-by-op modes themselves) is measured against numpy.
_REFERENCE_MODE = {"torch": "eager", "jax": "nojit"}


def _repaid(steps, vs: str) -> str:
    if steps == 0:
        return f"no more than {vs}'s own first call, so nothing to repay"
    if pd.isna(steps):
        return f"never repaid: {vs} is as fast or faster per step"
    return f"repaid against {vs} after {steps:,.0f} step{'s' if steps != 1 else ''}"


def sec_compile(run: Run) -> str:
    if why := needs(run, "first_call_s", "step_median_s"):
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


# ---- Peak, time to accuracy, memory, peer -------------------------------------------


def sec_peak(run: Run) -> str:
    if why := needs(run, "peak_fraction", "step_median_s", "flops_per_step", "peak_gflops"):
        return why
    ok = run.ok
    top = ok.loc[ok["peak_fraction"].idxmax()]
    sizes = size_order(ok)
    small = ok[ok["size"] == sizes[0]].assign(
        at_peak=lambda d: d["flops_per_step"] / (d["peak_gflops"] * 1e9))
    small = small.assign(factor=small["step_median_s"] / small["at_peak"])
    at_peak = ", ".join(f"{fmt_s(g['at_peak'].min())} at the {dev} peak"
                        for dev, g in small.groupby("device"))
    how = "; ".join(f"{d}: {dig(run.meta, f'peak.{d}.method', default='not recorded')}"
                    for d in ok["device"].unique())
    text = (f"Achieved FLOP/s as a share of the machine's own matmul peak, measured in the same"
            f" run ({how}). The best is {top['label']} at size {top['size']}:"
            f" {top['peak_fraction']:.1%} of {top['peak_gflops']:.4g} GFLOP/s. At the smallest"
            f" size ({sizes[0]}) no series passes {small['peak_fraction'].max():.2%}: its"
            f" {small['flops_per_step'].iloc[0]:,.0f} FLOPs would take {at_peak}, but steps take"
            f" {fmt_s(small['step_median_s'].min())} to {fmt_s(small['step_median_s'].max())}.")
    if small["factor"].min() > 10:
        text += (" So at that size nearly all of a step is per-call overhead (Python, dispatch,"
                 " kernel launches), not arithmetic: the lower that overhead, the faster.")
    if (ok["peak_fraction"] > 1).any():
        text += (" Shares above 100% mean that peak measurement underestimates this machine:"
                 " read them as relative, not absolute.")
    overhead = small[["label", "step_median_s", "at_peak", "factor"]].sort_values("step_median_s")
    overhead = overhead.assign(step_median_s=overhead["step_median_s"].map(fmt_s),
                               at_peak=overhead["at_peak"].map(fmt_s))
    return (text + "\n\n" + md_table(pivot(ok, "peak_fraction", lambda x: f"{100 * x:.3g}%"))
            + f"\n\nPer-call overhead at size {sizes[0]} (`factor` = step time / time the"
            " arithmetic needs at peak):\n\n"
            + md_table(overhead.rename(columns={"label": "series", "step_median_s": "step time",
                                                "at_peak": "arithmetic at peak"})))


def sec_tta(run: Run) -> str:
    t = run.tta
    if t is None:
        return "_Not measured in this run: there is no `tta.csv`._"
    needed = ["impl", "mode", "dataset", "target", "reached", "seconds"]
    if missing := [c for c in needed if c not in t]:
        return f"_Not shown: `tta.csv` has no {', '.join(missing)} column._"
    t = t.assign(device=t.get("device", "cpu"))
    devices = set(t["device"]) | set(run.devices)
    t = label_series(t, t["dtype"].nunique() if "dtype" in t else 1, devices)
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
        if len(done) > 1 and "epochs" in done and done["epochs"].nunique() == 1:
            line += f"; all needed the same {done['epochs'].iloc[0]:.0f} epochs"
        missed = len(g) - len(done)
        lines.append(line + (f"; {missed} did not reach it." if missed else "."))
    table = t.pivot_table(index="label", columns="dataset", values="shown", aggfunc="first")
    return (" ".join(lines) + " Wall-clock time from the first step, first-call cost included:"
            " what a user waits for.\n\n"
            f"![time to accuracy]({plots.tta(t, run.path)})\n\n"
            + md_table(table.rename_axis(columns=None).reset_index()))


def sec_memory(run: Run) -> str:
    if why := needs(run, "peak_mem_bytes", "flops_per_step"):
        return why
    ok = run.ok[run.ok["peak_mem_bytes"].notna()]
    if ok.empty:
        return "_Not measured: no cell recorded `peak_mem_bytes`._"
    said = []
    for device, g in ok.groupby("device"):  # CPU and GPU numbers measure different things
        g = g[g["size"] == size_order(g)[-1]]
        hi, lo = g.loc[g["peak_mem_bytes"].idxmax()], g.loc[g["peak_mem_bytes"].idxmin()]
        said.append(f"on the {device} at its largest size ({hi['size']}), {hi['label']} peaks"
                    f" highest, at {fmt_mib(hi['peak_mem_bytes'])}, and"
                    f" {lo['label']} lowest, at {fmt_mib(lo['peak_mem_bytes'])}")
    how = (", ".join(f"`{m}`" for m in ok["peak_mem_method"].dropna().unique())
           if "peak_mem_method" in ok else "not recorded")
    text = (f"Peak memory during training steps, measured in runs separate from timing:"
            f" {'; '.join(said)}. How it was measured: {how}.")
    if "setup_mem_bytes" in ok and ok["setup_mem_bytes"].notna().any():
        big = ok.loc[ok["setup_mem_bytes"].idxmax()]
        text += (f" Memory taken while setting up (before the steps) is not in these peaks; the"
                 f" most was {fmt_mib(big['setup_mem_bytes'])}, by {big['label']} at size"
                 f" {big['size']} (column `setup_mem_bytes` of `cells.csv`).")
    return (text + f"\n\n![memory]({plots.memory(ok, run.path)})\n\n"
            + md_table(pivot(ok, "peak_mem_bytes", fmt_mib)))


def sec_peer(run: Run) -> str:
    if why := needs(run, "step_median_s"):
        return why
    peer = numpy_baseline(run.ok, "step_median_s")
    peer = peer[peer["impl"] == "sklearn"]
    if peer.empty:
        return ("_No scikit-learn cell ran alongside a numpy cell in this run (it runs on the"
                " CPU, with loss `bce` only)._")
    peer = peer.set_index("size").reindex([s for s in size_order(run.ok) if s in set(peer["size"])])
    ratio = peer["step_median_s"] / peer["step_median_s_numpy"]
    table = pd.DataFrame({"size": peer.index, "sklearn step": peer["step_median_s"].map(fmt_s),
                          "numpy step": peer["step_median_s_numpy"].map(fmt_s),
                          "sklearn / numpy": ratio.map(lambda x: f"{x:.3g}x")})
    text = ("scikit-learn's MLPClassifier is the field's standard NumPy backprop, and here it"
            " does exactly our update: it starts from the shared initialisation (our weights"
            " copied into it), with logistic hidden units, the same loss (its log-loss is our"
            " `bce`; it has no `mse`, so this row exists for `bce` runs only) and the same plain"
            " SGD step (no momentum, no L2 penalty, constant rate). tests/test_peer.py checks that"
            " one of its `partial_fit` steps equals our NumPy `bce` step. What is timed is one"
            " `partial_fit` call, scikit-learn's input validation included: what a user of the"
            f" library pays per step. That costs {ratio.min():.3g}x to {ratio.max():.3g}x the"
            " hand-written NumPy step at the same sizes (above 1 = slower).")
    if len(ratio) > 1 and ratio.iloc[0] > ratio.iloc[-1]:
        text += (f" The ratio falls from {ratio.iloc[0]:.3g}x at {ratio.index[0]} to"
                 f" {ratio.iloc[-1]:.3g}x at {ratio.index[-1]}, as a fixed cost per call would:"
                 " the smaller the problem, the more of a step that cost is.")
    return text + "\n\n" + md_table(table)


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
