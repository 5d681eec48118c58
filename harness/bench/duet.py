"""`bench --against REV`: the working tree and REV side by side in one run (duet benchmarking,
Bulej et al. 2020), each series judged on adjacent pairs of blocks.

    python -m harness bench --against HEAD --profile quick       # my change against HEAD
    python -m harness bench --against main --impl torch --size large --no-check

REV is checked out in a temporary git worktree (harness/bench/revisions.py). For every cell of
the plan two workers start, REV's (side A, its own harness and implementations: `python -m
harness.measure.worker` run in its tree) and the working tree's (side B); a size's workers are
walked in rounds where each series of A and the same series of B run in adjacent blocks, A B
then B A (harness/bench/engine.py, pairing "alternate"), with the canary beside every block.
The drift of the machine between two separate runs never enters: both halves of a pair are
milliseconds apart. Each series of B is judged on its pairs as `compare` judges two runs
(harness/measure/stats.py's verdict: B/A with its 99% interval, "slower" only when the whole
interval lies beyond the minimum effect): the median of the pairs' B/A with its
distribution-free interval. Rounds go on for the series whose interval is still wider than
the duet's target, up to the policy's most.

Both sides are written as ordinary run folders in --out (B: `<stamp>-<profile>`, A:
`<stamp>-<profile>-<rev>`, each meta.json naming the other), so `report` and `compare` read
them as any run; B's folder also holds `against.csv`, the verdicts. Time to accuracy is not
run. Exit 1 when a series of B is slower (or broke, or was lost), 0 when none is, 2 on a bad
REV or option, or a REV whose workers speak another protocol (an older commit).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil
import subprocess
import time
from pathlib import Path

from harness import process
from harness.bench import profiles
from harness.bench.blocks import BlockLog
from harness.bench.budget import Budget
from harness.bench.cells import Cells, label
from harness.bench.engine import time_rounds
from harness.bench.pairs import half_width, pairs, ratio_interval
from harness.bench.plan import by_size, series_of, size_seed
from harness.bench.revisions import Repo
from harness.bench.rounds import round_values
from harness.bench.rows import cell_row, speedups
from harness.errors import UsageError
from harness.measure import machine, peak, stats
from harness.measure.pool import NotReady, Worker, run_once, stop_all
from harness.measure.records import Key, Outcome
from harness.measure.spec import Job
from harness.measure.worker import PROTOCOL
from harness.process import REPO
from harness.report.compare import Change, render
from harness.store import CellKey, RunFolder

AGAINST = "against.csv"
AGAINST_COLUMNS = (*CellKey._fields, "pairs", "median_a_s", "median_b_s", "ratio", "ratio_low",
                   "ratio_high", "verdict", "note")
TARGET = 0.03  # a series' B/A stops being sampled once its 99% interval is this narrow
MIN_EFFECT = 0.10  # compare's default: a change must also be this large
CONFIDENCE = 0.99
REFUSED = ("resume", "commits")


def protocol_of(repo: Repo, sha: str) -> int | None:
    """The worker protocol REV's harness/measure/worker.py declares (None: none, or no file)."""
    p = subprocess.run(["git", "show", f"{sha}:harness/measure/worker.py"], cwd=repo.root,
                       capture_output=True, text=True, timeout=60)
    found = re.search(r"^PROTOCOL = (\d+)", p.stdout, re.M) if p.returncode == 0 else None
    return int(found.group(1)) if found else None


def check_rev(repo: Repo, rev: str) -> str:
    """REV's full commit id; UsageError (exit 2) for a bad REV or one whose workers cannot
    speak this tree's protocol."""
    sha = repo.resolve(rev)
    spoken = protocol_of(repo, sha)
    if spoken != PROTOCOL:
        said = "no protocol (it predates issue 18)" if spoken is None else f"protocol {spoken}"
        raise UsageError(f"--against {rev}: {sha[:9]}'s benchmark workers speak {said}, this "
                         f"tree's speak protocol {PROTOCOL}: they cannot run side by side; "
                         "measure it with bench --commits and judge with compare instead")
    return sha


