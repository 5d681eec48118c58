"""The gradient checker's library: finite differences, tolerances, per-tensor comparison, diagnosis.

    python -m harness check        # uses this module to check every implementation
    python -m harness zoo          # uses it to catch a zoo of real backprop bugs

A chain of references (docs: gradcheck.md):
  1. the hand-written NumPy gradient in float64 is checked against central finite
     differences of an independent float64 forward pass (`loss_value`);
  2. every other gradient is checked against that reference at the same numbers.

Two error metrics, both reported as the worst entry of a tensor (with its index):
  - `fd_errors`: |a - b| / max(|a|, |b|, floor), bounded by 2, for finite differences;
  - `scaled_errors`: |a - b| / (|ref| + scale), scale = the tensor's largest |ref|
    entry, for comparing two analytic gradients (elementwise relative error of a
    near-zero entry is large even when both are right, so the scale term absorbs it).
A failing tensor gets a diagnosis: a constant factor (N, 1/N, K, 2, ...), a sign
flip, a transpose, a per-sample gradient never reduced over the batch, a wrong
shape, NaN/inf, or "wrong values".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

from harness import contract
from impls import handwritten

# ---- tolerances ----------------------------------------------------------------------------
# Finite differences: step 1e-6 in float64. The loss is only known to ~1 ulp (~1e-16 of |L|),
# so a central difference carries ~1e-16 |L| / 1e-6 ~ 1e-10 absolute noise: entries far below
# the largest gradient cannot be measured relatively. FD_FLOOR (a fraction of the largest
# gradient entry) is where the relative metric turns absolute. Measured on 400 random problems
# (every loss and activation): worst 2.6e-7 with this floor (~3e-6 at a 1e-3 floor). Correct
# code sits near 1e-7 (CS231n's "happy" value); real bugs give 1e-2 or more. Gate at 1e-5.
FD_STEP = 1e-6
FD_FLOOR = 1e-2
# Analytic vs analytic. float64: two correct implementations differ only in summation order,
# ~1e-16 of the gradient's scale; 1e-10 leaves six orders of margin and still catches any bug.
# float32 (eps 6e-8): numpy float32 vs the float64 reference measured at worst ~9e-7 of the
# scale over 300 random problems up to N=40 (torch and jax ~2e-7 on the check's problem); 1e-4
# leaves ~100x margin, and the mildest bug in the zoo (sigmoid' applied twice) still shows an
# error of 0.17. TF32 (1e-3 by design) is never gated: TF32 modes are timing-only.
# Trajectories (10 full-batch epochs, or 9 minibatch steps, at lr 0.5): rounding is fed back
# through the updates but does not grow much in so few steps. Measured: float64 ~4e-16 and
# float32 ~2e-7 of the parameters' scale (torch, jax and numpy on the CPU); the grad
# tolerances hold with the same margins.
TOLERANCES = {
    ("fd", "float64"): 1e-5,
    ("grad", "float64"): 1e-10,
    ("grad", "float32"): 1e-4,
    ("trajectory", "float64"): 1e-10,
    ("trajectory", "float32"): 1e-4,
}
# A tensor whose gradient is ~0 (dead relu units, a bias at its optimum) is compared at 1% of
# the largest gradient entry, not at its own (tiny) scale.
SCALE_FLOOR = 1e-2
SCALARS = ("loss", "history")  # compared by plain relative error, not against a tensor's scale
KINK_MARGIN = 1e-4  # relu problems keep every pre-activation at least this far from 0


def tolerance(kind: str, dtype) -> float:
    """The tolerance for `kind` ('fd', 'grad', 'trajectory') at `dtype` (name or NumPy dtype).

    Anything of 4 bytes or less is judged as float32; finite differences exist in float64 only.
    """
    name = "float32" if np.dtype(dtype).itemsize <= 4 else "float64"
    if (kind, name) not in TOLERANCES:
        raise ValueError(f"no {kind} tolerance for {name} (finite differences are float64 only)")
    return TOLERANCES[(kind, name)]


# ---- test problems -------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """Parameters and data (float64 unless `cast`). Shapes that see bugs: N >= 2, F != H != K,
    K >= 2 (make_problem leaves the choice to the caller)."""

    params: dict  # W1 (F, H), b1 (H,), W2 (H, K), b2 (K,)
    X: np.ndarray  # (N, F)
    T: np.ndarray  # (N, K), in [0, 1]
    seed: int

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(N, F, H, K)."""
        return self.X.shape[0], self.X.shape[1], self.params["W1"].shape[1], self.T.shape[1]

    @property
    def name(self) -> str:
        N, F, H, K = self.shape
        return f"F{F}-H{H}-K{K}-N{N}" + (f"-s{self.seed}" if self.seed else "")

    def cast(self, dtype: str) -> Problem:
        """The same numbers rounded to `dtype` (the reference upcasts them again)."""
        P = contract.cast(self.params, dtype)
        return Problem(P, self.X.astype(dtype), self.T.astype(dtype), self.seed)


