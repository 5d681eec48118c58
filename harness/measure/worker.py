"""A benchmark process: one job, in a fresh process, set up once and, for a timed cell or the
matmul peak, timed in short blocks on request, so the parent can interleave every cell's blocks
over the whole run.

    python -m harness.measure.worker        # started by harness/measure/pool.py, never by hand

Messages (harness/process.py's channel: one JSON object a line, on pipes of their own):
    parent -> {Job as JSON}                 harness.measure.spec.Job
    one-shot jobs (probe, tta, grads):
    worker -> {"status": ..., ...}          the result (harness/measure/cell.py), then exit
    a pre-started job (Job.wait) first imports its framework, then:
    worker -> {"status": "imported", "import_s": ..., "protocol": PROTOCOL}  (or unavailable)
    parent -> {"op": "go"}                  (nothing is timed before this)
    served jobs (time: a cell, peak: a device's matmul peak):
    worker -> {"status": "ready", "protocol": PROTOCOL, ...}   harness.measure.records.Ready
    parent -> {"op": "block", "samples": S, "canary": true}
    worker -> {"samples": [seconds per step, S of them], "canary": [before, after]}
    parent -> {"op": "stop"}
    worker -> {"status": "ok" | "diverged", "final_loss": ..., "info": {...}}   (Final)
A failure replies {"status": "failed" | "unavailable", "reason": ...} and exits. The worker
waits for its next message in a blocking read: an idle worker uses no CPU itself (what its
thread pools do after a block is measured by the parent: harness/measure/pool.py).

The canary (harness/measure/canary.py) is timed just before and just after each block when the
parent asks for it. PROTOCOL names these messages: `bench --against REV` runs REV's workers
beside this tree's, and refuses a REV whose workers speak another protocol (an older commit).
"""

from __future__ import annotations

import math
import sys
import time

from harness import process  # the standard library only: nothing here may start a BLAS yet

# The messages above, version 2: the canary beside every block, the protocol in the ready
# reply (version 1, never named: the rounds of issue 17). Change it with the messages.
PROTOCOL = 2
CANARY_S = 0.0005  # one canary reading lasts about this


def _cell_stepper(job, out: dict):
    """Set up the cell's session: (step, sync, value, info, memory_peak) or None if unavailable;
    `info` reads the implementation's info() when called (at the stop).

    Fills `out` with import_s, setup_s, first_call_s and the memory fields: RSS is read
    around setup and the first call (reading /proc costs the steps nothing).
    """
    from harness.measure import memory
    from harness.measure.peer import resolve
    from harness.measure.timing import timed

    cell, settings = job.cell, job.settings
    t0 = time.perf_counter()
    impl = resolve(cell.impl)
    ok, why = impl.available(cell.device, cell.mode)  # imports the framework
    out["import_s"] = time.perf_counter() - t0
    if not ok:
        out.update(status="unavailable", reason=why)
        return None
    impl.set_threads(settings.threads)
    cfg = settings.problem(cell)
    P, X, T = cfg.problem()
    rss0, _ = memory.rss()
    exact = memory.reset_peak_rss()

    def start():
        s = impl.session(P, X, T, loss=cfg.loss, lr=cfg.lr, dtype=cfg.dtype, device=cfg.device,
                         mode=cell.mode, activation=cfg.activation)
        return s, s.batches(None)[0]  # full batch: one device-resident batch

    (s, batch), out["setup_s"] = timed(start)
    rss1, hwm = memory.rss()
    out["setup_mem_bytes"] = None if rss0 is None else hwm - rss0
    exact = exact and memory.reset_peak_rss()
    # First call: tracing + compilation for jax.jit and torch.compile, from cold caches.
    out["first_call_s"] = timed(lambda: (s.step(batch), s.sync()))[1]

    def memory_peak() -> dict:  # after the warm-up: every temporary of a step has existed
        return memory.peak(cell.impl, cell.device, s, rss1, exact)

    # info() is read when the worker stops, not now: what the library did over the timed steps
    # (inductor skips CUDA graphs at a replay, not at the first call) is then in the record.
    return ((lambda: s.step(batch)), s.sync, s.value,
            (lambda: impl.info(cell.device, cell.mode)), memory_peak)


