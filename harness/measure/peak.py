"""The device's measured float32 matmul throughput: the ceiling each cell is held to.

A `peak` job is served by a benchmark worker (harness/measure/worker.py) like any cell,
under the run's thread budget (so the BLAS threads it records are the ones every cell
ran with), and timed in every round: the peak is measured across the whole run, and
each round's best sample is that round's peak.
"""

from __future__ import annotations

import numpy as np

from harness.measure.peer import resolve
from harness.measure.spec import Job
from impls import contract

# The GPU peak is measured through the first of these that runs there (the harness never
# calls a framework itself). torch first: its float32 matmuls have TF32 off by default.
PEAK_IMPLS = ("torch", "cupy", "jax")


def peak_stepper(job: Job, out: dict):
    """The step whose best time gives the device's peak, for a worker to time in blocks like
    any cell: (step, sync, value, info, memory_peak). CPU: a NumPy float32 GEMM (n x n by
    n x n, 2 n^3 flops) under the run's thread budget. GPU: a training step of a matmul-
    dominated network (N = F = H = n, K = 1: four n^3 GEMMs, little else) through the first
    available implementation's Session (the harness never calls a framework itself);
    slightly below a bare GEMM (the sigmoid and the update are included), so fractions of
    it are slight overestimates. Fills `out` with flops_per_step, method, blas, info."""
    settings, device = job.settings, job.device
    n = settings.peak_n_cpu if device == "cpu" else settings.peak_n
    if device == "cpu":
        rng = np.random.default_rng(0)
        A = rng.standard_normal((n, n), dtype=np.float32)
        B = rng.standard_normal((n, n), dtype=np.float32)
        out.update(flops_per_step=2 * n**3, method=f"NumPy float32 GEMM {n}x{n}",
                   blas=blas_pools())
        return (lambda: A @ B), (lambda: None), (lambda last: 0.0), {}, dict
    for name in PEAK_IMPLS:
        impl = resolve(name)
        mode = impl.modes[0]
        if impl.available(device, mode)[0]:
            break
    else:
        out.update(status="unavailable", reason=f"none of {PEAK_IMPLS} runs on {device}")
        return None
    impl.set_threads(settings.threads)
    X = np.random.default_rng(0).standard_normal((n, n))
    P = contract.init_params(n, n, 1, 0, "float32")
    s = impl.session(P, X, np.zeros((n, 1)), loss="bce", lr=1e-3, dtype="float32",
                     device=device, mode=mode)
    batch = s.batches(None)[0]
    info = impl.info(device, mode)
    out.update(flops_per_step=contract.flops_per_step(n, n, n, 1),
               method=f"{name} ({mode}) float32 training step, N=F=H={n}, K=1", info=info)
    return (lambda: s.step(batch)), s.sync, s.value, info, dict


def blas_pools() -> list[dict]:
    """The BLAS/OpenMP thread pools of this process, as threadpoolctl sees them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # optional on the GPU machine; the env variables still applied
        return []
    keys = ("user_api", "internal_api", "version", "num_threads", "threading_layer",
            "architecture", "filepath")
    return [{k: p.get(k) for k in keys} for p in threadpool_info()]
