"""The contract every implementation shares, in code.

    Z1 = X @ W1 + b1        # (N, H)
    A1 = act(Z1)            # sigmoid by default; tanh and relu for the lessons
    Z2 = A1 @ W2 + b2       # (N, K)
    Y  = sigmoid(Z2)

    mse: L = (1/N) sum_n sum_k 0.5 (Y - T)^2
    bce: L = (1/N) sum_n sum_k [softplus(Z2) - T Z2]   (= -T log Y - (1-T) log(1-Y), stably)

    update: p := p - lr * dL/dp

Numbers: lr, epochs, batch_size and seed (and every other number that crosses the API) are
Python or NumPy integers or floats, never bools (`True` is not an epoch count), and finite;
`check_number` is the one rule, and every error names its argument. Every dimension N, F, H,
K is at least 1.

Divergence: `train` never raises because a run diverged. An update that overflows is
carried on as computed, in every implementation alike: the history holds the non-finite
losses (NaN or inf) from the epoch where it diverged, the returned parameters may be
non-finite, and `history.diverged` (a `History`) is True. A learning rate that does not even
fit the run's dtype (1e39 in float32) is bad input, not divergence: ContractError naming lr.

This module owns the names, the parameter layout, the shared initialisation,
the shared minibatch order and the validation of everything that crosses an
implementation's boundary. It lives in `impls/` because implementations need it,
and the harness imports it from here: the harness depends on `impls`, never the
reverse. It imports NumPy only, never a framework.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np

PARAM_NAMES = ("W1", "b1", "W2", "b2")
LOSSES = ("mse", "bce")
DTYPES = ("float32", "float64")
ACTIVATIONS = ("sigmoid", "tanh", "relu")
DEVICES = ("cpu", "gpu")


class ContractError(ValueError):
    """Input that breaks the contract: a bad name, shape, dtype or config value.

    A ValueError, so API callers catch it as one; the CLI reports it as one line
    with exit code 2, while any other exception (a bug) keeps its traceback.
    """


def param_shapes(n_features: int, n_hidden: int, n_outputs: int) -> dict[str, tuple[int, ...]]:
    """Layout (in, out), as in the article's `np.dot(X, weights)`."""
    return {
        "W1": (n_features, n_hidden),
        "b1": (n_hidden,),
        "W2": (n_hidden, n_outputs),
        "b2": (n_outputs,),
    }


def _choice(kind: str, value: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ContractError(f"unknown {kind} {value!r}; expected one of {', '.join(allowed)}")
    return value


def check_loss(loss: str) -> str:
    return _choice("loss", loss, LOSSES)


def check_dtype(dtype: str) -> str:
    return _choice("dtype", str(dtype), DTYPES)


def check_activation(activation: str) -> str:
    return _choice("activation", activation, ACTIVATIONS)


def check_device(device: str) -> str:
    return _choice("device", device, DEVICES)


# ---- numbers: one rule -----------------------------------------------------------------------
NUMBER_KINDS = {  # kind -> (integers only?, smallest allowed, strictly above it?, in words)
    "positive": (False, 0, True, "a positive number"),
    "positive int": (True, 1, False, "a positive integer"),
    "non-negative int": (True, 0, False, "a non-negative integer"),
}


def check_number(name: str, value, kind: str) -> int | float:
    """`value` as a Python int (integer kinds) or float, or ContractError naming `name`.

        lr = check_number("lr", lr, "positive")              # 0.5, np.float32(0.5), 1
        epochs = check_number("epochs", epochs, "non-negative int")

    A number is a Python or NumPy integer or float; never a bool (an easy slip that Python
    would silently read as 1), never NaN or infinity. Integer kinds refuse floats, even 3.0.
    """
    integer, low, strict, words = NUMBER_KINDS[kind]
    if isinstance(value, (bool, np.bool_)):
        raise ContractError(f"{name} must be {words}, not a bool: got {value!r}")
    types = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if not isinstance(value, types):
        raise ContractError(f"{name} must be {words}, got {type(value).__name__} {value!r}")
    if not integer and not math.isfinite(value):
        raise ContractError(f"{name} must be {words} (finite), got {value!r}")
    if value < low or (strict and value == low):
        raise ContractError(f"{name} must be {words}, got {value!r}")
    return int(value) if integer else float(value)


def init_params(
    n_features: int, n_hidden: int, n_outputs: int, seed: int, dtype: str = "float64"
) -> dict[str, np.ndarray]:
    """Glorot/Xavier-uniform weights and zero biases, drawn once by NumPy in float64.

    Every implementation starts from these exact numbers; no framework draws
    its own weights. Cast to `dtype` only at the end, so float32 and float64
    runs start from the same values up to rounding.
    """
    check_dtype(dtype)
    for name, n in (("n_features", n_features), ("n_hidden", n_hidden), ("n_outputs", n_outputs)):
        check_number(name, n, "positive int")
    check_number("seed", seed, "non-negative int")  # what NumPy's seed sequence accepts
    rng = np.random.default_rng([int(seed), 0x1417])  # stream 0x1417: initialisation

    def glorot(fan_in: int, fan_out: int) -> np.ndarray:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=(fan_in, fan_out))

    params = {
        "W1": glorot(n_features, n_hidden),
        "b1": np.zeros(n_hidden),
        "W2": glorot(n_hidden, n_outputs),
        "b2": np.zeros(n_outputs),
    }
    return {k: v.astype(dtype) for k, v in params.items()}


