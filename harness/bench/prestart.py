"""The processes of a cells run started ahead of their turn, so their imports overlap.

    ahead = Prestart(group, env, timeout)
    ahead.launch({"peak:cpu": job, cell: job, goal: job})  # each imports its framework, waits
    ahead.imported(start_limit)                    # before anything is timed
    worker = ahead.worker(cell, job, env, start_s)   # the pre-started one, or a fresh start
    result = ahead.result(goal, job, env, seconds)   # a time-to-accuracy run's reply
    ahead.drop(item); ahead.close()                # what will not run

A pre-started process (harness/measure/pool.py's Pending) imports its framework and waits for
"go". Nothing is timed until every one of them has imported, so their imports overlap with the
check and with each other, never with a timing; import_s is then a start-up cost measured
alongside the others, not a timing.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.measure.pool import Pending, Worker, run_once
from harness.measure.spec import Job
from harness.process import Group

AT_MOST = 32  # processes pre-started at most (each holds its framework's memory meanwhile)


class Prestart:
    def __init__(self, group: Group, env: Callable[[str | None], dict],
                 timeout: Callable[[float], float]):
        """`env(device)`: a process's environment; `timeout(seconds)`: the seconds a wait may
        take (the run's wall budget caps them)."""
        self.group, self.env, self.timeout = group, env, timeout
        self.pending: dict = {}  # cell, goal or "peak:NAME" -> a Pending

    def launch(self, jobs: dict) -> None:
        """Start {item: job} now (at most AT_MOST, in the given order)."""
        for item, job in list(jobs.items())[:AT_MOST]:
            self.pending[item] = Pending.launch(job, self.group, self.env(_device(job)))

    def imported(self, start_limit: float) -> None:
        """Wait until no pre-started process is still importing."""
        for p in self.pending.values():
            p.imported(self.timeout(start_limit))

    def worker(self, item, job: Job, start_s: float) -> Worker:
        """`item`'s worker, ready (NotReady when it cannot be): pre-started or started now."""
        pending = self.pending.pop(item, None)
        if pending is not None:
            return pending.ready(start_s)
        return Worker.start(job, self.group, self.env(_device(job)), start_s)

    def result(self, item, job: Job, seconds: float) -> dict:
        """A one-shot job's reply (a time-to-accuracy run): pre-started or started now."""
        pending = self.pending.pop(item, None)
        if pending is not None:
            return pending.result(seconds)
        return run_once(job, self.group, self.env(_device(job)), seconds)

    def drop(self, item) -> None:
        if (pending := self.pending.pop(item, None)) is not None:
            pending.close()

    def close(self) -> None:
        """Stop every process not taken (what a spent budget left unstarted)."""
        for item in list(self.pending):
            self.drop(item)


def _device(job: Job) -> str | None:
    """Where the job runs: a peak's device, a cell's, a goal's."""
    return job.device or (job.cell or job.goal).device
