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
    for r in failing[:40]:
        lines.append("FAIL " + r.message())
    if len(failing) > 40:
        lines.append(f"... and {len(failing) - 40} more failures (--json lists them all)")
    verdict = (f"check: all {len(rows)} comparisons agree" if not failing
               else f"check: {len(failing)} of {len(rows)} comparisons DISAGREE")
    lines.append(f"{verdict} ({seconds:.1f} s)")
    return "\n".join(lines)


def _worst_cell(rows: list[Row]) -> str:
    if not rows:
        return ""
    if any(r.worst_error is None for r in rows):
        return "-"
    return f"{max(r.worst_error for r in rows):.1e}"
