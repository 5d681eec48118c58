"""Start W workers through an engine's own launcher, watch them, and leave nothing behind.

    with process.Group() as group:
        info = launch([[mpiexec, "-n", "2", python, "-m", "dataparallel.numpy_mpi", run_dir]],
                      run_dir, group, processes=2, timeout_s=60)

`commands` is one command line (mpiexec, torchrun: the launcher starts the workers) or one per
worker (jax processes: JAX has no launcher, this is it). harness/process.py starts them and
kills whatever they started, also what left their session (torchrun starts every worker in a
session of its own, so killpg alone would orphan them); then nothing may be alive
(LaunchInfo.survivors, 0, asserted by the tests). The workers' temp files (TMPDIR, where
torchrun keeps its torchelastic_* logs) go into the run folder, which the caller removes.

A failure is reported with the failing worker's own message (the earliest error-<rank>.txt);
a worker that died silently, or hangs, is named from the heartbeats.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from dataparallel import rundir
from harness import process

START_ENV = "BACKPROP_BENCH_DP_START_TIMEOUT"  # seconds the workers may take to start


def start_limit() -> float:
    """Seconds the workers may take to start (imports, connecting, the first step with its
    compile: slow on a loaded machine), $BACKPROP_BENCH_DP_START_TIMEOUT or 300."""
    return float(os.environ.get(START_ENV) or 300.0)


class WorkerError(RuntimeError):
    """A worker failed: the first line names the rank and its exception."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details  # the full traceback / launcher log tail


class WorkerTimeout(WorkerError):
    """The workers did not finish in time, or stopped making progress (a hang, a deadlock)."""


@dataclass
class LaunchInfo:
    wall_s: float = 0.0            # launch to exit of every command
    start_s: float | None = None   # launch to every worker's first step done (start-up)
    returncodes: list = field(default_factory=list)
    killed: int = 0                # processes signalled at the end
    survivors: int = 0             # still alive after SIGKILL (must be 0)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (a small race until the launcher binds it: retried)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# What a worker says when a PARTNER died: never the root cause when another rank failed.
PEER_PHRASES = ("by peer", "connection refused", "broken pipe", "remote worker",
                "connection closed", "failed to recv", "socket closed")


def _first_error(run_dir: Path) -> tuple[int, str] | None:
    found = []
    for f in run_dir.glob("error-*.txt"):
        try:
            stamp, text = f.read_text().split("\n", 1)
            found.append((float(stamp), int(f.stem.split("-")[1]), text))
        except (OSError, ValueError):
            continue  # being written: the next poll reads it
    return min(found)[1:] if found else None


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _silent_deaths(run_dir: Path) -> list[int]:
    """Ranks whose process is gone without an error file (killed, os._exit, a segfault)."""
    return sorted(r for r, s in rundir.read_status(run_dir).items()
                  if _gone(s["pid"]) and s["phase"] not in ("done", "failed")
                  and not (run_dir / f"error-{r}.txt").exists())


def _summary(text: str) -> str:
    """The exception line of a traceback (JAX's note about filtered frames skipped)."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    while lines and (lines[-1].startswith("For simplicity, JAX") or set(lines[-1]) <= {"-"}):
        lines.pop()
    return lines[-1].strip()[:500] if lines else "(no message)"


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("---")]
    errs = [ln for ln in lines if "rror" in ln or "xception" in ln or "failed" in ln.lower()]
    return (errs or lines or ["(empty log)"])[-1][:500]


def hang_report(run_dir: Path) -> str:
    """Where each worker is, from its heartbeat, and which one the others wait for."""
    st = rundir.read_status(run_dir)
    if not st:
        return "no worker reported a heartbeat (stuck at start-up?)"
    parts = []
    for rank, s in sorted(st.items()):
        where = ("after its last step" if s["phase"] == "done" else "before its first step"
                 if s["task"] < 0 else f"task {s['task']} epoch {s['epoch']} batch {s['batch']}")
        gone = ", exited" if _gone(s["pid"]) else ""
        parts.append(f"rank {rank} (pid {s['pid']}{gone}) in {s['phase']} at {where}, "
                     f"last heartbeat {s['age_s']:.1f} s ago")
    waiting = [r for r, s in st.items() if s["phase"] == "all-reduce"]
    suspects = sorted(r for r, s in st.items() if s["phase"] in ("starting", "compute"))
    head = (f"suspect rank {', '.join(map(str, suspects))} (its partners wait in the "
            f"all-reduce): " if waiting and suspects else "")
    return head + "; ".join(parts)


def _stalled(run_dir: Path, stall_s: float) -> bool:
    live = [s for s in rundir.read_status(run_dir).values() if s["phase"] not in ("done", "failed")]
    return bool(live) and min(s["age_s"] for s in live) > stall_s


def _started(run_dir: Path, processes: int) -> bool:
    """Is every worker's start-up over (imports, connecting, its first step and compile)?"""
    st = rundir.read_status(run_dir)
    return len(st) >= processes and all(s["started"] for s in st.values())


