"""What kind of error a wrong gradient has: a constant factor (N, 1/N, K, 2, ...), a sign
flip, a transpose, a per-sample gradient never reduced over the batch, a wrong shape,
NaN/inf, or "wrong values".

    from harness.check.diagnose import diagnose
    diagnose(ref, 11 * ref, tol=1e-10, n_samples=11)
    # 'off by a factor of N=11 (a sum where the contract has a mean over the batch?)'
"""

from __future__ import annotations

import numpy as np

from harness.check.tolerances import scaled_errors


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
