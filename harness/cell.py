"""One benchmark cell in a fresh process: `python -m harness.cell < spec.json` prints its result.

    echo '{"job": "time", "impl": "numpy", "mode": "default", "device": "cpu", ...}' \
        | python -m harness.cell

Jobs: `probe` (which cells can run: imports the frameworks here, never in the
parent), `peak` (the machine's float32 matmul peak), `time` (setup, first
call and steady-state step, separately), `memory` (the separate peak-memory
pass) and `tta` (time to accuracy). The parent (harness/bench.py) sets the
thread budget in the environment before this process starts (`cell_env` and
`launch` below: they build that environment and kill a cell that outlives its
time limit); here we pin CPU affinity (the one lever XLA respects) before
anything imports a BLAS, then call the implementation's set_threads.

The harness never calls a framework: the device is waited for only through
`Session.sync()`. Errors inside a job become a "failed" result with the
exception as the reason; a crash or hang is caught by the parent.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

MARKER = "@@cell-result@@ "  # the result line; anything else on stdout is framework chatter
FAULTS_ENV = "BACKPROP_BENCH_FAULTS"  # only tests set it: lets a spec inject a fault
REPO = Path(__file__).resolve().parent.parent
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
# Unset in every cell: a persistent JAX compile cache would make a "cold" first call warm.
UNSET_VARS = ("JAX_COMPILATION_CACHE_DIR",)


# ---- parent side: the environment a cell starts with, and running it ----------------

def cell_env(threads: int, cache_dir: str, device: str | None, memory: bool = False) -> dict:
    """Environment variables set for one cell (recorded in meta.json as the thread budget).

    Thread pools read these at import, so they must be set before the process
    starts. XLA ignores OMP/BLAS variables; it sizes its pool from the CPU
    affinity (pinned in the child), and with one thread we also switch off its
    multi-threaded Eigen. Compile caches point at a fresh folder per cell, so a
    first call is a cold compile. JAX_PLATFORMS=cpu keeps JAX off a GPU in CPU
    cells; JAX's 75% GPU preallocation is switched off for the memory pass only.
    OPENBLAS_CORETYPE is left as the user set it (recorded in meta.json).
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
    if memory:
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    return env


