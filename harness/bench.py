"""python -m harness bench [--profile default] [--impl A,B] [--report]  -- time every impl.

    python -m harness bench --profile quick --impl numpy --size tiny
    python -m harness bench --resume results/20250101-120000-default   # finish an interrupted run

One run: the check report (subprocesses: on the CPU, and on the GPU too when
the plan has a GPU cell), which cells can run (one probe subprocess: the parent
never imports a framework), the machine's matmul peak, then every cell in a
fresh subprocess (harness/cell.py) with the same thread budget, its
peak-memory pass in another, then time to accuracy. Results go to a new folder
(harness/storage.py) whose tables are rewritten after every cell, so Ctrl-C
keeps what finished and --resume runs only what is missing. Crashed, hung and
diverged cells are recorded with a reason; the sweep goes on. A profile's wall
budget (the `gpu` profile's: `make gpu` must end in minutes) stops the run
early: jobs not started stay missing, for --resume.
Exit 0 for a completed run, whatever its cells' statuses; 2 for bad options.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

from harness import machine, profiles
from harness.cell import REPO, cell_env, launch
from harness.cli import UsageError
from harness.storage import TTA_KEY, Run

CHECK_TIMEOUT_S = 600.0  # the check imports every framework and trains; generous but bounded
PEAK_IMPLS = ("torch", "cupy", "jax")  # GPU peak: first available (torch: TF32 off by default)
# The slow parts of a GPU check (cold torch.compile / CUDA-graph compiles of every
# dtype x loss x activation): each checked in a process of its own, beside the rest.
CHECK_APART = ("torch:compile", "torch:reduce-overhead")
MIN_START_S = 5.0  # under a wall budget, no job starts with less time than this left


def _list(values) -> list[str] | None:
    """Repeated and comma-separated options, flattened: --impl numpy,torch --impl jax."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def add_arguments(parser) -> None:
    parser.add_argument("--profile", default="default",
                        help=f"one of {', '.join(profiles.PROFILES)} (default: default)")
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


def _known() -> dict[str, tuple[str, ...]]:
    import impls  # the registry; implementation modules import their frameworks lazily
    from harness.peer import PEER

    return {**{n: impls.get(n).modes for n in impls.names()}, PEER.name: PEER.modes}


def _cpus(threads: int | None) -> tuple[int, list[int] | None]:
    try:
        usable = sorted(os.sched_getaffinity(0))
    except AttributeError:  # no affinity control (not Linux): the thread variables alone
        return threads or os.cpu_count() or 1, None
    n = len(usable) if threads is None else threads
    if not 1 <= n <= len(usable):
        raise UsageError(f"--threads must be between 1 and {len(usable)} (usable CPUs), got {n}")
    return n, usable[:n]


def new_run(args) -> Run:
    profile = profiles.get(args.profile)
    if args.time_limit is not None and args.time_limit <= 0:
        raise UsageError(f"--time-limit must be positive, got {args.time_limit}")
    _wall_budget(args, profile.wall_budget_s)  # validates --wall-budget
    plan = profiles.plan(profile, _known(), _list(args.impl), _list(args.mode),
                         _list(args.device), _list(args.dtype), _list(args.size))
    threads, cpus = _cpus(args.threads)
    settings = {
        "threads": threads, "cpus": cpus, "loss": profile.loss, "lr": profile.lr,
        "seed": profile.seed, "activation": "sigmoid", "policy": dataclasses.asdict(profile.policy),
        "time_limit_s": args.time_limit or profile.time_limit_s,
        "peak_n": profile.peak_n, "peak_n_cpu": profile.peak_n_cpu or profile.peak_n,
        "check": not args.no_check, "check_timeout_s": profile.check_timeout_s,
        "wall_budget_s": profile.wall_budget_s,
    }
    options = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    budget = {"threads": threads, "cpus": cpus,
              "env": cell_env(threads, "<fresh dir per cell>", "cpu")}
    meta = {"profile": dataclasses.asdict(profile), "options": options, "settings": settings,
            "plan": plan, "thread_budget": budget,
            "machine": machine.collect(str(REPO)), "peak": {}, "impl_info": {},
            "runs": []}
    return Run.create(args.out, profile.name, meta)