def main(args, create, validate, render_report) -> int:
    """`bench --against`: harness/bench/command.py passes its own create, validate and
    render_report (this module is below it: no import circle)."""
    for name in REFUSED:
        if getattr(args, name, None):
            raise UsageError(f"--against and --{name} do not go together")
    if profiles.get(args.profile).kind != "cells":
        raise UsageError(f"--against times the workers of a cells profile; {args.profile!r} is"
                         " a scaling run, whose launches are not workers: compare two runs")
    repo = Repo.find(REPO)
    sha = check_rev(repo, args.against)
    validate(args)
    for stale in process.reap_stale():
        print(f"cleaned up after a run that was killed: {stale}")
    folder_b, settings, plan = create(args)
    meta_a = copy.deepcopy(folder_b.meta)
    with repo.checkout(sha) as tree:
        meta_a["machine"]["git"] = machine.git(str(tree))
        meta_a["against"] = {"side": "A", "rev": args.against, "commit": sha,
                             "other": folder_b.path.name}
        folder_a = RunFolder.create(args.out, f"{args.profile}-{sha[:7]}", meta_a)
        folder_b.meta["against"] = {"side": "B", "rev": args.against, "commit": sha,
                                    "other": folder_a.path.name}
        folder_b.save_meta()
        print(f"B (the working tree): {folder_b.path}\nA ({args.against} = {sha[:9]}):"
              f" {folder_a.path}")
        try:
            with process.interrupts(), folder_a.lock(), folder_b.lock(), \
                    process.Group() as group:
                duet = Duet(folder_a, folder_b, settings, group, Path(tree))
                changes = duet.run(plan)
        except UsageError:  # REV cannot run here: nothing was measured, nothing is kept
            for folder in (folder_a, folder_b):
                shutil.rmtree(folder.path, ignore_errors=True)
            raise
    print(render(changes, MIN_EFFECT, CONFIDENCE))
    if getattr(args, "report", False):
        for folder in (folder_a, folder_b):
            render_report(folder)
    return 1 if any(c.regression for c in changes) else 0


