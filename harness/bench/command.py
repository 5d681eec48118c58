"""python -m harness bench [--profile default] [--impl A,B] [--report]  -- time every impl.

    python -m harness bench --profile quick --impl numpy --size tiny
    python -m harness bench --resume results/20250101-120000-default   # finish an interrupted run

One run: the check report (harness/bench/checkrun.py: subprocesses, on the CPU, and
on the GPU too when the plan has a GPU cell), which series can run (one probe
subprocess: the parent never imports a framework), the machine's matmul peak, then
every cell in a fresh subprocess with the same thread budget, its peak-memory pass
in another, then time to accuracy (harness/bench/sweep.py). Results go to a new
run folder (harness/store.py). A profile's wall budget (the `gpu` profile's: `make
gpu` must end in minutes) stops the run early: jobs not started stay missing, for
--resume. Exit 0 for a completed run, whatever its cells' statuses; 2 for bad options.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from pathlib import Path

from harness.bench import profiles
from harness.bench.budget import Budget
from harness.bench.checkrun import CheckRun
from harness.bench.children import Children, reap_stale
from harness.bench.plan import Plan, plan
from harness.bench.progress import Progress
from harness.bench.sweep import Sweep, series_of, tta_key
from harness.codec import from_dict, to_dict
from harness.errors import UsageError
from harness.measure import machine
from harness.measure.launch import REPO, cell_env
from harness.measure.peer import runnable
from harness.measure.spec import RunSettings
from harness.store import CHECK, SCALING, CellKey, FolderLocked, RunFolder, read_json


def add_arguments(parser) -> None:
    parser.add_argument("--profile", default="default",
                        help=f"one of {', '.join(profiles.PROFILES)}, or scaling (data-parallel"
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
                        help="start no job after S seconds of this invocation, check included "
                             "(default: the profile's; 0: no limit)")
    parser.add_argument("--no-check", action="store_true", help="skip the check report")
    parser.add_argument("--report", action="store_true", help="render report.md at the end")
    parser.add_argument("--commits", metavar="A..B", help="run the profile at each commit of the"
                        " range, each in a git worktree (harness/bench/commits.py)")


def main(args) -> int:
    if getattr(args, "commits", None):  # history over commits: harness/bench/commits.py
        _validate(args)
        from harness.bench.commits import run_commits

        return run_commits(args)
    run(args)
    return 0


def run(args) -> RunFolder:
    """The whole bench for parsed `args`; returns the run folder it wrote."""
    _validate(args)  # every option, before anything is written
    for stale in reap_stale():
        print(f"cleaned up after a bench that was killed: {stale}")
    if args.profile == "scaling" and not args.resume:
        from harness.bench import scaling

        with _interrupts():
            folder = scaling.run(args, _list(args.impl), _list(args.size),
                                 _list(args.device))
        if args.report:
            render_report(folder)
        return folder
    folder, settings, the_plan = resume(args) if args.resume else create(args)
    try:
        with _interrupts(), folder.lock():
            _run(args, folder, settings, the_plan)
            return folder
    except PermissionError as exc:  # a read-only results folder
        raise UsageError(f"cannot write in {folder.path}: {exc.strerror}") from None
    except FolderLocked as exc:  # another bench writes this folder
        raise UsageError(str(exc)) from None


def _run(args, folder: RunFolder, settings: RunSettings, the_plan: Plan) -> None:
    started = time.time()
    budget = Budget(_wall_budget(args, settings.wall_budget_s), started)
    folder.meta["runs"].append({"started_utc": machine.utc_now().isoformat(timespec="seconds"),
                                "resume": bool(args.resume), "wall_budget_s": budget.seconds})
    for why in folder.dropped:
        print(f"dropped {why}")
    done, done_tta = folder.done_cells(), folder.done_tta()
    cells = [c for c in the_plan.cells if CellKey.of(c) not in done]
    goals = [g for g in the_plan.tta if tta_key(g) not in done_tta]
    print(f"run folder: {folder.path}  ({len(cells)} cells, {len(goals)} time-to-accuracy runs)")
    children = Children()
    sweep = Sweep(folder, settings, budget, children)
    try:
        if settings.check and not _check_done(folder):
            check = CheckRun(folder, settings, the_plan, budget, children.adopt)
            # Alongside the check: neither is being timed.
            available = sweep.probe(series_of(cells, goals) | set(check.probe_series()))
            check.start_gpu(available)
            check.finish()
        else:
            available = sweep.probe(series_of(cells, goals))
        # One step per worker started, per size's rounds, per time-to-accuracy run.
        progress = Progress(len(cells) + len({c.size.name for c in cells}) + len(goals))
        try:
            left = sweep.run(cells, goals, available, progress)
        finally:
            progress.close()
    except KeyboardInterrupt:  # finished sizes are already on disk
        print(f"\ninterrupted; finish with: python -m harness bench --resume {folder.path}")
        raise
    finally:
        sweep.close()  # every child process group killed, caches removed
    folder.meta["runs"][-1].update(finished_utc=machine.utc_now().isoformat(timespec="seconds"),
                                   seconds=round(time.time() - started, 1))
    if left["cells"] or left["tta"]:
        folder.meta["runs"][-1]["not_started"] = left
        print(f"wall budget of {budget.seconds:g} s spent: {len(left['cells'])} cells and "
              f"{len(left['tta'])} time-to-accuracy runs not started; finish them with: "
              f"python -m harness bench --resume {folder.path}")
    folder.save_meta()
    print(f"done in {time.time() - started:.0f} s: {folder.path}")
    if args.report:
        render_report(folder)


@contextlib.contextmanager
def _interrupts():
    """SIGTERM and SIGHUP end the run as Ctrl-C does: `finally` kills every child."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _validate(args) -> None:
    """Numbers must be finite and in range, lists non-empty: exit 2 before anything runs."""
    for name, low, zero_ok in (("time_limit", 0.0, False), ("wall_budget", 0.0, True)):
        value = getattr(args, name, None)
        if value is not None and not (math.isfinite(value) and (value > low or
                                                                (zero_ok and value == low))):
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be a finite number of seconds "
                             f"{'>= 0 (0: no limit)' if zero_ok else '> 0'}, got {value}")
    for name in ("impl", "mode", "device", "dtype", "size"):
        if getattr(args, name) is not None and not _list(getattr(args, name)):
            raise UsageError(f"--{name} needs at least one value, got an empty list")


