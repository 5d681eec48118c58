"""Shared test helpers: the repo root, small problems that can see bugs, and the one way tests
compare numbers (the checker's own metric and tolerances, harness/check/tolerances.py).

    from tests.helpers import ROOT, assert_agree, problem
"""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

import impls
from harness.check.agreement import compare
from impls import contract

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


def assert_agree(got: dict, ref: dict, kind: str, dtype: str, what: str = "") -> None:
    """Every tensor of `got` within the checker's tolerance of `ref` (kind 'grad',
    'trajectory' or 'fd'; dtype the one `got` was computed in). Fails naming the worst
    entry and the checker's diagnosis."""
    rows = compare(ref, got, kind, dtype, impl=what, mode="", device="", loss="",
                   activation="", problem="")
    failing = [r.message() for r in rows if not r.ok]
    if failing:
        pytest.fail(f"{what}: " + "; ".join(failing))


def assert_same_grads(name, mode, P, X, T, loss, dtype, activation, device="cpu"):
    """`name`'s loss and gradients equal numpy float64's at the same (rounded) numbers, within
    the checker's tolerance for `dtype`."""
    impl, ref = impls.get(name), impls.get("numpy")
    Pd, Xd, Td = contract.cast(P, dtype), X.astype(dtype), T.astype(dtype)
    L0, G0 = ref.loss_and_grads(Pd, Xd, Td, loss=loss, dtype="float64", activation=activation)
    L1, G1 = impl.loss_and_grads(Pd, Xd, Td, loss=loss, dtype=dtype, mode=mode, device=device,
                                 activation=activation)
    assert isinstance(L1, float)
    for k in contract.PARAM_NAMES:
        assert G1[k].dtype == np.dtype(dtype), f"{k} came back as {G1[k].dtype}"
    assert_agree({"loss": L1, **G1}, {"loss": L0, **G0}, "grad", dtype,
                 f"{name}/{mode} {device} {dtype} {loss} {activation}")


def assert_same_training(P1, h1, P0, h0, dtype, what):
    """Final parameters and loss history equal the reference's (computed in float64)."""
    assert len(h1) == len(h0) and all(isinstance(v, float) for v in h1)
    for k in contract.PARAM_NAMES:
        assert P1[k].dtype == np.dtype(dtype)
    assert_agree({**P1, "history": h1}, {**P0, "history": h0}, "trajectory", dtype, what)


def default_sigint() -> None:
    """preexec_fn for a child that a test will Ctrl-C: SIGINT back to its default. A shell
    starts a background job (`make test &`, some CI runners) with SIGINT ignored, every child
    inherits that, and Python then keeps ignoring it (no KeyboardInterrupt): right for the
    tool, wrong for a test of what Ctrl-C does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
