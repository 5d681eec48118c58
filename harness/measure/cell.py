"""A one-shot job in a fresh process: `python -m harness.measure.cell < job.json`.

The parent (harness/measure/launch.py) writes a typed `Job` (harness/measure/spec.py)
to stdin and reads the result line after MARKER. Jobs: `probe` (which series can
run: imports the frameworks here, never in the parent) and `tta` (time to accuracy).
Timed cells and the matmul peak are served by long-lived workers instead
(harness/measure/worker.py), so their blocks can be interleaved.

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


JOBS = {"tta": job_tta, "probe": job_probe}


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
