"""python -m harness smoke [--device gpu] [--impl torch,jax:jit] [--budget 80] [--json]

    make gpu-smoke PY=python3      # on the GPU machine, before `make gpu`: under 90 s

Every GPU code path of `make gpu`, once, at a tiny size, before the run that counts: one row
per implementation and mode on the device, and one for the device's matmul peak. A kind of run
of the one engine: the SMOKE profile (harness/bench/profiles.py: its size, timing and limits),
its settings resolved the same way, the bench's probe, the bench's workers walked in one round
(harness/bench/rounds.py), the same records; what it adds is the checks below, and it writes
no run folder.
  available  the bench's probe; an unavailable series is a row saying why, nothing more
  grads      one float32 loss_and_grads in a fresh process (harness/measure/cell.py's grads
             job) against the float64 reference at float32's tolerance (TF32 modes: a 1e-2
             sanity bound only, their matmuls carry ~1e-3 by design)
  timed      the cell's benchmark worker: set-up, first call, warm-up, two samples, stop
  memory     the worker's peak-memory hook; precision: what info() records for the mode
  peak       the device's matmul-peak worker, one sample
Series start side by side, so the smoke costs its slowest start (a cold torch.compile). Every
process is bounded by its limit and by --budget: a hang is a FAIL row, never the end of the
smoke. Exit 0 when no row FAILed (on a machine without a GPU every row is unavailable with its
reason, and the exit is 0); 1 when any row FAILed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from concurrent.futures import ThreadPoolExecutor

import impls
from harness import options
from harness.bench import profiles
from harness.bench.budget import Budget
from harness.bench.rounds import Shuffled, walk
from harness.bench.smoke_rows import SIZE, STEPS, Row, render  # noqa: F401  (smoke.Row, smoke.render)
from harness.errors import UsageError
from harness.measure.cell import TF32_SANITY
from harness.measure.launch import cell_env
from harness.measure.pool import NotReady, Worker, run_once
from harness.measure.pool import run_once as probe_once  # the probe's (tests replace it)
from harness.measure.records import Key
from harness.measure.spec import Cell, Job, Series
from harness.measure.stats import fmt_seconds
from harness.process import ChildError, Group


class Smoke:
    def __init__(self, device: str, series: list[Series], budget: float, threads: int = 2):
        self.device, self.series = device, series
        self.budget = Budget(budget, min_start_s=1.0)
        profile = dataclasses.replace(profiles.SMOKE, devices=(device,), wall_budget_s=budget)
        self.settings = profiles.settings(profile, threads=threads, cpus=None, check=False)
        self.group = Group()

    def seconds(self, limit: float) -> float | None:
        """`limit`, capped by what is left of the budget; None once it is spent."""
        return None if self.budget.left() < 1.0 else min(limit, self.budget.left())

    def env(self) -> dict:
        return cell_env(self.settings.threads, str(self.group.folder()), self.device)

    def run(self) -> list[Row]:
        pool = ThreadPoolExecutor(max_workers=len(self.series) + 2)
        try:
            peak = pool.submit(self.timed, Row(f"peak {self.device}"),
                               Job("peak", self.settings, device=self.device), Key.peak(self.device))
            answers, probe_error = self.probe()
            rows = list(pool.map(lambda s: self.series_row(s, answers), self.series))
            rows.append(peak.result())
        finally:  # also on Ctrl-C: kill every process group first, so no thread waits on one
            self.group.close()
            pool.shutdown(wait=True, cancel_futures=True)
        if probe_error:
            rows.append(Row("probe", steps={"probe": (False, "FAIL", probe_error)}))
        return rows

    def probe(self) -> tuple[dict, str]:
        """available() of every series, in one process, as `bench` asks it."""
        limit = self.seconds(self.settings.start_limit)
        if not self.series or limit is None:
            return {}, "" if not self.series else "not run: the smoke's budget was spent"
        job = Job("probe", self.settings, series=tuple(self.series))
        env = cell_env(self.settings.threads, str(self.group.folder()), None, memory=True)
        result = probe_once(job, self.group, env, limit)
        if result.get("status") != "ok":
            # bench goes on without the probe's answers (each cell finds out for itself), but
            # a probe that fails here would cost `make gpu` its time limit.
            return {}, f"the bench's probe {result.get('status')}: {result.get('reason')}"
        return result.get("available", {}), ""

    def series_row(self, s: Series, answers: dict) -> Row:
        row, t0 = Row(f"{s.impl} {s.mode} {s.device}"), time.monotonic()
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
            row.steps["grads"] = _grads_step(grads)
        if gone is not None and row.available is not False:
            row.reason = ""
            row.steps["timed"] = (False, "FAIL", f"{said}its worker says unavailable: {gone}")
        row.seconds = time.monotonic() - t0
        return row

    def grads(self, cell: Cell) -> dict:
        """One loss_and_grads against the reference, in a process of its own."""
        limit = self.seconds(self.settings.check_timeout_s)
        if limit is None:
            return {"status": "not run", "reason": "the smoke's budget was spent"}
        return run_once(Job("grads", self.settings, cell=cell), self.group, self.env(), limit)

    def timed(self, row: Row, job: Job, key: Key) -> Row:
        """The real worker path of `job` (a cell or the peak): start, one round of the walker
        (two samples; the peak's one), stop; then its timed, memory and precision steps.
        row.available False with the reason when the worker found the job unavailable."""
        t0 = time.monotonic()
        try:
            limit = self.seconds(self.settings.start_limit)
            if limit is None:
                raise NotReady("not run", "the smoke's budget was spent")
            worker = Worker.start(job, self.group, self.env(), limit)
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
            _checks(row, key, worker.ready, final)


def _checks(row: Row, key: Key, ready, final) -> None:
    """The memory record of a worker that ran, and (on a GPU) the precision info() records."""
    mem, method = ready.peak_mem_bytes, str(ready.peak_mem_method or "")
    gpu = key.device != "cpu"
    ok = isinstance(mem, int) and (mem > 0 if gpu else mem >= 0) and (
        method.startswith("session.peak_memory()") or not gpu)
    row.steps["memory"] = ((True, f"{mem / 2**20:.1f} MiB", method) if ok else
                           (False, "FAIL", f"peak_mem_bytes {mem!r} ({method or 'none'})"))
    if not gpu:
        return
    info = final.info or {}
    precision, device = str(info.get("matmul_precision", "")), str(info.get("device", ""))
    expected = "tf32" if key.mode in impls.get(key.impl).timing_only else "highest"
    if precision.startswith(expected) and device not in ("", "cpu"):
        row.steps["precision"] = (True, expected, f"{precision}; device {device}")
    else:
        row.steps["precision"] = (False, "FAIL", f"info() says matmul_precision "
                                  f"{precision!r}, device {device!r}; expected {expected}")


def _grads_step(g: dict) -> tuple:
    if g.get("error"):
        return False, "FAIL", g["error"]
    worst = g.get("worst_error")
    text = "-" if worst is None else f"{worst:.1e}"
    if g.get("timing_only"):
        note = (f"timing-only (TF32): not held to float32's tolerance; sanity bound "
                f"{TF32_SANITY:g}")
        return g["ok"], text + "*", note
    return g["ok"], text, f"tolerance {g.get('tolerance'):g}"


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
