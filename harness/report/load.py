"""A run folder, loaded for the report: pandas tables and the metadata, with notes on what
is missing or unreadable (a broken file shortens the report; it never stops it).

    from harness.report.load import load
    data = load(Path("results/20250101-120000-default"))
    data.ok          # the cells that ran, with a `label` per series
    data.needs("peak_fraction")   # None, or the sentence that replaces a section
    data.dropped     # the rows that could not be read, by file and line
    data.unfinished  # what the run planned and does not hold (it did not finish)

Files are read through harness/store.py, the only reader of run folders; a table's rows are
read only when whole and typed (harness/report/state.py), meta.json only where its entries
have their types (harness/report/meta.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.errors import UsageError
from harness.report import state
from harness.report.meta import clean
from harness.report.tables import label_series
from harness.store import (
    CELLS,
    CHECK,
    META,
    SAMPLES,
    SCHEMA_VERSION,
    TTA,
    CellKey,
    CellRow,
    TtaRow,
    read_json,
)


@dataclass
class RunData:
    """A loaded run folder. Missing or unreadable files are None, with a note saying why."""

    path: Path
    meta: dict
    cells: pd.DataFrame | None
    tta: pd.DataFrame | None
    check: dict | None
    notes: list[str] = field(default_factory=list)
    # One row per (cell, round): the median of that round's samples, with the cell's label.
    rounds: pd.DataFrame | None = None
    out: Path | None = None  # where report.md and its figures go (default: the run folder)
    dropped: list[str] = field(default_factory=list)  # rows not read, by file and line
    unfinished: list[str] = field(default_factory=list)  # what the run planned, not held

    def __post_init__(self):
        self.out = self.path if self.out is None else self.out

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

    def needs(self, *columns: str) -> str | None:
        """None when cells.csv has `columns` and a cell ran; else the sentence that replaces
        the section."""
        if self.cells is None:
            return "_Not shown: this run has no readable `cells.csv`._"
        if missing := self.lacks(*columns):
            return (f"_Not shown: this run's `cells.csv` has no"
                    f" {', '.join(f'`{c}`' for c in missing)} column (schema version"
                    f" {self.meta.get('schema_version', 'unknown')})._")
        if self.ok.empty:
            return "_Not shown: no cell of this run finished._"
        return None


def _read(folder: Path, name: str, notes: list[str], reader):
    if not (folder / name).exists():
        notes.append(f"`{name}` is missing from this run folder.")
        return None
    try:
        return reader(folder, name)
    except (OSError, ValueError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        notes.append(f"`{name}` could not be read ({type(exc).__name__}: {exc}).")
        return None


def _table(folder: Path, name: str, record, notes: list[str] | None, dropped: list[str]):
    """Table `name`'s whole, typed rows as a DataFrame (None: missing or unreadable, with a
    note when `notes` is given); the rows left out go to `dropped`."""
    if not (folder / name).exists():
        if notes is not None:
            notes.append(f"`{name}` is missing from this run folder.")
        return None
    try:
        rows, bad, columns = state.readable(folder, name, record)
        table = state.frame(rows, columns)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        if notes is not None:
            notes.append(f"`{name}` could not be read ({type(exc).__name__}: {exc}).")
        return None
    dropped += bad
    return table


def _read_cells(folder: Path, notes: list[str], dropped: list[str]) -> pd.DataFrame | None:
    cells = _table(folder, CELLS, CellRow, notes, dropped)
    if cells is not None and cells.empty:
        notes.append(f"`{CELLS}` has no rows.")
        return None
    if cells is None:
        return None
    if missing := [c for c in ("impl", "mode") if c not in cells]:
        notes.append(f"`{CELLS}` has no {', '.join(missing)} column: no cell can be named.")
        return None
    # A folder of another schema may lack some key columns; assume what can safely be assumed.
    defaults = {"device": "cpu", "dtype": "float32", "size": "?", "status": "ok", "reason": ""}
    for col, value in defaults.items():
        if col not in cells:
            notes.append(f"`{CELLS}` has no `{col}` column; assumed {value or 'none'!r}.")
            cells[col] = value
    cells["reason"] = cells["reason"].astype(object).fillna("")  # all-empty reads as NaN
    return label_series(cells, cells["dtype"].nunique(), set(cells["device"]))


def load(folder: Path) -> RunData:
    """Read a run folder; UsageError when `folder` is not one (no meta.json and no cells.csv)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a directory (expected a run folder under results/)")
    if not (folder / META).exists() and not (folder / CELLS).exists():
        raise UsageError(f"{folder} is not a run folder: it has neither {META} nor {CELLS}")
    notes: list[str] = []
    meta, said = clean(_read(folder, META, notes, read_json))
    notes += said
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        notes.append(
            f"This run folder has schema version {version if version is not None else 'unknown'};"
            f" this report reads version {SCHEMA_VERSION}. Sections whose columns are missing"
            " say so below; columns it does not know are ignored.")
    dropped: list[str] = []
    cells = _read_cells(folder, notes, dropped)
    tta = _table(folder, TTA, TtaRow, None, dropped)  # the tta section explains its absence
    check = _read(folder, CHECK, [], read_json)
    rounds = _rounds(_samples(folder, cells, dropped), cells)
    cell_rows = [] if cells is None else cells.to_dict("records")
    unfinished = state.lacking(meta, "cells", cell_rows,
                               None if tta is None else tta.to_dict("records"))
    return RunData(folder, meta, cells, tta, check if isinstance(check, dict) else None, notes,
                   rounds, dropped=dropped, unfinished=unfinished)


def _samples(folder: Path, cells, dropped: list[str]) -> pd.DataFrame | None:
    """samples.csv's whole rows whose time is a number (the rest counted in `dropped`)."""
    if cells is None or not (folder / SAMPLES).exists():
        return None
    try:
        samples = pd.read_csv(folder / SAMPLES)
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    if "seconds_per_step" not in samples:
        return samples
    value = pd.to_numeric(samples["seconds_per_step"], errors="coerce")
    bad = value.isna() | samples.isna().drop(columns=["seconds_per_step"]).any(axis=1)
    if bad.any():
        lines = [int(i) + 2 for i in samples.index[bad]]
        dropped.append(f"`{SAMPLES}`: {len(lines)} sample{'s' if len(lines) > 1 else ''}"
                       f" incomplete or not a number (line {', '.join(map(str, lines[:6]))}"
                       f"{' ...' if len(lines) > 6 else ''})")
    return samples[~bad].assign(seconds_per_step=value[~bad])


def _rounds(samples: pd.DataFrame | None, cells: pd.DataFrame | None) -> pd.DataFrame | None:
    """Each cell's value per round (the median of its samples there), labelled as its cell."""
    key = list(CellKey._fields)
    if samples is None or cells is None or not {*key, "round", "seconds_per_step"} <= set(samples):
        return None
    values = samples.groupby([*key, "round"], as_index=False)["seconds_per_step"].median()
    labels = cells[[*key, "label"]].astype({"size": str})
    return values.astype({"size": str}).merge(labels, on=key).rename(
        columns={"seconds_per_step": "value"})