def create(args) -> tuple[RunFolder, RunSettings, Plan]:
    """A new run folder for the command line's profile and restrictions."""
    profile = profiles.get(args.profile)
    the_plan = plan(profile, runnable(), _list(args.impl), _list(args.mode),
                    _list(args.device), _list(args.dtype), _list(args.size))
    threads, cpus = _cpus(args.threads)
    settings = RunSettings(
        threads=threads, cpus=cpus, loss=profile.loss, lr=profile.lr, seed=profile.seed,
        activation=profile.activation, policy=profile.policy,
        time_limit_s=args.time_limit or profile.time_limit_s, peak_n=profile.peak_n,
        peak_n_cpu=profile.peak_n_cpu or profile.peak_n, check=not args.no_check,
        check_timeout_s=profile.check_timeout_s, wall_budget_s=profile.wall_budget_s)
    options = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    budget = {"threads": threads, "cpus": cpus,
              "env": cell_env(threads, "<fresh dir per cell>", "cpu")}
    if "gpu" in the_plan.devices():
        budget["env_gpu"] = cell_env(threads, "<fresh dir per cell>", "gpu")
    meta = {"profile": to_dict(profile), "options": options, "settings": to_dict(settings),
            "plan": to_dict(the_plan), "thread_budget": budget,
            "machine": machine.collect(str(REPO)), "peak": {}, "impl_info": {}, "runs": []}
    try:
        folder = RunFolder.create(args.out, profile.name, meta)
    except PermissionError as exc:
        raise UsageError(f"--out {args.out}: cannot write there ({exc.strerror})") from None
    return folder, settings, the_plan


def resume(args) -> tuple[RunFolder, RunSettings, Plan]:
    """An existing run folder, with the settings and plan it was started with."""
    given = [f"--{k.replace('_', '-')}" for k in ("impl", "mode", "device", "dtype", "size",
                                                 "threads", "time_limit")
             if getattr(args, k, None) is not None]
    if given:
        raise UsageError(f"--resume reruns with the run's stored options; drop {given[0]}")
    if (Path(args.resume) / SCALING).exists():
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


def _check_done(folder: RunFolder) -> bool:
    """check.json is there and complete (a check cut short by the wall budget or a crash is
    redone by --resume)."""
    try:
        report = read_json(folder.path, CHECK)
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and report.get("ok") is not None and not report.get("error")


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
    if not 1 <= n <= len(usable):
        raise UsageError(f"--threads must be between 1 and {len(usable)} (usable CPUs), got {n}")
    return n, tuple(usable[:n])


def _wall_budget(args, default: float | None) -> float | None:
    given = getattr(args, "wall_budget", None)
    return default if given is None else (given or None)
