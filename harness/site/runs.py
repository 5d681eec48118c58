"""Every folder under a results root, read as far as it can be, with what is wrong with it.

    from harness.site.runs import scan
    runs = scan(Path("results"))     # one Run per sub-folder, oldest first
    run.problems                     # [] for a sound run; else one line per problem

A folder that is damaged (meta.json unreadable, a table torn), half-written (a bench killed or
still running: no finish time, a lock file, incomplete rows) or of another schema version is a
Run like any other, with its problems listed: the site shows what can be read and says what
cannot. Nothing here raises for a folder's content; the files are read through harness/store
and harness/report/load.py, as the report reads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from harness.errors import UsageError
from harness.report.load import RunData, load
from harness.report.multi import machine_label
from harness.report.tables import dig
from harness.site.paths import MARKER
from harness.store import (
    CELLS,
    META,
    REPORT,
    SCALING,
    SCHEMA_VERSION,
    STATUSES,
    RunFolder,
    read_frame,
    read_json,
)

# The libraries a series' numbers depend on, beyond NumPy (the baseline of every speed-up).
LIBRARIES = {"numpy": ("numpy",), "torch": ("torch",), "jax": ("jax", "jaxlib"),
             "cupy": ("cupy",), "sklearn": ("scikit-learn",)}
SHOWN = ("numpy", "torch", "jax", "cupy", "scikit-learn")  # on the index, where recorded


@dataclass
class Run:
    """One folder under the results root, as far as it could be read."""

    path: Path
    slug: str  # its folder name in the site (runs/<slug>/)
    kind: str  # bench | scaling | unknown
    meta: dict
    cells: pd.DataFrame | None  # cells.csv (a bench run) or scaling.csv (a scaling run)
    problems: list[str] = field(default_factory=list)
    data: RunData | None = None  # the report's view of a bench run
    folder: RunFolder | None = None  # the strict view (compare's); None when it cannot open

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def profile(self) -> str:
        p = self.meta.get("profile")
        return str(p.get("name", "?") if isinstance(p, dict) else p or "?")

    @property
    def machine(self) -> str:
        return machine_label(self.meta) if self.meta else "unknown machine"

    @property
    def commit(self) -> str | None:
        value = dig(self.meta, "machine.git.commit")
        return str(value) if value else None

    @property
    def dirty(self) -> bool:
        return bool(dig(self.meta, "machine.git.dirty", default=False))

    @property
    def commit_text(self) -> str:
        if not self.commit:
            return "unknown"
        return self.commit[:10] + (" (uncommitted changes)" if self.dirty else "")

    @property
    def versions(self) -> dict:
        v = dig(self.meta, "machine.versions", default={})
        return {k: x for k, x in v.items() if x} if isinstance(v, dict) else {}

    def libraries(self, impl: str | None = None) -> str:
        """'numpy 2.4.6, torch 2.13.0+cpu': those `impl` depends on, or those of SHOWN."""
        names = SHOWN if impl is None else ("numpy", *LIBRARIES.get(impl, (impl,)))
        v = self.versions
        return ", ".join(f"{n} {v[n]}" for n in dict.fromkeys(names) if n in v) or "unknown"

    @property
    def utc(self) -> datetime | None:
        """When it started: meta.json's machine.utc, else the folder name's UTC stamp."""
        starts = self.meta.get("runs")
        first = starts[0] if isinstance(starts, list) and starts else {}
        for text in (dig(self.meta, "machine.utc"), dig(first, "started_utc")):
            try:
                when = datetime.fromisoformat(str(text))
                return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
            except ValueError:
                continue
        if m := re.match(r"(\d{8}-\d{6})", self.name):
            return datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc)
        return None

    @property
    def utc_text(self) -> str:
        return self.utc.strftime("%Y-%m-%d %H:%M:%S") if self.utc else "unknown"

    @property
    def report(self) -> Path | None:
        return self.path / REPORT if (self.path / REPORT).is_file() else None

    def counts(self) -> tuple[int, int]:
        """(cells that ran, cells in the table)."""
        if self.cells is None or "status" not in self.cells:
            return 0, 0 if self.cells is None else len(self.cells)
        return int((self.cells["status"] == "ok").sum()), len(self.cells)


def scan(root: Path) -> list[Run]:
    """Every run folder under `root` (its sub-folders, hidden ones and sites aside; or `root`
    itself when it is one), oldest first; UsageError when `root` is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory (expected a results folder, e.g. results/)")
    runs, slugs = [], set()
    if any((root / name).exists() for name in (META, CELLS, SCALING)):
        folders = [root]  # a run folder itself: its site alone
    else:  # hidden folders (a site being built) and sites built here are no runs
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                         and not (p / MARKER).exists())
    for path in folders:
        slug = _slug(path.name, slugs)
        try:
            runs.append(read(path, slug))
        except Exception as exc:  # noqa: BLE001  one folder never breaks the others
            runs.append(Run(path, slug, "unknown", {}, None,
                            [f"could not be read: {type(exc).__name__}: {exc}"]))
    far = datetime.max.replace(tzinfo=timezone.utc)
    return sorted(runs, key=lambda r: (r.utc or far, r.name))


