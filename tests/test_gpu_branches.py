"""The CUDA-only branches that can be tested without a GPU, with fakes, and a rehearsal of
`make gpu` on a machine without one. Nothing here pretends a GPU ran: each test names what
it fakes (CUDA calls of the real torch, JAX's device object, a NumPy-backed `cupy`), and
what only a GPU run can show is listed in the README ("GPU").

    torch   _setup's precision switches; available()'s reasons; info(); a session on
            "gpu" (tensors on the CPU, CUDA calls faked): reset of the peak counter, static
            addresses and CUDA-graph step marks for reduce-overhead, outputs cloned
    jax     the precision every matmul carries (from the real jaxpr); info(); peak_memory()
    cupy    CUPY_TF32 read by info(); available()'s reasons
    harness the GPU environment (no JAX preallocation), the GPU memory hook, the GPU peak's
            choice of implementation, the check's GPU shards, a GPU-labelled bench and the
            gpu profile with every GPU cell unavailable
"""

from __future__ import annotations

import dataclasses
import os
import sys
import textwrap
import types

import numpy as np
import pytest

import impls
from harness import cli
from harness.bench import checkrun, profiles
from harness.bench.plan import plan
from harness.measure import memory, peak
from harness.measure.launch import cell_env
from harness.measure.peer import runnable
from harness.measure.spec import Job, RunSettings, Series
from harness.measure.timing import Policy
from harness.store import RunFolder
from impls import contract, cupy_impl
from tests.helpers import problem
from tests.test_gpu import fake_cupy

SETTINGS = RunSettings(threads=1, cpus=None, loss="bce", lr=0.01, seed=0, activation="sigmoid",
                       policy=Policy(), time_limit_s=60.0, peak_n=64, peak_n_cpu=64,
                       check=True, check_timeout_s=120.0, wall_budget_s=None)

# An implementation file the tests write: CuPy's implementation, named "fakecupy", on a `cupy`
# backed by NumPy (as tests/test_gpu.py's fake_cupy, whose module cannot be imported from an
# implementation file: it asks the registry for numpy at import), with a pool holding 1 MiB.
FAKE_CUPY_IMPL = textwrap.dedent('''
    """Test double: cupy_impl on a NumPy-backed `cupy` (no GPU runs)."""
    import dataclasses
    import os
    import sys
    import types

    import numpy as np

    cp = types.ModuleType("cupy")
    cp.__getattr__ = lambda attr: getattr(np, attr)
    cp.__version__ = "fake"
    cp.asarray = lambda a, dtype=None: np.array(a, dtype=dtype, copy=True)
    cp.asnumpy = lambda a: np.array(a, copy=True)
    runtime = types.SimpleNamespace(
        CUDARuntimeError=RuntimeError, getDeviceCount=lambda: 1,
        getDeviceProperties=lambda i: {"name": b"Fake GPU"},
        runtimeGetVersion=lambda: 12000, driverGetVersion=lambda: 12000)
    stream = types.SimpleNamespace(synchronize=lambda: None)
    cp.cuda = types.SimpleNamespace(runtime=runtime, get_current_stream=lambda: stream,
                                    Device=lambda: types.SimpleNamespace(id=0))
    cp.get_default_memory_pool = lambda: types.SimpleNamespace(total_bytes=lambda: 2**20)
    # CuPy's compute type (cupy/_core/_routines_linalg.pyx): CUPY_TF32 read at the first matmul
    linalg = types.ModuleType("cupy._core._routines_linalg")
    chosen = {}
    linalg.get_compute_type = lambda dtype: chosen.setdefault(
        "f32", 7 if int(os.environ.get("CUPY_TF32", "0") or "0") > 0 else 1)
    linalg.compute_type_to_str = lambda t: {1: "COMPUTE_TYPE_DEFAULT", 7: "COMPUTE_TYPE_TF32"}[t]
    cp._core = types.ModuleType("cupy._core")
    cp._core._routines_linalg = linalg
    sys.modules.update({"cupy": cp, "cupy._core": cp._core,
                        "cupy._core._routines_linalg": linalg})
    from impls import cupy_impl  # noqa: E402

    IMPL = dataclasses.replace(cupy_impl.IMPL, name="fakecupy",
                               description="cupy_impl on a NumPy-backed fake cupy (tests)")
''')


