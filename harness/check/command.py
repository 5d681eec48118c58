"""`check`: prove every implementation computes the same gradients and the same trajectory.

    python -m harness check                                  # every impl and mode on the CPU
    python -m harness check --impl numpy --impl torch:eager  # NAME or NAME:MODE, repeatable
    python -m harness check --impl my_backprop.py:grads      # your own f(params, X, T, loss)
    python -m harness check --device all --json > check.json

Three kinds of rows, fd, grad and trajectory (harness/check/suite.py says what each
compares; docs/architecture.md has the JSON schema).
Exit 0 when everything agrees within tolerance (harness/check/tolerances.py says why
each tolerance is what it is), 1 when anything disagrees, 2 on a usage error. What is
checked is harness/check/suite.py; a user's own function, harness/check/user.py.
"""

from __future__ import annotations

import json
import time

from harness.check import suite, user
from harness.check.agreement import Row
from harness.check.problems import make_problem
from harness.errors import UsageError
from impls import contract


def add_arguments(parser) -> None:
    parser.add_argument("--impl", action="append", metavar="NAME[:MODE] | FILE.py:FUNCTION",
                        help="restrict to a registered implementation (optionally one mode); "
                             "repeatable. FILE.py:FUNCTION checks your own "
                             "f(params, X, T, loss) -> (loss, grads) instead")
    parser.add_argument("--device", choices=("cpu", "gpu", "all"), default="cpu")
    parser.add_argument("--dtype", choices=contract.DTYPES, help="only this dtype (default both)")
    parser.add_argument("--loss", choices=contract.LOSSES, help="only this loss (default both)")
    parser.add_argument("--activation", choices=contract.ACTIVATIONS,
                        help="only this hidden activation (default all)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead")


def main(args) -> int:
    start = time.perf_counter()
    losses = (args.loss,) if args.loss else contract.LOSSES
    specs = args.impl or []
    if any(_is_user_spec(s) for s in specs):
        rows, curves, unavailable, timings = check_user(specs, args, losses)
    else:
        rows, curves, unavailable, timings = check_registered(specs, args, losses)
    ok = all(r.ok for r in rows)
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps({"ok": ok, "rows": [r.to_json() for r in rows],
                          "unavailable": unavailable, "curves": curves,
                          "seconds": round(seconds, 2),
                          "timings": {k: round(v, 2) for k, v in timings.items()}}, indent=1))
    else:
        print(render(rows, unavailable, seconds, timings))
    return 0 if ok else 1


def check_registered(specs: list[str], args, losses):
    """fd rows, then grad and trajectory rows for every selected (impl, mode, device)."""
    activations = (args.activation,) if args.activation else contract.ACTIVATIONS
    dtypes = (args.dtype,) if args.dtype else ("float64", "float32")
    devices = ("cpu", "gpu") if args.device == "all" else (args.device,)
    targets, unavailable = suite.select(specs, devices)
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
    """fd rows (the reference's own proof), then the user's function on USER_SHAPES."""
    if len(specs) > 1:
        raise UsageError("--impl FILE.py:FUNCTION cannot be combined with other --impl values")
    if args.activation not in (None, "sigmoid") or args.device != "cpu":
        raise UsageError("a user function (params, X, T, loss) is checked with sigmoid on "
                         "the CPU; drop --activation/--device")
    f = user.load_function(specs[0])
    rows = suite.fd_rows(losses, ("sigmoid",))
    problems = [make_problem(*shape, seed=i) for i, shape in enumerate(user.USER_SHAPES)]
    t0 = time.perf_counter()
    for dtype in (args.dtype,) if args.dtype else ("float64",):
        rows += user.check_function(f, problems, losses, dtype=dtype, impl="user", mode=specs[0])
    return rows, [], [], {f"user {specs[0]} (cpu)": time.perf_counter() - t0}


def _is_user_spec(spec: str) -> bool:
    """FILE.py:FUNCTION (a path), as opposed to NAME or NAME:MODE (the registry)."""
    head = spec.rpartition(":")[0]
    if head.endswith(".py"):
        return True
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        raise UsageError(f"--impl {spec}: a file must name its function, as FILE.py:FUNCTION")
    return False



# ---- the readable table ----------------------------------------------------------------------
TENSOR_COLUMNS = ("W1", "b1", "W2", "b2", "loss")


def render(rows: list[Row], unavailable: list[dict], seconds: float,
           timings: dict[str, float] | None = None) -> str:
    """One block per (impl, mode, device); one line per (kind, dtype, loss): the worst error
    of each tensor over activations and problems, the tolerance, OK/FAIL. Failures below."""
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
