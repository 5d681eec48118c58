"""The check report at the start of a benchmark run, as one or several `check` processes.

    check = CheckRun(folder, settings, plan, budget, group)   # starts `check --json` at once
    ...                                                       # the probe runs beside it
    check.finish()                                            # waits; writes check.json

The check is a separate command (`python -m harness check --json`), run here as a child of
the run's process group (harness/process.py) so its framework imports stay out of the parent,
its output going to a file (a full pipe would stall it while the parent waits on the probe),
and read back as JSON whatever its exit code (1 is a finding, not a failure to report).
Two limits, each named in its error: start-up (`settings.start_limit`: the interpreter, the
imports and the devices, until the check says "started" on its channel, once it knows what it
can check) and work (`settings.check_timeout_s`, from then on, and never past the wall budget).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

from harness.bench.budget import NO_BUDGET, Budget
from harness.bench.plan import Plan
from harness.measure import gpu_checks
from harness.measure.spec import RunSettings, Series
from harness.process import Child, ChildError, Group, Limit
from harness.store import CHECK, RunFolder, read_json

# The slow parts of a GPU check (cold torch.compile / CUDA-graph compiles of every
# dtype x loss x activation): each checked in a process of its own, beside the rest.
CHECK_APART = ("torch:compile", "torch:reduce-overhead")


@dataclasses.dataclass
class CheckShard:
    """One `python -m harness check --json ARGS` process of the run's group."""

    args: list[str]
    child: Child
    started: float


def start_shard(args: list[str], group: Group) -> CheckShard:
    # No JAX GPU preallocation: the probe and other check processes share the GPU with it.
    env = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    if "gpu" in args and any(spec in CHECK_APART for spec in args):
        # A compiled GPU part: its inductor compile pool gets its share of the cores beside
        # the other compiled part (TORCHINDUCTOR_COMPILE_THREADS, unless already set here).
        env.update(gpu_checks.compile_threads_env(os.cpu_count() or 1, len(CHECK_APART)))
    # The channel: the check says "started" on it (harness.process.progress) once it knows what
    # it can check; from then on the work limit runs.
    child = group.start([sys.executable, "-m", "harness", "check", "--json", *args],
                        env=env, channel=True)
    return CheckShard(args, child, time.time())


class CheckRun:
    """The check report at the start of a run, written to check.json.

    It checks what the run times, no more (`make check` checks everything): the planned
    implementations and modes (not the peer row, not timing-only TF32 modes), in the
    run's dtypes, loss and activation, against the float64 NumPy reference, whose own
    finite-difference proof comes with every check. On the CPU that is one process,
    started at once, beside the probe. A plan with GPU cells adds the GPU part once the
    probe has said what the GPU can run: the slow compiled modes (CHECK_APART) each in a
    process of its own, beside the rest, so the check costs its slowest part rather than
    the sum; `merge_checks` makes the parts one report.
    """

    def __init__(self, folder: RunFolder, settings: RunSettings, plan: Plan,
                 budget: Budget = NO_BUDGET, group: Group | None = None):
        self.folder, self.settings, self.budget = folder, settings, budget
        self.group = group  # the run's: every check process is killed with it
        self.started = time.time()
        dtypes = sorted({c.dtype for c in plan.cells})
        self.common = ["--loss", settings.loss, "--activation", settings.activation]
        self.common += ["--dtype", dtypes[0]] if len(dtypes) == 1 else []
        self.specs = {d: checkable(plan, d) for d in ("cpu", "gpu")}
        cpu = self.specs["cpu"] or ["numpy"]  # the reference, whose proof every check prints
        self.shards = [start_shard(["--device", "cpu", *self.common, *_impl_args(cpu)],
                                   group)]
        self.unavailable: list[dict] = []

    def probe_series(self) -> list[Series]:
        """What the probe must answer for the GPU part to be planned."""
        return [Series(*spec.split(":"), "gpu") for spec in self.specs["gpu"]]

    def start_gpu(self, available: dict) -> None:
        runs = [spec for spec in self.specs["gpu"]
                if available.get(str(Series(*spec.split(":"), "gpu")), [True])[0]]
        for spec in self.specs["gpu"]:
            if spec not in runs:  # the probe's reason stands for the check's
                impl, mode = spec.split(":")
                reason = available[str(Series(impl, mode, "gpu"))][1]
                self.unavailable.append({"impl": impl, "mode": mode, "device": "gpu",
                                         "reason": reason})
        for specs in gpu_shards(runs):
            self.shards.append(start_shard(["--device", "gpu", *self.common,
                                            *_impl_args(specs)], self.group))

    def finish(self) -> None:
        end = self.budget.end or math.inf
        parts = [collect_check(shard.child, self.settings.check_timeout_s,
                               self.settings.start_limit, shard.started, end)
                 for shard in self.shards]
        seconds = round(time.time() - self.started, 2)
        shards = [{"args": s.args, "exit_code": p.get("exit_code"),
                   "seconds": p.get("seconds"), "error": p.get("error")}
                  for s, p in zip(self.shards, parts, strict=True)]
        report = merge_checks(parts, seconds, shards if len(parts) > 1 else None)
        report["unavailable"] += self.unavailable
        report["args"] = {"common": self.common, "specs": self.specs}
        self.folder.write_json(CHECK, report)
        self.folder.meta["check_seconds"] = seconds


