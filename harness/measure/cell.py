"""The one-shot jobs of a benchmark process: they answer once and the process exits.

    probe   which series can run: imports the frameworks here (JAX first), never in the parent
    tta     time to accuracy
    grads   one float32 loss_and_grads against the float64 reference (the smoke's check)

`python -m harness.measure.worker` runs them (harness/measure/worker.py: the process, its
pinning and its messages); timed cells and the matmul peak are served there in blocks.
The harness never calls a framework: the device is waited for only through `Session.sync()`.
An error inside a job becomes a "failed" result with the exception as the reason; a crash or
a hang is caught by the parent (harness/process.py).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only the standard library before the CPUs are pinned (worker.py's main)
    from harness.measure.spec import Job

TF32_SANITY = 1e-2  # TF32 grads: far above TF32's ~1e-3, far below any real bug's error


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
    """available() of each series: one process imports every framework once, JAX's first:
    the first cuDNN loaded in a process wins, and a torch that loads an older one than JAX's
    makes JAX fall back to the CPU (jax-ml/jax#18032), which would read as "no GPU"."""
    from harness.measure.peer import resolve

    out = {}
    for series in sorted(job.series, key=lambda s: s.impl != "jax"):  # stable: jax, the rest
        try:
            ok, why = resolve(series.impl).available(series.device, series.mode)
        except Exception as exc:  # unknown name or mode: a reason, not a crash
            ok, why = False, f"{type(exc).__name__}: {exc}"
        out[str(series)] = [ok, why]
    return {"status": "ok", "available": out}


def job_grads(job: Job) -> dict:
    """One float32 loss_and_grads of the cell's series on the check's problem (bce, sigmoid),
    against the float64 NumPy reference: the smoke's grads step. TF32 (timing-only) modes are
    held to a sanity bound only: their matmuls carry ~1e-3 by design."""
    import impls
    from harness.check.agreement import compare
    from harness.check.problems import make_problem, reference
    from harness.check.suite import F, H, K, N

    s = job.cell.series
    impl = impls.get(s.impl)
    ok, why = impl.available(s.device, s.mode)  # imports the framework
    if not ok:
        return {"status": "unavailable", "reason": why}
    p = make_problem(N, F, H, K, seed=0).cast("float32")
    t0 = time.perf_counter()
    try:
        L, G = impl.loss_and_grads(p.params, p.X, p.T, loss="bce", dtype="float32",
                                   device=s.device, mode=s.mode, activation="sigmoid")
    except Exception as exc:
        return {"status": "ok", "ok": False, "error": one_line(exc)}
    seconds = time.perf_counter() - t0
    L0, G0 = reference(p.params, p.X, p.T, "bce", "sigmoid")
    rows = compare({"loss": L0, **G0}, {"loss": L, **G}, "grad", "float32", N, K, impl=s.impl,
                   mode=s.mode, device=s.device, loss="bce", activation="sigmoid",
                   problem=p.name)
    errors = [r.worst_error for r in rows]
    timing_only = s.mode in impl.timing_only
    if timing_only:
        good = all(e is not None and e <= TF32_SANITY for e in errors)
        error = "" if good else (f"worst error {max(e or math.inf for e in errors):.2e} > "
                                 f"the TF32 sanity bound {TF32_SANITY:g}")
    else:
        good = all(r.ok for r in rows)
        error = next((r.message() for r in rows if not r.ok), "")
    return {"status": "ok", "ok": good, "error": error, "timing_only": timing_only,
            "seconds": seconds,
            "worst_error": max((e for e in errors if e is not None), default=None),
            "tolerance": TF32_SANITY if timing_only else rows[0].tolerance}


def one_line(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}".splitlines() or ["?"])[0][:300]


JOBS = {"tta": job_tta, "probe": job_probe, "grads": job_grads}
