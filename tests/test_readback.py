"""Every setting a run records is read back from the library after it took effect, never
derived from the mode's name (issue 20). On the CPU, with fakes where a GPU is needed:

    jax     the CPU dispatch each mode asks for, set before the CPU client exists and read back
            by behaviour (fresh processes); one trace per shape and mode; the matmul
            precision from the program XLA compiled
    torch   TF32 switches and NVIDIA_TF32_OVERRIDE; inductor's compile pool bounded and
            recorded; CUDA-graph skips counted with inductor's reasons; Triton's C toolchain
            in available()
    parsing the precision of every matmul in HLO, GPU HLO and StableHLO text
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import impls
from harness.measure import gpu_checks
from harness.measure.spec import Series
from impls import readback
from tests.helpers import ROOT, problem

# ---- jax: dispatch, set before the CPU client and read back -----------------------------------
# Each scenario needs a CPU client made afresh (JAX reads the switch only then): one process,
# clear_backends() between scenarios. "late" is the order before issue 20: the client made
# first (as _device did), the switch set after.
DISPATCH_SCRIPT = r"""
import json, sys
import jax
from jax.extend.backend import clear_backends
import impls
from impls import jax_impl
from tests.helpers import problem

P, X, T = problem(seed=1, dtype="float32")
jx, out = impls.get("jax"), {}
for name, mode, how in (("jit", "jit", "grads"), ("nojit", "nojit", "grads"),
                        ("jit-async", "jit-async", "grads"), ("session", "jit", "train"),
                        ("late", "jit", "late")):
    clear_backends()
    if how == "late":  # a fresh process: JAX's default switch, the client made before
        jax.config.update("jax_cpu_enable_async_dispatch", True)
        jax.devices("cpu")
    if how == "train":
        jx.train(P, X, T, mode=mode, dtype="float32", epochs=2)
    else:
        jx.loss_and_grads(P, X, T, mode=mode, dtype="float32")
    info = jx.info("cpu", mode)
    out[name] = [info["cpu_dispatch"], info["cpu_dispatch_evidence"]]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def dispatch():
    pytest.importorskip("jax")
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-c", DISPATCH_SCRIPT], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_jax_dispatch_is_what_each_mode_asks_and_is_read_back(dispatch):
    assert dispatch["jit"][0] == "synchronous", dispatch["jit"]
    assert dispatch["nojit"][0] == "synchronous", dispatch["nojit"]
    assert dispatch["session"][0] == "synchronous", dispatch["session"]  # train(): a session
    assert dispatch["jit-async"][0] == "asynchronous", dispatch["jit-async"]
    assert dispatch["jit"][1].startswith("0 of 3 calls returned before")


def test_a_switch_set_too_late_is_recorded_as_what_happened_and_flagged(dispatch):
    # The old order: the CPU client made first, so jit runs asynchronously. The record says
    # so (read back), and the check of the record fails it.
    assert dispatch["late"][0] == "asynchronous", dispatch["late"]
    info = {"cpu_dispatch": dispatch["late"][0], "cpu_dispatch_evidence": dispatch["late"][1]}
    (found,) = gpu_checks.of_record(Series("jax", "jit", "cpu"), info)
    assert found.severity == "fail" and found.check == "dispatch"
    ok = {"cpu_dispatch": dispatch["jit"][0]}
    assert gpu_checks.of_record(Series("jax", "jit", "cpu"), ok) == []


def test_returns_before_ready_decides_by_behaviour():
    sync = readback.returns_before_ready(lambda: (1, lambda out: True, lambda out: None))
    assert not sync["asynchronous"] and sync["unready"] == 0
    states = iter([True, False, True])
    mixed = readback.returns_before_ready(lambda: (1, lambda out: next(states), lambda o: None))
    assert mixed["asynchronous"] and mixed["unready"] == 1  # one unready call settles it