class Budget:
    """The wall-clock budget of one bench invocation: time left, and job timeouts capped by it."""

    def __init__(self, seconds: float | None, start: float | None = None):
        self.seconds = seconds
        self.end = None if seconds is None else (start or time.time()) + seconds

    def left(self) -> float:
        return math.inf if self.end is None else self.end - time.time()

    def can_start(self) -> bool:
        return self.left() >= MIN_START_S

    def timeout(self, limit: float) -> float:
        return max(1.0, min(limit, self.left()))


NO_BUDGET = Budget(None)


def _wall_budget(args, default: float | None) -> float | None:
    given = getattr(args, "wall_budget", None)
    if given is None:
        return default
    if given < 0:
        raise UsageError(f"--wall-budget must be positive (0: no limit), got {given}")
    return given or None


def _plan_devices(run: Run) -> set[str]:
    plan = run.meta["plan"]
    return {c["device"] for c in plan["cells"] + plan["tta"]}


@dataclasses.dataclass
class CheckShard:
    """One `python -m harness check --json ARGS` process; stderr goes to a file, not a pipe
    (a full pipe would stall it while the parent waits on the probe)."""

    args: list[str]
    proc: subprocess.Popen
    err: object
    started: float


def _start_shard(args: list[str]) -> CheckShard:
    err = tempfile.TemporaryFile(mode="w+")
    # No JAX GPU preallocation: the probe and other check processes share the GPU with it.
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "check", "--json", *args],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    return CheckShard(args, proc, err, time.time())


class CheckRun:
    """The check report at the start of a run, written to check.json.

    A CPU-only plan runs `check --json` (the CPU), as one process. A plan with a GPU
    cell checks every device: `check --json --device cpu` starts at once, beside the
    probe; once the probe has said what the GPU can run, the GPU is checked with the
    slow compiled modes (CHECK_APART) each in a process of its own, beside the rest,
    so the check costs its slowest part rather than the sum. The parts check disjoint
    (impl, mode, device) sets, and `merge_checks` makes them one report with what
    `check --json --device all` would hold. Where the GPU runs neither compiled mode
    (or the probe failed) the GPU is checked whole, `check --json --device gpu`.
    """

    def __init__(self, run: Run, budget: Budget = NO_BUDGET):
        self.run, self.budget, self.started = run, budget, time.time()
        self.gpu = "gpu" in _plan_devices(run)
        self.shards: list[CheckShard] = []
        self.missing = None
        if importlib.util.find_spec("harness.check") is None:
            self.missing = {"ok": None, "error": "harness/check.py does not exist yet"}
            return
        self.shards.append(_start_shard(["--device", "cpu"] if self.gpu else []))

    def probe_triples(self) -> list[tuple[str, str, str]]:
        """What the probe must also answer for the GPU part to be split."""
        if not self.gpu:
            return []
        return [(*spec.split(":"), "gpu") for spec in CHECK_APART]

    def start_gpu(self, available: dict) -> None:
        if self.missing is None and self.gpu:
            for args in gpu_shards(available):
                self.shards.append(_start_shard(args))

    def finish(self) -> None:
        if self.missing is not None:
            self.run.write_json("check.json", self.missing)
            return
        limit = self.run.meta["settings"].get("check_timeout_s", CHECK_TIMEOUT_S)
        deadline = min(self.started + limit, self.budget.end or math.inf)
        parts = []
        for shard in self.shards:
            with shard.err:
                parts.append(collect_check(shard.proc, deadline - time.time(), shard.err))
        seconds = round(time.time() - self.started, 2)
        if len(parts) == 1:
            report = parts[0]
        else:
            shards = [{"args": s.args, "exit_code": p.get("exit_code"),
                       "seconds": p.get("seconds"), "error": p.get("error")}
                      for s, p in zip(self.shards, parts, strict=True)]
            report = merge_checks(parts, seconds, shards)
        self.run.write_json("check.json", report)
        self.run.meta["check_seconds"] = seconds