def checkable(plan: Plan, device: str) -> list[str]:
    """The planned "impl:mode" on `device` that `check` can check: registered (the peer row
    is not; its own test checks it) and not timing-only (TF32)."""
    import impls  # the registry only: implementation modules import frameworks lazily

    out = []
    for cell in plan.cells:
        spec = f"{cell.impl}:{cell.mode}"
        if cell.device != device or spec in out or cell.impl not in impls.names():
            continue
        if cell.mode not in impls.get(cell.impl).timing_only:
            out.append(spec)
    return out


def gpu_shards(specs: list[str]) -> list[list[str]]:
    """The GPU specs as parts: each CHECK_APART mode in a process of its own, the rest in one."""
    apart = [[spec] for spec in specs if spec in CHECK_APART]
    rest = [spec for spec in specs if spec not in CHECK_APART]
    return apart + ([rest] if rest else [])


def _impl_args(specs: list[str]) -> list[str]:
    return [a for spec in specs for a in ("--impl", spec)]


STARTUP = "start-up (interpreter, imports, devices)"
WORK = "work (the check)"


def collect_check(child: Child, timeout: float, start_limit: float | None = None,
                  started: float | None = None, end: float = math.inf) -> dict:
    """The JSON report of one check process, whatever its exit code (1 is a finding), or
    {"ok": None, "error": why} when it printed none or ran past a limit: `start_limit` seconds
    from `started` (time.time(); default now) until it says "started" (None: no start-up
    phase), then `timeout` seconds of work from that moment; neither past `end` (the budget)."""
    started = time.time() if started is None else started
    try:
        begun = started
        if start_limit is not None:
            try:
                said = child.receive(_limit(started, start_limit, end, STARTUP))
                begun = float(said.get("at", time.time()))
            except ChildError as exc:
                if exc.status == "timeout":
                    raise
                begun = time.time()  # it ended without a word: its output says why
        code = child.wait(_limit(begun, timeout, end, WORK))
    except ChildError as exc:  # killed with whatever it started (compilers, data-parallel workers)
        return {"ok": None, "error": f"check {exc.reason}"}
    finally:
        child.close()
    try:
        report = json.loads(Path(child.files["stdout"]).read_text())
    except (OSError, ValueError):
        report = None
    if isinstance(report, dict):
        report.setdefault("exit_code", code)
        return report
    return {"ok": None, "exit_code": code,
            "error": f"no JSON from check: {child.stderr_tail()}"}


def _limit(since: float, seconds: float, end: float, what: str) -> Limit:
    """What is left of `seconds` from `since`, or of the wall budget's `end` if that comes
    first; its error names the figure that applies ("killed after 600 s of work (the check)")."""
    if end < since + seconds:
        return _Named(max(0.0, end - time.time()), what,
                      f"killed at the run's wall budget, in its {what}")
    return _Named(max(0.0, since + seconds - time.time()), what,
                  f"killed after {seconds:g} s of {what}")


@dataclasses.dataclass(frozen=True)
class _Named(Limit):
    """A Limit part of which may have passed already: it waits what is left, names the whole."""

    said: str = ""

    def error(self) -> ChildError:
        return ChildError("timeout", self.said)


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


def check_done(folder: RunFolder) -> bool:
    """check.json is there and complete (a check cut short by the wall budget or a crash is
    redone by --resume)."""
    try:
        report = read_json(folder.path, CHECK)
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and report.get("ok") is not None and not report.get("error")
