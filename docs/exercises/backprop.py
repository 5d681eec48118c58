"""Exercise 1: backpropagation by hand for the two-layer network.

    python -m harness check --impl docs/exercises/backprop.py:grads
    python -m harness check --impl docs/exercises/backprop.py:grads --activation tanh

Fill in the four TODOs, in order. Each untouched TODO raises NotImplementedError, and the
checker says which one you reached in one line ("not implemented: TODO 2: ..."), so you can
run the check after every step. When all four are done, the check passes for sigmoid, tanh
and relu, on both losses, on problems of several shapes.

The network and its loss (the contract; docs/teaching.md derives every line):

    Z1 = X @ W1 + b1        # (N, H)
    A1 = act(Z1)            # (N, H)   sigmoid, tanh or relu
    Z2 = A1 @ W2 + b2       # (N, K)
    Y  = sigmoid(Z2)        # (N, K)
    mse: L = (1/N) sum_n sum_k 0.5 (Y - T)^2
    bce: L = (1/N) sum_n sum_k [softplus(Z2) - T Z2]      (= -T log Y - (1-T) log(1-Y))

params = {"W1": (F, H), "b1": (H,), "W2": (H, K), "b2": (K,)}, X (N, F), T (N, K) in [0, 1].
grads returns (L, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}), each shaped like its param.
Only NumPy.
"""

import numpy as np


def sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def activation_forward(Z, activation):
    """A = act(Z) for the hidden layer (given)."""
    if activation == "sigmoid":
        return sigmoid(Z)
    if activation == "tanh":
        return np.tanh(Z)
    return np.maximum(Z, 0)  # relu


def loss_and_dZ2(Y, Z2, T, loss):
    """(L, dL/dZ2): the loss as a float, and its gradient with respect to Z2, shape (N, K).

    mse: L = 0.5 * sum((Y - T)^2) / N. Its gradient flows through Y = sigmoid(Z2), whose
         derivative is Y (1 - Y).
    bce: L = sum(softplus(Z2) - T * Z2) / N, softplus(z) = log(1 + e^z) = np.logaddexp(0, z).
         Differentiate it in Z2 directly: the sigmoid's derivative cancels.
    Do not forget the 1/N: the loss is a mean over the N rows.
    """
    raise NotImplementedError("TODO 1: the loss L and dL/dZ2 (a mean over the N rows, "
                              "a sum over the K outputs)")


def layer_grads(inputs, dZ):
    """(dW, db) of a layer Z = inputs @ W + b, given dZ = dL/dZ.

    inputs (N, in), dZ (N, out) -> dW (in, out), db (out,). Every row of the batch adds its
    contribution: which matrix product sums over the rows? And b is added to every row.
    """
    raise NotImplementedError("TODO 2: a layer's dW and db from its inputs and dZ")


def hidden_delta(dZ2, W2, A1, activation):
    """dZ1 = dL/dZ1, shape (N, H): back through Z2 = A1 @ W2 + b2, then through A1 = act(Z1).
    Use activation_derivative (TODO 4) for the second part."""
    raise NotImplementedError("TODO 3: the hidden layer's dZ1: back through W2, then "
                              "through the activation")


def activation_derivative(A, activation):
    """dA/dZ written with the activation's OUTPUT A (what the backward pass has at hand).
    sigmoid' = ?, tanh' = ?, relu' = ? (each in terms of A, shape (N, H))."""
    raise NotImplementedError("TODO 4: the activation's derivative dA/dZ, from its output A")


def grads(params, X, T, loss, activation="sigmoid"):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]

    # forward (given)
    Z1 = X @ W1 + b1                              # (N, H)
    A1 = activation_forward(Z1, activation)       # (N, H)
    Z2 = A1 @ W2 + b2                             # (N, K)
    Y = sigmoid(Z2)                               # (N, K)

    # backward: your four TODOs, in the order they run
    L, dZ2 = loss_and_dZ2(Y, Z2, T, loss)         # TODO 1
    dW2, db2 = layer_grads(A1, dZ2)               # TODO 2
    dZ1 = hidden_delta(dZ2, W2, A1, activation)   # TODO 3 (and TODO 4 inside it)
    dW1, db1 = layer_grads(X, dZ1)
    return float(L), {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