def launch(commands: list[list[str]], run_dir: Path, group: process.Group, *,
           env: dict | None = None, processes: int = 1, start_s: float | None = None,
           timeout_s: float = 600.0, stall_s: float | None = None, fail_grace_s: float = 3.0,
           term_grace_s: float = 3.0) -> LaunchInfo:
    """Run `commands` (children of `group`) until they all exit; LaunchInfo when all exit 0.

    Two limits, each named in its error: start-up (`start_s`: until each of the `processes`
    workers has made its first step: imports, connecting, the first compile) and work
    (`timeout_s` after that). WorkerError with the failing worker's message when any fails (the
    engine's launcher gets `fail_grace_s` to stop the others, then whatever is left is
    killed); WorkerTimeout past a limit, or when no worker's heartbeat has moved for `stall_s`
    during the work. Nothing started here is left running in any case (the group's tags find
    torchrun's workers in their own sessions too): SIGTERM first (torchrun forwards it to its
    workers), SIGKILL after `term_grace_s` (a jax.distributed process takes SIGTERM for a
    preemption notice and keeps running).
    """
    run_dir, start_s = Path(run_dir), start_s or start_limit()
    env = {**(env or {}), "TMPDIR": str(_tmp(run_dir))}  # torchelastic_* and the like: in here
    info, children = LaunchInfo(), []
    logs = [run_dir / f"launcher-{i}.log" for i in range(len(commands))]
    t0 = time.monotonic()
    failure, where, silent, started_at = None, "", [], None
    try:
        for i, cmd in enumerate(commands):
            children.append(group.start(cmd, env=env, stdout=str(logs[i]), merge_stderr=True))
        next_scan, failed_at, stalled = 0.0, None, False
        while True:
            now = time.monotonic()
            if started_at is None and _started(run_dir, processes):
                started_at = now
            if now >= next_scan:
                next_scan = now + 0.2
                stalled = (stall_s and started_at is not None and failed_at is None
                           and _stalled(run_dir, stall_s))
            codes = [c.poll() for c in children]
            if all(c is not None for c in codes):
                break
            if failed_at is None and (_first_error(run_dir) or any(c not in (None, 0) for c in codes)):
                failed_at = now  # let the engine's launcher stop the others first
                where, silent = hang_report(run_dir), _silent_deaths(run_dir)
            if failed_at is not None and now - failed_at > fail_grace_s:
                break
            if started_at is None and now - t0 > start_s:
                failure = (WorkerTimeout, f"workers did not start within {start_s:g} s (imports, "
                                          f"connecting, the first step): {hang_report(run_dir)}",
                           "")
                break
            if started_at is not None and now - started_at > timeout_s:
                failure = (WorkerTimeout, f"workers did not finish within {timeout_s:g} s of work"
                                          f" (after a start-up of {started_at - t0:.1f} s): "
                                          f"{hang_report(run_dir)}", "")
                break
            if stalled:
                failure = (WorkerTimeout, f"no worker made progress for {stall_s:g} s: "
                                          f"{hang_report(run_dir)}", "")
                break
            time.sleep(0.005 if now - t0 < 1 else 0.02)  # poll fast at first: short runs
        info.wall_s = time.monotonic() - t0
        if started_at is None and _started(run_dir, processes):  # all done between two looks
            started_at = time.monotonic()
        info.start_s = None if started_at is None else started_at - t0
    finally:
        if children:
            info.killed = sum(c.poll() is None for c in children)
            info.survivors = group.kill(term_grace_s)
        info.returncodes = [c.poll() for c in children]
    if failure is None:
        failure = _diagnose(run_dir, info, logs, where, silent)
    if failure is not None:
        cls, msg, details = failure
        if info.survivors:
            msg += f" [{info.survivors} process(es) could not be killed]"
        raise cls(msg, details)
    return info


def _tmp(run_dir: Path) -> Path:
    (run_dir / "tmp").mkdir(exist_ok=True)
    return run_dir / "tmp"


def _diagnose(run_dir: Path, info: LaunchInfo, logs, where: str, silent: list[int]):
    """(error class, one line, details) for a run that ended badly; None if it ended well."""
    err = _first_error(run_dir)
    if err is not None:
        rank, text = err
        peer = any(p in text.lower() for p in PEER_PHRASES)
        if silent and peer and rank not in silent:
            return (WorkerError, f"worker rank {', '.join(map(str, silent))} died without a "
                                 f"Python error (a signal, os._exit, the OOM killer?); then rank "
                                 f"{rank} failed: {_summary(text)}", where + "\n" + text)
        return WorkerError, f"worker rank {rank} failed: {_summary(text)}", text
    if any(c != 0 for c in info.returncodes):
        tails = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in logs
                          if p.exists())
        if not rundir.read_status(run_dir):  # the launcher itself failed: say why
            return (WorkerError, f"the launcher exited with codes {info.returncodes} before any "
                                 f"worker started: {_last_error_line(tails)}", tails)
        return (WorkerError, f"a worker process exited abnormally (exit codes "
                             f"{info.returncodes}) without a Python error (a signal, os._exit, "
                             f"the OOM killer?): {where or hang_report(run_dir)}", tails)
    return None
