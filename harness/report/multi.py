"""python -m harness report RUN_A RUN_B ... --out DIR  -- one report from runs of several machines.

    python -m harness report results/20261127-034137-default results/<gpu run> --out results/both

Each run is loaded as `report RUN` loads it (harness/report/load.py) and labelled by its
machine: the GPU's name where the run used one, else the CPU model, and the host. Every
figure stays inside its run: a speed-up is the run's own (cells.csv's `speedup`: NumPy on
that run's CPU, same size and dtype, paired by round), and step times of different runs
are shown side by side, never divided: two machines, measured at different moments. The
sections: which run is which, the machines' facts side by side, step time and in-run
speed-up per series and size, the fastest series of each run at each size, and a plot of
step time across sizes with one panel per run (shared axes). A run that cannot be read
whole shortens its part and says so; it never stops the report.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.errors import UsageError
from harness.measure.stats import fmt_seconds
from harness.report import plots
from harness.report.load import RunData, load
from harness.report.tables import dig, md_table, numpy_baseline, words
from harness.store import REPORT, atomic_write

HOW_TO_READ = (
    "_How to read this report: each run ran on its own machine, at its own moment. Its"
    " series are labelled with the run (the machine) and the device; its speed-ups are its own:"
    " NumPy on **that run's CPU** at the same size and dtype, paired round by round, so a"
    " speed-up of a GPU series says what that GPU machine's GPU gains over that machine's CPU."
    " Step times of different runs sit side by side to be read, never divided: no figure here"
    " is a ratio across machines. The facts of each machine (CPU, GPU, libraries, threads,"
    " measured matmul peak) are side by side first, since they explain most differences._")


def machine_label(meta: dict) -> str:
    """'GPU name on host' for a run with a GPU, else 'CPU model on host'."""
    gpus = [g.get("name") for g in dig(meta, "machine.gpus", default=[]) if isinstance(g, dict)]
    what = gpus[0] if gpus and gpus[0] else dig(meta, "machine.cpu_model", default="unknown CPU")
    host = dig(meta, "machine.host")
    return f"{what} on {host}" if host else str(what)


def labels(runs: list[RunData]) -> list[str]:
    """One label per run, its machine; the folder name added where two would be the same."""
    base = [machine_label(r.meta) for r in runs]
    return [f"{b} ({r.path.name})" if base.count(b) > 1 else b for b, r in zip(base, runs,
                                                                               strict=True)]


def _peaks(meta: dict) -> str:
    said = []
    for device, p in (meta.get("peak") or {}).items():
        if isinstance(p, dict) and p.get("gflops") and p.get("status", "ok") == "ok":
            median = f", median {p['median_gflops']:,.0f}" if p.get("median_gflops") else ""
            said.append(f"{device}: {p['gflops']:,.0f}{median}")
        elif isinstance(p, dict):
            said.append(f"{device}: not measured")
    return "; ".join(said) or "-"


def facts(runs: list[RunData], names: list[str]) -> pd.DataFrame:
    """The machines and settings side by side: one row per fact, one column per run."""
    def cpu(m):
        cpus = dig(m, "machine.cpus", default={})
        usable = cpus.get("usable") if isinstance(cpus, dict) else None
        return f"{dig(m, 'machine.cpu_model', default='-')}" + (f"; {usable} usable" if usable
                                                                 else "")

    def gpus(m):
        found = dig(m, "machine.gpus", default=[])
        return "; ".join(", ".join(str(g[k]) for k in ("name", "memory", "driver") if g.get(k))
                         for g in found if isinstance(g, dict)) or "none"

    def blas(m):
        pools = [p for p in m.get("blas") or [] if isinstance(p, dict)]
        return "; ".join(f"{p.get('internal_api')} {p.get('version')}, {p.get('num_threads')}"
                         " threads" for p in pools) or "-"

    def cells(r):
        if r.cells is None:
            return "no readable cells.csv"
        counts = r.cells["status"].value_counts()
        return ", ".join(f"{n} {s}" for s, n in counts.items())

    def check(r):
        if not r.check:
            return "not run"
        ok = r.check.get("ok")
        return {True: "all agree", False: "DISAGREEMENT", None: "incomplete"}[ok]

    rows = [("run folder", lambda r: r.path.name), ("host", lambda r: dig(r.meta, "machine.host")),
            ("CPU", lambda r: cpu(r.meta)), ("GPU", lambda r: gpus(r.meta)),
            ("memory", lambda r: f"{dig(r.meta, 'machine.memory_bytes', default=0) / 2**30:.0f}"
                                 " GiB"),
            ("Python", lambda r: dig(r.meta, "machine.python")),
            ("profile", lambda r: dig(r.meta, "profile.name")),
            ("threads per cell", lambda r: dig(r.meta, "thread_budget.threads")),
            ("BLAS", lambda r: blas(r.meta)),
            ("matmul peak, GFLOP/s (best round)", lambda r: _peaks(r.meta))]
    libraries = sorted({k for r in runs for k, v in dig(r.meta, "machine.versions",
                                                        default={}).items() if v})
    rows += [(lib, lambda r, lib=lib: dig(r.meta, f"machine.versions.{lib}", default="-"))
             for lib in libraries]
    rows += [("git commit", lambda r: str(dig(r.meta, "machine.git.commit", default="-"))[:10]
              + (" (dirty)" if dig(r.meta, "machine.git.dirty") else "")),
             ("started (UTC)", lambda r: dig(r.meta, "machine.utc")),
             ("cells", cells), ("check", check)]
    table = {"fact": [name for name, _ in rows]}
    for r, n in zip(runs, names, strict=True):
        table[n] = [str(v) if (v := get(r)) not in (None, "") else "-" for _, get in rows]
    return pd.DataFrame(table)


def _ok(run: RunData, name: str) -> pd.DataFrame:
    """The run's cells with a step time, labelled 'impl mode device', with its own speed-up."""
    if run.cells is None or run.needs("step_median_s", "flops_per_step"):
        return pd.DataFrame()
    ok = run.ok.copy()
    ok["label"] = ok["impl"].astype(str) + " " + ok["mode"].astype(str) + " " + \
        ok["device"].astype(str)
    if ok["dtype"].nunique() > 1:
        ok["label"] += " " + ok["dtype"].astype(str)
    if "speedup" not in ok:  # an older schema: NumPy's median over this run's median
        ok = numpy_baseline(ok, "step_median_s").assign(
            speedup=lambda d: d["step_median_s_numpy"] / d["step_median_s"])
    ok["run"] = name
    ok["size_label"] = ok["size"].astype(str)
    return ok


