"""python -m harness bench [--profile default] [--impl A,B] [--report]  -- time every impl.

    python -m harness bench --profile quick --impl numpy --size tiny
    python -m harness bench --resume results/20250101-120000-default   # finish an interrupted run

One run: the check report (subprocess), which cells can run (one probe
subprocess: the parent never imports a framework), the machine's matmul peak,
then every cell in a fresh subprocess (harness/cell.py) with the same thread
budget, its peak-memory pass in another, then time to accuracy. Results go to
a new folder (harness/storage.py) whose tables are rewritten after every
cell, so Ctrl-C keeps what finished and --resume runs only what is missing.
Crashed, hung and diverged cells are recorded with a reason; the sweep goes on.
Exit 0 for a completed run, whatever its cells' statuses; 2 for bad options.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from harness import machine, profiles
from harness.cell import REPO, cell_env, launch
from harness.cli import UsageError
from harness.storage import Run

CHECK_TIMEOUT_S = 600.0  # the check imports every framework and trains; generous but bounded
PEAK_IMPLS = ("torch", "cupy", "jax")  # GPU peak: first available (torch: TF32 off by default)


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
    plan = profiles.plan(profile, _known(), _list(args.impl), _list(args.mode),
                         _list(args.device), _list(args.dtype), _list(args.size))
    threads, cpus = _cpus(args.threads)
    settings = {
        "threads": threads, "cpus": cpus, "loss": profile.loss, "lr": profile.lr,
        "seed": profile.seed, "activation": "sigmoid", "policy": dataclasses.asdict(profile.policy),
        "time_limit_s": args.time_limit or profile.time_limit_s,
        "peak_n": profile.peak_n, "check": not args.no_check,
    }
    options = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    budget = {"threads": threads, "cpus": cpus,
              "env": cell_env(threads, "<fresh dir per cell>", "cpu")}
    meta = {"profile": dataclasses.asdict(profile), "options": options, "settings": settings,
            "plan": plan, "thread_budget": budget,
            "machine": machine.collect(str(REPO)), "peak": {}, "impl_info": {},
            "runs": []}
    return Run.create(args.out, profile.name, meta)


def run_check(run: Run) -> subprocess.Popen | None:
    """Start `python -m harness check --json` (in the background while the probe runs)."""
    if importlib.util.find_spec("harness.check") is None:
        run.write_json("check.json", {"ok": None, "error": "harness/check.py does not exist yet"})
        return None
    return subprocess.Popen([sys.executable, "-m", "harness", "check", "--json"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish_check(run: Run, proc: subprocess.Popen, started: float) -> None:
    try:
        out, err = proc.communicate(timeout=max(1.0, CHECK_TIMEOUT_S - (time.time() - started)))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        run.write_json("check.json", {"ok": None,
                                      "error": f"check timed out ({CHECK_TIMEOUT_S:g} s)"})
        return
    try:
        report = json.loads(out)  # stored whatever its exit code: exit 1 is a finding
        if isinstance(report, dict):
            report.setdefault("exit_code", proc.returncode)
    except json.JSONDecodeError:
        tail = (err.strip().splitlines() or ["no output"])[-1][:300]
        report = {"ok": None, "exit_code": proc.returncode, "error": f"no JSON from check: {tail}"}
    run.write_json("check.json", report)
    run.meta["check_seconds"] = round(time.time() - started, 2)


def _spec(run: Run, job: str, **fields) -> dict:
    s = run.meta["settings"]
    return {"job": job, "threads": s["threads"], "cpus": s["cpus"], "seed": s["seed"],
            "loss": s["loss"], "lr": s["lr"], "policy": s["policy"], **fields}


def _env(run: Run, cache: str, device: str | None, memory: bool = False) -> dict:
    return cell_env(run.meta["settings"]["threads"], cache, device, memory)


def probe(run: Run, todo: list[dict]) -> dict[str, list]:
    """available() of every (impl, mode, device) still to run, in one subprocess."""
    triples = sorted({(c["impl"], c["mode"], c["device"]) for c in todo})
    if not triples:
        return {}
    with tempfile.TemporaryDirectory(prefix="bpb-probe-") as cache:
        # memory=True: no JAX GPU preallocation, since the check may run beside the probe.
        result, _ = launch(_spec(run, "probe", cells=triples), _env(run, cache, None, True),
                           run.meta["settings"]["time_limit_s"])
    return result.get("available", {})  # a failed probe: each cell finds out for itself


def measure_peaks(run: Run, devices: set[str]) -> None:
    for device in sorted(devices - set(run.meta["peak"])):
        with tempfile.TemporaryDirectory(prefix="bpb-peak-") as cache:
            spec = _spec(run, "peak", device=device, peak_n=run.meta["settings"]["peak_n"],
                         impls=list(PEAK_IMPLS))
            result, _ = launch(spec, _env(run, cache, device), run.meta["settings"]["time_limit_s"])
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


def run_cell(run: Run, cell: dict, available: dict) -> dict:
    ok, why = available.get(f"{cell['impl']}/{cell['mode']}/{cell['device']}", (True, ""))
    if not ok:
        row = cell_row(run, cell, {"status": "unavailable", "reason": why}, None, 0.0)
        run.add_cell(row)
        return row
    limit = run.meta["settings"]["time_limit_s"]
    cache = tempfile.mkdtemp(prefix="bpb-cell-")  # fresh compile caches: a cold first call
    try:
        spec = _spec(run, "time", **cell)
        timed, wall = launch(spec, _env(run, cache, cell["device"]), limit)
        mem = None
        if timed.get("status") == "ok" and cell.get("memory", True):
            mem, mem_wall = launch({**spec, "job": "memory"},
                                   _env(run, cache, cell["device"], memory=True), limit)
            wall += mem_wall
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if timed.get("info"):
        run.meta["impl_info"][f"{cell['impl']}/{cell['mode']}/{cell['device']}"] = timed["info"]
    row = cell_row(run, cell, timed, mem, wall)
    run.add_cell(row, timed.get("samples") or [])
    return row


def run_tta(run: Run, goal: dict, available: dict) -> dict:
    ok, why = available.get(f"{goal['impl']}/{goal['mode']}/{goal['device']}", (True, ""))
    result = {"status": "unavailable", "reason": why}
    if ok:
        with tempfile.TemporaryDirectory(prefix="bpb-tta-") as cache:
            result, _ = launch(_spec(run, "tta", **goal), _env(run, cache, goal["device"]),
                               run.meta["settings"]["time_limit_s"])
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
                 if getattr(args, k) is not None]
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
    bench.meta["runs"].append({"started_utc": machine.utc_now().isoformat(timespec="seconds"),
                               "resume": bool(args.resume)})
    done, done_tta = bench.done_cells(), bench.done_tta()
    cells = [c for c in bench.meta["plan"]["cells"] if _key(c) not in done]
    goals = [g for g in bench.meta["plan"]["tta"]
             if tuple(str(g[k]) for k in ("impl", "mode", "device", "dtype", "dataset"))
             not in done_tta]
    print(f"run folder: {bench.path}  ({len(cells)} cells, {len(goals)} time-to-accuracy runs)")
    check = None
    if bench.meta["settings"]["check"] and not (bench.path / "check.json").exists():
        check = run_check(bench)
    available = probe(bench, cells + goals)  # alongside the check: neither is being timed
    if check is not None:
        finish_check(bench, check, started)
    measure_peaks(bench, {c["device"] for c in cells
                          if available.get(f"{c['impl']}/{c['mode']}/{c['device']}", [True])[0]})
    progress = Progress(len(cells) + len(goals))
    try:
        sweep(bench, cells, goals, available, progress)
    except KeyboardInterrupt:  # finished cells are already on disk
        progress.close()
        print(f"\ninterrupted; finish with: python -m harness bench --resume {bench.path}")
        raise
    progress.close()
    bench.meta["runs"][-1].update(finished_utc=machine.utc_now().isoformat(timespec="seconds"),
                                  seconds=round(time.time() - started, 1))
    bench.save_meta()
    print(f"done in {time.time() - started:.0f} s: {bench.path}")
    if args.report:
        render_report(bench)
    return 0


def sweep(bench: Run, cells: list[dict], goals: list[dict], available: dict,
          progress: Progress) -> None:
    """Every cell, then every time-to-accuracy run; the tables are rewritten after each."""
    for cell in cells:
        progress.start(f"{cell['impl']}/{cell['mode']} {cell['device']} {cell['dtype']} "
                       f"{cell['size']['name']}")
        row = run_cell(bench, cell, available)
        bench.flush()
        bench.save_meta()
        progress.done(row["status"], row.get("step_median_s"))
    for goal in goals:
        progress.start(f"time to {goal['target']:.0%} on {goal['dataset']}: "
                       f"{goal['impl']}/{goal['mode']} {goal['device']}")
        row = run_tta(bench, goal, available)
        bench.flush()
        progress.done(row["status"], row.get("seconds"), unit="s total")


def _key(cell: dict) -> tuple[str, ...]:
    return (cell["impl"], cell["mode"], cell["device"], cell["dtype"], cell["size"]["name"])
