"""The report's figures (called by `python -m harness report RUN_DIR`; see harness/report/command.py).

Every function takes a tidy pandas table (a pivot of cells.csv, tta.csv or the
check curves), writes one PNG into the run folder and returns its file name.
Styling is fixed so that one implementation has one colour in every figure:
colour = implementation, line style = mode, marker = device.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator  # noqa: E402

from harness.store import atomic_write  # noqa: E402

# One colour per implementation, in every figure (colour-blind-safe Okabe-Ito hues).
PALETTE = {
    "numpy": "#0072B2",    # blue
    "torch": "#D55E00",    # vermillion
    "jax": "#009E73",      # green
    "cupy": "#CC79A7",     # purple
    "sklearn": "#7F7F7F",  # grey: the peer, not one of ours
}
_EXTRA = ["#E69F00", "#56B4E9", "#F0E442", "#000000"]  # for implementations added later

# Line style says how the code runs: solid = op by op, dashed = compiled,
# dotted = CUDA graphs, dash-dot = TF32 (reduced-precision matmul).
MODE_STYLE = {
    "default": "-", "eager": "-", "nojit": "-", "MLPClassifier": "-",
    "compile": "--", "jit": "--",
    "reduce-overhead": ":",
    "eager-tf32": "-.", "jit-tf32": "-.",
}
DEVICE_MARKER = {"cpu": "o", "gpu": "s"}


def colour(impl: str) -> str:
    if impl in PALETTE:
        return PALETTE[impl]
    return _EXTRA[sum(map(ord, impl)) % len(_EXTRA)]  # stable across runs, unlike hash()


def style(impl: str, mode: str, device: str = "cpu") -> dict:
    """matplotlib keyword arguments for one series."""
    return {"color": colour(impl), "linestyle": MODE_STYLE.get(mode, "-"),
            "marker": DEVICE_MARKER.get(device, "^"), "markersize": 5, "linewidth": 1.6}


def save(fig, out_dir: Path, name: str) -> str:
    """Write atomically (a reader never sees half a PNG); no timestamp, so reruns are identical."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write(Path(out_dir) / name, buf.getvalue())
    return name


def _series(df: pd.DataFrame):
    """(label, impl, mode, device, rows sorted by x) for each series of a cells table."""
    for label, g in df.groupby("label", sort=True):
        first = g.iloc[0]
        yield label, first["impl"], first["mode"], first["device"], g.sort_values("flops_per_step")


def _name_lone_points(ax, label: str, x, y) -> None:
    """A series measured at one size has no line to show its style: name it beside the point."""
    if len(x) == 1:
        ax.annotate(label, (x.iloc[0], y.iloc[0]), xytext=(6, 0), textcoords="offset points",
                    fontsize=7, va="center")


def _legend(ax, devices) -> None:
    # Outside the axes: with a dozen series, a legend inside always covers some data.
    title = "colour: implementation\nsolid: op by op, dashed: compiled"
    if len(set(devices)) > 1:
        title += "\ncircle: CPU, square: GPU"
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              title=title, title_fontsize=7, alignment="left")


def _log_axes(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)


def _size_axis(ax, df: pd.DataFrame) -> None:
    """Name the sizes along the top, at their FLOPs, so the plot and the tables line up."""
    at = df.groupby("size")["flops_per_step"].median().sort_values()
    top = ax.secondary_xaxis("top")
    top.set_xticks(list(at.values), labels=[str(s) for s in at.index], fontsize=8)
    top.xaxis.set_minor_locator(NullLocator())
    top.set_xlabel("size", fontsize=8)
    ax.xaxis.set_minor_formatter(NullFormatter())  # "3 x 10^8" labels collide on short ranges


