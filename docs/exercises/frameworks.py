"""Exercise 4: the same gradients from PyTorch's autograd and from JAX's grad.

    python -m harness check --impl docs/exercises/frameworks.py:torch_grads
    python -m harness check --impl docs/exercises/frameworks.py:jax_grads --activation tanh

Same signature and answer as backprop.py's grads. Write only the forward pass and the loss;
the framework derives the backward pass. Compare the number of lines with Exercise 1. Without
torch or jax installed, the check says "No module named 'torch'" (or 'jax') and nothing else.
"""

import numpy as np


def torch_grads(params, X, T, loss, activation="sigmoid"):
    import torch

    P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    L = torch_loss(P, torch.from_numpy(X), torch.from_numpy(T), loss, activation)
    L.backward()  # autograd: dL/dp lands in p.grad
    return float(L), {k: p.grad.numpy() for k, p in P.items()}


def torch_loss(P, X, T, loss, activation):
    """The loss as a 0-d tensor: the forward pass of backprop.py in torch operations
    (torch.sigmoid, torch.tanh, torch.relu, torch.nn.functional.softplus), then the mean over
    the N rows of the sum over the K outputs."""
    raise NotImplementedError("TODO 7: the forward pass and the loss, in torch operations")


def jax_grads(params, X, T, loss, activation="sigmoid"):
    import jax

    jax.config.update("jax_enable_x64", True)  # keep float64 float64 (JAX's default is 32 bits)
    L, G = jax.value_and_grad(jax_loss)(params, X, T, loss, activation)  # d/d params
    return float(L), {k: np.asarray(g) for k, g in G.items()}


def jax_loss(P, X, T, loss, activation):
    """The loss as a 0-d array, written with jax.numpy (jax.nn.sigmoid, jnp.tanh,
    jax.nn.relu, jax.nn.softplus): a pure function of P, which jax.value_and_grad
    differentiates."""
    raise NotImplementedError("TODO 8: the forward pass and the loss, in jax.numpy")
