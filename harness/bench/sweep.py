"""The jobs of one `bench` invocation, each in a fresh process, written into one run folder.

    sweep = Sweep(folder, settings, budget)
    available = sweep.probe(series)           # one process imports every framework
    sweep.measure_peaks({"cpu"})
    left = sweep.run(cells, goals, available, progress)

After every cell the run folder's tables are rewritten (harness/store.py), so
Ctrl-C keeps what finished and `--resume` runs only what is missing. Crashed,
hung and diverged cells are recorded with a reason; the sweep goes on.
"""

from __future__ import annotations

import shutil
import tempfile

from harness.bench.budget import NO_BUDGET, Budget
from harness.bench.progress import Progress
from harness.measure.launch import cell_env, launch
from harness.measure.spec import Cell, Job, RunSettings, Series, TtaGoal
from harness.store import CellKey, RunFolder, TtaKey


class Sweep:
    def __init__(self, folder: RunFolder, settings: RunSettings, budget: Budget = NO_BUDGET):
        self.folder, self.settings, self.budget = folder, settings, budget

    def _launch(self, job: Job, cache: str, device: str | None,
                memory: bool = False) -> tuple[dict, float]:
        """launch() with its timeout capped by the wall budget; a kill by the budget says so."""
        limit = self.settings.time_limit_s
        timeout = self.budget.timeout(limit)
        env = cell_env(self.settings.threads, cache, device, memory)
        result, wall = launch(job, env, timeout)
        if result.get("status") == "timeout" and timeout < limit:
            result["reason"] += f" (the run's wall budget of {self.budget.seconds:g} s ran out)"
        return result, wall

    def probe(self, series) -> dict[str, list]:
        """available() of every series, in one process: {"impl/mode/device": [ok, reason]}."""
        series = sorted(set(series), key=str)
        if not series:
            return {}
        with tempfile.TemporaryDirectory(prefix="bpb-probe-") as cache:
            # memory=True: no JAX GPU preallocation, since the check may run beside the probe.
            result, _ = self._launch(Job("probe", self.settings, series=tuple(series)), cache,
                                     None, memory=True)
        return result.get("available", {})  # a failed probe: each cell finds out for itself

    def measure_peaks(self, devices: set[str]) -> None:
        meta = self.folder.meta
        for device in sorted(devices - set(meta["peak"])):
            if not self.budget.can_start():
                break
            with tempfile.TemporaryDirectory(prefix="bpb-peak-") as cache:
                result, _ = self._launch(Job("peak", self.settings, device=device), cache, device)
            meta["peak"][device] = result
            if device == "cpu" and result.get("blas"):
                meta["blas"] = result["blas"]  # read under this run's thread budget
        self.folder.save_meta()

    def run_cell(self, cell: Cell, available: dict) -> dict:
        """Time one cell (and its memory pass); add its row and samples to the folder."""
        ok, why = available.get(str(cell.series), (True, ""))
        if not ok:
            row = self.cell_row(cell, {"status": "unavailable", "reason": why}, None, 0.0)
            self.folder.add_cell(row)
            return row
        cache = tempfile.mkdtemp(prefix="bpb-cell-")  # fresh compile caches: a cold first call
        try:
            timed, wall = self._launch(Job("time", self.settings, cell=cell), cache, cell.device)
            mem = None
            if timed.get("status") == "ok" and cell.memory:
                if self.budget.can_start():
                    mem, mem_wall = self._launch(Job("memory", self.settings, cell=cell), cache,
                                                 cell.device, memory=True)
                    wall += mem_wall
                else:
                    mem = {"peak_mem_method": "not measured: the run's wall budget was spent"}
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        if timed.get("info"):
            self.folder.meta["impl_info"][str(cell.series)] = timed["info"]
        row = self.cell_row(cell, timed, mem, wall)
        self.folder.add_cell(row, timed.get("samples") or [])
        return row

    def cell_row(self, cell: Cell, timed: dict, mem: dict | None, wall: float) -> dict:
        """One row of cells.csv from a cell's timing and memory results."""
        size, s = cell.size, self.settings
        peak = self.folder.meta["peak"].get(cell.device, {}).get("gflops")
        median = timed.get("step_median_s")
        gflops = size.flops / median / 1e9 if median else None
        mem = mem or {}
        return {**CellKey.of(cell)._asdict(),
                "n_samples": size.n_samples, "n_features": size.n_features,
                "n_hidden": size.n_hidden, "n_outputs": size.n_outputs,
                "batch_size": size.n_samples, "loss": s.loss, "activation": s.activation,
                "status": timed.get("status", "failed"), "reason": timed.get("reason", ""),
                "flops_per_step": size.flops, "gflops": gflops, "peak_gflops": peak,
                "peak_fraction": gflops / peak if gflops and peak else None,
                "threads": s.threads,
                "matmul_precision": (timed.get("info") or {}).get("matmul_precision"),
                **{k: timed.get(k) for k in ("setup_s", "first_call_s", "step_median_s",
                                             "step_iqr_s", "repeats", "steps_per_sample", "noisy",
                                             "final_loss", "import_s", "warmup_steps")},
                "peak_mem_bytes": mem.get("peak_mem_bytes"),
                "setup_mem_bytes": mem.get("setup_mem_bytes"),
                "peak_mem_method": mem.get("peak_mem_method") or (
                    f"failed: {mem.get('reason')}" if mem else
                    "not measured (profile)" if timed.get("status") == "ok" else None),
                "wall_s": round(wall, 3)}

    def run_tta(self, goal: TtaGoal, available: dict) -> dict:
        ok, why = available.get(str(goal.series), (True, ""))
        result = {"status": "unavailable", "reason": why}
        if ok:
            with tempfile.TemporaryDirectory(prefix="bpb-tta-") as cache:
                result, _ = self._launch(Job("tta", self.settings, goal=goal), cache, goal.device)
        tta = goal.tta
        row = {"impl": goal.impl, "mode": goal.mode, "device": goal.device, "dtype": goal.dtype,
               "dataset": tta.dataset, "target": tta.target, "max_epochs": tta.max_epochs,
               "eval_every": tta.eval_every,
               **{k: result.get(k) for k in ("reached", "seconds", "epochs", "accuracy")},
               "status": result.get("status", "failed"), "reason": result.get("reason", "")}
        self.folder.add_tta(row)
        return row

    def run(self, cells: list[Cell], goals: list[TtaGoal], available: dict,
            progress: Progress) -> dict:
        """Every cell, then every time-to-accuracy run; the tables are rewritten after each.
        Returns what the wall budget left unstarted: {"cells": [key...], "tta": [key...]}."""
        left = {"cells": [], "tta": []}
        for cell in cells:
            if not self.budget.can_start():
                left["cells"].append(list(CellKey.of(cell)))
                continue
            progress.start(str(cell))
            row = self.run_cell(cell, available)
            self.folder.flush()
            self.folder.save_meta()
            progress.done(row["status"], row.get("step_median_s"))
        for goal in goals:
            if not self.budget.can_start():
                left["tta"].append(list(tta_key(goal)))
                continue
            progress.start(str(goal))
            row = self.run_tta(goal, available)
            self.folder.flush()
            progress.done(row["status"], row.get("seconds"), unit="s total")
        return left


def tta_key(goal: TtaGoal) -> TtaKey:
    return TtaKey(goal.impl, goal.mode, goal.device, goal.dtype, goal.tta.dataset)


def series_of(cells, goals) -> set[Series]:
    return {c.series for c in cells} | {g.series for g in goals}
