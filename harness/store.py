"""Run folders: append-only, self-describing results. The only reader and writer of them.

    from harness.store import CellKey, RunFolder
    folder = RunFolder.create("results", "default", meta)   # results/20250101-120000-default/
    folder.add_cell(row, samples=[...]); folder.flush()     # tables rewritten atomically
    folder = RunFolder.open("results/20250101-120000-default")  # --resume, compare
    cells = read_frame(folder_path, CELLS)                  # report: a pandas view

A folder is never overwritten: a name that exists gets a suffix (-2, -3, ...).
Every file is written to a temporary name in the same folder and moved into
place with os.replace, which is atomic on POSIX: a reader (or a Ctrl-C) sees the
old file or the new one, never half of one. After each finished cell the tables
are rewritten, samples.csv first and cells.csv last, so cells.csv is the commit
record: samples of a cell missing from cells.csv are dropped on load and the
cell is simply run again on --resume.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from harness.measure.machine import utc_now

# 2: samples carry their round and place in it; cells their rounds, intervals and speed-up.
SCHEMA_VERSION = 2
META, CELLS, SAMPLES, TTA, CHECK, REPORT = (
    "meta.json", "cells.csv", "samples.csv", "tta.csv", "check.json", "report.md")


class FolderLocked(ValueError):
    """Another process holds this run folder's lock (RunFolder.lock)."""


class CellKey(NamedTuple):
    """What identifies a cell: one row of cells.csv, and its rows of samples.csv."""

    impl: str
    mode: str
    device: str
    dtype: str
    size: str  # the size's name

    @classmethod
    def of(cls, cell) -> CellKey:
        """The key of a stored row (a mapping) or of a planned cell (harness.measure.spec.Cell)."""
        get = cell.get if isinstance(cell, Mapping) else lambda name: getattr(cell, name)
        size = get("size")
        return cls(*(str(get(f)) for f in cls._fields[:-1]), str(getattr(size, "name", size)))


class TtaKey(NamedTuple):
    """What identifies a time-to-accuracy run: one row of tta.csv."""

    impl: str
    mode: str
    device: str
    dtype: str
    dataset: str

    @classmethod
    def of(cls, row: Mapping) -> TtaKey:
        return cls(*(str(row[f]) for f in cls._fields))


# docs/architecture.md's columns, then additions at the end.
CELL_COLUMNS = CellKey._fields + (
    "n_samples", "n_features", "n_hidden", "n_outputs", "batch_size", "loss", "activation",
    "status", "reason", "setup_s", "first_call_s", "step_median_s", "step_iqr_s", "repeats",
    "steps_per_sample", "noisy", "flops_per_step", "gflops", "peak_gflops", "peak_fraction",
    "peak_mem_bytes", "threads", "matmul_precision", "final_loss",
    # additions: framework import time, warm-up steps run, memory held after setup, how
    # peak memory was measured; the rounds and the 95% interval of the step time; the
    # speed-up over hand-written NumPy (paired by round) and its interval; how long the
    # cell's threads kept a core busy after a block (the scheduler waits that out).
    "import_s", "warmup_steps", "setup_mem_bytes", "peak_mem_method", "rounds", "step_low_s",
    "step_high_s", "speedup", "speedup_low", "speedup_high", "settle_s",
)
# One row per sample: its round, its block's place in that round's random order.
SAMPLE_COLUMNS = CellKey._fields + ("round", "position", "sample", "seconds_per_step")
TTA_COLUMNS = TtaKey._fields + (
    "target", "reached", "seconds", "epochs", "status", "reason",
    # additions: how often accuracy was checked, the epoch cap, the last accuracy seen.
    "eval_every", "max_epochs", "accuracy",
)
STATUSES = ("ok", "failed", "timeout", "diverged", "unavailable")


