"""Step time at W workers, with the communication separated: the data for a scaling benchmark.

    from dataparallel.scaling import time_steps, time_many
    r = time_steps("numpy", "default", "cpu", 2, X, T, params, loss="bce", lr=0.1,
                   dtype="float32", warmup_steps=5, block_steps=20, blocks=5)
    r["step_s"], r["comm_s"], r["used"]["launcher"], r["used"]["worker_info"]

One launch: the workers start once (W = 1 too, so both sides pay the same set-up and run under
the same rules), run `warmup_steps` full-batch steps, then `blocks` times: a PLAIN block of
`block_steps` steps timed as a whole (the step as a user sees it: no barrier), then a
PROFILED block whose steps are timed phase by phase (numpy, torch: compute | barrier (wait: the
imbalance between ranks, not communication) | the all-reduce call alone | update; jax: a split
step, local gradients per device | their sum, the all-reduce XLA would insert | update, each
synchronised, no wait separable). Rank 0's clocks. One thread per worker by default, each
worker pinned to its own core (rank r -> core r; the one-process jax mesh -> W cores): XLA
ignores its one-thread flags, affinity holds it (measured). Every step reads its loss and row
count on the host (the row audit), at W = 1 as at W > 1.
"""

from __future__ import annotations

import math

from dataparallel import run_tasks, task

COMM_METHOD = {
    "numpy": "comm.Barrier() then comm.Allreduce timed alone (profiled blocks)",
    "torch": "dist.barrier() then dist.all_reduce timed alone (profiled blocks)",
    "jax": "split step: shard_map local gradients | their sum over the mesh (the all-reduce) | "
           "update, each block_until_ready; no barrier (wait not separable)",
}


def time_steps(impl: str, mode: str | None, device: str, workers: int, X, T, params, *,
               warmup_steps: int = 5, block_steps: int = 10, **options) -> dict:
    """Launch `workers` workers of `impl` once and time full-batch training steps on (X, T).

    Returns {"step_s": [seconds per step, one per plain block], "cpu_per_wall": [rank 0's
    CPU-seconds per wall-second, per plain block], "compute_s", "wait_s", "comm_s",
    "update_s": [the median step phase of each profiled block; None where the engine cannot
    separate it], "final_loss", "comm_method", "used": {engine, launcher, processes, workers,
    threads_per_worker, pinned, worker_info: [{rank, pid, host, cores, threads, ...}], wall_s}}.
    Raises Unavailable, WorkerError / WorkerTimeout, ContractError as run_tasks does.
    """
    (result,) = time_many(impl, mode, device, workers, [(X, T, params, block_steps)],
                          warmup_steps=warmup_steps, **options)
    return result


def time_many(impl: str, mode: str | None, device: str, workers: int, problems, *,
              loss: str = "bce", lr: float = 0.1, activation: str = "sigmoid",
              dtype: str = "float32", warmup_steps: int = 5, blocks: int = 5,
              threads_per_worker: int = 1, pin: bool = True, jax_launch: str | None = None,
              timeout_s: float | None = None, start_s: float | None = None) -> list[dict]:
    """time_steps for several problems [(X, T, params, block_steps), ...] in ONE launch (the
    scaling bench: every size of one engine and W pays one start-up); one result each, in order.
    """
    tasks = [task("time", P, X, T, loss=loss, lr=lr, dtype=dtype, activation=activation,
                  device=device, workers=workers, warmup=warmup_steps, block_steps=steps,
                  blocks=blocks) for X, T, P, steps in problems]
    outs, used = run_tasks(impl, tasks, workers=workers, device=device, mode=mode,
                           timeout_s=timeout_s, threads=threads_per_worker, pin=pin,
                           jax_launch=jax_launch, start_s=start_s)

    def column(out, key):
        return [None if math.isnan(v) else float(v) for v in out[key]]

    return [{"impl": impl, "mode": used["mode"], "device": device, "workers": workers,
             "dtype": dtype, "n_samples": len(X), "block_steps": steps,
             "warmup_steps": warmup_steps, "step_s": column(out, "step_s"),
             "cpu_per_wall": column(out, "cpu_per_wall"), "compute_s": column(out, "compute_s"),
             "wait_s": column(out, "wait_s"), "comm_s": column(out, "comm_s"),
             "update_s": column(out, "update_s"), "final_loss": float(out["final_loss"]),
             "comm_method": COMM_METHOD.get(impl, ""), "used": used}
            for out, (X, T, P, steps) in zip(outs, problems, strict=True)]
