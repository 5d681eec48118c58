"""The zoo's bugs: real hand-written-backprop mistakes, each a runnable variant of the backward pass.

    from harness.check.bugs import correct, sign_flipped
    L, G = sign_flipped(params, X, T, "mse")    # the signature of a user's function

Each function below is the whole backward pass, so it can be read against `correct`;
the changed line is marked `# BUG`. The forward pass and loss are shared (`forward`,
`mean_loss`): none of these bugs live there. The table that names them, with their stories,
is harness/check/zoo.py; the article's own code is harness/check/article.py.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def forward(P, X):
    Z1 = X @ P["W1"] + P["b1"]  # (N, H)
    A1 = sigmoid(Z1)            # (N, H)
    Z2 = A1 @ P["W2"] + P["b2"]  # (N, K)
    Y = sigmoid(Z2)             # (N, K)
    return Z1, A1, Z2, Y


def mean_loss(Y, Z2, T, loss):
    """The contract's loss: mean over the batch, sum over outputs."""
    if loss == "mse":
        return 0.5 * np.sum((Y - T) ** 2) / len(T)
    return np.sum(np.logaddexp(0, Z2) - T * Z2) / len(T)


def _dZ2(Y, T, loss):
    """Correct dL/dZ2 (N, K): mse through sigmoid', or bce's (Y - T) / N."""
    if loss == "mse":
        return (Y - T) / len(T) * Y * (1 - Y)
    return (Y - T) / len(T)


def correct(P, X, T, loss):
    """The hand-written backprop, right (the same math as impls/handwritten.py)."""
    Z1, A1, Z2, Y = forward(P, X)
    dZ2 = _dZ2(Y, T, loss)                  # (N, K)
    dW2 = A1.T @ dZ2                        # (H, K)
    db2 = dZ2.sum(axis=0)                   # (K,)
    dZ1 = (dZ2 @ P["W2"].T) * A1 * (1 - A1)  # (N, H)
    dW1 = X.T @ dZ1                         # (F, H)
    db1 = dZ1.sum(axis=0)                   # (H,)
    return mean_loss(Y, Z2, T, loss), {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _grads(X, A1, dZ2, dZ1):
    """The correct reductions, for bugs that live upstream of them."""
    return {"W1": X.T @ dZ1, "b1": dZ1.sum(0), "W2": A1.T @ dZ2, "b2": dZ2.sum(0)}


# ---- 1, 2: the sigmoid derivative ------------------------------------------------------------
def sigmoid_prime_of_z(P, X, T, loss):
    Z1, A1, Z2, Y = forward(P, X)
    dZ2 = (Y - T) / len(T) * (Z2 * (1 - Z2) if loss == "mse" else 1)  # BUG: z(1-z), z = Z2
    dZ1 = (dZ2 @ P["W2"].T) * Z1 * (1 - Z1)  # BUG: sigmoid' as if the pre-activation were A1
    return mean_loss(Y, Z2, T, loss), _grads(X, A1, dZ2, dZ1)


def sigmoid_derivative(x):  # the article's: it applies sigmoid itself
    return sigmoid(x) * (1 - sigmoid(x))


def sigmoid_prime_twice(P, X, T, loss):
    Z1, A1, Z2, Y = forward(P, X)
    dZ2 = (Y - T) / len(T) * (sigmoid_derivative(Y) if loss == "mse" else 1)  # BUG: of Y
    dZ1 = (dZ2 @ P["W2"].T) * sigmoid_derivative(A1)  # BUG: A1 is already sigmoid(Z1)
    return mean_loss(Y, Z2, T, loss), _grads(X, A1, dZ2, dZ1)


# ---- 3, 4, 5: reductions and constant factors ------------------------------------------------
def scaled(factor: Callable[[int, int], float]):
    """A variant whose dZ2 (hence every gradient) is scaled by factor(N, K)."""

    def f(P, X, T, loss):
        Z1, A1, Z2, Y = forward(P, X)
        dZ2 = _dZ2(Y, T, loss) * factor(*T.shape)  # BUG: the scale of the loss's reduction
        dZ1 = (dZ2 @ P["W2"].T) * A1 * (1 - A1)
        return mean_loss(Y, Z2, T, loss), _grads(X, A1, dZ2, dZ1)

    return f


def no_batch_mean(P, X, T, loss):
    Z1, A1, Z2, Y = forward(P, X)
    dZ2 = _dZ2(Y, T, loss) * len(T)         # BUG: no 1/N in the gradient ...
    dZ1 = (dZ2 @ P["W2"].T) * A1 * (1 - A1)
    return mean_loss(Y, Z2, T, loss) * len(T), _grads(X, A1, dZ2, dZ1)  # BUG: ... nor in the loss


def mse_loss_without_half(P, X, T, loss):
    L, G = correct(P, X, T, loss)
    return 2 * L, G  # BUG: reports sum (y-t)^2 / N while the gradient is that of 0.5 (y-t)^2


# ---- 6: bias reductions ----------------------------------------------------------------------
def bias_reduced(reduce: Callable[[np.ndarray], np.ndarray]):
    def f(P, X, T, loss):
        Z1, A1, Z2, Y = forward(P, X)
        dZ2 = _dZ2(Y, T, loss)
        dZ1 = (dZ2 @ P["W2"].T) * A1 * (1 - A1)
        G = _grads(X, A1, dZ2, dZ1)
        G["b1"], G["b2"] = reduce(dZ1), reduce(dZ2)  # BUG: see the variant's story
        return mean_loss(Y, Z2, T, loss), G

    return f


# ---- 7-10 ------------------------------------------------------------------------------------
def bce_shortcut_with_mse(P, X, T, loss):
    Z1, A1, Z2, Y = forward(P, X)
    dZ2 = (Y - T) / len(T)                  # BUG: cross-entropy's shortcut, used with mse
    dZ1 = (dZ2 @ P["W2"].T) * A1 * (1 - A1)
    return mean_loss(Y, Z2, T, loss), _grads(X, A1, dZ2, dZ1)


def transposed_weight_grad(P, X, T, loss):
    L, G = correct(P, X, T, loss)
    Z1, A1, Z2, Y = forward(P, X)
    dZ1 = (_dZ2(Y, T, loss) @ P["W2"].T) * A1 * (1 - A1)
    G["W1"] = dZ1.T @ X                     # BUG: (H, F), the layout is (F, H)
    return L, G


def deltas_averaged_first(P, X, T, loss):
    Z1, A1, Z2, Y = forward(P, X)
    dZ2 = _dZ2(Y, T, loss)
    dZ1 = (dZ2 @ P["W2"].T) * A1 * (1 - A1)
    G = _grads(X, A1, dZ2, dZ1)
    # BUG: mean input times summed delta: the sum over samples of products is not the product
    # of sums (exact only at N = 1, where there is nothing to average).
    G["W1"] = np.outer(X.mean(axis=0), dZ1.sum(axis=0))
    G["W2"] = np.outer(A1.mean(axis=0), dZ2.sum(axis=0))
    return mean_loss(Y, Z2, T, loss), G


def sign_flipped(P, X, T, loss):
    Z1, A1, Z2, Y = forward(P, X)
    dZ2 = -_dZ2(Y, T, loss)                 # BUG: (t - y) where the chain rule gives (y - t)
    dZ1 = (dZ2 @ P["W2"].T) * A1 * (1 - A1)
    return mean_loss(Y, Z2, T, loss), _grads(X, A1, dZ2, dZ1)
