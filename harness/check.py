"""`check`: prove every implementation computes the same gradients and the same trajectory.

    python -m harness check                                  # every impl and mode on the CPU
    python -m harness check --impl numpy --impl torch:eager  # NAME or NAME:MODE, repeatable
    python -m harness check --impl my_backprop.py:grads      # your own f(params, X, T, loss)
    python -m harness check --device all --json > check.json

Three kinds of rows (docs/architecture.md has the JSON schema):
  fd          the hand-written NumPy gradient (float64) vs central finite differences,
              and its loss vs an independent forward pass;
  grad        every implementation and mode vs that reference, in float64 and float32,
              for both losses and every activation, at the same (rounded) numbers;
  trajectory  10 full-batch epochs and a minibatch run of every implementation vs NumPy
              float64 from the same start: final parameters and loss history.
Exit 0 when everything agrees within tolerance (harness/gradcheck.py says why each
tolerance is what it is), 1 when anything disagrees, 2 on a usage error.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import impls
from harness import contract
from harness import gradcheck as gc
from harness.cli import UsageError

# One shape for every implementation's gradient check: compiled modes (torch.compile, jax.jit)
# compile once per dtype x loss x activation and never again for a new shape. N=12, F=5,
# H=7, K=3: non-square, K >= 2, N >= 2 (gradcheck.md, "Test shapes that can see bugs").
N, F, H, K = 12, 5, 7, 3
FD_SHAPES = ((N, F, H, K), (4, 3, 6, 2))  # finite differences are NumPy-only: shapes are free
# A user's function gets several problems whose shapes differ from each other too.
USER_SHAPES = ((11, 5, 7, 3), (4, 3, 6, 2), (9, 8, 4, 5))
# Trajectories: (label, n_samples, epochs, batch_size). The minibatch run uses batches of N
# rows, so a compiled step reuses the full-batch run's compilation.
LR = 0.5
TRAJECTORIES = (("full", N, 10, None), ("minibatch", 3 * N, 3, N))


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


def run(args) -> int:
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
    targets, unavailable = select(specs, devices)
    if specs and not targets:
        raise UsageError("nothing to check: " + "; ".join(
            f"{u['impl']} {u['mode']} on {u['device']}: {u['reason']}" for u in unavailable))
    rows, curves, timings = fd_rows(losses, activations), [], {}
    refs = References()
    for impl, mode, device in targets:
        t0 = time.perf_counter()
        rows += grad_rows(impl, mode, device, dtypes, losses, activations, refs)
        # Trajectories with the default activation (sigmoid) unless one was asked for.
        r, c = trajectory_rows(impl, mode, device, dtypes, losses, args.activation or "sigmoid",
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
    f = load_function(specs[0])
    rows = fd_rows(losses, ("sigmoid",))
    problems = [gc.make_problem(*shape, seed=i) for i, shape in enumerate(USER_SHAPES)]
    t0 = time.perf_counter()
    for dtype in (args.dtype,) if args.dtype else ("float64",):
        rows += gc.check_function(f, problems, losses, dtype=dtype, impl="user", mode=specs[0])
    return rows, [], [], {f"user {specs[0]} (cpu)": time.perf_counter() - t0}


# ---- what to check ---------------------------------------------------------------------------
def _is_user_spec(spec: str) -> bool:
    """FILE.py:FUNCTION (a path), as opposed to NAME or NAME:MODE (the registry)."""
    head = spec.rpartition(":")[0]
    if head.endswith(".py"):
        return True
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        raise UsageError(f"--impl {spec}: a file must name its function, as FILE.py:FUNCTION")
    return False


def select(specs: list[str], devices) -> tuple[list, list[dict]]:
    """[(impl, mode, device)] to check, and the unavailable ones with their reasons.

    Timing-only modes (TF32) are never checked: their float32 matmuls carry ~1e-3
    relative error by design. Unknown names or modes are usage errors.
    """
    wanted: dict[str, set[str] | None] = {}  # name -> modes asked for (None: all of them)
    for spec in specs:
        name, _, mode = spec.partition(":")
        impl = impls.get(name)  # ValueError listing the known names -> exit 2
        if not mode:
            wanted[name] = None
            continue
        if mode not in impl.modes:
            raise UsageError(f"unknown mode {mode!r} for {name}; expected one of "
                             f"{', '.join(impl.modes)}")
        if mode in impl.timing_only:
            raise UsageError(f"{name}:{mode} is timing-only (TF32), never correctness-checked")
        if wanted.get(name, set()) is not None:
            wanted.setdefault(name, set()).add(mode)
    targets, unavailable = [], []
    for name in wanted or impls.names():
        impl = impls.get(name)
        for mode in [m for m in impl.modes if wanted.get(name) is None or m in wanted[name]]:
            if mode in impl.timing_only:
                continue
            for device in devices:
                ok, why = impl.available(device, mode)
                if ok:
                    targets.append((impl, mode, device))
                else:
                    unavailable.append({"impl": name, "mode": mode, "device": device,
                                        "reason": why})
    return targets, unavailable


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


# ---- the three kinds of rows -----------------------------------------------------------------
def fd_rows(losses, activations) -> list[gc.Row]:
    """NumPy float64 gradient vs central finite differences (and its loss vs `loss_value`)."""
    rows = []
    for seed, shape in enumerate(FD_SHAPES):
        for activation in activations:
            p = gc.make_problem(*shape, seed=seed, activation=activation)
            for loss in losses:
                L, G = gc.reference(p.params, p.X, p.T, loss, activation)
                fd = gc.finite_differences(p.params, p.X, p.T, loss, activation)
                L_fd = gc.loss_value(p.params, p.X, p.T, loss, activation)
                rows += gc.compare({"loss": L_fd, **fd}, {"loss": L, **G}, "fd", "float64",
                                   p.shape[0], p.shape[3], impl="numpy", mode="default",
                                   device="cpu", loss=loss, activation=activation,
                                   problem=p.name)
    return rows


class References:
    """NumPy float64 results, computed once and shared by every implementation checked."""

    def __init__(self):
        self._cache = {}

    def problem(self, n: int, activation: str, dtype: str) -> gc.Problem:
        """The (n, F, H, K) problem for `activation`, rounded to `dtype`."""
        return gc.make_problem(n, F, H, K, seed=0, activation=activation).cast(dtype)

    def grads(self, activation, dtype, loss):
        key = ("grad", activation, dtype, loss)
        if key not in self._cache:
            p = self.problem(N, activation, dtype)
            L, G = gc.reference(p.params, p.X, p.T, loss, activation)
            self._cache[key] = {"loss": L, **G}
        return self._cache[key]

    def trajectory(self, label, n, epochs, batch_size, activation, dtype, loss):
        key = ("trajectory", label, activation, dtype, loss)
        if key not in self._cache:
            p = self.problem(n, activation, dtype)  # float64 training from the rounded start
            params, history = impls.get("numpy").train(
                p.params, p.X, p.T, loss=loss, lr=LR, epochs=epochs, batch_size=batch_size,
                dtype="float64", activation=activation)
            self._cache[key] = {**params, "history": history}
        return self._cache[key]


def grad_rows(impl, mode, device, dtypes, losses, activations, refs: References) -> list[gc.Row]:
    rows = []
    for dtype in dtypes:
        for activation in activations:
            p = refs.problem(N, activation, dtype)
            for loss in losses:
                where = dict(impl=impl.name, mode=mode, device=device, loss=loss,
                             activation=activation, problem=p.name)
                try:
                    L, G = impl.loss_and_grads(p.params, p.X, p.T, loss=loss, dtype=dtype,
                                               device=device, mode=mode, activation=activation)
                except Exception as exc:  # a crash in one implementation is a finding
                    rows.append(_crash("grad", dtype, exc, where))
                    continue
                rows += gc.compare(refs.grads(activation, dtype, loss), {"loss": L, **G}, "grad",
                                   dtype, N, K, **where)
    return rows


def trajectory_rows(impl, mode, device, dtypes, losses, activation, refs: References):
    """Final parameters and loss history after training, vs NumPy float64; and the curves."""
    rows, curves = [], []
    for dtype in dtypes:
        for loss in losses:
            for label, n, epochs, batch_size in TRAJECTORIES:
                p = refs.problem(n, activation, dtype)
                problem = f"{p.name}-{label}-e{epochs}"
                where = dict(impl=impl.name, mode=mode, device=device, loss=loss,
                             activation=activation, problem=problem)
                try:
                    params, history = impl.train(p.params, p.X, p.T, loss=loss, lr=LR,
                                                 epochs=epochs, batch_size=batch_size,
                                                 dtype=dtype, device=device, mode=mode,
                                                 activation=activation)
                except Exception as exc:
                    rows.append(_crash("trajectory", dtype, exc, where))
                    continue
                ref = refs.trajectory(label, n, epochs, batch_size, activation, dtype, loss)
                rows += gc.compare(ref, {**params, "history": history}, "trajectory", dtype,
                                   batch_size or n, K, **where)
                if label == "full":  # one curve per (impl, mode, dtype, loss) for the report
                    curves += [{"impl": impl.name, "mode": mode, "device": device,
                                "dtype": dtype, "loss": loss, "epoch": e, "value": v}
                               for e, v in enumerate(history)]
    return rows, curves


def _crash(kind, dtype, exc, where) -> gc.Row:
    return gc.Row(kind, dtype=dtype, tensor="(call)", worst_error=None,
                  tolerance=gc.tolerance(kind, dtype), ok=False, worst_index=None,
                  diagnosis=f"raised {type(exc).__name__}: {exc}", **where)


# ---- the readable table ----------------------------------------------------------------------
TENSOR_COLUMNS = ("W1", "b1", "W2", "b2", "loss")


def render(rows: list[gc.Row], unavailable: list[dict], seconds: float,
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


def _worst_cell(rows: list[gc.Row]) -> str:
    if not rows:
        return ""
    if any(r.worst_error is None for r in rows):
        return "-"
    return f"{max(r.worst_error for r in rows):.1e}"
