"""Run folders: append-only, self-describing results. The only reader and writer of them.

    from harness.store import CellKey, RunFolder
    folder = RunFolder.create("results", "default", meta)   # results/20250101-120000-default/
    folder.add_cell(row, samples=[...]); folder.flush()     # tables rewritten atomically
    folder = RunFolder.open("results/20250101-120000-default")  # --resume, compare
    cells = read_frame(folder_path, CELLS)                  # report: a pandas view

The files: harness/store/schema.py (names, keys, columns), harness/store/files.py (atomic
writes, CSV and JSON). A folder is never overwritten: a name that exists gets a suffix (-2, -3, ...).
Every file is written to a temporary name in the same folder and moved into
place with os.replace, which is atomic on POSIX: a reader (or a Ctrl-C) sees the
old file or the new one, never half of one. After each finished cell the tables
are rewritten, samples.csv first and cells.csv last, so cells.csv is the commit
record: samples of a cell missing from cells.csv are dropped on load and the
cell is simply run again on --resume.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.measure.machine import utc_now
from harness.store.files import (  # noqa: F401  (re-exported: the store's public face)
    _number,
    atomic_write,
    csv_text,
    read_csv,
    read_frame,
    read_json,
)
from harness.store.schema import (  # noqa: F401  (re-exported)
    CELL_COLUMNS,
    CELLS,
    CHECK,
    META,
    REPORT,
    SAMPLE_COLUMNS,
    SAMPLES,
    SCALING,
    SCALING_COLUMNS,
    SCALING_SAMPLE_COLUMNS,
    SCALING_SAMPLES,
    SCHEMA_VERSION,
    STATUSES,
    TTA,
    TTA_COLUMNS,
    CellKey,
    ScalingKey,
    TtaKey,
)


class FolderLocked(ValueError):
    """Another process holds this run folder's lock (RunFolder.lock)."""


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
    def create(cls, root, profile: str, meta: dict | None = None, now=None,
               bench_tables: bool = True) -> RunFolder:
        """A new folder with meta.json and (bench_tables) the bench's tables, empty, with their
        headers: a reader never finds a folder without them. A scaling run writes its own."""
        folder = cls(new_folder(root, profile, now),
                     meta={"schema_version": SCHEMA_VERSION, **(meta or {})})
        folder.save_meta()
        if bench_tables:
            folder.flush()
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

    def write_table(self, name: str, columns: tuple[str, ...], rows: list[dict]) -> None:
        """Any other table of the folder (a scaling run's), rewritten whole, atomically."""
        atomic_write(self.path / name, csv_text(columns, rows))

    def save_meta(self) -> None:
        self.write_json(META, self.meta)

    def write_json(self, name: str, obj) -> None:
        atomic_write(self.path / name, json.dumps(obj, indent=2, default=str) + "\n")