def gpu_shards(available: dict) -> list[list[str]]:
    """`check` arguments for the GPU part: one process per CHECK_APART mode the GPU runs,
    one for everything else; or the whole GPU in one process."""
    import impls  # the registry only: implementation modules import frameworks lazily

    def runs(spec: str) -> bool:
        return bool(available.get(f"{spec.replace(':', '/')}/gpu", [False])[0])

    apart = [spec for spec in CHECK_APART if runs(spec)]
    if not apart:
        return [["--device", "gpu"]]
    rest = []
    for name in impls.names():
        impl = impls.get(name)
        modes = [m for m in impl.modes
                 if f"{name}:{m}" not in CHECK_APART and m not in impl.timing_only]
        if len(modes) == len([m for m in impl.modes if m not in impl.timing_only]):
            rest.append(name)  # every checked mode: by name, as `check --impl NAME`
        else:
            rest += [f"{name}:{m}" for m in modes]
    shards = [["--device", "gpu", "--impl", spec] for spec in apart]
    shards.append(["--device", "gpu", *[a for spec in rest for a in ("--impl", spec)]])
    if len(apart) < len(CHECK_APART):  # a compiled mode the GPU cannot run: the rest says why
        shards[-1] += [a for spec in CHECK_APART if spec not in apart for a in ("--impl", spec)]
    return shards


def collect_check(proc: subprocess.Popen, timeout: float, err_file=None) -> dict:
    """The JSON report of one check process, whatever its exit code (1 is a finding), or
    {"ok": None, "error": why} when it printed none or ran out of time."""
    try:
        out, err = proc.communicate(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"ok": None, "error": f"check timed out ({max(1.0, timeout):.0f} s)"}
    if err is None and err_file is not None:
        err_file.seek(0)
        err = err_file.read()
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        report = None
    if isinstance(report, dict):
        report.setdefault("exit_code", proc.returncode)
        return report
    tail = ((err or "").strip().splitlines() or ["no output"])[-1][:300]
    return {"ok": None, "exit_code": proc.returncode, "error": f"no JSON from check: {tail}"}


def merge_checks(parts: list[dict], seconds: float, shards: list[dict] | None = None) -> dict:
    """One check report from parts that checked disjoint (impl, mode, device) sets.

    Every part starts with the same finite-difference rows (NumPy only,
    deterministic): they are kept once, first. ok: False if any part found a
    disagreement, else None if any part failed to report, else True.
    """
    rows = [r for p in parts[:1] for r in p.get("rows", []) if r.get("kind") == "fd"]
    if not rows:  # the first part failed: the fd rows of the first that did not
        rows = next(([r for r in p.get("rows", []) if r.get("kind") == "fd"]
                     for p in parts if p.get("rows")), [])
    rows += [r for p in parts for r in p.get("rows", []) if r.get("kind") != "fd"]
    unavailable, seen = [], set()
    for p in parts:
        for u in p.get("unavailable", []):
            key = (u.get("impl"), u.get("mode"), u.get("device"))
            if key not in seen:
                seen.add(key)
                unavailable.append(u)
    oks = [p.get("ok") for p in parts]
    ok = False if False in oks else None if None in oks else True
    report = {"ok": ok, "rows": rows, "unavailable": unavailable,
              "curves": [c for p in parts for c in p.get("curves", [])],
              "seconds": seconds,
              "timings": {k: v for p in parts for k, v in (p.get("timings") or {}).items()},
              "exit_code": 1 if ok is False else 0 if ok else None}
    errors = [p["error"] for p in parts if p.get("error")]
    if errors:
        report["error"] = "; ".join(errors)
    if shards is not None:
        report["shards"] = shards
    return report


