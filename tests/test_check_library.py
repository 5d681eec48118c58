"""The checker's library (harness/check/): finite differences and the reference, tolerances,
per-tensor comparison, diagnosis.

    .venv/bin/pytest tests/test_check_library.py
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.check.agreement import compare
from harness.check.diagnose import diagnose
from harness.check.problems import finite_differences, loss_value, make_problem, reference
from harness.check.tolerances import KINK_MARGIN, tolerance
from impls import handwritten

shapes = st.tuples(st.integers(2, 8), st.integers(1, 7), st.integers(1, 7), st.integers(1, 4))


@settings(max_examples=60, deadline=None)
@given(shape=shapes, seed=st.integers(0, 10_000), loss=st.sampled_from(["mse", "bce"]),
       activation=st.sampled_from(["sigmoid", "tanh", "relu"]))
def test_reference_matches_finite_differences(shape, seed, loss, activation):
    # relu problems keep pre-activations KINK_MARGIN away from 0 (make_problem), so a
    # central difference never straddles the kink.
    p = make_problem(*shape, seed=seed, activation=activation)
    L, G = reference(p.params, p.X, p.T, loss, activation)
    fd = finite_differences(p.params, p.X, p.T, loss, activation)
    L_fd = loss_value(p.params, p.X, p.T, loss, activation)
    rows = compare({"loss": L_fd, **fd}, {"loss": L, **G}, "fd", "float64", shape[0],
                      shape[3], impl="numpy", mode="default", device="cpu", loss=loss,
                      activation=activation, problem=p.name)
    assert all(r.ok for r in rows), [r.message() for r in rows if not r.ok]
    # Measured worst over 400 random problems: 2.6e-7; the gate is 1e-5.
    assert max(r.worst_error for r in rows) < 1e-6


def test_relu_problems_stay_off_the_kink():
    for seed in range(50):
        p = make_problem(9, 4, 6, 2, seed=seed, activation="relu")
        Z1 = p.X @ p.params["W1"] + p.params["b1"]
        assert np.abs(Z1).min() >= KINK_MARGIN


def test_float32_numpy_raises_no_false_alarm():
    """The correct float32 gradient passes against the float64 reference on many problems."""
    rng = np.random.default_rng(0)
    worst = 0.0
    for i in range(150):
        n, f, h, k = (int(v) for v in rng.integers(2, 40, size=4))
        loss, act = ("mse", "bce")[i % 2], ("sigmoid", "tanh", "relu")[i % 3]
        p32 = make_problem(n, f, h, k, seed=i, activation=act).cast("float32")
        L, G = reference(p32.params, p32.X, p32.T, loss, act)  # float64, same numbers
        L32, G32 = handwritten.grads(np, p32.params, p32.X, p32.T, loss, act)
        assert G32["W1"].dtype == np.float32
        rows = compare({"loss": L, **G}, {"loss": float(L32), **G32}, "grad", "float32", n,
                          k, impl="numpy", mode="default", device="cpu", loss=loss,
                          activation=act, problem=p32.name)
        assert all(r.ok for r in rows), [r.message() for r in rows if not r.ok]
        worst = max(worst, *(r.worst_error for r in rows))
    assert worst < tolerance("grad", "float32") / 20  # measured ~1e-6: wide margin


def test_tolerance_knows_the_dtype():
    assert tolerance("grad", "float64") == 1e-10
    assert tolerance("grad", np.float32) == tolerance("grad", "float32")
    assert tolerance("grad", np.float16) == tolerance("grad", "float32")
    assert tolerance("fd", "float64") == 1e-5
    with pytest.raises(ValueError, match="finite differences are float64 only"):
        tolerance("fd", "float32")


# ---- diagnosis: every planted kind of error is recognised --------------------------------
N, K = 11, 3
REF = make_problem(N, 5, 7, K, seed=3)
L_REF, G_REF = reference(REF.params, REF.X, REF.T, "mse")
TOL = tolerance("grad", "float64")


def _diag(ref, got, tol=TOL):
    return diagnose(ref, got, tol, n_samples=N, n_outputs=K)


@pytest.mark.parametrize("factor, words", [
    (N, "factor of N=11"), (1 / N, "1/N=1/11"), (K, "K=3"), (1 / K, "1/K=1/3"),
    (2.0, "factor of 2 "), (0.5, "factor of 0.5"), (N * K, "N*K=33"), (-1.0, "sign flipped"),
    (-N, "sign flipped and off by a factor of N=11"), (3.7, "constant factor 3.7"),
])
def test_diagnose_constant_factors(factor, words):
    assert words in _diag(G_REF["W2"], factor * G_REF["W2"])


def test_diagnose_factors_in_float32_too():
    got = (N * G_REF["W1"]).astype(np.float32)
    assert "factor of N=11" in _diag(G_REF["W1"], got, tolerance("grad", "float32"))


def test_diagnose_agreement_is_empty():
    assert _diag(G_REF["W1"], G_REF["W1"] * (1 + 1e-13)) == ""


def test_diagnose_transposes():
    W1 = G_REF["W1"]  # (5, 7)
    assert _diag(W1, W1.T) == "transposed: shape (7, 5), expected (5, 7); its transpose matches"
    assert "its transpose is off by a factor of N=11" in _diag(W1, N * W1.T)
    square = np.arange(1.0, 17.0).reshape(4, 4)  # a square shape hides it from a shape check
    assert _diag(square, square.T).startswith("transposed (a square shape")


def test_diagnose_batch_not_reduced():
    per_sample = np.repeat(G_REF["b1"][None, :] / N, N, axis=0)  # (N, H): sums to the reference
    assert _diag(G_REF["b1"], per_sample).startswith(
        "not reduced over the batch: shape (11, 7), expected (7,)")
    assert "summed over the batch it matches" in _diag(G_REF["b1"], per_sample)
    weights = np.repeat(G_REF["W1"][None], N, axis=0)  # (N, F, H), no 1/N anywhere
    assert "summed over the batch it is off by a factor of N=11" in _diag(G_REF["W1"], weights)
    flat = np.repeat(G_REF["W2"][:, 0][None], N, axis=0)  # the article's (N, H) for W2 (H, 1)
    assert _diag(G_REF["W2"][:, :1], flat).startswith("not reduced over the batch")


def test_diagnose_wrong_shapes_and_axes():
    assert "reduced over the wrong axis" in _diag(G_REF["b1"], np.ones(N))
    assert _diag(G_REF["b1"], np.ones(4)) == "wrong shape: shape (4,), expected (7,)"


@pytest.mark.parametrize("bad, words", [(np.nan, "contains NaN (1 of 35"),
                                        (np.inf, "contains inf")])
def test_diagnose_non_finite(bad, words):
    got = G_REF["W1"].copy()
    got[2, 3] = bad
    assert _diag(G_REF["W1"], got).startswith(words)


def test_diagnose_wrong_values_and_zeros():
    rng = np.random.default_rng(0)
    noisy = G_REF["W1"] * (1 + 0.3 * rng.standard_normal(G_REF["W1"].shape))
    assert _diag(G_REF["W1"], noisy) == "wrong values"
    assert _diag(G_REF["W1"], np.zeros_like(G_REF["W1"])) == "all zeros"
    assert _diag(G_REF["W1"], "not numbers") == "not a numeric array (str)"


def test_diagnose_loss_values():
    assert "factor of N=11" in _diag(np.float64(L_REF), N * L_REF)
    assert "without the contract's 1/2" in _diag(np.float64(L_REF), 2 * L_REF)
    assert _diag(np.float64(L_REF), 1.37 * L_REF) == "wrong value"


def test_compare_names_tensor_worst_entry_and_diagnosis():
    got = dict(G_REF, loss=L_REF)
    got["W2"] = G_REF["W2"].copy()
    got["W2"][4, 1] += 0.5
    rows = compare({"loss": L_REF, **G_REF}, got, "grad", "float64", N, K, impl="x",
                      mode="m", device="cpu", loss="mse", activation="sigmoid", problem="p")
    bad = [r for r in rows if not r.ok]
    assert [r.tensor for r in bad] == ["W2"]
    assert bad[0].worst_index == [4, 1] and bad[0].got == pytest.approx(G_REF["W2"][4, 1] + 0.5)
    message = bad[0].message()
    assert "W2 worst entry [4, 1]: expected" in message and "wrong values" in message


def test_rows_are_strict_json():
    got = {"loss": L_REF, **G_REF, "W1": np.full_like(G_REF["W1"], np.nan), "b1": np.ones(3)}
    rows = compare({"loss": L_REF, **G_REF}, got, "grad", "float64", N, K, impl="x",
                      mode="m", device="cpu", loss="mse", activation="sigmoid", problem="p")
    text = json.dumps([r.to_json() for r in rows], allow_nan=False)  # raises on NaN or inf
    assert [r["ok"] for r in json.loads(text)] == [True, False, False, True, True]