def _file_mode() -> int:
    """What open() would create: 0666 less the umask (mkstemp's own files are 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder, fsync and os.replace.
    The file is readable by others as any file the user writes (0644 under umask 022)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())
        if isinstance(data, str):
            f = os.fdopen(fd, "w", newline="", encoding="utf-8")
        else:
            f = os.fdopen(fd, "wb")
        with f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv_field(value) -> str:
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
        w.writerow([_csv_field(row.get(c)) for c in columns])
    return buf.getvalue()


def read_csv(path: Path) -> list[dict]:
    """Rows as dicts of strings ('' for missing); [] when the file does not exist. A row
    with fewer fields than the header (a torn last line) has None in the missing ones."""
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def _number(row: dict, column: str, where: str) -> float:
    try:
        value = float(row[column])
    except (TypeError, ValueError, KeyError):
        raise ValueError(f"{where}: {column} {row.get(column)!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: {column} {row[column]!r} is not finite")
    return value


def read_frame(folder: Path, name: str):
    """One stored table as a pandas DataFrame (for the report); raises as pandas does."""
    import pandas as pd  # lazily: bench and the cells never need pandas

    return pd.read_csv(Path(folder) / name)


def read_json(folder: Path, name: str):
    return json.loads((Path(folder) / name).read_text())


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
class RunFolder:
    """A run folder's tables in memory, written back atomically."""

    path: Path
    meta: dict = field(default_factory=dict)
    cells: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    tta: list[dict] = field(default_factory=list)

    @classmethod
    def create(cls, root, profile: str, meta: dict | None = None, now=None) -> RunFolder:
        folder = cls(new_folder(root, profile, now),
                     meta={"schema_version": SCHEMA_VERSION, **(meta or {})})
        folder.save_meta()
        folder.flush()  # empty tables with headers: a reader never finds a folder without them
        return folder

    dropped: list[str] = field(default_factory=list)  # rows left out on open, and why

    @classmethod
    def open(cls, path) -> RunFolder:
        """Open an existing run folder; ValueError (one line) if it is not one, or holds a
        value no bench wrote. A row no bench could have finished (a torn last line, a
        status that is not one of STATUSES) is dropped, with its samples, and listed in
        `dropped`: resume reruns its cell."""
        path = Path(path)
        meta_path = path / META
        if not path.is_dir() or not meta_path.is_file():
            raise ValueError(f"{path} is not a run folder (no {META})")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{meta_path} is not valid JSON: {exc}") from None
        except OSError as exc:
            raise ValueError(f"{meta_path} cannot be read: {exc.strerror}") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{meta_path} is not a JSON object")
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{path}: schema_version {meta.get('schema_version')!r}, "
                             f"this code reads {SCHEMA_VERSION}")
        if not (path / CELLS).is_file():
            raise ValueError(f"{path} has no {CELLS}")
        cells, dropped = [], []
        for i, row in enumerate(read_csv(path / CELLS), start=2):
            if None in row.values() or None in row or row.get("status") not in STATUSES:
                dropped.append(f"{CELLS} line {i}: incomplete row, its cell will be rerun")
            else:
                cells.append(row)
        done = {CellKey.of(r) for r in cells}
        samples = []
        for i, row in enumerate(read_csv(path / SAMPLES), start=2):
            if None in row.values() or CellKey.of(row) not in done:
                continue  # samples of a cell with no (complete) row: uncommitted
            _number(row, "seconds_per_step", f"{SAMPLES} line {i}")
            _number(row, "round", f"{SAMPLES} line {i}")
            samples.append(row)
        tta = [r for r in read_csv(path / TTA) if None not in r.values()
               and r.get("status") in STATUSES]
        return cls(path, meta, cells, samples, tta, dropped)

    @contextlib.contextmanager
    def lock(self):
        """Hold the folder's lock while writing it: a second writer (another bench, or a second
        --resume) fails at once with ValueError instead of interleaving its rows with ours.
        The kernel drops the lock when the holder dies, even by SIGKILL."""
        path = self.path / ".lock"
        with open(path, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "?"
                raise FolderLocked(f"{self.path} is being written by another bench (pid {holder});"
                                   " wait for it to finish") from None
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            try:
                yield self
            finally:
                path.unlink(missing_ok=True)

    def done_cells(self) -> set[CellKey]:
        return {CellKey.of(r) for r in self.cells}

    def done_tta(self) -> set[TtaKey]:
        return {TtaKey.of(r) for r in self.tta}

    def add_cell(self, row: dict, samples: list[dict] = ()) -> None:
        """A finished cell and its samples (rows of SAMPLE_COLUMNS without the key)."""
        if row.get("status") not in STATUSES:
            raise ValueError(f"cell status must be one of {STATUSES}, got {row.get('status')!r}")
        key = CellKey.of(row)._asdict()
        self.samples += [{**key, **s} for s in samples]
        self.cells.append(row)

    def add_tta(self, row: dict) -> None:
        self.tta.append(row)

    def flush(self) -> None:
        """Rewrite all three tables; samples first, cells.csv (the commit record) last."""
        atomic_write(self.path / SAMPLES, csv_text(SAMPLE_COLUMNS, self.samples))
        atomic_write(self.path / TTA, csv_text(TTA_COLUMNS, self.tta))
        atomic_write(self.path / CELLS, csv_text(CELL_COLUMNS, self.cells))

    def save_meta(self) -> None:
        self.write_json(META, self.meta)

    def write_json(self, name: str, obj) -> None:
        atomic_write(self.path / name, json.dumps(obj, indent=2, default=str) + "\n")
