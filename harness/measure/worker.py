"""A long-lived benchmark worker: one cell (or the matmul peak) set up once, then timed in short
blocks on request, so the parent can interleave every cell's blocks over the whole run.

    python -m harness.measure.worker        # driven by harness/measure/pool.py, never by hand

Protocol (one JSON object per line; replies on stdout after MARKER, anything else on
stdout is framework chatter):
    parent -> {Job as JSON}                 the cell ("time") or the device ("peak")
    worker -> {"status": "ready", setup_s, first_call_s, steps_per_sample, ...}
    parent -> {"op": "block", "samples": S}
    worker -> {"samples": [seconds per step, S of them]}
    parent -> {"op": "stop"}
    worker -> {"status": "ok" | "diverged", "final_loss": ..., "info": {...}}
A failure replies {"status": "failed", "reason": ...} and exits. The worker waits for its
next command in a blocking read: an idle worker uses no CPU itself (what its thread pools
do after a block is measured and recorded by harness/measure/pool.py's users).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

MARKER = "@@worker@@ "


def _reply(obj: dict) -> None:
    sys.stdout.write("\n" + MARKER + json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def _pin(cpus) -> list[int] | None:
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)
        return sorted(os.sched_getaffinity(0))
    return None


def _cell_stepper(job, out: dict):
    """Set up the cell's session: (step, sync, value, info) or None if unavailable.

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

    return (lambda: s.step(batch)), s.sync, s.value, impl.info(cell.device, cell.mode), memory_peak


def _peak_stepper(job, out: dict):
    from harness.measure.peak import peak_stepper

    return peak_stepper(job, out)


def serve(job) -> None:
    from harness.measure.timing import Timer

    out: dict = {}
    made = (_cell_stepper if job.kind == "time" else _peak_stepper)(job, out)
    if made is None:
        _reply(out)
        return
    step, sync, value, info, memory_peak = made
    policy = job.settings.policy
    timer = Timer(step=step, sync=sync)
    out["warmup_steps"] = timer.warmup(policy.warmup_steps, max_s=policy.warmup_max_s)
    out.update(memory_peak())
    k, _ = timer.calibrate(policy.target_sample_s(timer.resolution))
    _reply({**out, "status": "ready", "steps_per_sample": k})
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "block":
            samples = [timer.block(k) / k for _ in range(int(command["samples"]))]
            _reply({"samples": samples})
        elif command["op"] == "stop":
            loss = value(timer.last)
            status = "ok" if math.isfinite(loss) else "diverged"
            result = {"status": status, "final_loss": loss, "info": info}
            if status == "diverged":
                result["reason"] = f"non-finite loss {loss} after {timer.steps_run + 1} steps"
            _reply(result)
            return


def main() -> int:
    raw = json.loads(sys.stdin.readline())
    # Pin first: threads a BLAS starts when NumPy is imported inherit this affinity.
    _pin(raw["settings"]["cpus"])
    from harness.codec import from_dict
    from harness.measure.spec import Job

    try:
        serve(from_dict(Job, raw))
    except Exception as exc:
        _reply({"status": "failed", "reason": f"{type(exc).__name__}: {exc}".splitlines()[0]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
