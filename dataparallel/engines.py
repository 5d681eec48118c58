"""The caller's side of each engine: can it run here, and the command lines that start it.

    numpy  dataparallel/numpy_mpi.py   mpiexec -n W (the `mpich` wheel's Hydra, next to
                                         this Python); handwritten.py + comm.Allreduce
    torch  dataparallel/torch_dist.py  python -m torch.distributed.run (torchrun); gloo on
                                         the CPU, NCCL on GPUs; one explicit all_reduce
    jax    dataparallel/jax_mesh.py    a batch-sharded jit over a Mesh: W processes through
                                         jax.distributed.initialize (launched here: JAX has no
                                         launcher), or one process with W CPU devices

Workers run as `python -m dataparallel.<engine> RUN_DIR`, started by harness/process.py with
the repository root on PYTHONPATH, so they import the project from the source tree (the GPU
machine has no install). Frameworks are imported lazily: listing and availability never crash
on a missing library.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

from harness.process import thread_env
from impls import contract

# impl name -> (worker module, the modes it runs at W > 1, why only those)
ENGINES = {
    "numpy": ("numpy_mpi", ("default",), ""),
    "torch": ("torch_dist", ("eager",),
              "data-parallel torch runs eager only (a compiled step would recompile for every "
              "shard shape in every worker)"),
    "jax": ("jax_mesh", ("jit",),
            "data-parallel jax runs jit only (the sharded step is one jitted program)"),
}
JAX_LAUNCH_ENV = "BACKPROP_BENCH_JAX_LAUNCH"  # processes | devices (default: processes if supported)


def launch_label(name: str, workers: int, launch: str = "") -> str:
    """How a configuration's workers start (the scaling run's `launch` column): mpiexec,
    torchrun; jax: processes or devices at W > 1, one process at W = 1."""
    if name == "jax":
        return launch if workers > 1 else "process"
    return {"numpy": "mpiexec", "torch": "torchrun"}.get(name, launch or "?")


def threads_for(workers: int) -> int:
    """Threads per worker when the caller does not say: the usable cores shared out."""
    return max(1, contract.usable_cores() // workers)


def mpiexec_path() -> str | None:
    """The mpiexec that belongs to this Python's mpi4py: the venv's (mpich wheel) first."""
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else shutil.which("mpiexec")


def available(name: str, device: str, mode: str, workers: int) -> tuple[bool, str]:
    """(True, "") when `name` can train with `workers` processes on `device` in `mode`."""
    if name not in ENGINES:
        return False, f"no data-parallel engine for {name} (engines: {', '.join(ENGINES)})"
    _, modes, why_modes = ENGINES[name]
    if mode not in modes:
        return False, why_modes or f"data-parallel {name} runs {', '.join(modes)} only"
    try:
        return {"numpy": _numpy, "torch": _torch, "jax": _jax}[name](device, workers)
    except Exception as exc:  # a broken install is a reason, never a crash
        return False, f"{type(exc).__name__}: {exc}"


def _numpy(device: str, workers: int) -> tuple[bool, str]:
    if device != "cpu":
        return False, "the numpy engine runs on the CPU only"
    if importlib.util.find_spec("mpi4py") is None:
        return False, "mpi4py is not installed (pip install mpi4py mpich)"
    if mpiexec_path() is None:
        return False, "no mpiexec next to this Python or on PATH (pip install mpich)"
    # Importing mpi4py.MPI here would initialise MPI in the caller; a broken MPI library shows
    # at the first launch instead, as a WorkerError.
    return True, ""


def _torch(device: str, workers: int) -> tuple[bool, str]:
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        return False, f"this torch build has no torch.distributed (torch {torch.__version__})"
    if device == "cpu":
        return (True, "") if dist.is_gloo_available() else (False, "torch was built without gloo")
    if not torch.cuda.is_available():
        return False, "torch sees no CUDA GPU"
    if not dist.is_nccl_available():
        return False, "torch was built without NCCL"
    if torch.cuda.device_count() < workers:
        return False, (f"workers={workers} needs {workers} GPUs (NCCL: one GPU per rank); "
                       f"{torch.cuda.device_count()} visible")
    return True, ""


def jax_processes_supported() -> tuple[bool, str]:
    """Whether this jax runs W processes on the CPU (jax.distributed + CPU collectives)."""
    import jax

    if not hasattr(jax.config, "jax_cpu_collectives_implementation"):
        return False, f"jax {jax.__version__} has no CPU collectives (jax_cpu_collectives_implementation)"
    return True, ""


def jax_launch(choice: str | None = None) -> str:
    """'processes' or 'devices': the argument, else $BACKPROP_BENCH_JAX_LAUNCH, else processes
    where this jax supports them on the CPU."""
    choice = choice or os.environ.get(JAX_LAUNCH_ENV) or (
        "processes" if jax_processes_supported()[0] else "devices")
    if choice not in ("processes", "devices"):
        raise ValueError(f"{JAX_LAUNCH_ENV} must be processes or devices, got {choice!r}")
    return choice


def _jax(device: str, workers: int) -> tuple[bool, str]:
    import jax

    if device != "cpu":
        return False, "the jax engine is wired for CPU devices only (a GPU mesh is untested)"
    if not hasattr(jax, "make_array_from_process_local_data"):
        return False, f"jax {jax.__version__} is too old (no make_array_from_process_local_data)"
    if jax_launch() == "processes":
        return jax_processes_supported()
    return True, ""


# ---- command lines -------------------------------------------------------------------------------
def worker_env(threads: int, extra: dict | None = None) -> dict[str, str]:
    """The workers' thread counts (torch and XLA are told again inside each worker)."""
    return {**thread_env(threads), **(extra or {})}


