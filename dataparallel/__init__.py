"""Data parallelism: train in W worker processes, each on a contiguous shard of every batch.

    import impls
    impls.get("torch").available("cpu", "eager", workers=2)      # (True, "") or (False, why)
    params, history = impls.get("numpy").train(params, X, T, epochs=10, workers=2)
    history.parallel       # what ran: engine, launcher, processes, threads, cores, drift, time

This package depends on the implementations (impls/), never the other way round: it registers
itself in impls.base's hook (`register_data_parallel`), and impls/__init__.py, the registry,
imports it, so `Implementation.train(..., workers=W)` and `loss_and_grads(..., workers=W)`
validate, check availability (impls.base.Unavailable) and come here; W = 1 never does. Engines
(dataparallel/engines.py): numpy through mpiexec and mpi4py, torch through torchrun and
torch.distributed, jax through a Mesh (W processes with jax.distributed, or one process with W
CPU devices; $BACKPROP_BENCH_JAX_LAUNCH chooses). The result equals W = 1 within the contract's
tolerances: each worker weights its local mean by n_r / n and one all-reduce SUMs them.

    run_tasks(name, tasks, inputs, workers=W)   several grads / train / time tasks, ONE launch
                                                (what `check --workers` and the scaling bench use)

Faults: a worker that raises, dies or hangs fails the call with a WorkerError naming that rank
and its error (WorkerTimeout past the start-up limit, past `timeout_s` of work after it, or
after STALL_S without any progress); every process started is killed and none is left (a
worker also exits when its caller vanishes). Nothing is left in the temp folder either, when a
call ends normally, by an error, or by SIGINT or SIGTERM (then cleaned up first, and the
process still ends by that signal). No framework is imported here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from dataparallel import engines, rundir
from dataparallel.engines import ENGINES
from dataparallel.launcher import (  # noqa: F401  (public)
    START_ENV,
    LaunchInfo,
    WorkerError,
    WorkerTimeout,
    free_port,
    launch,
    start_limit,
)
from harness import process
from impls import base, contract
from impls.base import Unavailable  # noqa: F401  (public: the one Unavailable)
from impls.contract import PARAM_NAMES

TIMEOUT_ENV = "BACKPROP_BENCH_DP_TIMEOUT"  # seconds of work a call may take (default 600)
RUN_ROOT_ENV = "BACKPROP_BENCH_DP_RUN_ROOT"  # where run folders go (default: the temp dir)
KEEP_ENV = "BACKPROP_BENCH_DP_KEEP"  # keep run folders (logs, heartbeats) for a post-mortem
STALL_S = 120.0  # no worker's heartbeat moved for this long during the work: a hang


def available(name: str, device: str = "cpu", mode: str | None = None,
              workers: int = 2) -> tuple[bool, str]:
    """(True, "") when implementation `name` can run with `workers` processes; never raises.
    (The inputs are validated once, where they enter: Implementation.available.)"""
    try:
        mode = mode or (ENGINES[name][1][0] if name in ENGINES else "")
        return engines.available(name, device, mode, int(workers))
    except Exception as exc:
        return False, str(exc)


def task(kind: str, params, X, T, **options) -> tuple[dict, tuple]:
    """A task for run_tasks: kind "grads" (one all-reduced full-batch gradient), "train"
    (options as Implementation.train) or "time" (full-batch steps: warmup, then blocks of
    block_steps; see scaling.py). Validated here: one-line ContractError."""
    if kind not in ("grads", "train", "time"):
        raise contract.ContractError(f"unknown task kind {kind!r}; expected grads, train or time")
    o = {"loss": "mse", "lr": 0.5, "epochs": 1, "batch_size": None, "dtype": "float64",
         "seed": 0, "activation": "sigmoid", "warmup": 0, "block_steps": 1, "blocks": 1,
         "device": "cpu", "workers": 1, **options}
    if unknown := sorted(set(o) - set(_TASK_DEFAULTS) - {"device", "workers"}):
        raise contract.ContractError(f"unknown task option {unknown[0]!r}")
    contract.check_call(params, X, T, o["loss"], o["dtype"], o["device"], o["activation"])
    o["lr"], o["epochs"], o["batch_size"], o["seed"] = contract.check_train(
        o["lr"], o["epochs"], o["batch_size"], o["seed"], o["dtype"])
    contract.check_workers(o["workers"], len(X), o["batch_size"] if kind == "train" else None)
    for name in ("warmup", "block_steps", "blocks"):
        o[name] = contract.check_number(name, o[name], "non-negative int" if name == "warmup"
                                        else "positive int")
    return _task(kind, params, X, T, o)


_TASK_DEFAULTS = ("loss", "lr", "epochs", "batch_size", "dtype", "seed", "activation", "warmup",
                  "block_steps", "blocks")


def _task(kind: str, P, X, T, o: dict) -> tuple[dict, tuple]:
    """A task from validated options, its inputs cast to its dtype."""
    dtype = o["dtype"]
    return ({"kind": kind, **{k: o[k] for k in _TASK_DEFAULTS}},
            (contract.cast(P, dtype), np.array(X, dtype=dtype), np.array(T, dtype=dtype)))


def run_tasks(name: str, tasks: list[tuple[dict, tuple]], *, workers: int, device: str = "cpu",
              mode: str | None = None, timeout_s: float | None = None, stall_s: float = STALL_S,
              threads: int | None = None, pin: bool = False, jax_launch: str | None = None,
              fault: str = "", start_s: float | None = None) -> tuple[list[dict], dict]:
    """Run every task in W workers of `name`'s engine, in ONE launch (W = 1 launches one).

    tasks: from task(). Returns (one result dict per task, what was used: engine, launcher,
    processes, workers, threads per worker, each worker's host/cores/threads, wall time and
    start-up time). Raises Unavailable, WorkerError / WorkerTimeout, or ContractError for bad
    input. Limits: `start_s` for the workers to start (imports, connecting, the first step:
    default $BACKPROP_BENCH_DP_START_TIMEOUT or 300 s), then `timeout_s` of work (default
    $BACKPROP_BENCH_DP_TIMEOUT or 600 s).
    """
    workers = contract.check_workers(workers)
    mode = mode or (ENGINES[name][1][0] if name in ENGINES else "")
    ok, why = available(name, device, mode, workers)
    if not ok:
        raise Unavailable(f"{name} ({mode}) with workers={workers} is unavailable on {device}: {why}")
    return _run(name, tasks, workers=workers, device=device, mode=mode, timeout_s=timeout_s,
                stall_s=stall_s, threads=threads, pin=pin, jax_launch=jax_launch, fault=fault,
                start_s=start_s)


def _run(name, tasks, *, workers, device, mode, timeout_s=None, stall_s=STALL_S, threads=None,
         pin=False, jax_launch=None, fault="", start_s=None):
    """run_tasks for validated inputs and an engine known to be available."""
    timeout_s = float(timeout_s or os.environ.get(TIMEOUT_ENV) or 600)
    start_s = float(start_s or start_limit())
    threads = threads or engines.threads_for(workers)
    # The workers' own collectives give up only after both limits: the caller's limits fire
    # first, and say which worker hung (a collective timing out first would hide it).
    spec = rundir.Spec(impl=name, mode=mode, device=device, workers=workers,
                       tasks=[t for t, _ in tasks], timeout_s=start_s + timeout_s + 30,
                       threads=threads, pin=pin,
                       fault=fault, owner_pid=os.getpid(),
                       engine_opts={"launch": engines.jax_launch(jax_launch) if workers > 1
                                     else "devices"} if name == "jax" else {})
    root = os.environ.get(RUN_ROOT_ENV) or None
    with process.interrupts(redeliver=True), process.Group(root) as group:
        for attempt in range(3):  # a free port is a race: another process may bind it first
            run_dir = _run_dir(group, name, attempt, root)
            try:
                rundir.write_run(run_dir, spec, [i for _, i in tasks])
                how = engines.launch_plan(name, run_dir, workers, threads, free_port(),
                                          spec.engine_opts.get("launch"))
                info = launch(how["commands"], run_dir, group, env=how["env"],
                              processes=how["processes"], start_s=start_s,
                              timeout_s=timeout_s, stall_s=stall_s,
                              fail_grace_s=how["fail_grace_s"], term_grace_s=how["term_grace_s"])
                if not (run_dir / "result.npz").exists():
                    raise WorkerError("the workers exited 0 but rank 0 wrote no result.npz")
                results, meta = rundir.read_result(run_dir)
                used = {"impl": name, "mode": mode, "device": device, "workers": workers,
                        "engine": meta.get("engine", ""), "launcher": how["launcher"],
                        "processes": how["processes"], "threads_per_worker": threads,
                        "pinned": pin, "worker_info": rundir.read_infos(run_dir),
                        "wall_s": round(info.wall_s, 3),
                        "start_s": None if info.start_s is None else round(info.start_s, 3)}
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


def _run_dir(group: process.Group, name: str, attempt: int, root) -> Path:
    """The run folder: inside the group's temp folder (removed with it, also when this process
    is interrupted; reaped by the next run if it is killed), or, to keep it, beside it."""
    if os.environ.get(KEEP_ENV):
        return Path(tempfile.mkdtemp(prefix=f"dp-{name}-", dir=root))
    return group.folder(f"dp-{name}-{attempt}")


def train(name: str, params, X, T, *, loss="mse", lr=0.5, epochs=20, batch_size=None,
          dtype="float64", device="cpu", seed=0, mode=None, activation="sigmoid", workers=2,
          **run_options):
    """Implementation.train with W workers: (params, history) as W = 1 returns them; the
    history's `parallel` attribute says what ran (and the replicas' drift, 0 when right)."""
    t = task("train", params, X, T, loss=loss, lr=lr, epochs=epochs, batch_size=batch_size,
             dtype=dtype, seed=seed, activation=activation, device=device, workers=workers)
    return _train(name, t, workers, device, mode, dtype, run_options)


def loss_and_grads(name: str, params, X, T, *, loss="mse", dtype="float64", device="cpu",
                   mode=None, activation="sigmoid", workers=2, **run_options):
    """The all-reduced (loss, grads) of one full batch split over W workers."""
    t = task("grads", params, X, T, loss=loss, dtype=dtype, activation=activation, device=device,
             workers=workers)
    return _grads(name, t, workers, device, mode, dtype, run_options)


def _train(name, t, workers, device, mode, dtype, run_options, run=run_tasks):
    (out,), used = run(name, [t], workers=workers, device=device, mode=mode, **run_options)
    history = contract.History(float(v) for v in out["history"])
    history.parallel = {**used, "replica_drift": float(out["replica_drift"])}
    return {k: np.asarray(out[k], dtype=dtype) for k in PARAM_NAMES}, history


def _grads(name, t, workers, device, mode, dtype, run_options, run=run_tasks):
    (out,), _ = run(name, [t], workers=workers, device=device, mode=mode, **run_options)
    return float(out["loss"]), {k: np.asarray(out[k], dtype=dtype) for k in PARAM_NAMES}


class _Engines:
    """What impls.base's hook calls for workers > 1, with inputs Implementation has already
    validated (every rule is checked once, where a value enters)."""

    @staticmethod
    def available(name, device, mode, workers):
        return available(name, device, mode, workers)

    @staticmethod
    def train(name, params, X, T, *, workers, device, mode, dtype, **options):
        o = {"warmup": 0, "block_steps": 1, "blocks": 1, "dtype": dtype, **options}
        return _train(name, _task("train", params, X, T, o), workers, device, mode, dtype, {},
                      run=_run)

    @staticmethod
    def loss_and_grads(name, params, X, T, *, workers, device, mode, dtype, **options):
        o = {"lr": 0.5, "epochs": 1, "batch_size": None, "seed": 0, "warmup": 0,
             "block_steps": 1, "blocks": 1, "dtype": dtype, **options}
        return _grads(name, _task("grads", params, X, T, o), workers, device, mode, dtype, {},
                      run=_run)


base.register_data_parallel(_Engines)
