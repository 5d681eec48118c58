"""`check --workers W`: every data-parallel engine at W workers against the single-process
float64 NumPy reference.

    python -m harness check --workers 2                 # every engine available at W = 2
    python -m harness check --workers 2 --impl torch --json

For each implementation and mode available at W (impl.available(device, mode, workers=W);
timing-only modes never), ONE launch of W workers runs every problem (dataparallel.run_tasks):

  grad        the all-reduced gradient of a full batch of N = 6W and 6W + 1 rows, float64 and
              float32, both losses, every activation, vs the NumPy float64 reference at the
              same (rounded) numbers;
  trajectory  10 full-batch epochs on N = 6W and 6W + 1, and 3 minibatch epochs with batches
              of 2W (N = 6W) and 2W + 1 (N = 6W + 1: the last batch, 2W - 1 rows, splits
              unevenly), vs NumPy float64 training from the same start, single process.

N not divisible by W is the point: averaging the workers' local means is exact when every
shard has the same size, and wrong by ~1/N otherwise (harness/check/dp_bugs.py). Float64 on
small N because that error shrinks as 1/N and would hide under float32's tolerance. Rows are
those of `check` (the problem name ends in -W<W>; --json adds "workers" to each row and
"engines": what ran). Exit 0 when everything agrees, 1 when anything does not, 2 on a usage
error; engines that cannot run at W are listed with their reason.
"""

from __future__ import annotations

import json
import time

import numpy as np

import dataparallel as dp
from harness.check import suite
from harness.check.agreement import Row, compare
from harness.check.problems import reference
from harness.check.table import render
from harness.check.tolerances import tolerance
from harness.errors import UsageError
from impls import contract

EPOCHS_FULL, EPOCHS_MINI = 10, 3


def shapes(workers: int):
    """(grad sizes, trajectories (label, n, epochs, batch_size)) for W workers."""
    n, odd = 6 * workers, 6 * workers + 1
    return (n, odd), (("full", n, EPOCHS_FULL, None), ("full", odd, EPOCHS_FULL, None),
                      ("minibatch", n, EPOCHS_MINI, 2 * workers),
                      ("minibatch", odd, EPOCHS_MINI, 2 * workers + 1))


def main(args) -> int:
    start = time.perf_counter()
    workers = contract.check_workers(args.workers)
    specs = args.impl or []
    if any(s.rpartition(":")[0].endswith(".py") or s.endswith(".py") for s in specs):
        raise UsageError("--workers checks the registered implementations; a user's "
                         "FILE.py:FUNCTION runs in one process (drop --workers)")
    if args.timeout is not None:
        raise UsageError("--timeout limits a user's FILE.py:FUNCTION only")
    rows, curves, unavailable, timings, used = check_parallel(specs, args, workers)
    ok = all(r.ok for r in rows)
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps({"ok": ok, "workers": workers,
                          "rows": [r.to_json() | {"workers": workers} for r in rows],
                          "unavailable": unavailable, "curves": curves, "engines": used,
                          "seconds": round(seconds, 2),
                          "timings": {k: round(v, 2) for k, v in timings.items()}}, indent=1))
    else:
        notes = [f"{u['impl']} {u['mode']} ({u['device']}) x{workers}: {u['engine']}; "
                 f"{u['launcher']}; {u['processes']} process(es), {u['threads_per_worker']} "
                 f"thread(s) per worker" for u in used]
        print(f"check --workers {workers}: each engine in {workers} workers vs the "
              "single-process NumPy float64 reference\n")
        print(render(rows, unavailable, seconds, timings, notes))
    return 0 if ok else 1