def finish_check(run: Run, proc: subprocess.Popen, started: float) -> None:
    """Wait for one check process (see collect_check) and store its report as check.json."""
    limit = run.meta["settings"].get("check_timeout_s", CHECK_TIMEOUT_S)
    run.write_json("check.json", collect_check(proc, limit - (time.time() - started)))
    run.meta["check_seconds"] = round(time.time() - started, 2)


def _spec(run: Run, job: str, **fields) -> dict:
    s = run.meta["settings"]
    return {"job": job, "threads": s["threads"], "cpus": s["cpus"], "seed": s["seed"],
            "loss": s["loss"], "lr": s["lr"], "policy": s["policy"], **fields}


def _env(run: Run, cache: str, device: str | None, memory: bool = False) -> dict:
    return cell_env(run.meta["settings"]["threads"], cache, device, memory)


def probe(run: Run, todo: list[dict], extra=()) -> dict[str, list]:
    """available() of every (impl, mode, device) still to run (and of `extra` triples),
    in one subprocess: {"impl/mode/device": [ok, reason]}."""
    triples = sorted({(c["impl"], c["mode"], c["device"]) for c in todo} | set(extra))
    if not triples:
        return {}
    with tempfile.TemporaryDirectory(prefix="bpb-probe-") as cache:
        # memory=True: no JAX GPU preallocation, since the check may run beside the probe.
        result, _ = launch(_spec(run, "probe", cells=triples), _env(run, cache, None, True),
                           run.meta["settings"]["time_limit_s"])
    return result.get("available", {})  # a failed probe: each cell finds out for itself


def measure_peaks(run: Run, devices: set[str], budget: Budget = NO_BUDGET) -> None:
    settings = run.meta["settings"]
    for device in sorted(devices - set(run.meta["peak"])):
        if not budget.can_start():
            break
        n = settings.get("peak_n_cpu", settings["peak_n"]) if device == "cpu" else settings["peak_n"]
        with tempfile.TemporaryDirectory(prefix="bpb-peak-") as cache:
            spec = _spec(run, "peak", device=device, peak_n=n, impls=list(PEAK_IMPLS))
            result, _ = launch(spec, _env(run, cache, device),
                               budget.timeout(settings["time_limit_s"]))
        run.meta["peak"][device] = result
        if device == "cpu" and result.get("blas"):
            run.meta["blas"] = result["blas"]  # read under this run's thread budget
    run.save_meta()


def cell_row(run: Run, cell: dict, timed: dict, mem: dict | None, wall: float) -> dict:
    z, s = cell["size"], run.meta["settings"]
    flops = profiles.Size(**z).flops
    peak = run.meta["peak"].get(cell["device"], {}).get("gflops")
    median = timed.get("step_median_s")
    gflops = flops / median / 1e9 if median else None
    mem = mem or {}
    return {**{k: cell[k] for k in ("impl", "mode", "device", "dtype")}, "size": z["name"],
            "n_samples": z["n_samples"], "n_features": z["n_features"], "n_hidden": z["n_hidden"],
            "n_outputs": z["n_outputs"], "batch_size": z["n_samples"], "loss": s["loss"],
            "activation": s["activation"], "status": timed.get("status", "failed"),
            "reason": timed.get("reason", ""), "flops_per_step": flops, "gflops": gflops,
            "peak_gflops": peak, "peak_fraction": gflops / peak if gflops and peak else None,
            "threads": s["threads"],
            "matmul_precision": (timed.get("info") or {}).get("matmul_precision"),
            **{k: timed.get(k) for k in ("setup_s", "first_call_s", "step_median_s", "step_iqr_s",
                                         "repeats", "steps_per_sample", "noisy", "final_loss",
                                         "import_s", "warmup_steps")},
            "peak_mem_bytes": mem.get("peak_mem_bytes"),
            "setup_mem_bytes": mem.get("setup_mem_bytes"),
            "peak_mem_method": mem.get("peak_mem_method") or (
                f"failed: {mem.get('reason')}" if mem else
                "not measured (profile)" if timed.get("status") == "ok" else None),
            "wall_s": round(wall, 3)}


