"""What a result must record about where it ran: versions, CPU, GPU, git, UTC time.

    from harness.machine import collect
    meta = collect(repo=".")    # plain dict, JSON-ready; never imports a framework

Library versions come from installed package metadata (importlib.metadata),
never by importing torch/jax/cupy: importing them would start thread pools and
GPU contexts in the parent process that every cell is meant to be isolated
from. The BLAS backend and its thread count are read by threadpoolctl inside
the peak-measurement subprocess (harness/cell.py), where the run's thread
budget is in force, and added to the metadata by `bench`. The functions at the
end (process memory, the matmul peak) run inside cell subprocesses.
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


# ---- measured inside cell subprocesses (harness/cell.py) ---------------------------

def rss() -> tuple[int | None, int | None]:
    """(current RSS, peak RSS since the last reset) in bytes, from /proc; (None, None) elsewhere."""
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None, None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _blas() -> list[dict]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # optional on the GPU machine; the env variables still applied
        return []
    keys = ("user_api", "internal_api", "version", "num_threads", "threading_layer",
            "architecture", "filepath")
    return [{k: p.get(k) for k in keys} for p in threadpool_info()]


def measure_peak(spec: dict, get_impl) -> dict:
    """The device's measured float32 matmul throughput, the ceiling each cell is held to.

    CPU: NumPy float32 GEMM (n x n by n x n, 2 n^3 flops), best of several, under
    this run's thread budget. GPU: the harness may not call a framework, so we time
    a training step of a matmul-dominated network (N = F = H = n, K = 1: four
    n^3 GEMMs, little else) through the first available implementation's Session;
    slightly below a bare GEMM (the sigmoid and the update are included), so
    fractions of it are slight overestimates. Best sample, not median: a peak.
    Runs inside the `peak` cell (harness/cell.py); `get_impl(name)` resolves an
    implementation there.
    """
    import numpy as np

    from harness import contract
    from harness.timing import Policy, Timer

    n, device = int(spec["peak_n"]), spec["device"]
    if device == "cpu":
        rng = np.random.default_rng(0)
        A = rng.standard_normal((n, n), dtype=np.float32)
        B = rng.standard_normal((n, n), dtype=np.float32)
        timer = Timer(step=lambda: A @ B, sync=lambda: None)
        flops, how = 2 * n**3, f"NumPy float32 GEMM {n}x{n}"
        info = {}
    else:
        for name in spec["impls"]:
            impl = get_impl(name)
            mode = impl.modes[0]
            if impl.available(device, mode)[0]:
                break
        else:
            return {"status": "unavailable", "reason": f"none of {spec['impls']} runs on {device}"}
        impl.set_threads(int(spec["threads"]))
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
                             budget_s=float(spec.get("budget_s", 2.5))))
    best = min(m.samples)
    return {"status": "ok", "gflops": flops / best / 1e9, "method": f"{how}, best of {m.summary.n}",
            "samples": list(m.samples), "blas": _blas(), "info": info}
