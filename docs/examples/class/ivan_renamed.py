"""Ivan: a correct backprop under another name than the assignment's."""

import numpy as np


def gradients(params, X, T, loss):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    N = len(X)
    A1 = 1 / (1 + np.exp(-(X @ W1 + b1)))
    Z2 = A1 @ W2 + b2
    Y = 1 / (1 + np.exp(-Z2))
    L = (0.5 * np.sum((Y - T) ** 2) if loss == "mse" else np.sum(np.logaddexp(0, Z2) - T * Z2)) / N
    dZ2 = (Y - T) / N * (Y * (1 - Y) if loss == "mse" else 1)
    dZ1 = (dZ2 @ W2.T) * A1 * (1 - A1)
    return L, {"W1": X.T @ dZ1, "b1": dZ1.sum(0), "W2": A1.T @ dZ2, "b2": dZ2.sum(0)}