def _launch(spec: dict, env: dict, limit: float, budget: Budget) -> tuple[dict, float]:
    """launch() with its timeout capped by the wall budget; a kill by the budget says so."""
    timeout = budget.timeout(limit)
    result, wall = launch(spec, env, timeout)
    if result.get("status") == "timeout" and timeout < limit:
        result["reason"] += f" (the run's wall budget of {budget.seconds:g} s ran out)"
    return result, wall


def run_cell(run: Run, cell: dict, available: dict, budget: Budget = NO_BUDGET) -> dict:
    ok, why = available.get(f"{cell['impl']}/{cell['mode']}/{cell['device']}", (True, ""))
    if not ok:
        row = cell_row(run, cell, {"status": "unavailable", "reason": why}, None, 0.0)
        run.add_cell(row)
        return row
    limit = run.meta["settings"]["time_limit_s"]
    cache = tempfile.mkdtemp(prefix="bpb-cell-")  # fresh compile caches: a cold first call
    try:
        spec = _spec(run, "time", **cell)
        timed, wall = _launch(spec, _env(run, cache, cell["device"]), limit, budget)
        mem = None
        if timed.get("status") == "ok" and cell.get("memory", True):
            if budget.can_start():
                mem, mem_wall = _launch({**spec, "job": "memory"},
                                        _env(run, cache, cell["device"], memory=True), limit,
                                        budget)
                wall += mem_wall
            else:
                mem = {"peak_mem_method": "not measured: the run's wall budget was spent"}
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if timed.get("info"):
        run.meta["impl_info"][f"{cell['impl']}/{cell['mode']}/{cell['device']}"] = timed["info"]
    row = cell_row(run, cell, timed, mem, wall)
    run.add_cell(row, timed.get("samples") or [])
    return row


def run_tta(run: Run, goal: dict, available: dict, budget: Budget = NO_BUDGET) -> dict:
    ok, why = available.get(f"{goal['impl']}/{goal['mode']}/{goal['device']}", (True, ""))
    result = {"status": "unavailable", "reason": why}
    if ok:
        with tempfile.TemporaryDirectory(prefix="bpb-tta-") as cache:
            result, _ = _launch(_spec(run, "tta", **goal), _env(run, cache, goal["device"]),
                                run.meta["settings"]["time_limit_s"], budget)
    row = {**goal, **{k: result.get(k) for k in ("reached", "seconds", "epochs", "accuracy")},
           "status": result.get("status", "failed"), "reason": result.get("reason", "")}
    run.add_tta(row)
    return row