def check_parallel(specs: list[str], args, workers: int):
    """(rows, curves, unavailable, timings, what each engine used) for every target at W."""
    devices = ("cpu", "gpu") if args.device == "all" else (args.device,)
    targets, unavailable = suite.select(specs, devices)
    runnable = []
    for impl, mode, device in targets:
        ok, why = impl.available(device, mode, workers=workers)
        if ok:
            runnable.append((impl, mode, device))
        else:
            unavailable.append({"impl": impl.name, "mode": mode, "device": device,
                                "reason": f"workers={workers}: {why}"})
    if specs and not runnable:
        raise UsageError("nothing to check: " + "; ".join(
            f"{u['impl']} {u['mode']} on {u['device']}: {u['reason']}" for u in unavailable))
    refs = suite.References()
    rows, curves, timings, used = [], [], {}, []
    for impl, mode, device in runnable:
        t0 = time.perf_counter()
        jobs = _jobs(args, workers, device, refs)
        where = dict(impl=impl.name, mode=mode, device=device)
        try:
            results, info = dp.run_tasks(impl.name, [j["task"] for j in jobs], workers=workers,
                                         device=device, mode=mode)
        except Exception as exc:  # a failed launch is a finding: one row per kind
            rows += [Row(kind, dtype="float64", tensor="(call)", worst_error=None,
                         tolerance=tolerance(kind, "float64"), ok=False, worst_index=None,
                         diagnosis=f"raised {type(exc).__name__}: {exc}", loss="-",
                         activation="-", problem=f"W{workers}", **where)
                     for kind in ("grad", "trajectory")]
        else:
            used.append(info)
            for job, out in zip(jobs, results, strict=True):
                r, c = _compare(job, out, workers, where)
                rows, curves = rows + r, curves + c
        timings[f"{impl.name} {mode} ({device})"] = time.perf_counter() - t0
    return rows, curves, unavailable, timings, used


def _jobs(args, workers: int, device: str, refs: suite.References) -> list[dict]:
    """Every task of one engine's launch, with what it is compared against."""
    losses = (args.loss,) if args.loss else contract.LOSSES
    dtypes = (args.dtype,) if args.dtype else ("float64", "float32")
    activations = (args.activation,) if args.activation else contract.ACTIVATIONS
    grad_sizes, trajectories = shapes(workers)
    jobs = []
    for dtype in dtypes:
        for activation in activations:
            for n in grad_sizes:
                p = refs.problem(n, activation, dtype)
                for loss in losses:
                    L, G = reference(p.params, p.X, p.T, loss, activation)
                    jobs.append(dict(kind="grad", dtype=dtype, loss=loss, activation=activation,
                                     n=n, problem=f"{p.name}-W{workers}", ref={"loss": L, **G},
                                     task=dp.task("grads", p.params, p.X, p.T, loss=loss,
                                                  dtype=dtype, activation=activation,
                                                  device=device, workers=workers)))
        activation = args.activation or "sigmoid"  # trajectories: one activation, as `check`
        for label, n, epochs, batch_size in trajectories:
            p = refs.problem(n, activation, dtype)
            for loss in losses:
                ref = refs.trajectory(f"{label}-N{n}-b{batch_size}", n, epochs, batch_size,
                                      activation, dtype, loss)
                name = f"{p.name}-{label}" + (f"-b{batch_size}" if batch_size else "")
                jobs.append(dict(kind="trajectory", dtype=dtype, loss=loss, activation=activation,
                                 n=batch_size or n, problem=f"{name}-e{epochs}-W{workers}",
                                 ref=ref, full=label == "full" and n == grad_sizes[1],
                                 task=dp.task("train", p.params, p.X, p.T, loss=loss, lr=suite.LR,
                                              epochs=epochs, batch_size=batch_size, dtype=dtype,
                                              activation=activation, device=device,
                                              workers=workers)))
    return jobs


def _compare(job: dict, out: dict, workers: int, where: dict):
    where = {**where, "loss": job["loss"], "activation": job["activation"],
             "problem": job["problem"]}
    got = {k: out[k] for k in contract.PARAM_NAMES}
    if job["kind"] == "grad":
        got["loss"] = float(out["loss"])
    else:
        got["history"] = [float(v) for v in out["history"]]
    rows = compare(job["ref"], got, job["kind"], job["dtype"], job["n"], suite.K, **where)
    if job["kind"] == "trajectory":  # every worker must end with the same parameters
        scale = max(float(np.max(np.abs(got[k]))) for k in contract.PARAM_NAMES) or 1.0
        drift = float(out["replica_drift"]) / scale
        tol = tolerance("trajectory", job["dtype"])
        rows.append(Row("trajectory", dtype=job["dtype"], tensor="(replicas)",
                        worst_error=drift, tolerance=tol, ok=drift <= tol, worst_index=None,
                        diagnosis="" if drift <= tol else "the workers' parameters differ at "
                        "the end (a tensor left out of the all-reduce?)", **where))
    curves = [{"impl": where["impl"], "mode": where["mode"], "device": where["device"],
               "dtype": job["dtype"], "loss": job["loss"], "workers": workers, "epoch": e,
               "value": v} for e, v in enumerate(got.get("history", []))] if job.get("full") else []
    return rows, curves
