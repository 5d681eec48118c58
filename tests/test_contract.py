"""The contract module, config, data and the registry: shapes, determinism, validation."""

from __future__ import annotations

import numpy as np
import pytest

import impls
from harness import config, data
from impls import contract
from tests.helpers import problem


def test_init_is_glorot_uniform_and_deterministic():
    P = contract.init_params(30, 200, 4, seed=3)
    assert {k: v.shape for k, v in P.items()} == contract.param_shapes(30, 200, 4)
    limit = np.sqrt(6 / (30 + 200))
    assert np.abs(P["W1"]).max() <= limit and np.abs(P["W1"]).max() > 0.9 * limit
    assert np.all(P["b1"] == 0) and np.all(P["b2"] == 0)
    Q = contract.init_params(30, 200, 4, seed=3)
    assert all(np.array_equal(P[k], Q[k]) for k in P)
    R = contract.init_params(30, 200, 4, seed=4)
    assert not np.array_equal(P["W1"], R["W1"])


def test_init_float32_is_the_float64_draw_rounded():
    P64 = contract.init_params(5, 7, 3, seed=1, dtype="float64")
    P32 = contract.init_params(5, 7, 3, seed=1, dtype="float32")
    assert P32["W1"].dtype == np.float32
    np.testing.assert_array_equal(P32["W1"], P64["W1"].astype(np.float32))


def test_batch_order_is_a_partition_shared_by_seed_and_epoch():
    assert contract.batch_order(10, None, 0, 0) is None
    assert contract.batch_order(10, 10, 0, 0) is None
    order = contract.batch_order(10, 4, seed=0, epoch=0)
    assert [len(b) for b in order] == [4, 4, 2]
    assert sorted(np.concatenate(order).tolist()) == list(range(10))
    again = contract.batch_order(10, 4, seed=0, epoch=0)
    assert all(np.array_equal(a, b) for a, b in zip(order, again, strict=True))
    other = contract.batch_order(10, 4, seed=0, epoch=1)
    assert not all(np.array_equal(a, b) for a, b in zip(order, other, strict=True))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda P, X, T: P.pop("b2"), "missing b2"),
        (lambda P, X, T: P.__setitem__("W1", P["W1"].T.copy()), "W1 must have shape"),
        (lambda P, X, T: P.__setitem__("b1", np.zeros((11, 7))), "b1 must have shape"),
        (lambda P, X, T: P.__setitem__("W2", P["W2"].astype(np.int64)), "floating-point"),
        (lambda P, X, T: P.__setitem__("W2", P["W2"] * np.nan), "NaN"),
        (lambda P, X, T: P.__setitem__("extra", np.zeros(1)), "unexpected extra"),
    ],
)
def test_bad_arrays_name_the_problem(mutate, message):
    P, X, T = problem()
    mutate(P, X, T)
    with pytest.raises(ValueError, match=message):
        contract.check_arrays(P, X, T)


def test_bad_data_names_the_problem():
    P, X, T = problem()
    with pytest.raises(ValueError, match="same number of rows"):
        contract.check_arrays(P, X, T[:-1])
    with pytest.raises(ValueError, match=r"T must lie in \[0, 1\]"):
        contract.check_arrays(P, X, T * 2)
    with pytest.raises(ValueError, match="must be 2-D"):
        contract.check_arrays(P, X[:, 0], T)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        contract.check_call(P, X, T, "hinge", "float64", "cpu")
    with pytest.raises(ValueError, match="unknown dtype"):
        contract.check_call(P, X, T, "mse", "float16", "cpu")


def test_flops_are_dominated_by_the_five_matmuls():
    n, f, h, k = 1000, 100, 2000, 10
    assert contract.flops_per_step(n, f, h, k) >= 2 * n * h * (2 * f + 3 * k)
    assert contract.flops_per_step(n, f, h, k) < 1.05 * 2 * n * h * (2 * f + 3 * k)


@pytest.mark.parametrize("name", data.DATASETS)
def test_every_dataset_is_deterministic_float64_with_targets_in_unit_interval(name):
    X, T = data.make(name, seed=5)
    X2, T2 = data.make(name, seed=5)
    assert X.dtype == np.float64 and T.dtype == np.float64
    assert X.ndim == 2 and T.ndim == 2 and len(X) == len(T)
    assert np.all((T >= 0) & (T <= 1))
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(T, T2)


def test_dataset_shapes():
    assert data.make("breast_cancer")[0].shape == (569, 30)
    X, T = data.make("teacher", n_samples=100, n_features=9, n_outputs=4, seed=1)
    assert X.shape == (100, 9) and T.shape == (100, 4)
    assert data.make("blobs", n_samples=60, n_outputs=4)[1].sum(1).tolist() == [1.0] * 60
    X, T = data.make("breast_cancer")
    np.testing.assert_allclose(X.mean(0), 0, atol=1e-12)
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        data.make("mnist")
    with pytest.raises(ValueError, match="has 2 features"):
        data.make("moons", n_features=3)


def test_config_presets_validate_and_build():
    for name, cfg in config.PRESETS.items():
        X, T = cfg.data()
        P = cfg.init()
        contract.check_arrays(P, X.astype(cfg.dtype), T.astype(cfg.dtype))
        assert P["W1"].dtype == np.dtype(cfg.dtype), name