def batch_order(n_samples: int, batch_size: int | None, seed: int, epoch: int):
    """The minibatches of one epoch, identical for every implementation.

    Returns None for full-batch training (no shuffling: the mean over the whole
    set does not depend on order). Otherwise a list of index arrays: a NumPy
    permutation drawn from (seed, epoch), cut into contiguous chunks of
    `batch_size`; the last chunk is smaller when `batch_size` does not divide N.
    """
    if batch_size is None or batch_size >= n_samples:
        return None
    rng = np.random.default_rng([int(seed), 0xBA7C, int(epoch)])  # stream 0xBA7C: batches
    perm = rng.permutation(n_samples)
    return [perm[i : i + batch_size] for i in range(0, n_samples, batch_size)]


def check_arrays(params: Mapping[str, np.ndarray], X: np.ndarray, T: np.ndarray) -> tuple[int, ...]:
    """Validate parameters and data against the layout; return (N, F, H, K).

    Raises ValueError naming the first problem: a missing or extra key, a
    wrong shape, a non-floating or non-finite array.
    """
    if not isinstance(params, Mapping):
        raise ContractError(f"params must be a dict of arrays, got {type(params).__name__}")
    missing = [k for k in PARAM_NAMES if k not in params]
    extra = [k for k in params if k not in PARAM_NAMES]
    if missing or extra:
        raise ContractError(
            f"params must have exactly keys {', '.join(PARAM_NAMES)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unexpected {', '.join(map(str, extra))}" if extra else "")
        )
    arrays = {"X": X, "T": T, **params}
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise ContractError(f"{name} must be a NumPy array, got {type(a).__name__}")
        if a.dtype.kind != "f":
            raise ContractError(f"{name} must be a floating-point array, got dtype {a.dtype}")
        if not np.all(np.isfinite(a)):
            raise ContractError(f"{name} contains NaN or infinity")
    if X.ndim != 2 or T.ndim != 2:
        raise ContractError(
            f"X and T must be 2-D (N, n_features) and (N, n_outputs); got X{X.shape}, T{T.shape}"
        )
    if X.shape[0] != T.shape[0]:
        raise ContractError(f"X and T must have the same number of rows; got {X.shape[0]} and {T.shape[0]}")
    if X.shape[0] < 1:
        raise ContractError("X and T must have at least one row")
    N, F = X.shape
    K = T.shape[1]
    if F < 1:  # an empty dimension would quietly compute a loss of 0 or no gradient at all
        raise ContractError(f"X must have at least one column (n_features >= 1); got X{X.shape}")
    if K < 1:
        raise ContractError(f"T must have at least one column (n_outputs >= 1); got T{T.shape}")
    W1 = params["W1"]
    if W1.ndim != 2 or W1.shape[0] != F:
        raise ContractError(f"W1 must have shape (n_features={F}, n_hidden); got {W1.shape}")
    H = W1.shape[1]
    if H < 1:
        raise ContractError(f"W1 must have at least one column (n_hidden >= 1); got W1{W1.shape}")
    for name, shape in param_shapes(F, H, K).items():
        if params[name].shape != shape:
            raise ContractError(f"{name} must have shape {shape}; got {params[name].shape}")
    if np.any(T < 0) or np.any(T > 1):
        raise ContractError("T must lie in [0, 1]")
    return N, F, H, K


