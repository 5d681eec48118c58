"""Run folders: append-only, self-describing results. The only reader and writer of them.

    from harness.store import CellKey, RunFolder
    folder = RunFolder.create("results", "default", meta)   # results/20250101-120000-default/
    folder.add_cell(row, blocks); folder.flush()            # a CellRow and its Block records
    folder.rows()                                           # the cells, typed (CellRow)
    folder = RunFolder.open("results/20250101-120000-default")  # --resume, compare
    cells = read_frame(folder_path, CELLS)                  # report: a pandas view

The files: harness/store/schema.py (names, keys, columns), harness/store/files.py (atomic
writes, CSV and JSON). A folder is never overwritten: a name that exists gets a suffix (-2, -3, ...).
Every file is written to a temporary name in the same folder and moved into
place with os.replace, which is atomic on POSIX: a reader (or a Ctrl-C) sees the
old file or the new one, never half of one. After each finished cell the tables
are rewritten, samples.csv first and cells.csv last, so cells.csv is the commit
record: samples of a cell missing from cells.csv are dropped on load and the
cell is simply run again on --resume. Every row is typed on its way in and out (CellRow,
harness/codec.py): a value that does not parse as its column's type is named, never guessed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.codec import as_text, from_row, to_row
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
    CellRow,
    ScalingKey,
    ScalingRow,
    TtaKey,
    TtaRow,
)

KINDS = ("cells", "scaling")  # what a run folder holds (meta.json's `kind`; see kind_of)


def kind_of(meta: dict) -> str:
    """The kind of run a folder holds, as its meta.json says. Folders written before the kind
    was recorded for every run are bench runs (scaling runs have always recorded theirs)."""
    kind = meta.get("kind", "cells") if isinstance(meta, dict) else "cells"
    if kind not in KINDS:
        raise ValueError(f"meta.json's kind {kind!r} is not one of {', '.join(KINDS)}")
    return kind


def folder_kind(path) -> str:
    """The kind of run in folder `path`, from its meta.json ("cells" when it cannot be read:
    the reader of a broken folder then says what is missing)."""
    try:
        return kind_of(read_json(Path(path), META))
    except (OSError, ValueError):
        return "cells"


def sample_rows(blocks) -> list[dict]:
    """samples.csv rows of Block records (harness.measure.records): one per sample."""
    return [{**CellKey.of(b.key)._asdict(), "round": b.round, "position": b.position,
             "sample": i, "seconds_per_step": s.seconds_per_step}
            for b in blocks for i, s in enumerate(b.samples)]


def scaling_sample_rows(blocks) -> list[dict]:
    """scaling_samples.csv rows: one per plain block of a launch, the profiled phases beside."""
    return [{**ScalingKey.of(b.key)._asdict(), "round": b.round, "position": b.position,
             "block": i, "seconds_per_step": s.seconds_per_step, "cpu_per_wall": s.cpu_per_wall,
             "compute_s": s.compute_s, "wait_s": s.wait_s, "comm_s": s.comm_s,
             "update_s": s.update_s}
            for b in blocks for i, s in enumerate(b.samples)]


class FolderLocked(ValueError):
    """Another process holds this run folder's lock (RunFolder.lock)."""


def writer(path) -> str | None:
    """The pid of the bench writing run folder `path` now (it holds the folder's lock), or None.
    A lock file left by a bench killed with SIGKILL is held by no one: None."""
    try:
        f = open(Path(path) / ".lock")
    except OSError:
        return None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return f.read().strip() or "?"
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


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
        if kind_of(meta) != "cells":
            raise ValueError(f"{path} is a {kind_of(meta)} run (meta.json's kind): it has no "
                             f"{CELLS} to open")
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{path}: schema_version {meta.get('schema_version')!r}, "
                             f"this code reads {SCHEMA_VERSION}")
        if not (path / CELLS).is_file():
            raise ValueError(f"{path} has no {CELLS}")
        cells, dropped = [], []
        for i, row in enumerate(read_csv(path / CELLS), start=2):
            if None in row.values() or None in row or row.get("status") not in STATUSES:
                dropped.append(f"{CELLS} line {i}: incomplete row, its cell will be rerun")
                continue
            try:
                from_row(CellRow, row, f"{CELLS} line {i}")
            except ValueError as exc:
                dropped.append(f"{exc}; its cell will be rerun")
                continue
            cells.append(row)
        done = {CellKey.of(r) for r in cells}
        samples = []
        for i, row in enumerate(read_csv(path / SAMPLES), start=2):
            if None in row.values() or CellKey.of(row) not in done:
                continue  # samples of a cell with no (complete) row: uncommitted
            _number(row, "seconds_per_step", f"{SAMPLES} line {i}")
            _number(row, "round", f"{SAMPLES} line {i}")
            samples.append(row)
        tta = []
        for i, row in enumerate(read_csv(path / TTA), start=2):
            try:  # a torn or mistyped row is run again
                if None not in row.values() and None not in row:
                    from_row(TtaRow, row, f"{TTA} line {i}")
                    tta.append(row)
                    continue
            except ValueError:
                pass
            dropped.append(f"{TTA} line {i}: incomplete or mistyped row, its run will be redone")
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

    def add_cell(self, row: CellRow | dict, samples=()) -> None:
        """A finished cell and its samples: Block records, or rows of SAMPLE_COLUMNS without the
        key. A dict row is typed first (CellRow: ValueError naming a bad value). Kept as the
        text it is stored as, like the rows of a folder that was opened."""
        if not isinstance(row, CellRow):
            row = from_row(CellRow, {k: as_text(v) for k, v in row.items()}, CELLS)
        text = to_row(row)
        key = CellKey.of(text)._asdict()
        blocks = [s for s in samples if not isinstance(s, dict)]
        self.samples += [{k: as_text(v) for k, v in r.items()} for r in sample_rows(blocks)]
        self.samples += [{**key, **{k: as_text(v) for k, v in s.items()}} for s in samples
                         if isinstance(s, dict)]
        self.cells.append(text)

    def rows(self) -> list[CellRow]:
        """The cells, typed."""
        return [from_row(CellRow, r) for r in self.cells]

    def add_tta(self, row: TtaRow | dict) -> None:
        """A finished time-to-accuracy run (a dict is typed first: TtaRow)."""
        if not isinstance(row, TtaRow):
            row = from_row(TtaRow, {k: as_text(v) for k, v in row.items()}, TTA)
        self.tta.append(to_row(row))

    def flush(self) -> None:
        """Rewrite all three tables; samples first, cells.csv (the commit record) last."""
        atomic_write(self.path / SAMPLES, csv_text(SAMPLE_COLUMNS, self.samples))
        atomic_write(self.path / TTA, csv_text(TTA_COLUMNS, self.tta))
        atomic_write(self.path / CELLS, csv_text(CELL_COLUMNS, self.cells))

    def write_table(self, name: str, columns: tuple[str, ...], rows: list) -> None:
        """Any other table of the folder (a scaling run's), rewritten whole, atomically; rows
        are typed records (ScalingRow) or dicts."""
        atomic_write(self.path / name, csv_text(columns, [
            r if isinstance(r, dict) else to_row(r) for r in rows]))

    def save_meta(self) -> None:
        self.write_json(META, self.meta)

    def write_json(self, name: str, obj) -> None:
        atomic_write(self.path / name, json.dumps(obj, indent=2, default=str) + "\n")
