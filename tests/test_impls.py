"""Every implementation against the hand-written NumPy reference, on the CPU.

    .venv/bin/pytest tests/test_impls.py -q

For each registered framework implementation and each mode it can run on the CPU
(timing-only TF32 modes aside): the same loss and gradients as numpy in float64 and
float32, for both losses and all three activations, on non-square shapes; the same
training trajectory. numpy itself is the reference here, so it is proven against
finite differences instead (tests/test_handwritten.py). For every implementation,
numpy included: inputs never modified, clear errors for bad inputs and unavailable
cells. torch.compile is slow to compile (seconds per graph on a small CPU), so it gets
one test of its own at the end instead of joining every parametrisation.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import impls
from impls import contract
from impls.base import Unavailable
from tests.helpers import ROOT, assert_same_grads, assert_same_training, problem

REF = impls.get("numpy")  # the reference: proven against finite differences
SLOW_MODES = {("torch", "compile")}  # tested once, in test_torch_compile


def cpu_cells(include_slow: bool = False, include_reference: bool = True):
    cells = []
    for name in impls.names():
        impl = impls.get(name)
        for mode in impl.modes:
            if mode in impl.timing_only or not impl.available("cpu", mode)[0]:
                continue
            if (name, mode) in SLOW_MODES and not include_slow:
                continue
            if name == REF.name and not include_reference:
                continue
            cells.append(pytest.param(name, mode, id=f"{name}-{mode}"))
    return cells


CELLS = cpu_cells()  # every implementation: the properties all of them must have
FRAMEWORKS = cpu_cells(include_reference=False)  # compared with numpy, the reference


# ---- gradients ---------------------------------------------------------------
@pytest.mark.parametrize("name, mode", FRAMEWORKS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", contract.LOSSES)
@pytest.mark.parametrize("activation", contract.ACTIVATIONS)
def test_grads_match_numpy(name, mode, dtype, loss, activation):
    P, X, T = problem(n=11, f=5, h=7, k=3, seed=1)
    assert_same_grads(name, mode, P, X, T, loss, dtype, activation)


# jax nojit runs the same functions as jit, op by op, and compiles every op afresh for
# every new shape (~2 s an example here): it sits out the random shapes.
@pytest.mark.parametrize("name, mode", [c for c in FRAMEWORKS if c.id != "jax-nojit"])
@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 17), f=st.integers(1, 6), h=st.integers(1, 9), k=st.integers(1, 4),
       scale=st.sampled_from([0.1, 1.0, 8.0]), loss=st.sampled_from(contract.LOSSES),
       activation=st.sampled_from(contract.ACTIVATIONS), seed=st.integers(0, 2**16))
def test_grads_match_numpy_any_shape(name, mode, n, f, h, k, scale, loss, activation, seed):
    # Soft targets and inputs scaled up to saturate the sigmoids (scale 8) or not at all.
    rng = np.random.default_rng(seed)
    P = contract.init_params(f, h, k, seed)
    X = scale * rng.standard_normal((n, f))
    T = rng.random((n, k))
    assert_same_grads(name, mode, P, X, T, loss, "float64", activation)


# ---- training --------------------------------------------------------------------
@pytest.mark.parametrize("name, mode", FRAMEWORKS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_size", [None, 4], ids=["full", "mini4"])
def test_train_matches_numpy(name, mode, dtype, batch_size):
    P, X, T = problem(n=11, seed=2, dtype=dtype)  # batch 4 of 11: the last batch has 3 rows
    kw = dict(loss="bce", lr=0.5, epochs=4, batch_size=batch_size, seed=3)
    P0, h0 = REF.train(P, X, T, dtype="float64", **kw)
    P1, h1 = impls.get(name).train(P, X, T, mode=mode, dtype=dtype, **kw)
    assert_same_training(P1, h1, P0, h0, dtype, f"{name}/{mode} {dtype}")


@pytest.mark.parametrize("name, mode", CELLS)
def test_history_is_mean_of_losses_before_each_update(name, mode):
    """Replay training with the implementation's own loss_and_grads, batch by batch."""
    impl = impls.get(name)
    P, X, T = problem(n=11, seed=4)
    lr, bs, seed, epochs = 0.5, 4, 5, 3
    params, history = impl.train(P, X, T, loss="mse", lr=lr, epochs=epochs, batch_size=bs,
                                 seed=seed, mode=mode)
    Q, expected = contract.cast(P, "float64"), []
    for epoch in range(epochs):
        losses = []
        for idx in contract.batch_order(len(X), bs, seed, epoch):
            L, G = impl.loss_and_grads(Q, X[idx], T[idx], loss="mse", mode=mode)
            losses.append(L)
            Q = {k: Q[k] - lr * G[k] for k in Q}
        expected.append(np.mean(losses))
    assert_same_training(params, history, Q, expected, "float64", f"{name}/{mode}")


