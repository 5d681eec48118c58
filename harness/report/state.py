"""What a run folder's files support: which rows could be read, and what the run planned but
does not hold (cells, configurations, sizes, rounds, time-to-accuracy runs).

    from harness.report.state import readable, lacking, refuse_if_written
    refuse_if_written(folder)                     # UsageError while a bench writes it
    rows, dropped = readable(folder, CELLS, CellRow)   # rows typed by harness/codec.py
    lines = lacking(meta, "cells", rows, tta_rows)     # what the run lacks, one line each

A row is read only if it is whole and every value parses as its column's type (CellRow,
ScalingRow, TtaRow: harness/store/schema.py); any other is dropped here and named by its file
and line, so a report never draws on half a row, and says how many it left out. What a run
lacks is its plan (meta.json's `plan`) and its rounds (its settings) against the rows read:
a report of a run that did not finish says so, and what it lacks, in its first lines.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from harness.codec import from_row
from harness.errors import UsageError
from harness.report.tables import dig, words
from harness.store import CELLS, SCALING, csv_text, folder_kind, read_csv, writer

SHOWN = 6  # rows named one by one; the rest are counted


def refuse_if_written(folder) -> None:
    """A run a bench is writing now is refused (its tables are half of what they will be): one
    line, exit 2. A folder whose bench was killed is no longer written: it is reported, as
    unfinished."""
    if (pid := writer(folder)) is not None:
        raise UsageError(f"{folder} is still being written by a bench (pid {pid}): report it"
                         " when that bench has finished (a report now would describe a"
                         " half-written run)")


def kind(run_dir) -> str:
    """The kind of run in `run_dir`: what its meta.json says, or (a meta.json that cannot say)
    what its tables are: a folder with scaling.csv and no cells.csv holds a scaling run."""
    run_dir = Path(run_dir)
    found = folder_kind(run_dir)
    if found == "cells" and (run_dir / SCALING).exists() and not (run_dir / CELLS).exists():
        return "scaling"
    return found


def readable(folder: Path, name: str, record) -> tuple[list[dict], list[str], list[str]]:
    """The rows of table `name` that are whole and typed as `record` (as text), one line per
    row that is not ('`cells.csv` line 7: ...'), and the file's columns. A missing or empty
    file has no rows and no columns."""
    rows, dropped = [], []
    with open(Path(folder) / name, newline="") as f:
        columns = next(csv.reader(f), [])
    for i, row in enumerate(read_csv(Path(folder) / name), start=2):
        where = f"`{name}` line {i}"
        if None in row or None in row.values():
            dropped.append(f"{where}: incomplete (cut off mid-row, or a field too many)")
            continue
        try:
            from_row(record, row, where)
        except (ValueError, TypeError) as exc:
            dropped.append(str(exc))
            continue
        rows.append(row)
    return rows, dropped, columns


def frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """Whole rows as pandas reads their CSV: the same types it infers from a whole file."""
    if not columns:
        raise ValueError("the file is empty: not even a header")
    return pd.read_csv(io.StringIO(csv_text(tuple(columns), rows)))


def preamble(lacks: list[str], dropped: list[str], resume: str | None = None) -> list[str]:
    """The report's first lines (markdown) when its run did not finish or rows were left out;
    [] for a whole, finished run. `resume`: the command that finishes the run, if any."""
    out = []
    if lacks:
        out += ["> **Incomplete: this run's files hold only part of what it planned.**",
                *[f"> - {line}" for line in lacks]]
        if resume:
            out.append(f"> - `{resume}` finishes it.")
        out.append("")
    if dropped:
        more = len(dropped) - SHOWN
        out += [f"> **{len(dropped)} row{'s' if len(dropped) > 1 else ''} could not be read**"
                " (whole and typed as its table's columns), and"
                f" {'are' if len(dropped) > 1 else 'is'} left out of every table and figure:",
                *[f"> - {d}" for d in dropped[:SHOWN]],
                *([f"> - ... and {more} more."] if more > 0 else []), ""]
    return out


# ---- the plan against the rows ------------------------------------------------------------------
def planned_rounds(meta: dict) -> int | None:
    """The rounds the run's settings asked for (two layouts: before and after the one profile
    type)."""
    for path in ("settings.policy.rounds", "settings.rounds", "profile.rounds"):
        value = dig(meta, path)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _size(size) -> str:
    return str(size.get("name")) if isinstance(size, dict) else str(size)


def planned(meta: dict, kind: str) -> list[tuple]:
    """The run's planned cells (kind cells: impl, mode, device, dtype, size) or configurations
    (kind scaling: ..., launch, workers), as meta.json's plan lists them; [] without one."""
    the_plan = meta.get("plan")
    cells = the_plan.get("cells") if isinstance(the_plan, dict) else the_plan
    out = []
    for c in cells if isinstance(cells, list) else []:
        if not isinstance(c, dict):
            continue
        key = (str(c.get("impl")), str(c.get("mode")), str(c.get("device")),
               str(c.get("dtype")), _size(c.get("size")))
        if kind == "scaling":
            key += (str(c.get("launch")), str(c.get("workers")))
        out.append(key)
    return out


