"""Dave: the loss is a mean, but its gradient is a sum over the batch."""

import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def grads(params, X, T, loss):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    A1 = sigmoid(X @ W1 + b1)
    Z2 = A1 @ W2 + b2
    Y = sigmoid(Z2)
    if loss == "mse":
        L = 0.5 * np.mean(np.sum((Y - T) ** 2, axis=1))
        dZ2 = (Y - T) * Y * (1 - Y)
    else:
        L = np.mean(np.sum(np.logaddexp(0, Z2) - T * Z2, axis=1))
        dZ2 = Y - T
    dZ1 = (dZ2 @ W2.T) * A1 * (1 - A1)
    return L, {"W1": X.T @ dZ1, "b1": dZ1.sum(0), "W2": A1.T @ dZ2, "b2": dZ2.sum(0)}
