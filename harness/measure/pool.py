"""The parent's handle on a benchmark process (harness/measure/worker.py), typed both ways.

    w = Worker.start(job, group, env)           # set up, first call, warm-up: w.ready (Ready)
    w.block(3)                                  # Timed((Sample, Sample, Sample), canary) or ChildError
    w.wait_quiet()                              # until its threads stop using a CPU
    w.stop()                                    # Final(status, final_loss, info)
    result = run_once(job, group, env)          # a one-shot job's reply (probe, tta, grads)
    p = Pending.launch(job, group, env)         # pre-started: imports now, timed after "go"
    w = p.ready()                               # (or p.result(seconds) for a one-shot job)

Two limits, each named in its error (harness/process.py): start-up (the process starting,
importing its framework, setting up, the first call with its compile, the warm-up:
`settings.start_limit`) and work (one block or the stop: `settings.time_limit_s`), so a slow
start on a loaded machine is never mistaken for a hang in a block. A crash, a hang past its
limit or garbage on the channel raises ChildError with a one-line reason; the caller records it
and goes on. The child's whole process group dies with close().
"""

from __future__ import annotations

import dataclasses
import select
import sys

from harness import process
from harness.codec import from_dict, to_dict
from harness.measure import quiet
from harness.measure.records import Final, Outcome, Ready, Sample, Timed
from harness.measure.spec import Job
from harness.process import ChildError, Group, Limit

WORKER = [sys.executable, "-m", "harness.measure.worker"]
START = "start-up (import, set-up, first call, warm-up)"
WORK = "work (one block)"
# Unset in every cell: a persistent JAX compile cache would make a "cold" first call warm.
UNSET_VARS = ("JAX_COMPILATION_CACHE_DIR",)


class NotReady(ChildError):
    """The worker could not be made ready: status failed, timeout or unavailable; `ready`
    holds what it measured before it stopped (import_s for an unavailable series)."""

    def __init__(self, status: str, reason: str, ready: Ready | None = None):
        super().__init__(status, reason)
        self.ready = ready or Ready()


def _start(job: Job, group: Group, env: dict, cwd=None) -> process.Child:
    """`cwd`: the tree whose worker runs (default: this one). `python -m` puts it first on
    sys.path, so another revision's checkout runs its own harness and implementations."""
    child = group.start(WORKER, env=env, threads=job.settings.threads, cpus=job.settings.cpus,
                        channel=True, unset=UNSET_VARS, cwd=cwd or process.REPO)
    child.send(to_dict(job))
    return child


class Pending:
    """A pre-started process (Job.wait): importing its framework, or imported and waiting for
    "go"; nothing of it is timed until then. Its import overlaps with whatever the parent does
    meanwhile (the run's check): the start-up cost moves off the run's critical path.

        pending = Pending.launch(job, group, env)     # returns at once
        worker = pending.ready()                      # a served job: "go", then Ready
        result = pending.result(seconds)              # a one-shot job: "go", then its reply
    """

    def __init__(self, child: process.Child, job: Job):
        self.child, self.job, self.said = child, job, None

    @classmethod
    def launch(cls, job: Job, group: Group, env: dict, cwd=None) -> Pending:
        return cls(_start(dataclasses.replace(job, wait=True), group, env, cwd), job)

    def imported(self, start_s: float | None = None) -> dict:
        """Wait for the import to end: its reply ({"status": "imported" | "unavailable" |
        "failed", ...}); a crash or a hang is a "failed" or "timeout" reply, never raised."""
        if self.said is None:
            limit = Limit(start_s or self.job.settings.start_limit, START)
            try:
                self.said = self.child.receive(limit)
            except ChildError as exc:
                self.said = {"status": exc.status, "reason": exc.reason}
        return self.said

    def ready(self, start_s: float | None = None) -> Worker:
        """Say "go" and wait until set up and warm (the import already done); NotReady when
        it cannot be."""
        said = self.imported(start_s)
        if said.get("status") != "imported":
            self.child.close()
            facts = {k: v for k, v in said.items() if k in Ready.__dataclass_fields__}
            raise NotReady(said.get("status") if said.get("status") in (
                "unavailable", "timeout") else "failed",
                str(said.get("reason", f"unexpected reply {said}")), from_dict(Ready, facts))
        try:
            self.child.send({"op": "go"})
        except ChildError as exc:
            raise NotReady(exc.status, exc.reason) from None
        return Worker._ready(self.child, self.job, start_s)

    def result(self, seconds: float) -> dict:
        """A one-shot job's reply after "go" (as run_once's)."""
        said = self.imported(seconds)
        try:
            if said.get("status") != "imported":
                return said
            return self.child.ask({"op": "go"}, Limit(seconds, f"a {self.job.kind} job"))
        except ChildError as exc:
            return {"status": exc.status, "reason": exc.reason}
        finally:
            self.child.close()

    def close(self) -> None:
        self.child.close()


