"""python -m harness smoke [--device gpu] [--impl torch,jax:jit] [--budget 80] [--json]

    make gpu-smoke PY=python3      # on the GPU machine, before `make gpu`: under 90 s

Every GPU code path of `make gpu`, once, at a tiny size, before the run that counts: one row
per implementation and mode on the device, and one per matmul peak (the GPU's TF32 peak too
where a mode asks TF32). A kind of run of the one engine: the SMOKE profile (its size, timing
and limits), its settings resolved the same way, the bench's probe, the bench's workers walked
in one round, the same records; what it adds is the checks below, and it writes no run folder.
  before     gpu_checks.before_run, before any process starts (a GPU smoke): an exclusive
             compute mode or another process on the GPU is one FAIL row, nothing started;
             compiled modes without Triton's C toolchain are unavailable, not started; a
             warning (MIG, persistence off, power limit, no nvidia-smi) is a passing row
  available  the bench's probe; an unavailable series is a row saying why, nothing more
  grads      one float32 loss_and_grads in a fresh process against the float64 reference
             (TF32 modes: a 1e-2 sanity bound only, their matmuls carry ~1e-3 by design)
  timed      the cell's benchmark worker: set-up, first call, warm-up, two samples, stop
  memory     the worker's peak-memory hook
  record     its info(), read back when it stopped, against its mode (gpu_checks.of_record):
             device and precision (GPU), JAX's CPU dispatch, CUDA-graph skips, compile pool
  peak       the matmul-peak workers, one sample each
Series start side by side; the cold torch.compile ones first, at most two compiles at once,
each with its share of the cores as its compile pool. Every process is bounded by its limit
and by --budget: a hang is a FAIL row, never the end of the smoke. Exit 0 when no row FAILed
(without a GPU every row is unavailable with its reason: exit 0); 1 when any row FAILed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import impls
from harness import options
from harness.bench import profiles
from harness.bench.budget import Budget
from harness.bench.rounds import Shuffled, walk
from harness.bench.smoke_rows import SIZE, Row, before_row, grads_step, memory_step, record_steps, render
from harness.errors import UsageError
from harness.measure import gpu_checks, machine, peak
from harness.measure.launch import cell_env
from harness.measure.pool import NotReady, Worker, run_once
from harness.measure.pool import run_once as probe_once  # the probe's (tests replace it)
from harness.measure.records import Key
from harness.measure.spec import Cell, Job, Series
from harness.measure.stats import fmt_seconds
from harness.process import ChildError, Group

# Cold torch.compile processes at once (a compiled series' grads process and worker fill both
# slots); on 16 cores each has a pool of 8 compile workers; the next waits for a slot.
COLD_COMPILES_AT_ONCE = 2


class Smoke:
    def __init__(self, device: str, series: list[Series], budget: float, threads: int = 2):
        self.device, self.series = device, series
        self.budget = Budget(budget, min_start_s=1.0)
        profile = dataclasses.replace(profiles.SMOKE, devices=(device,), wall_budget_s=budget)
        self.settings = profiles.settings(profile, threads=threads, cpus=None, check=False)
        self.group = Group()
        self.cold = threading.BoundedSemaphore(COLD_COMPILES_AT_ONCE)
        self.compile_env = gpu_checks.compile_threads_env(os.cpu_count() or 1,
                                                          COLD_COMPILES_AT_ONCE)

    def seconds(self, limit: float) -> float | None:
        """`limit`, capped by what is left of the budget; None once it is spent."""
        return None if self.budget.left() < 1.0 else min(limit, self.budget.left())

    def env(self, series: Series | None = None) -> dict:
        env = cell_env(self.settings.threads, str(self.group.folder()), self.device)
        if series is not None and gpu_checks.compiles_cold(series):
            env.update(self.compile_env)  # their compile pools share the cores
        return env

    @contextmanager
    def slot(self, series: Series | None) -> Iterator[bool]:
        """For a cold-compiling series, one of COLD_COMPILES_AT_ONCE slots, held while its
        process starts and compiles; False when the budget runs out first. True at once for
        any other."""
        if series is None or not gpu_checks.compiles_cold(series):
            yield True
            return
        got = self.cold.acquire(timeout=max(0.0, self.budget.left() - 1.0))
        try:
            yield got
        finally:
            if got:
                self.cold.release()

    def before(self) -> tuple[Row | None, dict[str, str]]:
        """gpu_checks.before_run, before any process starts: its row, and {series: why} for
        the series it rules out (compiled modes without Triton's C toolchain)."""
        if self.device != "gpu":
            return None, {}
        return before_row(gpu_checks.before_run(machine.gpus(), self.series,
                                                own_pids=[os.getpid()]))

    def peak_jobs(self) -> dict[str, Job]:
        """The device's matmul peak, and on a GPU the TF32 one too where a series asks TF32."""
        keys = [Key(s.impl, s.mode, s.device, "float32", SIZE.name) for s in self.series]
        return peak.peak_jobs(self.settings, keys) or {
            self.device: peak.peak_job(self.settings, self.device)}

    def run(self) -> list[Row]:
        before, ruled_out = self.before()
        if before is not None and before.status == "FAIL":
            return [before]  # what would waste the run, before any process started
        series = [s for s in self.series if str(s) not in ruled_out]
        order = start_order(series)
        pool = ThreadPoolExecutor(max_workers=len(self.series) + 3)
        try:
            peaks = [pool.submit(self.timed, Row(f"peak {n}"), job, peak.round_key(n))
                     for n, job in self.peak_jobs().items()]
            answers, probe_error = self.probe(series)
            done = dict(zip(order, pool.map(lambda s: self.series_row(s, answers), order),
                            strict=True))
            rows = [done.get(s) or Row(_name(s), available=False, reason=ruled_out[str(s)])
                    for s in self.series]
            rows += [p.result() for p in peaks]
        finally:  # also on Ctrl-C: kill every process group first, so no thread waits on one
            self.group.close()
            pool.shutdown(wait=True, cancel_futures=True)
        if probe_error:
            rows.append(Row("probe", steps={"probe": (False, "FAIL", probe_error)}))
        return ([before] if before else []) + rows

    def probe(self, series: list[Series]) -> tuple[dict, str]:
        """available() of every series, in one process, as `bench` asks it."""
        limit = self.seconds(self.settings.start_limit)
        if not series or limit is None:
            return {}, "" if not series else "not run: the smoke's budget was spent"
        job = Job("probe", self.settings, series=tuple(series))
        env = cell_env(self.settings.threads, str(self.group.folder()), None, memory=True)
        result = probe_once(job, self.group, env, limit)
        if result.get("status") != "ok":
            # bench goes on without the probe's answers (each cell finds out for itself), but
            # a probe that fails here would cost `make gpu` its time limit.
            return {}, f"the bench's probe {result.get('status')}: {result.get('reason')}"
        return result.get("available", {}), ""

    def series_row(self, s: Series, answers: dict) -> Row:
        row, t0 = Row(_name(s)), time.monotonic()
        known = answers.get(str(s))  # [ok, reason], or None when the probe failed
        if known is not None and not known[0]:
            row.available, row.reason = False, known[1]
            return row
        cell = Cell(s.impl, s.mode, s.device, "float32", SIZE)
        with ThreadPoolExecutor(max_workers=1) as side:  # the worker beside the grads process
            started = side.submit(self.timed, row, Job("time", self.settings, cell=cell),
                                  Key.of(cell))
            grads = self.grads(cell)
            started.result()
        gone = row.reason if row.available is False else None  # the worker's "unavailable"
        row.available = None
        said = "the probe said it was available; " if known is not None else ""
        if grads.get("status") not in ("ok", "unavailable"):  # the grads process failed or hung
            row.steps["grads"] = (False, "FAIL", f"{grads.get('status')}: {grads.get('reason')}")
        elif grads["status"] == "unavailable":
            if known is None and gone is not None:  # no probe answer: both agree it cannot run
                row.available, row.reason = False, str(grads.get("reason", ""))
                row.steps.clear()
            else:
                row.steps["grads"] = (False, "FAIL", f"{said}its process says unavailable: "
                                                     f"{grads.get('reason')}")
        else:
            row.available = True
            row.steps["grads"] = grads_step(grads)
        if gone is not None and row.available is not False:
            row.reason = ""
            row.steps["timed"] = (False, "FAIL", f"{said}its worker says unavailable: {gone}")
        row.seconds = time.monotonic() - t0
        return row

    def grads(self, cell: Cell) -> dict:  # against the reference, in a process of its own
        with self.slot(cell.series) as got:
            limit = self.seconds(self.settings.check_timeout_s) if got else None
            if limit is None:
                return {"status": "not run", "reason": "the smoke's budget was spent"}
            return run_once(Job("grads", self.settings, cell=cell), self.group,
                            self.env(cell.series), limit)

    def timed(self, row: Row, job: Job, key: Key) -> Row:
        """The real worker path of `job` (a cell or a peak): start, one round of the walker
        (two samples; a peak's one), stop; then its timed, memory and record steps.
        row.available False with the reason when the worker found the job unavailable."""
        t0, series = time.monotonic(), job.cell.series if job.cell else None
        try:
            with self.slot(series) as got:  # held until the worker is compiled and warm
                limit = self.seconds(self.settings.start_limit) if got else None
                if limit is None:
                    raise NotReady("not run", "the smoke's budget was spent")
                worker = Worker.start(job, self.group, self.env(series), limit)
        except NotReady as exc:
            if exc.status == "unavailable":
                row.available, row.reason = False, exc.reason
            else:
                row.steps["timed"] = (False, "FAIL", f"worker {exc.status}: {exc.reason}")
            row.seconds = time.monotonic() - t0
            return row
        try:
            self._time(row, key, worker)
        finally:
            worker.close()
        row.seconds = time.monotonic() - t0
        return row

    def _time(self, row: Row, key: Key, worker: Worker) -> None:
        schedule = Shuffled(1, random.Random(0), self.settings.policy.samples_per_block)
        limit = self.settings.time_limit_s
        records, failed, _ = walk({key: worker}, schedule, self.budget, limit)
        if key in failed:
            exc = failed[key]
            row.steps["timed"] = (False, "FAIL", f"worker {exc.status}: {exc.reason}")
            return
        times = [s for b in records for s in b.seconds]
        try:
            final = worker.stop(self.seconds(limit) or 1.0)
        except ChildError as exc:
            row.steps["timed"] = (False, "FAIL", f"worker {exc.status}: {exc.reason}")
            return
        if not (times and all(math.isfinite(t) and t > 0 for t in times)
                and final.status == "ok"):
            why = f"{final.status}: {final.reason}".rstrip(": ")
            row.steps["timed"] = (False, "FAIL", f"samples {[f'{t:.3g}' for t in times]}, "
                                                 f"stopped {why}")
        elif key.is_peak:
            row.available = True
            gflops = worker.ready.flops_per_step / min(times) / 1e9
            row.steps["timed"] = (True, f"{gflops:.3g} GFLOP/s", f"{worker.ready.method}"
                                  " (at a tiny n: the figure says only that it ran)")
        else:
            row.steps["timed"] = (True, f"{fmt_seconds(min(times))}/step", f"{min(times)!r} s")
            # its memory, and its info() (read back when it stopped) against its mode
            series = worker.job.cell.series
            env = self.compile_env if gpu_checks.compiles_cold(series) else {}
            row.steps["memory"] = memory_step(series, worker.ready)
            row.steps.update(record_steps(series, final.info or {}, gpu_checks.
                                          compile_threads_bound(env, self.settings.threads)))


def start_order(series: list[Series]) -> list[Series]:
    """The cold compiles first (the slowest starts: begun first), the rest as listed."""
    return sorted(series, key=lambda s: not gpu_checks.compiles_cold(s))


def _name(s: Series) -> str:
    return f"{s.impl} {s.mode} {s.device}"


# ---- the command -------------------------------------------------------------------------
def select(device: str, specs: list[str] | None) -> list[Series]:
    """The series to smoke: every registered implementation and mode (on a GPU, all but the
    NumPy reference, which runs on the CPU only), or those `specs` name (NAME or NAME:MODE)."""
    out = []
    for spec in specs or []:
        name, _, mode = spec.partition(":")
        impl = impls.get(name)  # ContractError naming the known ones: exit 2
        if mode and mode not in impl.modes:
            raise UsageError(f"unknown mode {mode!r} for {name}; expected one of "
                             f"{', '.join(impl.modes)}")
        out += [Series(name, m, device) for m in ([mode] if mode else impl.modes)]
    if specs is None:
        out = [Series(n, m, device) for n in impls.names() for m in impls.get(n).modes
               if not (device == "gpu" and n == "numpy")]
    return list(dict.fromkeys(out))


def add_arguments(parser) -> None:
    parser.add_argument("--device", choices=("gpu", "cpu"), default="gpu",
                        help="the device to smoke (default gpu; cpu rehearses the machinery)")
    parser.add_argument("--impl", action="append", metavar="NAME[:MODE]",
                        help="only these series (repeatable, comma-separated)")
    parser.add_argument("--budget", type=float, default=profiles.SMOKE.wall_budget_s,
                        metavar="S", help="seconds for everything, hangs included (default 80)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")


def main(args) -> int:
    options.seconds("--budget", args.budget)
    specs = None if not args.impl else [v.strip() for item in args.impl
                                        for v in item.split(",") if v.strip()]
    series = select(args.device, specs)
    t0 = time.monotonic()
    rows = Smoke(args.device, series, args.budget).run()
    seconds = time.monotonic() - t0
    ok = not any(r.status == "FAIL" for r in rows)
    if args.json:
        print(json.dumps({"ok": ok, "device": args.device, "seconds": round(seconds, 1),
                          "rows": [r.to_json() for r in rows]}, indent=1))
    else:
        print(render(rows, args.device, seconds))
    return 0 if ok else 1