def speed(ok: pd.DataFrame, out_dir: Path, gpu_from: float | None = None) -> str:
    """Step time vs FLOPs per step, log-log, error bars = the 95% interval over rounds.

    gpu_from: FLOPs (between two sizes) from which the fastest GPU series beats the fastest
    CPU series; that part of the plot is shaded and labelled."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for label, impl, mode, device, g in _series(ok):
        yerr = [g["step_median_s"] - g["step_low_s"], g["step_high_s"] - g["step_median_s"]]
        ax.errorbar(g["flops_per_step"], g["step_median_s"], yerr=yerr, label=label, capsize=2,
                    **style(impl, mode, device))
        _name_lone_points(ax, label, g["flops_per_step"], g["step_median_s"])
    _log_axes(ax, "work per training step (FLOPs, analytic)", "steady step time (seconds)",
              "Step time across sizes (lower is faster)")
    if gpu_from is not None and pd.notna(gpu_from):
        right = ax.get_xlim()[1]
        ax.axvspan(gpu_from, right, color="#CC79A7", alpha=0.10, zorder=0)
        ax.axvline(gpu_from, color="black", linewidth=0.8, linestyle=":")
        ax.text(gpu_from * 1.1, 0.02, "from here, a GPU series is fastest", fontsize=8,
                transform=ax.get_xaxis_transform(), va="bottom")
        ax.set_xlim(right=right)
    _size_axis(ax, ok)
    _legend(ax, ok["device"])
    return save(fig, out_dir, "speed.png")


def speedup(ratios: pd.DataFrame, out_dir: Path) -> str:
    """Speed-up over hand-written NumPy (numpy time / this time, paired by round) vs FLOPs per
    step; error bars = the 95% interval over rounds. An error bar across the dotted line at 1
    is no clear difference."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for label, impl, mode, device, g in _series(ratios):
        yerr = [g["speedup"] - g["speedup_low"], g["speedup_high"] - g["speedup"]]
        ax.errorbar(g["flops_per_step"], g["speedup"], yerr=yerr, label=label, capsize=2,
                    **style(impl, mode, device))
        _name_lone_points(ax, label, g["flops_per_step"], g["speedup"])
    # numpy's own series is the flat line at 1: the reference every other line is read against.
    _log_axes(ax, "work per training step (FLOPs, analytic)",
              "speed-up over numpy (x, above 1 = faster)",
              "Speed-up over hand-written NumPy, same dtype")
    ax.axhline(1, color="black", linewidth=0.8, linestyle=":")
    _size_axis(ax, ratios)
    _legend(ax, ratios["device"])
    return save(fig, out_dir, "speedup.png")


HOST_MEMORY = "host RSS growth"  # a CPU cell's peak_mem_bytes (harness/measure/memory.py)


def memory_panels(ok: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The memory figure's panels: one per thing peak_mem_bytes counts (host RSS growth on the
    CPU; on a GPU each framework's own counter: torch's allocated peak, JAX's peak in use,
    CuPy's pool held), never one axis for quantities that mean different things. The kind is
    the table's `counts` column (harness/report/outcomes.py names it) where there is one,
    else host RSS growth on the CPU and each implementation's own counter on a GPU."""
    if "counts" in ok:
        kinds = ok["counts"].astype(str)
    else:
        kinds = pd.Series([HOST_MEMORY if d == "cpu" else f"{i}: its own device counter"
                           for i, d in zip(ok["impl"], ok["device"], strict=True)],
                          index=ok.index)
    order = sorted(pd.unique(kinds), key=lambda k: (k != HOST_MEMORY, k))
    return [(kind, ok[kinds == kind]) for kind in order]


def memory(ok: pd.DataFrame, out_dir: Path) -> str:
    """Peak memory vs FLOPs per step, log-log: a panel per quantity (memory_panels), each
    with its own axis, so no framework's counter is read against another's."""
    panels = memory_panels(ok)
    cols = min(len(panels), 2)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.6 * rows), squeeze=False)
    handles: dict = {}
    plain = FuncFormatter(lambda v, _: f"{v:g}")  # "600", not "6 x 10^2", on a short log range
    for ax, (kind, g) in zip(axes.flat, panels, strict=False):
        for label, impl, mode, device, rows_ in _series(g):
            (line,) = ax.plot(rows_["flops_per_step"], rows_["peak_mem_bytes"] / 2**20,
                              label=label, **style(impl, mode, device))
            handles.setdefault(label, line)
            _name_lone_points(ax, label, rows_["flops_per_step"],
                              rows_["peak_mem_bytes"] / 2**20)
        _log_axes(ax, "work per training step (FLOPs, analytic)", "peak memory (MiB)", kind)
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        _size_axis(ax, g)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("Peak memory: one panel per quantity (each GPU framework counts its own)")
    title = "colour: implementation\nsolid: op by op, dashed: compiled"
    if ok["device"].nunique() > 1:
        title += "\ncircle: CPU, square: GPU"
    fig.legend(list(handles.values()), list(handles), fontsize=8, loc="upper left",
               bbox_to_anchor=(1.0, 0.95), frameon=False, title=title, title_fontsize=7,
               alignment="left")
    fig.tight_layout()
    return save(fig, out_dir, "memory.png")