class Worker:
    def __init__(self, child: process.Child, job: Job, ready: Ready):
        self.child, self.job, self.ready = child, job, ready
        self.work = Limit(job.settings.time_limit_s, WORK)

    @classmethod
    def start(cls, job: Job, group: Group, env: dict, start_s: float | None = None,
              cwd=None) -> Worker:
        """Start a worker (in the tree `cwd`, default this one) and wait until it is set up and
        warm; NotReady when it is not."""
        return cls._ready(_start(job, group, env, cwd), job, start_s)

    @classmethod
    def _ready(cls, child: process.Child, job: Job, start_s: float | None) -> Worker:
        try:
            reply = child.receive(Limit(start_s or job.settings.start_limit, START))
        except ChildError as exc:
            child.close()
            raise NotReady(exc.status, exc.reason) from None
        except BaseException:
            child.close()
            raise
        status = reply.pop("status", None)
        if status != "ready":
            child.close()
            facts = {k: v for k, v in reply.items() if k in Ready.__dataclass_fields__}
            raise NotReady(status if status in ("unavailable", "failed") else "failed",
                           str(reply.get("reason", f"unexpected reply {reply}")),
                           from_dict(Ready, facts))
        return cls(child, job, from_dict(Ready, reply))

    def block(self, samples: int, seconds: float | None = None, canary: bool = True) -> Timed:
        """Time `samples` samples (each steps_per_sample steps and one sync), and the canary
        just before and after them (harness/measure/canary.py)."""
        limit = self.work if seconds is None else Limit(seconds, WORK)
        self.child.send({"op": "block", "samples": samples, "canary": canary})
        if not _idle_until_reply(self.child, limit.seconds):
            self.close()
            raise limit.error()
        reply = self.child.receive(limit)
        if "samples" not in reply:
            self.close()
            raise ChildError("failed", reply.get("reason", f"unexpected reply {reply}"))
        return Timed(tuple(Sample(float(x)) for x in reply["samples"]),
                     tuple(float(x) for x in reply.get("canary") or () if x is not None))

    def wait_quiet(self) -> float:
        """Wait until the worker's threads stop using a CPU (harness/measure/quiet.py)."""
        return quiet.wait(self.child)

    def stop(self, seconds: float | None = None) -> Final:
        """The final loss and the implementation's info; the process then exits."""
        try:
            limit = self.work if seconds is None else Limit(seconds, "work (stopping)")
            reply = self.child.ask({"op": "stop"}, limit)
            return from_dict(Final, {k: v for k, v in reply.items()
                                     if k in Final.__dataclass_fields__})
        finally:
            self.close()

    def close(self) -> None:
        self.child.close()


def _idle_until_reply(child: process.Child, seconds: float) -> bool:
    """Sleep in select() until the worker's reply can be read (or `seconds` pass). The
    child's receive() looks for the child's descendants between reads (a scan of /proc that
    costs ~3 ms of a core here); done while the block runs, that scan would share the
    machine with it. After this, receive() finds the reply waiting. False: nothing came in
    `seconds` (the block's limit passed)."""
    fd = getattr(child, "_from", None)
    if fd is None or getattr(child, "_buffer", b""):
        return True  # no pipe to watch (a test's child), or a reply already read
    try:
        return bool(select.select([fd], [], [], seconds)[0])
    except (OSError, ValueError):
        return True  # receive() says what went wrong


def run_once(job: Job, group: Group, env: dict, seconds: float, cwd=None) -> dict:
    """A one-shot job (probe, tta, grads) in a fresh worker: its reply, or {"status": "failed"
    | "timeout", "reason": ...}; never raises for the child's sake."""
    child = _start(job, group, env, cwd)
    try:
        return child.receive(Limit(seconds, f"a {job.kind} job (start-up included)"))
    except ChildError as exc:
        return {"status": exc.status, "reason": exc.reason}
    finally:
        child.close()


def stop_all(workers: dict, outcomes: dict) -> None:
    """Stop every worker of {key: Worker}; each one's Outcome into `outcomes` (its Final, or
    why it could not stop cleanly)."""
    for key, worker in workers.items():
        try:
            final = worker.stop()
            outcomes[key] = Outcome(final.status, final.reason, worker.ready, final)
        except ChildError as exc:
            outcomes[key] = Outcome(exc.status, exc.reason, worker.ready)
