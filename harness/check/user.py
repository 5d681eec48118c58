"""A user's own backprop, f(params, X, T, loss) -> (loss, grads), checked like ours.

    python -m harness check --impl my_backprop.py:grads

`load_function` loads FILE.py:FUNCTION by path; `check_function` runs it on the
checker's problems and compares every result with the float64 reference.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from harness.check.agreement import Row, compare
from harness.check.problems import Problem, reference
from harness.check.tolerances import tolerance
from harness.errors import UsageError
from impls import contract

# A user's function gets several problems whose shapes differ from each other too: non-square,
# K >= 2, N >= 2 (the shapes of the checker's own problems are in harness/check/suite.py).
USER_SHAPES = ((11, 5, 7, 3), (4, 3, 6, 2), (9, 8, 4, 5))


# ---- a user's own function: f(params, X, T, loss) -> (loss, grads) --------------------------
def check_function(f: Callable, problems: list[Problem], losses=contract.LOSSES,
                   dtype: str = "float64", **context) -> list[Row]:
    """Check `f` against the float64 reference on each problem and loss.

    f receives copies of the problem rounded to `dtype` (it may modify them); the reference
    is evaluated at the same rounded numbers. Anything f gets wrong is a Row with ok=False:
    raising, returning the wrong structure, a missing tensor, a wrong shape, wrong values.
    The tolerance follows the dtype f returns (float32 results are judged as float32).
    `context` fills impl and mode.
    """
    rows = []
    for problem in problems:
        p = problem.cast(dtype)
        N, _, _, K = p.shape
        for loss in losses:
            where = dict(device="cpu", loss=loss, activation="sigmoid", problem=p.name, **context)
            L_ref, G_ref = reference(p.params, p.X, p.T, loss)
            try:
                out = f(contract.cast(p.params, dtype), p.X.copy(), p.T.copy(), loss)
            except Exception as exc:  # the user's bug is a finding, not a crash of the checker
                rows.append(_call_row(f"raised {type(exc).__name__}: {exc}", dtype, where))
                continue
            if not (isinstance(out, (tuple, list)) and len(out) == 2
                    and isinstance(out[1], Mapping)):
                rows.append(_call_row(f"returned {type(out).__name__}; expected a pair (loss, "
                                      "{'W1': .., 'b1': .., 'W2': .., 'b2': ..})", dtype, where))
                continue
            value, grads = out
            try:
                got = {"loss": float(value), **grads}
            except (TypeError, ValueError):
                got = dict(grads)  # "loss" stays missing: reported as such
            rows += compare({"loss": L_ref, **G_ref}, got, "grad", _result_dtype(grads, dtype),
                            N, K, **where)
    return rows


def _call_row(diagnosis: str, dtype: str, where: dict) -> Row:
    return Row("grad", dtype=dtype, tensor="(call)", worst_error=None,
               tolerance=tolerance("grad", dtype), ok=False, worst_index=None,
               diagnosis=diagnosis, **where)


def _result_dtype(grads: Mapping, given: str) -> str:
    """float32 if f was given float32 or returned any 4-byte (or smaller) float, else float64."""
    for g in grads.values():
        dt = getattr(g, "dtype", None)
        if dt is not None and np.dtype(dt).kind == "f" and np.dtype(dt).itemsize <= 4:
            return "float32"
    return given


def load_function(spec: str):
    """The function named by FILE.py:FUNCTION, loaded by path. Problems are usage errors."""
    path, _, name = spec.rpartition(":")
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"--impl {spec}: no such file {path}")
    module_name = f"_user_backprop_{file.stem}"
    module_spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module  # as `import` does: dataclasses and pickling look it up
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # any import failure is the user's file's, not the checker's
        del sys.modules[module_name]
        raise UsageError(f"--impl {spec}: importing {path} raised "
                         f"{type(exc).__name__}: {exc}") from None
    f = getattr(module, name, None)
    if f is None:
        raise UsageError(f"--impl {spec}: {path} has no function {name!r}")
    if not callable(f):
        raise UsageError(f"--impl {spec}: {name} in {path} is not callable")
    return f
