"""`numpy`: backprop written by hand (impls/handwritten.py) running on NumPy, on the CPU.

    import impls
    loss, grads = impls.get("numpy").loss_and_grads(params, X, T, loss="mse")

The math is handwritten.py's (`grads`, `step`); this file is the plumbing.
"""

from __future__ import annotations

import numpy as np

from impls import handwritten
from impls.base import Implementation, SessionDefaults


# exp(-Z) overflows to inf for Z < -88 in float32 (-709 in float64); 1 / (1 + inf) = 0 is
# the right limit, so the overflow is harmless and its RuntimeWarning is silenced here. A
# diverging run (inf - inf = NaN) is reported by its history, as torch and jax report it
# (impls/contract.py, "Divergence"), not by a warning only NumPy would give.
def _quiet():
    return np.errstate(over="ignore", invalid="ignore")  # fresh each call: not reentrant


# ---- plumbing ---------------------------------------------------------------------------
def available(device: str, mode: str) -> tuple[bool, str]:
    if device != "cpu":
        return False, "NumPy runs on the CPU only (see the cupy implementation for the GPU)"
    return True, ""


def loss_and_grads(P, X, T, *, loss, dtype, device, mode, activation):
    with _quiet():
        L, G = handwritten.grads(np, P, X, T, loss, activation)
    return float(L), G


class NumpySession(SessionDefaults):
    def __init__(self, P, X, T, *, loss, lr, dtype, device, mode, activation):
        self.P, self.X, self.T = P, X, T
        self.loss, self.activation = loss, activation
        self.lr = np.asarray(lr, dtype=dtype)  # a dtype scalar keeps float32 updates in float32
        self.ws = {}  # step's reusable buffers

    def step(self, batch):
        Xb, Tb = batch
        with _quiet():
            return handwritten.step(np, self.P, Xb, Tb, self.lr, self.loss, self.activation,
                                    self.ws)

    def params(self):
        return {k: v.copy() for k, v in self.P.items()}


def set_threads(n: int) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)


def info(device: str, mode: str) -> dict:
    from threadpoolctl import threadpool_info

    pools = threadpool_info()
    return {
        "numpy": np.__version__,
        "blas": ", ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
                          for p in pools if p.get("user_api") == "blas"),
        "matmul_precision": "float32/float64 as stored (no reduced-precision matmul)",
    }


IMPL = Implementation(
    name="numpy",
    modes=("default",),
    description="hand-written backprop, NumPy (CPU)",
    _available=available,
    _loss_and_grads=loss_and_grads,
    _session=NumpySession,
    set_threads=set_threads,
    info=info,
    mode_notes={"default": "plain NumPy, synchronous"},
)
