"""python -m harness smoke [--device gpu] [--impl torch,jax:jit] [--budget 80] [--json]

    make gpu-smoke PY=python3      # on the GPU machine, before `make gpu`: under 90 s

Every GPU code path of `make gpu`, once, at a tiny size, before the run that counts: one row
per implementation and mode on the device, and one for the device's matmul peak.
  available  the bench's probe; an unavailable series is a row saying why, nothing more
  grads      one float32 loss_and_grads in a fresh process (harness/bench/smoke_grads.py)
             against the float64 reference at float32's tolerance (TF32 modes: a 1e-2
             sanity bound only, their matmuls carry ~1e-3 by design)
  timed      the cell's benchmark worker: set-up, first call, warm-up, two samples, stop
  memory     the worker's peak-memory hook; precision: what info() records for the mode
  peak       the device's matmul-peak worker, one sample
Series run side by side, so the smoke costs its slowest (a cold torch.compile). Every
process is bounded by a time limit and by --budget: a hang is a FAIL row, never the end of
the smoke. Exit 0 when no row FAILed (on a machine without a GPU every row is unavailable
with its reason, and the exit is 0); 1 when any row FAILed.
"""

from __future__ import annotations

import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import impls
from harness.bench.children import Children
from harness.bench.smoke_grads import TF32_SANITY, spawn
from harness.bench.smoke_rows import SIZE, STEPS, Row, render  # noqa: F401  (smoke.Row, smoke.render)
from harness.errors import UsageError
from harness.measure.launch import cell_env, launch
from harness.measure.pool import Worker, WorkerError
from harness.measure.spec import Cell, Job, RunSettings, Series
from harness.measure.stats import fmt_seconds
from harness.measure.timing import Policy

# Seconds each process may take, capped by what is left of the budget. A cold torch.compile
# is the slowest honest step (10-35 s); anything past these is a hang.
LIMITS = {"probe": 40.0, "grads": 60.0, "start": 60.0, "block": 15.0, "stop": 15.0}