@pytest.mark.parametrize("name, mode", CELLS)
def test_zero_epochs_returns_the_start(name, mode):
    P, X, T = problem(seed=6)
    params, history = impls.get(name).train(P, X, T, epochs=0, mode=mode)
    assert history == []
    for k in contract.PARAM_NAMES:
        np.testing.assert_array_equal(params[k], P[k])


@pytest.mark.parametrize("name, mode", CELLS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_inputs_never_modified(name, mode, dtype):
    impl = impls.get(name)
    P, X, T = problem(seed=7, dtype=dtype)
    before = {k: v.copy() for k, v in {**P, "X": X, "T": T}.items()}
    impl.loss_and_grads(P, X, T, dtype=dtype, mode=mode)
    impl.train(P, X, T, epochs=2, batch_size=4, dtype=dtype, mode=mode)
    for k, v in {**P, "X": X, "T": T}.items():
        np.testing.assert_array_equal(v, before[k], err_msg=f"{name}/{mode} modified {k}")


@pytest.mark.parametrize("name, mode", CELLS)
def test_session_params_are_copies(name, mode):
    """params() must not be a view of device state that later steps update (or donate)."""
    P, X, T = problem(seed=8)
    s = impls.get(name).session(P, X, T, dtype="float32", mode=mode)
    (batch,) = s.batches(None)
    s.step(batch)
    s.sync()
    first = s.params()
    saved = {k: v.copy() for k, v in first.items()}
    s.value(s.step(batch))
    s.sync()
    for k in contract.PARAM_NAMES:
        np.testing.assert_array_equal(first[k], saved[k], err_msg=f"{k} changed under us")
        assert not np.array_equal(s.params()[k], saved[k]), f"{k} did not move"


# ---- availability and errors ----------------------------------------------------
ALL = [pytest.param(n, m, id=f"{n}-{m}") for n in impls.names() for m in impls.get(n).modes]


@pytest.mark.parametrize("name, mode", ALL)
@pytest.mark.parametrize("device", contract.DEVICES)
def test_unavailable_cells_say_why_and_refuse(name, mode, device):
    impl = impls.get(name)
    ok, reason = impl.available(device, mode)
    assert isinstance(ok, bool) and isinstance(reason, str)
    if ok:
        assert reason == ""
        return
    assert reason.strip(), "an unavailable cell must give a reason"
    P, X, T = problem()
    with pytest.raises(Unavailable, match="unavailable"):
        impl.loss_and_grads(P, X, T, device=device, mode=mode)
    with pytest.raises(Unavailable):
        impl.session(P, X, T, device=device, mode=mode)


@pytest.mark.parametrize("name, mode", [("torch", "reduce-overhead"), ("torch", "eager-tf32"),
                                        ("jax", "jit-tf32"), ("cupy", "default")])
def test_gpu_only_modes_are_unavailable_on_cpu(name, mode):
    ok, reason = impls.get(name).available("cpu", mode)
    assert not ok and reason
    if (name, mode) == ("torch", "reduce-overhead"):
        assert reason == "CUDA graphs need a GPU"


def test_tf32_modes_are_timing_only():
    assert impls.get("torch").timing_only == ("eager-tf32",)
    assert impls.get("jax").timing_only == ("jit-tf32",)


@pytest.mark.parametrize("name", impls.names())
@pytest.mark.parametrize("change, message", [
    (lambda P, X, T: (dict(P, W1=P["W1"].T), X, T), "W1 must have shape"),
    (lambda P, X, T: (P, X.astype(np.int64), T), "floating-point"),
    (lambda P, X, T: (P, X[:5], T), "same number of rows"),
    (lambda P, X, T: ({k: v for k, v in P.items() if k != "b2"}, X, T), "missing b2"),
    (lambda P, X, T: (P, X, T + 1), r"T must lie in \[0, 1\]"),
], ids=["W1-transposed", "int-X", "rows", "missing-b2", "T-range"])
def test_bad_arrays_raise_value_error(name, change, message):
    P, X, T = change(*problem())
    with pytest.raises(ValueError, match=message):
        impls.get(name).loss_and_grads(P, X, T)


@pytest.mark.parametrize("name", impls.names())
@pytest.mark.parametrize("kwargs, message", [
    ({"loss": "hinge"}, "unknown loss 'hinge'"),
    ({"mode": "turbo"}, "unknown mode 'turbo'"),
    ({"activation": "gelu"}, "unknown activation 'gelu'"),
    ({"dtype": "float16"}, "unknown dtype 'float16'"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
])
def test_bad_options_raise_value_error(name, kwargs, message):
    P, X, T = problem()
    with pytest.raises(ValueError, match=message):
        impls.get(name).loss_and_grads(P, X, T, **kwargs)


@pytest.mark.parametrize("name", impls.names())
@pytest.mark.parametrize("kwargs, message", [
    ({"seed": -1}, "seed must be a non-negative integer, got -1"),
    ({"seed": -1, "batch_size": 4}, "seed must be a non-negative integer, got -1"),
    ({"lr": True}, "lr must be a positive number, not a bool"),
    ({"epochs": True}, "epochs must be a non-negative integer, not a bool"),
    ({"batch_size": True}, "batch_size must be a positive integer, not a bool"),
    ({"epochs": 2.0}, "epochs must be a non-negative integer, got float 2.0"),
    ({"lr": 1e39, "dtype": "float32"}, r"lr=1e\+39 does not fit in float32"),
], ids=["seed-full", "seed-minibatch", "lr-bool", "epochs-bool", "batch-bool", "epochs-float",
        "lr-overflows-float32"])
def test_bad_training_numbers_raise_value_error_naming_them(name, kwargs, message):
    P, X, T = problem()
    with pytest.raises(ValueError, match=message):
        impls.get(name).train(P, X, T, **{"epochs": 1, **kwargs})


@pytest.mark.parametrize("name", impls.names())
def test_zero_sized_dimensions_raise_value_error(name):
    P, X, T = problem()
    with pytest.raises(ValueError, match="T must have at least one column"):
        impls.get(name).loss_and_grads(dict(P, W2=P["W2"][:, :0], b2=P["b2"][:0]), X, T[:, :0])


@pytest.mark.parametrize("name", impls.names())
@pytest.mark.parametrize("device, mode", [("tpu", None), (None, None), (3, None), (["cpu"], None),
                                          ("cpu", "turbo"), ("cpu", ["eager"])])
def test_available_never_raises(name, device, mode):
    ok, reason = impls.get(name).available(device, mode)
    assert ok is False and reason.startswith("unknown")


@pytest.mark.parametrize("name, mode", CELLS)
def test_numpy_numbers_are_accepted_for_training(name, mode):
    P, X, T = problem(seed=3)
    kw = dict(loss="bce", epochs=2, batch_size=4, seed=3, mode=mode)
    _, h0 = impls.get(name).train(P, X, T, lr=0.5, **kw)
    _, h1 = impls.get(name).train(P, X, T, lr=np.float32(0.5), **{**kw, "epochs": np.int64(2),
                                                                   "seed": np.uint8(3)})
    assert h1 == h0


@pytest.mark.parametrize("name, mode", CELLS)
@pytest.mark.parametrize("dtype, lr", [("float64", 1e300), ("float32", 1e37)])
def test_divergence_is_a_flagged_history_in_every_implementation(name, mode, dtype, lr):
    """The contract's divergence rule: no exception, the losses as computed (NaN or inf)."""
    P, X, T = problem(seed=5)
    params, history = impls.get(name).train(P, X, T, loss="bce", lr=lr, epochs=4, dtype=dtype,
                                            mode=mode, activation="relu")
    assert isinstance(history, contract.History) and len(history) == 4
    assert history.diverged and np.isfinite(history[0])
    assert {k: v.dtype for k, v in params.items()} == dict.fromkeys(contract.PARAM_NAMES,
                                                                    np.dtype(dtype))


@pytest.mark.parametrize("name, mode", CELLS)
def test_info_records_matmul_precision(name, mode):
    precision = impls.get(name).info("cpu", mode)["matmul_precision"]
    assert isinstance(precision, str) and precision and "tf32" not in precision


# ---- torch.compile: one test, since each new graph compiles for seconds ----------
@pytest.mark.slow
def test_torch_compile():
    """Gradients, and minibatch training, through torch.compile.

    Every batch has 4 rows, so the gradient graph compiled for loss_and_grads serves the
    training steps too: one compilation per graph (cold, ~30 s on a 2-core CPU, most of it
    inductor's one-time C++ setup). A smaller last batch would only add a recompile.
    """
    name, mode = "torch", "compile"
    ok, reason = impls.get(name).available("cpu", mode)
    if not ok:
        pytest.skip(reason)
    P, X, T = problem(n=8, seed=9)
    assert_same_grads(name, mode, P, X[:4], T[:4], "bce", "float64", "tanh")
    kw = dict(loss="bce", lr=0.5, epochs=2, batch_size=4, dtype="float64", seed=3,
              activation="tanh")
    P0, h0 = REF.train(P, X, T, **kw)
    P1, h1 = impls.get(name).train(P, X, T, mode=mode, **kw)
    assert_same_training(P1, h1, P0, h0, "float64", "torch compile")


# ---- threads ----------------------------------------------------------------------------
def test_torch_set_threads():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        impls.get("torch").set_threads(1)
        assert torch.get_num_threads() == 1
        assert impls.get("torch").info("cpu", "eager")["threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_jax_set_threads_leaves_flags_alone_once_xla_started(monkeypatch):
    # XLA reads XLA_FLAGS once, when its first backend starts: later changes would only
    # mislead the record.
    jax = pytest.importorskip("jax")
    jax.devices("cpu")
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/nowhere")
    impls.get("jax").set_threads(1)
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/nowhere"


@pytest.mark.slow
def test_jax_set_threads_before_start_sets_flags_xla_accepts():
    """In a fresh process, as the harness runs a cell: available, set_threads, then work.

    XLA aborts the whole process on an unknown flag, so the flag is checked by using it.
    """
    pytest.importorskip("jax")
    code = ("import os, impls; from tests.helpers import problem; jax = impls.get('jax'); "
            "assert jax.available('cpu')[0]; jax.set_threads(1); "
            "print(jax.loss_and_grads(*problem())[0]); print(os.environ['XLA_FLAGS'])")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    loss, flags = out.stdout.split("\n")[:2]
    assert float(loss) > 0
    assert "--xla_cpu_multi_thread_eigen=false" in flags