def launch(spec: dict, env: dict, timeout: float) -> tuple[dict, float]:
    """Run one job in a fresh `python -m harness.cell`; (result, wall seconds). Never raises
    for a crash or hang: those come back as status "failed" / "timeout" with a reason."""
    full = {k: v for k, v in os.environ.items() if k not in UNSET_VARS}
    full.update(env)
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    # Own session: a hung cell and any compile workers it forked are killed as a group.
    p = subprocess.Popen([sys.executable, "-m", "harness.cell"], cwd=REPO, env=full, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        out, err = p.communicate(json.dumps(spec), timeout=timeout)
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


# ---- child side: the jobs ----------------------------------------------------------


def _pin(cpus) -> list[int] | None:
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
        return sorted(os.sched_getaffinity(0))
    return None


def _impl(name: str):
    """The implementation object: the registry's, or the scikit-learn peer row."""
    if name == "sklearn":
        from harness.peer import PEER

        return PEER
    import impls

    return impls.get(name)


def _fault(spec: dict, where: str) -> None:
    """Test-only faults (crash, hang, raise), honoured only when FAULTS_ENV=1."""
    fault = spec.get("fault") if os.environ.get(FAULTS_ENV) == "1" else None
    if fault == "crash" and where == "start":
        sys.stderr.write("injected crash\n")
        sys.stderr.flush()
        os._exit(3)
    if fault == "hang" and where == "start":
        time.sleep(3600)
    if fault == "raise" and where == "start":
        raise RuntimeError("injected error")
    if fault == "diverge" and where == "loss":
        raise FloatingPointError  # caught by the caller: the loss becomes NaN


def _final_loss(spec: dict, s, last) -> float:
    try:
        _fault(spec, "loss")
        return s.value(last)
    except FloatingPointError:
        return math.nan


def _setup(spec: dict):
    """Import and check the implementation, apply threads, build data and the shared init."""
    from harness import contract, data

    t0 = time.perf_counter()
    impl = _impl(spec["impl"])
    ok, why = impl.available(spec["device"], spec["mode"])  # imports the framework
    import_s = time.perf_counter() - t0
    if not ok:
        return None, {"status": "unavailable", "reason": why, "import_s": import_s}
    impl.set_threads(int(spec["threads"]))
    z = spec["size"]
    X, T = data.make("teacher", z["n_samples"], spec["seed"], z["n_features"], z["n_outputs"])
    P = contract.init_params(z["n_features"], z["n_hidden"], z["n_outputs"], spec["seed"],
                             spec["dtype"])
    return (impl, X, T, P), {"import_s": import_s}


def _session(spec: dict, impl, X, T, P):
    s = impl.session(P, X, T, loss=spec["loss"], lr=spec["lr"], dtype=spec["dtype"],
                     device=spec["device"], mode=spec["mode"])
    return s, s.batches(None)[0]  # full batch: one device-resident batch


def job_time(spec: dict) -> dict:
    from harness.timing import Policy, Timer, timed

    ready, out = _setup(spec)
    if ready is None:
        return out
    impl, X, T, P = ready
    (s, batch), out["setup_s"] = timed(lambda: _session(spec, impl, X, T, P))
    # First call: tracing + compilation for jax.jit and torch.compile, from cold caches.
    out["first_call_s"] = timed(lambda: (s.step(batch), s.sync()))[1]
    timer = Timer(step=lambda: s.step(batch), sync=s.sync)
    m = timer.measure(Policy(**spec["policy"]))
    loss = _final_loss(spec, s, timer.last)
    summary = m.summary
    out.update(status="ok" if math.isfinite(loss) else "diverged", final_loss=loss,
               samples=list(m.samples), step_median_s=summary.median, step_iqr_s=summary.iqr,
               repeats=summary.n, noisy=summary.noisy, steps_per_sample=m.steps_per_sample,
               warmup_steps=m.warmup_steps, info=impl.info(spec["device"], spec["mode"]))
    if not math.isfinite(loss):
        out["reason"] = f"non-finite loss {loss} after {timer.steps_run + 1} steps"
    return out


def job_memory(spec: dict) -> dict:
    """Peak memory in its own process (tracking never slows a timed run).

    CPU: host RSS growth over the RSS just after setup, peaking during the first
    call and a few steps (setup's own growth is `setup_mem_bytes`). GPU: the
    session's `peak_memory()` (the framework's peak-allocated counter) if the
    implementation offers one. The memory pass reuses the timing pass's compile
    cache, so a compile here is warm and its compiler memory is smaller than cold.
    """
    from harness import machine

    ready, out = _setup(spec)
    if ready is None:
        return out
    impl, X, T, P = ready
    rss0, _ = machine.rss()
    exact = machine.reset_peak_rss()
    s, batch = _session(spec, impl, X, T, P)
    rss1, hwm = machine.rss()
    out["setup_mem_bytes"] = None if rss0 is None else hwm - rss0
    exact = exact and machine.reset_peak_rss()
    last = None
    for _ in range(int(spec.get("memory_steps", 4))):
        last = s.step(batch)
    s.sync()
    out["final_loss"] = _final_loss(spec, s, last)
    # Optional Session hook: the framework's own device-memory high-water mark (torch:
    # max_memory_allocated since the session began; jax: the device's peak_bytes_in_use;
    # cupy: bytes its memory pool holds), or None where it has no counter (the CPU).
    device_peak = s.peak_memory() if hasattr(s, "peak_memory") else None
    if device_peak is not None:
        out.update(peak_mem_bytes=int(device_peak),
                   peak_mem_method=f"session.peak_memory() ({spec['impl']}'s device-memory "
                                   "high-water mark)")
    elif spec["device"] != "cpu":
        out.update(peak_mem_bytes=None,
                   peak_mem_method="none: session has no peak_memory() for device memory")
    elif rss1 is not None:
        _, hwm = machine.rss()
        if not exact:  # no reset: ru_maxrss is the whole process's high-water mark
            import resource

            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out.update(peak_mem_bytes=max(0, hwm - rss1),
                   peak_mem_method="host RSS peak over post-setup RSS "
                                   + ("(VmHWM reset)" if exact else "(ru_maxrss)"))
    out["status"] = "ok"
    return out


def job_tta(spec: dict) -> dict:
    """Seconds and epochs to a training-accuracy target, evaluation excluded from the clock.

    The clock covers session setup (transfer), every epoch's batches() (on-device
    gathering) and steps, and a sync before it is read; compilation counts, since
    a user waits for it too. Every `eval_every` epochs the clock stops, and a
    float64 NumPy forward on session.params() measures training-set accuracy.
    """
    import numpy as np

    from harness import config, contract, data
    from impls import handwritten  # NumPy-only: the forward pass written once

    cfg = config.preset(spec["dataset"])
    X, T = cfg.data()
    impl = _impl(spec["impl"])
    ok, why = impl.available(spec["device"], spec["mode"])
    if not ok:
        return {"status": "unavailable", "reason": why}
    impl.set_threads(int(spec["threads"]))
    P = contract.init_params(X.shape[1], cfg.n_hidden, T.shape[1], cfg.seed, spec["dtype"])

    def accuracy(p) -> float:  # the contract's forward, in float64 NumPy
        p = contract.cast(p, "float64")
        A1 = handwritten.act_forward(np, X @ p["W1"] + p["b1"], cfg.activation)
        return data.accuracy(handwritten.sigmoid(np, A1 @ p["W2"] + p["b2"]), T)

    t0 = time.perf_counter()
    s = impl.session(P, X, T, loss=cfg.loss, lr=cfg.lr, dtype=spec["dtype"],
                     device=spec["device"], mode=spec["mode"], activation=cfg.activation)
    seconds = time.perf_counter() - t0
    acc, epoch, last = accuracy(P), 0, None
    while acc < spec["target"] and epoch < spec["max_epochs"]:
        t0 = time.perf_counter()
        for _ in range(spec["eval_every"]):
            order = contract.batch_order(len(X), cfg.batch_size, cfg.seed, epoch)
            for batch in s.batches(order):
                last = s.step(batch)
            epoch += 1
        s.sync()
        seconds += time.perf_counter() - t0
        if not math.isfinite(_final_loss(spec, s, last)):
            return {"status": "diverged", "reason": f"non-finite loss at epoch {epoch}",
                    "seconds": seconds, "epochs": epoch}
        acc = accuracy(s.params())  # off the clock
    reached = acc >= spec["target"]
    return {"status": "ok", "reached": reached, "seconds": seconds, "epochs": epoch,
            "accuracy": acc, "reason": "" if reached else f"not reached in {epoch} epochs"}


def job_probe(spec: dict) -> dict:
    """available() for each [impl, mode, device]: one process imports every framework once."""
    out = {}
    for name, mode, device in spec["cells"]:
        try:
            ok, why = _impl(name).available(device, mode)
        except Exception as exc:  # unknown name or mode: a reason, not a crash
            ok, why = False, f"{type(exc).__name__}: {exc}"
        out[f"{name}/{mode}/{device}"] = [ok, why]
    return {"status": "ok", "available": out}


def job_peak(spec: dict) -> dict:
    from harness import machine

    return machine.measure_peak(spec, _impl)


JOBS = {"time": job_time, "memory": job_memory, "tta": job_tta, "probe": job_probe,
        "peak": job_peak}


def main() -> int:
    spec = json.loads(sys.stdin.read())
    cpus = _pin(spec.get("cpus"))
    try:
        _fault(spec, "start")
        result = JOBS[spec["job"]](spec)
    except Exception as exc:
        result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    result["cpus"] = cpus
    sys.stdout.write("\n" + MARKER + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