def _size_columns(frames: list[pd.DataFrame]) -> None:
    """Sizes by name; where one name means different shapes in different runs, the shape too."""
    every = pd.concat([f for f in frames if not f.empty])
    shape = ["n_samples", "n_features", "n_hidden", "n_outputs"]
    if not set(shape) <= set(every):
        return
    clash = {s for s, g in every.groupby("size") if len(g[shape].drop_duplicates()) > 1}
    for f in frames:
        if not f.empty:
            f["size_label"] = [f"{s} ({n}x{d}->{h}->{k})" if s in clash else str(s) for
                               s, n, d, h, k in zip(f["size"], *(f[c] for c in shape),
                                                    strict=True)]


def step_table(ok: pd.DataFrame) -> pd.DataFrame:
    """Rows: run and series; columns: sizes by work; cells: 'time (in-run speed-up)'."""
    order = list(ok.groupby("size_label")["flops_per_step"].median().sort_values().index)
    shown = ok.assign(shown=[fmt_seconds(t) + ("" if pd.isna(x) else f" ({x:.2f}x)")
                             for t, x in zip(ok["step_median_s"], ok["speedup"], strict=True)])
    table = shown.pivot_table(index=["run", "label"], columns="size_label", values="shown",
                              aggfunc="first", sort=False)
    table = table.reindex(columns=[s for s in order if s in table.columns]).fillna("-")
    return table.rename_axis(columns=None).reset_index().rename(columns={"label": "series"})


def fastest_table(ok: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """For each size, each run's fastest series and its time (within the run)."""
    order = list(ok.groupby("size_label")["flops_per_step"].median().sort_values().index)
    rows = []
    for size in order:
        row = {"size": size}
        for name in names:
            at = ok[(ok["size_label"] == size) & (ok["run"] == name)]
            row[name] = "-" if at.empty else (lambda b: f"{b['label']}, "
                                              f"{fmt_seconds(b['step_median_s'])}")(
                at.loc[at["step_median_s"].idxmin()])
        rows.append(row)
    return pd.DataFrame(rows)


def render(run_dirs: list[Path], out: Path) -> Path:
    """Write DIR/report.md and its plot from several runs; return report.md's path."""
    paths = [Path(p) for p in run_dirs]
    if len({p.resolve() for p in paths}) < len(paths):
        raise UsageError("the same run folder is named twice")
    runs = [load(p) for p in paths]
    names = labels(runs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parts = [f"# Benchmark report: {len(runs)} runs", "", HOW_TO_READ, "", "## Runs", ""]
    for r, n in zip(runs, names, strict=True):
        parts += [f"- **{n}**: `{r.path}`", *[f"  - {note}" for note in r.notes],
                  *[f"  - incomplete: {line}" for line in r.unfinished],
                  *[f"  - left out, unreadable: {d}" for d in r.dropped]]
    parts += ["", "## Machines and settings", "", md_table(facts(runs, names), 80), ""]
    frames = [_ok(r, n) for r, n in zip(runs, names, strict=True)]
    missing = [n for f, n in zip(frames, names, strict=True) if f.empty]
    if missing:
        parts += [f"_No step time from {words(missing)}: no cell of it finished (or its"
                  " cells.csv is unreadable; see its notes above)._", ""]
    frames = [f for f in frames if not f.empty]
    if frames:
        _size_columns(frames)
        ok = pd.concat(frames, ignore_index=True)
        parts += ["## Step time, and speed-up within each run", "",
                  "Median steady step time of each series; in brackets its speed-up over"
                  " hand-written NumPy **of the same run** (NumPy on that run's CPU, paired by"
                  " round; above 1 = faster). `-`: not measured there. A size only one run has"
                  " is still shown: its other rows are `-`.", "",
                  md_table(step_table(ok), 80), "",
                  "## Fastest series at each size, per run", "",
                  "Within each run; the columns are different machines, so compare the series"
                  " named, and read the times side by side rather than as a ratio.", "",
                  md_table(fastest_table(ok, [n for n in names if n not in missing])), "",
                  "## Step time across sizes", "",
                  "One panel per run, on the same axes: where the lines sit is each machine's"
                  " step time, and each panel's order of series is its own.", "",
                  f"![step time per machine]({plots.speed_by_run(frames, out)})", ""]
    plots.plt.close("all")
    path = out / REPORT
    atomic_write(path, "\n".join(parts).rstrip() + "\n")
    return path