class Progress:
    """A tqdm bar when tqdm is installed and stderr is a terminal; else a plain line per cell."""

    def __init__(self, total: int):
        self.total, self.i, self.t0, self.bar = total, 0, time.time(), None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm  # optional: the GPU machine may not have it

                self.bar = tqdm(total=total, unit="cell", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                pass

    def start(self, label: str) -> None:
        if self.bar is not None:
            self.bar.set_description(label)
        else:
            print(f"[{self.i + 1}/{self.total}] {label}", end="", flush=True)

    def done(self, status: str, value: float | None, unit: str = "s/step") -> None:
        self.i += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        left = (time.time() - self.t0) / self.i * (self.total - self.i)  # mean cell time so far
        shown = f" {value:.3g} {unit}" if isinstance(value, float) else ""
        print(f": {status}{shown}  (ETA {left:.0f} s)", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def render_report(run: Run) -> None:
    try:
        from harness import report  # lazily: the bench works without the report module
    except Exception as exc:
        print(f"report skipped: cannot import harness.report ({type(exc).__name__}: {exc})")
        return
    try:
        print(f"report: {report.render(run.path)}")
    except Exception as exc:  # a broken report never loses a completed run
        print(f"report failed: {type(exc).__name__}: {exc}")


def run(args) -> int:
    if args.resume:
        given = [f"--{k.replace('_', '-')}" for k in ("impl", "mode", "device", "dtype", "size",
                                                     "threads", "time_limit")
                 if getattr(args, k, None) is not None]
        if given:
            raise UsageError(f"--resume reruns with the run's stored options; drop {given[0]}")
        try:
            bench = Run.load(args.resume)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if "plan" not in bench.meta:
            raise UsageError(f"{args.resume} was not written by bench (no plan in meta.json)")
    else:
        bench = new_run(args)
    started = time.time()
    budget = Budget(_wall_budget(args, bench.meta["settings"].get("wall_budget_s")), started)
    bench.meta["runs"].append({"started_utc": machine.utc_now().isoformat(timespec="seconds"),
                               "resume": bool(args.resume), "wall_budget_s": budget.seconds})
    done, done_tta = bench.done_cells(), bench.done_tta()
    cells = [c for c in bench.meta["plan"]["cells"] if _key(c) not in done]
    goals = [g for g in bench.meta["plan"]["tta"]
             if tuple(str(g[k]) for k in TTA_KEY) not in done_tta]
    print(f"run folder: {bench.path}  ({len(cells)} cells, {len(goals)} time-to-accuracy runs)")
    check = None
    if bench.meta["settings"]["check"] and not (bench.path / "check.json").exists():
        check = CheckRun(bench, budget)
    # Alongside the check: neither is being timed.
    available = probe(bench, cells + goals, check.probe_triples() if check else ())
    if check is not None:
        check.start_gpu(available)
        check.finish()
    measure_peaks(bench, {c["device"] for c in cells
                          if available.get(f"{c['impl']}/{c['mode']}/{c['device']}", [True])[0]},
                  budget)
    progress = Progress(len(cells) + len(goals))
    try:
        left = sweep(bench, cells, goals, available, progress, budget)
    except KeyboardInterrupt:  # finished cells are already on disk
        progress.close()
        print(f"\ninterrupted; finish with: python -m harness bench --resume {bench.path}")
        raise
    progress.close()
    bench.meta["runs"][-1].update(finished_utc=machine.utc_now().isoformat(timespec="seconds"),
                                  seconds=round(time.time() - started, 1))
    if left["cells"] or left["tta"]:
        bench.meta["runs"][-1]["not_started"] = left
        print(f"wall budget of {budget.seconds:g} s spent: {len(left['cells'])} cells and "
              f"{len(left['tta'])} time-to-accuracy runs not started; finish them with: "
              f"python -m harness bench --resume {bench.path}")
    bench.save_meta()
    print(f"done in {time.time() - started:.0f} s: {bench.path}")
    if args.report:
        render_report(bench)
    return 0


def sweep(bench: Run, cells: list[dict], goals: list[dict], available: dict,
          progress: Progress, budget: Budget = NO_BUDGET) -> dict:
    """Every cell, then every time-to-accuracy run; the tables are rewritten after each.
    Returns what the wall budget left unstarted: {"cells": [key...], "tta": [key...]}."""
    left = {"cells": [], "tta": []}
    for cell in cells:
        if not budget.can_start():
            left["cells"].append(list(_key(cell)))
            continue
        progress.start(f"{cell['impl']}/{cell['mode']} {cell['device']} {cell['dtype']} "
                       f"{cell['size']['name']}")
        row = run_cell(bench, cell, available, budget)
        bench.flush()
        bench.save_meta()
        progress.done(row["status"], row.get("step_median_s"))
    for goal in goals:
        if not budget.can_start():
            left["tta"].append([str(goal[k]) for k in TTA_KEY])
            continue
        progress.start(f"time to {goal['target']:.0%} on {goal['dataset']}: "
                       f"{goal['impl']}/{goal['mode']} {goal['device']}")
        row = run_tta(bench, goal, available, budget)
        bench.flush()
        progress.done(row["status"], row.get("seconds"), unit="s total")
    return left


def _key(cell: dict) -> tuple[str, ...]:
    return (cell["impl"], cell["mode"], cell["device"], cell["dtype"], cell["size"]["name"])
