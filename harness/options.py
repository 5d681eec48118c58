"""The rules of command-line options, each with its one message: every command checks its
options here, before any work, so the same rule reads the same in every command.

    from harness import options
    options.seconds("--timeout", args.timeout)                 # > 0 and finite (None passes)
    options.seconds("--wall-budget", args.wall_budget, zero="no limit")   # >= 0
    options.integer("--jobs", args.jobs)                       # >= 1
    options.integer("--threads", n, high=2, why="usable CPUs")  # 1 .. 2
    options.non_negative("--min-effect", args.min_effect)
    options.probability("--confidence", args.confidence)       # 0 < p < 1
    options.values("--impl", names)                            # at least one
    options.name("--function", args.function)                  # a Python name
    options.out_folder("--out", args.out, inputs=runs, markers=("meta.json",))

Each raises harness.errors.UsageError (one line, exit 2, no traceback) and returns the value.
Numbers follow the contract's words (impls/contract.py's check_number): "a positive number",
"a positive integer"; NaN and infinity are no number of seconds.
"""

from __future__ import annotations

import math
from pathlib import Path

from harness.errors import UsageError


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def seconds(flag: str, value, zero: str | None = None):
    """A number of seconds: > 0, or >= 0 where `zero` says what 0 means. None passes (the
    command's default applies)."""
    if value is None:
        return None
    words = "a positive number of seconds" if zero is None else \
        f"a non-negative number of seconds (0: {zero})"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{flag} must be {words}, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and zero is None):
        raise UsageError(f"{flag} must be {words}, got {_show(value)}")
    return value


def integer(flag: str, value, low: int = 1, high: int | None = None, why: str = ""):
    """An integer >= `low` (and <= `high`, where `why` says where that bound comes from)."""
    if value is None:
        return None
    if high is not None and not (isinstance(value, int) and low <= value <= high):
        raise UsageError(f"{flag} must be an integer from {low} to {high}"
                         f"{f' ({why})' if why else ''}, got {value}")
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        words = {1: "a positive integer", 0: "a non-negative integer"}.get(
            low, f"an integer >= {low}")
        raise UsageError(f"{flag} must be {words}, got {value}")
    return value


def non_negative(flag: str, value):
    """A finite number >= 0."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise UsageError(f"{flag} must be a finite, non-negative number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{flag} must be a finite, non-negative number, got {_show(value)}")
    return value


def probability(flag: str, value):
    """A number strictly between 0 and 1 (a confidence)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not (math.isfinite(value) and 0 < value < 1):
        raise UsageError(f"{flag} must be a number between 0 and 1 (both excluded),"
                         f" got {_show(value)}")
    return value


def values(flag: str, given):
    """A list option that was given must hold at least one value (None: not given)."""
    if given is not None and not given:
        raise UsageError(f"{flag} needs at least one value, got an empty list")
    return given


def name(flag: str, value: str) -> str:
    if not (isinstance(value, str) and value.isidentifier()):
        raise UsageError(f"{flag} must be a Python name, got {value!r}")
    return value


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def out_folder(flag: str, path, inputs=(), markers=(), own=None):
    """A folder to write into: not a file; not one of the command's `inputs` nor inside one
    (their files are not this command's to overwrite); and not a folder that holds one of
    `markers` (another run's files), unless it is `own`, the one folder whose files this
    command writes by design (a run's own report). Returns the path."""
    if path is None:
        return None
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{flag} {out} is a file, not a folder")
    resolved = out.resolve()
    mine = Path(own).resolve() if own is not None else None
    for given in inputs:
        folder = Path(given).resolve()
        if folder != mine and _within(resolved, folder):
            where = "is" if resolved == folder else "is inside"
            raise UsageError(f"{flag} {out} {where} {given}, an input of this command: its"
                             " files are not this command's to overwrite; choose a folder of"
                             " its own")
    if resolved != mine and out.is_dir() and (found := [m for m in markers if (out / m).exists()]):
        raise UsageError(f"{flag} {out} holds {found[0]}: it is a run folder of its own, whose"
                         " files are not this command's to overwrite; choose a folder of its"
                         " own")
    return out