# ---- jax: one trace per shape and mode ---------------------------------------------------------
@pytest.fixture
def traces(monkeypatch):
    pytest.importorskip("jax")
    from impls import jax_impl

    clear = getattr(jax_impl._functions, "cache_clear", lambda: None)  # (no cache: a finding)
    clear()
    seen = []
    real = jax_impl.loss_fn

    def counted(*args, **kwargs):  # runs once per trace under jit (every call without)
        seen.append(args[1].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(jax_impl, "loss_fn", counted)
    yield seen
    clear()  # no jitted function that traced the counter lives on


def test_jax_loss_and_grads_and_train_trace_once_per_shape_and_mode(traces):
    jx = impls.get("jax")
    P, X, T = problem(n=12, seed=4)
    for _ in range(3):
        jx.loss_and_grads(P, X, T, mode="jit", dtype="float64")
    assert len(traces) == 1, traces
    jx.loss_and_grads(P, X[:6], T[:6], mode="jit", dtype="float64")  # a new shape: one more
    jx.loss_and_grads(P, X[:6], T[:6], mode="jit", dtype="float64")
    assert len(traces) == 2, traces
    kw = dict(loss="mse", lr=0.5, epochs=3, batch_size=4, dtype="float64", mode="jit")
    for _ in range(2):  # two sessions, nine steps, one shape: one trace of the step
        jx.train(P, X, T, **kw)
    assert len(traces) == 3, traces
    jx.train(P, X, T, **{**kw, "mode": "jit-async"})  # another mode: its own function
    assert len(traces) == 4, traces


# ---- jax: the matmul precision, from the compiled program --------------------------------------
def test_jax_precision_is_read_from_the_program_that_ran(monkeypatch):
    pytest.importorskip("jax")
    from jax import lax

    from impls import jax_impl

    monkeypatch.setattr(jax_impl, "_RAN", {})  # this test's runs only, none left behind
    P, X, T = problem(seed=5, dtype="float32")
    jx = impls.get("jax")
    jx.loss_and_grads(P, X, T, mode="jit", dtype="float32")
    info = jx.info("cpu", "jit")
    assert info["matmul_precisions"] == ["highest"] and info["tf32"] is False
    assert info["matmul_precisions_from"] == "the compiled program of this process's last call"
    # A planted bug: jit's matmuls lose their HIGHEST. The record shows it (read from the
    # program, not from the mode), and on a GPU the check of the record fails it.
    jax_impl._functions.cache_clear()
    monkeypatch.setattr(jax_impl, "_precision", lambda mode: lax.Precision.DEFAULT)
    try:
        jx.loss_and_grads(P, X, T, mode="jit", dtype="float32")
        assert jx.info("cpu", "jit")["matmul_precisions"] == ["default"]
        monkeypatch.setattr(jax_impl, "_device", lambda device: type(
            "Gpu", (), {"platform": "gpu", "device_kind": "Fake"})())
        monkeypatch.delenv("NVIDIA_TF32_OVERRIDE", raising=False)
        gpu = jx.info("gpu", "jit")
        assert gpu["tf32"] is True
        (found,) = gpu_checks.of_record(Series("jax", "jit", "gpu"), gpu)
        assert found.check == "precision" and "full float32" in found.text
    finally:
        jax_impl._functions.cache_clear()


@pytest.mark.parametrize("text, expected", [
    ('%dot.1 = f32[2,2] dot(%a, %b), lhs_contracting_dims={1}, '
     'operand_precision={highest,highest}, metadata={}', ["highest"]),
    ("%dot.2 = f32[2,2] dot(%a, %b), lhs_contracting_dims={1}", ["default"]),
    ('%gemm = (f32[2,2], s8[0]) custom-call(%a, %b), custom_call_target="__cublas$gemm", '
     'backend_config={"gemm_backend_config":{"precision_config":{"operand_precision":'
     '["DEFAULT","DEFAULT"]},"epilogue":"DEFAULT"}}', ["default"]),
    ('%lt = custom-call(%a), custom_call_target="__cublas$lt$matmul", backend_config={'
     '"precision_config":{"operand_precision":["HIGHEST","HIGHEST"]}}', ["highest"]),
    ("%0 = stablehlo.dot_general %a, %b, contracting_dims = [1] x [0], "
     "precision = [HIGHEST, HIGHEST] : (tensor<2x2xf32>) -> tensor<2x2xf32>", ["highest"]),
    ("%1 = stablehlo.add %a, %b : tensor<2xf32>", []),
    ("ROOT dot = f32[2] dot(a, b), lhs_contracting_dims={1}, algorithm=dot_tf32_tf32_f32",
     ["tf32_tf32_f32"]),
    ('%g = custom-call(%a, %b), custom_call_target="__cublas$gemm", backend_config={"gemm_backend'
     '_config":{"precision_config":{"operand_precision":["DEFAULT","DEFAULT"],"algorithm":'
     '"ALG_DOT_F32_F32_F32"}}}', ["f32_f32_f32"]),  # the algorithm decides, not DEFAULT
    ('%g = custom-call(%a, %b), custom_call_target="__cublas$gemm", backend_config={"gemm_backend'
     '_config":{"precision_config":{"operand_precision":["HIGHEST","HIGHEST"],"algorithm":'
     '"ALG_UNSET"}}}', ["highest"]),
])
def test_hlo_precisions_reads_every_matmul(text, expected):
    assert readback.hlo_precisions(text) == expected


# ---- torch: switches read back, compile pool, CUDA-graph skips, toolchain ------------------------
@pytest.fixture
def torch_gpu(monkeypatch):
    """The real torch with its CUDA availability faked, its global switches restored after."""
    torch = pytest.importorskip("torch")
    from impls import torch_impl

    old = torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "Fake H200")
    monkeypatch.delenv("NVIDIA_TF32_OVERRIDE", raising=False)
    yield torch, torch_impl
    torch.backends.cuda.matmul.allow_tf32 = old[0]
    torch.set_float32_matmul_precision(old[1])


