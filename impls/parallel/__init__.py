"""Data parallelism: train in W worker processes, each on a contiguous shard of every batch.

    import impls
    impls.get("torch").available("cpu", "eager", workers=2)      # (True, "") or (False, why)
    params, history = impls.get("numpy").train(params, X, T, epochs=10, workers=2)
    history.parallel       # what ran: engine, launcher, processes, threads, cores, drift, time

`Implementation.train(..., workers=W)` and `loss_and_grads(..., workers=W)` validate, check
availability (impls.base.Unavailable) and come here; W = 1 never does. Engines
(impls/parallel/engines.py): numpy through mpiexec and mpi4py, torch through torchrun and
torch.distributed, jax through a Mesh (W processes with jax.distributed, or one process with W
CPU devices; $BACKPROP_BENCH_JAX_LAUNCH chooses). The result equals W = 1 within the contract's
tolerances: each worker weights its local mean by n_r / n and one all-reduce SUMs them.

    run_tasks(name, tasks, inputs, workers=W)   several grads / train / time tasks, ONE launch
                                                (what `check --workers` and the scaling bench use)

Faults: a worker that raises, dies or hangs fails the call with a WorkerError naming that rank
and its error (WorkerTimeout past `timeout_s`, or after STALL_S without any progress); every
process started is killed and none is left (a worker also exits when its caller vanishes).
No framework is imported here (the registry imports this package).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from impls import contract
from impls.contract import PARAM_NAMES
from impls.parallel import engines, plan, rundir
from impls.parallel.engines import ENGINES, Unavailable  # noqa: F401  (public)
from impls.parallel.launcher import LaunchInfo, WorkerError, WorkerTimeout, free_port, launch  # noqa: F401

TIMEOUT_ENV = "BACKPROP_BENCH_DP_TIMEOUT"  # seconds a whole call may take (default 600)
RUN_ROOT_ENV = "BACKPROP_BENCH_DP_RUN_ROOT"  # where run folders go (default: the temp dir)
KEEP_ENV = "BACKPROP_BENCH_DP_KEEP"  # keep run folders (logs, heartbeats) for a post-mortem
STALL_S = 120.0  # no worker's heartbeat moved for this long: a hang


def available(name: str, device: str = "cpu", mode: str | None = None,
              workers: int = 2) -> tuple[bool, str]:
    """(True, "") when implementation `name` can run with `workers` processes; never raises."""
    try:
        workers = contract.check_workers(workers)
        mode = mode or (ENGINES[name][1][0] if name in ENGINES else "")
        return engines.available(name, device, mode, workers)
    except Exception as exc:
        return False, str(exc)


def _task(kind, P, X, T, *, loss="mse", lr=0.5, epochs=1, batch_size=None, dtype="float64",
          seed=0, activation="sigmoid", warmup=0, block_steps=1, blocks=1, device="cpu",
          workers=1) -> tuple[dict, tuple]:
    """One validated task (as Implementation.train validates) and its inputs, cast."""
    contract.check_call(P, X, T, loss, dtype, device, activation)
    lr, epochs, batch_size, seed = contract.check_train(lr, epochs, batch_size, seed, dtype)
    contract.check_workers(workers, len(X), batch_size if kind == "train" else None)
    for name, v in (("warmup", warmup), ("block_steps", block_steps), ("blocks", blocks)):
        contract.check_number(name, v, "non-negative int" if name == "warmup" else "positive int")
    task = dict(kind=kind, loss=loss, lr=lr, epochs=epochs, batch_size=batch_size, dtype=dtype,
                seed=seed, activation=activation, warmup=int(warmup),
                block_steps=int(block_steps), blocks=int(blocks))
    return task, (contract.cast(P, dtype), np.array(X, dtype=dtype), np.array(T, dtype=dtype))


def task(kind: str, params, X, T, **options) -> tuple[dict, tuple]:
    """A task for run_tasks: kind "grads" (one all-reduced full-batch gradient), "train"
    (options as Implementation.train) or "time" (full-batch steps: warmup, then blocks of
    block_steps; see scaling.py). Validated here: one-line ContractError."""
    if kind not in ("grads", "train", "time"):
        raise contract.ContractError(f"unknown task kind {kind!r}; expected grads, train or time")
    return _task(kind, params, X, T, **options)


def run_tasks(name: str, tasks: list[tuple[dict, tuple]], *, workers: int, device: str = "cpu",
              mode: str | None = None, timeout_s: float | None = None, stall_s: float = STALL_S,
              threads: int | None = None, pin: bool = False, jax_launch: str | None = None,
              fault: str = "") -> tuple[list[dict], dict]:
    """Run every task in W workers of `name`'s engine, in ONE launch (W = 1 launches one).

    tasks: from task(). Returns (one result dict per task, what was used: engine, launcher,
    processes, workers, threads per worker, each worker's host/cores/threads, wall time).
    Raises Unavailable, WorkerError / WorkerTimeout, or ContractError for bad input.
    """
    workers = contract.check_workers(workers)
    mode = mode or (ENGINES[name][1][0] if name in ENGINES else "")
    ok, why = available(name, device, mode, workers)
    if not ok:
        raise Unavailable(f"{name} ({mode}) with workers={workers} is unavailable on {device}: {why}")
    timeout_s = float(timeout_s or os.environ.get(TIMEOUT_ENV) or 600)
    threads = threads or plan.threads_for(workers)
    spec = rundir.Spec(impl=name, mode=mode, device=device, workers=workers,
                       tasks=[t for t, _ in tasks], timeout_s=timeout_s, threads=threads, pin=pin,
                       fault=fault, owner_pid=os.getpid(),
                       engine_opts={"launch": engines.jax_launch(jax_launch) if workers > 1
                                     else "devices"} if name == "jax" else {})
    root = os.environ.get(RUN_ROOT_ENV) or None
    for attempt in range(3):  # a free port is a race: another process may bind it first
        run_dir = Path(tempfile.mkdtemp(prefix=f"dp-{name}-", dir=root))
        try:
            rundir.write_run(run_dir, spec, [i for _, i in tasks])
            how = engines.launch_plan(name, run_dir, workers, threads, free_port(),
                                      spec.engine_opts.get("launch"))
            info = launch(how["commands"], run_dir, env=how["env"], timeout_s=timeout_s,
                          stall_s=min(stall_s, timeout_s), fail_grace_s=how["fail_grace_s"],
                          term_grace_s=how["term_grace_s"])
            if not (run_dir / "result.npz").exists():
                raise WorkerError("the workers exited 0 but rank 0 wrote no result.npz")
            results, meta = rundir.read_result(run_dir)
            used = {"impl": name, "mode": mode, "device": device, "workers": workers,
                    "engine": meta.get("engine", ""), "launcher": how["launcher"],
                    "processes": how["processes"], "threads_per_worker": threads, "pinned": pin,
                    "worker_info": rundir.read_infos(run_dir), "wall_s": round(info.wall_s, 3)}
            return results, used
        except WorkerError as exc:
            text = f"{exc} {exc.details}".lower()
            if attempt < 2 and ("address already in use" in text or "eaddrinuse" in text):
                continue
            raise
        finally:
            if os.environ.get(KEEP_ENV):
                print(f"data-parallel run folder kept: {run_dir}")
            else:
                shutil.rmtree(run_dir, ignore_errors=True)
    raise AssertionError("unreachable")  # pragma: no cover


def train(name: str, params, X, T, *, loss="mse", lr=0.5, epochs=20, batch_size=None,
          dtype="float64", device="cpu", seed=0, mode=None, activation="sigmoid", workers=2,
          **run_options):
    """Implementation.train with W workers: (params, history) as W = 1 returns them; the
    history's `parallel` attribute says what ran (and the replicas' drift, 0 when right)."""
    t = task("train", params, X, T, loss=loss, lr=lr, epochs=epochs, batch_size=batch_size,
             dtype=dtype, seed=seed, activation=activation, device=device, workers=workers)
    (out,), used = run_tasks(name, [t], workers=workers, device=device, mode=mode, **run_options)
    history = contract.History(float(v) for v in out["history"])
    history.parallel = {**used, "replica_drift": float(out["replica_drift"])}
    return {k: np.asarray(out[k], dtype=dtype) for k in PARAM_NAMES}, history


def loss_and_grads(name: str, params, X, T, *, loss="mse", dtype="float64", device="cpu",
                   mode=None, activation="sigmoid", workers=2, **run_options):
    """The all-reduced (loss, grads) of one full batch split over W workers."""
    t = task("grads", params, X, T, loss=loss, dtype=dtype, activation=activation, device=device,
             workers=workers)
    (out,), _ = run_tasks(name, [t], workers=workers, device=device, mode=mode, **run_options)
    return float(out["loss"]), {k: np.asarray(out[k], dtype=dtype) for k in PARAM_NAMES}
