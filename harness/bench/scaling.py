"""python -m harness bench --profile scaling  -- data-parallel step time at W = 1 and 2 workers.

    python -m harness bench --profile scaling --report      # `make scaling`: ~3-4 min, 2 cores
    python -m harness bench --profile scaling --impl numpy --size large

A kind of run of the one engine (harness/bench/command.py): the `scaling` profile
(harness/bench/profiles.py says what it sweeps and why), planned by harness/bench/plan.py (its
configurations are cells with `workers` and `launch`), walked by harness/bench/rounds.py, its
blocks the same Block records, its rows typed (harness/store/schema.py's ScalingRow).

What: full-batch training steps of every data-parallel engine (dataparallel/) at W workers, ONE
thread per worker, each pinned to a core of its own. W = 1 starts through the same launcher as
W = 2 (mpiexec -n 1, torchrun with one process), so both pay the same set-up and run under the
same rules; jax's W = 1 (one process, one device) is the baseline of both its W = 2 launches.
The all-reduce is timed apart where the engine allows (dataparallel/scaling.py).

How: every round, every launch (one engine at one W, all sizes in it: one start-up) runs once,
each engine's W = 1 launch right next to its W = 2 launches (A B, then B A the next round; the
engines in a random order, seeded), so a slow minute of a shared machine hits both halves of
a ratio alike. Its value in a round is the median of its plain blocks; the rows
(harness/bench/scaling_rows.py) give the median over rounds with an interval, and the speed-up
t(W=1) / t(W) paired by round. After each round both tables are rewritten atomically: an
interrupted run keeps the rounds it finished (no --resume: start again). A launch that fails
marks its configurations "failed" with the error and is not retried; one that cannot run here
is "unavailable" with the reason.

GPUs (planned, untested: no machine with two GPUs has run it): where nvidia-smi lists GPUs,
W = 1, 2, 4, ... up to their count, torch + NCCL (one GPU per rank) at tiny and huge; the
numpy and jax engines' GPU rows say why they cannot run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time

import dataparallel
from dataparallel.scaling import time_many
from harness.bench import profiles
from harness.bench.budget import NO_BUDGET
from harness.bench.engine import time_rounds
from harness.bench.plan import Plan, plan
from harness.bench.scaling_rows import scaling_rows
from harness.codec import to_dict
from harness.errors import UsageError
from harness.measure import machine
from harness.measure.records import Key, Sample
from harness.measure.spec import Cell, RunSettings
from harness.process import REPO, ChildError, Group
from harness.store import (
    SCALING,
    SCALING_COLUMNS,
    SCALING_SAMPLE_COLUMNS,
    SCALING_SAMPLES,
    RunFolder,
    scaling_sample_rows,
)

REFUSED = ("mode", "dtype", "threads", "time_limit", "wall_budget")


def prepare(args, profile, impls, sizes, devices) -> tuple[RunSettings, Plan, dict]:
    """The settings, plan and meta.json of a new scaling run (impls, sizes, devices: the
    command line's lists, or None)."""
    for name in REFUSED:
        if getattr(args, name, None) not in (None, False):
            raise UsageError(f"--{name.replace('_', '-')} is not used by the scaling profile "
                             "(one thread per worker, float32, a fixed number of rounds)")
    gpus = machine.gpus()
    the_plan = plan(profile, {}, impls, None, devices, None, sizes, gpu_count=len(gpus))
    settings = profiles.settings(profile, threads=profile.threads or 1, cpus=None, check=False)
    meta = {"kind": "scaling", "profile": to_dict(profile), "settings": to_dict(settings),
            "plan": to_dict(the_plan), "machine": machine.collect(str(REPO)), "launches": {},
            "runs": []}
    return settings, the_plan, meta


class Launch:
    """One engine at one W, every size in one start: a subject of the round walker whose block
    is a whole launch (harness/bench/rounds.py)."""

    def __init__(self, key: Key, cells: list[Cell], settings: RunSettings, problems: dict):
        self.key, self.cells, self.settings, self.problems = key, cells, settings, problems
        self.used: dict = {}

    def block(self, samples: int, seconds: float | None = None) -> dict[Key, list[Sample]]:
        s, k = self.settings, self.key
        steps = dict(s.policy.block_steps)
        jobs = [(*self.problems[c.size.name][1:], self.problems[c.size.name][0],
                 steps[c.size.name]) for c in self.cells]
        try:
            results = time_many(
                k.impl, k.mode, k.device, k.workers, jobs, loss=s.loss, lr=s.lr,
                activation=s.activation, dtype=k.dtype, warmup_steps=s.policy.warmup_steps,
                blocks=samples, threads_per_worker=s.threads, pin=True,
                jax_launch=k.launch if k.impl == "jax" and k.workers > 1 else None,
                timeout_s=s.time_limit_s, start_s=s.start_limit_s)
        except (dataparallel.WorkerError, dataparallel.Unavailable, OSError) as exc:
            why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            raise ChildError("failed", why) from None
        self.used = _used(results[0])
        return {Key.of(c): [Sample(step, r["cpu_per_wall"][b],
                                   *(r[p][b] if b < len(r[p]) else None
                                     for p in ("compute_s", "wait_s", "comm_s", "update_s")))
                            for b, step in enumerate(r["step_s"])]
                for c, r in zip(self.cells, results, strict=True)}

    def wait_quiet(self) -> float:
        return 0.0  # its processes have exited


def _groups(launches: dict) -> dict:
    """{an engine's W = 1 launch: its W > 1 launches} (a launch with no W = 1: alone)."""
    groups: dict = {}
    for k in launches:
        if k.workers == 1:
            groups.setdefault(k, [])
    for k in launches:
        if k.workers != 1:
            base = next((b for b in groups if (b.impl, b.mode, b.device, b.dtype) ==
                         (k.impl, k.mode, k.device, k.dtype)), None)
            groups.setdefault(base or k, []).extend([k] if base else [])
    return groups


def launch_of(cell: Cell) -> Key:
    return Key(cell.impl, cell.mode, cell.device, cell.dtype, "", cell.launch, cell.workers)


def name(key: Key) -> str:
    return f"{key.impl}/{key.mode} {key.launch} {key.device} W={key.workers}"


def unavailable(cell: Cell, gpu_count: int, usable_cores: int) -> str:
    """Why a configuration cannot run here ("" when it can)."""
    if cell.device == "cpu" and cell.workers > usable_cores:
        return (f"{cell.workers} workers need {cell.workers} usable cores (one thread each); "
                f"{usable_cores} here")
    if cell.device == "gpu" and gpu_count == 0:
        return "nvidia-smi lists no GPU"
    ok, why = dataparallel.available(cell.impl, cell.device, cell.mode, cell.workers)
    return "" if ok else why


def measure(folder: RunFolder, settings: RunSettings, the_plan: Plan, group: Group) -> None:
    """Walk every launch of the plan in rounds; rewrite both tables after each round."""
    started = time.time()
    folder.meta["runs"].append({"started_utc": machine.utc_now().isoformat(timespec="seconds")})
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = len(machine.gpus()) if any(c.device == "gpu" for c in the_plan.cells) else 0
    why = {Key.of(c): unavailable(c, gpus, usable or 1) for c in the_plan.cells}
    runnable = [c for c in the_plan.cells if not why[Key.of(c)]]
    problems = {c.size.name: settings.problem(c).problem() for c in runnable}  # once per size
    launches: dict[Key, Launch] = {}
    for c in runnable:
        k = launch_of(c)
        launches.setdefault(k, Launch(k, [], settings, problems)).cells.append(c)
    failed: dict = {}
    policy = settings.policy
    print(f"run folder: {folder.path}  ({len(launches)} launches x {policy.rounds} rounds)")

    def on_round(done: int, records: list, lost: dict) -> None:
        failed.update(lost)
        for k, launch in launches.items():
            if launch.used:
                folder.meta["launches"].setdefault(name(k), launch.used)
        _write(folder, settings, the_plan, records, failed, why)
        print(f"round {done}/{policy.rounds} done ({time.time() - started:.0f} s)", flush=True)

    try:
        # The engine every run shares (harness/bench/engine.py): each engine's W = 1 launch
        # next to its W = 2 launches, A B then B A; a fixed number of rounds (a launch is
        # seconds: no adaptive rounds, no canary, which times a block inside one worker).
        time_rounds(launches, _groups(launches), dataclasses.replace(
            policy, pairing="alternate", max_rounds=None, canary_limit=None), NO_BUDGET, None,
            settings.seed, on_round=on_round)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {folder.path} keeps the rounds it finished")
        raise
    finally:
        folder.meta["runs"][-1].update(
            finished_utc=machine.utc_now().isoformat(timespec="seconds"),
            seconds=round(time.time() - started, 1))
        with contextlib.suppress(OSError):
            folder.save_meta()
    for k, exc in failed.items():
        print(f"{name(k)} failed: {exc.reason}")
    print(f"done in {time.time() - started:.0f} s: {folder.path}")


def _write(folder, settings, the_plan, records, failed, why) -> None:
    """Samples first, scaling.csv (the rows readers use) last; both atomically."""
    reasons = {Key.of(c): failed[launch_of(c)].reason for c in the_plan.cells
               if launch_of(c) in failed}
    used = {Key.of(c): folder.meta["launches"].get(name(launch_of(c)), {})
            for c in the_plan.cells}
    rows = scaling_rows(the_plan.cells, records, reasons, why, used,
                        dict(settings.policy.block_steps))
    folder.write_table(SCALING_SAMPLES, SCALING_SAMPLE_COLUMNS, scaling_sample_rows(records))
    folder.write_table(SCALING, SCALING_COLUMNS, rows)
    folder.save_meta()


def _used(res: dict) -> dict:
    used = res["used"]
    return {"launcher": used.get("launcher"), "engine": used.get("engine"),
            "processes": used.get("processes"), "threads_per_worker": used.get("threads_per_worker"),
            "pinned": used.get("pinned"), "comm_method": res.get("comm_method"),
            "cores": [w.get("cores") for w in used.get("worker_info") or []],
            "worker_threads": [w.get("threads") for w in used.get("worker_info") or []]}