def test_torch_tf32_is_read_back_from_the_switches_not_the_mode(torch_gpu, monkeypatch):
    torch, torch_impl = torch_gpu
    eager = Series("torch", "eager", "gpu")
    torch_impl._setup("gpu", "eager")
    info = torch_impl.info("gpu", "eager")
    assert info["tf32"] is False and gpu_checks.of_record(eager, info) == []
    torch.backends.cuda.matmul.allow_tf32 = True  # something flips it after _setup
    info = torch_impl.info("gpu", "eager")
    assert info["tf32"] is True and info["matmul_precision"].startswith("tf32")
    assert [f.check for f in gpu_checks.of_record(eager, info)] == ["precision"]
    torch_impl._setup("gpu", "eager-tf32")
    monkeypatch.setenv("NVIDIA_TF32_OVERRIDE", "0")  # cuBLAS: TF32 off, whatever is asked
    info = torch_impl.info("gpu", "eager-tf32")
    assert info["tf32"] is False and info["tf32_override"] == "0" and info["allow_tf32"]
    (found,) = gpu_checks.of_record(Series("torch", "eager-tf32", "gpu"), info)
    assert "NVIDIA_TF32_OVERRIDE=0" in found.text


def test_torch_compile_threads_are_bounded_by_the_budget_and_recorded(torch_gpu, monkeypatch):
    torch, torch_impl = torch_gpu
    import torch._inductor.config as config

    old = config.compile_threads  # a config module: set and restored by hand, not monkeypatch
    try:
        config.compile_threads = 16
        monkeypatch.delenv("TORCHINDUCTOR_COMPILE_THREADS", raising=False)
        monkeypatch.setattr(torch_impl, "_BUDGET", {})

        def bound():  # what torch_impl._compiled does before its first compile
            readback.bound_compile_threads(config, torch_impl._BUDGET.get("threads"))

        bound()  # no budget given: torch's own choice stands
        assert config.compile_threads == 16
        monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
        monkeypatch.setattr(torch, "set_num_interop_threads", lambda n: None)
        torch_impl.set_threads(2)
        bound()
        assert config.compile_threads == 2
        info = torch_impl.info("gpu", "compile")
        assert info["compile_threads"] == 2 and info["compile_threads_from"] == "set_threads(2)"
        config.compile_threads = 3
        monkeypatch.setenv("TORCHINDUCTOR_COMPILE_THREADS", "3")  # the caller's choice stands
        bound()
        info = torch_impl.info("gpu", "compile")
        assert info["compile_threads"] == 3
        assert info["compile_threads_from"] == "TORCHINDUCTOR_COMPILE_THREADS=3"
        (found,) = gpu_checks.of_record(Series("torch", "compile", "gpu"), info,
                                        compile_threads_bound=2)
        assert found.check == "compile threads" and found.severity == "warn"
    finally:
        config.compile_threads = old


