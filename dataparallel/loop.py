"""One worker's task loop, the same for every engine: epochs, batches, heartbeats, the row
audit, faults, and the timed blocks of the scaling benchmark.

An engine supplies a Replica per task (its parameters and data on its device):

    step(rows, n, profile) -> (loss, rows_used, (compute, wait, all_reduce, update) seconds)
        one update on this worker's shard of the batch (rows: None = the full batch, else the
        batch's index array; n its GLOBAL size); loss and rows_used are all-reduced values.
        profile: a barrier before the all-reduce, so that waiting for a slower rank is not
        booked as communication (NaN where the engine cannot tell the phases apart)
    grads(rows, n) -> (loss, rows_used, grads as NumPy)   one all-reduced gradient, no update
    params() -> NumPy dict;  drift() -> float (a collective: every rank calls it);  sync()

Every rank runs the same loop, so every rank makes the same collectives in the same order.
"""

from __future__ import annotations

import time

import numpy as np

from dataparallel import plan
from dataparallel.rundir import maybe_fault


def run(spec, inputs, make_replica, rank: int, status) -> list[dict]:
    """Every task of the spec, in order; one result dict per task (rank 0 writes them)."""
    results, counter = [], [0]

    def beat(i, epoch, batch):  # heartbeat, then the fault hook (counted over all tasks)
        status(i, epoch, batch, 1)
        maybe_fault(spec.fault, rank, counter[0])
        counter[0] += 1

    for i, (task, (P, X, T)) in enumerate(zip(spec.tasks, inputs, strict=True)):
        rep = make_replica(task, P, X, T)
        if task["kind"] == "grads":
            beat(i, 0, 0)
            L, used, G = rep.grads(None, len(X))
            plan.check_rows(used, len(X), 0, 0)
            results.append({"loss": np.float64(L), **G})
        elif task["kind"] == "train":
            results.append(_train(task, rep, len(X), lambda e, b, i=i: beat(i, e, b)))
        elif task["kind"] == "time":
            results.append(_time(task, rep, len(X), lambda e, b, i=i: beat(i, e, b)))
        else:
            raise ValueError(f"unknown task kind {task['kind']!r}")
    return results


def _train(task, rep, n_samples: int, beat) -> dict:
    history = []
    for epoch in range(task["epochs"]):
        losses = []
        for b, (rows, n) in enumerate(plan.epoch_batches(n_samples, task["batch_size"],
                                                         task["seed"], epoch)):
            beat(epoch, b)
            L, used, _ = rep.step(rows, n, False)
            plan.check_rows(used, n, epoch, b)
            losses.append(L)
        history.append(float(np.mean(losses)))
    rep.sync()
    return {"history": np.asarray(history, np.float64), **rep.params(),
            "replica_drift": np.float64(rep.drift())}


def _time(task, rep, n: int, beat) -> dict:
    """Warm-up steps, then `blocks` x (a plain block of `block_steps` full-batch steps, timed as
    a whole; a profiled block, each step's phases timed). Rank 0's clocks."""
    for s in range(task["warmup"]):
        beat(-1, s)  # epoch -1: the warm-up
        plan.check_rows(rep.step(None, n, False)[1], n, -1, s)
    rep.sync()
    out = {k: [] for k in ("step_s", "cpu_per_wall", "compute_s", "wait_s", "comm_s", "update_s")}
    L = float("nan")
    for block in range(task["blocks"]):
        c0, t0 = time.process_time(), time.perf_counter()
        for s in range(task["block_steps"]):
            beat(block, s)
            plan.check_rows(rep.step(None, n, False)[1], n, block, s)
        rep.sync()
        c1, t1 = time.process_time(), time.perf_counter()
        out["step_s"].append((t1 - t0) / task["block_steps"])
        out["cpu_per_wall"].append((c1 - c0) / (t1 - t0))  # threads really in use on rank 0
        phases = []
        for s in range(task["block_steps"]):
            beat(block, s)
            L, used, times = rep.step(None, n, True)
            plan.check_rows(used, n, block, s)
            phases.append(times)
        rep.sync()
        med = np.median(np.asarray(phases, np.float64), axis=0)  # NaN where not measurable
        for key, v in zip(("compute_s", "wait_s", "comm_s", "update_s"), med, strict=True):
            out[key].append(v)
    return {k: np.asarray(v, np.float64) for k, v in out.items()} | {"final_loss": np.float64(L)}
