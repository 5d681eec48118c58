"""A `cells` run (bench's quick, default, full and gpu profiles): every cell a long-lived worker,
a size's workers walked in rounds, then time to accuracy.

    run = Cells(folder, settings, budget, group)
    available = run.probe(series)                # one process imports every framework
    left = run.run(cells, goals, available, progress)

Cells are timed size by size. For one size, every cell gets a worker (harness/measure/pool.py),
started one at a time (set-up, first call and warm-up are timed there, on a quiet machine);
then the workers and the matmul peaks they are held against (each device's float32 peak; the
GPU's TF32 peak where a GPU cell asks for TF32) are walked in rounds (harness/bench/rounds.py:
the walker every kind of run shares), and the size's rows are written at once: a size is on
disk complete or not at all, so Ctrl-C or a spent wall budget keeps finished sizes and
`--resume` redoes the rest. Time to accuracy runs last, each in a fresh process.
"""

from __future__ import annotations

import time

from harness.bench.blocks import BlockLog
from harness.bench.budget import NO_BUDGET, Budget
from harness.bench.checkrun import CheckRun, check_done
from harness.bench.engine import Walked, time_rounds
from harness.bench.plan import by_size, series_of, size_seed, tta_key
from harness.bench.prestart import Prestart
from harness.bench.progress import Progress
from harness.bench.rounds import round_values
from harness.bench.rows import base_of, cell_row, peak_summary, speedups
from harness.measure import machine, peak
from harness.measure.launch import cell_env
from harness.measure.pool import NotReady, Worker, run_once, stop_all
from harness.measure.records import Key, Outcome
from harness.measure.spec import Cell, Job, RunSettings, TtaGoal
from harness.process import Group
from harness.store import CellKey, RunFolder, TtaRow

MIN_ROUNDS = 6  # the fewest for a distribution-free 95% interval of a median


def measure(args, folder: RunFolder, settings: RunSettings, plan, group: Group) -> None:
    """A cells run into `folder` (new or resumed): what is missing of `plan`, check first."""
    started = time.time()
    given = getattr(args, "wall_budget", None)
    budget = Budget(settings.wall_budget_s if given is None else (given or None), started)
    folder.meta["runs"].append({"started_utc": machine.utc_now().isoformat(timespec="seconds"),
                                "resume": bool(args.resume), "wall_budget_s": budget.seconds})
    for why in folder.dropped:
        print(f"dropped {why}")
    done, done_tta = folder.done_cells(), folder.done_tta()
    cells = [c for c in plan.cells if CellKey.of(c) not in done]
    goals = [g for g in plan.tta if tta_key(g) not in done_tta]
    print(f"run folder: {folder.path}  ({len(cells)} cells, {len(goals)} time-to-accuracy runs)")
    run = Cells(folder, settings, budget, group)
    try:
        if settings.check and not check_done(folder):
            check = CheckRun(folder, settings, plan, budget, group)
            run.prestart(cells, goals)  # their imports alongside the check: nothing is timed
            # Alongside the check: neither is being timed.
            available = run.probe(series_of(cells, goals) | set(check.probe_series()))
            check.start_gpu(available)
            check.finish()
            # The wall budget is the sweep's: it starts when the check (bounded by its own
            # check_timeout_s) is done, so a slow check never eats the cells' time.
            budget = run.budget = Budget(budget.seconds)
        else:
            run.prestart(cells, goals)
            available = run.probe(series_of(cells, goals))
        # One step per worker started, per size's rounds, per time-to-accuracy run.
        progress = Progress(len(cells) + len({c.size.name for c in cells}) + len(goals))
        try:
            left = run.run(cells, goals, available, progress)
        finally:
            progress.close()
    except KeyboardInterrupt:  # finished sizes are already on disk
        print(f"\ninterrupted; finish with: python -m harness bench --resume {folder.path}")
        raise
    folder.meta["runs"][-1].update(finished_utc=machine.utc_now().isoformat(timespec="seconds"),
                                   seconds=round(time.time() - started, 1))
    if left["cells"] or left["tta"]:
        folder.meta["runs"][-1]["not_started"] = left
        print(f"wall budget of {budget.seconds:g} s spent: {len(left['cells'])} cells and "
              f"{len(left['tta'])} time-to-accuracy runs not started; finish them with: "
              f"python -m harness bench --resume {folder.path}")
    folder.save_meta()
    print(f"done in {time.time() - started:.0f} s: {folder.path}")


