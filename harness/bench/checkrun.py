"""The check report at the start of a benchmark run, as one or several `check` processes.

    check = CheckRun(folder, settings, gpu=False)   # starts `check --json` at once
    ...                                             # the probe runs beside it
    check.finish()                                  # waits; writes check.json

The check is a separate command (`python -m harness check --json`), run here as a
subprocess so its framework imports stay out of the parent, and read back as JSON
whatever its exit code (1 is a finding, not a failure to report).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time

from harness.bench.budget import NO_BUDGET, Budget
from harness.measure.launch import REPO
from harness.measure.spec import RunSettings, Series
from harness.store import CHECK, RunFolder

# The slow parts of a GPU check (cold torch.compile / CUDA-graph compiles of every
# dtype x loss x activation): each checked in a process of its own, beside the rest.
CHECK_APART = ("torch:compile", "torch:reduce-overhead")


@dataclasses.dataclass
class CheckShard:
    """One `python -m harness check --json ARGS` process; stderr goes to a file, not a pipe
    (a full pipe would stall it while the parent waits on the probe)."""

    args: list[str]
    proc: subprocess.Popen
    err: object
    started: float


def start_shard(args: list[str]) -> CheckShard:
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

    def __init__(self, folder: RunFolder, settings: RunSettings, gpu: bool,
                 budget: Budget = NO_BUDGET):
        self.folder, self.settings, self.budget = folder, settings, budget
        self.gpu, self.started = gpu, time.time()
        self.shards = [start_shard(["--device", "cpu"] if gpu else [])]

    def probe_series(self) -> list[Series]:
        """What the probe must also answer for the GPU part to be split."""
        if not self.gpu:
            return []
        return [Series(*spec.split(":"), "gpu") for spec in CHECK_APART]

    def start_gpu(self, available: dict) -> None:
        if self.gpu:
            for args in gpu_shards(available):
                self.shards.append(start_shard(args))

    def finish(self) -> None:
        deadline = min(self.started + self.settings.check_timeout_s, self.budget.end or math.inf)
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
        self.folder.write_json(CHECK, report)
        self.folder.meta["check_seconds"] = seconds


def gpu_shards(available: dict) -> list[list[str]]:
    """`check` arguments for the GPU part: one process per CHECK_APART mode the GPU runs,
    one for everything else; or the whole GPU in one process."""
    import impls  # the registry only: implementation modules import frameworks lazily

    def runs(spec: str) -> bool:
        return bool(available.get(str(Series(*spec.split(":"), "gpu")), [False])[0])

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
