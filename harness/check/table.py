"""The checker's readable table: one block per (impl, mode, device), worst error per tensor.

    from harness.check.table import render
    print(render(rows, unavailable, seconds, timings, notes=["user process: ..."]))

`check` prints it; a notebook result (harness/check/api.py) is it as text.
"""

from __future__ import annotations

from harness.check.agreement import Row

TENSOR_COLUMNS = ("W1", "b1", "W2", "b2", "loss")


def render(rows: list[Row], unavailable: list[dict], seconds: float,
           timings: dict[str, float] | None = None, notes: list[str] | None = None) -> str:
    """One block per (impl, mode, device); one line per (kind, dtype, loss): the worst error
    of each tensor over activations and problems, the tolerance, OK/FAIL. Then `notes` (lines
    about a user's function: its process, its output), the failures, and the verdict."""
    lines = []
    groups: dict = {}
    for r in rows:
        groups.setdefault((r.impl, r.mode, r.device), {}).setdefault((r.kind, r.dtype, r.loss),
                                                                     []).append(r)
    head = f"  {'kind':<11}{'dtype':<9}{'loss':<6}" + "".join(f"{c:>10}" for c in TENSOR_COLUMNS)
    head += f"{'tolerance':>11}  result"
    for (impl, mode, device), lines_by_key in groups.items():
        title = f"{impl} {mode} ({device})"
        took = (timings or {}).get(title)
        lines += [title + (f"   [{took:.1f} s]" if took is not None else ""), head]
        for (kind, dtype, loss), part in lines_by_key.items():
            cells = []
            for col in TENSOR_COLUMNS:
                names = ("loss", "history") if col == "loss" else (col,)
                errs = [r for r in part if r.tensor in names]
                cells.append(_worst_cell(errs))
            bad = any(not r.ok for r in part)
            lines.append(f"  {kind:<11}{dtype:<9}{loss:<6}" + "".join(f"{c:>10}" for c in cells)
                         + f"{part[0].tolerance:>11.0e}  {'FAIL' if bad else 'OK'}")
        lines.append("")
    lines.append("Errors: the worst entry over activations and problems (fd: |a-b|/max(|a|,|b|,"
                 "floor); grad, trajectory: |a-b|/(|ref|+max|ref|); 'loss' is the loss value,"
                 " or the loss history for trajectories). '-': no number (see below).")
    for u in unavailable:
        lines.append(f"unavailable: {u['impl']} {u['mode']} on {u['device']}: {u['reason']}")
    lines += notes or []
    failing = [r for r in rows if not r.ok]
    messages = failure_lines(failing)
    lines += ["FAIL " + m for m in messages[:40]]
    if len(messages) > 40:
        lines.append(f"... and {len(messages) - 40} more failures (--json lists them all)")
    verdict = (f"check: all {len(rows)} comparisons agree" if not failing
               else f"check: {len(failing)} of {len(rows)} comparisons DISAGREE")
    lines.append(f"{verdict} ({seconds:.1f} s)")
    return "\n".join(lines)


def failure_lines(failing: list[Row]) -> list[str]:
    """One line per failing row; but failures with no number to show (a skeleton's "not
    implemented: TODO 3: ...", "W2: not computed (None)", a crash) that say the same thing on
    every run are one line, with the count: a student reads one line per mistake."""
    groups: dict[tuple, list[Row]] = {}
    order: list = []
    for r in failing:
        key = (r.impl, r.mode, r.kind, r.tensor, r.diagnosis) if r.worst_index is None else id(r)
        if key not in groups:
            order.append(key)
        groups.setdefault(key, []).append(r)
    out = []
    for key in order:
        first, n = groups[key][0], len(groups[key])
        if n == 1:
            out.append(first.message())
            continue
        what = "" if first.tensor == "(call)" else f"{first.tensor}: "
        out.append(f"{first.impl} {first.mode} [{first.kind}]: {what}{first.diagnosis} "
                   f"(on all {n} runs)" if n == _runs(failing, first) else
                   f"{first.impl} {first.mode} [{first.kind}]: {what}{first.diagnosis} "
                   f"(on {n} runs)")
    return out


def _runs(rows: list[Row], like: Row) -> int:
    """How many runs (problem, loss, dtype) of like's impl and mode the failures cover."""
    return len({(r.problem, r.loss, r.dtype) for r in rows
                if (r.impl, r.mode, r.kind) == (like.impl, like.mode, like.kind)})


def _worst_cell(rows: list[Row]) -> str:
    if not rows:
        return ""
    if any(r.worst_error is None for r in rows):
        return "-"
    return f"{max(r.worst_error for r in rows):.1e}"