def fake_cupy_impl(folder) -> str:
    """Write the "fakecupy" implementation file into `folder`; its path (BACKPROP_BENCH_IMPLS)."""
    path = folder / "fakecupy_impl.py"
    path.write_text(FAKE_CUPY_IMPL)
    return str(path)


# ---- torch: the real library, its CUDA calls faked ------------------------------------------
@pytest.fixture
def torch_flags():
    """The real torch, with its global matmul switches restored after the test."""
    torch = pytest.importorskip("torch")
    old = torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()
    yield torch
    torch.backends.cuda.matmul.allow_tf32 = old[0]
    torch.set_float32_matmul_precision(old[1])


@pytest.fixture
def fake_cuda(torch_flags, monkeypatch):
    """torch_impl on "gpu" with tensors on the CPU: every CUDA call it makes is a recorded fake,
    and torch.compile is replaced by a stand-in that returns the function (the mode recorded)."""
    torch = torch_flags
    from impls import torch_impl

    calls = []
    monkeypatch.setattr(torch_impl, "_tensor", lambda a, dev, requires_grad=False:
                        torch.tensor(a, requires_grad=requires_grad))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda dev: calls.append(
        ("reset_peak", str(dev))))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda dev: 12345)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: calls.append(("sync",)))
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin",
                        lambda: calls.append(("mark_step",)))
    monkeypatch.setattr(torch._dynamo, "mark_static_address",
                        lambda p: calls.append(("static", tuple(p.shape))))

    def compiled(fn, mode):
        calls.append(("compile", fn.__name__, mode))
        if mode != "reduce-overhead" or fn.__name__ != "step":
            return fn
        out = {}

        def replay(*args):  # a CUDA graph's output lives in one buffer, overwritten each replay
            value = fn(*args)
            out.setdefault("buf", torch.empty_like(value)).copy_(value)
            return out["buf"]
        return replay

    monkeypatch.setattr(torch_impl, "_compiled", compiled)
    return torch, torch_impl, calls


def test_torch_setup_switches_tf32_only_for_the_tf32_mode(torch_flags):
    torch = torch_flags
    from impls import torch_impl

    for mode, tf32, precision in (("eager-tf32", True, "high"), ("eager", False, "highest"),
                                  ("reduce-overhead", False, "highest")):
        assert torch_impl._setup("gpu", mode).type == "cuda"
        assert torch.backends.cuda.matmul.allow_tf32 is tf32, mode
        assert torch.get_float32_matmul_precision() == precision, mode
    torch.set_float32_matmul_precision("high")
    assert torch_impl._setup("cpu", "eager").type == "cpu"
    assert torch.get_float32_matmul_precision() == "highest"


def test_torch_available_says_why_it_cannot_run_on_a_gpu(torch_flags, monkeypatch):
    torch = torch_flags
    from torch.utils import _triton

    from impls import torch_impl

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    assert "this torch build is CPU-only" in torch_impl.available("gpu", "eager")[1]
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    assert "no CUDA device" in torch_impl.available("gpu", "eager")[1]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(_triton, "has_triton", lambda: False)
    assert torch_impl.available("gpu", "eager") == (True, "")
    for mode in ("compile", "reduce-overhead"):
        assert "needs triton" in torch_impl.available("gpu", mode)[1]
    monkeypatch.setattr(_triton, "has_triton", lambda: True)
    assert torch_impl.available("gpu", "reduce-overhead") == (True, "")
    assert torch_impl.available("cpu", "reduce-overhead") == (False, "CUDA graphs need a GPU")
    assert torch_impl.available("cpu", "eager-tf32") == (False, "TF32 is a GPU matmul mode")