def make_problem(n: int, f: int, h: int, k: int, seed: int = 0,
                 activation: str = "sigmoid") -> Problem:
    """A random problem: Glorot weights, non-zero biases, standard-normal X, soft targets T.

    For relu, redraws until no pre-activation Z1 lies within KINK_MARGIN of 0: a finite
    difference straddling the kink (or float32 rounding flipping a unit on or off) would
    raise a false alarm on correct code.
    """
    for attempt in range(100):
        rng = np.random.default_rng([seed, attempt, 0xC4EC])
        P = contract.init_params(f, h, k, seed + attempt)
        P["b1"] = 0.5 * rng.standard_normal(h)
        P["b2"] = 0.5 * rng.standard_normal(k)
        X = rng.standard_normal((n, f))
        T = rng.random((n, k))  # soft targets in [0, 1]: valid for both losses
        Z1 = X @ P["W1"] + P["b1"]
        if activation != "relu" or np.abs(Z1).min() >= KINK_MARGIN:
            return Problem(P, X, T, seed)
    raise RuntimeError("could not draw a relu problem away from the kink")  # pragma: no cover


# ---- the reference ---------------------------------------------------------------------------
def loss_value(P: Mapping, X: np.ndarray, T: np.ndarray, loss: str, activation: str = "sigmoid"):
    """The contract's loss, written out independently of impls/handwritten.py (float64).

    Finite differences of this function check the hand-written backward pass; comparing
    it with the hand-written loss checks the forward pass.
    """
    Z1 = X @ P["W1"] + P["b1"]  # (N, H)
    A1 = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh,
          "relu": lambda z: np.maximum(z, 0)}[activation](Z1)
    Z2 = A1 @ P["W2"] + P["b2"]  # (N, K)
    if loss == "mse":
        return float(np.sum(0.5 * (1 / (1 + np.exp(-Z2)) - T) ** 2) / len(X))
    return float(np.sum(np.logaddexp(0, Z2) - T * Z2) / len(X))  # softplus(Z2) - T Z2


def reference(P: Mapping, X: np.ndarray, T: np.ndarray, loss: str, activation: str = "sigmoid"):
    """(loss, grads) of the hand-written NumPy backprop in float64: the reference of every check."""
    P64 = contract.cast(P, "float64")
    L, G = handwritten.loss_and_grads(np, P64, np.asarray(X, np.float64), np.asarray(T, np.float64),
                                      loss, activation)
    return float(L), G


def finite_differences(P: Mapping, X, T, loss: str, activation: str = "sigmoid",
                       step: float = FD_STEP) -> dict[str, np.ndarray]:
    """Central differences (L(p + h) - L(p - h)) / 2h of `loss_value`, one entry at a time."""
    P = contract.cast(P, "float64")
    grads = {}
    for name, p in P.items():
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + step
            up = loss_value(P, X, T, loss, activation)
            p[i] = old - step
            down = loss_value(P, X, T, loss, activation)
            p[i] = old
            g[i] = (up - down) / (2 * step)
        grads[name] = g
    return grads


# ---- error metrics -------------------------------------------------------------------------
def global_scale(grads: Mapping) -> float:
    """The largest |entry| over all tensors (1.0 if every gradient is zero)."""
    m = max((float(np.max(np.abs(g))) for g in grads.values() if np.size(g)), default=0.0)
    return m if m > 0 else 1.0


def fd_errors(analytic, numeric, floor: float) -> np.ndarray:
    """|a - b| / max(|a|, |b|, floor), entrywise; bounded by 2."""
    a, b = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    return np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)


def scaled_errors(ref, got, floor: float = 0.0) -> np.ndarray:
    """|got - ref| / (|ref| + scale), entrywise; scale = max(max|ref|, floor, tiny).

    An error of 1e-5 means "1e-5 of this tensor's largest entry", and large entries
    are also held to 1e-5 relative.
    """
    r, g = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    scale = max(float(np.max(np.abs(r))) if r.size else 0.0, floor, 1e-300)
    err = np.abs(g - r) / (np.abs(r) + scale)
    return np.where(np.isfinite(g), err, np.inf)  # NaN/inf entries are infinitely wrong


