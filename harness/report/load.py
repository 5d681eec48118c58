"""A run folder, loaded for the report: pandas tables and the metadata, with notes on what
is missing or unreadable (a broken file shortens the report; it never stops it).

    from harness.report.load import load
    data = load(Path("results/20250101-120000-default"))
    data.ok          # the cells that ran, with a `label` per series
    data.needs("peak_fraction")   # None, or the sentence that replaces a section

Files are read through harness/store.py, the only reader of run folders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.errors import UsageError
from harness.report.tables import label_series
from harness.store import (
    CELLS,
    CHECK,
    META,
    SAMPLES,
    SCHEMA_VERSION,
    TTA,
    CellKey,
    read_frame,
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


def _read_cells(folder: Path, notes: list[str]) -> pd.DataFrame | None:
    cells = _read(folder, CELLS, notes, read_frame)
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
    meta = _read(folder, META, notes, read_json)
    if not isinstance(meta, dict):
        meta = {}
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        notes.append(
            f"This run folder has schema version {version if version is not None else 'unknown'};"
            f" this report reads version {SCHEMA_VERSION}. Sections whose columns are missing"
            " say so below; columns it does not know are ignored.")
    cells = _read_cells(folder, notes)
    tta = _read(folder, TTA, [], read_frame)  # the tta section explains its absence
    check = _read(folder, CHECK, [], read_json)
    rounds = _rounds(_read(folder, SAMPLES, [], read_frame), cells)
    return RunData(folder, meta, cells, tta, check if isinstance(check, dict) else None, notes,
                   rounds)


def _rounds(samples: pd.DataFrame | None, cells: pd.DataFrame | None) -> pd.DataFrame | None:
    """Each cell's value per round (the median of its samples there), labelled as its cell."""
    key = list(CellKey._fields)
    if samples is None or cells is None or not {*key, "round", "seconds_per_step"} <= set(samples):
        return None
    values = samples.groupby([*key, "round"], as_index=False)["seconds_per_step"].median()
    labels = cells[[*key, "label"]].astype({"size": str})
    return values.astype({"size": str}).merge(labels, on=key).rename(
        columns={"seconds_per_step": "value"})