def test_torch_info_on_a_gpu_records_precision_device_and_compile_cache(torch_flags,
                                                                       monkeypatch):
    torch = torch_flags
    from impls import torch_impl

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "Fake H100")
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/tmp/fresh")
    monkeypatch.delenv("NVIDIA_TF32_OVERRIDE", raising=False)
    torch_impl._setup("gpu", "eager-tf32")  # info() reads the switches as they stand
    tf32 = torch_impl.info("gpu", "eager-tf32")
    assert tf32["matmul_precision"].startswith("tf32") and tf32["tf32"] is True
    assert tf32["allow_tf32"] is True and tf32["float32_matmul_precision"] == "high"
    assert tf32["device"] == "Fake H100"
    assert tf32["cuda"] == "12.4" and "inductor_cache_dir" not in tf32
    torch_impl._setup("gpu", "reduce-overhead")
    graphs = torch_impl.info("gpu", "reduce-overhead")
    assert graphs["matmul_precision"].startswith("highest") and graphs["tf32"] is False
    assert graphs["inductor_cache_dir"] == "/tmp/fresh"
    assert isinstance(graphs["cudagraph_skips"], int) and "compile_threads" in graphs


def test_reduce_overhead_marks_each_step_and_keeps_a_copy_of_each_loss(fake_cuda):
    torch, torch_impl, calls = fake_cuda
    P, X, T = problem(seed=11, dtype="float32")
    kw = dict(loss="bce", lr=0.5, dtype="float32", activation="sigmoid")
    s = torch_impl.TorchSession(P, X, T, device="gpu", mode="reduce-overhead", **kw)
    assert calls[0] == ("reset_peak", "cuda")  # peak_memory() counts from the session's start
    assert [c for c in calls if c[0] == "static"] == [("static", P[k].shape) for k in P]
    assert ("compile", "step", "reduce-overhead") in calls
    assert torch.backends.cuda.matmul.allow_tf32 is False
    calls.clear()
    batch = s.batches(None)[0]
    losses = [s.step(batch) for _ in range(3)]
    assert calls == [("mark_step",)] * 3  # a new CUDA-graph iteration before every replay
    values = [float(v) for v in losses]  # read after the three replays: copies survive
    assert len(set(values)) == 3, values
    s.sync()
    assert calls[-1] == ("sync",) and s.peak_memory() == 12345
    ref = impls.get("numpy")
    P0, h0 = ref.train(P, X, T, epochs=3, **kw)
    np.testing.assert_allclose(values, h0, rtol=1e-5)
    for k in contract.PARAM_NAMES:
        np.testing.assert_allclose(s.params()[k], P0[k], rtol=1e-4, atol=1e-6)


def test_eager_on_a_gpu_neither_marks_nor_copies(fake_cuda):
    torch, torch_impl, calls = fake_cuda
    P, X, T = problem(seed=12, dtype="float32")
    s = torch_impl.TorchSession(P, X, T, device="gpu", mode="eager", loss="mse", lr=0.1,
                                dtype="float32", activation="tanh")
    calls.clear()
    s.step(s.batches(None)[0])
    assert calls == []  # no graph marks, no copies, no sync inside a step


def test_reduce_overhead_loss_and_grads_marks_the_step_and_matches_numpy(fake_cuda):
    torch, torch_impl, calls = fake_cuda
    P, X, T = problem(seed=13)
    L, G = torch_impl.loss_and_grads(P, X, T, loss="mse", dtype="float64", device="gpu",
                                     mode="reduce-overhead", activation="relu")
    assert ("compile", "grads", "reduce-overhead") in calls and ("mark_step",) in calls
    L0, G0 = impls.get("numpy").loss_and_grads(P, X, T, loss="mse", activation="relu")
    assert L == pytest.approx(L0, rel=1e-12)
    for k in contract.PARAM_NAMES:
        np.testing.assert_allclose(G[k], G0[k], rtol=1e-10, atol=1e-14)


