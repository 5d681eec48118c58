"""A student's own backprop, checked by the project's gradient checker.

    python -m harness check --impl docs/examples/my_backprop.py:grads
    python -m harness check --impl docs/examples/my_backprop.py:grads_with_a_bug

The checker calls f(params, X, T, loss) with params = {"W1": (F, H), "b1": (H,),
"W2": (H, K), "b2": (K,)}, X (N, F), T (N, K) and loss "mse" or "bce", and expects
(L, grads) back: the loss as a float and a dict of gradients shaped like params.
The network is the project's: sigmoid hidden layer, sigmoid output, loss averaged
over the N rows and summed over the K outputs (docs/teaching.md derives every line).
Only NumPy: copy this file and change it.
"""

import numpy as np


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def grads(params, X, T, loss):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    N = X.shape[0]

    # forward
    Z1 = X @ W1 + b1                # (N, H)
    A1 = sigmoid(Z1)                # (N, H)
    Z2 = A1 @ W2 + b2               # (N, K)
    Y = sigmoid(Z2)                 # (N, K)

    # loss, and its gradient with respect to Z2
    if loss == "mse":
        L = 0.5 * np.sum((Y - T) ** 2) / N
        dZ2 = (Y - T) / N * Y * (1 - Y)
    else:  # bce, written from Z2 so that it never takes log(0)
        L = np.sum(np.logaddexp(0, Z2) - T * Z2) / N
        dZ2 = (Y - T) / N

    # backward, one line per forward line
    dW2 = A1.T @ dZ2                # (H, K)
    db2 = dZ2.sum(axis=0)           # (K,)
    dA1 = dZ2 @ W2.T                # (N, H)
    dZ1 = dA1 * A1 * (1 - A1)       # (N, H)  sigmoid'(Z1) = A1 (1 - A1)
    dW1 = X.T @ dZ1                 # (F, H)
    db1 = dZ1.sum(axis=0)           # (H,)
    return float(L), {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def grads_with_a_bug(params, X, T, loss):
    """The same, with the most common bug in the field: the 1/N of the mean is forgotten
    in the gradient (the loss is a mean, its gradient a sum)."""
    L, G = grads(params, X, T, loss)
    N = X.shape[0]
    return L, {k: g * N for k, g in G.items()}
