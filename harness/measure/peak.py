"""The device's measured matmul throughput: the ceiling each cell is held to, and which one.

A `peak` job is served by a benchmark worker (harness/measure/worker.py) like any cell,
under the run's thread budget (so the BLAS threads it records are the ones every cell
ran with), and timed in every round: the peak is measured across the whole run, and
each round's best sample is that round's peak.

    job = peak_job(settings, "gpu", "tf32")        # the TF32 peak, beside the float32 one
    key = peak_key("gpu", "tf32")                  # "gpu-tf32": its name in meta.json's peak
    held_against("gpu", tf32=True, measured={"gpu", "gpu-tf32"})   # -> "gpu-tf32"
    jobs = peak_jobs(settings, keys)               # {name: job}: the peaks a size's cells need
    round_key("gpu-tf32"), name_of(key)            # a peak's Key in the rounds, and back

A cell is held against the peak of its own matmul precision, measured in the same run:
float32 cells against the float32 peak, TF32 cells against the TF32 peak. A TF32 cell in a
run without a TF32 peak is left out of the share of peak (None), never divided by the
float32 peak, which TF32 matmuls outrun by design (several hundred percent "of peak").
Whether a cell ran TF32 is what its implementation's info() read back ("tf32"), or in a
stored run the `matmul_precision` column it wrote ("tf32 ..."), never the mode's name.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from harness.measure.gpu_checks import asks_tf32
from harness.measure.peer import resolve
from harness.measure.records import Key
from harness.measure.spec import Job, RunSettings, Series
from impls import contract

# A GPU peak is measured through the first of these that runs there and whose info() reads
# back the precision asked for (the harness never calls a framework itself). float32:
# torch first, its matmuls have TF32 off by default. TF32: the modes that ask for it.
PEAK_SERIES = {"float32": (("torch", "eager"), ("cupy", "default"), ("jax", "jit")),
               "tf32": (("torch", "eager-tf32"), ("jax", "jit-tf32"))}
PEAK_IMPLS = tuple(name for name, _ in PEAK_SERIES["float32"])


def peak_key(device: str, precision: str = "float32") -> str:
    """The peak's name in meta.json's `peak` and in the rounds: the device ("cpu", "gpu")
    for full float32, "gpu-tf32" for TF32 matmuls."""
    return device if precision == "float32" else f"{device}-{precision}"


def peak_job(settings: RunSettings, device: str, precision: str = "float32") -> Job:
    """The job of one peak worker: `precision` "tf32" names the TF32 series (GPU only)."""
    if precision == "float32":
        return Job("peak", settings, device=device)
    return Job("peak", settings, device=device,
               series=tuple(Series(i, m, device) for i, m in PEAK_SERIES[precision]))


def peak_jobs(settings: RunSettings, keys: Iterable[Key]) -> dict[str, Job]:
    """The peak workers a size's cells (`keys`) are held against: each device's float32 peak,
    and the GPU's TF32 peak where a GPU cell's mode asks for TF32 (which peak to measure is
    the one thing a mode's name decides; which one a cell is held against is what it read
    back). {name: job}, sorted by name."""
    jobs = {}
    for key in keys:
        jobs.setdefault(peak_key(key.device), peak_job(settings, key.device))
        if key.device == "gpu" and asks_tf32(key.mode):
            jobs.setdefault(peak_key("gpu", "tf32"), peak_job(settings, "gpu", "tf32"))
    return dict(sorted(jobs.items()))


def round_key(name: str) -> Key:
    """The Key the rounds time the peak called `name` under ("gpu" -> Key.peak("gpu"))."""
    device, _, precision = name.partition("-")
    return Key("peak", precision, device, "float32", "")


def name_of(key: Key) -> str:
    """The name of the peak timed under `key` (round_key's inverse)."""
    return peak_key(key.device, key.mode or "float32")


def is_tf32(matmul_precision) -> bool:
    """Whether a stored `matmul_precision` (read back by the cell's info()) says TF32."""
    return isinstance(matmul_precision, str) and matmul_precision.startswith("tf32")


def held_against(device: str, tf32: bool, measured: Iterable[str]) -> str | None:
    """The key of the peak a cell's FLOP/s is divided by, or None: left out of the share of
    peak (its precision's peak was not measured in this run)."""
    key = peak_key(device, "tf32" if tf32 else "float32")
    return key if key in set(measured) else None


def peak_stepper(job: Job, out: dict):
    """The step whose best time gives the device's peak, for a worker to time in blocks like
    any cell: (step, sync, value, info, memory_peak). CPU: a NumPy float32 GEMM (n x n by
    n x n, 2 n^3 flops) under the run's thread budget. GPU: a training step of a matmul-
    dominated network (N = F = H = n, K = 1: four n^3 GEMMs, little else) through the first
    of the job's series (PEAK_SERIES["float32"] when it names none) that is available and
    whose info(), read after one step, says the precision asked for; slightly below a bare
    GEMM (the sigmoid and the update are included), so fractions of it are slight
    overestimates. Fills `out` with flops_per_step, method, precision, key, blas, info."""
    settings, device = job.settings, job.device
    n = settings.peak_n_cpu if device == "cpu" else settings.peak_n
    if device == "cpu":
        rng = np.random.default_rng(0)
        A = rng.standard_normal((n, n), dtype=np.float32)
        B = rng.standard_normal((n, n), dtype=np.float32)
        out.update(flops_per_step=2 * n**3, method=f"NumPy float32 GEMM {n}x{n}",
                   precision="float32", key=peak_key(device), blas=blas_pools())
        return (lambda: A @ B), (lambda: None), (lambda last: 0.0), {}, dict
    precision = "tf32" if any("tf32" in x.mode for x in job.series) else "float32"
    tried = []
    for name, mode in ((x.impl, x.mode) for x in job.series) if job.series else \
            PEAK_SERIES["float32"]:
        impl = resolve(name)
        ok, why = impl.available(device, mode)
        if not ok:
            tried.append(f"{name} ({mode}): {why}")
            continue
        impl.set_threads(settings.threads)
        X = np.random.default_rng(0).standard_normal((n, n))
        P = contract.init_params(n, n, 1, 0, "float32")
        s = impl.session(P, X, np.zeros((n, 1)), loss="bce", lr=1e-3, dtype="float32",
                         device=device, mode=mode)
        batch = s.batches(None)[0]
        s.step(batch)
        s.sync()
        info = impl.info(device, mode)  # read back once the first step has run
        if bool(info.get("tf32")) == (precision == "tf32"):
            break
        tried.append(f"{name} ({mode}): asked for {precision}, but info() reads back "
                     f"{info.get('matmul_precision')!r}")
    else:
        out.update(status="unavailable", reason=f"no {precision} peak on {device}: "
                   + "; ".join(tried))
        return None
    out.update(flops_per_step=contract.flops_per_step(n, n, n, 1), precision=precision,
               key=peak_key(device, precision), info=info,
               method=f"{name} ({mode}) {precision} training step, N=F=H={n}, K=1")
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