class Smoke:
    def __init__(self, device: str, series: list[Series], budget: float, threads: int = 2):
        self.device, self.series = device, series
        self.deadline = time.monotonic() + budget
        self.children = Children()
        self.settings = RunSettings(
            threads=threads, cpus=None, loss="bce", lr=0.01, seed=0, activation="sigmoid",
            policy=Policy(warmup_steps=2, sample_s=0.002, samples_per_block=2, rounds=1,
                          warmup_max_s=1.0),
            time_limit_s=LIMITS["start"], peak_n=256, peak_n_cpu=256, check=False,
            check_timeout_s=LIMITS["grads"], wall_budget_s=budget)

    def timeout(self, step: str) -> float | None:
        """The step's limit, capped by what is left of the budget; None once it is spent."""
        left = self.deadline - time.monotonic()
        return None if left < 1.0 else min(LIMITS[step], left)

    def env(self) -> dict:
        return cell_env(self.settings.threads, self.children.folder(), self.device)

    def run(self) -> list[Row]:
        pool = ThreadPoolExecutor(max_workers=len(self.series) + 2)
        try:
            peak = pool.submit(self.peak_row)
            answers, probe_error = self.probe()
            rows = list(pool.map(lambda s: self.series_row(s, answers), self.series))
            rows.append(peak.result())
        finally:  # also on Ctrl-C: kill every process group first, so no thread waits on one
            self.children.close()
            pool.shutdown(wait=True, cancel_futures=True)
        if probe_error:
            rows.append(Row("probe", steps={"probe": (False, "FAIL", probe_error)}))
        return rows

    def probe(self) -> tuple[dict, str]:
        """available() of every series, in one process, as `bench` asks it."""
        limit = self.timeout("probe")
        if not self.series or limit is None:
            return {}, "" if not self.series else "not run: the smoke's budget was spent"
        job = Job("probe", self.settings, series=tuple(self.series))
        env = cell_env(self.settings.threads, self.children.folder(), None, memory=True)
        result, _ = launch(job, env, limit, self.children.adopt)
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
            timed = side.submit(self.timed, row, cell)
            grads = self.grads(s)
            gone = timed.result()  # the worker's reason when it found the series unavailable
        said = "the probe said it was available; " if known is not None else ""
        if "available" not in grads:  # the grads process failed or hung
            row.steps["grads"] = (False, "FAIL", f"{grads.get('status')}: {grads.get('reason')}")
        elif not grads["available"]:
            if known is None and gone is not None:  # no probe answer: both agree it cannot run
                row.available, row.reason = False, str(grads.get("reason", ""))
                row.steps.clear()
            else:
                row.steps["grads"] = (False, "FAIL", f"{said}its process says unavailable: "
                                                     f"{grads.get('reason')}")
        else:
            row.available = True
            row.steps["grads"] = _grads_step(grads["grads"])
        if gone is not None and row.available is not False:
            row.steps["timed"] = (False, "FAIL", f"{said}its worker says unavailable: {gone}")
        row.seconds = time.monotonic() - t0
        return row

    def grads(self, s: Series) -> dict:
        """One loss_and_grads against the reference, in a process of its own (`child`)."""
        limit = self.timeout("grads")
        if limit is None:
            return {"status": "not run", "reason": "the smoke's budget was spent"}
        cmd = [sys.executable, "-m", "harness.bench.smoke_grads", s.impl, s.mode, s.device]
        return spawn(cmd, self.env(), limit, self.children.adopt)

    def timed(self, row: Row, cell: Cell) -> str | None:
        """The real worker path of a cell: start, two samples, stop; then its memory and
        precision records. Returns the worker's reason when it found the cell unavailable."""
        got = self._worker(row, Job("time", self.settings, cell=cell), samples=2)
        if isinstance(got, str) or got is None:
            return got
        ready, final, _ = got
        mem, method = ready.get("peak_mem_bytes"), str(ready.get("peak_mem_method") or "")
        gpu = cell.device != "cpu"
        ok = isinstance(mem, int) and (mem > 0 if gpu else mem >= 0) and (
            method.startswith("session.peak_memory()") or not gpu)
        row.steps["memory"] = ((True, f"{mem / 2**20:.1f} MiB", method) if ok else
                               (False, "FAIL", f"peak_mem_bytes {mem!r} ({method or 'none'})"))
        if final is None or not gpu:
            return None
        info = final.get("info") or {}
        precision, device = str(info.get("matmul_precision", "")), str(info.get("device", ""))
        expected = "tf32" if cell.mode in impls.get(cell.impl).timing_only else "highest"
        if precision.startswith(expected) and device not in ("", "cpu"):
            row.steps["precision"] = (True, expected, f"{precision}; device {device}")
        else:
            row.steps["precision"] = (False, "FAIL", f"info() says matmul_precision "
                                      f"{precision!r}, device {device!r}; expected {expected}")
        return None

    def peak_row(self) -> Row:
        row, t0 = Row(f"peak {self.device}"), time.monotonic()
        got = self._worker(row, Job("peak", self.settings, device=self.device), samples=1)
        if isinstance(got, str):
            row.available, row.reason = False, got
        elif got is not None:
            row.available = True
            ready, final, times = got
            if final is not None:
                gflops = ready["flops_per_step"] / min(times) / 1e9
                row.steps["timed"] = (True, f"{gflops:.3g} GFLOP/s", f"{ready.get('method')}"
                                      " (at a tiny n: the figure says only that it ran)")
        row.seconds = time.monotonic() - t0
        return row

    def _worker(self, row: Row, job: Job, samples: int):
        """Start a worker for `job`, time `samples` samples, stop it. Returns (ready, stop
        reply or None when it failed, times); the worker's reason (a str) when it found the
        job unavailable; None when it never got ready. row.steps["timed"] says how it went."""
        worker = None
        try:
            limit = self.timeout("start")
            if limit is None:
                raise WorkerError("not run", "the smoke's budget was spent")
            worker = Worker.start(job, self.env(), limit, self.children.adopt)
            ready = worker.ready
            if ready.get("status") == "unavailable":
                return str(ready.get("reason", ""))
            if ready.get("status") != "ready":
                raise WorkerError(str(ready.get("status")), str(ready.get("reason")))
            times = worker.block(samples, self.timeout("block") or 1.0)
            final = worker.stop(self.timeout("stop") or 1.0)
        except WorkerError as exc:
            row.steps["timed"] = (False, "FAIL", f"worker {exc.status}: {exc.reason}")
            return None
        finally:
            if worker is not None:
                worker.close()
        if not (len(times) == samples and all(math.isfinite(t) and t > 0 for t in times)
                and final.get("status") == "ok"):
            why = f"{final.get('status')}: {final.get('reason', '')}".rstrip(": ")
            row.steps["timed"] = (False, "FAIL", f"samples {[f'{t:.3g}' for t in times]}, "
                                                 f"stopped {why}")
            return ready, None, times
        row.steps["timed"] = (True, f"{fmt_seconds(min(times))}/step", f"{min(times)!r} s")
        return ready, final, times


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
    parser.add_argument("--budget", type=float, default=80.0, metavar="S",
                        help="seconds for everything, hangs included (default 80)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")


def main(args) -> int:
    if not (math.isfinite(args.budget) and args.budget > 0):
        raise UsageError(f"--budget must be a finite number of seconds > 0, got {args.budget}")
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

