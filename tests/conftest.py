"""Shared test helpers: the repo root, and small non-square problems that can see bugs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness import contract

ROOT = Path(__file__).resolve().parent.parent


def problem(n=11, f=5, h=7, k=3, seed=0, dtype="float64"):
    """Non-square shapes (F != H != K, K >= 2, N >= 2) and non-zero parameters, so that
    transposes, mean/sum slips and unreduced biases all show."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, f)).astype(dtype)
    T = (rng.random((n, k)) > 0.5).astype(dtype)
    P = contract.init_params(f, h, k, seed, dtype)
    P["b1"] = (0.1 * rng.standard_normal(h)).astype(dtype)
    P["b2"] = (0.1 * rng.standard_normal(k)).astype(dtype)
    return P, X, T


@pytest.fixture
def root() -> Path:
    return ROOT
