"""One typed, validated run config; named presets; `key=value` overrides parsed into the same type.

    from harness.config import preset, override
    cfg = override(preset("moons"), ["n_hidden=32", "dtype=float32"])
    params, X, T = cfg.problem()      # or cfg.data(), cfg.init()
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from harness import data
from impls import contract
from impls.contract import ContractError


@dataclass(frozen=True)
class Config:
    dataset: str = "moons"  # one of harness.data.DATASETS
    n_samples: int | None = 256  # rows of data; None = the data set's own size
    n_features: int | None = None  # None = the data set's own (teacher: 16)
    n_hidden: int = 8  # hidden units (the article's network is tiny)
    n_outputs: int | None = None  # None = the data set's own (teacher: 1, blobs: 3)
    activation: str = "sigmoid"  # hidden activation; the output is always sigmoid
    loss: str = "mse"  # 'mse' (the article's) or 'bce'
    lr: float = 0.5  # plain gradient descent, constant rate
    epochs: int = 20
    batch_size: int | None = None  # None = full batch
    seed: int = 0  # drives data, init and minibatch order
    dtype: str = "float64"  # float64 for checks, float32 for timing
    device: str = "cpu"  # 'cpu' or 'gpu'

    def __post_init__(self):
        validate(self)

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """(X, T) in float64, deterministic from the seed."""
        return data.make(self.dataset, self.n_samples, self.seed, self.n_features, self.n_outputs)

    def init(self) -> dict[str, np.ndarray]:
        """Shared Glorot initialisation for this config's shapes, in its dtype."""
        return self.problem()[0]

    def problem(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """(params, X, T): the shared initialisation in this config's dtype, and the data
        (float64; implementations cast it to the run's dtype at their boundary)."""
        X, T = self.data()
        P = contract.init_params(X.shape[1], self.n_hidden, T.shape[1], self.seed, self.dtype)
        return P, X, T


def _positive_int(name: str, value, optional: bool = False) -> None:
    if value is None and optional:
        return
    contract.check_number(name, value, "positive int")  # the API's one rule for numbers


def validate(cfg: Config) -> None:
    """Raise ValueError naming the first invalid field."""
    if cfg.dataset not in data.DATASETS:
        raise ContractError(f"unknown dataset {cfg.dataset!r}; expected one of {', '.join(data.DATASETS)}")
    _positive_int("n_samples", cfg.n_samples, optional=True)
    _positive_int("n_features", cfg.n_features, optional=True)
    _positive_int("n_hidden", cfg.n_hidden)
    _positive_int("n_outputs", cfg.n_outputs, optional=True)
    _positive_int("epochs", cfg.epochs)  # a run of 0 epochs measures nothing (the API allows it)
    _positive_int("batch_size", cfg.batch_size, optional=True)
    contract.check_activation(cfg.activation)
    contract.check_loss(cfg.loss)
    contract.check_dtype(cfg.dtype)
    contract.check_train(cfg.lr, cfg.epochs, cfg.batch_size, cfg.seed, cfg.dtype)
    contract.check_device(cfg.device)
    fixed = data.FIXED_FEATURES.get(cfg.dataset)
    if fixed is not None and cfg.n_features not in (None, fixed):
        raise ContractError(f"dataset {cfg.dataset} has {fixed} features; n_features={cfg.n_features}")
    if cfg.dataset in ("xor", "moons", "circles", "breast_cancer") and cfg.n_outputs not in (None, 1):
        raise ContractError(f"dataset {cfg.dataset} has 1 output; n_outputs={cfg.n_outputs}")
    if cfg.dataset == "breast_cancer" and cfg.n_samples is not None and cfg.n_samples > 569:
        raise ContractError(f"dataset breast_cancer has 569 samples; n_samples={cfg.n_samples}")


# Named presets, each with the reason for its values.
PRESETS: dict[str, Config] = {
    # The article's setting: tiny sigmoid net, half squared error, full batch.
    "xor": Config(dataset="xor", n_samples=4, n_hidden=4, loss="mse", lr=2.0, epochs=2000),
    # A classic 2-D problem that needs the hidden layer; bce as the article's FAQ advises.
    "moons": Config(dataset="moons", n_samples=256, n_hidden=16, loss="bce", lr=1.0, epochs=500),
    "circles": Config(dataset="circles", n_samples=256, n_hidden=16, loss="bce", lr=1.0, epochs=500),
    # Several outputs: exercises the sum-over-outputs part of the loss.
    "blobs": Config(dataset="blobs", n_samples=300, n_outputs=3, n_hidden=8, loss="mse", lr=2.0,
                    epochs=200),
    # The real data set: 569 x 30, standardised; minibatches of 32 as people train it.
    "breast_cancer": Config(dataset="breast_cancer", n_samples=None, n_hidden=16, loss="bce",
                            lr=0.1, epochs=50, batch_size=32),
    # A benchmark-shaped problem: compute grows with n_hidden and n_samples.
    "teacher": Config(dataset="teacher", n_samples=1024, n_features=64, n_outputs=4, n_hidden=256,
                      loss="mse", lr=0.5, epochs=20, dtype="float32"),
}


def preset(name: str) -> Config:
    if name not in PRESETS:
        raise ContractError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    return PRESETS[name]


_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(Config)}


def _parse_value(key: str, text: str):
    kind = _FIELD_TYPES[key]
    if "None" in kind and text.lower() in ("none", "full", ""):
        return None
    if kind.startswith("int"):
        try:
            return int(text)
        except ValueError:
            raise ContractError(f"{key} must be an integer, got {text!r}") from None
    if kind.startswith("float"):
        try:
            return float(text)
        except ValueError:
            raise ContractError(f"{key} must be a number, got {text!r}") from None
    return text


def override(cfg: Config, pairs) -> Config:
    """Apply `key=value` strings (from the command line) and re-validate."""
    changes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ContractError(f"override {pair!r} is not of the form key=value")
        if key not in _FIELD_TYPES:
            raise ContractError(f"unknown config field {key!r}; expected one of {', '.join(_FIELD_TYPES)}")
        changes[key] = _parse_value(key, value.strip())
    return dataclasses.replace(cfg, **changes)
