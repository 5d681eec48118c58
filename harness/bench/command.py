"""python -m harness bench [--profile default] [--impl A,B] [--report]  -- time every impl.

    python -m harness bench --profile quick --impl numpy --size tiny
    python -m harness bench --resume results/20250101-120000-default   # finish an interrupted run

One engine for every kind of run (harness/bench/profile.py): a profile is planned
(harness/bench/plan.py), its settings resolved and validated, a run folder created with the
kind in its meta.json (or an interrupted one reopened, its kind read from there), and the
kind measures under one lock, one process group (harness/process.py: nothing outlives the
run) and one signal handling. `cells` (quick, default, full, gpu; harness/bench/cells.py):
the check report (harness/bench/checkrun.py), which series can run (one probe process: the
parent never imports a framework), the machine's matmul peak, every cell's worker timed in
rounds, then time to accuracy. `scaling` (harness/bench/scaling.py): every data-parallel engine
at W workers, a launch per round. A profile's wall budget (the `gpu` profile's: `make gpu` must
end in minutes) stops the run early: jobs not started stay missing, for --resume. Exit 0 for a
completed run, whatever its cells' statuses; 2 for bad options.
"""

from __future__ import annotations

import os

from harness import options as rules
from harness import process
from harness.bench import cells as cells_kind
from harness.bench import profiles
from harness.bench import scaling as scaling_kind
from harness.bench.plan import Plan, plan
from harness.codec import from_dict, to_dict
from harness.errors import UsageError
from harness.measure import machine
from harness.measure.launch import cell_env
from harness.measure.peer import runnable
from harness.measure.spec import RunSettings
from harness.process import REPO
from harness.store import FolderLocked, RunFolder, folder_kind, kind_of