# ---- jax: the real library (CPU), its GPU device faked -----------------------------------
def test_every_jax_matmul_carries_the_modes_precision():
    jax = pytest.importorskip("jax")
    from impls import jax_impl

    P, X, T = problem(seed=14, dtype="float32")
    for mode, expected in (("jit", "HIGHEST"), ("nojit", "HIGHEST"), ("jit-tf32", "DEFAULT")):
        assert jax_impl._precision(mode).name == expected
        grads, step = jax_impl._functions("bce", "sigmoid", mode)
        for fn, args in ((grads, (P, X, T)), (step, (P, X, T, np.float32(0.1)))):
            text = str(jax.make_jaxpr(fn)(*args))
            found = text.count("precision=(Precision.")
            assert found >= 2 and text.count(f"precision=(Precision.{expected}") == found, mode


class FakeJaxDevice:
    platform, device_kind = "gpu", "Fake H100"

    def __init__(self, stats=None, fails=False):
        self.stats, self.fails = stats, fails

    def memory_stats(self):
        if self.fails:
            raise RuntimeError("no statistics on this backend")
        return self.stats


def test_jax_info_and_peak_memory_on_a_gpu_device(monkeypatch):
    pytest.importorskip("jax")
    from impls import jax_impl

    monkeypatch.setattr(jax_impl, "_device", lambda device: FakeJaxDevice())
    monkeypatch.setattr(jax_impl, "_RAN", {})  # no run here: each mode's function is lowered
    monkeypatch.delenv("NVIDIA_TF32_OVERRIDE", raising=False)
    tf32 = jax_impl.info("gpu", "jit-tf32")  # the precision read from the lowered program
    assert tf32["matmul_precision"].startswith("tf32") and tf32["tf32"] is True
    assert tf32["matmul_precisions"] == ["default"]
    info = jax_impl.info("gpu", "jit")
    assert info["matmul_precision"].startswith("highest") and info["device"] == "Fake H100"
    assert info["backend"] == "gpu" and info["tf32"] is False and "cpu_dispatch" not in info
    monkeypatch.setenv("NVIDIA_TF32_OVERRIDE", "0")  # cuBLAS keeps full float32 whatever asked
    off = jax_impl.info("gpu", "jit-tf32")
    assert off["tf32"] is False and "NVIDIA_TF32_OVERRIDE=0" in off["matmul_precision"]
    s = jax_impl.JaxSession.__new__(jax_impl.JaxSession)
    for dev, expected in ((FakeJaxDevice({"peak_bytes_in_use": 4096}), 4096),
                          (FakeJaxDevice({}), None), (FakeJaxDevice(None), None),
                          (FakeJaxDevice(fails=True), None)):
        s.dev = dev
        assert s.peak_memory() == expected


def test_jax_without_a_gpu_says_so():
    jax = pytest.importorskip("jax")
    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("JAX sees a GPU here")
    from impls import jax_impl

    ok, why = jax_impl.available("gpu", "jit")
    assert not ok and why.startswith("JAX sees no GPU")
    assert jax_impl.available("cpu", "jit-tf32") == (False, "TF32 is a GPU matmul mode")


# ---- cupy: the NumPy-backed stand-in ----------------------------------------------------
def install_cupy(monkeypatch, cp=None):
    """The NumPy-backed `cupy`, with CuPy's compute-type bookkeeping as CuPy keeps it
    (cupy/_core/_routines_linalg.pyx): decided from CUPY_TF32 at the first matmul, then fixed."""
    cp = cp or fake_cupy()
    linalg = types.ModuleType("cupy._core._routines_linalg")
    chosen = {}

    def get_compute_type(dtype):
        if "f32" not in chosen:  # int(): "yes" raises ValueError, as in CuPy
            chosen["f32"] = 7 if int(os.environ.get("CUPY_TF32", "0") or "0") > 0 else 1
        return chosen["f32"]

    linalg.get_compute_type = get_compute_type
    linalg.compute_type_to_str = lambda t: {1: "COMPUTE_TYPE_DEFAULT", 7: "COMPUTE_TYPE_TF32"}[t]
    cp._core = types.ModuleType("cupy._core")
    cp._core._routines_linalg = linalg
    for name, module in (("cupy", cp), ("cupy._core", cp._core),
                         ("cupy._core._routines_linalg", linalg)):
        monkeypatch.setitem(sys.modules, name, module)
    return cp, linalg


