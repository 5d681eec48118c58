"""Deterministic data: every data set is made by NumPy (or shipped by scikit-learn) from a seed.

    from harness.data import make
    X, T = make("moons", n_samples=256, seed=0)   # X (256, 2) float64, T (256, 1) in {0, 1}

Every function returns float64 arrays `X (N, n_features)` and `T (N, n_outputs)`
with T in [0, 1]; the run's dtype is applied at the implementation boundary.
"""

from __future__ import annotations

import numpy as np

from impls.contract import ContractError

DATASETS = ("xor", "moons", "circles", "blobs", "teacher", "breast_cancer")

# n_features of each data set; None where the caller chooses (teacher).
FIXED_FEATURES = {"xor": 2, "moons": 2, "circles": 2, "blobs": 2, "breast_cancer": 30}


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), 0xDA7A])  # stream 0xDA7A: data


def _column(y: np.ndarray) -> np.ndarray:
    return np.asarray(y, dtype=np.float64).reshape(-1, 1)


def xor(n_samples: int = 4, seed: int = 0, noise: float = 0.1):
    """The four XOR corners; more samples are noisy copies of them."""
    corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    if n_samples == 4:
        X = corners
    else:
        idx = _rng(seed).integers(0, 4, size=n_samples)
        X = corners[idx] + noise * _rng(seed + 1).standard_normal((n_samples, 2))
    T = _column(np.logical_xor(X[:, 0] > 0.5, X[:, 1] > 0.5))
    return X, T


def moons(n_samples: int = 256, seed: int = 0, noise: float = 0.2):
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=n_samples, noise=noise, random_state=int(seed))
    return X.astype(np.float64), _column(y)


def circles(n_samples: int = 256, seed: int = 0, noise: float = 0.1):
    from sklearn.datasets import make_circles

    X, y = make_circles(n_samples=n_samples, noise=noise, factor=0.5, random_state=int(seed))
    return X.astype(np.float64), _column(y)


def blobs(n_samples: int = 256, seed: int = 0, n_outputs: int = 3):
    """Gaussian blobs, one per class, targets one-hot (N, n_outputs)."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=n_samples, centers=n_outputs, random_state=int(seed))
    X = (X - X.mean(0)) / X.std(0)
    return X.astype(np.float64), np.eye(n_outputs)[y]


def teacher(n_samples: int = 1024, seed: int = 0, n_features: int = 16, n_outputs: int = 1,
            n_hidden: int = 16):
    """A random two-layer sigmoid 'teacher' labels Gaussian inputs: any size, for benchmarks.

    Targets are the teacher's outputs thresholded at their median, so every
    output column is a balanced binary label (valid for both losses).
    """
    rng = _rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    W1 = rng.standard_normal((n_features, n_hidden)) / np.sqrt(n_features)
    W2 = rng.standard_normal((n_hidden, n_outputs)) / np.sqrt(n_hidden)
    Z = np.tanh(X @ W1) @ W2
    T = (Z > np.median(Z, axis=0)).astype(np.float64)
    return X, T


def breast_cancer(n_samples: int | None = None, seed: int = 0):
    """scikit-learn's Wisconsin breast-cancer set (569 x 30, shipped, no download), standardised.

    Rows are shuffled by the seed; `n_samples` takes the first rows after that.
    """
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    X = (data.data - data.data.mean(0)) / data.data.std(0)
    perm = _rng(seed).permutation(len(X))
    X, y = X[perm], data.target[perm]
    if n_samples is not None:
        if n_samples > len(X):
            raise ContractError(f"breast_cancer has {len(X)} samples; asked for {n_samples}")
        X, y = X[:n_samples], y[:n_samples]
    return X.astype(np.float64), _column(y)


def make(name: str, n_samples: int | None = None, seed: int = 0, n_features: int | None = None,
         n_outputs: int | None = None):
    """Build data set `name`. Unknown names and impossible sizes raise ValueError."""
    if name not in DATASETS:
        raise ContractError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    if n_samples is not None and (int(n_samples) != n_samples or n_samples < 1):
        raise ContractError(f"n_samples must be a positive integer, got {n_samples!r}")
    fixed = FIXED_FEATURES.get(name)
    if fixed is not None and n_features not in (None, fixed):
        raise ContractError(f"dataset {name} has {fixed} features; n_features={n_features} given")
    if name in ("xor", "moons", "circles", "breast_cancer") and n_outputs not in (None, 1):
        raise ContractError(f"dataset {name} has 1 output; n_outputs={n_outputs} given")
    kw = {} if n_samples is None else {"n_samples": int(n_samples)}
    if name == "xor":
        return xor(seed=seed, **kw)
    if name == "moons":
        return moons(seed=seed, **kw)
    if name == "circles":
        return circles(seed=seed, **kw)
    if name == "blobs":
        return blobs(seed=seed, n_outputs=n_outputs or 3, **kw)
    if name == "teacher":
        return teacher(seed=seed, n_features=n_features or 16, n_outputs=n_outputs or 1, **kw)
    return breast_cancer(seed=seed, **kw)


def accuracy(Y: np.ndarray, T: np.ndarray) -> float:
    """Fraction of samples whose every output is on the right side of 0.5."""
    return float(np.mean(np.all((Y > 0.5) == (T > 0.5), axis=1)))
