"""A user's own backprop, f(params, X, T, loss) -> (loss, grads): loaded, called, compared.

    python -m harness check --impl my_backprop.py:grads    # the command line
    from harness.check.api import check_my_backprop        # a notebook cell

The pieces, in the order the data flows:

    load_function(spec)         FILE.py:FUNCTION, imported by path        (in the child process)
    call(f, params, X, T, loss) one call; what f returned, as plain data  (in the child process)
    rows(result, problem, ...)  compared with the float64 reference       (in the checker)

harness/check/sandbox.py runs the first two in a separate process with a time limit, so the
user's code can neither crash, hang, exit nor patch the checker: only `rows`, in the checker's
own process, decides. `check_function` does all three in one process, for the zoo's bug
functions, which are ours (harness/check/bugs.py) and run thousands of times.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from harness.check.agreement import Row, compare
from harness.check.problems import VISIBLE_SHAPES, Problem, reference
from harness.check.tolerances import tolerance
from impls import contract
from impls.contract import ContractError

USER_SHAPES = VISIBLE_SHAPES  # the problems a user's function gets (harness/check/problems.py)
MAX_ENTRIES = 1_000_000  # a returned tensor this large is no gradient of these small problems


def jobs(problems: list[Problem], losses, dtype: str) -> list[tuple[Problem, str]]:
    """(problem rounded to dtype, loss) for every run f gets, in the order it gets them."""
    return [(p.cast(dtype), loss) for p in problems for loss in losses]


# ---- in the child: call f, and turn what it returns into plain data -------------------------
def call(f: Callable, params: Mapping, X: np.ndarray, T: np.ndarray, loss: str,
         **options) -> dict:
    """Call f on copies of the inputs (it may modify them); what it returned, as plain data.

    {"error": "raised ValueError: ..."} when the call fails or returns no (loss, grads) pair
    ("not implemented: TODO 3: ..." for a skeleton's NotImplementedError); else
    {"loss": float | {"error"}, "grads": {name: {"shape", "data", "dtype"} | {"error"}},
    "extra": [names f returned beyond W1, b1, W2, b2]}. Array-likes (torch, jax, cupy,
    nested lists) become float64 arrays; what cannot be read is an error for that entry only.
    `options` (activation=) are passed on as keywords.
    """
    try:
        out = f({k: np.array(v) for k, v in params.items()}, X.copy(), T.copy(), loss, **options)
    except Exception as exc:  # the user's bug is a finding, not a crash of the checker
        return {"error": raised(exc)}
    try:
        return _convert(out)
    except Exception as exc:  # a result whose len(), keys() or == raises
        return {"error": f"returned a {type(out).__name__} that cannot be read: {_describe(exc)}"}


def raised(exc: BaseException) -> str:
    """One line for an exception of the user's code: a skeleton's untouched TODO (raise
    NotImplementedError("TODO 3: ...")) reads "not implemented: TODO 3: ..."."""
    if isinstance(exc, NotImplementedError):
        text = _describe(exc).partition(": ")[2]
        return f"not implemented: {text}" if text else "not implemented (NotImplementedError)"
    return f"raised {_describe(exc)}"


def _convert(out) -> dict:
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[1], Mapping)):
        return {"error": f"returned {type(out).__name__}; expected a pair (loss, "
                         "{'W1': .., 'b1': .., 'W2': .., 'b2': ..})"}
    value, grads = out
    names = list(grads.keys())
    return {"loss": _number(value), "loss_dtype": str(getattr(value, "dtype", "")),
            "grads": {k: array(grads[k]) for k in contract.PARAM_NAMES if k in names},
            "extra": [_describe_key(k) for k in names if k not in contract.PARAM_NAMES]}


def _host(x):
    """What NumPy can read: a torch tensor that requires grad or lives on a GPU must be
    detached and copied first, a CuPy array fetched (both refuse np.asarray as they are)."""
    library = type(x).__module__.partition(".")[0]
    if library == "torch":
        return x.detach().cpu()
    if library == "cupy":
        return x.get()
    return x


def _number(value) -> float | dict:
    if value is None:
        return {"error": "not computed (None)"}
    if isinstance(value, (str, bytes)):
        return {"error": f"the loss is a {type(value).__name__}, not a number"}
    try:
        a = np.asarray(_host(value), dtype=np.float64)
    except Exception as exc:  # e.g. a __float__ that raises
        return {"error": f"the loss cannot be read as a number ({_describe(exc)})"}
    if a.size != 1:
        return {"error": f"the loss has shape {a.shape}; expected one number"}
    return float(a.reshape(()))


def array(g) -> dict:
    """One returned tensor as plain data: {"shape", "data", "dtype"} or {"error"}."""
    if g is None:
        return {"error": "not computed (None)"}
    try:
        a = np.asarray(_host(g), dtype=np.float64)
    except Exception as exc:
        return {"error": f"not an array of numbers ({type(g).__name__}: {_describe(exc)})"}
    if a.size > MAX_ENTRIES:
        return {"error": f"{a.size} entries, far more than any gradient of these problems"}
    return {"shape": list(a.shape), "data": a.ravel(), "dtype": str(getattr(g, "dtype", ""))}


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # even an exception's __str__ is the user's code
        text = "(its message cannot be printed)"
    first = (text.strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:300]}"


def _describe_key(key) -> str:
    return key[:40] if isinstance(key, str) else f"({type(key).__name__} key)"


# ---- in the checker: compare a result with the reference -------------------------------------
def rows(result: dict | None, p: Problem, loss: str, dtype: str, missing: str = "",
         activation: str = "sigmoid", problem: str | None = None, expected: dict | None = None,
         **context) -> list[Row]:
    """The Rows of one (problem, loss) run: one per tensor and the loss, or one "(call)" row.

    result: what `call` returned (possibly read back from the child's JSON: nothing in it is
    trusted), or None when the child never delivered it (`missing` says why). The tolerance
    is the check's `dtype`, whatever f returned. `problem` names the problem in the rows
    (default p.name; a hidden one is "hidden 1"), `expected` is {"loss", W1, ...} if the
    caller has it already. `context` fills impl and mode.
    """
    N, _, _, K = p.shape
    where = dict(device="cpu", loss=loss, activation=activation, problem=problem or p.name,
                 **context)
    if result is None:
        return [call_row(f"no result: {missing or 'none was delivered'}", dtype, where)]
    try:
        if "error" in result:
            return [call_row(str(result["error"])[:400], dtype, where)]
        got, errors, low = decode({"loss": result["loss"], **result["grads"]})
        if _low_precision(result.get("loss_dtype")):
            low.add("loss")
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        return [call_row(f"malformed result from the user's process ({exc})", dtype, where)]
    if expected is None:
        L_ref, G_ref = reference(p.params, p.X, p.T, loss, activation)
        expected = {"loss": L_ref, **G_ref}
    return finish(compare(expected, got, "grad", dtype, N, K, **where), errors, low, dtype)


def finish(compared: list[Row], errors: dict, low: set, dtype: str) -> list[Row]:
    """Rows from `compare`, with the reason a tensor could not be read as its diagnosis, and
    a note on a wrong tensor returned in lower precision than the check's dtype."""
    out = []
    for r in compared:
        if r.tensor in errors:
            r = dataclasses.replace(r, diagnosis=errors[r.tensor])
        elif not r.ok and r.tensor in low and np.dtype(dtype).itemsize > 4:
            r = dataclasses.replace(r, diagnosis=f"{r.diagnosis}; returned in lower precision "
                                    f"than the {dtype} inputs (compute in the inputs' dtype, or "
                                    "check with --dtype float32)")
        out.append(r)
    return out


def decode(tensors: Mapping) -> tuple[dict, dict, set]:
    """(name -> float or array, name -> why it could not be read, names returned in float32
    or lower) from {"loss" or "history" or W1, ...: plain data as `call` made it}. Raises
    ValueError (or TypeError, KeyError) on anything `call` never produces."""
    got, errors, low = {}, {}, set()
    for name, g in tensors.items():
        if name not in contract.PARAM_NAMES + ("loss", "history"):
            raise ValueError(f"unexpected tensor {str(name)[:40]!r}")
        if name == "loss" and not isinstance(g, Mapping):
            if not isinstance(g, (int, float)) or isinstance(g, bool):
                raise ValueError("the loss is neither a number nor an error")
            got["loss"] = float(g)
            continue
        if "error" in g:
            errors[name] = str(g["error"])[:400]
            continue
        shape = [int(n) for n in g["shape"]]
        got[name] = np.asarray(g["data"], dtype=np.float64).reshape(shape)
        if _low_precision(g.get("dtype")):
            low.add(name)
    return got, errors, low


def _low_precision(dtype) -> bool:
    """A NumPy, torch or JAX dtype name of 32 bits or fewer ("float32", "torch.float16")."""
    return any(t in str(dtype) for t in ("float32", "float16", "bfloat16"))


def call_row(diagnosis: str, dtype: str, where: dict, tensor: str = "(call)") -> Row:
    """A failing row for a run that produced no tensors to compare (tensor "(call)")."""
    return Row("grad", dtype=dtype, tensor=tensor, worst_error=None,
               tolerance=tolerance("grad", dtype), ok=False, worst_index=None,
               diagnosis=diagnosis, **where)


def extras(results) -> list[str]:
    """The names f returned beyond W1, b1, W2, b2, over all runs (reported, never compared)."""
    names: dict[str, None] = {}
    for result in results:
        extra = result.get("extra", []) if isinstance(result, Mapping) else []
        for name in extra if isinstance(extra, list) else []:
            names[str(name)[:40]] = None
    return list(names)


# ---- both in one process: for the zoo's trusted functions -----------------------------------
def check_function(f: Callable, problems: list[Problem], losses=contract.LOSSES,
                   dtype: str = "float64", **context) -> list[Row]:
    """Check `f` in this process against the float64 reference on each problem and loss.

    For trusted functions only (the zoo's): nothing isolates this process from f. A user's
    function goes through harness/check/api.py, which runs it in a child process.
    """
    out = []
    for p, loss in jobs(problems, losses, dtype):
        out += rows(call(f, p.params, p.X, p.T, loss), p, loss, dtype, **context)
    return out


# ---- in the child: the user's file ------------------------------------------------------------
def check_spec(spec: str) -> tuple[Path, str]:
    """(file, function name) of FILE.py:FUNCTION; ContractError if the file does not exist."""
    path, _, name = spec.rpartition(":")
    if not Path(path).is_file():
        raise ContractError(f"no such file {path}")
    return Path(path), name


class MissingFunction(ContractError):
    """The file loads but holds no callable of that name (grade's status "missing")."""


def load_function(spec: str) -> Callable:
    """The function named by FILE.py:FUNCTION, imported by path, its folder first on sys.path
    (as `python FILE.py` has it: a sibling module imports). ContractError when the file is
    missing or raises on import, MissingFunction when it has no such callable."""
    file, name = check_spec(spec)
    sys.path.insert(0, str(file.resolve().parent))
    module_name = f"_user_backprop_{file.stem}"
    module_spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module  # as `import` does: dataclasses and pickling look it up
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # any import failure is the user's file's, not the checker's
        del sys.modules[module_name]
        raise ContractError(f"importing {file} raised {_describe(exc)}") from None
    return function_in(vars(module), name, str(file))


def function_in(namespace: Mapping, name: str, where: str) -> Callable:
    """namespace[name] if it is callable, else MissingFunction (a module's or a notebook's)."""
    f = namespace.get(name)
    if f is None:
        raise MissingFunction(f"{where} has no function {name!r}")
    if not callable(f):
        raise MissingFunction(f"{name} in {where} is not callable")
    return f