def check_call(params, X, T, loss: str, dtype: str, device: str, activation: str = "sigmoid"):
    """Validate everything an implementation's public function receives."""
    check_loss(loss)
    check_dtype(dtype)
    check_device(device)
    check_activation(activation)
    return check_arrays(params, X, T)


def check_train(lr, epochs, batch_size, seed, dtype: str | None = None):
    """Validate the training options; returns them as (float, int, int or None, int).

    seed must be a non-negative integer even for full-batch training, where it draws
    nothing: a run that is valid must stay valid when a batch size is added. With `dtype`,
    lr must also fit it (1e39 overflows float32: every update would be inf).
    """
    lr = check_number("lr", lr, "positive")
    epochs = check_number("epochs", epochs, "non-negative int")
    if batch_size is not None:
        batch_size = check_number("batch_size", batch_size, "positive int")
    seed = check_number("seed", seed, "non-negative int")
    if dtype is not None and lr > float(np.finfo(check_dtype(dtype)).max):
        raise ContractError(f"lr={lr!r} does not fit in {dtype} (largest "
                            f"{np.finfo(dtype).max:.3g})")
    return lr, epochs, batch_size, seed


# ---- workers (data parallelism, dataparallel/) ---------------------------------------------
# At most 2 workers per usable core: past one per core data parallelism buys nothing on one host,
# and workers that busy-poll in a collective (MPICH does) slow each other down; 2 per core still
# lets tests run W = 3 or 4 on a 2-core machine.
WORKERS_PER_CORE = 2


def usable_cores() -> int:
    """The cores this process may run on (taskset and cgroup cpusets respected)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def smallest_batch(n_samples: int, batch_size: int | None) -> int:
    """Rows in the smallest batch of an epoch (the last one when batch_size does not divide N)."""
    full = batch_size is None or batch_size >= n_samples
    return n_samples if full else n_samples % batch_size or batch_size


def check_workers(workers, n_samples: int | None = None, batch_size: int | None = None) -> int:
    """`workers` as an int, or a one-line ContractError naming it: the number rule, at most
    WORKERS_PER_CORE per usable core, and (given the data) at least one row of the smallest
    batch per worker. workers=1 is today's single process and is always valid."""
    workers = check_number("workers", workers, "positive int")
    if workers > 1:
        cores = usable_cores()
        if workers > cores * WORKERS_PER_CORE:
            raise ContractError(f"workers={workers} exceeds the limit of {cores * WORKERS_PER_CORE} "
                                f"({cores} usable cores x {WORKERS_PER_CORE} workers per core)")
    if n_samples is not None and workers > 1:
        small = smallest_batch(n_samples, batch_size)
        if small < workers:
            where = ("the full batch" if small == n_samples else
                     f"the last batch of each epoch: N={n_samples}, batch_size={batch_size}")
            raise ContractError(f"workers={workers} but the smallest batch has {small} "
                                f"row{'s' * (small != 1)} ({where}); every worker needs at least one row")
    return workers


class History(list):
    """The loss before each epoch (floats), as `train` returns it; `diverged` says whether
    any is NaN or infinite (the contract's divergence rule, in the module docstring)."""

    @property
    def diverged(self) -> bool:
        return not all(math.isfinite(v) for v in self)


def cast(params: Mapping[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """Fresh copies in `dtype` (inputs are never modified)."""
    return {k: np.array(params[k], dtype=dtype, copy=True) for k in PARAM_NAMES}


def flops_per_step(n: int, f: int, h: int, k: int) -> int:
    """Analytic floating-point operations of one training step (forward + backward + update).

    Matmuls dominate: forward X@W1 (2NFH) and A1@W2 (2NHK); backward dW2 = A1.T@dZ2
    (2NHK), dA1 = dZ2@W2.T (2NHK), dW1 = X.T@dZ1 (2NFH). Elementwise work
    (activations, their derivatives, bias sums, the update) is counted at one
    flop per element per operation, a small term beside the matmuls.
    """
    matmul = 2 * n * f * h * 2 + 2 * n * h * k * 3
    elementwise = 8 * n * h + 8 * n * k + 2 * (f * h + h + h * k + k)
    return int(matmul + elementwise)