def _key(row: dict, kind: str) -> tuple:
    key = tuple(str(row.get(f)) for f in ("impl", "mode", "device", "dtype", "size"))
    if kind == "scaling":
        key += (str(row.get("launch")), str(row.get("workers")))
    return key


def _name(key: tuple, kind: str) -> str:
    if kind == "scaling":
        return f"{key[0]}/{key[1]} ({key[5]}) W = {key[6]}"
    return f"{key[0]} {key[1]}" + (f" {key[2]}" if key[2] != "cpu" else "")


def lacking(meta: dict, kind: str, rows: list[dict], tta: list[dict] | None = None) -> list[str]:
    """What the run planned and its rows do not hold, one line each ([] for a finished run):
    how its last bench ended, the cells or configurations with no row (by size), the rows
    with fewer rounds than planned, the time-to-accuracy runs with no row."""
    said = []
    runs = meta.get("runs") if isinstance(meta.get("runs"), list) else []
    last = runs[-1] if runs and isinstance(runs[-1], dict) else {}
    if runs and not last.get("finished_utc"):
        said.append(f"The bench that wrote it stopped before its end (started"
                    f" {last.get('started_utc', 'at an unknown time')} UTC; killed or"
                    " interrupted).")
    if isinstance(last.get("not_started"), dict):
        left = last["not_started"]
        said.append(f"Its wall budget of {last.get('wall_budget_s', '?')} s ran out:"
                    f" {len(left.get('cells') or [])} cells and {len(left.get('tta') or [])}"
                    " time-to-accuracy runs were not started.")
    plan = planned(meta, kind)
    have = {_key(r, kind) for r in rows}
    missing = [k for k in plan if k not in have]
    what = "configurations" if kind == "scaling" else "cells"
    if missing:
        sizes = list(dict.fromkeys(k[4] for k in plan))
        by = {s: [k for k in missing if k[4] == s] for s in sizes}
        whole = [s for s in sizes if by[s] and len(by[s]) == sum(k[4] == s for k in plan)]
        parts = [f"size {s}: {', '.join(_name(k, kind) for k in by[s])}" for s in sizes
                 if by[s] and s not in whole]
        if whole:
            parts.insert(0, f"every {what[:-1]} of size{'s' if len(whole) > 1 else ''}"
                            f" {words(whole)}")
        said.append(f"{len(missing)} of {len(plan)} planned {what} have no row: "
                    + "; ".join(parts) + ".")
    rounds = planned_rounds(meta)
    ran = [r for r in rows if r.get("status") == "ok" and str(r.get("rounds", "")).isdigit()]
    short = [r for r in ran if rounds and int(r["rounds"]) < rounds]
    counts = sorted({int(r["rounds"]) for r in short})
    if short and len(short) == len(ran) and len(counts) == 1:
        said.append(f"It stopped after {counts[0]} of the {rounds} planned rounds: every"
                    f" {what[:-1]} that ran rests on {counts[0]}.")
    elif short:
        said.append(f"{len(short)} {what} ran fewer rounds than the {rounds} planned"
                    f" ({' or '.join(map(str, counts))}): "
                    + ", ".join(f"{_name(_key(r, kind), kind)} at {r['size']}" for r in
                                short[:SHOWN]) + (" ..." if len(short) > SHOWN else "") + ".")
    goals = meta["plan"].get("tta") if isinstance(meta.get("plan"), dict) else None
    if tta is not None and isinstance(goals, list) and goals:
        done = {tuple(str(r.get(f)) for f in ("impl", "mode", "device", "dtype")) for r in tta}
        left = [g for g in goals if isinstance(g, dict) and tuple(
            str(g.get(f)) for f in ("impl", "mode", "device", "dtype")) not in done]
        if left:
            said.append(f"{len(left)} of {len(goals)} planned time-to-accuracy runs have no"
                        " row: " + ", ".join(f"{g.get('impl')} {g.get('mode')}" for g in left)
                        + ".")
    return said
