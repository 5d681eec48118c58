"""The parent's side of a cell: the environment it starts with, and running it.

    from harness.measure.launch import cell_env, launch
    result, wall = launch(job, cell_env(2, cache_dir, "cpu"), timeout=120)

A cell is `python -m harness.measure.cell` in a fresh process: the job (a typed
`harness.measure.spec.Job`) goes in on stdin as JSON, the result comes back as
one JSON line after MARKER on stdout. A crash or a hang never raises here: it
comes back as status "failed" or "timeout" with a reason, and a hung cell is
killed with every process it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.codec import to_dict
from harness.measure.cell import MARKER
from harness.measure.spec import Job

REPO = Path(__file__).resolve().parents[2]
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
# Unset in every cell: a persistent JAX compile cache would make a "cold" first call warm.
UNSET_VARS = ("JAX_COMPILATION_CACHE_DIR",)


def cell_env(threads: int, cache_dir: str, device: str | None, memory: bool = False) -> dict:
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
    set it (recorded in meta.json).
    """
    env = {v: str(threads) for v in THREAD_VARS}
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


def launch(job: Job, env: dict, timeout: float, on_start=None) -> tuple[dict, float]:
    """Run one job in a fresh `python -m harness.measure.cell`; (result, wall seconds).
    `on_start(pid)` hears of the child (its process group) as soon as it exists."""
    full = {k: v for k, v in os.environ.items() if k not in UNSET_VARS}
    full.update(env)
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    # Own session: a hung cell and any compile workers it forked are killed as a group.
    p = subprocess.Popen([sys.executable, "-m", "harness.measure.cell"], cwd=REPO, env=full,
                         text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    if on_start is not None:
        on_start(p.pid)
    try:
        out, err = p.communicate(json.dumps(to_dict(job)), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(p)
        return {"status": "timeout", "reason": f"killed after {timeout:g} s"}, timeout
    except BaseException:  # Ctrl-C: the child is in its own session and would outlive us
        _kill(p)
        raise
    wall = time.perf_counter() - t0
    for line in reversed(out.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):]), wall
    last = (err.strip().splitlines() or ["no output"])[-1][:300]
    return {"status": "failed", "reason": f"exit code {p.returncode}: {last}"}, wall


def _kill(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.communicate()
