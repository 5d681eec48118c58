"""The GPU implementations and modes, where a GPU exists; and the CuPy wiring, anywhere.

    .venv/bin/pytest tests/test_gpu.py -q -rs    # -rs prints why each GPU test skipped

On a machine without a CUDA GPU every `gpu` test skips with the reason the
implementation gives from `available("gpu", mode)`. The last tests run on any CPU:
they swap a NumPy-backed stand-in for the `cupy` module to prove that cupy_impl runs
the very functions of impls/handwritten.py, so its math is numpy's by construction.
"""

from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest

# JAX would otherwise take 75% of GPU memory at start-up, leaving torch and CuPy little;
# only effective if nothing initialised JAX's GPU backend before this module.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import impls  # noqa: E402
from impls import (  # noqa: E402
    contract,  # noqa: E402
    cupy_impl,
    handwritten,
    numpy_impl,
)
from tests.helpers import assert_same_grads, assert_same_training, problem  # noqa: E402

REF = impls.get("numpy")

GPU_CELLS = [pytest.param(n, m, id=f"{n}-{m}") for n in impls.names() if n != "numpy"
             for m in impls.get(n).modes]


def require_gpu(name, mode):
    ok, reason = impls.get(name).available("gpu", mode)
    if not ok:
        pytest.skip(f"{name} ({mode}) on gpu: {reason}")
    return impls.get(name)


# ---- on a GPU: the same numbers as numpy (TF32 off), timing-only modes run -----------
@pytest.mark.gpu
@pytest.mark.parametrize("name, mode", GPU_CELLS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", contract.LOSSES)
def test_gpu_grads_match_numpy(name, mode, dtype, loss):
    impl = require_gpu(name, mode)
    if mode in impl.timing_only:
        pytest.skip(f"{mode} is timing only (TF32 matmuls carry ~1e-3 relative error)")
    P, X, T = problem(n=11, f=5, h=7, k=3, seed=1)
    for activation in contract.ACTIVATIONS:
        assert_same_grads(name, mode, P, X, T, loss, dtype, activation, device="gpu")


@pytest.mark.gpu
@pytest.mark.parametrize("name, mode", GPU_CELLS)
@pytest.mark.parametrize("batch_size", [None, 4], ids=["full", "mini4"])
def test_gpu_train_matches_numpy(name, mode, batch_size):
    impl = require_gpu(name, mode)
    P, X, T = problem(n=11, seed=2, dtype="float32")
    kw = dict(loss="bce", lr=0.5, epochs=3, batch_size=batch_size, seed=3)
    P0, h0 = REF.train(P, X, T, dtype="float64", **kw)
    P1, h1 = impl.train(P, X, T, mode=mode, device="gpu", dtype="float32", **kw)
    assert len(h1) == 3
    if mode in impl.timing_only:  # TF32: runs and stays near, not checked to float32 accuracy
        np.testing.assert_allclose(h1, h0, rtol=1e-2)
        return
    assert_same_training(P1, h1, P0, h0, "float32", f"{name}/{mode} gpu")


@pytest.mark.gpu
@pytest.mark.parametrize("name, mode", GPU_CELLS)
def test_gpu_session_syncs_and_records_the_device(name, mode):
    impl = require_gpu(name, mode)
    P, X, T = problem(seed=3)
    s = impl.session(P, X, T, dtype="float32", device="gpu", mode=mode)
    losses = [s.step(b) for _ in range(3) for b in s.batches(None)]
    s.sync()
    assert all(np.isfinite(s.value(v)) for v in losses)
    info = impl.info("gpu", mode)
    assert info["device"] and info["device"] != "cpu"
    expected = "tf32" if mode in impl.timing_only else "highest"
    assert info["matmul_precision"].startswith(expected), info["matmul_precision"]


@pytest.mark.gpu
@pytest.mark.parametrize("name, mode", GPU_CELLS)
def test_gpu_session_reports_its_peak_memory(name, mode):
    impl = require_gpu(name, mode)
    P, X, T = problem(n=256, f=64, h=128, k=3, seed=4)
    s = impl.session(P, X, T, dtype="float32", device="gpu", mode=mode)
    for _ in range(3):
        s.step(s.batches(None)[0])
    s.sync()
    peak = s.peak_memory()
    assert isinstance(peak, int) and peak > 0, peak
    arrays = sum(np.asarray(a, dtype=np.float32).nbytes for a in (*P.values(), X, T))
    assert peak >= arrays, (peak, arrays)  # at least the session's own device arrays


# ---- on any CPU: peak_memory() is None where the framework has no device counter -----
@pytest.mark.parametrize("name, mode", [("torch", "eager"), ("jax", "jit"), ("jax", "nojit")])
def test_cpu_session_has_no_peak_memory(name, mode):
    impl = impls.get(name)
    ok, reason = impl.available("cpu", mode)
    if not ok:
        pytest.skip(f"{name} ({mode}) on cpu: {reason}")
    P, X, T = problem(seed=7)
    s = impl.session(P, X, T, dtype="float32", device="cpu", mode=mode)
    s.step(s.batches(None)[0])
    s.sync()
    assert s.peak_memory() is None  # the memory pass then measures host RSS instead


# ---- on any CPU: cupy_impl is handwritten.py with xp=cupy --------------------------
def fake_cupy() -> types.ModuleType:
    """A `cupy` stand-in backed by NumPy: device arrays are NumPy arrays, copies are copies."""
    cp = types.ModuleType("cupy")
    cp.__getattr__ = lambda attr: getattr(np, attr)  # exp, tanh, sum, ... (PEP 562)
    cp.__version__ = "fake"
    cp.asarray = lambda a, dtype=None: np.array(a, dtype=dtype, copy=True)  # host -> device
    cp.asnumpy = lambda a: np.array(a, copy=True)  # device -> host
    runtime = types.SimpleNamespace(
        CUDARuntimeError=RuntimeError, getDeviceCount=lambda: 1,
        getDeviceProperties=lambda i: {"name": b"Fake GPU"},
        runtimeGetVersion=lambda: 12000, driverGetVersion=lambda: 12000)
    stream = types.SimpleNamespace(synchronize=lambda: None)
    cp.cuda = types.SimpleNamespace(runtime=runtime, get_current_stream=lambda: stream,
                                    Device=lambda: types.SimpleNamespace(id=0))
    return cp


@pytest.fixture
def spy_cupy(monkeypatch):
    """Install the stand-in as `cupy`, and record the `xp` every handwritten call receives."""
    cp = fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cp)
    seen = []
    for fn_name in ("grads", "step"):
        original = getattr(handwritten, fn_name)

        def spy(xp, *args, _original=original, **kwargs):
            seen.append(xp)
            return _original(xp, *args, **kwargs)

        monkeypatch.setattr(handwritten, fn_name, spy)
    return cp, seen


