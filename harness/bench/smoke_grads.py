"""The smoke's grads process: one loss_and_grads of an implementation and mode, in float32, on
the check's problem, against the float64 NumPy reference (harness/bench/smoke.py runs it).

    python -m harness.bench.smoke_grads IMPL MODE DEVICE     # prints one JSON line after MARKER
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import impls
from harness.measure.launch import REPO

MARKER = "@@smoke@@ "
TF32_SANITY = 1e-2  # TF32 grads: far above TF32's ~1e-3, far below any real bug's error


def spawn(cmd: list[str], env: dict, timeout: float, on_start) -> dict:
    """Run `cmd` in a group of its own; its JSON after MARKER, or failed/timeout with why."""
    full = {**os.environ, **env}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full.get("PYTHONPATH")]))
    proc = subprocess.Popen(cmd, cwd=REPO, env=full, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    on_start(proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        return {"status": "timeout", "reason": f"killed after {timeout:.0f} s"}
    for line in reversed(out.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    last = (err.strip().splitlines() or ["no output"])[-1][:300]
    return {"status": "failed", "reason": f"exit code {proc.returncode}: {last}"}


def child(name: str, mode: str, device: str) -> dict:
    from harness.check.agreement import compare
    from harness.check.problems import make_problem, reference
    from harness.check.suite import F, H, K, N

    impl = impls.get(name)
    ok, why = impl.available(device, mode)  # imports the framework
    if not ok:
        return {"available": False, "reason": why}
    p = make_problem(N, F, H, K, seed=0).cast("float32")
    t0 = time.perf_counter()
    try:
        L, G = impl.loss_and_grads(p.params, p.X, p.T, loss="bce", dtype="float32",
                                   device=device, mode=mode, activation="sigmoid")
    except Exception as exc:
        return {"available": True, "grads": {"ok": False, "error": one_line(exc)}}
    seconds = time.perf_counter() - t0
    L0, G0 = reference(p.params, p.X, p.T, "bce", "sigmoid")
    rows = compare({"loss": L0, **G0}, {"loss": L, **G}, "grad", "float32", N, K, impl=name,
                   mode=mode, device=device, loss="bce", activation="sigmoid", problem=p.name)
    errors = [r.worst_error for r in rows]
    timing_only = mode in impl.timing_only
    if timing_only:
        good = all(e is not None and e <= TF32_SANITY for e in errors)
        error = "" if good else f"worst error {max(e or math.inf for e in errors):.2e} > " \
                                f"the TF32 sanity bound {TF32_SANITY:g}"
    else:
        good = all(r.ok for r in rows)
        error = next((r.message() for r in rows if not r.ok), "")
    return {"available": True, "grads": {
        "ok": good, "error": error, "timing_only": timing_only, "seconds": seconds,
        "worst_error": max((e for e in errors if e is not None), default=None),
        "tolerance": TF32_SANITY if timing_only else rows[0].tolerance}}


def one_line(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}".splitlines() or ["?"])[0][:300]


if __name__ == "__main__":
    try:
        result = child(*sys.argv[1:4])
    except Exception as exc:  # the row says what broke; the parent never sees a traceback
        result = {"status": "failed", "reason": one_line(exc)}
    sys.stdout.write("\n" + MARKER + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