class Duet:
    def __init__(self, folder_a: RunFolder, folder_b: RunFolder, settings, group, tree: Path):
        self.folders = {"A": folder_a, "B": folder_b}
        self.trees = {"A": tree, "B": REPO}
        self.settings, self.group = settings, group
        self.budget = Budget(settings.wall_budget_s)
        self.cells = Cells(folder_b, settings, self.budget, group)  # env, peak, probe
        self.blocks = {side: BlockLog(f) for side, f in self.folders.items()}
        self.changes: list[Change] = []
        self.rows: list[dict] = []

    def run(self, plan) -> list[Change]:
        started = time.time()
        series = series_of(plan.cells, ())
        limit = self.budget.timeout(self.settings.start_limit)
        available = {side: self._probe(series, side, limit) for side in ("A", "B")}
        try:
            for group in by_size(list(plan.cells)):
                if not self.budget.can_start():
                    print(f"wall budget spent: size {group[0].size.name} not run")
                    continue
                self.run_size(group, available)
        finally:
            self.cells._finish_peaks()
            self.folders["A"].meta["peak"] = self.folders["B"].meta["peak"]
        for folder in self.folders.values():
            folder.meta["runs"] = [{"started_utc": machine.utc_now().isoformat(timespec="seconds"),
                                    "seconds": round(time.time() - started, 1),
                                    "finished_utc": machine.utc_now().isoformat(
                                        timespec="seconds")}]
            folder.save_meta()
        self.folders["B"].write_table(AGAINST, AGAINST_COLUMNS, self.rows)
        return self.changes

    def _probe(self, series, side: str, seconds: float) -> dict:
        from harness.measure.launch import cell_env

        env = cell_env(self.settings.threads, str(self.group.folder()), None, memory=True,
                       idle=self.settings.policy.idle_threads)
        reply = run_once(Job("probe", self.settings, series=tuple(sorted(series, key=str))),
                         self.group, env, seconds, cwd=self.trees[side])
        self._speaks(reply, side)
        return reply.get("available", {})

    def _speaks(self, reply: dict, side: str) -> None:
        if side == "A" and (reply.get("protocol") != PROTOCOL or reply.get("unreadable_job")):
            raise UsageError(f"the revision's workers cannot read this tree's jobs"
                             f" ({reply.get('reason') or 'protocol ' + str(reply.get('protocol'))}):"
                             " compare two separate runs instead")

    def _start(self, cell, side: str, available: dict):
        ok, why = available[side].get(str(cell.series), (True, ""))
        if not ok:
            return Outcome("unavailable", why)
        try:
            worker = Worker.start(Job("time", self.settings, cell=cell), self.group,
                                  self.cells.env(cell.device),
                                  self.budget.timeout(self.settings.start_limit),
                                  cwd=self.trees[side])
        except NotReady as exc:
            return Outcome(exc.status, exc.reason, exc.ready)
        if worker.ready.protocol != PROTOCOL:
            worker.close()
            raise UsageError(f"a worker of side {side} speaks protocol {worker.ready.protocol},"
                             f" not {PROTOCOL}")
        return worker

    def run_size(self, group: list, available: dict) -> None:
        workers, outcomes, keys = {}, {}, {}
        print(f"size {group[0].size.name}: starting {2 * len(group)} workers", flush=True)
        try:
            for cell in group:
                for side in ("A", "B"):
                    key = dataclasses.replace(Key.of(cell), side=side)
                    keys[key] = cell
                    got = self._start(cell, side, available)
                    (workers if isinstance(got, Worker) else outcomes)[key] = got
            peaks = {peak.round_key(name): w for name, job in
                     peak.peak_jobs(self.settings, workers).items()
                     if (w := self.cells._peak(name, job)) is not None}
            pairs_of = {}
            for cell in group:
                a, b = (dataclasses.replace(Key.of(cell), side=s) for s in "AB")
                if a in workers and b in workers:
                    pairs_of[a] = [b]
                else:
                    pairs_of.update({k: [] for k in (a, b) if k in workers})
            policy = dataclasses.replace(self.settings.policy, pairing="alternate",
                                         target=TARGET, max_rounds=max(
                                             self.settings.policy.at_most, 40))
            walked = time_rounds({**workers, **peaks}, pairs_of, policy, self.budget,
                                 self.settings.time_limit_s, size_seed(group), extras=tuple(peaks),
                                 confidence=CONFIDENCE)
            print(f"size {group[0].size.name}: {walked.rounds} rounds,"
                  f" {walked.weather['discarded']} of {walked.weather['blocks']} blocks"
                  " discarded by the canary", flush=True)
            for key, exc in walked.failed.items():
                if not key.is_peak:
                    workers.pop(key).close()
                    outcomes[key] = Outcome(exc.status, exc.reason)
            stop_all(workers, outcomes)
            workers = {}
            self._rows(group, walked, outcomes, pairs_of)
        finally:
            for worker in workers.values():
                worker.close()

    def _rows(self, group, walked, outcomes, pairs_of) -> None:
        size = group[0].size.name
        peak_gflops = {}
        for rec in walked.kept:
            if rec.key.is_peak:
                name = peak.name_of(rec.key)
                self.cells.peak_records.setdefault(name, []).append(rec)
                ready = self.cells.peaks[name].ready
                peak_gflops.setdefault(name, {})[rec.round] = \
                    ready.flops_per_step / rec.value / 1e9
        for side, folder in self.folders.items():
            src = [b for b in walked.records if b.key.side in (side, "")]
            mine = [dataclasses.replace(b, key=dataclasses.replace(b.key, side="")) for b in src]
            flags = {id(n): bool(walked.flags.get(id(o))) for n, o in zip(mine, src,
                                                                          strict=True)}
            kept = [b for b in mine if not flags[id(b)]]
            values = round_values(kept)
            ratios = speedups(group, mine, self.settings.baseline, flags)
            for cell in group:
                key = Key.of(cell)
                outcome = outcomes[dataclasses.replace(key, side=side)]
                own = [b for b in kept if b.key == key]
                folder.add_cell(cell_row(cell, self.settings, outcome, values.get(key, {}),
                                         None, ratios.get(key), own, peaks=peak_gflops),
                                own)
            below = [label(k) for k in walked.below_target(TARGET) if k.side == side]
            folder.meta.setdefault("weather", {})[size] = {**walked.weather,
                                                           "below_target": below}
            self.blocks[side].add(mine, flags, size)
            folder.flush()
            folder.save_meta()
        owner = {b: a for a, bs in pairs_of.items() for b in bs}
        found = pairs(walked.records, owner.get, walked.flags)
        for cell in group:
            a, b = (dataclasses.replace(Key.of(cell), side=s) for s in "AB")
            self._judge(cell, outcomes[a], outcomes[b], found.get(b, []))

    def _judge(self, cell, out_a: Outcome, out_b: Outcome, found: list) -> None:
        key = CellKey.of(cell)
        sa, sb = out_a.status, out_b.status
        if sa == "ok" and sb != "ok":
            verdict = "broken" if sb in ("failed", "timeout", "diverged") else "lost"
            change = Change(key, None, None, None, verdict, f"B: {sb} {out_b.reason}".strip())
        elif sa != "ok" or not found:
            why = f"A: {sa}, B: {sb}" if sa != "ok" or sb != "ok" else "no pairs"
            change = Change(key, None, None, None, "not compared", why)
        else:
            ratio = ratio_interval(found, CONFIDENCE)
            verdict, note = stats.verdict(ratio, MIN_EFFECT, CONFIDENCE)
            width = half_width(ratio)
            note = "; ".join(filter(None, [note, f"{len(found)} pairs, +-{width:.1%}"]))
            change = Change(key, stats.median([p.base_s for p in found]),
                            stats.median([p.own_s for p in found]), ratio, verdict, note)
        self.changes.append(change)
        r = change.ratio
        self.rows.append({**key._asdict(), "pairs": len(found),
                          "median_a_s": change.median_a, "median_b_s": change.median_b,
                          "ratio": r and r.estimate, "ratio_low": r and r.low,
                          "ratio_high": r and r.high, "verdict": change.verdict,
                          "note": change.note})
        print(f"  {label(Key.of(cell))}: {change.verdict}"
              + (f" B/A {r.estimate:.3f} [{r.low:.3f}, {r.high:.3f}]" if r else ""), flush=True)