def _slug(name: str, taken: set) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".") or "run"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


def read(path: Path, slug: str) -> Run:
    """One folder: a bench run, a scaling run, or something that is not a run (said so)."""
    if (path / SCALING).exists():
        return _scaling(path, slug)
    try:
        data = load(path)
    except UsageError:
        return Run(path, slug, "unknown", {}, None,
                   [f"not a run folder: no {META}, {CELLS} or {SCALING}"])
    notes = [n for n in data.notes if "this report reads version" not in n]
    version = data.meta.get("schema_version")
    if version != SCHEMA_VERSION and data.meta:
        notes.append(f"schema version {version if version is not None else 'unknown'} (this code"
                     f" reads {SCHEMA_VERSION}): shown as far as its columns go, never compared")
    cells = data.cells
    if cells is not None and "status" in cells:
        torn = ~cells["status"].isin(STATUSES)  # a torn last line, a status no bench wrote
        if torn.any():
            notes.append(f"{int(torn.sum())} row(s) of `{CELLS}` left out: incomplete, or a"
                         " status no bench writes")
            cells = data.cells = cells[~torn]
    run = Run(path, slug, "bench", data.meta, cells, notes, data)
    try:
        run.folder = RunFolder.open(path)
        run.problems += [f"half-written: {d}" for d in run.folder.dropped]
        if run.folder.dropped:  # said just now, with the line numbers
            run.problems = [p for p in run.problems if "left out: incomplete" not in p]
    except ValueError as exc:
        if run.meta.get("schema_version") == SCHEMA_VERSION:  # load() said so otherwise
            run.problems.append(f"cannot be compared: {exc}")
    _unfinished(run)
    return run


def _scaling(path: Path, slug: str) -> Run:
    problems, meta, cells = [], {}, None
    try:
        meta = load_meta(path)
    except ValueError as exc:
        problems.append(str(exc))
    try:
        cells = read_frame(path, SCALING)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        problems.append(f"`{SCALING}` could not be read ({type(exc).__name__}: {exc}).")
    if cells is not None and cells.empty:
        problems.append(f"`{SCALING}` has no rows.")
    if cells is not None and not {"impl", "mode", "workers", "status"} <= set(cells):
        problems.append(f"`{SCALING}` lacks the key columns: not shown.")
        cells = None
    run = Run(path, slug, "scaling", meta, cells, problems)
    _unfinished(run)
    return run


def load_meta(path: Path) -> dict:
    """meta.json as a dict; ValueError with one line when it is missing or not an object."""
    try:
        meta = read_json(path, META)
    except FileNotFoundError:
        raise ValueError(f"`{META}` is missing from this run folder.") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"`{META}` could not be read ({type(exc).__name__}: {exc}).") from None
    if not isinstance(meta, dict):
        raise ValueError(f"`{META}` is not a JSON object.")
    return meta


def _unfinished(run: Run) -> None:
    """A bench that never wrote its finish time was killed, or is running now."""
    starts = run.meta.get("runs")
    if isinstance(starts, list) and starts and isinstance(starts[-1], dict) \
            and "finished_utc" not in starts[-1]:
        run.problems.append(f"unfinished: started {starts[-1].get('started_utc', '?')} and never"
                            " finished (interrupted, killed, or still running)")
    if (run.path / ".lock").exists():
        run.problems.append("a lock file: a bench is writing it now, or was killed while it did")