class Cells:
    def __init__(self, folder: RunFolder, settings: RunSettings, budget: Budget = NO_BUDGET,
                 group: Group | None = None):
        self.folder, self.settings, self.budget = folder, settings, budget
        self.group = group or Group()  # every child's process group and compile cache
        # peak name ("cpu", "gpu", "gpu-tf32": peak.peak_key) -> its worker, alive all run
        self.peaks: dict[str, Worker] = {}
        self.peak_records: dict[str, list] = {}
        self.blocks = BlockLog(folder)  # blocks.csv: every block, its canary, kept or not
        # cell, goal or "peak:NAME" -> a process started ahead (harness/bench/prestart.py)
        self.ahead = Prestart(self.group, self.env, lambda s: self.budget.timeout(s))

    def env(self, device: str | None, memory: bool = False) -> dict:
        """A cell's environment, with a fresh compile cache: its first call is cold."""
        return cell_env(self.settings.threads, str(self.group.folder()), device, memory,
                        self.settings.policy.idle_threads)

    def prestart(self, cells: list[Cell], goals: list[TtaGoal]) -> None:
        """Launch the CPU cells' workers, the CPU peak's and the time-to-accuracy processes
        now, in plan order: each imports its framework and waits (harness/bench/prestart.py).
        GPU workers start when their size comes (the gpu profile's order is its own)."""
        jobs = {"peak:cpu": Job("peak", self.settings, device="cpu")} \
            if any(c.device == "cpu" for c in cells) else {}
        jobs.update({c: Job("time", self.settings, cell=c) for c in cells if c.device == "cpu"})
        jobs.update({g: Job("tta", self.settings, goal=g) for g in goals if g.device == "cpu"})
        self.ahead.launch(jobs)

    def probe(self, series) -> dict[str, list]:
        """available() of every series, in one process: {"impl/mode/device": [ok, reason]}."""
        return probe(series, self.settings, self.group,
                     self.budget.timeout(self.settings.start_limit))

    def run(self, cells: list[Cell], goals: list[TtaGoal], available: dict,
            progress: Progress) -> dict:
        """Every size's cells in rounds, then every time-to-accuracy run. Returns what the
        wall budget left unstarted: {"cells": [key...], "tta": [key...]}."""
        left = {"cells": [], "tta": []}
        try:
            for group in by_size(cells):
                if not self.budget.can_start() or not self.run_size(group, available, progress):
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
            progress.done(row.status, row.seconds, unit="s total")
        self.ahead.close()  # what a spent budget left unstarted
        return left

    def _start(self, cell: Cell, available: dict, progress: Progress) -> Worker | Outcome | None:
        """The cell's worker, ready; or its Outcome when it cannot be timed; None when the
        wall budget is spent."""
        ok, why = available.get(str(cell.series), (True, ""))
        if not ok:
            self.ahead.drop(cell)
            return Outcome("unavailable", why)
        if not self.budget.can_start():
            return None
        progress.start(f"start {cell}")
        self.ahead.imported(self.settings.start_limit)
        try:
            worker = self.ahead.worker(cell, Job("time", self.settings, cell=cell),
                                       self.budget.timeout(self.settings.start_limit))
        except NotReady as exc:
            progress.done(exc.status, None)
            return Outcome(exc.status, exc.reason, exc.ready)
        progress.done("ready", worker.ready.first_call_s, unit="s first call")
        return worker

    def run_size(self, group: list[Cell], available: dict, progress: Progress) -> bool:
        """Start, time in rounds and stop the workers of one size; write its rows. False when
        the wall budget ran out first (nothing of this size is written)."""
        limit, workers, outcomes = self.settings.time_limit_s, {}, {}
        try:
            for cell in group:
                got = self._start(cell, available, progress)
                if got is None:
                    return False
                if isinstance(got, Worker):
                    workers[Key.of(cell)] = got
                else:
                    outcomes[Key.of(cell)] = got
            peaks = {peak.round_key(name): w for name, job in
                     peak.peak_jobs(self.settings, workers).items()
                     if (w := self._peak(name, job)) is not None}
            policy = self.settings.policy
            progress.start(f"{len(workers)} cells of size {group[0].size.name}: "
                           f"{policy.rounds}-{policy.at_most} rounds")
            walked = time_rounds({**workers, **peaks}, self._groups(workers), policy,
                                 self.budget, limit, size_seed(group), extras=tuple(peaks),
                                 base_of=base_of(self.settings.baseline))
            done = walked.rounds
            # Cut short by the wall budget: keep the size if it has the rounds a 95% interval
            # needs (6), else leave it to --resume.
            if done < min(MIN_ROUNDS, policy.rounds) and not self.budget.can_start():
                return False
            progress.done(f"{done} rounds", None)
            for key, exc in walked.failed.items():
                if key.is_peak:
                    self.peaks.pop(peak.name_of(key)).close()
                else:
                    worker = workers.pop(key)
                    worker.close()
                    outcomes[key] = Outcome(exc.status, exc.reason, worker.ready)
            self._stop(workers, outcomes)
            self._rows(group, walked, peaks, outcomes)
        finally:
            for worker in workers.values():
                worker.close()
        self.folder.flush()
        self.folder.save_meta()
        return True

    def _groups(self, workers: dict) -> dict:
        """{the baseline's key: the keys timed next to it} of one size's workers."""
        base, groups = base_of(self.settings.baseline), {}
        for key in workers:
            members = groups.setdefault(base(key), [])
            if base(key) != key:
                members.append(key)
        return groups

    def _stop(self, workers: dict, outcomes: dict) -> None:
        stop_all(workers, outcomes)
        for key, worker in workers.items():
            if outcomes[key].final and outcomes[key].final.info:
                self.folder.meta["impl_info"][str(worker.job.cell.series)] = \
                    outcomes[key].final.info

    def _rows(self, group: list[Cell], walked: Walked, peaks: dict, outcomes: dict) -> None:
        kept = walked.kept
        values = round_values(kept)
        for rec in kept:
            if rec.key.is_peak:
                self.peak_records.setdefault(peak.name_of(rec.key), []).append(rec)
        peak_gflops = {peak.name_of(key): {r: w.ready.flops_per_step / t / 1e9
                                           for r, t in values.get(key, {}).items()}
                       for key, w in peaks.items()}
        ratios = speedups(group, walked.records, self.settings.baseline, walked.flags)
        for cell in group:
            key = Key.of(cell)
            mine = [r for r in kept if r.key == key]
            row = cell_row(cell, self.settings, outcomes[key], values.get(key, {}),
                           None, ratios.get(key), mine, peaks=peak_gflops)
            self.folder.add_cell(row, mine)
        size = group[0].size.name
        target = self.settings.policy.target
        self.folder.meta.setdefault("weather", {})[size] = {
            **walked.weather, "below_target": [label(k) for k in walked.below_target(target)]}
        self.blocks.add(walked.records, walked.flags, size)

    def _peak(self, name: str, job: Job) -> Worker | None:
        """The matmul-peak worker called `name` (peak.peak_jobs: a device's float32 peak, the
        GPU's TF32 one), started once (or taken from those pre-started) and timed in every
        round."""
        if name not in self.peaks:
            self.ahead.imported(self.settings.start_limit)
            try:
                worker = self.ahead.worker(f"peak:{name}", job,
                                           self.budget.timeout(self.settings.start_limit))
            except NotReady as exc:
                self.folder.meta["peak"][name] = {"status": exc.status, "reason": exc.reason}
                return None
            self.peaks[name] = worker
            if name == "cpu" and worker.ready.blas:
                self.folder.meta["blas"] = list(worker.ready.blas)  # under this run's threads
        return self.peaks[name]

    def _finish_peaks(self) -> None:
        """Record each peak over the rounds (meta.json's peak: "gpu", "gpu-tf32", ...), and
        stop its worker."""
        for name, worker in self.peaks.items():
            self.folder.meta["peak"][name] = peak_summary(worker.ready,
                                                          self.peak_records.get(name, []))
            worker.close()
        self.peaks.clear()
        self.folder.save_meta()

    def run_tta(self, goal: TtaGoal, available: dict) -> TtaRow:
        ok, why = available.get(str(goal.series), (True, ""))
        result = {"status": "unavailable", "reason": why}
        if ok:
            self.ahead.imported(self.settings.start_limit)
            result = self.ahead.result(goal, Job("tta", self.settings, goal=goal),
                                       self.budget.timeout(self.settings.time_limit_s))
        else:
            self.ahead.drop(goal)
        tta = goal.tta
        row = TtaRow(goal.impl, goal.mode, goal.device, goal.dtype, tta.dataset,
                     target=tta.target, max_epochs=tta.max_epochs, eval_every=tta.eval_every,
                     **{k: result.get(k) for k in ("reached", "seconds", "epochs", "accuracy")},
                     status=result.get("status", "failed"), reason=result.get("reason", ""))
        self.folder.add_tta(row)
        return row


def probe(series, settings: RunSettings, group: Group, seconds: float) -> dict[str, list]:
    """available() of every series, in one process: {"impl/mode/device": [ok, reason]}; {} when
    the probe failed (each cell then finds out for itself). Shared by every kind of run."""
    series = sorted(set(series), key=str)
    if not series:
        return {}
    # memory=True: no JAX GPU preallocation, since the check may run beside the probe.
    env = cell_env(settings.threads, str(group.folder()), None, memory=True,
                   idle=settings.policy.idle_threads)
    return run_once(Job("probe", settings, series=tuple(series)), group, env,
                    seconds).get("available", {})


def label(key: Key) -> str:
    return f"{key.impl}/{key.mode} {key.device} {key.dtype} {key.size}"
