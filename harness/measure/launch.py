"""The environment a benchmark process starts with (recorded in meta.json as the thread budget).

    from harness.measure.launch import cell_env
    Worker.start(job, group, cell_env(2, group.folder(), "cpu"))

harness/measure/pool.py starts the process (harness/process.py sets the thread variables and
the pinning); this says what else a cell needs so that its frameworks start the same way.
"""

from __future__ import annotations

import os

from harness.process import thread_env

# Idle threads that do not spin (docs/timing.md): OpenBLAS's threads sleep as soon as a call
# ends (a timeout of 2^4 cycles instead of 2^28, ~0.1 s, during which they kept a core busy),
# and OpenMP's (torch's) wait passively. Set for every series alike, and recorded.
IDLE = {"passive": {"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_WAIT_POLICY": "PASSIVE"},
        "default": {}}


def cell_env(threads: int, cache_dir: str, device: str | None, memory: bool = False,
             idle: str = "passive") -> dict:
    """Environment variables set for one cell (recorded in meta.json as the thread budget).

    Thread pools read these at import, so they must be set before the process
    starts. XLA ignores OMP/BLAS variables; it sizes its pool from the CPU
    affinity (pinned in the child), and with one thread we also switch off its
    multi-threaded Eigen. Compile caches point at a fresh folder per cell, so a
    first call is a cold compile. JAX_PLATFORMS=cpu keeps JAX off a GPU in CPU
    cells. JAX's 75% GPU preallocation is switched off wherever a GPU may be used (device
    "gpu", and None: the probe): a size's GPU workers are alive together, and a second
    JAX worker would find three quarters of the memory taken (steady steps are timed the
    same: XLA's allocator keeps what it grew to). OPENBLAS_CORETYPE is left as the user
    set it (recorded in meta.json). `idle`: what idle threads do between blocks (IDLE).
    """
    env = thread_env(threads)
    env.update(IDLE[idle])
    xla = os.environ.get("XLA_FLAGS", "")
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in xla:
        xla = (xla + " --xla_cpu_multi_thread_eigen=false").strip()
    env["XLA_FLAGS"] = xla
    env["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(cache_dir, "inductor")
    env["TRITON_CACHE_DIR"] = os.path.join(cache_dir, "triton")
    env["CUPY_CACHE_DIR"] = os.path.join(cache_dir, "cupy")
    if device == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
    if memory or device != "cpu":
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    return env