# ---- diagnosis -----------------------------------------------------------------------------
def _factor_names(n_samples: int | None, n_outputs: int | None,
                  scalar: bool = False) -> list[tuple[float, str]]:
    """Constants a gradient is commonly off by, each with the slip that causes it."""
    names = []
    if n_samples:
        N = n_samples
        names += [(N, f"N={N} (a sum where the contract has a mean over the batch?)"),
                  (1 / N, f"1/N=1/{N} (divided by the batch size twice?)")]
    if n_outputs and n_outputs > 1:
        K = n_outputs
        names += [(K, f"K={K} (n_outputs: scaled by the number of outputs?)"),
                  (1 / K, f"1/K=1/{K} (a mean over outputs where the contract sums?)")]
    if scalar:  # a loss value
        names += [(2.0, "2 ((y-t)^2 without the contract's 1/2?)"),
                  (0.5, "0.5 (an extra 1/2?)")]
    else:
        names += [(2.0, "2 (the gradient of (y-t)^2 used with the loss 0.5 (y-t)^2?)"),
                  (0.5, "0.5 (the gradient of 0.5 (y-t)^2 used with the loss (y-t)^2?)")]
    if n_samples and n_outputs and n_outputs > 1:
        NK = n_samples * n_outputs
        names += [(NK, f"N*K={NK} (no mean at all?)"),
                  (1 / NK, f"1/(N*K)=1/{NK} (a mean over outputs too?)")]
    return names


def _name_factor(s: float, n_samples, n_outputs, scalar: bool = False) -> str:
    sign = "sign flipped and " if s < 0 else ""
    for value, name in _factor_names(n_samples, n_outputs, scalar):
        if abs(abs(s) / value - 1) < 1e-3:
            return f"{sign}off by a factor of {name}"
    if abs(s + 1) < 1e-3:
        return "sign flipped (t - y instead of y - t?)"
    return f"{sign}off by a constant factor {abs(s):.4g}"


def diagnose(ref, got, tol: float, n_samples: int | None = None,
             n_outputs: int | None = None) -> str:
    """What kind of error `got` has relative to `ref` ('' when they agree within `tol`).

    ref: the reference tensor (any shape, float64); got: the candidate, any array-like.
    n_samples, n_outputs: N and K of the problem, used to name factors and batch axes.
    """
    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return f"not a numeric array ({type(got).__name__})"
    r = np.asarray(ref, dtype=np.float64)
    if not np.all(np.isfinite(g)):
        bad = int(np.sum(~np.isfinite(g)))
        what = "NaN" if np.any(np.isnan(g)) else "inf"
        return f"contains {what} ({bad} of {g.size} entries non-finite)"
    if g.shape != r.shape:
        return _diagnose_shape(r, g, tol, n_samples, n_outputs)
    if np.max(scaled_errors(r, g), initial=0.0) <= tol:
        return ""
    if r.ndim == 2 and r.shape[0] == r.shape[1] and np.max(scaled_errors(r, g.T)) <= tol:
        return "transposed (a square shape hides it from a shape check; the values show it)"
    if not np.any(g):
        return "all zeros"
    rr = float(np.sum(r * r))
    if rr > 0:
        s = float(np.sum(g * r)) / rr  # least-squares ratio got / ref
        if s != 0 and np.max(scaled_errors(s * r, g)) <= 10 * tol:
            scalar = r.size == 1
            named = _factor_names(n_samples, n_outputs, scalar) + [(1.0, "")]
            if scalar and not any(abs(abs(s) / v - 1) < 1e-3 for v, _ in named):
                return "wrong value"  # any two scalars have a ratio: only name the telling ones
            return _name_factor(s, n_samples, n_outputs, scalar)
    return "wrong values"


def _diagnose_shape(r, g, tol, n_samples, n_outputs) -> str:
    """`got` has the wrong shape: per-sample (unreduced), transposed, or just wrong."""
    want = f"shape {g.shape}, expected {r.shape}"
    if n_samples and g.ndim >= 1 and g.shape[0] == n_samples and g.size == n_samples * r.size:
        summed = g.reshape((n_samples,) + r.shape).sum(axis=0)
        inner = diagnose(r, summed, tol, n_samples, n_outputs)
        return (f"not reduced over the batch: {want} (one gradient per sample); summed over "
                f"the batch it " + ("matches" if not inner else f"is {inner}"))
    if r.ndim == 2 and g.shape == r.T.shape:
        inner = diagnose(r, g.T, tol, n_samples, n_outputs)
        return f"transposed: {want}; its transpose " + ("matches" if not inner else f"is {inner}")
    if n_samples and n_samples in g.shape and n_samples not in r.shape:
        return (f"wrong shape: {want}; an axis of batch size N={n_samples}: reduced over the "
                "wrong axis?")
    return f"wrong shape: {want}"


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
