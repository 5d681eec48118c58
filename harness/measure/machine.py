"""What a result must record about where it ran: versions, CPU, GPU, git, UTC time.

    from harness.measure.machine import collect
    meta = collect(repo=".")    # plain dict, JSON-ready; never imports a framework

Library versions come from installed package metadata (importlib.metadata),
never by importing torch/jax/cupy: importing them would start thread pools and
GPU contexts in the parent process that every cell is meant to be isolated
from. The BLAS backend and its thread count are read by threadpoolctl inside
the peak-measurement process (harness/measure/peak.py), where the run's thread
budget is in force, and added to the metadata by `bench`. Facts only: nothing
here measures speed or memory.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata

# Distribution names to look up; the first installed name of each group is recorded.
LIBRARIES = {
    "numpy": ("numpy",),
    "scipy": ("scipy",),
    "scikit-learn": ("scikit-learn",),
    "pandas": ("pandas",),
    "matplotlib": ("matplotlib",),
    "torch": ("torch",),
    "jax": ("jax",),
    "jaxlib": ("jaxlib",),
    "jax-cuda-plugin": ("jax-cuda12-plugin", "jax-cuda13-plugin"),
    "cupy": ("cupy", "cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x"),
    "threadpoolctl": ("threadpoolctl",),
    "tqdm": ("tqdm",),
    "psutil": ("psutil",),
}


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def versions() -> dict[str, str | None]:
    """Installed version of each library (None when absent), from package metadata only."""
    out: dict[str, str | None] = {}
    for key, dists in LIBRARIES.items():
        out[key] = None
        for dist in dists:
            try:
                out[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_counts() -> dict[str, int | None]:
    """Logical CPUs, the CPUs this process may run on (affinity), and physical cores if known."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    physical = None
    try:
        import psutil  # optional: the GPU machine may not have it

        physical = psutil.cpu_count(logical=False)
    except ImportError:
        pass
    return {"logical": os.cpu_count(), "usable": usable, "physical": physical}


def memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _run(cmd: list[str], cwd: str | None = None, timeout: float = 10.0) -> str | None:
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def git(repo: str) -> dict:
    """Commit and a dirty flag. Run folders under results/ do not count as dirt."""
    commit = _run(["git", "rev-parse", "HEAD"], cwd=repo)
    status = _run(["git", "status", "--porcelain", "--", ".", ":(exclude)results"], cwd=repo)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def gpus() -> list[dict]:
    """GPUs as nvidia-smi reports them; [] where there is no nvidia-smi or no GPU."""
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                "--format=csv,noheader"])
    rows = []
    for line in (out or "").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            rows.append({"name": parts[0], "driver": parts[1], "memory": parts[2]})
    return rows


def collect(repo: str = ".") -> dict:
    """Everything above, as one JSON-ready dict."""
    return {
        "utc": utc_now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpus": cpu_counts(),
        "memory_bytes": memory_bytes(),
        "versions": versions(),
        "gpus": gpus(),
        "git": git(repo),
        # Recorded, never set: it changes OpenBLAS's kernel choice (and so its speed).
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
    }
