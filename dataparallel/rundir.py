"""The run folder: how the caller and its W workers talk, and what a worker does to be watched.

    spec.json          what to do: the engine, W, and a list of tasks (grads, train, time)
    inputs.npz         each task's params W1 b1 W2 b2, X and T, already in the task's dtype
    status-<rank>.npy  a memory-mapped heartbeat per worker (pid, task, epoch, batch, phase, time,
                       beats): plain stores, no syscall per step, so the caller can say which
                       worker hung and where, and when its start-up (imports, connecting, the
                       first step with its compile) ended: at its second beat
    info-<rank>.json   what the worker runs with: host, pid, cores it may use, threads
    error-<rank>.txt   a worker's traceback, written BEFORE any clean-up (its partners fail a
                       moment later with "connection closed by peer": the earliest file wins)
    result.npz         rank 0 only, atomically: each task's results under "<task>.<name>"

A task list, not one run per call: a launch costs 0.2 s (MPI) to 4 s (torchrun), so the check
runs every problem of an engine in one launch. NumPy only; no framework is imported here.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from harness import process
from impls.contract import PARAM_NAMES


@dataclass
class Spec:
    """Everything a worker needs besides the arrays (spec.json)."""

    impl: str              # numpy, torch, jax
    mode: str
    device: str
    workers: int
    tasks: list            # dicts: kind (grads | train | time), loss, dtype, activation, lr,
    #                        epochs, batch_size, seed; time: warmup, block_steps, blocks
    timeout_s: float       # collectives give up after this (the caller kills earlier)
    threads: int = 1       # threads per worker
    pin: bool = False      # rank r -> core r (timing runs); a one-process jax mesh -> W cores
    fault: str = ""        # test hook: "crash:RANK:STEP", "hang:...", "exit:..." (maybe_fault)
    owner_pid: int = 0     # the calling process: workers exit when it is gone (watchdog)
    engine_opts: dict = field(default_factory=dict)  # jax: {"launch": "processes" | "devices"}


def write_run(run_dir: Path, spec: Spec, inputs: list[tuple[dict, np.ndarray, np.ndarray]]) -> None:
    """spec.json and inputs.npz; inputs[i] = (P, X, T) of task i, in its dtype."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, (P, X, T) in enumerate(inputs):
        arrays.update({f"{i}.X": X, f"{i}.T": T, **{f"{i}.{k}": P[k] for k in PARAM_NAMES}})
    np.savez(run_dir / "inputs.npz", **arrays)
    (run_dir / "spec.json").write_text(json.dumps(asdict(spec)))


def read_run(run_dir: Path) -> tuple[Spec, list]:
    run_dir = Path(run_dir)
    spec = Spec(**json.loads((run_dir / "spec.json").read_text()))
    with np.load(run_dir / "inputs.npz") as z:
        inputs = [({k: z[f"{i}.{k}"] for k in PARAM_NAMES}, z[f"{i}.X"], z[f"{i}.T"])
                  for i in range(len(spec.tasks))]
    return spec, inputs


def write_result(run_dir: Path, results: list[dict], **meta) -> None:
    """rank 0 only: result.npz, atomically (the caller never sees half a file)."""
    arrays = {f"{i}.{k}": np.asarray(v) for i, r in enumerate(results) for k, v in r.items()}
    tmp = Path(run_dir) / "result.tmp.npz"
    np.savez(tmp, **arrays, **{k: np.asarray(v) for k, v in meta.items()})
    os.replace(tmp, Path(run_dir) / "result.npz")


def read_result(run_dir: Path) -> tuple[list[dict], dict]:
    """(one dict per task, the run's metadata) from result.npz."""
    tasks: dict[int, dict] = {}
    meta = {}
    with np.load(Path(run_dir) / "result.npz") as z:
        for key in z.files:
            head, _, name = key.partition(".")
            if head.isdigit() and name:
                tasks.setdefault(int(head), {})[name] = z[key]
            else:
                meta[key] = z[key].item() if z[key].ndim == 0 else z[key]
    return [tasks.get(i, {}) for i in range(max(tasks, default=-1) + 1)], meta


def read_infos(run_dir: Path) -> list[dict]:
    out = []
    for f in sorted(Path(run_dir).glob("info-*.json"), key=lambda f: int(f.stem.split("-")[1])):
        try:
            out.append(json.loads(f.read_text()))
        except (OSError, ValueError):
            pass
    return out


# ---- the heartbeat ---------------------------------------------------------------------------
PHASES = ("starting", "compute", "all-reduce", "done", "failed")
_FIELDS = 7  # pid, task, epoch, batch, phase, time.time(), beats (steps begun)


