"""One row per checked tensor: compare a result with the reference, tensor by tensor.

    from harness.check.agreement import compare
    rows = compare({"loss": L_ref, **G_ref}, {"loss": L, **G}, "grad", "float32", N, K,
                   impl="torch", mode="eager", device="cpu", loss="mse",
                   activation="sigmoid", problem="F5-H7-K3-N12")
    [r.message() for r in rows if not r.ok]    # names the tensor, worst entry, diagnosis

The metrics and tolerances are harness/check/tolerances.py's; the diagnosis of a
failing tensor is harness/check/diagnose.py's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from harness.check.diagnose import diagnose
from harness.check.tolerances import (
    FD_FLOOR,
    SCALARS,
    SCALE_FLOOR,
    fd_errors,
    global_scale,
    scaled_errors,
    tolerance,
)


# ---- one row of the report -----------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One checked tensor; the fields of a `check --json` row (docs/architecture.md)."""

    kind: str  # "fd" | "grad" | "trajectory"
    impl: str
    mode: str
    device: str
    dtype: str
    loss: str
    activation: str
    problem: str  # e.g. "F5-H7-K3-N11"
    tensor: str  # W1, b1, W2, b2, loss, or "(call)" when a user function failed to run
    worst_error: float | None  # None when not computable (wrong shape, no result)
    tolerance: float
    ok: bool
    worst_index: list[int] | None
    diagnosis: str
    expected: float | None = None  # the reference at worst_index
    got: float | None = None  # the candidate at worst_index

    def to_json(self) -> dict:
        d = asdict(self)
        for key in ("worst_error", "expected", "got"):  # JSON has no NaN or inf
            if d[key] is not None and not math.isfinite(d[key]):
                d[key] = None
        return d

    def message(self) -> str:
        """One line naming the tensor, the worst entry (index, expected, got) and the diagnosis."""
        where = f"{self.impl} {self.mode} {self.device} {self.dtype} {self.loss} {self.activation} "
        where += f"{self.problem} [{self.kind}]: {self.tensor}"
        if self.worst_index is not None and self.expected is not None:
            idx = ", ".join(map(str, self.worst_index))
            where += (f" worst entry [{idx}]: expected {self.expected:.6g}, got {self.got:.6g}"
                      f" (error {self.worst_error:.2e} > tolerance {self.tolerance:.0e})")
        return f"{where}: {self.diagnosis or 'ok'}"


def compare(ref: Mapping, got: Mapping, kind: str, dtype: str, n_samples: int | None = None,
            n_outputs: int | None = None, **context) -> list[Row]:
    """One Row per tensor in `ref` (and "loss" if present): worst entry, tolerance, diagnosis.

    ref, got: name -> array (or a float for "loss"). kind "fd" (ref = finite differences,
    got = the analytic gradient) uses `fd_errors`; other kinds use `scaled_errors`; the loss
    value is held to plain relative error. `context` fills the Row's impl, mode, device, loss,
    activation and problem.
    """
    tol = tolerance(kind, dtype)
    gscale = global_scale({k: v for k, v in ref.items() if k not in SCALARS})
    rows = []
    for name, r in ref.items():
        r = np.asarray(r, np.float64)
        g = got.get(name) if isinstance(got, Mapping) else None
        if g is None:
            rows.append(Row(kind, dtype=dtype, tensor=name, worst_error=None, tolerance=tol,
                            ok=False, worst_index=None, diagnosis="missing", **context))
            continue
        diag = diagnose(r, g, tol, n_samples, n_outputs)
        try:
            g = np.asarray(g, np.float64)
        except (TypeError, ValueError):
            g = None
        if g is None or g.shape != r.shape:
            rows.append(Row(kind, dtype=dtype, tensor=name, worst_error=None, tolerance=tol,
                            ok=False, worst_index=None, diagnosis=diag, **context))
            continue
        if name in SCALARS:  # the loss, or its history: plain relative error
            err = np.abs(g - r) / np.maximum(np.abs(r), 1e-300)
        elif kind == "fd":
            err = fd_errors(g, r, FD_FLOOR * gscale)
        else:
            err = scaled_errors(r, g, SCALE_FLOOR * gscale)
        err = np.where(np.isnan(err), np.inf, err)
        i = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
        worst = float(err[i]) if err.size else 0.0
        ok = worst <= tol
        rows.append(Row(kind, dtype=dtype, tensor=name, worst_error=worst, tolerance=tol, ok=ok,
                        worst_index=[int(j) for j in i],
                        diagnosis="" if ok else (diag or "wrong values"),
                        expected=float(r[i]) if r.size else None,
                        got=float(g[i]) if g.size else None, **context))
    return rows
