"""The jobs of one `bench` invocation, written into one run folder.

    sweep = Sweep(folder, settings, budget)
    available = sweep.probe(series)              # one process imports every framework
    left = sweep.run(cells, goals, available, progress)

Cells are timed size by size. For one size, every cell gets a long-lived worker
(harness/measure/pool.py), started one at a time (set-up, first call and warm-up are
timed there, on a quiet machine); then the workers and the device's matmul peak are
timed in interleaved rounds (harness/bench/rounds.py), and the size's rows are written
at once: a size is on disk complete or not at all, so Ctrl-C or a spent wall budget
keeps finished sizes and `--resume` redoes the rest. Time to accuracy runs last, each
in a fresh process (harness/measure/cell.py).
"""

from __future__ import annotations

import random

from harness.bench.budget import NO_BUDGET, Budget
from harness.bench.children import Children
from harness.bench.progress import Progress
from harness.bench.rounds import round_values, walk_rounds
from harness.bench.rows import cell_row, peak_summary, sample_rows, speedups
from harness.measure.launch import cell_env, launch
from harness.measure.pool import Worker, WorkerError
from harness.measure.spec import Cell, Job, RunSettings, Series, TtaGoal
from harness.store import CellKey, RunFolder, TtaKey

MIN_ROUNDS = 6  # the fewest for a distribution-free 95% interval of a median