@pytest.mark.parametrize("value, tf32", [("1", True), ("2", True), ("0", False), ("", False),
                                         (None, False)])
def test_cupy_info_reads_back_cupys_compute_type(monkeypatch, value, tf32):
    install_cupy(monkeypatch)
    monkeypatch.delenv("NVIDIA_TF32_OVERRIDE", raising=False)
    if value is None:
        monkeypatch.delenv("CUPY_TF32", raising=False)
    else:
        monkeypatch.setenv("CUPY_TF32", value)
    info = cupy_impl.info("gpu", "default")
    assert info["matmul_precision"].startswith("tf32" if tf32 else "highest")
    assert info["tf32"] is tf32 and info["cupy_tf32_env"] == value
    assert info["device"] == "Fake GPU" and info["cuda_runtime"] == 12000


def test_cupy_info_reports_what_cupy_settled_on_not_the_environment(monkeypatch):
    _, linalg = install_cupy(monkeypatch)
    monkeypatch.delenv("CUPY_TF32", raising=False)
    monkeypatch.delenv("NVIDIA_TF32_OVERRIDE", raising=False)
    linalg.get_compute_type(np.float32)  # the first matmul ran in full float32 ...
    monkeypatch.setenv("CUPY_TF32", "1")  # ... so setting it now changes nothing
    info = cupy_impl.info("gpu", "default")
    assert info["tf32"] is False and info["compute_type"] == "COMPUTE_TYPE_DEFAULT"
    assert info["cupy_tf32_env"] == "1" and info["matmul_precision"].startswith("highest")
    _, linalg = install_cupy(monkeypatch)  # a fresh CuPy with CUPY_TF32=1: TF32 ...
    monkeypatch.setenv("NVIDIA_TF32_OVERRIDE", "0")  # ... unless cuBLAS is told otherwise
    info = cupy_impl.info("gpu", "default")
    assert info["compute_type"] == "COMPUTE_TYPE_TF32" and info["tf32"] is False
    assert "NVIDIA_TF32_OVERRIDE=0" in info["matmul_precision"]
    _, linalg = install_cupy(monkeypatch)
    monkeypatch.setenv("CUPY_TF32", "yes")  # CuPy itself raises at its first matmul
    info = cupy_impl.info("gpu", "default")
    assert info["tf32"] is False and info["matmul_precision"].startswith("unknown (ValueError")


def test_cupy_available_and_info_without_a_device_or_library(monkeypatch):
    cp = fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cp)

    def no_device():
        raise cp.cuda.runtime.CUDARuntimeError("cudaErrorNoDevice")

    cp.cuda.runtime.getDeviceCount = no_device
    ok, why = cupy_impl.available("gpu", "default")
    assert not ok and why == "CuPy finds no CUDA device (cudaErrorNoDevice)"
    cp.cuda.runtime.getDeviceCount = lambda: 0
    assert cupy_impl.available("gpu", "default") == (False, "CuPy finds no CUDA device")
    cp.cuda.runtime.getDeviceProperties = lambda i: no_device()
    assert cupy_impl.info("gpu", "default")["device"].startswith("unavailable (")
    monkeypatch.setitem(sys.modules, "cupy", None)  # not installed: import raises
    assert cupy_impl.available("gpu", "default")[1].startswith("cupy is not installed")
    assert cupy_impl.info("gpu", "default")["cupy"] == "not installed"


