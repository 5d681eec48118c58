"""Run folders: append-only, self-describing results that `report` and `compare` read.

    from harness.storage import Run
    run = Run.create("results", profile="default")   # results/20250101-120000-default/
    run.add_cell(row, samples=[...]); run.flush()     # tables rewritten atomically
    run = Run.load("results/20250101-120000-default") # e.g. for --resume

A folder is never overwritten: a name that exists gets a suffix (-2, -3, ...).
Every file is written to a temporary name in the same folder and moved into
place with os.replace, which is atomic on POSIX: a reader (or a Ctrl-C) sees the
old file or the new one, never half of one. After each finished cell the tables
are rewritten, samples.csv first and cells.csv last, so cells.csv is the commit
record: samples of a cell missing from cells.csv are dropped on load and the
cell is simply run again on --resume.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.machine import utc_now

SCHEMA_VERSION = 1

CELL_KEY = ("impl", "mode", "device", "dtype", "size")
# docs/architecture.md's columns, then additions (import_s ... wall_s) at the end.
CELL_COLUMNS = CELL_KEY + (
    "n_samples", "n_features", "n_hidden", "n_outputs", "batch_size", "loss", "activation",
    "status", "reason", "setup_s", "first_call_s", "step_median_s", "step_iqr_s", "repeats",
    "steps_per_sample", "noisy", "flops_per_step", "gflops", "peak_gflops", "peak_fraction",
    "peak_mem_bytes", "threads", "matmul_precision", "final_loss",
    # additions: framework import time, warm-up steps run, memory held after setup,
    # how peak memory was measured, and the cell's subprocess wall time.
    "import_s", "warmup_steps", "setup_mem_bytes", "peak_mem_method", "wall_s",
)
SAMPLE_COLUMNS = CELL_KEY + ("sample", "seconds_per_step")
TTA_KEY = ("impl", "mode", "device", "dtype", "dataset")
TTA_COLUMNS = TTA_KEY + (
    "target", "reached", "seconds", "epochs", "status", "reason",
    # additions: how often accuracy was checked, the epoch cap, the last accuracy seen.
    "eval_every", "max_epochs", "accuracy",
)
STATUSES = ("ok", "failed", "timeout", "diverged", "unavailable")


def atomic_write(path: Path, text: str) -> None:
    """Write text to `path` via a temporary file in the same folder and os.replace."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cell(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):  # NumPy scalars too (np.float64 repr is wordy)
        return "" if math.isnan(value) else repr(float(value))  # repr: no digits lost
    if isinstance(value, np.integer):
        return str(int(value))
    return "" if value is None else str(value)


def csv_text(columns: tuple[str, ...], rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def read_csv(path: Path) -> list[dict]:
    """Rows as dicts of strings ('' for missing); [] when the file does not exist."""
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def key(row: dict, columns: tuple[str, ...] = CELL_KEY) -> tuple[str, ...]:
    return tuple(str(row[c]) for c in columns)


def new_folder(root: Path, profile: str, now=None) -> Path:
    """Create results/<UTC yyyymmdd-hhmmss>-<profile>[-n], never reusing an existing name."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = (now or utc_now()).strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        path = root / (f"{stamp}-{profile}" + ("" if n == 1 else f"-{n}"))
        try:
            path.mkdir()  # exclusive: fails if it exists, even against a concurrent run
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not find a free run folder name under {root}")


@dataclass
class Run:
    path: Path
    meta: dict = field(default_factory=dict)
    cells: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    tta: list[dict] = field(default_factory=list)

    @classmethod
    def create(cls, root, profile: str, meta: dict | None = None, now=None) -> Run:
        run = cls(new_folder(root, profile, now), meta={"schema_version": SCHEMA_VERSION,
                                                        **(meta or {})})
        run.save_meta()
        run.flush()  # empty tables with headers: a reader never finds a folder without them
        return run

    @classmethod
    def load(cls, path) -> Run:
        """Open an existing run folder; ValueError if it is not one."""
        path = Path(path)
        meta_path = path / "meta.json"
        if not meta_path.is_file():
            raise ValueError(f"{path} is not a run folder (no meta.json)")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{meta_path} is not valid JSON: {exc}") from None
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{path}: schema_version {meta.get('schema_version')!r}, "
                             f"this code reads {SCHEMA_VERSION}")
        cells = read_csv(path / "cells.csv")
        done = {key(r) for r in cells}
        samples = [r for r in read_csv(path / "samples.csv") if key(r) in done]
        return cls(path, meta, cells, samples, read_csv(path / "tta.csv"))

    def done_cells(self) -> set[tuple[str, ...]]:
        return {key(r) for r in self.cells}

    def done_tta(self) -> set[tuple[str, ...]]:
        return {key(r, TTA_KEY) for r in self.tta}

    def add_cell(self, row: dict, samples: list[float] = ()) -> None:
        if row.get("status") not in STATUSES:
            raise ValueError(f"cell status must be one of {STATUSES}, got {row.get('status')!r}")
        k = {c: row[c] for c in CELL_KEY}
        self.samples += [{**k, "sample": i, "seconds_per_step": s} for i, s in enumerate(samples)]
        self.cells.append(row)

    def add_tta(self, row: dict) -> None:
        self.tta.append(row)

    def flush(self) -> None:
        """Rewrite all three tables; samples first, cells.csv (the commit record) last."""
        atomic_write(self.path / "samples.csv", csv_text(SAMPLE_COLUMNS, self.samples))
        atomic_write(self.path / "tta.csv", csv_text(TTA_COLUMNS, self.tta))
        atomic_write(self.path / "cells.csv", csv_text(CELL_COLUMNS, self.cells))

    def save_meta(self) -> None:
        atomic_write(self.path / "meta.json", json.dumps(self.meta, indent=2, default=str) + "\n")

    def write_json(self, name: str, obj) -> None:
        atomic_write(self.path / name, json.dumps(obj, indent=2, default=str) + "\n")