class Sweep:
    def __init__(self, folder: RunFolder, settings: RunSettings, budget: Budget = NO_BUDGET,
                 children: Children | None = None):
        self.folder, self.settings, self.budget = folder, settings, budget
        self.children = children or Children()  # every child's group and compile cache
        self.peaks: dict[str, Worker] = {}  # device -> the matmul-peak worker, alive all run
        self.peak_records: dict[str, list] = {}

    def close(self) -> None:
        """Kill every child still alive and remove the compile caches."""
        for worker in self.peaks.values():
            worker.close()
        self.peaks.clear()
        self.children.close()

    def _env(self, device: str | None, memory: bool = False) -> dict:
        """A cell's environment, with a fresh compile cache: its first call is cold."""
        return cell_env(self.settings.threads, self.children.folder(), device, memory)

    def probe(self, series) -> dict[str, list]:
        """available() of every series, in one process: {"impl/mode/device": [ok, reason]}."""
        series = sorted(set(series), key=str)
        if not series:
            return {}
        job = Job("probe", self.settings, series=tuple(series))
        # memory=True: no JAX GPU preallocation, since the check may run beside the probe.
        result, _ = launch(job, self._env(None, memory=True),
                           self.budget.timeout(self.settings.time_limit_s), self.children.adopt)
        return result.get("available", {})  # a failed probe: each cell finds out for itself

    def run(self, cells: list[Cell], goals: list[TtaGoal], available: dict,
            progress: Progress) -> dict:
        """Every size's cells in rounds, then every time-to-accuracy run. Returns what the
        wall budget left unstarted: {"cells": [key...], "tta": [key...]}."""
        left = {"cells": [], "tta": []}
        try:
            for group in _by_size(cells):
                if not self.budget.can_start():
                    left["cells"] += [list(CellKey.of(c)) for c in group]
                    continue
                if not self.run_size(group, available, progress):
                    left["cells"] += [list(CellKey.of(c)) for c in group]
        finally:
            self._finish_peaks()
        for goal in goals:
            if not self.budget.can_start():
                left["tta"].append(list(tta_key(goal)))
                continue
            progress.start(str(goal))
            row = self.run_tta(goal, available)
            self.folder.flush()
            progress.done(row["status"], row.get("seconds"), unit="s total")
        return left

    def run_size(self, group: list[Cell], available: dict, progress: Progress) -> bool:
        """Start, time in rounds and stop the workers of one size; write its rows. False when
        the wall budget ran out first (nothing of this size is written)."""
        limit, workers, ready, rows = self.settings.time_limit_s, {}, {}, {}
        try:
            for cell in group:
                key = CellKey.of(cell)
                ok, why = available.get(str(cell.series), (True, ""))
                if not ok:
                    rows[key] = cell_row(cell, self.settings, {"status": "unavailable",
                                                               "reason": why})
                    continue
                if not self.budget.can_start():
                    return False
                progress.start(f"start {cell}")
                try:
                    worker = Worker.start(Job("time", self.settings, cell=cell),
                                          self._env(cell.device), self.budget.timeout(limit),
                                          self.children.adopt)
                except WorkerError as exc:
                    rows[key] = cell_row(cell, self.settings, {"status": exc.status,
                                                               "reason": exc.reason})
                    progress.done(exc.status, None)
                    continue
                ready[key] = worker.ready
                if worker.ready.get("status") == "ready":
                    workers[key] = worker
                else:  # unavailable after all, or failed while setting up
                    rows[key] = cell_row(cell, self.settings, worker.ready)
                progress.done(worker.ready.get("status", "failed"), worker.ready.get("first_call_s"),
                              unit="s first call")
            devices = {c.device for c in group if CellKey.of(c) in workers}
            peaks = {("peak", d): w for d in sorted(devices) if (w := self._peak(d)) is not None}
            progress.start(f"{len(workers)} cells of size {group[0].size.name}: "
                           f"{self.settings.policy.rounds} rounds")
            records, failed, done = walk_rounds(
                {**workers, **peaks}, self.settings.policy, random.Random(_seed(group)),
                self.budget, limit, samples_of=lambda k: 1 if k in peaks else None)
            # Cut short by the wall budget: keep the size if it has the rounds a 95% interval
            # needs (6), else leave it to --resume.
            if done < min(MIN_ROUNDS, self.settings.policy.rounds) and not self.budget.can_start():
                return False
            progress.done(f"{done} rounds", None)
            for key, exc in failed.items():
                if key in peaks:
                    self.peaks.pop(key[1]).close()
                else:
                    workers.pop(key).close()
                    rows[key] = cell_row(_cell(group, key), self.settings,
                                         {**ready[key], "status": exc.status,
                                          "reason": exc.reason})
            for key, worker in workers.items():
                try:
                    final = worker.stop(limit)
                except WorkerError as exc:
                    final = {"status": exc.status, "reason": exc.reason}
                ready[key] = {**ready[key], **final}
            values = round_values(records)
            for rec in records:
                if rec.key in peaks:
                    self.peak_records.setdefault(rec.key[1], []).append(rec)
            peak_gflops = {key[1]: {r: w.ready["flops_per_step"] / t / 1e9
                                    for r, t in values.get(key, {}).items()}
                           for key, w in peaks.items()}
            ratios = speedups(group, values)
            for key in workers:
                cell = _cell(group, key)
                rows[key] = cell_row(cell, self.settings, ready[key], values.get(key, {}),
                                     peak_gflops.get(cell.device), ratios.get(key),
                                     [r for r in records if r.key == key])
                if ready[key].get("info"):
                    self.folder.meta["impl_info"][str(cell.series)] = ready[key]["info"]
        finally:
            for worker in workers.values():
                worker.close()
        for cell in group:
            key = CellKey.of(cell)
            self.folder.add_cell(rows[key], sample_rows(key, records))
        self.folder.flush()
        self.folder.save_meta()
        return True

    def _peak(self, device: str) -> Worker | None:
        """The device's matmul-peak worker, started once and timed in every round."""
        if device not in self.peaks:
            try:
                worker = Worker.start(Job("peak", self.settings, device=device),
                                      self._env(device),
                                      self.budget.timeout(self.settings.time_limit_s),
                                      self.children.adopt)
            except WorkerError as exc:
                self.folder.meta["peak"][device] = {"status": exc.status, "reason": exc.reason}
                return None
            if worker.ready.get("status") != "ready":
                self.folder.meta["peak"][device] = worker.ready
                return None
            self.peaks[device] = worker
            if device == "cpu" and worker.ready.get("blas"):
                self.folder.meta["blas"] = worker.ready["blas"]  # under this run's threads
        return self.peaks[device]

    def _finish_peaks(self) -> None:
        """Record each device's peak over the rounds, and stop its worker."""
        for device, worker in self.peaks.items():
            self.folder.meta["peak"][device] = peak_summary(worker.ready,
                                                            self.peak_records.get(device, []))
            worker.close()
        self.peaks.clear()
        self.folder.save_meta()

    def run_tta(self, goal: TtaGoal, available: dict) -> dict:
        ok, why = available.get(str(goal.series), (True, ""))
        result = {"status": "unavailable", "reason": why}
        if ok:
            result, _ = launch(Job("tta", self.settings, goal=goal), self._env(goal.device),
                               self.budget.timeout(self.settings.time_limit_s),
                               self.children.adopt)
        tta = goal.tta
        row = {"impl": goal.impl, "mode": goal.mode, "device": goal.device, "dtype": goal.dtype,
               "dataset": tta.dataset, "target": tta.target, "max_epochs": tta.max_epochs,
               "eval_every": tta.eval_every,
               **{k: result.get(k) for k in ("reached", "seconds", "epochs", "accuracy")},
               "status": result.get("status", "failed"), "reason": result.get("reason", "")}
        self.folder.add_tta(row)
        return row


def _by_size(cells: list[Cell]) -> list[list[Cell]]:
    groups: dict[str, list[Cell]] = {}
    for cell in cells:  # the plan's order: smallest (or largest) size first
        groups.setdefault(cell.size.name, []).append(cell)
    return list(groups.values())


def _cell(group: list[Cell], key: CellKey) -> Cell:
    return next(c for c in group if CellKey.of(c) == key)


def _seed(group: list[Cell]) -> int:
    """A fixed seed per size: the round orders are reproducible, and recorded anyway."""
    return sum(ord(ch) for ch in group[0].size.name)


def tta_key(goal: TtaGoal) -> TtaKey:
    return TtaKey(goal.impl, goal.mode, goal.device, goal.dtype, goal.tta.dataset)


def series_of(cells, goals) -> set[Series]:
    return {c.series for c in cells} | {g.series for g in goals}
