"""One benchmark cell in a fresh process: `python -m harness.measure.cell < job.json`.

The parent (harness/measure/launch.py) writes a typed `Job` (harness/measure/spec.py)
to stdin and reads the result line after MARKER. Jobs: `probe` (which series can
run: imports the frameworks here, never in the parent), `peak` (the machine's
float32 matmul peak, harness/measure/peak.py), `time` (setup, first call and
steady-state step, separately), `memory` (the separate peak-memory pass,
harness/measure/memory.py) and `tta` (time to accuracy).

The parent sets the thread budget in the environment before this process starts;
here we pin CPU affinity (the one lever XLA respects) before anything imports a
BLAS, then call the implementation's set_threads. The harness never calls a
framework: the device is waited for only through `Session.sync()`. An error inside
a job becomes a "failed" result with the exception as the reason; a crash or a hang
is caught by the parent.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only the standard library before the CPUs are pinned (see main)
    from harness.measure.spec import Job

MARKER = "@@cell-result@@ "  # the result line; anything else on stdout is framework chatter


def _pin(cpus) -> list[int] | None:
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
        return sorted(os.sched_getaffinity(0))
    return None


def _ready(job: Job, series):
    """The implementation of `series`, checked available (which imports its framework) and
    given the run's thread budget; or (None, the 'unavailable' result)."""
    from harness.measure.peer import resolve

    t0 = time.perf_counter()
    impl = resolve(series.impl)
    ok, why = impl.available(series.device, series.mode)
    import_s = time.perf_counter() - t0
    if not ok:
        return None, {"status": "unavailable", "reason": why, "import_s": import_s}
    impl.set_threads(job.settings.threads)
    return impl, {"import_s": import_s}


def _start(job: Job, impl, P, X, T):
    """A session on the cell's full batch: (session, its one device-resident batch)."""
    cfg = job.settings.problem(job.cell)
    s = impl.session(P, X, T, loss=cfg.loss, lr=cfg.lr, dtype=cfg.dtype, device=cfg.device,
                     mode=job.cell.mode, activation=cfg.activation)
    return s, s.batches(None)[0]


def job_time(job: Job) -> dict:
    from harness.measure.timing import Timer, timed

    impl, out = _ready(job, job.cell.series)
    if impl is None:
        return out
    P, X, T = job.settings.problem(job.cell).problem()
    (s, batch), out["setup_s"] = timed(lambda: _start(job, impl, P, X, T))
    # First call: tracing + compilation for jax.jit and torch.compile, from cold caches.
    out["first_call_s"] = timed(lambda: (s.step(batch), s.sync()))[1]
    timer = Timer(step=lambda: s.step(batch), sync=s.sync)
    m = timer.measure(job.settings.policy)
    loss = s.value(timer.last)
    summary = m.summary
    out.update(status="ok" if math.isfinite(loss) else "diverged", final_loss=loss,
               samples=list(m.samples), step_median_s=summary.median, step_iqr_s=summary.iqr,
               repeats=summary.n, noisy=summary.noisy, steps_per_sample=m.steps_per_sample,
               warmup_steps=m.warmup_steps, info=impl.info(job.cell.device, job.cell.mode))
    if not math.isfinite(loss):
        out["reason"] = f"non-finite loss {loss} after {timer.steps_run + 1} steps"
    return out


def job_memory(job: Job) -> dict:
    from harness.measure import memory

    impl, out = _ready(job, job.cell.series)
    if impl is None:
        return out
    P, X, T = job.settings.problem(job.cell).problem()
    out.update(memory.measure(job.cell.impl, job.cell.device,
                              lambda: _start(job, impl, P, X, T)))
    out["status"] = "ok"
    return out


def job_tta(job: Job) -> dict:
    """Seconds and epochs to a training-accuracy target, evaluation excluded from the clock.

    The clock covers session setup (transfer), every epoch's batches() (on-device
    gathering) and steps, and a sync before it is read; compilation counts, since
    a user waits for it too. Every `eval_every` epochs the clock stops, and a
    float64 NumPy forward on session.params() measures training-set accuracy.
    """
    import numpy as np

    from harness import data
    from impls import contract, handwritten  # NumPy-only: the forward pass written once

    goal, tta = job.goal, job.goal.tta
    impl, out = _ready(job, goal.series)
    if impl is None:
        return out
    cfg = job.settings.tta_problem(goal)
    P, X, T = cfg.problem()

    def accuracy(p) -> float:  # the contract's forward, in float64 NumPy
        Y = handwritten.forward(np, contract.cast(p, "float64"), X, cfg.activation)[-1]
        return data.accuracy(Y, T)

    t0 = time.perf_counter()
    s = impl.session(P, X, T, loss=cfg.loss, lr=cfg.lr, dtype=cfg.dtype, device=cfg.device,
                     mode=goal.mode, activation=cfg.activation)
    seconds = time.perf_counter() - t0
    acc, epoch, last = accuracy(P), 0, None
    while acc < tta.target and epoch < tta.max_epochs:
        t0 = time.perf_counter()
        for _ in range(tta.eval_every):
            order = contract.batch_order(len(X), cfg.batch_size, cfg.seed, epoch)
            for batch in s.batches(order):
                last = s.step(batch)
            epoch += 1
        s.sync()
        seconds += time.perf_counter() - t0
        if not math.isfinite(s.value(last)):
            return {"status": "diverged", "reason": f"non-finite loss at epoch {epoch}",
                    "seconds": seconds, "epochs": epoch}
        acc = accuracy(s.params())  # off the clock
    reached = acc >= tta.target
    return {"status": "ok", "reached": reached, "seconds": seconds, "epochs": epoch,
            "accuracy": acc, "reason": "" if reached else f"not reached in {epoch} epochs"}


def job_probe(job: Job) -> dict:
    """available() of each series: one process imports every framework once."""
    from harness.measure.peer import resolve

    out = {}
    for series in job.series:
        try:
            ok, why = resolve(series.impl).available(series.device, series.mode)
        except Exception as exc:  # unknown name or mode: a reason, not a crash
            ok, why = False, f"{type(exc).__name__}: {exc}"
        out[str(series)] = [ok, why]
    return {"status": "ok", "available": out}


def job_peak(job: Job) -> dict:
    from harness.measure.peak import job_peak as peak

    return peak(job)


JOBS = {"time": job_time, "memory": job_memory, "tta": job_tta, "probe": job_probe,
        "peak": job_peak}


def main() -> int:
    raw = json.loads(sys.stdin.read())
    # Pin first: threads a BLAS starts when NumPy is imported inherit this affinity, and
    # threads started before it would not. So nothing above imports NumPy.
    cpus = _pin(raw["settings"]["cpus"])
    from harness.codec import from_dict
    from harness.measure.spec import Job

    try:
        job = from_dict(Job, raw)
        result = JOBS[job.kind](job)
    except Exception as exc:
        result = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    result["cpus"] = cpus
    sys.stdout.write("\n" + MARKER + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