class Status:
    """A worker's heartbeat: 6 float64 in a memory-mapped file, written with stores only."""

    def __init__(self, run_dir: Path, rank: int):
        spec = json.loads((Path(run_dir) / "spec.json").read_text())
        start_watchdog(spec.get("owner_pid", 0))  # every worker makes a Status first
        self.a = np.lib.format.open_memmap(Path(run_dir) / f"status-{rank}.npy", mode="w+",
                                           dtype=np.float64, shape=(_FIELDS,))
        self.a[:] = (os.getpid(), -1, -1, -1, 0, time.time(), 0)

    def __call__(self, task: int, epoch: int, batch: int, phase: int) -> None:
        a = self.a
        a[1], a[2], a[3], a[4], a[5] = task, epoch, batch, phase, time.time()
        a[6] += 1

    def phase(self, phase: int) -> None:
        """Only the phase (2: entering the all-reduce), at the same task, epoch and batch."""
        self.a[4], self.a[5] = phase, time.time()


def read_status(run_dir: Path) -> dict[int, dict]:
    """rank -> {pid, task, epoch, batch, phase, age_s, started} for every worker that has
    started; `started`: its start-up is over (its first step done, or it finished)."""
    out = {}
    for f in sorted(Path(run_dir).glob("status-*.npy")):
        try:
            a = np.load(f, mmap_mode="r").copy()
        except (ValueError, OSError, EOFError):  # being created right now
            continue
        out[int(f.stem.split("-")[1])] = dict(
            pid=int(a[0]), task=int(a[1]), epoch=int(a[2]), batch=int(a[3]),
            phase=PHASES[int(a[4])], age_s=time.time() - a[5],
            started=bool(a[6] >= 2 or PHASES[int(a[4])] in ("done", "failed")))
    return out


def write_info(run_dir: Path, rank: int, **extra) -> None:
    """info-<rank>.json: where this worker runs and with how many cores and threads."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    info = {"rank": rank, "pid": os.getpid(), "host": socket.gethostname(), "cores": cores, **extra}
    (Path(run_dir) / f"info-{rank}.json").write_text(json.dumps(info))


def pin_to_cores(first: int, count: int = 1) -> list[int]:
    """Restrict this worker to `count` usable cores from index `first` (wrapping).

    The timing rule is one thread per worker. Environment variables and torch.set_num_threads
    hold OpenBLAS and torch to one thread, XLA:CPU not: a jax process with
    --xla_cpu_multi_thread_eigen=false still ran at 1.8 CPU-seconds per second on 2 cores
    (measured). XLA sizes its pools from the CPU affinity when its backend starts, so affinity,
    set before jax starts, is the lever that holds, for every engine alike.
    """
    cores = sorted(os.sched_getaffinity(0))
    return process.pin(sorted({cores[(first + i) % len(cores)] for i in range(count)}))


# ---- a worker's guards ------------------------------------------------------------------------
def start_watchdog(owner_pid: int, period_s: float = 1.0) -> None:
    """Exit this worker (code 3) when the process that asked for the run is gone.

    The caller kills every worker when it fails, times out or is interrupted, but a caller
    killed with SIGKILL runs no code, and torchrun's workers live in sessions of their own
    (nothing else would reach them): each worker checks its owner once a second.
    """
    if not owner_pid:  # multi-host runs started by hand have no owner
        return

    def watch():
        while True:
            time.sleep(period_s)
            try:
                os.kill(owner_pid, 0)
            except ProcessLookupError:
                os._exit(3)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="dp-owner-watchdog", daemon=True).start()


def maybe_fault(fault: str, rank: int, step: int) -> None:
    """Test hook: make one worker crash, hang, vanish or start slowly at one step ("crash:1:3";
    "slow:1:0": 3 s asleep before its first step, as a worker importing on a loaded machine)."""
    if not fault:
        return
    kind, r, s = fault.split(":")
    if int(r) != rank or int(s) != step:
        return
    if kind == "crash":
        raise RuntimeError(f"injected crash in rank {rank} at step {step}")
    if kind == "hang":
        while True:  # a stuck worker: the caller's time limit must end it
            time.sleep(1)
    if kind == "exit":  # dies without a Python traceback (a signal, the OOM killer)
        os._exit(9)
    if kind == "slow":
        time.sleep(3.0)


def worker_guard(run_dir: Path, rank: int, status: Status | None, fn):
    """Run fn(); on any exception write error-<rank>.txt (the first one only) and re-raise."""
    try:
        return fn()
    except BaseException as exc:
        if status is not None:
            status.a[4] = PHASES.index("failed")
        path = Path(run_dir) / f"error-{rank}.txt"
        if not path.exists():  # nested guards: the innermost (first) error is the one kept
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            path.write_text(f"{time.time()!r}\n{text}")
            print(f"[rank {rank}] {text}", file=sys.stderr, flush=True)  # the launcher's log
        raise
