"""How close is close enough: the checker's error metrics and tolerances, each justified.

    from harness.check.tolerances import tolerance, scaled_errors
    tol = tolerance("grad", "float32")          # 1e-4
    err = scaled_errors(ref, got).max()         # in units of the tensor's largest entry

Two error metrics, both reported as the worst entry of a tensor:
  - `fd_errors`: |a - b| / max(|a|, |b|, floor), bounded by 2, for finite differences;
  - `scaled_errors`: |a - b| / (|ref| + scale), scale = the tensor's largest |ref|
    entry, for comparing two analytic gradients (elementwise relative error of a
    near-zero entry is large even when both are right, so the scale term absorbs it).
This is the one source of tolerances: the checker, the harness and the tests all use it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

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