# ---- the harness around a GPU cell -------------------------------------------------------
def test_gpu_cells_and_the_probe_never_preallocate_jax_memory(tmp_path):
    gpu = cell_env(4, str(tmp_path), "gpu")
    assert gpu["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"  # several GPU workers live at once
    assert "JAX_PLATFORMS" not in gpu and gpu["OMP_NUM_THREADS"] == "4"
    for var in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR", "CUPY_CACHE_DIR"):
        assert gpu[var].startswith(str(tmp_path)), var  # cold compile caches, per cell
    assert cell_env(4, str(tmp_path), None)["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    cpu = cell_env(1, str(tmp_path), "cpu")
    assert cpu["JAX_PLATFORMS"] == "cpu" and "XLA_PYTHON_CLIENT_PREALLOCATE" not in cpu
    assert "xla_cpu_multi_thread_eigen=false" in cpu["XLA_FLAGS"]


def test_the_gpu_memory_hook_reads_the_session_counter_and_says_when_there_is_none():
    counted = types.SimpleNamespace(peak_memory=lambda: 3 * 2**20)
    got = memory.peak("torch", "gpu", counted, 10**8, exact=True)
    assert got["peak_mem_bytes"] == 3 * 2**20
    assert got["peak_mem_method"].startswith("session.peak_memory() (torch's")
    silent = types.SimpleNamespace(peak_memory=lambda: None)
    got = memory.peak("jax", "gpu", silent, 10**8, exact=True)
    assert got["peak_mem_bytes"] is None and got["peak_mem_method"].startswith("none:")


def test_the_gpu_peak_takes_the_first_implementation_that_runs_there(monkeypatch):
    cp = fake_cupy()
    cp.get_default_memory_pool = lambda: types.SimpleNamespace(total_bytes=lambda: 1)
    monkeypatch.setitem(sys.modules, "cupy", cp)
    real = peak.resolve
    monkeypatch.setattr(peak, "resolve", lambda name: dataclasses.replace(
        real(name), _available=lambda d, m: (False, "faked away")) if name == "torch"
        else real(name))
    out: dict = {}
    step, sync, value, info, _ = peak.peak_stepper(Job("peak", SETTINGS, device="gpu"), out)
    assert out["method"] == "cupy (default) float32 training step, N=F=H=64, K=1"
    assert out["flops_per_step"] == contract.flops_per_step(64, 64, 64, 1)
    last = step()
    sync()
    assert np.isfinite(value(last)) and info["device"] == "Fake GPU"
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(peak, "resolve", lambda name: dataclasses.replace(
        real(name), _available=lambda d, m: (False, "faked away")))
    out = {}
    assert peak.peak_stepper(Job("peak", SETTINGS, device="gpu"), out) is None
    assert out == {"status": "unavailable", "reason": "no float32 peak on gpu: torch (eager): "
                   "faked away; cupy (default): faked away; jax (jit): faked away"}


def test_the_gpu_check_is_split_into_parts_for_what_the_probe_found(monkeypatch):
    started = []
    monkeypatch.setattr(checkrun, "start_shard", lambda args, on_start=None: started.append(args))
    check = checkrun.CheckRun(None, SETTINGS, plan(profiles.get("gpu"), runnable()))
    common = ["--loss", "bce", "--activation", "sigmoid", "--dtype", "float32"]
    assert started == [["--device", "cpu", *common, "--impl", "numpy:default"]]
    assert check.specs["gpu"] == ["torch:eager", "torch:compile", "torch:reduce-overhead",
                                  "jax:jit", "jax:nojit", "cupy:default"]  # no TF32 mode
    available = {str(s): [s.impl != "jax", "JAX sees no GPU"] for s in check.probe_series()}
    check.start_gpu(available)
    assert started[1:] == [["--device", "gpu", *common, "--impl", "torch:compile"],
                           ["--device", "gpu", *common, "--impl", "torch:reduce-overhead"],
                           ["--device", "gpu", *common, "--impl", "torch:eager",
                            "--impl", "cupy:default"]]  # compiled modes apart, beside the rest
    assert check.unavailable == [
        {"impl": "jax", "mode": m, "device": "gpu", "reason": "JAX sees no GPU"}
        for m in ("jit", "nojit")]
    assert Series("cupy", "default", "gpu") in check.probe_series()


@pytest.mark.slow
def test_a_gpu_labelled_bench_on_a_fake_cupy_runs_the_gpu_bookkeeping(tmp_path, monkeypatch,
                                                                      capsys):
    """The sweep's GPU side (a GPU cell's worker, the GPU peak timed in every round, its
    memory method, a speed-up against NumPy on the CPU) and the report of a GPU-labelled run,
    on cupy_impl running over NumPy: bookkeeping only; no time here says anything of a GPU."""
    monkeypatch.setenv(impls.EXTRA_ENV, fake_cupy_impl(tmp_path))
    # Bookkeeping, not the canary: no block is discarded for the machine's load (a loaded
    # test machine would otherwise leave fewer rounds than the profile's, by chance).
    quick = profiles.PROFILES["quick"]
    monkeypatch.setitem(profiles.PROFILES, "quick", dataclasses.replace(
        quick, policy=dataclasses.replace(quick.policy, canary_limit=None)))
    assert cli.main(["bench", "--profile", "quick", "--impl", "numpy,fakecupy", "--size",
                     "tiny", "--device", "cpu,gpu", "--no-check", "--report",
                     "--out", str(tmp_path / "out")]) == 0
    (path,) = (tmp_path / "out").iterdir()
    run = RunFolder.open(path)
    cells = {(c["impl"], c["device"]): c for c in run.cells}
    fake = cells["fakecupy", "gpu"]
    assert fake["status"] == "ok" and fake["peak_mem_bytes"] == str(2**20)
    assert fake["peak_mem_method"].startswith("session.peak_memory()")
    assert fake["matmul_precision"].startswith("highest") and fake["speedup"]
    assert fake["peak_fraction"] and int(fake["rounds"]) == 5
    assert cells["numpy", "gpu"]["status"] == "unavailable"
    assert cells["fakecupy", "cpu"]["status"] == "unavailable"
    gpu_peak = run.meta["peak"]["gpu"]
    assert gpu_peak["status"] == "ok" and len(gpu_peak["rounds_gflops"]) == 5
    assert gpu_peak["method"].startswith("cupy (default)")  # torch has no GPU here
    assert run.meta["impl_info"]["fakecupy/default/gpu"]["device"] == "Fake GPU"
    assert "| fakecupy default gpu |" in (path / "report.md").read_text()


@pytest.mark.slow
def test_rehearsal_the_gpu_profile_without_a_gpu_completes_and_reports(tmp_path, monkeypatch):
    """`make gpu` with every GPU cell forced unavailable (CUDA_VISIBLE_DEVICES=""): the CPU
    rows, the check, time to accuracy and the report all complete, and every GPU cell is a row
    that says why. At tiny only, with a small CPU peak, to keep the test short."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setitem(profiles.PROFILES, "gpu", dataclasses.replace(
        profiles.get("gpu"), peak_n_cpu=512))
    assert cli.main(["bench", "--profile", "gpu", "--size", "tiny", "--report",
                     "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.iterdir()
    run = RunFolder.open(path)
    planned = plan(profiles.get("gpu"), runnable(), sizes=["tiny"])
    assert len(run.cells) == len(planned.cells)
    for c in run.cells:
        expected = "ok" if c["device"] == "cpu" else "unavailable"
        assert c["status"] == expected and (expected == "ok" or c["reason"]), c
    assert {(t["impl"], t["status"]) for t in run.tta} == {
        ("numpy", "ok"), ("torch", "unavailable"), ("jax", "unavailable"),
        ("cupy", "unavailable")}
    check = run.meta.get("check_seconds") is not None and (path / "check.json").exists()
    assert check
    report = (path / "report.md").read_text()
    assert "## Cells that did not run" in report and "could not be rendered" not in report
    gpu = sum(c.device == "gpu" for c in planned.cells)  # TF32 modes too: --size overrides
    assert f"{gpu} of {gpu + 2} cells did not produce a time ({gpu} unavailable)" in report
    assert run.meta["peak"]["cpu"]["status"] == "ok" and "gpu" not in run.meta["peak"]
