"""The check of every registered implementation: what to check, and the three kinds of rows.

    from harness.check.suite import select, fd_rows, grad_rows, trajectory_rows, References
    targets, unavailable = select(["torch:eager"], devices=("cpu",))

  fd          the hand-written NumPy gradient (float64) vs central finite differences,
              and its loss vs an independent forward pass;
  grad        every implementation and mode vs that reference, in float64 and float32,
              for both losses and every activation, at the same (rounded) numbers;
  trajectory  10 full-batch epochs and a minibatch run of every implementation vs NumPy
              float64 from the same start: final parameters and loss history.
"""

from __future__ import annotations

import impls
from harness.check.agreement import Row, compare
from harness.check.problems import Problem, finite_differences, loss_value, make_problem, reference
from harness.check.tolerances import tolerance
from harness.errors import UsageError

# One shape for every implementation's gradient check: compiled modes (torch.compile, jax.jit)
# compile once per dtype x loss x activation and never again for a new shape. N=12, F=5,
# H=7, K=3: non-square, K >= 2, N >= 2 (square shapes hide transposes, N = 1 hides
# the mean-versus-sum and bias-reduction bugs).
N, F, H, K = 12, 5, 7, 3
FD_SHAPES = ((N, F, H, K), (4, 3, 6, 2))  # finite differences are NumPy-only: shapes are free
# Trajectories: (label, n_samples, epochs, batch_size). The minibatch run uses batches of N
# rows, so a compiled step reuses the full-batch run's compilation.
LR = 0.5
TRAJECTORIES = (("full", N, 10, None), ("minibatch", 3 * N, 3, N))


def select(specs: list[str], devices) -> tuple[list, list[dict]]:
    """[(impl, mode, device)] to check, and the unavailable ones with their reasons.

    Timing-only modes (TF32) are never checked: their float32 matmuls carry ~1e-3
    relative error by design. Unknown names or modes are usage errors. With a GPU among the
    devices, JAX is asked (and so checked) before any other implementation.
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
    names = list(wanted or impls.names())
    if "gpu" in devices:
        # JAX first: two libraries in one process share the first cuDNN loaded, and torch's is
        # often older than the one JAX was built for, which makes JAX fall back to the CPU
        # ("unavailable") when torch came first (jax-ml/jax#18032, #19004). JAX loads its own
        # when its GPU backend starts, in available().
        names.sort(key=lambda name: name != "jax")
    for name in names:
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


# ---- the three kinds of rows -----------------------------------------------------------------
def fd_rows(losses, activations) -> list[Row]:
    """NumPy float64 gradient vs central finite differences (and its loss vs `loss_value`)."""
    rows = []
    for seed, shape in enumerate(FD_SHAPES):
        for activation in activations:
            p = make_problem(*shape, seed=seed, activation=activation)
            for loss in losses:
                L, G = reference(p.params, p.X, p.T, loss, activation)
                fd = finite_differences(p.params, p.X, p.T, loss, activation)
                L_fd = loss_value(p.params, p.X, p.T, loss, activation)
                rows += compare({"loss": L_fd, **fd}, {"loss": L, **G}, "fd", "float64",
                                   p.shape[0], p.shape[3], impl="numpy", mode="default",
                                   device="cpu", loss=loss, activation=activation,
                                   problem=p.name)
    return rows


class References:
    """NumPy float64 results, computed once and shared by every implementation checked."""

    def __init__(self):
        self._cache = {}

    def problem(self, n: int, activation: str, dtype: str) -> Problem:
        """The (n, F, H, K) problem for `activation`, rounded to `dtype`."""
        return make_problem(n, F, H, K, seed=0, activation=activation).cast(dtype)

    def grads(self, activation, dtype, loss):
        key = ("grad", activation, dtype, loss)
        if key not in self._cache:
            p = self.problem(N, activation, dtype)
            L, G = reference(p.params, p.X, p.T, loss, activation)
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


def grad_rows(impl, mode, device, dtypes, losses, activations, refs: References) -> list[Row]:
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
                rows += compare(refs.grads(activation, dtype, loss), {"loss": L, **G}, "grad",
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
                rows += compare(ref, {**params, "history": history}, "trajectory", dtype,
                                   batch_size or n, K, **where)
                if label == "full":  # one curve per (impl, mode, dtype, loss) for the report
                    curves += [{"impl": impl.name, "mode": mode, "device": device,
                                "dtype": dtype, "loss": loss, "epoch": e, "value": v}
                               for e, v in enumerate(history)]
    return rows, curves


def _crash(kind, dtype, exc, where) -> Row:
    return Row(kind, dtype=dtype, tensor="(call)", worst_error=None,
                  tolerance=tolerance(kind, dtype), ok=False, worst_index=None,
                  diagnosis=f"raised {type(exc).__name__}: {exc}", **where)