def xla_env(threads: int, devices: int) -> dict[str, str]:
    """XLA reads these when its CPU backend starts: `devices` CPU devices; one thread when 1."""
    flags = [f"--xla_force_host_platform_device_count={devices}"]
    if threads == 1:
        flags += ["--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1"]
    return {"XLA_FLAGS": " ".join(flags), "JAX_NUM_CPU_DEVICES": str(devices),
            "JAX_PLATFORMS": "cpu"}


def torchrun(module: str, run_dir, workers: int, port: int, *, nnodes: int = 1,
             rdzv: str | None = None) -> list[str]:
    """torch.distributed.run on this host: static (one node) or c10d rendezvous (several)."""
    where = (["--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv, "--rdzv-id", "backprop-bench"]
             if rdzv else ["--master-addr", "127.0.0.1", "--master-port", str(port)])
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(nnodes),
            "--nproc-per-node", str(workers), *where,
            "--max-restarts", "0",        # a failed worker fails the call; no elastic retry
            "--monitor-interval", "0.1",  # how fast torchrun notices a dead worker
            "-m", f"dataparallel.{module}", str(run_dir)]


def launch_plan(name: str, run_dir, workers: int, threads: int, port: int,
                launch: str | None = None) -> dict:
    """How to start `name`'s workers on this host: commands, env, grace times, what is used."""
    module = ENGINES[name][0]
    py = [sys.executable, "-u", "-m", f"dataparallel.{module}", str(run_dir)]
    if name == "numpy":
        return dict(commands=[[mpiexec_path(), "-n", str(workers), *py]],
                    env=worker_env(threads), fail_grace_s=3.0, term_grace_s=3.0,
                    launcher=f"mpiexec -n {workers} ({mpiexec_path()})", processes=workers)
    if name == "torch":
        return dict(commands=[torchrun(module, run_dir, workers, port)], env=worker_env(threads),
                    fail_grace_s=3.0, term_grace_s=3.0, processes=workers,
                    launcher=f"torchrun --nproc-per-node {workers} (127.0.0.1)")
    launch = jax_launch(launch) if workers > 1 else "devices"
    if launch == "devices":  # one process, W CPU devices
        return dict(commands=[py], env=worker_env(threads, xla_env(threads, workers)),
                    fail_grace_s=0.5, term_grace_s=0.5, processes=1,
                    launcher=f"one process, {workers} CPU device(s) (JAX_NUM_CPU_DEVICES)")
    coordinator = f"127.0.0.1:{port}"
    # No launcher stops the others when one dies: launch() does, after 0.5 s. SIGTERM does not
    # end a jax.distributed process (its preemption notice), so SIGKILL follows after 0.5 s.
    return dict(commands=[[*py, "--process-id", str(r), "--num-processes", str(workers),
                           "--coordinator", coordinator] for r in range(workers)],
                env=worker_env(threads, xla_env(threads, 1)), fail_grace_s=0.5,
                term_grace_s=0.5, processes=workers,
                launcher=f"{workers} processes, jax.distributed.initialize ({coordinator})")
