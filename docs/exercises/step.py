"""Exercise 2: one gradient-descent step, then the training loop.

    python -m harness check --impl docs/exercises/step.py:step --task step
    python -m harness check --impl docs/exercises/step.py:train --task train

Both use your `grads` from Exercise 1 (backprop.py, in this folder): do that one first. Each
untouched TODO raises NotImplementedError, and the checker names it in one line.

The contract's training (impls/base.py's train, which every implementation here follows):

    for epoch in range(epochs):
        for each minibatch (the rows batch_order(N, batch_size, seed, epoch) gives, in order):
            L, G = grads(params, X[rows], T[rows], loss, activation)   # the loss BEFORE the update
            params := params - lr * G                                  # plain gradient descent
        history[epoch] = the mean of that epoch's batch losses

batch_order (impls/contract.py) returns None for full-batch training (batch_size >= N): then
the epoch is one batch of all N rows, in file order.
"""

import numpy as np  # noqa: F401  (for your code below)
from backprop import grads  # noqa: F401  (your Exercise 1, in this folder)

from impls.contract import batch_order  # noqa: F401  (the minibatches of an epoch)


def step(params, X, T, loss, lr, activation="sigmoid"):
    """One plain gradient-descent update on the batch (X, T): return NEW params,
    {name: p - lr * dL/dp}, shaped like params. Leave `params` itself as it is."""
    raise NotImplementedError("TODO 5: one gradient-descent step: the new params "
                              "p - lr * dL/dp, for every parameter")


def train(params, X, T, loss, lr, epochs, batch_size, seed, activation="sigmoid"):
    """`epochs` epochs of minibatch gradient descent from `params`: (params, history), where
    history is a list of one float per epoch (the mean of its batch losses, each taken just
    before its update). Use `step`'s update, or grads directly, and batch_order."""
    raise NotImplementedError("TODO 6: the training loop: batches from batch_order, one "
                              "update per batch, one history entry per epoch")
