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

import csv
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


# nvidia-smi --query-gpu fields -> keys of a GPU's record. The first three have been there
# for every driver; the rest are asked together, and one by one if a driver rejects one
# (an unknown field fails the whole query). Values keep nvidia-smi's units ("700.00 W").
GPU_BASE = {"name": "name", "driver_version": "driver", "memory.total": "memory"}
GPU_FACTS = {"index": "index", "uuid": "uuid", "compute_mode": "compute_mode",
             "mig.mode.current": "mig", "persistence_mode": "persistence", "pstate": "pstate",
             "clocks.sm": "clocks_sm", "clocks.max.sm": "clocks_max_sm",
             "clocks.mem": "clocks_mem", "clocks.max.memory": "clocks_max_mem",
             "power.draw": "power_draw", "power.limit": "power_limit",
             "power.default_limit": "power_default_limit", "power.max_limit": "power_max_limit"}
APP_FIELDS = {"gpu_uuid": "gpu_uuid", "pid": "pid", "process_name": "name",
              "used_memory": "memory"}
_MISSING = {"", "n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]"}


def _smi(query: str, fields) -> list[list[str | None]] | None:
    """Rows of `nvidia-smi --QUERY=FIELDS --format=csv,noheader`, "[N/A]" as None; None when
    nvidia-smi is missing or refuses the query."""
    out = _run(["nvidia-smi", f"--{query}={','.join(fields)}", "--format=csv,noheader"])
    if out is None:
        return None
    rows = [[None if v.strip().lower() in _MISSING else v.strip() for v in row]
            for row in csv.reader(out.splitlines())]
    return [r for r in rows if len(r) == len(fields)]


def _facts(count: int) -> list[dict]:
    """GPU_FACTS for `count` GPUs: asked together, else one field at a time."""
    rows = _smi("query-gpu", GPU_FACTS)
    if rows is not None and len(rows) == count:
        return [dict(zip(GPU_FACTS.values(), r, strict=True)) for r in rows]
    facts: list[dict] = [{} for _ in range(count)]
    for field, key in GPU_FACTS.items():
        one = _smi("query-gpu", [field]) or []
        for fact, row in zip(facts, one if len(one) == count else [[None]] * count,
                             strict=True):
            fact[key] = row[0]
    return facts


def gpus() -> list[dict]:
    """GPUs as nvidia-smi reports them; [] where there is no nvidia-smi or no GPU. Each: name,
    driver, memory, and what decides whether a run there means what it says: compute mode
    (an exclusive one fails every process after the first), MIG (a slice, not the GPU),
    persistence, clocks now and at most, power draw and limits, and `processes`: the
    compute processes on it at the time of asking (pid, name, memory)."""
    rows = []
    for row in _smi("query-gpu", GPU_BASE) or []:
        rows.append(dict(zip(GPU_BASE.values(), row, strict=True)))
    if not rows:
        return []
    for gpu, facts in zip(rows, _facts(len(rows)), strict=True):
        gpu.update(facts, processes=[])
    apps = _smi("query-compute-apps", APP_FIELDS)
    by_uuid = {g.get("uuid"): g for g in rows}
    for app in apps or []:
        app = dict(zip(APP_FIELDS.values(), app, strict=True))
        gpu = by_uuid.get(app.pop("gpu_uuid")) or (rows[0] if len(rows) == 1 else None)
        if gpu is not None:
            gpu["processes"].append(app)
    if apps is None:
        for gpu in rows:
            gpu["processes"] = None  # could not ask: unknown, not none
    return rows


def describe_gpu(g: dict) -> str:
    """One line of a GPU's record for a report: what it is, then how it was set up."""
    parts = [", ".join([str(g.get("name") or "?")] + [f"{k} {g[k]}" for k in ("driver", "memory")
                                                         if g.get(k)])]
    setup = [f"{label} {g[k]}" for k, label in (("compute_mode", "compute mode"), ("mig", "MIG"),
                                                ("persistence", "persistence"))
             if g.get(k)]
    if g.get("clocks_sm"):
        setup.append(f"SM clock {g['clocks_sm']}" + (f" (max {g['clocks_max_sm']})"
                                                     if g.get("clocks_max_sm") else ""))
    if g.get("power_limit"):
        setup.append(f"power limit {g['power_limit']}" + (
            f" (default {g['power_default_limit']})" if g.get("power_default_limit") else ""))
    if setup:
        parts.append(", ".join(setup))
    procs = g.get("processes")
    if isinstance(procs, list):
        parts.append(f"{len(procs)} other process{'es' if len(procs) != 1 else ''} on it"
                     + (": " + ", ".join(f"{p.get('name')} ({p.get('memory')})" for p in procs)
                        if procs else ""))
    return "; ".join(parts)


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