def test_cupy_impl_has_no_math_of_its_own():
    assert cupy_impl.handwritten is handwritten
    for fn_name in ("sigmoid", "softplus", "act_forward", "act_backward"):
        assert not hasattr(cupy_impl, fn_name), f"cupy_impl defines its own {fn_name}"


@pytest.mark.parametrize("loss", contract.LOSSES)
@pytest.mark.parametrize("activation", contract.ACTIVATIONS)
def test_cupy_impl_is_handwritten_with_xp_cupy(spy_cupy, loss, activation):
    cp, seen = spy_cupy
    impl = impls.get("cupy")
    assert impl.available("gpu") == (True, "")
    P, X, T = problem(seed=5)
    L0, G0 = REF.loss_and_grads(P, X, T, loss=loss, activation=activation)
    seen.clear()
    L1, G1 = impl.loss_and_grads(P, X, T, loss=loss, activation=activation, device="gpu")
    assert seen == [cp], "cupy_impl.loss_and_grads must call handwritten with xp=cupy"
    assert L1 == L0  # the same functions on the same NumPy: bit for bit
    for k in contract.PARAM_NAMES:
        np.testing.assert_array_equal(G1[k], G0[k])

    kw = dict(loss=loss, activation=activation, lr=0.5, epochs=3, batch_size=4, dtype="float32")
    P0, h0 = REF.train(P, X, T, **kw)
    seen.clear()
    P1, h1 = impl.train(P, X, T, device="gpu", **kw)
    # 3 epochs of 11 rows in batches of 4: 9 steps, each one handwritten.step, all with xp=cupy.
    assert len(seen) == 9 and all(xp is cp for xp in seen), "cupy steps must use xp=cupy"
    assert h1 == h0
    for k in contract.PARAM_NAMES:
        np.testing.assert_array_equal(P1[k], P0[k])
        assert P1[k].dtype == np.float32
    assert impl.info("gpu", "default")["device"] == "Fake GPU"


def test_handwritten_on_numpy_is_numpy_impl():
    P, X, T = problem(seed=6)
    for loss in contract.LOSSES:
        for activation in contract.ACTIVATIONS:
            L0, G0 = handwritten.grads(np, P, X, T, loss, activation)
            L1, G1 = numpy_impl.IMPL.loss_and_grads(P, X, T, loss=loss, activation=activation)
            assert L1 == float(L0)
            for k in contract.PARAM_NAMES:
                np.testing.assert_array_equal(G1[k], G0[k])


def test_cupy_peak_memory_is_what_the_default_pool_holds(spy_cupy):
    cp, _ = spy_cupy
    held = {"bytes": 4096}
    cp.get_default_memory_pool = lambda: types.SimpleNamespace(total_bytes=lambda: held["bytes"])
    P, X, T = problem(seed=8)
    s = impls.get("cupy").session(P, X, T, dtype="float32", device="gpu")
    assert s.peak_memory() == 4096
    held["bytes"] = 0  # CuPy's allocator switched away from the pool: nothing to report
    assert s.peak_memory() is None
