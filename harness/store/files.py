"""Files written whole or not at all, and the CSV and JSON readers of run folders.

    from harness.store.files import atomic_write
    atomic_write(path, text)      # a reader (or a Ctrl-C) sees the old file or the new one
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path

from harness.codec import as_text


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


def csv_text(columns: tuple[str, ...], rows: list[dict]) -> str:
    """The CSV text of `rows` (each value as harness.codec.as_text writes it: floats by repr,
    no digit lost; NaN and None empty)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([as_text(row.get(c)) for c in columns])
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