def pre_import(job, channel) -> float | None:
    """A pre-started job: import the framework (availability checked), say so, and wait for
    "go"; the import's seconds. None when the parent is gone or the series cannot run here
    (said)."""
    from harness.measure.peer import resolve

    series = job.cell.series if job.cell else job.goal.series if job.goal else None
    t0 = time.perf_counter()
    if series is not None:
        ok, why = resolve(series.impl).available(series.device, series.mode)
        if not ok:
            channel.send({"status": "unavailable", "reason": why,
                          "import_s": time.perf_counter() - t0, "protocol": PROTOCOL})
            return None
    else:
        import numpy  # noqa: F401  (the CPU peak: NumPy is its framework)
    seconds = time.perf_counter() - t0
    channel.send({"status": "imported", "import_s": seconds, "protocol": PROTOCOL})
    command = channel.receive()
    return seconds if command is not None and command.get("op") == "go" else None


def serve(job, channel) -> None:
    from harness.measure.canary import Canary
    from harness.measure.peak import peak_stepper
    from harness.measure.timing import Timer

    out: dict = {}
    imported_s = pre_import(job, channel) if job.wait else None
    if job.wait and imported_s is None:
        return
    made = (_cell_stepper if job.kind == "time" else peak_stepper)(job, out)
    if imported_s is not None and "import_s" in out:  # the import was before "go"
        out["import_s"] = imported_s
    if made is None:
        channel.send(out)
        return
    step, sync, value, info, memory_peak = made
    policy = job.settings.policy
    timer = Timer(step=step, sync=sync)
    out["warmup_steps"] = timer.warmup(policy.warmup_steps, max_s=policy.warmup_max_s)
    out.update(memory_peak())
    k, _ = timer.calibrate(policy.target_sample_s(timer.resolution))
    canary = Canary()
    out["canary_s"] = canary.calibrate(CANARY_S)
    channel.send({**out, "status": "ready", "steps_per_sample": k, "protocol": PROTOCOL})
    while (command := channel.receive()) is not None:
        if command["op"] == "block":
            watch = bool(command.get("canary"))
            before = canary.time() if watch else None
            samples = [timer.block(k) / k for _ in range(int(command["samples"]))]
            after = canary.time() if watch else None
            channel.send({"samples": samples, "canary": [before, after] if watch else []})
        elif command["op"] == "stop":
            loss = value(timer.last)
            status = "ok" if math.isfinite(loss) else "diverged"
            result = {"status": status, "final_loss": loss,
                      "info": info() if callable(info) else info}  # a cell's: read back now
            if status == "diverged":
                result["reason"] = f"non-finite loss {loss} after {timer.steps_run + 1} steps"
            channel.send(result)
            return


def main() -> int:
    # Pin first: threads a BLAS starts when NumPy is imported inherit this affinity, and
    # threads started before it would not. So nothing above imports NumPy.
    cpus = process.child_setup()
    channel = process.channel()
    raw = channel.receive()
    if raw is None:
        return 0  # the parent is gone
    from harness.codec import from_dict
    from harness.measure.cell import JOBS, one_line
    from harness.measure.spec import Job

    try:
        job = from_dict(Job, raw)
    except Exception as exc:  # another tree's job (bench --against): say so, apart
        channel.send({"status": "failed", "reason": one_line(exc), "protocol": PROTOCOL,
                      "unreadable_job": True})
        return 0
    try:
        if job.kind in JOBS:
            if job.wait and pre_import(job, channel) is None:
                return 0
            channel.send({**JOBS[job.kind](job), "cpus": cpus, "protocol": PROTOCOL})
        else:
            serve(job, channel)
    except Exception as exc:
        channel.send({"status": "failed", "reason": one_line(exc)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
