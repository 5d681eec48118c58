"""A class's submissions: one entry per student in a folder or a .zip.

    from harness.grade.submissions import find, unpack
    folder = unpack(Path("class.zip"), into=tmp)   # a .zip becomes a folder (safely)
    for s in find(folder, "grads"):                 # sorted by name
        s.name, s.file, s.readable, s.problem

An entry is a `.py` file, a `.ipynb` notebook, or a folder holding them; its name without the
extension is the submission's name. In a folder, the file that is graded is the one `.py`
file that defines the function (`def grads`), else the one notebook, else the one `.py`
file; anything else is a problem of that submission (no file, several candidates), which
grades it "missing" or "error" without stopping the others. Hidden entries (".x", "_x",
"__MACOSX") are skipped. The sandbox may read the entry only: the file itself, or the
student's folder (so a step.py can import its own backprop.py).
"""

from __future__ import annotations

import ast
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError

SUFFIXES = (".py", ".ipynb")
MAX_UNPACKED = 1 << 30  # bytes a .zip may unpack to
MAX_MEMBERS = 20_000


@dataclass(frozen=True)
class Submission:
    name: str  # the entry's name without its extension
    file: Path | None  # what is graded; None when there is nothing to grade
    readable: Path  # what the sandbox may read: the file, or the student's folder
    problem: str = ""  # why there is nothing to grade ("" when file is set)
    missing: bool = False  # the problem is that no file or function exists (status missing)

    @property
    def shown(self) -> str:
        """The graded file, relative to the class folder."""
        return self.file.relative_to(self.readable.parent).as_posix() if self.file else ""


def safe_name(name: str) -> str:
    """A file name for outputs named after a submission (feedback/<name>.md)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "_"


def find(folder: Path, function: str) -> list[Submission]:
    """Every entry of `folder`, sorted by name. UsageError when the folder holds none."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder (or .zip)")
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith((".", "_"))
                     and (p.is_dir() or p.suffix in SUFFIXES))
    out, names = [], set()
    for entry in entries:
        name = entry.stem if entry.is_file() else entry.name
        if name in names or safe_name(name) in {safe_name(n) for n in names}:
            name = entry.name  # alice.py and alice.ipynb: the second keeps its extension
        names.add(name)
        out.append(_entry(entry, name, function))
    if not out:
        raise UsageError(f"{folder}: no submissions (.py, .ipynb, or a folder holding one)")
    return out


def _entry(entry: Path, name: str, function: str) -> Submission:
    if entry.is_file():
        return Submission(name, entry, entry)
    files = sorted(p for p in entry.rglob("*") if p.suffix in SUFFIXES and p.is_file()
                   and not any(part.startswith((".", "_")) for part in p.relative_to(entry).parts))
    py = [p for p in files if p.suffix == ".py"]
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    defining = [p for p in py if _defines(p, function)]
    for candidates in (defining, notebooks, py):
        if len(candidates) == 1:
            return Submission(name, candidates[0], entry)
        if len(candidates) > 1:
            shown = ", ".join(p.relative_to(entry).as_posix() for p in candidates[:5])
            return Submission(name, None, entry, f"several files could be the one to grade "
                              f"({shown}): keep one, or one that defines {function}")
    return Submission(name, None, entry, "no .py or .ipynb file in the folder", missing=True)


def _defines(path: Path, function: str) -> bool:
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError):
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Assign)) and (
        getattr(n, "name", None) == function
        or any(getattr(t, "id", None) == function for t in getattr(n, "targets", [])))
        for n in tree.body)


def unpack(archive: Path, into: Path) -> Path:
    """The .zip's members under `into` (no absolute paths, no "..", no links, at most
    MAX_UNPACKED bytes); its single top folder if it has one and nothing else."""
    try:
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.infolist() if not m.is_dir()]
            if len(members) > MAX_MEMBERS or sum(m.file_size for m in members) > MAX_UNPACKED:
                raise UsageError(f"{archive}: too large to unpack ({len(members)} files, "
                                 f"{sum(m.file_size for m in members) / 2**20:.0f} MiB)")
            for m in members:
                parts = Path(m.filename).parts
                link = (m.external_attr >> 16) & 0o170000 == 0o120000
                if m.filename.startswith(("/", "\\")) or ".." in parts or link:
                    raise UsageError(f"{archive}: unsafe member {m.filename!r}")
            z.extractall(into)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UsageError(f"{archive}: not a readable .zip ({exc})") from None
    top = [p for p in into.iterdir() if not p.name.startswith((".", "_"))]
    return top[0] if len(top) == 1 and top[0].is_dir() else into
