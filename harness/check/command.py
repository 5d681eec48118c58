"""`check`: prove every implementation computes the same gradients and the same trajectory.

    python -m harness check                                  # every impl and mode on the CPU
    python -m harness check --impl numpy --impl torch:eager  # NAME or NAME:MODE, repeatable
    python -m harness check --impl my_backprop.py:grads      # your own f(params, X, T, loss)
    python -m harness check --impl my_backprop.py:grads --timeout 20 --json
    python -m harness check --impl my_backprop.py:grads --activation tanh   # f(..., activation=)
    python -m harness check --impl my_step.py:step --task step     # f(params, X, T, loss, lr)
    python -m harness check --impl my_step.py:train --task train   # ... lr, epochs, batch_size, seed
    python -m harness check --device all --json > check.json
    python -m harness check --workers 2                      # data-parallel engines at W = 2

Three kinds of rows, fd, grad and trajectory (harness/check/suite.py says what each
compares; docs/architecture.md has the JSON schema).
Exit 0 when everything agrees within tolerance (harness/check/tolerances.py says why
each tolerance is what it is), 1 when anything disagrees, 2 on a usage error. What is
checked is harness/check/suite.py. A user's own function runs in a separate process with a
time limit (harness/check/api.py); its exit, crash, hang or unreadable result is a finding.
"""

from __future__ import annotations

import json
import time

from harness import options, process
from harness.check import api, suite, tasks
from harness.check.table import render
from harness.errors import UsageError
from impls import contract
from impls.contract import ContractError


def add_arguments(parser) -> None:
    parser.add_argument("--impl", action="append", metavar="NAME[:MODE] | FILE.py:FUNCTION",
                        help="restrict to a registered implementation (optionally one mode); "
                             "repeatable. FILE.py:FUNCTION checks your own "
                             "f(params, X, T, loss) -> (loss, grads) instead")
    parser.add_argument("--device", choices=("cpu", "gpu", "all"), default="cpu")
    parser.add_argument("--dtype", choices=contract.DTYPES, help="only this dtype (default both)")
    parser.add_argument("--loss", choices=contract.LOSSES, help="only this loss (default both)")
    parser.add_argument("--activation", choices=contract.ACTIVATIONS,
                        help="only this hidden activation (default all; FILE.py:FUNCTION: "
                             "sigmoid, passed as activation= when the function takes it)")
    parser.add_argument("--task", choices=tasks.TASKS,
                        help="FILE.py:FUNCTION only: what the function does (default grads: "
                             "f(params, X, T, loss) -> (loss, grads); step: "
                             "f(params, X, T, loss, lr) -> new params; train: f(params, X, T, "
                             "loss, lr, epochs, batch_size, seed) -> (params, history))")
    parser.add_argument("--timeout", type=float, metavar="S",
                        help="FILE.py:FUNCTION only: seconds the user's function may take in "
                             f"all, in its own process, killed past it (default "
                             f"{api.DEFAULT_TIMEOUT:g})")
    parser.add_argument("--workers", type=int, default=1, metavar="W",
                        help="check every data-parallel engine in W worker processes against "
                             "the single-process reference (harness/check/parallel.py); "
                             "default 1: this check")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead")


def main(args) -> int:
    options.seconds("--timeout", args.timeout)
    if args.workers != 1:
        from harness.check import parallel

        return parallel.main(args)
    start = time.perf_counter()
    losses = (args.loss,) if args.loss else contract.LOSSES
    specs = args.impl or []
    mine = None  # the verdict on a user's own function
    if any(_is_user_spec(s) for s in specs):
        rows, mine = check_user(specs, args, losses)
        curves, unavailable, timings = [], [], {f"user {mine.name} (cpu)": mine.seconds}
    elif args.timeout is not None:
        raise UsageError("--timeout limits a user's FILE.py:FUNCTION only")
    elif args.task is not None:
        raise UsageError("--task is for a user's FILE.py:FUNCTION only")
    else:
        rows, curves, unavailable, timings = check_registered(specs, args, losses)
    ok = all(r.ok for r in rows) and (mine is None or mine.ok)
    seconds = time.perf_counter() - start
    if args.json:  # only the checker writes to stdout: the user's output is inside "user"
        report = {"ok": ok, "rows": [r.to_json() for r in rows], "unavailable": unavailable,
                  "curves": curves, "seconds": round(seconds, 2),
                  "timings": {k: round(v, 2) for k, v in timings.items()}}
        print(json.dumps(report | ({"user": mine.to_json()} if mine else {}), indent=1))
    else:
        print(render(rows, unavailable, seconds, timings, mine.notes() if mine else None))
    return 0 if ok else 1


def check_registered(specs: list[str], args, losses):
    """fd rows, then grad and trajectory rows for every selected (impl, mode, device)."""
    activations = (args.activation,) if args.activation else contract.ACTIVATIONS
    dtypes = (args.dtype,) if args.dtype else ("float64", "float32")
    devices = ("cpu", "gpu") if args.device == "all" else (args.device,)
    targets, unavailable = suite.select(specs, devices)
    process.progress("started")  # imports and devices are up: a parent's work limit runs now
    if specs and not targets:
        raise UsageError("nothing to check: " + "; ".join(
            f"{u['impl']} {u['mode']} on {u['device']}: {u['reason']}" for u in unavailable))
    rows, curves, timings = suite.fd_rows(losses, activations), [], {}
    refs = suite.References()
    for impl, mode, device in targets:
        t0 = time.perf_counter()
        rows += suite.grad_rows(impl, mode, device, dtypes, losses, activations, refs)
        # Trajectories with the default activation (sigmoid) unless one was asked for.
        r, c = suite.trajectory_rows(impl, mode, device, dtypes, losses, args.activation or "sigmoid",
                               refs)
        rows, curves = rows + r, curves + c
        timings[f"{impl.name} {mode} ({device})"] = time.perf_counter() - t0
    return rows, curves, unavailable, timings


def check_user(specs: list[str], args, losses):
    """fd rows (the reference's own proof), then the user's function on the visible problems, run in a
    separate process (harness/check/api.py); returns (rows, its UserCheck)."""
    if len(specs) > 1:
        raise UsageError("--impl FILE.py:FUNCTION cannot be combined with other --impl values")
    if args.device != "cpu":
        raise UsageError("a user function is checked on the CPU; drop --device")
    timeout = api.DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    activation = args.activation or "sigmoid"
    rows = suite.fd_rows(losses, (activation,))
    try:
        mine = api.check_my_backprop(specs[0], args.dtype or "float64", losses, timeout,
                                     task=args.task or "grads", activation=activation)
    except ContractError as exc:  # the file cannot be loaded: a usage error, named as --impl
        raise UsageError(f"--impl {exc}") from None
    return rows + mine.rows, mine


def _is_user_spec(spec: str) -> bool:
    """FILE.py:FUNCTION (a path), as opposed to NAME or NAME:MODE (the registry)."""
    head = spec.rpartition(":")[0]
    if head.endswith((".py", ".ipynb")):  # a notebook runs top to bottom, then f is checked
        return True
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        raise UsageError(f"--impl {spec}: a file must name its function, as FILE.py:FUNCTION")
    return False