def add_arguments(parser) -> None:
    parser.add_argument("--profile", default="default",
                        help=f"one of {', '.join(profiles.PROFILES)} (scaling: data-parallel"
                             " step time at W = 1, 2 workers; harness/bench/scaling.py)"
                             " (default: default)")
    for name, what in (("impl", "implementations"), ("mode", "modes"), ("device", "devices"),
                       ("dtype", "dtypes (default: the profile's, float32)"), ("size", "sizes")):
        parser.add_argument(f"--{name}", action="append", metavar="A,B",
                            help=f"only these {what}")
    parser.add_argument("--threads", type=int,
                        help="thread budget per cell (default: all usable CPUs)")
    parser.add_argument("--out", default="results", help="results root (default: results/)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="run the cells missing from RUN_DIR")
    parser.add_argument("--time-limit", type=float, metavar="S", help="kill a cell after S seconds")
    parser.add_argument("--wall-budget", type=float, metavar="S",
                        help="start no job after S seconds, counted from the end of the "
                             "check (default: the profile's; 0: no limit)")
    parser.add_argument("--no-check", action="store_true", help="skip the check report")
    parser.add_argument("--report", action="store_true", help="render report.md at the end")
    parser.add_argument("--commits", metavar="A..B", help="run the profile at each commit of the"
                        " range, each in a git worktree (harness/bench/commits.py)")
    parser.add_argument("--against", metavar="REV", help="time the working tree and REV side by"
                        " side, series by series in adjacent blocks, and judge each as compare"
                        " does: exit 1 when one is slower (harness/bench/duet.py)")


def main(args) -> int:
    if getattr(args, "against", None) is not None:  # a duet: harness/bench/duet.py
        from harness.bench.duet import main as duet

        return duet(args, create, _validate, render_report)
    if getattr(args, "commits", None):  # history over commits: harness/bench/commits.py
        _validate(args)
        from harness.bench.commits import run_commits

        return run_commits(args)
    run(args)
    return 0


def run(args) -> RunFolder:
    """The whole bench for parsed `args`; returns the run folder it wrote."""
    _validate(args)  # every option, before anything is written
    for stale in process.reap_stale():
        print(f"cleaned up after a run that was killed: {stale}")
    folder, settings, the_plan = resume(args) if args.resume else create(args)
    kind = kind_of(folder.meta)
    try:
        with process.interrupts(), folder.lock(), process.Group() as group:
            if kind == "scaling":
                scaling_kind.measure(folder, settings, the_plan, group)
            else:
                cells_kind.measure(args, folder, settings, the_plan, group)
    except PermissionError as exc:  # a read-only results folder
        raise UsageError(f"cannot write in {folder.path}: {exc.strerror}") from None
    except FolderLocked as exc:  # another bench writes this folder
        raise UsageError(str(exc)) from None
    if args.report:
        render_report(folder)
    return folder


def _validate(args) -> None:
    """Numbers must be finite and in range, lists non-empty, the results root a folder that is
    no run's: exit 2 before anything runs (harness/options.py's rules)."""
    rules.seconds("--time-limit", getattr(args, "time_limit", None))
    rules.seconds("--wall-budget", getattr(args, "wall_budget", None), zero="no limit")
    for name in ("impl", "mode", "device", "dtype", "size"):
        if getattr(args, name) is not None:
            rules.values(f"--{name}", _list(getattr(args, name)) or [])
    if getattr(args, "threads", None) is not None:
        usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        rules.integer("--threads", args.threads, high=len(usable) if usable else None,
                      why="usable CPUs")
    rules.out_folder("--out", getattr(args, "out", None),
                     markers=("meta.json", "cells.csv", "scaling.csv"))


def create(args) -> tuple[RunFolder, RunSettings, Plan]:
    """A new run folder for the command line's profile and restrictions, its kind in meta.json."""
    profile = profiles.get(args.profile)
    if profile.kind == "scaling":
        settings, the_plan, meta = scaling_kind.prepare(args, profile, _list(args.impl),
                                                        _list(args.size), _list(args.device))
        return new_folder(args, profile, {**meta, "options": options(args)}), settings, the_plan
    the_plan = plan(profile, runnable(), _list(args.impl), _list(args.mode),
                    _list(args.device), _list(args.dtype), _list(args.size))
    threads, cpus = _cpus(profile.threads if args.threads is None else args.threads)
    settings = profiles.settings(profile, threads=threads, cpus=cpus, check=not args.no_check,
                                 time_limit_s=args.time_limit or profile.time_limit_s,
                                 start_limit_s=args.time_limit or profile.start_limit_s)
    budget = {"threads": threads, "cpus": cpus,
              "env": cell_env(threads, "<fresh dir per cell>", "cpu",
                              idle=settings.policy.idle_threads)}
    if "gpu" in the_plan.devices():
        budget["env_gpu"] = cell_env(threads, "<fresh dir per cell>", "gpu",
                                     idle=settings.policy.idle_threads)
    meta = {"kind": "cells", "profile": to_dict(profile), "options": options(args),
            "settings": to_dict(settings), "plan": to_dict(the_plan), "thread_budget": budget,
            "machine": machine.collect(str(REPO)), "peak": {}, "impl_info": {}, "runs": []}
    return new_folder(args, profile, meta), settings, the_plan


def options(args) -> dict:
    """The command line, as meta.json records it."""
    return {k: v for k, v in vars(args).items() if not k.startswith("_")}


def new_folder(args, profile, meta: dict) -> RunFolder:
    try:
        return RunFolder.create(args.out, profile.name, meta,
                                bench_tables=profile.kind == "cells")
    except PermissionError as exc:
        raise UsageError(f"--out {args.out}: cannot write there ({exc.strerror})") from None


def resume(args) -> tuple[RunFolder, RunSettings, Plan]:
    """An existing run folder, with the settings and plan it was started with."""
    given = [f"--{k.replace('_', '-')}" for k in ("impl", "mode", "device", "dtype", "size",
                                                 "threads", "time_limit")
             if getattr(args, k, None) is not None]
    if given:
        raise UsageError(f"--resume reruns with the run's stored options; drop {given[0]}")
    if folder_kind(args.resume) == "scaling":
        raise UsageError(f"{args.resume} is a scaling run, which keeps its finished rounds but"
                         " cannot be resumed: start a new one (bench --profile scaling)")
    try:
        folder = RunFolder.open(args.resume)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        settings = from_dict(RunSettings, folder.meta["settings"])
        the_plan = from_dict(Plan, folder.meta["plan"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{args.resume}: no plan and settings this bench can rerun "
                         f"({type(exc).__name__}: {exc})") from None
    return folder, settings, the_plan


def render_report(folder: RunFolder) -> None:
    from harness.report.command import render  # lazily: only --report needs pandas/matplotlib

    try:
        print(f"report: {render(folder.path)}")
    except Exception as exc:  # a broken report never loses a completed run
        print(f"report failed: {type(exc).__name__}: {exc}")


def _list(values) -> list[str] | None:
    """Repeated and comma-separated options, flattened: --impl numpy,torch --impl jax."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _cpus(threads: int | None) -> tuple[int, tuple[int, ...] | None]:
    try:
        usable = sorted(os.sched_getaffinity(0))
    except AttributeError:  # no affinity control (not Linux): the thread variables alone
        return threads or os.cpu_count() or 1, None
    n = len(usable) if threads is None else threads
    rules.integer("--threads", n, high=len(usable), why="usable CPUs")
    return n, tuple(usable[:n])


def _wall_budget(args, default: float | None) -> float | None:
    given = getattr(args, "wall_budget", None)
    return default if given is None else (given or None)
