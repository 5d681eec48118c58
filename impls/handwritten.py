"""Backprop derived and written by hand, once, against an array namespace `xp`.

The same lines run on NumPy (impls/numpy_impl.py, on the CPU) and on CuPy
(impls/cupy_impl.py, on a GPU). Read it top to bottom: forward, loss,
gradients, step. Every backward line sits beside the forward line it undoes,
in the article's notation extended to two layers (X, Z1, A1, Z2, Y, T).

    Z1 = X @ W1 + b1        # (N, H)
    A1 = act(Z1)            # (N, H)
    Z2 = A1 @ W2 + b2       # (N, K)
    Y  = sigmoid(Z2)        # (N, K)

Not an implementation by itself (it has no IMPL); the registry skips it.
"""

from __future__ import annotations


def sigmoid(xp, Z):
    # exp of a large negative number overflows to inf harmlessly (1/inf = 0); keep dtype.
    return 1 / (1 + xp.exp(-Z))


# Hidden activations: the function, and its derivative written by hand in terms of
# the activation's *output* A (that is what the backward pass has at hand).
# The derivative is the line people get wrong: sigmoid'(z) = s(z)(1 - s(z)) is
# A * (1 - A), NOT sigmoid(A) * (1 - sigmoid(A)) and NOT Z * (1 - Z).
def act_forward(xp, Z, activation):
    if activation == "sigmoid":
        return sigmoid(xp, Z)
    if activation == "tanh":
        return xp.tanh(Z)
    return xp.maximum(Z, 0)  # relu


def act_backward(xp, A, activation):
    """dA/dZ from the activation's output A (same shape as A)."""
    if activation == "sigmoid":
        return A * (1 - A)
    if activation == "tanh":
        return 1 - A * A
    return (A > 0).astype(A.dtype)  # relu: 1 where the unit fired, 0 elsewhere (0 at Z = 0)


def softplus(xp, Z):
    """log(1 + exp(Z)) without overflow: max(Z, 0) + log1p(exp(-|Z|))."""
    return xp.maximum(Z, 0) + xp.log1p(xp.exp(-xp.abs(Z)))


def forward(xp, P, X, activation="sigmoid"):
    """The forward pass, keeping what the backward pass needs: (A1, Z2, Y).

    P: dict W1 (F,H), b1 (H,), W2 (H,K), b2 (K,); X (N, F). By hand, the
    intermediates are ours to keep (autograd keeps them for the frameworks).
    """
    Z1 = X @ P["W1"] + P["b1"]            # (N, H)
    A1 = act_forward(xp, Z1, activation)  # (N, H)
    Z2 = A1 @ P["W2"] + P["b2"]           # (N, K)
    Y = sigmoid(xp, Z2)                   # (N, K)
    return A1, Z2, Y


def loss_fn(xp, Z2, Y, T, loss):
    """The contract's loss (a 0-d array): mean over the batch, sum over outputs."""
    N = T.shape[0]
    if loss == "mse":
        return 0.5 * xp.sum((Y - T) ** 2) / N
    return xp.sum(softplus(xp, Z2) - T * Z2) / N  # bce, from Z2 directly


