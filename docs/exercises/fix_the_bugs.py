"""Exercise 3: this backprop looks right and is wrong in two places. Find and fix both.

    python -m harness check --impl docs/exercises/fix_the_bugs.py:grads

Read the checker's diagnosis first: which tensors fail, and what does it say the error looks
like? Each of the two bugs is one the bug zoo (`python -m harness zoo`) shows; fix one, run
the check again, and watch its lines go. Sigmoid only, both losses.
"""

import numpy as np


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def grads(params, X, T, loss):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    N = X.shape[0]

    Z1 = X @ W1 + b1                # (N, H)
    A1 = sigmoid(Z1)                # (N, H)
    Z2 = A1 @ W2 + b2               # (N, K)
    Y = sigmoid(Z2)                 # (N, K)

    error = T - Y                   # (N, K)
    if loss == "mse":
        L = 0.5 * np.sum(error ** 2)
        dZ2 = error / N * Y * (1 - Y)
    else:
        L = np.sum(np.logaddexp(0, Z2) - T * Z2)
        dZ2 = error / N

    dW2 = A1.T @ dZ2                # (H, K)
    db2 = dZ2.sum(axis=0)           # (K,)
    dZ1 = (dZ2 @ W2.T) * A1 * (1 - A1)
    dW1 = X.T @ dZ1                 # (F, H)
    db1 = dZ1.sum(axis=0)           # (H,)
    return float(L), {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
