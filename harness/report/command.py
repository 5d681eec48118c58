"""python -m harness report RUN_DIR  -- write RUN_DIR/report.md and its PNG plots.

    python -m harness report RUN_A RUN_B ... --out DIR   # one report from several runs

With several run folders (runs of different machines: a CPU reference and a GPU run) the
report is harness/report/multi.py's, written into DIR (required: no run folder is its home).

A view over stored results, never a re-run: it reads only the run folder's
meta.json, cells.csv, tta.csv and check.json (schema in docs/architecture.md)
and never imports a framework. Which report a folder gets is what its meta.json's `kind`
says (harness/store: a scaling run's has its own, harness/report/scaling.py).
`render(run_dir)` is what `bench --report` calls. The folder is loaded by
harness/report/load.py; each section is one function in a module of this package (setup,
agreement, speed, costs, outcomes), and the figures are harness/report/plots.py's. A missing file, a
failed cell or another schema shortens a section with an explanation; it never
stops the report.
"""

from __future__ import annotations

from pathlib import Path

from harness import options
from harness.errors import UsageError
from harness.report import plots, state
from harness.report.agreement import sec_gradients, sec_training
from harness.report.costs import sec_compile, sec_peak
from harness.report.load import load
from harness.report.outcomes import sec_memory, sec_peer, sec_tta
from harness.report.setup import sec_not_run, sec_setup
from harness.report.speed import sec_speed
from harness.report.weather import sec_weather
from harness.store import CELLS, META, REPORT, SCALING, atomic_write

RUN_FILES = (META, CELLS, SCALING)  # a folder holding one is a run's: never another's --out

HOW_TO_READ = (
    "_How to read this report: a **cell** is one implementation and mode, on one device, in one"
    " dtype, at one problem size, timed in its own fresh process; a **series** is one"
    " implementation/mode/device across sizes. On a shared machine absolute times drift from run"
    " to run, so the ratios between series within this run mean more than the times themselves."
    " Every table is computed from the files in this folder: `cells.csv` (one row per cell),"
    " `samples.csv` (raw timings), `tta.csv`, `check.json` and `meta.json`._")

SECTIONS = [
    ("Setup", sec_setup),
    ("Cells that did not run", sec_not_run),
    ("Gradient agreement", sec_gradients),
    ("Training agreement", sec_training),
    ("Speed", sec_speed),
    ("Noise weather", sec_weather),
    ("Compile cost", sec_compile),
    ("Share of the machine's peak, and per-call overhead", sec_peak),
    ("Time to accuracy", sec_tta),
    ("Memory", sec_memory),
    ("scikit-learn, the peer", sec_peer),
]


def render(run_dir: Path, out: Path | None = None) -> Path:
    """Write report.md (atomically) and the PNGs into `out` (default: `run_dir` itself);
    return report.md's path. The figures are named in report.md relative to it. A run a
    bench is still writing is refused (UsageError)."""
    state.refuse_if_written(run_dir)
    if state.kind(run_dir) == "scaling":  # a report of its own
        from harness.report.scaling import render as render_scaling

        return render_scaling(run_dir, out)
    data = load(run_dir)
    if out is not None:
        data.out = Path(out)
        data.out.mkdir(parents=True, exist_ok=True)
    parts = [f"# Benchmark report: `{data.path.name}`", "",
             *state.preamble(data.unfinished, data.dropped,
                             f"python -m harness bench --resume {data.path}"),
             HOW_TO_READ, ""]
    if data.notes:
        parts += ["> **What this report cannot show.**", *[f"> - {n}" for n in data.notes], ""]
    for title, section in SECTIONS:
        parts += [f"## {title}", ""]
        try:
            parts += [section(data), ""]
        except Exception as exc:  # noqa: BLE001  one bad section must not lose the others
            parts += [f"_This section could not be rendered from this run: "
                      f"{type(exc).__name__}: {exc}_", ""]
    plots.plt.close("all")
    path = data.out / REPORT
    atomic_write(path, "\n".join(parts).rstrip() + "\n")
    return path


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path, nargs="+", metavar="RUN_DIR",
                        help="a run folder, e.g. results/20250101-120000-default; several: one"
                             " report from all of them (needs --out)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write report.md and its figures here (default: into RUN_DIR)")


def main(args) -> int:
    runs = args.run_dir
    options.out_folder("--out", args.out, inputs=runs, markers=RUN_FILES,
                       own=runs[0] if len(runs) == 1 else None)
    if len(runs) > 1 and args.out is None:
        raise UsageError(f"{len(runs)} run folders make one report, which needs a folder of"
                         " its own: add --out DIR")
    if len(runs) > 1 and (scaling := [r for r in runs if state.kind(r) == "scaling"]):
        raise UsageError(f"{scaling[0]} is a scaling run: it has a report of its own"
                         f" (python -m harness report {scaling[0]})")
    for run in runs:
        state.refuse_if_written(run)
    try:
        if len(runs) > 1:
            from harness.report.multi import render as render_runs

            path = render_runs(runs, args.out)
        else:
            path = render(runs[0], args.out)
    except PermissionError as exc:
        where = args.out or runs[0]
        raise UsageError(f"cannot write the report in {where}: {exc.strerror}"
                         " (a read-only folder? write it elsewhere with --out DIR)") from None
    print(f"wrote {path}")
    return 0
