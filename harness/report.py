"""python -m harness report RUN_DIR  -- write RUN_DIR/report.md and its PNG plots.

A view over stored results, never a re-run: it reads only the run folder's
meta.json, cells.csv, tta.csv and check.json (schema in docs/architecture.md)
and never imports a framework. `render(run_dir)` is what `bench --report`
calls. This module loads the run folder and assembles the page; the sections
themselves, one function each, are in harness/report_sections.py and the
figures in harness/plots.py. A missing file, a failed cell or an older schema
shortens a section with an explanation; it never stops the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness import plots
from harness.cli import UsageError
from harness.report_sections import SECTIONS, crossovers, label_series  # noqa: F401  (public)
from harness.storage import SCHEMA_VERSION, atomic_write  # the schema this report reads

HOW_TO_READ = (
    "_How to read this report: a **cell** is one implementation and mode, on one device, in one"
    " dtype, at one problem size, timed in its own fresh process; a **series** is one"
    " implementation/mode/device across sizes. On a shared machine absolute times drift from run"
    " to run, so the ratios between series within this run mean more than the times themselves."
    " Every table is computed from the files in this folder: `cells.csv` (one row per cell),"
    " `samples.csv` (raw timings), `tta.csv`, `check.json` and `meta.json`._")


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

    @property
    def devices(self) -> list[str]:
        """The devices this run's cells name, CPU first."""
        if self.cells is None:
            return []
        return sorted(map(str, pd.unique(self.cells["device"])), key=lambda d: (d != "cpu", d))


def _read(path: Path, notes: list[str], reader):
    if not path.exists():
        notes.append(f"`{path.name}` is missing from this run folder.")
        return None
    try:
        return reader(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        notes.append(f"`{path.name}` could not be read ({type(exc).__name__}: {exc}).")
        return None


def _read_cells(run_dir: Path, notes: list[str]) -> pd.DataFrame | None:
    cells = _read(run_dir / "cells.csv", notes, pd.read_csv)
    if cells is not None and cells.empty:
        notes.append("`cells.csv` has no rows.")
        return None
    if cells is None:
        return None
    if missing := [c for c in ("impl", "mode") if c not in cells]:
        notes.append(f"`cells.csv` has no {', '.join(missing)} column: no cell can be named.")
        return None
    # Older folders may lack some key columns; assume what the report can safely assume.
    defaults = {"device": "cpu", "dtype": "float32", "size": "?", "status": "ok", "reason": ""}
    for col, value in defaults.items():
        if col not in cells:
            notes.append(f"`cells.csv` has no `{col}` column; assumed {value or 'none'!r}.")
            cells[col] = value
    cells["reason"] = cells["reason"].astype(object).fillna("")  # all-empty reads as NaN
    return label_series(cells, cells["dtype"].nunique(), set(cells["device"]))


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
    cells = _read_cells(run_dir, notes)
    tta = _read(run_dir / "tta.csv", [], pd.read_csv)  # the tta section explains its absence
    check = _read(run_dir / "check.json", [], lambda p: json.loads(p.read_text()))
    return Run(run_dir, meta, cells, tta, check if isinstance(check, dict) else None, notes)


def render(run_dir: Path) -> Path:
    """Write report.md (atomically) and the PNGs into `run_dir`; return report.md's path."""
    run = load(run_dir)
    parts = [f"# Benchmark report: `{run.path.name}`", "", HOW_TO_READ, ""]
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
    # A reader sees the old report or the new one, never half of one.
    atomic_write(out, "\n".join(parts).rstrip() + "\n")
    return out


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path,
                        help="a run folder, e.g. results/20250101-120000-default")


def run(args) -> int:
    out = render(args.run_dir)
    print(f"wrote {out}")
    return 0