def test_config_overrides_parse_into_the_typed_config():
    cfg = config.override(config.preset("moons"), ["n_hidden=32", "dtype=float32",
                                                   "batch_size=full", "lr=0.25"])
    assert (cfg.n_hidden, cfg.dtype, cfg.batch_size, cfg.lr) == (32, "float32", None, 0.25)


@pytest.mark.parametrize(
    "pairs, message",
    [
        (["n_hidden=0"], "n_hidden must be a positive integer"),
        (["n_hidden=eight"], "n_hidden must be an integer"),
        (["lr=-1"], "lr must be a positive number"),
        (["loss=hinge"], "unknown loss"),
        (["colour=red"], "unknown config field 'colour'"),
        (["n_hidden"], "not of the form key=value"),
        (["dataset=moons", "n_features=3"], "has 2 features"),
        (["device=tpu"], "unknown device"),
    ],
)
def test_config_errors_name_the_field(pairs, message):
    with pytest.raises(ValueError, match=message):
        config.override(config.preset("moons"), pairs)


def test_registry_lists_and_rejects_names():
    assert {"numpy", "torch", "jax"} <= set(impls.names())
    with pytest.raises(ValueError, match="unknown implementation 'tensorflow'; known: .*numpy"):
        impls.get("tensorflow")


def test_numpy_is_a_cpu_implementation_with_a_reason_elsewhere():
    impl = impls.get("numpy")
    assert impl.available("cpu") == (True, "")
    ok, why = impl.available("gpu")
    assert not ok and "CPU" in why



# ---- numbers: one rule, every error naming its argument ------------------------------------------
@pytest.mark.parametrize("value, kind, expected", [
    (0.5, "positive", 0.5), (np.float32(0.5), "positive", 0.5), (2, "positive", 2.0),
    (np.int64(3), "non-negative int", 3), (0, "non-negative int", 0), (7, "positive int", 7),
])
def test_python_and_numpy_numbers_are_accepted(value, kind, expected):
    got = contract.check_number("x", value, kind)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("value, kind, words", [
    (True, "positive", "x must be a positive number, not a bool"),
    (np.bool_(True), "positive int", "not a bool"),
    (float("nan"), "positive", r"x must be a positive number \(finite\), got nan"),
    (float("inf"), "positive", r"\(finite\)"),
    (0.0, "positive", "x must be a positive number, got 0.0"),
    ("0.5", "positive", "x must be a positive number, got str '0.5'"),
    (3.0, "positive int", "x must be a positive integer, got float 3.0"),
    (0, "positive int", "x must be a positive integer, got 0"),
    (-1, "non-negative int", "x must be a non-negative integer, got -1"),
    (None, "non-negative int", "got NoneType None"),
])
def test_anything_else_is_refused_naming_the_argument(value, kind, words):
    with pytest.raises(ValueError, match=words):
        contract.check_number("x", value, kind)


@pytest.mark.parametrize("field, value", [
    ("lr", True), ("epochs", True), ("batch_size", True), ("seed", True), ("seed", -1),
    ("lr", float("inf")), ("epochs", 2.0),
])
def test_check_train_names_the_argument(field, value):
    args = {"lr": 0.5, "epochs": 3, "batch_size": None, "seed": 0, field: value}
    with pytest.raises(ValueError, match=f"^{field} must be"):
        contract.check_train(**args)


def test_check_train_normalises_numpy_numbers_and_knows_dtype_limits():
    assert contract.check_train(np.float32(0.5), np.int64(2), np.int32(4), np.uint8(1)) == (
        0.5, 2, 4, 1)
    assert contract.check_train(1e39, 1, None, 0, "float64")[0] == 1e39
    with pytest.raises(ValueError, match=r"lr=1e\+39 does not fit in float32"):
        contract.check_train(1e39, 1, None, 0, "float32")


@pytest.mark.parametrize("change, words", [
    (lambda P, X, T: (P, X[:, :0], T), "X must have at least one column"),
    (lambda P, X, T: (P, X, T[:, :0]), "T must have at least one column"),
    (lambda P, X, T: (dict(P, W1=P["W1"][:, :0], b1=P["b1"][:0], W2=P["W2"][:0]), X, T),
     "W1 must have at least one column"),
], ids=["F=0", "K=0", "H=0"])
def test_zero_sized_dimensions_are_refused(change, words):
    P, X, T = change(*problem())
    with pytest.raises(ValueError, match=words):
        contract.check_arrays(P, X, T)


def test_init_params_follows_the_number_rule():
    with pytest.raises(ValueError, match="n_hidden must be a positive integer, not a bool"):
        contract.init_params(3, True, 2, seed=0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        contract.init_params(3, 4, 2, seed=-1)


@pytest.mark.parametrize("field, value, words", [
    ("lr", True, "lr must be a positive number, not a bool"),
    ("epochs", True, "epochs must be a positive integer, not a bool"),
    ("seed", -1, "seed must be a non-negative integer"),
    ("lr", 1e39, "lr=1e\\+39 does not fit in float32"),
])
def test_config_follows_the_number_rule(field, value, words):
    with pytest.raises(ValueError, match=words):
        config.Config(dtype="float32", **{field: value})


def test_history_says_whether_a_run_diverged():
    assert not contract.History([0.5, 0.4]).diverged
    assert contract.History([0.5, float("nan")]).diverged
    assert contract.History([0.5, float("inf")]).diverged
    assert contract.History([0.5]) == [0.5]  # still the list it always was