def grads(xp, P, X, T, loss, activation="sigmoid"):
    """Forward and backward for one batch: (L, grads), L a 0-d array, grads in P's layout
    and dtype. P: dict W1 (F,H), b1 (H,), W2 (H,K), b2 (K,); X (N, F); T (N, K)."""
    N = X.shape[0]
    A1, Z2, Y = forward(xp, P, X, activation)
    L = loss_fn(xp, Z2, Y, T, loss)

    # ---- the loss's gradient dZ2 -------------------------------------------------
    if loss == "mse":                   # L = sum 0.5 (Y - T)^2 / N
        dY = (Y - T) / N                # (N, K)  undoes the loss
        dZ2 = dY * (Y * (1 - Y))        # (N, K)  undoes Y = sigmoid(Z2)
    else:                               # bce: L = sum softplus(Z2) - T Z2, over N
        dZ2 = (Y - T) / N               # (N, K)  undoes L and Y = sigmoid(Z2) together

    # ---- backward: each line undoes the forward line named on its right ---
    dW2 = A1.T @ dZ2                    # (H, K)  undoes Z2 = A1 @ W2 + b2  (w.r.t. W2)
    db2 = dZ2.sum(axis=0)               # (K,)    undoes Z2 = ... + b2      (b2 broadcast over N)
    dA1 = dZ2 @ P["W2"].T               # (N, H)  undoes Z2 = A1 @ W2 + b2  (w.r.t. A1)
    dZ1 = dA1 * act_backward(xp, A1, activation)  # (N, H)  undoes A1 = act(Z1)
    dW1 = X.T @ dZ1                     # (F, H)  undoes Z1 = X @ W1 + b1   (w.r.t. W1)
    db1 = dZ1.sum(axis=0)               # (H,)    undoes Z1 = ... + b1      (b1 broadcast over N)

    return L, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def step(xp, P, X, T, lr, loss, activation="sigmoid", ws=None):
    """One plain gradient-descent update of P, in place; returns the batch loss before it.

    The same equations as `grads`, line for line, but every (N, H)
    intermediate is written into buffers kept in `ws` (a dict the caller holds
    across steps) instead of a fresh array per operation. On large layers a
    fresh 16 MB temporary per operation costs more than the arithmetic (page
    faults on every allocation), and a benchmark of hand-written backprop should
    time what a careful person would write. tests/test_handwritten.py proves this
    equals `grads` followed by p -= lr * g. `lr` must be a scalar of P's
    dtype (or a Python float) so float32 stays float32.
    """
    W1, b1, W2, b2 = P["W1"], P["b1"], P["W2"], P["b2"]
    N, H = X.shape[0], W1.shape[1]
    ws = {} if ws is None else ws
    if ws.get("N") != N:  # (re)allocate for this batch size; a smaller last batch does once
        ws.clear()
        ws.update(N=N, A1=xp.empty((N, H), X.dtype), dA1=xp.empty((N, H), X.dtype),
                  D=xp.empty((N, H), X.dtype))
    A1, dA1, D = ws["A1"], ws["dA1"], ws["D"]

    # ---- forward, in place ------------------------------------------------
    xp.matmul(X, W1, out=A1)            # (N, H)  Z1 = X @ W1 ...
    A1 += b1                            #         ... + b1   (A1 holds Z1 for now)
    _act_forward_inplace(xp, A1, activation)  # A1 = act(Z1)
    Z2 = A1 @ W2 + b2                   # (N, K)  K is small: plain arrays are fine
    Y = sigmoid(xp, Z2)

    # ---- loss and dZ2 (K is small: plain arrays) --------------------------
    L = loss_fn(xp, Z2, Y, T, loss)
    if loss == "mse":
        dZ2 = (Y - T) * (Y * (1 - Y)) / N
    else:
        dZ2 = (Y - T) / N

    # ---- backward, into buffers -------------------------------------------
    dW2 = A1.T @ dZ2                    # (H, K)
    db2 = dZ2.sum(axis=0)               # (K,)
    xp.matmul(dZ2, W2.T, out=dA1)       # (N, H)  dA1 = dZ2 @ W2.T
    _act_backward_inplace(xp, A1, D, activation)  # D = act'(Z1) from A1
    dA1 *= D                            # (N, H)  dZ1 = dA1 * act'(Z1)  (dA1 holds dZ1 now)
    dW1 = X.T @ dA1                     # (F, H)
    db1 = dA1.sum(axis=0)               # (H,)

    # ---- update -----------------------------------------------------------
    for p, g in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2)):
        g *= lr                         # g is a fresh small array here: scale it in place
        p -= g                          # p := p - lr * dL/dp
    return L


def _act_forward_inplace(xp, A, activation):
    """A := act(A), with no temporaries."""
    if activation == "sigmoid":         # 1 / (1 + exp(-Z))
        xp.negative(A, out=A)
        xp.exp(A, out=A)
        A += 1
        xp.reciprocal(A, out=A)
    elif activation == "tanh":
        xp.tanh(A, out=A)
    else:
        xp.maximum(A, 0, out=A)


def _act_backward_inplace(xp, A, D, activation):
    """D := dA/dZ from the activation's output A (same formulas as act_backward)."""
    if activation == "sigmoid":         # A (1 - A)
        xp.subtract(1, A, out=D)
        D *= A
    elif activation == "tanh":          # 1 - A^2
        xp.multiply(A, A, out=D)
        xp.subtract(1, D, out=D)
    else:                               # relu: 1 where A > 0 (A >= 0, so sign(A) is that,
        xp.sign(A, out=D)               # in A's dtype: no bool-to-float cast into `out`)