def curves(df: pd.DataFrame, gaps: pd.DataFrame, out_dir: Path) -> str:
    """Loss curves overlaid (left) and |loss - numpy loss| per epoch (right).

    One row of panels per (dtype, loss) pair in the check's curves."""
    panels = sorted(df.groupby(["dtype", "loss"]).groups)
    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 3.6 * len(panels)), squeeze=False)
    for row, (dtype, loss) in enumerate(panels):
        left, right = axes[row]
        part = df[(df["dtype"] == dtype) & (df["loss"] == loss)]
        for (impl, mode), g in part.groupby(["impl", "mode"]):
            st = style(impl, mode) | {"marker": None}
            left.plot(g["epoch"], g["value"], label=f"{impl} {mode}", **st)
            gap = gaps[(gaps["dtype"] == dtype) & (gaps["loss"] == loss)
                       & (gaps["impl"] == impl) & (gaps["mode"] == mode)]
            if len(gap) and impl != "numpy":
                # Points, not lines: differences jump between 0 and one rounding step, and a
                # line between them would draw a trend that is not there. 0 is floored to 1e-17
                # so the log axis can show it.
                right.plot(gap["epoch"], gap["gap"].clip(lower=1e-17), **(st | {
                    "linestyle": "none", "marker": "o", "markersize": 4, "alpha": 0.7}))
        # One rounding step of the loss in this dtype: differences at this level are rounding.
        ulp = np.finfo(dtype).eps * part["value"].abs().max()
        right.axhline(ulp, color="black", linewidth=0.8, linestyle=":")
        right.annotate("1 rounding step of the loss", (0, ulp), fontsize=7, va="bottom")
        left.set(xlabel="epoch", ylabel=f"{loss} loss", title=f"Training loss, {dtype}, {loss}")
        right.set(xlabel="epoch", ylabel="|loss - numpy loss|", yscale="log",
                  title="Difference from hand-written NumPy (0 shown at 1e-17)")
        left.legend(fontsize=8)
        for ax in (left, right):
            ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return save(fig, out_dir, "curves.png")


def tta(df: pd.DataFrame, out_dir: Path) -> str:
    """Seconds to reach the target accuracy, one group of bars per data set."""
    datasets = sorted(df["dataset"].unique())
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.8), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        part = df[df["dataset"] == dataset].sort_values("label")
        reached = part["reached_ok"]
        ax.barh(part["label"], part["seconds"].where(reached, 0),
                color=[colour(i) for i in part["impl"]])
        for y, (ok, secs) in enumerate(zip(reached, part["seconds"], strict=True)):
            if not ok:
                ax.text(0, y, "  not reached", va="center", fontsize=8)
            elif pd.notna(secs):
                ax.text(secs, y, f" {secs:.3g} s", va="center", fontsize=8)
        target = part["target"].iloc[0]
        ax.set(xlabel="wall-clock seconds to target (lower is better)",
               title=f"{dataset}: time to reach target {target}")
        ax.margins(x=0.25)
        ax.invert_yaxis()
    fig.tight_layout()
    return save(fig, out_dir, "tta.png")


def speed_by_run(frames: list[pd.DataFrame], out_dir: Path) -> str:
    """Step time vs FLOPs per step, one panel per run (machine) on shared log axes, for a
    report of several runs (harness/report/multi.py). Each frame is one run's cells that ran,
    with `run` (its machine) and `label` (impl mode device) columns."""
    n = len(frames)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 4.6 * rows), sharex=True,
                             sharey=True, squeeze=False)
    for ax, df in zip(axes.flat, frames, strict=False):
        for label, impl, mode, device, g in _series(df):
            if {"step_low_s", "step_high_s"} <= set(g) and g["step_low_s"].notna().all():
                yerr = [g["step_median_s"] - g["step_low_s"], g["step_high_s"] - g["step_median_s"]]
            else:
                yerr = None
            ax.errorbar(g["flops_per_step"], g["step_median_s"], yerr=yerr, label=label,
                        capsize=2, **style(impl, mode, device))
            _name_lone_points(ax, label, g["flops_per_step"], g["step_median_s"])
        _log_axes(ax, "work per training step (FLOPs, analytic)", "steady step time (s)",
                  str(df["run"].iloc[0]))
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7, loc="upper left", frameon=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle("Step time across sizes, one panel per machine (lower is faster; colour:"
                 " implementation, line: mode, marker: device)", fontsize=10)
    fig.tight_layout()
    return save(fig, out_dir, "speed_by_machine.png")
