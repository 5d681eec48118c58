"""The device's measured float32 matmul throughput: the ceiling each cell is held to.

    python -m harness.measure.cell < peak-job.json    # a `peak` job runs job_peak

Runs in a process of its own, under the run's thread budget (harness/measure/cell.py
calls it), so the BLAS threads it records are the ones every cell ran with.
"""

from __future__ import annotations

import numpy as np

from harness.measure.peer import resolve
from harness.measure.spec import Job
from harness.measure.timing import Policy, Timer
from impls import contract

# The GPU peak is measured through the first of these that runs there (the harness never
# calls a framework itself). torch first: its float32 matmuls have TF32 off by default.
PEAK_IMPLS = ("torch", "cupy", "jax")


def job_peak(job: Job) -> dict:
    """CPU: NumPy float32 GEMM (n x n by n x n, 2 n^3 flops), best of several. GPU: a
    training step of a matmul-dominated network (N = F = H = n, K = 1: four n^3 GEMMs,
    little else) through the first available implementation's Session; slightly below
    a bare GEMM (the sigmoid and the update are included), so fractions of it are
    slight overestimates. Best sample, not median: a peak."""
    settings, device = job.settings, job.device
    n = settings.peak_n_cpu if device == "cpu" else settings.peak_n
    if device == "cpu":
        rng = np.random.default_rng(0)
        A = rng.standard_normal((n, n), dtype=np.float32)
        B = rng.standard_normal((n, n), dtype=np.float32)
        timer = Timer(step=lambda: A @ B, sync=lambda: None)
        flops, how, info = 2 * n**3, f"NumPy float32 GEMM {n}x{n}", {}
    else:
        for name in PEAK_IMPLS:
            impl = resolve(name)
            mode = impl.modes[0]
            if impl.available(device, mode)[0]:
                break
        else:
            return {"status": "unavailable", "reason": f"none of {PEAK_IMPLS} runs on {device}"}
        impl.set_threads(settings.threads)
        X = np.random.default_rng(0).standard_normal((n, n))
        P = contract.init_params(n, n, 1, 0, "float32")
        s = impl.session(P, X, np.zeros((n, 1)), loss="bce", lr=1e-3, dtype="float32",
                         device=device, mode=mode)
        batch = s.batches(None)[0]
        timer = Timer(step=lambda: s.step(batch), sync=s.sync)
        flops = contract.flops_per_step(n, n, n, 1)
        how = f"{name} ({mode}) float32 training step, N=F=H={n}, K=1"
        info = impl.info(device, mode)
    # Up to 12 GEMMs in ~2.5 s: on a shared machine the best of many is the one that
    # ran without a neighbour, which is what a peak means.
    m = timer.measure(Policy(warmup_steps=2, min_sample_s=0.05, min_samples=6, max_samples=12,
                             budget_s=2.5))
    best = min(m.samples)
    return {"status": "ok", "gflops": flops / best / 1e9, "method": f"{how}, best of {m.summary.n}",
            "samples": list(m.samples), "blas": blas_pools(), "info": info}


def blas_pools() -> list[dict]:
    """The BLAS/OpenMP thread pools of this process, as threadpoolctl sees them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # optional on the GPU machine; the env variables still applied
        return []
    keys = ("user_api", "internal_api", "version", "num_threads", "threading_layer",
            "architecture", "filepath")
    return [{k: p.get(k) for k in keys} for p in threadpool_info()]
