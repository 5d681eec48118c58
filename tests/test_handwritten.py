"""The hand-written backprop (impls/handwritten.py) and the `numpy` implementation that runs it:
the reference every other implementation is compared with, so it is proven against things
that share none of its code: central finite differences of an independently written loss,
and gradient descent driven by those finite differences.

    .venv/bin/pytest tests/test_handwritten.py -q
"""

from __future__ import annotations

import numpy as np
import pytest

import impls
from harness.check.problems import finite_differences, loss_value, make_problem
from impls import contract, handwritten
from tests.helpers import assert_agree, problem

NUMPY = impls.get("numpy")


@pytest.mark.parametrize("loss", contract.LOSSES)
@pytest.mark.parametrize("activation", contract.ACTIVATIONS)
@pytest.mark.parametrize("shape", [(11, 5, 7, 3), (4, 3, 6, 2)], ids=["F5H7K3N11", "F3H6K2N4"])
def test_numpy_gradients_match_finite_differences(loss, activation, shape):
    # make_problem keeps relu pre-activations off the kink, where differences are meaningless.
    p = make_problem(*shape, seed=1, activation=activation)
    L, G = NUMPY.loss_and_grads(p.params, p.X, p.T, loss=loss, activation=activation)
    fd = finite_differences(p.params, p.X, p.T, loss, activation)
    L_ref = loss_value(p.params, p.X, p.T, loss, activation)
    assert_agree({"loss": L, **G}, {"loss": L_ref, **fd}, "fd", "float64",
                 f"numpy {loss} {activation}")


@pytest.mark.parametrize("loss", contract.LOSSES)
@pytest.mark.parametrize("activation", contract.ACTIVATIONS)
def test_numpy_float32_is_float64_within_float32_tolerance(loss, activation):
    p = make_problem(11, 5, 7, 3, seed=2, activation=activation).cast("float32")
    L64, G64 = NUMPY.loss_and_grads(p.params, p.X, p.T, loss=loss, dtype="float64",
                                    activation=activation)
    L32, G32 = NUMPY.loss_and_grads(p.params, p.X, p.T, loss=loss, dtype="float32",
                                    activation=activation)
    assert all(g.dtype == np.float32 for g in G32.values())
    assert_agree({"loss": L32, **G32}, {"loss": L64, **G64}, "grad", "float32", "numpy float32")


def _fd_descent(P, X, T, loss, lr, epochs, batch_size, seed, activation):
    """Plain gradient descent with finite-difference gradients: the contract's update written
    without any of the code under test (not handwritten.py, not the session, not step)."""
    P = contract.cast(P, "float64")
    history = []
    for epoch in range(epochs):
        order = contract.batch_order(len(X), batch_size, seed, epoch) or [np.arange(len(X))]
        losses = []
        for idx in order:
            losses.append(loss_value(P, X[idx], T[idx], loss, activation))
            G = finite_differences(P, X[idx], T[idx], loss, activation)
            P = {k: P[k] - lr * G[k] for k in P}
        history.append(float(np.mean(losses)))
    return P, history


@pytest.mark.parametrize("batch_size", [None, 4], ids=["full", "mini4"])
@pytest.mark.parametrize("loss, activation", [("mse", "sigmoid"), ("bce", "tanh")])
def test_numpy_trains_like_finite_difference_descent(batch_size, loss, activation):
    P, X, T = problem(n=11, seed=3)  # batches of 4 of 11: the last batch has 3 rows
    kw = dict(loss=loss, lr=0.5, epochs=4, batch_size=batch_size, seed=5, activation=activation)
    P1, h1 = NUMPY.train(P, X, T, dtype="float64", **kw)
    P0, h0 = _fd_descent(P, X, T, **kw)
    assert len(h1) == 4
    # Finite differences carry ~1e-8 relative error per step: the "fd" tolerance (1e-5).
    assert_agree({**P1, "history": h1}, {**P0, "history": h0}, "fd", "float64",
                 f"numpy training {loss} {activation} batch {batch_size}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", contract.LOSSES)
@pytest.mark.parametrize("activation", contract.ACTIVATIONS)
def test_inplace_step_is_the_readable_math(dtype, loss, activation):
    """handwritten.step (buffers reused, for speed) == grads then p -= lr * g."""
    P, X, T = problem(seed=7, dtype=dtype)
    lr = np.asarray(0.3, dtype=dtype)
    L0, G0 = handwritten.grads(np, P, X, T, loss, activation)
    expected = {k: P[k] - lr * G0[k] for k in P}
    ws = {}
    for Xb, Tb in ((X[:4], T[:4]), (X, T)):  # a second batch size reallocates the buffers
        Q = {k: v.copy() for k, v in P.items()}
        L1 = handwritten.step(np, Q, Xb, Tb, lr, loss, activation, ws)
    assert ws["N"] == len(X)
    assert all(Q[k].dtype == np.dtype(dtype) for k in Q)
    # The same operations in another order: rounding-level differences, so the grad tolerance.
    assert_agree({"loss": float(L1), **Q}, {"loss": float(L0), **expected}, "grad", dtype,
                 f"step {dtype} {loss} {activation}")


def test_forward_is_what_grads_differentiates():
    P, X, T = problem(seed=8)
    A1, Z2, Y = handwritten.forward(np, P, X, "tanh")
    assert Y.shape == T.shape and np.all((Y > 0) & (Y < 1))
    L = handwritten.loss_fn(np, Z2, Y, T, "bce")
    assert float(L) == pytest.approx(loss_value(P, X, T, "bce", "tanh"), rel=1e-12)
    assert float(handwritten.grads(np, P, X, T, "bce", "tanh")[0]) == float(L)
