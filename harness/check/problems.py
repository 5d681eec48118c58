"""The checker's problems and its reference: random test problems, the float64 reference
gradient, an independent loss, and central finite differences of it.

    from harness.check.problems import make_problem, reference, finite_differences
    p = make_problem(11, 5, 7, 3, seed=0)            # N, F, H, K: shapes that see bugs
    L, G = reference(p.params, p.X, p.T, "mse")      # hand-written NumPy, float64
    fd = finite_differences(p.params, p.X, p.T, "mse")
    visible_problems()                               # what `check --impl` runs a user's f on
    hidden_problems(((13, 6, 9, 4),), seed=4242)     # what `grade` adds: never shown

A chain of references: the hand-written NumPy gradient in float64 is checked
against central finite differences of `loss_value` (a forward pass written
independently of impls/handwritten.py); every other gradient is checked against
that reference at the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from harness.check.tolerances import FD_STEP, KINK_MARGIN
from impls import contract, handwritten


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


# ---- the problems a user's function gets -------------------------------------------------
# Visible: what `check --impl` and check_my_backprop run, so a student sees every number.
# Shapes that differ from each other too: non-square, K >= 2, N >= 2.
VISIBLE_SHAPES = ((11, 5, 7, 3), (4, 3, 6, 2), (9, 8, 4, 5))
# Hidden: what `grade` adds (its rubric may name others). A student never sees their shapes,
# seeds or expected values (feedback names them "hidden 1", ...); these defaults are in the
# source, so a course that grades for marks sets its own in the rubric.
HIDDEN_SHAPES = ((13, 6, 9, 4), (6, 2, 5, 7))
HIDDEN_SEED = 9001


def visible_problems(activation: str = "sigmoid") -> list[Problem]:
    return [make_problem(*shape, seed=i, activation=activation)
            for i, shape in enumerate(VISIBLE_SHAPES)]


def hidden_problems(shapes=HIDDEN_SHAPES, seed: int = HIDDEN_SEED,
                    activation: str = "sigmoid") -> list[Problem]:
    """One problem per (N, F, H, K) in `shapes`, seeds seed, seed + 1, ..."""
    return [make_problem(*shape, seed=seed + i, activation=activation)
            for i, shape in enumerate(shapes)]


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
    L, G = handwritten.grads(np, P64, np.asarray(X, np.float64), np.asarray(T, np.float64),
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


def derivative_slip(P: Mapping, X, T, loss: str, activation: str, used: str) -> dict:
    """The gradients a backprop gets when its forward pass uses `activation` but its backward
    pass uses `used`'s derivative (a tanh network with sigmoid's A (1 - A)): only W1 and b1
    change. What the diagnosis of a user's wrong W1 and b1 is compared with."""
    P = contract.cast(P, "float64")
    X, T = np.asarray(X, np.float64), np.asarray(T, np.float64)
    A1, Z2, Y = handwritten.forward(np, P, X, activation)
    N = len(X)
    dZ2 = (Y - T) / N * (Y * (1 - Y) if loss == "mse" else 1)  # (N, K), as the reference's
    dZ1 = (dZ2 @ P["W2"].T) * handwritten.act_backward(np, A1, used)  # (N, H)
    return {"W1": X.T @ dZ1, "b1": dZ1.sum(axis=0)}