def test_torch_records_cuda_graph_skips_with_inductors_reasons(torch_gpu, monkeypatch):
    torch, torch_impl = torch_gpu
    from torch._dynamo.utils import counters
    from torch._inductor.cudagraph_utils import log_cudagraph_skip_and_bump_counter

    monkeypatch.setitem(counters["inductor"], "cudagraph_skips", 0)
    handler = readback.CudaGraphSkips.attached()
    monkeypatch.setattr(handler, "reasons", [])
    torch_impl._setup("gpu", "reduce-overhead")
    graphs = Series("torch", "reduce-overhead", "gpu")
    info = torch_impl.info("gpu", "reduce-overhead")
    assert info["cudagraph_skips"] == 0 and gpu_checks.of_record(graphs, info) == []
    # inductor's own reporting function, as it calls it when it gives CUDA graphs up
    log_cudagraph_skip_and_bump_counter("skipping cudagraphs due to mutated inputs (1 instances)")
    info = torch_impl.info("gpu", "reduce-overhead")
    assert info["cudagraph_skips"] == 1
    assert info["cudagraph_skip_reasons"] == ["skipping cudagraphs due to mutated inputs (1 "
                                              "instances)"]
    (found,) = gpu_checks.of_record(graphs, info)
    assert found.check == "CUDA graphs" and "mutated inputs" in found.text


def test_compiled_modes_on_a_gpu_need_triton_s_c_toolchain(torch_gpu, monkeypatch, tmp_path):
    torch, torch_impl = torch_gpu
    from torch.utils import _triton

    monkeypatch.setattr(_triton, "has_triton", lambda: True)
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(readback.shutil, "which", lambda name: None)  # no gcc, no clang
    ok, why = torch_impl.available("gpu", "compile")
    assert not ok and "no C compiler" in why
    assert torch_impl.available("gpu", "eager") == (True, "")  # eager needs no launcher
    monkeypatch.setenv("CC", "/nowhere/cc -O2")
    assert "CC='/nowhere/cc -O2' is not an executable" in torch_impl.available("gpu",
                                                                               "reduce-overhead")[1]
    monkeypatch.setattr(readback.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(readback.sysconfig, "get_paths", lambda scheme=None: {
        "include": str(tmp_path)})  # no Python.h there
    assert "no Python.h in" in torch_impl.available("gpu", "compile")[1]
    (tmp_path / "Python.h").write_text("")
    assert torch_impl.available("gpu", "compile") == (True, "")
    assert readback.c_toolchain() == ""


def test_torch_cpu_info_has_no_tf32(torch_gpu):
    torch, torch_impl = torch_gpu
    torch_impl._setup("cpu", "eager")
    info = torch_impl.info("cpu", "eager")
    assert info["tf32"] is False and info["matmul_precision"] == "highest (full float32)"
    assert np.isfinite(info["threads"])
