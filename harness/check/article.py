"""The article's own code (bug 11): its section-5 snippet, transcribed verbatim, and run.

    from harness.check.article import ARTICLE_SNIPPET, article_on_its_own_network
    article_on_its_own_network()["as_written"]   # "NameError: name 'z' is not defined"

The seed article (shared/seed/ beside the project) is a Chinese-language backprop
tutorial; its one-layer NumPy snippet is the teaching material's opening exhibit.
"""

from __future__ import annotations

import numpy as np

from harness.check.bugs import forward, mean_loss, sigmoid_derivative

# Section 5 of the seed article (shared/seed/ beside the project), transcribed verbatim: a
# one-layer network, X (N, 2) -> y = sigmoid(X @ weights + bias).
ARTICLE_SNIPPET = '''\
import numpy as np

def sigmoid(x):
    return 1 / (1 + np.exp(-x))

def sigmoid_derivative(x):
    return sigmoid(x) * (1 - sigmoid(x))

weights = np.random.randn(2, 1)
bias = np.random.randn(1)

def forward_propagation(X):
    z = np.dot(X, weights) + bias
    y = sigmoid(z)
    return y

def back_propagation(X, y, t):
    dL_dy = y - t
    dy_dz = sigmoid_derivative(z)
    dz_dw = X
    dL_dw = dL_dy * dy_dz * dz_dw
    dL_db = dL_dy * dy_dz
    return dL_dw, dL_db

def train(X, t, iterations, learning_rate):
    for i in range(iterations):
        y = forward_propagation(X)
        dL_dw, dL_db = back_propagation(X, y, t)
        weights -= learning_rate * dL_dw
        bias -= learning_rate * dL_db
'''
# Two more problems it has that the zoo does not exercise: `train` assigns to `weights` and
# `bias`, so they are locals there and the first `-=` raises UnboundLocalError; and the
# article computes no loss value at all.


def _article_namespace() -> dict:
    """The snippet's names (sigmoid, weights, forward_propagation, ...), run as printed."""
    state = np.random.get_state()  # the snippet draws from NumPy's global RNG; leave it as found
    ns: dict = {}
    exec(ARTICLE_SNIPPET, ns)
    np.random.set_state(state)
    return ns


def article_as_written(P, X, T, loss):
    """The article's code run as printed, on our output layer (A1 is its X, W2 its weights).

    back_propagation reads `z`, a local of forward_propagation: NameError, every time.
    """
    ns = _article_namespace()
    Z1, A1, Z2, Y = forward(P, X)
    ns["weights"], ns["bias"] = P["W2"], P["b2"]
    y = ns["forward_propagation"](A1)
    dL_dw, dL_db = ns["back_propagation"](A1, y, T)  # raises NameError: name 'z' is not defined
    return mean_loss(Y, Z2, T, loss), {"W2": dL_dw, "b2": dL_db}  # never reached


def article_on_its_own_network(n: int = 5, seed: int = 0) -> dict:
    """The snippet on its own one-layer, one-output network, X (n, 2): as printed, then with
    `z` made available (as a global, the smallest change that runs). Returns what happened
    and the shapes: dL_dw comes out (n, 2), one row per sample, for weights of shape (2, 1).
    """
    ns = _article_namespace()
    rng = np.random.default_rng(seed)
    ns["weights"], ns["bias"] = rng.standard_normal((2, 1)), rng.standard_normal(1)
    X, t = rng.standard_normal((n, 2)), rng.random((n, 1))
    y = ns["forward_propagation"](X)
    try:
        ns["back_propagation"](X, y, t)
        as_written = "ran"
    except NameError as exc:
        as_written = f"NameError: {exc}"
    ns["z"] = np.dot(X, ns["weights"]) + ns["bias"]  # the minimal fix: z in scope
    dL_dw, dL_db = ns["back_propagation"](X, y, t)
    return {"X": list(X.shape), "as_written": as_written,
            "dL_dw": list(dL_dw.shape), "weights": list(ns["weights"].shape),
            "dL_db": list(dL_db.shape), "bias": list(ns["bias"].shape)}


def article_z_in_scope(P, X, T, loss):
    """The article's back_propagation with `z` passed in: its per-sample gradients, as written.

    The minimal fix for the NameError is to hand back_propagation the `z` of the forward
    pass. What is left is the article's formula dL_dw = dL_dy * dy_dz * dz_dw: an
    elementwise product, one gradient per sample, never summed over the batch (nor
    divided by N). For the article's one-layer, one-output net that is shape (N, 2)
    where weights is (2, 1). On our two layers we apply the same formula layer by layer,
    writing the per-sample outer product with explicit axes so it runs for K >= 2:
    dW2 (N, H, K) instead of (H, K), db2 (N, K) instead of (K,), and likewise for layer 1.
    dL_dy * dy_dz is taken as the article's y - t times sigmoid'(z) for mse (the article's
    loss, per sample, no 1/N), and as y - t for bce (which the article's FAQ recommends).
    The loss value returned is the contract's: the article computes none.
    """
    Z1, A1, Z2, Y = forward(P, X)
    dL_dz2 = (Y - T) * (sigmoid_derivative(Z2) if loss == "mse" else 1)  # (N, K), per sample
    dL_dW2 = dL_dz2[:, None, :] * A1[:, :, None]  # (N, H, K)  BUG: never reduced over N
    dL_db2 = dL_dz2                               # (N, K)     BUG: never reduced over N
    dL_dz1 = (dL_dz2 @ P["W2"].T) * sigmoid_derivative(Z1)  # (N, H)
    dL_dW1 = dL_dz1[:, None, :] * X[:, :, None]   # (N, F, H)  BUG: never reduced over N
    dL_db1 = dL_dz1                               # (N, H)     BUG: never reduced over N
    return mean_loss(Y, Z2, T, loss), {"W1": dL_dW1, "b1": dL_db1, "W2": dL_dW2, "b2": dL_db2}
