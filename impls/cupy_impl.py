"""`cupy`: the hand-written backprop of impls/handwritten.py, run on a GPU by CuPy.

    import impls
    cupy_impl = impls.get("cupy")
    cupy_impl.available("gpu")     # (False, "cupy is not installed") where there is no CuPy
    loss, grads = cupy_impl.loss_and_grads(params, X, T, loss="mse", device="gpu")

The math is not repeated here. impls/numpy_impl.py calls handwritten.py with
xp=numpy; this file calls the very same functions with xp=cupy, so the two
differ only in where the arrays live. What is left is the GPU plumbing:
copies to and from the device, the learning rate as a device scalar, and
waiting for queued kernels.

CuPy's float32 matmuls use full float32 unless the environment sets
CUPY_TF32=1 (read by CuPy once, at its first matmul); info() reads back the compute
type CuPy settled on (and NVIDIA_TF32_OVERRIDE, which can still turn TF32 off).

cupy is imported lazily (see _cupy), so listing implementations never needs it.
"""

from __future__ import annotations

import os

from impls import handwritten, readback
from impls.base import Implementation, SessionDefaults


def _cupy():
    import cupy

    return cupy


def available(device: str, mode: str) -> tuple[bool, str]:
    if device != "gpu":
        return False, "CuPy runs on a GPU only (see the numpy implementation for the CPU)"
    try:
        cp = _cupy()
    except ImportError as exc:
        return False, f"cupy is not installed ({exc})"
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except cp.cuda.runtime.CUDARuntimeError as exc:  # no driver, or no device visible
        return False, f"CuPy finds no CUDA device ({exc})"
    if count < 1:
        return False, "CuPy finds no CUDA device"
    return True, ""


def _to_device(cp, arrays: dict) -> dict:
    return {k: cp.asarray(v) for k, v in arrays.items()}  # host -> device copies, dtype kept


def loss_and_grads(P, X, T, *, loss, dtype, device, mode, activation):
    cp = _cupy()
    Pd = _to_device(cp, P)
    L, G = handwritten.grads(cp, Pd, cp.asarray(X), cp.asarray(T), loss, activation)
    # float() and asnumpy() copy device -> host, and so wait for the kernels.
    return float(L), {k: cp.asnumpy(v) for k, v in G.items()}


class CupySession(SessionDefaults):
    def __init__(self, P, X, T, *, loss, lr, dtype, device, mode, activation):
        self.cp = cp = _cupy()
        self.P = _to_device(cp, P)  # updated in place by handwritten.step
        self.ws = {}  # handwritten.step's reusable device buffers
        self.X, self.T = cp.asarray(X), cp.asarray(T)
        self.loss, self.activation = loss, activation
        # A 0-d device array of the run's dtype: float32 updates stay float32, and the
        # scalar is not copied to the device again at every step.
        self.lr = cp.asarray(lr, dtype=dtype)

    def gather(self, idx):
        i = self.cp.asarray(idx)  # index on the device
        return self.X[i], self.T[i]

    def step(self, batch):
        Xb, Tb = batch
        # Returns the loss as a 0-d device array: no sync until value() asks for it.
        return handwritten.step(self.cp, self.P, Xb, Tb, self.lr, self.loss, self.activation,
                                self.ws)

    def sync(self):
        self.cp.cuda.get_current_stream().synchronize()  # every kernel here runs on it

    def params(self):
        return {k: self.cp.asnumpy(v) for k, v in self.P.items()}  # fresh host copies

    def peak_memory(self):
        """Bytes CuPy's default memory pool holds (total_bytes(): blocks in use plus the
        freed blocks it keeps cached). CuPy has no peak counter, but the pool never gives
        a block back unless asked to (free_all_blocks), so in a process that never asks
        (a benchmark cell) this is the high-water mark of device memory the pool needed,
        temporaries inside a step included: an upper bound on peak bytes in use, by the
        pool's rounding and fragmentation. Since the process started, not since this
        session; cuBLAS's own workspace is outside the pool. Costs the steps nothing.
        None when the pool holds nothing (CuPy's allocator was switched away from it)."""
        held = int(self.cp.get_default_memory_pool().total_bytes())
        return held if held > 0 else None


def set_threads(n: int) -> None:
    pass  # the host side is one Python thread launching kernels; nothing to limit


def _compute_type(cp) -> str:
    """CuPy's compute type for float32 matmuls, read back from CuPy
    (cupy._core._routines_linalg.get_compute_type: decided from CUPY_TF32 at the first
    matmul, or here if none ran yet, the same way): "COMPUTE_TYPE_TF32" means TF32 matmuls."""
    import numpy as np
    from cupy._core import _routines_linalg as linalg

    return str(linalg.compute_type_to_str(linalg.get_compute_type(np.float32)))


def info(device: str, mode: str) -> dict:
    tf32_env = os.environ.get("CUPY_TF32")
    out = {"cupy_tf32_env": tf32_env, "tf32_override": readback.tf32_override()}
    try:
        cp = _cupy()
    except ImportError:
        return {"cupy": "not installed", "matmul_precision": "unknown (cupy is not installed)",
                "tf32": False, **out}
    out["cupy"] = cp.__version__
    try:
        compute = _compute_type(cp)
    except Exception as exc:  # no device, or a CuPy without this (private) function
        compute = f"unknown ({type(exc).__name__}: {exc})"
    tf32 = compute == "COMPUTE_TYPE_TF32" and not readback.tf32_forbidden()
    out.update(compute_type=compute, tf32=tf32, matmul_precision=(
        f"tf32 (CUPY_TF32), read back: CuPy's float32 compute type is {compute}" if tf32 else
        f"highest ({compute}, but NVIDIA_TF32_OVERRIDE=0: TF32 off)" if compute.endswith("TF32")
        else f"highest (CuPy's float32 compute type {compute}: full float32)"
        if compute.startswith("COMPUTE_TYPE") else compute))
    try:
        rt = cp.cuda.runtime
        name = rt.getDeviceProperties(cp.cuda.Device().id)["name"]
        out.update(device=name.decode() if isinstance(name, bytes) else str(name),
                   cuda_runtime=rt.runtimeGetVersion(), cuda_driver=rt.driverGetVersion())
    except Exception as exc:  # no device: say so in the record rather than crash
        out["device"] = f"unavailable ({type(exc).__name__}: {exc})"
    return out


IMPL = Implementation(
    name="cupy",
    modes=("default",),
    description="hand-written backprop, CuPy (GPU)",
    _available=available,
    _loss_and_grads=loss_and_grads,
    _session=CupySession,
    set_threads=set_threads,
    info=info,
    mode_notes={"default": "impls/handwritten.py on CuPy; asynchronous kernels on one stream"},
)
